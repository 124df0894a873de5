"""The pseudo-log-likelihood (PLL) scoring engine: a masked LM's score of every sentence under each
scoring variant, from one model and one batched pass.

The variants (which text the model reads, which tokens are masked and scored, sum or mean) are
data in :mod:`babyteach.evaluate.variants`; which sentences are scored and how a pair counts as
correct is :mod:`babyteach.evaluate.pairs` and :mod:`babyteach.evaluate.zero_shot`::

    from babyteach.evaluate.scoring import load_model_and_tokenizer, score_variants
    model, tokenizer = load_model_and_tokenizer(Path("results/models/baseline"))
    scores = score_variants(model, tokenizer, ["The cats sleep.", "The cats sleeps."])  # variant -> scores

A score is built from pseudo-log-likelihoods (Salazar et al. 2020): a token is replaced by
``<mask>`` and ``log p(token | rest)`` (natural log) read at its position. ``pll-word-l2r``
(Kauf & Ivanova 2023) also masks the tokens to the right that belong to the same word, so a
multi-token word is not scored from its own later pieces. Words are the tokenizer's own word ids
(one per pre-tokenized word: a ``Ġ``-prefixed run of letters, a number, a punctuation run), as in
minicons' ``within_word_l2r``. ``<s>``/``</s>`` are never masked or scored.

EWoK: an item compares ``Context1`` + ``Target1`` with ``Context1`` + ``Target2``; the context is
part of the model input but only the target's tokens are masked and scored, i.e. the score is
``PLL(target | context)`` (minicons' ``conditional_score``). Strict variants read
``Context1 + " " + target`` and score the tokens whose character span ends after the context;
``official`` reads and selects as minicons does (:mod:`babyteach.evaluate.variants`).

Speed: all sentences are tokenized in one call per text form and their masked copies, of every
variant, listed as flat arrays; the copies are bucketed by length (a batch holds copies of one
length only, so no padding and no attention mask) and batched by a token budget
(:func:`plan_batches`). Token ids and the plan go to the device once; each batch is built there by
indexing, run through the encoder only (``model.roberta``), and the LM head and the log-softmax
run on the one masked position per copy, ``(n_copies, vocab)``, never on ``(batch, seq, vocab)``.
The host reads the results back once, at the end. Scoring runs in fp32 (:func:`precision`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from babyteach.config_schema import schema_default
from babyteach.errors import InputError
from babyteach.evaluate.folders import load_checked_tokenizer, load_pretrained
from babyteach.evaluate.variants import RESULT_VARIANTS, STRICT, Variant, select_variants

log = logging.getLogger(__name__)

#: The variant :func:`score_sentences` computes unless told otherwise.
DEFAULT_VARIANT = STRICT

#: Tokens per encoder forward pass (masked copies × their length): the schema's
#: ``evaluation.batch_size`` (65,536: ~5,000 BLiMP copies, enough to keep a data-centre GPU busy;
#: scoring needs no activations kept, so memory stays small).
DEFAULT_BATCH_TOKENS: int = schema_default("evaluation", "batch_size")

#: Most copies whose ``(copies, vocab)`` logits exist at once: bounds the LM head's memory
#: (2,048 × 50,265 fp32 logits = 0.4 GB) whatever the token budget and sentence length.
HEAD_CHUNK = 2048


@dataclass(frozen=True)
class _Copies:
    """The masked copies of a list of sentences, as flat arrays (no per-copy Python objects).

    Copy ``k`` is sentence ``owner[k]`` with the token at ``target[k]`` masked (and, for
    pll-word-l2r, the later scored tokens of the same word). Copies are sentence-major and, within
    a sentence, in ascending ``target``: the order the scores are summed in.
    """

    tokens: np.ndarray  # (n_tokens,) int64: every sentence's ids, <s> ... </s>, back to back
    # (n_tokens,) int64: a scored token's word (pll-word-l2r: the tokenizer's word id, -1 for none;
    # other variants: -3 - its index, a word of its own); -2 for every unscored token
    words: np.ndarray
    starts: np.ndarray  # (n_sentences,) int64: where each sentence begins in ``tokens``
    lengths: np.ndarray  # (n_sentences,) int64: tokens of each sentence, <s>/</s> (and context) included
    owner: np.ndarray  # (n_copies,) int64: the sentence of each copy
    target: np.ndarray  # (n_copies,) int64: the position scored in each copy (0 is <s>)

    @property
    def first_copy(self) -> np.ndarray:
        """``(n_sentences,)`` index of each sentence's first copy (every sentence has one)."""
        return np.flatnonzero(np.r_[True, self.owner[1:] != self.owner[:-1]])


@dataclass(frozen=True)
class BatchPlan:
    """Which masked copies go through the encoder together, as slices of one order.

    ``order`` lists the copies longest input first; batch ``b`` is ``order[first:end]`` for
    ``bounds[b] = (first, end, length)``, and every copy in it has exactly ``length`` tokens, so a
    batch needs no padding and no attention mask (which the model would check on the host every
    forward pass). A batch holds at most ``batch_tokens // length`` copies, and one copy when a
    single input is longer than the budget.
    """

    order: np.ndarray  # (n_copies,) int64
    bounds: list[tuple[int, int, int]]
    batch_tokens: int

    @property
    def tokens(self) -> int:
        """Tokens through the encoder: every copy's own length (no padding)."""
        return sum((end - first) * length for first, end, length in self.bounds)

    @property
    def fill(self) -> float:
        """Mean share of the token budget the batches use (tails of each length fill less)."""
        return self.tokens / (len(self.bounds) * self.batch_tokens) if self.bounds else 0.0


def plan_batches(lengths: np.ndarray, batch_tokens: int) -> BatchPlan:
    """Length-bucketed batches of copies with ``lengths`` tokens each, ≤ ``batch_tokens`` tokens per batch.

    Copies are sorted by length, longest first (a memory error shows up on the first batch, not
    the last), stably, so equal-length copies keep their order; each run of equal lengths is cut
    into batches of ``batch_tokens // length`` copies (at least one). Every copy appears in exactly
    one batch.
    """
    if batch_tokens < 1:
        raise InputError(f"batch_tokens must be a positive integer, got {batch_tokens}")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    ordered = lengths[order]
    runs = np.flatnonzero(np.diff(ordered)) + 1  # where the length changes
    bounds: list[tuple[int, int, int]] = []
    if ordered.size == 0:
        return BatchPlan(order, bounds, batch_tokens)
    for first, end in zip(np.r_[0, runs].tolist(), np.r_[runs, ordered.size].tolist(), strict=True):
        length = int(ordered[first])
        per_batch = max(1, batch_tokens // length)
        bounds += [(a, min(a + per_batch, end), length) for a in range(first, end, per_batch)]
    return BatchPlan(order, bounds, batch_tokens)


def load_model_and_tokenizer(folder: Path, device: str | torch.device | None = None):
    """A saved masked LM and its tokenizer from ``folder`` (``save_pretrained`` layout), in eval mode.

    ``device`` defaults to CUDA when available. A folder without a model or without a
    tokenizer, or a tokenizer larger than the model's vocabulary, raises :class:`InputError`.
    """
    from transformers import AutoModelForMaskedLM

    folder = Path(folder)
    tokenizer = load_checked_tokenizer(folder, "scoring")
    model = load_pretrained(AutoModelForMaskedLM, folder)
    _check_vocab(model, tokenizer, where=str(folder))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval(), tokenizer


def _check_vocab(model, tokenizer, where: str = "model") -> None:
    model_vocab = model.config.vocab_size
    if len(tokenizer) > model_vocab:
        raise InputError(
            f"{where}: the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only "
            f"{model_vocab}; the model was trained with another tokenizer: save the training tokenizer "
            "with the model"
        )
    if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
        raise InputError(f"{where}: the tokenizer defines no <mask> or <pad> token; it cannot be used for PLL")


def precision(device: torch.device) -> contextlib.AbstractContextManager:
    """The numeric precision scoring runs in on ``device``: fp32, float32 matmuls at full precision.

    The one place that decides it. No autocast (an outer one is switched off): a CPU stand-in for
    bf16 moved summed PLL by up to 7e-2 against fp32, and no measurement bounds bf16 within the
    1e-4 the minicons agreement is held to, so scores are computed in fp32 as the BabyLM pipeline
    computes them. ``torch.set_float32_matmul_precision`` is process-wide and training sets it to
    ``"high"`` (TF32 on CUDA); it is pinned to ``"highest"`` while scoring and restored after.
    """
    return _full_fp32(device)


@contextlib.contextmanager
def _full_fp32(device: torch.device) -> Iterator[None]:
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.autocast(device.type, enabled=False):
            yield
    finally:
        torch.set_float32_matmul_precision(before)


def score_sentences(
    model,
    tokenizer,
    sentences: list[str],
    prefixes: list[str] | None = None,
    variant: str = DEFAULT_VARIANT,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    names: list[str] | None = None,
) -> list[float]:
    """The score of each sentence (given its prefix if any) under one ``variant``: :func:`score_variants`."""
    return score_variants(model, tokenizer, sentences, prefixes, (variant,), batch_tokens, names)[variant]


def score_variants(
    model,
    tokenizer,
    sentences: list[str],
    prefixes: list[str] | None = None,
    variants: Sequence[str] = RESULT_VARIANTS,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    names: list[str] | None = None,
) -> dict[str, list[float]]:
    """Each sentence's score under each of ``variants`` (natural log), from one batched pass.

    ``pll``/``pll-word-l2r``: the summed pseudo-log-likelihood of the sentence; with a prefix the
    model reads ``prefix + " " + sentence`` and only the sentence's tokens are masked and scored.
    ``official``: the mean pseudo-log-likelihood minicons' ``conditional_score`` gives the
    continuation ``" " + sentence`` after the prefix, or after ``</s>`` without one
    (:mod:`babyteach.evaluate.variants`). The masked copies of all variants share one batch plan:
    ``batch_tokens`` bounds the tokens per encoder forward pass (copies × their length; see
    :func:`plan_batches`). ``names`` (optional, one per sentence) is how errors name a sentence; a
    sentence with no token to score, or longer than the model, raises :class:`InputError`.
    """
    specs = select_variants(variants)
    if batch_tokens < 1:
        raise InputError(f"batch_tokens must be a positive integer, got {batch_tokens}")
    if prefixes is not None and len(prefixes) != len(sentences):
        raise ValueError(f"{len(prefixes)} prefixes for {len(sentences)} sentences")
    _check_vocab(model, tokenizer)
    if not sentences:
        return {spec.name: [] for spec in specs}
    # Score each distinct (prefix, sentence) once: repeated sentences get identical scores
    # whatever batch they would have landed in (BLiMP has pairs whose two sentences are equal).
    prefixes = prefixes or [""] * len(sentences)
    unique: dict[tuple[str, str], int] = {}  # (prefix, sentence) -> slot
    unique_names, slots = [], []
    for i, key in enumerate(zip(prefixes, sentences, strict=True)):
        if key not in unique:
            unique[key] = len(unique)
            unique_names.append(names[i] if names else f"sentence {i}")
        slots.append(unique[key])
    # RoBERTa numbers positions from pad_token_id + 1: the longest input is max_positions - pad - 1.
    max_length = model.config.max_position_embeddings - model.config.pad_token_id - 1
    parts = [
        _encode(tokenizer, [s for _, s in unique], [p for p, _ in unique], unique_names, max_length, spec)
        for spec in specs
    ]
    copies = _concat(parts)
    plan = plan_batches(copies.lengths[copies.owner], batch_tokens)
    log.info(
        "scoring %d sentences (%s): %d masked copies, %d tokens in %d batches of ≤ %d tokens (%.0f %% full)",
        len(unique),
        ", ".join(s.name for s in specs),
        copies.owner.size,
        plan.tokens,
        len(plan.bounds),
        batch_tokens,
        100 * plan.fill,
    )
    was_training = model.training
    model.eval()
    try:
        logp = _score_copies(model, copies, plan, tokenizer.mask_token_id)
    finally:
        model.train(was_training)
    out, offset = {}, 0
    for spec, part in zip(specs, parts, strict=True):
        n = part.owner.size
        # float64 sums, one sentence's copies in ascending position: a fixed order, whatever the batches.
        scores = np.add.reduceat(logp[offset : offset + n].astype(np.float64), part.first_copy)
        if spec.reduction == "mean":
            scores /= np.diff(np.r_[part.first_copy, n])
        out[spec.name] = scores[slots].tolist()
        offset += n
    return out


def copy_lengths(
    tokenizer, sentences: list[str], prefixes: list[str], variants: Sequence[str] = RESULT_VARIANTS
) -> np.ndarray:
    """The tokens of every masked copy :func:`score_variants` runs for these distinct (prefix, sentence)
    inputs under ``variants`` (one copy per scored token and variant), without a model: what a budget
    plans for. ``tokenizer`` needs ``backend_tokenizer`` and, for ``official``, ``eos_token`` and the
    ``<s>``/``</s>``/``<pad>`` ids (``cls_token_id``, ``sep_token_id``, ``pad_token_id``)."""
    names = [f"input {i}" for i in range(len(sentences))]
    copies = _concat(
        [_encode(tokenizer, sentences, prefixes, names, 10**9, spec) for spec in select_variants(variants)]
    )
    return copies.lengths[copies.owner]


def _encode(
    tokenizer, sentences: list[str], prefixes: list[str], names: list[str], max_length: int, spec: Variant
) -> _Copies:
    """Tokenize every sentence as ``spec`` reads it and list its masked copies.

    One copy per scored token. Strict variants read ``[prefix + " "] + sentence`` and score its
    non-special tokens, with a prefix only those whose character span ends after the prefix (also
    right for a lone ``Ġ`` token, whose trimmed span is empty). ``official`` reads
    ``(prefix or eos) + "  " + sentence`` (minicons' separator, then lm-eval's target delimiter)
    and scores, as minicons' ``prime_text``/``get_masked_tensors`` do, every token from ``start``
    on whose id is not ``<s>``, ``</s>`` or ``<pad>``, ``start`` being the number of tokens of the
    context tokenized alone (with its ``<s>``/``</s>``) that are not ``</s>`` or ``<pad>``. A
    scored token's word id says which later tokens are masked along (pll-word-l2r); other variants
    give every token its own. Tokenized in one batch by the tokenizer's Rust backend; everything
    after is array arithmetic.
    """
    backend = _backend(tokenizer)
    if spec.official_text:
        if tokenizer.eos_token is None:
            raise InputError(
                f"{type(tokenizer).__name__} defines no eos_token, which the official variant reads "
                "before a sentence without context; save the tokenizer with one (RoBERTa's </s>)"
            )
        contexts = [p if p else tokenizer.eos_token for p in prefixes]  # hf-mlm: an empty context is eos_token
        texts = [f"{c}  {s}" for c, s in zip(contexts, sentences, strict=True)]
    else:
        texts = [f"{p} {s}" if p else s for p, s in zip(prefixes, sentences, strict=True)]
    encodings = backend.encode_batch(texts, add_special_tokens=True)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    n_tokens = int(lengths.sum())
    chain = itertools.chain.from_iterable
    tokens = np.fromiter(chain(e.ids for e in encodings), dtype=np.int64, count=n_tokens)
    starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    sentence_of = np.repeat(np.arange(len(texts)), lengths)  # (n_tokens,)
    if spec.official_text:
        not_counted = [t for t in (tokenizer.sep_token_id, tokenizer.pad_token_id) if t is not None]
        never = [t for t in (tokenizer.cls_token_id, *not_counted) if t is not None]
        distinct = list(dict.fromkeys(contexts))
        counted = {
            c: sum(t not in not_counted for t in e.ids)
            for c, e in zip(distinct, backend.encode_batch(distinct, add_special_tokens=True), strict=True)
        }
        first = np.fromiter((counted[c] for c in contexts), dtype=np.int64, count=len(contexts))
        scored = (np.arange(n_tokens) - starts[sentence_of] >= first[sentence_of]) & ~np.isin(tokens, never)
    else:
        scored = ~np.fromiter(chain(e.special_tokens_mask for e in encodings), dtype=bool, count=n_tokens)
        if any(prefixes):
            ends = np.fromiter((end for e in encodings for _, end in e.offsets), dtype=np.int64, count=n_tokens)
            prefix_chars = np.fromiter(map(len, prefixes), dtype=np.int64, count=len(prefixes))
            prefix_of = prefix_chars[sentence_of]  # (n_tokens,)
            scored &= (prefix_of == 0) | (ends > prefix_of)
    if spec.word_l2r:
        words = np.fromiter(
            (-1 if w is None else w for w in chain(e.word_ids for e in encodings)), dtype=np.int64, count=n_tokens
        )
    else:
        words = -3 - np.arange(n_tokens, dtype=np.int64)  # a word of its own for every token
    words = np.where(scored, words, -2)  # never the word of a scored token: -2 is never masked along
    n_scored = np.bincount(sentence_of[scored], minlength=len(texts))
    bad = np.flatnonzero((n_scored == 0) | (lengths > max_length))
    if bad.size:
        i = int(bad[0])  # the first problem in input order, as a per-sentence loop would find it
        if n_scored[i] == 0:
            raise InputError(
                f"{names[i]}: {sentences[i]!r} tokenizes to nothing to score; fix or drop this pair in the data"
            )
        raise InputError(
            f"{names[i]}: {lengths[i]} tokens as the {spec.name} variant reads it (context and special tokens "
            f"included), more than the model's {max_length}; shorten or drop this pair, or evaluate a model with a "
            "longer block size"
        )
    at = np.flatnonzero(scored)  # (n_copies,) the scored token of each copy, sentence-major
    owner = sentence_of[at]
    return _Copies(tokens, words, starts, lengths, owner, at - starts[owner])


def _concat(parts: Sequence[_Copies]) -> _Copies:
    """The copies of ``parts`` as one list, part after part (sentences and tokens renumbered)."""
    token_offsets = np.cumsum([0] + [p.tokens.size for p in parts[:-1]])
    sentence_offsets = np.cumsum([0] + [p.starts.size for p in parts[:-1]])
    return _Copies(
        tokens=np.concatenate([p.tokens for p in parts]),
        words=np.concatenate([p.words for p in parts]),
        starts=np.concatenate([p.starts + t for p, t in zip(parts, token_offsets, strict=True)]),
        lengths=np.concatenate([p.lengths for p in parts]),
        owner=np.concatenate([p.owner + s for p, s in zip(parts, sentence_offsets, strict=True)]),
        target=np.concatenate([p.target for p in parts]),
    )


def _backend(tokenizer):
    """The tokenizer's Rust ``tokenizers.Tokenizer``, without truncation or padding.

    A tokenizer saved with truncation or padding switched on would cut or pad the sentences
    silently: such a backend is copied and both are switched off on the copy.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise InputError(
            f"{type(tokenizer).__name__} has no Rust (fast) backend, which scoring tokenizes with; save the "
            "tokenizer with tokenizer.json (transformers' tokenizer.save_pretrained does)"
        )
    if backend.truncation is None and backend.padding is None:
        return backend
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(backend.to_str())
    backend.no_truncation()
    backend.no_padding()
    return backend


def _score_copies(model, copies: _Copies, plan: BatchPlan, mask_id: int) -> np.ndarray:
    """``log p(token)`` at each copy's masked position, ``(n_copies,)`` float32 in copy order.

    The token stream and the plan go to the model's device once; every batch is then built,
    run and stored there, so the host only queues work and waits once, for the final copy back.
    The encoder runs without an attention mask (a batch has no padding); the LM head and the
    log-softmax run on the masked position only, :data:`HEAD_CHUNK` copies at a time.
    """
    device = next(model.parameters()).device

    def to_device(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    tokens, words = to_device(copies.tokens), to_device(copies.words)
    start = to_device(copies.starts[copies.owner][plan.order])  # (n_copies,) in plan order
    target = to_device(copies.target[plan.order])
    positions = torch.arange(int(copies.lengths.max()), device=device)
    out = torch.empty(plan.order.size, dtype=torch.float32, device=device)
    with torch.inference_mode(), precision(device):
        for first, end, length in plan.bounds:
            out[first:end] = _batch_logp(
                model, tokens, words, start[first:end], target[first:end], positions[:length], mask_id
            )
    logp = np.empty(plan.order.size, dtype=np.float32)
    logp[plan.order] = out.cpu().numpy()
    return logp


def _batch_logp(
    model,
    tokens: torch.Tensor,
    words: torch.Tensor,
    start: torch.Tensor,
    target: torch.Tensor,
    positions: torch.Tensor,
    mask_id: int,
) -> torch.Tensor:
    """``(copies,)`` log-probabilities of one batch of equal-length copies, built on the device.

    Copy ``k`` is the ``len(positions)`` tokens from ``start[k]`` with ``<mask>`` at ``target[k]``
    and at the later tokens of the same word (pll-word-l2r; in other variants every token is a
    word of its own, so only ``target[k]`` is masked).
    """
    index = start[:, None] + positions  # (copies, length) into the token stream
    at = start + target  # (copies,) the scored token
    # unscored tokens have word -2, never equal to a scored token's word
    masked = (positions == target[:, None]) | ((positions > target[:, None]) & (words[index] == words[at][:, None]))
    ids = tokens[index].masked_fill_(masked, mask_id)
    hidden = model.roberta(input_ids=ids).last_hidden_state  # (copies, length, H)
    picked = hidden[torch.arange(target.numel(), device=target.device), target]  # (copies, H)
    labels = tokens[at]
    out = []
    for a in range(0, target.numel(), HEAD_CHUNK):
        logits = model.lm_head(picked[a : a + HEAD_CHUNK]).float()  # (chunk, vocab)
        out.append(torch.log_softmax(logits, dim=-1).gather(1, labels[a : a + HEAD_CHUNK, None])[:, 0])
    return torch.cat(out)
