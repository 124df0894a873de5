# Architecture search: students of size N/(i+1) for p peers, by Bayesian optimisation (Table 3).


rule search_architectures:
    """Search p student architectures against the teacher's closed-form parameter count."""
    output:
        results("search/peers-{peers}.json"),
    log:
        logs("search_architectures/peers-{peers}.log"),
    benchmark:
        benchmarks("search_architectures/peers-{peers}.tsv")
    conda:
        "../envs/babyteach.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        teacher=config["model"]["teacher"],
        space=config["search"]["space"],
        vocab_size=config["tokenizer"]["vocab_size"],
        block_size=config["model"]["block_size"],
        init_points=config["search"]["init_points"],
        n_iter=config["search"]["n_iter"],
        tolerance=config["search"]["tolerance"],
        seed=config["search"]["seed"],
    script:
        "../scripts/search_architectures.py"
