"""Rule evaluate_finetune: one saved model + the fetched glue-filtered folder → (Super)GLUE JSON."""

from pathlib import Path

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.evaluate.glue import FinetuneConfig, finetune_model

    finetune_model(
        Path(snakemake.input.run) / snakemake.wildcards.model,  # noqa: F821
        Path(snakemake.input.data),  # noqa: F821
        Path(snakemake.output[0]),  # noqa: F821
        FinetuneConfig.from_mapping(snakemake.params.finetune),  # noqa: F821
    )
