# The paper's tables (results/tables) and figures (results/figures), from the result files only.


rule table:
    """One table of the paper as LaTeX (booktabs) and CSV (babyteach.report.tables)."""
    input:
        unpack(table_input_files),
    output:
        tex=report(
            results("tables/{table}.tex"),
            caption="../report/tables.rst",
            category="Tables",
        ),
        csv=results("tables/{table}.csv"),
    log:
        logs("tables/{table}.log"),
    benchmark:
        benchmarks("tables/{table}.tsv")
    wildcard_constraints:
        table=r"table[1-9]",
    conda:
        "../envs/babyteach.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        options=table_params,
    script:
        "../scripts/write_table.py"


rule figure:
    """One figure of the paper as PDF and PNG (babyteach.report.figures)."""
    input:
        unpack(figure_input_files),
    output:
        pdf=results("figures/{figure}.pdf"),
        png=report(
            results("figures/{figure}.png"),
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        logs("figures/{figure}.log"),
    benchmark:
        benchmarks("figures/{figure}.tsv")
    wildcard_constraints:
        figure="|".join(FIGURES),
    conda:
        "../envs/babyteach.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        options=figure_params,
    script:
        "../scripts/write_figure.py"
