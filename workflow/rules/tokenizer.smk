# Tokenizer and token shards: cleaned text → byte-level BPE → packed binary token arrays.


rule train_tokenizer:
    """Train the byte-level BPE tokenizer on the train split only."""
    input:
        clean=results("{corpus}/clean"),
    output:
        directory(results("{corpus}/tokenizer")),
    log:
        logs("train_tokenizer/{corpus}.log"),
    benchmark:
        benchmarks("train_tokenizer/{corpus}.tsv")
    conda:
        "../envs/babyteach.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=scaled_runtime(120),
    params:
        vocab_size=config["tokenizer"]["vocab_size"],
        min_frequency=config["tokenizer"]["min_frequency"],
    script:
        "../scripts/train_tokenizer.py"


rule tokenize_corpus:
    """Encode the train and dev splits into token shards that training reads."""
    input:
        clean=results("{corpus}/clean"),
        tokenizer=results("{corpus}/tokenizer"),
    output:
        directory(results("{corpus}/shards")),
    log:
        logs("tokenize_corpus/{corpus}.log"),
    benchmark:
        benchmarks("tokenize_corpus/{corpus}.tsv")
    conda:
        "../envs/babyteach.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=scaled_runtime(120),
    params:
        batch_lines=config["shards"]["encode_batch_lines"],
    script:
        "../scripts/tokenize_corpus.py"
