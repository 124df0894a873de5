"""Rule figure: result files and training folders → results/figures/<figure>.pdf and .png."""

from babyteach.logs import rule_logging

with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
    from babyteach.report.figures import write_figure

    write_figure(
        snakemake.wildcards.figure,  # noqa: F821
        dict(snakemake.input.items()),  # noqa: F821
        snakemake.output.pdf,  # noqa: F821
        snakemake.output.png,  # noqa: F821
        snakemake.params.options,  # noqa: F821
    )
