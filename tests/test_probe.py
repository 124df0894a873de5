"""The recipe probe: its settings, summary table and figure on hand-made run folders, its plan, and one
run through Snakemake on the micro config."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml

from babyteach.data.unigram import UnigramBaseline, unigram_baseline
from babyteach.errors import InputError
from babyteach.evaluate.zero_shot import RESULTS_VERSION
from babyteach.probe import probe_runs, setting_name
from babyteach.report.probe_figure import probe_figure
from babyteach.report.probe_summary import probe_summary
from babyteach.train_outputs import SUMMARY_VERSION
from conftest import REPO
from test_workflow import MICRO
from workflow_helpers import run_snakemake

#: config.yaml's training section: every key the schema knows, as the workflow passes it.
TRAINING = yaml.safe_load((REPO / "config.yaml").read_text())["training"]


# --- settings -------------------------------------------------------------------------------------


def test_a_setting_is_named_after_its_values_in_key_order():
    assert setting_name({"lr": 0.0001}) == "lr-0.0001"
    assert setting_name({"warmup_fraction": 0.1, "lr": 5e-4}) == "lr-0.0005_warmup_fraction-0.1"
    assert setting_name({"lr": 1e-05, "clip_norm": None, "compile": True}) == "clip_norm-null_compile-true_lr-1e-05"
    assert setting_name({"batch_size": 64}) == "batch_size-64"
    assert setting_name({}) == "base"


def test_a_setting_overrides_the_training_section_for_the_probe_budget():
    assert TRAINING["lr"] not in (3e-4, 5e-4)  # every setting below trains a run of its own
    runs = probe_runs([{"lr": 3e-4}, {"lr": 5e-4, "warmup_fraction": 0.1}, {}], TRAINING, 4096, 128)
    assert list(runs) == ["lr-0.0003", "lr-0.0005_warmup_fraction-0.1", "base"]  # the configured order
    first = runs["lr-0.0003"]
    assert first["lr"] == 3e-4 and first["warmup_fraction"] == TRAINING["warmup_fraction"]
    assert runs["lr-0.0005_warmup_fraction-0.1"]["warmup_fraction"] == 0.1
    assert runs["base"]["lr"] == TRAINING["lr"]
    for values in runs.values():
        assert values["token_budget"] == 4096 and values["epochs"] is None
        assert not {"eval_every", "log_every", "checkpoint_every"} & set(values)  # cadence: untracked job keys
        assert values["batch_size"] == TRAINING["batch_size"] and values["dev_blocks"] == TRAINING["dev_blocks"]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ([{"lr": 1e-4}, {"lrr": 1e-4}], "probe.settings[1].lrr: not a training key"),
        ([{"epochs": 2}], "probe.settings[0].epochs: a probe setting cannot set"),
        ([{"eval_every": 5}], "probe.settings[0].eval_every: a probe setting cannot set"),
        ([{"dev_blocks": 8}], "probe.settings[0].dev_blocks: a probe setting cannot set"),
        ([{"lr": -1.0}], "probe.settings[0].lr: must be positive"),
        ([{"lr": "fast"}], "probe.settings[0].lr: must be a number"),
        ([{"warmup_fraction": 1.5}], "probe.settings[0].warmup_fraction: must be in [0, 1)"),
        ([{"lr": 1e-4}, {"lr": 0.0001}], "probe.settings[1]: trains the same run as probe.settings[0]"),
        ([{}, {"lr": TRAINING["lr"]}], "probe.settings[1]: trains the same run as probe.settings[0]"),
        ([0.001], "probe.settings[0]: must be a mapping"),
        ([{"precision": "b/f16"}], "probe.settings[0].precision"),
        ([], "probe.settings: give at least one"),
    ],
)
def test_a_bad_setting_is_named(settings, named):
    with pytest.raises(InputError) as error:
        probe_runs(settings, TRAINING, 4096, 128)
    assert named in str(error.value)


@pytest.mark.parametrize(
    ("probe", "named"),
    [
        ({"settings": [{"lr": 1e-4}, {"lrr": 1e-4}]}, "probe.settings[1].lrr: not a training key"),  # babyteach.probe
        ({"dataset": "glue-filtered"}, "dataset"),  # the schema
    ],
)
def test_a_bad_probe_section_stops_the_workflow_at_start_up(tmp_path, probe, named):
    result = run_snakemake(tmp_path, "-n", config={"probe": probe}, check=False)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


# --- summary and figure on hand-made run folders ---------------------------------------------------

BASELINE = UnigramBaseline(train_entropy=6.3, dev_cross_entropy=6.4, train_tokens=1000, dev_tokens=100)


def make_run(root, name, config, dev_losses, accuracy, family="blimp-fast"):
    """A probe run folder (metrics.jsonl with training and dev-loss lines, train_summary.json) and its
    zero-shot result, as the training and evaluation rules write them; returns (run folder, result)."""
    run = root / "train" / name
    run.mkdir(parents=True)
    lines = []
    for i, loss in enumerate(dev_losses, 1):
        step = 10 * i
        lines.append({"step": step, "tokens": 512 * step, "lr": 1e-3, "loss": {"teacher": loss + 1}})
        lines.append({"step": step, "tokens": 512 * step, "dev_loss": {"teacher": loss}})
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = {
        "format_version": SUMMARY_VERSION,
        "method": "baseline",
        "steps": 10 * len(dev_losses),
        "tokens": 5120 * len(dev_losses),
        "wall_time_s": 1.0,
        "config": {**TRAINING, **config},
        "students": {
            "teacher": {
                "parameters": 1000,
                "architecture": {"layers": 2, "heads": 2, "hidden": 32},
                "final_dev_loss": dev_losses[-1],
            }
        },
    }
    (run / "train_summary.json").write_text(json.dumps(summary))
    result = root / "eval" / name / "teacher" / f"{family}.json"
    result.parent.mkdir(parents=True)
    tasks = {
        "a": {"n": 4, "correct": 4, "ties": 0, "accuracy": 1.0},
        "b": {"n": 4, "correct": 4 * accuracy, "ties": 0, "accuracy": accuracy},
    }
    strict = {"macro_accuracy": (1.0 + accuracy) / 2, "tasks": tasks, "groups": {"g": {"n": 8, "accuracy": 0.5}}}
    official = {**strict, "macro_accuracy": 0.99}  # another scoring of the same pairs: not the one shown
    result.write_text(
        json.dumps(
            {
                "version": RESULTS_VERSION,
                "family": family,
                "data_dir": family,
                "variants": {"official": official, "pll-word-l2r": strict},
            }
        )
    )
    return run, result


#: The summary's columns, written out: the setting, the probed keys, then the results.
SUMMARY_COLUMNS = [
    "setting",
    "lr",
    "warmup_fraction",
    "steps",
    "tokens",
    "final_dev_loss",
    "unigram_entropy",
    "unigram_dev_cross_entropy",
    "margin_under_unigram",
    "dataset",
    "scoring",
    "accuracy_pct",
    "corpus",
]

SETTINGS = {"lr-0.0001": {"lr": 0.0001}, "lr-0.0005_warmup_fraction-0.1": {"lr": 0.0005, "warmup_fraction": 0.1}}


@pytest.fixture
def two_runs(tmp_path):
    first = make_run(tmp_path, "lr-0.0001", {"lr": 0.0001}, [7.0, 6.5, 6.1], accuracy=0.25)
    second = make_run(
        tmp_path, "lr-0.0005_warmup_fraction-0.1", {"lr": 0.0005, "warmup_fraction": 0.1}, [6.9, 6.6], accuracy=0.5
    )
    return [first[0], second[0]], [first[1], second[1]]


def test_summary_has_a_row_per_setting_with_its_last_dev_loss_and_the_unigram_margin(two_runs):
    runs, results = two_runs
    table = probe_summary(SETTINGS, runs, results, BASELINE, "2024-10M")
    assert list(table.columns) == SUMMARY_COLUMNS
    assert table["setting"].tolist() == list(SETTINGS)
    assert table["lr"].tolist() == [0.0001, 0.0005]
    # the first setting keeps the training section's warmup: the value the run used, not a blank
    assert table["warmup_fraction"].tolist() == [TRAINING["warmup_fraction"], 0.1]
    assert table["steps"].tolist() == [30, 20] and table["tokens"].tolist() == [15360, 10240]
    assert table["final_dev_loss"].tolist() == [6.1, 6.6]
    assert table["unigram_entropy"].tolist() == [6.3, 6.3] and table["unigram_dev_cross_entropy"].tolist() == [6.4, 6.4]
    assert table["margin_under_unigram"].tolist() == pytest.approx([0.3, -0.2], abs=1e-12)
    assert table["accuracy_pct"].tolist() == pytest.approx([62.5, 75.0], abs=1e-12)
    assert table["scoring"].tolist() == ["pll-word-l2r"] * 2
    assert table["dataset"].tolist() == ["blimp-fast"] * 2 and table["corpus"].tolist() == ["2024-10M"] * 2


def test_summary_refuses_runs_listed_for_another_setting(two_runs):
    runs, results = two_runs
    with pytest.raises(InputError, match="listed for probe setting 'lr-0.0001' but belongs to 'lr-0.0005"):
        probe_summary(SETTINGS, runs[::-1], results[::-1], BASELINE, "2024-10M")


def test_summary_names_a_run_without_dev_loss_points(two_runs):
    runs, results = two_runs
    metrics = runs[0] / "metrics.jsonl"
    metrics.write_text("".join(line + "\n" for line in metrics.read_text().splitlines() if "dev_loss" not in line))
    with pytest.raises(InputError, match=re.escape(f"{metrics}: no dev_loss line")):
        probe_summary(SETTINGS, runs, results, BASELINE, "2024-10M")


def test_figure_draws_each_settings_dev_curve_and_the_unigram_lines(two_runs, tmp_path):
    runs, results = two_runs
    table = probe_summary(SETTINGS, runs, results, BASELINE, "2024-10M")
    from babyteach.report.probe_summary import dev_curve

    curves = {run.name: dev_curve(run) for run in runs}
    pdf, png = tmp_path / "fig" / "dev_loss.pdf", tmp_path / "fig" / "dev_loss.png"
    fig = probe_figure(table, curves, pdf, png)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    first = lines["lr-0.0001: dev 6.10 nats, blimp-fast 62.5 %"]
    assert first.get_xdata().tolist() == [5120, 10240, 15360] and first.get_ydata().tolist() == [7.0, 6.5, 6.1]
    second = lines["lr-0.0005_warmup_fraction-0.1: dev 6.60 nats, blimp-fast 75.0 %"]
    assert second.get_ydata().tolist() == [6.9, 6.6]
    assert list(lines["unigram dev cross-entropy 6.40"].get_ydata()) == [6.4, 6.4]  # horizontal lines
    assert list(lines["unigram entropy (train) 6.30"].get_ydata()) == [6.3, 6.3]
    assert first.get_linestyle() != second.get_linestyle() and first.get_marker() != second.get_marker()
    assert fig.axes[0].get_xlabel() == "training tokens"
    assert pdf.read_bytes().startswith(b"%PDF") and png.stat().st_size > 1000
    with pytest.raises(InputError, match="no dev-loss curve for settings"):
        probe_figure(table, {runs[0].name: curves[runs[0].name]}, pdf, png)


# --- the workflow ----------------------------------------------------------------------------------


def planned(stdout: str) -> list[tuple[str, str]]:
    """(rule, first output) of every job of a dry run's plan."""
    jobs = []
    for block in stdout.split("\nrule ")[1:]:
        output = re.search(r"output: ([^,\s]+)", block)
        jobs.append((block.split(":", 1)[0], output.group(1) if output else ""))
    return jobs


def test_probe_plans_one_training_per_setting_and_nothing_of_the_paper(tmp_path):
    # config.yaml: three learning rates on the 10M corpus
    jobs = planned(run_snakemake(tmp_path, "-n", "probe").stdout)
    rules = [rule for rule, _ in jobs]
    assert sorted(output for rule, output in jobs if rule == "train_probe") == [
        f"results/probe/2024-10M/train/lr-{lr}" for lr in ("0.0001", "0.0002", "0.0005")
    ]
    assert sorted(output for rule, output in jobs if rule == "evaluate_probe") == [
        f"results/probe/2024-10M/eval/lr-{lr}/teacher/blimp-fast.json" for lr in ("0.0001", "0.0002", "0.0005")
    ]
    assert rules.count("probe_summary") == rules.count("probe_figure") == 1
    assert not {
        "train_baseline",
        "train_students",
        "train_mutual",
        "search_architectures",
        "evaluate_zero_shot",
        "evaluate_finetune",
        "table",
        "figure",
    } & set(rules)


PROBE = {"settings": [{"lr": 0.002}, {"lr": 0.0005, "warmup_fraction": 0.1}], "token_budget": 6144, "eval_every": 4}


@pytest.fixture(scope="module")
def micro_probe(tmp_path_factory, data_mirror):
    workdir = tmp_path_factory.mktemp("probe")
    config = {**MICRO, "probe": PROBE, "data_mirror": str(data_mirror)}
    run_snakemake(workdir, "--cores", "2", "probe", config=config)
    return workdir, config


def test_probe_writes_a_summary_row_per_setting_from_its_runs(micro_probe):
    workdir, _ = micro_probe
    table = pd.read_csv(workdir / "results/probe/summary.csv")  # pandas reads floats round-trip
    assert list(table.columns) == SUMMARY_COLUMNS
    assert table["setting"].tolist() == ["lr-0.002", "lr-0.0005_warmup_fraction-0.1"]
    warmup = {**TRAINING, **MICRO.get("training", {})}["warmup_fraction"]  # the first setting keeps the section's
    assert table["lr"].tolist() == [0.002, 0.0005] and table["warmup_fraction"].tolist() == [warmup, 0.1]
    summary = json.loads(
        (workdir / "results/probe/2024-10M/train" / table["setting"][0] / "train_summary.json").read_text()
    )
    # the yardstick on the dev loss's own blocks
    baseline = unigram_baseline(workdir / "results/2024-10M/shards", summary["dev_blocks"], summary["block_size"])
    for row in table.itertuples():
        run = workdir / "results/probe/2024-10M/train" / row.setting
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        dev = [line for line in lines if "dev_loss" in line]
        assert [line["step"] for line in dev] == [4, 8, 12]  # probe.eval_every; 12 steps of 512 tokens
        assert row.final_dev_loss == dev[-1]["dev_loss"]["teacher"] and row.tokens == dev[-1]["tokens"] == 6144
        assert (row.unigram_entropy, row.unigram_dev_cross_entropy) == (
            baseline.train_entropy,
            baseline.dev_cross_entropy,
        )
        assert row.margin_under_unigram == pytest.approx(baseline.dev_cross_entropy - row.final_dev_loss, abs=1e-12)
        result_file = workdir / f"results/probe/2024-10M/eval/{row.setting}/teacher/blimp-fast.json"
        result = json.loads(result_file.read_text())
        assert row.accuracy_pct == pytest.approx(100 * result["variants"]["pll-word-l2r"]["macro_accuracy"], abs=1e-12)
        assert row.scoring == "pll-word-l2r" and set(result["variants"]) == {"official", "pll-word-l2r"}
        assert row.dataset == "blimp-fast" and row.corpus == "2024-10M"
        summary = json.loads((run / "train_summary.json").read_text())
        assert summary["config"]["lr"] == row.lr and summary["students"]["teacher"]["architecture"]["hidden"] == 32
    assert (workdir / "results/probe/dev_loss.pdf").read_bytes().startswith(b"%PDF")
    assert (workdir / "results/probe/dev_loss.png").stat().st_size > 1000


def test_a_new_probe_setting_trains_only_itself(micro_probe):
    workdir, config = micro_probe
    assert "Nothing to be done" in run_snakemake(workdir, "-n", "probe", config=config).stdout
    added = {**config, "probe": {**PROBE, "settings": [*PROBE["settings"], {"lr": 0.01}]}}
    jobs = planned(run_snakemake(workdir, "-n", "probe", config=added).stdout)
    assert [output for rule, output in jobs if rule == "train_probe"] == ["results/probe/2024-10M/train/lr-0.01"]
    assert not {"train_tokenizer", "tokenize_corpus", "fetch_data"} & {rule for rule, _ in jobs}


def test_a_training_value_reruns_the_settings_that_do_not_override_it_and_the_cadence_nothing(micro_probe):
    workdir, config = micro_probe
    warmup = {**config, "training": {**config["training"], "warmup_fraction": 0.2}}
    jobs = planned(run_snakemake(workdir, "-n", "probe", config=warmup).stdout)
    assert [output for rule, output in jobs if rule == "train_probe"] == ["results/probe/2024-10M/train/lr-0.002"]
    cadence = {**config, "probe": {**PROBE, "eval_every": 3}}
    assert "Nothing to be done" in run_snakemake(workdir, "-n", "probe", config=cadence).stdout
