# Training: the RoBERTa-base baseline (also the teacher), the single-model student methods
# (each peer on its own) and the mutual methods (the peers together); the methods and their run
# paths are babyteach.layout's (TRAIN_RUN, common.smk). One rule, train_baseline, says how a
# training job runs; the student rules reuse it with their own inputs and paths.
# Shell rules: with resources gpu=N > 1 a job runs as N torchrun processes (training_launcher).


rule train_baseline:
    """Train the baseline/teacher architecture with plain MLM (docs/METHODS.md, Baseline)."""
    input:
        shards=results("{corpus}/shards"),
        tokenizer=results("{corpus}/tokenizer"),
    output:
        directory(results(TRAIN_RUN["teacher"])),
    log:
        logs(f"{TRAIN_RUN['teacher']}.log"),
    benchmark:
        benchmarks(f"{TRAIN_RUN['teacher']}.tsv")
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


use rule train_baseline as train_students with:
    """Train the searched peers of p with one single-model method (KD, SD, or baseline: plain MLM), each on its own."""
    input:
        unpack(student_training_inputs),
    output:
        directory(results(TRAIN_RUN["single"])),
    log:
        logs(f"{TRAIN_RUN['single']}.log"),
    benchmark:
        benchmarks(f"{TRAIN_RUN['single']}.tsv")
    wildcard_constraints:
        method=layout.method_pattern("single"),


use rule train_baseline as train_mutual with:
    """Train the searched peers of p together with a mutual method (DML, DWML or KD_DWML) at one alpha."""
    input:
        unpack(student_training_inputs),
    output:
        directory(results(TRAIN_RUN["mutual"])),
    log:
        logs(f"{TRAIN_RUN['mutual']}.log"),
    benchmark:
        benchmarks(f"{TRAIN_RUN['mutual']}.tsv")
    wildcard_constraints:
        method=layout.method_pattern("mutual"),
