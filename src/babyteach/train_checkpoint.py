"""A training run's resumable state: which run a checkpoint belongs to, and saving and restoring it.

Each run's checkpoint lives in ``ckpt_dir/run-<hash of its fingerprint>/checkpoint.pt``
(:func:`run_checkpoint_dir`). The fingerprint (:func:`run_fingerprint`) is the method with its
options, the students, the training settings except those that may change between a run and its
resumption (:data:`RESUMABLE_CHANGES`), the number of steps and the teacher folder; so a rerun with
the same settings resumes, while changed settings start a new run in a folder of their own instead
of resuming an unrelated one.

A checkpoint (:func:`checkpoint_state`) holds every student's weights and its training-only
modules, the one optimiser and schedule, the method's state (DWML's ω), the metrics and outer-step
records so far, the wall time, and every process's random state in rank order (the global RNG
draws dropout; the data order and masks are seeded per batch and need nothing), so a resume with
the same number of processes continues draw for draw and ends with an uninterrupted run's weights
(:func:`restore`). Rank 0 writes it atomically (:func:`save_checkpoint`): a failed write keeps the
previous checkpoint. A damaged checkpoint, or one of another version or run, is an ``InputError``
(:func:`load_checkpoint`), never a silent fresh start.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from babyteach.distributed import Processes
from babyteach.errors import InputError
from babyteach.io import atomic_path
from babyteach.methods import Method
from babyteach.models import Architecture
from babyteach.train_config import CADENCE_KEYS, TrainConfig

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_VERSION = 3  # 3: one optimiser and schedule for all students
#: Config fields that may change between a run and its resumption. The run stays valid, but only
#: an unchanged device and compile setting give bit-identical weights (kernels differ in rounding).
RESUMABLE_CHANGES = frozenset({*CADENCE_KEYS, "compile", "device"})


def run_fingerprint(
    method: Method, students: Mapping[str, Architecture], cfg: TrainConfig, steps: int, teacher_dir: Path | None
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed."""
    config = {k: v for k, v in asdict(cfg).items() if k not in RESUMABLE_CHANGES}
    return {
        "method": method.name,
        "method_options": method.options(),
        "students": {name: arch.to_dict() for name, arch in students.items()},
        "config": config,
        "steps": steps,
        "teacher_dir": str(teacher_dir) if teacher_dir is not None else None,
    }


def run_checkpoint_dir(ckpt_dir: Path, fingerprint: Mapping[str, Any]) -> Path:
    """The checkpoint folder of one run inside ``ckpt_dir``: ``run-<hash of its fingerprint>``.

    A run with other settings (e.g. after a config change that makes Snakemake rerun the job)
    gets its own folder and starts afresh, while a rerun with the original settings resumes.
    """
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()
    return Path(ckpt_dir) / f"run-{digest[:16]}"


def save_checkpoint(ckpt_dir: Path, state: dict[str, Any]) -> None:
    """Write the checkpoint atomically; a full disk or unwritable folder raises a WriteError naming it
    (``torch.save`` into a Python file, so that the file system's error reaches the message)."""
    path = Path(ckpt_dir) / CHECKPOINT_FILE
    kept = (
        "the previous checkpoint is unchanged and the run resumes from it"
        if path.is_file()
        else "the run had no checkpoint yet and starts again from step 0"
    )
    with atomic_path(path, kept=kept) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)


def load_checkpoint(ckpt_dir: Path, fingerprint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The checkpoint in ``ckpt_dir`` of the run with ``fingerprint``, or None if there is none yet.

    A damaged file, or one written by another version or for another run, is an ``InputError``
    that says to delete it.
    """
    path = Path(ckpt_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a truncated or foreign file
        raise InputError(
            f"{path}: cannot read the checkpoint ({type(error).__name__}: {error}); it is damaged. Delete it to "
            "start this run afresh (training restarts from step 0)"
        ) from error
    if state.get("version") != CHECKPOINT_VERSION or state["fingerprint"] != fingerprint:
        raise InputError(
            f"{path}: the checkpoint was written by another version of babyteach or "
            "belongs to another run; delete it to start this run afresh"
        )
    return state


@dataclass(frozen=True)
class TrainingState:
    """What of a run's modules a checkpoint saves and a resume loads back into them."""

    models: Mapping[str, nn.Module]  # the students
    extras: Mapping[str, nn.Module]  # their training-only modules, by student, where the method has any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    method: Method  # its own state: DWML's ω

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's entries for these: ``peers`` (each student's and its extra module's weights),
        ``optimizer``, ``scheduler``, ``method_state``."""
        return {
            "peers": {
                name: {
                    "model": model.state_dict(),
                    "extra": self.extras[name].state_dict() if name in self.extras else None,
                }
                for name, model in self.models.items()
            },
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "method_state": self.method.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load a checkpoint's entries (:meth:`state_dict`) into these modules, in place."""
        for name, model in self.models.items():
            saved = state["peers"][name]
            model.load_state_dict(saved["model"])
            if name in self.extras:
                self.extras[name].load_state_dict(saved["extra"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.method.load_state_dict(state["method_state"])


def checkpoint_state(
    step: int,
    fingerprint: dict[str, Any],
    training_state: TrainingState,
    metrics: list[dict[str, Any]],
    outer_log: list[dict[str, float]],
    rng: list[dict[str, Any]],
    wall_time: float,
) -> dict[str, Any]:
    """What :func:`save_checkpoint` writes after ``step``; ``rng``: every process's :func:`rng_state`,
    in rank order."""
    return {
        "version": CHECKPOINT_VERSION,
        "step": step,
        "fingerprint": fingerprint,
        **training_state.state_dict(),
        "rng": rng,  # one state per process, in rank order
        "metrics": metrics,
        "outer_log": outer_log,
        "wall_time_s": wall_time,
    }


def rng_state() -> dict[str, Any]:
    """This process's random state (dropout draws); the data order and masks are seeded per batch."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore(state: dict[str, Any], training_state: TrainingState, procs: Processes) -> None:
    """Load a checkpoint's ``state`` into the run's modules and this process's random state (reseeded,
    with a warning, when another number of processes wrote the checkpoint)."""
    training_state.load_state_dict(state)
    if len(state["rng"]) != procs.world_size:
        # a different number of processes: the run continues validly, but not draw for draw
        log.warning(
            "checkpoint written by %d process(es), resumed by %d: dropout draws are reseeded",
            len(state["rng"]),
            procs.world_size,
        )
        torch.manual_seed(state["step"] * 1000 + procs.rank)
        return
    rng = state["rng"][procs.rank]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
