"""The method registry: one entry per training method, saying how a step computes its loss.

The training loop (:mod:`babyteach.train`) knows nothing about methods. It builds the
students, asks the method for its training-only modules, and on every micro-batch calls
:meth:`Method.step_loss` with a :class:`StepContext`; it gets back one loss per student
(peer) and optimises each student with its own optimiser::

    method = make_method("kd", lam=0.5, tau=2.0)
    extras = method.extra_modules(students)          # e.g. SD's auxiliary heads, per student
    ctx = StepContext(batch, students, extras, teacher)
    losses = method.step_loss(ctx)                   # {"peer1": tensor(..), "peer2": tensor(..)}

Adding a method is adding one :class:`Method` subclass and one :data:`METHODS` entry. A
method that keeps state across steps (DWML's peer weights ω) returns it from
:meth:`Method.state_dict`, which the loop checkpoints and restores. A method with an outer
loop (DWML, KD_DWML) sets ``has_outer_step``; the loop then draws held-out batches from
the dev split and, at the first micro-batch of every step where :meth:`Method.outer_step_due`,
calls :meth:`Method.outer_step` before the inner losses, logging the record it returns::

    if method.outer_step_due(step):
        record = method.outer_step(OuterStep(ctx, dev_batch, gamma=lr, step=step, total_steps=steps))
Formulas are those of ``docs/METHODS.md``; the hyperparameters default to the config schema's
``kd``, ``sd`` and ``mutual`` sections (:func:`babyteach.config_schema.schema_section`); the losses are
the pure functions of :mod:`babyteach.losses`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import RobertaForMaskedLM

from babyteach.bilevel import (
    HYPERGRADIENT_MODES,
    INNER_PRODUCTS,
    hypergradient_and_outer_loss,
    mirror_descent_log_step,
    outer_step_count,
    outer_step_eta,
)
from babyteach.config_schema import config_field, is_int, require, schema_section
from babyteach.data.masking import MaskedBatch
from babyteach.errors import InputError
from babyteach.losses import SoftTargets, cross_entropy, kd_loss, mutual_loss_terms, sd_loss
from babyteach.models import SDExits, masked_logits

#: One masked micro-batch on the training device: ``input_ids`` ``(batch, seq)`` (corrupted),
#: ``positions`` ``(batch, k)`` int64 (the predicted columns of each row, ascending) and ``targets``
#: ``(batch · k,)`` (the original ids there, row-major). Built by :mod:`babyteach.data.batches`.
MLMBatch = MaskedBatch


@dataclass
class StepContext:
    """What a method sees on one micro-batch.

    :meth:`teacher_logits` runs the frozen teacher at most once per context, i.e. once
    per micro-batch however many students read it.
    """

    batch: MLMBatch
    students: Mapping[str, RobertaForMaskedLM]  # in peer order: ω_k belongs to the k-th
    extras: Mapping[str, nn.Module]
    teacher: RobertaForMaskedLM | None = None
    _teacher_logits: torch.Tensor | None = field(default=None, repr=False)
    _teacher_targets: dict[float, SoftTargets] = field(default_factory=dict, repr=False)

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

    def teacher_targets(self, tau: float) -> SoftTargets:
        """The teacher's soft targets at temperature ``tau``, computed once per context and τ."""
        if tau not in self._teacher_targets:
            self._teacher_targets[tau] = SoftTargets.of(self.teacher_logits().float(), tau)
        return self._teacher_targets[tau]


@dataclass(frozen=True)
class OuterStep:
    """What an outer (peer-weight) step sees: the step's first train micro-batch (its
    :class:`StepContext`, whose teacher pass the inner loss then reuses), one held-out dev
    batch, and the inner learning rate γ of this step."""

    ctx: StepContext
    dev_batch: MLMBatch
    gamma: float
    step: int  # the optimiser step, counted from 1
    total_steps: int
    #: Mean over the data-parallel processes of a value each computed on its own rows
    #: (identity in a single process), so every process applies the same ω update.
    average: Callable[[torch.Tensor], torch.Tensor] = lambda tensor: tensor


@dataclass(frozen=True)
class Method(ABC):
    """How a training step computes each student's loss. Subclasses are frozen dataclasses
    whose fields are the method's hyperparameters (each with a ``help``)."""

    name: ClassVar[str]
    #: Whether the method distils from a trained teacher (``train(..., teacher_dir=...)``).
    needs_teacher: ClassVar[bool] = False
    #: Whether the method has an outer step on held-out dev batches (:meth:`outer_step`).
    has_outer_step: ClassVar[bool] = False

    def start(self, peers: Sequence[str], device: torch.device) -> None:  # noqa: B027 (an optional hook)
        """Called once before training with the peer names in order (their ω index) and the device."""

    def extra_modules(self, students: Mapping[str, RobertaForMaskedLM]) -> dict[str, nn.Module]:
        """Training-only modules per student, optimised with that student and never saved."""
        return {}

    @abstractmethod
    def step_loss(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The scalar loss of every student on ``ctx.batch``, keyed by student name."""

    def outer_step_due(self, step: int) -> bool:
        """Whether optimiser step ``step`` (from 1) begins with an outer step."""
        return False

    def outer_step(self, outer: OuterStep) -> dict[str, float | torch.Tensor]:
        """Run one outer step; return the record to log (one row of ``peer_weights.csv``). Values may
        be 0-d tensors on the device: the loop reads them back at its next log line, not at once."""
        raise NotImplementedError(f"method {self.name!r} has no outer step")

    def initial_record(self) -> dict[str, float]:
        """The row logged before the first outer step (step 0)."""
        raise NotImplementedError(f"method {self.name!r} has no outer step")

    def peer_summary(self) -> dict[str, dict[str, Any]]:
        """Per-peer facts for the summary and model cards (e.g. DWML's final ω)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """State kept across steps, saved in checkpoints (none for single-model methods)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` from a checkpoint."""
        if state:
            raise InputError(f"method {self.name!r} keeps no state, but the checkpoint holds {sorted(state)}")

    def options(self) -> dict[str, Any]:
        """The hyperparameters, JSON-able, for model cards and summaries."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def _require(self, name: str, ok: bool, what: str) -> None:
        """InputError ``<config key>: must be <what>, got <value>`` for hyperparameter ``name`` unless ``ok``
        (the key the workflow reads it from, e.g. ``kd.tau`` for KD_DWML's ``kd_tau``)."""
        require(ok, self.__dataclass_fields__[name].metadata["config_key"], what, getattr(self, name))


@dataclass(frozen=True)
class Baseline(Method):
    """``L = CE(z, y)`` (RoBERTa's MLM objective), for each student independently."""

    name: ClassVar[str] = "baseline"

    def step_loss(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {name: cross_entropy(ctx.student_logits(name), ctx.batch.targets) for name in ctx.students}


@dataclass(frozen=True)
@schema_section("kd")
class KD(Method):
    """Hinton et al. 2015: ``(1 − λ) CE(z_s, y) + λ τ² KL(sg(p_T) ‖ p_s)`` per student.

    The frozen teacher sees the same masked input; its forward pass runs once per
    micro-batch and is shared by every student of the job.
    """

    name: ClassVar[str] = "kd"
    needs_teacher: ClassVar[bool] = True
    lam: float
    tau: float

    def __post_init__(self) -> None:
        self._require("lam", 0 <= self.lam <= 1, "in [0, 1]")
        self._require("tau", self.tau > 0, "positive")

    def step_loss(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        teacher = ctx.teacher_targets(self.tau)  # one softmax of the teacher for all students
        return {
            name: kd_loss(ctx.student_logits(name), teacher, ctx.batch.targets, self.lam, self.tau)
            for name in ctx.students
        }


@dataclass(frozen=True)
@schema_section("sd")
class SD(Method):
    """Self-distillation, Zhang et al. 2019: each student with its own :class:`SDExits`.

    Only the full-depth model with its deepest head is saved; the exits are training-only.
    """

    name: ClassVar[str] = "sd"
    lam: float
    tau: float
    mu: float

    def __post_init__(self) -> None:
        self._require("lam", 0 <= self.lam <= 1, "in [0, 1]")
        self._require("tau", self.tau > 0, "positive")
        self._require("mu", self.mu >= 0, "non-negative")

    def extra_modules(self, students: Mapping[str, RobertaForMaskedLM]) -> dict[str, nn.Module]:
        return {name: SDExits(model.config) for name, model in students.items()}

    def step_loss(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        losses = {}
        for name, model in ctx.students.items():
            out = ctx.extras[name](model, ctx.batch.input_ids, None, ctx.batch.positions)
            losses[name] = sd_loss(out.logits, out.hidden, ctx.batch.targets, self.lam, self.tau, self.mu)
        return losses


@dataclass(frozen=True)
@schema_section("mutual")
class DML(Method):
    """Deep mutual learning (Zhang et al. 2018): DWML's inner loss with ω fixed at 1/M.

    Every peer learns from the labels and from each other peer's detached distribution
    (:func:`babyteach.losses.mutual_loss_terms`; each peer optimises its own share).
    """

    name: ClassVar[str] = "dml"
    alpha: float
    tau: float
    #: Mutable holder (the dataclass is frozen): the peer names and ω, set by :meth:`start`.
    _state: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._require("alpha", 0 <= self.alpha <= 1, "in [0, 1]")
        self._require("tau", self.tau > 0, "positive")

    def start(self, peers: Sequence[str], device: torch.device) -> None:
        self._state["peers"] = list(peers)
        self._state["weights"] = torch.full((len(peers),), 1.0 / len(peers), dtype=torch.float32, device=device)

    @property
    def weights(self) -> torch.Tensor:
        """ω, ``(M,)`` on the training device, in the order of the peers given to :meth:`start`."""
        if "weights" not in self._state:
            raise RuntimeError(f"method {self.name!r}: start() was not called")
        return self._state["weights"]

    def supervised_losses(self, ctx: StepContext, logits: Sequence[torch.Tensor]) -> list[torch.Tensor] | None:
        """Each peer's supervised term ``S_i`` (None: plain CE against the labels)."""
        return None

    def step_loss(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        names = list(ctx.students)
        if names != self._state.get("peers"):
            raise RuntimeError(f"method {self.name!r} was started for peers {self._state.get('peers')}, got {names}")
        logits = [ctx.student_logits(name) for name in names]  # M × (n_masked, vocab)
        terms = mutual_loss_terms(
            logits, ctx.batch.targets, self.weights, self.alpha, self.tau, self.supervised_losses(ctx, logits)
        )  # (M,)
        return dict(zip(names, terms, strict=True))

    def weight_values(self) -> list[float]:
        """ω as Python floats, for logs and summaries."""
        return self.weights.tolist()

    def peer_summary(self) -> dict[str, dict[str, Any]]:
        return {name: {"peer_weight": w} for name, w in zip(self._state["peers"], self.weight_values(), strict=True)}


@dataclass(frozen=True)
@schema_section("mutual")
class DWML(DML):
    """Dynamically weighted mutual learning (the paper's method; ``docs/METHODS.md``, DWML).

    The inner loss is DML's with weights ω; every ``weight_update_every`` steps an outer
    step on a held-out dev batch computes the hypergradient of the ensemble loss ``L2``
    (Eq. 3, ``unrolled`` or ``first_order``) and moves ω by mirror descent (Eq. 4) with a
    cosine-annealed step size η: η₀ at the run's first outer step, exactly η_min at its last
    (:func:`babyteach.bilevel.outer_step_eta`).

    ω is kept as ``log ω`` in float64 on the training device (:func:`babyteach.bilevel.mirror_descent_log_step`),
    so a peer whose weight falls below what float32 can hold is not pinned at 0 for the rest of the
    run; :attr:`weights` is its float32 copy, which the losses read. The outer step never reads a
    value back to the host: its record holds device values, which the loop reads at its next log line.
    """

    name: ClassVar[str] = "dwml"
    has_outer_step: ClassVar[bool] = True
    weight_update_every: int
    hypergradient: str
    inner_product: str
    eta0: float
    eta_min: float
    clip: float | None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(
            "weight_update_every", is_int(self.weight_update_every) and self.weight_update_every >= 1, "an integer ≥ 1"
        )
        self._require("hypergradient", self.hypergradient in HYPERGRADIENT_MODES, f"one of {HYPERGRADIENT_MODES}")
        self._require("inner_product", self.inner_product in INNER_PRODUCTS, f"one of {INNER_PRODUCTS}")
        self._require("eta0", self.eta0 > 0, "positive")
        self._require("eta_min", 0 <= self.eta_min <= self.eta0, f"in [0, eta0 = {self.eta0}]")
        self._require("clip", self.clip is None or self.clip > 0, "positive or null")

    def start(self, peers: Sequence[str], device: torch.device) -> None:
        super().start(peers, device)
        self._set_log_weights(torch.full((len(peers),), -math.log(len(peers)), dtype=torch.float64, device=device))

    def _set_log_weights(self, log_weights: torch.Tensor) -> None:
        """Make ``log_weights`` (M,) the state (float64 on the training device), and its float32 ``exp`` what the
        losses read."""
        self._state["log_weights"] = log_weights.to(self.weights.device, torch.float64)
        self._state["weights"] = self._state["log_weights"].exp().float()

    def weight_values(self) -> list[float]:
        return self._state["log_weights"].exp().tolist()  # float64: a weight under float32's range is logged, not 0

    def outer_step_due(self, step: int) -> bool:
        return step % self.weight_update_every == 0

    def outer_step(self, outer: OuterStep) -> dict[str, float | torch.Tensor]:
        ctx, names = outer.ctx, self._state["peers"]
        update = outer.step // self.weight_update_every  # this outer step's number, from 1
        n_updates = outer_step_count(outer.total_steps, self.weight_update_every)
        eta = outer_step_eta(update, n_updates, self.eta0, self.eta_min)
        supervised = self.supervised_loss_fn(ctx)
        g, outer_loss = hypergradient_and_outer_loss(
            [ctx.students[name] for name in names],
            (_mlm_inputs(ctx.batch), ctx.batch.targets),
            (_mlm_inputs(outer.dev_batch), outer.dev_batch.targets),
            self.weights,
            self.alpha,
            outer.gamma,
            self.hypergradient,
            tau=self.tau,
            supervised=supervised,
            inner_product=self.inner_product,
        )  # g: (M,)
        g, outer_loss = outer.average(g.float()), outer.average(outer_loss.float())
        self._set_log_weights(mirror_descent_log_step(self._state["log_weights"], g, eta, self.clip))
        # device values: the loop reads them back at its next log line, so the step never waits
        return self._record(outer.step, update, eta, outer.gamma, outer_loss, g.unbind())

    def initial_record(self) -> dict[str, float]:
        record = self._record(0, 0, math.nan, math.nan, math.nan, [math.nan] * len(self._state["peers"]))
        return {key: float(value) for key, value in record.items()}

    def _record(
        self,
        step: int,
        update: int,
        eta: float,
        gamma: float,
        outer_loss: float | torch.Tensor,
        g: Sequence[float | torch.Tensor],
    ) -> dict[str, float | torch.Tensor]:
        """One row of ``peer_weights.csv``: ω after the step and the g that moved it (numbers, or
        0-d device tensors that the training loop reads back as numbers)."""
        names = self._state["peers"]
        return {
            "step": step,
            "update": update,
            "eta": eta,
            "gamma": gamma,
            "outer_loss": outer_loss,
            **{f"weight.{name}": w for name, w in zip(names, self._state["log_weights"].exp().unbind(), strict=True)},
            **{f"hypergradient.{name}": value for name, value in zip(names, g, strict=True)},
        }

    def supervised_loss_fn(self, ctx: StepContext) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
        """``S(logits, targets)`` of the hypergradient's ``La_k`` (None: CE)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"log_weights": self._state["log_weights"].detach().cpu()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ``log ω`` (checkpoints of the former ω format belong to an older checkpoint version,
        which the loop refuses before this)."""
        m = len(self._state["peers"])
        log_weights = state.get("log_weights")
        if log_weights is None or tuple(log_weights.shape) != (m,):
            raise InputError(
                f"method {self.name!r}: the checkpoint holds no peer weights for {m} peers (found {sorted(state)}); "
                "delete the run's checkpoint folder to train it afresh"
            )
        self._set_log_weights(log_weights)


@dataclass(frozen=True)
@schema_section("kd")
class KDDWML(DWML):
    """DWML with each peer's supervised term the KD loss against the trained teacher
    (``docs/METHODS.md``, KD_DWML); the teacher's forward pass is shared by all peers and by the
    outer step of the same micro-batch."""

    name: ClassVar[str] = "kd_dwml"
    needs_teacher: ClassVar[bool] = True
    lam: float
    kd_tau: float = config_field("kd", "tau")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require("lam", 0 <= self.lam <= 1, "in [0, 1]")
        self._require("kd_tau", self.kd_tau > 0, "positive")

    def supervised_losses(self, ctx: StepContext, logits: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        teacher = ctx.teacher_targets(self.kd_tau)
        return [kd_loss(z, teacher, ctx.batch.targets, self.lam, self.kd_tau) for z in logits]

    def supervised_loss_fn(self, ctx: StepContext) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        teacher = ctx.teacher_targets(self.kd_tau)
        return lambda logits, targets: kd_loss(logits, teacher, targets, self.lam, self.kd_tau)


def _mlm_inputs(batch: MLMBatch) -> dict[str, torch.Tensor]:
    """A batch as :func:`babyteach.bilevel.mlm_logits` reads it."""
    return {"input_ids": batch.input_ids, "positions": batch.positions}


#: Method name → its class. The only place that names the methods.
METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (Baseline, KD, SD, DML, DWML, KDDWML)}


def make_method(name: str, **options: Any) -> Method:
    """The method ``name`` with hyperparameters ``options`` (the rest at their defaults)."""
    if name not in METHODS:
        raise InputError(f"unknown training method {name!r}; known methods: {sorted(METHODS)}")
    cls = METHODS[name]
    known = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"method {name!r} has no option(s) {unknown}; its options are {sorted(known)}")
    return cls(**options)
