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
      blimp-filtered/    the whole BLiMP of BabyLM 2024 (the scorer's 15 s target; --no-full-blimp: left out)
      glue-filtered/     MRPC's train and valid files only (bench/gpu_check.py times one fine-tuning epoch)
      peers.json         config.yaml's 4 searched peers {"peer-1": {"layers", "heads", "hidden"}, …}: the
                         search needs bayes_opt, which a GPU machine may lack

(about 52 MB; carry allows 64 MiB), and prints its size. ``device_data/`` is ignored by git (``.gitignore``);
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

from babyteach.acquire import fetch_dataset
from babyteach.data.clean import clean_corpus
from babyteach.data.shards import write_shards
from babyteach.data.tokenizer import train_tokenizer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = Path(os.environ.get("BABYTEACH_DATA_MIRROR", REPO.parent / "shared" / "data"))
#: The evaluation sets a short device session scores (BabyLM 2025's fast subsets).
FAST_SETS: tuple[str, ...] = ("blimp-fast", "supplement-fast", "ewok-fast")


def folder_size(path: Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def build_corpus(
    mirror: Path,
    out: Path,
    vocab_size: int,
    min_frequency: int = 2,
    release: str = "2024",
    track: str = "10M",
    max_lines: int | None = None,
) -> tuple[Path, Path]:
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


def fetch_glue_task(mirror: Path, out: Path, task: str = "mrpc") -> Path:
    """``out/glue-filtered`` holding only ``task``'s train and valid files (the whole set is 19 MB)."""
    target = Path(out) / "glue-filtered"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="glue-", dir=out) as scratch:
        fetch_dataset("glue-filtered", Path(scratch) / "glue", mirror)
        for split in ("train", "valid"):
            shutil.copy2(Path(scratch) / "glue" / f"{task}.{split}.jsonl", target / f"{task}.{split}.jsonl")
    return target


def write_peers(config: dict, shard_dir: Path, out: Path, peers: int = 4) -> Path:
    """``out/peers.json``: the ``peers`` architectures the workflow's search finds for config.yaml's teacher."""
    import json

    from babyteach.models import Architecture
    from babyteach.search import SearchSpace, search_architectures, students_from_search, write_search

    search = config["search"]
    vocab = json.loads((Path(shard_dir) / "meta.json").read_text())["vocab_size"]
    teacher = Architecture.from_mapping(config["model"]["teacher"], "model.teacher")
    result = search_architectures(
        teacher,
        peers,
        SearchSpace(**search["space"]),
        vocab,
        config["model"]["block_size"],
        search["init_points"],
        search["n_iter"],
        search["seed"],
        search["tolerance"],
    )
    with tempfile.TemporaryDirectory(prefix="search-", dir=out) as scratch:
        write_search(Path(scratch) / "search.json", result)
        students = students_from_search(Path(scratch) / "search.json", peers)
    path = Path(out) / "peers.json"
    path.write_text(json.dumps({name: arch.to_dict() for name, arch in students.items()}, indent=1), encoding="utf-8")
    return path


def prepare_device_data(
    mirror: Path,
    out: Path,
    vocab_size: int,
    min_frequency: int = 2,
    max_lines: int | None = None,
    sets: tuple[str, ...] = FAST_SETS,
    full_blimp: bool = True,
    config: dict | None = None,
) -> int:
    """Build the whole device folder (:func:`build_corpus`, :func:`fetch_sets`, the full BLiMP, MRPC and the
    searched peers of ``config``, config.yaml by default); returns its size in bytes."""
    config = config or yaml.safe_load((REPO / "config.yaml").read_text())
    shards, _ = build_corpus(mirror, out, vocab_size, min_frequency, max_lines=max_lines)
    fetch_sets(mirror, out, (*sets, "blimp-filtered") if full_blimp else sets)
    fetch_glue_task(mirror, out)
    write_peers(config, shards, out)
    return folder_size(out)


def main(argv: list[str] | None = None) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR, help="data mirror (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO / "device_data", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=config["tokenizer"]["vocab_size"],
        help="tokenizer vocabulary (default: config.yaml's %(default)s)",
    )
    parser.add_argument(
        "--max-lines",
        type=int,
        default=None,
        help="first N cleaned lines per domain file (default: all; the demo slice: 3000)",
    )
    parser.add_argument(
        "--no-full-blimp",
        dest="full_blimp",
        action="store_false",
        help="leave out blimp-filtered (21 MB), e.g. for a CPU smoke folder",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    size = prepare_device_data(
        args.mirror,
        args.out,
        args.vocab_size,
        config["tokenizer"]["min_frequency"],
        args.max_lines,
        full_blimp=args.full_blimp,
        config=config,
    )
    print(
        f"{args.out}: {size / 1e6:.1f} MB ({', '.join(sorted(p.name for p in args.out.iterdir()))}) "
        f"in {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
