"""The jobs a Snakemake dry-run plans, read from its printout, with the facts their budget needs.

``snakemake -n -p TARGET`` prints every planned job as a block::

    rule train_mutual:
        input: results/2024-10M/shards, results/2024-10M/tokenizer, results/search/peers-4.json
        output: results/2024-10M/train/dwml/peers-4/alpha-0.5/seed-0
        wildcards: corpus=2024-10M, method=dwml, peers=4, alpha=0.5, seed=0
        ...
    Shell command: /usr/bin/python -m babyteach.train_job '{"method": "dwml", …}' '{"shards": …}' logs/….log

:func:`parse_dry_run` reads those blocks (:class:`PlannedJob`); :func:`parse_train_command` reads
the ``python -m babyteach.train_job SETTINGS JOB LOG`` command of a training rule (also under
torchrun) with :mod:`shlex`, exactly the JSON arguments the job will run with. The run list is
Snakemake's: nothing here decides which jobs a target needs.

The budget of a job needs facts the dry-run does not print; they are read from the Snakemake
working directory after its cheap stages ran there for real (``data`` and ``search``): the train
tokens of a training job from its shards and settings (:func:`babyteach.train.plan_steps`, the
trainer's own count), its students from the search result (:func:`babyteach.train_job.students_of`),
the masked copies of a zero-shot job's family and the inputs of a fine-tuning job's tasks with the
run's tokenizer (:func:`pair_work`, :func:`finetune_work`).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from babyteach.budget import (
    FinetuneJob,
    FinetuneMeasurement,
    JobCost,
    Lengths,
    MissingMeasurement,
    PairWork,
    ScoringJob,
    TaskWork,
    Throughput,
    TrainingJob,
    finetune_cost,
    scoring_cost,
    training_cost,
)
from babyteach.errors import InputError
from babyteach.evaluate.variants import RESULT_VARIANTS

#: The module every training rule's shell command runs (workflow/rules/train.smk).
TRAIN_MODULE = "babyteach.train_job"

#: Rules that score one model on one minimal-pair family (the probe reuses evaluate_zero_shot).
ZERO_SHOT_RULES = ("evaluate_zero_shot", "evaluate_probe")

#: Rules that fine-tune one model on the (Super)GLUE tasks.
FINETUNE_RULES = ("evaluate_finetune",)

_RULE = re.compile(r"^(?:local)?rule (\S+):\s*$")
_FIELD = re.compile(r"^\s+(input|output|wildcards): (.*)$")


class NotPrepared(InputError):
    """A job's inputs that the budget reads (shards, search result, data) are not in the working directory."""


@dataclass(frozen=True)
class PlannedJob:
    """One job of a dry-run: its rule, inputs, outputs, wildcards and printed shell command (if any)."""

    rule: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    wildcards: Mapping[str, str]
    shell: str | None


@dataclass(frozen=True)
class TrainCommand:
    """The arguments of one ``python -m babyteach.train_job SETTINGS JOB LOG`` command."""

    settings: dict[str, Any]
    job: dict[str, Any]
    log: str | None


def parse_dry_run(text: str) -> list[PlannedJob]:
    """The jobs of a ``snakemake -n -p`` printout, in printed order.

    A block starts at ``rule NAME:`` (or ``localrule NAME:``) and ends at a blank line; its
    ``Shell command:`` line (Snakemake ≥ 9) or indented command lines are its shell command.
    Target rules without outputs (``all``) are jobs too; callers skip what they do not budget.
    """
    jobs: list[PlannedJob] = []
    block: list[str] | None = None
    for line in [*text.splitlines(), ""]:
        match = _RULE.match(line)
        if match:
            block = [line]
        elif block is not None and line.strip():
            block.append(line)
        elif block is not None:
            jobs.append(_parse_block(block))
            block = None
    return jobs


def _parse_block(lines: list[str]) -> PlannedJob:
    rule = _RULE.match(lines[0]).group(1)
    fields: dict[str, str] = {}
    shell: list[str] = []
    for line in lines[1:]:
        match = _FIELD.match(line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
        elif line.startswith("Shell command:"):
            shell.append(line.removeprefix("Shell command:").strip())
        elif shell or TRAIN_MODULE in line:
            shell.append(line.strip())
    command = " ".join(shell).strip()
    wildcards = dict(item.split("=", 1) for item in _split(fields.get("wildcards", "")))
    return PlannedJob(
        rule=rule,
        inputs=tuple(_split(fields.get("input", ""))),
        outputs=tuple(_split(fields.get("output", ""))),
        wildcards=wildcards,
        shell=None if command in ("", "None") else command,
    )


def _split(value: str) -> list[str]:
    return [item for item in value.split(", ") if item]


def job_stats(text: str) -> dict[str, int]:
    """Rule → planned jobs, from the printout's ``Job stats`` table (a check of :func:`parse_dry_run`)."""
    counts: dict[str, int] = {}
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Job stats:"), None)
    if start is None:
        return counts
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def parse_train_command(shell: str | None) -> TrainCommand | None:
    """The SETTINGS, JOB and LOG of a training rule's command, or None when ``shell`` runs something else.

    The command is ``<python> -m babyteach.train_job SETTINGS JOB [LOG]``, or the same after
    ``<python> -m torch.distributed.run … --nproc_per_node N`` (the rule's launcher, with the
    arguments :mod:`shlex`-quoted as the rule's ``{params.settings:q}`` writes them).
    """
    if not shell or TRAIN_MODULE not in shell:
        return None
    words = shlex.split(shell)
    at = next((i for i in range(len(words) - 1) if words[i] == "-m" and words[i + 1] == TRAIN_MODULE), None)
    if at is None:
        return None
    args = words[at + 2 :]
    if len(args) not in (2, 3):
        raise InputError(
            f"training command with {len(args)} arguments after -m {TRAIN_MODULE} (expected SETTINGS JOB [LOG]): {shell}"
        )
    from babyteach.train_job import JOB_KEYS, SETTINGS_KEYS, parse_object

    return TrainCommand(
        parse_object(args[0], "settings", SETTINGS_KEYS),
        parse_object(args[1], "job", JOB_KEYS),
        args[2] if len(args) == 3 else None,
    )


# --- facts from the working directory ----------------------------------------------------------


@functools.cache
def _train_blocks(shards: Path, block_size: int) -> int:
    from babyteach.data.shards import PackedBlocks

    return len(PackedBlocks(shards, "train", block_size))


def training_job(planned: PlannedJob, command: TrainCommand, workdir: Path) -> TrainingJob:
    """The budget facts of a training job: students, exact train tokens (``plan_steps`` over its shards), vocabulary."""
    from babyteach.data.shards import read_meta
    from babyteach.train import plan_steps
    from babyteach.train_config import TrainConfig
    from babyteach.train_job import students_of

    settings, job = command.settings, command.job
    shards = workdir / job["shards"]
    if not (shards / "meta.json").is_file():
        raise NotPrepared(
            f"{job['shards']} not prepared in {workdir}: its corpus's data stage has not run there "
            "(run it there, or leave that corpus out of the plan, e.g. report.table1_tracks)"
        )
    search = job.get("search")
    if search is not None and not (workdir / search).is_file():
        raise NotPrepared(f"{search} not in {workdir} (the search stage has not run there)")
    students = students_of(settings, str(workdir / search) if search else None)
    cfg = TrainConfig(**settings["training"], block_size=int(settings["block_size"]), seed=int(settings["seed"]))
    plan = plan_steps(cfg, _train_blocks(shards, cfg.block_size))
    return TrainingJob(
        rule=planned.rule,
        output=job["output"],
        method=settings["method"],
        students=students,
        tokens=plan.tokens,
        batch_size=cfg.batch_size,
        block_size=cfg.block_size,
        vocab_size=int(read_meta(shards)["vocab_size"]),
        mask_prob=cfg.mask_prob,
        compile=cfg.compile,
        method_options=dict(settings.get("method_options") or {}),
    )


def model_of(planned: PlannedJob, trainings: Mapping[str, tuple[TrainingJob, str]]) -> tuple[TrainingJob, str]:
    """The training job (planned in the same dry-run) whose model an evaluation job reads, and its tokenizer.

    ``trainings`` maps a training job's output folder to (job, tokenizer folder); the evaluation
    job's input that is such a folder names the run, its ``model`` wildcard the student.
    """
    runs = [path for path in planned.inputs if path in trainings]
    if not runs:
        raise NotPrepared(
            f"{planned.outputs[0]}: none of its inputs is a training job of this plan; "
            "budget it in a working directory where its model is not trained yet"
        )
    training, tokenizer = trainings[runs[0]]
    model = planned.wildcards.get("model")
    if model not in training.students:
        raise InputError(
            f"{planned.outputs[0]}: model {model!r} is not a student of {runs[0]} ({', '.join(training.students)})"
        )
    return training, tokenizer


def data_input(planned: PlannedJob, training: TrainingJob) -> str:
    """The dataset folder an evaluation job reads: its one input besides the trained run."""
    data = [path for path in planned.inputs if path != training.output]
    if len(data) != 1:
        raise InputError(f"{planned.outputs[0]}: expected one dataset input besides {training.output}, got {data}")
    return data[0]


def _fast_tokenizer(tokenizer_dir: Path):
    from tokenizers import Tokenizer

    path = Path(tokenizer_dir) / "tokenizer.json"
    if not path.is_file():
        raise NotPrepared(f"{path} not found; run the data stage in the working directory")
    return Tokenizer.from_file(str(path))


@functools.cache
def pair_work(
    tokenizer_dir: Path,
    family: str,
    data_dir: Path,
    max_per_task: int | None,
    variants: tuple[str, ...] = RESULT_VARIANTS,
) -> PairWork:
    """The masked copies the scorer runs for ``family`` in ``data_dir`` with this tokenizer under ``variants``
    (default: both scorings, as every evaluation runs them).

    The scorer's own tokenization (:func:`babyteach.evaluate.scoring.copy_lengths`, on the distinct
    (context, sentence) inputs, as ``score_variants`` dedups them): one copy per scored token and
    variant, each as long as its sentence as that variant reads it (context and specials included).
    """
    from babyteach.data.tokenizer import BOS, EOS, PAD
    from babyteach.evaluate.pairs import load_pairs
    from babyteach.evaluate.scoring import copy_lengths

    if not Path(data_dir).is_dir():
        raise NotPrepared(f"{data_dir} not found: fetch dataset {family!r} in the working directory")
    pairs = load_pairs(family, Path(data_dir), max_per_task)
    inputs = list(dict.fromkeys((p.prefix, s) for p in pairs for s in (p.good, p.bad)))
    backend = _fast_tokenizer(tokenizer_dir)  # copy_lengths reads the Rust backend and the special tokens only
    shim = SimpleNamespace(
        backend_tokenizer=backend,
        eos_token=EOS,
        cls_token_id=backend.token_to_id(BOS),
        sep_token_id=backend.token_to_id(EOS),
        pad_token_id=backend.token_to_id(PAD),
    )
    lengths = copy_lengths(shim, [s for _, s in inputs], [p for p, _ in inputs], variants)  # (n_copies,)
    return PairWork(len(pairs), Lengths(float(lengths.size), float(lengths.sum()), float((lengths**2).sum())))


def _lengths(tokenizer, examples: list, max_length: int) -> list[int]:
    """Tokens of each example as fine-tuning encodes it: the pair with specials, truncated longest-first."""
    if not examples:
        return []
    tokenizer.enable_truncation(max_length, strategy="longest_first")
    try:
        texts = [e.first if e.second is None else (e.first, e.second) for e in examples]
        return [len(encoding.ids) for encoding in tokenizer.encode_batch(texts, add_special_tokens=True)]
    finally:
        tokenizer.no_truncation()


def _task_examples(data_dir: Path, task: str, split: str) -> list:
    from babyteach.evaluate.glue import load_examples
    from babyteach.evaluate.glue_tasks import TASKS

    return load_examples(TASKS[task], Path(data_dir) / f"{task}.{split}.jsonl")


@functools.cache
def finetune_work(tokenizer_dir: Path, data_dir: Path, finetune: str) -> tuple[TaskWork, ...]:
    """The fine-tuning runs of one model with the ``finetune`` config section (JSON): per task trained,
    its train inputs (``max_train_examples``) and the valid inputs scored with its model after each epoch
    (its own and its dependants', e.g. mnli-mm). Tasks lacking a file are skipped, as ``finetune_model`` does.
    """
    from babyteach.evaluate.glue import FinetuneConfig, _files, _subset
    from babyteach.evaluate.glue_tasks import TASKS

    cfg = FinetuneConfig.from_mapping(json.loads(finetune))
    if not Path(data_dir).is_dir():
        raise NotPrepared(f"{data_dir} not found: fetch dataset 'glue-filtered' in the working directory")
    tokenizer = _fast_tokenizer(tokenizer_dir)
    present = [n for n in cfg.tasks if all(p.is_file() for p in _files(TASKS[n], Path(data_dir)).values())]
    work = []
    for source in dict.fromkeys(TASKS[n].train_from or n for n in present):
        train = _subset(_task_examples(data_dir, source, "train"), cfg.max_train_examples, cfg.seed)
        valid = Lengths()
        for name in (n for n in present if (TASKS[n].train_from or n) == source):
            examples = _subset(_task_examples(data_dir, name, "valid"), cfg.max_eval_examples, cfg.seed)
            valid += Lengths.of(_lengths(tokenizer, examples, cfg.max_length))
        work.append(TaskWork(source, Lengths.of(_lengths(tokenizer, train, cfg.max_length)), valid))
    return tuple(work)


@functools.cache
def measured_task_work(tokenizer_dir: Path, data_dir: Path, entry: FinetuneMeasurement) -> TaskWork:
    """The work of a measured fine-tuning run with this tokenizer: its task's train inputs at the
    entry's ``examples`` and ``max_length``, and its valid file (at ``valid_examples`` if given)."""
    from babyteach.evaluate.glue_tasks import TASKS

    if entry.task not in TASKS or TASKS[entry.task].train_from:
        raise InputError(f"fine-tuning measurement of task {entry.task!r}: not a task with its own train file")
    tokenizer = _fast_tokenizer(tokenizer_dir)
    train = Lengths.of(_lengths(tokenizer, _task_examples(data_dir, entry.task, "train"), entry.max_length))
    valid = Lengths.of(_lengths(tokenizer, _task_examples(data_dir, entry.task, "valid"), entry.max_length))
    if entry.valid_examples is not None:
        valid = valid.scaled(entry.valid_examples / valid.count)
    return TaskWork(entry.task, train.scaled(entry.examples / train.count), valid)


def scoring_job(
    planned: PlannedJob, training: TrainingJob, tokenizer: Path, workdir: Path, max_per_task: int | None
) -> ScoringJob:
    """The budget facts of a zero-shot job: its model and the masked copies of its family's pairs."""
    family = planned.wildcards["family"]
    data = data_input(planned, training)
    return ScoringJob(
        rule=planned.rule,
        output=planned.outputs[0],
        family=family,
        architecture=training.students[planned.wildcards["model"]],
        vocab_size=training.vocab_size,
        work=pair_work(workdir / tokenizer, family, workdir / data, max_per_task),
    )


def finetune_job(
    planned: PlannedJob, training: TrainingJob, tokenizer: Path, workdir: Path, finetune: Mapping[str, Any]
) -> FinetuneJob:
    """The budget facts of a fine-tuning job: its model and every task run (``max_epochs`` each)."""
    from babyteach.evaluate.glue import FinetuneConfig

    data = data_input(planned, training)
    tasks = finetune_work(workdir / tokenizer, workdir / data, json.dumps(dict(finetune), sort_keys=True))
    return FinetuneJob(
        rule=planned.rule,
        output=planned.outputs[0],
        architecture=training.students[planned.wildcards["model"]],
        epochs=FinetuneConfig.from_mapping(finetune).max_epochs,
        tasks=tasks,
    )


def plan_costs(
    planned: Iterable[PlannedJob],
    workdir: Path,
    throughput: Throughput,
    evaluation: Mapping[str, Any],
    finetune: Mapping[str, Any],
) -> tuple[list[JobCost], dict[str, int]]:
    """The GPU cost of every planned GPU job (training, zero-shot, fine-tuning) and the count of the
    other planned jobs by rule (CPU work: tables, figures, data stages).

    A job that cannot be budgeted (no measurement of its kind of work, inputs not prepared in
    ``workdir``) gets ``seconds=None`` and the reason, never a guess. ``evaluation`` and ``finetune``
    are the config sections the evaluation rules pass to their scripts (not printed by a dry-run).
    """
    planned = list(planned)
    costs: list[JobCost] = []
    others: dict[str, int] = {}
    trainings: dict[str, tuple[TrainingJob, str]] = {}
    failed: dict[str, str] = {}  # training output -> why it was not budgeted
    commands = {i: c for i, c in enumerate(map(parse_train_command, (j.shell for j in planned))) if c is not None}
    for i, command in commands.items():
        job, output = planned[i], command.job["output"]
        try:
            training = training_job(job, command, workdir)
            trainings[output] = (training, command.job["tokenizer"])
            costs.append(training_cost(training, throughput))
        except MissingMeasurement as error:
            costs.append(JobCost(job.rule, output, None, reason=str(error)))
        except InputError as error:  # not prepared, or unreadable: its evaluation jobs cannot be budgeted either
            failed[output] = str(error)
            costs.append(JobCost(job.rule, output, None, reason=str(error)))
    for i, job in enumerate(planned):
        if job.rule not in ZERO_SHOT_RULES + FINETUNE_RULES:
            if i not in commands and job.outputs:
                others[job.rule] = others.get(job.rule, 0) + 1
            continue
        output = job.outputs[0]
        try:
            run = next((p for p in job.inputs if p in failed), None)
            if run is not None:
                raise NotPrepared(f"its model's training job was not budgeted: {failed[run]}")
            training, tokenizer = model_of(job, trainings)
            if job.rule in ZERO_SHOT_RULES:
                scoring = scoring_job(job, training, Path(tokenizer), workdir, evaluation.get("max_per_task"))
                costs.append(
                    scoring_cost(
                        scoring,
                        throughput,
                        functools.partial(
                            _measured_pair_work, workdir / tokenizer, workdir / Path(data_input(job, training)).parent
                        ),
                    )
                )
            else:
                tuning = finetune_job(job, training, Path(tokenizer), workdir, finetune)
                costs.append(
                    finetune_cost(
                        tuning,
                        throughput,
                        functools.partial(measured_task_work, workdir / tokenizer, workdir / data_input(job, training)),
                    )
                )
        except InputError as error:  # a missing measurement, or inputs not prepared: named, never guessed
            costs.append(JobCost(job.rule, output, None, reason=str(error)))
    return costs, others


def _measured_pair_work(tokenizer_dir: Path, raw_dir: Path, family: str, variants: tuple[str, ...]) -> PairWork:
    """The work of a measured scoring family under the variants the measured run scored, read from
    ``raw_dir/<family>`` (the folder of fetched datasets the planned job reads from: ``<results root>/raw``).

    The whole family (a measured run's ``pairs`` rescale it), whatever ``max_per_task`` the plan uses.
    """
    return pair_work(tokenizer_dir, family, raw_dir / family, None, tuple(variants))
