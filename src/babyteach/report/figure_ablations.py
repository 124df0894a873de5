"""The ablation figures: Figure 2 (accuracy vs number of peers, vs α, learned ω vs accuracy) and the
model-size figure (accuracy vs parameters). Inputs and options: :mod:`babyteach.report.figures`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from babyteach.errors import InputError
from babyteach.report.figure_data import Paths, _need_inputs, _one, _split_missing
from babyteach.report.figure_style import (
    _RC,
    FIGURE_VARIANT,
    _benchmark_axis,
    _finish,
    _group_label,
    _group_order,
    _model_order,
    _new_figure,
    _seeds_text,
    _style,
)
from babyteach.report.frames import aggregate_seeds, check_consistent, eval_frame, summary_frame
from babyteach.report.runs import BENCHMARK_OF_FAMILY, BENCHMARKS, METHOD_LABELS, RunId, parse_result_path

__all__ = [
    "ablation_points",
    "figure2",
    "figure2a",
    "figure2b",
    "figure2c",
    "figure_size",
    "pearson_r",
    "size_points",
    "weight_accuracy_points",
]

log = logging.getLogger(__name__)


# --- figure 2: ablations ------------------------------------------------------------------------

#: How a run's peers are summarised in figure 2 (a)/(b).
PEER_AGGREGATES = {"mean": "mean over peers", "best": "best peer"}


def _benchmark_rows(
    figure: str, evals: Paths, benchmark: str, pattern: str, name: str = "evals"
) -> tuple[pd.DataFrame, list[str]]:
    """Overall eval rows of ``benchmark`` among ``evals`` (input ``name``) and the paths of the missing ones."""
    if benchmark not in BENCHMARKS:
        raise InputError(f"{figure}: unknown benchmark {benchmark!r}; one of {', '.join(BENCHMARKS)}")
    paths = _need_inputs(figure, name, evals, pattern)
    frame = eval_frame(paths, variant=FIGURE_VARIANT)
    rows = frame[frame["benchmark"] == benchmark]
    if rows.empty:
        families = ", ".join(sorted(set(frame["family"])))
        raise InputError(
            f"{figure}: none of the {len(paths)} evaluation files is a {BENCHMARKS[benchmark]} result "
            f"(families given: {families}); pass <family>.json files of benchmark {benchmark!r} "
            f"({', '.join(f for f, b in BENCHMARK_OF_FAMILY.items() if b == benchmark)})"
        )
    check_consistent(rows)
    missing = rows.loc[rows["status"] != "ok", "path"].tolist()
    if (rows["status"] != "ok").all():
        raise InputError(
            f"{figure}: every {BENCHMARKS[benchmark]} result file listed is missing "
            f"({len(rows)} files, e.g. {rows['path'].iloc[0]}); run the evaluation first"
        )
    return rows, missing


def ablation_points(
    figure: str, evals: Paths, by: str, *, benchmark: str = "blimp", peer_aggregate: str = "both", name: str = "evals"
) -> tuple[pd.DataFrame, list[str], RunId]:
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
        raise InputError(
            f"{figure}: the evals are of baseline runs (the teacher or students trained alone); pass "
            "the peers of a student method"
        )
    fixed = "alpha" if by == "peers" else "peers"
    if by == "alpha" and rows["alpha"].isna().all():
        raise InputError(f"{figure}: method {method!r} has no α; pass runs of a mutual method (dml, dwml, kd_dwml)")
    hint = (
        "pass the runs of one α (the main mutual.alpha)"
        if fixed == "alpha"
        else "pass the runs of one peer count (the largest)"
    )
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
            per_run.append(
                {
                    by: float(run.alpha) if by == "alpha" else int(run.peers),
                    "aggregate": aggregate,
                    "seed": run.seed,
                    "score": value,
                    "path": run_name,
                }
            )
        missing += [f"{run_name}/{m} (no {benchmark} result listed)" for m in absent if not (part["model"] == m).any()]
    points = aggregate_seeds(pd.DataFrame(per_run), [by, "aggregate"])
    points = points.sort_values(
        [by, "aggregate"], key=lambda c: c.map(aggregates.index) if c.name == "aggregate" else c
    )
    if points["mean"].isna().all():
        raise InputError(f"{figure}: no run has a {BENCHMARKS[benchmark]} result for every peer; nothing to plot")
    example = parse_result_path(rows["path"].iloc[0]).run
    return points.reset_index(drop=True), missing, example


def _reference(figure: str, reference: Paths, benchmark: str) -> tuple[float, float, int] | None:
    """Mean, std and seed count of the baseline teacher's score (percent), or None without inputs."""
    if not reference:
        return None
    rows, _ = _benchmark_rows(
        figure, reference, benchmark, "<corpus>/eval/baseline/seed-<s>/teacher/<family>.json", "reference"
    )
    rows = rows[rows["status"] == "ok"]
    agg = aggregate_seeds(rows.assign(score=rows["score"] * 100), ["method"])
    row = agg.iloc[0]
    return float(row["mean"]), float(row["std"]), int(row["n_seeds"])


def _draw_accuracy_vs(
    ax: Axes,
    figure: str,
    by: str,
    evals: Paths,
    reference: Paths,
    benchmark: str,
    peer_aggregate: str,
    panel: str,
    name: str = "evals",
) -> list[str]:
    points, missing, run = ablation_points(
        figure, evals, by, benchmark=benchmark, peer_aggregate=peer_aggregate, name=name
    )
    for i, (aggregate, part) in enumerate(points.groupby("aggregate", sort=False)):
        part = part[part["mean"].notna()]
        x, mean, std = part[by].to_numpy(float), part["mean"].to_numpy(float), part["std"].to_numpy(float)
        style = _style(i)
        label = f"{PEER_AGGREGATES[aggregate]} ({_seeds_text(part['n_seeds'].tolist())}"
        label += ", ± std)" if np.isfinite(std).any() else ")"
        ax.errorbar(
            x,
            mean,
            yerr=np.where(np.isfinite(std), std, 0.0),
            label=label,
            capsize=3,
            markersize=5,
            linewidth=1.4,
            **style,
        )
    ref = _reference(figure, reference, benchmark)
    if ref is not None:
        mean, std, n = ref
        ax.axhline(
            mean,
            color="0.35",
            linestyle=(0, (6, 3)),
            linewidth=1.2,
            label=f"{METHOD_LABELS['baseline']} teacher ({_seeds_text(n)})",
        )
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


def _join_scores(
    figure: str, stud: pd.DataFrame, rows: pd.DataFrame, runs: Iterable[str], among: str, unlisted: str
) -> tuple[pd.DataFrame, list[str]]:
    """The students of the summaries (``stud``, :func:`summary_frame`) with their scores among the eval
    ``rows`` (NaN where the result is missing), and ``<run>/<model> (<unlisted>)`` for each student whose
    result is not among the rows at all. InputError naming ``figure`` for evals of a run not in ``runs``
    (the runs of the ``among`` input).
    """
    strangers = sorted(set(rows["run"]) - set(runs))
    if strangers:
        raise InputError(
            f"{figure}: evals of run(s) {', '.join(strangers)} have no train_summary.json among the "
            f"{among}; pass the summaries and evals of the same runs"
        )
    ok = rows[rows["status"] == "ok"][["run", "model", "score"]]
    points = stud.merge(ok, on=["run", "model"], how="left")
    absent = points[points["score"].isna()]
    notes = [
        f"{r}/{m} ({unlisted})"
        for r, m in zip(absent["run"], absent["model"], strict=True)
        if not ((rows["run"] == r) & (rows["model"] == m)).any()
    ]
    return points, notes


def weight_accuracy_points(
    figure: str,
    summaries: Paths,
    evals: Paths,
    *,
    benchmark: str = "blimp",
    names: tuple[str, str] = ("summaries", "evals"),
) -> tuple[pd.DataFrame, list[str], RunId]:
    """Figure 2 (c)'s points: one row per run and peer with ``peer_weight`` (final ω) and ``score`` (%).

    Returns (points, missing inputs, one RunId of the runs). Columns ``run, seed, model, peer_weight,
    score, parameters`` (rows of peers whose result is missing dropped, named in the missing list). The summaries must be of one configuration (method, p, α)
    that learns ω, possibly several seeds; every eval file must belong to one of those runs.
    """
    spaths = _need_inputs(
        figure,
        names[0],
        summaries,
        "<corpus>/train/dwml/peers-<p>/alpha-<a>/seed-<s>/train_summary.json",
        "train_summary.json",
    )
    present, missing_summaries = _split_missing(spaths)
    if not present:
        raise InputError(f"{figure}: every train_summary.json listed is missing (e.g. {spaths[0]}); train first")
    stud = summary_frame(present)
    _one(figure, stud["corpus"], "corpora", "pass one corpus's runs")
    _one(figure, stud["group"], "run configurations", "pass the seeds of one DWML/KD_DWML configuration")
    if stud["peer_weight"].isna().all():
        raise InputError(
            f"{figure}: the runs ({stud['run'].iloc[0]}, ...) have no learned peer weights "
            f"(method {stud['method'].iloc[0]!r}); pass DWML or KD_DWML runs"
        )
    rows, missing = _benchmark_rows(
        figure, evals, benchmark, "<corpus>/eval/<run>/peer-<i>/<family>.json of the summaries' runs", names[1]
    )
    points, unlisted = _join_scores(figure, stud, rows, stud["run"], "summaries", f"no {benchmark} result")
    missing += [str(p) for p in missing_summaries] + unlisted
    points = points[points["score"].notna()].assign(score=lambda f: f["score"] * 100)
    if points.empty:
        raise InputError(f"{figure}: no peer has both a learned weight and a {BENCHMARKS[benchmark]} result")
    columns = ["run", "seed", "model", "peer_weight", "score", "parameters"]
    points = points[columns].sort_values(
        ["model", "seed"], key=lambda c: c.map(_model_order) if c.name == "model" else c
    )
    return points.reset_index(drop=True), missing, parse_result_path(present[0]).run


def _draw_weight_accuracy(
    ax: Axes,
    figure: str,
    summaries: Paths,
    evals: Paths,
    benchmark: str,
    panel: str,
    names: tuple[str, str] = ("summaries", "evals"),
) -> list[str]:
    points, missing, run = weight_accuracy_points(figure, summaries, evals, benchmark=benchmark, names=names)
    n_seeds = points["seed"].nunique()
    models = sorted(points["model"].unique(), key=_model_order)
    for i, model in enumerate(models):
        part = points[points["model"] == model]
        style = _style(i)
        params = part["parameters"].iloc[0]
        label = f"{model} ({params / 1e6:.1f}M params)" if params >= 1e5 else f"{model} ({params:,.0f} params)"
        if n_seeds > 1:
            ax.scatter(
                part["peer_weight"],
                part["score"],
                marker=style["marker"],
                color=style["color"],
                alpha=0.35,
                s=16,
                linewidths=0,
            )
            xs, ys = part["peer_weight"], part["score"]
            ax.errorbar(
                xs.mean(),
                ys.mean(),
                xerr=xs.std(ddof=1) if len(xs) > 1 else None,
                yerr=ys.std(ddof=1) if len(ys) > 1 else None,
                marker=style["marker"],
                color=style["color"],
                linestyle="none",
                capsize=3,
                markersize=7,
                label=label + " mean ± std",
            )
        else:
            ax.plot(
                part["peer_weight"],
                part["score"],
                marker=style["marker"],
                color=style["color"],
                linestyle="none",
                markersize=7,
                label=label,
            )
    if run.peers:
        ax.axvline(1 / run.peers, color="0.5", linestyle=":", linewidth=1.0, label=f"uniform ω = 1/{run.peers}")
    _, r_text = pearson_r(points["peer_weight"], points["score"])
    ax.set_title(f"({panel}) {_group_label(run)}: learned ω vs accuracy\n{r_text}, {_seeds_text(n_seeds)}")
    ax.set_xlabel("final peer weight ω")
    ax.set_ylabel(_benchmark_axis(benchmark, evals))
    ax.legend(loc="best")
    return missing


def _accuracy_vs_figure(name: str, by: str, panel: str, doc: str) -> Callable[..., Figure]:
    """The builder of Figure 2 (a) or (b): one panel of accuracy against ``by`` (:func:`_draw_accuracy_vs`)."""

    def build(evals: Paths, *, reference: Paths = (), benchmark: str = "blimp", peer_aggregate: str = "both") -> Figure:
        with matplotlib.rc_context(_RC):
            fig, (ax,) = _new_figure(1)
            missing = _draw_accuracy_vs(ax, name, by, evals, reference, benchmark, peer_aggregate, panel)
        return _finish(fig, missing)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return build


figure2a = _accuracy_vs_figure(
    "figure2a",
    "peers",
    "a",
    """Figure 2 (a): ``benchmark`` accuracy vs number of peers (one method, one α).

    evals: ``<corpus>/eval/dwml/peers-<p>/alpha-<α>/seed-<s>/peer-<i>/<family>.json`` for every peer count,
    seed and peer; reference (optional): the baseline teacher's ``.../eval/baseline/seed-<s>/teacher/<family>.json``
    (a horizontal line). peer_aggregate: ``mean`` (mean over a run's peers), ``best`` (its best peer) or
    ``both`` (two lines).
    """,
)
figure2b = _accuracy_vs_figure(
    "figure2b",
    "alpha",
    "b",
    """Figure 2 (b): ``benchmark`` accuracy vs α (one method, one peer count: the largest).

    evals: ``<corpus>/eval/dwml/peers-<P>/alpha-<a>/seed-<s>/peer-<i>/<family>.json`` for every α, seed and
    peer; reference and peer_aggregate as in :func:`figure2a`.
    """,
)


def figure2c(summaries: Paths, evals: Paths, *, benchmark: str = "blimp") -> Figure:
    """Figure 2 (c): each peer's final learned ω vs its ``benchmark`` accuracy, Pearson R in the title.

    summaries: ``<corpus>/train/dwml/peers-<P>/alpha-<α>/seed-<s>/train_summary.json`` (one configuration,
    any seeds; ω from ``students[peer].peer_weight``); evals: those runs' ``peer-<i>/<family>.json``. R is
    computed over every (seed, peer) point; with several seeds each peer also gets a mean ± std marker.
    """
    with matplotlib.rc_context(_RC):
        fig, (ax,) = _new_figure(1)
        missing = _draw_weight_accuracy(ax, "figure2c", summaries, evals, benchmark, "c")
    return _finish(fig, missing)


def figure2(
    peers_evals: Paths,
    alpha_evals: Paths,
    weight_summaries: Paths,
    weight_evals: Paths,
    *,
    reference: Paths = (),
    benchmark: str = "blimp",
    peer_aggregate: str = "both",
) -> Figure:
    """Figure 2, panels (a), (b), (c) in one row: the inputs of :func:`figure2a` (``peers_evals``),
    :func:`figure2b` (``alpha_evals``) and :func:`figure2c` (``weight_summaries``, ``weight_evals``)."""
    with matplotlib.rc_context(_RC):
        fig, (a, b, c) = _new_figure(3)
        missing = _draw_accuracy_vs(
            a, "figure2 (a)", "peers", peers_evals, reference, benchmark, peer_aggregate, "a", "peers_evals"
        )
        missing += _draw_accuracy_vs(
            b, "figure2 (b)", "alpha", alpha_evals, reference, benchmark, peer_aggregate, "b", "alpha_evals"
        )
        missing += _draw_weight_accuracy(
            c, "figure2 (c)", weight_summaries, weight_evals, benchmark, "c", ("weight_summaries", "weight_evals")
        )
    return _finish(fig, missing)


# --- model-size ablation: accuracy vs parameters -------------------------------------------------

_SIZE_SUMMARIES = (
    "<corpus>/train/<run>/train_summary.json or the run folder: baseline/seed-<s> (teacher), "
    "baseline/peers-<p>/seed-<s> (students trained alone), dwml/peers-<p>/alpha-<α>/seed-<s>, "
    "...; every seed"
)
_SIZE_EVALS = "<corpus>/eval/<run>/<model>/<family>.json of those runs' models"


def size_points(
    figure: str, summaries: Paths, evals: Paths, *, benchmark: str = "blimp"
) -> tuple[pd.DataFrame, list[str], dict[str, RunId]]:
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
    points, unlisted = _join_scores(
        figure, stud, rows, listed, "summaries (the parameter counts)", f"no {benchmark} result listed"
    )
    missing += [str(p) for p in missing_summaries] + unlisted
    counts = points.groupby(["group", "model"], sort=False)["parameters"].nunique()
    for (group, model), n in counts.items():
        if n > 1:
            found = sorted(points.loc[(points["group"] == group) & (points["model"] == model), "parameters"].unique())
            shown = ", ".join(f"{v:,.0f}" for v in found)
            raise InputError(
                f"{figure}: the seeds of {group} give {model} different parameter counts ({shown}); "
                "pass runs of one architecture search"
            )
    points = points.assign(score=points["score"] * 100)
    agg = aggregate_seeds(points, ["group", "model", "parameters"])
    agg = agg[agg["mean"].notna()]
    if agg.empty:
        raise InputError(
            f"{figure}: no model has both a parameter count and a {BENCHMARKS[benchmark]} result; nothing to plot"
        )
    runs = {g: parse_result_path(p).run for g, p in zip(stud["group"], stud["path"], strict=True)}
    order = sorted(agg.index, key=lambda i: (_group_order(runs[agg.at[i, "group"]]), _model_order(agg.at[i, "model"])))
    agg = agg.loc[order, ["group", "model", "parameters", "mean", "std", "n_seeds", "seeds"]]
    agg["parameters"] = agg["parameters"].astype(float)
    return agg.reset_index(drop=True), missing, {g: runs[g] for g in dict.fromkeys(agg["group"])}


def figure_size(summaries: Paths, evals: Paths, *, benchmark: str = "blimp") -> Figure:
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
            ax.errorbar(
                part["parameters"].to_numpy(float),
                part["mean"].to_numpy(float),
                yerr=np.where(np.isfinite(std), std, 0.0),
                label=label,
                capsize=3,
                markersize=6,
                linewidth=1.2,
                **_style(i),
            )
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel(_benchmark_axis(benchmark, evals))
        corpus = next(iter(runs.values())).corpus
        ax.set_title(f"Accuracy vs model size ({BENCHMARKS.get(benchmark, benchmark)}, {corpus})")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    return _finish(fig, missing)
