"""Hyperparameters of a training run, validated at construction.

Kept apart from :mod:`babyteach.train` (which imports torch and transformers) so that the
workflow can check the ``training`` config section at start-up without paying for those
imports on every ``snakemake`` call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from babyteach.config_schema import (
    as_number,
    config_field,
    is_int,
    is_number,
    require,
    schema_default,
    schema_property,
    schema_section,
)
from babyteach.errors import InputError

PRECISIONS: tuple[str, ...] = tuple(schema_property("training", "precision")["enum"])
DEVICES = ("auto", "cpu", "cuda")


#: Fields that hold numbers, and those that hold integers: a number written as text ("1e-3") or, for an
#: integer, as a whole float (1.0e8) is converted (:func:`babyteach.config_schema.as_number`).
FLOAT_FIELDS = (
    "epochs",
    "lr",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_eps",
    "warmup_fraction",
    "clip_norm",
    "mask_prob",
    "dropout",
)
INT_FIELDS = (
    "token_budget",
    "block_size",
    "batch_size",
    "grad_accum",
    "seed",
    "checkpoint_every",
    "log_every",
    "eval_every",
    "dev_blocks",
)

#: Training keys that only set how often a run checkpoints and logs, not what is trained: the
#: workflow passes them outside its rerun-tracked settings (babyteach.train_job).
CADENCE_KEYS: tuple[str, ...] = ("checkpoint_every", "log_every", "eval_every")


class _EpochsUnlessBudget:
    """The default of ``TrainConfig.epochs``: the schema's ``training.epochs``, or None when ``token_budget``
    is given (the two are exclusive), so that ``TrainConfig(token_budget=…)`` needs no ``epochs=None``."""

    def __repr__(self) -> str:
        return "<training.epochs unless token_budget>"


EPOCHS_UNLESS_BUDGET: Any = _EpochsUnlessBudget()


@dataclass(frozen=True)
@schema_section("training")
class TrainConfig:
    """Hyperparameters of one training run; validated at construction (``InputError`` naming the key and
    its value). Numbers may be given as text (``"1e-3"``, as YAML 1.1 reads it).

    A field that is a config key (``training.<name>``; ``block_size``: ``model.block_size``; ``seed``:
    the first of ``seeds``) defaults to the schema's value (a bare field is ``training.<name>``:
    :func:`babyteach.config_schema.schema_section`; the others name their key with ``config_field``),
    so ``TrainConfig()`` is the workflow's default run. ``adam_beta1``, ``adam_beta2``, ``adam_eps`` and
    ``device`` are not config keys: RoBERTa's optimiser constants and where a library caller runs.
    """

    token_budget: int | None
    epochs: float | None = field(
        default=EPOCHS_UNLESS_BUDGET,
        metadata={
            "help": "passes over the train blocks; steps = floor(epochs × batches per epoch / grad_accum); "
            "default: the schema's, or None when token_budget is given",
            "config_key": "training.epochs",
        },
    )
    block_size: int = config_field("model", "block_size")
    batch_size: int
    grad_accum: int
    lr: float
    weight_decay: float
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW β1"})
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW β2 (RoBERTa: 0.98)"})
    adam_eps: float = field(default=1e-6, metadata={"help": "AdamW ε (RoBERTa: 1e-6)"})
    warmup_fraction: float
    clip_norm: float | None
    mask_prob: float
    dropout: float
    seed: int = config_field("seeds", 0, help="seed of initialisation, data order, masking and dropout")
    checkpoint_every: int
    log_every: int
    eval_every: int | None
    dev_blocks: int
    precision: str
    compile: bool
    device: str = field(default="auto", metadata={"help": "'auto' (CUDA if available), 'cpu' or 'cuda'"})

    def __post_init__(self) -> None:
        if self.epochs is EPOCHS_UNLESS_BUDGET:
            epochs = None if self.token_budget is not None else schema_default("training", "epochs")
            object.__setattr__(self, "epochs", epochs)
        # numbers in any spelling: "1e-3" (YAML 1.1 leaves it text) and whole floats for integer fields
        for name in (*FLOAT_FIELDS, *INT_FIELDS):
            object.__setattr__(self, name, as_number(getattr(self, name), integer=name in INT_FIELDS))
        if (self.token_budget is None) == (self.epochs is None):
            raise InputError("training: give exactly one of token_budget and epochs (set the other to null)")
        for name in FLOAT_FIELDS:  # before the range checks: a string would fail them with a TypeError
            value = getattr(self, name)
            self._require(value is None and name in ("epochs", "clip_norm") or is_number(value), name, "a number")
        if self.token_budget is not None:
            self._require(is_int(self.token_budget) and self.token_budget > 0, "token_budget", "a positive integer")
        if self.epochs is not None:
            self._require(self.epochs > 0, "epochs", "positive")
        self._require(is_int(self.block_size) and self.block_size >= 3, "block_size", "an integer of at least 3")
        for name in ("batch_size", "grad_accum", "checkpoint_every", "log_every", "dev_blocks"):
            self._require(is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "a positive integer")
        self._require(
            self.eval_every is None or (is_int(self.eval_every) and self.eval_every >= 1),
            "eval_every",
            "a positive integer or None (only the final dev loss)",
        )
        self._require(is_int(self.seed) and self.seed >= 0, "seed", "a non-negative integer")
        self._require(self.lr > 0 and math.isfinite(self.lr), "lr", "positive and finite")
        self._require(self.weight_decay >= 0, "weight_decay", "non-negative")
        self._require(0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1, "adam_beta1/adam_beta2", "in [0, 1)")
        self._require(self.adam_eps > 0, "adam_eps", "positive")
        self._require(0 <= self.warmup_fraction < 1, "warmup_fraction", "in [0, 1)")
        self._require(self.clip_norm is None or self.clip_norm > 0, "clip_norm", "positive or None")
        self._require(0 < self.mask_prob < 1, "mask_prob", "in (0, 1)")
        self._require(0 <= self.dropout < 1, "dropout", "in [0, 1)")
        self._require(self.precision in PRECISIONS, "precision", f"one of {PRECISIONS}")
        self._require(self.device in DEVICES, "device", f"one of {DEVICES}")

    def _require(self, ok: bool, name: str, what: str) -> None:
        """InputError ``training.<name>: must be <what>, got <value>`` unless ``ok``."""
        require(ok, f"training.{name}", what, *(getattr(self, key) for key in name.split("/")))

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name → its help text."""
        return {f.name: f.metadata["help"] for f in fields(cls)}
