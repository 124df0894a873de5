"""loss_by_corruption: the dev loss split by what a predicted position shows, and the context gain."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from babyteach.data.masking import DEV_STREAM, mask_blocks, mask_key, predictions_per_block, replacement_ids
from babyteach.data.shards import PackedBlocks, dev_sample, read_meta
from babyteach.data.tokenizer import MASK
from babyteach.data.unigram import smoothed_unigram
from babyteach.diagnostics import hidden_similarity, loss_by_corruption
from babyteach.models import build_model, masked_logits
from babyteach.train_config import TrainConfig
from train_helpers import BLOCK, TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_parts_average_to_the_masked_cross_entropy_of_the_same_masks(data):  # noqa: F811
    shards, _ = data
    meta = read_meta(shards)
    model = build_model(TINY, meta["vocab_size"], BLOCK, seed=3)
    split = loss_by_corruption(
        model, shards, TrainConfig(block_size=BLOCK, dev_blocks=8, batch_size=3, mask_prob=0.5, seed=7)
    )
    # the dev loss's blocks and masks by hand: the host reader at the spread sample, key (seed, DEV_STREAM, j) for
    # batch j of 3 blocks, k from the train split's predictable tokens, the head on a boolean mask
    losses, shown, targets = [], [], []
    dev, train = PackedBlocks(shards, "dev", BLOCK), PackedBlocks(shards, "train", BLOCK)
    eos, special = meta["special_tokens"]["</s>"], sorted(meta["special_tokens"].values())
    text = train.get_blocks(np.arange(len(train)))[:, 1:-1]
    k = predictions_per_block(0.5, float((text != eos).sum(axis=1).mean()))
    sample = dev_sample(len(dev), 8)
    model.eval()
    for j, first in enumerate(range(0, 8, 3)):
        ids = torch.from_numpy(dev.get_blocks(sample[first : first + 3]))
        batch = mask_blocks(
            ids,
            mask_key(7, DEV_STREAM, j),
            k,
            torch.tensor(special),
            replacement_ids(meta["vocab_size"], special, torch.device("cpu")),
            meta["special_tokens"][MASK],
        )
        chosen = torch.zeros_like(ids, dtype=torch.bool).scatter(1, batch.positions, True)  # (rows, seq)
        with torch.no_grad():
            logits = masked_logits(model, batch.input_ids, None, chosen)
        losses.append(F.cross_entropy(logits, batch.targets, reduction="none"))
        shown.append(batch.input_ids[chosen])
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
    split = loss_by_corruption(model, shards, TrainConfig(block_size=BLOCK, dev_blocks=8, batch_size=4))
    assert split.context_gain == pytest.approx(0.0, abs=1e-5)
    assert split.mask == pytest.approx(split.mask_reference, abs=1e-5)


def test_hidden_similarity_is_the_mean_cosine_of_distinct_positions(data):  # noqa: F811
    shards, _ = data
    meta = read_meta(shards)
    model = build_model(TINY, meta["vocab_size"], BLOCK, seed=1)
    similarities = hidden_similarity(model, shards, BLOCK, blocks=3)
    assert len(similarities) == TINY.layers + 1
    dev = PackedBlocks(shards, "dev", BLOCK)
    ids = torch.from_numpy(dev.get_blocks(dev_sample(len(dev), 3)))
    with torch.no_grad():
        last = model.eval().roberta(input_ids=ids).last_hidden_state  # (3, BLOCK, H)
    pairs = [
        float(F.cosine_similarity(last[b, i], last[b, j], dim=0))
        for b in range(3)
        for i in range(BLOCK)
        for j in range(BLOCK)
        if i != j
    ]
    assert similarities[-1] == pytest.approx(sum(pairs) / len(pairs), rel=1e-5)
