"""GPU budget of a Snakemake target from measured throughput: GPU-hours per rule, for 1 and 3 seeds.

Run after ``bench/gpu_check.py`` has written a throughput file on the GPU (format: the docstring of
:mod:`babyteach.budget`); no GPU is needed here::

    python bench/gpu_budget.py --throughput throughput.json                 # snakemake all, config.yaml
    python bench/gpu_budget.py --throughput throughput.json --table1-tracks 10M   # the 10M track only
    python bench/gpu_budget.py --example                                    # the issue 13 H200 figures

What it does, in a scratch Snakemake working directory (``--workdir``, kept when given):

1. runs the cheap stages for real on the data mirror: ``data`` and ``search`` (about a minute on two
   cores for config.yaml), and fetches the families the throughput file measured, so that the shards,
   the tokenizer, the searched architectures and the evaluation data exist;
2. for each seed count N of ``--seeds`` writes a config override ``seeds: [0, …, N-1]`` (and
   ``report.table1_tracks`` with ``--table1-tracks``) and runs ``snakemake -n -p TARGET``;
3. reads the planned jobs from that printout (:mod:`babyteach.dryrun`: the training rules' printed
   ``python -m babyteach.train_job`` commands, the evaluation jobs' inputs and wildcards) and costs each
   one from the throughput (:mod:`babyteach.budget`): training tokens from ``plan_steps`` on the real
   shards, zero-shot work from the real pairs and tokenizer, fine-tuning work from the real GLUE files;
4. prints one table (GPU-hours per rule and in total for each seed count), what it could not budget
   and why (never a guess), which MFU or rate was transferred, and the upper bounds.

``--example`` writes (``--throughput PATH``, else ``results/gpu-budget/example-throughput.json``) and uses a throughput
file built from the figures issue 13 measured on one H200 on main f0eb2eb (2026-11-29), before issue
13's training-loop work: the teacher at batch 32 (and 128, and compiled), DML and DWML with the 4
searched peers, blimp-fast scoring with the trained teacher. Nothing was measured for KD, SD or
fine-tuning then, so those rules come out as not budgeted. ``--jobs-csv`` writes every job's seconds.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from babyteach.budget import (
    JobCost,
    ScoringMeasurement,
    Throughput,
    TrainingMeasurement,
    format_budget,
    read_throughput,
    throughput_to_dict,
)
from babyteach.dryrun import PlannedJob, job_stats, parse_dry_run, plan_costs
from babyteach.errors import InputError
from babyteach.io import write_json_atomic
from babyteach.layout import results_root
from babyteach.models import Architecture

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = Path(os.environ.get("BABYTEACH_DATA_MIRROR", REPO.parent / "shared" / "data"))

#: Where ``--example`` writes its throughput file unless ``--throughput`` names one (generated: under results/).
EXAMPLE_FILE = REPO / "results" / "gpu-budget" / "example-throughput.json"

#: Rules whose planned jobs are run for real before the dry-run that is budgeted (cheap, CPU).
PREPARE_RULES = ("fetch_data", "search_architectures")

#: How the example's figures are labelled wherever they are printed.
EXAMPLE_LABEL = "Example: before issue 13's loop, from the issue's H200 measurements (main f0eb2eb, 2026-11-29)"


def example_throughput() -> Throughput:
    """Issue 13's measurements on one NVIDIA H200 (bf16, main f0eb2eb, through ``train()`` as
    ``bench/gpu_check.py`` called it, tokens/s from metrics.jsonl, vocabulary 50,265, block 128).

    The peers are config.yaml's 4 searched students (L6-D640, L3-D576, L12-D320, L3-D384); the issue
    gives no head counts, these are the search's (FLOPs do not depend on heads). No KD, SD or
    fine-tuning run was measured.
    """
    teacher = {"teacher": Architecture(12, 12, 768)}
    peers = {
        "peer-1": Architecture(6, 8, 640),
        "peer-2": Architecture(3, 8, 576),
        "peer-3": Architecture(12, 4, 320),
        "peer-4": Architecture(3, 8, 384),
    }

    def run(method: str, students: dict, batch: int, tokens_per_s: float, compile: bool = False) -> TrainingMeasurement:
        return TrainingMeasurement(method, students, batch, 128, 50265, 0.15, compile, {}, tokens_per_s)

    return Throughput(
        device="NVIDIA H200",
        peak_flops=989e12,
        date="2026-11-29",
        torch="not recorded",
        commit="f0eb2eb",
        training=(
            run("baseline", teacher, 32, 108_601.0),
            run("baseline", teacher, 32, 107_351.0, compile=True),
            run("baseline", teacher, 128, 331_685.0),
            run("dml", peers, 32, 39_728.0),
            run("dwml", peers, 32, 26_136.0),
        ),
        scoring=(ScoringMeasurement(teacher["teacher"], 50265, "blimp-fast", 13_400, 13.0),),
    )


def merged_config(configfiles: list[Path]) -> dict[str, Any]:
    """config.yaml with ``configfiles`` merged over it, key by key, as Snakemake merges them."""

    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for path in configfiles:
        config = merge(config, yaml.safe_load(Path(path).read_text()) or {})
    return config


def snakemake(workdir: Path, configfiles: list[Path], mirror: Path, *args: str, log: Path | None = None) -> str:
    """Run Snakemake on this repository in ``workdir`` (no profile); its printout. A failure raises with the log."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--workflow-profile",
        "none",
        "--configfile",
        *map(str, configfiles),
        "--config",
        f"data_mirror={mirror}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    text = result.stdout + result.stderr
    if log is not None:
        log.write_text(text)
    if result.returncode != 0:
        raise InputError(f"snakemake {' '.join(args)} failed in {workdir} (exit {result.returncode}):\n{text[-4000:]}")
    return text


def prepare_outputs(jobs: list[PlannedJob]) -> list[str]:
    """Outputs of planned cheap jobs worth running for real: evaluation datasets and searches (not corpora:
    a corpus the mirror lacks, e.g. Table 1's 100M track, leaves its jobs not budgeted)."""
    return [
        job.outputs[0]
        for job in jobs
        if job.rule in PREPARE_RULES
        and not (job.rule == "fetch_data" and job.wildcards.get("dataset", "").startswith("babylm-"))
    ]


def plan(workdir: Path, configfiles: list[Path], mirror: Path, target: str, cores: int, log: Path) -> list[PlannedJob]:
    """The jobs ``snakemake -n -p target`` plans, after the planned evaluation data and searches were run."""
    text = snakemake(workdir, configfiles, mirror, "-n", "-p", "--", target, log=log)
    jobs = parse_dry_run(text)
    extra = prepare_outputs(jobs)
    if extra:
        snakemake(
            workdir, configfiles, mirror, "--cores", str(cores), "--", *extra, log=log.with_suffix(".prepare.log")
        )
        text = snakemake(workdir, configfiles, mirror, "-n", "-p", "--", target, log=log)
        jobs = parse_dry_run(text)
    stats = job_stats(text)
    parsed = {rule: sum(1 for j in jobs if j.rule == rule) for rule in stats}
    if parsed != stats:
        raise InputError(
            f"{log}: the printed jobs {parsed} differ from Snakemake's job stats {stats}; "
            "the dry-run format changed: update babyteach.dryrun.parse_dry_run"
        )
    return jobs


def write_jobs_csv(path: Path, columns: dict[str, list[JobCost]]) -> None:
    """One row per job and plan: seconds (empty: not budgeted), notes and reason."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["plan", "rule", "output", "gpu_seconds", "notes", "not_budgeted_because"])
        for name, costs in columns.items():
            for c in costs:
                seconds = "" if c.seconds is None else f"{c.seconds:.1f}"
                writer.writerow([name, c.rule, c.output, seconds, " | ".join(c.notes), c.reason or ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--throughput", type=Path, help="throughput file of bench/gpu_check.py (with --example: where to write it)"
    )
    parser.add_argument("--example", action="store_true", help="use issue 13's H200 measurements (see the docstring)")
    parser.add_argument(
        "--configfile", type=Path, action="append", default=[], help="merged over config.yaml, as in snakemake"
    )
    parser.add_argument("--target", default="all", help="Snakemake target to budget (default: %(default)s)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[1, 3], help="seed counts, one column each (default: 1 3)"
    )
    parser.add_argument("--table1-tracks", nargs="+", help="report.table1_tracks (e.g. 10M: the 10M track only)")
    parser.add_argument("--workdir", type=Path, help="Snakemake working directory (kept; default: a temporary one)")
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR, help="data mirror (default: %(default)s)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores for the data and search stages")
    parser.add_argument("--jobs-csv", type=Path, help="write every job's GPU seconds to this CSV")
    args = parser.parse_args(argv)
    if not args.example and args.throughput is None:
        parser.error("give --throughput FILE (written by bench/gpu_check.py) or --example")
    if min(args.seeds) < 1:
        parser.error("--seeds: seed counts are positive")
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-budget-") as scratch:
            workdir = (args.workdir or Path(scratch)).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
            configfiles = [p.resolve() for p in args.configfile]
            if args.example:
                path = args.throughput or EXAMPLE_FILE
                path.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(path, throughput_to_dict(example_throughput()))
                print(f"example throughput file written to {path}", file=sys.stderr)
                args.throughput = path
            throughput = read_throughput(args.throughput)

            def override(seeds: int) -> Path:
                values: dict[str, Any] = {"seeds": list(range(seeds))}
                if args.table1_tracks:
                    values["report"] = {"table1_tracks": args.table1_tracks}
                path = workdir / f"budget-seeds-{seeds}.yaml"
                path.write_text(yaml.safe_dump(values))
                return path

            config = merged_config([*configfiles, override(max(args.seeds))])
            raw = f"{results_root(config['results_dir'])}/raw"  # the configuration's fetched datasets
            families = [f"{raw}/{m.family}" for m in throughput.scoring]
            print(f"preparing data and search in {workdir} …", file=sys.stderr)
            snakemake(
                workdir,
                [*configfiles, override(max(args.seeds))],
                args.mirror,
                "--cores",
                str(args.cores),
                "--",
                "data",
                "search",
                *families,
                log=workdir / "budget-prepare.log",
            )
            columns: dict[str, list[JobCost]] = {}
            others: dict[int, dict[str, int]] = {}  # seed count → planned jobs that are no GPU work
            for seeds in sorted(set(args.seeds)):
                files = [*configfiles, override(seeds)]
                jobs = plan(
                    workdir, files, args.mirror, args.target, args.cores, workdir / f"budget-dryrun-{seeds}.log"
                )
                costs, others[seeds] = plan_costs(jobs, workdir, throughput, config["evaluation"], config["finetune"])
                columns[f"{seeds} seed{'s' if seeds > 1 else ''}"] = costs
    except InputError as error:
        print(f"gpu_budget: error: {error}", file=sys.stderr)
        return 2
    names = ", ".join(str(p) for p in args.configfile) or "config.yaml"
    tracks = f", report.table1_tracks {args.table1_tracks}" if args.table1_tracks else ""
    title = (
        f"GPU budget of `snakemake {args.target}` ({names}{tracks}; corpus {config['corpus']['release']}-"
        f"{config['corpus']['track']}), GPU-hours per rule"
    )
    print(format_budget(columns, throughput, title, others[max(others)], EXAMPLE_LABEL if args.example else None))
    if args.jobs_csv:
        write_jobs_csv(args.jobs_csv, columns)
    print(f"\n(computed in {time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
