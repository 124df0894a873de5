# Training: the RoBERTa-base baseline (also the teacher), the single-model student methods
# (KD, SD: each peer on its own) and the mutual methods (DML, DWML, KD_DWML: peers together).
# Shell rules: with resources gpu=N > 1 a job runs as N torchrun processes (training_launcher).


rule train_baseline:
    """Train the baseline/teacher architecture with plain MLM (docs/METHODS.md, Baseline)."""
    input:
        shards=results("{corpus}/shards"),
        tokenizer=results("{corpus}/tokenizer"),
    output:
        directory(results("{corpus}/train/baseline/seed-{seed}")),
    log:
        logs("{corpus}/train/baseline/seed-{seed}.log"),
    benchmark:
        benchmarks("{corpus}/train/baseline/seed-{seed}.tsv")
    conda:
        "../envs/babyteach.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=scaled_runtime(600),
    params:
        settings=train_settings,
        job=train_job,
        launcher=training_launcher,
    shell:
        "{params.launcher} -m babyteach.train_job {params.settings:q} {params.job:q} {log:q}"


rule train_students:
    """Train the searched peers of p with one single-model method (KD, SD, or baseline: plain MLM), each on its own."""
    input:
        unpack(student_training_inputs),
    output:
        directory(results("{corpus}/train/{method}/peers-{peers}/seed-{seed}")),
    log:
        logs("{corpus}/train/{method}/peers-{peers}/seed-{seed}.log"),
    benchmark:
        benchmarks("{corpus}/train/{method}/peers-{peers}/seed-{seed}.tsv")
    wildcard_constraints:
        method="baseline|kd|sd",
    conda:
        "../envs/babyteach.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=scaled_runtime(600),
    params:
        settings=train_settings,
        job=train_job,
        launcher=training_launcher,
    shell:
        "{params.launcher} -m babyteach.train_job {params.settings:q} {params.job:q} {log:q}"


rule train_mutual:
    """Train the searched peers of p together with a mutual method (DML, DWML or KD_DWML) at one alpha."""
    input:
        unpack(student_training_inputs),
    output:
        directory(
            results("{corpus}/train/{method}/peers-{peers}/alpha-{alpha}/seed-{seed}")
        ),
    log:
        logs("{corpus}/train/{method}/peers-{peers}/alpha-{alpha}/seed-{seed}.log"),
    benchmark:
        benchmarks(
            "{corpus}/train/{method}/peers-{peers}/alpha-{alpha}/seed-{seed}.tsv"
        )
    wildcard_constraints:
        method="dml|dwml|kd_dwml",
    conda:
        "../envs/babyteach.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=scaled_runtime(600),
    params:
        settings=train_settings,
        job=train_job,
        launcher=training_launcher,
    shell:
        "{params.launcher} -m babyteach.train_job {params.settings:q} {params.job:q} {log:q}"
