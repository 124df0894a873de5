"""Zero-shot minimal-pair evaluation (BLiMP, BLiMP supplement, EWoK) by pseudo-log-likelihood.

One model and one benchmark family: the family's pairs (:func:`babyteach.evaluate.pairs.load_pairs`)
are scored with each of :data:`~babyteach.evaluate.variants.RESULT_VARIANTS` (``official``, the
BabyLM 2024 pipeline's protocol, and ``pll-word-l2r``, this project's strict metric) from one model
load and one batched pass (:mod:`babyteach.evaluate.scoring`), counted per task and group
(:func:`babyteach.evaluate.pairs.aggregate`), and written as one versioned result JSON::

    from babyteach.evaluate.zero_shot import evaluate_pairs
    evaluate_pairs(Path("results/models/baseline"), "blimp-fast", Path("results/raw/blimp-fast"),
                   Path("results/eval/baseline/blimp-fast.json"))

An EWoK item compares ``Context1`` + ``Target1`` with ``Context1`` + ``Target2``: the context is the
prefix both targets are scored after (:func:`babyteach.evaluate.scoring.score_variants`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from babyteach.evaluate.pairs import aggregate, load_pairs
from babyteach.evaluate.scoring import DEFAULT_BATCH_TOKENS, load_model_and_tokenizer, score_variants
from babyteach.evaluate.variants import RESULT_VARIANTS, select_variants
from babyteach.io import write_json_atomic

log = logging.getLogger(__name__)

#: Version of the result JSON written by :func:`evaluate_pairs`; bump when its fields change
#: (2: the numbers of every variant under ``variants``, ``official`` added).
RESULTS_VERSION = 2

#: Below this many tokens per forward pass :func:`evaluate_pairs` warns that a GPU idles.
SMALL_BATCH_TOKENS = 4096


def evaluate_pairs(
    model_dir: Path,
    family: str,
    data_dir: Path,
    out_json: Path,
    variants: Sequence[str] = RESULT_VARIANTS,
    max_per_task: int | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    per_item: bool = False,
) -> dict:
    """Score every pair of ``family`` in ``data_dir`` with the model in ``model_dir`` under each of
    ``variants`` (one model load, one batched pass); write JSON.

    The JSON (written atomically; nothing is written on error) holds ``version``
    (:data:`RESULTS_VERSION`), ``family``, ``data_dir`` and ``model_dir`` (folder names),
    ``max_per_task``, ``pairs_per_second`` (all variants together), ``identical_pairs`` (pairs whose
    two sentences are the same string: ties for every model; BLiMP has 7), and ``variants``: per
    variant name, its ``reduction`` (sum or mean), ``ties_count_as`` (wrong or correct) and the
    numbers of :func:`aggregate`; with ``per_item`` also ``items``, every pair's ``task``, ``line``,
    ``group`` and its ``good``/``bad`` score per variant. Returns the same dict. ``batch_tokens``
    (the config's ``evaluation.batch_size``) bounds the tokens per forward pass, see
    :func:`babyteach.evaluate.scoring.plan_batches`.
    """
    specs = select_variants(variants)
    if batch_tokens < SMALL_BATCH_TOKENS:
        # The key counted masked copies until 2026-11-30 (default 512): an old value still works,
        # as that many tokens, but leaves a GPU mostly idle.
        log.warning(
            "evaluation batch of %d tokens per forward pass (evaluation.batch_size counts tokens, "
            "not masked copies, since 2026-11-30): a GPU is filled from ~%d; default %d",
            batch_tokens,
            SMALL_BATCH_TOKENS,
            DEFAULT_BATCH_TOKENS,
        )
    pairs = load_pairs(family, Path(data_dir), max_per_task)
    model, tokenizer = load_model_and_tokenizer(Path(model_dir))
    names = [spec.name for spec in specs]
    log.info("%s: scoring %d pairs of %s with %s", model_dir, len(pairs), family, ", ".join(names))
    started = time.perf_counter()
    sentences = [p.good for p in pairs] + [p.bad for p in pairs]
    where = [f"{family} task {p.task} line {p.line} ({which})" for which in ("good", "bad") for p in pairs]
    scores = score_variants(
        model,
        tokenizer,
        sentences,
        prefixes=[p.prefix for p in pairs] * 2,
        variants=names,
        batch_tokens=batch_tokens,
        names=where,
    )
    elapsed = time.perf_counter() - started
    n = len(pairs)
    identical = [f"{p.task} line {p.line}" for p in pairs if p.good == p.bad]
    if identical:
        log.warning(
            "%s: %d pairs have identical good and bad sentences (always a tie: wrong for pll and "
            "pll-word-l2r, correct for official): %s",
            family,
            len(identical),
            ", ".join(identical),
        )
    result: dict = {
        "version": RESULTS_VERSION,
        "family": family,
        "data_dir": Path(data_dir).name,
        "model_dir": Path(model_dir).name,
        "max_per_task": max_per_task,
        "pairs_per_second": n / elapsed if elapsed > 0 else None,
        "identical_pairs": len(identical),
        "variants": {},
    }
    for spec in specs:
        values = scores[spec.name]
        records = [
            {"task": p.task, "group": p.group, "good": values[i], "bad": values[n + i]} for i, p in enumerate(pairs)
        ]
        result["variants"][spec.name] = {
            "reduction": spec.reduction,
            "ties_count_as": "correct" if spec.ties_correct else "wrong",
            **aggregate(records, spec.name),
        }
    if per_item:
        result["items"] = [
            {
                "task": p.task,
                "line": p.line,
                "group": p.group,
                "good": {v: scores[v][i] for v in names},
                "bad": {v: scores[v][n + i] for v in names},
            }
            for i, p in enumerate(pairs)
        ]
    write_json_atomic(out_json, result)
    for name, numbers in result["variants"].items():
        log.info(
            "%s %s %s: accuracy %.4f (macro %.4f), %d ties (counted %s)",
            model_dir,
            family,
            name,
            numbers["accuracy"],
            numbers["macro_accuracy"],
            numbers["ties"],
            numbers["ties_count_as"],
        )
    log.info("%s %s: %.1f pairs/s (%d variants)", model_dir, family, result["pairs_per_second"] or 0, len(names))
    return result
