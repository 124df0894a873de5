"""``babyteach <subcommand>``: single steps of the workflow outside Snakemake.

Each subcommand calls the same function the workflow's rule calls, with the same
arguments, so a step can be rerun or debugged by hand; an option that is a config key takes its
default, choices and help from the config schema (``babyteach clean --help`` names the key)::

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
from typing import Any

from babyteach.config_schema import as_number, schema_default, schema_property
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


#: How an option reads a value of each schema type (a schema type list such as ["integer", "null"] reads its first).
_READERS = {"integer": _whole_number, "number": _number, "string": str}


def _config_option(parser: argparse.ArgumentParser, flag: str, *key: str) -> None:
    """Add ``flag`` for config key ``key``: its default, choices and type are the schema's (the value a
    workflow run with no such key in its config gets), its help the key's description."""
    spec = schema_property(*key)
    kinds = [spec["type"]] if isinstance(spec["type"], str) else spec["type"]
    description = " ".join(spec["description"].split()).replace("%", "%%")  # argparse formats help with %
    action = parser.add_argument(
        flag,
        type=_READERS[kinds[0]],
        default=schema_default(*key),
        choices=spec.get("enum"),
        help=f"{description} (config key {'.'.join(key)}; default: %(default)s)",
    )
    action.config_key = ".".join(key)  # type: ignore[attr-defined]  # read by tests/test_cli.py


def _command(
    commands: Any, name: str, help: str, paths: tuple[str, ...] = (), options: tuple[tuple[str, str, str], ...] = ()
) -> argparse.ArgumentParser:
    """Subcommand ``name`` with positional folder/file arguments ``paths`` and ``options`` (flag, section,
    key), each a config key (:func:`_config_option`)."""
    command = commands.add_parser(name, help=help)
    for path in paths:
        command.add_argument(path, type=Path)
    for flag, *key in options:
        _config_option(command, flag, *key)
    return command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="babyteach", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    fetch = _command(
        commands,
        "fetch",
        "fetch one dataset (official URL or local mirror)",
        options=(("--retries", "download", "retries"), ("--timeout-s", "download", "timeout_s")),
    )
    fetch.add_argument("dataset", help="registry name, e.g. blimp-fast or babylm-2024-10M")
    fetch.add_argument("dest", type=Path, help="folder to create")
    fetch.add_argument("--mirror", default=None, help="local mirror folder (default: $BABYTEACH_DATA_MIRROR)")
    _command(
        commands,
        "clean",
        "clean a fetched BabyLM corpus and count its words",
        paths=("raw_dir", "clean_dir", "stats_csv"),
        options=(
            ("--release", "corpus", "release"),
            ("--on-decode-error", "corpus", "on_decode_error"),
            ("--max-lines-per-file", "corpus", "max_lines_per_file"),
        ),
    )
    _command(
        commands,
        "train-tokenizer",
        "train the byte-level BPE tokenizer",
        paths=("clean_dir", "out_dir"),
        options=(("--vocab-size", "tokenizer", "vocab_size"), ("--min-frequency", "tokenizer", "min_frequency")),
    )
    _command(
        commands,
        "tokenize",
        "encode train and dev into token shards",
        paths=("clean_dir", "tokenizer_dir", "out_dir"),
        options=(("--batch-lines", "shards", "encode_batch_lines"),),
    )
    pairs = _command(
        commands,
        "evaluate-pairs",
        "zero-shot BLiMP/supplement/EWoK accuracy of a saved model",
        options=(("--max-per-task", "evaluation", "max_per_task"),),
    )
    pairs.add_argument("model_dir", type=Path, help="save_pretrained folder with its tokenizer")
    pairs.add_argument("family", help="benchmark family, e.g. blimp-fast, supplement-fast, ewok-fast")
    pairs.add_argument("data_dir", type=Path, help="the fetched dataset folder (babyteach fetch)")
    pairs.add_argument("out_json", type=Path)
    pairs.add_argument(
        "--variants",
        nargs="+",
        default=list(RESULT_VARIANTS),
        choices=VARIANTS,
        help="scoring variants, all from one pass (default: %(default)s, as every workflow "
        "evaluation; not a config key)",
    )
    pairs.add_argument("--per-item", action="store_true", help="also write every pair's two scores")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``babyteach`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    # bad input, or a path that cannot be read or written: the message without traceback, status 2
    with job_logging(None, f"babyteach {args.command}", {InputError: 2, OSError: 2}) as outcome:
        if args.command == "fetch":
            from babyteach.acquire import fetch_dataset
            from babyteach.data.registry import mirror_from

            fetch_dataset(
                args.dataset, args.dest, mirror_from(args.mirror), retries=args.retries, timeout_s=args.timeout_s
            )
        elif args.command == "clean":
            from babyteach.data.clean import clean_corpus

            clean_corpus(
                args.raw_dir,
                args.clean_dir,
                args.stats_csv,
                args.release,
                args.on_decode_error,
                args.max_lines_per_file,
            )
        elif args.command == "train-tokenizer":
            from babyteach.data.tokenizer import train_tokenizer

            train_tokenizer(args.clean_dir, args.out_dir, args.vocab_size, args.min_frequency)
        elif args.command == "tokenize":
            from babyteach.data.shards import write_shards

            write_shards(args.clean_dir, args.tokenizer_dir, args.out_dir, batch_lines=args.batch_lines)
        elif args.command == "evaluate-pairs":
            from babyteach.evaluate.zero_shot import evaluate_pairs

            result = evaluate_pairs(
                args.model_dir,
                args.family,
                args.data_dir,
                args.out_json,
                variants=args.variants,
                max_per_task=args.max_per_task,
                per_item=args.per_item,
            )
            for name, numbers in result["variants"].items():
                print(
                    f"{args.family} ({name}): macro accuracy {numbers['macro_accuracy']:.4f} over "
                    f"{numbers['n_pairs']} pairs, {numbers['ties']} ties counted {numbers['ties_count_as']}"
                )
    return outcome.status


if __name__ == "__main__":
    sys.exit(main())
