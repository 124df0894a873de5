"""Rule clean_corpus: raw BabyLM domain files → cleaned splits + line/word counts (Table 5)."""

from pathlib import Path

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.data.clean import clean_corpus

    clean_corpus(
        Path(snakemake.input.raw),  # noqa: F821
        Path(snakemake.output.clean),  # noqa: F821
        Path(snakemake.output.stats),  # noqa: F821
        release=snakemake.params.release,  # noqa: F821
        on_decode_error=snakemake.params.on_decode_error,  # noqa: F821
        max_lines_per_file=snakemake.params.max_lines_per_file,  # noqa: F821
    )
