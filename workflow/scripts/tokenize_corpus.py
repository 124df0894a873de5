"""Rule tokenize_corpus: cleaned train/dev splits + tokenizer → token shards (.npy + meta.json)."""

from pathlib import Path

from babyteach.data.shards import write_shards
from babyteach.logs import log_to

log_to(snakemake.log[0])  # noqa: F821 (injected by Snakemake)

write_shards(
    Path(snakemake.input.clean),  # noqa: F821
    Path(snakemake.input.tokenizer),  # noqa: F821
    Path(snakemake.output[0]),  # noqa: F821
    batch_lines=snakemake.params.batch_lines,  # noqa: F821
)
