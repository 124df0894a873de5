"""One process of the data-parallel test (tests/test_distributed.py), started by torchrun.

Trains the runs of :data:`RUNS` on the given shards into ``<root>/<run>/{out,ckpt}``,
exactly as the single-process reference in the test does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch.distributed as dist

from babyteach.models import Architecture
from babyteach.train import TrainConfig, train

BLOCK = 16
ARCHS = {"a": Architecture(2, 2, 16), "b": Architecture(1, 2, 32)}
#: run name → (method, method options, training overrides); dropout off so the processes' draws do not matter
RUNS = {
    "baseline": ("baseline", {}, {"grad_accum": 2}),
    "dwml": ("dwml", {"weight_update_every": 2, "eta0": 2.0}, {}),
}


def run_config(**overrides) -> TrainConfig:
    """The training config of the test runs: 6 steps of 8 blocks, no dropout."""
    values = dict(
        token_budget=6 * 8 * BLOCK,
        block_size=BLOCK,
        batch_size=8,
        lr=3e-3,
        warmup_fraction=0.1,
        checkpoint_every=4,
        log_every=1,
        eval_every=None,
        dev_blocks=16,
        seed=0,
        dropout=0.0,
    )
    values.update(overrides)
    return TrainConfig(**values)


def train_all(shards: Path, tokenizer: Path, root: Path) -> None:
    """Train every run of :data:`RUNS` under ``root``."""
    for name, (method, options, overrides) in RUNS.items():
        train(
            method,
            ARCHS,
            shards,
            tokenizer,
            root / name / "out",
            root / name / "ckpt",
            run_config(**overrides),
            method_options=options,
        )


if __name__ == "__main__":
    # one process group for both runs: train() joins an existing group (and leaves it open);
    # re-creating the default group in one torchrun process can race on the rendezvous store
    dist.init_process_group("gloo")
    try:
        train_all(*map(Path, sys.argv[1:4]))
    finally:
        dist.destroy_process_group()
