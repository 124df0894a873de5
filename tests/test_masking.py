"""MLM masking: k predicted positions per block among non-special tokens, 80/10/10 corruption,
a counter-based hash for every draw (pinned to a pure-Python reference), static shapes."""

from __future__ import annotations

import pytest
import torch

from babyteach.data.masking import (
    _mix32,
    mask_blocks,
    mask_key,
    predictions_per_block,
    replacement_ids,
    uniform_hash,
)

SPECIAL = (0, 1, 2, 3, 4)
MASK = 4


def random_batch(vocab_size: int, shape=(64, 128), seed: int = 0) -> torch.Tensor:
    """Blocks ``<s> … </s>`` of random ids with separators ``</s>`` sprinkled in (about 10 %)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(len(SPECIAL), vocab_size, shape, generator=g)
    ids[torch.rand(shape, generator=g) < 0.1] = 2
    ids[:, 0], ids[:, -1] = 0, 2
    return ids


def run(ids: torch.Tensor, vocab_size: int, index: int = 1, mask_prob: float = 0.15, first_row: int = 0):
    k = predictions_per_block(mask_prob, ids.shape[1] - 2)
    special = torch.tensor(SPECIAL)
    return mask_blocks(
        ids,
        mask_key(0, 0, index),
        k,
        special,
        replacement_ids(vocab_size, list(SPECIAL), ids.device),
        MASK,
        first_row=first_row,
    )


def reference_mix32(x: int) -> int:
    """lowbias32 in plain Python integers (the published constants 0x21f0aaad, 0x735a2d97)."""
    x ^= x >> 16
    x = (x * 0x21F0AAAD) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x735A2D97) & 0xFFFFFFFF
    return x ^ (x >> 15)


def test_hash_equals_a_pure_python_reference():
    values = [0, 1, 2, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xDEADBEEF, 0xFFFFFFFF, 123456789]
    got = _mix32(torch.tensor(values, dtype=torch.int64)).tolist()
    assert got == [reference_mix32(v) for v in values]
    key = mask_key(3, 0, 7)
    counters = torch.tensor([0, 5, 2**32 - 1], dtype=torch.int64)
    expected = [reference_mix32(reference_mix32(c ^ key[0]) ^ key[1]) for c in counters.tolist()]
    assert uniform_hash(key, counters).tolist() == expected
    assert len(set(uniform_hash(key, torch.arange(100_000)).tolist())) == 100_000  # a bijection: no ties


def test_predictions_per_block_give_the_masking_rate_on_average():
    assert predictions_per_block(0.15, 126) == 19  # round(18.9): blocks of 128 without separators
    assert predictions_per_block(0.15, 116.42) == 17  # round(17.46): the 10M mirror corpus at 128 tokens
    assert predictions_per_block(0.15, 2) == 1  # at least one
    with pytest.raises(ValueError, match="mask_prob"):
        predictions_per_block(1.5, 126)


def test_k_positions_per_row_never_special_targets_the_originals():
    ids = random_batch(1000)
    out = run(ids, 1000)
    k = predictions_per_block(0.15, 126)
    assert out.positions.shape == (64, k) and out.positions.dtype == torch.int64
    assert out.targets.shape == (64 * k,) and out.input_ids.shape == ids.shape and out.input_ids.dtype == ids.dtype
    assert torch.all(out.positions[:, 1:] > out.positions[:, :-1])  # ascending, no repeats
    assert not torch.isin(ids.gather(1, out.positions), torch.tensor(SPECIAL)).any()
    assert torch.equal(out.targets, ids.gather(1, out.positions).flatten())  # row-major
    outside = torch.ones_like(ids, dtype=torch.bool).scatter(1, out.positions, False)
    assert torch.equal(out.input_ids[outside], ids[outside])


def test_corruption_shares_follow_methods_md():
    vocab_size = 1000
    ids = random_batch(vocab_size, shape=(512, 128))
    out = run(ids, vocab_size)
    new = out.input_ids.gather(1, out.positions).flatten()
    masked = (new == MASK).float().mean().item()
    unchanged = (new == out.targets).float().mean().item()
    replaced = ((new != MASK) & (new != out.targets)).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.01)
    assert unchanged == pytest.approx(0.1 + 0.1 / (vocab_size - 5), abs=0.01)
    assert replaced == pytest.approx(0.1 * (1 - 1 / (vocab_size - 5)), abs=0.01)


def test_every_eligible_position_is_equally_likely():
    # over many batches each column is picked with probability k / (eligible tokens of its row)
    ids = random_batch(1000, shape=(8, 128))
    eligible = ~torch.isin(ids, torch.tensor(SPECIAL))
    counts = torch.zeros(ids.shape)
    for index in range(400):
        out = run(ids, 1000, index=index)
        counts += torch.zeros(ids.shape).scatter(1, out.positions, 1.0)
    expected = 400 * 19 / eligible.sum(dim=1, keepdim=True)  # (8, 1)
    rate = counts[eligible] / expected.expand_as(counts)[eligible]
    assert counts[~eligible].sum() == 0
    assert rate.mean().item() == pytest.approx(1.0, abs=1e-6)  # exactly k per row
    assert rate.min().item() > 0.55 and rate.max().item() < 1.5  # binomial spread of 400 draws at p ≈ 0.16


def test_random_replacements_never_draw_special_tokens():
    vocab_size = 8  # 5 special ids: a draw from the whole vocabulary would insert <s>/<pad>/</s>/<unk>
    ids = random_batch(vocab_size, shape=(256, 128))
    out = run(ids, vocab_size)
    new = out.input_ids.gather(1, out.positions).flatten()
    assert not torch.isin(new, torch.tensor([0, 1, 2, 3])).any()
    assert (new == MASK).float().mean().item() == pytest.approx(0.8, abs=0.01)


def test_draws_depend_only_on_key_and_global_row():
    ids = random_batch(1000, shape=(8, 64))
    a, b, c = run(ids, 1000, index=7), run(ids, 1000, index=7), run(ids, 1000, index=8)
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.positions, b.positions)
    assert not torch.equal(a.positions, c.positions)
    # a data-parallel process masks rows 4-7 alone exactly as they are masked in the whole batch
    top, bottom = run(ids[:4], 1000, index=7), run(ids[4:], 1000, index=7, first_row=4)
    assert torch.equal(torch.cat([top.input_ids, bottom.input_ids]), a.input_ids)
    assert torch.equal(torch.cat([top.targets, bottom.targets]), a.targets)


def test_input_is_not_modified():
    ids = random_batch(1000, shape=(8, 64))
    before = ids.clone()
    run(ids, 1000)
    assert torch.equal(ids, before)


def test_replacement_ids_exclude_the_special_ones():
    assert replacement_ids(8, list(SPECIAL), torch.device("cpu")).tolist() == [5, 6, 7]
    with pytest.raises(ValueError, match="every id"):
        replacement_ids(5, list(SPECIAL), torch.device("cpu"))
