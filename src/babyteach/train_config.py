"""Hyperparameters of a training run, validated at construction.

Kept apart from :mod:`babyteach.train` (which imports torch and transformers) so that the
workflow can check the ``training`` config section at start-up without paying for those
imports on every ``snakemake`` call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from babyteach.config_schema import as_number
from babyteach.errors import InputError

PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")


#: Fields that hold numbers, and those that hold integers: a number written as text ("1e-3") or, for an
#: integer, as a whole float (1.0e8) is converted (:func:`babyteach.config_schema.as_number`).
FLOAT_FIELDS = ("epochs", "lr", "weight_decay", "adam_beta1", "adam_beta2", "adam_eps", "warmup_fraction", "clip_norm",
                "mask_prob", "dropout")
INT_FIELDS = ("token_budget", "block_size", "batch_size", "grad_accum", "seed", "checkpoint_every", "log_every",
              "eval_every", "dev_blocks")

#: Training keys that only set how often a run checkpoints and logs, not what is trained: the
#: workflow passes them outside its rerun-tracked settings (babyteach.train_job).
CADENCE_KEYS: tuple[str, ...] = ("checkpoint_every", "log_every", "eval_every")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run; validated at construction (``InputError`` naming the key and
    its value). Numbers may be given as text (``"1e-3"``, as YAML 1.1 reads it)."""

    token_budget: int | None = field(
        default=None,
        metadata={"help": "training tokens (block positions incl. <s>/</s>); steps = budget // tokens per step. "
                  "Give exactly one of token_budget and epochs"},
    )
    epochs: float | None = field(
        default=None,
        metadata={"help": "passes over the train blocks; steps = floor(epochs × batches per epoch / grad_accum)"},
    )
    block_size: int = field(default=128, metadata={"help": "tokens per training block incl. <s> and </s>"})
    batch_size: int = field(
        default=32, metadata={"help": "blocks per micro-batch, over all processes (each of W takes batch_size / W)"}
    )
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimiser step"})
    lr: float = field(default=1e-4, metadata={"help": "peak AdamW learning rate (docs/RECIPE.md)"})
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW decoupled weight decay on matrices (not biases, LayerNorms)"}
    )
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW β1"})
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW β2 (RoBERTa: 0.98)"})
    adam_eps: float = field(default=1e-6, metadata={"help": "AdamW ε (RoBERTa: 1e-6)"})
    warmup_fraction: float = field(
        default=0.25,
        metadata={"help": "share of the steps with linear warmup, then cosine decay to 0 (docs/RECIPE.md)"},
    )
    clip_norm: float | None = field(
        default=1.0, metadata={"help": "gradient-norm clipping threshold per student (None: no clipping)"}
    )
    mask_prob: float = field(default=0.15, metadata={"help": "share of non-special tokens predicted (MLM)"})
    dropout: float = field(
        default=0.1, metadata={"help": "dropout on hidden states and attention probabilities (RoBERTa: 0.1)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of initialisation, data order, masking and dropout"})
    checkpoint_every: int = field(default=1000, metadata={"help": "steps between checkpoints (one also at the end)"})
    log_every: int = field(default=10, metadata={"help": "steps between metrics.jsonl lines (the last step always)"})
    eval_every: int | None = field(
        default=None,
        metadata={"help": "steps between dev-loss points in metrics.jsonl (the last step always); None: only the "
                  "final dev loss"},
    )
    dev_blocks: int = field(
        default=256, metadata={"help": "dev blocks, spread over the split, of the dev loss (final and every eval_every "
                                       "steps)"}
    )
    precision: str = field(
        default="auto",
        metadata={"help": "'auto': bf16 autocast on CUDA, fp32 on CPU; 'fp32': no autocast (CUDA matmuls in TF32); "
                  "'bf16': bf16 autocast on any device (on a CPU: to study the bf16 path without a GPU)"},
    )
    compile: bool = field(
        default=False,
        metadata={"help": "torch.compile every student's forward pass and loss as one graph (fullgraph; the outer "
                  "step stays eager)"},
    )
    device: str = field(default="auto", metadata={"help": "'auto' (CUDA if available), 'cpu' or 'cuda'"})

    def __post_init__(self) -> None:
        # numbers in any spelling: "1e-3" (YAML 1.1 leaves it text) and whole floats for integer fields
        for name in (*FLOAT_FIELDS, *INT_FIELDS):
            object.__setattr__(self, name, as_number(getattr(self, name), integer=name in INT_FIELDS))
        if (self.token_budget is None) == (self.epochs is None):
            raise InputError(
                "training: give exactly one of token_budget and epochs (set the other to null)"
            )
        for name in FLOAT_FIELDS:  # before the range checks: a string would fail them with a TypeError
            value = getattr(self, name)
            self._require(value is None and name in ("epochs", "clip_norm") or _is_number(value), name,
                          "a number")
        if self.token_budget is not None:
            self._require(_is_int(self.token_budget) and self.token_budget > 0, "token_budget",
                          "a positive integer")
        if self.epochs is not None:
            self._require(self.epochs > 0, "epochs", "positive")
        self._require(_is_int(self.block_size) and self.block_size >= 3, "block_size", "an integer of at least 3")
        for name in ("batch_size", "grad_accum", "checkpoint_every", "log_every", "dev_blocks"):
            self._require(_is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "a positive integer")
        self._require(self.eval_every is None or (_is_int(self.eval_every) and self.eval_every >= 1), "eval_every",
                      "a positive integer or None (only the final dev loss)")
        self._require(_is_int(self.seed) and self.seed >= 0, "seed", "a non-negative integer")
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
        if not ok:
            got = ", ".join(f"{getattr(self, key)!r}" for key in name.split("/"))
            raise InputError(f"training.{name}: must be {what}, got {got}")

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name → its help text."""
        return {f.name: f.metadata["help"] for f in fields(cls)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

