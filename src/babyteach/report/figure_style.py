"""How the figures look and are written: grayscale-safe series styles, the matplotlib rc, panel grids,
labels (seeds, run configurations, benchmark axes), mean ± std lines, the note naming missing inputs,
and the deterministic, atomic PDF/PNG writer with its default resolution.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from babyteach.evaluate.glue_tasks import TASKS as GLUE_TASKS
from babyteach.evaluate.variants import STRICT
from babyteach.io import atomic_path
from babyteach.report.figure_data import Paths, _as_paths
from babyteach.report.frames import glue_tasks_included
from babyteach.report.runs import BENCHMARKS, METHOD_ORDER, RunId, load_glue, parse_result_path, run_label

matplotlib.use("Agg")  # files only; nothing here uses pyplot's global state
log = logging.getLogger(__name__)

# Grayscale-safe styles: colour (Okabe-Ito, black first), line style and marker all change together.
_COLOURS = ("#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)), (0, (3, 1, 1, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_RC = {
    "font.size": 9,
    "axes.titlesize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "pdf.fonttype": 42,
}
_PANEL_W, _PANEL_H = 4.2, 3.2  # inches per panel


def _style(i: int) -> dict[str, Any]:
    """The i-th series style: colour, line style and marker all differ (grayscale-readable)."""
    return {
        "color": _COLOURS[i % len(_COLOURS)],
        "linestyle": _LINESTYLES[i % len(_LINESTYLES)],
        "marker": _MARKERS[i % len(_MARKERS)],
    }


def _seeds_text(n: int | Sequence[int]) -> str:
    """``n = 3 seeds`` (or a range ``n = 1–3 seeds`` when groups differ)."""
    values = sorted({int(v) for v in ([n] if isinstance(n, int | np.integer) else n)})
    if not values:
        return "n = 0 seeds"
    text = str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"
    return f"n = {text} seed{'s' if values[-1] != 1 else ''}"


def _group_label(run: RunId) -> str:
    """A run configuration for titles: ``DWML, p = 4, α = 0.5`` (``Independent, p = 4``: students trained alone)."""
    parts = [run_label(run)]
    if run.peers is not None:
        parts.append(f"p = {run.peers}")
    if run.alpha is not None:
        parts.append(f"α = {run.alpha:g}")
    return ", ".join(parts)


def _group_order(run: RunId) -> tuple[Any, ...]:
    method = METHOD_ORDER.index(run.method) if run.method in METHOD_ORDER else len(METHOD_ORDER)
    return (method, run.peers or 0, run.alpha if run.alpha is not None else -1.0)


def _model_order(model: str) -> tuple[int, int]:
    return (0, 0) if model == "teacher" else (1, int(model.split("-")[1]))


#: The scoring the figures' zero-shot accuracies are (every result also holds ``official``); the axes name it.
FIGURE_VARIANT = STRICT


def _benchmark_axis(benchmark: str, evals: Paths) -> str:
    """The axis label of ``benchmark``'s scores: the zero-shot scoring variant, or how many (Super)GLUE
    tasks the macro is over (never shown as if it were all of them)."""
    name = BENCHMARKS.get(benchmark, benchmark)
    if benchmark != "glue":
        return f"{name} accuracy (%, {FIGURE_VARIANT})"
    present = [p for p in _as_paths(evals) if p.exists() and parse_result_path(p).benchmark == "glue"]
    tasks = glue_tasks_included(load_glue(present[0])) if present else []
    return f"{name} macro score (×100) over {len(tasks)}/{len(GLUE_TASKS)} tasks"


def _plot_series(
    ax: Axes,
    x: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    style: Mapping[str, Any],
    label: str,
    markevery: int | None = None,
) -> Line2D:
    """One line (mean) with a ± std band where std is finite."""
    if markevery is None:
        markevery = max(1, len(x) // 12)
    (line,) = ax.plot(x, mean, label=label, markevery=markevery, markersize=4, linewidth=1.4, **style)
    std = np.asarray(std, dtype=float)
    if np.isfinite(std).any():
        ax.fill_between(x, mean - std, mean + std, color=style["color"], alpha=0.18, linewidth=0)
    return line


def _new_figure(n_panels: int, ncols: int | None = None) -> tuple[Figure, list[Axes]]:
    ncols = ncols or min(n_panels, 3)
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(_PANEL_W * ncols, _PANEL_H * nrows + 0.3), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _note_missing(fig: Figure, missing: Sequence[str | Path]) -> None:
    """A footnote naming inputs that were listed but not found (and so are not plotted)."""
    if not missing:
        return
    missing = sorted({str(m) for m in missing})
    for path in missing:
        log.warning("not plotted, file missing: %s", path)
    shown = "; ".join(missing[:3]) + (f"; and {len(missing) - 3} more" if len(missing) > 3 else "")
    fig.supxlabel(f"Not plotted ({len(missing)} missing input(s)): {shown}", fontsize=6, color="0.3")


def _finish(fig: Figure, missing: Sequence[str | Path]) -> Figure:
    """The drawn figure, with the footnote naming the inputs it was missing (if any)."""
    _note_missing(fig, missing)
    return fig


#: The PNGs' resolution (dots per inch) unless the caller asks for another.
PNG_DPI = 200


def _save(fig: Figure, out_pdf: str | PathLike[str], out_png: str | PathLike[str], dpi: int) -> None:
    """Write the PDF and PNG atomically (temporary sibling, then rename); deterministic metadata."""
    with matplotlib.rc_context(_RC):
        with atomic_path(out_pdf) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Creator": "babyteach"})
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": "babyteach"})
