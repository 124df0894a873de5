"""Benchmark: BLiMP pairs/s of our batched PLL scorer vs a straightforward per-sentence PLL.

Ours is ``babyteach.evaluate.scoring.score_sentences`` as ``evaluate_pairs`` calls it (every
good and bad sentence at once: masked copies of many sentences batched, encoder only, the LM
head on the masked positions only). The reference is the textbook implementation: for each
sentence, its masked copies (one per scored token, the same token selection and word-l2r
rule) go through ONE ``model(input_ids).logits`` forward, full ``(copies, seq, vocab)``
logits; the log-softmax of each copy's masked position (as minicons takes it) is read and the
log-probabilities of the masked tokens are summed.

The model is fixed and small: L4-H4-D256 (seeded, random weights) with a real byte-level
BPE tokenizer, saved with ``save_pretrained`` in a temporary folder and loaded back with
``load_model_and_tokenizer``. The tokenizer is always trained here (``train_tokenizer``,
vocabulary ``--vocab-size``, 8 s at 50,265) on the first ``--corpus-bytes`` of each ``*.train``
file of the mirror's ``babylm_10M``, never taken from ``results/``: the ratio depends on the
vocabulary (the reference computes full-vocabulary logits at every position), so the run must
have the one it states; a tokenizer that falls short of ``--vocab-size`` stops the run.
``--model-dir`` scores any saved model instead (its own vocabulary, printed). The pairs are
``--pairs`` pairs of blimp-fast spread evenly over all 67 UIDs. The first line of the report
states the configuration measured.

Before timing, every sentence's score must agree to 1e-4 and the pair accuracy (correct and
tied pairs) must be identical; these first runs are the warm-up. Both are then timed
alternately and the median of each is reported (target: ours ≥ 3× the reference's pairs/s on
CPU). One torch thread by default: with two threads on a loaded 2-core machine every small
forward (the reference makes one per sentence) took ~80× longer than with one (190 vs 2.3 ms)::

    python bench/pll_scorer.py                          # 300 pairs, pll-word-l2r, vocab 50265
    python bench/pll_scorer.py --variant pll --pairs 1000
    python bench/pll_scorer.py --model-dir results/models/baseline
    python bench/pll_scorer.py --quick                  # smoke run: tiny model, 20 pairs (~1×: vocab 1000)
    python bench/pll_scorer.py --cost-of-both           # official + pll-word-l2r in one pass vs each alone

Our scorer's batches are ``--batch-tokens`` tokens (masked copies × their length), the
pipeline's default ``evaluation.batch_size``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

from babyteach.data.tokenizer import train_tokenizer
from babyteach.evaluate.pairs import Pair, aggregate, load_pairs
from babyteach.evaluate.scoring import (
    DEFAULT_BATCH_TOKENS,
    DEFAULT_VARIANT,
    copy_lengths,
    load_model_and_tokenizer,
    plan_batches,
    score_sentences,
    score_variants,
)
from babyteach.evaluate.variants import OFFICIAL, STRICT
from babyteach.models import Architecture, build_model
from train_step import time_alternately

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("BABYTEACH_DATA_MIRROR", REPO.parent / "shared" / "data"))


def default_data_dir() -> Path:
    """The fetched blimp-fast folder of the pipeline if present, else the mirror's copy."""
    fetched = REPO / "results" / "raw" / "blimp-fast"
    return fetched if fetched.is_dir() else MIRROR / "blimp_filtered" / "blimp_fast"


def build_saved_model(
    out_dir: Path,
    arch: Architecture,
    vocab_size: int,
    corpus_bytes: int,
    block_size: int = 128,
    seed: int = 0,
    weight_scale: float = 1.0,
) -> str:
    """Save a seeded random ``arch`` model and its tokenizer in ``out_dir``; say how the tokenizer was made.

    The tokenizer is trained on the first ``corpus_bytes`` (cut at a line end) of each
    ``babylm_10M/*.train`` file of the mirror, never taken from ``results/``, so the benchmark has
    the vocabulary it states; one smaller than ``vocab_size`` (too little text for that many
    merges) raises ``SystemExit`` naming ``--corpus-bytes``. ``weight_scale`` multiplies every
    matrix (embeddings, linear layers): at 1 (RoBERTa's init) the predictions hardly depend on
    the context; at ~10 they depend on it strongly.
    """
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp)
        for path in sorted((MIRROR / "babylm_10M").glob("*.train")):
            with path.open("rb") as f:
                head = f.read(corpus_bytes)
            (clean / path.name).write_bytes(head[: head.rfind(b"\n") + 1])
        start = time.perf_counter()
        train_tokenizer(clean, out_dir, vocab_size=vocab_size)
        origin = (
            f"trained here on the first {corpus_bytes / 1e6:g} MB of each babylm_10M/*.train "
            f"(vocab_size {vocab_size}, {time.perf_counter() - start:.0f} s)"
        )
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    if len(tokenizer) != vocab_size:
        raise SystemExit(
            f"the tokenizer trained on {corpus_bytes:,} bytes per file has {len(tokenizer)} tokens, not the "
            f"{vocab_size} asked for: raise --corpus-bytes (or lower --vocab-size) so the run has the stated vocabulary"
        )
    model = build_model(arch, len(tokenizer), block_size=block_size, seed=seed)
    with torch.no_grad():
        for parameter in model.parameters():  # tied embeddings are listed once
            if parameter.dim() >= 2:
                parameter.mul_(weight_scale)
    model.save_pretrained(out_dir)
    return origin


def fixed_pairs(data_dir: Path, n: int) -> list[Pair]:
    """``n`` blimp-fast pairs at evenly spaced indices of the whole set (every UID represented)."""
    pairs = load_pairs("blimp-fast", Path(data_dir))
    picks = np.unique(np.linspace(0, len(pairs) - 1, min(n, len(pairs))).round().astype(int))
    return [pairs[i] for i in picks]


def reference_pll(model, tokenizer, sentence: str, variant: str) -> float:
    """Summed PLL of one sentence: all its masked copies in one full ``model(...).logits`` forward.

    Scored tokens are the non-special ones (never ``<s>``/``</s>``); with ``pll-word-l2r``
    the copy of token k also masks the later tokens of k's word (Kauf & Ivanova 2023).
    """
    encoding = tokenizer(sentence, return_special_tokens_mask=True)
    ids = torch.tensor(encoding["input_ids"])
    words = encoding.word_ids()
    scored = [i for i, special in enumerate(encoding["special_tokens_mask"]) if not special]
    copies = ids.repeat(len(scored), 1)  # (n_scored, seq)
    for k, position in enumerate(scored):
        copies[k, position] = tokenizer.mask_token_id
        if variant == "pll-word-l2r":
            for right in scored:
                if right > position and words[right] == words[position]:
                    copies[k, right] = tokenizer.mask_token_id
    with torch.no_grad():
        logits = model(input_ids=copies).logits  # (n_scored, seq, vocab)
    rows, positions = torch.arange(len(scored)), torch.tensor(scored)
    logp = torch.log_softmax(logits[rows, positions].float(), dim=-1)  # (n_scored, vocab), as minicons does
    return logp[rows, ids[positions]].double().sum().item()


def cost_of_both(model, tokenizer, sentences: list[str], n_pairs: int, args: argparse.Namespace) -> None:
    """Time ``score_variants`` with both result variants (one pass) against each variant alone, alternately;
    print the medians, the copies and tokens each runs, and the ratios (target: both ≈ ≤ 2× one variant)."""
    both = (OFFICIAL, STRICT)
    runs = {"both (one pass)": both, STRICT: (STRICT,), OFFICIAL: (OFFICIAL,)}
    distinct = sorted(set(sentences))
    for name, variants in runs.items():
        lengths = copy_lengths(tokenizer, distinct, [""] * len(distinct), variants)
        print(f"{name}: {lengths.size} masked copies, {int(lengths.sum()):,} tokens through the encoder")
    scored = {
        name: score_variants(model, tokenizer, sentences, variants=v, batch_tokens=args.batch_tokens)
        for name, v in runs.items()
    }
    for variant in both:  # one pass gives each variant's own scores
        diff = max(
            abs(a - b) for a, b in zip(scored["both (one pass)"][variant], scored[variant][variant], strict=True)
        )
        assert diff <= 1e-5, f"{variant}: one pass differs from alone by {diff:.1e}"
    seconds = time_alternately(
        {
            name: (
                lambda _, v=v: score_variants(model, tokenizer, sentences, variants=v, batch_tokens=args.batch_tokens)
            )
            for name, v in runs.items()
        },
        args.warmup,
        args.repeats,
    )
    print(f"1-min load average at end {os.getloadavg()[0]:.1f}")
    print("| scoring | s/run | pairs/s |")
    print("|---|---|---|")
    for name in runs:
        print(f"| {name} | {seconds[name]:.2f} | {n_pairs / seconds[name]:,.1f} |")
    total = seconds["both (one pass)"]
    print(
        f"result: both / {STRICT} alone = {total / seconds[STRICT]:.2f}×, both / {OFFICIAL} alone = "
        f"{total / seconds[OFFICIAL]:.2f}×, both / (sum of the two alone) = "
        f"{total / (seconds[STRICT] + seconds[OFFICIAL]):.2f}×"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300, help="blimp-fast pairs scored (default: %(default)s)")
    parser.add_argument(
        "--variant",
        choices=("pll", "pll-word-l2r"),
        default=DEFAULT_VARIANT,
        help="(default: %(default)s; the reference computes the strict variants)",
    )
    parser.add_argument(
        "--cost-of-both",
        action="store_true",
        help="instead: time our scorer with official and pll-word-l2r from one pass (what every "
        "evaluation runs) against each variant alone, and print the ratios",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="blimp-fast folder, one <UID>.jsonl per UID (default: %(default)s)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="a save_pretrained model + tokenizer folder to score with instead of the built one",
    )
    parser.add_argument("--layers", type=int, default=4, help="encoder layers (default: %(default)s)")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=256, help="hidden size (default: %(default)s)")
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=50265,
        help="tokenizer vocabulary when one is trained here (default: %(default)s, the pipeline's)",
    )
    parser.add_argument(
        "--corpus-bytes",
        type=int,
        default=2_000_000,
        help="bytes of each babylm_10M train file the tokenizer is trained on (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-tokens",
        type=int,
        default=DEFAULT_BATCH_TOKENS,
        help="our tokens per forward, masked copies × length (default: %(default)s, the pipeline's)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="untimed runs of each besides the agreement check's (default: %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="model weights (default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads, 0 = torch's own choice (default: %(default)s: on a shared machine "
        "OpenMP waits inflate small forwards, i.e. the reference, far more than ours)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: L2-H2-D64, vocab 1000, 20 pairs, 2 timed runs")
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()  # no save/load bars in the report
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.layers, args.heads, args.hidden, args.vocab_size, args.corpus_bytes = 2, 2, 64, 1000, 200_000
        args.pairs, args.repeats = 20, 2

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            model_dir = Path(tmp) / "model"
            arch = Architecture(args.layers, args.heads, args.hidden)
            origin = build_saved_model(model_dir, arch, args.vocab_size, args.corpus_bytes, seed=args.seed)
            described = f"{arch.describe()} (seed {args.seed}, random weights), tokenizer {origin}"
        else:
            described = str(model_dir)
        model, tokenizer = load_model_and_tokenizer(model_dir, device="cpu")
    pairs = fixed_pairs(args.data_dir, args.pairs)
    sentences = [p.good for p in pairs] + [p.bad for p in pairs]
    # The configuration measured, before anything is timed (vocabulary: what the run has, not what was asked).
    lengths = np.asarray([len(ids) for ids in tokenizer(sorted(set(sentences)))["input_ids"]])
    plan = plan_batches(np.repeat(lengths, lengths - 2), args.batch_tokens)  # one copy per scored token
    print(f"model {described}; vocabulary {model.config.vocab_size} (tokenizer {len(tokenizer)})")
    print(
        f"data {args.data_dir}: {len(pairs)} blimp-fast pairs ({len({p.task for p in pairs})} UIDs, "
        f"{int((lengths - 2).sum())} scored tokens), variant {args.variant}, our batches ≤ {args.batch_tokens} "
        f"tokens ({plan.order.size} copies in {len(plan.bounds)} batches, {plan.fill:.0%} full, no padding); "
        f"{torch.get_num_threads()} threads, median of {args.repeats} after {args.warmup} + 1 warm-up, "
        f"1-min load average at start {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    if args.cost_of_both:
        cost_of_both(model, tokenizer, sentences, len(pairs), args)
        return

    def ours() -> list[float]:
        return score_sentences(model, tokenizer, sentences, variant=args.variant, batch_tokens=args.batch_tokens)

    def reference() -> list[float]:
        return [reference_pll(model, tokenizer, s, args.variant) for s in sentences]

    # The two must give the same scores and the same pair accuracy before we time them.
    scores = {"ours": ours(), "reference": reference()}
    diff = max(abs(a - b) for a, b in zip(scores["ours"], scores["reference"], strict=True))
    assert diff <= 1e-4, f"per-sentence scores differ by up to {diff:.2e} (> 1e-4)"
    results = {}
    for name, values in scores.items():
        n = len(pairs)
        records = [
            {"task": p.task, "group": p.group, "good": g, "bad": b}
            for p, g, b in zip(pairs, values[:n], values[n:], strict=True)
        ]
        results[name] = aggregate(records)
    counts = {name: (r["correct"], r["ties"]) for name, r in results.items()}
    assert counts["ours"] == counts["reference"], f"pair accuracy differs: (correct, ties) {counts}"
    outcomes = [[values[i] > values[i + len(pairs)] for i in range(len(pairs))] for values in scores.values()]
    flipped = sum(a != b for a, b in zip(*outcomes, strict=True))

    print(
        f"agreement: max |ours - reference| per sentence {diff:.1e} (≤ 1e-4), accuracy "
        f"{results['ours']['accuracy']:.4f} both ({counts['ours'][0]} correct, {counts['ours'][1]} ties), "
        f"{flipped} pair outcomes differ",
        flush=True,
    )

    seconds = time_alternately(
        {"ours": lambda _: ours(), "reference": lambda _: reference()}, args.warmup, args.repeats
    )
    print(f"1-min load average at end {os.getloadavg()[0]:.1f}")
    print("| scorer | s/run | pairs/s |")
    print("|---|---|---|")
    for name in ("ours", "reference"):
        print(f"| {name} | {seconds[name]:.2f} | {len(pairs) / seconds[name]:,.1f} |")
    print(f"result: ours/reference pairs/s = {seconds['reference'] / seconds['ours']:.2f}× (target ≥ 3×)")


if __name__ == "__main__":
    main()
