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
lives in ``ckpt_dir/run-<hash of method, students and config>``, so changed settings start a
new run instead of resuming an unrelated one (:mod:`babyteach.train_checkpoint`).

Data-parallel: call the same function in every process of ``torchrun`` (``RANK`` /
``WORLD_SIZE`` / ``LOCAL_RANK`` are read from the environment; NCCL on CUDA, one GPU per
process, gloo on CPU). :func:`train` joins a process group the script already started and
leaves it open; otherwise it starts one and closes it at the end (:mod:`babyteach.distributed`),
so a script that trains several runs in one process should start the group itself::

    torchrun --standalone --nproc_per_node 4 my_training_script.py   # which calls train(...)

Every process builds and masks its ``batch_size / W`` rows of the same global micro-batch of
``cfg.batch_size`` blocks, exactly as a single process masks those rows
(:mod:`babyteach.data.batches`); every row has the same number of predicted positions, so the
mean of the processes' mean losses is the global mean, and each student's gradients are
averaged over the processes once per optimiser step (one flat all-reduce per student, after
accumulation): the update equals a single process's on the whole batch. Dropout draws use
seed ``seed + rank``.
Only rank 0 logs, checkpoints and writes ``out_dir``; the checkpoint keeps every rank's
random state, so a resume with the same number of processes is exact. DWML's outer step
averages the processes' hypergradients, so ω stays identical on every rank.

The outputs (the models with their model cards, ``metrics.jsonl``, ``peer_weights.csv``,
``gpu.csv``, ``train_summary.json``) are written as one directory at the end, so ``out_dir``
appears complete or not at all (:mod:`babyteach.train_outputs` lists what each holds).

The dev loss (:class:`_DevSet`) is each student's masked CE on ``cfg.dev_blocks`` dev blocks spread
over the split (:func:`babyteach.data.shards.dev_sample`), with the same masks at every evaluation and in every run of the same seed, so its points
are comparable across steps and methods. It is computed at the end and, with ``cfg.eval_every``,
after every ``eval_every``-th optimiser step too (the last of the curve is the final dev loss).
Each evaluation is one forward pass of every student over those blocks, without dropout or
backward: about ``dev_blocks / (3 × batch_size × grad_accum)`` steps' compute (256 blocks every
500 steps of 32: under 1 %); every process evaluates all blocks (no communication), rank 0 logs.
Evaluating neither changes the weights nor draws from the training random state: a run with
``eval_every`` ends with the weights of the same run without it.

The step never waits for the device between log lines: the token streams live on the device,
blocks are gathered and masked there with static shapes (:mod:`babyteach.data.masking`), and
losses, non-finite checks, gradient norms and outer-step records are read back only at
``log_every``, ``eval_every`` and ``checkpoint_every`` steps (:mod:`babyteach.train_readback`);
a non-finite loss stops the run at the next of those, naming the step where it first appeared,
before any checkpoint is written (``tests/test_step_sync.py`` checks every method on the CPU).

Numerics: fp32 on CPU; on CUDA bf16 autocast (``precision="auto"``) and TF32 matmuls (``"bf16"``:
autocast on a CPU too, to study the bf16 path without a GPU); one fused
AdamW for all students. Masks are a hash of (seed, stream, micro-batch, position), the same on
every device, and the global RNG (dropout) is checkpointed, so resumed runs are exact on
deterministic hardware.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from transformers import AutoModelForMaskedLM, RobertaForMaskedLM, get_scheduler

from babyteach.data.batches import DeviceSplit, MicroBatches, dev_loss_batches
from babyteach.data.masking import OUTER_STREAM, TRAIN_STREAM
from babyteach.data.shards import PackedBlocks, read_meta
from babyteach.data.tokenizer import load_tokenizer
from babyteach.distributed import Processes, start_processes
from babyteach.errors import InputError
from babyteach.gpu import GpuSampler
from babyteach.io import WEIGHT_FILES, load_pretrained
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
from babyteach.train_checkpoint import (
    CHECKPOINT_FILE,
    TrainingState,
    checkpoint_state,
    load_checkpoint,
    restore,
    rng_state,
    run_checkpoint_dir,
    run_fingerprint,
    save_checkpoint,
)
from babyteach.train_config import TrainConfig
from babyteach.train_outputs import GPU_FILE, SUMMARY_VERSION, write_outputs
from babyteach.train_readback import Tally, settle_outer_records

log = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------------------------
# Set-up


def _check_outer_batches(shard_dir: Path, cfg: TrainConfig) -> None:
    """Outer steps draw whole batches of held-out dev blocks: the dev split must hold one."""
    dev = PackedBlocks(shard_dir, "dev", cfg.block_size)
    if len(dev) < cfg.batch_size:
        raise InputError(
            f"{shard_dir}: the dev split has {len(dev)} blocks of {cfg.block_size} tokens, fewer than one outer "
            f"batch (training.batch_size = {cfg.batch_size}); lower training.batch_size or use a larger dev split"
        )


def load_teacher(teacher_dir: Path, vocab_size: int, block_size: int, device: torch.device) -> RobertaForMaskedLM:
    """The frozen teacher: a saved model folder, in eval mode, without gradients."""
    teacher_dir = Path(teacher_dir)
    if not (teacher_dir / "config.json").is_file() or not any((teacher_dir / f).is_file() for f in WEIGHT_FILES):
        raise InputError(
            f"{teacher_dir}: no saved model (config.json and weights) found; train the baseline teacher first"
        )
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


def _optimizer(parameters: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.AdamW:
    """One AdamW over every student's parameters, weight decay on matrices only.

    AdamW is elementwise, so one optimiser over all students updates each exactly as an optimiser
    of its own would (the schedule is the same for all), in one fused multi-tensor pass per
    parameter group instead of one per student. The fused kernels (CUDA and CPU) keep the step
    count on the parameters' device, so the update never reads a value back to the host.
    """
    decay = [p for p in parameters if p.dim() >= 2]
    no_decay = [p for p in parameters if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        eps=cfg.adam_eps,
        fused=True,
    )


@dataclass
class _Peer:
    """One student with its training-only modules (its optimiser state lives in the shared AdamW)."""

    model: RobertaForMaskedLM
    extra: nn.Module | None

    def modules(self) -> list[nn.Module]:
        return [self.model] + ([self.extra] if self.extra is not None else [])

    def parameters(self) -> list[nn.Parameter]:
        """Its trainable parameters, each once (SD's exits share the word embeddings)."""
        return list({id(p): p for m in self.modules() for p in m.parameters()}.values())


# --------------------------------------------------------------------------------------------
# The loop


@dataclass(frozen=True)
class _Run:
    """What a run trains, what it reads and where it writes: :func:`train`'s arguments once checked,
    with the shards' metadata and the run's length; :func:`_train` reads them from here."""

    method: Method
    students: Mapping[str, Architecture]
    cfg: TrainConfig
    plan: Plan
    meta: Mapping[str, Any]  # the shards' meta.json: vocabulary size, special tokens
    shard_dir: Path
    tokenizer_dir: Path
    teacher_dir: Path | None
    out_dir: Path
    ckpt_dir: Path  # holds one checkpoint folder per run (run_checkpoint_dir)


#: Called after every step with (step, students, losses); tests use it to interrupt or poison a run. The
#: losses are 0-d tensors on the training device (reading one waits for the step to finish).
StepHook = Callable[[int, Mapping[str, RobertaForMaskedLM], Mapping[str, torch.Tensor]], None]


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
    plan = plan_steps(cfg, len(PackedBlocks(shard_dir, "train", cfg.block_size)))
    if the_method.has_outer_step:
        _check_outer_batches(shard_dir, cfg)
    run = _Run(the_method, students, cfg, plan, meta, shard_dir, tokenizer_dir, teacher_dir, out_dir, ckpt_dir)
    procs, device, created_group = start_processes(cfg)
    try:
        return _train(run, procs, device, on_step)
    finally:
        if created_group:
            dist.destroy_process_group()


def _train(run: _Run, procs: Processes, device: torch.device, on_step: StepHook | None) -> dict[str, Any]:
    """The body of :func:`train` once inputs are checked and the processes have started."""
    if not procs.is_main:
        log.setLevel(logging.WARNING)  # one process reports progress
    the_method, students, cfg, plan, meta = run.method, run.students, run.cfg, run.plan, run.meta
    vocab_size, block_size, method = int(meta["vocab_size"]), cfg.block_size, the_method.name
    bf16 = cfg.precision == "bf16" or (device.type == "cuda" and cfg.precision == "auto")
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
    peers = {name: _Peer(model, extras.get(name)) for name, model in models.items()}
    warmup = round(cfg.warmup_fraction * plan.steps)
    optimizer = _optimizer([p for peer in peers.values() for p in peer.parameters()], cfg)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=warmup, num_training_steps=plan.steps)
    teacher = load_teacher(run.teacher_dir, vocab_size, block_size, device) if the_method.needs_teacher else None
    the_method.start(list(models), device)
    training_state = TrainingState(models, extras, optimizer, scheduler, the_method)  # what a checkpoint holds

    fingerprint = run_fingerprint(the_method, students, cfg, plan.steps, run.teacher_dir)
    ckpt_dir = run_checkpoint_dir(run.ckpt_dir, fingerprint)
    config_hash = ckpt_dir.name.removeprefix("run-")  # method, students and settings, hashed
    step, metrics, wall_before = 0, [], 0.0
    outer_log = [the_method.initial_record()] if the_method.has_outer_step else []
    state = load_checkpoint(ckpt_dir, fingerprint)
    if state is not None:
        restore(state, training_state, procs)
        step, metrics, wall_before = state["step"], state["metrics"], state["wall_time_s"]
        outer_log = state["outer_log"]
        log.info("resumed from %s at step %d of %d", ckpt_dir / CHECKPOINT_FILE, step, plan.steps)
        del state
    log.info(
        "%s: %d student(s), %d steps × %d tokens = %d tokens (%d warmup steps) on %s%s",
        the_method.name,
        len(peers),
        plan.steps,
        plan.tokens_per_step,
        plan.tokens,
        warmup,
        device,
        " with bf16 autocast" if bf16 else "",
    )
    if procs.world_size > 1:
        log.info(
            "data-parallel over %d processes, %d blocks each per micro-batch",
            procs.world_size,
            cfg.batch_size // procs.world_size,
        )
    # The data: both splits resident on the device, each micro-batch gathered and masked there; k
    # predicted positions per block (mask_prob of the train split's predictable tokens) in every stream
    train_split, dev_split = (DeviceSplit(run.shard_dir, split, block_size, device) for split in ("train", "dev"))
    k = train_split.predictions(cfg.mask_prob)
    batches = _micro_batches(train_split, TRAIN_STREAM, k, cfg, meta, procs, count=plan.steps * cfg.grad_accum)
    outer_steps = sum(the_method.outer_step_due(s) for s in range(1, plan.steps + 1))  # one dev batch each
    outer_batches = (
        _micro_batches(dev_split, OUTER_STREAM, k, cfg, meta, procs, count=outer_steps)
        if the_method.has_outer_step
        else None
    )
    dev_set = _DevSet(dev_split, k, cfg, meta)
    log.info(
        "%d positions predicted per block of %d tokens: %.1f %% of the train split's predictable tokens",
        k,
        block_size,
        100 * k * len(train_split) / float(train_split.candidates.sum()),
    )

    started = time.monotonic()
    last_log = (step, started)  # for tokens/s between metrics lines
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    for model in models.values():
        model.train()
    for module in extras.values():
        module.train()
    step_loss = _step_loss_fn(the_method, models, extras, teacher, batches[0], device) if cfg.compile else None
    tally = Tally(list(peers), device)
    pending_outer: list[dict[str, Any]] = []  # outer-step records not yet read back from the device
    # rank 0 samples every GPU of its node; the CSV covers this process's part of the run
    sampler = GpuSampler(ckpt_dir / GPU_FILE) if procs.is_main else contextlib.nullcontext()
    with sampler:
        while step < plan.steps:
            step += 1
            logs = step % cfg.log_every == 0 or step == plan.steps
            evaluates = cfg.eval_every is not None and step % cfg.eval_every == 0 and step < plan.steps
            checkpoints = step % cfg.checkpoint_every == 0 or step == plan.steps
            lr = scheduler.get_last_lr()[0]  # this step's learning rate (γ of DWML)
            optimizer.zero_grad(set_to_none=True)
            tally.begin_step()
            for micro in range(cfg.grad_accum):
                index = (step - 1) * cfg.grad_accum + micro
                ctx = StepContext(batches[index], models, extras, teacher)
                if micro == 0 and outer_batches is not None and the_method.outer_step_due(step):
                    update = len(outer_log) + len(pending_outer) - 1  # outer steps so far: dev batch `update` is next
                    # forked RNG: the outer step's dropout leaves the inner steps' draws as they would be
                    # without it, so DWML with ω held fixed is DML exactly
                    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), autocast:
                        pending_outer.append(
                            the_method.outer_step(
                                OuterStep(ctx, outer_batches[update], lr, step, plan.steps, average=procs.mean)
                            )
                        )
                with autocast:
                    losses = the_method.step_loss(ctx) if step_loss is None else step_loss(ctx.batch)
                if set(losses) != set(peers):
                    raise RuntimeError(f"method {method!r} returned losses for {sorted(losses)}, not {sorted(peers)}")
                # every process holds the same number of predicted positions, so the mean of the
                # processes' mean losses is the global mean (its gradient: averaged below)
                (sum(losses[name] for name in peers) / cfg.grad_accum).backward()
                tally.add(torch.stack([losses[name].detach().float() for name in peers]) / cfg.grad_accum)
            tally.end_step(step, procs)
            norms = []
            for peer in peers.values():
                procs.average_gradients(peer.parameters())
                # the norm before clipping; with clipping off, an infinite threshold leaves the gradients as they are
                norms.append(torch.nn.utils.clip_grad_norm_(peer.parameters(), cfg.clip_norm or math.inf))
            optimizer.step()
            scheduler.step()
            if logs or evaluates or checkpoints:
                # the only host synchronisation of the step: losses, first non-finite step, gradient norms
                values, grad_norms, loss_problem = tally.read(torch.stack(norms), ckpt_dir)
                settled, outer_problem = settle_outer_records(pending_outer, ckpt_dir)
                # the earliest problem; at one step the outer step ran before the inner losses
                problems = sorted((p[0], order, p[1]) for order, p in enumerate((outer_problem, loss_problem)) if p)
                if problems:
                    raise NonFiniteLossError(problems[0][2])
                outer_log.extend(settled)
                pending_outer.clear()
                if logs and procs.is_main:
                    now = time.monotonic()
                    tokens_per_s = (step - last_log[0]) * plan.tokens_per_step / max(now - last_log[1], 1e-9)
                    last_log = (step, now)
                    metrics.append(
                        {
                            "step": step,
                            "tokens": step * plan.tokens_per_step,
                            "lr": lr,
                            "loss": values,
                            "grad_norm": grad_norms,
                            "tokens_per_s": tokens_per_s,
                        }
                    )
                    log.info(
                        "step %d/%d lr %.3g %.0f tok/s loss %s",
                        step,
                        plan.steps,
                        lr,
                        tokens_per_s,
                        " ".join(f"{n}={v:.4f}" for n, v in values.items()),
                    )
            if evaluates:
                # every process evaluates (no collective to wait on); the last step's is the final dev loss below
                eval_started = time.monotonic()
                dev_now = dev_set.losses(models, autocast)
                if procs.is_main:
                    _log_dev_loss(metrics, step, plan, dev_now)
                last_log = (last_log[0], last_log[1] + time.monotonic() - eval_started)  # tokens/s: training only
            if checkpoints:
                wall = wall_before + time.monotonic() - started
                rng = procs.gather(rng_state())  # every process takes part; rank 0 writes
                if procs.is_main:
                    save_checkpoint(
                        ckpt_dir, checkpoint_state(step, fingerprint, training_state, metrics, outer_log, rng, wall)
                    )
            if on_step is not None:
                on_step(step, models, tally.step_losses())
    wall_time = wall_before + time.monotonic() - started

    dev_loss, dev_blocks = dev_set.losses(models, autocast), dev_set.n_blocks
    if cfg.eval_every is not None and procs.is_main:
        _log_dev_loss(metrics, plan.steps, plan, dev_loss)  # the curve's last point (not checkpointed: recomputed)
    peer_facts = the_method.peer_summary()
    # the MLM head runs on the masked positions only, about mask_prob of the tokens
    flops = {
        name: flops_per_token(arch, vocab_size, block_size, cfg.mask_prob) * plan.tokens
        for name, arch in students.items()
    }
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
        "teacher_dir": str(run.teacher_dir) if run.teacher_dir is not None else None,
        "config": asdict(cfg),
    }
    if procs.is_main:
        write_outputs(
            run.out_dir, models, students, run.tokenizer_dir, metrics, outer_log, ckpt_dir / GPU_FILE, summary
        )
    if procs.world_size > 1:
        dist.barrier()  # out_dir is complete before any process returns
    return summary


def _step_loss_fn(
    method: Method,
    models: Mapping[str, RobertaForMaskedLM],
    extras: Mapping[str, nn.Module],
    teacher: RobertaForMaskedLM | None,
    example: MLMBatch,
    device: torch.device,
) -> Callable[[MLMBatch], dict[str, torch.Tensor]]:
    """``method.step_loss`` of every student on a batch, compiled as one graph (``training.compile``).

    The batches have static shapes, so the students' forward passes and losses compile into one
    graph without breaks (``fullgraph=True``: a break is an error, not a silent slowdown; tested
    on CPU). Each call builds its own :class:`StepContext`, so on a step with an outer step KD_DWML
    runs the teacher once more for the inner losses. One eager call first, without gradients and
    on a forked random state: transformers installs its hidden-state capture hooks (SD reads
    hidden states) behind a lock that dynamo cannot trace, and does so only on the first call.
    """
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        method.step_loss(StepContext(example, models, extras, teacher))
    return torch.compile(lambda batch: method.step_loss(StepContext(batch, models, extras, teacher)), fullgraph=True)


def _micro_batches(
    split: DeviceSplit, stream: int, k: int, cfg: TrainConfig, meta: Mapping[str, Any], procs: Processes, count: int
) -> MicroBatches:
    """This process's masked micro-batches of ``split`` for one masking stream (``count`` of them used)."""
    return MicroBatches(
        split,
        cfg.seed,
        cfg.batch_size,
        stream,
        k,
        meta["special_tokens"],
        int(meta["vocab_size"]),
        procs.rank,
        procs.world_size,
        count=count,
    )


class _DevSet:
    """The dev-loss blocks: ``cfg.dev_blocks`` dev blocks spread over the split
    (:func:`babyteach.data.shards.dev_sample`), masked once, kept on the device.

    The same blocks and masks for every student, every evaluation and every run with the same
    seed, so the points of a dev-loss curve are comparable across steps and methods; batch ``j``
    (``batch_size`` blocks, the last one shorter) is masked with key ``(seed, DEV_STREAM, j)``.
    """

    def __init__(self, split: DeviceSplit, k: int, cfg: TrainConfig, meta: Mapping[str, Any]) -> None:
        self.batches = dev_loss_batches(
            split, k, cfg.seed, cfg.batch_size, cfg.dev_blocks, meta["special_tokens"], int(meta["vocab_size"])
        )
        self.n_blocks = sum(len(batch.input_ids) for batch in self.batches)

    def losses(self, models: Mapping[str, RobertaForMaskedLM], autocast: Any) -> dict[str, float]:
        """Each student's mean masked CE over every predicted position of the dev blocks (dropout off).

        The models are left in the mode they were in and the global random state is restored, so
        evaluating changes neither the weights nor the training draws. One host read at the end.
        """
        device = self.batches[0].input_ids.device
        totals = torch.zeros(len(models), dtype=torch.float64, device=device)
        count = sum(batch.targets.numel() for batch in self.batches)
        training = {name: model.training for name, model in models.items()}
        for model in models.values():
            model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for batch in self.batches:
                for i, model in enumerate(models.values()):
                    with autocast:
                        logits = masked_logits(model, batch.input_ids, None, batch.positions)  # (n_masked, vocab)
                    totals[i] += cross_entropy(logits.float(), batch.targets).double() * batch.targets.numel()
        for name, model in models.items():
            model.train(training[name])
        return dict(zip(models, (totals / count).tolist(), strict=True))


def _log_dev_loss(metrics: list[dict[str, Any]], step: int, plan: Plan, dev_loss: Mapping[str, float]) -> None:
    """Append a dev-loss line (``step, tokens, dev_loss``) to the metrics and report it."""
    metrics.append({"step": step, "tokens": step * plan.tokens_per_step, "dev_loss": dict(dev_loss)})
    log.info("step %d/%d dev loss %s", step, plan.steps, " ".join(f"{n}={v:.4f}" for n, v in dev_loss.items()))
