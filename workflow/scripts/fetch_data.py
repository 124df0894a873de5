"""Rule fetch_data: one registry dataset (official URL or local mirror) → results/raw/{dataset}/."""

import logging
from pathlib import Path

logging.basicConfig(
    filename=snakemake.log[0],  # noqa: F821 (injected by Snakemake)
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)

from babyteach.data.fetch import fetch_dataset  # noqa: E402

fetch_dataset(
    snakemake.wildcards.dataset,  # noqa: F821
    Path(snakemake.output[0]),  # noqa: F821
    mirror=Path(snakemake.params.mirror) if snakemake.params.mirror else None,  # noqa: F821
    retries=snakemake.params.retries,  # noqa: F821
    timeout_s=snakemake.params.timeout_s,  # noqa: F821
)
