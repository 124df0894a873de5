r"""The paper's tables, as LaTeX (``Styler.to_latex``, booktabs rules) and CSV, from result files only.

Each table has one function ``tableN(<inputs>, out_tex, out_csv, **options)``; :data:`TABLES`
lists them with the inputs each needs, and :func:`write_table` is the one entry a rule script
calls::

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

import io
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path, PurePath
from typing import Any

import pandas as pd
import yaml

from babyteach import layout
from babyteach.errors import InputError
from babyteach.evaluate.glue import TASKS as GLUE_TASKS
from babyteach.evaluate.variants import OFFICIAL, STRICT, describe
from babyteach.io import write_text_atomic
from babyteach.report.runs import (
    BENCHMARKS,
    METHOD_LABELS,
    MUTUAL_METHODS,
    RunId,
    aggregate_seeds,
    check_consistent,
    eval_frame,
    glue_tasks_included,
    load_glue,
    load_search,
    load_summary,
    parse_result_path,
    parse_search_path,
    read_result_csv,
    summary_frame,
)

log = logging.getLogger(__name__)

PathArg = str | PathLike[str]

#: The cited baselines of Table 1 (not produced here), with their source.
PUBLISHED = Path(__file__).with_name("published.yaml")

#: Student methods in the order of the paper's tables.
STUDENT_METHODS: tuple[str, ...] = layout.student_methods()
#: Methods trained with the baseline as a frozen teacher.
TEACHER_METHODS = layout.teacher_methods()
#: The family whose file name a missing result of each benchmark is given when no input names one.
DEFAULT_FAMILY = {"blimp": "blimp-filtered", "supplement": "blimp-supplement", "ewok": "ewok-filtered", "glue": "glue"}
#: Shown for a missing result in LaTeX (CSV: empty).
MISSING = "--"
#: Notes list at most this many absent files by name (the CSV lists all).
MAX_LISTED = 12


# --- a table as data, and its rendering ---------------------------------------------------------


@dataclass
class Cell:
    """One table cell: a mean (in the unit shown) with std and seed count, or a text."""

    mean: float = math.nan
    std: float = math.nan
    n: int = 0
    text: str | None = None  # shown instead of a number ("not run", "n/a", "yes"); CSV: empty
    missing: tuple[str, ...] = ()  # absent result files behind this cell
    mark: str = ""  # after the number in LaTeX (a footnote sign, e.g. ‡: explained in the notes)


@dataclass(frozen=True)
class Col:
    """A numeric or text column: ``kind`` pct | int | sci | float2 | float3 | change | text."""

    key: str
    header: str  # plain text; escaped for LaTeX
    kind: str = "pct"
    best: str | None = "max"  # max | min | None (never bold)


@dataclass
class Row:
    """A row: its labels (one per index column) and cells by column key."""

    labels: tuple[str, ...]
    cells: dict[str, Cell]
    group: str = ""  # rows of one group are compared for bold; a rule separates groups
    compare: bool = True  # False: never bold, never a runner-up (published rows)
    status: str = "ok"


@dataclass
class Table:
    """A whole table: what :func:`render` turns into LaTeX and CSV."""

    name: str
    caption: str
    index: tuple[str, ...]
    columns: list[Col]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    bold: str | None = "column"  # column | row | None
    extra_tabulars: list[Table] = field(default_factory=list)  # rendered below, same float
    section: str | None = None  # CSV ``section`` value when the float holds several tabulars


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "×": r"$\times$", "−": "--", "†": r"$^\dagger$", "‡": r"$^\ddagger$"}  # fmt: skip


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (and ±, ×, †, − as math)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _number(value: float, kind: str, latex: bool) -> str:
    if kind == "pct":
        return f"{value:.1f}"
    if kind == "int":
        return f"{value:,.0f}" if not latex else f"{value:,.0f}".replace(",", "{,}")
    if kind == "float2":
        return f"{value:.2f}"
    if kind == "float3":
        return f"{value:.3f}"
    if kind == "change":
        text = f"{value:+.1f} %"
        return text.replace("%", r"\%").replace("-", "$-$") if latex else text.replace("-", "−")
    if kind == "sci":
        mantissa, exponent = f"{value:.2e}".split("e")
        return rf"${mantissa}\times10^{{{int(exponent)}}}$" if latex else f"{mantissa}e{int(exponent)}"
    raise ValueError(f"unknown column kind {kind!r}")


def _display(cell: Cell, col: Col, latex: bool = True) -> str:
    if cell.text is not None:
        return latex_escape(cell.text) if latex else cell.text
    if col.kind == "text" or not math.isfinite(cell.mean):
        return MISSING if latex else ""
    text = _number(cell.mean, col.kind, latex)
    if cell.n > 1 and math.isfinite(cell.std) and col.kind in ("pct", "float2", "float3"):
        text += (r" $\pm$ " if latex else " ± ") + _number(cell.std, col.kind, latex)
    return text


def _rounded(cell: Cell, col: Col) -> float:
    return float(_number(cell.mean, col.kind, False).replace(",", "")) if col.kind in ("pct", "float2", "float3",
                                                                                         "int") else cell.mean


def _bold_sets(table: Table) -> tuple[set[tuple[int, str]], list[str]]:
    """Which (row, column) cells are bold, and notes on best values within the seed spread."""
    bold: set[tuple[int, str]] = set()
    notes: list[str] = []
    if table.bold is None:
        return bold, notes
    if table.bold == "column":
        comparisons = []
        for col in table.columns:
            if col.best is None:
                continue
            for group in dict.fromkeys(r.group for r in table.rows):
                members = [(i, col) for i, r in enumerate(table.rows) if r.group == group]
                comparisons.append((f"{col.header}" + (f", {group}" if group else ""), members))
    else:
        comparisons = [(" / ".join(r.labels), [(i, c) for c in table.columns if c.best is not None])
                       for i, r in enumerate(table.rows)]  # fmt: skip
    for where, members in comparisons:
        candidates = []
        for i, col in members:
            row, cell = table.rows[i], table.rows[i].cells.get(col.key)
            if row.compare and cell is not None and cell.text is None and math.isfinite(cell.mean):
                candidates.append((i, col, cell))
        if len(candidates) < 2:
            continue
        sign = 1 if candidates[0][1].best == "max" else -1
        candidates.sort(key=lambda c: -sign * _rounded(c[2], c[1]))
        top = _rounded(candidates[0][2], candidates[0][1])
        winners = [c for c in candidates if _rounded(c[2], c[1]) == top]
        bold |= {(i, col.key) for i, col, _ in winners}
        rest = [c for c in candidates if _rounded(c[2], c[1]) != top]
        if not rest:
            continue
        (wi, wcol, wcell), (ri, rcol, rcell) = winners[0], rest[0]
        spread = max((s for s in (wcell.std, rcell.std) if math.isfinite(s)), default=math.nan)
        gap = abs(wcell.mean - rcell.mean)
        if math.isfinite(spread) and gap < spread:
            name = (lambda i, c: " / ".join(table.rows[i].labels)) if table.bold == "column" else (
                lambda i, c: c.header)  # fmt: skip
            notes.append(f"{where}: the best, {name(wi, wcol)}, leads {name(ri, rcol)} by "
                         f"{_number(gap, wcol.kind, False)}, less than the seed std "
                         f"{_number(spread, wcol.kind, False)}; the difference is not resolved.")  # fmt: skip
    return bold, notes


def _tabular(table: Table) -> tuple[str, list[str]]:
    """The ``tabular`` of ``table`` (Styler.to_latex with booktabs rules) and its notes on close calls."""
    bold, notes = _bold_sets(table)
    headers = [latex_escape(h) for h in table.index] + [latex_escape(c.header) for c in table.columns]
    if len(set(headers)) != len(headers):
        raise ValueError(f"{table.name}: duplicate column headers {headers}")
    body = []
    for i, row in enumerate(table.rows):
        cells = []
        for col in table.columns:
            cell = row.cells.get(col.key, Cell())
            text = _display(cell, col)
            cells.append((rf"\textbf{{{text}}}" if (i, col.key) in bold else text) + latex_escape(cell.mark))
        body.append([latex_escape(x) for x in row.labels] + cells)
    frame = pd.DataFrame(body, columns=headers)
    align = "l" * len(table.index) + "".join("l" if c.kind == "text" else "r" for c in table.columns)
    latex = frame.style.hide(axis="index").to_latex(hrules=True, column_format=align)
    # a rule between row groups (Styler writes one line per row between \midrule and \bottomrule)
    lines = latex.splitlines()
    start = lines.index(r"\midrule") + 1
    out = lines[:start]
    for i, line in enumerate(lines[start : start + len(table.rows)]):
        if i and table.rows[i].group != table.rows[i - 1].group:
            out.append(r"\midrule")
        out.append(line)
    out += lines[start + len(table.rows) :]
    return "\n".join(out), notes


def render(table: Table) -> tuple[str, str]:
    """The LaTeX float and the CSV text of ``table``."""
    tabular, close_calls = _tabular(table)
    parts = [tabular]
    for extra in table.extra_tabulars:
        extra_tabular, extra_notes = _tabular(extra)
        close_calls += extra_notes
        parts += [r"\par\medskip", rf"\textit{{{latex_escape(extra.caption)}}}\par\smallskip", extra_tabular]
    notes = [*table.notes, *close_calls]
    lines = [r"\begin{table}", r"\centering", rf"\caption{{{latex_escape(table.caption)}}}",
             rf"\label{{tab:{table.name}}}", *parts]  # fmt: skip
    if notes:
        lines.append(r"\par\smallskip{\footnotesize\raggedright")
        lines += [latex_escape(n) + r"\par" for n in notes]
        lines.append("}")
    lines.append(r"\end{table}")
    tex = "\n".join(lines) + "\n"
    return tex, _csv(table)


def _csv(table: Table) -> str:
    records = []
    for row in table.rows:
        rec: dict[str, Any] = dict(zip(table.index, row.labels, strict=True))
        for col in table.columns:
            cell = row.cells.get(col.key, Cell())
            if col.kind == "text":
                rec[col.key] = cell.text or ""
                continue
            ok = cell.text is None and math.isfinite(cell.mean)
            rec[col.key] = cell.mean if ok else None
            rec[f"{col.key}_std"] = cell.std if ok and math.isfinite(cell.std) else None
            rec[f"{col.key}_n"] = pd.NA if not ok else int(cell.n)
        rec["status"] = row.status
        rec["missing"] = ";".join(sorted({m for c in row.cells.values() for m in c.missing}))
        records.append(rec)
    frames = [pd.DataFrame(records)]
    for column in [c for c in frames[0].columns if str(c).endswith("_n")]:
        frames[0][column] = frames[0][column].astype("Int64")
    for extra in table.extra_tabulars:  # further tabulars of the float, below, tagged by their section
        sub = pd.read_csv(io.StringIO(_csv(extra)), keep_default_na=False)
        sub.insert(0, "section", extra.section or extra.name)
        frames.append(sub)
    if len(frames) > 1:
        frames[0].insert(0, "section", table.section or table.name)
    return pd.concat(frames, ignore_index=True).to_csv(index=False)


def write(table: Table, out_tex: PathArg, out_csv: PathArg) -> Table:
    """Render ``table`` and write both files atomically; returns the table."""
    tex, csv = render(table)
    write_text_atomic(out_tex, tex)
    write_text_atomic(out_csv, csv)
    return table


# --- shared helpers -----------------------------------------------------------------------------


def _paths(paths: PathArg | Iterable[PathArg] | None) -> list[Path]:
    if paths is None:
        return []
    if isinstance(paths, str | PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _results_root(path: PathArg, corpus: str) -> PurePath:
    """The folder above ``<corpus>/{eval,train}`` in ``path`` (``results`` in the workflow)."""
    parts = PurePath(path).parts
    idx = max(i for i, p in enumerate(parts) if p == corpus)
    return PurePath(*parts[:idx]) if idx else PurePath(".")


def _human(n: float) -> str:
    """A parameter count in words: 124.6M, 43.98K."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}" if abs(n) >= 10 * scale else f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def _seeds_caption(cells: Iterable[Cell]) -> str:
    counts = {c.n for c in cells if c.text is None and c.n > 0}
    if not counts:
        return "No results."
    if max(counts) == 1:
        return "One seed (n = 1), so no spread is shown."
    if len(counts) == 1:
        return f"Mean ± std over {max(counts)} seeds."
    return f"Mean ± std over {max(counts)} seeds ({min(counts)} where runs are missing, see notes)."


def _missing_note(tables: Iterable[Table] | Table) -> list[str]:
    tables = [tables] if isinstance(tables, Table) else list(tables)
    paths = sorted({m for t in tables for r in t.rows for c in r.cells.values() for m in c.missing})
    if not paths:
        return []
    by_run: dict[str, dict[str, list[str]]] = {}
    for p in paths:
        try:
            rec = parse_result_path(p)
        except InputError:
            by_run.setdefault(str(p), {})
            continue
        models = by_run.setdefault(f"{rec.run.corpus}/{rec.run.name}", {})
        models.setdefault(rec.model or "run", []).append(rec.family or rec.file)
    names = [run + (" (" + "; ".join(f"{m}: {', '.join(sorted(f))}" for m, f in sorted(models.items())) + ")"
                    if models else "") for run, models in by_run.items()]  # fmt: skip
    listed = "; ".join(names[:MAX_LISTED])
    more = f"; and {len(names) - MAX_LISTED} more runs (all files in the CSV column 'missing')" if len(
        names) > MAX_LISTED else ""  # fmt: skip
    return [(f"Missing results, shown as {MISSING} and never counted as 0 (a cell with a value but an absent "
             f"seed averages the seeds present): {listed}{more}.")]  # fmt: skip


def _one(values: Iterable[Any], what: str, frame: pd.DataFrame, column: str) -> Any:
    values = list(dict.fromkeys(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))))
    if len(values) > 1:
        a = frame[frame[column] == values[0]].iloc[0]["path"]
        b = frame[frame[column] == values[1]].iloc[0]["path"]
        raise InputError(f"the inputs mix {what}s: {a} has {values[0]!r} but {b} has {values[1]!r}; pass one "
                         f"{what} per table (option {column!r})")  # fmt: skip
    return values[0] if values else None


def _eval_inputs(paths: Iterable[PathArg], benchmarks: Sequence[str], level: str = "overall",
                 variant: str = STRICT) -> pd.DataFrame:  # fmt: skip
    """The eval files of ``benchmarks`` among ``paths``, validated, zero-shot scores of scoring ``variant``,
    one data version per benchmark."""
    frame = eval_frame(_paths(paths), level, variant)
    dropped = frame[~frame["benchmark"].isin(benchmarks)]
    if len(dropped):
        log.info("ignoring %d inputs of other benchmarks (%s)", dropped["path"].nunique(),
                 ", ".join(sorted(dropped["benchmark"].unique())))  # fmt: skip
    frame = frame[frame["benchmark"].isin(benchmarks)].reset_index(drop=True)
    check_consistent(frame)
    return frame


def _select_runs(frame: pd.DataFrame, peers: int | None, alpha: float | None, methods: Sequence[str]) -> tuple[
        pd.DataFrame, int | None, float | None]:  # fmt: skip
    """Rows of the baseline and of ``methods`` at one peer count and alpha (defaults: largest / only one)."""
    frame = frame[frame["method"].isin(["baseline", *methods])]
    students = frame[frame["method"] != "baseline"]
    if peers is None and len(students):
        peers = int(students["peers"].max())
    if alpha is None:
        mutual = students[students["method"].isin(MUTUAL_METHODS)]
        alpha = _one(mutual["alpha"], "alpha", mutual, "alpha")
    keep = (frame["method"] == "baseline") | (
        (frame["peers"] == peers) & (~frame["method"].isin(MUTUAL_METHODS) | (frame["alpha"] == alpha))
    )  # fmt: skip
    dropped = frame[~keep.fillna(False).astype(bool)]
    if len(dropped):
        log.info("ignoring %d inputs of other peer counts or alphas", len(dropped))
    kept = frame[keep.fillna(False).astype(bool)].reset_index(drop=True)
    if kept.empty:
        raise InputError(f"none of the inputs is a result of the baseline or of {', '.join(methods)} at {peers} peers"
                         + (f" and alpha {alpha:g}" if alpha is not None else "") + "; check the listed paths")
    return kept, peers, alpha


def _run_id(corpus: str, method: str, peers: int | None, alpha: float | None, seed: int) -> RunId:
    if method == "baseline":
        return RunId(corpus, method, None, None, seed)
    return RunId(corpus, method, peers, alpha if method in MUTUAL_METHODS else None, seed)


def _complete(frame: pd.DataFrame, corpus: str, root: PurePath, methods: Sequence[str], peers: int | None,
              alpha: float | None, seeds: Sequence[int], benchmarks: Sequence[str]) -> pd.DataFrame:
    """``frame`` plus a missing row for every expected (method, model, seed, benchmark) without a result."""
    family = {b: _one(frame.loc[frame["benchmark"] == b, "family"], "family", frame, "family") or DEFAULT_FAMILY[b]
              for b in benchmarks}  # fmt: skip
    have = set(zip(frame["method"], frame["model"], frame["seed"].astype(int), frame["benchmark"], strict=True))
    have_ok = set(zip(*(frame.loc[frame["status"] == "ok", c] for c in ("method", "model", "seed", "benchmark")),
                      strict=True))  # fmt: skip
    extra = []
    for method in methods:
        for seed in seeds:
            run = _run_id(corpus, method, peers, alpha, int(seed))
            for model in run.models:
                for bench in benchmarks:
                    key = (method, model, int(seed), bench)
                    if key in have_ok or key in have:
                        continue
                    extra.append({"path": str(run.eval_path(model, family[bench], root)), "corpus": corpus,
                                  "method": method, "peers": run.peers, "alpha": run.alpha, "seed": int(seed),
                                  "run": run.name, "group": run.group, "model": model, "family": family[bench],
                                  "benchmark": bench, "key": "macro", "score": math.nan, "status": "missing"})  # fmt: skip
    if not extra:
        return frame
    return pd.concat([frame, pd.DataFrame(extra).astype({"peers": "Int64", "seed": "Int64"})], ignore_index=True)


def _cell(agg: pd.DataFrame, scale: float = 100.0, **key: Any) -> Cell:
    """The aggregate row matching ``key`` as a cell (values scaled to percent)."""
    mask = pd.Series(True, index=agg.index)
    for column, value in key.items():
        mask &= agg[column] == value
    part = agg[mask]
    if part.empty:
        return Cell()
    row = part.iloc[0]
    return Cell(row["mean"] * scale, row["std"] * scale, int(row["n_seeds"]), None, tuple(row["missing"]))


def _seeds(frame: pd.DataFrame, seeds: Sequence[int] | None) -> list[int]:
    if seeds is not None:
        return [int(s) for s in seeds]
    return sorted({int(s) for s in frame["seed"].dropna()})


def _corpus(frame: pd.DataFrame) -> str:
    return _one(frame["corpus"], "corpus", frame, "corpus")


def _pick_student(agg: pd.DataFrame, method: str, models: Sequence[str], student: str,
                  benchmarks: Sequence[str]) -> tuple[str, str | None]:  # fmt: skip
    """The peer shown for ``method``: ``student`` itself, or the best mean over ``benchmarks`` ("best")."""
    if student != "best":
        if student not in models:
            raise InputError(f"option student={student!r}: the runs have models {', '.join(models)}")
        return student, None
    scores = {}
    for model in models:
        part = agg[(agg["method"] == method) & (agg["model"] == model) & agg["benchmark"].isin(benchmarks)]
        means = part["mean"].dropna()
        if len(means) == len(benchmarks):
            scores[model] = means.mean()
    if not scores:
        return models[0], None
    best = max(scores, key=lambda m: (scores[m], -models.index(m)))
    return best, f"{METHOD_LABELS[method]}: {best} (highest mean over {', '.join(BENCHMARKS[b] for b in benchmarks)})"


# --- Table 1: main results ----------------------------------------------------------------------


def _load_published(path: PathArg) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: published-baselines file missing") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tracks"), dict) or not isinstance(
            data.get("source"), dict):  # fmt: skip
        raise InputError(f"{path}: expected 'source' and 'tracks' mappings")
    for track, models in data["tracks"].items():
        for model, values in (models or {}).items():
            for key, value in (values or {}).items():
                if key not in (*BENCHMARKS, "macro") or not (value is None or isinstance(value, int | float)):
                    raise InputError(f"{path}: tracks.{track}.{model}.{key} must be a benchmark key with a number "
                                     "or null")  # fmt: skip
    return data


def _track(corpus: str) -> str:
    return corpus.split("-", 1)[1]


def _glue_coverage(frame: pd.DataFrame) -> list[str] | None:
    """The tasks the (Super)GLUE results among ``frame`` scored (one list: check_consistent refuses a
    mix), or None without a GLUE result."""
    ok = frame[(frame["benchmark"] == "glue") & (frame["status"] == "ok")]
    return glue_tasks_included(load_glue(ok["path"].iloc[0])) if len(ok) else None


def table1(eval: Iterable[PathArg], out_tex: PathArg, out_csv: PathArg, *, published: PathArg = PUBLISHED,
           tracks: Sequence[str] = ("10M", "100M"), benchmarks: Sequence[str] = ("blimp", "supplement", "ewok", "glue"),
           seeds: Sequence[int] | None = None, peers: int | None = None, alpha: float | None = None,
           student: str = "best") -> Table:  # fmt: skip
    """Table 1: RoBERTa-base and DWML per track beside the organisers' published baselines.

    ``eval``: zero-shot and ``glue.json`` files of ``baseline/seed-<s>/teacher`` and of every peer
    of ``dwml/peers-<p>/alpha-<a>/seed-<s>``, for each track run (track from the corpus in the
    path). Tracks in ``tracks`` without inputs show "not run". Like is compared with like: the
    benchmark columns and the macro average are our ``official`` scores (the BabyLM 2024 pipeline's
    protocol, the one the published rows were measured with); the strict ``pll-word-l2r`` scores of
    the same files stand in the "(strict)" columns, which the published rows have no value for.
    "GLUE tasks" says how many of the (Super)GLUE tasks our GLUE macro is over; fewer than all of
    them marks our GLUE and macro cells ‡ and the notes name the tasks. The macro column is the mean
    of the benchmark columns, per seed, then over seeds. Published rows come from ``published``.
    """
    zero_shot = [b for b in benchmarks if b != "glue"]
    frame = _eval_inputs(eval, benchmarks, variant=OFFICIAL)
    strict = _eval_inputs(eval, zero_shot, variant=STRICT)
    pub = _load_published(published)
    glue_tasks = _glue_coverage(frame)
    partial_glue = glue_tasks is not None and len(glue_tasks) < len(GLUE_TASKS)
    coverage = f"{len(glue_tasks)}/{len(GLUE_TASKS)}" if glue_tasks is not None else ""
    rows: list[Row] = []
    notes: list[str] = []
    columns = [Col(b, BENCHMARKS[b]) for b in benchmarks]
    if "glue" in benchmarks:
        columns.append(Col("glue_tasks", "GLUE tasks", "text", None))
    columns += [Col("macro", "Macro avg.")] + [Col(f"{b}_strict", f"{BENCHMARKS[b]} (strict)") for b in zero_shot]
    for track in tracks:
        part = frame[frame["corpus"].map(_track) == track]
        group = f"{track} words"
        if part.empty:
            for method in ("baseline", "dwml"):
                rows.append(Row((track, METHOD_LABELS[method]), {c.key: Cell(text="not run") for c in columns},
                                group, status="not run"))  # fmt: skip
        else:
            corpus = _corpus(part)
            part, p, a = _select_runs(part, peers, alpha, ["dwml"])
            if p is None:
                raise InputError(f"table1, track {track}: no DWML results among the inputs; list them, or the "
                                 "missing runs cannot be named")  # fmt: skip
            root = _results_root(part["path"].iloc[0], corpus)
            track_seeds = _seeds(part, seeds)
            part = _complete(part, corpus, root, ["baseline", "dwml"], p, a, track_seeds, benchmarks)
            macro = (part[part["benchmark"].isin(benchmarks)]
                     .groupby(["method", "model", "seed"], sort=False)
                     .agg(score=("score", lambda s: s.mean() if s.notna().all() and len(s) == len(benchmarks)
                                 else math.nan), path=("path", lambda s: ";".join(s))).reset_index())  # fmt: skip
            macro["benchmark"] = "macro"
            agg = aggregate_seeds(pd.concat([part, macro], ignore_index=True), ["method", "model", "benchmark"])
            strict_part = strict[strict["corpus"].map(_track) == track]
            if len(strict_part):
                strict_part, _, _ = _select_runs(strict_part, p, a, ["dwml"])
                strict_part = _complete(strict_part, corpus, root, ["baseline", "dwml"], p, a, track_seeds, zero_shot)
                strict_agg = aggregate_seeds(strict_part, ["method", "model", "benchmark"])
                strict_agg["benchmark"] = strict_agg["benchmark"] + "_strict"
                agg = pd.concat([agg, strict_agg], ignore_index=True)
            dwml_models = RunId(corpus, "dwml", p, a, 0).models
            model, why = _pick_student(agg, "dwml", list(dwml_models), student, benchmarks)
            if why:
                notes.append(f"{track}: DWML row shows {why}.")
            for method, mdl, label in (("baseline", "teacher", "RoBERTa-base"), ("dwml", model,
                                                                                 f"DWML ({model}, {p} peers)")):
                cells = {c.key: _cell(agg, method=method, model=mdl, benchmark=c.key) for c in columns
                         if c.key != "glue_tasks"}  # fmt: skip
                for c in cells.values():  # the macro of a seed with any benchmark missing names those files
                    c.missing = tuple(sorted({x for m in c.missing for x in m.split(";")
                                              if not Path(x).exists()}))  # fmt: skip
                if "glue" in benchmarks:
                    cells["glue_tasks"] = Cell(text=coverage)
                    if partial_glue:
                        cells["glue"].mark = cells["macro"].mark = "‡"
                rows.append(Row((track, label), cells, group))
        for name, values in (pub["tracks"].get(track) or {}).items():
            cells = {}
            for c in columns:
                value = (values or {}).get(c.key)
                cells[c.key] = Cell(float(value), n=1) if value is not None else Cell(text="n/a")
            cells.update({f"{b}_strict": Cell(text="") for b in zero_shot})
            if "glue" in benchmarks:
                cells["glue_tasks"] = Cell(text=f"{len(GLUE_TASKS)}/{len(GLUE_TASKS)}")
            rows.append(Row((track, f"{name}†"), cells, group, compare=False, status="published, not produced here"))
    src = pub["source"]
    unverified = any(c.text == "n/a" for r in rows if not r.compare for c in r.cells.values())
    shown = ", ".join(BENCHMARKS[b] for b in zero_shot)
    notes.insert(0, f"† Published by the BabyLM 2024 organisers, not produced here: {src.get('citation', '').strip()} "
                    + ("n/a: not verified offline. " if unverified else "")
                    + "Bold marks the best row produced here.")  # fmt: skip
    if zero_shot:
        notes.insert(1, f"{shown} and the macro average: scoring {describe(OFFICIAL)}, as in the published rows. "
                        f"{shown} (strict): scoring {describe(STRICT)}, this project's metric; the published rows "
                        "have no such value.")  # fmt: skip
    if partial_glue:
        notes.append(f"‡ Our (Super)GLUE macro is over {coverage} tasks ({', '.join(glue_tasks)}), not the "
                     f"{len(GLUE_TASKS)}-task macro of the published rows, and so is our macro average that includes "
                     "it: these cells are not comparable with the published ones.")  # fmt: skip
    if not frame.empty:
        fams = frame.groupby("benchmark")["family"].first()
        notes.append("Ours: " + ", ".join(f"{BENCHMARKS[b]} = {fams[b]}" for b in benchmarks if b in fams) + ".")
    table = Table("table1", "", ("Track", "Model"), columns, rows, notes)
    table.caption = ("Main results (accuracy %, GLUE: task metric %) of RoBERTa-base and DWML beside the "
                     "published BabyLM 2024 baselines, compared on the pipeline's own scoring (official: mean PLL "
                     "after the end-of-sentence token, ties correct); the (strict) columns score the same models "
                     "with pll-word-l2r (summed PLL-word-l2r, ties wrong). " + _seeds_caption(
                         c for r in rows if r.compare for c in r.cells.values()))  # fmt: skip
    table.notes = [*table.notes, *_missing_note(table)]
    return write(table, out_tex, out_csv)


# --- Table 2: methods x peers -------------------------------------------------------------------


def table2(eval: Iterable[PathArg], search: PathArg, out_tex: PathArg, out_csv: PathArg, *,
           seeds: Sequence[int] | None = None, alpha: float | None = None,
           benchmarks: Sequence[str] = ("blimp", "supplement", "ewok"),
           methods: Sequence[str] = STUDENT_METHODS, variant: str = STRICT) -> Table:  # fmt: skip
    """Table 2: every method's peers (sizes from ``search``) on BLiMP, supplement and EWoK.

    One block per benchmark: a row per method (Teacher yes/no, Peer 1..p, Best = the peer with
    the highest mean) and RoBERTa-base (its score in the Best column), scored with ``variant``.
    Bold: best per column per block.
    """
    found = load_search(search)
    p = parse_search_path(search)
    if len(found["peers"]) != p:
        raise InputError(f"{search}: the file is named for {p} peers but holds {len(found['peers'])}")
    frame = _eval_inputs(eval, benchmarks, variant=variant)
    if frame.empty:
        raise InputError("table2: no zero-shot results among the inputs")
    corpus = _corpus(frame)
    frame, p, alpha = _select_runs(frame, p, alpha, methods)
    root = _results_root(frame["path"].iloc[0], corpus)
    frame = _complete(frame, corpus, root, ["baseline", *methods], p, alpha, _seeds(frame, seeds), benchmarks)
    agg = aggregate_seeds(frame, ["method", "model", "benchmark"])
    fams = frame.groupby("benchmark")["family"].first()
    peer_cols = [Col(f"peer_{i}", f"Peer {i} ({_human(s['params'])})") for i, s in enumerate(found["peers"], 1)]
    columns = [Col("teacher", "Teacher", "text", None), *peer_cols, Col("best", "Best")]
    rows = []
    for bench in benchmarks:
        group = f"{BENCHMARKS[bench]} ({fams.get(bench, DEFAULT_FAMILY[bench])})"
        for method in methods:
            cells = {"teacher": Cell(text="yes" if method in TEACHER_METHODS else "no")}
            for i, col in enumerate(peer_cols, 1):
                cells[col.key] = _cell(agg, method=method, model=f"peer-{i}", benchmark=bench)
            present = [cells[c.key] for c in peer_cols if math.isfinite(cells[c.key].mean)]
            best = max(present, key=lambda c: c.mean) if present else Cell()
            cells["best"] = Cell(best.mean, best.std, best.n, None,
                                 tuple(sorted({m for c in peer_cols for m in cells[c.key].missing})))  # fmt: skip
            rows.append(Row((group, METHOD_LABELS[method]), cells, group))
        base = _cell(agg, method="baseline", model="teacher", benchmark=bench)
        rows.append(Row((group, f"RoBERTa-base ({_human(found['teacher']['params'])})"),
                        {"teacher": Cell(text=""), **{c.key: Cell(text="") for c in peer_cols}, "best": base},
                        group))  # fmt: skip
    table = Table("table2", "", ("Benchmark", "Method"), columns, rows)
    table.caption = (f"Accuracy (%) of each method's students, {p} peers" + (f", alpha = {alpha:g}" if alpha else "")
                     + f" ({corpus}; scoring {describe(variant)}). Peer sizes "
                     "from the architecture search; Best: the best peer. " + _seeds_caption(
                         c for r in rows for c in r.cells.values()))  # fmt: skip
    table.notes = [("Teacher: trained with the RoBERTa-base baseline as a frozen teacher (KD, KD_DWML). "
                    "Bold: best per column within a benchmark."), *_missing_note(table)]  # fmt: skip
    return write(table, out_tex, out_csv)


# --- Table 3: pretraining hyperparameters and searched architectures ----------------------------

#: Training config keys shown in Table 3, with their labels.
TRAIN_KEYS = {
    "lr": "Peak learning rate", "batch_size": "Batch size (blocks)", "grad_accum": "Gradient accumulation",
    "block_size": "Block size (tokens)", "epochs": "Epochs", "token_budget": "Token budget",
    "warmup_fraction": "Warmup fraction", "weight_decay": "Weight decay", "adam_beta1": "Adam beta1",
    "adam_beta2": "Adam beta2", "adam_eps": "Adam epsilon", "clip_norm": "Gradient clipping (norm)",
    "mask_prob": "Masking probability", "dropout": "Dropout", "precision": "Precision",
}  # fmt: skip


def _fmt_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_fmt_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt_value(v) for v in value)
    return str(value)


def _same_config(items: Sequence[tuple[Path, Mapping[str, Any]]], ignore: Iterable[str], what: str) -> Mapping:
    ignore = set(ignore)
    first_path, first = items[0]
    for path, cfg in items[1:]:
        for key in sorted(set(first) | set(cfg)):
            if key not in ignore and first.get(key) != cfg.get(key):
                raise InputError(f"refusing to mix {what}: {first_path} has {key}={first.get(key)!r} but {path} has "
                                 f"{key}={cfg.get(key)!r}")  # fmt: skip
    return first


def table3(search: PathArg | Iterable[PathArg], out_tex: PathArg, out_csv: PathArg, *,
           summaries: Iterable[PathArg] | None = None) -> Table:  # fmt: skip
    """Table 3: the searched architectures for every peer count (and the pretraining hyperparameters).

    ``search``: ``results/search/peers-<p>.json`` files. ``summaries``: ``train_summary.json`` files
    whose ``config`` (all equal but for the seed) and per-method options give the hyperparameters.
    """
    files = sorted(_paths(search), key=parse_search_path)
    if not files:
        raise InputError("table3: no architecture-search results given")
    loaded = [(f, load_search(f)) for f in files]
    teacher = _same_config([(f, d["teacher"]) for f, d in loaded], (), "teacher architectures")
    columns = [Col("layers", "Layers", "int", None), Col("heads", "Heads", "int", None),
               Col("hidden", "Hidden", "int", None), Col("parameters", "Parameters", "int", None),
               Col("target", "Target", "int", None), Col("rel_error", "Rel. error (%)", "float2", None)]  # fmt: skip

    def arch_cells(arch: Mapping, params: float, target: float, rel: float) -> dict[str, Cell]:
        return {"layers": Cell(arch["layers"], n=1), "heads": Cell(arch["heads"], n=1),
                "hidden": Cell(arch["hidden"], n=1), "parameters": Cell(params, n=1), "target": Cell(target, n=1),
                "rel_error": Cell(rel * 100, n=1)}  # fmt: skip

    rows = [Row(("--", "RoBERTa-base (teacher)"), arch_cells(teacher["arch"], teacher["params"], math.nan, math.nan),
                "teacher")]  # fmt: skip
    rows[0].cells["target"] = Cell(text="")
    rows[0].cells["rel_error"] = Cell(text="")
    for path, data in loaded:
        p = parse_search_path(path)
        for peer in data["peers"]:
            rows.append(Row((str(p), f"Peer {peer['peer']}"),
                            arch_cells(peer["arch"], peer["params"], peer["target"], peer["rel_error"]), f"p{p}"))  # fmt: skip
    table = Table("table3", "Pretraining setup: searched student architectures for each number of peers p "
                  "(target N/(i+1) parameters for peer i; relative error |params - target| / target) and the "
                  "pretraining hyperparameters.", ("Peers p", "Model"), columns, rows, bold=None,
                  section="architectures")  # fmt: skip
    summary_files = _paths(summaries)
    if summary_files:
        loaded_s = [(f, load_summary(f)) for f in summary_files]
        for f, _ in loaded_s:
            parse_result_path(f)  # a summary of this workflow's layout
        cfg = _same_config([(f, d["config"]) for f, d in loaded_s], ("seed", "device", "compile", "checkpoint_every",
                                                                     "log_every", "eval_every"), "training configs")  # fmt: skip
        hyper = [Row((label,), {"value": Cell(text=_fmt_value(cfg[key]))}) for key, label in TRAIN_KEYS.items()
                 if key in cfg]  # fmt: skip
        seen: dict[str, tuple[Path, Mapping]] = {}
        for f, d in loaded_s:
            if d["method"] in seen:
                _same_config([seen[d["method"]], (f, d["method_options"])], (), f"{d['method']} options")
            else:
                seen[d["method"]] = (f, d["method_options"])
        for method in (m for m in METHOD_LABELS if m in seen and seen[m][1]):
            hyper.append(Row((f"{METHOD_LABELS[method]} options",), {"value": Cell(text=_fmt_value(seen[method][1]))}))
        seeds = sorted({int(d["config"]["seed"]) for _, d in loaded_s})
        hyper.append(Row(("Seeds",), {"value": Cell(text=", ".join(map(str, seeds)))}))
        table.extra_tabulars.append(Table("table3-hyper", "Pretraining hyperparameters", ("Hyperparameter",),
                                          [Col("value", "Value", "text", None)], hyper, bold=None,
                                          section="hyperparameters"))  # fmt: skip
    else:
        table.notes.append("Pretraining hyperparameters: no training summaries were given.")
    return write(table, out_tex, out_csv)


# --- Table 4: fine-tuning hyperparameters -------------------------------------------------------

#: Fine-tuning config keys shown in Table 4, with their labels.
FINETUNE_KEYS = {
    "lr": "Peak learning rate (linear decay)", "batch_size": "Batch size", "max_epochs": "Maximum epochs",
    "patience": "Patience (epochs)", "max_length": "Maximum length (tokens)", "warmup_fraction": "Warmup fraction",
    "weight_decay": "Weight decay", "clip_norm": "Gradient clipping (norm)", "seed": "Seed",
    "max_train_examples": "Train examples per task", "max_eval_examples": "Valid examples per task",
}  # fmt: skip
_METRIC_NAMES = {"mcc": "MCC", "f1": "F1", "accuracy": "accuracy"}


def table4(glue: Iterable[PathArg], out_tex: PathArg, out_csv: PathArg) -> Table:
    """Table 4: the (Super)GLUE fine-tuning hyperparameters and the metric per task, from ``glue.json`` files."""
    files = _paths(glue)
    if not files:
        raise InputError("table4: no glue.json results given")
    loaded = [(f, load_glue(f)) for f in files]
    cfg = _same_config([(f, d.get("config") or {}) for f, d in loaded], ("device", "tasks"), "fine-tuning configs")
    rows = []
    for key, label in FINETUNE_KEYS.items():
        if key in cfg:
            value = cfg[key]
            text = "all" if value is None and key.startswith("max_") and "examples" in key else _fmt_value(value)
            rows.append(Row((label,), {"value": Cell(text=text)}))
    tasks: dict[str, str] = {}
    absent: set[str] = set()
    for _, d in loaded:
        for name, entry in d["tasks"].items():
            if entry["status"] == "ok":
                tasks.setdefault(name, _METRIC_NAMES.get(entry["metric"], entry["metric"]))
            else:
                absent.add(name)
    rows.append(Row(("Tasks (metric)",), {"value": Cell(text=", ".join(f"{t} ({m})" for t, m in tasks.items()))}))
    table = Table("table4", f"(Super)GLUE fine-tuning hyperparameters ({len(files)} fine-tuned models; one "
                  "fine-tuning run per model and task, scored on the valid split).", ("Hyperparameter",),
                  [Col("value", "Value", "text", None)], rows, bold=None)  # fmt: skip
    if absent - set(tasks):
        table.notes.append("Tasks without data files (not evaluated): " + ", ".join(sorted(absent - set(tasks))) + ".")
    return write(table, out_tex, out_csv)


# --- Table 5: corpus contents -------------------------------------------------------------------

_SPLITS = ("train", "dev", "test")


def table5(corpus: PathArg | Iterable[PathArg], out_tex: PathArg, out_csv: PathArg) -> Table:
    """Table 5: words per domain and split of each ``results/<c>/stats/corpus.csv``."""
    rows = []
    files = _paths(corpus)
    if not files:
        raise InputError("table5: no corpus.csv given")
    for path in files:
        frame = read_result_csv(path, "corpus statistics missing; run the data stage")
        need = {"domain", "split", "words"}
        if not need <= set(frame.columns) or frame.empty:
            raise InputError(f"{path}: expected columns domain, split, lines, words, found {', '.join(frame.columns)}")
        if not set(frame["split"]) <= set(_SPLITS) or frame.duplicated(["domain", "split"]).any():
            raise InputError(f"{path}: splits must be {', '.join(_SPLITS)}, one row per domain and split")
        if not pd.api.types.is_numeric_dtype(frame["words"]) or (frame["words"] < 0).any():
            raise InputError(f"{path}: 'words' must be non-negative integers")
        name = path.parent.parent.name if path.parent.name == "stats" else str(path)
        pivot = frame.pivot(index="domain", columns="split", values="words")
        for domain in list(pivot.index) + ["Total"]:
            values = pivot.sum() if domain == "Total" else pivot.loc[domain]
            cells = {s: Cell(float(values[s]), n=1) if s in values and pd.notna(values[s]) else Cell()
                     for s in _SPLITS}  # fmt: skip
            cells["total"] = Cell(float(values.sum()), n=1)
            rows.append(Row((name, domain), cells, name))
    columns = [Col(s, f"{s.capitalize()} words", "int", None) for s in _SPLITS] + [Col("total", "Total", "int", None)]
    table = Table("table5", "Corpus contents: words (whitespace-separated) per domain and split after cleaning.",
                  ("Corpus", "Domain"), columns, rows, bold=None)  # fmt: skip
    return write(table, out_tex, out_csv)


# --- Tables 6/7/8: per phenomenon, per task, per domain -----------------------------------------


def _per_group(name: str, benchmark: str, what: str, eval: Iterable[PathArg], out_tex: PathArg, out_csv: PathArg,
               seeds: Sequence[int] | None, peers: int | None, alpha: float | None, student: str,
               methods: Sequence[str], variant: str) -> Table:  # fmt: skip
    paths = _paths(eval)
    overall = _eval_inputs(paths, [benchmark], variant=variant)
    if overall.empty:
        raise InputError(f"{name}: no {BENCHMARKS[benchmark]} results among the inputs")
    corpus = _corpus(overall)
    overall, p, alpha = _select_runs(overall, peers, alpha, methods)
    all_methods = ["baseline", *methods]
    root = _results_root(overall["path"].iloc[0], corpus)
    overall = _complete(overall, corpus, root, all_methods, p, alpha, _seeds(overall, seeds), [benchmark])
    agg = aggregate_seeds(overall, ["method", "model", "benchmark"])
    level = "task" if benchmark == "supplement" else "group"
    detail = eval_frame([f for f in overall.loc[overall["status"] == "ok", "path"]], level, variant)
    chosen, notes = {}, []
    chosen["baseline"] = "teacher"
    for method in methods:
        models = list(_run_id(corpus, method, p, alpha, 0).models)
        chosen[method], why = _pick_student(agg, method, models, student, [benchmark])
        if why:
            notes.append(f"{why}.")
    keys = sorted(detail["key"].dropna().unique())
    columns = [Col(m, METHOD_LABELS[m]) for m in all_methods]
    rows = []
    detail_agg = aggregate_seeds(detail, ["method", "model", "key"])
    for key in keys:
        cells = {}
        for m in all_methods:
            cell = _cell(detail_agg, method=m, model=chosen[m], key=key)
            cell.missing = _cell(agg, method=m, model=chosen[m], benchmark=benchmark).missing
            cells[m] = cell
        rows.append(Row((key,), cells, "groups"))
    rows.append(Row(("Macro average",), {m: _cell(agg, method=m, model=chosen[m], benchmark=benchmark)
                                         for m in all_methods}, "macro"))  # fmt: skip
    fam = overall["family"].dropna().iloc[0]
    table = Table(name, f"{BENCHMARKS[benchmark]} ({fam}) accuracy (%) per {what}, per method ({corpus}, {p} peers"
                  + (f", alpha = {alpha:g}" if alpha else "") + f"; scoring {describe(variant)}"
                  + "); students: " + ("the best peer per method" if student == "best" else student) + ". "
                  + _seeds_caption(c for r in rows for c in r.cells.values()),
                  (what.capitalize(),), columns, rows, bold="row")  # fmt: skip
    unit = {"blimp": "UIDs", "supplement": "tasks", "ewok": "domains"}[benchmark]
    table.notes = [f"Bold: best method per row. Macro average: the mean over all {unit} (the BabyLM aggregate).",
                   *notes, *_missing_note(table)]  # fmt: skip
    return write(table, out_tex, out_csv)


def table6(eval: Iterable[PathArg], out_tex: PathArg, out_csv: PathArg, *, seeds: Sequence[int] | None = None,
           peers: int | None = None, alpha: float | None = None, student: str = "best",
           methods: Sequence[str] = STUDENT_METHODS, variant: str = STRICT) -> Table:  # fmt: skip
    """Table 6: BLiMP accuracy per phenomenon (``linguistics_term``), per method, scored with ``variant``."""
    return _per_group("table6", "blimp", "phenomenon", eval, out_tex, out_csv, seeds, peers, alpha, student, methods,
                      variant)


def table7(eval: Iterable[PathArg], out_tex: PathArg, out_csv: PathArg, *, seeds: Sequence[int] | None = None,
           peers: int | None = None, alpha: float | None = None, student: str = "best",
           methods: Sequence[str] = STUDENT_METHODS, variant: str = STRICT) -> Table:  # fmt: skip
    """Table 7: BLiMP supplement accuracy per task, per method, scored with ``variant``."""
    return _per_group("table7", "supplement", "task", eval, out_tex, out_csv, seeds, peers, alpha, student, methods,
                      variant)


def table8(eval: Iterable[PathArg], out_tex: PathArg, out_csv: PathArg, *, seeds: Sequence[int] | None = None,
           peers: int | None = None, alpha: float | None = None, student: str = "best",
           methods: Sequence[str] = STUDENT_METHODS, variant: str = STRICT) -> Table:  # fmt: skip
    """Table 8: EWoK accuracy per domain, per method, scored with ``variant``."""
    return _per_group("table8", "ewok", "domain", eval, out_tex, out_csv, seeds, peers, alpha, student, methods,
                      variant)


# --- Table 9: compute ---------------------------------------------------------------------------


def table9(summaries: Iterable[PathArg], out_tex: PathArg, out_csv: PathArg, *, seeds: Sequence[int] | None = None,
           peers: int | None = None, alpha: float | None = None,
           methods: Sequence[str] = STUDENT_METHODS) -> Table:  # fmt: skip
    """Table 9: GPU utilisation, training FLOPs per peer and in total, wall time, tokens, relative to RoBERTa-base.

    ``summaries``: ``train_summary.json`` of the baseline and of each method's run at one peer
    count, every seed. GPU utilisation is "n/a" for runs on CPU and for summaries that predate
    GPU logging (the notes say which); FLOPs are the analytic training FLOPs of the students
    (``training_flops``), the frozen teacher's forward passes of KD/KD_DWML not included.
    """
    frame = summary_frame(_paths(summaries))
    if frame.empty:
        raise InputError("table9: no training summaries given")
    corpus = _corpus(frame)
    frame, p, alpha = _select_runs(frame, peers, alpha, methods)
    all_methods = ["baseline", *methods]
    seeds = _seeds(frame, seeds)
    root = _results_root(frame["path"].iloc[0], corpus)
    have = set(zip(frame["method"], frame["seed"].astype(int), strict=True))
    extra = []
    for method in all_methods:
        for seed in seeds:
            if (method, seed) not in have:
                run = _run_id(corpus, method, p, alpha, seed)
                extra += [{"path": str(run.summary_path(root)), "method": method, "seed": seed, "model": m,
                           "run": run.name, "status": "missing"} for m in run.models]  # fmt: skip
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
    per_run = frame.groupby(["method", "seed", "path"], sort=False).agg(
        flops=("training_flops", lambda s: s.sum() if s.notna().all() else math.nan),
        wall_h=("wall_time_s", lambda s: s.iloc[0] / 3600), tokens=("tokens", "first"),
        util=("gpu_util_mean_pct", "first"), gpus=("gpus", "first"), reason=("gpu_reason", "first"),
        status=("status", "first")).reset_index()  # fmt: skip
    per_run.loc[per_run["status"] == "missing", ["flops", "wall_h", "tokens", "util"]] = math.nan
    base = per_run[per_run["method"] == "baseline"].set_index("seed")
    # relative to the baseline of the same seed where there is one, else its mean over seeds
    for column, rel in (("flops", "flops_rel"), ("wall_h", "wall_rel")):
        base_value = per_run["seed"].map(base[column]) if len(base) else pd.Series(math.nan, index=per_run.index)
        base_value = base_value.fillna(base[column].mean() if len(base) else math.nan)
        per_run[rel] = (per_run[column] / base_value - 1) * 100
    cols = [Col("gpu_util", "GPU util. (%)", "pct", None)]
    cols += [Col(f"flops_{i}", f"FLOPs peer {i}", "sci", None) for i in range(1, (p or 0) + 1)]
    cols += [Col("flops", "FLOPs total", "sci", None), Col("flops_rel", "FLOPs vs. base", "change", None),
             Col("wall_h", "Wall time (h)", "float2", None), Col("wall_rel", "Time vs. base", "change", None),
             Col("tokens", "Tokens", "sci", None)]  # fmt: skip
    rows, gpu_notes = [], set()
    for method in all_methods:
        runs = per_run[per_run["method"] == method]
        missing = tuple(sorted(runs.loc[runs["status"] == "missing", "path"]))

        def stat(column: str, values: pd.Series | None = None, runs: pd.DataFrame = runs,
                 missing: tuple[str, ...] = missing) -> Cell:  # fmt: skip
            values = (runs[column] if values is None else values).dropna().astype(float)
            return Cell(values.mean() if len(values) else math.nan,
                        values.std(ddof=1) if len(values) > 1 else math.nan, len(values), None, missing)  # fmt: skip

        cells = {c: stat(c) for c in ("flops", "wall_h", "tokens")}
        cells["flops_rel"] = stat("flops_rel") if method != "baseline" else Cell(text="")
        cells["wall_rel"] = stat("wall_rel") if method != "baseline" else Cell(text="")
        ok = runs[runs["status"] == "ok"]
        if len(ok) and (ok["gpus"].fillna(0) == 0).all():
            cells["gpu_util"] = Cell(text="n/a")
            gpu_notes |= {str(r) for r in ok["reason"].dropna()}
        else:
            cells["gpu_util"] = stat("util")
        for i in range(1, (p or 0) + 1):
            model = "teacher" if method == "baseline" else f"peer-{i}"
            if method == "baseline":
                cells[f"flops_{i}"] = Cell(text="")
                continue
            part = frame[(frame["method"] == method) & (frame["model"] == model) & (frame["status"] == "ok")]
            cells[f"flops_{i}"] = stat("", part["training_flops"])
        label = METHOD_LABELS[method]
        rows.append(Row((label,), cells, "base" if method == "baseline" else "students"))
    table = Table("table9", f"Training compute ({corpus}, {p} peers" + (f", alpha = {alpha:g}" if alpha else "")
                  + "): mean GPU utilisation, analytic training FLOPs per peer and in total, wall time and tokens; "
                  "'vs. base': change relative to RoBERTa-base (same seed). "
                  + _seeds_caption(c for r in rows for c in r.cells.values()), ("Method",), cols, rows, bold=None)  # fmt: skip
    table.notes = [("FLOPs: 6 x matmul weights + attention per token x tokens, per student; the frozen teacher's "
                    "forward passes of KD and KD_DWML are not included.")]  # fmt: skip
    if gpu_notes:
        table.notes.append("GPU util. n/a: " + "; ".join(sorted(gpu_notes)) + ".")
    no_flops = frame[(frame["status"] == "ok") & frame["training_flops"].isna()]
    if len(no_flops):
        paths = sorted(no_flops["path"].unique())
        more = f" and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else ""
        table.notes.append(f"FLOPs {MISSING}: training_flops not recorded in " + "; ".join(paths[:MAX_LISTED]) + more
                           + " (summaries written before it was added; retrain to fill).")
    table.notes += _missing_note(table)
    return write(table, out_tex, out_csv)


# --- the dispatcher -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TableInfo:
    """A table's function and the named inputs it takes (``input`` names of its Snakemake rule)."""

    function: Callable[..., Table]
    inputs: Mapping[str, str]  # input name -> what it holds
    options: tuple[str, ...] = ()


_EVAL_STUDENTS = ("eval/baseline/seed-<s>/teacher/<family>.json and every peer of the student runs at one peer "
                  "count: eval/{sd,kd}/peers-<p>/seed-<s>/peer-<i>/<family>.json, "
                  "eval/{dml,kd_dwml,dwml}/peers-<p>/alpha-<a>/seed-<s>/peer-<i>/<family>.json")  # fmt: skip
_GROUP_OPTIONS = ("seeds", "peers", "alpha", "student", "methods", "variant")

#: Every table: name -> function, named inputs (with what they hold), options.
TABLES: dict[str, TableInfo] = {
    "table1": TableInfo(table1, {
        "eval": "results/<c>/eval/baseline/seed-<s>/teacher/{<blimp>,<supplement>,<ewok>,glue}.json and the same "
                "files of every peer of results/<c>/eval/dwml/peers-<p>/alpha-<a>/seed-<s>, for each track run",
        "published": "(optional) YAML of the cited baselines; default babyteach/report/published.yaml"},
        ("tracks", "benchmarks", "seeds", "peers", "alpha", "student")),
    "table2": TableInfo(table2, {
        "eval": f"zero-shot results (BLiMP, supplement, EWoK families): {_EVAL_STUDENTS}",
        "search": "results/search/peers-<p>.json"}, ("seeds", "alpha", "benchmarks", "methods", "variant")),
    "table3": TableInfo(table3, {
        "search": "every results/search/peers-<p>.json",
        "summaries": "(optional) results/<c>/train/<run>/train_summary.json of the runs whose hyperparameters "
                     "are shown"}),
    "table4": TableInfo(table4, {"glue": "results/<c>/eval/<run>/<model>/glue.json (one or more)"}),
    "table5": TableInfo(table5, {"corpus": "results/<c>/stats/corpus.csv (one per corpus)"}),
    "table6": TableInfo(table6, {"eval": f"BLiMP family results: {_EVAL_STUDENTS}"}, _GROUP_OPTIONS),
    "table7": TableInfo(table7, {"eval": f"BLiMP supplement family results: {_EVAL_STUDENTS}"}, _GROUP_OPTIONS),
    "table8": TableInfo(table8, {"eval": f"EWoK family results: {_EVAL_STUDENTS}"}, _GROUP_OPTIONS),
    "table9": TableInfo(table9, {
        "summaries": "results/<c>/train/baseline/seed-<s>/train_summary.json and the train_summary.json of "
                     "every student run at one peer count, every seed"}, ("seeds", "peers", "alpha", "methods")),
}  # fmt: skip


def write_table(name: str, inputs: Mapping[str, Any], out_tex: PathArg, out_csv: PathArg,
                options: Mapping[str, Any] | None = None) -> Table:  # fmt: skip
    """Write table ``name`` (a key of :data:`TABLES`) from named ``inputs`` with ``options``.

    ``inputs`` maps the input names of :data:`TABLES` to a path or a list of paths (a Snakemake
    ``Namedlist`` works); unknown names or options are an InputError naming the valid ones.
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
        raise InputError(f"{name}: unknown options {', '.join(sorted(bad))}; valid: {', '.join(info.options) or 'none'}")
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
    return info.function(**args, out_tex=out_tex, out_csv=out_csv, **options)
