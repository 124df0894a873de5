"""(Super)GLUE fine-tuning evaluation as BabyLM 2024 runs it: fine-tune a copy of a model per task, score ``valid``.

Every task is described once, as data, in :data:`TASKS`: which fields of a json line make the
first and second text segment, how many labels it has and which metric BabyLM reports for it
(``docs/METHODS.md``, "Evaluation: (Super)GLUE fine-tuning"): accuracy, except the Matthews correlation
coefficient for CoLA and binary F1 (positive class 1) for MRPC and QQP. Accuracy is reported
alongside for every task::

    from babyteach.evaluate.glue import FinetuneConfig, finetune_model
    finetune_model(Path("results/2024-10M/train/baseline/model"), Path("results/raw/glue-filtered"),
                   Path("results/2024-10M/eval/baseline/model/glue.json"),
                   FinetuneConfig(tasks=("cola", "mrpc"), max_train_examples=64, max_epochs=1))

The data folder holds BabyLM's ``glue_filtered`` files ``<task>.train.jsonl`` and
``<task>.valid.jsonl``. BabyLM 2024 ships no test files: a model is trained on ``train`` and the
reported number is measured on ``valid``. ``mnli-mm`` has no train file of its own; it is
evaluated with the model being fine-tuned on ``mnli`` (at every epoch, and reported at the epoch
``mnli`` selects), never fine-tuned separately.

**The official protocol.** The BabyLM 2024 pipeline (github.com/babylm/evaluation-pipeline-2024)
fine-tunes with ``finetune_model.sh``, which runs ``finetune_classification.py`` (a modified
HF ``run_glue.py`` on the HF ``Trainer``) once per task. The line numbers below are those of
``finetune_classification.py`` and ``finetune_model.sh`` as stored in the fork
stefanik12/evaluation-pipeline-2024 (commits 08fe5f36 and 0b71f3af; the official repository's
files are not in the searchable index; codebyzeb/evaluation-pipeline-2024@7534ab97 has the same
code, its lines after 431 shifted by 3). What this module reproduces, and where it comes from:

- inputs: MultiRC is ``"Question: {question} Answer: {answer}"`` paired with the paragraph
  (lines 452-456); WSC is ``'Does "{span2_text}" refer to "{span1_text}" in this passage?'``
  paired with the text (lines 457-461); the other tasks pair their two fields in the order of
  lines 441-450 (CoLA and SST-2: the sentence alone, lines 464-468); ``tokenizer(first, second,
  truncation=True, max_length=128)`` (line 523; ``--max_seq_length 128``, finetune_model.sh:34);
- labels: the sorted train labels (lines 389-392, 494-495), i.e. 0 .. num_labels - 1 here;
- the kept epoch: evaluation and a checkpoint after every epoch (finetune_model.sh:39-40), the
  best checkpoint loaded at the end (``load_best_model_at_end``, line 251), chosen by
  ``metric_for_best_model`` = **F1 for every two-label task, accuracy otherwise** (lines 394,
  600-607; :attr:`GlueTask.selection_metric`), whatever metric is reported for the task. HF
  Trainer keeps the first epoch with the highest value (a later one replaces it only when
  strictly greater). The reported predictions are those of that model on the valid file
  (``--do_predict`` with the valid file as test file, lines 350, 675-701);
- early stopping: ``EarlyStoppingCallback(patience, early_stopping_threshold=0.001)`` (lines
  248-254, ``--patience 3``, finetune_model.sh:5,38): an epoch resets the patience counter only
  when its selection metric beats the best of the earlier epochs by **more than 0.001**; training
  stops when the counter reaches ``patience`` (transformers' ``EarlyStoppingCallback.
  check_metric_value``, the same rule from v4.0 to the installed 5.24, where the callback runs
  before the Trainer updates its best metric): :class:`EpochSelector`;
- mnli-mm: not trained; the saved mnli model (the best mnli epoch, chosen by mnli's accuracy) is
  evaluated on ``mnli-mm.valid.jsonl`` (finetune_model.sh:12-16, 30);
- the reported metric: MCC for CoLA, F1 for MRPC and QQP, accuracy otherwise (the organisers'
  ``score_predictions.py``; the 2024 README's GLUE note);
- hyperparameters: lr 5e-5, batch size 64, at most 10 epochs, patience 3, seed 12
  (finetune_model.sh:4-8), and HF Trainer's defaults for what the script does not set: linear
  decay to 0 over all epochs' steps without warmup, no weight decay, gradient clipping at 1.0,
  AdamW betas (0.9, 0.999), eps 1e-8 (:class:`FinetuneConfig`);
- precision: fp32; the script is run without ``--fp16``/``--bf16`` and TF32 stays off
  (torch's default), so fine-tuning here runs in fp32 with TF32 matmuls disabled on every
  device (:func:`_fp32`). No measurement shows bf16 or TF32 equivalent, so neither is used.

Differences that remain, none of which changes the mathematics of a step: batches are padded to
their longest member, not to 128 (``pad_to_max_length``, line 105; masked positions do not enter
RoBERTa's outputs, so only rounding differs), evaluation batches hold ``batch_size`` examples
(Trainer: 8), the shuffling and the classification head draw from other random streams, and
torch's AdamW puts ``eps`` after the bias correction (transformers 4.29's ``adamw_hf`` default
before it; a difference of order eps). ``max_train_examples`` / ``max_eval_examples`` (demo and
tests only) take seeded random subsets where the script takes the first N.

Procedure per trained task (:class:`FinetuneConfig`): ``AutoModelForSequenceClassification`` on
the saved masked LM (RoBERTa's classification head reads the ``<s>`` position), AdamW with a linear
learning-rate decay, batches padded to their longest member. After every epoch every valid set of
the run is scored; :class:`EpochSelector` decides on the task's selection metric whether to stop
and which epoch is kept, and the reported numbers are those of the kept epoch. The epoch is
selected and reported on the same ``valid`` file, because that is the only labelled evaluation
data BabyLM distributes; numbers are therefore slightly optimistic, exactly as in the pipeline.

A task whose train or valid file is missing is skipped with a warning and marked
``{"status": "missing", "missing_files": [...]}``; it never counts as a zero. The macro average
is over the tasks that were evaluated, and the result lists them.

Every task is seeded on its own (``torch.manual_seed(seed)`` before the classification head is
initialised, a seeded generator for the shuffling), so a task's numbers do not depend on which
other tasks are run, and two CPU runs with the same config give identical results (CUDA
kernels are not bitwise deterministic; expect differences in the last digits there).

The GLUE files are read with the json module, line by line, not with the ``datasets`` library:
every line is checked with a file:line error (``load_dataset("json")`` reports a broken line as
a bare ``DatasetGenerationError`` and loads a string label without complaint), and its Arrow
cache would live outside the workflow's outputs for a saving of seconds (README, "(Super)GLUE
as the organisers run it").

torch and transformers are imported inside the functions that run models, so the workflow can
import :class:`FinetuneConfig` and :data:`TASKS` at start-up without paying for them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babyteach.config_schema import is_int, is_number, require, schema_property, schema_section
from babyteach.errors import InputError
from babyteach.evaluate.folders import load_checked_tokenizer
from babyteach.evaluate.glue_tasks import METRICS, TASKS, GlueTask, accuracy
from babyteach.io import json_object_line, load_pretrained, write_json_atomic

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Version of the result JSON written by :func:`finetune_model`; bump when its fields change.
#: 2: the official protocol (MultiRC/WSC inputs, epoch chosen by F1/accuracy with the 0.001
#: early-stopping threshold, fp32); adds ``selection_metric``, ``selection_curve`` and ``precision``.
FORMAT_VERSION = 2

DEVICES: tuple[str, ...] = tuple(schema_property("finetune", "device")["enum"])


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
@schema_section("finetune")
class FinetuneConfig:
    """Fine-tuning hyperparameters (config section ``finetune``); validated at construction.

    Every field defaults to the key of its name in the schema's ``finetune`` section
    (:func:`babyteach.config_schema.schema_section`):
    BabyLM 2024's fine-tuning pipeline, with lr, batch size, epochs, patience and seed from
    finetune_model.sh lines 4-8, max_length from its line 34, the early-stopping threshold from
    finetune_classification.py line 254, and HF Trainer's defaults where the script sets nothing (no
    warmup, no weight decay, gradient clipping at 1.0).
    """

    tasks: tuple[str, ...]
    lr: float
    batch_size: int
    max_epochs: int
    patience: int
    early_stopping_threshold: float
    max_length: int
    seed: int
    warmup_fraction: float
    weight_decay: float
    clip_norm: float | None
    max_train_examples: int | None
    max_eval_examples: int | None
    device: str

    def __post_init__(self) -> None:
        tasks = self.tasks
        if isinstance(tasks, str) or not isinstance(tasks, Sequence) or not tasks:
            raise InputError(f"finetune.tasks: must be a non-empty list of task names, got {tasks!r}")
        unknown = [t for t in tasks if t not in TASKS]
        require(not unknown, "finetune.tasks", f"names from {list(TASKS)} (unknown: {unknown})")
        require(len(set(tasks)) == len(tasks), "finetune.tasks", "a list without repeats", tasks)
        for name in tasks:
            source = TASKS[name].train_from
            require(
                source is None or source in tasks,
                "finetune.tasks",
                f"a list that includes {source!r} when it includes {name!r} ({name} is evaluated "
                f"with the model fine-tuned on {source})",
                tasks,
            )
        object.__setattr__(self, "tasks", tuple(t for t in TASKS if t in tasks))  # canonical order
        self._require(is_number(self.lr) and 0 < self.lr < math.inf, "lr", "a positive finite number")
        for name in ("batch_size", "max_epochs", "patience"):
            self._require(is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "a positive integer")
        self._require(is_int(self.max_length) and self.max_length >= 4, "max_length", "an integer of at least 4")
        self._require(
            is_number(self.early_stopping_threshold) and 0 <= self.early_stopping_threshold < math.inf,
            "early_stopping_threshold",
            "a non-negative finite number",
        )
        self._require(is_int(self.seed) and self.seed >= 0, "seed", "a non-negative integer")
        self._require(is_number(self.warmup_fraction) and 0 <= self.warmup_fraction < 1, "warmup_fraction", "in [0, 1)")
        self._require(is_number(self.weight_decay) and self.weight_decay >= 0, "weight_decay", "a non-negative number")
        self._require(
            self.clip_norm is None or (is_number(self.clip_norm) and self.clip_norm > 0),
            "clip_norm",
            "a positive number or null",
        )
        for name in ("max_train_examples", "max_eval_examples"):
            value = getattr(self, name)
            self._require(value is None or (is_int(value) and value >= 1), name, "a positive integer or null")
        self._require(self.device in DEVICES, "device", f"one of {DEVICES}")

    def _require(self, ok: bool, name: str, what: str) -> None:
        """InputError ``finetune.<name>: must be <what>, got <value>`` unless ``ok``."""
        require(ok, f"finetune.{name}", what, getattr(self, name))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> FinetuneConfig:
        """Build from the ``finetune`` config section; unknown keys raise :class:`InputError`."""
        mapping = dict(mapping or {})
        unknown = sorted(set(mapping) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"finetune: unknown keys {unknown}; valid keys: {[f.name for f in fields(cls)]}")
        return cls(**mapping)

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name → its help text."""
        return {f.name: f.metadata["help"] for f in fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``tasks`` as a list)."""
        return {**asdict(self), "tasks": list(self.tasks)}


# --- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One labelled text (pair) of a task file."""

    first: str
    second: str | None
    label: int


def load_examples(task: GlueTask, path: Path) -> list[Example]:
    """The examples of one ``<task>.<split>.jsonl`` file, in file order; blank lines are skipped.

    A line that is not a JSON object, lacks a field the task reads, or has a label outside
    ``0 .. num_labels - 1`` raises :class:`InputError` naming the file and line.
    """
    path = Path(path)
    examples: list[Example] = []
    if not path.is_file():
        raise InputError(f"{path}: task file missing (or not a file); fetch dataset 'glue-filtered' there")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            examples.append(_parse(task, path, number, raw))
    if not examples:
        raise InputError(f"{path}: no examples (the file is empty); re-fetch dataset 'glue-filtered'")
    return examples


def _parse(task: GlueTask, path: Path, number: int, raw: bytes) -> Example:
    where = f"{path}, line {number}"
    row = json_object_line(raw, where, "re-fetch dataset 'glue-filtered'")
    for name in task.fields:
        if not isinstance(row.get(name), str):
            raise InputError(
                f"{where}: field {name!r} missing or not a string; task {task.name!r} reads {list(task.fields)}"
            )
    label = row.get("label")
    if not is_int(label) or not 0 <= label < task.num_labels:
        raise InputError(
            f"{where}: label {label!r} is not one of task {task.name!r}'s labels "
            f"{list(range(task.num_labels))}; fix or drop this line"
        )
    first, second = task.texts(row)
    return Example(first, second, label)


def _subset(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """A seeded random subset of ``limit`` examples, kept in file order (all when None or fewer)."""
    if limit is None or limit >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def _files(task: GlueTask, data_dir: Path) -> dict[str, Path]:
    """The files a task needs: ``train`` (its own or its source task's) and ``valid``.

    A task evaluated with another task's model also needs that task's valid file, which
    selects the epoch.
    """
    source = task.train_from or task.name
    files = {"train": data_dir / f"{source}.train.jsonl", "valid": data_dir / f"{task.name}.valid.jsonl"}
    if task.train_from:
        files["source_valid"] = data_dir / f"{source}.valid.jsonl"
    return files


# --- model -------------------------------------------------------------------------------------


def load_tokenizer(model_dir: Path):
    """The tokenizer saved with the model in ``model_dir``, after the folder checks of
    :func:`babyteach.evaluate.folders.load_checked_tokenizer`."""
    return load_checked_tokenizer(model_dir, "fine-tuning")


def _max_length(model_dir: Path, wanted: int) -> int:
    """``wanted``, capped at the longest input the model's position embeddings allow."""
    from transformers import AutoConfig

    config = load_pretrained(AutoConfig, model_dir, "model config (config.json)")
    # RoBERTa numbers positions from pad_token_id + 1.
    limit = config.max_position_embeddings - (config.pad_token_id or 0) - 1
    if wanted > limit:
        log.warning(
            "%s: finetune.max_length %d exceeds the model's %d positions; using %d", model_dir, wanted, limit, limit
        )
        return limit
    return wanted


@dataclass
class _Encoded:
    """Token ids of a list of examples (unpadded) and their labels."""

    ids: list[list[int]]
    labels: list[int]


def _encode(tokenizer, examples: list[Example], max_length: int) -> _Encoded:
    """``tokenizer(first, second)`` per example, truncated to ``max_length`` tokens, not padded."""
    firsts = [e.first for e in examples]
    if examples[0].second is None:
        ids = tokenizer(firsts, truncation=True, max_length=max_length)["input_ids"]
    else:
        seconds = [e.second for e in examples]
        ids = tokenizer(firsts, seconds, truncation="longest_first", max_length=max_length)["input_ids"]
    return _Encoded(list(ids), [e.label for e in examples])


def _pad(ids: list[list[int]], rows: Sequence[int], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and attention mask of ``rows``, right-padded to the longest of them: (batch, seq)."""
    import torch

    seq = max(len(ids[r]) for r in rows)
    input_ids = torch.full((len(rows), seq), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), seq), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(ids[r])] = torch.tensor(ids[r], dtype=torch.long)
        attention[i, : len(ids[r])] = 1
    return input_ids, attention


@contextlib.contextmanager
def _fp32() -> Iterator[None]:
    """Run the block in true fp32: TF32 off for matmuls and cuDNN, restored afterwards.

    The official pipeline fine-tunes without ``--fp16``/``--bf16`` and leaves torch's default
    (TF32 off for matmuls), i.e. in fp32. Nothing measured shows bf16 autocast or TF32 equivalent
    for fine-tuning, and a process may have enabled TF32 before (training does), so it is switched
    off here explicitly. On CPU the settings have no effect.
    """
    import torch

    matmul, cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(matmul)
        torch.backends.cudnn.allow_tf32 = cudnn


def predict(model, data: _Encoded, batch_size: int, pad_id: int) -> list[int]:
    """Predicted label per example (argmax of the logits), in the input order.

    Examples are batched longest first so that little padding is computed.
    """
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(data.ids)), key=lambda i: -len(data.ids[i]))
    predictions = [0] * len(order)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            input_ids, attention = _pad(data.ids, rows, pad_id)
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
            for row, label in zip(rows, logits.argmax(dim=-1).tolist(), strict=True):  # (batch,)
                predictions[row] = label
    return predictions


def _score(task: GlueTask, predictions: list[int], labels: list[int]) -> dict[str, float]:
    """The task's reported metric, its accuracy and its selection metric on one valid set."""
    return {
        "metric": METRICS[task.metric](predictions, labels),
        "accuracy": accuracy(predictions, labels),
        "selection": METRICS[task.selection_metric](predictions, labels),
    }


@dataclass
class EpochSelector:
    """Which epoch is kept and when training stops, as HF Trainer does in the official pipeline.

    Fed the selection metric after every epoch (:meth:`update`). The kept epoch is the first with
    the highest value (Trainer replaces its best checkpoint only on a strictly greater value). An
    epoch resets the patience counter when it is the first, or when it beats the best value of the
    *earlier* epochs by more than ``threshold`` (``EarlyStoppingCallback.check_metric_value``,
    called before the Trainer records the epoch as its best); otherwise the counter grows, and
    training stops when it reaches ``patience``. So an epoch can become the kept one (better by
    0.0005) and still count as one without improvement.
    """

    patience: int
    threshold: float
    values: list[float] = field(default_factory=list)
    best_epoch: int = 0  # 1-based; 0 before the first epoch
    stale: int = 0  # epochs since the last improvement by more than the threshold

    def update(self, value: float) -> bool:
        """Record the next epoch's selection metric; True when training should stop now."""
        best = self.values[self.best_epoch - 1] if self.best_epoch else None
        if best is None or (value > best and abs(value - best) > self.threshold):
            self.stale = 0
        else:
            self.stale += 1
        self.values.append(value)
        if best is None or value > best:
            self.best_epoch = len(self.values)
        return self.stale >= self.patience


@_fp32()
def _fine_tune(
    model_dir: Path,
    tokenizer,
    task: GlueTask,
    train: _Encoded,
    valid: dict[str, _Encoded],
    cfg: FinetuneConfig,
    device: torch.device,
) -> dict[str, Any]:
    """Fine-tune a fresh copy of the model on ``train`` in fp32; score every ``valid`` set after each epoch.

    ``valid`` maps a task name to its encoded valid set: ``task`` itself (whose selection metric
    chooses the epoch, :class:`EpochSelector`) and the tasks evaluated with its model (mnli-mm,
    which never choose). Returns per-epoch scores per valid set, the mean train loss per epoch,
    the kept epoch (1-based) and the epochs run.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, get_scheduler

    torch.manual_seed(cfg.seed)  # the new classification head and the dropout masks
    model = load_pretrained(
        AutoModelForSequenceClassification, model_dir, num_labels=task.num_labels, dtype=torch.float32
    ).to(device)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    n = len(train.ids)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.max_epochs  # the schedule spans max_epochs, as HF Trainer's
    scheduler = get_scheduler(
        "linear",
        optimizer,
        num_warmup_steps=round(cfg.warmup_fraction * total_steps),
        num_training_steps=total_steps,
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    pad_id = tokenizer.pad_token_id
    curves: dict[str, list[dict[str, float]]] = {name: [] for name in valid}
    train_loss: list[float] = []
    selector = EpochSelector(cfg.patience, cfg.early_stopping_threshold)
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).tolist()
        loss_sum = 0.0
        for start in range(0, n, cfg.batch_size):
            rows = order[start : start + cfg.batch_size]
            input_ids, attention = _pad(train.ids, rows, pad_id)
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
            labels = torch.tensor([train.labels[r] for r in rows], device=device)  # (batch,)
            loss = torch.nn.functional.cross_entropy(logits, labels)  # logits (batch, num_labels)
            loss.backward()
            if cfg.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.item() * len(rows)
        train_loss.append(loss_sum / n)
        for name, data in valid.items():
            curves[name].append(_score(TASKS[name], predict(model, data, cfg.batch_size, pad_id), data.labels))
        scores = curves[task.name][-1]
        log.info(
            "%s epoch %d: train loss %.4f, valid %s %.4f, %s %.4f (selects), accuracy %.4f",
            task.name,
            epoch,
            train_loss[-1],
            task.metric,
            scores["metric"],
            task.selection_metric,
            scores["selection"],
            scores["accuracy"],
        )
        if selector.update(scores["selection"]):
            log.info(
                "%s: valid %s not better by more than %g for %d epochs; stopping",
                task.name,
                task.selection_metric,
                cfg.early_stopping_threshold,
                selector.stale,
            )
            break
    return {
        "curves": curves,
        "train_loss": train_loss,
        "best_epoch": selector.best_epoch,
        "epochs_run": len(train_loss),
    }


# --- the evaluation entry point ----------------------------------------------------------------


def finetune_model(model_dir: Path, data_dir: Path, out_json: Path, cfg: FinetuneConfig | None = None) -> dict:
    """Fine-tune the model in ``model_dir`` on each task of ``cfg.tasks``; write one result JSON.

    ``data_dir`` holds ``<task>.train.jsonl`` / ``<task>.valid.jsonl``. All files are read and
    checked before any training, so bad data fails fast. The JSON (written atomically; nothing
    is written on error) holds ``format_version``, ``model_dir``, ``data_dir``, ``config``,
    ``device``, ``precision`` (``"fp32"``), ``max_length`` (after capping at the model's
    positions), ``tasks`` (per task either ``status: "ok"`` with ``metric``, ``value``,
    ``accuracy`` at the kept epoch, ``n_train``, ``n_valid``, ``epochs_run``, ``best_epoch`` (the
    kept epoch), ``valid_curve`` (metric per epoch), ``valid_accuracy_curve``,
    ``selection_metric`` and ``selection_curve`` (the metric that chose the epoch, per epoch, on
    the valid file of ``trained_on``: mnli's for mnli-mm), ``train_loss`` (per epoch),
    ``trained_on`` and ``wall_time_s``; or
    ``status: "missing"`` with ``missing_files``), ``macro_average`` (mean of the reported
    metric over the evaluated tasks), ``tasks_included``, ``tasks_missing`` and
    ``wall_time_s``. Values are fractions (MCC in [-1, 1]). Returns the same dict.
    """
    import torch

    cfg = cfg or FinetuneConfig()
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    started = time.perf_counter()
    tokenizer = load_tokenizer(model_dir)
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: data folder missing; fetch dataset 'glue-filtered' into it")
    max_length = _max_length(model_dir, cfg.max_length)
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("finetune.device: 'cuda' requested but no CUDA device is available; use 'auto'")

    # 1. Which tasks have their files; read and check all of them before training anything.
    results: dict[str, dict[str, Any]] = {}
    train_sets: dict[str, list[Example]] = {}
    valid_sets: dict[str, list[Example]] = {}
    for name in cfg.tasks:
        task = TASKS[name]
        files = _files(task, data_dir)
        missing = sorted({p.name for p in files.values() if not p.is_file()})
        if missing:
            log.warning(
                "%s: skipped, missing %s in %s (not scored, not in the macro average)",
                name,
                ", ".join(missing),
                data_dir,
            )
            results[name] = {"status": "missing", "missing_files": missing}
            continue
        source = TASKS[task.train_from or name]
        if source.name not in train_sets:
            train_sets[source.name] = _subset(load_examples(source, files["train"]), cfg.max_train_examples, cfg.seed)
        valid_sets[name] = _subset(load_examples(task, files["valid"]), cfg.max_eval_examples, cfg.seed)
    if not valid_sets:
        raise InputError(
            f"{data_dir}: none of the tasks {list(cfg.tasks)} has its train and valid files; "
            "fetch dataset 'glue-filtered' there or choose other finetune.tasks"
        )

    # 2. Fine-tune once per trained task; its dependants (mnli-mm) are scored with its model.
    log.info("%s: fine-tuning on %s (device %s, max_length %d)", model_dir, ", ".join(train_sets), device, max_length)
    for source, train_examples in train_sets.items():
        task_started = time.perf_counter()
        names = [source] + [n for n in valid_sets if TASKS[n].train_from == source]
        valid = {n: _encode(tokenizer, valid_sets[n], max_length) for n in names}
        run = _fine_tune(
            model_dir, tokenizer, TASKS[source], _encode(tokenizer, train_examples, max_length), valid, cfg, device
        )
        wall = time.perf_counter() - task_started
        selection = [c["selection"] for c in run["curves"][source]]  # the trained task's: it chose the epoch
        for name in names:
            curve, best = run["curves"][name], run["best_epoch"]
            results[name] = {
                "status": "ok",
                "metric": TASKS[name].metric,
                "value": curve[best - 1]["metric"],
                "accuracy": curve[best - 1]["accuracy"],
                "n_train": len(train_examples),
                "n_valid": len(valid_sets[name]),
                "epochs_run": run["epochs_run"],
                "best_epoch": best,
                "valid_curve": [c["metric"] for c in curve],
                "valid_accuracy_curve": [c["accuracy"] for c in curve],
                "selection_metric": TASKS[source].selection_metric,
                "selection_curve": selection,
                "train_loss": run["train_loss"],
                "trained_on": source,
                "wall_time_s": wall,  # of the whole fine-tuning run, shared by its dependants
            }
            log.info(
                "%s: %s %.4f, accuracy %.4f (best epoch %d of %d)",
                name,
                TASKS[name].metric,
                results[name]["value"],
                results[name]["accuracy"],
                best,
                run["epochs_run"],
            )

    included = [n for n in cfg.tasks if results[n]["status"] == "ok"]
    result = {
        "format_version": FORMAT_VERSION,
        "model_dir": str(model_dir),
        "data_dir": str(data_dir),
        "config": cfg.to_dict(),
        "device": device.type,
        "precision": "fp32",
        "max_length": max_length,
        "tasks": {n: results[n] for n in cfg.tasks},
        "macro_average": sum(results[n]["value"] for n in included) / len(included),
        "tasks_included": included,
        "tasks_missing": [n for n in cfg.tasks if results[n]["status"] == "missing"],
        "wall_time_s": time.perf_counter() - started,
    }
    write_json_atomic(out_json, result)
    log.info(
        "%s: (Super)GLUE macro average %.4f over %d tasks (%s missing)",
        model_dir,
        result["macro_average"],
        len(included),
        ", ".join(result["tasks_missing"]) or "none",
    )
    return result
