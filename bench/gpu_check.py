"""GPU check: throughput and MFU of every training job kind, the scorer and fine-tuning, on one device.

For a maintainer with one GPU. Through the project's own functions it measures

1. training, ``train(method, …)`` for a fixed number of steps in bf16 with the searched peers of
   ``config.yaml`` (4 peers) and its teacher: the teacher (baseline, RoBERTa-base) at the
   configured batch, compiled (``training.compile``) and at batch 128; the peers alone
   (``ablation_size``'s job), KD, SD, DML, DWML and KD_DWML. Tokens/s come from the loop's own
   ``metrics.jsonl`` (tokens/s between log lines, the first interval left out as warm-up);
   MFU is ``tokens/s × Σ_students flops_per_token / peak`` (analytic FLOPs of
   :func:`babyteach.models.flops_per_token`, dense bf16 peak from :data:`PEAK_BF16`), so a
   teacher's forward (KD) and DWML's outer steps count as overhead;
2. scoring ``blimp-fast``, ``supplement-fast`` and ``ewok-fast`` with the trained teacher
   (``evaluate_pairs``, length-bucketed batches of ``--batch-tokens`` tokens) and, with
   ``--full-blimp``, the whole ``blimp-filtered`` (59,875 pairs; target ≤ 15 s on an H200-class GPU);
3. fine-tuning the trained teacher on one GLUE task for one epoch (``finetune_model``), when the
   data holds it;
4. the NVML utilisation the training runs recorded (:mod:`babyteach.gpu`).

It prints a table as it goes and writes ``throughput.json`` (``--out``), the input of
``bench/gpu_budget.py`` (GPU-hours of a planned DAG). Targets printed beside the numbers: teacher
≥ 40 % MFU, DWML ≥ 25 % MFU, full BLiMP ≤ 15 s. Run::

    python bench/gpu_check.py --data device_data --out "$OUT" --full-blimp   # on the GPU machine
    python bench/gpu_check.py --full-blimp                # data prepared from the mirror (../shared/data)
    python bench/gpu_check.py --quick --device cpu        # smoke run of the same path on a CPU

``--data`` is a folder from ``bench/prepare_device_data.py`` (a GPU machine has no data mirror):
``shards/``, ``tokenizer/``, ``peers.json`` (the searched peers, as a GPU machine may lack
bayes_opt), ``blimp-fast/`` and optionally ``supplement-fast/``, ``ewok-fast/``, ``blimp-filtered/``
and ``glue-filtered/`` (whatever is missing is skipped and said so).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import torch
import yaml

from babyteach.acquire import fetch_dataset
from babyteach.data.clean import clean_corpus
from babyteach.data.shards import write_shards
from babyteach.data.tokenizer import train_tokenizer
from babyteach.evaluate.pairs import load_pairs
from babyteach.evaluate.scoring import DEFAULT_BATCH_TOKENS, plan_batches
from babyteach.evaluate.zero_shot import evaluate_pairs
from babyteach.models import Architecture, flops_per_token
from babyteach.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = Path(os.environ.get("BABYTEACH_DATA_MIRROR", REPO.parent / "shared" / "data"))
THROUGHPUT_FORMAT = 1

#: Dense bf16 peak FLOP/s by a substring of ``torch.cuda.get_device_name()`` (vendor data
#: sheets, without sparsity); the first match wins, so longer names come first.
PEAK_BF16: dict[str, float] = {
    "H200": 989e12,
    "H100": 989e12,
    "GH200": 989e12,
    "A100": 312e12,
    "A10G": 70e12,
    "A10": 125e12,
    "L40S": 362e12,
    "L40": 181e12,
    "L4": 121e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
    "V100": 125e12,
    "T4": 65e12,
}
TARGET_MFU = {"teacher": 0.40, "dwml": 0.25}
#: Seconds for the whole blimp-filtered (59,875 pairs) on one H200-class GPU (issue 13).
TARGET_FULL_BLIMP_S = 15.0
#: The GLUE task timed for fine-tuning: small, with train and valid files in the mirror.
FINETUNE_TASK = "mrpc"


def peak_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a device by name, or None when it is not in :data:`PEAK_BF16`."""
    return next((peak for key, peak in PEAK_BF16.items() if key in device_name), None)


def measured_tokens_per_s(run_dir: Path) -> float:
    """Median tokens/s of a run's ``metrics.jsonl`` intervals, the first (warm-up) left out."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [line["tokens_per_s"] for line in lines if "tokens_per_s" in line]
    return statistics.median(rates[1:] or rates)


def describe_plan(tokenizer_dir: Path, family: str, data_dir: Path, batch_tokens: int, max_per_task: int | None) -> str:
    """The pll-word-l2r part of the scorer's batch plan for a BLiMP family (no context: one copy per non-special
    token), in words; official adds its own copies (two more tokens and one more copy per sentence)."""
    from transformers import AutoTokenizer

    pairs = load_pairs(family, data_dir, max_per_task)
    sentences = sorted({s for p in pairs for s in (p.good, p.bad)})
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(tokenizer_dir)(sentences)["input_ids"]]
    plan = plan_batches([n for n in lengths for _ in range(n - 2)], batch_tokens)
    return (
        f"{len(sentences)} distinct sentences, {plan.order.size} masked copies, {plan.tokens:,} tokens in "
        f"{len(plan.bounds)} batches of ≤ {batch_tokens} tokens ({plan.fill:.0%} full on average, no padding)"
    )


def prepare_from_mirror(
    mirror: Path, work: Path, lines_per_file: int, vocab_size: int, teacher: Architecture, space: Mapping[str, Any]
) -> Path:
    """A data folder like ``bench/prepare_device_data.py``'s, from a slice of the mirror's 10M corpus."""
    from babyteach.search import SearchSpace, search_architectures, students_from_search, write_search

    fetch_dataset("babylm-2024-10M", work / "raw", mirror)
    clean_corpus(work / "raw", work / "clean", work / "corpus.csv", "2024", max_lines_per_file=lines_per_file)
    train_tokenizer(work / "clean", work / "tokenizer", vocab_size)
    write_shards(work / "clean", work / "tokenizer", work / "shards")
    vocab = json.loads((work / "shards" / "meta.json").read_text())["vocab_size"]
    search = search_architectures(teacher, 4, SearchSpace(**space), vocab, 128, 10, 40, 0, tolerance=1.0)
    write_search(work / "search.json", search)
    peers = {name: arch.to_dict() for name, arch in students_from_search(work / "search.json", 4).items()}
    (work / "peers.json").write_text(json.dumps(peers), encoding="utf-8")
    for family in ("blimp-fast", "supplement-fast", "ewok-fast", "blimp-filtered", "glue-filtered"):
        fetch_dataset(family, work / family, mirror)
    return work


@dataclass
class Job:
    """One training measurement: a method on some students, with training overrides."""

    label: str
    method: str
    students: dict[str, Architecture]
    kind: str | None = None  # a key of TARGET_MFU, if the job has a target
    overrides: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    needs_teacher: bool = False


def training_jobs(
    teacher: Architecture,
    peers: dict[str, Architecture],
    batch: int,
    mutual: Mapping[str, Any],
    kd: Mapping[str, Any],
    sd: Mapping[str, Any],
) -> list[Job]:
    """The jobs measured: every kind of training job the workflow runs, at ``config.yaml``'s settings."""
    outer = {
        k: mutual[k]
        for k in ("alpha", "tau", "weight_update_every", "hypergradient", "inner_product", "eta0", "eta_min", "clip")
        if k in mutual
    }
    return [
        Job(f"teacher {teacher.describe()}, batch {batch}", "baseline", {"teacher": teacher}, "teacher"),
        Job(f"teacher, batch {batch}, compiled", "baseline", {"teacher": teacher}, "teacher", {"compile": True}),
        Job("teacher, batch 128", "baseline", {"teacher": teacher}, "teacher", {"batch_size": 128}),
        Job("4 peers alone (ablation_size)", "baseline", peers),
        Job("KD, 4 peers", "kd", peers, options=dict(kd), needs_teacher=True),
        Job("SD, 4 peers", "sd", peers, options=dict(sd)),
        Job("DML, 4 peers", "dml", peers, options={"alpha": mutual["alpha"], "tau": mutual["tau"]}),
        Job("DWML, 4 peers", "dwml", peers, "dwml", options=outer),
        Job("DWML, 4 peers, compiled", "dwml", peers, "dwml", {"compile": True}, options=outer),
        Job(
            "KD_DWML, 4 peers",
            "kd_dwml",
            peers,
            options={**outer, "lam": kd["lam"], "kd_tau": kd["tau"]},
            needs_teacher=True,
        ),
    ]


def _commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None  # a checkout copied without .git


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="prepared data folder (bench/prepare_device_data.py)")
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR, help="data mirror without --data")
    parser.add_argument("--out", type=Path, default=Path("."), help="where throughput.json goes (default: .)")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"), help="training.device")
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps per training run")
    parser.add_argument("--batch", type=int, default=None, help="blocks per step (default: config.yaml's)")
    parser.add_argument("--lines", type=int, default=40000, help="cleaned lines per corpus file, without --data")
    parser.add_argument("--vocab-size", type=int, default=50265, help="tokenizer vocabulary, without --data")
    parser.add_argument("--only", nargs="*", default=None, help="measure only the jobs whose label has one of these")
    parser.add_argument(
        "--batch-tokens",
        type=int,
        default=DEFAULT_BATCH_TOKENS,
        help="scoring: tokens per forward pass (evaluation.batch_size; default %(default)s)",
    )
    parser.add_argument(
        "--full-blimp",
        action="store_true",
        help="also score the whole blimp-filtered (59,875 pairs; --quick: 20 per UID) and time it",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="wall seconds for the whole check: training jobs that would start after 70 %% of it are "
        "skipped (said so), scoring and fine-tuning after 90 %%",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny teacher, 6 steps, small slice")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    teacher = Architecture.from_mapping(config["model"]["teacher"], "model.teacher")
    space = {k: config["search"]["space"][k] for k in ("layers", "heads", "hidden")}
    block, batch = config["model"]["block_size"], args.batch or config["training"]["batch_size"]
    if args.quick:
        teacher, args.steps, batch, args.lines, args.vocab_size = Architecture(2, 2, 64), 6, 8, 2000, 2000
        space = {"layers": (1, 2), "heads": (1, 2), "hidden": (16, 32, 48, 64)}
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    say: Callable[[str], None] = lambda text: print(text, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        work = Path(scratch)
        data = args.data or prepare_from_mirror(args.mirror, work / "data", args.lines, args.vocab_size, teacher, space)
        shards, tokenizer = data / "shards", data / "tokenizer"
        vocab = json.loads((shards / "meta.json").read_text())["vocab_size"]
        peers = {name: Architecture(**arch) for name, arch in json.loads((data / "peers.json").read_text()).items()}
        device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
        name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
        peak = peak_flops(name) if device == "cuda" else None
        record: dict[str, Any] = {
            "format_version": THROUGHPUT_FORMAT,
            "device": name,
            "peak_flops": peak,
            "date": date.today().isoformat(),
            "torch": torch.__version__,
            "commit": _commit(),
            "quick": args.quick,
            "training": [],
            "scoring": [],
            "finetune": [],
        }

        def save() -> None:
            (args.out / "throughput.json").write_text(json.dumps(record, indent=1), encoding="utf-8")

        say(
            f"# GPU check on {name} ({device}), torch {torch.__version__}, commit {record['commit']}; vocab {vocab}, "
            f"block {block}, {args.steps} steps per run; peers {', '.join(a.describe() for a in peers.values())}; "
            f"data ready after {time.monotonic() - started:.0f} s"
        )
        say("| run | tokens/s | model TFLOP/s | MFU | target | GPU utilisation (NVML) | wall s |")
        say("|---|---|---|---|---|---|---|")
        jobs = training_jobs(teacher, peers, batch, config["mutual"], config["kd"], config["sd"])
        if args.only:
            jobs = [job for job in jobs if any(word in job.label for word in args.only)]
        teacher_dir = None

        def over(share: float) -> bool:
            return args.budget_s is not None and time.monotonic() - started > share * args.budget_s

        for number, job in enumerate(jobs):
            if over(0.7):
                say(f"| {job.label} | skipped: --budget-s {args.budget_s:.0f} s nearly spent | | | | | |")
                continue
            if job.needs_teacher and teacher_dir is None:
                say(
                    f"| {job.label} | skipped: no teacher trained in this run (measure a teacher job first) | | | | | |"
                )
                continue
            values = dict(
                token_budget=args.steps * batch * block,
                block_size=block,
                batch_size=batch,
                lr=1e-4,
                warmup_fraction=0.1,
                log_every=max(1, args.steps // 6),
                checkpoint_every=10**9,
                dev_blocks=min(batch, 64),
                eval_every=None,
                device=args.device,
            )
            values.update(job.overrides)
            values["token_budget"] = args.steps * values["batch_size"] * block
            cfg = TrainConfig(**values)
            run_dir = work / f"run-{number}"
            wall = time.monotonic()
            summary = train(
                job.method,
                job.students,
                shards,
                tokenizer,
                run_dir,
                work / f"ckpt-{number}",
                cfg,
                teacher_dir=teacher_dir if job.needs_teacher else None,
                method_options=job.options,
            )
            wall = time.monotonic() - wall
            if job.method == "baseline" and "teacher" in job.students and teacher_dir is None:
                teacher_dir = run_dir / "teacher"
            rate = measured_tokens_per_s(run_dir)
            flops = sum(flops_per_token(a, vocab, block, cfg.mask_prob) for a in job.students.values()) * rate
            gpu = summary["gpu"]
            record["training"].append(
                {
                    "label": job.label,
                    "method": job.method,
                    "students": {n: a.to_dict() for n, a in job.students.items()},
                    "batch_size": cfg.batch_size,
                    "block_size": block,
                    "vocab_size": vocab,
                    "mask_prob": cfg.mask_prob,
                    "compile": cfg.compile,
                    "method_options": job.options,
                    "tokens_per_s": rate,
                    "model_flops_per_s": flops,
                    "mfu": flops / peak if peak else None,
                    "wall_s": wall,
                    "gpu": gpu,
                }
            )
            save()
            mfu = f"{flops / peak:.1%}" if peak else "n/a"
            target = f"≥ {TARGET_MFU[job.kind]:.0%}" if job.kind else "—"
            util = (
                ", ".join(
                    f"mean {g['util_mean_pct']:.0f} %, peak mem {g['mem_peak_mib']:.0f} MiB" for g in gpu["per_gpu"]
                )
                if gpu and gpu.get("gpus")
                else "none"
            )
            say(f"| {job.label} | {rate:,.0f} | {flops / 1e12:.2f} | {mfu} | {target} | {util} | {wall:.0f} |")

        if teacher_dir is not None:
            per_task = 20 if args.quick else None
            families = ["blimp-fast", "supplement-fast", "ewok-fast"] + (["blimp-filtered"] if args.full_blimp else [])
            for family in families:  # blimp-fast first: the CUDA context and kernels are warm for the full set
                if over(0.9):
                    say(f"{family}: skipped, --budget-s {args.budget_s:.0f} s nearly spent")
                    continue
                if not (data / family).is_dir():
                    say(f"{family}: not in {data}; skipped")
                    continue
                wall = time.perf_counter()
                scored = evaluate_pairs(
                    teacher_dir,
                    family,
                    data / family,
                    work / f"{family}.json",
                    max_per_task=per_task,
                    batch_tokens=args.batch_tokens,
                )
                wall = time.perf_counter() - wall
                strict = scored["variants"]["pll-word-l2r"]
                seconds = strict["n_pairs"] / scored["pairs_per_second"]  # both scorings, as the workflow runs them
                record["scoring"].append(
                    {
                        "architecture": teacher.to_dict(),
                        "vocab_size": vocab,
                        "family": family,
                        "pairs": strict["n_pairs"],
                        "seconds": seconds,
                        "wall_s": wall,
                        "variants": list(scored["variants"]),
                        "batch_tokens": args.batch_tokens,
                    }
                )
                save()
                target = (
                    f" (target ≤ {TARGET_FULL_BLIMP_S:.0f} s for 59,875 pairs)" if family == "blimp-filtered" else ""
                )
                plan = (
                    f"; {describe_plan(tokenizer, family, data / family, args.batch_tokens, per_task)}"
                    if family.startswith("blimp")
                    else ""
                )  # the plan of a family without context
                say(
                    f"{family}: {strict['n_pairs']} pairs in {seconds:.1f} s ({scored['pairs_per_second']:.0f} "
                    f"pairs/s, both scorings, tokenizing included; {wall:.1f} s with loading){target}, accuracy "
                    f"{strict['macro_accuracy']:.3f} pll-word-l2r, {scored['variants']['official']['macro_accuracy']:.3f} "
                    f"official{plan}"
                )
            glue = data / "glue-filtered"
            if (glue / f"{FINETUNE_TASK}.train.jsonl").is_file() and not over(0.9):
                from babyteach.evaluate.glue import FinetuneConfig, finetune_model

                finetune = config["finetune"]
                cfg = FinetuneConfig(
                    tasks=(FINETUNE_TASK,),
                    max_epochs=1,
                    batch_size=finetune["batch_size"],
                    max_length=finetune["max_length"],
                    max_train_examples=64 if args.quick else None,
                    max_eval_examples=64 if args.quick else None,
                )
                result = finetune_model(teacher_dir, glue, work / "glue.json", cfg)["tasks"][FINETUNE_TASK]
                record["finetune"].append(
                    {
                        "architecture": teacher.to_dict(),
                        "vocab_size": vocab,
                        "task": FINETUNE_TASK,
                        "examples": result["n_train"],
                        "valid_examples": result["n_valid"],
                        "epochs": 1,
                        "max_length": cfg.max_length,
                        "batch_size": cfg.batch_size,
                        "seconds": result["wall_time_s"],
                    }
                )
                save()
                say(
                    f"fine-tuning {FINETUNE_TASK}: {result['n_train']} train + {result['n_valid']} valid examples, one "
                    f"epoch in {result['wall_time_s']:.1f} s"
                )
    save()
    say(f"wrote {args.out / 'throughput.json'}; total wall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
