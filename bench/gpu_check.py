"""GPU check: the training loop's throughput and MFU, DWML's, and the BLiMP scorer's, on one device.

For a maintainer with one GPU (under 8 minutes on a recent data-centre GPU): from the local
data mirror it builds a small corpus slice, a tokenizer and shards, then through the project's
own functions

1. trains the paper's teacher architecture (``config.yaml`` ``model.teacher``) with
   ``train("baseline", …)`` for a fixed number of steps in bf16 and reports tokens/s and MFU
   (analytic FLOPs of :func:`babyteach.models.flops_per_token`, peak from :data:`PEAK_BF16`);
2. trains 4 DWML peers searched for that teacher (``search_architectures``) with
   ``train("dwml", …)`` and reports their tokens/s and MFU (FLOPs of all peers);
3. scores ``blimp-fast`` with the trained teacher (``evaluate_pairs``, the pipeline's
   length-bucketed batches of ``--batch-tokens`` tokens) and reports pairs/s and the batch plan;
   with ``--full-blimp`` also the whole ``blimp-filtered`` (59,875 pairs), timed after the
   blimp-fast run has warmed the kernels (target ≤ 15 s on an H200-class GPU);
4. prints the NVML utilisation the training runs recorded (:mod:`babyteach.gpu`).

Targets printed beside the numbers: teacher ≥ 40 % MFU, DWML ≥ 25 % MFU, full BLiMP ≤ 15 s. Run::

    python bench/gpu_check.py --full-blimp         # on the GPU machine, mirror ../shared/data
    python bench/gpu_check.py --quick --device cpu # smoke run of the same path on a CPU
    python bench/gpu_check.py --quick --device cpu --full-blimp  # blimp-filtered cut to 20 pairs per UID

The throughput is read from the loop's own ``metrics.jsonl`` (tokens/s between log lines, the
first interval left out as warm-up), so start-up, the dev loss and file writing are not in it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml

from babyteach.data.clean import clean_corpus
from babyteach.data.fetch import fetch_dataset
from babyteach.data.shards import write_shards
from babyteach.data.tokenizer import train_tokenizer
from babyteach.evaluate.pairs import DEFAULT_BATCH_TOKENS, evaluate_pairs, load_pairs, plan_batches
from babyteach.models import Architecture, flops_per_token
from babyteach.search import SearchSpace, search_architectures, students_from_search, write_search
from babyteach.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = Path(os.environ.get("BABYTEACH_DATA_MIRROR", REPO.parent / "shared" / "data"))

#: Dense bf16 peak FLOP/s by a substring of ``torch.cuda.get_device_name()`` (vendor data
#: sheets, without sparsity); the first match wins, so longer names come first.
PEAK_BF16: dict[str, float] = {
    "H200": 989e12, "H100": 989e12, "GH200": 989e12, "A100": 312e12, "A10G": 70e12, "A10": 125e12,
    "L40S": 362e12, "L40": 181e12, "L4": 121e12, "RTX 4090": 165e12, "RTX 3090": 71e12, "V100": 125e12,
    "T4": 65e12,
}  # fmt: skip
TARGET_MFU = {"teacher": 0.40, "dwml": 0.25}
#: Seconds for the whole blimp-filtered (59,875 pairs) on one H200-class GPU (issue 13).
TARGET_FULL_BLIMP_S = 15.0


def peak_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a device by name, or None when it is not in :data:`PEAK_BF16`."""
    return next((peak for key, peak in PEAK_BF16.items() if key in device_name), None)


def measured_tokens_per_s(run_dir: Path) -> float:
    """Median tokens/s of a run's ``metrics.jsonl`` intervals, the first (warm-up) left out."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [line["tokens_per_s"] for line in lines[1:]] or [lines[0]["tokens_per_s"]]
    return statistics.median(rates)


def describe_plan(tokenizer_dir: Path, family: str, data_dir: Path, batch_tokens: int, max_per_task: int | None) -> str:
    """The scorer's batch plan for a BLiMP family (no context: one copy per non-special token), in words."""
    from transformers import AutoTokenizer

    pairs = load_pairs(family, data_dir, max_per_task)
    sentences = sorted({s for p in pairs for s in (p.good, p.bad)})
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(tokenizer_dir)(sentences)["input_ids"]]
    plan = plan_batches([n for n in lengths for _ in range(n - 2)], batch_tokens)
    return (f"{len(sentences)} distinct sentences, {plan.order.size} masked copies, {plan.tokens:,} tokens in "
            f"{len(plan.bounds)} batches of ≤ {batch_tokens} tokens ({plan.fill:.0%} full on average, no padding)")


def prepare_data(mirror: Path, work: Path, lines_per_file: int, vocab_size: int) -> tuple[Path, Path]:
    """A slice of the mirror's 2024 10M corpus: cleaned, a tokenizer and shards. Returns (shards, tokenizer)."""
    fetch_dataset("babylm-2024-10M", work / "raw", mirror)
    clean_corpus(work / "raw", work / "clean", work / "corpus.csv", "2024", max_lines_per_file=lines_per_file)
    train_tokenizer(work / "clean", work / "tokenizer", vocab_size)
    write_shards(work / "clean", work / "tokenizer", work / "shards")
    return work / "shards", work / "tokenizer"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR, help="data mirror (default: %(default)s)")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"), help="training.device")
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps per training run")
    parser.add_argument("--batch", type=int, default=64, help="blocks of 128 tokens per step")
    parser.add_argument("--lines", type=int, default=40000, help="cleaned lines per corpus file for the slice")
    parser.add_argument("--vocab-size", type=int, default=50265, help="tokenizer vocabulary (reached if the slice allows)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models (training.compile)")
    parser.add_argument("--batch-tokens", type=int, default=DEFAULT_BATCH_TOKENS,
                        help="scoring: tokens per forward pass (evaluation.batch_size; default %(default)s)")
    parser.add_argument("--full-blimp", action="store_true",
                        help="also score the whole blimp-filtered (59,875 pairs; --quick: 20 per UID) and time it")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny teacher, 6 steps, small slice")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    teacher = Architecture.from_mapping(config["model"]["teacher"], "model.teacher")
    space = SearchSpace(**{k: config["search"]["space"][k] for k in ("layers", "heads", "hidden")})
    block = 128
    if args.quick:
        teacher, args.steps, args.batch, args.lines, args.vocab_size = Architecture(2, 2, 64), 6, 8, 2000, 2000
        space = SearchSpace(layers=(1, 2), heads=(1, 2), hidden=(16, 32, 48, 64))

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        work = Path(scratch)
        shards, tokenizer = prepare_data(args.mirror, work, args.lines, args.vocab_size)
        vocab = json.loads((shards / "meta.json").read_text())["vocab_size"]
        cfg = TrainConfig(token_budget=args.steps * args.batch * block, block_size=block, batch_size=args.batch,
                          lr=5e-4, warmup_fraction=0.1, log_every=max(1, args.steps // 6), checkpoint_every=10**9,
                          dev_blocks=args.batch, device=args.device, compile=args.compile)  # fmt: skip
        device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
        name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
        peak = peak_flops(name) if device == "cuda" else None
        print(f"# GPU check on {name} ({device}), torch {torch.__version__}; vocab {vocab}, block {block}, "
              f"batch {args.batch}, {args.steps} steps per run; data prepared in {time.monotonic() - started:.0f} s")

        rows = []
        summary = train("baseline", {"teacher": teacher}, shards, tokenizer, work / "teacher", work / "ckpt-t", cfg)
        rate = measured_tokens_per_s(work / "teacher")
        flops = flops_per_token(teacher, vocab, block, cfg.mask_prob) * rate
        rows.append(("teacher " + teacher.describe(), rate, flops, "teacher", summary["gpu"]))

        search = search_architectures(teacher, 4, space, vocab, block, 10, 40, 0, tolerance=1.0)
        write_search(work / "search.json", search)
        peers = students_from_search(work / "search.json", 4)
        summary = train("dwml", peers, shards, tokenizer, work / "dwml", work / "ckpt-d", cfg)
        rate = measured_tokens_per_s(work / "dwml")
        flops = sum(flops_per_token(arch, vocab, block, cfg.mask_prob) for arch in peers.values()) * rate
        rows.append(("DWML 4 peers " + ", ".join(a.describe() for a in peers.values()), rate, flops, "dwml",
                     summary["gpu"]))  # fmt: skip

        fetch_dataset("blimp-fast", work / "blimp-fast", args.mirror)
        per_task = 20 if args.quick else None
        scored = evaluate_pairs(work / "teacher" / "teacher", "blimp-fast", work / "blimp-fast", work / "blimp.json",
                                max_per_task=per_task, batch_tokens=args.batch_tokens)  # fmt: skip
        plans = {"blimp-fast": describe_plan(tokenizer, "blimp-fast", work / "blimp-fast", args.batch_tokens, per_task)}
        full = None
        if args.full_blimp:  # after blimp-fast: CUDA context and kernels are warm
            fetch_dataset("blimp-filtered", work / "blimp-filtered", args.mirror)
            wall = time.perf_counter()
            full = evaluate_pairs(work / "teacher" / "teacher", "blimp-filtered", work / "blimp-filtered",
                                  work / "blimp-filtered.json", max_per_task=per_task,
                                  batch_tokens=args.batch_tokens)  # fmt: skip
            full["wall_s"] = time.perf_counter() - wall
            plans["blimp-filtered"] = describe_plan(tokenizer, "blimp-filtered", work / "blimp-filtered",
                                                    args.batch_tokens, per_task)  # fmt: skip

    print("| run | tokens/s | model TFLOP/s | MFU | target | GPU utilisation (NVML) |")
    print("|---|---|---|---|---|---|")
    for label, rate, flops, kind, gpu in rows:
        mfu = f"{flops / peak:.1%}" if peak else "n/a (no peak for this device)"
        util = (", ".join(f"GPU {g['index']} mean {g['util_mean_pct']:.0f} %, peak mem {g['mem_peak_mib']:.0f} MiB"
                          for g in gpu["per_gpu"]) if gpu and gpu.get("gpus") else f"none: {gpu and gpu.get('reason')}")
        print(f"| {label} | {rate:,.0f} | {flops / 1e12:.2f} | {mfu} | ≥ {TARGET_MFU[kind]:.0%} | {util} |")
    print(f"BLiMP fast scoring with the trained teacher: {scored['n_pairs']} pairs at "
          f"{scored['pairs_per_second']:.0f} pairs/s (accuracy {scored['macro_accuracy']:.3f}); {plans['blimp-fast']}")
    if full is not None:
        seconds = full["n_pairs"] / full["pairs_per_second"]
        cut = " (--quick: 20 pairs per UID)" if args.quick else ""
        print(f"full blimp-filtered{cut}: {full['n_pairs']} pairs scored in {seconds:.1f} s (tokenizing included; "
              f"{full['wall_s']:.1f} s with reading the pairs and loading the model), {full['pairs_per_second']:.0f} "
              f"pairs/s, target ≤ {TARGET_FULL_BLIMP_S:.0f} s for 59,875 on an H200-class GPU; "
              f"{plans['blimp-filtered']}")
    print(f"total wall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
