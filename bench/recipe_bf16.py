"""bf16 vs fp32 on CPU: the baseline MLM loop of ``train()`` rewritten small, with CPU bf16 autocast.

``train()`` autocasts to bf16 only on CUDA; on CPU it always runs fp32. To ask on a CPU whether
the bf16 path (autocast around the forward and the loss, as ``train()`` does on CUDA) changes
learning, this script re-implements the baseline step of ``train()`` at the main of 2026-11
(commit 7bf931b: same initialisation, block order, masks, dropout seeding, AdamW groups, warmup +
cosine schedule, clipping and dev loss) with a ``precision`` switch, and checks that its fp32
curve equals ``train()``'s (``--check``). CPU autocast is not CUDA autocast (other op lists,
other kernels), so this tests the bf16 *numerics of the model and loss*, not the CUDA kernels::

    python bench/recipe_bf16.py --data build/demo --arch L2-H2-D128 --tokens 400000 --check
    python bench/recipe_bf16.py --data device_data --arch L4-H4-D256 --lr 2e-3 --tokens 1000000 --out docs/recipe

Writes ``<out>/bf16_<arch>_lr<lr>.csv`` (precision, step, tokens, dev_loss).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import get_scheduler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_recipe import _ARCH, base_training  # noqa: E402

from babyteach.data.masking import mask_tokens  # noqa: E402
from babyteach.data.shards import PackedBlocks, read_meta  # noqa: E402
from babyteach.data.tokenizer import MASK  # noqa: E402
from babyteach.losses import cross_entropy  # noqa: E402
from babyteach.models import Architecture, build_model, masked_logits  # noqa: E402
from babyteach.train import TrainConfig, plan_steps, train  # noqa: E402

TRAIN_STREAM, DEV_STREAM = 0, 1  # as babyteach.train's masking streams


def mask_generator(seed: int, index: int, stream: int) -> torch.Generator:
    """The generator ``train()`` masks micro-batch ``index`` of ``stream`` with."""
    state = np.random.SeedSequence([seed, stream, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def masked(ids: torch.Tensor, generator: torch.Generator, cfg: TrainConfig, meta: dict):
    """(input_ids, positions (batch, seq) bool, targets) of one masked batch, as ``train()`` draws it."""
    special = sorted(meta["special_tokens"].values())
    batch = mask_tokens(ids, generator, cfg.mask_prob, meta["special_tokens"][MASK], meta["vocab_size"], special)
    positions = torch.zeros(ids.numel(), dtype=torch.bool)
    positions[batch.positions] = True
    return batch.input_ids, positions.view(ids.shape), batch.targets


def dev_loss(model, shard_dir: Path, cfg: TrainConfig, meta: dict, autocast) -> float:
    """Mean masked CE on the first ``cfg.dev_blocks`` dev blocks with ``train()``'s fixed dev masks."""
    dev = PackedBlocks(shard_dir, "dev", cfg.block_size)
    n = min(cfg.dev_blocks, len(dev))
    generator = mask_generator(cfg.seed, 0, DEV_STREAM)
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        for first in range(0, n, cfg.batch_size):
            ids = torch.from_numpy(dev.get_blocks(np.arange(first, min(first + cfg.batch_size, n))))
            input_ids, positions, targets = masked(ids, generator, cfg, meta)
            with autocast:
                logits = masked_logits(model, input_ids, None, positions)  # (n_masked, vocab)
            total += cross_entropy(logits.float(), targets).item() * targets.numel()
            count += targets.numel()
    model.train()
    return total / count


def train_curve(arch: Architecture, shard_dir: Path, cfg: TrainConfig, precision: str) -> list[dict]:
    """The dev-loss curve (every ``cfg.eval_every`` steps and the last) of the baseline method,
    ``precision`` ``"fp32"`` or ``"bf16"`` (CPU autocast around the forward and the loss)."""
    meta = read_meta(shard_dir)
    blocks = PackedBlocks(shard_dir, "train", cfg.block_size)
    plan = plan_steps(cfg, len(blocks))
    model = build_model(arch, int(meta["vocab_size"]), cfg.block_size, seed=cfg.seed, dropout=cfg.dropout)
    torch.manual_seed(cfg.seed)  # as train(): then the method's extras (none), then the dropout seed
    torch.manual_seed(cfg.seed)
    params = list({id(p): p for p in model.parameters()}.values())
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps)  # fmt: skip
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=round(cfg.warmup_fraction * plan.steps),
                              num_training_steps=plan.steps)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    batches_per_epoch, order_epoch, order = len(blocks) // cfg.batch_size, -1, None
    curve = []
    model.train()
    for step in range(1, plan.steps + 1):
        optimizer.zero_grad(set_to_none=True)
        epoch, within = divmod(step - 1, batches_per_epoch)
        if epoch != order_epoch:
            order_epoch, order = epoch, blocks.order(cfg.seed, epoch)
        ids = torch.from_numpy(blocks.get_blocks(order[within * cfg.batch_size : (within + 1) * cfg.batch_size]))
        input_ids, positions, targets = masked(ids, mask_generator(cfg.seed, step - 1, TRAIN_STREAM), cfg, meta)
        with autocast:
            loss = cross_entropy(masked_logits(model, input_ids, None, positions), targets)
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"step {step}: loss {loss.item()}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm or math.inf)
        optimizer.step()
        scheduler.step()
        if (cfg.eval_every and step % cfg.eval_every == 0) or step == plan.steps:
            curve.append({"precision": precision, "step": step, "tokens": step * plan.tokens_per_step,
                          "dev_loss": dev_loss(model, shard_dir, cfg, meta, autocast)})
            print(f"{precision}\tstep {step}\tdev loss {curve[-1]['dev_loss']:.4f}", flush=True)
    return curve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with shards/ and tokenizer/")
    parser.add_argument("--arch", default="L2-H2-D128")
    parser.add_argument("--tokens", type=int, default=400_000)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--points", type=int, default=6)
    parser.add_argument("--warmup-fraction", type=float, default=0.06)
    parser.add_argument("--out", type=Path, default=Path("build/exp"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    parser.add_argument("--check", action="store_true", help="also run train() in fp32 and compare the curves")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    arch = Architecture(*map(int, _ARCH.fullmatch(args.arch).groups()))
    base = {**base_training(), "batch_size": args.batch, "lr": args.lr, "warmup_fraction": args.warmup_fraction,
            "dev_blocks": 64, "device": "cpu", "checkpoint_every": 10**9}
    shards = args.data / "shards"
    steps = plan_steps(TrainConfig(**base, token_budget=args.tokens), len(PackedBlocks(shards, "train", 128))).steps
    cfg = TrainConfig(**base, token_budget=args.tokens, eval_every=max(1, steps // args.points),
                      log_every=max(1, steps // args.points))
    rows = []
    for precision in args.precisions:
        started = time.monotonic()
        rows += train_curve(arch, shards, cfg, precision)
        print(f"{precision}: {time.monotonic() - started:.0f} s", flush=True)
    if args.check and "fp32" in args.precisions:
        with tempfile.TemporaryDirectory() as scratch:
            summary = train("baseline", {"teacher": arch}, shards, args.data / "tokenizer", Path(scratch) / "o",
                            Path(scratch) / "c", cfg)
            import json

            for line in (Path(scratch) / "o" / "metrics.jsonl").read_text().splitlines():
                record = json.loads(line)
                if "dev_loss" in record:
                    rows.append({"precision": "train() fp32", "step": record["step"], "tokens": record["tokens"],
                                 "dev_loss": record["dev_loss"]["teacher"]})
        mine = [r["dev_loss"] for r in rows if r["precision"] == "fp32"]
        theirs = [r["dev_loss"] for r in rows if r["precision"] == "train() fp32"]
        gap = max(abs(a - b) for a, b in zip(mine, theirs, strict=True))
        print(f"fp32 loop vs train(): largest dev-loss difference {gap:.2e} nats over {len(mine)} points "
              f"(final {mine[-1]:.4f} vs {summary['students']['teacher']['final_dev_loss']:.4f})")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bf16_{args.arch}_lr{args.lr:g}_{'-'.join(args.precisions)}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
