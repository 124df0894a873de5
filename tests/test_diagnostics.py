"""loss_by_corruption: the dev loss split by what a predicted position shows, and the context gain."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from babyteach.data.masking import mask_tokens
from babyteach.data.shards import PackedBlocks, read_meta
from babyteach.data.tokenizer import MASK
from babyteach.data.unigram import smoothed_unigram
from babyteach.diagnostics import hidden_similarity, loss_by_corruption
from babyteach.models import build_model, masked_logits
from train_helpers import BLOCK, TINY, data  # noqa: F401  (the tiny corpus fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_parts_average_to_the_masked_cross_entropy_of_the_same_masks(data):  # noqa: F811
    shards, _ = data
    meta = read_meta(shards)
    model = build_model(TINY, meta["vocab_size"], BLOCK, seed=3)
    split = loss_by_corruption(model, shards, BLOCK, dev_blocks=8, batch_size=3, mask_prob=0.5, seed=7)
    # the same draws by hand: one generator over the batches of 3 blocks
    generator, losses, shown, targets = torch.Generator().manual_seed(7), [], [], []
    dev = PackedBlocks(shards, "dev", BLOCK)
    model.eval()
    for first in range(0, 8, 3):
        ids = torch.from_numpy(dev.get_blocks(np.arange(first, min(first + 3, 8))))
        batch = mask_tokens(ids, generator, 0.5, meta["special_tokens"][MASK], meta["vocab_size"],
                            sorted(meta["special_tokens"].values()))
        positions = torch.zeros(ids.numel(), dtype=torch.bool)
        positions[batch.positions] = True
        with torch.no_grad():
            logits = masked_logits(model, batch.input_ids, None, positions.view(ids.shape))
        losses.append(F.cross_entropy(logits, batch.targets, reduction="none"))
        shown.append(batch.input_ids.flatten()[batch.positions])
        targets.append(batch.targets)
    losses, shown, targets = torch.cat(losses), torch.cat(shown), torch.cat(targets)
    at_mask = shown == meta["special_tokens"][MASK]
    assert min(split.counts.values()) > 0  # every kind occurs, so every mean below is pinned
    assert split.overall == pytest.approx(float(losses.mean()), rel=1e-6)
    assert split.mask == pytest.approx(float(losses[at_mask].mean()), rel=1e-6)
    assert split.kept == pytest.approx(float(losses[shown == targets].mean()), rel=1e-6)
    assert split.counts["mask"] + split.counts["random"] + split.counts["kept"] == len(targets)
    weighted = sum(getattr(split, kind) * split.counts[kind] for kind in ("mask", "random", "kept"))
    assert weighted / len(targets) == pytest.approx(split.overall, rel=1e-9)
    q = smoothed_unigram(shards)
    assert split.mask_reference == pytest.approx(float(-np.log(q[targets[at_mask].numpy()]).mean()), rel=1e-9)


def test_a_model_that_outputs_the_unigram_gains_nothing_from_context(data):  # noqa: F811
    shards, _ = data
    meta = read_meta(shards)
    model = build_model(TINY, meta["vocab_size"], BLOCK, seed=0)
    q = smoothed_unigram(shards)
    with torch.no_grad():  # no input word embeddings and a zero tied decoder: the logits are the bias alone
        model.roberta.embeddings.word_embeddings.weight.zero_()
        model.lm_head.bias.copy_(torch.from_numpy(np.log(np.maximum(q, 1e-30))))
    split = loss_by_corruption(model, shards, BLOCK, dev_blocks=8, batch_size=4)
    assert split.context_gain == pytest.approx(0.0, abs=1e-5)
    assert split.mask == pytest.approx(split.mask_reference, abs=1e-5)


def test_hidden_similarity_is_the_mean_cosine_of_distinct_positions(data):  # noqa: F811
    shards, _ = data
    meta = read_meta(shards)
    model = build_model(TINY, meta["vocab_size"], BLOCK, seed=1)
    similarities = hidden_similarity(model, shards, BLOCK, blocks=3)
    assert len(similarities) == TINY.layers + 1
    ids = torch.from_numpy(PackedBlocks(shards, "dev", BLOCK).get_blocks(np.arange(3)))
    with torch.no_grad():
        last = model.eval().roberta(input_ids=ids).last_hidden_state  # (3, BLOCK, H)
    pairs = [float(F.cosine_similarity(last[b, i], last[b, j], dim=0))
             for b in range(3) for i in range(BLOCK) for j in range(BLOCK) if i != j]
    assert similarities[-1] == pytest.approx(sum(pairs) / len(pairs), rel=1e-5)
