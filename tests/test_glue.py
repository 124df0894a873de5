"""(Super)GLUE fine-tuning: metrics pinned to hand-computed values, the task table and its inputs
as the BabyLM 2024 pipeline builds them, config validation, the official epoch selection and
early stopping (against transformers' own callback, and end to end with scripted predictions that
catch reporting the last epoch, choosing by the wrong metric and choosing mnli-mm's epoch from its
own curve), fp32, an end-to-end run on a tiny random model (cola as MCC, mrpc as F1, mnli with 3
labels, mnli-mm scored with the mnli model, a missing task left out of the macro average),
determinism, a learnable toy task, and bad input."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from transformers import AutoTokenizer

from babyteach.data.tokenizer import train_tokenizer
from babyteach.errors import InputError
from babyteach.evaluate import glue
from babyteach.evaluate.glue import FORMAT_VERSION, EpochSelector, FinetuneConfig, finetune_model, load_examples
from babyteach.evaluate.glue_tasks import TASKS, accuracy, f1_binary, matthews_corrcoef
from babyteach.models import Architecture, build_model

SUBJECTS = ["the cat", "the teacher", "a child", "the bird", "my friend", "the girl"]
VERBS = ["saw", "liked", "helped", "found"]
OBJECTS = ["a dog", "the ball", "the dog", "a red hat"]  # half the sentences mention a dog


def sentences() -> list[str]:
    """96 short sentences over a tiny vocabulary, in a fixed shuffled order."""
    items = [f"{s} {v} {o}." for s in SUBJECTS for v in VERBS for o in OBJECTS]
    random.Random(0).shuffle(items)
    return items


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 1-layer, 32-wide random RoBERTa with a byte-level BPE tokenizer trained on the toy words."""
    root = tmp_path_factory.mktemp("glue")
    (root / "clean").mkdir()
    (root / "clean" / "toy.train").write_text("\n".join(sentences() * 3) + "\n", encoding="utf-8")
    train_tokenizer(root / "clean", root / "model", vocab_size=300)
    tokenizer = AutoTokenizer.from_pretrained(root / "model")
    build_model(Architecture(1, 2, 32), len(tokenizer), block_size=64, seed=0).save_pretrained(root / "model")
    return root / "model"


def write_jsonl(path: Path, rows: list[dict] | list[str]) -> None:
    """Rows as json lines (strings are written verbatim, for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def cola_rows(items: list[str]) -> list[dict]:
    """CoLA-shaped toy rows: label 1 when the sentence mentions a dog (learnable from one token)."""
    return [{"sentence": s, "label": int("dog" in s), "idx": i} for i, s in enumerate(items)]


def write_toy_glue(folder: Path) -> Path:
    """cola, mrpc, mnli (+ mnli-mm.valid = mnli.valid) train/valid files; no rte files."""
    items = sentences()
    train, valid = items[::2], items[1::2]  # 48 / 48
    write_jsonl(folder / "cola.train.jsonl", cola_rows(train[:40]))
    write_jsonl(folder / "cola.valid.jsonl", cola_rows(valid[:24]))

    def mrpc(pairs: list[tuple[str, str]]) -> list[dict]:  # paraphrase = the same sentence
        return [{"sentence1": a, "sentence2": b, "label": int(a == b), "idx": i} for i, (a, b) in enumerate(pairs)]

    write_jsonl(folder / "mrpc.train.jsonl", mrpc([(s, s if i % 2 else items[i]) for i, s in enumerate(train[:40])]))
    write_jsonl(folder / "mrpc.valid.jsonl", mrpc([(s, s if i % 3 else items[i]) for i, s in enumerate(valid[:24])]))

    def mnli(part: list[str]) -> list[dict]:  # 3 labels, by the hypothesis' verb
        return [
            {"premise": s, "hypothesis": f"{SUBJECTS[i % 6]} {VERBS[i % 4]}.", "label": i % 4 % 3, "idx": i}
            for i, s in enumerate(part)
        ]

    write_jsonl(folder / "mnli.train.jsonl", mnli(train[:40]))
    write_jsonl(folder / "mnli.valid.jsonl", mnli(valid[:24]))
    shutil.copy(folder / "mnli.valid.jsonl", folder / "mnli-mm.valid.jsonl")
    return folder


FAST = {"lr": 1e-3, "batch_size": 8, "max_epochs": 2, "max_length": 32, "device": "cpu"}


# --- metrics: pinned to hand-computed values ---------------------------------------------------


@pytest.mark.parametrize(
    ("predictions", "labels", "expected"),
    [
        # TP=2 TN=2 FP=1 FN=1: (2·2 − 1·1) / sqrt(3·3·3·3) = 3/9
        ([1, 1, 0, 0, 0, 1], [1, 1, 1, 0, 0, 0], 1 / 3),
        ([1, 0, 1, 0], [1, 0, 1, 0], 1.0),
        ([0, 1, 0, 1], [1, 0, 1, 0], -1.0),
        # all predictions one class: a zero factor in the denominator, defined as 0
        ([1, 1, 1, 1], [1, 0, 1, 0], 0.0),
        ([0, 0, 0, 0], [1, 0, 1, 0], 0.0),
        # all labels one class
        ([1, 0, 1, 0], [1, 1, 1, 1], 0.0),
        # 3 classes: n=4, c=3, t=(2,1,1), p=(2,0,2): (3·4 − 6) / sqrt((16 − 8)(16 − 6)) = 6/sqrt(80)
        ([0, 2, 2, 0], [0, 1, 2, 0], 6 / math.sqrt(80)),
    ],
)
def test_matthews_corrcoef_hand_computed(predictions, labels, expected):
    assert matthews_corrcoef(predictions, labels) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("predictions", "labels", "expected"),
    [
        ([1, 1, 0, 1, 0], [1, 0, 1, 1, 0], 2 * 2 / (2 * 2 + 1 + 1)),  # TP=2 FP=1 FN=1: 2/3
        ([1, 1, 1, 1], [1, 0, 0, 0], 2 * 1 / (2 * 1 + 3 + 0)),  # all positive: precision 1/4, recall 1: 0.4
        ([0, 0, 0, 0], [1, 0, 1, 0], 0.0),  # never positive: no credit
        ([0, 0, 0], [0, 0, 0], 0.0),  # no positives at all: 0, not a division by zero
        ([1, 0], [1, 0], 1.0),
    ],
)
def test_f1_of_class_one_hand_computed(predictions, labels, expected):
    assert f1_binary(predictions, labels) == pytest.approx(expected, abs=1e-12)


def test_accuracy_and_length_checks():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    with pytest.raises(ValueError, match="equally many"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="at least one"):
        matthews_corrcoef([], [])


# --- the task table and the config -------------------------------------------------------------


def test_task_table_metrics_labels_and_segments():
    assert list(TASKS) == ["boolq", "cola", "mnli", "mnli-mm", "mrpc", "multirc", "qnli", "qqp", "rte", "sst2", "wsc"]
    assert {n: t.metric for n, t in TASKS.items() if t.metric != "accuracy"} == {
        "cola": "mcc",
        "mrpc": "f1",
        "qqp": "f1",
    }
    # the epoch is chosen by F1 for every two-label task, by accuracy for mnli (finetune_classification.py 600-607)
    assert {n: t.selection_metric for n, t in TASKS.items() if t.selection_metric != "f1"} == {
        "mnli": "accuracy",
        "mnli-mm": "accuracy",
    }
    assert TASKS["mnli"].num_labels == TASKS["mnli-mm"].num_labels == 3
    assert TASKS["mnli-mm"].train_from == "mnli"
    assert TASKS["cola"].texts({"sentence": "a b."}) == ("a b.", None)
    row = {
        "paragraph": "P.",
        "question": "Who?",
        "answer": "Ann",
        "text": "Ann met Bo. She smiled.",
        "span1_text": "Ann",
        "span2_text": "She",
        "passage": "Pa.",
        "sentence": "S.",
        "sentence1": "A.",
        "sentence2": "B.",
        "question1": "Q1?",
        "question2": "Q2?",
        "premise": "Pr.",
        "hypothesis": "H.",
    }
    # as finetune_classification.py lines 441-468 pair them (the official strings, written out by hand)
    assert TASKS["multirc"].texts(row) == ("Question: Who? Answer: Ann", "P.")
    assert TASKS["wsc"].texts(row) == ('Does "She" refer to "Ann" in this passage?', "Ann met Bo. She smiled.")
    assert TASKS["wsc"].fields == ("span2_text", "span1_text", "text")
    expected = {
        "boolq": ("Who?", "Pa."),
        "qnli": ("Who?", "S."),
        "rte": ("A.", "B."),
        "mrpc": ("A.", "B."),
        "qqp": ("Q1?", "Q2?"),
        "mnli": ("Pr.", "H."),
        "mnli-mm": ("Pr.", "H."),
        "sst2": ("S.", None),
    }
    assert {name: TASKS[name].texts(row) for name in expected} == expected


def test_multirc_and_wsc_files_are_encoded_as_the_official_pairs(model_dir: Path, tmp_path: Path):
    """A MultiRC and a WSC line of the BabyLM files become (first, second) = (template, passage),
    tokenised as one pair in that order, as the official ``tokenizer(keys1, examples[sentence2_key])``."""
    multirc = {
        "paragraph": "the cat saw a dog.",
        "question": "who saw a dog?",
        "answer": "the cat",
        "idx": {"paragraph": 0, "question": 0, "answer": 0},
        "label": 1,
    }
    wsc = {
        "text": "the cat saw the dog. it liked the ball.",
        "span1_index": 0,
        "span2_index": 5,
        "span1_text": "the cat",
        "span2_text": "it",
        "idx": 0,
        "label": 0,
    }
    write_jsonl(tmp_path / "multirc.valid.jsonl", [multirc])
    write_jsonl(tmp_path / "wsc.valid.jsonl", [wsc])
    (m,) = load_examples(TASKS["multirc"], tmp_path / "multirc.valid.jsonl")
    (w,) = load_examples(TASKS["wsc"], tmp_path / "wsc.valid.jsonl")
    assert (m.first, m.second, m.label) == ("Question: who saw a dog? Answer: the cat", "the cat saw a dog.", 1)
    assert (w.first, w.second, w.label) == (
        'Does "it" refer to "the cat" in this passage?',
        "the cat saw the dog. it liked the ball.",
        0,
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = glue._encode(tokenizer, [m], 128)
    assert encoded.ids[0] == tokenizer("Question: who saw a dog? Answer: the cat", "the cat saw a dog.")["input_ids"]


def test_config_defaults_are_babylm_2024():
    cfg = FinetuneConfig()
    # finetune_model.sh lines 4-8 and 34, finetune_classification.py line 254
    assert (cfg.lr, cfg.batch_size, cfg.max_epochs, cfg.patience, cfg.max_length, cfg.seed) == (
        5e-5,
        64,
        10,
        3,
        128,
        12,
    )
    assert cfg.early_stopping_threshold == 0.001
    # HF Trainer's defaults, which the script leaves alone
    assert (cfg.warmup_fraction, cfg.weight_decay, cfg.clip_norm) == (0.0, 0.0, 1.0)
    assert cfg.tasks == tuple(TASKS) and cfg.max_train_examples is None and cfg.max_eval_examples is None
    assert set(FinetuneConfig.help()) == set(cfg.to_dict())


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"lr": 0}, "finetune.lr"),
        ({"lr": float("nan")}, "finetune.lr"),
        ({"batch_size": 0}, "finetune.batch_size"),
        ({"max_epochs": 2.5}, "finetune.max_epochs"),
        ({"patience": 0}, "finetune.patience"),
        ({"early_stopping_threshold": -0.001}, "finetune.early_stopping_threshold"),
        ({"early_stopping_threshold": math.inf}, "finetune.early_stopping_threshold"),
        ({"max_length": 2}, "finetune.max_length"),
        ({"seed": -1}, "finetune.seed"),
        ({"warmup_fraction": 1.0}, "finetune.warmup_fraction"),
        ({"weight_decay": -0.1}, "finetune.weight_decay"),
        ({"clip_norm": 0}, "finetune.clip_norm"),
        ({"max_train_examples": 0}, "finetune.max_train_examples"),
        ({"max_eval_examples": True}, "finetune.max_eval_examples"),
        ({"device": "tpu"}, "finetune.device"),
        ({"tasks": []}, "finetune.tasks"),
        ({"tasks": "cola"}, "finetune.tasks"),
        ({"tasks": ["cola", "glue"]}, "finetune.tasks"),
        ({"tasks": ["cola", "cola"]}, "finetune.tasks"),
        ({"tasks": ["mnli-mm"]}, "finetune.tasks"),  # needs mnli, whose model scores it
    ],
)
def test_config_rejects_bad_values_naming_the_key(kwargs, key):
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        FinetuneConfig(**kwargs)


def test_config_from_mapping():
    cfg = FinetuneConfig.from_mapping({"tasks": ["wsc", "cola"], "max_epochs": 1})
    assert cfg.tasks == ("cola", "wsc") and cfg.max_epochs == 1  # canonical order
    assert FinetuneConfig.from_mapping(None) == FinetuneConfig()
    with pytest.raises(InputError, match="unknown keys.*'epochs'"):
        FinetuneConfig.from_mapping({"epochs": 3})


# --- the kept epoch and early stopping: the official rule -----------------------------------------


@pytest.mark.parametrize(
    ("values", "patience", "best_epoch", "epochs_run"),
    [
        # an improvement by 0.0009 makes the epoch the kept one but does not reset the patience:
        # stale 1 after epoch 2, 2 after epoch 3 -> stop; with "any improvement resets" it would
        # run on to epoch 4 and keep 0.6
        ([0.5, 0.5009, 0.5018, 0.6], 2, 3, 3),
        # by 0.0011 it does (0.5011 - 0.5 > 0.001): all four epochs run, the 4th is kept
        ([0.5, 0.5011, 0.5022, 0.6], 2, 4, 4),
        # the counter compares with the best of the EARLIER epochs: 0.5 -> 0.7 resets, 0.7 -> 0.6995
        # and 0.7 -> 0.7 do not (not greater); a tie keeps the first epoch
        ([0.5, 0.7, 0.6995, 0.7], 2, 2, 4),
        # ... and stops at patience: epochs 3, 4 without improvement with patience 2
        ([0.5, 0.7, 0.6995, 0.7, 0.9], 2, 2, 4),
        # the last epoch is not the best one
        ([0.3, 0.8, 0.7, 0.6], 3, 2, 4),
    ],
)
def test_epoch_selector_hand_computed(values, patience, best_epoch, epochs_run):
    selector = EpochSelector(patience, 0.001)
    run = 0
    for value in values:
        run += 1
        if selector.update(value):
            break
    assert (selector.best_epoch, run) == (best_epoch, epochs_run)


def test_epoch_selector_equals_transformers_trainer_with_the_official_callback():
    """Against transformers itself: its ``EarlyStoppingCallback(patience, 0.001)`` sees each epoch's
    metric first (``Trainer.evaluate`` -> ``on_evaluate``), then ``Trainer._determine_best_metric``
    records a strictly better value as the best checkpoint (the order of
    ``Trainer._maybe_log_save_evaluate``); the kept epoch is the last one recorded as best, and
    training ends when the callback sets ``should_training_stop``. 300 random curves on a 0.0005
    grid, so that steps below, at and above the threshold all occur."""
    from transformers import EarlyStoppingCallback, Trainer, TrainerControl, TrainerState
    from transformers.trainer_utils import SaveStrategy

    rng = random.Random(0)
    args = SimpleNamespace(metric_for_best_model="f1", greater_is_better=True, save_strategy=SaveStrategy.EPOCH)
    outcomes = set()
    for _ in range(300):
        patience = rng.randint(1, 4)
        values = [round(0.5 + 0.0005 * rng.randint(0, 8) * rng.choice((1, 1, -1)), 4) for _ in range(10)]
        callback = EarlyStoppingCallback(early_stopping_patience=patience, early_stopping_threshold=0.001)
        trainer = SimpleNamespace(args=args, state=TrainerState())
        control, kept, hf_run = TrainerControl(), 0, len(values)
        for epoch, value in enumerate(values, start=1):
            metrics = {"eval_f1": value}
            callback.on_evaluate(args, trainer.state, control, metrics)
            if Trainer._determine_best_metric(trainer, metrics=metrics, trial=None):
                kept = epoch
            if control.should_training_stop:
                hf_run = epoch
                break
        selector = EpochSelector(patience, 0.001)
        ours = next((epoch for epoch, value in enumerate(values, start=1) if selector.update(value)), len(values))
        assert (selector.best_epoch, ours) == (kept, hf_run), (values, patience)
        outcomes.add((kept == hf_run, hf_run < len(values)))
    assert outcomes == {(True, True), (True, False), (False, True), (False, False)}  # every kind of case met


def scripted_glue(folder: Path) -> Path:
    """cola (20 valid rows: 10 of label 1), rte (16: 8), mnli (12: 4 per label) and mnli-mm (9: 3 per
    label) valid files, distinguishable by their sizes; small train files."""
    items = sentences()
    write_jsonl(folder / "cola.train.jsonl", cola_rows(items[:16]))
    write_jsonl(
        folder / "cola.valid.jsonl",
        [{"sentence": s, "label": int(i < 10), "idx": i} for i, s in enumerate(items[16:36])],
    )
    write_jsonl(
        folder / "rte.train.jsonl",
        [{"sentence1": s, "sentence2": items[i], "label": i % 2, "idx": i} for i, s in enumerate(items[36:52])],
    )
    write_jsonl(
        folder / "rte.valid.jsonl",
        [{"sentence1": s, "sentence2": items[i], "label": int(i < 8), "idx": i} for i, s in enumerate(items[52:68])],
    )

    def mnli(part: list[str], per_label: int) -> list[dict]:
        return [{"premise": s, "hypothesis": "a dog.", "label": i // per_label, "idx": i} for i, s in enumerate(part)]

    write_jsonl(folder / "mnli.train.jsonl", mnli(items[68:80], 4))
    write_jsonl(folder / "mnli.valid.jsonl", mnli(items[80:92], 4))
    write_jsonl(folder / "mnli-mm.valid.jsonl", mnli(items[:9], 3))
    return folder


def binary(labels: list[int], tp: int, fp: int) -> list[int]:
    """Predictions with ``tp`` of the label-1 rows and ``fp`` of the label-0 rows predicted 1."""
    ones, zeros, out = 0, 0, []
    for y in labels:
        if y == 1:
            ones += 1
            out.append(int(ones <= tp))
        else:
            zeros += 1
            out.append(int(zeros <= fp))
    return out


def three_way(labels: list[int], correct: int) -> list[int]:
    """Predictions right on the first ``correct`` rows, wrong ((label + 1) mod 3) on the others."""
    return [y if i < correct else (y + 1) % 3 for i, y in enumerate(labels)]


# Per valid set (keyed by its size), per epoch: the scripted predictions. Hand-computed metrics:
#   cola (10 ones, 10 zeros)  (TP, FP)   F1            MCC                  accuracy
#     epoch 1                 (10, 10)   20/30         0                    10/20
#     epoch 2                 (10, 6)    20/26 (best)  40/sqrt(16·10·10·4) = 0.5   14/20
#     epoch 3                 (6, 0)     12/16         60/sqrt(6·10·10·14) (best)  16/20 (best)
#     epoch 4                 (5, 0)     10/15         50/sqrt(5·10·10·15)        15/20
#   rte (8 ones, 8 zeros)     (8, 8) F1 16/24 acc 8/16; (8, 5) F1 16/21 (best) acc 11/16;
#                             (4, 0) F1 8/12 acc 12/16 (best); (2, 0) F1 4/10 acc 10/16
#   mnli (12 rows)            correct 6, 9 (best), 7, 8
#   mnli-mm (9 rows)          correct 3, 5, 8 (its own best), 6
SCRIPT = {
    20: lambda labels, epoch: binary(labels, *[(10, 10), (10, 6), (6, 0), (5, 0)][epoch]),
    16: lambda labels, epoch: binary(labels, *[(8, 8), (8, 5), (4, 0), (2, 0)][epoch]),
    12: lambda labels, epoch: three_way(labels, [6, 9, 7, 8][epoch]),
    9: lambda labels, epoch: three_way(labels, [3, 5, 8, 6][epoch]),
}


def scripted_predict(monkeypatch) -> None:
    """Replace the model's predictions by :data:`SCRIPT` (the model still trains for real)."""
    calls: dict[int, int] = {}

    def predict(model, data, batch_size, pad_id):
        n = len(data.labels)
        epoch = calls.get(n, 0)
        calls[n] = epoch + 1
        return SCRIPT[n](data.labels, epoch)

    monkeypatch.setattr(glue, "predict", predict)


def test_kept_epoch_is_chosen_by_the_official_metric_and_mnli_mm_follows_mnli(model_dir, tmp_path, monkeypatch):
    """Scripted valid predictions where the best epoch by the selection metric, the best by the
    reported metric, the best by accuracy and the last epoch all differ. Fails if the last epoch is
    reported (cola 0.5774, rte 10/16, mnli 8/12, mnli-mm 6/9), if the epoch is chosen by the
    reported metric or by accuracy (cola's epoch 3: MCC 0.6547; rte's epoch 3: 12/16), or if
    mnli-mm's epoch is chosen on its own curve (epoch 3: 8/9 instead of mnli's epoch 2: 5/9)."""
    data = scripted_glue(tmp_path / "glue")
    scripted_predict(monkeypatch)
    cfg = FinetuneConfig(
        tasks=("cola", "mnli", "mnli-mm", "rte"),
        lr=1e-3,
        batch_size=8,
        max_epochs=4,
        patience=3,
        max_length=32,
        device="cpu",
    )
    tasks = finetune_model(model_dir, data, tmp_path / "glue.json", cfg)["tasks"]
    for name in ("cola", "mnli", "mnli-mm", "rte"):
        assert tasks[name]["epochs_run"] == 4  # stale 2 < patience 3 after the best epoch 2
        assert tasks[name]["best_epoch"] == 2, name

    cola = tasks["cola"]
    assert cola["selection_metric"] == "f1" and cola["metric"] == "mcc"
    assert cola["selection_curve"] == pytest.approx([20 / 30, 20 / 26, 12 / 16, 10 / 15], abs=1e-12)
    assert cola["valid_curve"] == pytest.approx(
        [0.0, 0.5, 60 / math.sqrt(6 * 10 * 10 * 14), 50 / math.sqrt(5 * 10 * 10 * 15)], abs=1e-12
    )
    assert cola["value"] == pytest.approx(0.5, abs=1e-12) and cola["accuracy"] == pytest.approx(14 / 20, abs=1e-12)

    rte = tasks["rte"]
    assert (rte["selection_metric"], rte["metric"]) == ("f1", "accuracy")
    assert rte["value"] == pytest.approx(11 / 16, abs=1e-12) == rte["accuracy"]

    mnli, mm = tasks["mnli"], tasks["mnli-mm"]
    assert mnli["value"] == pytest.approx(9 / 12, abs=1e-12)
    assert mm["valid_curve"] == pytest.approx([3 / 9, 5 / 9, 8 / 9, 6 / 9], abs=1e-12)
    assert mm["value"] == pytest.approx(5 / 9, abs=1e-12)  # at mnli's epoch, not its own best 8/9
    assert mm["selection_metric"] == "accuracy" and mm["selection_curve"] == mnli["selection_curve"]


def test_early_stopping_counts_only_improvements_above_the_threshold(model_dir, tmp_path, monkeypatch):
    """1,000 cola valid rows (500 of label 1), scripted so that F1 rises by 0.0009 per epoch, then
    jumps: (TP, FP) = (500, 500) F1 1000/1500; (500, 498) 1000/1498; (500, 496) 1000/1496;
    (500, 300) 1000/1300. With patience 2 training stops after epoch 3 (two epochs better by
    less than 0.001) and keeps epoch 3; counting every improvement would train on and keep epoch 4."""
    items = sentences() * 11
    write_jsonl(tmp_path / "glue" / "cola.train.jsonl", cola_rows(items[:16]))
    write_jsonl(
        tmp_path / "glue" / "cola.valid.jsonl",
        [{"sentence": s, "label": i % 2, "idx": i} for i, s in enumerate(items[:1000])],
    )
    steps = [(500, 500), (500, 498), (500, 496), (500, 300)]
    calls = []

    def predict(model, data, batch_size, pad_id):
        calls.append(1)
        return binary(data.labels, *steps[len(calls) - 1])

    monkeypatch.setattr(glue, "predict", predict)
    cfg = FinetuneConfig(tasks=("cola",), lr=1e-3, batch_size=8, max_epochs=4, patience=2, max_length=32, device="cpu")
    cola = finetune_model(model_dir, tmp_path / "glue", tmp_path / "glue.json", cfg)["tasks"]["cola"]
    assert cola["selection_curve"] == pytest.approx([1000 / 1500, 1000 / 1498, 1000 / 1496], abs=1e-12)
    assert (cola["epochs_run"], cola["best_epoch"]) == (3, 3)
    # the config's threshold is the one used: at 0.0001 the small steps count and all 4 epochs run
    calls.clear()
    loose = FinetuneConfig(**{**cfg.to_dict(), "early_stopping_threshold": 0.0001})
    cola = finetune_model(model_dir, tmp_path / "glue", tmp_path / "loose.json", loose)["tasks"]["cola"]
    assert (cola["epochs_run"], cola["best_epoch"]) == (4, 4)


def test_fine_tuning_runs_in_fp32_even_after_tf32_was_enabled(model_dir, tmp_path, monkeypatch):
    """Training enables TF32 matmuls in its process; fine-tuning (training steps and scoring) turns
    them off and restores the setting afterwards."""
    import torch

    data = write_toy_glue(tmp_path / "glue")
    seen = []

    def spy(model, *args):
        seen.append(
            (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32, next(model.parameters()).dtype)
        )
        return real(model, *args)

    real = glue.predict
    monkeypatch.setattr(glue, "predict", spy)
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    try:
        result = finetune_model(
            model_dir, data, tmp_path / "out.json", FinetuneConfig(tasks=("cola",), **{**FAST, "max_epochs": 1})
        )
        after = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32 = before[1]
    assert seen == [("highest", False, torch.float32)]
    assert after == ("high", True)
    assert result["precision"] == "fp32"


# --- end to end on a tiny model ----------------------------------------------------------------


def without_times(value):
    """``value`` with every wall-time field removed (all else must be reproducible)."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k != "wall_time_s"}
    return value


def test_end_to_end_metrics_mnli_mm_missing_task_and_determinism(model_dir: Path, tmp_path: Path, monkeypatch):
    data = write_toy_glue(tmp_path / "glue")
    cfg = FinetuneConfig(tasks=("rte", "mnli-mm", "mrpc", "mnli", "cola"), max_train_examples=32, **FAST)
    out = tmp_path / "out" / "glue.json"
    heads = []  # labels of the classification head of every model scored

    def spy(model, *args):
        heads.append(model.config.num_labels)
        return real_predict(model, *args)

    real_predict = glue.predict
    with monkeypatch.context() as patch:
        patch.setattr(glue, "predict", spy)
        result = finetune_model(model_dir, data, out, cfg)
    assert json.loads(out.read_text()) == result
    assert result["format_version"] == FORMAT_VERSION
    assert result["config"]["tasks"] == ["cola", "mnli", "mnli-mm", "mrpc", "rte"]
    tasks = result["tasks"]

    # rte has no files: marked missing, not scored, not averaged
    assert tasks["rte"] == {"status": "missing", "missing_files": ["rte.train.jsonl", "rte.valid.jsonl"]}
    assert result["tasks_missing"] == ["rte"]
    assert result["tasks_included"] == ["cola", "mnli", "mnli-mm", "mrpc"]
    values = [tasks[n]["value"] for n in result["tasks_included"]]
    assert result["macro_average"] == pytest.approx(sum(values) / 4)

    assert (tasks["cola"]["metric"], tasks["mrpc"]["metric"], tasks["mnli"]["metric"]) == ("mcc", "f1", "accuracy")
    for name in result["tasks_included"]:
        t = tasks[name]
        assert t["status"] == "ok" and t["n_train"] == 32 and t["n_valid"] == 24
        assert t["epochs_run"] == len(t["valid_curve"]) == len(t["selection_curve"]) == 2
        assert t["value"] == t["valid_curve"][t["best_epoch"] - 1]
        assert t["accuracy"] == t["valid_accuracy_curve"][t["best_epoch"] - 1]
        assert t["best_epoch"] == 1 + t["selection_curve"].index(max(t["selection_curve"]))
        assert 0 <= t["accuracy"] <= 1 and -1 <= t["value"] <= 1
    # cola and mrpc: 2-label heads, scored 2 epochs each; mnli: a 3-label head scored on mnli and
    # mnli-mm after each of its 2 epochs (one model: mnli-mm is not fine-tuned on its own)
    assert heads == [2, 2, 3, 3, 3, 3, 2, 2]
    assert tasks["mnli"]["value"] == tasks["mnli"]["accuracy"]
    assert tasks["mnli"]["selection_curve"] == tasks["mnli"]["valid_accuracy_curve"]  # mnli chooses by accuracy
    assert {n: tasks[n]["selection_metric"] for n in result["tasks_included"]} == {
        "cola": "f1",
        "mnli": "accuracy",
        "mnli-mm": "accuracy",
        "mrpc": "f1",
    }
    assert tasks["mrpc"]["selection_curve"] == tasks["mrpc"]["valid_curve"]  # mrpc reports its selection metric
    assert result["precision"] == "fp32" and result["config"]["early_stopping_threshold"] == 0.001
    # mnli-mm is scored with the mnli model (its valid file is mnli's here, so the curves agree),
    # at the epoch mnli selects, without a train file of its own
    assert tasks["mnli-mm"]["trained_on"] == "mnli"
    assert tasks["mnli-mm"]["valid_curve"] == tasks["mnli"]["valid_curve"]
    assert tasks["mnli-mm"]["best_epoch"] == tasks["mnli"]["best_epoch"]

    again = finetune_model(model_dir, data, tmp_path / "again.json", cfg)
    assert without_times(again) == without_times(result)


def test_constant_predictions_score_as_babylm_and_stop_early(model_dir: Path, tmp_path: Path, monkeypatch):
    """With every prediction 1: CoLA's MCC is 0 and MRPC's F1 is 2P/(P + n); no epoch improves,
    so training stops after 1 + patience epochs and reports epoch 1."""
    data = write_toy_glue(tmp_path / "glue")
    monkeypatch.setattr(glue, "predict", lambda model, data, batch_size, pad_id: [1] * len(data.ids))
    cfg = FinetuneConfig(tasks=("cola", "mrpc"), **{**FAST, "max_epochs": 5}, patience=2)
    tasks = finetune_model(model_dir, data, tmp_path / "out.json", cfg)["tasks"]
    cola = load_examples(TASKS["cola"], data / "cola.valid.jsonl")
    mrpc = load_examples(TASKS["mrpc"], data / "mrpc.valid.jsonl")
    cola_ones = sum(e.label for e in cola)
    mrpc_ones = sum(e.label for e in mrpc)
    assert 0 < cola_ones < len(cola) and 0 < mrpc_ones < len(mrpc)
    assert tasks["cola"]["value"] == 0.0 and tasks["cola"]["accuracy"] == cola_ones / len(cola)
    assert tasks["mrpc"]["value"] == pytest.approx(2 * mrpc_ones / (mrpc_ones + len(mrpc)))
    assert tasks["mrpc"]["accuracy"] == mrpc_ones / len(mrpc)
    for t in tasks.values():
        assert (t["epochs_run"], t["best_epoch"]) == (3, 1)


def test_training_learns_a_toy_task(model_dir: Path, tmp_path: Path):
    """label = "the sentence mentions a dog" (half do): the loop must get far above chance on valid."""
    items = sentences()
    write_jsonl(tmp_path / "glue" / "cola.train.jsonl", cola_rows(items[:64]))
    write_jsonl(tmp_path / "glue" / "cola.valid.jsonl", cola_rows(items[64:]))
    # The random 1-layer model needs a few epochs to break symmetry: no early stop before 12.
    cfg = FinetuneConfig(
        tasks=("cola",), lr=3e-3, batch_size=8, max_epochs=12, patience=12, max_length=32, device="cpu"
    )
    cola = finetune_model(model_dir, tmp_path / "glue", tmp_path / "out.json", cfg)["tasks"]["cola"]
    labels = [e.label for e in load_examples(TASKS["cola"], tmp_path / "glue" / "cola.valid.jsonl")]
    assert labels.count(1) == labels.count(0) == 16  # chance: accuracy 0.5, MCC 0
    assert cola["accuracy"] >= 0.9
    assert cola["value"] >= 0.8  # MCC
    assert cola["train_loss"][-1] < 0.5 * cola["train_loss"][0]


# --- bad input ---------------------------------------------------------------------------------


def assert_nothing_written(folder: Path) -> None:
    assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())


@pytest.mark.parametrize(
    ("file", "line", "content", "message"),
    [
        ("cola.train.jsonl", 3, '{"sentence": "a dog saw', r"cola\.train\.jsonl, line 3: not valid JSON"),
        ("cola.valid.jsonl", 2, '["a list"]', r"cola\.valid\.jsonl, line 2: expected a JSON object"),
        ("cola.train.jsonl", 4, {"sentence": "a dog.", "label": 2}, r"cola\.train\.jsonl, line 4: label 2 is not"),
        ("cola.train.jsonl", 1, {"sentence": "a dog.", "label": True}, r"cola\.train\.jsonl, line 1: label True"),
        (
            "mnli.valid.jsonl",
            5,
            {"premise": "a.", "hypothesis": "b.", "label": 3},
            r"mnli\.valid\.jsonl, line 5: label 3",
        ),
        (
            "mnli-mm.valid.jsonl",
            2,
            {"premise": "a.", "hypothesis": "b.", "label": -1},
            r"mnli-mm\.valid\.jsonl, line 2",
        ),
        ("mrpc.train.jsonl", 2, {"sentence1": "a.", "label": 1}, r"mrpc\.train\.jsonl, line 2: field 'sentence2'"),
    ],
)
def test_bad_line_names_file_and_line_and_writes_nothing(model_dir, tmp_path, file, line, content, message):
    data = write_toy_glue(tmp_path / "glue")
    rows = (data / file).read_text(encoding="utf-8").splitlines()
    rows[line - 1] = content if isinstance(content, str) else json.dumps(content)
    (data / file).write_text("\n".join(rows) + "\n", encoding="utf-8")
    cfg = FinetuneConfig(tasks=("cola", "mnli", "mnli-mm", "mrpc"), **FAST)
    with pytest.raises(InputError, match=message):
        finetune_model(model_dir, data, tmp_path / "out" / "glue.json", cfg)
    assert_nothing_written(tmp_path / "out")


def test_model_without_tokenizer_is_a_clear_error(model_dir: Path, tmp_path: Path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_dir / name, bare / name)
    data = write_toy_glue(tmp_path / "glue")
    with pytest.raises(InputError, match="no tokenizer saved with the model"):
        finetune_model(bare, data, tmp_path / "out" / "glue.json", FinetuneConfig(tasks=("cola",), **FAST))
    assert_nothing_written(tmp_path / "out")
    with pytest.raises(InputError, match=r"config\.json missing"):
        finetune_model(tmp_path / "nowhere", data, tmp_path / "out" / "glue.json", FinetuneConfig(**FAST))


def test_no_task_with_data_is_an_error(model_dir: Path, tmp_path: Path):
    data = write_toy_glue(tmp_path / "glue")
    with pytest.raises(InputError, match="none of the tasks"):
        finetune_model(model_dir, data, tmp_path / "out" / "glue.json", FinetuneConfig(tasks=("rte", "wsc"), **FAST))
    assert_nothing_written(tmp_path / "out")


def test_failure_during_training_leaves_no_result(model_dir: Path, tmp_path: Path, monkeypatch):
    data = write_toy_glue(tmp_path / "glue")
    out = tmp_path / "out" / "glue.json"
    calls = []

    def fail_on_second_task(*args, **kwargs):
        calls.append(args[2].name)
        if len(calls) == 2:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(*args, **kwargs)

    real = glue._fine_tune
    monkeypatch.setattr(glue, "_fine_tune", fail_on_second_task)
    with pytest.raises(RuntimeError, match="simulated"):
        finetune_model(model_dir, data, out, FinetuneConfig(tasks=("cola", "mrpc"), **{**FAST, "max_epochs": 1}))
    assert calls == ["cola", "mrpc"]
    assert_nothing_written(tmp_path / "out")
