"""Benchmark (CPU proxy of GPU throughput): the host overhead of one training step, before and after.

On a GPU a step is fast only when the host keeps ahead of the device: every op the loop
dispatches costs host time (a kernel launch), and every value read back to the host (``item``,
``tolist``, ``nonzero``, boolean indexing) makes the host wait for every queued kernel. Neither
needs a GPU to count. For each method this script trains tiny models (compute negligible, so the
step's wall time is mostly Python and dispatch) through ``babyteach.train.train`` and reports,
per optimiser step between log lines:

- ``ops``: aten ops dispatched (a ``TorchDispatchMode`` entered from the ``on_step`` hook);
- ``reads``: ops that read a value back to the host (a device sync on CUDA; ``tolist``/``numpy`` of
  CPU tensors are counted too, as they dispatch nothing);

AdamW runs fused in both trees, as it does on a GPU in both (on the CPU the old tree's unfused
AdamW would add one ``item()`` per parameter that a GPU run never makes).
- ``shapes``: distinct op/shape sequences among the quiet steps (1 = static shapes, what CUDA
  graphs and ``torch.compile`` need; DWML has two kinds of step, with and without an outer step);
- ``ms/step``: median wall time of those steps, without the dispatch mode.

``--before REF`` measures the package as it was at git ``REF`` too (a temporary ``git worktree``,
imported through ``PYTHONPATH``), alternating the two trees run by run so drifting load hits both::

    python bench/step_overhead.py --before f0eb2eb      # this tree against the commit before issue 13
    python bench/step_overhead.py --quick               # smoke run, this tree only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Methods measured and their options: the mutual ones with an outer step every 5 steps.
METHODS = {"baseline": {}, "kd": {}, "dml": {}, "dwml": {"weight_update_every": 5}}
LINES = ["the cat sat on the mat .", "a dog ran over the hill and far away .", "she said that it was late ."]


def _measure(root: Path, steps: int, block: int, batch: int) -> dict[str, dict[str, float]]:
    """Run every method of :data:`METHODS` with the importable ``babyteach`` and measure its steps."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from babyteach.data.shards import write_shards
    from babyteach.data.tokenizer import train_tokenizer
    from babyteach.models import Architecture
    from babyteach.train import TrainConfig, train

    torch.set_num_threads(1)
    adamw_init = torch.optim.AdamW.__init__

    def fused_adamw(self, *args, **kwargs):  # the GPU's optimiser path, in both trees
        adamw_init(self, *args, **{**kwargs, "fused": True})

    torch.optim.AdamW.__init__ = fused_adamw
    aten = torch.ops.aten
    reads_ops = {
        aten._local_scalar_dense.default,
        aten.nonzero.default,
        aten.masked_select.default,
        aten.is_nonzero.default,
        aten.equal.default,
    }

    class Recorder(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops, self.reads, self.signature = 0, 0, []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            shapes = tuple(tuple(a.shape) for a in torch.utils._pytree.tree_leaves(args) if isinstance(a, torch.Tensor))
            self.signature.append((str(func), shapes))
            is_bool_index = func is aten.index.Tensor and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None
            )
            self.reads += func in reads_ops or is_bool_index
            return func(*args, **(kwargs or {}))

        def count_host_reads(self) -> None:
            """Count ``tolist``/``numpy`` while recording: on CPU tensors they read without dispatching."""
            for name in ("tolist", "numpy"):
                original = getattr(torch.Tensor, name)

                def reading(tensor, *args, _original=original, **kwargs):
                    if any(mode is self for mode in torch.utils._python_dispatch._get_current_dispatch_mode_stack()):
                        self.reads += 1
                    return _original(tensor, *args, **kwargs)

                setattr(torch.Tensor, name, reading)

    clean = root / "clean"
    clean.mkdir(parents=True, exist_ok=True)
    (clean / "toy.train").write_text("\n".join(LINES * 400) + "\n", encoding="utf-8")
    (clean / "toy.dev").write_text("\n".join(LINES * 60) + "\n", encoding="utf-8")
    train_tokenizer(clean, root / "tokenizer", vocab_size=300)
    write_shards(clean, root / "tokenizer", root / "shards")
    log_every = steps  # steps 2 … steps−1 are quiet: no log line, no evaluation, no checkpoint
    cfg = dict(
        token_budget=steps * batch * block,
        block_size=block,
        batch_size=batch,
        lr=1e-3,
        log_every=log_every,
        checkpoint_every=10**6,
        eval_every=None,
        dev_blocks=batch,
        seed=0,
        dropout=0.1,
    )
    archs = {"peer-1": Architecture(1, 2, 32), "peer-2": Architecture(1, 2, 16)}
    teacher_out = root / "teacher"
    train(
        "baseline",
        {"teacher": Architecture(1, 2, 32)},
        root / "shards",
        root / "tokenizer",
        teacher_out,
        root / "ckpt-teacher",
        TrainConfig(**{**cfg, "token_budget": 2 * batch * block}),
    )
    results = {}
    for method, options in METHODS.items():
        students = archs if method != "baseline" else {"teacher": archs["peer-1"]}
        teacher = teacher_out / "teacher" if method == "kd" else None
        per_step: dict[int, tuple[int, int, list]] = {}
        recorder = Recorder()
        recorder.count_host_reads()

        def count(step, models, losses, recorder=recorder, per_step=per_step):
            if step == 1:
                recorder.__enter__()
            else:
                per_step[step] = (recorder.ops, recorder.reads, recorder.signature)
            recorder.ops, recorder.reads, recorder.signature = 0, 0, []

        try:
            train(
                method,
                students,
                root / "shards",
                root / "tokenizer",
                root / f"out-{method}-ops",
                root / f"ckpt-{method}-ops",
                TrainConfig(**cfg),
                teacher_dir=teacher,
                method_options=options,
                on_step=count,
            )
        finally:
            recorder.__exit__(None, None, None)
        stamps: list[float] = []
        train(
            method,
            students,
            root / "shards",
            root / "tokenizer",
            root / f"out-{method}-time",
            root / f"ckpt-{method}-time",
            TrainConfig(**cfg),
            teacher_dir=teacher,
            method_options=options,
            on_step=lambda step, models, losses: stamps.append(time.perf_counter()),  # noqa: B023 (this run)
        )
        quiet = range(2, steps)  # between the first step and the last (logged) one
        results[method] = {
            "ops": statistics.mean(per_step[s][0] for s in quiet),
            "reads": statistics.mean(per_step[s][1] for s in quiet),
            "shapes": len({json.dumps(per_step[s][2]) for s in quiet}),
            "ms_per_step": 1000 * statistics.median(b - a for a, b in zip(stamps[1:-2], stamps[2:-1])),
        }
    return results


def _run_tree(src: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """:func:`_measure` in a fresh interpreter importing ``babyteach`` from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--steps",
            str(args.steps),
            "--block",
            str(args.block),
            "--batch",
            str(args.batch),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"measuring {src} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    rows = ["| method | tree | aten ops/step | host reads/step | step shapes | ms/step |", "|---|---|---|---|---|---|"]
    for method in METHODS:
        for tree, by_method in results.items():
            r = by_method[method]
            rows.append(
                f"| {method} | {tree} | {r['ops']:.0f} | {r['reads']:.1f} | {r['shapes']} | {r['ms_per_step']:.2f} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="also measure the package at this git revision (e.g. f0eb2eb)")
    parser.add_argument("--steps", type=int, default=12, help="optimiser steps per run (default: %(default)s)")
    parser.add_argument("--block", type=int, default=32, help="tokens per block (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=8, help="blocks per batch (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each tree; medians (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 6 steps, one repeat")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 6, 1
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(_measure(Path(tmp), args.steps, args.block, args.batch)))
        return
    trees = {"this tree": REPO / "src"}
    with tempfile.TemporaryDirectory() as tmp:
        if args.before:
            worktree = Path(tmp) / "before"
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.before],
                check=True,
                capture_output=True,
            )
            trees = {f"before ({args.before})": worktree / "src", **trees}
        try:
            runs: dict[str, list] = {name: [] for name in trees}
            for _ in range(args.repeats):  # alternate the trees so drifting load hits both
                for name, src in trees.items():
                    runs[name].append(_run_tree(src, args))
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
    results = {
        name: {
            method: {key: statistics.median(run[method][key] for run in values) for key in values[0][method]}
            for method in METHODS
        }
        for name, values in runs.items()
    }
    print(
        f"{args.steps} steps of {args.batch} × {args.block} tokens, models L1-H2-D32 and L1-H2-D16 (vocab 300), "
        f"1 thread, median of {args.repeats} run(s) per tree"
    )
    print(_table(results))


if __name__ == "__main__":
    main()
