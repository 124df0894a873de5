"""The unigram baseline: entropies pinned to hand-computed values on hand-written shards."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from babyteach.data.shards import offsets_file, tokens_file
from babyteach.data.tokenizer import SPECIAL_TOKENS
from babyteach.data.unigram import dev_counts, own_token_floor, token_counts, unigram_baseline
from babyteach.errors import InputError


def write_shards(root: Path, splits: dict[str, list[int]], vocab_size: int = 8) -> Path:
    """A shard folder whose splits each hold one line of the given ids."""
    root.mkdir()
    for split, ids in splits.items():
        np.save(tokens_file(root, split), np.array(ids, dtype=np.uint16))
        np.save(offsets_file(root, split), np.array([0, len(ids)], dtype=np.int64))
    meta = {
        "vocab_size": vocab_size,
        "dtype": "uint16",
        "special_tokens": {t: i for i, t in enumerate(SPECIAL_TOKENS)},
        "splits": {split: {} for split in splits},
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def test_entropy_and_smoothed_dev_cross_entropy_by_hand(tmp_path):
    # train: id 5 twice, id 6 once, id 7 once; non-special ids are 5, 6, 7 (0-4 are special)
    shards = write_shards(tmp_path / "s", {"train": [5, 5, 6, 7], "dev": [5, 6]})
    assert token_counts(shards, "train").tolist() == [0, 0, 0, 0, 0, 2, 1, 1]
    baseline = unigram_baseline(shards)
    # H = -(1/2 ln 1/2 + 2 · 1/4 ln 1/4) = 1.5 ln 2
    assert baseline.train_entropy == pytest.approx(1.5 * math.log(2), rel=1e-12)
    # add-one over the 3 non-special ids: q = (3, 2, 2) / 7; dev = [5, 6]
    assert baseline.dev_cross_entropy == pytest.approx(-(math.log(3 / 7) + math.log(2 / 7)) / 2, rel=1e-12)
    assert (baseline.train_tokens, baseline.dev_tokens) == (4, 2)


def test_a_dev_token_unseen_in_train_has_a_finite_cost(tmp_path):
    shards = write_shards(tmp_path / "s", {"train": [5, 5], "dev": [7]})
    baseline = unigram_baseline(shards)
    assert baseline.train_entropy == 0.0
    assert baseline.dev_cross_entropy == pytest.approx(-math.log(1 / 5), rel=1e-12)  # q = (3, 1, 1) / 5


def test_empty_split_is_an_input_error_naming_the_folder(tmp_path):
    shards = write_shards(tmp_path / "s", {"train": [5], "dev": []})
    with pytest.raises(InputError, match=str(shards)):
        unigram_baseline(shards)


def brute_force_floor(train: list[int], dev: list[int], ids: list[int]) -> float:
    """The own-token floor by enumeration of the corruption model: y ~ q (smoothed train unigram over
    ``ids``); shown id = <mask> (0.8), a uniform random id (0.1) or y (0.1); predictor p(y | shown)."""
    q = {i: (train.count(i) + 1) / (len(train) + len(ids)) for i in ids}
    joint: dict[tuple[object, int], float] = {}  # (shown, y) -> probability
    for y in ids:
        joint[("mask", y)] = joint.get(("mask", y), 0) + 0.8 * q[y]
        joint[(y, y)] = joint.get((y, y), 0) + 0.1 * q[y]
        for x in ids:
            joint[(x, y)] = joint.get((x, y), 0) + 0.1 * q[y] / len(ids)

    def posterior(shown: object, y: int) -> float:
        return joint.get((shown, y), 0) / sum(p for (s, _), p in joint.items() if s == shown)

    loss = 0.0
    for y in dev:  # expected loss over the corruption of each dev target
        loss -= 0.8 * math.log(posterior("mask", y)) + 0.1 * math.log(posterior(y, y))
        loss -= sum(0.1 / len(ids) * math.log(posterior(x, y)) for x in ids)
    return loss / len(dev)


def test_own_token_floor_equals_enumerating_the_corruption(tmp_path):
    train, dev = [5, 5, 6, 7, 7, 7, 5], [5, 6, 7, 7]
    shards = write_shards(tmp_path / "s", {"train": train, "dev": dev})
    floor = own_token_floor(shards)
    assert floor == pytest.approx(brute_force_floor(train, dev, [5, 6, 7]), rel=1e-12)
    assert floor < unigram_baseline(shards).dev_cross_entropy  # the shown token helps


def test_dev_blocks_restricts_the_dev_numbers_to_the_first_blocks(tmp_path):
    # one dev line 5 5 5 6 7 7 in blocks of 5: <s> 5 5 5 </s>, <s> 6 7 7 </s> (the specials are never counted)
    shards = write_shards(tmp_path / "s", {"train": [5, 5, 6, 7], "dev": [5, 5, 5, 6, 7, 7]})
    assert dev_counts(shards, 1, block_size=5).tolist() == [0, 0, 0, 0, 0, 3, 0, 0]
    first = unigram_baseline(shards, dev_blocks=1, block_size=5)
    assert first.dev_cross_entropy == pytest.approx(-math.log(3 / 7), rel=1e-12)  # q = (3, 2, 2) / 7
    assert first.dev_tokens == 3
    assert unigram_baseline(shards, dev_blocks=99, block_size=5).dev_cross_entropy == pytest.approx(
        unigram_baseline(shards).dev_cross_entropy, rel=1e-12
    )  # all blocks: the whole split
    assert own_token_floor(shards, dev_blocks=1, block_size=5) == pytest.approx(
        brute_force_floor([5, 5, 6, 7], [5, 5, 5], [5, 6, 7]), rel=1e-12
    )
