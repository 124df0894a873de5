"""The recipe probe's summary table: one row per setting, against the corpus's unigram baseline.

Built from the probe's run folders (``metrics.jsonl``, ``train_summary.json``), its zero-shot
results (:func:`babyteach.evaluate.zero_shot.evaluate_pairs`) and the token shards; the rule
``probe_summary`` writes it to ``results/probe/summary.csv``::

    from babyteach.report.probe_summary import write_probe_summary
    write_probe_summary({"lr-0.0001": {"lr": 0.0001}, "lr-0.0005": {"lr": 0.0005}},
                        run_dirs=[...], eval_files=[...], shard_dir=Path("results/2024-10M/shards"),
                        corpus="2024-10M", out_csv="results/probe/summary.csv")

Columns (:func:`summary_columns`): ``setting`` (the run folder name), the value of every key any
setting overrides (as the run used it, from its ``train_summary.json``), ``steps``, ``tokens``
(at the last dev-loss point), ``final_dev_loss`` (nats: the teacher's last ``dev_loss`` line of
``metrics.jsonl``), ``unigram_entropy`` and ``unigram_dev_cross_entropy`` (nats:
:func:`babyteach.data.unigram.unigram_baseline` of the shards), ``margin_under_unigram``
(``unigram_dev_cross_entropy − final_dev_loss``: how far under the context-free loss on the same
dev tokens the run got; about 0 means it learned only token frequencies), ``dataset``, ``scoring``
(the zero-shot scoring variant shown: ``pll-word-l2r``, as in Tables 2 and 6-8), ``accuracy_pct``
(its macro accuracy over tasks in percent, the BabyLM aggregate the tables use), and ``corpus``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from babyteach.data.unigram import UnigramBaseline, unigram_baseline
from babyteach.errors import InputError
from babyteach.evaluate.variants import STRICT
from babyteach.io import atomic_path
from babyteach.report.figure_training import load_metrics
from babyteach.report.runs import load_summary, load_zero_shot

log = logging.getLogger(__name__)

#: The student name of the probe's one model (the teacher architecture trained alone).
MODEL = "teacher"

#: Columns after the ``setting`` column and the overridden keys.
RESULT_COLUMNS = [
    "steps",
    "tokens",
    "final_dev_loss",
    "unigram_entropy",
    "unigram_dev_cross_entropy",
    "margin_under_unigram",
    "dataset",
    "scoring",
    "accuracy_pct",
    "corpus",
]


def probed_keys(settings: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every training key some setting overrides, in first-mentioned order."""
    return list(dict.fromkeys(key for overrides in settings.values() for key in overrides))


def summary_columns(settings: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The summary's columns: ``setting``, the probed keys, then :data:`RESULT_COLUMNS`."""
    return ["setting", *probed_keys(settings), *RESULT_COLUMNS]


def dev_curve(run_dir: str | PathLike[str]) -> pd.DataFrame:
    """The teacher's dev-loss points of a probe run (``run_dir/metrics.jsonl``): columns ``step, tokens,
    loss``, by step; the last is the run's final dev loss."""
    path = Path(run_dir) / "metrics.jsonl"
    dev = load_metrics(path).query("kind == 'dev' and model == @MODEL")
    if dev.empty:
        raise InputError(
            f"{path}: no dev_loss line for {MODEL!r}; rerun the probe's training (it logs dev loss "
            "every probe.eval_every steps and at the end)"
        )
    return dev.sort_values("step", kind="stable")[["step", "tokens", "loss"]].reset_index(drop=True)


def _check_folder(name: str, path: Path, expected: str) -> None:
    """Refuse a run or result that belongs to another setting (the rule lists them in settings order)."""
    if expected != name:
        raise InputError(
            f"{path}: listed for probe setting {name!r} but belongs to {expected!r}; list run folders "
            "and results in the order of the settings"
        )


def probe_summary(
    settings: Mapping[str, Mapping[str, Any]],
    run_dirs: Sequence[str | PathLike[str]],
    eval_files: Sequence[str | PathLike[str]],
    baseline: UnigramBaseline,
    corpus: str,
) -> pd.DataFrame:
    """The summary table (columns: :func:`summary_columns`), one row per setting in ``settings`` order.

    ``settings`` maps each run name (``<run_dirs[i]>``'s folder name) to its overrides;
    ``eval_files[i]`` is that run's zero-shot result (``.../<setting>/teacher/<dataset>.json``);
    ``baseline`` is the unigram baseline of the shards the runs trained on.
    """
    if not (len(settings) == len(run_dirs) == len(eval_files)):
        raise InputError(
            f"probe summary: {len(settings)} settings but {len(run_dirs)} run folders and "
            f"{len(eval_files)} results; give one of each per setting"
        )
    keys = probed_keys(settings)
    rows = []
    for name, run_dir, eval_file in zip(settings, map(Path, run_dirs), map(Path, eval_files), strict=True):
        _check_folder(name, run_dir, run_dir.name)
        _check_folder(name, eval_file, eval_file.parent.parent.name)
        summary = load_summary(run_dir / "train_summary.json")
        missing = [key for key in keys if key not in summary.get("config", {})]
        if missing:
            raise InputError(
                f"{run_dir / 'train_summary.json'}: its config lacks {missing}; rerun the probe's training"
            )
        result = load_zero_shot(eval_file)
        if STRICT not in result["variants"]:
            raise InputError(f"{eval_file}: scored without {STRICT!r}; rerun the probe's evaluation")
        last = dev_curve(run_dir).iloc[-1]
        tokens, dev_loss = int(last["tokens"]), float(last["loss"])
        rows.append(
            {
                "setting": name,
                **{key: summary["config"][key] for key in keys},
                "steps": summary["steps"],
                "tokens": tokens,
                "final_dev_loss": dev_loss,
                "unigram_entropy": baseline.train_entropy,
                "unigram_dev_cross_entropy": baseline.dev_cross_entropy,
                "margin_under_unigram": baseline.dev_cross_entropy - dev_loss,
                "dataset": result["family"],
                "scoring": STRICT,
                "accuracy_pct": 100 * result["variants"][STRICT]["macro_accuracy"],
                "corpus": corpus,
            }
        )
    return pd.DataFrame(rows, columns=summary_columns(settings))


def write_probe_summary(
    settings: Mapping[str, Mapping[str, Any]],
    run_dirs: Sequence[str | PathLike[str]],
    eval_files: Sequence[str | PathLike[str]],
    shard_dir: str | PathLike[str],
    corpus: str,
    out_csv: str | PathLike[str],
) -> pd.DataFrame:
    """:func:`probe_summary` with the unigram baseline of ``shard_dir`` on the dev loss's own blocks (the
    runs' ``dev_blocks`` and ``block_size``), written to ``out_csv`` atomically; returns the table."""
    config = load_summary(Path(run_dirs[0]) / "train_summary.json").get("config", {}) if run_dirs else {}
    baseline = unigram_baseline(Path(shard_dir), config.get("dev_blocks"), config.get("block_size", 128))
    table = probe_summary(settings, run_dirs, eval_files, baseline, corpus)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    for row in table.itertuples(index=False):
        log.info(
            "%s: final dev loss %.4f nats (%.4f under the unigram dev cross-entropy) after %d tokens; %s %.1f %%",
            row.setting,
            row.final_dev_loss,
            row.margin_under_unigram,
            row.tokens,
            row.dataset,
            row.accuracy_pct,
        )
    return table
