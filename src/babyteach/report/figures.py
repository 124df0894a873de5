"""The paper's figures, drawn with matplotlib from the workflow's per-run result files.

Every figure function takes the **explicit lists of result paths** a Snakemake rule passes
(nothing here globs the results folder), writes one PDF and one PNG atomically, and returns the
:class:`matplotlib.figure.Figure` so that tests can read back what was drawn. A thin script::

    from babyteach.report.figures import write_figure
    write_figure("figure3", dict(snakemake.input.items()), snakemake.output.pdf, snakemake.output.png,
                 dict(snakemake.params.options))

The figures (``FIGURES``; inputs are keyword arguments, the path patterns below)::

    figure2a       accuracy vs number of peers p (DWML at the main α; mean over peers and best peer)
                   evals:     <corpus>/eval/dwml/peers-<p>/alpha-<α>/seed-<s>/peer-<i>/<family>.json
                              for every p, every seed, every peer (one α, one method)
                   reference: optional, <corpus>/eval/baseline/seed-<s>/teacher/<family>.json
    figure2b       accuracy vs α (DWML at one peer count, the largest)
                   evals:     <corpus>/eval/dwml/peers-<P>/alpha-<a>/seed-<s>/peer-<i>/<family>.json
                              for every α, seed and peer (one p, one method)
                   reference: optional, as in figure2a
    figure2c       each peer's final learned weight ω vs its accuracy, with Pearson R
                   summaries: <corpus>/train/dwml/peers-<P>/alpha-<α>/seed-<s>/train_summary.json (every seed)
                   evals:     <corpus>/eval/dwml/peers-<P>/alpha-<α>/seed-<s>/peer-<i>/<family>.json
    figure2        (a), (b) and (c) side by side: inputs peers_evals, alpha_evals, weight_summaries,
                   weight_evals (as evals/evals/summaries/evals above) and the optional reference
    figure3        ω trajectories during DWML / KD_DWML, one panel per run configuration; a run whose ω
                   collapsed onto one peer (final ω ≥ COLLAPSE_WEIGHT) is named on its panel
                   peer_weights: <corpus>/train/{dwml,kd_dwml}/peers-<p>/alpha-<a>/seed-<s>/peer_weights.csv
    figure4        GPU utilisation over time, one panel per method (run configuration)
                   gpu:       <corpus>/train/<run>/gpu.csv
                   summaries: optional, <corpus>/train/<run>/train_summary.json (why no GPU was recorded)
    figure_size    accuracy vs model size (parameters, log scale): one series per kind of run, a point per
                   model (mean ± std over seeds): the RoBERTa-base teacher, the searched students trained
                   alone with the baseline objective ("Independent"), DWML (or any student method) peers
                   summaries: <corpus>/train/<run>/train_summary.json (parameter counts) of
                              baseline/seed-<s>, baseline/peers-<p>/seed-<s>, dwml/peers-<p>/alpha-<α>/seed-<s>, ...
                   evals:     <corpus>/eval/<run>/<model>/<family>.json of those runs' models
    training_loss  training and dev loss curves per method (metrics.jsonl: the method's own training
                   objective per student at every logged step, lines; the dev masked-LM loss at every
                   training.eval_every steps, open markers); runs logged without dev points show the
                   final dev loss of their summaries as a single open marker
                   metrics:   <corpus>/train/<run>/metrics.jsonl
                   summaries: optional, <corpus>/train/<run>/train_summary.json (final dev loss)

(``<corpus>`` like ``2024-10M``, normally under ``results/``; ``<family>`` a zero-shot family such
as ``blimp-filtered`` or ``glue``; see :mod:`babyteach.report.runs` for the layout.) Extra eval
files of other benchmarks are ignored, so a rule may pass all families of a run set. Wherever a
``<corpus>/train/<run>/<file>`` is expected, the run folder itself may be given instead (the
training rules' ``directory()`` output, which is what a rule can depend on): ``<folder>/<file>``
is read.

Conventions:

- Several seeds of one configuration are averaged: lines/points show the mean and a ± 1 sample
  standard deviation band or error bars; legends or titles say how many seeds (``n = 3 seeds``).
- A listed file that does not exist is not plotted and the figure carries a note naming it (as the
  tables show "--"); a figure left with no data at all raises :class:`~babyteach.errors.InputError`
  naming the figure and what is missing. On a CPU run (``gpu.csv`` with a header only) the GPU
  panel says "no GPU recorded" and why, instead of showing empty axes.
- Readable in grayscale: every line/marker series differs in line style and marker, not only colour.
  Accuracies are drawn in percent; zero-shot accuracies are the ``pll-word-l2r`` scoring
  (:data:`FIGURE_VARIANT`) and the axis says so; a (Super)GLUE axis says over how many tasks.

Only the object-oriented API is used (no pyplot state): figures are independent and thread-safe.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from babyteach.errors import InputError
from babyteach.evaluate.glue import TASKS as GLUE_TASKS
from babyteach.evaluate.variants import STRICT
from babyteach.gpu import CSV_COLUMNS as GPU_CSV_COLUMNS
from babyteach.io import atomic_path
from babyteach.report.runs import (
    BENCHMARK_OF_FAMILY,
    BENCHMARKS,
    METHOD_LABELS,
    METHOD_ORDER,
    RunId,
    aggregate_seeds,
    Collapse,
    check_consistent,
    collapse_of,
    eval_frame,
    glue_tasks_included,
    load_glue,
    load_peer_weights,
    parse_result_path,
    read_result_csv,
    run_label,
    summary_frame,
)

__all__ = [
    "FIGURES", "NO_GPU_TEXT", "FigureSpec", "ablation_points", "collapse_text", "figure2", "figure2a", "figure2b", "figure2c",
    "figure3", "figure4", "figure_size", "gpu_series", "load_gpu_csv", "load_metrics", "loss_curves", "pearson_r",
    "peer_weight_trajectories", "size_points", "training_loss", "weight_accuracy_points", "write_figure",
]  # fmt: skip

matplotlib.use("Agg")  # files only; nothing here uses pyplot's global state
log = logging.getLogger(__name__)

Paths = Sequence[str | PathLike[str]]

#: The text of a GPU panel of runs without GPU samples.
NO_GPU_TEXT = "no GPU recorded"

# Grayscale-safe styles: colour (Okabe-Ito, black first), line style and marker all change together.
_COLOURS = ("#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)), (0, (3, 1, 1, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_RC = {"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 8, "axes.grid": True, "grid.alpha": 0.3,
       "pdf.fonttype": 42}  # fmt: skip
_PANEL_W, _PANEL_H = 4.2, 3.2  # inches per panel

#: Units of the GPU metrics figure 4 can draw (gpu.csv columns).
GPU_METRICS = {"util_pct": "GPU utilisation (%)", "mem_used_mib": "GPU memory used (MiB)", "power_w": "GPU power (W)"}


def _style(i: int) -> dict[str, Any]:
    """The i-th series style: colour, line style and marker all differ (grayscale-readable)."""
    return {"color": _COLOURS[i % len(_COLOURS)], "linestyle": _LINESTYLES[i % len(_LINESTYLES)],
            "marker": _MARKERS[i % len(_MARKERS)]}  # fmt: skip


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


def _as_paths(paths: Paths, filename: str | None = None) -> list[Path]:
    """``paths`` (one path or several) as a list of Paths, without repeats.

    With ``filename``, a path that is a directory (a run folder: the training rules' ``directory()``
    output, which is what a Snakemake rule can depend on) stands for ``<folder>/<filename>``.
    """
    if isinstance(paths, str | PathLike):
        paths = [paths]
    out = [Path(p) for p in paths]
    if filename is not None:
        out = [p / filename if p.is_dir() else p for p in out]
    return list(dict.fromkeys(out))


def _need_inputs(figure: str, name: str, paths: Paths, pattern: str, filename: str | None = None) -> list[Path]:
    """The paths of input ``name`` as a list (see :func:`_as_paths`); InputError naming the figure if none."""
    paths = _as_paths(paths, filename)
    if not paths:
        raise InputError(f"{figure}: no input files given for {name!r} (expected {pattern}); nothing to plot")
    return paths


def _split_missing(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    present = [p for p in paths if p.exists()]
    return present, [p for p in paths if not p.exists()]


def _one(figure: str, values: Sequence[Any], what: str, hint: str) -> Any:
    """The single distinct value of ``values``; InputError naming the figure if there are several."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) != 1:
        shown = ", ".join("none" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:g}"
                          if isinstance(v, float) else str(v) for v in distinct)  # fmt: skip
        raise InputError(f"{figure}: the inputs mix {what} ({shown}); {hint}")
    return distinct[0]


def _mean_std(columns: Mapping[Any, pd.Series]) -> tuple[pd.DataFrame, int]:
    """Mean, sample std (ddof=1, NaN for one column) and count over aligned series (inner join on index).

    Returns the frame (index: the common x values; columns mean, std, n) and how many x values
    were dropped because not every series has them.
    """
    joined = pd.concat(dict(columns), axis=1, join="inner").sort_index()
    union = set().union(*(s.index for s in columns.values()))
    out = pd.DataFrame({"mean": joined.mean(axis=1), "std": joined.std(axis=1, ddof=1) if joined.shape[1] > 1
                        else np.nan, "n": joined.shape[1]})  # fmt: skip
    return out, len(union) - len(joined)


def _column_mean_std(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean and sample std (ddof=1) of each column; NaN where a column has too few values."""
    n = np.isfinite(table).sum(axis=0)
    total = np.where(np.isfinite(table), table, 0.0).sum(axis=0)
    mean = np.divide(total, n, out=np.full(table.shape[1], np.nan), where=n > 0)
    squares = np.where(np.isfinite(table), (table - mean) ** 2, 0.0).sum(axis=0)
    std = np.sqrt(np.divide(squares, n - 1, out=np.full(table.shape[1], np.nan), where=n > 1))
    return mean, std


def _plot_series(ax: Axes, x: np.ndarray, mean: np.ndarray, std: np.ndarray, style: Mapping[str, Any],
                 label: str, markevery: int | None = None) -> Line2D:  # fmt: skip
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


def _save(fig: Figure, out_pdf: str | PathLike[str], out_png: str | PathLike[str], dpi: int) -> None:
    """Write the PDF and PNG atomically (temporary sibling, then rename); deterministic metadata."""
    with matplotlib.rc_context(_RC):
        with atomic_path(out_pdf) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Creator": "babyteach"})
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": "babyteach"})


# --- figure 2: ablations ------------------------------------------------------------------------

#: How a run's peers are summarised in figure 2 (a)/(b).
PEER_AGGREGATES = {"mean": "mean over peers", "best": "best peer"}


def _benchmark_rows(figure: str, evals: Paths, benchmark: str, pattern: str,
                    name: str = "evals") -> tuple[pd.DataFrame, list[str]]:  # fmt: skip
    """Overall eval rows of ``benchmark`` among ``evals`` (input ``name``) and the paths of the missing ones."""
    if benchmark not in BENCHMARKS:
        raise InputError(f"{figure}: unknown benchmark {benchmark!r}; one of {', '.join(BENCHMARKS)}")
    paths = _need_inputs(figure, name, evals, pattern)
    frame = eval_frame(paths, variant=FIGURE_VARIANT)
    rows = frame[frame["benchmark"] == benchmark]
    if rows.empty:
        families = ", ".join(sorted(set(frame["family"])))
        raise InputError(f"{figure}: none of the {len(paths)} evaluation files is a {BENCHMARKS[benchmark]} result "
                         f"(families given: {families}); pass <family>.json files of benchmark {benchmark!r} "
                         f"({', '.join(f for f, b in BENCHMARK_OF_FAMILY.items() if b == benchmark)})")  # fmt: skip
    check_consistent(rows)
    missing = rows.loc[rows["status"] != "ok", "path"].tolist()
    if (rows["status"] != "ok").all():
        raise InputError(f"{figure}: every {BENCHMARKS[benchmark]} result file listed is missing "
                         f"({len(rows)} files, e.g. {rows['path'].iloc[0]}); run the evaluation first")  # fmt: skip
    return rows, missing


def ablation_points(figure: str, evals: Paths, by: str, *, benchmark: str = "blimp", peer_aggregate: str = "both",
                    name: str = "evals") -> tuple[pd.DataFrame, list[str], RunId]:  # fmt: skip
    """The points of figure 2 (a) (``by="peers"``) or (b) (``by="alpha"``).

    Each run's peers are summarised by the mean of their scores and/or the best peer's score (percent);
    a run with a peer's result missing has no value. Then mean and sample std over seeds per ``by`` value.
    Returns (frame with columns ``by, aggregate, mean, std, n_seeds, seeds, missing``, the missing
    paths, one RunId of the inputs for labels). The inputs must share corpus and method, and the
    α (``by="peers"``) or the peer count (``by="alpha"``).
    """
    if peer_aggregate not in (*PEER_AGGREGATES, "both"):
        raise InputError(f"{figure}: peer_aggregate must be mean, best or both, not {peer_aggregate!r}")
    aggregates = list(PEER_AGGREGATES) if peer_aggregate == "both" else [peer_aggregate]
    pattern = "<corpus>/eval/<method>/peers-<p>/alpha-<a>/seed-<s>/peer-<i>/<family>.json"
    rows, missing = _benchmark_rows(figure, evals, benchmark, pattern, name)
    _one(figure, rows["corpus"], "corpora", "pass one corpus's results")
    method = _one(figure, rows["method"], "methods", "pass the runs of one method (DWML for the paper's figure)")
    if method == "baseline":
        raise InputError(f"{figure}: the evals are of baseline runs (the teacher or students trained alone); pass "
                         "the peers of a student method")  # fmt: skip
    fixed = "alpha" if by == "peers" else "peers"
    if by == "alpha" and rows["alpha"].isna().all():
        raise InputError(f"{figure}: method {method!r} has no α; pass runs of a mutual method (dml, dwml, kd_dwml)")
    hint = ("pass the runs of one α (the main mutual.alpha)" if fixed == "alpha"
            else "pass the runs of one peer count (the largest)")  # fmt: skip
    values = [None if pd.isna(v) else v for v in rows[fixed]]
    _one(figure, values, "α values" if fixed == "alpha" else "peer counts", hint)

    per_run = []
    for run_name, part in rows.groupby("run", sort=False):
        run = parse_result_path(part["path"].iloc[0]).run
        scores = {m: s for m, s, ok in zip(part["model"], part["score"], part["status"] == "ok", strict=True) if ok}
        absent = [m for m in run.models if m not in scores]
        values = np.array([scores[m] for m in run.models if m in scores], dtype=float) * 100
        for aggregate in aggregates:
            value = math.nan if absent else float(values.mean() if aggregate == "mean" else values.max())
            per_run.append({by: float(run.alpha) if by == "alpha" else int(run.peers), "aggregate": aggregate,
                            "seed": run.seed, "score": value, "path": run_name})  # fmt: skip
        missing += [f"{run_name}/{m} (no {benchmark} result listed)" for m in absent
                    if not (part["model"] == m).any()]  # fmt: skip
    points = aggregate_seeds(pd.DataFrame(per_run), [by, "aggregate"])
    points = points.sort_values([by, "aggregate"], key=lambda c: c.map(aggregates.index) if c.name == "aggregate" else c)
    if points["mean"].isna().all():
        raise InputError(f"{figure}: no run has a {BENCHMARKS[benchmark]} result for every peer; nothing to plot")
    example = parse_result_path(rows["path"].iloc[0]).run
    return points.reset_index(drop=True), missing, example


def _reference(figure: str, reference: Paths, benchmark: str) -> tuple[float, float, int] | None:
    """Mean, std and seed count of the baseline teacher's score (percent), or None without inputs."""
    if not reference:
        return None
    rows, _ = _benchmark_rows(figure, reference, benchmark, "<corpus>/eval/baseline/seed-<s>/teacher/<family>.json",
                              "reference")  # fmt: skip
    rows = rows[rows["status"] == "ok"]
    agg = aggregate_seeds(rows.assign(score=rows["score"] * 100), ["method"])
    row = agg.iloc[0]
    return float(row["mean"]), float(row["std"]), int(row["n_seeds"])


def _draw_accuracy_vs(ax: Axes, figure: str, by: str, evals: Paths, reference: Paths, benchmark: str,
                      peer_aggregate: str, panel: str, name: str = "evals") -> list[str]:  # fmt: skip
    points, missing, run = ablation_points(figure, evals, by, benchmark=benchmark, peer_aggregate=peer_aggregate,
                                           name=name)  # fmt: skip
    for i, (aggregate, part) in enumerate(points.groupby("aggregate", sort=False)):
        part = part[part["mean"].notna()]
        x, mean, std = part[by].to_numpy(float), part["mean"].to_numpy(float), part["std"].to_numpy(float)
        style = _style(i)
        label = f"{PEER_AGGREGATES[aggregate]} ({_seeds_text(part['n_seeds'].tolist())}"
        label += ", ± std)" if np.isfinite(std).any() else ")"
        ax.errorbar(x, mean, yerr=np.where(np.isfinite(std), std, 0.0), label=label, capsize=3, markersize=5,
                    linewidth=1.4, **style)  # fmt: skip
    ref = _reference(figure, reference, benchmark)
    if ref is not None:
        mean, std, n = ref
        ax.axhline(mean, color="0.35", linestyle=(0, (6, 3)), linewidth=1.2,
                   label=f"{METHOD_LABELS['baseline']} teacher ({_seeds_text(n)})")  # fmt: skip
        if math.isfinite(std):
            ax.axhspan(mean - std, mean + std, color="0.5", alpha=0.12, linewidth=0)
    values = sorted(points[by].unique())
    ax.set_xticks(values, [f"{v:g}" for v in values])
    if by == "peers":
        ax.set_xlabel("number of peers p")
        ax.set_title(f"({panel}) {METHOD_LABELS.get(run.method, run.method)}, α = {run.alpha:g}: vs number of peers")
    else:
        ax.set_xlabel("α (weight of the peer terms; 1 − α weighs the labels)")
        ax.set_title(f"({panel}) {METHOD_LABELS.get(run.method, run.method)}, p = {run.peers}: vs α")
    ax.set_ylabel(_benchmark_axis(benchmark, evals))
    ax.legend(loc="best")
    return missing


def pearson_r(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, str]:
    """Pearson's R of paired values (numpy ``corrcoef``) and a legend text.

    R is undefined (None, and the text says why) with fewer than 3 pairs or when either variable
    is constant; non-finite pairs are dropped first.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3:
        return None, f"Pearson R undefined ({len(x)} point{'s' if len(x) != 1 else ''}; needs ≥ 3)"
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, f"Pearson R undefined ({'ω' if np.ptp(x) == 0 else 'accuracy'} constant over {len(x)} points)"
    r = float(np.corrcoef(x, y)[0, 1])
    return r, f"Pearson R = {r:.3f} ({len(x)} points)"


def weight_accuracy_points(
    figure: str, summaries: Paths, evals: Paths, *, benchmark: str = "blimp",
    names: tuple[str, str] = ("summaries", "evals"),
) -> tuple[pd.DataFrame, list[str], RunId]:  # fmt: skip
    """Figure 2 (c)'s points: one row per run and peer with ``peer_weight`` (final ω) and ``score`` (%).

    Returns (points, missing inputs, one RunId of the runs). Columns ``run, seed, model, peer_weight,
    score, parameters`` (rows of peers whose result is missing dropped, named in the missing list). The summaries must be of one configuration (method, p, α)
    that learns ω, possibly several seeds; every eval file must belong to one of those runs.
    """
    spaths = _need_inputs(figure, names[0], summaries,
                          "<corpus>/train/dwml/peers-<p>/alpha-<a>/seed-<s>/train_summary.json", "train_summary.json")  # fmt: skip
    present, missing_summaries = _split_missing(spaths)
    if not present:
        raise InputError(f"{figure}: every train_summary.json listed is missing (e.g. {spaths[0]}); train first")
    stud = summary_frame(present)
    _one(figure, stud["corpus"], "corpora", "pass one corpus's runs")
    _one(figure, stud["group"], "run configurations", "pass the seeds of one DWML/KD_DWML configuration")
    if stud["peer_weight"].isna().all():
        raise InputError(f"{figure}: the runs ({stud['run'].iloc[0]}, ...) have no learned peer weights "
                         f"(method {stud['method'].iloc[0]!r}); pass DWML or KD_DWML runs")  # fmt: skip
    rows, missing = _benchmark_rows(figure, evals, benchmark,
                                    "<corpus>/eval/<run>/peer-<i>/<family>.json of the summaries' runs",
                                    names[1])  # fmt: skip
    strangers = sorted(set(rows["run"]) - set(stud["run"]))
    if strangers:
        raise InputError(f"{figure}: evals of run(s) {', '.join(strangers)} have no train_summary.json among the "
                         "summaries; pass the summaries and evals of the same runs")  # fmt: skip
    ok = rows[rows["status"] == "ok"][["run", "model", "score"]]
    points = stud.merge(ok, on=["run", "model"], how="left")
    absent = points[points["score"].isna()]
    missing += [str(p) for p in missing_summaries]
    missing += [f"{r}/{m} (no {benchmark} result)" for r, m in zip(absent["run"], absent["model"], strict=True)
                if not ((rows["run"] == r) & (rows["model"] == m)).any()]  # fmt: skip
    points = points[points["score"].notna()].assign(score=lambda f: f["score"] * 100)
    if points.empty:
        raise InputError(f"{figure}: no peer has both a learned weight and a {BENCHMARKS[benchmark]} result")
    columns = ["run", "seed", "model", "peer_weight", "score", "parameters"]
    points = points[columns].sort_values(["model", "seed"], key=lambda c: c.map(_model_order) if c.name == "model"
                                         else c)  # fmt: skip
    return points.reset_index(drop=True), missing, parse_result_path(present[0]).run


def _draw_weight_accuracy(ax: Axes, figure: str, summaries: Paths, evals: Paths, benchmark: str, panel: str,
                          names: tuple[str, str] = ("summaries", "evals")) -> list[str]:  # fmt: skip
    points, missing, run = weight_accuracy_points(figure, summaries, evals, benchmark=benchmark, names=names)
    n_seeds = points["seed"].nunique()
    models = sorted(points["model"].unique(), key=_model_order)
    for i, model in enumerate(models):
        part = points[points["model"] == model]
        style = _style(i)
        params = part["parameters"].iloc[0]
        label = f"{model} ({params / 1e6:.1f}M params)" if params >= 1e5 else f"{model} ({params:,.0f} params)"
        if n_seeds > 1:
            ax.scatter(part["peer_weight"], part["score"], marker=style["marker"], color=style["color"], alpha=0.35,
                       s=16, linewidths=0)  # fmt: skip
            xs, ys = part["peer_weight"], part["score"]
            ax.errorbar(xs.mean(), ys.mean(), xerr=xs.std(ddof=1) if len(xs) > 1 else None,
                        yerr=ys.std(ddof=1) if len(ys) > 1 else None, marker=style["marker"], color=style["color"],
                        linestyle="none", capsize=3, markersize=7, label=label + " mean ± std")  # fmt: skip
        else:
            ax.plot(part["peer_weight"], part["score"], marker=style["marker"], color=style["color"], linestyle="none",
                    markersize=7, label=label)  # fmt: skip
    if run.peers:
        ax.axvline(1 / run.peers, color="0.5", linestyle=":", linewidth=1.0, label=f"uniform ω = 1/{run.peers}")
    _, r_text = pearson_r(points["peer_weight"], points["score"])
    ax.set_title(f"({panel}) {_group_label(run)}: learned ω vs accuracy\n{r_text}, {_seeds_text(n_seeds)}")
    ax.set_xlabel("final peer weight ω")
    ax.set_ylabel(_benchmark_axis(benchmark, evals))
    ax.legend(loc="best")
    return missing


def _finish(fig: Figure, missing: Sequence[str | Path], out_pdf: str | PathLike[str], out_png: str | PathLike[str],
            dpi: int) -> Figure:  # fmt: skip
    _note_missing(fig, missing)
    _save(fig, out_pdf, out_png, dpi)
    return fig


def figure2a(evals: Paths, out_pdf: str | PathLike[str], out_png: str | PathLike[str], *, reference: Paths = (),
             benchmark: str = "blimp", peer_aggregate: str = "both", dpi: int = 200) -> Figure:  # fmt: skip
    """Figure 2 (a): ``benchmark`` accuracy vs number of peers (one method, one α).

    evals: ``<corpus>/eval/dwml/peers-<p>/alpha-<α>/seed-<s>/peer-<i>/<family>.json`` for every peer count,
    seed and peer; reference (optional): the baseline teacher's ``.../eval/baseline/seed-<s>/teacher/<family>.json``
    (a horizontal line). peer_aggregate: ``mean`` (mean over a run's peers), ``best`` (its best peer) or
    ``both`` (two lines).
    """
    with matplotlib.rc_context(_RC):
        fig, (ax,) = _new_figure(1)
        missing = _draw_accuracy_vs(ax, "figure2a", "peers", evals, reference, benchmark, peer_aggregate, "a")
    return _finish(fig, missing, out_pdf, out_png, dpi)


def figure2b(evals: Paths, out_pdf: str | PathLike[str], out_png: str | PathLike[str], *, reference: Paths = (),
             benchmark: str = "blimp", peer_aggregate: str = "both", dpi: int = 200) -> Figure:  # fmt: skip
    """Figure 2 (b): ``benchmark`` accuracy vs α (one method, one peer count: the largest).

    evals: ``<corpus>/eval/dwml/peers-<P>/alpha-<a>/seed-<s>/peer-<i>/<family>.json`` for every α, seed and
    peer; reference and peer_aggregate as in :func:`figure2a`.
    """
    with matplotlib.rc_context(_RC):
        fig, (ax,) = _new_figure(1)
        missing = _draw_accuracy_vs(ax, "figure2b", "alpha", evals, reference, benchmark, peer_aggregate, "b")
    return _finish(fig, missing, out_pdf, out_png, dpi)


def figure2c(summaries: Paths, evals: Paths, out_pdf: str | PathLike[str], out_png: str | PathLike[str], *,
             benchmark: str = "blimp", dpi: int = 200) -> Figure:  # fmt: skip
    """Figure 2 (c): each peer's final learned ω vs its ``benchmark`` accuracy, Pearson R in the title.

    summaries: ``<corpus>/train/dwml/peers-<P>/alpha-<α>/seed-<s>/train_summary.json`` (one configuration,
    any seeds; ω from ``students[peer].peer_weight``); evals: those runs' ``peer-<i>/<family>.json``. R is
    computed over every (seed, peer) point; with several seeds each peer also gets a mean ± std marker.
    """
    with matplotlib.rc_context(_RC):
        fig, (ax,) = _new_figure(1)
        missing = _draw_weight_accuracy(ax, "figure2c", summaries, evals, benchmark, "c")
    return _finish(fig, missing, out_pdf, out_png, dpi)


def figure2(peers_evals: Paths, alpha_evals: Paths, weight_summaries: Paths, weight_evals: Paths,
            out_pdf: str | PathLike[str], out_png: str | PathLike[str], *, reference: Paths = (),
            benchmark: str = "blimp", peer_aggregate: str = "both", dpi: int = 200) -> Figure:  # fmt: skip
    """Figure 2, panels (a), (b), (c) in one row: the inputs of :func:`figure2a` (``peers_evals``),
    :func:`figure2b` (``alpha_evals``) and :func:`figure2c` (``weight_summaries``, ``weight_evals``)."""
    with matplotlib.rc_context(_RC):
        fig, (a, b, c) = _new_figure(3)
        missing = _draw_accuracy_vs(a, "figure2 (a)", "peers", peers_evals, reference, benchmark, peer_aggregate, "a",
                                    "peers_evals")  # fmt: skip
        missing += _draw_accuracy_vs(b, "figure2 (b)", "alpha", alpha_evals, reference, benchmark, peer_aggregate,
                                     "b", "alpha_evals")  # fmt: skip
        missing += _draw_weight_accuracy(c, "figure2 (c)", weight_summaries, weight_evals, benchmark, "c",
                                         ("weight_summaries", "weight_evals"))  # fmt: skip
    return _finish(fig, missing, out_pdf, out_png, dpi)


# --- model-size ablation: accuracy vs parameters -------------------------------------------------

_SIZE_SUMMARIES = ("<corpus>/train/<run>/train_summary.json or the run folder: baseline/seed-<s> (teacher), "
                   "baseline/peers-<p>/seed-<s> (students trained alone), dwml/peers-<p>/alpha-<α>/seed-<s>, "
                   "...; every seed")  # fmt: skip
_SIZE_EVALS = "<corpus>/eval/<run>/<model>/<family>.json of those runs' models"


def size_points(figure: str, summaries: Paths, evals: Paths, *,
                benchmark: str = "blimp") -> tuple[pd.DataFrame, list[str], dict[str, RunId]]:  # fmt: skip
    """The points of :func:`figure_size`: one per run configuration and model, parameters vs accuracy.

    A model's parameter count comes from its run's ``train_summary.json`` (``students[model].parameters``),
    its score (percent) from its eval file; the score is averaged over seeds (mean, sample std, n). Returns
    (frame with columns ``group, model, parameters, mean, std, n_seeds, seeds``, ordered by run kind
    then model; the missing inputs; {group: one RunId of it} for labels). Points with no score in any
    seed are left out (their files are in the missing list). InputError naming ``figure`` when every
    summary or every eval is missing, for evals of runs whose summary is not listed, and when the
    seeds of one configuration give a model different parameter counts.
    """
    spaths = _need_inputs(figure, "summaries", summaries, _SIZE_SUMMARIES, "train_summary.json")
    present, missing_summaries = _split_missing(spaths)
    if not present:
        raise InputError(f"{figure}: every train_summary.json listed is missing (e.g. {spaths[0]}); train first")
    stud = summary_frame(present)
    rows, missing = _benchmark_rows(figure, evals, benchmark, _SIZE_EVALS)
    _one(figure, [*stud["corpus"], *rows["corpus"]], "corpora", "pass one corpus's runs")
    listed = {parse_result_path(p).run.name for p in spaths}
    strangers = sorted(set(rows["run"]) - listed)
    if strangers:
        raise InputError(f"{figure}: evals of run(s) {', '.join(strangers)} have no train_summary.json among the "
                         "summaries (the parameter counts); pass the summaries and evals of the same runs")  # fmt: skip
    ok = rows[rows["status"] == "ok"][["run", "model", "score"]]
    points = stud.merge(ok, on=["run", "model"], how="left")
    missing += [str(p) for p in missing_summaries]
    absent = points[points["score"].isna()]
    missing += [f"{r}/{m} (no {benchmark} result listed)" for r, m in zip(absent["run"], absent["model"], strict=True)
                if not ((rows["run"] == r) & (rows["model"] == m)).any()]  # fmt: skip
    counts = points.groupby(["group", "model"], sort=False)["parameters"].nunique()
    for (group, model), n in counts.items():
        if n > 1:
            found = sorted(points.loc[(points["group"] == group) & (points["model"] == model), "parameters"].unique())
            shown = ", ".join(f"{v:,.0f}" for v in found)
            raise InputError(f"{figure}: the seeds of {group} give {model} different parameter counts ({shown}); "
                             "pass runs of one architecture search")  # fmt: skip
    points = points.assign(score=points["score"] * 100)
    agg = aggregate_seeds(points, ["group", "model", "parameters"])
    agg = agg[agg["mean"].notna()]
    if agg.empty:
        raise InputError(f"{figure}: no model has both a parameter count and a {BENCHMARKS[benchmark]} result; "
                         "nothing to plot")  # fmt: skip
    runs = {g: parse_result_path(p).run for g, p in zip(stud["group"], stud["path"], strict=True)}
    order = sorted(agg.index, key=lambda i: (_group_order(runs[agg.at[i, "group"]]), _model_order(agg.at[i, "model"])))
    agg = agg.loc[order, ["group", "model", "parameters", "mean", "std", "n_seeds", "seeds"]]
    agg["parameters"] = agg["parameters"].astype(float)
    return agg.reset_index(drop=True), missing, {g: runs[g] for g in dict.fromkeys(agg["group"])}


def figure_size(summaries: Paths, evals: Paths, out_pdf: str | PathLike[str], out_png: str | PathLike[str], *,
                benchmark: str = "blimp", dpi: int = 200) -> Figure:  # fmt: skip
    """The model-size ablation: ``benchmark`` accuracy vs parameter count (log scale).

    One series per run configuration (a point per model, mean ± std over seeds as error bars, the
    points of a run joined in order of size): the RoBERTa-base teacher (``baseline/seed-<s>``), the
    searched students trained alone with the baseline objective (``baseline/peers-<p>/seed-<s>``,
    "Independent, p = <p>"), and the peers of DWML (``dwml/peers-<p>/alpha-<α>/seed-<s>``) or of any
    other student method. summaries: those runs' ``train_summary.json`` (or run folders), every seed;
    evals: their models' ``<family>.json`` (other benchmarks ignored). A listed file that is missing
    is named in a footnote.
    """
    points, missing, runs = size_points("figure_size", summaries, evals, benchmark=benchmark)
    with matplotlib.rc_context(_RC):
        fig, (ax,) = _new_figure(1)
        for i, (group, part) in enumerate(points.groupby("group", sort=False)):
            run = runs[group]
            part = part.sort_values("parameters")
            std = part["std"].to_numpy(float)
            label = _group_label(run) + (" teacher" if run.is_teacher else "")
            label += f" ({_seeds_text(part['n_seeds'].tolist())}" + (", ± std)" if np.isfinite(std).any() else ")")
            ax.errorbar(part["parameters"].to_numpy(float), part["mean"].to_numpy(float),
                        yerr=np.where(np.isfinite(std), std, 0.0), label=label, capsize=3, markersize=6,
                        linewidth=1.2, **_style(i))  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel(_benchmark_axis(benchmark, evals))
        corpus = next(iter(runs.values())).corpus
        ax.set_title(f"Accuracy vs model size ({BENCHMARKS.get(benchmark, benchmark)}, {corpus})")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    return _finish(fig, missing, out_pdf, out_png, dpi)


# --- figure 3: ω trajectories -------------------------------------------------------------------


def _peer_weight_runs(figure: str, peer_weights: Paths) -> tuple[dict[str, dict[int, pd.DataFrame]],
                                                                dict[str, dict[int, Collapse | None]],
                                                                dict[str, RunId], list[Path]]:  # fmt: skip
    """Every listed run's ω by step ({group: {seed: frame with one column per peer}}), whether it collapsed
    onto one peer ({group: {seed: Collapse or None}}), one RunId per group, and the missing paths."""
    paths = _need_inputs(figure, "peer_weights", peer_weights,
                         "<corpus>/train/{dwml,kd_dwml}/peers-<p>/alpha-<a>/seed-<s>/peer_weights.csv",
                         "peer_weights.csv")  # fmt: skip
    present, missing = _split_missing(paths)
    groups: dict[str, dict[int, pd.DataFrame]] = {}
    collapses: dict[str, dict[int, Collapse | None]] = {}
    first: dict[str, RunId] = {}
    for path in present:
        run = parse_result_path(path).run
        frame = load_peer_weights(path)
        if frame.empty:
            log.warning("%s: no rows (no outer step logged); not plotted", path)
            missing.append(Path(f"{path} (no rows)"))
            continue
        weights = frame.set_index("step")[[c for c in frame.columns if c.startswith("weight.")]]
        if not all(pd.api.types.is_numeric_dtype(weights[c]) for c in weights):
            raise InputError(f"{path}: the weight.<peer> columns are not all numeric")
        first.setdefault(run.group, run)
        groups.setdefault(run.group, {})[run.seed] = weights.rename(columns=lambda c: c.removeprefix("weight."))
        collapses.setdefault(run.group, {})[run.seed] = collapse_of(frame)
    if not groups:
        raise InputError(f"{figure}: none of the {len(paths)} peer_weights.csv files listed has rows; "
                         "train DWML or KD_DWML first")  # fmt: skip
    _one(figure, [r.corpus for r in first.values()], "corpora", "pass one corpus's runs")
    return groups, collapses, first, missing


def _mean_trajectories(figure: str, groups: Mapping[str, Mapping[int, pd.DataFrame]],
                       first: Mapping[str, RunId]) -> dict[RunId, dict[str, pd.DataFrame]]:  # fmt: skip
    """Per group (keyed by its RunId, in figure order) and peer: ω's mean/std/n over seeds, by step."""
    out: dict[RunId, dict[str, pd.DataFrame]] = {}
    for group, seeds in groups.items():
        peers = sorted(set().union(*(f.columns for f in seeds.values())), key=_model_order)
        curves = {}
        for peer in peers:
            columns = {s: f[peer].dropna() for s, f in seeds.items() if peer in f}
            curve, dropped = _mean_std(columns)
            if curve.empty:
                raise InputError(f"{figure}: the seeds of {group} share no logged step for {peer}; rerun them alike")
            if dropped:
                log.warning("%s %s: %d steps not logged in every seed are left out", group, peer, dropped)
            curves[peer] = curve
        out[first[group]] = curves
    return dict(sorted(out.items(), key=lambda kv: _group_order(kv[0])))


def peer_weight_trajectories(figure: str, peer_weights: Paths) -> tuple[dict[RunId, dict[str, pd.DataFrame]],
                                                                       list[str]]:  # fmt: skip
    """ω over optimiser steps per run configuration and peer, mean/std/n over seeds.

    Returns ({one RunId of each configuration (seed of its first run): {peer: frame indexed by step with
    mean, std, n}}, missing paths). Seeds are aligned on their common steps.
    """
    groups, _, first, missing = _peer_weight_runs(figure, peer_weights)
    return _mean_trajectories(figure, groups, first), [str(m) for m in missing]


def collapse_text(collapses: Mapping[int, Collapse | None]) -> str:
    """Figure 3's note on one panel: which of its seeds' ω collapsed onto which peer, and when ("" if none).

    Judged per seed, not on the mean curve: seeds that collapse onto different peers average to a
    curve that looks balanced.
    """
    several = len(collapses) > 1
    lines = [(f"seed {seed}: " if several else "") + f"collapsed onto {c.peer} at step {c.step} (ω = {c.weight:.4f})"
             for seed, c in sorted(collapses.items()) if c is not None]  # fmt: skip
    return "\n".join(lines)


def figure3(peer_weights: Paths, out_pdf: str | PathLike[str], out_png: str | PathLike[str], *,
            dpi: int = 200) -> Figure:  # fmt: skip
    """Figure 3: the learned peer weights ω over optimiser steps, one panel per run configuration.

    peer_weights: ``<corpus>/train/{dwml,kd_dwml}/peers-<p>/alpha-<a>/seed-<s>/peer_weights.csv`` (row 0 holds
    the initial uniform weights). One line per peer (mean over seeds, ± std band with several seeds) and a
    dotted line at the uniform weight 1/p. A seed whose ω collapsed onto one peer (final ω ≥
    :data:`~babyteach.report.runs.COLLAPSE_WEIGHT`, :func:`babyteach.report.runs.collapse_of`) is named
    under its panel's title (:func:`collapse_text`), where neither curves nor legend can cover it.
    """
    groups, collapses, first, missing = _peer_weight_runs("figure3", peer_weights)
    curves = _mean_trajectories("figure3", groups, first)
    with matplotlib.rc_context(_RC):
        fig, axes = _new_figure(len(curves))
        for ax, (run, peers) in zip(axes, curves.items(), strict=True):
            n = sorted({int(v) for c in peers.values() for v in c["n"].unique()})
            for i, (peer, curve) in enumerate(peers.items()):
                label = f"{peer}" + (" ± std" if max(n) > 1 else "")
                _plot_series(ax, curve.index.to_numpy(float), curve["mean"].to_numpy(float),
                             curve["std"].to_numpy(float), _style(i), label)  # fmt: skip
            ax.axhline(1 / len(peers), color="0.5", linestyle=":", linewidth=1.0, label=f"uniform 1/{len(peers)}")
            note = collapse_text(collapses[run.group])
            ax.set_title(f"{_group_label(run)} ({_seeds_text(n)})" + (f"\n{note}" if note else ""))
            ax.set_xlabel("optimiser step")
            ax.set_ylabel("peer weight ω")
            ax.legend(loc="best")
        fig.suptitle("Figure 3: peer weights ω during training")
    return _finish(fig, missing, out_pdf, out_png, dpi)


# --- figure 4: GPU utilisation -------------------------------------------------------------------


def load_gpu_csv(path: str | PathLike[str]) -> pd.DataFrame:
    """A run's ``gpu.csv`` (:mod:`babyteach.gpu`); header only on CPU (an empty frame)."""
    path = Path(path)
    frame = read_result_csv(path, "gpu.csv missing; runs trained before GPU sampling have none, retrain")
    if list(frame.columns) != list(GPU_CSV_COLUMNS):
        raise InputError(f"{path}: expected columns {', '.join(GPU_CSV_COLUMNS)}, found {', '.join(frame.columns)}")
    for column in ("time_s", "gpu", "util_pct", "mem_used_mib", "mem_total_mib"):
        if not pd.api.types.is_numeric_dtype(frame[column]) and len(frame):
            raise InputError(f"{path}: column {column} is not numeric")
    return frame.astype({"power_w": float})


def gpu_series(figure: str, gpu: Paths, summaries: Paths = (), *,
               metric: str = "util_pct") -> tuple[dict[RunId, dict[str, Any]], list[str]]:  # fmt: skip
    """Per run configuration: ``metric`` over time, mean over the run's GPUs then over seeds.

    Returns ({RunId: {"curve": frame indexed by time_s with mean, std, n (None without samples),
    "gpus": GPUs per run, "seeds": seeds with samples, "empty": seeds without, "reason": why none}},
    missing paths). Seeds are put on a common time grid (the median sampling interval) by linear
    interpolation inside each seed's own time range.
    """
    if metric not in GPU_METRICS:
        raise InputError(f"{figure}: metric must be one of {', '.join(GPU_METRICS)}, not {metric!r}")
    paths = _need_inputs(figure, "gpu", gpu, "<corpus>/train/<run>/gpu.csv", "gpu.csv")
    present, missing = _split_missing(paths)
    if not present:
        raise InputError(f"{figure}: every gpu.csv listed is missing (e.g. {paths[0]}); runs trained before GPU "
                         "sampling have none")  # fmt: skip
    reasons: dict[str, str] = {}
    spaths = _as_paths(summaries, "train_summary.json")
    sfound = [p for p in spaths if p.exists()]
    if sfound:
        frame = summary_frame(sfound)
        for run_name, reason in zip(frame["run"], frame["gpu_reason"], strict=True):
            if isinstance(reason, str):
                reasons[run_name] = reason
    runs: dict[str, dict[int, pd.Series]] = {}
    info: dict[str, dict[str, Any]] = {}
    for path in present:
        rec = parse_result_path(path)
        run = rec.run
        entry = info.setdefault(run.group, {"run": run, "gpus": set(), "empty": [], "reasons": []})
        frame = load_gpu_csv(path).dropna(subset=[metric])
        if frame.empty:
            entry["empty"].append(run.seed)
            entry["reasons"].append(reasons.get(run.name, "gpu.csv has a header but no samples"))
            continue
        entry["gpus"].add(frame["gpu"].nunique())
        runs.setdefault(run.group, {})[run.seed] = frame.groupby("time_s")[metric].mean()
    _one(figure, [e["run"].corpus for e in info.values()], "corpora", "pass one corpus's runs")
    out: dict[RunId, dict[str, Any]] = {}
    for group, entry in info.items():
        seeds = runs.get(group, {})
        curve = None
        if len(seeds) == 1:
            (series,) = seeds.values()
            curve = pd.DataFrame({"mean": series, "std": np.nan, "n": 1})
        elif seeds:
            steps = [np.median(np.diff(s.index)) for s in seeds.values() if len(s) > 1]
            dt = float(min(steps)) if steps else 1.0
            end = max(float(s.index.max()) for s in seeds.values())
            grid = np.arange(0.0, end + dt / 2, dt)
            table = np.full((len(seeds), len(grid)), np.nan)
            for k, s in enumerate(seeds.values()):
                inside = (grid >= s.index.min()) & (grid <= s.index.max())
                table[k, inside] = np.interp(grid[inside], s.index.to_numpy(float), s.to_numpy(float))
            n = np.isfinite(table).sum(axis=0)
            mean, std = _column_mean_std(table)
            curve = pd.DataFrame({"mean": mean, "std": std, "n": n}, index=pd.Index(grid, name="time_s"))
            curve = curve[curve["n"] > 0]
        reason = "; ".join(dict.fromkeys(entry["reasons"]))
        out[entry["run"]] = {"curve": curve, "gpus": sorted(entry["gpus"]), "seeds": sorted(seeds),
                             "empty": sorted(entry["empty"]), "reason": reason}  # fmt: skip
    return dict(sorted(out.items(), key=lambda kv: _group_order(kv[0]))), [str(m) for m in missing]


def _wrap(text: str, width: int = 48) -> str:
    return "\n".join(textwrap.fill(part, width) for part in text.split("\n"))


def figure4(gpu: Paths, out_pdf: str | PathLike[str], out_png: str | PathLike[str], *, summaries: Paths = (),
            metric: str = "util_pct", dpi: int = 200) -> Figure:  # fmt: skip
    """Figure 4: GPU utilisation (or ``metric``: ``mem_used_mib``, ``power_w``) over time, one panel per method.

    gpu: ``<corpus>/train/<run>/gpu.csv`` of every run to show; summaries (optional): the same runs'
    ``train_summary.json``, whose ``gpu.reason`` explains a run without GPU samples. A configuration whose
    gpu.csv files have no rows (CPU training) gets a panel saying "no GPU recorded" and why.
    """
    series, missing = gpu_series("figure4", gpu, summaries, metric=metric)
    with matplotlib.rc_context(_RC):
        fig, axes = _new_figure(len(series))
        for ax, (run, entry) in zip(axes, series.items(), strict=True):
            curve = entry["curve"]
            ax.set_title(_group_label(run))
            if curve is None:
                n = len(entry["empty"])
                ax.text(0.5, 0.55, NO_GPU_TEXT, ha="center", va="center", transform=ax.transAxes, fontsize=11,
                        fontweight="bold")  # fmt: skip
                ax.text(0.5, 0.42, f"({_seeds_text(n)})\n" + _wrap(entry["reason"]), ha="center", va="top",
                        transform=ax.transAxes, fontsize=8)  # fmt: skip
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                continue
            n = curve["n"].unique().tolist()
            gpus = "/".join(str(g) for g in entry["gpus"])
            label = f"mean over {gpus} GPU{'s' if entry['gpus'] != [1] else ''} ({_seeds_text(n)}"
            label += ", ± std)" if max(n) > 1 else ")"
            _plot_series(ax, curve.index.to_numpy(float), curve["mean"].to_numpy(float), curve["std"].to_numpy(float),
                         _style(0), label, markevery=max(1, len(curve) // 10))  # fmt: skip
            if entry["empty"]:
                ax.set_title(f"{_group_label(run)}\n(seed {', '.join(map(str, entry['empty']))}: {NO_GPU_TEXT})")
            if metric == "util_pct":
                ax.set_ylim(0, 105)
            ax.set_xlabel("time since training start (s)")
            ax.set_ylabel(GPU_METRICS[metric])
            ax.legend(loc="best")
        fig.suptitle(f"Figure 4: {GPU_METRICS[metric].split(' (')[0]} during training")
    return _finish(fig, missing, out_pdf, out_png, dpi)


# --- training-loss curves ------------------------------------------------------------------------


#: Kinds of loss in a metrics.jsonl line: its key and the ``kind`` of :func:`load_metrics`' rows.
METRIC_KINDS = {"loss": "train", "dev_loss": "dev"}


def _numbers_per_model(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())  # fmt: skip


def load_metrics(path: str | PathLike[str]) -> pd.DataFrame:
    """A run's ``metrics.jsonl`` as a long frame: ``step, tokens, model, kind, loss``, one row per line,
    kind of loss and student.

    ``kind`` is ``train`` for a line's ``loss`` (the method's training objective at a logged step) and
    ``dev`` for its ``dev_loss`` (masked-LM CE on the dev blocks, lines written every
    ``training.eval_every`` steps; absent from runs without it and from older runs).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: metrics.jsonl missing; run the training step that writes it") from None
    except (UnicodeDecodeError, OSError) as err:
        raise InputError(f"{path}: not a readable metrics file ({err}); rerun the training step that writes it") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{number}: not valid JSON ({err})") from None
        kinds = [key for key in METRIC_KINDS if isinstance(record, dict) and key in record]
        if not (kinds and isinstance(record.get("step"), int) and not isinstance(record["step"], bool)
                and all(_numbers_per_model(record[key]) for key in kinds)):  # fmt: skip
            raise InputError(f"{path}:{number}: expected an object with an integer 'step' and a 'loss' or 'dev_loss' "
                             "object of numbers per student")  # fmt: skip
        tokens = record.get("tokens", math.nan)
        rows += [{"step": record["step"], "tokens": tokens, "model": m, "kind": METRIC_KINDS[key], "loss": float(v)}
                 for key in kinds for m, v in record[key].items()]  # fmt: skip
    return pd.DataFrame(rows, columns=["step", "tokens", "model", "kind", "loss"])


#: x axes of the training-loss figure.
LOSS_X = {"step": "optimiser step", "tokens": "training tokens seen"}


def loss_curves(figure: str, metrics: Paths, summaries: Paths = (), *, x: str = "step",
                smooth: int = 1) -> tuple[dict[RunId, dict[str, Any]], list[str]]:  # fmt: skip
    """Training and dev loss per run configuration and student: mean/std/n over seeds, indexed by ``x``.

    ``smooth`` > 1 applies a trailing moving average over that many logged points to each seed's
    training loss first (dev points are never smoothed). Returns ({RunId: {"curves": {model: frame},
    "dev_curves": {model: frame}, "dev": {model: (x_end, mean, std, n)}}}, missing paths): ``curves``
    the training loss (frames: index x, columns mean, std, n), ``dev_curves`` the dev-loss lines of
    the metrics (over the seeds that have them; empty for runs logged without ``eval_every``), ``dev``
    the final dev loss of the summaries (at the run's last step or token count).
    """
    if x not in LOSS_X:
        raise InputError(f"{figure}: x must be one of {', '.join(LOSS_X)}, not {x!r}")
    if not isinstance(smooth, int) or isinstance(smooth, bool) or smooth < 1:
        raise InputError(f"{figure}: smooth must be a positive integer (logged points averaged), not {smooth!r}")
    paths = _need_inputs(figure, "metrics", metrics, "<corpus>/train/<run>/metrics.jsonl", "metrics.jsonl")
    present, missing = _split_missing(paths)
    per_group: dict[str, dict[str, dict[int, pd.Series]]] = {}
    dev_group: dict[str, dict[str, dict[int, pd.Series]]] = {}
    first: dict[str, RunId] = {}
    for path in present:
        run = parse_result_path(path).run
        frame = load_metrics(path)
        if (frame["kind"] != "train").all():
            missing.append(Path(f"{path} (no training-loss lines)"))
            continue
        first.setdefault(run.group, run)
        for (kind, model), part in frame.groupby(["kind", "model"], sort=False):
            series = part.set_index(x)["loss"].sort_index()
            if kind == "train" and smooth > 1:
                series = series.rolling(smooth, min_periods=1).mean()
            target = per_group if kind == "train" else dev_group
            target.setdefault(run.group, {}).setdefault(model, {})[run.seed] = series
    if not per_group:
        raise InputError(f"{figure}: none of the {len(paths)} metrics.jsonl files listed has a logged step "
                         "(missing or empty); train first")  # fmt: skip
    _one(figure, [r.corpus for r in first.values()], "corpora", "pass one corpus's runs")
    dev: dict[str, dict[str, tuple[float, float, float, int]]] = {}
    spaths = _as_paths(summaries, "train_summary.json")
    sfound, smissing = _split_missing(spaths)
    missing += smissing
    if sfound:
        stud = summary_frame(sfound)
        strangers = sorted(set(stud["group"]) - set(per_group))
        if strangers:
            raise InputError(f"{figure}: summaries of {', '.join(strangers)} have no metrics.jsonl among the "
                             "metrics; pass the metrics and summaries of the same runs")  # fmt: skip
        stud = stud.assign(x_end=stud["steps"] if x == "step" else stud["tokens"])
        for (group, model), part in stud.groupby(["group", "model"], sort=False):
            values = part["final_dev_loss"].dropna()
            if values.empty:
                continue
            std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            dev.setdefault(group, {})[model] = (float(part["x_end"].mean()), float(values.mean()), std, len(values))
    out: dict[RunId, dict[str, Any]] = {}
    for group, models in per_group.items():
        curves = {}
        for model in sorted(models, key=_model_order):
            curve, dropped = _mean_std(models[model])
            if curve.empty:
                raise InputError(f"{figure}: the seeds of {group} share no logged step for {model}; rerun them alike")
            if dropped:
                log.warning("%s %s: %d logged points not in every seed are left out", group, model, dropped)
            curves[model] = curve
        dev_curves = {}
        for model in sorted(dev_group.get(group, {}), key=_model_order):
            curve, dropped = _mean_std(dev_group[group][model])
            if curve.empty:
                log.warning("%s %s: the seeds share no dev-loss step; no dev curve drawn", group, model)
                continue
            if dropped:
                log.warning("%s %s: %d dev-loss points not in every seed are left out", group, model, dropped)
            dev_curves[model] = curve
        out[first[group]] = {"curves": curves, "dev_curves": dev_curves, "dev": dev.get(group, {})}
    return dict(sorted(out.items(), key=lambda kv: _group_order(kv[0]))), [str(m) for m in missing]


def training_loss(metrics: Paths, out_pdf: str | PathLike[str], out_png: str | PathLike[str], *,
                  summaries: Paths = (), x: str = "step", smooth: int = 1, dpi: int = 200) -> Figure:  # fmt: skip
    """Training and dev loss curves per method: one panel per run configuration, two series per student.

    metrics: ``<corpus>/train/<run>/metrics.jsonl``: each student's training objective at every logged
    step (a line with small filled markers: the method's own loss, so panels are not comparable in level:
    DWML's is ω-weighted, SD's sums its exits) and, for runs trained with ``training.eval_every``, its
    dev loss every ``eval_every`` steps and at the last (open markers of the same shape joined by a thin
    line: masked-LM cross-entropy on the same dev blocks and masks, comparable across methods and
    steps). summaries (optional): the same runs' ``train_summary.json``; for a student without dev
    points in its metrics (runs logged without ``eval_every``, older runs), its ``final_dev_loss`` is drawn
    as one open marker at the last step. Dev losses share the loss axis for the baseline (whose objective
    is that CE) and have a right-hand axis for the other methods. Losses in nats.
    x: ``step`` or ``tokens``; smooth: trailing moving average of the training loss over that many
    logged points (1 = raw; dev points are never smoothed).
    """
    groups, missing = loss_curves("training_loss", metrics, summaries, x=x, smooth=smooth)
    with matplotlib.rc_context(_RC):
        fig, axes = _new_figure(len(groups))
        for ax, (run, entry) in zip(axes, groups.items(), strict=True):
            n = sorted({int(v) for c in entry["curves"].values() for v in c["n"].unique()})
            has_dev = bool(entry["dev_curves"] or entry["dev"])
            # the baseline's objective is the masked CE itself: its dev loss shares the axis; other methods'
            # objectives are scaled differently (ω-weighted, KD-mixed, summed over SD exits): a right axis
            dev_ax = ax if run.method == "baseline" or not has_dev else ax.twinx()
            where = " (masked CE)" if dev_ax is ax else " (right axis)"
            handles, final_only = [], False
            for i, (model, curve) in enumerate(entry["curves"].items()):
                style = _style(i)
                label = model + (" ± std" if max(n) > 1 else "")
                handles.append(_plot_series(ax, curve.index.to_numpy(float), curve["mean"].to_numpy(float),
                                            curve["std"].to_numpy(float), style, label))  # fmt: skip
                open_marker = {"marker": style["marker"], "markerfacecolor": "white", "markeredgecolor": style["color"],
                               "markeredgewidth": 1.3, "color": style["color"], "capsize": 3}  # fmt: skip
                if model in entry["dev_curves"]:
                    dev = entry["dev_curves"][model]
                    std = dev["std"].to_numpy(float)
                    spread = int(dev["n"].max()) > 1 and np.isfinite(std).all()
                    handles.append(dev_ax.errorbar(
                        dev.index.to_numpy(float), dev["mean"].to_numpy(float), yerr=std if spread else None,
                        markersize=6, linestyle=style["linestyle"], linewidth=0.8,
                        label=f"{model} dev{' ± std' if spread else ''}{where}", **open_marker))  # fmt: skip
                elif model in entry["dev"]:
                    x_end, mean, std, _ = entry["dev"][model]
                    dev_ax.errorbar([x_end], [mean], yerr=[std] if math.isfinite(std) else None, markersize=8,
                                    linestyle="none", **open_marker)  # fmt: skip
                    final_only = True
            if final_only:
                handles.append(Line2D([], [], marker="o", markersize=8, markerfacecolor="white", markeredgecolor="k",
                                      linestyle="none", label=f"final dev loss{where}"))  # fmt: skip
            if dev_ax is not ax:
                dev_ax.set_ylabel(f"{'' if entry['dev_curves'] else 'final '}dev loss, masked CE (nats)")
                dev_ax.grid(False)
                dev_ax.margins(y=0.3)
            smoothing = f", moving average of {smooth} logged points" if smooth > 1 else ""
            ax.set_title(f"{_group_label(run)} ({_seeds_text(n)}{smoothing})")
            ax.set_xlabel(LOSS_X[x])
            ax.set_ylabel("training loss, method's objective (nats)")
            ax.margins(x=0.08)
            # below the panel: inside, it would hide the right axis's markers (drawn above the left axis)
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=min(2, len(handles)),
                      frameon=False)  # fmt: skip
        fig.suptitle("Training and dev loss per method (lines: each method's own training objective; "
                     "open markers: dev masked-LM loss)")  # fmt: skip
    return _finish(fig, missing, out_pdf, out_png, dpi)


# --- registry and dispatcher ---------------------------------------------------------------------

_EVAL_PEERS = "<corpus>/eval/dwml/peers-<p>/alpha-<α>/seed-<s>/peer-<i>/<family>.json: every peer count, seed, peer"
_EVAL_ALPHA = "<corpus>/eval/dwml/peers-<P>/alpha-<a>/seed-<s>/peer-<i>/<family>.json: every α, seed, peer"
_REFERENCE = "optional: <corpus>/eval/baseline/seed-<s>/teacher/<family>.json (teacher line)"
_SUMMARIES_W = "<corpus>/train/dwml/peers-<P>/alpha-<α>/seed-<s>/train_summary.json: one configuration, every seed"
_EVAL_W = "<corpus>/eval/dwml/peers-<P>/alpha-<α>/seed-<s>/peer-<i>/<family>.json of those runs"
_BENCH = "benchmark: blimp (default), supplement, ewok or glue; other files are ignored"
_AGG = "peer_aggregate: mean | best | both (default) — a run's peers as their mean score and/or the best one"
_DPI = "dpi: PNG resolution (default 200)"


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its function, its inputs (name → path pattern), which may be omitted, its options."""

    function: Callable[..., Figure]
    inputs: Mapping[str, str]
    optional: tuple[str, ...]
    options: tuple[str, ...]
    description: str


#: Every figure by name: what it draws, its inputs (keyword → path pattern) and options.
FIGURES: dict[str, FigureSpec] = {
    "figure2": FigureSpec(
        figure2,
        {"peers_evals": _EVAL_PEERS, "alpha_evals": _EVAL_ALPHA, "weight_summaries": _SUMMARIES_W,
         "weight_evals": _EVAL_W, "reference": _REFERENCE},
        ("reference",), (_BENCH, _AGG, _DPI),
        "Figure 2 (a) accuracy vs number of peers, (b) vs α, (c) learned ω vs accuracy with Pearson R",
    ),
    "figure2a": FigureSpec(figure2a, {"evals": _EVAL_PEERS, "reference": _REFERENCE}, ("reference",),
                           (_BENCH, _AGG, _DPI), "Figure 2 (a): accuracy vs number of peers"),
    "figure2b": FigureSpec(figure2b, {"evals": _EVAL_ALPHA, "reference": _REFERENCE}, ("reference",),
                           (_BENCH, _AGG, _DPI), "Figure 2 (b): accuracy vs α at the largest peer count"),
    "figure2c": FigureSpec(figure2c, {"summaries": _SUMMARIES_W, "evals": _EVAL_W}, (), (_BENCH, _DPI),
                           "Figure 2 (c): each peer's final learned ω vs its accuracy, Pearson R"),
    "figure3": FigureSpec(
        figure3, {"peer_weights": "<corpus>/train/{dwml,kd_dwml}/peers-<p>/alpha-<a>/seed-<s>/peer_weights.csv"},
        (), (_DPI,), "Figure 3: ω trajectories during DWML/KD_DWML training, one panel per configuration",
    ),
    "figure4": FigureSpec(
        figure4, {"gpu": "<corpus>/train/<run>/gpu.csv of every run shown",
                  "summaries": "optional: the same runs' train_summary.json (why no GPU was recorded)"},
        ("summaries",), ("metric: util_pct (default), mem_used_mib or power_w", _DPI),
        "Figure 4: GPU utilisation over time per method; 'no GPU recorded' panels for CPU runs",
    ),
    "figure_size": FigureSpec(
        figure_size, {"summaries": _SIZE_SUMMARIES, "evals": _SIZE_EVALS}, (), (_BENCH, _DPI),
        "Model-size ablation: accuracy vs parameters (log scale) for the teacher, students trained alone "
        "(baseline objective) and DWML peers",
    ),
    "training_loss": FigureSpec(
        training_loss, {"metrics": "<corpus>/train/<run>/metrics.jsonl of every run shown",
                        "summaries": "optional: the same runs' train_summary.json (final dev loss of runs "
                                     "logged without dev points)"},
        ("summaries",), ("x: step (default) or tokens", "smooth: moving-average window in logged points (1)", _DPI),
        "Training and dev loss curves per method (metrics.jsonl; dev masked-LM loss every training.eval_every "
        "steps, or the final dev loss of the summaries)",
    ),
}  # fmt: skip


def write_figure(name: str, inputs: Mapping[str, Any], out_pdf: str | PathLike[str], out_png: str | PathLike[str],
                 options: Mapping[str, Any] | None = None) -> Figure:  # fmt: skip
    """Draw figure ``name`` of :data:`FIGURES` from ``inputs`` (input name → path or list of paths) into
    ``out_pdf`` and ``out_png`` (both written atomically); ``options`` are the figure's keyword options.

    From a Snakemake script: ``write_figure(snakemake.params.figure, dict(snakemake.input.items()),
    snakemake.output.pdf, snakemake.output.png, snakemake.params.get("options", {}))``.
    InputError for an unknown figure, a missing or unknown input name, an unknown option, or no data.
    """
    if name not in FIGURES:
        raise InputError(f"unknown figure {name!r}; one of {', '.join(FIGURES)}")
    spec = FIGURES[name]
    unknown = sorted(set(inputs) - set(spec.inputs))
    if unknown:
        raise InputError(f"{name}: unknown input(s) {', '.join(unknown)}; it takes {', '.join(spec.inputs)}")
    absent = [k for k in spec.inputs if k not in inputs and k not in spec.optional]
    if absent:
        raise InputError(f"{name}: input(s) {', '.join(absent)} not given; "
                         + "; ".join(f"{k}: {spec.inputs[k]}" for k in absent))  # fmt: skip
    options = dict(options or {})
    allowed = [p.name for p in inspect.signature(spec.function).parameters.values()
               if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in spec.inputs]  # fmt: skip
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise InputError(f"{name}: unknown option(s) {', '.join(bad)}; options: {', '.join(allowed)}")
    paths = {k: [v] if isinstance(v, str | PathLike) else list(v) for k, v in inputs.items()}
    return spec.function(**paths, out_pdf=out_pdf, out_png=out_png, **options)
