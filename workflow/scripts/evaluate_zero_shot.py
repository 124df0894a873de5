"""Rule evaluate_zero_shot: one saved model + one fetched minimal-pair dataset → accuracy JSON
(both scorings, official and pll-word-l2r: evaluate_pairs' default)."""

from pathlib import Path

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.evaluate.zero_shot import evaluate_pairs

    evaluate_pairs(
        Path(snakemake.input.run) / snakemake.wildcards.model,  # noqa: F821
        snakemake.wildcards.family,  # noqa: F821
        Path(snakemake.input.data),  # noqa: F821
        Path(snakemake.output[0]),  # noqa: F821
        max_per_task=snakemake.params.max_per_task,  # noqa: F821
        batch_tokens=snakemake.params.batch_size,  # noqa: F821
        per_item=snakemake.params.per_item,  # noqa: F821
    )
