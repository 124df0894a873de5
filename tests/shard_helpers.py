"""Reading token shards back in tests, independently of :mod:`babyteach.data.shards`' reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


def decode_split(shard_dir: Path, split: str, tokenizer_dir: Path) -> list[str]:
    """A split's text lines decoded from its raw shard files (``np.load`` and the saved ``tokenizer.json``):
    what :func:`babyteach.data.shards.write_shards` must give back exactly."""
    tokenizer = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    tokens = np.load(Path(shard_dir) / f"{split}.tokens.npy")
    offsets = np.load(Path(shard_dir) / f"{split}.offsets.npy")
    lines = [tokens[start:end].tolist() for start, end in zip(offsets[:-1], offsets[1:], strict=True)]
    return tokenizer.decode_batch(lines, skip_special_tokens=False)
