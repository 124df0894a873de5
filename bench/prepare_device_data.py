"""Build ``device_data/``: the 10M shards, tokenizer and fast evaluation sets a GPU machine needs.

A device machine receives only the git checkout, not ``../shared/data``. This script, run on
the CPU side before a device session, builds with the project's own functions (the data stage's
``fetch_dataset`` → ``clean_corpus`` → ``train_tokenizer`` → ``write_shards``) the folder::

    device_data/
      shards/            the cleaned 10M corpus's train and dev token shards (meta.json, *.npy)
      tokenizer/         the byte-level BPE tokenizer (config.yaml: vocabulary 50,265)
      blimp-fast/        fetched evaluation sets, as the workflow's fetch_data rule leaves them
      supplement-fast/
      ewok-fast/

(about 25 MB), and prints its size. ``device_data/`` is ignored by git (``.git/info/exclude``);
carry it to the device (``run(carry=["device_data"])``). Run::

    python bench/prepare_device_data.py                              # config.yaml's corpus and vocabulary
    python bench/prepare_device_data.py --out build/demo --vocab-size 2000 --max-lines 3000   # demo slice

Raw and cleaned text are built in a temporary folder and not kept.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from babyteach.data.clean import clean_corpus
from babyteach.data.fetch import fetch_dataset
from babyteach.data.shards import write_shards
from babyteach.data.tokenizer import train_tokenizer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = Path(os.environ.get("BABYTEACH_DATA_MIRROR", REPO.parent / "shared" / "data"))
#: The evaluation sets a short device session scores (BabyLM 2025's fast subsets).
FAST_SETS: tuple[str, ...] = ("blimp-fast", "supplement-fast", "ewok-fast")


def folder_size(path: Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def build_corpus(mirror: Path, out: Path, vocab_size: int, min_frequency: int = 2, release: str = "2024",
                 track: str = "10M", max_lines: int | None = None) -> tuple[Path, Path]:
    """Fetch, clean, tokenize and shard a BabyLM corpus into ``out/shards`` and ``out/tokenizer``.

    The same calls as the workflow's data stage, so the shards equal ``results/<corpus>/shards``
    of a run with the same settings. ``max_lines`` keeps the first N cleaned lines per domain file
    (the demo slice: 3,000). Existing ``shards``/``tokenizer`` folders are replaced. Returns
    ``(shards, tokenizer)``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="device-data-", dir=out) as scratch:
        work = Path(scratch)
        fetch_dataset(f"babylm-{release}-{track}", work / "raw", mirror)
        clean_corpus(work / "raw", work / "clean", work / "corpus.csv", release, max_lines_per_file=max_lines)
        train_tokenizer(work / "clean", work / "tokenizer", vocab_size, min_frequency)
        write_shards(work / "clean", work / "tokenizer", work / "shards")
        for name in ("shards", "tokenizer"):
            shutil.rmtree(out / name, ignore_errors=True)
            (work / name).rename(out / name)
    return out / "shards", out / "tokenizer"


def fetch_sets(mirror: Path, out: Path, names: tuple[str, ...] = FAST_SETS) -> list[Path]:
    """Fetch each evaluation set into ``out/<name>`` (replaced if present); returns the folders."""
    folders = []
    for name in names:
        shutil.rmtree(Path(out) / name, ignore_errors=True)
        fetch_dataset(name, Path(out) / name, mirror)
        folders.append(Path(out) / name)
    return folders


def prepare_device_data(mirror: Path, out: Path, vocab_size: int, min_frequency: int = 2,
                        max_lines: int | None = None, sets: tuple[str, ...] = FAST_SETS) -> int:
    """Build the whole device folder (:func:`build_corpus` + :func:`fetch_sets`); returns its size in bytes."""
    build_corpus(mirror, out, vocab_size, min_frequency, max_lines=max_lines)
    fetch_sets(mirror, out, sets)
    return folder_size(out)


def main(argv: list[str] | None = None) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR, help="data mirror (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO / "device_data", help="output folder (default: %(default)s)")
    parser.add_argument("--vocab-size", type=int, default=config["tokenizer"]["vocab_size"],
                        help="tokenizer vocabulary (default: config.yaml's %(default)s)")
    parser.add_argument("--max-lines", type=int, default=None,
                        help="first N cleaned lines per domain file (default: all; the demo slice: 3000)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    size = prepare_device_data(args.mirror, args.out, args.vocab_size, config["tokenizer"]["min_frequency"],
                               args.max_lines)
    print(f"{args.out}: {size / 1e6:.1f} MB ({', '.join(sorted(p.name for p in args.out.iterdir()))}) "
          f"in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
