"""End to end through Snakemake: the data stage and the search on a micro config, from the mirror."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from transformers import AutoModelForMaskedLM, AutoTokenizer

from babyteach.data.shards import PackedBlocks
from conftest import REPO
from shard_helpers import decode_split
from workflow_helpers import run_snakemake

MICRO = {
    "corpus": {"max_lines_per_file": 200},
    "tokenizer": {"vocab_size": 400},
    "model": {"block_size": 128, "teacher": {"layers": 2, "heads": 2, "hidden": 32}},
    "search": {
        "peer_counts": [2],
        "space": {"layers": [1, 2], "heads": [1, 2], "hidden": [8, 16, 24, 32]},
        "init_points": 2,
        "n_iter": 2,
    },
    "evaluation_data": ["blimp-fast", "ewok-fast", "glue-filtered"],
    "seeds": [0],
    "training": {
        "epochs": None,
        "token_budget": 4000,
        "batch_size": 4,
        "lr": 0.002,
        "checkpoint_every": 5,
        "log_every": 2,
        "dev_blocks": 4,
    },
    "evaluation": {"max_per_task": 2, "per_item": True},
    "finetune": {
        "tasks": ["cola", "mrpc"],
        "max_train_examples": 16,
        "max_eval_examples": 16,
        "max_epochs": 1,
        "batch_size": 8,
    },
    "mutual": {"weight_update_every": 2},
    "ablations": {"alphas": [0.5]},  # the main alpha: the alpha ablation adds no run here
    "report": {"table1_tracks": ["10M"]},  # the mirror holds no 100M corpus
}
MUTUAL_RUNS = [f"{method}/peers-2/alpha-0.5/seed-0" for method in ("dml", "dwml", "kd_dwml")]


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory, data_mirror):
    workdir = tmp_path_factory.mktemp("micro")
    config = {**MICRO, "data_mirror": str(data_mirror)}
    run_snakemake(workdir, "--cores", "2", "all", config=config)
    return workdir, config


def test_stats_count_the_cleaned_files(micro_run):
    workdir, _ = micro_run
    corpus = workdir / "results/2024-10M"
    stats = pd.read_csv(corpus / "stats/corpus.csv")
    assert len(stats) == 6 * 3
    for row in stats.itertuples():
        lines = (corpus / "clean" / f"{row.domain}.{row.split}").read_text(encoding="utf-8").splitlines()
        assert row.lines == len(lines) <= 200
        assert row.words == sum(len(line.split()) for line in lines)


def test_shards_decode_back_to_the_cleaned_train_text(micro_run):
    workdir, _ = micro_run
    corpus = workdir / "results/2024-10M"
    tokenizer = AutoTokenizer.from_pretrained(corpus / "tokenizer")
    assert len(tokenizer) == 400 and tokenizer.mask_token == "<mask>"
    expected = []
    for domain in sorted({p.stem for p in (corpus / "clean").glob("*.train")}):
        expected += (corpus / "clean" / f"{domain}.train").read_text(encoding="utf-8").splitlines()
    assert decode_split(corpus / "shards", "train", corpus / "tokenizer") == expected
    blocks = PackedBlocks(corpus / "shards", "dev", block_size=128)
    first = blocks[0]
    assert first[0] == tokenizer.bos_token_id and first[-1] == tokenizer.eos_token_id
    assert np.all(first[1:-1] != tokenizer.pad_token_id)


def test_search_result_targets_the_teacher(micro_run):
    workdir, _ = micro_run
    result = json.loads((workdir / "results/search/peers-2.json").read_text())
    teacher_params = result["teacher"]["params"]
    assert [p["target"] for p in result["peers"]] == pytest.approx([teacher_params / 2, teacher_params / 3])


def test_fetched_evaluation_data_is_verified(micro_run):
    workdir, _ = micro_run
    manifest = json.loads((workdir / "results/raw/blimp-fast/MANIFEST.json").read_text())
    assert len(manifest["files"]) == 67
    assert (workdir / "results/raw/ewok-fast/ewok_fast.zip").is_file()


def test_rerun_has_nothing_to_do(micro_run):
    workdir, config = micro_run
    result = run_snakemake(workdir, "-n", "all", config=config)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_changing_the_vocabulary_reruns_only_what_depends_on_it(micro_run, tmp_path):
    workdir, config = micro_run
    changed = {**config, "tokenizer": {"vocab_size": 500}}
    result = run_snakemake(workdir, "-n", "all", config=changed)
    planned = result.stdout
    assert "rule train_tokenizer" in planned and "rule tokenize_corpus" in planned
    assert "rule train_baseline" in planned
    assert "rule clean_corpus" not in planned and "rule fetch_data" not in planned


def test_changing_a_kd_option_reruns_only_the_methods_with_a_teacher_term(micro_run):
    workdir, config = micro_run
    result = run_snakemake(workdir, "-n", "all", config={**config, "kd": {"lam": 0.7}})
    planned = result.stdout
    assert "output: results/2024-10M/train/kd/peers-2/seed-0" in planned
    assert "output: results/2024-10M/train/kd_dwml/peers-2/alpha-0.5/seed-0" in planned
    assert "output: results/2024-10M/train/sd/" not in planned and "rule train_baseline" not in planned
    assert "output: results/2024-10M/train/dwml/" not in planned
    assert "output: results/2024-10M/train/dml/" not in planned


def test_changing_an_outer_loop_option_leaves_dml_alone(micro_run):
    workdir, config = micro_run
    result = run_snakemake(workdir, "-n", "all", config={**config, "mutual": {"weight_update_every": 3}})
    planned = result.stdout
    assert "output: results/2024-10M/train/dwml/peers-2/alpha-0.5/seed-0" in planned
    assert "output: results/2024-10M/train/kd_dwml/peers-2/alpha-0.5/seed-0" in planned
    assert "output: results/2024-10M/train/dml/" not in planned and "rule train_students" not in planned


def test_changing_the_logging_cadence_reruns_nothing_but_a_training_value_reruns_training(micro_run):
    workdir, config = micro_run
    cadence = {**config["training"], "log_every": 3, "eval_every": 2, "checkpoint_every": 4}
    result = run_snakemake(workdir, "-n", "all", config={**config, "training": cadence})
    assert "Nothing to be done" in result.stdout + result.stderr
    result = run_snakemake(workdir, "-n", "all", config={**config, "training": {**config["training"], "lr": 0.003}})
    assert "rule train_baseline" in result.stdout and "rule train_mutual" in result.stdout


def test_a_new_ablation_point_trains_only_itself(micro_run):
    workdir, config = micro_run
    result = run_snakemake(workdir, "-n", "ablation_alpha", config={**config, "ablations": {"alphas": [0.5, 0.7]}})
    trained = [line for line in result.stdout.splitlines() if "output: results/2024-10M/train/" in line]
    assert trained == ["    output: results/2024-10M/train/dwml/peers-2/alpha-0.7/seed-0"]
    assert "rule search_architectures" not in result.stdout  # the search result is shared


def test_trained_models_load_and_report_their_budget(micro_run):
    workdir, _ = micro_run
    runs = workdir / "results/2024-10M/train"
    expected = {
        "baseline/seed-0": ["teacher"],
        "kd/peers-2/seed-0": ["peer-1", "peer-2"],
        "sd/peers-2/seed-0": ["peer-1", "peer-2"],
        **{run: ["peer-1", "peer-2"] for run in MUTUAL_RUNS},
    }
    search = json.loads((workdir / "results/search/peers-2.json").read_text())
    for run, models in expected.items():
        summary = json.loads((runs / run / "train_summary.json").read_text())
        assert summary["tokens"] == summary["steps"] * summary["tokens_per_step"] <= 4000
        assert summary["tokens"] > 4000 - summary["tokens_per_step"]
        for name in models:
            model = AutoModelForMaskedLM.from_pretrained(runs / run / name)
            AutoTokenizer.from_pretrained(runs / run / name)
            if name.startswith("peer-"):
                arch = search["peers"][int(name[5:]) - 1]["arch"]
                assert model.config.num_hidden_layers == arch["layers"]
                assert model.config.hidden_size == arch["hidden"]
    kd = json.loads((runs / "kd/peers-2/seed-0/train_summary.json").read_text())
    assert kd["teacher_dir"].endswith("train/baseline/seed-0/teacher")
    dwml = json.loads((runs / MUTUAL_RUNS[1] / "train_summary.json").read_text())
    assert dwml["method_options"]["alpha"] == 0.5 and dwml["method_options"]["weight_update_every"] == 2
    assert dwml["outer_steps"] == dwml["steps"] // 2
    weights = pd.read_csv(runs / MUTUAL_RUNS[1] / "peer_weights.csv")
    assert len(weights) == dwml["outer_steps"] + 1
    assert json.loads((runs / MUTUAL_RUNS[2] / "train_summary.json").read_text())["teacher_dir"].endswith(
        "train/baseline/seed-0/teacher"
    )
    assert (workdir / "results/checkpoints/2024-10M/train/baseline/seed-0").is_dir()


def test_a_training_job_with_two_gpus_runs_as_two_torchrun_processes(micro_run, tmp_path):
    """resources gpu=2 starts the rule under torchrun (gloo on CPU); the global batch stays the
    configured one, so steps and tokens equal the single-process run's."""
    workdir, config = micro_run
    corpus = workdir / "results/2024-10M"
    for folder in ("shards", "tokenizer"):  # present inputs: only the training job runs
        shutil.copytree(corpus / folder, tmp_path / "results/2024-10M" / folder)
    result = run_snakemake(
        tmp_path,
        "--cores",
        "2",
        "-p",
        "results/2024-10M/train/baseline/seed-0",
        "--set-resources",
        "train_baseline:gpu=2",
        config=config,
    )
    assert "torch.distributed.run --standalone --nproc_per_node 2 -m babyteach.train_job" in result.stderr
    log = (tmp_path / "results/logs/2024-10M/train/baseline/seed-0.log").read_text()
    assert "data-parallel over 2 processes, 2 blocks each per micro-batch" in log
    two = json.loads((tmp_path / "results/2024-10M/train/baseline/seed-0/train_summary.json").read_text())
    one = json.loads((corpus / "train/baseline/seed-0/train_summary.json").read_text())
    assert two["processes"] == 2 and one["processes"] == 1
    assert (two["steps"], two["tokens"], two["tokens_per_step"]) == (
        one["steps"],
        one["tokens"],
        one["tokens_per_step"],
    )
    AutoModelForMaskedLM.from_pretrained(tmp_path / "results/2024-10M/train/baseline/seed-0/teacher")
    # the GPU count is a resource, not a rerun trigger: with the default gpu=1 nothing is to do
    plan = run_snakemake(tmp_path, "-n", "results/2024-10M/train/baseline/seed-0", config=config)
    assert "Nothing to be done" in plan.stdout + plan.stderr


def test_table1_spans_every_configured_track(tmp_path, planning_mirror):
    """With the default config (both tracks), Table 1 plans the baseline and DWML on each corpus,
    and budgets scale with it: 100M cleaning, tokenising and training get 10x the 10M runtime."""
    plan = run_snakemake(tmp_path, "-n", "table1", "--config", f"data_mirror={planning_mirror}").stdout
    runtime = {}  # output → runtime (minutes) of every planned job
    for block in plan.split("\nrule ")[1:]:
        output, minutes = re.search(r"output: (\S+)", block), re.search(r"runtime=(\d+)", block)
        if output and minutes:
            runtime[output.group(1).rstrip(",")] = int(minutes.group(1))
    for track in ("10M", "100M"):
        for run in ("baseline/seed-{s}", "dwml/peers-4/alpha-0.5/seed-{s}"):
            for seed in (0, 1, 2):
                assert f"results/2024-{track}/train/{run.format(s=seed)}" in runtime
    for job in ("train/baseline/seed-0", "train/dwml/peers-4/alpha-0.5/seed-0", "shards", "clean"):
        assert runtime[f"results/2024-100M/{job}"] == 10 * runtime[f"results/2024-10M/{job}"], job
    assert not any("/kd/" in output or "2024-100M/train/dml" in output for output in runtime)


def test_lint_reports_nothing(tmp_path):
    result = run_snakemake(tmp_path, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_snakefmt_check_passes():
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_passes(check):
    """The Python sources are linted and formatted by ruff (pyproject.toml, [tool.ruff]), as the .smk
    files are by snakefmt: formatting needs no per-line exceptions."""
    result = subprocess.run([sys.executable, "-m", "ruff", *check, "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_trained_model_is_evaluated_zero_shot(micro_run):
    workdir, _ = micro_run
    evals = workdir / "results/2024-10M/eval"
    models = [
        "baseline/seed-0/teacher",
        *(f"{m}/peers-2/seed-0/peer-{i}" for m in ("kd", "sd") for i in (1, 2)),
        *(f"{run}/peer-{i}" for run in MUTUAL_RUNS for i in (1, 2)),
    ]
    for model in models:
        blimp = json.loads((evals / model / "blimp-fast.json").read_text())
        ewok = json.loads((evals / model / "ewok-fast.json").read_text())
        assert len(blimp["items"]) == 67 * 2  # evaluation.per_item
        for result in (blimp, ewok):
            assert list(result["variants"]) == ["official", "pll-word-l2r"]  # both scorings, one evaluation
            for numbers in result["variants"].values():
                accuracies = [task["accuracy"] for task in numbers["tasks"].values()]
                assert numbers["macro_accuracy"] == pytest.approx(sum(accuracies) / len(accuracies))
        for numbers in blimp["variants"].values():
            assert numbers["n_pairs"] == 67 * 2 and len(numbers["tasks"]) == 67
        for numbers in ewok["variants"].values():
            assert numbers["n_pairs"] == 11 * 2 and len(numbers["groups"]) == 11


def test_every_trained_model_is_fine_tuned_on_the_configured_tasks(micro_run):
    workdir, _ = micro_run
    evals = workdir / "results/2024-10M/eval"
    results = sorted(evals.glob("**/glue.json"))
    assert len(results) == 1 + 2 * 6  # the teacher, 2 peers of each of the 5 student methods and of ablation_size
    for path in results:
        glue = json.loads(path.read_text())
        assert glue["tasks_included"] == ["cola", "mrpc"]
        assert glue["tasks"]["cola"]["metric"] == "mcc" and glue["tasks"]["mrpc"]["metric"] == "f1"
        assert glue["tasks"]["cola"]["n_valid"] == 16
        values = [glue["tasks"][task]["value"] for task in glue["tasks_included"]]
        assert glue["macro_average"] == pytest.approx(sum(values) / 2)


def test_tables_and_figures_hold_the_runs_numbers(micro_run):
    workdir, _ = micro_run
    tables = workdir / "results/tables"
    # the micro config evaluates BLiMP, EWoK and GLUE, not the supplement: no Table 7
    assert sorted(p.stem for p in tables.glob("*.tex")) == [f"table{i}" for i in (1, 2, 3, 4, 5, 6, 8, 9)]
    for tex in tables.glob("*.tex"):
        text = tex.read_text()
        assert "\\begin{tabular}" in text and "\\toprule" in text and "\\bottomrule" in text, tex.name
    evals = workdir / "results/2024-10M/eval"
    table2 = pd.read_csv(tables / "table2.csv")
    dwml = table2[(table2["Method"] == "DWML") & table2["Benchmark"].str.startswith("BLiMP")].iloc[0]
    for peer in (1, 2):
        result = json.loads((evals / MUTUAL_RUNS[1] / f"peer-{peer}/blimp-fast.json").read_text())
        assert dwml[f"peer_{peer}"] == pytest.approx(100 * result["variants"]["pll-word-l2r"]["macro_accuracy"])
    # Table 1 compares with the published rows on the official scoring, the strict one in its own column
    table1 = pd.read_csv(tables / "table1.csv").set_index(["Track", "Model"])
    teacher = json.loads((evals / "baseline/seed-0/teacher/blimp-fast.json").read_text())["variants"]
    assert table1.loc[("10M", "RoBERTa-base"), "blimp"] == pytest.approx(100 * teacher["official"]["macro_accuracy"])
    assert table1.loc[("10M", "RoBERTa-base"), "blimp_strict"] == pytest.approx(
        100 * teacher["pll-word-l2r"]["macro_accuracy"]
    )
    assert table1.loc[("10M", "RoBERTa-base"), "glue_tasks"] == "2/11"  # finetune.tasks: cola, mrpc
    table9 = pd.read_csv(tables / "table9.csv")
    summary = json.loads((workdir / "results/2024-10M/train/baseline/seed-0/train_summary.json").read_text())
    assert table9.set_index("Method").loc["RoBERTa-base", "tokens"] == summary["tokens"]
    for figure in ("figure2", "figure3", "figure4", "figure_size", "training_loss"):
        assert (workdir / f"results/figures/{figure}.pdf").read_bytes().startswith(b"%PDF")
        assert (workdir / f"results/figures/{figure}.png").stat().st_size > 1000


def test_every_table_compiles_as_a_latex_fragment(micro_run, tmp_path):
    """Each results/tables/*.tex, \\input into a minimal document, compiles with pdflatex (the
    structural check above runs without TeX; .ci/run installs it where apt can)."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed; test_tables_and_figures_hold_the_runs_numbers checks the structure")
    workdir, _ = micro_run
    inputs = "".join(f"\\input{{{tex}}}\\clearpage" for tex in sorted((workdir / "results/tables").glob("*.tex")))
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs}"
        "\\usepackage[margin=5mm,landscape]{geometry}"
        f"\\begin{{document}}{inputs}\\end{{document}}\n"
    )
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "doc.pdf").read_bytes().startswith(b"%PDF")


def test_html_report_holds_every_table_and_figure(micro_run):
    workdir, config = micro_run
    run_snakemake(workdir, "--report", "results/report.html", config=config)
    report = (workdir / "results/report.html").read_text(encoding="utf-8")
    assert "Each method's peers (sizes from the architecture search)" in report  # table2's caption
    for name in ("table1.tex", "table9.tex", "figure2.png", "figure3.png", "figure4.png", "training_loss.png"):
        assert name in report, name
