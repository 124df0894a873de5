"""Masked-language-model corruption of token blocks, on the training device, with static shapes.

Every block of ``S`` tokens gets exactly ``k = predictions_per_block(S, mask_prob)`` predicted
positions, drawn uniformly without replacement among its non-special tokens (``<s>``, ``</s>``
and the other special ids are never predicted). That is BERT's own rule
(``create_pretraining_data.py``: ``num_to_predict = round(len(tokens) × masked_lm_prob)`` per
sequence) rather than a Bernoulli draw per token, and it gives every batch the same shape:
``(batch, k)`` positions, ``batch × k`` targets. A batch can then be built, masked and trained
on without ever asking the host how many positions were drawn (no ``nonzero``, no sync), and
captured by ``torch.compile`` or CUDA graphs. Of the selected positions 80 % become
``<mask>``, 10 % a random non-special token and 10 % stay unchanged, each position
independently (METHODS.md).

The random draws come from a counter-based hash (:func:`uniform_hash`), not from a
``torch.Generator``: draw ``c`` of key ``K`` is a fixed function of ``(K, c)`` computed with
integer tensor ops. So a block's mask depends only on (seed, stream, micro-batch index, its
row in the global batch), is bit-identical on CPU and CUDA, needs no random state in
checkpoints, and a data-parallel process can mask its own rows of the global batch alone::

    k = predictions_per_block(128, 0.15)                               # 19
    key = mask_key(seed=0, stream=TRAIN_STREAM, index=step)           # host ints, no tensor
    batch = mask_blocks(ids, key, k, special_ids, replacement_ids, mask_id=4, first_row=0)
    hidden = model.roberta(batch.input_ids).last_hidden_state           # (batch, S, H)
    rows = hidden.gather(1, batch.positions[..., None].expand(-1, -1, H)).flatten(0, 1)   # (batch·k, H)
    loss = cross_entropy(model.lm_head(rows), batch.targets)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

#: Shares of the selected positions replaced by ``<mask>``, by a random token; the rest stay.
MASK_SHARE = 0.8
RANDOM_SHARE = 0.1

#: Masking streams (part of the key): train batches, the dev loss, DWML's outer-step dev batches.
TRAIN_STREAM, DEV_STREAM, OUTER_STREAM = 0, 1, 2

#: What each draw of a position is for (part of the key), so the three draws are independent.
_SELECT, _ACTION, _REPLACEMENT = 0, 1, 2

_LOW32 = 0xFFFFFFFF


@dataclass(frozen=True)
class MaskedBatch:
    """A corrupted batch and what to predict, all of fixed shape for a given batch size."""

    #: The corrupted copy of the input, ``(batch, S)``.
    input_ids: torch.Tensor
    #: Column of each predicted position in its row, ascending within the row, ``(batch, k)`` int64.
    positions: torch.Tensor
    #: Original ids at ``positions``, row-major, ``(batch · k,)``.
    targets: torch.Tensor


def predictions_per_block(block_size: int, mask_prob: float) -> int:
    """``k = max(1, round(mask_prob × (block_size − 2)))``: the predicted positions per block.

    ``block_size − 2`` is the text between ``<s>`` and ``</s>``. A block whose text holds line
    separators (``</s>``, never predicted) has fewer candidates, so slightly more than
    ``mask_prob`` of its text tokens are predicted (see :func:`min_candidates_check`).
    """
    if not 0.0 < mask_prob < 1.0:
        raise ValueError(f"mask_prob must lie in (0, 1), got {mask_prob}")
    if block_size < 3:
        raise ValueError(f"block_size must be at least 3 (<s>, one token, </s>), got {block_size}")
    return max(1, round(mask_prob * (block_size - 2)))


def mask_key(seed: int, stream: int, index: int) -> tuple[int, int]:
    """The 64-bit hash key (two 32-bit words) of one micro-batch: seed, stream and index.

    Computed on the host from plain integers (BLAKE2b), so keys of different batches are
    unrelated however close their numbers are.
    """
    digest = hashlib.blake2b(f"{seed}/{stream}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")


def _mul32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """``(x × constant) mod 2³²`` for int64 ``x`` in ``[0, 2³²)``, without int64 overflow.

    The product is split at bit 16 so every partial product stays below 2⁴⁸.
    """
    low, high = x & 0xFFFF, x >> 16
    return ((((high * constant) & 0xFFFF) << 16) + low * constant) & _LOW32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer finaliser ("lowbias32", C. Wellons): every input bit affects every output bit."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x21F0AAAD)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x735A2D97)
    return x ^ (x >> 15)


def uniform_hash(key: tuple[int, int], purpose: int, counters: torch.Tensor) -> torch.Tensor:
    """32-bit hash values ``(counters.shape)``, int64 in ``[0, 2³²)``, of ``(key, purpose, counter)``.

    ``counters`` are non-negative int64 below 2³²; the same inputs give the same values on
    every device.
    """
    k0, k1 = key
    salted = _mix32((counters ^ k0) & _LOW32)
    return _mix32(salted ^ ((k1 + 0x9E3779B9 * (purpose + 1)) & _LOW32))


def _unit_float(hashed: torch.Tensor) -> torch.Tensor:
    """The top 24 bits of 32-bit hash values as floats in ``[0, 1)`` (exact in float32)."""
    return (hashed >> 8).to(torch.float32) * (1.0 / (1 << 24))


def mask_blocks(
    input_ids: torch.Tensor,
    key: tuple[int, int],
    k: int,
    special_ids: torch.Tensor,
    replacement_ids: torch.Tensor,
    mask_id: int,
    first_row: int = 0,
) -> MaskedBatch:
    """Select ``k`` predicted positions per row among the non-special tokens and corrupt them 80/10/10.

    ``input_ids`` ``(batch, S)`` are rows ``first_row …`` of a global micro-batch with hash
    ``key`` (:func:`mask_key`); ``special_ids`` and ``replacement_ids`` (the non-special ids
    random replacements are drawn from) are int64 tensors on ``input_ids``' device. The
    positions are the ``k`` eligible columns with the smallest hash values (uniform without
    replacement); a row with fewer than ``k`` eligible tokens would predict special tokens,
    so the caller guarantees it cannot happen (:func:`min_candidates_check`). No host
    synchronisation, and every output shape depends only on the input's shape and ``k``.
    ``input_ids`` is not modified.
    """
    batch, length = input_ids.shape
    device = input_ids.device
    counters = (torch.arange(batch * length, device=device, dtype=torch.int64) + first_row * length).view(batch, length)
    # (batch, S): hash × S + column is unique within a row, so the selection has no ties and is the same
    # on every device; special tokens sort last
    scores = uniform_hash(key, _SELECT, counters) * length + torch.arange(length, device=device)
    scores = scores.masked_fill(torch.isin(input_ids, special_ids), torch.iinfo(torch.int64).max)
    positions = torch.topk(scores, k, dim=1, largest=False, sorted=False).indices.sort(dim=1).values  # (batch, k)
    targets = input_ids.gather(1, positions)  # (batch, k)
    picked = counters.gather(1, positions)  # (batch, k): the positions' global counters
    action = _unit_float(uniform_hash(key, _ACTION, picked))
    which = (_unit_float(uniform_hash(key, _REPLACEMENT, picked)) * replacement_ids.numel()).long()
    random_ids = replacement_ids[which.clamp_(max=replacement_ids.numel() - 1)]
    new_ids = torch.where(action < MASK_SHARE, torch.full_like(targets, mask_id), targets)
    new_ids = torch.where((action >= MASK_SHARE) & (action < MASK_SHARE + RANDOM_SHARE), random_ids, new_ids)
    corrupted = input_ids.scatter(1, positions, new_ids)
    return MaskedBatch(input_ids=corrupted, positions=positions, targets=targets.flatten())


def replacement_ids(vocab_size: int, special_ids: list[int], device: torch.device) -> torch.Tensor:
    """The non-special ids of ``[0, vocab_size)``, ascending, int64 on ``device``: what a random
    replacement may draw (drawing a special id would put ``<pad>`` or ``</s>`` into the text)."""
    keep = torch.ones(vocab_size, dtype=torch.bool)
    keep[[i for i in special_ids if i < vocab_size]] = False
    ids = torch.nonzero(keep).flatten()
    if ids.numel() == 0:
        raise ValueError("every id of the vocabulary is special: no random replacement is possible")
    return ids.to(device)
