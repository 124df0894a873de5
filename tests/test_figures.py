"""The paper's figures (babyteach.report.figures) from tiny hand-written result files.

Every fixture is written here in the workflow's real formats (train_summary.json, metrics.jsonl,
peer_weights.csv, gpu.csv, zero-shot <family>.json); the tests read back what was drawn.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from babyteach.errors import InputError
from babyteach.report.figure_ablations import (
    ablation_points,
    figure2a,
    figure2b,
    figure2c,
    figure_size,
    pearson_r,
    size_points,
    weight_accuracy_points,
)
from babyteach.report.figure_style import PNG_DPI
from babyteach.report.figure_training import NO_GPU_TEXT, figure3, figure4, load_metrics, loss_curves, training_loss
from babyteach.report.figures import FIGURES, write_figure
from babyteach.report.runs import COLLAPSE_WEIGHT, Collapse, collapse_of

CORPUS = "2024-10M"
DPI = 40  # small PNGs: the tests check content, not resolution
GPU_HEADER = "time_s,gpu,util_pct,mem_used_mib,mem_total_mib,power_w\n"


# --- fixture writers (the workflow's formats) ---------------------------------------------------


def run_dir(root: Path, run: str) -> Path:
    path = root / "results" / CORPUS / "train" / run
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_summary(
    root: Path, run: str, method: str, students: dict[str, dict], steps: int = 6, gpu: dict | None = None
) -> Path:
    entries = {
        name: {"architecture": {"heads": 1, "hidden": 16, "layers": 1}, "parameters": 1000 * (i + 1), **extra}
        for i, (name, extra) in enumerate(students.items())
    }
    summary = {
        "format_version": 2,
        "method": method,
        "students": entries,
        "steps": steps,
        "tokens": steps * 512,
        "wall_time_s": 1.0,
        "device": "cpu",
    }
    if gpu is not None:
        summary["gpu"] = gpu
    path = run_dir(root, run) / "train_summary.json"
    path.write_text(json.dumps(summary), encoding="utf-8")
    return path


def write_eval(root: Path, run: str, model: str, accuracy: float, family: str = "blimp-filtered") -> Path:
    path = root / "results" / CORPUS / "eval" / run / model / f"{family}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    numbers = {
        "macro_accuracy": accuracy,
        "accuracy": accuracy,
        "n_pairs": 10,
        "ties": 0,
        "tasks": {"task_a": {"accuracy": accuracy, "correct": 1, "n": 2, "ties": 0}},
        "groups": {"group_a": {"accuracy": accuracy, "correct": 1, "n": 2, "ties": 0}},
    }
    # official: another number, which no figure may show (they draw pll-word-l2r and say so)
    official = {**numbers, "macro_accuracy": 1 - accuracy, "accuracy": 1 - accuracy}
    result = {
        "version": 2,
        "family": family,
        "data_dir": family,
        "max_per_task": None,
        "variants": {"official": official, "pll-word-l2r": numbers},
    }
    path.write_text(json.dumps(result), encoding="utf-8")
    return path


def write_peer_weights(root: Path, run: str, steps: list[int], weights: dict[str, list[float]]) -> Path:
    peers = list(weights)
    lines = [
        "step,update,eta,gamma,outer_loss,"
        + ",".join(f"weight.{p}" for p in peers)
        + ","
        + ",".join(f"hypergradient.{p}" for p in peers)
    ]
    for k, step in enumerate(steps):
        extra = ",,," if k == 0 else "0.25,0.001,5.9,"
        grads = ",".join("" if k == 0 else "-0.01" for _ in peers)
        lines.append(f"{step},{k}," + extra + ",".join(str(weights[p][k]) for p in peers) + "," + grads)
    path = run_dir(root, run) / "peer_weights.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_metrics(
    root: Path, run: str, losses: dict[int, dict[str, float]], dev: dict[int, dict[str, float]] | None = None
) -> Path:
    """metrics.jsonl as train.py writes it: a line per logged step and, with ``dev``, a dev-loss line per
    evaluation after that step's line."""
    lines = []
    for step in sorted(set(losses) | set(dev or {})):
        if step in losses:
            lines.append(
                json.dumps(
                    {
                        "step": step,
                        "tokens": step * 512,
                        "lr": 0.001,
                        "loss": losses[step],
                        "grad_norm": {m: 1.0 for m in losses[step]},
                        "tokens_per_s": 100.0,
                    }
                )
            )
        if dev and step in dev:
            lines.append(json.dumps({"step": step, "tokens": step * 512, "dev_loss": dev[step]}))
    path = run_dir(root, run) / "metrics.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_gpu(root: Path, run: str, rows: list[tuple[float, int, float]]) -> Path:
    path = run_dir(root, run) / "gpu.csv"
    body = "".join(f"{t},{g},{u},1000,80000,\n" for t, g, u in rows)
    path.write_text(GPU_HEADER + body, encoding="utf-8")
    return path


def outputs(tmp_path: Path, name: str) -> tuple[Path, Path]:
    return tmp_path / "fig" / f"{name}.pdf", tmp_path / "fig" / f"{name}.png"


def assert_written(pdf: Path, png: Path) -> None:
    assert pdf.read_bytes().startswith(b"%PDF")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not [p for p in pdf.parent.iterdir() if p.name.startswith(".")]  # no atomic-write temporary left


def png_width(path: Path) -> int:
    """The width in pixels of a PNG file (its IHDR chunk)."""
    return int.from_bytes(path.read_bytes()[16:20], "big")


def line(ax, label: str):
    (found,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return found


def texts(fig) -> str:
    parts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        parts += [ax.get_title(), *(t.get_text() for t in ax.texts)]
        if ax.get_legend():
            parts += [t.get_text() for t in ax.get_legend().get_texts()]
    return "\n".join(parts)


def dwml(p: int, seed: int, alpha: float = 0.5) -> str:
    return f"dwml/peers-{p}/alpha-{alpha:g}/seed-{seed}"


# --- figure 3 --------------------------------------------------------------------------------------


def test_figure3_lines_are_the_csv_columns(tmp_path):
    steps = [0, 2, 4, 6]
    weights = {
        "peer-1": [1 / 3, 0.40, 0.45, 0.50],
        "peer-2": [1 / 3, 0.35, 0.33, 0.30],
        "peer-3": [1 / 3, 0.25, 0.22, 0.20],
    }
    csv = write_peer_weights(tmp_path, dwml(3, 0), steps, weights)
    pdf, png = outputs(tmp_path, "figure3")
    fig = write_figure("figure3", {"peer_weights": [csv]}, pdf, png, {"dpi": DPI})
    assert_written(pdf, png)
    (ax,) = fig.axes
    for peer, values in weights.items():
        drawn = line(ax, peer)
        np.testing.assert_allclose(drawn.get_xdata(), steps)
        np.testing.assert_allclose(drawn.get_ydata(), values)
    assert line(ax, "uniform 1/3").get_ydata()[0] == pytest.approx(1 / 3)
    assert ax.get_xlabel() == "optimiser step" and ax.get_ylabel() == "peer weight ω"
    assert "n = 1 seed" in ax.get_title() and "p = 3" in ax.get_title()
    assert not ax.collections  # one seed: no ± std band


def test_figure3_averages_seeds_with_a_std_band_one_panel_per_configuration(tmp_path):
    a = write_peer_weights(tmp_path, dwml(2, 0), [0, 2], {"peer-1": [0.5, 0.6], "peer-2": [0.5, 0.4]})
    b = write_peer_weights(tmp_path, dwml(2, 1), [0, 2], {"peer-1": [0.5, 0.8], "peer-2": [0.5, 0.2]})
    c = write_peer_weights(
        tmp_path, "kd_dwml/peers-2/alpha-0.5/seed-0", [0, 2], {"peer-1": [0.5, 0.45], "peer-2": [0.5, 0.55]}
    )
    fig = figure3([a, b, c])
    kd_ax, ax = [ax for ax in fig.axes if ax.get_visible()]
    assert kd_ax.get_title() == "KD_DWML, p = 2, α = 0.5 (n = 1 seed)"
    assert ax.get_title() == "DWML, p = 2, α = 0.5 (n = 2 seeds)"
    np.testing.assert_allclose(line(ax, "peer-1 ± std").get_ydata(), [0.5, 0.7])
    np.testing.assert_allclose(line(ax, "peer-2 ± std").get_ydata(), [0.5, 0.3])
    assert len(ax.collections) == 2 and not kd_ax.collections  # a band per peer where there are two seeds
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() == pytest.approx(0.7 + np.std([0.6, 0.8], ddof=1))
    one, two = line(kd_ax, "peer-1"), line(kd_ax, "peer-2")
    assert one.get_linestyle() != two.get_linestyle() and one.get_marker() != two.get_marker()  # grayscale


def test_figure3_names_a_collapse_onto_one_peer_on_its_panel(tmp_path):
    # peer-1 crosses 0.99 at step 2, dips to 0.98 at step 4, then stays ≥ 0.99: collapsed since step 6
    w1 = [0.5, 0.995, 0.98, 0.992, 0.998]
    csv = write_peer_weights(tmp_path, dwml(2, 0), [0, 2, 4, 6, 8], {"peer-1": w1, "peer-2": [1 - w for w in w1]})
    (ax,) = figure3([csv]).axes
    assert ax.get_title() == "DWML, p = 2, α = 0.5 (n = 1 seed)\ncollapsed onto peer-1 at step 6 (ω = 0.9980)"


def test_figure3_says_nothing_of_collapse_below_the_threshold(tmp_path):
    w1 = [0.5, 0.9, 0.985]  # the final ω just under 0.99
    csv = write_peer_weights(tmp_path, dwml(2, 0), [0, 2, 4], {"peer-1": w1, "peer-2": [1 - w for w in w1]})
    (ax,) = figure3([csv]).axes
    assert ax.get_title() == "DWML, p = 2, α = 0.5 (n = 1 seed)" and "collapsed" not in texts(ax.figure)


def test_figure3_judges_collapse_per_seed_not_on_the_mean(tmp_path):
    # the seeds collapse onto different peers: the mean curves sit near ½ and would hide it
    a = write_peer_weights(tmp_path, dwml(2, 0), [0, 2], {"peer-1": [0.5, 0.999], "peer-2": [0.5, 0.001]})
    b = write_peer_weights(tmp_path, dwml(2, 1), [0, 2], {"peer-1": [0.5, 0.01], "peer-2": [0.5, 0.99]})
    (ax,) = figure3([a, b]).axes
    np.testing.assert_allclose(line(ax, "peer-1 ± std").get_ydata(), [0.5, 0.5045])
    assert ax.get_title() == (
        "DWML, p = 2, α = 0.5 (n = 2 seeds)\n"
        "seed 0: collapsed onto peer-1 at step 2 (ω = 0.9990)\n"
        "seed 1: collapsed onto peer-2 at step 2 (ω = 0.9900)"
    )


def test_collapse_of_a_single_peer_or_no_rows_is_none():
    assert COLLAPSE_WEIGHT == 0.99
    one = pd.DataFrame({"step": [0, 2], "weight.peer-1": [1.0, 1.0]})
    assert collapse_of(one) is None  # ω = 1 by construction, not a result
    assert collapse_of(one.iloc[:0].assign(**{"weight.peer-2": []})) is None
    two = pd.DataFrame({"step": [0, 2], "weight.peer-1": [0.995, 0.995], "weight.peer-2": [0.005, 0.005]})
    assert collapse_of(two) == Collapse(peer="peer-1", step=0, weight=0.995)


# --- figure 2 --------------------------------------------------------------------------------------


def ablation_fixture(tmp_path: Path) -> list[Path]:
    """DWML at p = 2 and 3, seeds 0 and 1, α = 0.5; BLiMP plus an EWoK file the figure must ignore."""
    scores = {(2, 0): [0.60, 0.70], (2, 1): [0.64, 0.66], (3, 0): [0.5, 0.6, 0.7], (3, 1): [0.6, 0.6, 0.9]}
    paths = []
    for (p, seed), values in scores.items():
        for i, acc in enumerate(values, 1):
            paths.append(write_eval(tmp_path, dwml(p, seed), f"peer-{i}", acc))
            paths.append(write_eval(tmp_path, dwml(p, seed), f"peer-{i}", 0.1, family="ewok-filtered"))
    return paths


def test_figure2a_mean_and_best_peer_over_seeds(tmp_path):
    evals = ablation_fixture(tmp_path)
    points, missing, _ = ablation_points("figure2a", evals, "peers")
    assert missing == []
    by = {(r.peers, r.aggregate): r for r in points.itertuples()}
    # p = 2: run means 65, 65 -> 65 ± 0; best 70, 66 -> 68 ± std
    assert by[2, "mean"].mean == pytest.approx(65.0) and by[2, "mean"].std == pytest.approx(0.0)
    assert by[2, "best"].mean == pytest.approx(68.0) and by[2, "best"].std == pytest.approx(np.std([70, 66], ddof=1))
    # p = 3: run means 60, 70 -> 65; best 70, 90 -> 80
    assert by[3, "mean"].mean == pytest.approx(65.0) and by[3, "best"].mean == pytest.approx(80.0)
    assert by[3, "mean"].n_seeds == 2

    ref = [write_eval(tmp_path, "baseline/seed-0", "teacher", 0.75)]
    pdf, png = outputs(tmp_path, "figure2a")
    fig = write_figure("figure2a", {"evals": evals, "reference": ref}, pdf, png, {"dpi": DPI})
    assert_written(pdf, png)
    (ax,) = fig.axes
    data_lines = {c.get_label(): c.lines[0] for c in ax.containers}
    assert set(data_lines) == {"mean over peers (n = 2 seeds, ± std)", "best peer (n = 2 seeds, ± std)"}
    np.testing.assert_allclose(data_lines["best peer (n = 2 seeds, ± std)"].get_ydata(), [68.0, 80.0])
    np.testing.assert_allclose(data_lines["best peer (n = 2 seeds, ± std)"].get_xdata(), [2, 3])
    assert line(ax, "RoBERTa-base teacher (n = 1 seed)").get_ydata()[0] == pytest.approx(75.0)
    assert ax.get_ylabel() == "BLiMP accuracy (%, pll-word-l2r)" and ax.get_xlabel() == "number of peers p"


def test_a_glue_axis_says_over_how_many_tasks(tmp_path):
    evals = []
    for p, seed in ((2, 0), (3, 0)):
        for i in range(1, p + 1):
            path = tmp_path / "results" / CORPUS / "eval" / dwml(p, seed) / f"peer-{i}" / "glue.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            tasks = {
                "cola": {"status": "ok", "metric": "mcc", "value": 0.2},
                "rte": {"status": "ok", "metric": "accuracy", "value": 0.6},
                "wsc": {"status": "missing"},
            }
            path.write_text(
                json.dumps(
                    {
                        "format_version": 2,
                        "data_dir": "glue-filtered",
                        "config": {},
                        "tasks": tasks,
                        "macro_average": 0.4,
                        "tasks_included": ["cola", "rte"],
                    }
                )
            )
            evals.append(path)
    fig = figure2a(evals, benchmark="glue")
    assert fig.axes[0].get_ylabel() == "(Super)GLUE macro score (×100) over 2/11 tasks"


def test_figure2a_a_run_with_a_missing_peer_has_no_value_and_is_noted(tmp_path):
    evals = ablation_fixture(tmp_path)
    gone = tmp_path / "results" / CORPUS / "eval" / dwml(3, 1) / "peer-3" / "blimp-filtered.json"
    gone.unlink()
    fig = figure2a(evals, peer_aggregate="mean")
    (container,) = fig.axes[0].containers
    np.testing.assert_allclose(container.lines[0].get_ydata(), [65.0, 60.0])  # p = 3: seed 0 only
    assert "n = 1–2 seeds" in container.get_label()
    assert str(gone) in texts(fig)


def test_figure2b_accuracy_vs_alpha_and_mixed_peer_counts_refused(tmp_path):
    evals = []
    for alpha, values in ((0.3, [0.5, 0.6]), (0.5, [0.7, 0.8])):
        evals += [write_eval(tmp_path, dwml(2, 0, alpha), f"peer-{i}", v) for i, v in enumerate(values, 1)]
    fig = figure2b(evals, peer_aggregate="best")
    (container,) = fig.axes[0].containers
    np.testing.assert_allclose(container.lines[0].get_xdata(), [0.3, 0.5])
    np.testing.assert_allclose(container.lines[0].get_ydata(), [60.0, 80.0])
    assert fig.axes[0].get_xlabel().startswith("α")
    evals.append(write_eval(tmp_path, dwml(3, 0), "peer-1", 0.5))
    with pytest.raises(InputError, match="figure2b: the inputs mix peer counts"):
        figure2b(evals)


def weights_fixture(tmp_path: Path, weights: list[float], accs: list[float], seeds=(0,)) -> tuple[list, list]:
    p = len(weights)
    summaries, evals = [], []
    for seed in seeds:
        students = {f"peer-{i}": {"final_dev_loss": 5.0, "peer_weight": w} for i, w in enumerate(weights, 1)}
        summaries.append(write_summary(tmp_path, dwml(p, seed), "dwml", students))
        evals += [write_eval(tmp_path, dwml(p, seed), f"peer-{i}", a) for i, a in enumerate(accs, 1)]
    return summaries, evals


def test_figure2c_pearson_r_equals_the_hand_computed_value(tmp_path):
    w, acc = [0.2, 0.3, 0.5], [0.50, 0.60, 0.64]
    # by hand, accuracy in %: x̄ = 1/3, ȳ = 58; dx = (-2/15, -1/30, 1/6), dy = (-8, 2, 6)
    # Σdxdy = 16/15 - 1/15 + 1 = 2; Σdx² = (16 + 1 + 25)/900 = 7/150; Σdy² = 64 + 4 + 36 = 104
    expected = 2 / math.sqrt(7 / 150 * 104)
    r, text = pearson_r(w, [a * 100 for a in acc])
    assert r == pytest.approx(expected, rel=1e-12) and text == f"Pearson R = {expected:.3f} (3 points)"
    summaries, evals = weights_fixture(tmp_path, w, acc)
    pdf, png = outputs(tmp_path, "figure2c")
    fig = write_figure("figure2c", {"summaries": summaries, "evals": evals}, pdf, png, {"dpi": DPI})
    assert_written(pdf, png)
    (ax,) = fig.axes
    assert f"Pearson R = {expected:.3f}" in ax.get_title() and "n = 1 seed" in ax.get_title()
    drawn = line(ax, "peer-2 (2,000 params)")
    assert (drawn.get_xdata()[0], drawn.get_ydata()[0]) == (pytest.approx(0.3), pytest.approx(60.0))
    assert ax.get_xlabel() == "final peer weight ω"


def test_pearson_r_undefined_is_said_not_raised(tmp_path):
    assert pearson_r([0.4, 0.6], [50, 60]) == (None, "Pearson R undefined (2 points; needs ≥ 3)")
    assert pearson_r([0.2, 0.3, 0.5], [60, 60, 60])[1] == "Pearson R undefined (accuracy constant over 3 points)"
    summaries, evals = weights_fixture(tmp_path, [0.45, 0.55], [0.5, 0.6])
    fig = figure2c(summaries, evals)
    assert "Pearson R undefined (2 points" in fig.axes[0].get_title()


def test_figure2c_several_seeds_use_every_point_for_r(tmp_path):
    summaries, evals = weights_fixture(tmp_path, [0.2, 0.3, 0.5], [0.5, 0.6, 0.62], seeds=(0, 1))
    points, missing, run = weight_accuracy_points("figure2c", summaries, evals)
    assert missing == [] and run.group == "dwml/peers-3/alpha-0.5"
    assert list(points["model"]) == ["peer-1", "peer-1", "peer-2", "peer-2", "peer-3", "peer-3"]
    np.testing.assert_allclose(points["score"], [50, 50, 60, 60, 62, 62])
    assert pearson_r(points["peer_weight"], points["score"])[1].endswith("(6 points)")


def test_figure2c_refuses_runs_without_learned_weights(tmp_path):
    run = "dml/peers-2/alpha-0.5/seed-0"
    summary = write_summary(tmp_path, run, "dml", {"peer-1": {"final_dev_loss": 5.0}, "peer-2": {}})
    evals = [write_eval(tmp_path, run, f"peer-{i}", 0.5) for i in (1, 2)]
    with pytest.raises(InputError, match="figure2c: .*no learned peer weights"):
        figure2c([summary], evals)


def test_figure2_three_panels(tmp_path):
    evals = ablation_fixture(tmp_path)
    summaries, wevals = weights_fixture(tmp_path, [0.2, 0.3, 0.5], [0.5, 0.6, 0.7], seeds=(0,))
    pdf, png = outputs(tmp_path, "figure2")
    alpha_evals = [p for p in evals if "peers-3" in str(p)]
    inputs = {"peers_evals": evals, "alpha_evals": alpha_evals, "weight_summaries": summaries, "weight_evals": wevals}
    fig = write_figure("figure2", inputs, pdf, png, {"dpi": DPI})
    assert_written(pdf, png)
    assert [ax.get_title()[:3] for ax in fig.axes] == ["(a)", "(b)", "(c)"]


# --- model size -----------------------------------------------------------------------------------

TEACHER = "baseline/seed-{s}"
ALONE = "baseline/peers-2/seed-{s}"
SIZE_PARAMS = {"teacher": 125_000_000, "peer-1": 10_000_000, "peer-2": 40_000_000}
#: BLiMP accuracy per run kind, model and seed (0, 1)
SIZE_ACC = {
    TEACHER: {"teacher": (0.80, 0.84)},
    ALONE: {"peer-1": (0.60, 0.64), "peer-2": (0.70, 0.70)},
    "dwml/peers-2/alpha-0.5/seed-{s}": {"peer-1": (0.66, 0.70), "peer-2": (0.72, 0.76)},
}


def size_fixture(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """The teacher, students trained alone (2 peers) and DWML (2 peers), seeds 0 and 1; BLiMP and an ignored EWoK."""
    summaries, evals = [], []
    for pattern, models in SIZE_ACC.items():
        for seed in (0, 1):
            run = pattern.format(s=seed)
            method = run.split("/")[0]
            students = {m: {"parameters": SIZE_PARAMS[m], "final_dev_loss": 5.0} for m in models}
            summaries.append(write_summary(tmp_path, run, method, students))
            for model, accs in models.items():
                evals.append(write_eval(tmp_path, run, model, accs[seed]))
                evals.append(write_eval(tmp_path, run, model, 0.1, family="ewok-filtered"))
    return summaries, evals


def test_figure_size_points_are_parameters_and_mean_accuracy_over_seeds(tmp_path):
    summaries, evals = size_fixture(tmp_path)
    pdf, png = outputs(tmp_path, "figure_size")
    fig = write_figure("figure_size", {"summaries": summaries, "evals": evals}, pdf, png, {"dpi": DPI})
    assert_written(pdf, png)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "parameters (log scale)"
    assert ax.get_ylabel() == "BLiMP accuracy (%, pll-word-l2r)" and ax.get_title().startswith("Accuracy vs model size")
    series = {c.get_label(): c for c in ax.containers}
    sd = np.std([80, 84], ddof=1)  # = 2·√2, the spread of every two-seed point but the constant one
    expected = {  # label: (x, mean, std), by hand from SIZE_PARAMS and SIZE_ACC
        "RoBERTa-base teacher (n = 2 seeds, ± std)": ([125e6], [82.0], [sd]),
        "Independent, p = 2 (n = 2 seeds, ± std)": ([10e6, 40e6], [62.0, 70.0], [sd, 0.0]),
        "DWML, p = 2, α = 0.5 (n = 2 seeds, ± std)": ([10e6, 40e6], [68.0, 74.0], [sd, sd]),
    }
    assert list(series) == list(expected)  # teacher first, then students alone, then DWML
    for label, (x, mean, std) in expected.items():
        drawn, _, (bars,) = series[label].lines
        np.testing.assert_allclose(drawn.get_xdata(), x)
        np.testing.assert_allclose(drawn.get_ydata(), mean)
        np.testing.assert_allclose([seg[1][1] - seg[0][1] for seg in bars.get_segments()], 2 * np.array(std))
    styles = [(c.lines[0].get_linestyle(), c.lines[0].get_marker()) for c in series.values()]
    assert len(set(styles)) == len(styles)  # grayscale-readable: every series its own line style and marker

    points, missing, runs = size_points("figure_size", summaries, evals)
    assert missing == [] and list(runs) == ["baseline", "baseline/peers-2", "dwml/peers-2/alpha-0.5"]
    assert runs["baseline"].is_teacher and not runs["baseline/peers-2"].is_teacher
    assert points["n_seeds"].tolist() == [2] * 5


def test_figure_size_missing_eval_is_noted_and_its_point_uses_the_other_seed(tmp_path):
    summaries, evals = size_fixture(tmp_path)
    gone = tmp_path / "results" / CORPUS / "eval" / ALONE.format(s=1) / "peer-1" / "blimp-filtered.json"
    gone.unlink()
    fig = figure_size(summaries, evals)
    alone = next(c for c in fig.axes[0].containers if c.get_label().startswith("Independent"))
    assert alone.get_label() == "Independent, p = 2 (n = 1–2 seeds, ± std)"
    np.testing.assert_allclose(alone.lines[0].get_ydata(), [60.0, 70.0])  # peer-1: seed 0 only
    assert str(gone) in texts(fig)


def test_figure_size_without_data_is_an_input_error(tmp_path):
    summaries, evals = size_fixture(tmp_path)

    def write(summaries, evals):
        write_figure("figure_size", {"summaries": summaries, "evals": evals}, *outputs(tmp_path, "figure_size"))

    ewok = [p for p in evals if p.name.startswith("ewok")]
    with pytest.raises(InputError, match="figure_size: none of the .* evaluation files is a BLiMP result"):
        write(summaries, ewok)
    gone = [tmp_path / "results" / CORPUS / "train" / "baseline/peers-4/seed-0" / "train_summary.json"]
    with pytest.raises(InputError, match="figure_size: every train_summary.json listed is missing"):
        write(gone, evals)
    teacher = [p for p in summaries if "baseline/seed-" in p.as_posix()]
    with pytest.raises(InputError, match="figure_size: evals of run.* have no train_summary.json"):
        write(teacher, evals)
    other = write_summary(
        tmp_path,
        ALONE.format(s=1),
        "baseline",
        {"peer-1": {"parameters": 11_000_000}, "peer-2": {"parameters": 40_000_000}},
    )
    with pytest.raises(InputError, match="figure_size: the seeds of baseline/peers-2 give peer-1 different param"):
        write([*summaries[:3], other], [p for p in evals if "dwml" not in p.as_posix()])
    assert not (tmp_path / "fig").exists()


def test_write_figure_size_takes_run_folders(tmp_path):
    summaries, evals = size_fixture(tmp_path)
    pdf, png = outputs(tmp_path, "figure_size")
    folders = [str(p.parent) for p in summaries]
    fig = write_figure(
        "figure_size", {"summaries": folders, "evals": evals}, pdf, png, {"benchmark": "blimp", "dpi": DPI}
    )
    assert_written(pdf, png)
    assert len(fig.axes[0].containers) == 3


# --- figure 4 --------------------------------------------------------------------------------------


def test_figure4_cpu_runs_say_no_gpu_recorded(tmp_path):
    reason = "NVML unavailable: no NVIDIA driver"
    gpu = [write_gpu(tmp_path, run, []) for run in ("baseline/seed-0", dwml(2, 0))]  # header only, as on CPU
    summary = write_summary(tmp_path, "baseline/seed-0", "baseline", {"teacher": {}}, gpu={"gpus": 0, "reason": reason})
    pdf, png = outputs(tmp_path, "figure4")
    fig = write_figure("figure4", {"gpu": gpu, "summaries": [summary]}, pdf, png, {"dpi": DPI})
    assert_written(pdf, png)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    shown = ["\n".join(t.get_text() for t in ax.texts).replace("\n", " ") for ax in panels]
    assert len(panels) == 2 and all(NO_GPU_TEXT in text for text in shown)
    assert reason in shown[0]  # from the summary
    assert "header but no samples" in shown[1]  # no summary given: the file's own reason
    assert not any(ax.get_lines() for ax in panels)


def test_figure4_mean_over_gpus_and_over_seeds_on_a_common_grid(tmp_path):
    rows = [(0.0, 0, 50.0), (0.0, 1, 70.0), (1.0, 0, 90.0), (1.0, 1, 100.0), (2.0, 0, 10.0), (2.0, 1, 30.0)]
    two_gpus = write_gpu(tmp_path, "sd/peers-2/seed-0", rows)
    a = write_gpu(tmp_path, "kd/peers-2/seed-0", [(0.0, 0, 40.0), (1.0, 0, 60.0), (2.0, 0, 80.0)])
    b = write_gpu(tmp_path, "kd/peers-2/seed-1", [(0.0, 0, 60.0), (1.0, 0, 80.0)])
    fig = figure4([two_gpus, a.parent, b])  # a run folder stands for its file
    sd_ax, kd_ax = [ax for ax in fig.axes if ax.get_visible()]
    drawn = line(sd_ax, "mean over 2 GPUs (n = 1 seed)")
    np.testing.assert_allclose(drawn.get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(drawn.get_ydata(), [60, 95, 20])
    assert sd_ax.get_ylabel() == "GPU utilisation (%)" and sd_ax.get_xlabel() == "time since training start (s)"
    np.testing.assert_allclose(line(kd_ax, "mean over 1 GPU (n = 1–2 seeds, ± std)").get_ydata(), [50, 70, 80])


# --- training-loss curves --------------------------------------------------------------------------


def test_training_loss_lines_and_final_dev_markers_without_dev_lines(tmp_path):
    losses = {2: {"peer-1": 6.0, "peer-2": 7.0}, 4: {"peer-1": 5.0, "peer-2": 6.5}, 6: {"peer-1": 4.0, "peer-2": 6.0}}
    metrics = write_metrics(tmp_path, "kd/peers-2/seed-0", losses)
    summary = write_summary(
        tmp_path, "kd/peers-2/seed-0", "kd", {"peer-1": {"final_dev_loss": 4.5}, "peer-2": {"final_dev_loss": 6.2}}
    )
    base = write_metrics(tmp_path, "baseline/seed-0", {2: {"teacher": 5.5}, 4: {"teacher": 5.0}})
    pdf, png = outputs(tmp_path, "training_loss")
    fig = write_figure("training_loss", {"metrics": [metrics, base], "summaries": [summary]}, pdf, png, {"dpi": DPI})
    assert_written(pdf, png)
    teacher_ax, kd_ax, kd_dev_ax = [ax for ax in fig.axes if ax.get_visible()]  # KD's dev loss: a right axis
    assert teacher_ax.get_title() == "RoBERTa-base (n = 1 seed)" and kd_ax.get_title() == "KD, p = 2 (n = 1 seed)"
    np.testing.assert_allclose(line(kd_ax, "peer-1").get_ydata(), [6.0, 5.0, 4.0])
    np.testing.assert_allclose(line(kd_ax, "peer-2").get_xdata(), [2, 4, 6])
    dev = sorted((c.lines[0].get_xdata()[0], c.lines[0].get_ydata()[0]) for c in kd_dev_ax.containers)
    assert dev == [(6, pytest.approx(4.5)), (6, pytest.approx(6.2))]
    assert kd_dev_ax.get_ylabel() == "final dev loss, masked CE (nats)"
    assert not teacher_ax.containers  # no summary given for the baseline: no dev marker
    assert "final dev loss (right axis)" in texts(fig) and kd_ax.get_xlabel() == "optimiser step"
    assert "nats" in kd_ax.get_ylabel()

    groups, _ = loss_curves("training_loss", [metrics], x="tokens", smooth=2)
    (entry,) = groups.values()
    assert entry["dev_curves"] == {}  # metrics without dev-loss lines (eval_every null, older runs)
    smoothed = entry["curves"]["peer-1"]
    np.testing.assert_allclose(smoothed.index, [1024, 2048, 3072])
    np.testing.assert_allclose(smoothed["mean"], [6.0, 5.5, 4.5])  # trailing mean over 2 logged points


def test_training_loss_draws_dev_curves_from_metrics_over_seeds(tmp_path):
    losses = {2: {"peer-1": 6.0, "peer-2": 7.0}, 4: {"peer-1": 5.0, "peer-2": 6.5}, 6: {"peer-1": 4.0, "peer-2": 6.0}}
    dev = {
        seed: {3: {"peer-1": 5.6 + seed, "peer-2": 6.8}, 6: {"peer-1": 4.6 + seed, "peer-2": 6.3}} for seed in (0, 1)
    }
    metrics = [write_metrics(tmp_path, f"kd/peers-2/seed-{seed}", losses, dev[seed]) for seed in (0, 1)]
    summaries = [
        write_summary(
            tmp_path,
            f"kd/peers-2/seed-{seed}",
            "kd",
            {"peer-1": {"final_dev_loss": 4.6 + seed}, "peer-2": {"final_dev_loss": 6.3}},
        )
        for seed in (0, 1)
    ]
    base = write_metrics(
        tmp_path,
        "baseline/seed-0",
        {2: {"teacher": 5.5}, 4: {"teacher": 5.0}},
        {2: {"teacher": 5.4}, 4: {"teacher": 5.1}},
    )

    groups, _ = loss_curves("training_loss", metrics + [base], summaries, smooth=2)
    by_method = {run.method: entry for run, entry in groups.items()}
    peer1 = by_method["kd"]["dev_curves"]["peer-1"]
    np.testing.assert_allclose(peer1.index, [3, 6])
    np.testing.assert_allclose(peer1["mean"], [6.1, 5.1])  # mean over the two seeds, not smoothed
    np.testing.assert_allclose(peer1["std"], [math.sqrt(0.5)] * 2)
    assert list(peer1["n"]) == [2, 2]
    np.testing.assert_allclose(by_method["kd"]["curves"]["peer-1"]["mean"], [6.0, 5.5, 4.5])  # training: smoothed
    np.testing.assert_allclose(by_method["baseline"]["dev_curves"]["teacher"]["mean"], [5.4, 5.1])

    pdf, png = outputs(tmp_path, "training_loss")
    fig = write_figure("training_loss", {"metrics": [*metrics, base], "summaries": summaries}, pdf, png, {"dpi": DPI})
    assert_written(pdf, png)
    teacher_ax, kd_ax, kd_dev_ax = [ax for ax in fig.axes if ax.get_visible()]
    (c1, c2) = kd_dev_ax.containers  # one dev curve per student; the summaries' final losses are not drawn again
    np.testing.assert_allclose(c1.lines[0].get_xdata(), [3, 6])
    np.testing.assert_allclose(c1.lines[0].get_ydata(), [6.1, 5.1])
    np.testing.assert_allclose(c2.lines[0].get_ydata(), [6.8, 6.3])
    assert c1.has_yerr  # ± std over the two seeds
    assert c1.lines[0].get_markerfacecolor() == "white"  # open markers: dev; the training lines' are filled
    assert line(kd_ax, "peer-1 ± std").get_markerfacecolor() != "white"
    assert kd_dev_ax.get_ylabel() == "dev loss, masked CE (nats)" and "nats" in kd_ax.get_ylabel()
    assert "peer-1 dev ± std (right axis)" in texts(fig) and "final dev loss" not in texts(fig)
    (teacher_dev,) = teacher_ax.containers  # the baseline's dev loss shares its (masked CE) axis
    np.testing.assert_allclose(teacher_dev.lines[0].get_ydata(), [5.4, 5.1])
    assert not teacher_dev.has_yerr  # one seed: no spread
    assert "teacher dev (masked CE)" in texts(fig)
    assert teacher_ax.get_xlabel() == "optimiser step"


def test_load_metrics_reads_both_kinds_of_line_and_refuses_others(tmp_path):
    path = write_metrics(tmp_path, "baseline/seed-0", {1: {"teacher": 6.0}, 2: {"teacher": 5.0}}, {2: {"teacher": 5.2}})
    frame = load_metrics(path)
    assert frame[["step", "tokens", "model", "kind", "loss"]].values.tolist() == [
        [1, 512, "teacher", "train", 6.0],
        [2, 1024, "teacher", "train", 5.0],
        [2, 1024, "teacher", "dev", 5.2],
    ]
    path.write_text(json.dumps({"step": 3, "tokens": 10, "dev_loss": {"teacher": "low"}}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"metrics.jsonl:1: expected .* 'loss' or 'dev_loss'"):
        load_metrics(path)


# --- no data, dispatcher ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_no_input_files_is_an_input_error_naming_the_figure(tmp_path, name):
    spec = FIGURES[name]
    inputs = {key: [] for key in spec.inputs if key not in spec.optional}
    with pytest.raises(InputError, match=f"^{name}"):
        write_figure(name, inputs, *outputs(tmp_path, name))
    assert not (tmp_path / "fig").exists() or not any((tmp_path / "fig").iterdir())


def test_inputs_without_data_are_input_errors_naming_the_figure(tmp_path):
    empty_weights = write_peer_weights(tmp_path, dwml(2, 0), [], {"peer-1": [], "peer-2": []})
    with pytest.raises(InputError, match="figure3: none of the 1 peer_weights.csv files listed has rows"):
        figure3([empty_weights])
    ewok = [write_eval(tmp_path, dwml(2, 0), "peer-1", 0.5, family="ewok-filtered")]
    with pytest.raises(InputError, match="figure2a: none of the 1 evaluation files is a BLiMP result"):
        figure2a(ewok)
    gone = [tmp_path / "results" / CORPUS / "train" / "kd/peers-2/seed-0" / "gpu.csv"]
    with pytest.raises(InputError, match="figure4: every gpu.csv listed is missing"):
        figure4(gone)
    with pytest.raises(InputError, match="training_loss: none of the 1 metrics.jsonl"):
        training_loss([gone[0].with_name("metrics.jsonl")])


def test_write_figure_dispatches_and_checks_names(tmp_path):
    csv = write_peer_weights(tmp_path, dwml(2, 0), [0, 2], {"peer-1": [0.5, 0.6], "peer-2": [0.5, 0.4]})
    pdf, png = outputs(tmp_path, "figure3")
    fig = write_figure("figure3", {"peer_weights": str(csv)}, pdf, png, {"dpi": DPI})  # one path, not a list
    assert_written(pdf, png)
    np.testing.assert_allclose(line(fig.axes[0], "peer-1").get_ydata(), [0.5, 0.6])
    assert png_width(png) == round(fig.get_figwidth() * DPI)
    fig = write_figure("figure3", {"peer_weights": [csv]}, pdf, png)  # every figure's PNG resolution by default
    assert png_width(png) == round(fig.get_figwidth() * PNG_DPI)
    # the inputs a figure may go without are those its function gives a default
    assert {name: spec.optional for name, spec in FIGURES.items() if spec.optional} == {
        "figure2": ("reference",),
        "figure2a": ("reference",),
        "figure2b": ("reference",),
        "figure4": ("summaries",),
        "training_loss": ("summaries",),
    }
    with pytest.raises(InputError, match="unknown figure 'figure9'"):
        write_figure("figure9", {}, pdf, png)
    with pytest.raises(InputError, match="figure3: unknown input"):
        write_figure("figure3", {"peer_weights": [csv], "gpu": [csv]}, pdf, png)
    with pytest.raises(InputError, match="figure2c: input.* evals not given"):
        write_figure("figure2c", {"summaries": [csv]}, pdf, png)
    with pytest.raises(InputError, match="figure3: unknown option"):
        write_figure("figure3", {"peer_weights": [csv]}, pdf, png, {"smooth": 3})
