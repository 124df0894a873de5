"""Rule tokenize_corpus: cleaned train/dev splits + tokenizer → token shards (.npy + meta.json)."""

import logging
from pathlib import Path

logging.basicConfig(
    filename=snakemake.log[0],  # noqa: F821 (injected by Snakemake)
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)

from babyteach.data.shards import write_shards  # noqa: E402

write_shards(
    Path(snakemake.input.clean),  # noqa: F821
    Path(snakemake.input.tokenizer),  # noqa: F821
    Path(snakemake.output[0]),  # noqa: F821
    batch_lines=snakemake.params.batch_lines,  # noqa: F821
)
