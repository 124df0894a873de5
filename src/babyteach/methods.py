"""The method registry: one entry per training method, saying how a step computes its loss.

The training loop (:mod:`babyteach.train`) knows nothing about methods. It builds the
students, asks the method for its training-only modules, and on every micro-batch calls
:meth:`Method.step_loss` with a :class:`StepContext`; it gets back one loss per student
(peer) and optimises each student with its own optimiser::

    method = make_method("kd", lam=0.5, tau=2.0)
    extras = method.extra_modules(students)          # e.g. SD's auxiliary heads, per student
    ctx = StepContext(batch, students, extras, teacher)
    losses = method.step_loss(ctx)                   # {"peer1": tensor(..), "peer2": tensor(..)}

Adding a method (DML, DWML, KD_DWML) is adding one :class:`Method` subclass and one
:data:`METHODS` entry. A method that keeps state across steps (DWML's peer weights ω)
returns it from :meth:`Method.state_dict`, which the loop checkpoints and restores.
Formulas and defaults are those of ``METHODS.md``; the losses are the pure functions of
:mod:`babyteach.losses`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import RobertaForMaskedLM

from babyteach.errors import InputError
from babyteach.losses import cross_entropy, kd_loss, sd_loss
from babyteach.models import SDExits, masked_logits


@dataclass(frozen=True)
class MLMBatch:
    """One masked micro-batch, on the training device."""

    input_ids: torch.Tensor  # (batch, seq): the corrupted ids
    positions: torch.Tensor  # (batch, seq) bool: the positions to predict
    targets: torch.Tensor  # (n_masked,): original ids at ``positions``, row-major order


@dataclass
class StepContext:
    """What a method sees on one micro-batch.

    :meth:`teacher_logits` runs the frozen teacher at most once per context, i.e. once
    per micro-batch however many students read it.
    """

    batch: MLMBatch
    students: Mapping[str, RobertaForMaskedLM]
    extras: Mapping[str, nn.Module]
    teacher: RobertaForMaskedLM | None = None
    _teacher_logits: torch.Tensor | None = field(default=None, repr=False)

    def student_logits(self, name: str) -> torch.Tensor:
        """Student ``name``'s logits at the masked positions, ``(n_masked, vocab)``."""
        return masked_logits(self.students[name], self.batch.input_ids, None, self.batch.positions)

    def teacher_logits(self) -> torch.Tensor:
        """The teacher's logits at the masked positions ``(n_masked, vocab)``, without gradient."""
        if self.teacher is None:
            raise RuntimeError("this method reads a teacher but none was loaded")
        if self._teacher_logits is None:
            with torch.no_grad():
                self._teacher_logits = masked_logits(self.teacher, self.batch.input_ids, None, self.batch.positions)
        return self._teacher_logits


@dataclass(frozen=True)
class Method(ABC):
    """How a training step computes each student's loss. Subclasses are frozen dataclasses
    whose fields are the method's hyperparameters (each with a ``help``)."""

    name: ClassVar[str]
    #: Whether the method distils from a trained teacher (``train(..., teacher_dir=...)``).
    needs_teacher: ClassVar[bool] = False

    def extra_modules(self, students: Mapping[str, RobertaForMaskedLM]) -> dict[str, nn.Module]:
        """Training-only modules per student, optimised with that student and never saved."""
        return {}

    @abstractmethod
    def step_loss(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The scalar loss of every student on ``ctx.batch``, keyed by student name."""

    def state_dict(self) -> dict[str, Any]:
        """State kept across steps, saved in checkpoints (none for single-model methods)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` from a checkpoint."""
        if state:
            raise InputError(f"method {self.name!r} keeps no state, but the checkpoint holds {sorted(state)}")

    def options(self) -> dict[str, Any]:
        """The hyperparameters, JSON-able, for model cards and summaries."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Baseline(Method):
    """``L = CE(z, y)`` (RoBERTa's MLM objective), for each student independently."""

    name: ClassVar[str] = "baseline"

    def step_loss(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {name: cross_entropy(ctx.student_logits(name), ctx.batch.targets) for name in ctx.students}


@dataclass(frozen=True)
class KD(Method):
    """Hinton et al. 2015: ``(1 − λ) CE(z_s, y) + λ τ² KL(sg(p_T) ‖ p_s)`` per student.

    The frozen teacher sees the same masked input; its forward pass runs once per
    micro-batch and is shared by every student of the job.
    """

    name: ClassVar[str] = "kd"
    needs_teacher: ClassVar[bool] = True
    lam: float = field(default=0.5, metadata={"help": "weight λ of the distillation term, in [0, 1]"})
    tau: float = field(default=2.0, metadata={"help": "softmax temperature τ > 0"})

    def __post_init__(self) -> None:
        _check_unit("kd.lam", self.lam)
        _check_positive("kd.tau", self.tau)

    def step_loss(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        teacher = ctx.teacher_logits()
        return {
            name: kd_loss(ctx.student_logits(name), teacher, ctx.batch.targets, self.lam, self.tau)
            for name in ctx.students
        }


@dataclass(frozen=True)
class SD(Method):
    """Self-distillation, Zhang et al. 2019: each student with its own :class:`SDExits`.

    Only the full-depth model with its deepest head is saved; the exits are training-only.
    """

    name: ClassVar[str] = "sd"
    lam: float = field(default=0.1, metadata={"help": "weight λ of each exit's distillation term, in [0, 1]"})
    tau: float = field(default=3.0, metadata={"help": "softmax temperature τ > 0"})
    mu: float = field(default=1e-6, metadata={"help": "weight μ ≥ 0 of the feature (hint) term"})

    def __post_init__(self) -> None:
        _check_unit("sd.lam", self.lam)
        _check_positive("sd.tau", self.tau)
        if not self.mu >= 0:
            raise InputError(f"sd.mu: {self.mu} must be non-negative")

    def extra_modules(self, students: Mapping[str, RobertaForMaskedLM]) -> dict[str, nn.Module]:
        return {name: SDExits(model.config) for name, model in students.items()}

    def step_loss(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        losses = {}
        for name, model in ctx.students.items():
            out = ctx.extras[name](model, ctx.batch.input_ids, None, ctx.batch.positions)
            losses[name] = sd_loss(out.logits, out.hidden, ctx.batch.targets, self.lam, self.tau, self.mu)
        return losses


def _check_unit(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{key}: {value} must lie in [0, 1]")


def _check_positive(key: str, value: float) -> None:
    if not value > 0:
        raise InputError(f"{key}: {value} must be positive")


#: Method name → its class. The only place that names the methods.
METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (Baseline, KD, SD)}


def make_method(name: str, **options: Any) -> Method:
    """The method ``name`` with hyperparameters ``options`` (the rest at their defaults)."""
    if name not in METHODS:
        raise InputError(f"unknown training method {name!r}; known methods: {sorted(METHODS)}")
    cls = METHODS[name]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"method {name!r} has no option(s) {unknown}; its options are {sorted(known)}")
    return cls(**options)
