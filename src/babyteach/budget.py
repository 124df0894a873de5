"""GPU budget of planned jobs, from measured throughput: seconds per job, never a guess.

A GPU session runs ``bench/gpu_check.py``, which measures the project's own code on one device and
writes a **throughput file**; ``bench/gpu_budget.py`` turns that file and the jobs a Snakemake
dry-run plans (:mod:`babyteach.dryrun`) into GPU-hours per rule. This module holds the file
format and the arithmetic; it runs no model (it imports :mod:`babyteach.models` for the one FLOP
count of the project, :func:`~babyteach.models.flops_per_token`, which brings torch along).

Throughput file (JSON, ``format_version`` 1)::

    {"format_version": 1, "device": "NVIDIA H200", "peak_flops": 9.89e14, "date": "2026-12-01",
     "torch": "2.11", "commit": "abc1234",
     "training": [{"method": "baseline", "students": {"teacher": {"layers": 12, "heads": 12, "hidden": 768}},
                   "batch_size": 32, "block_size": 128, "vocab_size": 50265, "mask_prob": 0.15,
                   "compile": false, "method_options": {}, "tokens_per_s": 108601.0}, ...],
     "scoring": [{"architecture": {"layers": 12, "heads": 12, "hidden": 768}, "vocab_size": 50265,
                  "family": "blimp-filtered", "pairs": 59875, "seconds": 55.0}, ...],
     "finetune": [{"architecture": {...}, "task": "mrpc", "examples": 3668, "epochs": 1,
                   "max_length": 128, "seconds": 20.0}, ...]}

- ``device``, ``date`` (when measured), ``torch`` and ``commit`` (the code measured) are printed with
  every budget; ``peak_flops`` is the device's dense bf16 peak in FLOP/s (gpu_check's ``PEAK_BF16``).
- ``training``: one entry per measured training run, as ``train()`` ran it: the method, its students
  (name → architecture), the run's ``batch_size`` (blocks per micro-batch), ``block_size``,
  vocabulary, ``mask_prob``, ``compile`` setting and ``method_options``, and ``tokens_per_s``
  (training tokens per second of wall time, as ``metrics.jsonl`` reports them: each token is seen
  by every student). Its **effective MFU** is ``tokens_per_s × Σ_students flops_per_token(arch,
  vocab, block_size, mask_prob) / peak_flops``: only the students' own FLOPs count, so whatever
  else the method does per token (KD's teacher forward, SD's exits, DWML's outer steps, host
  overhead) is inside it as overhead.
- ``scoring``: zero-shot scoring of one minimal-pair family (``evaluate_pairs``) with a model of
  ``architecture`` and ``vocab_size``: ``pairs`` scored in ``seconds`` (tokenizing included, model
  loading not), under the scoring ``variants`` listed (optional; default ``["pll-word-l2r"]``, what
  a run measured before every evaluation scored ``official`` too: its work is counted with that
  variant's copies only, so its FLOP rate stays right).
- ``finetune``: fine-tuning of a model of ``architecture`` on one (Super)GLUE task
  (``finetune_model``): ``examples`` train examples (after ``max_train_examples``), ``epochs``
  epochs run, inputs cut at ``max_length`` tokens, ``seconds`` of that task's run (its validation
  after every epoch included, ``wall_time_s`` of the task in the result JSON). Optional
  ``valid_examples``: the valid examples scored after each epoch, all valid sets together (default:
  the task's own ``<task>.valid.jsonl``, whole, as ``finetune_model`` scores it without
  ``max_eval_examples``; give it when the run scored a subset, or mnli-mm too).

How a job's seconds follow (each measured rate is a FLOP rate of the project's analytic FLOPs,
applied to the job's own FLOPs):

- **training**: ``tokens × Σ_students flops_per_token / (MFU × peak_flops)``, with the MFU of the
  entry of the job's method and ``compile`` setting; when that entry trained other students (e.g. 4
  peers, the job 1 or 2), another batch size, vocabulary or block size, the MFU is *transferred* and
  the budget says so. A method without an entry is a :class:`MissingMeasurement` naming it.
- **zero-shot scoring**: the scorer runs one encoder pass per masked copy of every distinct
  sentence (:func:`scoring_flops`: the encoder over each copy's tokens, the LM head on its one masked
  position), so a job costs its FLOPs at the measured entry's FLOP rate: the family's pairs × the
  entry's seconds per pair, scaled by the model's forward FLOPs (a smaller model costs less) and,
  for a family without its own entry, by the tokens of its copies (EWoK's contexts make its pairs
  longer than BLiMP's; flagged as transferred).
- **fine-tuning**: per trained task, ``max_epochs × (training FLOPs of its train examples + forward
  FLOPs of its valid examples)`` at the measured entry's FLOP rate, i.e. examples × epochs × seconds
  per example scaled by forward+backward FLOPs. ``max_epochs`` is an **upper bound**: early stopping
  (``patience``) can only shorten a task.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babyteach.errors import InputError
from babyteach.evaluate.variants import STRICT, VARIANTS
from babyteach.models import Architecture, flops_per_token

#: Version of the throughput file this module reads and writes.
FORMAT_VERSION = 1

#: Keys of the throughput file's top-level object.
HEADER_KEYS = ("format_version", "device", "peak_flops", "date", "torch", "commit")

#: What to tell a user whose throughput file is unusable.
REMEASURE = "write it with bench/gpu_check.py on the GPU (module docstring of babyteach.budget: the format)"


class MissingMeasurement(InputError):
    """A job needs a kind of work the throughput file has no measurement of; the message names it."""


# --- the throughput file -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingMeasurement:
    """One measured training run: its method, students and settings, and its tokens per second."""

    method: str
    students: Mapping[str, Architecture]
    batch_size: int
    block_size: int
    vocab_size: int
    mask_prob: float
    compile: bool
    method_options: Mapping[str, Any]
    tokens_per_s: float

    @property
    def flops_per_token(self) -> float:
        """Σ over the students of their analytic training FLOPs per token (the MFU's numerator per token)."""
        return sum(flops_per_token(a, self.vocab_size, self.block_size, self.mask_prob) for a in self.students.values())

    def mfu(self, peak_flops: float) -> float:
        """Effective model-FLOPs utilisation: the students' FLOP/s over the device's peak."""
        return self.tokens_per_s * self.flops_per_token / peak_flops

    def describe(self) -> str:
        """E.g. ``dwml, 4 students (L6-H8-D640, …), batch 32``."""
        archs = ", ".join(a.describe() for a in self.students.values())
        count = f"{len(self.students)} student{'s' if len(self.students) > 1 else ''}"
        return f"{self.method}, {count} ({archs}), batch {self.batch_size}"


@dataclass(frozen=True)
class ScoringMeasurement:
    """One measured zero-shot scoring run: ``pairs`` of ``family`` in ``seconds`` with one model, scored
    under ``variants`` (all from one pass)."""

    architecture: Architecture
    vocab_size: int
    family: str
    pairs: int
    seconds: float
    variants: tuple[str, ...] = (STRICT,)


@dataclass(frozen=True)
class FinetuneMeasurement:
    """One measured fine-tuning run of one task: ``examples`` × ``epochs`` in ``seconds``."""

    architecture: Architecture
    task: str
    examples: int
    epochs: int
    max_length: int
    seconds: float
    valid_examples: int | None = None  # None: the task's own valid file, whole


@dataclass(frozen=True)
class Throughput:
    """A throughput file: where and when it was measured, and every measurement."""

    device: str
    peak_flops: float
    date: str
    torch: str
    commit: str
    training: tuple[TrainingMeasurement, ...] = ()
    scoring: tuple[ScoringMeasurement, ...] = ()
    finetune: tuple[FinetuneMeasurement, ...] = ()

    def describe(self) -> str:
        """One line: device, date, code."""
        return f"{self.device} (peak {self.peak_flops / 1e12:.0f} TFLOP/s), measured {self.date}, commit {self.commit}, torch {self.torch}"


class _Reader:
    """Typed access to one JSON object of the throughput file; every error names file and key."""

    def __init__(self, data: Any, where: str, key: str) -> None:
        if not isinstance(data, dict):
            raise InputError(
                f"{where}: {key or 'the file'} must be a JSON object, got {type(data).__name__}; {REMEASURE}"
            )
        self.data, self.where, self.key = data, where, key

    def _name(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def get(self, name: str, kind: type | tuple[type, ...], what: str, default: Any = ...) -> Any:
        if name not in self.data:
            if default is not ...:
                return default
            raise InputError(f"{self.where}: key {self._name(name)!r} missing; {REMEASURE}")
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):  # true is no number
            raise InputError(f"{self.where}: {self._name(name)} must be {what}, got {self.data[name]!r}; {REMEASURE}")
        return value

    def positive(self, name: str, integer: bool = False) -> Any:
        kind = int if integer else (int, float)
        value = self.get(name, kind, "a positive integer" if integer else "a positive number")
        if not (value > 0 and math.isfinite(value)):
            raise InputError(f"{self.where}: {self._name(name)} must be positive, got {value!r}; {REMEASURE}")
        return value

    def architecture(self, name: str) -> Architecture:
        return _architecture(self.get(name, dict, "an architecture object"), f"{self.where}: {self._name(name)}")

    def entries(self, name: str) -> list[_Reader]:
        items = self.get(name, list, "a list (may be empty)", default=[])
        return [_Reader(item, self.where, f"{name}[{i}]") for i, item in enumerate(items)]


def _variants(entry: _Reader, where: str) -> tuple[str, ...]:
    """A scoring entry's ``variants``: known, distinct names (default: pll-word-l2r alone, the older runs')."""
    variants = entry.get("variants", list, "a list of scoring variant names", default=[STRICT])
    if not variants or len(set(variants)) != len(variants) or not all(v in VARIANTS for v in variants):
        raise InputError(
            f"{where}: {entry._name('variants')} must be distinct names from {list(VARIANTS)}, got "
            f"{variants!r}; {REMEASURE}"
        )
    return tuple(variants)


def _architecture(mapping: Any, key: str) -> Architecture:
    try:
        return Architecture.from_mapping(mapping, key)
    except InputError as error:
        raise InputError(f"{error}; {REMEASURE}") from None


def parse_throughput(data: Any, where: str = "throughput") -> Throughput:
    """A :class:`Throughput` from the decoded JSON of a throughput file (``where`` names it in errors)."""
    top = _Reader(data, where, "")
    version = top.get("format_version", int, "an integer")
    if version != FORMAT_VERSION:
        raise InputError(f"{where}: format_version {version}, this code reads {FORMAT_VERSION}; {REMEASURE}")
    training = []
    for entry in top.entries("training"):
        students = entry.get("students", dict, "an object: student name → architecture")
        if not students:
            raise InputError(f"{where}: {entry.key}.students is empty; {REMEASURE}")
        mask_prob = entry.positive("mask_prob")
        if mask_prob >= 1:
            raise InputError(f"{where}: {entry.key}.mask_prob must be below 1, got {mask_prob}; {REMEASURE}")
        training.append(
            TrainingMeasurement(
                method=entry.get("method", str, "a method name"),
                students={
                    name: _architecture(arch, f"{where}: {entry.key}.students.{name}")
                    for name, arch in students.items()
                },
                batch_size=entry.positive("batch_size", integer=True),
                block_size=entry.positive("block_size", integer=True),
                vocab_size=entry.positive("vocab_size", integer=True),
                mask_prob=float(mask_prob),
                compile=entry.get("compile", bool, "true or false"),
                method_options=entry.get("method_options", dict, "an object", default={}),
                tokens_per_s=float(entry.positive("tokens_per_s")),
            )
        )
    scoring = [
        ScoringMeasurement(
            architecture=entry.architecture("architecture"),
            vocab_size=entry.positive("vocab_size", integer=True),
            family=entry.get("family", str, "a family name"),
            pairs=entry.positive("pairs", integer=True),
            seconds=float(entry.positive("seconds")),
            variants=_variants(entry, where),
        )
        for entry in top.entries("scoring")
    ]
    finetune = []
    for entry in top.entries("finetune"):
        valid = entry.get("valid_examples", (int, type(None)), "a positive integer or null", default=None)
        if valid is not None and valid < 1:
            raise InputError(f"{where}: {entry.key}.valid_examples must be positive, got {valid}; {REMEASURE}")
        finetune.append(
            FinetuneMeasurement(
                architecture=entry.architecture("architecture"),
                task=entry.get("task", str, "a task name"),
                examples=entry.positive("examples", integer=True),
                epochs=entry.positive("epochs", integer=True),
                max_length=entry.positive("max_length", integer=True),
                seconds=float(entry.positive("seconds")),
                valid_examples=valid,
            )
        )
    return Throughput(
        device=top.get("device", str, "a device name"),
        peak_flops=float(top.positive("peak_flops")),
        date=top.get("date", str, "a date"),
        torch=top.get("torch", str, "a version string"),
        commit=top.get("commit", str, "a commit hash"),
        training=tuple(training),
        scoring=tuple(scoring),
        finetune=tuple(finetune),
    )


def read_throughput(path: str | Path) -> Throughput:
    """The throughput file at ``path``; a missing, non-JSON or malformed file is an :class:`InputError` naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read the throughput file ({error}); {REMEASURE}") from error
    try:
        data = json.loads(text)
    except ValueError as error:
        raise InputError(f"{path}: not JSON ({error}); {REMEASURE}") from error
    return parse_throughput(data, str(path))


def throughput_to_dict(throughput: Throughput) -> dict[str, Any]:
    """The JSON form of ``throughput`` (what :func:`parse_throughput` reads back)."""
    return {
        "format_version": FORMAT_VERSION,
        **{key: getattr(throughput, key) for key in HEADER_KEYS[1:]},
        "training": [
            {
                "method": m.method,
                "students": {n: a.to_dict() for n, a in m.students.items()},
                "batch_size": m.batch_size,
                "block_size": m.block_size,
                "vocab_size": m.vocab_size,
                "mask_prob": m.mask_prob,
                "compile": m.compile,
                "method_options": dict(m.method_options),
                "tokens_per_s": m.tokens_per_s,
            }
            for m in throughput.training
        ],
        "scoring": [
            {
                "architecture": m.architecture.to_dict(),
                "vocab_size": m.vocab_size,
                "family": m.family,
                "pairs": m.pairs,
                "seconds": m.seconds,
                "variants": list(m.variants),
            }
            for m in throughput.scoring
        ],
        "finetune": [
            {
                "architecture": m.architecture.to_dict(),
                "task": m.task,
                "examples": m.examples,
                "epochs": m.epochs,
                "max_length": m.max_length,
                "seconds": m.seconds,
                **({"valid_examples": m.valid_examples} if m.valid_examples is not None else {}),
            }
            for m in throughput.finetune
        ],
    }


# --- FLOPs of sequences of many lengths --------------------------------------------------------


@dataclass(frozen=True)
class Lengths:
    """Encoder inputs of many lengths n: how many, Σ n and Σ n² (attention grows with n per token)."""

    count: float = 0.0
    tokens: float = 0.0
    squares: float = 0.0

    @classmethod
    def of(cls, lengths: Sequence[int]) -> Lengths:
        """The sums of ``lengths``."""
        return cls(float(len(lengths)), float(sum(lengths)), float(sum(n * n for n in lengths)))

    def __add__(self, other: Lengths) -> Lengths:
        return Lengths(self.count + other.count, self.tokens + other.tokens, self.squares + other.squares)

    def scaled(self, factor: float) -> Lengths:
        """The same mix of lengths, ``factor`` times as many inputs."""
        return Lengths(self.count * factor, self.tokens * factor, self.squares * factor)


def encoder_flops(arch: Architecture, vocab_size: int, inputs: Lengths, head_rows: float, backward: bool) -> float:
    """Analytic FLOPs of running ``arch`` over ``inputs`` (each at its own length), with the LM head on
    ``head_rows`` positions; forward and backward (training) or forward only (a third of it).

    :func:`~babyteach.models.flops_per_token` is linear in the block length T and the head share:
    ``f(T, h) = a + b·T + c·h``; a sequence of n tokens costs ``n·f(n, 0)`` plus ``c`` per head row,
    so ``inputs`` enter only through Σ n and Σ n².
    """
    a = flops_per_token(arch, vocab_size, 0, 0.0)
    b = flops_per_token(arch, vocab_size, 1, 0.0) - a
    c = flops_per_token(arch, vocab_size, 0, 1.0) - a
    total = a * inputs.tokens + b * inputs.squares + c * head_rows
    return total if backward else total / 3


# --- the planned jobs --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingJob:
    """One planned training job: its students and the exact tokens its plan trains on."""

    rule: str
    output: str
    method: str
    students: Mapping[str, Architecture]
    tokens: int  # plan_steps(...).tokens: each student sees every one
    batch_size: int
    block_size: int
    vocab_size: int
    mask_prob: float
    compile: bool
    method_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def flops(self) -> float:
        """Σ over the students of their analytic training FLOPs."""
        return self.tokens * sum(
            flops_per_token(a, self.vocab_size, self.block_size, self.mask_prob) for a in self.students.values()
        )


@dataclass(frozen=True)
class PairWork:
    """What the scorer runs for the pairs of one family: distinct sentences' masked copies."""

    pairs: int
    copies: Lengths  # one input per masked copy, each of its sentence's length

    def flops(self, arch: Architecture, vocab_size: int) -> float:
        """Forward FLOPs of scoring these copies with ``arch``: :func:`scoring_flops`."""
        return scoring_flops(arch, vocab_size, self.copies)

    def scaled_to(self, pairs: float) -> PairWork:
        """The same family at ``pairs`` pairs (its mix of lengths kept)."""
        return PairWork(int(round(pairs)), self.copies.scaled(pairs / self.pairs))


def scoring_flops(arch: Architecture, vocab_size: int, copies: Lengths) -> float:
    """Forward FLOPs of scoring ``copies`` masked copies: the encoder over each, the LM head at its one masked position."""
    return encoder_flops(arch, vocab_size, copies, head_rows=copies.count, backward=False)


@dataclass(frozen=True)
class ScoringJob:
    """One planned zero-shot job: one model scored on one family."""

    rule: str
    output: str
    family: str
    architecture: Architecture
    vocab_size: int
    work: PairWork


@dataclass(frozen=True)
class TaskWork:
    """One fine-tuning run of a task: its train inputs and the valid inputs scored after each epoch."""

    task: str  # the task trained (mnli also for mnli-mm, scored with its model)
    train: Lengths
    valid: Lengths

    def flops(self, arch: Architecture, epochs: int) -> float:
        """``epochs`` × (forward+backward over train, forward over valid); the classification head is left out."""
        return epochs * (
            encoder_flops(arch, 1, self.train, 0.0, backward=True)
            + encoder_flops(arch, 1, self.valid, 0.0, backward=False)
        )


@dataclass(frozen=True)
class FinetuneJob:
    """One planned fine-tuning job: one model fine-tuned on every task that has its files."""

    rule: str
    output: str
    architecture: Architecture
    epochs: int  # finetune.max_epochs: an upper bound, early stopping can only shorten a task
    tasks: tuple[TaskWork, ...]


# --- seconds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobCost:
    """The GPU seconds of one job (None: not budgeted, ``reason`` says why) and what they assume."""

    rule: str
    output: str
    seconds: float | None
    notes: tuple[str, ...] = ()  # e.g. "MFU transferred from …", "upper bound: max_epochs"
    reason: str | None = None


def training_measurement(job: TrainingJob, throughput: Throughput) -> tuple[TrainingMeasurement, tuple[str, ...]]:
    """The entry whose MFU a training job takes, and the notes on what differs (a transfer).

    Same method and same ``compile`` setting are required (else :class:`MissingMeasurement`);
    among those the entry with the same students, then batch size, vocabulary and block size.
    """
    same = [m for m in throughput.training if m.method == job.method and m.compile == job.compile]
    if not same:
        other = sorted({f"{m.method} (compile {str(m.compile).lower()})" for m in throughput.training}) or ["none"]
        raise MissingMeasurement(
            f"no training measurement of method {job.method!r} with compile {str(job.compile).lower()} "
            f"(measured: {', '.join(other)}); measure it with bench/gpu_check.py"
        )
    archs = sorted(a.describe() for a in job.students.values())

    def differences(m: TrainingMeasurement) -> list[str]:
        found = []
        if sorted(a.describe() for a in m.students.values()) != archs:
            found.append(f"students {', '.join(a.describe() for a in m.students.values())}")
        for name in ("batch_size", "vocab_size", "block_size"):
            if getattr(m, name) != getattr(job, name):
                found.append(f"{name.replace('_', ' ')} {getattr(m, name)}")
        if not math.isclose(m.mask_prob, job.mask_prob):
            found.append(f"mask_prob {m.mask_prob}")
        found += [
            f"{key} {m.method_options[key]!r}"
            for key in sorted(m.method_options)
            if key in job.method_options and m.method_options[key] != job.method_options[key]
        ]
        return found

    best = min(same, key=lambda m: (len(differences(m)), differences(m)))
    diff = differences(best)
    if not diff:
        return best, ()
    return best, (
        f"{job.method} MFU {best.mfu(throughput.peak_flops):.1%} transferred from the measured run with "
        f"{'; '.join(diff)} (this job: {len(job.students)} student(s) {', '.join(archs)}, batch {job.batch_size})",
    )


def training_cost(job: TrainingJob, throughput: Throughput) -> JobCost:
    """GPU seconds of a training job: its students' FLOPs at the effective MFU of its method."""
    measured, notes = training_measurement(job, throughput)
    seconds = job.flops / (measured.mfu(throughput.peak_flops) * throughput.peak_flops)
    return JobCost(job.rule, job.output, seconds, notes)


def scoring_cost(
    job: ScoringJob, throughput: Throughput, family_work: Callable[[str, tuple[str, ...]], PairWork]
) -> JobCost:
    """GPU seconds of a zero-shot job: its forward FLOPs at the FLOP rate of the measured scoring run.

    ``family_work(family, variants)`` is the work of a family's pairs under those scoring variants with
    this job's tokenizer (the measured entry's family and variants, rescaled to the entry's pairs); the
    entry of the job's own family is preferred, another family's rate is transferred and flagged.
    """
    if not throughput.scoring:
        raise MissingMeasurement("no scoring measurement (key 'scoring' empty); measure it with bench/gpu_check.py")
    own = [m for m in throughput.scoring if m.family == job.family]
    measured = max(own or throughput.scoring, key=lambda m: m.pairs)
    work = family_work(measured.family, measured.variants).scaled_to(measured.pairs)
    rate = work.flops(measured.architecture, measured.vocab_size) / measured.seconds  # FLOP/s
    notes = (
        ()
        if own
        else (
            f"scoring rate transferred from {measured.family} ({measured.pairs} pairs in {measured.seconds:g} s) to "
            f"{job.family}, scaled by the tokens of its masked copies",
        )
    )
    return JobCost(job.rule, job.output, job.work.flops(job.architecture, job.vocab_size) / rate, notes)


def finetune_cost(
    job: FinetuneJob, throughput: Throughput, task_work: Callable[[FinetuneMeasurement], TaskWork]
) -> JobCost:
    """GPU seconds of a fine-tuning job, an upper bound: every task for ``max_epochs`` epochs at the
    FLOP rate of the measured fine-tuning run of the same task (else of another task, flagged).

    ``task_work(entry)`` is the work of a measured entry (its task's inputs with this job's tokenizer).
    """
    if not throughput.finetune:
        raise MissingMeasurement(
            "no fine-tuning measurement (key 'finetune' empty); measure it with bench/gpu_check.py"
        )
    notes = [f"upper bound: {job.epochs} epochs (finetune.max_epochs) per task; early stopping can only shorten it"]
    seconds = 0.0
    for task in job.tasks:
        own = [m for m in throughput.finetune if m.task == task.task]
        measured = max(own or throughput.finetune, key=lambda m: m.examples * m.epochs)
        rate = task_work(measured).flops(measured.architecture, measured.epochs) / measured.seconds
        seconds += task.flops(job.architecture, job.epochs) / rate
        if not own:
            notes.append(f"fine-tuning rate of {task.task} transferred from {measured.task}, scaled by tokens")
    return JobCost(job.rule, job.output, seconds, tuple(notes))


# --- the budget table --------------------------------------------------------------------------

#: Rules in the order the table lists them (others follow, alphabetically).
RULE_ORDER = (
    "train_baseline",
    "train_students",
    "train_mutual",
    "train_probe",
    "evaluate_zero_shot",
    "evaluate_probe",
    "evaluate_finetune",
)


@dataclass(frozen=True)
class RuleBudget:
    """The jobs of one rule in one plan: how many, how many budgeted, their GPU seconds."""

    rule: str
    jobs: int
    budgeted: int
    seconds: float

    @property
    def complete(self) -> bool:
        """Whether every job of the rule is in ``seconds`` (else it is a lower bound)."""
        return self.budgeted == self.jobs


def by_rule(costs: Sequence[JobCost]) -> list[RuleBudget]:
    """The costs summed per rule, in :data:`RULE_ORDER`."""
    rules = sorted(
        {c.rule for c in costs}, key=lambda r: (RULE_ORDER.index(r) if r in RULE_ORDER else len(RULE_ORDER), r)
    )
    return [
        RuleBudget(
            rule,
            sum(1 for c in costs if c.rule == rule),
            sum(1 for c in costs if c.rule == rule and c.seconds is not None),
            sum(c.seconds for c in costs if c.rule == rule and c.seconds is not None),
        )
        for rule in rules
    ]


def total(costs: Sequence[JobCost]) -> RuleBudget:
    """All costs together (``rule`` "total")."""
    budgeted = [c.seconds for c in costs if c.seconds is not None]
    return RuleBudget("total", len(costs), len(budgeted), sum(budgeted))


def _cell(budget: RuleBudget | None) -> str:
    if budget is None or budget.jobs == 0:
        return "–"
    jobs = f"{budget.jobs} job{'s' if budget.jobs > 1 else ''}"
    if budget.budgeted == 0:
        return f"not budgeted ({jobs})"
    hours = f"{budget.seconds / 3600:.2f} h"
    if budget.complete:
        return f"{hours} ({jobs})"
    return f"≥ {hours} ({budget.budgeted} of {jobs} budgeted)"


def _counted(items: Sequence[str]) -> list[str]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return [f"{text} [{n} job{'s' if n > 1 else ''}]" for text, n in counts.items()]


def format_budget(
    columns: Mapping[str, Sequence[JobCost]],
    throughput: Throughput,
    title: str,
    others: Mapping[str, int] | None = None,
    label: str | None = None,
) -> str:
    """A Markdown table of GPU-hours per rule, one column per plan (e.g. "1 seed", "3 seeds"), then what
    could not be budgeted and why, the transfers and bounds, and the throughput's origin.

    ``others`` counts the planned jobs that are no GPU work (tables, figures); ``label`` is printed
    before everything (e.g. where an example's numbers come from).
    """
    names = list(columns)
    lines = [f"**{label}**", ""] if label else []
    lines += [title, "", "| rule | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    rules = [b.rule for b in by_rule([c for costs in columns.values() for c in costs])]
    tables = {name: {b.rule: b for b in by_rule(costs)} for name, costs in columns.items()}
    for rule in rules:
        lines.append(f"| {rule} | " + " | ".join(_cell(tables[n].get(rule)) for n in names) + " |")
    lines.append("| **total** | " + " | ".join(f"**{_cell(total(columns[n]))}**" for n in names) + " |")
    lines.append("")
    widest = max(names, key=lambda n: len(columns[n]))  # the plan with the most jobs holds every kind of note
    counts = f" (job counts of the {widest} plan)" if len(names) > 1 else ""
    missing = _counted([f"{c.rule}: {c.reason}" for c in columns[widest] if c.seconds is None])
    if missing:
        lines += [f"Not budgeted, no guess made{counts}:", *[f"- {m}" for m in missing], ""]
    notes = _counted([f"{c.rule}: {n}" for c in columns[widest] for n in c.notes])
    if notes:
        lines += [f"Transfers and bounds{counts}:", *[f"- {n}" for n in notes], ""]
    if others:
        lines.append(
            "Not GPU work, not in the table: " + ", ".join(f"{r} ({n})" for r, n in sorted(others.items())) + "."
        )
    lines.append(
        f"Throughput: {throughput.describe()}. One GPU per job; GPU-hours are the sum of the jobs' GPU time "
        "(jobs run one after another on one GPU take this long; N GPUs in parallel divide the wall time, "
        "not the GPU-hours)."
    )
    return "\n".join(lines)
