r"""A table as data (:class:`Table` of :class:`Row` of :class:`Cell`, :class:`Col` headers) and its rendering:
the LaTeX float (``Styler.to_latex``, booktabs rules, bold best values, notes) and the CSV.

The conventions every table follows are listed in :mod:`babyteach.report.tables`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import pandas as pd

from babyteach.io import write_text_atomic

PathArg = str | PathLike[str]

#: Shown for a missing result in LaTeX (CSV: empty).
MISSING = "--"

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


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "×": r"$\times$",
    "−": "--",
    "†": r"$^\dagger$",
    "‡": r"$^\ddagger$",
}


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
    return (
        float(_number(cell.mean, col.kind, False).replace(",", ""))
        if col.kind in ("pct", "float2", "float3", "int")
        else cell.mean
    )


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
        comparisons = [
            (" / ".join(r.labels), [(i, c) for c in table.columns if c.best is not None])
            for i, r in enumerate(table.rows)
        ]
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
            name = (
                (lambda i, c: " / ".join(table.rows[i].labels)) if table.bold == "column" else (lambda i, c: c.header)
            )
            notes.append(
                f"{where}: the best, {name(wi, wcol)}, leads {name(ri, rcol)} by "
                f"{_number(gap, wcol.kind, False)}, less than the seed std "
                f"{_number(spread, wcol.kind, False)}; the difference is not resolved."
            )
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
    lines = [
        r"\begin{table}",
        r"\centering",
        rf"\caption{{{latex_escape(table.caption)}}}",
        rf"\label{{tab:{table.name}}}",
        *parts,
    ]
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
