"""Masked-language-model corruption of token blocks, on the training device, with static shapes.

Every block gets exactly ``k`` predicted positions (:func:`predictions_per_block`: ``mask_prob``
of the mean number of predictable tokens per block), drawn uniformly without replacement among
its non-special tokens (``<s>``, ``</s>`` and the other special ids are never predicted). A fixed
count per sequence is BERT's own rule (``create_pretraining_data.py``: ``num_to_predict =
round(len(tokens) × masked_lm_prob)``) rather than a Bernoulli draw per token (RoBERTa's; the
same rate on average, without its spread from block to block), and it gives every batch the same shape:
``(batch, k)`` positions, ``batch × k`` targets. A batch can then be built, masked and trained
on without ever asking the host how many positions were drawn (no ``nonzero``, no sync), and
captured by ``torch.compile`` or CUDA graphs. Of the selected positions 80 % become
``<mask>``, 10 % a random non-special token and 10 % stay unchanged, each position
independently (docs/METHODS.md, "The MLM batch").

The random draws come from a counter-based hash (:func:`uniform_hash`), not from a
``torch.Generator``: draw ``c`` of key ``K`` is a fixed function of ``(K, c)`` computed with
integer tensor ops. So a block's mask depends only on (seed, stream, micro-batch index, its
row in the global batch), is bit-identical on CPU and CUDA, needs no random state in
checkpoints, and a data-parallel process can mask its own rows of the global batch alone::

    k = predictions_per_block(0.15, candidates=116.4)                  # 17
    key = mask_key(seed=0, stream=TRAIN_STREAM, index=step)           # host ints, no tensor
    batch = mask_blocks(ids, key, k, special_ids, replacement_ids, mask_id=4, first_row=0)
    # (MicroBatches keeps one Masker per stream and calls it: masker(ids, key))
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

#: Draws per position: its selection score, its corruption (mask / random / keep), its random id.
_SELECT, _ACTION, _REPLACEMENT = 0, 1, 2
_DRAWS = 3

_LOW32 = 0xFFFFFFFF
#: The corruption draw is 24 bits: below _MASK_BELOW → <mask>, below _RANDOM_BELOW → a random id.
_MASK_BELOW = round(MASK_SHARE * (1 << 24))
_RANDOM_BELOW = round((MASK_SHARE + RANDOM_SHARE) * (1 << 24))


@dataclass(frozen=True)
class MaskedBatch:
    """A corrupted batch and what to predict, all of fixed shape for a given batch size."""

    #: The corrupted copy of the input, ``(batch, S)``.
    input_ids: torch.Tensor
    #: Column of each predicted position in its row, ascending within the row, ``(batch, k)`` int64.
    positions: torch.Tensor
    #: Original ids at ``positions``, row-major, ``(batch · k,)``.
    targets: torch.Tensor


def predictions_per_block(mask_prob: float, candidates: float) -> int:
    """``k = max(1, round(mask_prob × candidates))``: the predicted positions per block.

    ``candidates`` is the mean number of predictable tokens per block of the training split
    (its text minus the ``</s>`` line separators; :meth:`babyteach.data.batches.DeviceSplit.predictions`),
    so that on average ``mask_prob`` of the predictable tokens are predicted, as with a Bernoulli
    draw per token (RoBERTa); every block gets the same ``k``, as in BERT's own data pipeline
    (``create_pretraining_data.py``: ``round(len(tokens) × masked_lm_prob)`` per sequence). On
    the 10M mirror corpus at 128 tokens: 116.4 predictable tokens per block, ``k = 17``, 14.6 %.
    """
    if not 0.0 < mask_prob < 1.0:
        raise ValueError(f"mask_prob must lie in (0, 1), got {mask_prob}")
    if not candidates >= 1:
        raise ValueError(f"a block needs at least one predictable token, got {candidates}")
    return max(1, round(mask_prob * candidates))


def mask_key(seed: int, stream: int, index: int) -> tuple[int, int]:
    """The 64-bit hash key (two 32-bit words) of one micro-batch: seed, stream and index.

    Computed on the host from plain integers (BLAKE2b), so keys of different batches are
    unrelated however close their numbers are.
    """
    digest = hashlib.blake2b(f"{seed}/{stream}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer finaliser ("lowbias32", C. Wellons) on int64 values in ``[0, 2³²)``.

    A bijection of 32-bit values in which every input bit affects every output bit. Both
    multipliers are below 2³¹, so every product stays below 2⁶³: no int64 overflow anywhere,
    and the same integers on every device.
    """
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & _LOW32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & _LOW32
    return x ^ (x >> 15)


def uniform_hash(key: tuple[int, int], counters: torch.Tensor) -> torch.Tensor:
    """32-bit hash values ``(counters.shape)``, int64 in ``[0, 2³²)``, of ``(key, counter)``.

    ``counters`` are distinct non-negative int64 below 2³² (the draw's place in the global batch);
    each round is a bijection, so distinct counters of one key give distinct values. The same
    inputs give the same values on every device.
    """
    k0, k1 = key
    return _mix32(_mix32(counters ^ k0) ^ k1)


class Masker:
    """MLM corruption of ``(rows, S)`` id blocks that are rows ``first_row …`` of a global batch.

    Holds what every call reuses, on the device: the special ids, the ids a random replacement
    draws from, and each position's draw counters (3 per position: selection, corruption,
    replacement; fixed by the row's place in the global batch). A call is then a fixed sequence of
    tensor ops on the device: no host synchronisation, and output shapes that depend only on the
    input's shape and ``k``.
    """

    def __init__(
        self,
        rows: int,
        length: int,
        k: int,
        special_ids: torch.Tensor,
        replacement_ids: torch.Tensor,
        mask_id: int,
        first_row: int = 0,
    ) -> None:
        if not 1 <= k <= length:
            raise ValueError(f"k must lie in [1, {length}], got {k}")
        if (first_row + rows) * length * _DRAWS > _LOW32:
            raise ValueError(
                f"a global batch of {first_row + rows} rows × {length} tokens exceeds the 32-bit draw counters"
            )
        device = special_ids.device
        self.k, self.length, self.mask_id = k, length, mask_id
        self.special_ids, self.replacement_ids = special_ids, replacement_ids
        first = first_row * length * _DRAWS
        self.counters = torch.arange(first, first + rows * length * _DRAWS, device=device).view(rows, length, _DRAWS)
        self.columns = torch.arange(length, device=device)  # (S,)

    def __call__(self, input_ids: torch.Tensor, key: tuple[int, int]) -> MaskedBatch:
        """Select ``k`` predicted positions per row among the non-special tokens and corrupt them 80/10/10.

        The positions are the ``k`` eligible columns with the smallest selection draws (uniform
        without replacement); a row with fewer than ``k`` eligible tokens would predict special
        tokens, so the caller guarantees it cannot happen
        (:meth:`babyteach.data.batches.DeviceSplit.check_candidates`). ``input_ids`` is not modified.
        """
        rows = input_ids.shape[0]
        draws = uniform_hash(key, self.counters[:rows])  # (rows, S, 3)
        # draw × S + column is unique within a row, so the selection has no ties and is the same on every
        # device; special tokens sort last
        scores = draws[..., _SELECT] * self.length + self.columns
        scores = scores.masked_fill(torch.isin(input_ids, self.special_ids), torch.iinfo(torch.int64).max)
        positions = (
            torch.topk(scores, self.k, dim=1, largest=False, sorted=False).indices.sort(dim=1).values
        )  # (rows, k)
        targets = input_ids.gather(1, positions)  # (rows, k)
        picked = draws[..., _ACTION:].gather(1, positions[..., None].expand(-1, -1, _DRAWS - 1)) >> 8  # (rows, k, 2)
        action, which = picked[..., 0], picked[..., 1]  # 24-bit uniform integers
        random_ids = self.replacement_ids[(which * self.replacement_ids.numel()) >> 24]  # uniform index < numel
        new_ids = torch.where(
            action < _MASK_BELOW, self.mask_id, torch.where(action < _RANDOM_BELOW, random_ids, targets)
        )
        corrupted = input_ids.scatter(1, positions, new_ids)
        return MaskedBatch(input_ids=corrupted, positions=positions, targets=targets.flatten())


def mask_blocks(
    input_ids: torch.Tensor,
    key: tuple[int, int],
    k: int,
    special_ids: torch.Tensor,
    replacement_ids: torch.Tensor,
    mask_id: int,
    first_row: int = 0,
) -> MaskedBatch:
    """:class:`Masker` in one call: ``input_ids`` ``(rows, S)`` are rows ``first_row …`` of a global
    micro-batch with hash ``key`` (:func:`mask_key`); ``special_ids`` and ``replacement_ids`` are
    int64 tensors on ``input_ids``' device."""
    rows, length = input_ids.shape
    return Masker(rows, length, k, special_ids, replacement_ids, mask_id, first_row)(input_ids, key)


def replacement_ids(vocab_size: int, special_ids: list[int], device: torch.device) -> torch.Tensor:
    """The non-special ids of ``[0, vocab_size)``, ascending, int64 on ``device``: what a random
    replacement may draw (drawing a special id would put ``<pad>`` or ``</s>`` into the text)."""
    keep = torch.ones(vocab_size, dtype=torch.bool)
    keep[[i for i in special_ids if i < vocab_size]] = False
    ids = torch.nonzero(keep).flatten()
    if ids.numel() == 0:
        raise ValueError("every id of the vocabulary is special: no random replacement is possible")
    return ids.to(device)
