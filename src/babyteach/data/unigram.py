"""The unigram baseline of a tokenized corpus: the masked-LM loss a model gets without context.

A masked LM that ignores its input can do no better on the predicted positions than the
token frequencies of the training data. Its loss is the yardstick of "has it learned
anything from context": a run whose dev loss stays near it has learned the unigram
distribution and little else (the plateau of issue 12)::

    from babyteach.data.unigram import unigram_baseline
    baseline = unigram_baseline(Path("results/2024-10M/shards"))
    baseline.train_entropy        # nats: H of the train tokens' frequencies
    baseline.dev_cross_entropy    # nats: dev tokens under the train frequencies (add-one smoothed)
    own_token_floor(shards)       # nats: best dev loss from the own (corrupted) input token alone

Only text tokens count: the shards hold no special tokens, and the ``</s>`` separators the
block reader inserts between lines are never predicted (:mod:`babyteach.data.masking`).

Compare like with like: ``train()``'s dev loss is measured on ``training.dev_blocks`` dev blocks
spread over the split (:func:`babyteach.data.shards.dev_sample`; until 2026-11-30 the *first*
blocks, all from one domain: 6.54 nats of unigram cross-entropy on the 10M corpus against the
split's 7.17, docs/RECIPE.md). ``dev_blocks=N`` computes the dev numbers on exactly those
blocks' tokens::

    unigram_baseline(shards, dev_blocks=256).dev_cross_entropy
    own_token_floor(shards, dev_blocks=256)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from babyteach.data.masking import MASK_SHARE, RANDOM_SHARE
from babyteach.data.shards import PackedBlocks, _load_split, dev_sample, read_meta
from babyteach.errors import InputError


@dataclass(frozen=True)
class UnigramBaseline:
    """Context-free losses of a shard folder, in nats per predicted token."""

    #: Entropy of the train split's token frequencies (maximum likelihood): the train loss of
    #: the best context-free predictor.
    train_entropy: float
    #: Mean ``−log q(token)`` over the dev split's tokens, ``q`` the train frequencies with one
    #: added to every non-special id (so a dev token unseen in train has a finite cost): the dev
    #: loss of that predictor, what a run's dev loss is compared with.
    dev_cross_entropy: float
    train_tokens: int
    dev_tokens: int


def token_counts(shard_dir: Path, split: str) -> np.ndarray:
    """How often each id of the vocabulary occurs in ``split``'s tokens, ``(vocab_size,)`` int64."""
    meta = read_meta(shard_dir)
    tokens, _ = _load_split(shard_dir, split, meta)
    return np.bincount(np.asarray(tokens), minlength=int(meta["vocab_size"])).astype(np.int64)


def dev_counts(shard_dir: Path, dev_blocks: int | None = None, block_size: int = 128) -> np.ndarray:
    """Token counts of the dev split, or of the ``dev_blocks`` blocks of ``block_size`` of ``train()``'s
    dev loss (:func:`babyteach.data.shards.dev_sample`; special ids, never predicted, not counted),
    ``(vocab_size,)``."""
    if dev_blocks is None:
        return token_counts(shard_dir, "dev")
    meta = read_meta(shard_dir)
    dev = PackedBlocks(shard_dir, "dev", block_size)
    ids = dev.get_blocks(dev_sample(len(dev), dev_blocks)).ravel()
    counts = np.bincount(ids, minlength=int(meta["vocab_size"])).astype(np.int64)
    counts[sorted(int(i) for i in meta["special_tokens"].values())] = 0
    return counts


def smoothed_unigram(shard_dir: Path) -> np.ndarray:
    """The train split's token frequencies with one added to every non-special id, normalised,
    ``(vocab_size,)`` float64; special ids (never a target) get 0. The context-free predictor whose dev
    loss is :attr:`UnigramBaseline.dev_cross_entropy`."""
    return _smoothed(token_counts(shard_dir, "train"), read_meta(shard_dir))


def _smoothed(train: np.ndarray, meta: dict) -> np.ndarray:
    """:func:`smoothed_unigram` from the train split's token counts (the one place of the smoothing)."""
    smoothed = train.astype(np.float64) + 1.0
    smoothed[sorted(int(i) for i in meta["special_tokens"].values())] = 0.0  # never a target
    return smoothed / smoothed.sum()


def unigram_baseline(shard_dir: Path, dev_blocks: int | None = None, block_size: int = 128) -> UnigramBaseline:
    """The :class:`UnigramBaseline` of a shard folder with ``train`` and ``dev`` splits; the dev numbers
    over the whole split, or over the dev loss's ``dev_blocks`` blocks (:func:`dev_counts`)."""
    shard_dir = Path(shard_dir)
    meta = read_meta(shard_dir)
    train, dev = token_counts(shard_dir, "train"), dev_counts(shard_dir, dev_blocks, block_size)
    if train.sum() == 0 or dev.sum() == 0:
        raise InputError(f"{shard_dir}: the train and dev splits need at least one token for a unigram baseline")
    p = train / train.sum()
    seen = p > 0
    train_entropy = float(-(p[seen] * np.log(p[seen])).sum())
    q = _smoothed(train, meta)  # the train tokens are counted once
    if np.any(dev[q == 0]):
        raise InputError(f"{shard_dir}: the dev tokens contain special ids; rerun the tokenize_corpus step")
    used = dev > 0
    dev_cross_entropy = float(-(dev[used] * np.log(q[used])).sum() / dev.sum())
    return UnigramBaseline(train_entropy, dev_cross_entropy, int(train.sum()), int(dev.sum()))


def own_token_floor(
    shard_dir: Path,
    mask_share: float = MASK_SHARE,
    random_share: float = RANDOM_SHARE,
    dev_blocks: int | None = None,
    block_size: int = 128,
) -> float:
    """The dev masked-LM loss of the best predictor that sees only its own (corrupted) input token, nats.

    Of the predicted positions, ``mask_share`` show ``<mask>``, ``random_share`` a random
    non-special id (uniform over the R non-special ids) and the rest the true token
    (:mod:`babyteach.data.masking`). Without context, the best a model can do is the unigram
    ``q`` (train frequencies, add-one smoothed as in :func:`unigram_baseline`) at a ``<mask>``,
    and at a shown id ``x`` the Bayes posterior ``p(y | x) = (q(x)·[y = x] + q(y)/R) / (q(x) + 1/R)``
    (it was kept with probability ∝ ``q(x)``, drawn at random with probability ∝ ``1/R``). Its
    dev loss is this floor, 0.54–0.66 nat under the unigram cross-entropy on the BabyLM slices: a
    run whose dev loss is under it has learned from the context (one above it may have too: the
    floor assumes a perfect copy; :mod:`babyteach.diagnostics` separates the two). ``dev_blocks``:
    over the dev loss's blocks only, as :func:`unigram_baseline`.
    """
    shard_dir = Path(shard_dir)
    meta = read_meta(shard_dir)
    train, dev = token_counts(shard_dir, "train"), dev_counts(shard_dir, dev_blocks, block_size)
    if train.sum() == 0 or dev.sum() == 0:
        raise InputError(f"{shard_dir}: the train and dev splits need at least one token for the own-token floor")
    smoothed = _smoothed(train, meta)
    ordinary = smoothed > 0  # the non-special ids
    if np.any(dev[~ordinary]):
        raise InputError(f"{shard_dir}: the dev tokens contain special ids; rerun the tokenize_corpus step")
    q = smoothed[ordinary]  # (R,): smoothed train unigram over the non-special ids
    d = dev[ordinary] / dev.sum()  # dev frequencies of the targets
    r = float(ordinary.sum())
    at_mask = -(d * np.log(q)).sum()
    kept = -(d * np.log(q * (1 + 1 / r) / (q + 1 / r))).sum()
    # random: y ~ d, x uniform over the R ids; loss = log(q(x) + 1/R) − log(q(y)/R + q(y)·[x = y])
    mean_log_norm = np.log(q + 1 / r).mean()
    at_random = mean_log_norm - (d * ((r - 1) / r * np.log(q / r) + np.log(q * (1 + 1 / r)) / r)).sum()
    keep_share = 1.0 - mask_share - random_share
    return float(mask_share * at_mask + keep_share * kept + random_share * at_random)
