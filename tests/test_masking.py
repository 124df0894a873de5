"""MLM masking: 15 % of non-special tokens predicted, 80/10/10 corruption, reproducible."""

from __future__ import annotations

import pytest
import torch

from babyteach.data.masking import mask_tokens

SPECIAL = (0, 1, 2, 3, 4)
MASK = 4


def random_batch(vocab_size: int, shape=(64, 512), seed: int = 0) -> torch.Tensor:
    """Random ids with every special id sprinkled in (about 10 % of positions)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(len(SPECIAL), vocab_size, shape, generator=g)
    sprinkle = torch.rand(shape, generator=g) < 0.1
    ids[sprinkle] = torch.randint(0, len(SPECIAL), (int(sprinkle.sum()),), generator=g)
    return ids


def run(ids: torch.Tensor, vocab_size: int, seed: int = 1, mask_prob: float = 0.15):
    return mask_tokens(ids, torch.Generator().manual_seed(seed), mask_prob, MASK, vocab_size, SPECIAL)


def test_rates_follow_methods_md():
    vocab_size = 1000
    ids = random_batch(vocab_size)
    out = run(ids, vocab_size)
    eligible = ~torch.isin(ids, torch.tensor(SPECIAL))
    rate = len(out.positions) / int(eligible.sum())
    assert rate == pytest.approx(0.15, abs=0.01)
    new = out.input_ids.flatten()[out.positions]
    masked = (new == MASK).float().mean().item()
    unchanged = (new == out.targets).float().mean().item()
    replaced = ((new != MASK) & (new != out.targets)).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.02)
    assert unchanged == pytest.approx(0.1 + 0.1 / (vocab_size - 5), abs=0.015)
    assert replaced == pytest.approx(0.1 * (1 - 1 / (vocab_size - 5)), abs=0.015)


def test_specials_are_never_selected_and_targets_are_the_originals():
    ids = random_batch(1000)
    out = run(ids, 1000)
    assert not torch.isin(out.targets, torch.tensor(SPECIAL)).any()
    assert torch.equal(out.targets, ids.flatten()[out.positions])
    assert torch.equal(out.positions, torch.unique(out.positions))  # ascending, no repeats
    outside = torch.ones(ids.numel(), dtype=torch.bool)
    outside[out.positions] = False
    assert torch.equal(out.input_ids.flatten()[outside], ids.flatten()[outside])
    assert out.input_ids.shape == ids.shape and out.input_ids.dtype == ids.dtype


def test_random_replacements_never_draw_special_tokens():
    # With 8 ids of which 5 are special, drawing from the whole vocabulary would put
    # <s>/<pad>/</s>/<unk> into the input and inflate the <mask> share by 0.1 * 1/8.
    vocab_size = 8
    ids = random_batch(vocab_size, shape=(256, 512))
    out = run(ids, vocab_size)
    new = out.input_ids.flatten()[out.positions]
    assert not torch.isin(new, torch.tensor([0, 1, 2, 3])).any()
    assert (new == MASK).float().mean().item() == pytest.approx(0.8, abs=0.008)


def test_same_generator_state_same_result():
    ids = random_batch(1000, shape=(8, 64))
    a, b, c = run(ids, 1000, seed=7), run(ids, 1000, seed=7), run(ids, 1000, seed=8)
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.positions, b.positions)
    assert not torch.equal(a.positions, c.positions)


def test_input_is_not_modified():
    ids = random_batch(1000, shape=(8, 64))
    before = ids.clone()
    run(ids, 1000)
    assert torch.equal(ids, before)


def test_at_least_one_position_when_any_is_eligible():
    ids = torch.tensor([[0, 7, 8, 2], [0, 9, 2, 1]])
    for seed in range(20):
        out = run(ids, 100, seed=seed, mask_prob=0.001)
        assert len(out.positions) == 1 and out.positions.item() in (1, 2, 5)


def test_all_special_input_predicts_nothing():
    out = run(torch.tensor([[0, 1, 2, 3, 4]]), 100)
    assert out.positions.numel() == 0 and out.targets.numel() == 0


def test_mask_prob_must_be_a_probability():
    with pytest.raises(ValueError, match="mask_prob"):
        run(torch.tensor([[5, 6]]), 100, mask_prob=1.5)
