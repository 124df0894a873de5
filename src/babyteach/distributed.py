"""The data-parallel processes of a training run: the device each one trains on, the ``torchrun``
process group, and the collectives the training loop calls.

:func:`start_processes` reads ``WORLD_SIZE`` and ``LOCAL_RANK`` from the environment (``torchrun``
sets them, with ``RANK``); with more than one process it joins a process group that the calling
script already started, or starts one (NCCL on CUDA, one GPU per process; gloo on CPU), and says
which, so that :func:`babyteach.train.train` closes only a group it opened. :class:`Processes` is
this process's rank among them, with the collectives: a sum, a mean, a value from every process,
and gradients averaged in one flat all-reduce. A lone process is rank 0 of 1 and calls none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from babyteach.errors import InputError
from babyteach.train_config import TrainConfig


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device: 'cuda' requested but no CUDA device is available")
    if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")


@dataclass(frozen=True)
class Processes:
    """This process's place among the data-parallel processes (a lone process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process logs, checkpoints and writes the outputs."""
        return self.rank == 0

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes, in place."""
        if self.world_size > 1:
            dist.all_reduce(tensor)
        return tensor

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Mean over the processes of a tensor that each computed on its own rows (``tensor`` is kept)."""
        return self.sum(tensor.clone()) / self.world_size

    def average_gradients(self, parameters: list[nn.Parameter]) -> None:
        """Mean of the gradients over the processes: one all-reduce of one flat buffer."""
        if self.world_size == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= self.world_size
        for p, g in zip(parameters, _unflatten_dense_tensors(flat, grads), strict=True):
            p.grad = g

    def gather(self, value: Any) -> list[Any]:
        """``value`` of every process, in rank order."""
        if self.world_size == 1:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values


def start_processes(cfg: TrainConfig) -> tuple[Processes, torch.device, bool]:
    """Join the torchrun process group (when ``WORLD_SIZE > 1``): the processes, this process's
    device (``cuda:LOCAL_RANK`` on GPUs) and whether the group was created here."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = _device(cfg)
    if world_size == 1:
        return Processes(), device, False
    if cfg.batch_size % world_size:
        raise InputError(
            f"training.batch_size: {cfg.batch_size} blocks cannot be split evenly over {world_size} processes; "
            f"use a multiple of {world_size}"
        )
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(dist.get_rank(), dist.get_world_size()), device, created
