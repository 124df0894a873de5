"""Rule probe_figure: results/probe/summary.csv + the probe runs → results/probe/dev_loss.pdf and .png."""

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.report.probe_figure import write_probe_figure

    write_probe_figure(
        snakemake.input.summary,  # noqa: F821
        list(snakemake.input.runs),  # noqa: F821
        snakemake.output.pdf,  # noqa: F821
        snakemake.output.png,  # noqa: F821
    )
