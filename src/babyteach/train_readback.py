"""What the training loop reads back from the device, and when: the students' losses, the first
non-finite one, gradient norms and the outer-step records.

Between log lines a step never waits for the device: the loop adds every micro-batch's losses to a
:class:`Tally` on the device, and DWML's outer steps leave their records as 0-d device tensors. At
``log_every``, ``eval_every`` and ``checkpoint_every`` steps :meth:`Tally.read` and
:func:`settle_outer_records` bring them to the host, each in one transfer, with the first
non-finite value since the run started and its step; the loop then stops the run at that step's
message, before any checkpoint is written, so the last checkpoint stays good
(``tests/test_step_sync.py`` checks that the steps between read back nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from babyteach.distributed import Processes


def _outer_record_problem(record: Mapping[str, float], ckpt_dir: Path) -> tuple[int, str] | None:
    """``(step, message)`` if an outer-step record holds a non-finite value, else None."""
    bad = sorted(key for key, value in record.items() if not math.isfinite(value))
    if not bad:
        return None
    return int(record["step"]), (
        f"step {record['step']}: the outer (peer-weight) step gave non-finite {bad}; training stopped. The last "
        f"good checkpoint is in {ckpt_dir}; lower mutual.eta0 or set mutual.clip"
    )


class Tally:
    """Each student's loss of the current step and the first non-finite one, kept on the device.

    The loop adds every micro-batch's losses here and reads them back only at log, evaluation
    and checkpoint steps (:meth:`read`): between those the step never waits for the device. A
    non-finite loss is remembered with its step and reported at the next read, which the loop
    raises before any checkpoint is written, so the last checkpoint stays good.
    """

    def __init__(self, names: list[str], device: torch.device) -> None:
        self.names, self.device = names, device
        self.losses = torch.zeros(len(names), dtype=torch.float32, device=device)
        self.first_bad_step = torch.zeros(len(names), dtype=torch.int64, device=device)  # 0: none yet
        self.first_bad_value = torch.zeros(len(names), dtype=torch.float32, device=device)

    def begin_step(self) -> None:
        self.losses = torch.zeros(len(self.names), dtype=torch.float32, device=self.device)  # a fresh tensor: the
        # previous step's stays valid for the on_step hook

    def add(self, losses: torch.Tensor) -> None:
        """Add a micro-batch's share ``(students,)`` of the step's mean losses."""
        self.losses += losses

    def end_step(self, step: int, procs: Processes) -> None:
        """Average the losses over the processes and remember a first non-finite one (no sync)."""
        if procs.world_size > 1:
            procs.sum(self.losses)  # an asynchronous collective on GPUs, not a host sync
            self.losses /= procs.world_size
        new = ~torch.isfinite(self.losses) & (self.first_bad_step == 0)
        self.first_bad_step = torch.where(new, step, self.first_bad_step)
        self.first_bad_value = torch.where(new, self.losses, self.first_bad_value)

    def step_losses(self) -> dict[str, torch.Tensor]:
        """This step's loss per student, 0-d tensors on the device."""
        return dict(zip(self.names, self.losses.unbind(), strict=True))

    def read(
        self, grad_norms: torch.Tensor, ckpt_dir: Path
    ) -> tuple[dict[str, float], dict[str, float], tuple[int, str] | None]:
        """This step's losses and ``grad_norms`` ``(students,)`` as numbers (one host read), and
        ``(step, message)`` of the first non-finite loss since the run started, if any."""
        packed = torch.cat(
            [self.losses.double(), grad_norms.double(), self.first_bad_step.double(), self.first_bad_value.double()]
        ).tolist()
        m = len(self.names)
        losses, norms, bad_steps, bad_values = (packed[i * m : (i + 1) * m] for i in range(4))
        problem = None
        if any(bad_steps):
            step, i = min((int(s), i) for i, s in enumerate(bad_steps) if s)
            problem = (
                step,
                (
                    f"step {step}: the loss of student {self.names[i]!r} is {bad_values[i]}; training stopped (no "
                    f"checkpoint was written since). The last good checkpoint is in {ckpt_dir} (resume re-runs from it); "
                    "lower training.lr or check the data"
                ),
            )
        return dict(zip(self.names, losses, strict=True)), dict(zip(self.names, norms, strict=True)), problem


def settle_outer_records(
    records: list[Mapping[str, Any]], ckpt_dir: Path
) -> tuple[list[dict[str, float]], tuple[int, str] | None]:
    """Outer-step records with their device values (0-d tensors) read back as numbers, in one host
    read for all of them, and ``(step, message)`` of the first one holding a non-finite value."""
    places = [(i, key) for i, record in enumerate(records) for key, value in record.items() if torch.is_tensor(value)]
    numbers = (
        torch.stack([records[i][key].detach().double().reshape(()) for i, key in places]).tolist() if places else []
    )
    settled = [dict(record) for record in records]
    for (i, key), number in zip(places, numbers, strict=True):
        settled[i][key] = number
    problems = [problem for row in settled if (problem := _outer_record_problem(row, ckpt_dir))]
    return settled, (problems[0] if problems else None)
