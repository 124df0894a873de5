"""Rule tokenize_corpus: cleaned train/dev splits + tokenizer → token shards (.npy + meta.json)."""

from pathlib import Path

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.data.shards import write_shards

    write_shards(
        Path(snakemake.input.clean),  # noqa: F821
        Path(snakemake.input.tokenizer),  # noqa: F821
        Path(snakemake.output[0]),  # noqa: F821
        batch_lines=snakemake.params.batch_lines,  # noqa: F821
    )
