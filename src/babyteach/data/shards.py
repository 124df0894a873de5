"""Token shards: the cleaned text encoded once into flat binary arrays, and the MLM block reader.

Writing (one call per corpus)::

    from babyteach.data.shards import write_shards
    meta = write_shards(Path("results/2024-10M/clean"), Path("results/2024-10M/tokenizer"),
                        Path("results/2024-10M/shards"))

Shard folder format (``np.save`` files, so ``np.load(path, mmap_mode="r")`` maps them)::

    <split>.tokens.npy    1-D uint16 (vocab <= 65536) or uint32: the token ids of every line of
                          the split, no special tokens, lines concatenated in sorted domain
                          order and file order
    <split>.offsets.npy   1-D int64, length n_lines + 1: line k is tokens[offsets[k]:offsets[k+1]]
    meta.json             format_version, vocab_size, dtype, special_tokens (token -> id), and
                          per split: n_lines, n_tokens, words (str.split count) and per domain
                          its line range, token range and words ([start, end) ranges)

Reading fixed-length training blocks, packed across lines (see :class:`PackedBlocks`)::

    blocks = PackedBlocks(shard_dir, "train", block_size=128)
    order = blocks.order(seed=0, epoch=0, rank=rank, world_size=world_size)
    for batch in blocks.batches(order, batch_size=32, start=resume_position):
        ...  # torch.LongTensor (32, 128)
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from babyteach.data.tokenizer import BOS, EOS, SPECIAL_TOKENS, load_tokenizer
from babyteach.errors import InputError
from babyteach.io import atomic_path, read_json, write_json_atomic

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_FILE = "meta.json"


def tokens_file(shard_dir: Path, split: str) -> Path:
    """Path of a split's token array."""
    return Path(shard_dir) / f"{split}.tokens.npy"


def offsets_file(shard_dir: Path, split: str) -> Path:
    """Path of a split's line-offset array."""
    return Path(shard_dir) / f"{split}.offsets.npy"


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned little-endian dtype that holds every id below ``vocab_size``."""
    if vocab_size <= 2**16:
        return np.dtype("<u2")
    if vocab_size <= 2**32:
        return np.dtype("<u4")
    raise ValueError(f"vocabulary of {vocab_size} entries does not fit in uint32 token ids")


# --------------------------------------------------------------------------------------------
# Writing


def _read_lines(path: Path) -> Iterator[str]:
    """The lines of a clean text file, without their ``\\n`` (nothing else is stripped)."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield raw.rstrip(b"\n").decode("utf-8")
            except UnicodeDecodeError as err:
                raise InputError(
                    f"{path}:{number}: not valid UTF-8 ({err.reason} at byte {err.start}); "
                    "re-run the cleaning step, which normalises the text"
                ) from None


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _split_files(clean_dir: Path, split: str) -> list[Path]:
    files = sorted(p for p in clean_dir.glob(f"*.{split}") if p.is_file())
    if not files:
        raise InputError(
            f"{clean_dir}: no '<domain>.{split}' files; the clean folder must hold every split "
            "that is tokenized (run the cleaning step first)"
        )
    return files


def _encode_split(
    tokenizer: Tokenizer, files: list[Path], tokens_path: Path, dtype: np.dtype, batch_lines: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Encode ``files`` in batches, streaming ids to ``tokens_path`` (.npy); return offsets and stats."""
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # fast: no offsets
    raw_path = tokens_path.with_name(tokens_path.name + ".raw")
    lengths: list[np.ndarray] = []
    domains: dict[str, dict[str, list[int] | int]] = {}
    n_lines = n_tokens = words = 0
    with open(raw_path, "wb") as raw:
        for path in files:
            domain_start = (n_lines, n_tokens, words)
            for lines in _chunks(_read_lines(path), batch_lines):
                ids = [encoding.ids for encoding in encode(lines, add_special_tokens=False)]
                batch_lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
                batch_tokens = int(batch_lengths.sum())
                np.fromiter(chain.from_iterable(ids), dtype=dtype, count=batch_tokens).tofile(raw)
                lengths.append(batch_lengths)
                n_lines += len(lines)
                n_tokens += batch_tokens
                words += sum(len(line.split()) for line in lines)
            domains[path.stem] = {
                "lines": [domain_start[0], n_lines],
                "tokens": [domain_start[1], n_tokens],
                "words": words - domain_start[2],
            }
            log.info("%s: %d lines, %d tokens", path.name, n_lines - domain_start[0], n_tokens - domain_start[1])
    # Prefix the streamed ids with an .npy header now that their number is known.
    with open(tokens_path, "wb") as out, open(raw_path, "rb") as raw:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n_tokens,)}
        np.lib.format.write_array_header_1_0(out, header)
        shutil.copyfileobj(raw, out, length=16 << 20)
    raw_path.unlink()
    offsets = np.zeros(n_lines + 1, dtype=np.int64)
    if lengths:
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
    stats = {"n_lines": n_lines, "n_tokens": n_tokens, "words": words, "domains": domains}
    return offsets, stats


def write_shards(
    clean_dir: Path,
    tokenizer_dir: Path,
    out_dir: Path,
    splits: tuple[str, ...] = ("train", "dev"),
    batch_lines: int = 10000,
) -> dict[str, Any]:
    """Encode each split of ``clean_dir`` with the tokenizer into a shard folder ``out_dir``.

    Every ``<domain>.<split>`` file is read in sorted domain order, ``batch_lines`` lines per
    tokenizer call, without special tokens per line; text that looks like a special token
    (``"<mask>"``) is encoded as ordinary text, so special ids occur only where the reader
    puts them. ``out_dir`` is written atomically. Returns the content of ``meta.json``.
    """
    clean_dir, out_dir = Path(clean_dir), Path(out_dir)
    if batch_lines < 1:
        raise InputError(f"shards.encode_batch_lines: {batch_lines} must be at least 1")
    files = {split: _split_files(clean_dir, split) for split in splits}
    tokenizer = load_tokenizer(tokenizer_dir)
    tokenizer.encode_special_tokens = True
    vocab_size = tokenizer.get_vocab_size()
    dtype = token_dtype(vocab_size)
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "vocab_size": vocab_size,
        "dtype": dtype.name,
        "special_tokens": {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS},
        "splits": {},
    }
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for split in splits:
            offsets, stats = _encode_split(tokenizer, files[split], tokens_file(tmp, split), dtype, batch_lines)
            np.save(offsets_file(tmp, split), offsets)
            meta["splits"][split] = stats
            log.info("%s: %d lines, %d tokens, %d words", split, stats["n_lines"], stats["n_tokens"], stats["words"])
        write_json_atomic(tmp / META_FILE, meta)
    return meta


# --------------------------------------------------------------------------------------------
# Reading


#: What to do about a damaged shard folder.
_REMAKE = "delete the shard folder and rerun the tokenize_corpus step"


def read_meta(shard_dir: Path) -> dict[str, Any]:
    """The ``meta.json`` of a shard folder; a missing, damaged or other-version file is an InputError."""
    path = Path(shard_dir) / META_FILE
    meta = read_json(path, _REMAKE, missing="shard metadata not found; run the tokenize_corpus step first")
    version = meta.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise InputError(f"{path}: shard format version {version!r}, this code reads {FORMAT_VERSION}; {_REMAKE}")
    special = meta.get("special_tokens")
    if not (
        _is_count(meta.get("vocab_size"))
        and isinstance(special, dict)
        and all(_is_count(special.get(token)) for token in SPECIAL_TOKENS)
        and isinstance(meta.get("splits"), dict)
    ):
        raise InputError(
            f"{path}: incomplete shard metadata (needs vocab_size, the special token ids and the splits); {_REMAKE}"
        )
    return meta


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _load_array(path: Path, mmap: bool = False) -> np.ndarray:
    """A 1-D shard array (memory-mapped with ``mmap``); a missing or damaged file is an InputError."""
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: shard file missing; {_REMAKE}") from None
    except (OSError, ValueError, EOFError) as err:  # truncated, garbled, not .npy
        raise InputError(f"{path}: not a readable shard ({err}); {_REMAKE}") from None
    if array.ndim != 1:
        raise InputError(f"{path}: expected a 1-D array, found shape {array.shape}; {_REMAKE}")
    return array


def _load_split(shard_dir: Path, split: str, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A split's token ids (memory-mapped) and line offsets, checked to fit each other."""
    shard_dir = Path(shard_dir)
    if split not in meta["splits"]:
        raise InputError(f"{shard_dir}: no '{split}' split in the shards (have {sorted(meta['splits'])})")
    tokens = _load_array(tokens_file(shard_dir, split), mmap=True)
    offsets = _load_array(offsets_file(shard_dir, split))
    if offsets[0] != 0 or offsets[-1] != len(tokens) or np.any(np.diff(offsets) < 0):
        raise InputError(
            f"{shard_dir}: the '{split}' line offsets do not fit its {len(tokens)} tokens (offsets run from "
            f"{offsets[0]} to {offsets[-1]}); {_REMAKE}"
        )
    return tokens, offsets


def dev_sample(n_blocks: int, count: int) -> np.ndarray:
    """The blocks of the dev loss: ``min(count, n_blocks)`` block indices spread evenly over a split
    of ``n_blocks`` (block ``⌊i · n_blocks / count⌋`` for i = 0 … count − 1), ascending.

    Spread, not the first ``count``: the dev split is laid out domain after domain, and its first
    256 blocks are all transcribed speech (on the 10M corpus their unigram cross-entropy is 6.54
    nats against the split's 7.17), so a curve on them would measure one domain. The same sample
    in every run, every evaluation and every yardstick (:mod:`babyteach.data.unigram`).
    """
    count = min(count, n_blocks)
    return (np.arange(count, dtype=np.int64) * n_blocks) // max(count, 1)


def epoch_order(n_blocks: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
    """Block indices rank ``rank`` of ``world_size`` visits in ``epoch``, reproducible from ``seed``.

    One permutation of all blocks per (seed, epoch) — ``np.random.default_rng([seed, epoch])`` —
    is cut to a multiple of ``world_size`` (at most ``world_size - 1`` blocks are skipped this
    epoch); rank r takes every ``world_size``-th block of it from position r, so the ranks
    partition it with equal counts.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in range for world_size {world_size}")
    permutation = np.random.default_rng([seed, epoch]).permutation(n_blocks)
    used = (n_blocks // world_size) * world_size
    return permutation[rank:used:world_size]


class PackedBlocks:
    """Fixed-length MLM blocks ``<s> … </s>`` packed from a split's token stream.

    The stream is the split's lines joined with ``</s>`` as separator. With
    ``span = block_size - 2``, block ``i`` is ``<s>`` + ``stream[i*span:(i+1)*span]`` + ``</s>``;
    every block is full and the tail of the stream shorter than ``span`` is dropped
    (:attr:`dropped_tokens`). Blocks are computed from the memory-mapped shard on demand, so
    memory does not grow with the corpus.
    """

    def __init__(self, shard_dir: Path, split: str, block_size: int = 128):
        if block_size < 3:
            raise InputError(
                f"model.block_size: {block_size} leaves no room for text between <s> and </s>; use 3 or more"
            )
        meta = read_meta(shard_dir)
        self.split = split
        self.block_size = block_size
        self.bos_id = int(meta["special_tokens"][BOS])
        self.eos_id = int(meta["special_tokens"][EOS])
        self.tokens, offsets = _load_split(shard_dir, split, meta)
        self._offsets = offsets
        n_lines = len(offsets) - 1
        self._line_offsets = offsets[:-1]  # first token of each line in `tokens`
        self._line_lengths = np.diff(offsets)
        self._line_starts = offsets[:-1] + np.arange(n_lines)  # first token of each line in the stream
        #: Length of the packed stream: all tokens plus one separator between consecutive lines.
        self.stream_length = int(offsets[-1]) + max(n_lines - 1, 0)
        span = block_size - 2
        self.n_blocks = self.stream_length // span
        #: Stream positions at the end that fill no complete block.
        self.dropped_tokens = self.stream_length - self.n_blocks * span

    def __len__(self) -> int:
        return self.n_blocks

    def __getitem__(self, index: int) -> np.ndarray:
        """Block ``index`` as int64 ids, shape ``(block_size,)``."""
        if not -self.n_blocks <= index < self.n_blocks:
            raise IndexError(f"block {index} out of range for {self.n_blocks} blocks")
        return self.get_blocks([index % self.n_blocks])[0]

    def stream(self, positions: np.ndarray) -> np.ndarray:
        """Ids at the given positions of the packed stream (any shape), as int64."""
        positions = np.asarray(positions, dtype=np.int64)
        line = np.searchsorted(self._line_starts, positions, side="right") - 1
        within = positions - self._line_starts[line]
        is_text = within < self._line_lengths[line]
        out = np.full(positions.shape, self.eos_id, dtype=np.int64)
        out[is_text] = self.tokens[(self._line_offsets[line] + within)[is_text]]
        return out

    def get_blocks(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Blocks ``indices`` stacked, int64, shape ``(len(indices), block_size)``."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.n_blocks):
            raise IndexError(f"block indices must lie in [0, {self.n_blocks})")
        span = self.block_size - 2
        blocks = np.empty((len(indices), self.block_size), dtype=np.int64)
        blocks[:, 0] = self.bos_id
        blocks[:, -1] = self.eos_id
        blocks[:, 1:-1] = self.stream(indices[:, None] * span + np.arange(span))  # (n, span)
        return blocks

    def packed_text(self) -> np.ndarray:
        """The text of every block (without its ``<s>``/``</s>``) as one int32 array of
        ``len(self) × (block_size − 2)`` ids: block ``i``'s text is ``[i·span, (i+1)·span)``.

        The whole stream at once (4 bytes a token), for readers that keep it in memory, e.g. on
        the training device (:class:`babyteach.data.batches.DeviceSplit`).
        """
        span = self.block_size - 2
        tokens = np.asarray(self.tokens, dtype=np.int32)
        # one separator before every line but the first (two in a row around an empty line)
        stream = np.insert(tokens, self._offsets[1:-1], np.int32(self.eos_id))
        return np.ascontiguousarray(stream[: self.n_blocks * span])

    def order(self, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
        """This rank's block indices for ``epoch`` (see :func:`epoch_order`)."""
        return epoch_order(self.n_blocks, seed, epoch, rank, world_size)

    def batches(
        self, order: np.ndarray, batch_size: int, start: int = 0, drop_last: bool = False
    ) -> Iterator[torch.Tensor]:
        """Batches of the blocks in ``order``, from position ``start`` of it, as LongTensors
        ``(batch_size, block_size)``.

        To resume after ``k`` batches pass ``start = k * batch_size``: the batches that follow
        equal those of an uninterrupted run. The last batch is shorter unless ``drop_last``.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        for first in range(start, len(order), batch_size):
            chunk = order[first : first + batch_size]
            if drop_last and len(chunk) < batch_size:
                return
            yield torch.from_numpy(self.get_blocks(chunk))
