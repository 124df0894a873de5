# Data acquisition and cleaning: official URL or local mirror → cleaned splits + statistics.


rule fetch_data:
    """Fetch one dataset of the registry (src/babyteach/data/registry.py), verified by sha256 and read as the workflow reads it."""
    input:
        fetchable,
    output:
        directory(results("raw/{dataset}")),
    log:
        logs("fetch_data/{dataset}.log"),
    benchmark:
        benchmarks("fetch_data/{dataset}.tsv")
    conda:
        "../envs/babyteach.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        mirror=data_mirror_param(),
        retries=config["download"]["retries"],
        timeout_s=config["download"]["timeout_s"],
        on_decode_error=fetch_decode_mode,
    script:
        "../scripts/fetch_data.py"


rule clean_corpus:
    """Clean every domain file of a BabyLM corpus and count lines and words (Table 5)."""
    input:
        raw=corpus_dataset,
    output:
        clean=directory(results("{corpus}/clean")),
        stats=results("{corpus}/stats/corpus.csv"),
    log:
        logs("clean_corpus/{corpus}.log"),
    benchmark:
        benchmarks("clean_corpus/{corpus}.tsv")
    conda:
        "../envs/babyteach.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=scaled_runtime(60),
    params:
        release=corpus_release,
        on_decode_error=config["corpus"]["on_decode_error"],
        max_lines_per_file=config["corpus"]["max_lines_per_file"],
    script:
        "../scripts/clean_corpus.py"
