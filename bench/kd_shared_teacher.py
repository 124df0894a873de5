"""Benchmark: KD of 4 students sharing one teacher forward per batch vs 4 separate KD runs.

Shared: one ``StepContext`` holds all students, so ``make_method("kd")`` runs the frozen
teacher once per batch (what ``train`` does for the students of one job). Separate: one
``StepContext`` per student, each running the teacher forward again (four independent KD
jobs). Both train identical student copies (same seeds) on the same masked batches with
the loop's AdamW; the first step's losses are checked to agree before timing. Students
default to the exact grid optimum for ``N / (i + 1)`` parameters (i = 1..4, N the
teacher's), as the architecture search targets them (target: shared ≥ 1.5× faster)::

    python bench/kd_shared_teacher.py                            # teacher L6-H8-D384, vocab 50265
    python bench/kd_shared_teacher.py --teacher L4-H4-D256 --students L2-H4-D128,L1-H2-D128
    python bench/kd_shared_teacher.py --quick                    # smoke run: tiny models, few steps
"""

from __future__ import annotations

import argparse
import copy
import os
import re

import torch

from babyteach.methods import MLMBatch, StepContext, make_method
from babyteach.models import Architecture, build_model, count_parameters
from babyteach.search import SearchSpace, grid_optimum
from babyteach.train import TrainConfig, _optimizer
from train_step import masked_batches, random_blocks, time_alternately


def parse_arch(text: str) -> Architecture:
    """``L6-H8-D384`` (the form of ``Architecture.describe``) → ``Architecture(6, 8, 384)``."""
    match = re.fullmatch(r"L(\d+)-H(\d+)-D(\d+)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected an architecture like L6-H8-D384, got {text!r}")
    return Architecture(*map(int, match.groups()))


def default_students(teacher: Architecture, n: int, vocab_size: int, block: int) -> list[Architecture]:
    """Student i = 1..n: the grid architecture closest to N / (i + 1) params, in a space below the teacher."""
    space = SearchSpace(layers=(1, teacher.layers), heads=(1, 2, 4, 8), hidden=range(8, teacher.hidden + 1, 8))
    n_params = count_parameters(teacher, vocab_size, block)
    return [Architecture(**grid_optimum(space, n_params / (i + 1), vocab_size, block)["arch"]) for i in range(1, n + 1)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--teacher",
        type=parse_arch,
        default=parse_arch("L6-H8-D384"),
        help="teacher architecture (default: L6-H8-D384)",
    )
    parser.add_argument(
        "--students",
        type=lambda s: [parse_arch(a) for a in s.split(",")],
        default=None,
        help="comma-separated student architectures (default: grid optimum for N/(i+1), i=1..4)",
    )
    parser.add_argument("--vocab-size", type=int, default=50265, help="vocabulary (default: %(default)s)")
    parser.add_argument("--block", type=int, default=128, help="tokens per block (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=16, help="blocks per batch (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=7, help="timed steps of each (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="weights, batches, masking (default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's own choice; 1 is steadier on a loaded machine)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: teacher L2-H2-D64, vocab 1000, 1 + 2 steps")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.teacher, args.vocab_size, args.batch, args.warmup, args.repeats = parse_arch("L2-H2-D64"), 1000, 4, 1, 2

    archs = args.students or default_students(args.teacher, 4, args.vocab_size, args.block)
    teacher_params = count_parameters(args.teacher, args.vocab_size, args.block)
    if any(count_parameters(a, args.vocab_size, args.block) >= teacher_params for a in archs):
        parser.error("every student must be smaller than the teacher")
    cfg = TrainConfig(token_budget=1, block_size=args.block, seed=args.seed)
    batches = masked_batches(
        random_blocks(4, args.batch, args.block, args.vocab_size, args.seed), args.vocab_size, args.seed
    )
    teacher = build_model(args.teacher, args.vocab_size, args.block, seed=args.seed)
    teacher.eval().requires_grad_(False)  # as train.load_teacher leaves it
    students = {
        f"peer-{i}": build_model(a, args.vocab_size, args.block, seed=args.seed + i)
        for i, a in enumerate(archs, start=1)
    }
    for model in students.values():
        model.train()
    twins = copy.deepcopy(students)  # the separate runs train their own, identical copies
    shared_opt = {name: _optimizer(list(m.parameters()), cfg) for name, m in students.items()}
    separate_opt = {name: _optimizer(list(m.parameters()), cfg) for name, m in twins.items()}
    kd = make_method("kd")

    def shared_step(i: int) -> dict[str, float]:
        batch: MLMBatch = batches[i % len(batches)]
        for opt in shared_opt.values():
            opt.zero_grad(set_to_none=True)
        losses = kd.step_loss(StepContext(batch, students, {}, teacher))
        sum(losses.values()).backward()  # students share no parameter: each gets its own gradient
        for opt in shared_opt.values():
            opt.step()
        return {name: loss.item() for name, loss in losses.items()}

    def separate_step(i: int) -> dict[str, float]:
        batch = batches[i % len(batches)]
        values = {}
        for name, model in twins.items():
            separate_opt[name].zero_grad(set_to_none=True)
            loss = kd.step_loss(StepContext(batch, {name: model}, {}, teacher))[name]
            loss.backward()
            separate_opt[name].step()
            values[name] = loss.item()
        return values

    # Same students, batch and dropout draws (the teacher draws none): same losses, or we compare apples and pears.
    torch.manual_seed(args.seed)
    first_shared = shared_step(0)
    torch.manual_seed(args.seed)
    first_separate = separate_step(0)
    for name in students:
        assert abs(first_shared[name] - first_separate[name]) <= 1e-5, (name, first_shared, first_separate)

    seconds = time_alternately({"shared": shared_step, "separate": separate_step}, args.warmup, args.repeats)
    print(
        f"teacher {args.teacher.describe()} ({teacher_params:,} params), vocab {args.vocab_size}, "
        f"batch {args.batch} × {args.block}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats} after {args.warmup} warm-up, 1-min load average {os.getloadavg()[0]:.1f}"
    )
    for name, arch in zip(students, archs, strict=True):
        params = count_parameters(arch, args.vocab_size, args.block)
        print(
            f"  {name}: {arch.describe()} ({params:,} params, N/{teacher_params / params:.2f}), "
            f"first-step loss {first_shared[name]:.4f}"
        )
    tokens = args.batch * args.block
    print("| KD, 4 students | teacher forwards/batch | s/batch | tokens/s |")
    print("|---|---|---|---|")
    for name, forwards in (("shared", 1), ("separate", len(students))):
        print(f"| {name} | {forwards} | {seconds[name]:.3f} | {tokens / seconds[name]:,.0f} |")
    print(f"result: shared teacher speed-up = {seconds['separate'] / seconds['shared']:.2f}× (target ≥ 1.5×)")


if __name__ == "__main__":
    main()
