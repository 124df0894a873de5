"""Rule probe_summary: probe runs + their zero-shot results + shards → results/probe/summary.csv."""

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.report.probe_summary import write_probe_summary

    write_probe_summary(
        dict(snakemake.params.settings),  # noqa: F821
        list(snakemake.input.runs),  # noqa: F821
        list(snakemake.input.evals),  # noqa: F821
        snakemake.input.shards,  # noqa: F821
        snakemake.params.corpus,  # noqa: F821
        snakemake.output[0],  # noqa: F821
    )
