r"""The paper's tables, as LaTeX (``Styler.to_latex``, booktabs rules) and CSV, from result files only.

Each table has one function ``tableN(<inputs>, **options)`` that builds it and returns the
:class:`~babyteach.report.table_model.Table`; :data:`TABLES` lists them with the inputs each needs
(its options are the function's other keyword-only parameters), and :func:`write_table` is the one
entry a rule script calls: it checks the inputs and options, builds the table and writes its
``.tex`` and ``.csv``::

    from babyteach.report.tables import write_table
    write_table("table2", {"eval": snakemake.input.eval, "search": snakemake.input.search},
                snakemake.output.tex, snakemake.output.csv, snakemake.params.options)

Inputs are explicit lists of result paths (what the rule declares as ``input``); nothing here
globs the results folder. A listed path that does not exist, and every run/model/seed a table
expects (from its options, by default the seeds and peers seen in its inputs) but finds no
file for, is shown as ``--`` (LaTeX) / empty (CSV) and named in the table notes and in the CSV's
``missing`` column; it never counts as zero. Inputs from different data versions of one benchmark
are refused (:class:`~babyteach.errors.InputError` naming both files).

Scoring variants (:mod:`babyteach.evaluate.variants`): every zero-shot result holds ``official``
(the BabyLM 2024 pipeline's protocol) and ``pll-word-l2r`` (this project's strict metric). Table 1
compares with the published baselines on ``official`` and shows the strict numbers in columns of
their own; Tables 2 and 6-8 show ``pll-word-l2r`` (option ``variant``). Every caption names the
variant of its numbers. A (Super)GLUE macro over fewer than all the tasks is marked ‡ and its
tasks named (Table 1: the column "GLUE tasks", n/11).

Conventions of every table:

- The ``.tex`` file is one ``table`` float: ``\caption`` (with the number of seeds),
  ``\label{tab:<name>}``, a ``tabular`` with ``\toprule``/``\midrule``/``\bottomrule`` (the
  document needs ``\usepackage{booktabs}``) and the notes below it. Both files are written
  atomically (:mod:`babyteach.io`).
- Accuracies and GLUE scores are percentages with one decimal; with more than one seed a cell
  is ``mean ± std`` (sample std, ddof=1) over seeds. The best value is bold (per column within a
  block for Tables 1 and 2, per row for Tables 6–8; published rows are never bolded); where the
  best and the runner-up differ by less than the larger of their seed stds, a note says so.
- The CSV has one row per table row: the row labels, then per numeric column ``<col>`` (mean, in
  the unit shown), ``<col>_std`` and ``<col>_n`` (seeds), then ``status`` and ``missing``
  (``;``-separated absent paths).

Inputs per table (path patterns; ``<c>`` corpus, ``<p>`` peers, ``<a>`` alpha, ``<s>`` seed):

==========  =============================================================================
table1      ``eval``: ``results/<c>/eval/baseline/seed-<s>/teacher/{<blimp>,<supplement>,<ewok>,glue}.json``
            and ``results/<c>/eval/dwml/peers-<p>/alpha-<a>/seed-<s>/peer-<i>/{...}.json`` for
            every track run (the track, 10M or 100M, is read from ``<c>``); ``published``
            (optional): the YAML of cited baselines, default :data:`PUBLISHED`.
table2      ``eval``: zero-shot files (BLiMP, supplement, EWoK families) of
            ``baseline/seed-<s>/teacher`` and of ``{sd,kd}/peers-<p>/seed-<s>/peer-<i>`` and
            ``{dml,kd_dwml,dwml}/peers-<p>/alpha-<a>/seed-<s>/peer-<i>`` for i = 1..p;
            ``search``: ``results/search/peers-<p>.json`` (peer sizes in the header).
table3      ``search``: every ``results/search/peers-<p>.json``; ``summaries`` (optional):
            ``results/<c>/train/<run>/train_summary.json`` of the runs whose pretraining
            hyperparameters are shown (all must agree but for the seed).
table4      ``glue``: ``results/<c>/eval/<run>/<model>/glue.json`` (all must share one config).
table5      ``corpus``: ``results/<c>/stats/corpus.csv`` (one per corpus shown).
table6      ``eval``: the BLiMP family files (e.g. ``blimp-filtered.json``) of the baseline and of
            every model of the student runs at one peer count (as table2).
table7      ``eval``: the same for the supplement family (``blimp-supplement.json``).
table8      ``eval``: the same for the EWoK family (``ewok-filtered.json``).
table9      ``summaries``: ``results/<c>/train/<run>/train_summary.json`` of the baseline and the
            student runs at one peer count, every seed.
==========  =============================================================================

Options (keyword arguments, all optional): ``seeds`` (the seeds expected, e.g. the config's
``seeds``; default: those seen in the inputs), ``peers`` (tables 1, 6–9: peer count shown;
default the largest seen), ``alpha`` (mutual methods' alpha; default the only one seen, an
InputError if the inputs hold several), ``student`` (tables 1, 6–8: ``"best"`` = per method the
peer with the highest mean over the table's benchmarks, named in the notes; or ``"peer-<i>"``),
``benchmarks`` (tables 1, 2: which columns/blocks), ``tracks`` (table 1: default
``("10M", "100M")``), ``methods`` (student methods shown, default SD, KD, DML, KD_DWML, DWML),
``variant`` (tables 2, 6–8: the scoring shown, default ``pll-word-l2r``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from babyteach.errors import InputError
from babyteach.report.inputs import builder_options
from babyteach.report.result_tables import table1, table2, table6, table7, table8
from babyteach.report.selection import STUDENT_METHODS, TEACHER_METHODS, _paths
from babyteach.report.setup_tables import table3, table4, table5, table9
from babyteach.report.table_model import PathArg, Table, write

# Re-exported: the student and teacher method lists the tables default to live in babyteach.report.selection.
__all__ = ["STUDENT_METHODS", "TABLES", "TEACHER_METHODS", "TableInfo", "write_table"]


# --- the dispatcher -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TableInfo:
    """A table's function, which builds and returns the table, and the named inputs it takes (``input``
    names of its Snakemake rule); its options are read from the function's signature."""

    function: Callable[..., Table]
    inputs: Mapping[str, str]  # input name -> what it holds

    @property
    def options(self) -> tuple[str, ...]:
        """The options the table takes: the function's keyword-only parameters that are not inputs."""
        return builder_options(self.function, self.inputs)


_EVAL_STUDENTS = (
    "eval/baseline/seed-<s>/teacher/<family>.json and every peer of the student runs at one peer "
    "count: eval/{sd,kd}/peers-<p>/seed-<s>/peer-<i>/<family>.json, "
    "eval/{dml,kd_dwml,dwml}/peers-<p>/alpha-<a>/seed-<s>/peer-<i>/<family>.json"
)

#: Every table: name -> function, named inputs (with what they hold).
TABLES: dict[str, TableInfo] = {
    "table1": TableInfo(
        table1,
        {
            "eval": "results/<c>/eval/baseline/seed-<s>/teacher/{<blimp>,<supplement>,<ewok>,glue}.json and the same "
            "files of every peer of results/<c>/eval/dwml/peers-<p>/alpha-<a>/seed-<s>, for each track run",
            "published": "(optional) YAML of the cited baselines; default babyteach/report/published.yaml",
        },
    ),
    "table2": TableInfo(
        table2,
        {
            "eval": f"zero-shot results (BLiMP, supplement, EWoK families): {_EVAL_STUDENTS}",
            "search": "results/search/peers-<p>.json",
        },
    ),
    "table3": TableInfo(
        table3,
        {
            "search": "every results/search/peers-<p>.json",
            "summaries": "(optional) results/<c>/train/<run>/train_summary.json of the runs whose hyperparameters "
            "are shown",
        },
    ),
    "table4": TableInfo(table4, {"glue": "results/<c>/eval/<run>/<model>/glue.json (one or more)"}),
    "table5": TableInfo(table5, {"corpus": "results/<c>/stats/corpus.csv (one per corpus)"}),
    "table6": TableInfo(table6, {"eval": f"BLiMP family results: {_EVAL_STUDENTS}"}),
    "table7": TableInfo(table7, {"eval": f"BLiMP supplement family results: {_EVAL_STUDENTS}"}),
    "table8": TableInfo(table8, {"eval": f"EWoK family results: {_EVAL_STUDENTS}"}),
    "table9": TableInfo(
        table9,
        {
            "summaries": "results/<c>/train/baseline/seed-<s>/train_summary.json and the train_summary.json of "
            "every student run at one peer count, every seed"
        },
    ),
}


def write_table(
    name: str, inputs: Mapping[str, Any], out_tex: PathArg, out_csv: PathArg, options: Mapping[str, Any] | None = None
) -> Table:
    """Build table ``name`` (a key of :data:`TABLES`) from named ``inputs`` with ``options`` and write
    it to ``out_tex`` and ``out_csv`` (both atomically); returns the table.

    ``inputs`` maps the input names of :data:`TABLES` to a path or a list of paths (a Snakemake
    ``Namedlist`` works); unknown names or options are an InputError naming the valid ones, and so is
    a table that cannot be built from its inputs (then nothing is written).
    """
    if name not in TABLES:
        raise InputError(f"unknown table {name!r}; valid: {', '.join(TABLES)}")
    info = TABLES[name]
    # a Mapping, or a Snakemake Namedlist (snakemake.input), whose items() are its named entries
    pairs = inputs.items() if hasattr(inputs, "items") else dict(inputs).items()
    inputs = {k: v for k, v in pairs if not str(k).startswith("_")}
    unknown = set(inputs) - set(info.inputs)
    if unknown:
        raise InputError(f"{name}: unknown inputs {', '.join(sorted(unknown))}; valid: {', '.join(info.inputs)}")
    options = dict(options or {})
    bad = set(options) - set(info.options)
    if bad:
        raise InputError(
            f"{name}: unknown options {', '.join(sorted(bad))}; valid: {', '.join(info.options) or 'none'}"
        )
    single = {"search": name == "table2", "published": True}
    args = {}
    for key, value in inputs.items():
        if single.get(key):
            paths = _paths(value)
            if len(paths) != 1:
                raise InputError(f"{name}: input {key!r} takes one file, got {len(paths)}")
            args[key] = paths[0]
        else:
            args[key] = _paths(value)
    return write(info.function(**args, **options), out_tex, out_csv)
