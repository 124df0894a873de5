"""Check: our per-sentence scores equal minicons' ``MaskedLMScorer`` to 1e-4, and give the same pair decisions.

Two checks, on the same saved model:

- **Strict variants** (``docs/METHODS.md``, "Evaluation: zero-shot minimal pairs"): ``babyteach.evaluate.scoring.score_sentences``
  gives the summed pseudo-log-likelihood minicons' ``sequence_score`` gives, for plain PLL (minicons
  ``PLL_metric="original"``) and PLL-word-l2r (``"within_word_l2r"``, Kauf & Ivanova 2023), on
  blimp-fast pairs spread over all UIDs (both sentences) plus a few sentences with punctuation,
  numbers, apostrophes, multi-token words and a newline.
- **official** (the BabyLM 2024 pipeline's protocol, :mod:`babyteach.evaluate.variants`): our score
  of every sentence of a fixed sample of pairs equals what the pipeline's ``hf-mlm`` model computes,
  ``MaskedLMScorer(model, device, tokenizer=tokenizer).conditional_score(context, " " + choice)``
  with ``context`` the EWoK ``Context1`` or, for BLiMP and the supplement, ``tokenizer.eos_token``;
  and the pair decisions (lm-eval's ``np.argmax([good, bad]) == 0``, a tie counts as correct) taken
  from our scores and from minicons' are the same. The sample: ``--pairs`` blimp-fast pairs, 5 per
  task of supplement-fast and 5 per domain of ewok-fast (fetched from the data mirror), evenly spaced.

It prints, per check, the largest absolute difference (and the number of decisions that differ) and
exits with status 1 if a difference exceeds ``--tolerance`` (1e-4) or a decision differs.

minicons is not a project dependency: run this with a Python that has both minicons and
babyteach, e.g. a separate virtualenv::

    python3.11 -m venv /tmp/mc-venv
    /tmp/mc-venv/bin/pip install torch==2.13.0 minicons -e .
    /tmp/mc-venv/bin/python bench/compare_minicons.py                 # L4-H4-D256 model as bench/pll_scorer.py
    /tmp/mc-venv/bin/python bench/compare_minicons.py --weight-scale 10  # context-sensitive predictions
    /tmp/mc-venv/bin/python bench/compare_minicons.py --model-dir results/2024-10M/train/baseline/seed-0/teacher
    /tmp/mc-venv/bin/python bench/compare_minicons.py --quick         # tiny model, fewer sentences

minicons ≤ 0.3.39 calls ``tokenizer.batch_encode_plus``, which transformers 5 removed; with
transformers 5 the script aliases it to ``tokenizer.__call__`` (what it was in 4.x) and says so.
minicons' ``sequence_score`` ignores the ``PLL_metric`` given to the constructor (its
``prepare_text`` defaults to ``"original"``), so the metric is passed to every call; for
``official`` nothing is passed, as the pipeline passes nothing (``conditional_score`` then uses the
constructor's default, ``"original"``).

Both sides compute in float32 and pad differently (ours: batches of masked copies of many
sentences; minicons: ``--batch`` sentences), so sums differ by float32 noise: ~2e-5 on the
default model. With ``--weight-scale 10`` (activations ~10× larger) that noise reaches ~1e-4
and each side's score is itself ~1e-4 from a float64 computation. The official scores are means,
so their noise is that of one token's log-probability.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers.utils import logging as hf_logging

from babyteach.acquire import fetch_dataset
from babyteach.evaluate.pairs import Pair, load_pairs
from babyteach.evaluate.scoring import load_model_and_tokenizer, score_sentences
from babyteach.evaluate.variants import OFFICIAL, VARIANT_SPECS, VARIANTS
from babyteach.models import Architecture

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pll_scorer import (
    MIRROR,
    build_saved_model,
    default_data_dir,
    fixed_pairs,
)

#: Our variant name -> minicons' PLL_metric.
MINICONS_METRIC = {"pll": "original", "pll-word-l2r": "within_word_l2r"}

#: Sentences beyond BLiMP's: punctuation runs, numbers, apostrophes, quotes, long and rare
#: words the vocabulary splits, a dialogue with a newline (supplement style), one word.
EXTRA_SENTENCES = [
    "Zebras quickly jumped over the unbelievable fence!",
    "Well... I don't know -- maybe it's 3.5 km away?",
    '"Hello," said Mrs. O\'Neill, "isn\'t it antidisestablishmentarianism?"',
    "A: What did you break?\nB: I broke a bowl.",
    "The children's grandparents hadn't arrived by 10:45pm (or so).",
    "Hippopotamuses.",
    "Wow",
]


#: The official check's sample beyond blimp-fast: (family, pairs per task), fetched from the mirror.
OFFICIAL_FAMILIES = (("supplement-fast", 5), ("ewok-fast", 5))


def per_task_sample(pairs: list[Pair], per_task: int) -> list[Pair]:
    """``per_task`` pairs of every task at evenly spaced indices of its pairs (file order kept)."""
    out = []
    for task in dict.fromkeys(p.task for p in pairs):
        mine = [p for p in pairs if p.task == task]
        picks = np.unique(np.linspace(0, len(mine) - 1, min(per_task, len(mine))).round().astype(int))
        out += [mine[i] for i in picks]
    return out


def official_sample(blimp_dir: Path, blimp_pairs: int, fetched: Path) -> dict[str, list[Pair]]:
    """The official check's pairs by family: blimp-fast (``blimp_pairs``, every UID), supplement-fast and ewok-fast."""
    sample = {"blimp-fast": fixed_pairs(blimp_dir, blimp_pairs)}
    for family, per_task in OFFICIAL_FAMILIES:
        fetch_dataset(family, fetched / family, mirror=MIRROR)
        sample[family] = per_task_sample(load_pairs(family, fetched / family), per_task)
    return sample


def minicons_official(scorer, tokenizer, pairs: list[Pair], batch: int) -> list[float]:
    """What the BabyLM 2024 pipeline's hf-mlm model returns for the good then the bad choice of every pair:
    ``conditional_score(context, " " + choice)``, an empty context replaced by ``eos_token``, ``batch``
    requests per call (padded), minicons' defaults otherwise (mean reduction, plain PLL)."""
    requests = [(p.prefix or tokenizer.eos_token, f" {p.good}") for p in pairs]
    requests += [(p.prefix or tokenizer.eos_token, f" {p.bad}") for p in pairs]
    scores = []
    for start in range(0, len(requests), batch):
        contexts, continuations = zip(*requests[start : start + batch], strict=True)
        scores += scorer.conditional_score(list(contexts), list(continuations))
    return scores


def check_official(model, tokenizer, scorer, sample: dict[str, list[Pair]], batch: int, tolerance: float) -> bool:
    """Print the official check per family (max |ours - minicons|, decisions that differ); whether it passed."""
    prefers_good = VARIANT_SPECS[OFFICIAL].prefers_good
    passed = True
    for family, pairs in sample.items():
        n = len(pairs)
        ours = score_sentences(
            model,
            tokenizer,
            [p.good for p in pairs] + [p.bad for p in pairs],
            [p.prefix for p in pairs] * 2,
            variant=OFFICIAL,
        )
        theirs = minicons_official(scorer, scorer.tokenizer, pairs, batch)  # the pipeline loads its own tokenizer
        diffs = [abs(a - b) for a, b in zip(ours, theirs, strict=True)]
        worst = max(range(len(diffs)), key=diffs.__getitem__)
        decisions = [(prefers_good(ours[i], ours[n + i]), prefers_good(theirs[i], theirs[n + i])) for i in range(n)]
        differ = sum(a != b for a, b in decisions)
        close = sum(abs(ours[i] - ours[n + i]) <= tolerance for i in range(n))
        ok = diffs[worst] <= tolerance and differ == 0
        passed &= ok
        which = pairs[worst % n]
        print(
            f"official, {family}: {n} pairs ({len({p.task for p in pairs})} tasks), {2 * n} sentences: max |ours - "
            f"minicons| {diffs[worst]:.2e} (task {which.task} line {which.line}, ours {ours[worst]:.6f}, minicons "
            f"{theirs[worst]:.6f}); decisions equal {n - differ}/{n} (correct: ours {sum(a for a, _ in decisions)}, "
            f"minicons {sum(b for _, b in decisions)}; {close} pairs within {tolerance:g} of a tie) -> "
            f"{'OK' if ok else 'FAIL'}"
        )
    return passed


def minicons_scores(scorer, sentences: list[str], metric: str, batch: int) -> tuple[list[float], list[int]]:
    """Summed log-probabilities and numbers of scored tokens, ``batch`` sentences per call (padded)."""
    sums, counts = [], []
    for start in range(0, len(sentences), batch):
        # The sum reduction, x.sum(0).item(), plus the number of scored tokens for diagnosis.
        out = scorer.sequence_score(
            sentences[start : start + batch], reduction=lambda x: (x.sum(0).item(), len(x)), PLL_metric=metric
        )
        sums += [s for s, _ in out]
        counts += [n for _, n in out]
    return sums, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="a save_pretrained model + tokenizer folder (default: build the L4-H4-D256 model "
        "of bench/pll_scorer.py in a temporary folder)",
    )
    parser.add_argument("--pairs", type=int, default=67, help="blimp-fast pairs, both sentences (default: %(default)s)")
    parser.add_argument(
        "--data-dir", type=Path, default=default_data_dir(), help="blimp-fast folder (default: %(default)s)"
    )
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="(default: all: %(default)s)"
    )
    parser.add_argument("--vocab-size", type=int, default=50265, help="tokenizer trained here (default: %(default)s)")
    parser.add_argument(
        "--corpus-bytes",
        type=int,
        default=2_000_000,
        help="bytes of each babylm_10M train file for that tokenizer (default: %(default)s)",
    )
    parser.add_argument(
        "--weight-scale",
        type=float,
        default=1.0,
        help="multiply the built model's matrices by this; ~10 makes log-probs depend on the "
        "context as a trained model's do (default: %(default)s, bench/pll_scorer.py's model)",
    )
    parser.add_argument(
        "--batch", type=int, default=8, help="sentences per minicons call; >1 pads shorter ones (default: %(default)s)"
    )
    parser.add_argument("--tolerance", type=float, default=1e-4, help="(default: %(default)s)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: L2-H2-D64, vocab 1000, 10 pairs, one pair per supplement task and EWoK domain",
    )
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    try:
        import minicons
        from minicons import scorer as mc_scorer
    except ImportError:
        sys.exit("minicons is not installed in this Python; see this script's docstring for a separate venv")
    if args.quick:
        args.pairs, args.vocab_size, args.corpus_bytes = 10, 1000, 200_000
        global OFFICIAL_FAMILIES
        OFFICIAL_FAMILIES = tuple((family, 1) for family, _ in OFFICIAL_FAMILIES)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            model_dir = Path(tmp) / "model"
            arch = Architecture(2, 2, 64) if args.quick else Architecture(4, 4, 256)
            origin = build_saved_model(
                model_dir, arch, args.vocab_size, args.corpus_bytes, weight_scale=args.weight_scale
            )
            described = f"{arch.describe()} (seed 0, random weights × {args.weight_scale:g}), tokenizer {origin}"
        else:
            described = str(model_dir)
        model, tokenizer = load_model_and_tokenizer(model_dir, device="cpu")
        scorer = mc_scorer.MaskedLMScorer(str(model_dir), "cpu")
        shimmed = not hasattr(scorer.tokenizer, "batch_encode_plus")
        if shimmed:  # transformers 5 removed it; in 4.x it was the batched __call__
            scorer.tokenizer.batch_encode_plus = scorer.tokenizer.__call__

        pairs = fixed_pairs(args.data_dir, args.pairs)
        sentences = [p.good for p in pairs] + [p.bad for p in pairs] + EXTRA_SENTENCES
        lengths = [len(tokenizer(s)["input_ids"]) - 2 for s in sentences]
        print(f"model {described}; vocabulary {model.config.vocab_size}")
        print(
            f"minicons {getattr(minicons, '__version__', '?')}, transformers {transformers.__version__}, torch "
            f"{torch.__version__}{'; batch_encode_plus aliased to __call__ (transformers 5)' if shimmed else ''}"
        )
        print(
            f"{len(sentences)} sentences ({2 * len(pairs)} from {len(pairs)} blimp-fast pairs, {len(EXTRA_SENTENCES)} "
            f"extra), {min(lengths)}-{max(lengths)} scored tokens; minicons {args.batch} sentences per call"
        )
        failed, ours_by_variant = False, {}
        for variant in args.variants:
            if variant == OFFICIAL:
                sample = official_sample(args.data_dir, args.pairs, Path(tmp) / "data")
                failed |= not check_official(model, tokenizer, scorer, sample, args.batch, args.tolerance)
                continue
            ours = ours_by_variant[variant] = score_sentences(model, tokenizer, sentences, variant=variant)
            theirs, counts = minicons_scores(scorer, sentences, MINICONS_METRIC[variant], args.batch)
            diffs = [abs(a - b) for a, b in zip(ours, theirs, strict=True)]
            worst = max(range(len(diffs)), key=diffs.__getitem__)
            miscounted = [s for s, n, m in zip(sentences, counts, lengths, strict=True) if n != m]
            ok = diffs[worst] <= args.tolerance and not miscounted
            failed |= not ok
            print(
                f"{variant} (minicons {MINICONS_METRIC[variant]}): max |ours - minicons| {diffs[worst]:.2e} "
                f"on {sentences[worst]!r} (ours {ours[worst]:.6f}, minicons {theirs[worst]:.6f}); "
                f"{len(miscounted)} sentences with another number of scored tokens -> {'OK' if ok else 'FAIL'}"
            )
            for sentence in miscounted[:5]:
                print(f"  scored tokens differ: {sentence!r}")
        if len(ours_by_variant) == 2:  # the check can tell the strict variants apart only if they differ
            gap = max(abs(a - b) for a, b in zip(*ours_by_variant.values(), strict=True))
            print(f"for scale: max |pll - pll-word-l2r| (ours) on these sentences {gap:.2e}")
    print(f"result: {'FAIL' if failed else 'OK'} (tolerance {args.tolerance:g})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
