"""The training figures: Figure 3 (ω trajectories), Figure 4 (GPU utilisation) and the training and dev
loss curves, with the readers of gpu.csv and metrics.jsonl. Inputs and options:
:mod:`babyteach.report.figures`.
"""

from __future__ import annotations

import json
import logging
import math
import textwrap
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from babyteach.errors import InputError
from babyteach.gpu import CSV_COLUMNS as GPU_CSV_COLUMNS
from babyteach.report.figure_data import (
    Paths,
    _as_paths,
    _column_mean_std,
    _mean_std,
    _need_inputs,
    _one,
    _split_missing,
)
from babyteach.report.figure_style import (
    _RC,
    _finish,
    _group_label,
    _group_order,
    _model_order,
    _new_figure,
    _plot_series,
    _seeds_text,
    _style,
)
from babyteach.report.frames import summary_frame
from babyteach.report.runs import Collapse, RunId, collapse_of, load_peer_weights, parse_result_path, read_result_csv

__all__ = [
    "NO_GPU_TEXT",
    "collapse_text",
    "figure3",
    "figure4",
    "gpu_series",
    "load_gpu_csv",
    "load_metrics",
    "loss_curves",
    "peer_weight_trajectories",
    "training_loss",
]

log = logging.getLogger(__name__)

#: The text of a GPU panel of runs without GPU samples.
NO_GPU_TEXT = "no GPU recorded"

#: Units of the GPU metrics figure 4 can draw (gpu.csv columns).
GPU_METRICS = {"util_pct": "GPU utilisation (%)", "mem_used_mib": "GPU memory used (MiB)", "power_w": "GPU power (W)"}


# --- figure 3: ω trajectories -------------------------------------------------------------------


def _peer_weight_runs(
    figure: str, peer_weights: Paths
) -> tuple[dict[str, dict[int, pd.DataFrame]], dict[str, dict[int, Collapse | None]], dict[str, RunId], list[Path]]:
    """Every listed run's ω by step ({group: {seed: frame with one column per peer}}), whether it collapsed
    onto one peer ({group: {seed: Collapse or None}}), one RunId per group, and the missing paths."""
    paths = _need_inputs(
        figure,
        "peer_weights",
        peer_weights,
        "<corpus>/train/{dwml,kd_dwml}/peers-<p>/alpha-<a>/seed-<s>/peer_weights.csv",
        "peer_weights.csv",
    )
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
        raise InputError(
            f"{figure}: none of the {len(paths)} peer_weights.csv files listed has rows; train DWML or KD_DWML first"
        )
    _one(figure, [r.corpus for r in first.values()], "corpora", "pass one corpus's runs")
    return groups, collapses, first, missing


def _mean_trajectories(
    figure: str, groups: Mapping[str, Mapping[int, pd.DataFrame]], first: Mapping[str, RunId]
) -> dict[RunId, dict[str, pd.DataFrame]]:
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


def peer_weight_trajectories(
    figure: str, peer_weights: Paths
) -> tuple[dict[RunId, dict[str, pd.DataFrame]], list[str]]:
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
    lines = [
        (f"seed {seed}: " if several else "") + f"collapsed onto {c.peer} at step {c.step} (ω = {c.weight:.4f})"
        for seed, c in sorted(collapses.items())
        if c is not None
    ]
    return "\n".join(lines)


def figure3(peer_weights: Paths) -> Figure:
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
                _plot_series(
                    ax,
                    curve.index.to_numpy(float),
                    curve["mean"].to_numpy(float),
                    curve["std"].to_numpy(float),
                    _style(i),
                    label,
                )
            ax.axhline(1 / len(peers), color="0.5", linestyle=":", linewidth=1.0, label=f"uniform 1/{len(peers)}")
            note = collapse_text(collapses[run.group])
            ax.set_title(f"{_group_label(run)} ({_seeds_text(n)})" + (f"\n{note}" if note else ""))
            ax.set_xlabel("optimiser step")
            ax.set_ylabel("peer weight ω")
            ax.legend(loc="best")
        fig.suptitle("Figure 3: peer weights ω during training")
    return _finish(fig, missing)


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


def gpu_series(
    figure: str, gpu: Paths, summaries: Paths = (), *, metric: str = "util_pct"
) -> tuple[dict[RunId, dict[str, Any]], list[str]]:
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
        raise InputError(
            f"{figure}: every gpu.csv listed is missing (e.g. {paths[0]}); runs trained before GPU sampling have none"
        )
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
        out[entry["run"]] = {
            "curve": curve,
            "gpus": sorted(entry["gpus"]),
            "seeds": sorted(seeds),
            "empty": sorted(entry["empty"]),
            "reason": reason,
        }
    return dict(sorted(out.items(), key=lambda kv: _group_order(kv[0]))), [str(m) for m in missing]


def _wrap(text: str, width: int = 48) -> str:
    return "\n".join(textwrap.fill(part, width) for part in text.split("\n"))


def figure4(gpu: Paths, *, summaries: Paths = (), metric: str = "util_pct") -> Figure:
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
                ax.text(
                    0.5,
                    0.55,
                    NO_GPU_TEXT,
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    fontsize=11,
                    fontweight="bold",
                )
                ax.text(
                    0.5,
                    0.42,
                    f"({_seeds_text(n)})\n" + _wrap(entry["reason"]),
                    ha="center",
                    va="top",
                    transform=ax.transAxes,
                    fontsize=8,
                )
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                continue
            n = curve["n"].unique().tolist()
            gpus = "/".join(str(g) for g in entry["gpus"])
            label = f"mean over {gpus} GPU{'s' if entry['gpus'] != [1] else ''} ({_seeds_text(n)}"
            label += ", ± std)" if max(n) > 1 else ")"
            _plot_series(
                ax,
                curve.index.to_numpy(float),
                curve["mean"].to_numpy(float),
                curve["std"].to_numpy(float),
                _style(0),
                label,
                markevery=max(1, len(curve) // 10),
            )
            if entry["empty"]:
                ax.set_title(f"{_group_label(run)}\n(seed {', '.join(map(str, entry['empty']))}: {NO_GPU_TEXT})")
            if metric == "util_pct":
                ax.set_ylim(0, 105)
            ax.set_xlabel("time since training start (s)")
            ax.set_ylabel(GPU_METRICS[metric])
            ax.legend(loc="best")
        fig.suptitle(f"Figure 4: {GPU_METRICS[metric].split(' (')[0]} during training")
    return _finish(fig, missing)


# --- training-loss curves ------------------------------------------------------------------------


#: Kinds of loss in a metrics.jsonl line: its key and the ``kind`` of :func:`load_metrics`' rows.
METRIC_KINDS = {"loss": "train", "dev_loss": "dev"}


def _numbers_per_model(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
    )


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
        raise InputError(
            f"{path}: not a readable metrics file ({err}); rerun the training step that writes it"
        ) from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{number}: not valid JSON ({err})") from None
        kinds = [key for key in METRIC_KINDS if isinstance(record, dict) and key in record]
        if not (
            kinds
            and isinstance(record.get("step"), int)
            and not isinstance(record["step"], bool)
            and all(_numbers_per_model(record[key]) for key in kinds)
        ):
            raise InputError(
                f"{path}:{number}: expected an object with an integer 'step' and a 'loss' or 'dev_loss' "
                "object of numbers per student"
            )
        tokens = record.get("tokens", math.nan)
        rows += [
            {"step": record["step"], "tokens": tokens, "model": m, "kind": METRIC_KINDS[key], "loss": float(v)}
            for key in kinds
            for m, v in record[key].items()
        ]
    return pd.DataFrame(rows, columns=["step", "tokens", "model", "kind", "loss"])


#: x axes of the training-loss figure.
LOSS_X = {"step": "optimiser step", "tokens": "training tokens seen"}


def loss_curves(
    figure: str, metrics: Paths, summaries: Paths = (), *, x: str = "step", smooth: int = 1
) -> tuple[dict[RunId, dict[str, Any]], list[str]]:
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
        raise InputError(
            f"{figure}: none of the {len(paths)} metrics.jsonl files listed has a logged step "
            "(missing or empty); train first"
        )
    _one(figure, [r.corpus for r in first.values()], "corpora", "pass one corpus's runs")
    dev: dict[str, dict[str, tuple[float, float, float, int]]] = {}
    spaths = _as_paths(summaries, "train_summary.json")
    sfound, smissing = _split_missing(spaths)
    missing += smissing
    if sfound:
        stud = summary_frame(sfound)
        strangers = sorted(set(stud["group"]) - set(per_group))
        if strangers:
            raise InputError(
                f"{figure}: summaries of {', '.join(strangers)} have no metrics.jsonl among the "
                "metrics; pass the metrics and summaries of the same runs"
            )
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


def training_loss(metrics: Paths, *, summaries: Paths = (), x: str = "step", smooth: int = 1) -> Figure:
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
                handles.append(
                    _plot_series(
                        ax,
                        curve.index.to_numpy(float),
                        curve["mean"].to_numpy(float),
                        curve["std"].to_numpy(float),
                        style,
                        label,
                    )
                )
                open_marker = {
                    "marker": style["marker"],
                    "markerfacecolor": "white",
                    "markeredgecolor": style["color"],
                    "markeredgewidth": 1.3,
                    "color": style["color"],
                    "capsize": 3,
                }
                if model in entry["dev_curves"]:
                    dev = entry["dev_curves"][model]
                    std = dev["std"].to_numpy(float)
                    spread = int(dev["n"].max()) > 1 and np.isfinite(std).all()
                    handles.append(
                        dev_ax.errorbar(
                            dev.index.to_numpy(float),
                            dev["mean"].to_numpy(float),
                            yerr=std if spread else None,
                            markersize=6,
                            linestyle=style["linestyle"],
                            linewidth=0.8,
                            label=f"{model} dev{' ± std' if spread else ''}{where}",
                            **open_marker,
                        )
                    )
                elif model in entry["dev"]:
                    x_end, mean, std, _ = entry["dev"][model]
                    dev_ax.errorbar(
                        [x_end],
                        [mean],
                        yerr=[std] if math.isfinite(std) else None,
                        markersize=8,
                        linestyle="none",
                        **open_marker,
                    )
                    final_only = True
            if final_only:
                handles.append(
                    Line2D(
                        [],
                        [],
                        marker="o",
                        markersize=8,
                        markerfacecolor="white",
                        markeredgecolor="k",
                        linestyle="none",
                        label=f"final dev loss{where}",
                    )
                )
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
            ax.legend(
                handles=handles,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.2),
                ncols=min(2, len(handles)),
                frameon=False,
            )
        fig.suptitle(
            "Training and dev loss per method (lines: each method's own training objective; "
            "open markers: dev masked-LM loss)"
        )
    return _finish(fig, missing)
