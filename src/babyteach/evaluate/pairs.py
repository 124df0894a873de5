"""Zero-shot minimal-pair evaluation (BLiMP, BLiMP supplement, EWoK) by pseudo-log-likelihood.

Every benchmark family is described once, as data, in
:data:`babyteach.evaluate.families.FAMILIES`: where its pairs live in
a fetched dataset folder, which fields hold the good and bad sentence, the optional context and
the group. A model prefers the good sentence when its score is **strictly** greater; ties count
as wrong and are reported (``METHODS.md``, "Evaluation scoring (zero-shot)")::

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

Speed: the masked copies of many sentences are built at once, sorted by length, batched, and
run through the encoder only (``model.roberta``); the LM head and the log-softmax run on the
one masked position per copy, ``(n_copies, vocab)``, never on ``(batch, seq, vocab)``.
"""

from __future__ import annotations

import contextlib
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

#: Masked copies per encoder forward pass.
DEFAULT_BATCH_SIZE = 512

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


@dataclass
class _Encoded:
    """One sentence ready for PLL: token ids and, per scored token, the positions to mask."""

    ids: np.ndarray  # (seq,) int64, with <s> ... </s>
    targets: np.ndarray  # (n,) positions scored, ascending
    masks: np.ndarray  # (n, seq) bool: positions replaced by <mask> in copy k


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


def score_sentences(
    model,
    tokenizer,
    sentences: list[str],
    prefixes: list[str] | None = None,
    variant: str = DEFAULT_VARIANT,
    batch_size: int = DEFAULT_BATCH_SIZE,
    names: list[str] | None = None,
) -> list[float]:
    """Summed pseudo-log-likelihood (natural log) of each sentence, given its prefix if any.

    With a prefix the model reads ``prefix + " " + sentence`` and only the sentence's tokens are
    masked and scored. ``variant`` is ``"pll"`` or ``"pll-word-l2r"``. ``batch_size`` is the
    number of masked copies per forward pass. ``names`` (optional, one per sentence) is how
    errors name a sentence; a sentence with no token to score raises :class:`InputError`.
    """
    if variant not in VARIANTS:
        raise InputError(f"unknown scoring variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size}")
    if prefixes is not None and len(prefixes) != len(sentences):
        raise ValueError(f"{len(prefixes)} prefixes for {len(sentences)} sentences")
    _check_vocab(model, tokenizer)
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
    encoded = _encode(
        tokenizer, [s for _, s in unique], [p for p, _ in unique], variant, unique_names, max_length
    )
    scores = torch.zeros(len(encoded), dtype=torch.float64)
    device = next(model.parameters()).device
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    )
    pad_id, mask_id = tokenizer.pad_token_id, tokenizer.mask_token_id
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast:
            for batch in _batches(encoded, batch_size):
                ids, attention, positions, labels, owners = _collate(encoded, batch, pad_id, mask_id)
                hidden = model.roberta(
                    input_ids=ids.to(device), attention_mask=attention.to(device)
                ).last_hidden_state  # (copies, seq, H)
                rows = torch.arange(len(positions), device=device)
                picked = hidden[rows, positions.to(device)]  # (copies, H)
                logits = model.lm_head(picked).float()  # (copies, vocab)
                logp = torch.log_softmax(logits, dim=-1)[rows, labels.to(device)]  # (copies,)
                scores.index_add_(0, owners, logp.double().cpu())
    finally:
        model.train(was_training)
    return scores[slots].tolist()


def _encode(
    tokenizer,
    sentences: list[str],
    prefixes: list[str],
    variant: str,
    names: list[str],
    max_length: int,
) -> list[_Encoded]:
    """Tokenize ``[prefix + " "] + sentence`` and build each sentence's masking plan."""
    texts = [f"{p} {s}" if p else s for p, s in zip(prefixes, sentences, strict=True)]
    batch = tokenizer(
        texts, add_special_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True
    )
    out = []
    for i in range(len(texts)):
        ids = np.asarray(batch["input_ids"][i], dtype=np.int64)
        special = np.asarray(batch["special_tokens_mask"][i], dtype=bool)
        scored = ~special
        if prefixes[i]:
            # Only the sentence's tokens: those whose character span ends after the prefix
            # (also right for a lone "Ġ" token, whose trimmed span is empty).
            ends = np.asarray([end for _, end in batch["offset_mapping"][i]])
            scored &= ends > len(prefixes[i])
        targets = np.flatnonzero(scored)
        name = names[i]
        if targets.size == 0:
            raise InputError(
                f"{name}: {sentences[i]!r} tokenizes to nothing to score; fix or drop this pair in the data"
            )
        if ids.size > max_length:
            raise InputError(
                f"{name}: {ids.size} tokens (context and <s>/</s> included), more than the model's "
                f"{max_length}; shorten or drop this pair, or evaluate a model with a longer block size"
            )
        masks = np.zeros((targets.size, ids.size), dtype=bool)
        masks[np.arange(targets.size), targets] = True
        if variant == "pll-word-l2r":
            words = np.asarray([-1 if w is None else w for w in batch.word_ids(i)], dtype=np.int64)[targets]
            # copy k also masks scored tokens j to the right of k within the same word
            same_word_right = (words[None, :] == words[:, None]) & (targets[None, :] > targets[:, None])
            rows, cols = np.nonzero(same_word_right)
            masks[rows, targets[cols]] = True
        out.append(_Encoded(ids, targets, masks))
    return out


def _batches(encoded: list[_Encoded], batch_size: int) -> Iterator[list[tuple[int, int, int]]]:
    """Groups of ``(sentence, first copy, end copy)`` with ``batch_size`` copies, longest first."""
    order = sorted(range(len(encoded)), key=lambda i: -encoded[i].ids.size)
    batch, filled = [], 0
    for i in order:
        n, start = encoded[i].targets.size, 0
        while start < n:
            take = min(n - start, batch_size - filled)
            batch.append((i, start, start + take))
            filled, start = filled + take, start + take
            if filled == batch_size:
                yield batch
                batch, filled = [], 0
    if batch:
        yield batch


def _collate(encoded: list[_Encoded], batch: list[tuple[int, int, int]], pad_id: int, mask_id: int):
    """Padded masked copies of a batch: ids, attention, masked position, label, owner sentence."""
    seq = max(encoded[i].ids.size for i, _, _ in batch)
    copies = sum(stop - start for _, start, stop in batch)
    ids = np.full((copies, seq), pad_id, dtype=np.int64)
    attention = np.zeros((copies, seq), dtype=np.int64)
    positions = np.empty(copies, dtype=np.int64)
    owners = np.empty(copies, dtype=np.int64)
    row = 0
    for i, start, stop in batch:
        item, n = encoded[i], stop - start
        length = item.ids.size
        block = np.where(item.masks[start:stop], mask_id, item.ids[None, :])  # (n, length)
        ids[row : row + n, :length] = block
        attention[row : row + n, :length] = 1
        positions[row : row + n] = item.targets[start:stop]
        owners[row : row + n] = i
        row += n
    labels = np.concatenate([encoded[i].ids[encoded[i].targets[start:stop]] for i, start, stop in batch])
    return (torch.from_numpy(ids), torch.from_numpy(attention), torch.from_numpy(positions),
            torch.from_numpy(labels), torch.from_numpy(owners))  # fmt: skip


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
    batch_size: int = DEFAULT_BATCH_SIZE,
    per_item: bool = False,
) -> dict:
    """Score every pair of ``family`` in ``data_dir`` with the model in ``model_dir``; write JSON.

    The JSON (written atomically; nothing is written on error) holds ``version``, ``family``,
    ``data_dir`` and ``model_dir`` (folder names), ``variant``, ``max_per_task``, the numbers of
    :func:`aggregate`, ``identical_pairs`` (pairs whose two sentences are the same string: ties
    for every model; BLiMP has 7), ``pairs_per_second``, and with ``per_item`` every pair's ``task``,
    ``line``, ``group`` and ``good``/``bad`` scores. Returns the same dict.
    """
    if variant not in VARIANTS:
        raise InputError(f"unknown scoring variant {variant!r}; valid: {', '.join(VARIANTS)}")
    pairs = load_pairs(family, Path(data_dir), max_per_task)
    model, tokenizer = load_model_and_tokenizer(Path(model_dir))
    log.info("%s: scoring %d pairs of %s with %s", model_dir, len(pairs), family, variant)
    started = time.perf_counter()
    sentences = [p.good for p in pairs] + [p.bad for p in pairs]
    names = [f"{family} task {p.task} line {p.line} ({which})" for which in ("good", "bad") for p in pairs]
    scores = score_sentences(
        model, tokenizer, sentences, prefixes=[p.prefix for p in pairs] * 2, variant=variant,
        batch_size=batch_size, names=names,
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
