"""Token shards: exact round trip, file format, packed blocks, epoch order, rank sharding, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from babyteach.data.shards import (
    PackedBlocks,
    dev_sample,
    epoch_order,
    offsets_file,
    token_dtype,
    tokens_file,
    write_shards,
)
from babyteach.data.tokenizer import SPECIAL_TOKENS, train_tokenizer
from babyteach.errors import InputError
from shard_helpers import decode_split

# Lines as a cleaner leaves them: no newline inside, no empty line; unicode, punctuation,
# odd spacing and text that looks like special tokens must survive the round trip.
DOMAINS = {
    "zeta": [
        "Héllo, wörld! ☃ — “quoted” ‘text’…",
        "  leading spaces and trailing  ",
        "tabs\tinside\tthe line",
        "emoji 🙂🙃 and CJK 漢字かな, ümlaut ß",
    ],
    "alpha": [
        "The cat sat on the mat.",
        "literal <mask> and </s> and <s><pad><unk> stay text",
        "a",
        "numbers 3.14159 and (brackets) [x] {y} 100%",
        "\u00a0non-breaking\u00a0space and zero\u200bwidth",
    ],
}
DEV = {"alpha": ["The dog sat.", "dev line two ünïcode"]}


def write_clean_dir(root: Path) -> Path:
    root.mkdir(parents=True)
    for domain, lines in DOMAINS.items():
        (root / f"{domain}.train").write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    for domain, lines in DEV.items():
        (root / f"{domain}.dev").write_text("\n".join(lines), encoding="utf-8")  # no final newline
    return root


def expected_lines(split_domains: dict[str, list[str]], repeat: int) -> list[str]:
    return [line for domain in sorted(split_domains) for line in split_domains[domain] * repeat]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, dict]:
    root = tmp_path_factory.mktemp("shards")
    clean = write_clean_dir(root / "clean")
    tokenizer = root / "tokenizer"
    train_tokenizer(clean, tokenizer, vocab_size=300, min_frequency=2)
    shards = root / "shards"
    meta = write_shards(clean, tokenizer, shards, batch_lines=4)  # several batches per file
    return clean, tokenizer, shards, meta


# -- writer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "domains", "repeat"), [("train", DOMAINS, 3), ("dev", DEV, 1)])
def test_round_trip_gives_back_the_clean_lines(corpus, split, domains, repeat):
    _, tokenizer, shards, _ = corpus
    assert decode_split(shards, split, tokenizer) == expected_lines(domains, repeat)


def test_file_format_and_meta(corpus):
    _, _, shards, meta = corpus
    assert json.loads((shards / "meta.json").read_text()) == meta
    assert meta["vocab_size"] == 300 and meta["dtype"] == "uint16"
    assert meta["special_tokens"] == {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    train = meta["splits"]["train"]
    tokens = np.load(tokens_file(shards, "train"), mmap_mode="r")
    offsets = np.load(offsets_file(shards, "train"))
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.uint16 and tokens.ndim == 1
    assert offsets.dtype == np.int64 and len(offsets) == train["n_lines"] + 1 == 3 * 9 + 1
    assert offsets[0] == 0 and offsets[-1] == len(tokens) == train["n_tokens"] and np.all(np.diff(offsets) > 0)
    assert train["domains"]["alpha"]["lines"] == [0, 15] and train["domains"]["zeta"]["lines"] == [15, 27]
    assert train["domains"]["zeta"]["tokens"] == [int(offsets[15]), int(offsets[27])]
    assert train["words"] == sum(len(line.split()) for line in expected_lines(DOMAINS, 3))
    assert train["words"] == train["domains"]["alpha"]["words"] + train["domains"]["zeta"]["words"]
    assert meta["splits"]["dev"]["n_lines"] == 2 and "test" not in meta["splits"]
    assert sorted(p.name for p in shards.iterdir()) == [
        "dev.offsets.npy",
        "dev.tokens.npy",
        "meta.json",
        "train.offsets.npy",
        "train.tokens.npy",
    ]


def test_text_that_looks_special_is_encoded_as_text(corpus):
    _, _, shards, _ = corpus
    tokens = np.load(tokens_file(shards, "train"))
    assert not np.isin(tokens, np.arange(len(SPECIAL_TOKENS))).any()


def test_batch_size_does_not_change_the_shards(corpus, tmp_path):
    clean, tokenizer, shards, meta = corpus
    again = write_shards(clean, tokenizer, tmp_path / "shards", batch_lines=10000)
    assert again == meta
    for name in ("train.tokens.npy", "train.offsets.npy"):
        assert (tmp_path / "shards" / name).read_bytes() == (shards / name).read_bytes()


def test_token_dtype_fits_the_vocabulary():
    assert token_dtype(300) == np.uint16
    assert token_dtype(50265) == np.uint16
    assert token_dtype(65536) == np.uint16  # ids 0..65535
    assert token_dtype(65537) == np.uint32


def test_missing_split_is_an_input_error(corpus, tmp_path):
    clean, tokenizer, _, _ = corpus
    with pytest.raises(InputError, match=r"'<domain>\.test'"):
        write_shards(clean, tokenizer, tmp_path / "shards", splits=("train", "test"))


def test_invalid_utf8_names_file_and_line_and_leaves_no_output(corpus, tmp_path):
    _, tokenizer, _, _ = corpus
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.train").write_bytes(b"fine\n")
    (clean / "b.train").write_bytes(b"fine\nalso fine\nbroken \xff byte\n")
    with pytest.raises(InputError, match=r"b\.train:3:"):
        write_shards(clean, tokenizer, tmp_path / "shards", splits=("train",))
    assert list(tmp_path.iterdir()) == [clean]  # no output, no temporary left behind


# -- packed blocks --------------------------------------------------------------------------


def write_toy_shards(root: Path, lines: list[list[int]]) -> Path:
    """A shard folder holding the given lines of ids (split 'train'), written by hand."""
    root.mkdir()
    np.save(tokens_file(root, "train"), np.array([i for line in lines for i in line], dtype=np.uint16))
    np.save(offsets_file(root, "train"), np.cumsum([0] + [len(line) for line in lines]).astype(np.int64))
    meta = {
        "vocab_size": 100,
        "dtype": "uint16",
        "special_tokens": {t: i for i, t in enumerate(SPECIAL_TOKENS)},
        "splits": {"train": {}},
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def test_blocks_are_packed_across_lines_with_separators(tmp_path):
    shards = write_toy_shards(tmp_path / "s", [[10, 11, 12], [13], [14, 15]])
    # stream: 10 11 12 </s> 13 </s> 14 15   (8 positions)
    blocks = PackedBlocks(shards, "train", block_size=5)  # 3 stream positions per block
    assert len(blocks) == 2 and blocks.dropped_tokens == 2
    assert blocks.get_blocks([0, 1]).tolist() == [[0, 10, 11, 12, 2], [0, 2, 13, 2, 2]]
    blocks = PackedBlocks(shards, "train", block_size=4)
    assert len(blocks) == 4 and blocks.dropped_tokens == 0
    assert [blocks[i].tolist() for i in range(4)] == [[0, 10, 11, 2], [0, 12, 2, 2], [0, 13, 2, 2], [0, 14, 15, 2]]
    assert blocks[-1].tolist() == blocks[3].tolist() and blocks[0].dtype == np.int64
    with pytest.raises(IndexError):
        blocks[4]


def test_empty_and_long_lines_pack_correctly(tmp_path):
    shards = write_toy_shards(tmp_path / "s", [[10], [], [11, 12, 13, 14, 15, 16, 17]])
    # stream: 10 </s> </s> 11 12 13 14 15 16 17   (10 positions)
    blocks = PackedBlocks(shards, "train", block_size=6)
    assert blocks.get_blocks(range(2)).tolist() == [[0, 10, 2, 2, 11, 2], [0, 12, 13, 14, 15, 2]]
    assert blocks.dropped_tokens == 2


def test_blocks_cover_the_real_stream_in_order(corpus):
    _, _, shards, _ = corpus
    tokens = np.load(tokens_file(shards, "train"))
    offsets = np.load(offsets_file(shards, "train"))
    lines = [tokens[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
    stream = lines[0] + [i for line in lines[1:] for i in [2, *line]]
    blocks = PackedBlocks(shards, "train", block_size=16)
    all_blocks = blocks.get_blocks(np.arange(len(blocks)))
    assert (all_blocks[:, 0] == 0).all() and (all_blocks[:, -1] == 2).all()
    assert all_blocks[:, 1:-1].ravel().tolist() + stream[len(stream) - blocks.dropped_tokens :] == stream
    assert blocks.dropped_tokens < 14


def test_epoch_order_is_a_seeded_permutation():
    a = epoch_order(50, seed=1, epoch=0)
    assert sorted(a.tolist()) == list(range(50))
    assert np.array_equal(a, epoch_order(50, seed=1, epoch=0))
    assert not np.array_equal(a, epoch_order(50, seed=2, epoch=0))
    assert not np.array_equal(a, epoch_order(50, seed=1, epoch=1))


def test_ranks_partition_the_order_with_equal_counts():
    full = epoch_order(100, seed=3, epoch=2)
    parts = [epoch_order(100, seed=3, epoch=2, rank=r, world_size=3) for r in range(3)]
    assert [len(p) for p in parts] == [33, 33, 33]
    assert sorted(np.concatenate(parts).tolist()) == sorted(full[:99].tolist())
    assert np.array_equal(parts[1], full[1:99:3])
    with pytest.raises(ValueError):
        epoch_order(100, seed=3, epoch=2, rank=3, world_size=3)


def test_resuming_gives_the_remaining_batches(corpus):
    _, _, shards, _ = corpus
    blocks = PackedBlocks(shards, "train", block_size=8)
    order = blocks.order(seed=0, epoch=0)
    full = list(blocks.batches(order, batch_size=4))
    assert all(b.dtype == torch.int64 and b.shape[1] == 8 for b in full)
    assert [len(b) for b in full] == [4] * (len(order) // 4) + ([len(order) % 4] if len(order) % 4 else [])
    resumed = list(blocks.batches(order, batch_size=4, start=8))
    assert len(resumed) == len(full) - 2
    assert all(torch.equal(x, y) for x, y in zip(resumed, full[2:]))
    assert torch.equal(full[1][2], torch.from_numpy(blocks[int(order[6])]))
    assert all(len(b) == 4 for b in blocks.batches(order, batch_size=4, drop_last=True))


def test_dev_sample_spreads_the_dev_loss_blocks_over_the_split():
    # every domain of a split laid out domain after domain is in the sample, in proportion
    assert dev_sample(10, 4).tolist() == [0, 2, 5, 7]  # ⌊i · 10 / 4⌋
    assert dev_sample(3, 8).tolist() == [0, 1, 2]  # a short split: all its blocks
    assert dev_sample(0, 8).tolist() == []
    assert dev_sample(1000, 256).max() > 990  # reaches the split's end, not its first 256 blocks
