"""Rule train_tokenizer: cleaned train split → byte-level BPE tokenizer folder (RoBERTa's recipe)."""

import logging
from pathlib import Path

logging.basicConfig(
    filename=snakemake.log[0],  # noqa: F821 (injected by Snakemake)
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)

from babyteach.data.tokenizer import train_tokenizer  # noqa: E402

train_tokenizer(
    Path(snakemake.input.clean),  # noqa: F821
    Path(snakemake.output[0]),  # noqa: F821
    vocab_size=snakemake.params.vocab_size,  # noqa: F821
    min_frequency=snakemake.params.min_frequency,  # noqa: F821
)
