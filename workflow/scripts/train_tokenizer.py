"""Rule train_tokenizer: cleaned train split → byte-level BPE tokenizer folder (RoBERTa's recipe)."""

from pathlib import Path

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.data.tokenizer import train_tokenizer

    train_tokenizer(
        Path(snakemake.input.clean),  # noqa: F821
        Path(snakemake.output[0]),  # noqa: F821
        vocab_size=snakemake.params.vocab_size,  # noqa: F821
        min_frequency=snakemake.params.min_frequency,  # noqa: F821
    )
