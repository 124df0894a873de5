"""The training loop, one for every method: AMP, checkpoints, exact resume, logging, outputs.

Train one or more students with a method of :data:`babyteach.methods.METHODS` on the token
shards, single process (CPU or one GPU)::

    from babyteach.models import Architecture
    from babyteach.train import TrainConfig, train

    cfg = TrainConfig(token_budget=100_000_000, batch_size=32, lr=5e-4)
    summary = train("kd", {"peer1": Architecture(4, 4, 256), "peer2": Architecture(2, 4, 256)},
                    shard_dir=Path("results/2024-10M/shards"),
                    tokenizer_dir=Path("results/2024-10M/tokenizer"),
                    out_dir=Path("results/2024-10M/models/kd"),
                    ckpt_dir=Path("checkpoints/kd"),                       # outside declared outputs
                    cfg=cfg,
                    teacher_dir=Path("results/2024-10M/models/baseline/teacher"))

Students trained together share every batch (KD: one teacher forward per micro-batch for
all of them); each has its own AdamW optimiser and warmup + cosine schedule. Run it again
with the same arguments after a kill and it resumes from the last checkpoint in
``ckpt_dir`` and ends with the same weights as an uninterrupted run. Each run's checkpoint
lives in ``ckpt_dir/run-<hash of method, students and config>``
(:func:`run_checkpoint_dir`), so changed settings start a new run instead of resuming an
unrelated one.

Data-parallel: call the same function in every process of ``torchrun`` (``RANK`` /
``WORLD_SIZE`` / ``LOCAL_RANK`` are read from the environment; NCCL on CUDA, one GPU per
process, gloo on CPU). :func:`train` joins a process group the script already started and
leaves it open; otherwise it starts one and closes it at the end, so a script that trains
several runs in one process should start the group itself::

    torchrun --standalone --nproc_per_node 4 my_training_script.py   # which calls train(...)

Every process masks the same global micro-batch of ``cfg.batch_size`` blocks and trains on
its ``batch_size / W`` rows; each student's gradients are summed over the processes once per
optimiser step (one flat all-reduce per student, after accumulation), weighted so that the
update equals a single process's on the whole batch: the loss is a mean over the masked
positions of the global batch, whatever their split. Dropout draws use seed ``seed + rank``.
Only rank 0 logs, checkpoints and writes ``out_dir``; the checkpoint keeps every rank's
random state, so a resume with the same number of processes is exact. DWML's outer step
averages the processes' hypergradients, so ω stays identical on every rank.

Outputs, written as one directory at the end (``out_dir`` appears complete or not at all)::

    out_dir/<student>/           save_pretrained model + tokenizer files + README.md model card
    out_dir/metrics.jsonl        one line per logged step: step, tokens, lr, tokens/s, loss and
                                 gradient norm (before clipping) per student; with
                                 ``cfg.eval_every``, also one line per evaluation:
                                 ``{"step", "tokens", "dev_loss": {student: nats}}``
    out_dir/peer_weights.csv     methods with an outer step (DWML, KD_DWML): ω after every outer
                                 step with its hypergradient, η, γ and outer loss (Figure 3)
    out_dir/gpu.csv              utilisation and memory of the visible GPUs every second (rank 0's
                                 sampler, :mod:`babyteach.gpu`; header only on CPU machines)
    out_dir/train_summary.json   steps, tokens, wall time, GPU summary, and per student the final dev
                                 loss, analytic training FLOPs (and ω); the config

The dev loss (:func:`_dev_loss`) is each student's masked CE on the first ``cfg.dev_blocks`` dev
blocks, with the same masks at every evaluation and in every run of the same seed, so its points
are comparable across steps and methods. It is computed at the end and, with ``cfg.eval_every``,
after every ``eval_every``-th optimiser step too (the last of the curve is the final dev loss).
Each evaluation is one forward pass of every student over those blocks, without dropout or
backward: about ``dev_blocks / (3 × batch_size × grad_accum)`` steps' compute (256 blocks every
500 steps of 32: under 1 %); every process evaluates all blocks (no communication), rank 0 logs.
Evaluating neither changes the weights nor draws from the training random state: a run with
``eval_every`` ends with the weights of the same run without it.

Numerics: fp32 on CPU; on CUDA bf16 autocast (``precision="auto"``), TF32 matmuls and fused
AdamW. Masking draws come from a generator seeded per micro-batch and the global RNG
(dropout) is checkpointed, so resumed runs are exact on deterministic hardware.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
from transformers import AutoModelForMaskedLM, RobertaForMaskedLM, get_scheduler

from babyteach.data.masking import mask_tokens
from babyteach.data.shards import PackedBlocks, read_meta
from babyteach.data.tokenizer import MASK, load_tokenizer
from babyteach.errors import InputError
from babyteach.evaluate.folders import WEIGHT_FILES, load_pretrained
from babyteach.gpu import GpuSampler
from babyteach.io import atomic_path, write_json_atomic
from babyteach.losses import cross_entropy
from babyteach.methods import Method, MLMBatch, OuterStep, StepContext, make_method
from babyteach.models import (
    POSITION_OFFSET,
    Architecture,
    build_model,
    count_parameters,
    flops_per_token,
    masked_logits,
)
from babyteach.train_config import CADENCE_KEYS, TrainConfig

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
PEER_WEIGHTS_FILE = "peer_weights.csv"
GPU_FILE = "gpu.csv"
CHECKPOINT_VERSION = 2
#: Version of the ``train_summary.json`` and ``metrics.jsonl`` formats (3: ``dev_loss`` lines in metrics.jsonl).
SUMMARY_VERSION = 3
#: Config fields that may change between a run and its resumption. The run stays valid, but only
#: an unchanged device and compile setting give bit-identical weights (kernels differ in rounding).
RESUMABLE_CHANGES = frozenset({*CADENCE_KEYS, "compile", "device"})


class NonFiniteLossError(RuntimeError):
    """A student's loss became NaN or infinite; the last good checkpoint is kept."""


# --------------------------------------------------------------------------------------------
# Planning: how many steps, which micro-batch comes when


@dataclass(frozen=True)
class Plan:
    """The exact length of a run."""

    steps: int  # optimiser steps
    tokens_per_step: int  # batch_size × grad_accum × block_size
    batches_per_epoch: int  # full micro-batches per pass over the train blocks

    @property
    def tokens(self) -> int:
        """Tokens the run trains on: ``steps × tokens_per_step``."""
        return self.steps * self.tokens_per_step


def plan_steps(cfg: TrainConfig, n_blocks: int) -> Plan:
    """Steps of a run over ``n_blocks`` train blocks of ``cfg.block_size`` tokens.

    Every micro-batch is full (an epoch's last partial batch is skipped), so the tokens seen
    are exactly ``steps × batch_size × grad_accum × block_size``: with a token budget the
    largest such number not above it, with epochs ``floor(epochs × batches_per_epoch /
    grad_accum)`` steps.
    """
    batches_per_epoch = n_blocks // cfg.batch_size
    if batches_per_epoch < 1:
        raise InputError(
            f"train.batch_size: {cfg.batch_size} blocks per batch, but the train split has only {n_blocks} "
            f"blocks of {cfg.block_size} tokens; lower batch_size"
        )
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.block_size
    if cfg.token_budget is not None:
        steps = cfg.token_budget // tokens_per_step
    else:
        steps = math.floor(cfg.epochs * batches_per_epoch / cfg.grad_accum)
    if steps < 1:
        raise InputError(
            f"train: the budget ({cfg.token_budget or cfg.epochs} {'tokens' if cfg.token_budget else 'epochs'}) "
            f"is less than one step of {tokens_per_step} tokens; raise it or lower batch_size/grad_accum"
        )
    return Plan(steps=steps, tokens_per_step=tokens_per_step, batches_per_epoch=batches_per_epoch)


class _BlockStream:
    """A split's micro-batches by index (counted from 0 across epochs): epoch ``e`` visits the
    blocks in ``blocks.order(seed, e)``, ``batch_size`` at a time, its last partial batch skipped.
    Indexing is random access, so a resumed run continues at exactly the next micro-batch."""

    def __init__(self, blocks: PackedBlocks, seed: int, batch_size: int) -> None:
        self.blocks, self.seed, self.batch_size = blocks, seed, batch_size
        self.batches_per_epoch = len(blocks) // batch_size
        self._epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def __getitem__(self, index: int) -> torch.Tensor:
        """Micro-batch ``index``, ``(batch_size, block_size)``."""
        epoch, within = divmod(index, self.batches_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, self.blocks.order(self.seed, epoch)
        chunk = self._order[within * self.batch_size : (within + 1) * self.batch_size]
        return torch.from_numpy(self.blocks.get_blocks(chunk))


#: Masking streams of :func:`_mask_generator`: train batches, the dev loss, outer-step dev batches.
TRAIN_STREAM, DEV_STREAM, OUTER_STREAM = 0, 1, 2


def _mask_generator(seed: int, index: int, stream: int = TRAIN_STREAM) -> torch.Generator:
    """A CPU generator whose state depends only on (seed, stream, index): resumable masking."""
    state = np.random.SeedSequence([seed, stream, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _mask_on_cpu(ids: torch.Tensor, generator: torch.Generator, cfg: TrainConfig,
                 meta: Mapping[str, Any]) -> MLMBatch:
    """Mask ``ids`` on the CPU: the draws do not depend on the device or the process."""
    special = sorted(meta["special_tokens"].values())
    masked = mask_tokens(ids, generator, cfg.mask_prob, meta["special_tokens"][MASK], meta["vocab_size"], special)
    positions = torch.zeros(ids.numel(), dtype=torch.bool)
    positions[masked.positions] = True
    return MLMBatch(input_ids=masked.input_ids, positions=positions.view(ids.shape), targets=masked.targets)


def _to_device(batch: MLMBatch, device: torch.device) -> MLMBatch:
    return MLMBatch(
        input_ids=batch.input_ids.to(device, non_blocking=True),
        positions=batch.positions.to(device, non_blocking=True),  # (batch, seq)
        targets=batch.targets.to(device, non_blocking=True),  # (n_masked,)
    )


def _mask(ids: torch.Tensor, generator: torch.Generator, cfg: TrainConfig, meta: Mapping[str, Any],
          device: torch.device) -> MLMBatch:
    """Mask ``ids`` on the CPU (device-independent draws) and move the result to ``device``."""
    return _to_device(_mask_on_cpu(ids, generator, cfg, meta), device)


def _rows_of_rank(batch: MLMBatch, rank: int, world_size: int) -> MLMBatch:
    """Process ``rank``'s equal share of the rows of a masked batch, with its targets.

    ``targets`` are in row-major order of ``positions``, so a row range's targets are one slice.
    """
    rows = batch.input_ids.shape[0] // world_size
    per_row = batch.positions.sum(dim=1)  # (batch,): masked positions per row
    first = int(per_row[: rank * rows].sum())
    count = int(per_row[rank * rows : (rank + 1) * rows].sum())
    return MLMBatch(
        input_ids=batch.input_ids[rank * rows : (rank + 1) * rows],
        positions=batch.positions[rank * rows : (rank + 1) * rows],
        targets=batch.targets[first : first + count],
    )


# --------------------------------------------------------------------------------------------
# Set-up


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device: 'cuda' requested but no CUDA device is available")
    if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")


@dataclass(frozen=True)
class _Processes:
    """This process's place among the data-parallel processes (a lone process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process logs, checkpoints and writes the outputs."""
        return self.rank == 0

    def share(self, batch: MLMBatch) -> tuple[MLMBatch, float]:
        """This process's rows of a global batch, and the factor that turns the mean loss over
        its masked positions into its share of the global mean's gradient (after averaging)."""
        if self.world_size == 1:
            return batch, 1.0
        local = _rows_of_rank(batch, self.rank, self.world_size)
        return local, local.targets.numel() * self.world_size / batch.targets.numel()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes, in place."""
        if self.world_size > 1:
            dist.all_reduce(tensor)
        return tensor

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


def _start_processes(cfg: TrainConfig) -> tuple[_Processes, torch.device, bool]:
    """Join the torchrun process group (when ``WORLD_SIZE > 1``): the processes, this process's
    device (``cuda:LOCAL_RANK`` on GPUs) and whether the group was created here."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = _device(cfg)
    if world_size == 1:
        return _Processes(), device, False
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
    return _Processes(dist.get_rank(), dist.get_world_size()), device, created


def _outer_stream(shard_dir: Path, cfg: TrainConfig) -> _BlockStream:
    """Held-out batches for outer steps: the dev split in a seeded order, never train blocks."""
    dev = PackedBlocks(shard_dir, "dev", cfg.block_size)
    if len(dev) < cfg.batch_size:
        raise InputError(
            f"{shard_dir}: the dev split has {len(dev)} blocks of {cfg.block_size} tokens, fewer than one outer "
            f"batch (training.batch_size = {cfg.batch_size}); lower training.batch_size or use a larger dev split"
        )
    return _BlockStream(dev, cfg.seed, cfg.batch_size)


def _check_outer_record(record: Mapping[str, float], step: int, ckpt_dir: Path) -> None:
    bad = sorted(key for key, value in record.items() if not math.isfinite(value))
    if bad:
        raise NonFiniteLossError(
            f"step {step}: the outer (peer-weight) step gave non-finite {bad}; training stopped. The last good "
            f"checkpoint is in {ckpt_dir}; lower mutual.eta0 or set mutual.clip"
        )


def load_teacher(teacher_dir: Path, vocab_size: int, block_size: int, device: torch.device) -> RobertaForMaskedLM:
    """The frozen teacher: a saved model folder, in eval mode, without gradients."""
    teacher_dir = Path(teacher_dir)
    if not (teacher_dir / "config.json").is_file() or not any((teacher_dir / f).is_file() for f in WEIGHT_FILES):
        raise InputError(f"{teacher_dir}: no saved model (config.json and weights) found; train the baseline teacher "
                         "first")
    teacher = load_pretrained(AutoModelForMaskedLM, teacher_dir, "teacher weights", dtype=torch.float32)
    if teacher.config.vocab_size != vocab_size:
        raise InputError(
            f"{teacher_dir}: teacher vocabulary ({teacher.config.vocab_size}) differs from the shards' "
            f"({vocab_size}); the teacher must be trained with the same tokenizer"
        )
    if teacher.config.max_position_embeddings < block_size + POSITION_OFFSET:
        raise InputError(
            f"{teacher_dir}: the teacher takes blocks of at most "
            f"{teacher.config.max_position_embeddings - POSITION_OFFSET} tokens, the run uses {block_size}"
        )
    teacher.eval().requires_grad_(False)
    return teacher.to(device)


def _optimizer(modules: list[nn.Module], cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only; parameters shared between modules counted once."""
    params: dict[int, nn.Parameter] = {}
    for module in modules:
        for p in module.parameters():
            params.setdefault(id(p), p)
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps, fused=device.type == "cuda",
    )


@dataclass
class _Peer:
    """One student with everything that is optimised and checkpointed with it."""

    model: RobertaForMaskedLM
    extra: nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: Any

    def modules(self) -> list[nn.Module]:
        return [self.model] + ([self.extra] if self.extra is not None else [])

    def parameters(self) -> list[nn.Parameter]:
        return list({id(p): p for m in self.modules() for p in m.parameters()}.values())


def _run_fingerprint(method: Method, students: Mapping[str, Architecture], cfg: TrainConfig,
                     plan: Plan, teacher_dir: Path | None) -> dict[str, Any]:
    """What a checkpoint must match to be resumed."""
    config = {k: v for k, v in asdict(cfg).items() if k not in RESUMABLE_CHANGES}
    return {
        "method": method.name,
        "method_options": method.options(),
        "students": {name: arch.to_dict() for name, arch in students.items()},
        "config": config,
        "steps": plan.steps,
        "teacher_dir": str(teacher_dir) if teacher_dir is not None else None,
    }


# --------------------------------------------------------------------------------------------
# Checkpoints


def _save_checkpoint(ckpt_dir: Path, state: dict[str, Any]) -> None:
    with atomic_path(Path(ckpt_dir) / CHECKPOINT_FILE) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(ckpt_dir: Path) -> dict[str, Any] | None:
    path = Path(ckpt_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a truncated or foreign file
        raise InputError(
            f"{path}: cannot read the checkpoint ({type(error).__name__}: {error}); it is damaged. Delete it to "
            "start this run afresh (training restarts from step 0)"
        ) from error


def run_checkpoint_dir(ckpt_dir: Path, fingerprint: Mapping[str, Any]) -> Path:
    """The checkpoint folder of one run inside ``ckpt_dir``: ``run-<hash of its fingerprint>``.

    A run with other settings (e.g. after a config change that makes Snakemake rerun the job)
    gets its own folder and starts afresh, while a rerun with the original settings resumes.
    """
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()
    return Path(ckpt_dir) / f"run-{digest[:16]}"


def _checkpoint_state(step: int, fingerprint: dict[str, Any], peers: Mapping[str, _Peer], method: Method,
                      metrics: list[dict[str, Any]], outer_log: list[dict[str, float]],
                      rng: list[dict[str, Any]], wall_time: float) -> dict[str, Any]:
    return {
        "version": CHECKPOINT_VERSION,
        "step": step,
        "fingerprint": fingerprint,
        "peers": {
            name: {
                "model": peer.model.state_dict(),
                "extra": peer.extra.state_dict() if peer.extra is not None else None,
                "optimizer": peer.optimizer.state_dict(),
                "scheduler": peer.scheduler.state_dict(),
            }
            for name, peer in peers.items()
        },
        "method_state": method.state_dict(),
        "rng": rng,  # one state per process, in rank order
        "metrics": metrics,
        "outer_log": outer_log,
        "wall_time_s": wall_time,
    }


def _rng_state() -> dict[str, Any]:
    """This process's random state (dropout draws); the data order and masks are seeded per batch."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _averager(procs: _Processes) -> Callable[[torch.Tensor], torch.Tensor]:
    """Mean over the processes of a tensor that each computed on its own rows."""
    return lambda tensor: procs.sum(tensor.clone()) / procs.world_size


def _restore(state: dict[str, Any], peers: Mapping[str, _Peer], method: Method, procs: _Processes) -> None:
    for name, peer in peers.items():
        saved = state["peers"][name]
        peer.model.load_state_dict(saved["model"])
        if peer.extra is not None:
            peer.extra.load_state_dict(saved["extra"])
        peer.optimizer.load_state_dict(saved["optimizer"])
        peer.scheduler.load_state_dict(saved["scheduler"])
    method.load_state_dict(state["method_state"])
    if len(state["rng"]) != procs.world_size:
        # a different number of processes: the run continues validly, but not draw for draw
        log.warning("checkpoint written by %d process(es), resumed by %d: dropout draws are reseeded",
                    len(state["rng"]), procs.world_size)
        torch.manual_seed(state["step"] * 1000 + procs.rank)
        return
    rng = state["rng"][procs.rank]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


# --------------------------------------------------------------------------------------------
# The loop


#: Called after every step with (step, students, losses); tests use it to interrupt or poison a run.
StepHook = Callable[[int, Mapping[str, RobertaForMaskedLM], Mapping[str, float]], None]


def train(
    method: str,
    students: Mapping[str, Architecture],
    shard_dir: Path,
    tokenizer_dir: Path,
    out_dir: Path,
    ckpt_dir: Path,
    cfg: TrainConfig,
    teacher_dir: Path | None = None,
    method_options: Mapping[str, Any] | None = None,
    on_step: StepHook | None = None,
) -> dict[str, Any]:
    """Train ``students`` (name → architecture) with ``method``; write ``out_dir``; return the summary.

    ``method_options`` are the method's hyperparameters (e.g. ``{"lam": 0.5, "tau": 2.0}``
    for KD). The checkpoint of the same run (method, students, config) in ``ckpt_dir`` is
    resumed; a damaged one is an ``InputError`` (never silently ignored). Student ``i`` (in the order given) is
    initialised with seed ``cfg.seed + i``. A non-finite loss raises
    :class:`NonFiniteLossError` naming the step and the student, before the optimiser step,
    so the last checkpoint stays good. Returns the content of ``train_summary.json``.
    """
    if not students:
        raise InputError("train: no students given")
    the_method = make_method(method, **dict(method_options or {}))
    if the_method.needs_teacher and teacher_dir is None:
        raise InputError(f"train: method {method!r} distils from a teacher; pass teacher_dir")
    shard_dir, tokenizer_dir, out_dir, ckpt_dir = map(Path, (shard_dir, tokenizer_dir, out_dir, ckpt_dir))
    meta = read_meta(shard_dir)
    vocab_size = int(meta["vocab_size"])
    if load_tokenizer(tokenizer_dir).get_vocab_size() != vocab_size:
        raise InputError(
            f"{tokenizer_dir}: the tokenizer's vocabulary differs from that of the shards in {shard_dir} "
            f"({vocab_size}); tokenize the corpus with this tokenizer"
        )
    block_size = cfg.block_size
    blocks = PackedBlocks(shard_dir, "train", block_size)
    plan = plan_steps(cfg, len(blocks))
    stream = _BlockStream(blocks, cfg.seed, cfg.batch_size)
    outer_stream = _outer_stream(shard_dir, cfg) if the_method.has_outer_step else None
    procs, device, created_group = _start_processes(cfg)
    try:
        return _train(the_method, students, shard_dir, tokenizer_dir, out_dir, ckpt_dir, cfg, teacher_dir, on_step,
                      meta, plan, stream, outer_stream, procs, device)
    finally:
        if created_group:
            dist.destroy_process_group()


def _train(the_method: Method, students: Mapping[str, Architecture], shard_dir: Path, tokenizer_dir: Path,
           out_dir: Path, ckpt_dir: Path, cfg: TrainConfig, teacher_dir: Path | None, on_step: StepHook | None,
           meta: Mapping[str, Any], plan: Plan, stream: _BlockStream, outer_stream: _BlockStream | None,
           procs: _Processes, device: torch.device) -> dict[str, Any]:
    """The body of :func:`train` once inputs are checked and the processes have started."""
    if not procs.is_main:
        log.setLevel(logging.WARNING)  # one process reports progress
    vocab_size, block_size, method = int(meta["vocab_size"]), cfg.block_size, the_method.name
    bf16 = device.type == "cuda" and cfg.precision == "auto"
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matmuls for whatever runs outside autocast

    # Students, training-only modules, optimisers and schedules.
    models = {
        name: build_model(arch, vocab_size, block_size, seed=cfg.seed + i, dropout=cfg.dropout).to(device)
        for i, (name, arch) in enumerate(students.items())
    }
    torch.manual_seed(cfg.seed)  # initialises the method's extra modules, alike in every process
    extras = {name: module.to(device) for name, module in the_method.extra_modules(models).items()}
    torch.manual_seed(cfg.seed + procs.rank)  # dropout: its own draws in each process
    peers: dict[str, _Peer] = {}
    warmup = round(cfg.warmup_fraction * plan.steps)
    for name, model in models.items():
        modules = [model] + ([extras[name]] if name in extras else [])
        optimizer = _optimizer(modules, cfg, device)
        scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=warmup, num_training_steps=plan.steps)
        peers[name] = _Peer(model, extras.get(name), optimizer, scheduler)
    teacher = load_teacher(teacher_dir, vocab_size, block_size, device) if the_method.needs_teacher else None
    the_method.start(list(models), device)

    fingerprint = _run_fingerprint(the_method, students, cfg, plan, teacher_dir)
    ckpt_dir = run_checkpoint_dir(ckpt_dir, fingerprint)
    config_hash = ckpt_dir.name.removeprefix("run-")  # method, students and settings, hashed
    step, metrics, wall_before = 0, [], 0.0
    outer_log = [the_method.initial_record()] if the_method.has_outer_step else []
    state = _load_checkpoint(ckpt_dir)
    if state is not None:
        if state.get("version") != CHECKPOINT_VERSION or state["fingerprint"] != fingerprint:
            raise InputError(
                f"{ckpt_dir / CHECKPOINT_FILE}: the checkpoint was written by another version of babyteach or "
                "belongs to another run; delete it to start this run afresh"
            )
        _restore(state, peers, the_method, procs)
        step, metrics, wall_before = state["step"], state["metrics"], state["wall_time_s"]
        outer_log = state["outer_log"]
        log.info("resumed from %s at step %d of %d", ckpt_dir / CHECKPOINT_FILE, step, plan.steps)
        del state
    log.info(
        "%s: %d student(s), %d steps × %d tokens = %d tokens (%d warmup steps) on %s%s",
        the_method.name, len(peers), plan.steps, plan.tokens_per_step, plan.tokens, warmup, device,
        " with bf16 autocast" if bf16 else "",
    )
    if procs.world_size > 1:
        log.info("data-parallel over %d processes, %d blocks each per micro-batch", procs.world_size,
                 cfg.batch_size // procs.world_size)
    if cfg.compile:
        for model in models.values():
            model.roberta.compile()
            model.lm_head.compile()

    started = time.monotonic()
    last_log = (step, started)  # for tokens/s between metrics lines
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    for model in models.values():
        model.train()
    for module in extras.values():
        module.train()
    # rank 0 samples every GPU of its node; the CSV covers this process's part of the run
    sampler = GpuSampler(ckpt_dir / GPU_FILE) if procs.is_main else contextlib.nullcontext()
    with sampler:
        while step < plan.steps:
            step += 1
            lr = peers[next(iter(peers))].scheduler.get_last_lr()[0]  # this step's learning rate (γ of DWML)
            for peer in peers.values():
                peer.optimizer.zero_grad(set_to_none=True)
            step_losses = torch.zeros(len(peers), dtype=torch.float32, device=device)
            for micro in range(cfg.grad_accum):
                index = (step - 1) * cfg.grad_accum + micro
                local, scale = procs.share(_mask_on_cpu(stream[index], _mask_generator(cfg.seed, index), cfg, meta))
                ctx = StepContext(_to_device(local, device), models, extras, teacher)
                if micro == 0 and outer_stream is not None and the_method.outer_step_due(step):
                    update = len(outer_log) - 1  # outer steps so far: dev batch `update` is next
                    dev_local, _ = procs.share(
                        _mask_on_cpu(outer_stream[update], _mask_generator(cfg.seed, update, OUTER_STREAM), cfg, meta)
                    )
                    dev_batch = _to_device(dev_local, device)
                    # forked RNG: the outer step's dropout leaves the inner steps' draws as they would be
                    # without it, so DWML with ω held fixed is DML exactly
                    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), autocast:
                        record = the_method.outer_step(
                            OuterStep(ctx, dev_batch, lr, step, plan.steps, average=_averager(procs))
                        )
                    _check_outer_record(record, step, ckpt_dir)
                    outer_log.append(record)
                with autocast:
                    losses = the_method.step_loss(ctx)
                if set(losses) != set(peers):
                    raise RuntimeError(f"method {method!r} returned losses for {sorted(losses)}, not {sorted(peers)}")
                total = sum(losses[name] for name in peers) * (scale / cfg.grad_accum)
                total.backward()
                # this process's share of each student's mean loss over the global micro-batch
                step_losses += torch.stack([losses[name].detach().float() for name in peers]) * (
                    scale / procs.world_size / cfg.grad_accum
                )
            procs.sum(step_losses)
            values = dict(zip(peers, step_losses.tolist(), strict=True))  # one device sync per step
            for name, value in values.items():
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"step {step}: the loss of student {name!r} is {value}; training stopped before the update. "
                        f"The last good checkpoint is in {ckpt_dir} (resume re-runs from it); lower train.lr or "
                        "check the data"
                    )
            grad_norms = {}
            for name, peer in peers.items():
                procs.average_gradients(peer.parameters())
                # the norm before clipping; with clipping off, an infinite threshold leaves the gradients as they are
                grad_norms[name] = torch.nn.utils.clip_grad_norm_(peer.parameters(), cfg.clip_norm or math.inf)
                peer.optimizer.step()
                peer.scheduler.step()
            if procs.is_main and (step % cfg.log_every == 0 or step == plan.steps):
                now = time.monotonic()
                tokens_per_s = (step - last_log[0]) * plan.tokens_per_step / max(now - last_log[1], 1e-9)
                last_log = (step, now)
                norms = {name: float(norm) for name, norm in grad_norms.items()}
                metrics.append({"step": step, "tokens": step * plan.tokens_per_step, "lr": lr, "loss": values,
                                "grad_norm": norms, "tokens_per_s": tokens_per_s})
                log.info("step %d/%d lr %.3g %.0f tok/s loss %s", step, plan.steps, lr, tokens_per_s,
                         " ".join(f"{n}={v:.4f}" for n, v in values.items()))
            if cfg.eval_every is not None and step % cfg.eval_every == 0 and step < plan.steps:
                # every process evaluates (no collective to wait on); the last step's is the final dev loss below
                eval_started = time.monotonic()
                dev_now, _ = _dev_loss(models, shard_dir, cfg, meta, device, autocast)
                if procs.is_main:
                    _log_dev_loss(metrics, step, plan, dev_now)
                last_log = (last_log[0], last_log[1] + time.monotonic() - eval_started)  # tokens/s: training only
            if step % cfg.checkpoint_every == 0 or step == plan.steps:
                wall = wall_before + time.monotonic() - started
                rng = procs.gather(_rng_state())  # every process takes part; rank 0 writes
                if procs.is_main:
                    _save_checkpoint(ckpt_dir, _checkpoint_state(step, fingerprint, peers, the_method, metrics, outer_log,
                                                                 rng, wall))
            if on_step is not None:
                on_step(step, models, values)
    wall_time = wall_before + time.monotonic() - started

    dev_loss, dev_blocks = _dev_loss(models, shard_dir, cfg, meta, device, autocast)
    if cfg.eval_every is not None and procs.is_main:
        _log_dev_loss(metrics, plan.steps, plan, dev_loss)  # the curve's last point (not checkpointed: recomputed)
    peer_facts = the_method.peer_summary()
    # the MLM head runs on the masked positions only, about mask_prob of the tokens
    flops = {name: flops_per_token(arch, vocab_size, block_size, cfg.mask_prob) * plan.tokens
             for name, arch in students.items()}
    summary = {
        "format_version": SUMMARY_VERSION,
        "method": the_method.name,
        "method_options": the_method.options(),
        "students": {
            name: {
                "architecture": arch.to_dict(),
                "parameters": count_parameters(arch, vocab_size, block_size),
                "final_dev_loss": dev_loss[name],
                "training_flops": flops[name],
                **peer_facts.get(name, {}),
            }
            for name, arch in students.items()
        },
        "steps": plan.steps,
        "tokens": plan.tokens,
        "tokens_per_step": plan.tokens_per_step,
        "warmup_steps": warmup,
        "block_size": block_size,
        "dev_blocks": dev_blocks,
        "outer_steps": max(len(outer_log) - 1, 0),
        "wall_time_s": wall_time,
        "device": str(device),
        "processes": procs.world_size,
        "config_hash": config_hash,
        "gpu": sampler.summary() if procs.is_main else None,
        "teacher_dir": str(teacher_dir) if teacher_dir is not None else None,
        "config": asdict(cfg),
    }
    if procs.is_main:
        _write_outputs(out_dir, models, students, tokenizer_dir, metrics, outer_log, ckpt_dir / GPU_FILE, summary)
    if procs.world_size > 1:
        dist.barrier()  # out_dir is complete before any process returns
    return summary


def _log_dev_loss(metrics: list[dict[str, Any]], step: int, plan: Plan, dev_loss: Mapping[str, float]) -> None:
    """Append a dev-loss line (``step, tokens, dev_loss``) to the metrics and report it."""
    metrics.append({"step": step, "tokens": step * plan.tokens_per_step, "dev_loss": dict(dev_loss)})
    log.info("step %d/%d dev loss %s", step, plan.steps, " ".join(f"{n}={v:.4f}" for n, v in dev_loss.items()))


def _dev_loss(models: Mapping[str, RobertaForMaskedLM], shard_dir: Path, cfg: TrainConfig,
              meta: Mapping[str, Any], device: torch.device, autocast: Any) -> tuple[dict[str, float], int]:
    """Each student's mean masked CE on the first ``cfg.dev_blocks`` dev blocks, masked with a fixed seed.

    The same blocks and masks for every student, every call and every run with the same seed;
    the mean is over all masked positions of the subset (dropout off). The models are left in
    the mode they were in, and the global random state is restored (training draws are
    unchanged). Returns the losses and the number of blocks used.
    """
    dev = PackedBlocks(shard_dir, "dev", cfg.block_size)
    n = min(cfg.dev_blocks, len(dev))
    if n == 0:
        raise InputError(f"{shard_dir}: the dev split has no block of {cfg.block_size} tokens; the dev loss needs one")
    generator = _mask_generator(cfg.seed, 0, DEV_STREAM)
    totals = {name: 0.0 for name in models}
    count = 0
    training = {name: model.training for name, model in models.items()}
    for model in models.values():
        model.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for first in range(0, n, cfg.batch_size):
            ids = torch.from_numpy(dev.get_blocks(np.arange(first, min(first + cfg.batch_size, n))))
            batch = _mask(ids, generator, cfg, meta, device)
            count += batch.targets.numel()
            for name, model in models.items():
                with autocast:
                    logits = masked_logits(model, batch.input_ids, None, batch.positions)  # (n_masked, vocab)
                totals[name] += cross_entropy(logits.float(), batch.targets).item() * batch.targets.numel()
    for name, model in models.items():
        model.train(training[name])
    return {name: total / count for name, total in totals.items()}, n


def _model_card(name: str, arch: Architecture, summary: Mapping[str, Any]) -> str:
    student = summary["students"][name]
    options = ", ".join(f"{k}={v}" for k, v in summary["method_options"].items()) or "none"
    return "\n".join([
        f"# {name}",
        "",
        "A RoBERTa-style masked language model trained by the babyteach workflow",
        "(reproducing \"When Babies Teach Babies\", BabyLM 2024).",
        "",
        "| | |",
        "|---|---|",
        f"| method | {summary['method']} (options: {options}) |",
        f"| architecture | {arch.describe()}: {arch.layers} layers, {arch.heads} heads, hidden {arch.hidden} |",
        f"| parameters | {student['parameters']:,} |",
        f"| block size | {summary['block_size']} tokens |",
        f"| tokens seen | {summary['tokens']:,} |",
        f"| optimiser steps | {summary['steps']:,} |",
        f"| training FLOPs (analytic) | {student['training_flops']:.3e} |",
        f"| wall time | {summary['wall_time_s']:.0f} s on {summary['device']} × {summary['processes']} |",
        f"| seed | {summary['config']['seed']} |",
        f"| config hash | `{summary['config_hash']}` (method, students and training settings; the checkpoint "
        f"folder `run-{summary['config_hash']}`) |",
        f"| final dev loss | {student['final_dev_loss']:.4f} nats (masked CE on the first "
        f"{summary['dev_blocks']} dev blocks) |",
        *([f"| final peer weight ω | {student['peer_weight']:.4f} |"] if "peer_weight" in student else []),
        "",
        "Load it with `AutoModelForMaskedLM.from_pretrained(folder)` and "
        "`AutoTokenizer.from_pretrained(folder)`.",
        "",
    ])


def _write_outputs(out_dir: Path, models: Mapping[str, RobertaForMaskedLM], students: Mapping[str, Architecture],
                   tokenizer_dir: Path, metrics: list[dict[str, Any]], outer_log: list[dict[str, float]],
                   gpu_csv: Path, summary: dict[str, Any]) -> None:
    """Write the whole ``out_dir`` at once (atomic rename of a finished temporary folder)."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for name, model in models.items():
            folder = tmp / name
            model.save_pretrained(folder)
            for path in sorted(Path(tokenizer_dir).iterdir()):
                if path.is_file():
                    shutil.copy2(path, folder / path.name)
            (folder / "README.md").write_text(_model_card(name, students[name], summary), encoding="utf-8")
        lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in metrics)
        (tmp / "metrics.jsonl").write_text(lines, encoding="utf-8")
        if outer_log:
            pd.DataFrame(outer_log).to_csv(tmp / PEER_WEIGHTS_FILE, index=False)
        shutil.copy2(gpu_csv, tmp / GPU_FILE)
        write_json_atomic(tmp / "train_summary.json", summary)
    log.info("wrote %s", out_dir)
