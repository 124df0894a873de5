"""Rule table: per-model result files → results/tables/<table>.tex and .csv."""

from pathlib import Path

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.report.tables import write_table

    inputs = dict(snakemake.input.items())  # noqa: F821
    # training runs are folders (directory outputs); the tables read their summaries
    runs = inputs.pop("runs", None)
    if runs is not None:
        inputs["summaries"] = [Path(run) / "train_summary.json" for run in runs]
    write_table(
        snakemake.wildcards.table,  # noqa: F821
        inputs,
        snakemake.output.tex,  # noqa: F821
        snakemake.output.csv,  # noqa: F821
        snakemake.params.options,  # noqa: F821
    )
