"""Tables from result files: numbers, bold, missing runs, refusal to mix, valid LaTeX, CSV = numbers.

Every fixture is a tiny result file in the real format, written into tmp_path by the helpers
below; the expected numbers are computed by hand in the tests.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from babyteach.errors import InputError
from babyteach.report.frames import aggregate_seeds, check_consistent, eval_frame, summary_frame
from babyteach.report.result_tables import PUBLISHED
from babyteach.report.runs import (
    INDEPENDENT_LABEL,
    METHOD_LABELS,
    RunId,
    load_glue,
    load_zero_shot,
    parse_result_path,
    run_label,
)
from babyteach.report.tables import TABLES, write_table

CORPUS = "2024-10M"
SEEDS = (0, 1, 2)
STUDENTS = ("sd", "kd", "dml", "kd_dwml", "dwml")
FAMILIES = {"blimp": "blimp-filtered", "supplement": "blimp-supplement", "ewok": "ewok-filtered"}


# --- fixture writers (the real formats, minimal) ------------------------------------------------


#: The fixture's official accuracy is its strict one plus this (ties correct, another scoring).
OFFICIAL_OFFSET = 0.05


def write_zero_shot(
    path: Path,
    family: str,
    accuracy: float,
    *,
    variants=("official", "pll-word-l2r"),
    groups: dict[str, float] | None = None,
    data_dir: str | None = None,
) -> Path:
    """A result of babyteach.evaluate.zero_shot.evaluate_pairs whose pll-word-l2r macro accuracy is ``accuracy``
    and official one ``accuracy + OFFICIAL_OFFSET`` (every task and group shifted alike)."""
    groups = groups or {"g1": accuracy}

    def numbers(shift: float) -> dict:
        tasks = {
            f"task_{g}": {"accuracy": a + shift, "correct": round((a + shift) * 100), "n": 100, "ties": 0}
            for g, a in groups.items()
        }
        return {
            "n_pairs": 100 * len(tasks),
            "correct": 0,
            "ties": 0,
            "accuracy": accuracy + shift,
            "macro_accuracy": accuracy + shift,
            "tasks": tasks,
            "groups": {
                g: {"accuracy": a + shift, "correct": round((a + shift) * 100), "n": 100, "ties": 0}
                for g, a in groups.items()
            },
        }

    data = {
        "version": 2,
        "family": family,
        "data_dir": data_dir or family,
        "model_dir": path.parent.name,
        "max_per_task": None,
        "identical_pairs": 0,
        "pairs_per_second": 1.0,
        "variants": {v: numbers(OFFICIAL_OFFSET if v == "official" else 0.0) for v in variants},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_glue(path: Path, value: float, config: dict | None = None) -> Path:
    """A result of babyteach.evaluate.glue.finetune_model with macro average ``value``."""
    data = {
        "format_version": 2,
        "data_dir": "results/raw/glue-filtered",
        "model_dir": str(path.parent),
        "config": {
            "lr": 5e-5,
            "batch_size": 64,
            "max_epochs": 10,
            "patience": 3,
            "max_length": 128,
            "seed": 12,
            "max_train_examples": None,
            "max_eval_examples": None,
            "device": "cpu",
            **(config or {}),
        },
        "tasks": {
            "cola": {"status": "ok", "metric": "mcc", "value": value, "accuracy": 0.5, "n_valid": 10},
            "mrpc": {"status": "ok", "metric": "f1", "value": value, "accuracy": 0.5, "n_valid": 10},
            "wsc": {"status": "missing", "missing_files": ["wsc.train.jsonl"]},
        },
        "macro_average": value,
        "tasks_included": ["cola", "mrpc"],
        "tasks_missing": ["wsc"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_summary(
    path: Path,
    method: str,
    students: dict[str, tuple[int, float | None]],
    *,
    wall: float,
    tokens: int = 1000,
    seed: int = 0,
    gpu: dict | None = None,
    options: dict | None = None,
) -> Path:
    """A train_summary.json; ``students``: name -> (parameters, training_flops or None)."""
    data = {
        "format_version": 2,
        "method": method,
        "method_options": options or {},
        "steps": 10,
        "tokens": tokens,
        "wall_time_s": wall,
        "device": "cuda" if gpu and gpu.get("gpus") else "cpu",
        "processes": 1,
        "config": {"lr": 5e-4, "batch_size": 32, "seed": seed, "device": "auto", "block_size": 128},
        "students": {
            name: {
                "architecture": {"layers": 2, "heads": 2, "hidden": 64},
                "parameters": params,
                "final_dev_loss": 5.0,
                **({"training_flops": flops} if flops is not None else {}),
            }
            for name, (params, flops) in students.items()
        },
    }
    if gpu is not None:
        data["gpu"] = gpu
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_search(path: Path, teacher_params: int, peer_params: list[int]) -> Path:
    """A results/search/peers-<p>.json (babyteach.search.write_search)."""
    peers = []
    for i, params in enumerate(peer_params, 1):
        target = teacher_params / (i + 1)
        peers.append(
            {
                "peer": i,
                "arch": {"layers": i, "heads": 1, "hidden": 64},
                "params": params,
                "target": target,
                "rel_error": abs(params - target) / target,
                "trace": [],
            }
        )
    data = {
        "version": 2,
        "teacher": {"arch": {"layers": 12, "heads": 12, "hidden": 768}, "params": teacher_params},
        "peers": peers,
        "space": {},
        "optimizer": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def score(method: str, model: str, seed: int, bench: str) -> float:
    """A deterministic fixture accuracy: a per-(method, model, benchmark) level plus a seed offset."""
    level = {"baseline": 0.70, "sd": 0.60, "kd": 0.62, "dml": 0.64, "kd_dwml": 0.66, "dwml": 0.68}[method]
    level += {"teacher": 0.0, "peer-1": 0.0, "peer-2": -0.05}[model]
    level += {"blimp": 0.0, "supplement": -0.1, "ewok": -0.2, "glue": -0.3}[bench]
    return round(level + 0.01 * seed, 6)  # seeds 0, 1, 2: mean level + 0.01, std 0.01


def run_of(method: str, seed: int, peers: int = 2, alpha: float = 0.5) -> RunId:
    if method == "baseline":
        return RunId(CORPUS, method, None, None, seed)
    return RunId(CORPUS, method, peers, alpha if method in ("dml", "dwml", "kd_dwml") else None, seed)


def make_eval(
    root: Path,
    methods=("baseline", *STUDENTS),
    benches=("blimp", "supplement", "ewok"),
    seeds=SEEDS,
    skip=(),
    corpus: str = CORPUS,
) -> list[Path]:
    """Zero-shot (and glue) results of every model of ``methods``; ``skip``: (method, model, seed, bench) not written."""
    paths = []
    for method in methods:
        for seed in seeds:
            run = RunId(corpus, *[getattr(run_of(method, seed), k) for k in ("method", "peers", "alpha", "seed")])
            for model in run.models:
                for bench in benches:
                    if (method, model, seed, bench) in skip:
                        continue
                    family = FAMILIES.get(bench, "glue")
                    path = run.eval_path(model, family, root)
                    if bench == "glue":
                        paths.append(write_glue(path, score(method, model, seed, bench)))
                    else:
                        paths.append(write_zero_shot(path, family, score(method, model, seed, bench)))
    return paths


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def pct(values) -> tuple[float, float]:
    values = [100 * v for v in values]
    return statistics.mean(values), statistics.stdev(values)


# --- LaTeX structure ------------------------------------------------------------------------------


def assert_valid_latex(tex: str) -> None:
    """A table float with booktabs rules, balanced braces, and as many cells per row as columns."""
    assert tex.startswith(r"\begin{table}") and tex.rstrip().endswith(r"\end{table}")
    assert r"\caption{" in tex and re.search(r"\\label\{tab:table\d\}", tex)
    unescaped = re.sub(r"\\[{}]", "", tex)
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "a } closes nothing"
    assert depth == 0, "unbalanced braces"
    tabulars = re.findall(r"\\begin\{tabular\}\{([^}]*)\}\n(.*?)\\end\{tabular\}", tex, re.DOTALL)
    assert tabulars, "no tabular"
    for spec, body in tabulars:
        ncols = len(re.findall(r"[lrc]", spec))
        lines = body.strip().splitlines()
        assert lines[0] == r"\toprule" and lines[-1] == r"\bottomrule" and r"\midrule" in lines
        rows = [line for line in lines if line.endswith(r"\\")]
        assert rows, "no rows"
        for line in rows:
            assert len(re.findall(r"(?<!\\)&", line)) == ncols - 1, f"wrong cell count: {line}"


# --- runs.py --------------------------------------------------------------------------------------


def test_parse_result_path_reads_every_run_kind():
    rec = parse_result_path("results/2024-10M/eval/dwml/peers-4/alpha-0.5/seed-1/peer-2/blimp-filtered.json")
    assert (rec.run.corpus, rec.run.method, rec.run.peers, rec.run.alpha, rec.run.seed) == (
        "2024-10M",
        "dwml",
        4,
        0.5,
        1,
    )
    assert (rec.model, rec.family, rec.benchmark, rec.run.group) == (
        "peer-2",
        "blimp-filtered",
        "blimp",
        "dwml/peers-4/alpha-0.5",
    )
    base = parse_result_path("/abs/results/2024-100M/eval/baseline/seed-0/teacher/glue.json")
    assert (base.run.method, base.run.peers, base.model, base.benchmark) == ("baseline", None, "teacher", "glue")
    kd = parse_result_path("results/2024-10M/train/kd/peers-2/seed-3/train_summary.json")
    assert (kd.kind, kd.run.method, kd.run.alpha, kd.model, kd.file) == (
        "train",
        "kd",
        None,
        None,
        "train_summary.json",
    )
    assert kd.run.summary_path("results") == Path("results/2024-10M/train/kd/peers-2/seed-3/train_summary.json")


def test_parse_result_path_students_trained_alone_with_the_baseline_objective():
    alone = parse_result_path("results/2024-10M/eval/baseline/peers-4/seed-2/peer-3/blimp-filtered.json")
    run = alone.run
    assert run == RunId("2024-10M", "baseline", 4, None, 2) and alone.model == "peer-3"
    assert (run.group, run.name) == ("baseline/peers-4", "baseline/peers-4/seed-2")
    assert run.models == ("peer-1", "peer-2", "peer-3", "peer-4") and not run.is_teacher
    assert parse_result_path(run.eval_path("peer-1", "blimp-filtered")).run == run  # round trip
    assert parse_result_path(run.summary_path()).run == run
    assert run_label(run) == INDEPENDENT_LABEL == "Independent"
    teacher = parse_result_path("results/2024-10M/train/baseline/seed-2/train_summary.json").run
    assert teacher == RunId("2024-10M", "baseline", None, None, 2) and teacher.is_teacher
    assert (teacher.group, teacher.name, teacher.models) == ("baseline", "baseline/seed-2", ("teacher",))
    assert run_label(teacher) == METHOD_LABELS["baseline"] == "RoBERTa-base"
    assert run_label(RunId("2024-10M", "dwml", 4, 0.5, 0)) == "DWML"


def test_frames_read_students_trained_alone(tmp_path):
    run = RunId(CORPUS, "baseline", 2, None, 0)
    summary = write_summary(
        run.summary_path(tmp_path), "baseline", {"peer-1": (50, None), "peer-2": (30, None)}, wall=60
    )
    absent = RunId(CORPUS, "baseline", 2, None, 1).summary_path(tmp_path)
    frame = summary_frame([summary, absent])
    assert frame["model"].tolist() == ["peer-1", "peer-2", "peer-1", "peer-2"]
    assert frame["status"].tolist() == ["ok", "ok", "missing", "missing"]
    assert set(frame["group"]) == {"baseline/peers-2"} and frame["peers"].tolist() == [2] * 4
    evals = eval_frame([write_zero_shot(run.eval_path("peer-2", "blimp-filtered", tmp_path), "blimp-filtered", 0.6)])
    assert (evals["method"].item(), evals["peers"].item(), evals["model"].item()) == ("baseline", 2, "peer-2")


@pytest.mark.parametrize(
    "bad",
    [
        "results/2024-10M/eval/dwml/peers-2/seed-0/peer-1/blimp-fast.json",  # mutual method without alpha
        "results/2024-10M/eval/kd/peers-2/seed-0/peer-3/blimp-fast.json",  # no peer 3 in a 2-peer run
        "results/2024-10M/eval/baseline/peers-2/seed-0/peer-3/blimp-fast.json",  # students alone: no peer 3 either
        "results/2024-10M/eval/baseline/peers-2/seed-0/teacher/blimp-fast.json",  # students alone: no teacher
        "results/2024-10M/eval/baseline/seed-0/peer-1/blimp-fast.json",  # the teacher's run has no peers
        "results/2024-10M/eval/baseline/peers-2/alpha-0.5/seed-0/peer-1/blimp-fast.json",  # baseline has no alpha
        "results/2024-10M/eval/kd/peers-2/seed-0/peer-1/blimp-nope.json",  # unknown family
        "results/eval/kd/peers-2/seed-0/peer-1/blimp-fast.json",  # no corpus
    ],
)
def test_parse_result_path_refuses_other_paths(bad):
    with pytest.raises(InputError, match=re.escape(bad.split("/")[0])):
        parse_result_path(bad)


def test_loading_names_the_broken_file(tmp_path):
    path = tmp_path / CORPUS / "eval/baseline/seed-0/teacher/blimp-filtered.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(InputError, match=re.escape(str(path))):
        load_zero_shot(path)
    path.write_text(json.dumps({"version": 1, "family": "blimp-filtered"}))
    with pytest.raises(InputError, match=re.escape(str(path))):
        eval_frame([path])


def test_eval_frame_aggregate_and_missing_rows(tmp_path):
    paths = make_eval(tmp_path / "results", methods=("dwml",), benches=("blimp",))
    absent = run_of("dwml", 3).eval_path("peer-1", "blimp-filtered", tmp_path / "results")
    frame = eval_frame([*paths, absent])
    assert len(frame) == 2 * 3 + 1 and frame.loc[frame["path"] == str(absent), "status"].item() == "missing"
    agg = aggregate_seeds(frame, ["method", "model", "benchmark"]).set_index("model")
    mean, std = statistics.mean([0.68, 0.69, 0.70]), statistics.stdev([0.68, 0.69, 0.70])
    assert agg.loc["peer-1", "mean"] == pytest.approx(mean) and agg.loc["peer-1", "std"] == pytest.approx(std)
    assert agg.loc["peer-1", "n_seeds"] == 3 and agg.loc["peer-1", "missing"] == (str(absent),)
    assert agg.loc["peer-2", "missing"] == ()


def test_summary_frame_reads_gpu_and_flops_present_or_absent(tmp_path):
    gpu = {
        "gpus": 2,
        "per_gpu": [
            {"index": 0, "name": "H200", "util_mean_pct": 80.0, "util_max_pct": 99.0, "mem_peak_mib": 1000.0},
            {"index": 1, "name": "H200", "util_mean_pct": 90.0, "util_max_pct": 100.0, "mem_peak_mib": 2000.0},
        ],
    }
    a = write_summary(
        run_of("baseline", 0).summary_path(tmp_path), "baseline", {"teacher": (100, 6e12)}, wall=3600, gpu=gpu
    )
    b = write_summary(
        run_of("kd", 0).summary_path(tmp_path),
        "kd",
        {"peer-1": (50, None), "peer-2": (30, None)},
        wall=1800,
        gpu={"gpus": 0, "reason": "no NVML"},
    )
    frame = summary_frame([a, b]).set_index("model")
    assert frame.loc["teacher", "gpu_util_mean_pct"] == 85.0 and frame.loc["teacher", "gpus"] == 2
    assert frame.loc["teacher", "training_flops"] == 6e12 and math.isnan(frame.loc["peer-1", "training_flops"])
    assert frame.loc["peer-2", "gpus"] == 0 and frame.loc["peer-2", "gpu_reason"] == "no NVML"


# --- Table 2 --------------------------------------------------------------------------------------


@pytest.fixture
def table2_inputs(tmp_path):
    root = tmp_path / "results"
    # one seed of DWML peer-2 EWoK absent; every seed of KD peer-2 on the supplement absent
    skip = {("dwml", "peer-2", 2, "ewok")} | {("kd", "peer-2", s, "supplement") for s in SEEDS}
    paths = make_eval(root, skip=skip)
    search = write_search(root / "search" / "peers-2.json", 124_000_000, [62_500_000, 40_000_000])
    return root, paths, search


def test_table2_numbers_bold_missing_and_csv(tmp_path, table2_inputs):
    root, paths, search = table2_inputs
    tex_path, csv_path = tmp_path / "t2.tex", tmp_path / "t2.csv"
    write_table("table2", {"eval": paths, "search": search}, tex_path, csv_path)
    tex, csv = tex_path.read_text(), read_csv(csv_path)
    assert_valid_latex(tex)
    assert "Peer 1 (62.5M)" in tex and "Peer 2 (40.0M)" in tex and "RoBERTa-base (124.0M)" in tex
    assert "over 3 seeds" in tex

    rows = csv.set_index(["Benchmark", "Method"])
    blimp = "BLiMP (blimp-filtered)"
    # DWML peer-1 BLiMP: 0.68, 0.69, 0.70 -> 69.0 +- 1.0
    mean, std = pct([0.68, 0.69, 0.70])
    assert rows.loc[(blimp, "DWML"), "peer_1"] == pytest.approx(mean)
    assert rows.loc[(blimp, "DWML"), "peer_1_std"] == pytest.approx(std)
    assert rows.loc[(blimp, "DWML"), "peer_1_n"] == 3
    assert rows.loc[(blimp, "DWML"), "teacher"] == "no" and rows.loc[(blimp, "KD_DWML"), "teacher"] == "yes"
    # Best = the better peer; the baseline's score sits in the Best column
    assert rows.loc[(blimp, "DWML"), "best"] == pytest.approx(mean)
    assert rows.loc[(blimp, "RoBERTa-base (124.0M)"), "best"] == pytest.approx(pct([0.70, 0.71, 0.72])[0])

    # bold: DWML is the best student per peer column; RoBERTa-base is the best of the Best column
    def cells(method: str) -> list[str]:
        line = next(x for x in tex.splitlines() if x.startswith(f"BLiMP (blimp-filtered) & {method}"))
        return [c.strip() for c in line.removesuffix(r"\\").split("&")]  # benchmark, method, teacher, p1, p2, best

    assert cells("DWML")[3:5] == [r"\textbf{69.0 $\pm$ 1.0}", r"\textbf{64.0 $\pm$ 1.0}"]
    assert cells("DWML")[5] == r"69.0 $\pm$ 1.0" and cells("KD\\_DWML")[3] == r"67.0 $\pm$ 1.0"
    assert cells("RoBERTa-base")[5] == r"\textbf{71.0 $\pm$ 1.0}" and cells("RoBERTa-base")[3] == ""

    # one absent seed: the two present seeds averaged, the absent file named
    ewok = "EWoK (ewok-filtered)"
    assert rows.loc[(ewok, "DWML"), "peer_2"] == pytest.approx(pct([0.43, 0.44])[0])
    assert rows.loc[(ewok, "DWML"), "peer_2_n"] == 2
    absent = str(run_of("dwml", 2).eval_path("peer-2", "ewok-filtered", root))
    assert absent in rows.loc[(ewok, "DWML"), "missing"]
    assert "2024-10M/dwml/peers-2/alpha-0.5/seed-2 (peer-2: ewok-filtered)" in tex
    # all seeds absent: "--" in LaTeX, empty in the CSV, never 0
    supp = "BLiMP suppl. (blimp-supplement)"
    assert pd.isna(rows.loc[(supp, "KD"), "peer_2"]) and rows.loc[(supp, "KD"), "peer_1"] == pytest.approx(
        pct([0.52, 0.53, 0.54])[0]
    )
    kd_line = next(line for line in tex.splitlines() if line.startswith(r"BLiMP suppl. (blimp-supplement) & KD &"))
    assert kd_line.split("&")[4].strip() == "--"
    assert "2024-10M/kd/peers-2/seed-1 (peer-2: blimp-supplement)" in tex


def test_table2_names_a_run_nobody_listed(tmp_path):
    root = tmp_path / "results"
    paths = make_eval(root, seeds=(0, 1))
    search = write_search(root / "search" / "peers-2.json", 1000, [500, 300])
    write_table(
        "table2", {"eval": paths, "search": search}, tmp_path / "t.tex", tmp_path / "t.csv", {"seeds": [0, 1, 2]}
    )
    tex = (tmp_path / "t.tex").read_text()
    # expected by the seeds option, although no input names it
    assert "2024-10M/sd/peers-2/seed-2 (peer-1: blimp-filtered, blimp-supplement, ewok-filtered; peer-2:" in tex
    missing = (
        read_csv(tmp_path / "t.csv").set_index(["Benchmark", "Method"]).loc[("BLiMP (blimp-filtered)", "SD"), "missing"]
    )
    assert str(run_of("sd", 2).eval_path("peer-1", "blimp-filtered", root)) in missing


def test_table2_refuses_a_result_without_its_variant_naming_the_file(tmp_path, table2_inputs):
    root, paths, search = table2_inputs
    odd = run_of("sd", 1).eval_path("peer-1", "blimp-filtered", root)
    write_zero_shot(odd, "blimp-filtered", 0.6, variants=("pll",))
    with pytest.raises(InputError, match="scored without the 'pll-word-l2r' variant") as err:
        write_table("table2", {"eval": paths, "search": search}, tmp_path / "t.tex", tmp_path / "t.csv")
    assert str(odd) in str(err.value) and "rerun" in str(err.value)
    assert not (tmp_path / "t.tex").exists()
    with pytest.raises(InputError, match="unknown scoring variant 'mean'"):
        write_table(
            "table2", {"eval": paths, "search": search}, tmp_path / "t.tex", tmp_path / "t.csv", {"variant": "mean"}
        )


def test_table2_shows_and_names_the_variant_asked_for(tmp_path, table2_inputs):
    _, paths, search = table2_inputs
    blimp = "BLiMP (blimp-filtered)"
    for variant, shift in (("pll-word-l2r", 0.0), ("official", OFFICIAL_OFFSET)):
        options = {} if variant == "pll-word-l2r" else {"variant": variant}
        write_table("table2", {"eval": paths, "search": search}, tmp_path / "t.tex", tmp_path / "t.csv", options)
        rows = read_csv(tmp_path / "t.csv").set_index(["Benchmark", "Method"])
        assert rows.loc[(blimp, "DWML"), "peer_1"] == pytest.approx(pct([0.68 + shift, 0.69 + shift, 0.70 + shift])[0])
        caption = re.search(r"\\caption\{(.*?)\}\n", (tmp_path / "t.tex").read_text()).group(1)
        assert f"scoring {variant} (" in caption


def test_table2_refuses_mixed_data_versions_naming_both_files(tmp_path, table2_inputs):
    root, paths, search = table2_inputs
    fast = write_zero_shot(run_of("sd", 0).eval_path("peer-1", "blimp-fast", root), "blimp-fast", 0.6)
    paths = [p for p in paths if p != run_of("sd", 0).eval_path("peer-1", "blimp-filtered", root)] + [fast]
    with pytest.raises(InputError, match="data version") as err:
        write_table("table2", {"eval": paths, "search": search}, tmp_path / "t.tex", tmp_path / "t.csv")
    assert str(fast) in str(err.value) and "blimp-filtered.json" in str(err.value)


def test_differences_within_the_seed_spread_are_called_out(tmp_path):
    root = tmp_path / "results"
    paths = []
    # DWML peer-1 beats DML peer-1 by 0.5 points, with a seed std of 5 points
    for seed, (dml, dwml) in enumerate([(0.60, 0.55), (0.70, 0.76), (0.65, 0.655)]):
        paths.append(
            write_zero_shot(
                run_of("dml", seed, peers=1).eval_path("peer-1", "blimp-filtered", root), "blimp-filtered", dml
            )
        )
        paths.append(
            write_zero_shot(
                run_of("dwml", seed, peers=1).eval_path("peer-1", "blimp-filtered", root), "blimp-filtered", dwml
            )
        )
    search = write_search(root / "search" / "peers-1.json", 1000, [500])
    write_table(
        "table2", {"eval": paths, "search": search}, tmp_path / "t.tex", tmp_path / "t.csv", {"benchmarks": ["blimp"]}
    )
    tex = (tmp_path / "t.tex").read_text()
    assert_valid_latex(tex)
    assert re.search(r"the best, .*DWML, leads .*DML by 0\.5, less than the seed std", tex.replace("\n", " "))


def test_table2_latex_compiles(tmp_path, table2_inputs):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed; the structural checks above still run")
    _, paths, search = table2_inputs
    write_table("table2", {"eval": paths, "search": search}, tmp_path / "t2.tex", tmp_path / "t2.csv")
    doc = tmp_path / "doc.tex"
    doc.write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\usepackage[margin=5mm,landscape]{geometry}"
        "\\begin{document}\\input{t2.tex}\\end{document}\n"
    )
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:]


# --- Table 1 --------------------------------------------------------------------------------------


def test_table1_tracks_published_rows_and_macro(tmp_path):
    root = tmp_path / "results"
    paths = make_eval(root, methods=("baseline", "dwml"), benches=("blimp", "supplement", "ewok", "glue"), seeds=(0, 1))
    write_table("table1", {"eval": paths}, tmp_path / "t1.tex", tmp_path / "t1.csv")
    tex, csv = (tmp_path / "t1.tex").read_text(), read_csv(tmp_path / "t1.csv")
    assert_valid_latex(tex)
    rows = csv.set_index(["Track", "Model"])
    # baseline, official (strict + 0.05): blimp .75/.76, supplement .65/.66, ewok .55/.56, glue .40/.41
    # -> macro per seed (.75 + .65 + .55 + .40) / 4 = .5875, then .5975
    base = rows.loc[("10M", "RoBERTa-base")]
    assert base["blimp"] == pytest.approx(75.5) and base["ewok"] == pytest.approx(55.5)
    assert base["glue"] == pytest.approx(40.5)
    assert base["macro"] == pytest.approx(59.25)
    assert base["macro_std"] == pytest.approx(pct([0.5875, 0.5975])[1])
    # the strict scores of the same files in their own columns
    assert base["blimp_strict"] == pytest.approx(70.5) and base["ewok_strict"] == pytest.approx(50.5)
    assert base["supplement_strict"] == pytest.approx(60.5)
    assert pd.isna(rows.loc[("10M", "BabyLlama†"), "blimp_strict"])  # nothing published to compare with
    caption = re.search(r"\\caption\{(.*?)\}\n", tex).group(1)
    assert "official" in caption and "pll-word-l2r" in caption
    # the fixture's GLUE results scored 2 of the 11 tasks: named, and the cells marked
    assert base["glue_tasks"] == "2/11" and rows.loc[("10M", "BabyLlama†"), "glue_tasks"] == "11/11"
    line = next(x for x in tex.splitlines() if x.startswith("10M & RoBERTa-base"))
    cells = [c.strip() for c in line.removesuffix(r"\\").split("&")]
    assert cells[5].endswith(r"$^\ddagger$") and cells[6] == "2/11" and cells[7].endswith(r"$^\ddagger$")
    assert not cells[2].endswith(r"$^\ddagger$")  # BLiMP is not marked
    assert "over 2/11 tasks (cola, mrpc), not the 11-task macro" in tex.replace("\n", " ")
    # DWML: the best peer (peer-1) shown and named
    assert ("10M", "DWML (peer-1, 2 peers)") in rows.index and "DWML: peer-1 (highest mean" in tex
    # the 100M track was not run; published rows are kept, marked, and never bold
    assert rows.loc[("100M", "RoBERTa-base"), "status"] == "not run" and "not run" in tex
    assert rows.loc[("10M", "BabyLlama†"), "status"] == "published, not produced here"
    assert rows.loc[("10M", "BabyLlama†"), "blimp"] == pytest.approx(69.8)
    assert r"\textbf{69.8" not in tex and r"BabyLlama$^\dagger$" in tex and "not produced here" in tex


def test_table1_shows_every_track_given_and_only_those(tmp_path):
    root = tmp_path / "results"
    benches = ("blimp", "supplement", "ewok", "glue")
    paths = [
        path
        for corpus in ("2024-10M", "2024-100M")
        for path in make_eval(root, methods=("baseline", "dwml"), benches=benches, seeds=(0,), corpus=corpus)
    ]
    write_zero_shot(
        RunId("2024-100M", "baseline", None, None, 0).eval_path("teacher", FAMILIES["blimp"], root),
        FAMILIES["blimp"],
        0.80,
    )  # the 100M teacher scores higher on BLiMP
    write_table("table1", {"eval": paths}, tmp_path / "t1.tex", tmp_path / "t1.csv", {"tracks": ["10M", "100M"]})
    rows = read_csv(tmp_path / "t1.csv").set_index(["Track", "Model"])
    for track, blimp in (("10M", 75.0), ("100M", 85.0)):  # both tracks run: each row from its own corpus's files
        assert rows.loc[(track, "RoBERTa-base"), "status"] == "ok"
        assert rows.loc[(track, "RoBERTa-base"), "blimp"] == pytest.approx(blimp)
        assert (track, "DWML (peer-1, 2 peers)") in rows.index
    assert rows.index.get_level_values("Track").tolist().index("100M") > 0  # 10M first, as listed
    write_table("table1", {"eval": paths}, tmp_path / "t1.tex", tmp_path / "t1.csv", {"tracks": ["100M"]})
    assert set(read_csv(tmp_path / "t1.csv")["Track"]) == {"100M"}


def test_table1_prints_unverified_published_values_as_na(tmp_path):
    root = tmp_path / "results"
    paths = make_eval(root, methods=("baseline", "dwml"), benches=("blimp", "supplement", "ewok", "glue"), seeds=(0,))
    published = tmp_path / "published.yaml"
    published.write_text(
        "source: {citation: 'X 2024.', url: 'https://example.org'}\n"
        "tracks:\n  10M:\n    BabyLlama: {blimp: null, supplement: 59.5, ewok: null, glue: null,"
        " macro: null}\n"
    )
    write_table(
        "table1", {"eval": paths, "published": published}, tmp_path / "t.tex", tmp_path / "t.csv", {"tracks": ["10M"]}
    )
    tex = (tmp_path / "t.tex").read_text()
    line = next(x for x in tex.splitlines() if x.startswith("10M & BabyLlama"))
    assert line.count("n/a") == 4 and "59.5" in line and "not verified offline" in tex


def test_published_yaml_cites_its_source():
    import yaml

    data = yaml.safe_load(PUBLISHED.read_text())
    assert "evaluation-pipeline-2024" in data["source"]["url"]
    assert set(data["tracks"]) == {"10M", "100M"}
    for models in data["tracks"].values():
        assert set(models) == {"BabyLlama", "LTG-BERT"}


# --- Tables 6/7/8 ---------------------------------------------------------------------------------


def test_table6_per_phenomenon_means_and_row_bold(tmp_path):
    root = tmp_path / "results"
    paths = []
    for seed in (0, 1):
        for method in ("baseline", *STUDENTS):
            run = run_of(method, seed)
            for model in run.models:
                a = score(method, model, seed, "blimp")
                paths.append(
                    write_zero_shot(
                        run.eval_path(model, "blimp-filtered", root),
                        "blimp-filtered",
                        a,
                        groups={"binding": a, "island_effects": 1 - a},
                    )
                )
    write_table("table6", {"eval": paths}, tmp_path / "t.tex", tmp_path / "t.csv")
    tex, rows = (tmp_path / "t.tex").read_text(), read_csv(tmp_path / "t.csv").set_index("Phenomenon")
    assert_valid_latex(tex)
    assert rows.loc["binding", "dwml"] == pytest.approx(pct([0.68, 0.69])[0])
    assert rows.loc["island_effects", "sd"] == pytest.approx(pct([0.40, 0.39])[0])
    assert rows.loc["island_effects", "sd_std"] == pytest.approx(pct([0.40, 0.39])[1])
    binding = next(x for x in tex.splitlines() if x.startswith("binding"))
    island = next(x for x in tex.splitlines() if x.startswith("island"))
    assert binding.split("&")[1].strip().startswith(r"\textbf")  # RoBERTa-base best on binding
    assert island.split("&")[2].strip().startswith(r"\textbf")  # SD best on island effects
    assert rows.loc["Macro average", "baseline"] == pytest.approx(pct([0.70, 0.71])[0])
    assert "scoring pll-word-l2r (summed PLL-word-l2r" in tex  # the caption names the variant
    write_table("table6", {"eval": paths}, tmp_path / "t.tex", tmp_path / "t.csv", {"variant": "official"})
    rows = read_csv(tmp_path / "t.csv").set_index("Phenomenon")
    assert rows.loc["binding", "dwml"] == pytest.approx(pct([0.68 + OFFICIAL_OFFSET, 0.69 + OFFICIAL_OFFSET])[0])
    assert "scoring official (the BabyLM 2024 pipeline" in (tmp_path / "t.tex").read_text()


# --- Table 9 --------------------------------------------------------------------------------------


def test_table9_flops_gpu_wall_time_relative_to_baseline(tmp_path):
    root = tmp_path / "results"
    gpu = {
        "gpus": 1,
        "per_gpu": [
            {
                "index": 0,
                "name": "H200",
                "util_mean_pct": 80.0,
                "util_max_pct": 100.0,
                "mem_peak_mib": 1.0,
                "mem_total_mib": 2.0,
                "power_mean_w": 1.0,
            }
        ],
    }
    paths = []
    for seed in (0, 1):
        paths.append(
            write_summary(
                run_of("baseline", seed).summary_path(root),
                "baseline",
                {"teacher": (100, 1e15)},
                wall=7200 + 3600 * seed,
                seed=seed,
                gpu=gpu,
            )
        )
        paths.append(
            write_summary(
                run_of("dwml", seed).summary_path(root),
                "dwml",
                {"peer-1": (50, 4e14), "peer-2": (30, 2e14)},
                wall=3600,
                seed=seed,
                gpu={"gpus": 0, "reason": "no NVIDIA driver"},
            )
        )
    write_table("table9", {"summaries": paths}, tmp_path / "t.tex", tmp_path / "t.csv", {"methods": ["dwml"]})
    tex, rows = (tmp_path / "t.tex").read_text(), read_csv(tmp_path / "t.csv").set_index("Method")
    assert_valid_latex(tex)
    assert rows.loc["DWML", "flops"] == pytest.approx(6e14) and rows.loc["DWML", "flops_1"] == pytest.approx(4e14)
    assert rows.loc["DWML", "flops_rel"] == pytest.approx(-40.0)
    # wall time vs the baseline of the same seed: 1 h / 2 h and 1 h / 3 h
    assert rows.loc["DWML", "wall_rel"] == pytest.approx(statistics.mean([-50.0, -100 * 2 / 3]))
    assert rows.loc["RoBERTa-base", "wall_h"] == pytest.approx(2.5)
    assert rows.loc["RoBERTa-base", "gpu_util"] == pytest.approx(80.0) and pd.isna(rows.loc["DWML", "gpu_util"])
    assert "n/a" in tex and "no NVIDIA driver" in tex


# --- Tables 3, 4, 5 and the dispatcher ------------------------------------------------------------


def test_tables_3_4_5(tmp_path):
    root = tmp_path / "results"
    s1 = write_search(root / "search/peers-1.json", 1000, [480])
    s2 = write_search(root / "search/peers-2.json", 1000, [500, 333])
    summaries = [
        write_summary(
            run_of("kd", s).summary_path(root),
            "kd",
            {"peer-1": (5, 1.0), "peer-2": (3, 1.0)},
            wall=1,
            seed=s,
            options={"lam": 0.5, "tau": 2.0},
        )
        for s in (0, 1)
    ]
    write_table("table3", {"search": [s2, s1], "summaries": summaries}, tmp_path / "t3.tex", tmp_path / "t3.csv")
    tex3, t3 = (tmp_path / "t3.tex").read_text(), read_csv(tmp_path / "t3.csv")
    assert_valid_latex(tex3)
    arch = t3[t3["section"] == "architectures"].set_index(["Peers p", "Model"])
    assert arch.loc[("1", "Peer 1"), "rel_error"] == pytest.approx(4.0)  # |480 - 500| / 500
    assert arch.loc[("2", "Peer 2"), "parameters"] == 333
    hyper = t3[t3["section"] == "hyperparameters"].set_index("Hyperparameter")
    assert hyper.loc["Peak learning rate", "value"] == "0.0005" and hyper.loc["Seeds", "value"] == "0, 1"

    glue = [write_glue(run_of("baseline", 0).eval_path("teacher", "glue", root), 0.5)]
    write_table("table4", {"glue": glue}, tmp_path / "t4.tex", tmp_path / "t4.csv")
    tex4 = (tmp_path / "t4.tex").read_text()
    assert_valid_latex(tex4)
    assert "cola (MCC), mrpc (F1)" in tex4 and "wsc" in tex4 and "Train examples per task & all" in tex4
    other = write_glue(run_of("baseline", 1).eval_path("teacher", "glue", root), 0.5, {"lr": 1e-4})
    with pytest.raises(InputError, match="lr") as err:
        write_table("table4", {"glue": [*glue, other]}, tmp_path / "t4.tex", tmp_path / "t4.csv")
    assert str(other) in str(err.value)

    corpus = root / CORPUS / "stats" / "corpus.csv"
    corpus.parent.mkdir(parents=True)
    corpus.write_text(
        "domain,split,lines,words\nchildes,train,2,10\nchildes,dev,1,5\nchildes,test,1,4\n"
        "gutenberg,train,3,20\ngutenberg,dev,1,6\ngutenberg,test,1,7\n"
    )
    write_table("table5", {"corpus": corpus}, tmp_path / "t5.tex", tmp_path / "t5.csv")
    assert_valid_latex((tmp_path / "t5.tex").read_text())
    t5 = read_csv(tmp_path / "t5.csv").set_index("Domain")
    assert t5.loc["Total", "train"] == 30 and t5.loc["gutenberg", "total"] == 33


def test_write_table_checks_names(tmp_path):
    assert set(TABLES) == {f"table{i}" for i in range(1, 10)}
    with pytest.raises(InputError, match="unknown table"):
        write_table("table10", {}, tmp_path / "t.tex", tmp_path / "t.csv")
    with pytest.raises(InputError, match="unknown options"):
        write_table("table5", {"corpus": []}, tmp_path / "t.tex", tmp_path / "t.csv", {"seeds": [0]})
    # the valid options named are the builder's keyword-only parameters, its inputs left out
    with pytest.raises(InputError, match=r"unknown options peer; valid: seeds, peers, alpha, methods$"):
        write_table("table9", {"summaries": []}, tmp_path / "t.tex", tmp_path / "t.csv", {"peer": 2})
    with pytest.raises(InputError, match=r"unknown options tracks; valid: none$"):
        write_table("table3", {"search": []}, tmp_path / "t.tex", tmp_path / "t.csv", {"tracks": ["10M"]})
    assert not (tmp_path / "t.tex").exists() and not (tmp_path / "t.csv").exists()


def test_check_consistent_ignores_other_benchmarks(tmp_path):
    root = tmp_path / "results"
    a = write_zero_shot(run_of("baseline", 0).eval_path("teacher", "blimp-fast", root), "blimp-fast", 0.5)
    b = write_zero_shot(run_of("baseline", 0).eval_path("teacher", "ewok-filtered", root), "ewok-filtered", 0.5)
    check_consistent(eval_frame([a, b]))  # different datasets of different benchmarks may share a table


def test_table7_per_supplement_task_and_snakemake_inputs(tmp_path):
    iocontainers = pytest.importorskip("snakemake.iocontainers")
    root = tmp_path / "results"
    paths = make_eval(root, benches=("supplement",), seeds=(0,))
    inputs = iocontainers.Namedlist(fromdict={"eval": [str(p) for p in paths]})  # what snakemake.input is
    write_table("table7", inputs, tmp_path / "t.tex", tmp_path / "t.csv", {"student": "peer-2"})
    tex, rows = (tmp_path / "t.tex").read_text(), read_csv(tmp_path / "t.csv").set_index("Task")
    assert_valid_latex(tex)
    assert rows.loc["task_g1", "kd"] == pytest.approx(100 * score("kd", "peer-2", 0, "supplement"))
    assert rows.loc["task_g1", "baseline"] == pytest.approx(100 * score("baseline", "teacher", 0, "supplement"))
    assert "One seed" in tex


def test_a_glue_result_of_the_earlier_protocol_is_refused_naming_the_file(tmp_path):
    """GLUE results of format 1 were fine-tuned with other MultiRC/WSC inputs and another epoch choice
    than the BabyLM 2024 pipeline's: a table must not print them beside the published rows."""
    path = write_glue(tmp_path / "glue.json", 0.5)
    assert load_glue(path)["macro_average"] == 0.5
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "format_version": 1}))
    with pytest.raises(InputError, match="format_version 1 is not one of \\(2,\\).*rerun its step") as err:
        load_glue(path)
    assert str(path) in str(err.value)
