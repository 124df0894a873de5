"""(Super)GLUE fine-tuning: metrics pinned to hand-computed values, the task table, config
validation, an end-to-end run on a tiny random model (cola as MCC, mrpc as F1, mnli with 3
labels, mnli-mm scored with the mnli model, a missing task left out of the macro average),
determinism, early stopping, a learnable toy task, and bad input."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from babyteach.data.tokenizer import train_tokenizer
from babyteach.errors import InputError
from babyteach.evaluate import glue
from babyteach.evaluate.glue import (
    FORMAT_VERSION,
    TASKS,
    FinetuneConfig,
    accuracy,
    f1_binary,
    finetune_model,
    load_examples,
    matthews_corrcoef,
)
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
        return [{"premise": s, "hypothesis": f"{SUBJECTS[i % 6]} {VERBS[i % 4]}.", "label": i % 4 % 3, "idx": i}
                for i, s in enumerate(part)]  # fmt: skip

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
    assert {n: t.metric for n, t in TASKS.items() if t.metric != "accuracy"} == {"cola": "mcc", "mrpc": "f1", "qqp": "f1"}
    assert TASKS["mnli"].num_labels == TASKS["mnli-mm"].num_labels == 3
    assert TASKS["mnli-mm"].train_from == "mnli"
    assert TASKS["cola"].texts({"sentence": "a b."}) == ("a b.", None)
    row = {"paragraph": "P.", "question": "Who?", "answer": "Ann", "text": "Ann met Bo. She smiled.",
           "span1_text": "Ann", "span2_text": "She"}  # fmt: skip
    assert TASKS["multirc"].texts(row) == ("P.", "Who? Ann")
    assert TASKS["wsc"].texts(row) == ("Ann met Bo. She smiled.", 'Does "She" refer to "Ann"?')
    assert TASKS["wsc"].fields == ("text", "span2_text", "span1_text")


def test_config_defaults_are_babylm_2024():
    cfg = FinetuneConfig()
    assert (cfg.lr, cfg.batch_size, cfg.max_epochs, cfg.patience, cfg.max_length, cfg.seed) == (5e-5, 64, 10, 3, 128, 12)
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
        assert t["epochs_run"] == len(t["valid_curve"]) == 2
        assert t["value"] == t["valid_curve"][t["best_epoch"] - 1] == max(t["valid_curve"])
        assert t["accuracy"] == t["valid_accuracy_curve"][t["best_epoch"] - 1]
        assert 0 <= t["accuracy"] <= 1 and -1 <= t["value"] <= 1
    # cola and mrpc: 2-label heads, scored 2 epochs each; mnli: a 3-label head scored on mnli and
    # mnli-mm after each of its 2 epochs (one model: mnli-mm is not fine-tuned on its own)
    assert heads == [2, 2, 3, 3, 3, 3, 2, 2]
    assert tasks["mnli"]["value"] == tasks["mnli"]["accuracy"]
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
    cfg = FinetuneConfig(tasks=("cola",), lr=3e-3, batch_size=8, max_epochs=12, patience=12, max_length=32,
                         device="cpu")  # fmt: skip
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
        ("mnli.valid.jsonl", 5, {"premise": "a.", "hypothesis": "b.", "label": 3}, r"mnli\.valid\.jsonl, line 5: label 3"),
        ("mnli-mm.valid.jsonl", 2, {"premise": "a.", "hypothesis": "b.", "label": -1}, r"mnli-mm\.valid\.jsonl, line 2"),
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
