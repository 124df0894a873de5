"""The (Super)GLUE tasks of BabyLM's fine-tuning as data, and their metrics.

Each :class:`GlueTask` says how a json line of ``<task>.<split>.jsonl`` becomes the text (pair)
the classifier reads, how many labels it has, which metric BabyLM reports and which one chooses
the kept epoch (the official pipeline's, cited in :mod:`babyteach.evaluate.glue`, which
fine-tunes). Torch-free: the report and the fetch validation read the task table too.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# --- metrics -----------------------------------------------------------------------------------


def _check_lengths(predictions: Sequence[int], labels: Sequence[int]) -> None:
    if len(predictions) != len(labels) or not labels:
        raise ValueError(
            f"need equally many predictions and labels, at least one; got {len(predictions)} and {len(labels)}"
        )


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Share of predictions equal to the label, in [0, 1]."""
    _check_lengths(predictions, labels)
    return sum(int(p == y) for p, y in zip(predictions, labels, strict=True)) / len(labels)


def matthews_corrcoef(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Matthews correlation coefficient (Matthews 1975; K classes: Gorodkin 2004), in [-1, 1].

    With n examples, c correct, t_k examples of class k and p_k predictions of class k::

        MCC = (c·n − Σ_k p_k·t_k) / sqrt((n² − Σ_k p_k²) · (n² − Σ_k t_k²))

    For two classes this is (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)). When a
    factor of the denominator is 0 (all predictions, or all labels, one class) the MCC is
    defined as 0, as in scikit-learn: such a predictor carries no information.
    """
    _check_lengths(predictions, labels)
    n = len(labels)
    correct = sum(int(p == y) for p, y in zip(predictions, labels, strict=True))
    classes = set(predictions) | set(labels)
    predicted = {k: 0 for k in classes}
    true = {k: 0 for k in classes}
    for p, y in zip(predictions, labels, strict=True):
        predicted[p] += 1
        true[y] += 1
    numerator = correct * n - sum(predicted[k] * true[k] for k in classes)
    denominator = (n * n - sum(v * v for v in predicted.values())) * (n * n - sum(v * v for v in true.values()))
    return numerator / math.sqrt(denominator) if denominator > 0 else 0.0


def f1_binary(predictions: Sequence[int], labels: Sequence[int], positive: int = 1) -> float:
    """F1 of the ``positive`` class: 2·TP / (2·TP + FP + FN), in [0, 1].

    The harmonic mean of precision and recall. When there is no positive label and no positive
    prediction the score is 0 (scikit-learn's ``zero_division=0``): a model that never says
    "paraphrase" gets no credit.
    """
    _check_lengths(predictions, labels)
    tp = sum(int(p == positive and y == positive) for p, y in zip(predictions, labels, strict=True))
    fp = sum(int(p == positive and y != positive) for p, y in zip(predictions, labels, strict=True))
    fn = sum(int(p != positive and y == positive) for p, y in zip(predictions, labels, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0


#: Metric name (``GlueTask.metric``) → function of (predictions, labels).
METRICS = {"accuracy": accuracy, "mcc": matthews_corrcoef, "f1": f1_binary}


# --- tasks as data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GlueTask:
    """One (Super)GLUE task: how a json line becomes a text (pair) and how predictions are scored.

    ``first`` and ``second`` are :meth:`str.format` templates over the line's fields, so a
    segment can combine fields (MultiRC's question and answer, WSC's two spans) without a
    code path of its own.
    """

    name: str = field(metadata={"help": "task name = file stem: <name>.train.jsonl / <name>.valid.jsonl"})
    first: str = field(metadata={"help": "template of the first segment, e.g. '{premise}'"})
    second: str | None = field(metadata={"help": "template of the second segment; None: single sentence"})
    num_labels: int = field(metadata={"help": "labels are the integers 0 .. num_labels - 1"})
    metric: str = field(default="accuracy", metadata={"help": "reported metric: a key of METRICS"})
    train_from: str | None = field(
        default=None,
        metadata={"help": "no train file: evaluated with the model fine-tuned on this task"},
    )

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"task {self.name}: unknown metric {self.metric!r}; valid: {list(METRICS)}")
        if self.num_labels < 2:
            raise ValueError(f"task {self.name}: num_labels must be at least 2")

    @property
    def selection_metric(self) -> str:
        """The metric that chooses the kept epoch and drives early stopping: binary F1 (class 1)
        for a two-label task, accuracy otherwise, whichever metric is reported.

        The official script sets ``metric_for_best_model`` from the number of labels alone
        (finetune_classification.py lines 394, 600-607): CoLA's epoch is chosen by F1, not MCC,
        and BoolQ's by F1, not accuracy.
        """
        return "f1" if self.num_labels == 2 else "accuracy"

    @property
    def fields(self) -> tuple[str, ...]:
        """The json fields the templates read, in order of first use."""
        names: list[str] = []
        for template in (self.first, self.second or ""):
            for _, name, _, _ in string.Formatter().parse(template):
                if name and name not in names:
                    names.append(name)
        return tuple(names)

    def texts(self, row: Mapping[str, str]) -> tuple[str, str | None]:
        """The (first, second) segment of a json row that has all :attr:`fields` as strings."""
        return self.first.format_map(row), (None if self.second is None else self.second.format_map(row))


#: Every task, in BabyLM's order, with its segments as the 2024 pipeline builds them
#: (finetune_classification.py lines 441-468): MultiRC puts "Question: ... Answer: ..." before
#: the paragraph, WSC asks whether the pronoun (span2) refers to the noun phrase (span1) before
#: the text.
TASKS: dict[str, GlueTask] = {
    t.name: t
    for t in (
        GlueTask("boolq", "{question}", "{passage}", 2),
        GlueTask("cola", "{sentence}", None, 2, metric="mcc"),
        GlueTask("mnli", "{premise}", "{hypothesis}", 3),  # 0 entailment, 1 neutral, 2 contradiction
        GlueTask("mnli-mm", "{premise}", "{hypothesis}", 3, train_from="mnli"),
        GlueTask("mrpc", "{sentence1}", "{sentence2}", 2, metric="f1"),
        GlueTask("multirc", "Question: {question} Answer: {answer}", "{paragraph}", 2),
        GlueTask("qnli", "{question}", "{sentence}", 2),
        GlueTask("qqp", "{question1}", "{question2}", 2, metric="f1"),
        GlueTask("rte", "{sentence1}", "{sentence2}", 2),
        GlueTask("sst2", "{sentence}", None, 2),
        GlueTask("wsc", 'Does "{span2_text}" refer to "{span1_text}" in this passage?', "{text}", 2),
    )
}
for _task in TASKS.values():
    if _task.train_from is not None and (_task.train_from not in TASKS or TASKS[_task.train_from].train_from):
        raise ValueError(f"task {_task.name}: train_from must name a task that has its own train file")
