"""Masked micro-batches built on the training device: the token stream lives there, blocks are
gathered and masked there, with static shapes and without host synchronisation.

A split's packed stream (:class:`babyteach.data.shards.PackedBlocks`: lines joined by ``</s>``,
cut into blocks ``<s> … </s>``) is copied to the device once (int32; the 10M track's train split
is about 30 MB). Micro-batch ``i`` of a run is then a pure function of ``i``: epoch ``e`` visits
the blocks in ``PackedBlocks.order(seed, e)`` (one permutation per epoch, all the run needs copied
to the device at the start), ``batch_size`` at a time, the epoch's last partial batch skipped; the
blocks are gathered with one indexing kernel and masked by :func:`babyteach.data.masking.mask_blocks`
with the key ``(seed, stream, i)``. A resumed run continues at exactly the next micro-batch, and a
data-parallel process builds only its own rows of the global micro-batch, masked exactly as a
single process would mask them::

    split = DeviceSplit(shard_dir, "train", block_size=128, device=device)
    batches = MicroBatches(split, seed=0, batch_size=32, stream=TRAIN_STREAM, k=split.predictions(0.15),
                           special=meta["special_tokens"], vocab_size=meta["vocab_size"], count=steps)
    batch = batches[index]     # MaskedBatch: input_ids (32, 128), positions (32, 17), targets (544,)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from babyteach.data.masking import DEV_STREAM, MaskedBatch, Masker, mask_key, predictions_per_block, replacement_ids
from babyteach.data.shards import PackedBlocks, dev_sample
from babyteach.data.tokenizer import MASK
from babyteach.errors import InputError


class DeviceSplit:
    """A split's packed blocks, resident on ``device``; :meth:`gather` builds blocks there."""

    def __init__(self, shard_dir: Path, split: str, block_size: int, device: torch.device) -> None:
        self.blocks = PackedBlocks(shard_dir, split, block_size)
        self.shard_dir, self.split, self.block_size, self.device = Path(shard_dir), split, block_size, device
        self.span = block_size - 2
        stream = self.blocks.packed_text()
        #: Non-separator tokens of each block's text, ``(n_blocks,)``: the candidates for prediction.
        self.candidates = (
            self.span - (stream.reshape(len(self.blocks), self.span) == self.blocks.eos_id).sum(axis=1)
            if len(self.blocks)
            else np.zeros(0, dtype=np.int64)
        )
        self.tokens = torch.from_numpy(stream).to(device)  # (n_blocks · span,) int32
        self._columns = torch.arange(self.span, device=device)  # (span,)

    def __len__(self) -> int:
        return len(self.blocks)

    def gather(self, indices: torch.Tensor) -> torch.Tensor:
        """Blocks ``indices`` (int64 on the device, ``(n,)``) as int64 ids ``(n, block_size)``."""
        text = self.tokens[indices[:, None] * self.span + self._columns].long()  # (n, span)
        bos = torch.full_like(text[:, :1], self.blocks.bos_id)
        eos = torch.full_like(text[:, :1], self.blocks.eos_id)
        return torch.cat([bos, text, eos], dim=1)  # (n, block_size)

    def predictions(self, mask_prob: float) -> int:
        """The predicted positions per block that give ``mask_prob`` of this split's predictable tokens
        on average (:func:`babyteach.data.masking.predictions_per_block`); every stream of a run uses
        the train split's."""
        if not len(self):
            raise InputError(f"{self.shard_dir}: the '{self.split}' split has no block of {self.block_size} tokens")
        return predictions_per_block(mask_prob, float(self.candidates.mean()))

    def check_candidates(self, k: int, key: str = "training.mask_prob") -> None:
        """Every block must hold at least ``k`` predictable tokens (``k`` positions are masked per block).

        Only a text of many empty lines can fail this (each line has at least one token and one
        separator, so at least half of a block's text is predictable); the error names the block.
        """
        if len(self) and int(self.candidates.min()) < k:
            block = int(self.candidates.argmin())
            count = int(self.candidates[block])
            raise InputError(
                f"{self.shard_dir}: block {block} of the '{self.split}' split holds only {count} predictable "
                f"token{'s' if count != 1 else ''} (the rest are line separators), fewer than the {k} positions "
                "masked per block; "
                f"lower {key} or remove empty lines from the corpus and rerun the tokenize_corpus step"
            )


class MicroBatches:
    """Micro-batch ``index`` of a split, masked, on the device (this process's rows of it).

    ``batch_size`` is the global micro-batch; process ``rank`` of ``world_size`` takes rows
    ``rank · b … (rank + 1) · b − 1`` with ``b = batch_size / world_size``, masked as those rows of
    the global batch with ``k`` predicted positions each (:meth:`DeviceSplit.predictions`), so every
    process sees exactly ``b × k`` predicted positions. The epoch orders
    of the first ``count`` micro-batches are copied to the device at once (8 bytes a block and epoch),
    so those batches dispatch the same ops every time; a batch beyond them copies its epoch's order
    then.
    """

    def __init__(
        self,
        split: DeviceSplit,
        seed: int,
        batch_size: int,
        stream: int,
        k: int,
        special: Mapping[str, int],
        vocab_size: int,
        rank: int = 0,
        world_size: int = 1,
        count: int = 0,
    ) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by {world_size} processes")
        self.split, self.seed, self.batch_size, self.stream = split, seed, batch_size, stream
        self.batches_per_epoch = len(split) // batch_size
        self.rows = batch_size // world_size
        self.first_row = rank * self.rows
        self.k = k
        split.check_candidates(k)
        device = split.device
        special_ids = sorted(int(i) for i in special.values())
        self.masker = Masker(
            self.rows,
            split.block_size,
            self.k,
            torch.tensor(special_ids, dtype=torch.int64, device=device),
            replacement_ids(vocab_size, special_ids, device),
            int(special[MASK]),
            self.first_row,
        )
        epochs = -(-count // self.batches_per_epoch) if count and self.batches_per_epoch else 0
        self._orders = [self._order_of(epoch) for epoch in range(epochs)]

    def _order_of(self, epoch: int) -> torch.Tensor:
        return torch.from_numpy(self.split.blocks.order(self.seed, epoch)).to(self.split.device)

    def indices(self, index: int) -> torch.Tensor:
        """The block indices of this process's rows of micro-batch ``index``, ``(rows,)`` on the device."""
        epoch, within = divmod(index, self.batches_per_epoch)
        while epoch >= len(self._orders):
            self._orders.append(self._order_of(len(self._orders)))
        first = within * self.batch_size + self.first_row
        return self._orders[epoch][first : first + self.rows]

    def __getitem__(self, index: int) -> MaskedBatch:
        ids = self.split.gather(self.indices(index))  # (rows, block_size)
        return self.mask(ids, index)

    def mask(self, ids: torch.Tensor, index: int) -> MaskedBatch:
        """Mask ``ids`` (this process's rows, or fewer) as micro-batch ``index`` of this stream."""
        return self.masker(ids, mask_key(self.seed, self.stream, index))


def dev_loss_batches(
    split: DeviceSplit, k: int, seed: int, batch_size: int, dev_blocks: int, special: Mapping[str, int], vocab_size: int
) -> list[MaskedBatch]:
    """The dev loss's batches: ``dev_blocks`` blocks of the dev ``split`` spread over it
    (:func:`babyteach.data.shards.dev_sample`), ``batch_size`` at a time (the last shorter), batch
    ``j`` masked with key ``(seed, DEV_STREAM, j)`` and ``k`` positions per block (the train
    split's, :meth:`DeviceSplit.predictions`). The same blocks and masks for every model and every
    call with the same arguments: the training loop's dev loss and :mod:`babyteach.diagnostics`."""
    blocks = torch.from_numpy(dev_sample(len(split), dev_blocks)).to(split.device)
    if not len(blocks):
        raise InputError(
            f"{split.shard_dir}: the '{split.split}' split has no block of {split.block_size} tokens; "
            "the dev loss needs one"
        )
    masking = MicroBatches(split, seed, batch_size, DEV_STREAM, k, special, vocab_size)
    return [
        masking.mask(split.gather(blocks[first : first + batch_size]), number)
        for number, first in enumerate(range(0, len(blocks), batch_size))
    ]
