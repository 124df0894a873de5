"""Rule fetch_data: one registry dataset (official URL or local mirror) → results/raw/{dataset}/."""

from pathlib import Path

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.acquire import fetch_dataset

    fetch_dataset(
        snakemake.wildcards.dataset,  # noqa: F821
        Path(snakemake.output[0]),  # noqa: F821
        mirror=Path(snakemake.params.mirror) if snakemake.params.mirror else None,  # noqa: F821
        retries=snakemake.params.retries,  # noqa: F821
        timeout_s=snakemake.params.timeout_s,  # noqa: F821
        on_decode_error=snakemake.params.on_decode_error,  # noqa: F821
    )
