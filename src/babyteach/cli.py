"""``babyteach <subcommand>``: single steps of the workflow outside Snakemake.

Each subcommand calls the same function the workflow's rule calls, with the same
arguments, so a step can be rerun or debugged by hand::

    babyteach fetch blimp-fast results/raw/blimp-fast --mirror ../shared/data
    babyteach clean results/raw/babylm-2024-10M results/2024-10M/clean results/2024-10M/stats/corpus.csv
    babyteach train-tokenizer results/2024-10M/clean results/2024-10M/tokenizer --vocab-size 50265
    babyteach tokenize results/2024-10M/clean results/2024-10M/tokenizer results/2024-10M/shards
    babyteach evaluate-pairs MODEL_DIR blimp-fast results/raw/blimp-fast blimp-fast.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from babyteach.config_schema import as_number
from babyteach.errors import InputError
from babyteach.evaluate.variants import RESULT_VARIANTS, VARIANTS
from babyteach.logs import job_logging


def _whole_number(text: str) -> int:
    """An integer argument in any spelling: ``50265``, ``5e4``, ``1_000`` (as the config accepts them)."""
    value = as_number(text, integer=True)
    if not isinstance(value, int):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (e.g. 50000, 5e4 or 50_000)")
    return value


def _number(text: str) -> float:
    """A number argument in any spelling: ``0.001``, ``1e-3``."""
    value = as_number(text)
    if not isinstance(value, float):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 60, 1e-3 or 0.5)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="babyteach", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    fetch = commands.add_parser("fetch", help="fetch one dataset (official URL or local mirror)")
    fetch.add_argument("dataset", help="registry name, e.g. blimp-fast or babylm-2024-10M")
    fetch.add_argument("dest", type=Path, help="folder to create")
    fetch.add_argument("--mirror", default=None, help="local mirror folder (default: $BABYTEACH_DATA_MIRROR)")
    fetch.add_argument("--retries", type=_whole_number, default=3)
    fetch.add_argument("--timeout-s", type=_number, default=60.0)

    clean = commands.add_parser("clean", help="clean a fetched BabyLM corpus and count its words")
    clean.add_argument("raw_dir", type=Path)
    clean.add_argument("clean_dir", type=Path)
    clean.add_argument("stats_csv", type=Path)
    clean.add_argument("--release", default="2024", choices=["2023", "2024"])
    clean.add_argument("--on-decode-error", default="strict", choices=["strict", "replace"])
    clean.add_argument("--max-lines-per-file", type=_whole_number, default=None)

    tokenizer = commands.add_parser("train-tokenizer", help="train the byte-level BPE tokenizer")
    tokenizer.add_argument("clean_dir", type=Path)
    tokenizer.add_argument("out_dir", type=Path)
    tokenizer.add_argument("--vocab-size", type=_whole_number, default=50265)
    tokenizer.add_argument("--min-frequency", type=_whole_number, default=2)

    tokenize = commands.add_parser("tokenize", help="encode train and dev into token shards")
    tokenize.add_argument("clean_dir", type=Path)
    tokenize.add_argument("tokenizer_dir", type=Path)
    tokenize.add_argument("out_dir", type=Path)
    tokenize.add_argument("--batch-lines", type=_whole_number, default=10000)

    pairs = commands.add_parser("evaluate-pairs", help="zero-shot BLiMP/supplement/EWoK accuracy of a saved model")
    pairs.add_argument("model_dir", type=Path, help="save_pretrained folder with its tokenizer")
    pairs.add_argument("family", help="benchmark family, e.g. blimp-fast, supplement-fast, ewok-fast")
    pairs.add_argument("data_dir", type=Path, help="the fetched dataset folder (babyteach fetch)")
    pairs.add_argument("out_json", type=Path)
    pairs.add_argument("--variants", nargs="+", default=list(RESULT_VARIANTS), choices=VARIANTS,
                       help="scoring variants, all from one pass (default: %(default)s, as the workflow)")  # fmt: skip
    pairs.add_argument("--max-per-task", type=_whole_number, default=None)
    pairs.add_argument("--per-item", action="store_true", help="also write every pair's two scores")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``babyteach`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    # bad input, or a path that cannot be read or written: the message without traceback, status 2
    with job_logging(None, f"babyteach {args.command}", {InputError: 2, OSError: 2}) as outcome:
        if args.command == "fetch":
            from babyteach.data.acquire import fetch_dataset
            from babyteach.data.fetch import mirror_from

            fetch_dataset(args.dataset, args.dest, mirror_from(args.mirror), args.retries, args.timeout_s)
        elif args.command == "clean":
            from babyteach.data.clean import clean_corpus

            clean_corpus(
                args.raw_dir, args.clean_dir, args.stats_csv, args.release,
                args.on_decode_error, args.max_lines_per_file,
            )
        elif args.command == "train-tokenizer":
            from babyteach.data.tokenizer import train_tokenizer

            train_tokenizer(args.clean_dir, args.out_dir, args.vocab_size, args.min_frequency)
        elif args.command == "tokenize":
            from babyteach.data.shards import write_shards

            write_shards(args.clean_dir, args.tokenizer_dir, args.out_dir, batch_lines=args.batch_lines)
        elif args.command == "evaluate-pairs":
            from babyteach.evaluate.pairs import evaluate_pairs

            result = evaluate_pairs(
                args.model_dir, args.family, args.data_dir, args.out_json,
                variants=args.variants, max_per_task=args.max_per_task, per_item=args.per_item,
            )
            for name, numbers in result["variants"].items():
                print(f"{args.family} ({name}): macro accuracy {numbers['macro_accuracy']:.4f} over "
                      f"{numbers['n_pairs']} pairs, {numbers['ties']} ties counted {numbers['ties_count_as']}")  # fmt: skip
    return outcome.status


if __name__ == "__main__":
    sys.exit(main())
