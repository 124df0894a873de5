"""The zero-shot scoring variants, described once, as data (no torch: the report reads them too).

A variant says how a minimal pair is scored: which text the model reads, which of its tokens
are masked and scored, how the per-token log-probabilities are reduced to one score, and
whether a tie counts as correct. Every result of
:func:`babyteach.evaluate.zero_shot.evaluate_pairs` carries :data:`RESULT_VARIANTS`:

``pll-word-l2r`` (:data:`STRICT`, this project's metric)
    ``[prefix + " "] + sentence`` between ``<s>``/``</s>``; every token of the sentence is
    masked in turn together with the later tokens of its own word (Kauf & Ivanova 2023) and
    the log-probabilities are **summed**; the good sentence must score **strictly** higher
    (a tie is wrong).

``official`` (:data:`OFFICIAL`, the BabyLM 2024 pipeline's protocol for masked LMs)
    What the organisers' pipeline computes, step by step:

    1. The task YAMLs build lm-eval ``multiple_choice`` requests. BLiMP and the supplement:
       ``doc_to_text: ""``, ``doc_to_target: 0``, ``doc_to_choice: "{{[sentence_good,
       sentence_bad]}}"``; EWoK: ``doc_to_text: "{{Context1}}"``, ``doc_to_choice:
       "{{[Target1, Target2]}}"`` (``lm_eval/tasks/blimp_filtered/_template_yaml`` and
       ``lm_eval/tasks/ewok_filtered/_template_yaml``, lines 5-7; read in the fork
       stefanik12/evaluation-pipeline-2024 at b4266008, babylm's own copy was not readable
       offline).
    2. lm-eval (v0.4.2, ``lm_eval/api/task.py``, ``ConfigurableTask.construct_requests``) sends
       ``(context, target_delimiter + choice)`` per choice, ``target_delimiter`` being ``" "``:
       the continuation is ``" " + sentence``.
    3. The ``hf-mlm`` model (babylm/evaluation-pipeline-2024 at 261d4993,
       ``lm_eval/models/huggingface.py``, class ``AutoMaskedLM``, method ``loglikelihood``, the
       file's last lines) replaces an empty context by ``tokenizer.eos_token`` and calls minicons
       ``MaskedLMScorer(model, device, tokenizer=tokenizer).conditional_score(context,
       continuation)`` with its defaults.
    4. minicons 0.3.39 (``minicons/scorer.py``: ``MaskedLMScorer.conditional_score`` line 1293,
       ``prime_text`` line 828, ``get_masked_tensors`` line 709, ``compute_stats`` line 1104)
       tokenizes ``context + separator + continuation`` (``separator=" "``) with the special
       tokens; it scores from token ``start`` on, ``start`` being the number of tokens of the
       context tokenized alone (with ``<s>``/``</s>``) that are neither ``</s>`` nor ``<pad>``,
       every token whose id is not ``<s>``, ``</s>`` or ``<pad>``; plain PLL (one token masked at a
       time, the constructor's ``PLL_metric="original"``); reduction ``x.mean(0)``: the **mean**
       log-probability per scored token.
    5. lm-eval's ``process_results`` takes ``np.argmax(lls) == gold`` with ``gold = 0``: a **tie
       counts as correct** (argmax returns the first maximum).

    So a BLiMP sentence ``s`` is read as ``<s></s>  s</s>`` (two spaces): with a byte-level BPE
    the scored tokens are a lone ``Ġ`` (the first space) and then ``s``'s tokens with a leading
    ``Ġ``, the mean over all of them; an EWoK target ``t`` after context ``c`` is read as
    ``<s>c  t</s>``, scored from the lone ``Ġ`` on. The model runs in fp32 (the pipeline loads it
    with its saved dtype).

``pll``
    As ``pll-word-l2r`` but masking one token at a time (Salazar et al. 2020); not in the results
    by default (``babyteach evaluate-pairs --variants pll``).

A list of variant names is checked in one place, :func:`select_variants`, which both the scoring
engine (:mod:`babyteach.evaluate.scoring`) and the aggregation (:mod:`babyteach.evaluate.pairs`) call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from babyteach.errors import InputError


@dataclass(frozen=True)
class Variant:
    """One scoring variant (module docstring)."""

    name: str
    official_text: (
        bool  # True: (prefix or eos) + "  " + sentence, minicons' token selection; False: [prefix + " "] + sentence
    )
    word_l2r: bool  # mask the later tokens of the scored token's word too
    reduction: str  # "sum" or "mean" of the scored tokens' log-probabilities
    ties_correct: bool  # a pair whose two scores are equal counts as correct
    description: str  # how captions and docs name it

    def prefers_good(self, good: float, bad: float) -> bool:
        """Whether the pair counts as correct: strictly ``good > bad``, or lm-eval's
        ``np.argmax([good, bad]) == 0`` (the first of equal scores wins) when ties count as correct."""
        if self.ties_correct:
            return int(np.argmax([good, bad])) == 0
        return good > bad


STRICT = "pll-word-l2r"
OFFICIAL = "official"

#: Every variant by name.
VARIANT_SPECS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("pll", False, False, "sum", False, "pll (summed plain PLL of the sentence alone, ties wrong)"),
        Variant(
            STRICT, False, True, "sum", False, "pll-word-l2r (summed PLL-word-l2r of the sentence alone, ties wrong)"
        ),
        Variant(
            OFFICIAL,
            True,
            False,
            "mean",
            True,
            "official (the BabyLM 2024 pipeline's protocol: minicons' mean plain PLL per token of the sentence "
            "after the end-of-sentence token and two spaces, ties correct)",
        ),
    )
}
VARIANTS: tuple[str, ...] = tuple(VARIANT_SPECS)

#: The variants every zero-shot result carries (one evaluation, one model load).
RESULT_VARIANTS: tuple[str, ...] = (OFFICIAL, STRICT)


def describe(name: str) -> str:
    """How a caption names variant ``name`` (the name itself if unknown)."""
    spec = VARIANT_SPECS.get(name)
    return spec.description if spec else name


def select_variants(variants: Iterable[str]) -> list[Variant]:
    """The :class:`Variant` of each name, in order; InputError for an unknown, repeated or empty list."""
    variants = list(variants)
    unknown = [v for v in variants if v not in VARIANT_SPECS]
    if unknown or not variants or len(set(variants)) != len(variants):
        raise InputError(
            f"unknown scoring variant {unknown[0]!r}; valid: {', '.join(VARIANTS)}"
            if unknown
            else f"scoring variants must be distinct and at least one, got {variants}"
        )
    return [VARIANT_SPECS[v] for v in variants]
