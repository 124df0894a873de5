"""Shared helpers of the training tests: a tiny corpus with tokenizer and shards, and run shortcuts."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM

from babyteach.data.shards import write_shards
from babyteach.data.tokenizer import train_tokenizer
from babyteach.models import Architecture
from babyteach.train import TrainConfig, train
from babyteach.train_checkpoint import CHECKPOINT_FILE

TINY = Architecture(layers=2, heads=2, hidden=16)
SMALL = Architecture(layers=1, heads=2, hidden=32)
BLOCK = 16
SENTENCES = [
    "the cat sat on the mat .",
    "the dog sat on the rug .",
    "a bird flew over the house .",
    "the cat saw the dog and the bird .",
]


def tiny_corpus(root: Path) -> tuple[Path, Path]:
    """A tiny repetitive corpus under ``root``, its tokenizer (300 entries) and its shards: the
    ``data`` fixture of tests/conftest.py."""
    clean = root / "clean"
    clean.mkdir()
    (clean / "toy.train").write_text("\n".join(SENTENCES * 40) + "\n", encoding="utf-8")
    (clean / "toy.dev").write_text("\n".join(SENTENCES * 4) + "\n", encoding="utf-8")
    train_tokenizer(clean, root / "tokenizer", vocab_size=300)
    write_shards(clean, root / "tokenizer", root / "shards")
    return root / "shards", root / "tokenizer"


def config(**overrides) -> TrainConfig:
    """A short run on the tiny corpus (30 steps of 8 blocks), with ``overrides``."""
    values = dict(
        token_budget=30 * 8 * BLOCK,
        block_size=BLOCK,
        batch_size=8,
        lr=3e-3,
        warmup_fraction=0.1,
        checkpoint_every=100,
        log_every=1,
        eval_every=None,
        dev_blocks=16,
        seed=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


def run(
    data, tmp_path: Path, method: str, students: dict[str, Architecture], cfg: TrainConfig, tag: str = "run", **kwargs
) -> dict:
    """Train into ``tmp_path/tag/{out,ckpt}``; returns the summary."""
    shards, tokenizer = data
    return train(method, students, shards, tokenizer, tmp_path / tag / "out", tmp_path / tag / "ckpt", cfg, **kwargs)


def read_metrics(out_dir: Path) -> list[dict]:
    """The lines of a run's metrics.jsonl."""
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


def parameters_of(out: Path, name: str) -> dict[str, torch.Tensor]:
    """The parameters of saved model ``name`` of a run's output folder."""
    return dict(AutoModelForMaskedLM.from_pretrained(out / name).named_parameters())


def checkpoint_of(ckpt_dir: Path) -> Path:
    """The one run checkpoint under a ``ckpt_dir`` (``run-<hash>/checkpoint.pt``)."""
    (path,) = Path(ckpt_dir).glob(f"run-*/{CHECKPOINT_FILE}")
    return path
