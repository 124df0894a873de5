"""Benchmark: tokenizer training and token sharding throughput on a BabyLM corpus.

Times ``write_shards`` on the train split (target: the 10M-word track under 60 s on 2 CPU
cores). Without ``--tokenizer`` a tokenizer is first trained on the corpus, timed separately::

    python bench/tokenize_corpus.py                                  # shared/data/babylm_10M
    python bench/tokenize_corpus.py --tokenizer results/2024-10M/tokenizer --out /tmp/bench
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from babyteach.data.shards import write_shards
from babyteach.data.tokenizer import train_tokenizer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path(os.environ.get("BABYTEACH_DATA_MIRROR", REPO.parent / "shared" / "data")) / "babylm_10M"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus-dir", type=Path, default=DEFAULT_CORPUS, help="folder of <domain>.train files (default: %(default)s)"
    )
    parser.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="existing tokenizer folder; if omitted, one is trained first (timed)",
    )
    parser.add_argument("--vocab-size", type=int, default=50265, help="vocabulary when training (default: %(default)s)")
    parser.add_argument("--batch-lines", type=int, default=10000, help="lines per encode batch (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="bench-tokenize-") as scratch:
        out = args.out or Path(scratch)
        tokenizer = args.tokenizer
        if tokenizer is None:
            tokenizer = out / "tokenizer"
            start = time.perf_counter()
            train_tokenizer(args.corpus_dir, tokenizer, vocab_size=args.vocab_size)
            print(f"train_tokenizer: {time.perf_counter() - start:.1f} s (vocab {args.vocab_size})")

        start = time.perf_counter()
        meta = write_shards(args.corpus_dir, tokenizer, out / "shards", splits=("train",), batch_lines=args.batch_lines)
        seconds = time.perf_counter() - start
        train = meta["splits"]["train"]
        print(
            f"write_shards (train): {seconds:.1f} s, {train['words']:,} words, {train['n_lines']:,} lines, "
            f"{train['n_tokens']:,} tokens ({meta['dtype']})"
        )
        print(f"throughput: {train['words'] / seconds:,.0f} words/s, {train['n_tokens'] / seconds:,.0f} tokens/s")


if __name__ == "__main__":
    main()
