"""Rule evaluate_finetune: one saved model + the fetched glue-filtered folder → (Super)GLUE JSON."""

from pathlib import Path

from babyteach.evaluate.glue import FinetuneConfig, finetune_model
from babyteach.logs import log_to

log_to(snakemake.log[0])  # noqa: F821 (injected by Snakemake)

finetune_model(
    Path(snakemake.input.run) / snakemake.wildcards.model,  # noqa: F821
    Path(snakemake.input.data),  # noqa: F821
    Path(snakemake.output[0]),  # noqa: F821
    FinetuneConfig.from_mapping(snakemake.params.finetune),  # noqa: F821
)
