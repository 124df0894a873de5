"""Benchmark: tokens/s of our baseline training step vs a plain ``RobertaForMaskedLM(labels=…)`` step.

Both steps train the same weights (same seed) on the same packed, masked batches with the
same AdamW: ours runs the loop's code path (``make_method("baseline").step_loss`` over a
``StepContext``, i.e. the LM head on the masked positions only); the plain one calls
``model(input_ids, labels=labels)`` (labels -100 except at the masked positions), which
builds the full ``(batch, seq, vocab)`` logits. Before timing, the first step's losses are
checked to agree to 1e-5 (same dropout draws). Steps are timed alternately, after warm-up,
and the median of each is reported (target: ours ≥ 2× the plain step's tokens/s on CPU)::

    python bench/train_step.py                                   # L4-H4-D256, vocab 50265, 16 × 128
    python bench/train_step.py --layers 12 --heads 12 --hidden 768 --batch 8
    python bench/train_step.py --quick                           # smoke run: tiny model, few steps
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from babyteach.data.masking import TRAIN_STREAM, mask_blocks, mask_key, predictions_per_block, replacement_ids
from babyteach.data.tokenizer import SPECIAL_TOKENS
from babyteach.methods import MLMBatch, StepContext, make_method
from babyteach.models import Architecture, build_model, flops_per_token
from babyteach.train import TrainConfig, _optimizer

#: The special ids as our tokenizer assigns them.
SPECIAL_IDS = {token: i for i, token in enumerate(SPECIAL_TOKENS)}


def random_blocks(n_batches: int, batch: int, block: int, vocab_size: int, seed: int) -> list[torch.Tensor]:
    """Packed blocks like the shards': ``<s> … </s>`` around uniformly drawn non-special ids.

    The benchmark times compute, not the data; uniform ids exercise the same shapes.
    """
    generator = torch.Generator().manual_seed(seed)
    blocks = []
    for _ in range(n_batches):
        ids = torch.randint(len(SPECIAL_TOKENS), vocab_size, (batch, block), generator=generator)
        ids[:, 0], ids[:, -1] = SPECIAL_IDS["<s>"], SPECIAL_IDS["</s>"]
        blocks.append(ids)  # (batch, block)
    return blocks


def masked_batches(blocks: Sequence[torch.Tensor], vocab_size: int, seed: int) -> list[MLMBatch]:
    """The loop's masking (:func:`babyteach.data.masking.mask_blocks`: k = 15 % of each block's text,
    80/10/10) of each block, keyed by its batch index as the loop keys its micro-batches."""
    special = sorted(SPECIAL_IDS.values())
    k = predictions_per_block(TrainConfig(token_budget=1).mask_prob, blocks[0].shape[1] - 2)  # no separators
    replacements = replacement_ids(vocab_size, special, torch.device("cpu"))
    return [
        mask_blocks(ids, mask_key(seed, TRAIN_STREAM, i), k, torch.tensor(special), replacements, SPECIAL_IDS["<mask>"])
        for i, ids in enumerate(blocks)
    ]


def dense_labels(batch: MLMBatch) -> torch.Tensor:
    """Hugging Face MLM labels: the target id at masked positions, -100 (ignored) elsewhere."""
    labels = torch.full_like(batch.input_ids, -100)
    return labels.scatter(1, batch.positions, batch.targets.view(batch.positions.shape))  # (batch, seq)


def time_alternately(steps: dict[str, Callable[[int], object]], warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each step, calling them in turn so drifting load hits all alike.

    Each step takes the iteration number (to pick its batch); the ``warmup`` first rounds
    are not timed.
    """
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(warmup + repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step(i)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4, help="encoder layers (default: %(default)s)")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=256, help="hidden size (default: %(default)s)")
    parser.add_argument("--vocab-size", type=int, default=50265, help="vocabulary (default: %(default)s)")
    parser.add_argument("--block", type=int, default=128, help="tokens per block (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=16, help="blocks per batch (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=15, help="timed steps of each (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="weights, batches, masking (default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's own choice; 1 is steadier on a loaded machine)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: L2-H2-D64, vocab 1000, 2 + 3 steps")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.layers, args.heads, args.hidden, args.vocab_size = 2, 2, 64, 1000
        args.batch, args.warmup, args.repeats = 4, 2, 3

    arch = Architecture(args.layers, args.heads, args.hidden)
    batches = masked_batches(
        random_blocks(4, args.batch, args.block, args.vocab_size, args.seed), args.vocab_size, args.seed
    )
    labels = [dense_labels(b) for b in batches]
    cfg = TrainConfig(token_budget=1, block_size=args.block, seed=args.seed)
    ours, plain = (build_model(arch, args.vocab_size, args.block, seed=args.seed) for _ in range(2))
    ours_opt, plain_opt = _optimizer(list(ours.parameters()), cfg), _optimizer(list(plain.parameters()), cfg)
    ours.train()
    plain.train()
    baseline = make_method("baseline")

    def ours_step(i: int) -> torch.Tensor:
        ours_opt.zero_grad(set_to_none=True)
        batch = batches[i % len(batches)]
        loss = baseline.step_loss(StepContext(batch, {"model": ours}, {}))["model"]
        loss.backward()
        ours_opt.step()
        return loss.detach()

    def plain_step(i: int) -> torch.Tensor:
        plain_opt.zero_grad(set_to_none=True)
        loss = plain(input_ids=batches[i % len(batches)].input_ids, labels=labels[i % len(batches)]).loss
        loss.backward()
        plain_opt.step()
        return loss.detach()

    # Same weights, batch and dropout draws: the two objectives must agree before we time them.
    torch.manual_seed(args.seed)
    loss_ours = ours_step(0).item()
    torch.manual_seed(args.seed)
    loss_plain = plain_step(0).item()
    assert abs(loss_ours - loss_plain) <= 1e-5, f"first-step losses differ: ours {loss_ours}, plain {loss_plain}"

    seconds = time_alternately({"ours": ours_step, "plain": plain_step}, args.warmup, args.repeats)
    tokens = args.batch * args.block
    n_masked = sum(b.targets.numel() for b in batches) / len(batches)
    print(
        f"model {arch.describe()}, vocab {args.vocab_size}, batch {args.batch} × {args.block} tokens "
        f"(~{n_masked:.0f} masked), {torch.get_num_threads()} threads, median of {args.repeats} "
        f"after {args.warmup} warm-up, 1-min load average {os.getloadavg()[0]:.1f}"
    )
    print(f"first-step loss: ours {loss_ours:.6f}, plain {loss_plain:.6f} (|Δ| {abs(loss_ours - loss_plain):.1e})")
    print("| step | s/step | tokens/s | analytic GFLOP/step |")
    print("|---|---|---|---|")
    for name, head_fraction in (("ours", n_masked / tokens), ("plain", 1.0)):
        gflop = flops_per_token(arch, args.vocab_size, args.block, head_fraction) * tokens / 1e9
        print(f"| {name} | {seconds[name]:.3f} | {tokens / seconds[name]:,.0f} | {gflop:.1f} |")
    print(f"result: ours/plain tokens/s = {seconds['plain'] / seconds['ours']:.2f}× (target ≥ 2×)")


if __name__ == "__main__":
    main()
