"""Device-resident micro-batches: the blocks of the host reader, the epoch order, each process's rows
of the global batch, static shapes, and a clear error when a block has too few predictable tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from babyteach.data.batches import DeviceSplit, MicroBatches
from babyteach.data.masking import TRAIN_STREAM
from babyteach.data.shards import PackedBlocks
from babyteach.data.tokenizer import SPECIAL_TOKENS
from babyteach.errors import InputError
from test_shards import write_toy_shards

CPU = torch.device("cpu")
SPECIAL = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
LINES = [[10], [], [11, 12, 13, 14, 15, 16, 17], [18, 19]] + [[20 + i % 50] * (1 + i % 7) for i in range(60)]


@pytest.fixture
def shards(tmp_path):
    return write_toy_shards(tmp_path / "s", LINES)


@pytest.mark.parametrize("block_size", [4, 5, 8, 16])
def test_gathered_blocks_equal_the_host_reader(shards, block_size):
    split = DeviceSplit(shards, "train", block_size, CPU)
    reference = PackedBlocks(shards, "train", block_size)
    assert len(split) == len(reference)
    every = torch.arange(len(split))
    assert np.array_equal(split.gather(every).numpy(), reference.get_blocks(np.arange(len(reference))))
    separators = (reference.get_blocks(np.arange(len(reference)))[:, 1:-1] == SPECIAL["</s>"]).sum(axis=1)
    assert np.array_equal(split.candidates, block_size - 2 - separators)


def test_micro_batches_follow_the_epoch_order_and_skip_the_partial_batch(shards):
    split = DeviceSplit(shards, "train", 8, CPU)
    batches = MicroBatches(split, seed=3, batch_size=4, stream=TRAIN_STREAM, k=1, special=SPECIAL, vocab_size=100)
    per_epoch = len(split) // 4
    for index in (0, 1, per_epoch - 1, per_epoch, 2 * per_epoch + 1):
        epoch, within = divmod(index, per_epoch)
        expected = split.blocks.order(3, epoch)[within * 4 : (within + 1) * 4]
        assert batches.indices(index).tolist() == expected.tolist()
    batch = batches[5]
    assert batch.input_ids.shape == (4, 8) and batch.positions.shape == (4, 1) and batch.targets.shape == (4,)


def test_k_gives_the_masking_rate_of_the_predictable_tokens_on_average(shards):
    split = DeviceSplit(shards, "train", 8, CPU)
    mean = float(split.candidates.mean())  # predictable tokens per block: 6 minus its separators
    assert mean < 6 and split.predictions(0.5) == round(0.5 * mean)


def test_each_process_builds_its_rows_of_the_global_batch(shards):
    split = DeviceSplit(shards, "train", 8, CPU)
    args = dict(seed=0, batch_size=4, stream=TRAIN_STREAM, k=2, special=SPECIAL, vocab_size=100)
    whole = MicroBatches(split, **args)[2]
    parts = [MicroBatches(split, **args, rank=rank, world_size=2)[2] for rank in (0, 1)]
    assert torch.equal(torch.cat([p.input_ids for p in parts]), whole.input_ids)
    assert torch.equal(torch.cat([p.positions for p in parts]), whole.positions)
    assert torch.equal(torch.cat([p.targets for p in parts]), whole.targets)


def test_a_block_with_too_few_predictable_tokens_is_an_input_error(tmp_path):
    # many empty lines: the first block's text is `10 </s> </s> </s> </s> </s>`, one predictable token
    shards = write_toy_shards(tmp_path / "s", [[10], [], [], [], [], [11]] + [[12, 13, 14, 15, 16, 17]] * 4)
    split = DeviceSplit(shards, "train", 8, CPU)
    assert split.candidates[0] == 1
    with pytest.raises(
        InputError,
        match=r"block 0 of the 'train' split holds only 1 predictable token .*"
        r"training\.mask_prob",
    ):
        MicroBatches(split, seed=0, batch_size=2, stream=TRAIN_STREAM, k=2, special=SPECIAL, vocab_size=100)
