"""Issue 16: fail in the first minute. Start-up checks of the datasets the requested targets need,
one results root per configuration, and a report of a partial run."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from babyteach.data.registry import DATASETS, MIRROR_ENV, unavailable_reason
from babyteach.errors import InputError
from babyteach.layout import checkpoint_dir, results_root
from babyteach.report.finished import Item, finished, missing_note
from babyteach.startup import check_fetchable, dataset_requests
from conftest import REPO
from workflow_helpers import run_snakemake

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
DEMO = REPO / "config/demo.yaml"


def output_of(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def mirror_without(root: Path, data_mirror: Path, *folders: str) -> Path:
    """The shared mirror's folders linked into ``root``, except ``folders``."""
    root.mkdir()
    for entry in data_mirror.iterdir():
        if entry.name not in folders:
            (root / entry.name).symlink_to(entry)
    return root


# --- 1. datasets the requested targets need, checked before any job runs ----------------------------


def test_all_on_the_mirror_without_the_100m_corpus_stops_in_seconds_naming_table1_tracks(tmp_path, data_mirror):
    """A real run (not a dry run): config.yaml's Table 1 needs the 100M corpus, which the mirror lacks."""
    started = time.monotonic()
    result = run_snakemake(
        tmp_path, "all", "--cores", "1", "--config", f"data_mirror={data_mirror}", check=False, timeout=120
    )  # without the check, jobs would start: fetch, clean, train…
    elapsed = time.monotonic() - started
    text = output_of(result)
    assert result.returncode != 0
    assert "dataset 'babylm-2024-100M' is needed by the requested targets but cannot be fetched" in text
    assert f"the data mirror {data_mirror} has no babylm_100M/ folder" in text
    assert 'report.table1_tracks = ["10M", "100M"]' in text
    assert 'report: {table1_tracks: ["10M"]}' in text  # the one-line change that drops it
    assert elapsed < 60, elapsed  # ~5 s: the DAG is built, no job runs
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("target", ["ablation_alpha", "data", "probe", "table2"])
def test_a_target_that_does_not_need_the_missing_corpus_is_planned(tmp_path, data_mirror, target):
    result = run_snakemake(tmp_path, "-n", target, "--config", f"data_mirror={data_mirror}")
    assert "cannot be fetched" not in output_of(result)


def test_table1_alone_stops_naming_table1_tracks(tmp_path, data_mirror):
    result = run_snakemake(tmp_path, "-n", "table1", "--config", f"data_mirror={data_mirror}", check=False)
    assert result.returncode != 0 and 'report: {table1_tracks: ["10M"]}' in output_of(result)


def test_a_missing_evaluation_set_names_evaluation_data_and_the_list_without_it(tmp_path, data_mirror):
    mirror = mirror_without(tmp_path / "mirror", data_mirror, "ewok")
    result = run_snakemake(tmp_path / "work", "-n", "evaluate", "--config", f"data_mirror={mirror}", check=False)
    text = output_of(result)
    assert result.returncode != 0
    assert "dataset 'ewok-filtered' is needed by the requested targets" in text
    assert f"the data mirror {mirror} has no ewok/ folder" in text
    assert "evaluation_data: [blimp-filtered, blimp-supplement, glue-filtered]" in text
    # the corpus's shards do not need it
    run_snakemake(tmp_path / "work", "-n", "results/2024-10M/shards", "--config", f"data_mirror={mirror}")


def test_a_missing_training_corpus_names_corpus_track(tmp_path, data_mirror):
    config = {"corpus": {"track": "100M"}, "report": {"table1_tracks": ["100M"]}, "data_mirror": str(data_mirror)}
    result = run_snakemake(tmp_path, "-n", "data", config=config, check=False)
    text = output_of(result)
    assert result.returncode != 0
    assert "dataset 'babylm-2024-100M' is needed by the requested targets" in text
    assert 'corpus.track = "100M"' in text and 'corpus: {track: "10M"}' in text
    assert 'report.table1_tracks = ["100M"]' in text and 'report: {table1_tracks: ["10M"]}' in text


def test_every_key_that_asks_for_a_dataset_is_named_with_its_change():
    config = {
        **CONFIG,
        "corpus": {**CONFIG["corpus"], "track": "100M"},
        "evaluation_data": ["blimp-fast", "ewok-filtered"],
        "probe": {**CONFIG["probe"], "dataset": "blimp-fast"},
    }
    available = {"babylm-2024-10M", "supplement-fast", "blimp", "blimp-filtered"}.__contains__
    corpus = dataset_requests("babylm-2024-100M", config, available)
    assert [(r.key, r.change) for r in corpus] == [
        ("corpus.track", 'corpus: {track: "10M"}'),
        ("report.table1_tracks", 'report: {table1_tracks: ["10M"]}'),
    ]
    pairs = dataset_requests("blimp-fast", config, available)
    assert [(r.key, r.change) for r in pairs] == [
        ("evaluation_data", "evaluation_data: [ewok-filtered]"),
        ("probe.dataset", "probe: {dataset: blimp}"),  # the first family that is available
    ]
    assert dataset_requests("glue-filtered", config, available) == []


def test_the_only_table1_track_is_replaced_by_the_configured_one():
    config = {**CONFIG, "report": {"table1_tracks": ["100M"]}}
    [request] = dataset_requests("babylm-2024-100M", config, lambda name: True)
    assert request.change == 'report: {table1_tracks: ["10M"]}'


def test_unavailable_reasons(tmp_path, data_mirror):
    assert unavailable_reason(DATASETS["blimp-fast"], data_mirror) is None
    assert unavailable_reason(DATASETS["blimp-fast"], None) is None  # downloadable
    assert "has no public download" in unavailable_reason(DATASETS["ewok-filtered"], None)
    assert "no data mirror is set" in unavailable_reason(DATASETS["ewok-filtered"], None)
    (tmp_path / "blimp_supplement" / "supplement_fast").mkdir(parents=True)
    (tmp_path / "blimp_supplement" / "supplement_fast" / "hypernym.jsonl").write_text("{}\n")
    reason = unavailable_reason(DATASETS["supplement-fast"], tmp_path)
    assert (
        "lacks 4 of its 5 files (qa_congruence_easy.jsonl, qa_congruence_tricky.jsonl, "
        "subject_aux_inversion.jsonl and 1 more)" in reason
    )


def test_a_dataset_fetched_before_is_not_checked_again(tmp_path):
    config = {**CONFIG, "data_mirror": None}
    with pytest.raises(InputError, match=f"set `data_mirror` \\(or {MIRROR_ENV}\\)"):
        check_fetchable("ewok-filtered", config, None, tmp_path / "raw" / "ewok-filtered")
    (tmp_path / "raw" / "ewok-filtered").mkdir(parents=True)
    check_fetchable("ewok-filtered", config, None, tmp_path / "raw" / "ewok-filtered")


def test_the_start_up_path_does_not_import_torch():
    code = "import sys, babyteach.startup, babyteach.layout, babyteach.report.finished; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- 6. one results root per configuration --------------------------------------------------------


def planned_paths(text: str) -> set[str]:
    """Every output, log and checkpoint folder of a dry run's jobs (``-p``: the training commands)."""
    paths = set()
    for block in text.split("\nrule ")[1:]:
        for key in ("output", "log"):
            found = re.search(rf"^\s+{key}: (.+)$", block, re.M)
            if found:
                paths.update(p.strip() for p in found.group(1).split(","))
        command = re.search(r"-m babyteach\.train_job (.+)$", block, re.M)
        if command:
            paths.add(json.loads(shlex.split(command.group(1))[1])["checkpoint_dir"])
    return paths


def test_the_demo_and_the_paper_plan_every_file_under_their_own_root(tmp_path, planning_mirror):
    mirror = ["--config", f"data_mirror={planning_mirror}"]
    paper = planned_paths(run_snakemake(tmp_path, "-n", "-p", "all", "probe", *mirror).stdout)
    demo = planned_paths(run_snakemake(tmp_path, "-n", "-p", "all", "probe", "--configfile", str(DEMO), *mirror).stdout)
    assert len(paper) > 500 and len(demo) > 100
    assert all(p.startswith("results/") for p in paper)
    assert all(p.startswith("results-demo/") for p in demo)
    for root, paths in (("results", paper), ("results-demo", demo)):
        assert any(p.startswith(f"{root}/logs/") for p in paths)
        assert any(p.startswith(f"{root}/checkpoints/2024-10M/train/") for p in paths)
        assert any(p.startswith(f"{root}/probe/") for p in paths)


def test_a_job_writes_its_output_log_and_benchmark_under_the_root(tmp_path, data_mirror):
    config = {"results_dir": "runs/mine/", "data_mirror": str(data_mirror)}
    run_snakemake(tmp_path, "--cores", "1", "runs/mine/raw/supplement-fast", config=config)
    root = tmp_path / "runs/mine"
    assert (root / "raw/supplement-fast/MANIFEST.json").is_file()
    assert (root / "logs/fetch_data/supplement-fast.log").is_file()
    assert (root / "benchmarks/fetch_data/supplement-fast.tsv").is_file()
    assert {p.name for p in tmp_path.iterdir()} == {".snakemake", "runs", "test-config.yaml"}


@pytest.mark.parametrize("value", ["", "{corpus}", ".", "./"])
def test_a_bad_results_dir_stops_at_start_up_naming_the_key(tmp_path, value):
    result = run_snakemake(tmp_path, "-n", config={"results_dir": value}, check=False)
    assert result.returncode != 0 and "results_dir" in output_of(result)
    assert not (tmp_path / "results").exists()


def test_results_root_and_checkpoint_folders():
    assert results_root("./results/") == "results" and results_root("/abs/out") == "/abs/out"
    assert (
        checkpoint_dir("results-demo", "results-demo/2024-10M/train/baseline/seed-0")
        == "results-demo/checkpoints/2024-10M/train/baseline/seed-0"
    )
    with pytest.raises(ValueError):
        checkpoint_dir("results", "elsewhere/2024-10M/train/x")


# --- 7. a report of a partial run, and the safe order of targets and --configfile --------------------


def test_finished_keeps_the_items_whose_files_all_exist():
    items = [
        Item("table1", ("t/table1.tex", "t/table1.csv")),
        Item("table5", ("t/table5.tex", "t/table5.csv")),
        Item("figure3", ("f/figure3.pdf", "f/figure3.png")),
    ]
    done = finished(items, exists={"t/table1.tex", "t/table5.tex", "t/table5.csv"}.__contains__)
    assert done.files == ["t/table5.tex", "t/table5.csv"] and done.missing == [items[0], items[2]]
    note = missing_note(done.missing, ["config/demo.yaml"])
    assert "2 table(s)/figure(s) not built yet" in note and "table1 (t/table1.tex); figure3 (f/figure3.pdf)" in note
    assert "`snakemake all --cores all --configfile config/demo.yaml`" in note
    assert "every table and figure" in missing_note([])


def test_a_report_of_a_partial_run_holds_what_exists_and_names_what_is_missing(tmp_path, data_mirror):
    config = {
        "corpus": {"max_lines_per_file": 200},
        "report": {"table1_tracks": ["10M"]},
        "evaluation_data": ["blimp-fast", "ewok-fast", "glue-filtered"],
        "data_mirror": str(data_mirror),
    }
    empty = run_snakemake(tmp_path, "-n", "finished", config=config, check=False)
    assert empty.returncode != 0 and "no table or figure is built yet" in output_of(empty)
    run_snakemake(tmp_path, "table5", "--cores", "1", config=config)  # the corpus table: fetch and clean only
    result = run_snakemake(tmp_path, "finished", "--report", "results/report.html", config=config)
    report = (tmp_path / "results/report.html").read_text(encoding="utf-8")
    assert "table5.tex" in report and "table1.tex" not in report
    text = output_of(result)
    assert "not built yet, left out of the report: table1 (results/tables/table1.tex)" in text
    assert "figure_training_loss (results/figures/training_loss.pdf)" in text
    assert f"`snakemake all --cores all --configfile {tmp_path / 'test-config.yaml'}`" in text


SNAKEMAKE_COMMAND = re.compile(r"(?<![\w/.-])snakemake((?:[ \t]+[^\s`#|;&)]+)+)")


def snakemake_commands(text: str) -> list[list[str]]:
    """The arguments of every ``snakemake …`` command written in ``text`` (code blocks and spans)."""
    return [match.group(1).split() for match in SNAKEMAKE_COMMAND.finditer(text)]


def order_problem(arguments: list[str]) -> str | None:
    """What is wrong with the order of a snakemake command's arguments, read by Snakemake's own parser:
    --configfile and --config take several values, so a target after them is read as a config file
    or setting; a command that names config files must show its target, before them."""
    from snakemake.cli import get_argument_parser

    parsed = get_argument_parser().parse_args(arguments)
    swallowed = [str(f) for f in parsed.configfile or [] if Path(f).suffix not in (".yaml", ".yml", ".json")]
    swallowed += [c for c in parsed.config or [] if "=" not in c]
    if swallowed:
        return f"read as config values: {swallowed}"
    if parsed.configfile and not parsed.targets:
        return "names a --configfile but no target"
    return None


def test_every_documented_command_names_the_target_before_configfile():
    files = [REPO / "README.md", REPO / "config/README.md", *REPO.glob("config/*.yaml"), *REPO.glob("docs/*.md")]
    commands = [(f.name, args) for f in files for args in snakemake_commands(f.read_text(encoding="utf-8"))]
    assert sum("--configfile" in args for _, args in commands) >= 4
    assert [(name, " ".join(args), order_problem(args)) for name, args in commands if order_problem(args)] == []
    # the command is caught
    assert "read as config values: ['ablation_alpha']" == order_problem(["--configfile", "c.yaml", "ablation_alpha"])
