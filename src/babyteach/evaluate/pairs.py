"""Zero-shot minimal-pair evaluation (BLiMP, BLiMP supplement, EWoK) by pseudo-log-likelihood.

Every benchmark family is described once, as data, in
:data:`babyteach.evaluate.families.FAMILIES`: where its pairs live in
a fetched dataset folder, which fields hold the good and bad sentence, the optional context and
the group. A model prefers the good sentence when its score is **strictly** greater; ties count
as wrong and are reported (``docs/METHODS.md``, "Evaluation: zero-shot minimal pairs")::

    from babyteach.evaluate.pairs import evaluate_pairs
    evaluate_pairs(Path("results/models/baseline"), "blimp-fast", Path("results/raw/blimp-fast"),
                   Path("results/eval/baseline/blimp-fast.json"))

The score of a sentence is its pseudo-log-likelihood (Salazar et al. 2020): each token is
replaced by ``<mask>`` in turn and ``log p(token | rest)`` (natural log) is summed over the
tokens. ``pll-word-l2r`` (Kauf & Ivanova 2023, the default) also masks the tokens to the right
that belong to the same word, so a multi-token word is not scored from its own later pieces.
Words are the tokenizer's own word ids (one per pre-tokenized word: a ``Ġ``-prefixed run of
letters, a number, a punctuation run), as in minicons' ``within_word_l2r``. ``<s>``/``</s>``
are never masked or scored.

EWoK: an item compares ``Context1 + " " + Target1`` with ``Context1 + " " + Target2``; the
context is part of the model input but only the target tokens are masked and scored, i.e. the
score is ``PLL(target | context)`` (minicons' ``conditional_score``). Target tokens are those
whose character span ends after the context.

Speed: all sentences are tokenized in one call and their masked copies listed as flat arrays;
the copies are bucketed by length (a batch holds copies of one length only, so no padding and no
attention mask) and batched by a token budget (:func:`plan_batches`). Token ids and the plan go
to the device once; each batch is built there by indexing, run through the encoder only
(``model.roberta``), and the LM head and the log-softmax run on the one masked position per
copy, ``(n_copies, vocab)``, never on ``(batch, seq, vocab)``. The host reads the results back
once, at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from babyteach.data.fetch import open_ewok_zip
from babyteach.errors import InputError
from babyteach.evaluate.folders import load_checked_tokenizer, load_pretrained
from babyteach.evaluate.families import FAMILIES, Family
from babyteach.io import json_object_line, write_json_atomic

log = logging.getLogger(__name__)

#: Version of the result JSON written by :func:`evaluate_pairs`; bump when its fields change.
RESULTS_VERSION = 1

#: Scoring variants: plain PLL (Salazar et al. 2020) and PLL-word-l2r (Kauf & Ivanova 2023).
VARIANTS: tuple[str, ...] = ("pll", "pll-word-l2r")
DEFAULT_VARIANT = "pll-word-l2r"

#: Tokens per encoder forward pass (masked copies × their length): ~5,000 BLiMP copies, enough
#: to keep a data-centre GPU busy; scoring needs no activations kept, so memory stays small.
DEFAULT_BATCH_TOKENS = 65536

#: Below this many tokens per forward pass :func:`evaluate_pairs` warns that a GPU idles.
SMALL_BATCH_TOKENS = 4096

#: Most copies whose ``(copies, vocab)`` logits exist at once: bounds the LM head's memory
#: (2,048 × 50,265 fp32 logits = 0.4 GB) whatever the token budget and sentence length.
HEAD_CHUNK = 2048

@dataclass(frozen=True)
class Pair:
    """One minimal pair: ``good`` should score higher than ``bad``, both after ``prefix``."""

    task: str  # BLiMP UID, supplement task or EWoK domain file
    group: str  # linguistics_term, EWoK Domain, or the task where the family has none
    good: str
    bad: str
    prefix: str = ""  # context prepended to both (EWoK Context1), never scored
    line: int = 0  # 1-based line in the task's file (for messages and per-item output)


def load_pairs(family: str, folder: Path, max_per_task: int | None = None) -> list[Pair]:
    """The pairs of ``family`` in the fetched dataset ``folder``, task by task, in file order.

    ``max_per_task`` keeps the first N pairs of each task (None: all). Sentences are kept
    verbatim (supplement dialogues keep their newlines). A malformed line raises
    :class:`InputError` naming the file and line.
    """
    spec = _family(family)
    if max_per_task is not None and max_per_task < 1:
        raise InputError(f"max_per_task must be a positive integer or null, got {max_per_task}")
    pairs: list[Pair] = []
    for task, where, data in _task_files(spec, Path(folder)):
        count = 0
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if max_per_task is not None and count >= max_per_task:
                break
            if not raw.strip():
                continue
            pairs.append(_parse(spec, task, where, number, raw))
            count += 1
        if count == 0:
            raise InputError(f"{where}: no pairs; re-fetch dataset {family!r} (the file is empty)")
    return pairs


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise InputError(f"unknown benchmark family {name!r}; valid names: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def _task_files(spec: Family, folder: Path) -> Iterator[tuple[str, str, bytes]]:
    """``(task, where, bytes)`` for every task of ``spec``; ``where`` names the file in messages."""
    if spec.archive is None:
        for task in spec.tasks:
            path = folder / f"{task}.jsonl"
            if not path.is_file():
                raise InputError(f"{path}: task file missing; fetch dataset {spec.name!r} into {folder}")
            yield task, str(path), path.read_bytes()
        return
    path = folder / spec.archive
    if not path.is_file():
        raise InputError(f"{path}: archive missing; fetch dataset {spec.name!r} into {folder}")
    try:
        archive = open_ewok_zip(path) if spec.encrypted else zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise InputError(f"{path}: not a readable zip ({err}); re-fetch dataset {spec.name!r}") from None
    with archive:
        members: dict[str, list[str]] = {}
        for name in archive.namelist():
            member = PurePosixPath(name)
            if "__MACOSX" in member.parts or member.name.startswith(".") or member.suffix != ".jsonl":
                continue
            members.setdefault(member.stem, []).append(name)
        for task in spec.tasks:
            found = members.get(task, [])
            if len(found) != 1:
                problem = "has no member" if not found else f"has {len(found)} members"
                raise InputError(f"{path} {problem} '{task}.jsonl'; re-fetch dataset {spec.name!r}")
            # Read in memory only: EWoK must never be written out in plain text.
            try:
                data = archive.read(found[0])
            except RuntimeError as err:  # zipfile's "Bad password" / "password required"
                raise InputError(
                    f"{path}: cannot decrypt '{found[0]}' ({err}); the zip is not BabyLM's EWoK release with its "
                    f"published password; re-fetch dataset {spec.name!r}"
                ) from None
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:  # bad CRC, cut-off data
                raise InputError(
                    f"{path}: member '{found[0]}' is damaged ({err}); re-fetch dataset {spec.name!r}"
                ) from None
            yield task, f"{path}:{found[0]}", data


def _parse(spec: Family, task: str, where: str, number: int, raw: bytes) -> Pair:
    row = json_object_line(raw, f"{where}, line {number}", "re-fetch the dataset")
    fields = [spec.good, spec.bad] + [f for f in (spec.prefix, spec.group) if f]
    for name in fields:
        if not isinstance(row.get(name), str):
            raise InputError(
                f"{where}, line {number}: field {name!r} missing or not a string; "
                f"family {spec.name!r} needs {fields}; re-fetch the dataset"
            )
    return Pair(
        task=task,
        group=row[spec.group] if spec.group else task,
        good=row[spec.good],
        bad=row[spec.bad],
        prefix=row[spec.prefix] if spec.prefix else "",
        line=number,
    )


# --- scoring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Copies:
    """The masked copies of a list of sentences, as flat arrays (no per-copy Python objects).

    Copy ``k`` is sentence ``owner[k]`` with the token at ``target[k]`` masked (and, for
    pll-word-l2r, the later scored tokens of the same word). Copies are sentence-major and, within
    a sentence, in ascending ``target``: the order the scores are summed in.
    """

    tokens: np.ndarray  # (n_tokens,) int64: every sentence's ids, <s> ... </s>, back to back
    words: np.ndarray  # (n_tokens,) int64: word id of a scored token (-1: none), -2 for every other token
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
    """The numeric precision scoring runs in on ``device``: bf16 autocast on CUDA, fp32 elsewhere.

    The one place that decides it (the LM head's output is cast to fp32 before the log-softmax
    either way); a device type or a precision option is added here.
    """
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def score_sentences(
    model,
    tokenizer,
    sentences: list[str],
    prefixes: list[str] | None = None,
    variant: str = DEFAULT_VARIANT,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    names: list[str] | None = None,
) -> list[float]:
    """Summed pseudo-log-likelihood (natural log) of each sentence, given its prefix if any.

    With a prefix the model reads ``prefix + " " + sentence`` and only the sentence's tokens are
    masked and scored. ``variant`` is ``"pll"`` or ``"pll-word-l2r"``. ``batch_tokens`` bounds the
    tokens per encoder forward pass (masked copies × their length; see :func:`plan_batches`).
    ``names`` (optional, one per sentence) is how errors name a sentence; a sentence with no
    token to score raises :class:`InputError`.
    """
    if variant not in VARIANTS:
        raise InputError(f"unknown scoring variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if batch_tokens < 1:
        raise InputError(f"batch_tokens must be a positive integer, got {batch_tokens}")
    if prefixes is not None and len(prefixes) != len(sentences):
        raise ValueError(f"{len(prefixes)} prefixes for {len(sentences)} sentences")
    _check_vocab(model, tokenizer)
    if not sentences:
        return []
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
    copies = _encode(tokenizer, [s for _, s in unique], [p for p, _ in unique], unique_names, max_length)
    plan = plan_batches(copies.lengths[copies.owner], batch_tokens)
    log.info("scoring %d sentences: %d masked copies, %d tokens in %d batches of ≤ %d tokens (%.0f %% full)",
             len(unique), copies.owner.size, plan.tokens, len(plan.bounds), batch_tokens, 100 * plan.fill)  # fmt: skip
    was_training = model.training
    model.eval()
    try:
        logp = _score_copies(model, copies, plan, variant, tokenizer.mask_token_id)
    finally:
        model.train(was_training)
    # float64 sums, one sentence's copies in ascending position: a fixed order, whatever the batches.
    scores = np.add.reduceat(logp.astype(np.float64), copies.first_copy)
    return scores[slots].tolist()


def _encode(tokenizer, sentences: list[str], prefixes: list[str], names: list[str], max_length: int) -> _Copies:
    """Tokenize ``[prefix + " "] + sentence`` for every sentence and list their masked copies.

    One copy per scored token: the non-special tokens (never ``<s>``/``</s>``), and with a
    prefix only those whose character span ends after the prefix (also right for a lone ``Ġ``
    token, whose trimmed span is empty). Tokenized in one batch by the tokenizer's Rust backend;
    everything after is array arithmetic.
    """
    texts = [f"{p} {s}" if p else s for p, s in zip(prefixes, sentences, strict=True)]
    encodings = _backend(tokenizer).encode_batch(texts, add_special_tokens=True)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    n_tokens = int(lengths.sum())
    chain = itertools.chain.from_iterable
    tokens = np.fromiter(chain(e.ids for e in encodings), dtype=np.int64, count=n_tokens)
    special = np.fromiter(chain(e.special_tokens_mask for e in encodings), dtype=bool, count=n_tokens)
    words = np.fromiter(
        (-1 if w is None else w for w in chain(e.word_ids for e in encodings)), dtype=np.int64, count=n_tokens
    )
    starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    sentence_of = np.repeat(np.arange(len(texts)), lengths)  # (n_tokens,)
    scored = ~special
    if any(prefixes):
        ends = np.fromiter((end for e in encodings for _, end in e.offsets), dtype=np.int64, count=n_tokens)
        prefix_chars = np.fromiter(map(len, prefixes), dtype=np.int64, count=len(prefixes))
        prefix_of = prefix_chars[sentence_of]  # (n_tokens,)
        scored &= (prefix_of == 0) | (ends > prefix_of)
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
            f"{names[i]}: {lengths[i]} tokens (context and <s>/</s> included), more than the model's "
            f"{max_length}; shorten or drop this pair, or evaluate a model with a longer block size"
        )
    at = np.flatnonzero(scored)  # (n_copies,) the scored token of each copy, sentence-major
    owner = sentence_of[at]
    return _Copies(tokens, words, starts, lengths, owner, at - starts[owner])


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


def _score_copies(model, copies: _Copies, plan: BatchPlan, variant: str, mask_id: int) -> np.ndarray:
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
                model, tokens, words, start[first:end], target[first:end], positions[:length],
                variant == "pll-word-l2r", mask_id,
            )  # fmt: skip
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
    word_l2r: bool,
    mask_id: int,
) -> torch.Tensor:
    """``(copies,)`` log-probabilities of one batch of equal-length copies, built on the device.

    Copy ``k`` is the ``len(positions)`` tokens from ``start[k]`` with ``<mask>`` at
    ``target[k]``; with ``word_l2r`` also at the later scored tokens of the same word.
    """
    index = start[:, None] + positions  # (copies, length) into the token stream
    at = start + target  # (copies,) the scored token
    masked = positions == target[:, None]  # (copies, length)
    if word_l2r:  # unscored tokens have word -2, never equal to a scored token's word
        masked |= (positions > target[:, None]) & (words[index] == words[at][:, None])
    ids = tokens[index].masked_fill_(masked, mask_id)
    hidden = model.roberta(input_ids=ids).last_hidden_state  # (copies, length, H)
    picked = hidden[torch.arange(target.numel(), device=target.device), target]  # (copies, H)
    labels = tokens[at]
    out = []
    for a in range(0, target.numel(), HEAD_CHUNK):
        logits = model.lm_head(picked[a : a + HEAD_CHUNK]).float()  # (chunk, vocab)
        out.append(torch.log_softmax(logits, dim=-1).gather(1, labels[a : a + HEAD_CHUNK, None])[:, 0])
    return torch.cat(out)


# --- aggregation and the evaluation entry point ------------------------------------------------


def aggregate(records: Iterable[Mapping]) -> dict:
    """Accuracy numbers of scored pairs (each a mapping with ``task``, ``group``, ``good``, ``bad``).

    A pair is correct only when ``good > bad`` strictly; ``good == bad`` is a tie, counted wrong
    and reported. Returns ``n_pairs``, ``correct``, ``ties``, ``accuracy`` (over all pairs),
    ``macro_accuracy`` (mean of the per-task accuracies: the BabyLM aggregate), and ``tasks`` /
    ``groups``: per name ``{n, correct, ties, accuracy}``. Accuracies are fractions in [0, 1].
    """
    tasks: dict[str, dict[str, int]] = {}
    groups: dict[str, dict[str, int]] = {}
    for record in records:
        good, bad = float(record["good"]), float(record["bad"])
        for table, key in ((tasks, record["task"]), (groups, record["group"])):
            counts = table.setdefault(key, {"n": 0, "correct": 0, "ties": 0})
            counts["n"] += 1
            counts["correct"] += int(good > bad)
            counts["ties"] += int(good == bad)
    if not tasks:
        raise InputError("no scored pairs to aggregate")

    def finish(table: dict[str, dict[str, int]]) -> dict[str, dict]:
        return {k: {**v, "accuracy": v["correct"] / v["n"]} for k, v in sorted(table.items())}

    task_table = finish(tasks)
    n = sum(v["n"] for v in task_table.values())
    correct = sum(v["correct"] for v in task_table.values())
    return {
        "n_pairs": n,
        "correct": correct,
        "ties": sum(v["ties"] for v in task_table.values()),
        "accuracy": correct / n,
        "macro_accuracy": sum(v["accuracy"] for v in task_table.values()) / len(task_table),
        "tasks": task_table,
        "groups": finish(groups),
    }


def evaluate_pairs(
    model_dir: Path,
    family: str,
    data_dir: Path,
    out_json: Path,
    variant: str = DEFAULT_VARIANT,
    max_per_task: int | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    per_item: bool = False,
) -> dict:
    """Score every pair of ``family`` in ``data_dir`` with the model in ``model_dir``; write JSON.

    The JSON (written atomically; nothing is written on error) holds ``version``, ``family``,
    ``data_dir`` and ``model_dir`` (folder names), ``variant``, ``max_per_task``, the numbers of
    :func:`aggregate`, ``identical_pairs`` (pairs whose two sentences are the same string: ties
    for every model; BLiMP has 7), ``pairs_per_second``, and with ``per_item`` every pair's ``task``,
    ``line``, ``group`` and ``good``/``bad`` scores. Returns the same dict. ``batch_tokens`` (the
    config's ``evaluation.batch_size``) bounds the tokens per forward pass, see :func:`plan_batches`.
    """
    if variant not in VARIANTS:
        raise InputError(f"unknown scoring variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if batch_tokens < SMALL_BATCH_TOKENS:
        # The key counted masked copies until 2026-11-30 (default 512): an old value still works,
        # as that many tokens, but leaves a GPU mostly idle.
        log.warning("evaluation batch of %d tokens per forward pass (evaluation.batch_size counts tokens, "
                    "not masked copies, since 2026-11-30): a GPU is filled from ~%d; default %d",
                    batch_tokens, SMALL_BATCH_TOKENS, DEFAULT_BATCH_TOKENS)  # fmt: skip
    pairs = load_pairs(family, Path(data_dir), max_per_task)
    model, tokenizer = load_model_and_tokenizer(Path(model_dir))
    log.info("%s: scoring %d pairs of %s with %s", model_dir, len(pairs), family, variant)
    started = time.perf_counter()
    sentences = [p.good for p in pairs] + [p.bad for p in pairs]
    names = [f"{family} task {p.task} line {p.line} ({which})" for which in ("good", "bad") for p in pairs]
    scores = score_sentences(
        model, tokenizer, sentences, prefixes=[p.prefix for p in pairs] * 2, variant=variant,
        batch_tokens=batch_tokens, names=names,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    records = [
        {"task": p.task, "line": p.line, "group": p.group, "good": good, "bad": bad}
        for p, good, bad in zip(pairs, scores[: len(pairs)], scores[len(pairs) :], strict=True)
    ]
    identical = [f"{p.task} line {p.line}" for p in pairs if p.good == p.bad]
    if identical:
        log.warning("%s: %d pairs have identical good and bad sentences (always a tie, counted wrong): %s",
                    family, len(identical), ", ".join(identical))  # fmt: skip
    result = {
        "version": RESULTS_VERSION,
        "family": family,
        "data_dir": Path(data_dir).name,
        "model_dir": Path(model_dir).name,
        "variant": variant,
        "max_per_task": max_per_task,
        "pairs_per_second": len(pairs) / elapsed if elapsed > 0 else None,
        **aggregate(records),
        "identical_pairs": len(identical),
    }
    if per_item:
        result["items"] = records
    write_json_atomic(out_json, result)
    log.info("%s %s: accuracy %.4f (macro %.4f), %d ties, %.1f pairs/s", model_dir, family,
             result["accuracy"], result["macro_accuracy"], result["ties"], result["pairs_per_second"] or 0)  # fmt: skip
    return result
