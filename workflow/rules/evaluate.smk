# Evaluation: zero-shot minimal pairs (BLiMP, BLiMP supplement, EWoK) of every trained model.


rule evaluate_zero_shot:
    """Score one saved model on one minimal-pair family by pseudo-log-likelihood."""
    input:
        run="results/{corpus}/train/{run}",
        data="results/raw/{family}",
    output:
        "results/{corpus}/eval/{run}/{model}/{family}.json",
    log:
        "logs/{corpus}/eval/{run}/{model}/{family}.log",
    benchmark:
        "benchmarks/{corpus}/eval/{run}/{model}/{family}.tsv"
    conda:
        "../envs/babyteach.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        variant=config["evaluation"]["variant"],
        max_per_task=config["evaluation"]["max_per_task"],
        batch_size=config["evaluation"]["batch_size"],
    script:
        "../scripts/evaluate_zero_shot.py"
