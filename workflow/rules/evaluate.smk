# Evaluation of every trained model: zero-shot minimal pairs (BLiMP, BLiMP supplement, EWoK)
# and (Super)GLUE fine-tuning.


rule evaluate_zero_shot:
    """Score one saved model on one minimal-pair family by pseudo-log-likelihood, with both
    scorings (official and pll-word-l2r) from one model load."""
    input:
        run=results("{corpus}/train/{run}"),
        data=results("raw/{family}"),
    output:
        results("{corpus}/eval/{run}/{model}/{family}.json"),
    log:
        logs("{corpus}/eval/{run}/{model}/{family}.log"),
    benchmark:
        benchmarks("{corpus}/eval/{run}/{model}/{family}.tsv")
    conda:
        "../envs/babyteach.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        max_per_task=config["evaluation"]["max_per_task"],
        batch_size=config["evaluation"]["batch_size"],
        per_item=config["evaluation"]["per_item"],
    script:
        "../scripts/evaluate_zero_shot.py"


rule evaluate_finetune:
    """Fine-tune one saved model on each (Super)GLUE task and score it on the valid files."""
    input:
        run=results("{corpus}/train/{run}"),
        data=results("raw/glue-filtered"),
    output:
        results("{corpus}/eval/{run}/{model}/glue.json"),
    log:
        logs("{corpus}/eval/{run}/{model}/glue.log"),
    benchmark:
        benchmarks("{corpus}/eval/{run}/{model}/glue.tsv")
    conda:
        "../envs/babyteach.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        finetune=config["finetune"],
    script:
        "../scripts/evaluate_finetune.py"
