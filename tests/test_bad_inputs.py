"""Bad-input sweep (issue 7): every entry point fed malformed input fails with a clear error that
names the file (and line or config key) and leaves no partial output.

Entry points: the config file (``snakemake -n``), corpus files (``clean_corpus``), the tokenizer
and token shards (``train_tokenizer``, ``write_shards``, the trainer's ``PackedBlocks``),
evaluation jsonl (minimal pairs, GLUE), model folders (scoring, fine-tuning), architecture-search
results, the result JSON/CSV the tables read, and the ``babyteach`` command. Kinds of bad input:
empty, truncated, binary garbage, wrong encoding, wrong JSON type or field, huge lines, missing
files. Config keys one by one (wrong type, unknown key, cross-key rules) are in test_config.py.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from babyteach.cli import main
from babyteach.data.clean import clean_corpus
from babyteach.data.corpora import BABYLM_DOMAINS, SPLITS
from babyteach.data.registry import BLIMP_UIDS, SUPPLEMENT_TASKS
from babyteach.data.shards import PackedBlocks, write_shards
from babyteach.data.tokenizer import train_tokenizer
from babyteach.errors import InputError
from babyteach.evaluate.glue import FinetuneConfig, finetune_model, load_examples
from babyteach.evaluate.glue_tasks import TASKS
from babyteach.evaluate.pairs import load_pairs
from babyteach.evaluate.zero_shot import evaluate_pairs
from babyteach.models import Architecture, build_model
from babyteach.report.runs import load_eval, load_search, load_summary, read_result_csv
from babyteach.search import SEARCH_VERSION, students_from_search
from workflow_helpers import run_snakemake

#: Bytes that are not UTF-8 (a leading 0xff never is), reproducible.
GARBAGE = b"\xff\xfe" + random.Random(7).randbytes(4094)
HUGE_MB = 16  # a single line of this many MB, no newline


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def assert_no_output(*paths: Path) -> None:
    """Neither the output nor an atomic-write temporary (``.<name>.*``) beside it exists."""
    for path in paths:
        assert not path.exists(), f"{path} was left behind"
        assert list(path.parent.glob(f".{path.name}.*")) == [], f"a temporary of {path} was left behind"


def assert_names(error: Exception, path: Path, line: int | None, texts: Iterable[str]) -> None:
    """The error message names ``path`` (and ``line`` when given) and holds every one of ``texts``."""
    message = str(error)
    assert str(path) in message
    if line is not None:
        assert f"line {line}:" in message
    for text in texts:
        assert text in message


def cut(data: bytes, keep: float = 0.5) -> bytes:
    """The first ``keep`` share of ``data``: a truncated file."""
    return data[: int(len(data) * keep)]


# --- shared tiny artefacts ---------------------------------------------------------------------

TEXT = ["the cat saw a dog.", "a dog saw the cat.", "who will the teacher help?", "the children played."]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean folder, its tokenizer, token shards and a tiny saved model with that tokenizer."""
    root = tmp_path_factory.mktemp("built")
    (root / "clean").mkdir()
    for split in ("train", "dev"):
        (root / "clean" / f"toy.{split}").write_text("\n".join(TEXT * 20) + "\n", encoding="utf-8")
    train_tokenizer(root / "clean", root / "tokenizer", vocab_size=300)
    write_shards(root / "clean", root / "tokenizer", root / "shards")
    tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
    build_model(Architecture(1, 1, 16), len(tokenizer), block_size=32, seed=0).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    return root


def damaged_copy(source: Path, dest: Path, file: str, content: bytes | None) -> Path:
    """A copy of folder ``source`` at ``dest`` whose ``file`` holds ``content`` (None: removed)."""
    shutil.copytree(source, dest)
    if content is None:
        (dest / file).unlink()
    else:
        (dest / file).write_bytes(content)
    return dest


# --- config file (the workflow's start-up check, as a dry run) ---------------------------------

SNAKEMAKE_READS_IT = pytest.mark.xfail(
    strict=True,
    reason="Snakemake (9.27) loads --configfile before the Snakefile runs and prints a raw "
    "UnicodeDecodeError traceback for non-UTF-8 bytes; the workflow cannot intercept it",
)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        pytest.param(b"", "Config file", id="empty"),
        pytest.param(b"- corpus\n- training\n", "Config file", id="list-not-mapping"),
        pytest.param(b"training:\n  lr: [0.1,\n", "Config file", id="truncated-yaml"),
        pytest.param(b"training:\n  batch_size: many\n", "batch_size", id="string-for-int"),
        pytest.param(b"training:\n  batch_sise: 32\n", "batch_sise", id="unknown-key"),
        pytest.param(GARBAGE, "Config file", id="garbage", marks=SNAKEMAKE_READS_IT),
    ],
)
def test_bad_config_file_stops_the_dry_run_with_a_clear_error(tmp_path: Path, content: bytes, named: str):
    config = tmp_path / "bad.yaml"
    config.write_bytes(content)
    result = run_snakemake(tmp_path / "work", "--configfile", str(config), "-n", check=False, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert named in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not (tmp_path / "work" / "results").exists()
    # Snakemake's own messages for an unreadable file ("Config file is not valid JSON or YAML")
    # do not repeat the path; there is only the one --configfile the user just gave.


# --- corpus files ---------------------------------------------------------------------------------


def write_raw_corpus(folder: Path) -> Path:
    """A valid 2024 corpus: one short line per domain and split."""
    folder.mkdir()
    for domain in BABYLM_DOMAINS["2024"]:
        for split in SPLITS:
            (folder / f"{domain}.{split}").write_text(f"{domain} words for {split}.\n", encoding="utf-8")
    return folder


CORPUS_CASES = {
    # name: (content of childes.train or None to delete switchboard.dev, texts the error must contain)
    "empty": (b"", ["childes.train", "empty"]),
    "garbage": (GARBAGE, ["childes.train", "line 1", "not valid UTF-8"]),
    "latin-1": ("fine line.\ncafé au lait.\n".encode("latin-1"), ["childes.train", "line 2", "on_decode_error"]),
    "truncated-mid-character": ("fine line.\nna\u00ef".encode()[:-1], ["childes.train", "line 2", "not valid UTF-8"]),
    "no-text-left": (b"%com: annotation only\n= = = childes/a.cha = = =\n", ["childes.train", "no text left"]),
    "missing-file": (None, ["switchboard.dev", "not found"]),
}


@pytest.mark.parametrize("case", CORPUS_CASES)
def test_bad_corpus_file_is_named_and_nothing_is_written(tmp_path: Path, case: str):
    content, named = CORPUS_CASES[case]
    raw = write_raw_corpus(tmp_path / "raw")
    if content is None:
        (raw / "switchboard.dev").unlink()
    else:
        (raw / "childes.train").write_bytes(content)
    out, stats = tmp_path / "out" / "clean", tmp_path / "out" / "corpus.csv"
    with pytest.raises(InputError) as error:
        clean_corpus(raw, out, stats, "2024", on_decode_error="strict")
    for text in named:
        assert text in str(error.value)
    assert str(raw) in str(error.value)
    assert_no_output(out, stats)


def test_huge_corpus_line_is_cleaned_in_one_piece(tmp_path: Path):
    raw = write_raw_corpus(tmp_path / "raw")
    words = HUGE_MB * (1 << 20) // 5
    (raw / "childes.train").write_bytes(b"*MOT: " + b"word " * words)  # no newline at all
    stats = clean_corpus(raw, tmp_path / "clean", tmp_path / "corpus.csv", "2024")
    row = stats[(stats["domain"] == "childes") & (stats["split"] == "train")].iloc[0]
    assert (row["lines"], row["words"]) == (1, words)


# --- tokenizer and token shards ---------------------------------------------------------------------


def test_tokenizer_training_on_non_utf8_text_names_the_files(tmp_path: Path):
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.train").write_bytes(b"fine text\n" + GARBAGE)
    with pytest.raises(InputError, match=r"a\.train.*UTF-8") as error:
        train_tokenizer(clean, tmp_path / "tokenizer", vocab_size=300)
    assert str(clean) in str(error.value)
    assert_no_output(tmp_path / "tokenizer")


@pytest.mark.parametrize(
    "content",
    [b"", b'{"version": "1.0", "truncation": null, "added_tokens": [{"id": 0,', GARBAGE],
    ids=["empty", "truncated", "garbage"],
)
def test_damaged_tokenizer_file_is_named_when_tokenizing(built: Path, tmp_path: Path, content: bytes):
    tokenizer = damaged_copy(built / "tokenizer", tmp_path / "tokenizer", "tokenizer.json", content)
    with pytest.raises(InputError, match="train_tokenizer step") as error:
        write_shards(built / "clean", tokenizer, tmp_path / "shards")
    assert str(tokenizer / "tokenizer.json") in str(error.value)
    assert_no_output(tmp_path / "shards")


def _npy(array: np.ndarray) -> bytes:
    buffer = BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


SHARD_CASES = {
    # name: (file, content or a function of the original bytes, None: removed)
    "meta-truncated": ("meta.json", cut),
    "meta-garbage": ("meta.json", GARBAGE),
    "meta-empty": ("meta.json", b""),
    "meta-list": ("meta.json", b"[1, 2]\n"),
    "meta-missing-keys": ("meta.json", b'{"format_version": 1, "splits": {"train": {}}}\n'),
    "meta-other-version": ("meta.json", b'{"format_version": 99}\n'),
    "meta-missing": ("meta.json", None),
    "tokens-truncated": ("train.tokens.npy", cut),
    "tokens-header-only": ("train.tokens.npy", lambda data: data[:20]),
    "tokens-missing": ("train.tokens.npy", None),
    "offsets-garbage": ("train.offsets.npy", GARBAGE),
    "offsets-2d": ("train.offsets.npy", _npy(np.zeros((2, 2), dtype=np.int64))),
    "offsets-past-the-tokens": ("train.offsets.npy", _npy(np.array([0, 5, 10**9], dtype=np.int64))),
}


@pytest.mark.parametrize("case", SHARD_CASES)
def test_damaged_shard_folder_is_named_by_the_trainers_reader(built: Path, tmp_path: Path, case: str):
    file, content = SHARD_CASES[case]
    if callable(content):
        content = content((built / "shards" / file).read_bytes())
    shards = damaged_copy(built / "shards", tmp_path / "shards", file, content)
    with pytest.raises(InputError, match="tokenize_corpus step") as error:
        PackedBlocks(shards, "train", block_size=16)
    assert str(shards) in str(error.value)
    if case != "offsets-past-the-tokens":  # an inconsistency between two files names the folder
        assert str(shards / file) in str(error.value)


# --- evaluation jsonl -------------------------------------------------------------------------------

GOOD_PAIR = json.dumps({"sentence_good": "the cat saw a dog.", "sentence_bad": "the dog saw a cat."})

PAIR_CASES = {
    # name: (content of hypernym.jsonl, line the error names, texts it must contain)
    "empty": (b"", None, ["no pairs"]),
    "truncated-last-line": (f"{GOOD_PAIR}\n{GOOD_PAIR[:20]}".encode(), 2, ["not valid JSON"]),
    "garbage": (GARBAGE, 1, ["not valid JSON"]),
    "latin-1": (
        f"{GOOD_PAIR}\n".encode() + '{"sentence_good": "café", "sentence_bad": "x"}\n'.encode("latin-1"),
        2,
        ["not valid JSON", "utf-8"],
    ),
    "a-list": (b'["the cat saw a dog.", "the dog saw a cat."]\n', 1, ["expected a JSON object"]),
    "missing-field": (b'{"sentence_bad": "the dog saw a cat."}\n', 1, ["sentence_good"]),
    "wrong-field-type": (b'{"sentence_good": 3, "sentence_bad": "x"}\n', 1, ["sentence_good"]),
}


def write_supplement(folder: Path, hypernym: bytes | None = None) -> Path:
    """A supplement-fast folder: one pair per task; ``hypernym.jsonl`` replaced by ``hypernym``."""
    folder.mkdir()
    for task in SUPPLEMENT_TASKS:
        (folder / f"{task}.jsonl").write_text(GOOD_PAIR + "\n", encoding="utf-8")
    if hypernym is not None:
        (folder / "hypernym.jsonl").write_bytes(hypernym)
    return folder


@pytest.mark.parametrize("case", PAIR_CASES)
def test_bad_pair_file_names_file_and_line_and_writes_no_result(built: Path, tmp_path: Path, case: str):
    content, line, named = PAIR_CASES[case]
    data = write_supplement(tmp_path / "data", content)
    out = tmp_path / "out" / "supplement-fast.json"
    with pytest.raises(InputError) as error:
        evaluate_pairs(built / "model", "supplement-fast", data, out)
    assert_names(error.value, data / "hypernym.jsonl", line, named)
    assert_no_output(out)


def test_huge_pair_line_is_read_and_refused_when_scored_naming_the_line(built: Path, tmp_path: Path):
    huge = json.dumps({"sentence_good": "cat " * (HUGE_MB * (1 << 20) // 4), "sentence_bad": "x"})
    data = write_supplement(tmp_path / "huge", f"{GOOD_PAIR}\n{huge}\n".encode())
    assert len(load_pairs("supplement-fast", data)[1].good) == HUGE_MB * (1 << 20)
    # Scoring tokenizes every sentence: a shorter long line shows the same error without the cost.
    long = json.dumps({"sentence_good": "cat " * 20_000, "sentence_bad": "x"})
    data = write_supplement(tmp_path / "long", f"{GOOD_PAIR}\n{long}\n".encode())
    out = tmp_path / "out.json"
    with pytest.raises(InputError, match=r"task hypernym line 2 \(good\): \d+ tokens .* more than the model's"):
        evaluate_pairs(built / "model", "supplement-fast", data, out)
    assert_no_output(out)


def test_damaged_zip_member_is_named(tmp_path: Path):
    folder = tmp_path / "blimp"
    folder.mkdir()
    rows = {
        uid: json.dumps({"sentence_good": f"good {uid}.", "sentence_bad": "bad.", "linguistics_term": "t"})
        for uid in BLIMP_UIDS
    }
    with zipfile.ZipFile(folder / "BLiMP.zip", "w", compression=zipfile.ZIP_STORED) as archive:
        for uid, row in rows.items():
            archive.writestr(f"blimp/{uid}.jsonl", row + "\n")
    data = (folder / "BLiMP.zip").read_bytes()
    at = data.index(b"good adjunct_island.")
    (folder / "BLiMP.zip").write_bytes(data[:at] + b"G" + data[at + 1 :])  # CRC no longer matches
    with pytest.raises(InputError, match=r"BLiMP\.zip: member 'blimp/adjunct_island\.jsonl' is damaged"):
        load_pairs("blimp", folder)
    (folder / "BLiMP.zip").write_bytes(cut(data))  # no central directory
    with pytest.raises(InputError, match=r"BLiMP\.zip: not a readable zip"):
        load_pairs("blimp", folder)


GOOD_COLA = b'{"sentence": "the cat saw a dog.", "label": 1}\n{"sentence": "dog a saw.", "label": 0}\n'

GLUE_CASES = {
    # name: (content of cola.train.jsonl, line the error names, texts it must contain)
    "empty": (b"", None, ["no examples"]),
    "truncated-last-line": (GOOD_COLA + b'{"sentence": "a d', 3, ["not valid JSON"]),
    "garbage": (GARBAGE, 1, ["not valid JSON"]),
    "latin-1": (GOOD_COLA + '{"sentence": "café", "label": 1}\n'.encode("latin-1"), 3, ["not valid JSON"]),
    "a-list": (b'["the cat saw a dog.", 1]\n', 1, ["expected a JSON object"]),
    "missing-field": (b'{"label": 1}\n', 1, ["'sentence'"]),
    "label-as-text": (b'{"sentence": "a dog.", "label": "1"}\n', 1, ["label '1'"]),
}

FAST = FinetuneConfig(tasks=("cola",), lr=1e-3, batch_size=4, max_epochs=1, max_length=16, device="cpu")


@pytest.mark.parametrize("case", GLUE_CASES)
def test_bad_glue_file_names_file_and_line_and_writes_no_result(built: Path, tmp_path: Path, case: str):
    content, line, named = GLUE_CASES[case]
    data = tmp_path / "glue"
    data.mkdir()
    (data / "cola.train.jsonl").write_bytes(content)
    (data / "cola.valid.jsonl").write_bytes(GOOD_COLA)
    out = tmp_path / "out" / "glue.json"
    with pytest.raises(InputError) as error:
        finetune_model(built / "model", data, out, FAST)
    assert_names(error.value, data / "cola.train.jsonl", line, named)
    assert_no_output(out)


def test_huge_glue_line_is_read(tmp_path: Path):
    path = tmp_path / "cola.train.jsonl"
    sentence = "cat " * (HUGE_MB * (1 << 20) // 4)
    path.write_text(json.dumps({"sentence": sentence, "label": 1}), encoding="utf-8")  # no newline either
    assert load_examples(TASKS["cola"], path)[0].first == sentence  # fine-tuning truncates to max_length


# --- model folders ----------------------------------------------------------------------------------

FOLDER_CASES = {
    # name: (file, content or a function of the original bytes, None: removed; texts the error must contain)
    "config-truncated": ("config.json", cut, ["config.json"]),
    "config-garbage": ("config.json", GARBAGE, ["config.json"]),
    "config-a-list": ("config.json", b"[]\n", ["config.json"]),
    "config-missing": ("config.json", None, ["config.json missing"]),
    "weights-missing": ("model.safetensors", None, ["model.safetensors missing"]),
    "weights-truncated": ("model.safetensors", cut, ["weights cannot be loaded", "truncated"]),
    "weights-garbage": ("model.safetensors", GARBAGE, ["weights cannot be loaded"]),
    "tokenizer-garbage": ("tokenizer.json", GARBAGE, ["tokenizer cannot be loaded"]),
    "tokenizer-truncated": ("tokenizer.json", cut, ["tokenizer cannot be loaded"]),
}


def model_folder_case(built: Path, tmp_path: Path, case: str) -> tuple[Path, list[str]]:
    file, content, named = FOLDER_CASES[case]
    if callable(content):
        content = content((built / "model" / file).read_bytes())
    return damaged_copy(built / "model", tmp_path / "model", file, content), named


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_damaged_model_folder_is_named_when_scoring(built: Path, tmp_path: Path, case: str):
    model, named = model_folder_case(built, tmp_path, case)
    data = write_supplement(tmp_path / "data")
    out = tmp_path / "out" / "supplement-fast.json"
    with pytest.raises(InputError) as error:
        evaluate_pairs(model, "supplement-fast", data, out)
    assert str(model) in str(error.value)
    for text in named:
        assert text in str(error.value)
    assert_no_output(out)


@pytest.mark.parametrize("case", ["config-truncated", "weights-missing", "weights-truncated", "tokenizer-garbage"])
def test_damaged_model_folder_is_named_when_fine_tuning(built: Path, tmp_path: Path, case: str):
    model, named = model_folder_case(built, tmp_path, case)
    data = tmp_path / "glue"
    data.mkdir()
    for split in ("train", "valid"):
        (data / f"cola.{split}.jsonl").write_bytes(GOOD_COLA)
    out = tmp_path / "out" / "glue.json"
    with pytest.raises(InputError) as error:
        finetune_model(model, data, out, FAST)
    assert str(model) in str(error.value)
    for text in named:
        assert text in str(error.value)
    assert_no_output(out)


def test_empty_or_absent_model_folder_is_named(built: Path, tmp_path: Path):
    data = write_supplement(tmp_path / "data")
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "absent"):
        with pytest.raises(InputError, match="no saved model") as error:
            evaluate_pairs(folder, "supplement-fast", data, tmp_path / "out.json")
        assert str(folder) in str(error.value)
    assert_no_output(tmp_path / "out.json")


# --- architecture-search results ------------------------------------------------------------------

PEER = {"peer": 1, "arch": {"layers": 2, "heads": 2, "hidden": 32}}


def search_file(version: object = SEARCH_VERSION, peers: object = (PEER,)) -> bytes:
    return json.dumps({"version": version, "peers": peers}).encode()


SEARCH_CASES = {
    # name: (file content, text the error must contain)
    "truncated": (search_file()[:30], "not valid JSON"),
    "garbage": (GARBAGE, "not valid JSON"),
    "empty": (b"", "not valid JSON"),
    "a-list": (b"[]", "expected a JSON object"),
    "old-version": (search_file(version=1), "format version 1"),
    "no-version": (b'{"peers": []}', "format version None"),
    "peers-not-a-list": (search_file(peers=4), "not a readable"),
    "arch-a-list": (search_file(peers=[{"peer": 1, "arch": [2, 2, 32]}]), "not a readable"),
    "layers-as-text": (
        search_file(peers=[{"peer": 1, "arch": {**PEER["arch"], "layers": "2"}}]),
        "layers must be a positive integer",
    ),
    "layers-fractional": (
        search_file(peers=[{"peer": 1, "arch": {**PEER["arch"], "layers": 2.5}}]),
        "layers must be a positive integer",
    ),
}


@pytest.mark.parametrize("case", SEARCH_CASES)
def test_bad_search_result_is_named(tmp_path: Path, case: str):
    content, named = SEARCH_CASES[case]
    path = tmp_path / "peers-1.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match="rerun the search rule") as error:
        students_from_search(path, peers=1)
    assert str(path) in str(error.value) and named in str(error.value)


def test_missing_search_result_is_named(tmp_path: Path):
    with pytest.raises(InputError, match="run the search rule first") as error:
        students_from_search(tmp_path / "peers-4.json")
    assert str(tmp_path / "peers-4.json") in str(error.value)


# --- result files read by the tables and figures --------------------------------------------------

JSON_RESULT_CASES = {
    "truncated": b'{"version": 1, "family": "blimp-fast", "macro_acc',
    "garbage": GARBAGE,
    "empty": b"",
    "a-list": b"[1, 2]\n",
    "wrong-types": b'{"version": 2, "family": "blimp-fast", "data_dir": "blimp-fast", "variants": 3}\n',
}


@pytest.mark.parametrize("case", JSON_RESULT_CASES)
@pytest.mark.parametrize("loader", [load_eval, load_summary, load_search], ids=lambda f: f.__name__)
def test_bad_result_json_is_named(tmp_path: Path, case: str, loader):
    path = (
        tmp_path
        / {"load_eval": "blimp-fast.json", "load_summary": "train_summary.json", "load_search": "peers-4.json"}[
            loader.__name__
        ]
    )
    path.write_bytes(JSON_RESULT_CASES[case])
    with pytest.raises(InputError, match="rerun") as error:
        loader(path)
    assert str(path) in str(error.value)


CSV_RESULT_CASES = {
    "truncated": b"step,update,weight.peer-1,weight.peer-2\n10,1,0.5,0.5\n20,2,0.4",
    "garbage": GARBAGE + b"\n",
    "empty": b"",
    "extra-field": b"step,update,weight.peer-1\n10,1,0.5\n20,2,0.4,0.6,9\n",
}


@pytest.mark.parametrize("case", CSV_RESULT_CASES)
def test_bad_result_csv_is_named(tmp_path: Path, case: str):
    path = tmp_path / "peer_weights.csv"
    path.write_bytes(CSV_RESULT_CASES[case])
    with pytest.raises(InputError, match="rerun the step that writes it") as error:
        read_result_csv(path, "missing")
    assert str(path) in str(error.value)


def test_result_path_that_is_a_folder_is_named(tmp_path: Path):
    folder = tmp_path / "glue.json"
    folder.mkdir()
    for read in (load_eval, lambda path: read_result_csv(path, "missing")):
        with pytest.raises(InputError, match="cannot be read") as error:
            read(folder)
        assert str(folder) in str(error.value)


# --- the babyteach command --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "required: command"),
        (["clean"], "required: raw_dir"),
        (["train-tokenizer", "c", "o", "--vocab-size", "big"], "argument --vocab-size: 'big' is not a whole number"),
        (["tokenize", "c", "t", "o", "--batch-lines", "1.5"], "argument --batch-lines: '1.5' is not a whole number"),
        (["clean", "r", "c", "s.csv", "--release", "2025"], "invalid choice: '2025'"),
        (["evaluate-pairs", "m", "blimp-fast", "d", "o.json", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_usage(capsys, argv: list[str], says: str):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: babyteach") and says in err


def test_bad_paths_exit_2_naming_the_path(built: Path, tmp_path: Path, capsys):
    absent = tmp_path / "absent"
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder\n")
    garbled = damaged_copy(built / "tokenizer", tmp_path / "garbled", "tokenizer.json", GARBAGE)
    cases = [
        (["clean", str(absent), str(tmp_path / "clean"), str(tmp_path / "s.csv")], "clean", absent),
        (["train-tokenizer", str(absent), str(tmp_path / "tok")], "train-tokenizer", absent),
        (["tokenize", str(built / "clean"), str(absent), str(tmp_path / "shards")], "tokenize", absent),
        (["tokenize", str(built / "clean"), str(garbled), str(tmp_path / "shards")], "tokenize", garbled),
        (["train-tokenizer", str(built / "clean"), str(a_file / "tok")], "train-tokenizer", a_file),
        (
            ["evaluate-pairs", str(built / "model"), "supplement-fast", str(absent), str(tmp_path / "e.json")],
            "evaluate-pairs",
            absent,
        ),
        (
            [
                "evaluate-pairs",
                str(absent),
                "supplement-fast",
                str(write_supplement(tmp_path / "supp")),
                str(tmp_path / "e.json"),
            ],
            "evaluate-pairs",
            absent,
        ),
    ]
    for argv, command, named in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"babyteach {command}: error: " in err and str(named) in err, (argv, err)
        assert "Traceback" not in err
    assert_no_output(tmp_path / "clean", tmp_path / "s.csv", tmp_path / "tok", tmp_path / "shards", tmp_path / "e.json")


def test_command_line_error_has_no_traceback(tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "babyteach.cli",
            "clean",
            str(tmp_path / "absent"),
            str(tmp_path / "c"),
            str(tmp_path / "s.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert f"babyteach clean: error: {tmp_path / 'absent'}" in result.stderr
    assert "Traceback" not in result.stderr


# --- the training job command (python -m babyteach.train_job, what the training rules run) ---------

TRAINING = {
    "token_budget": 64,
    "batch_size": 2,
    "checkpoint_every": 10,
    "log_every": 1,
    "dev_blocks": 2,
    "warmup_fraction": 0.0,
}


def train_job_argv(built: Path, tmp_path: Path, settings: str, teacher_run: Path | None = None) -> list[str]:
    job = {
        "shards": str(built / "shards"),
        "tokenizer": str(built / "tokenizer"),
        "output": str(tmp_path / "run"),
        "checkpoint_dir": str(tmp_path / "ckpt"),
    }
    if teacher_run is not None:
        search = tmp_path / "peers-1.json"
        search.write_bytes(search_file(peers=[{"peer": 1, "arch": {"layers": 1, "heads": 1, "hidden": 16}}]))
        job.update(search=str(search), teacher_run=str(teacher_run))
    return [settings, json.dumps(job)]


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ("{not json", "settings: not JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ('{"method": "baseline"}', "settings: missing keys ['seed', 'training', 'block_size']"),
        (
            json.dumps(
                {
                    "method": "baseline",
                    "seed": 0,
                    "block_size": 32,
                    "training": {**TRAINING, "lr": "fast"},
                    "teacher": PEER["arch"],
                }
            ),
            "training.lr",
        ),
        (
            json.dumps(
                {
                    "method": "baseline",
                    "seed": 0,
                    "block_size": 32,
                    "training": TRAINING,
                    "teacher": {"layers": 0, "heads": 1, "hidden": 16},
                }
            ),
            "model.teacher",
        ),
    ],
)
def test_bad_train_job_settings_exit_2_naming_what(built: Path, tmp_path: Path, capsys, settings: str, says: str):
    from babyteach.train_job import main as train_job

    assert train_job(train_job_argv(built, tmp_path, settings)) == 2
    err = capsys.readouterr().err
    assert err.startswith("babyteach train: error: ") and says in err, err
    assert_no_output(tmp_path / "run")


def test_train_job_missing_a_path_exit_2(built: Path, tmp_path: Path, capsys):
    from babyteach.train_job import main as train_job

    settings = json.dumps(
        {"method": "baseline", "seed": 0, "block_size": 32, "training": TRAINING, "teacher": PEER["arch"]}
    )
    assert train_job([settings, json.dumps({"shards": str(built / "shards")})]) == 2
    assert "job: missing keys ['tokenizer', 'output', 'checkpoint_dir']" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["weights-missing", "weights-truncated", "config-garbage"])
def test_damaged_teacher_is_named_by_the_train_job(built: Path, tmp_path: Path, capsys, case: str):
    from babyteach.train_job import main as train_job

    model, _ = model_folder_case(built, tmp_path / "baseline", case)
    teacher_run = tmp_path / "baseline" / "seed-0"
    teacher_run.mkdir(parents=True)
    model.rename(teacher_run / "teacher")
    settings = json.dumps(
        {
            "method": "kd",
            "seed": 0,
            "block_size": 32,
            "training": TRAINING,
            "peers": 1,
            "method_options": {"lam": 0.5, "tau": 2.0},
        }
    )
    assert train_job(train_job_argv(built, tmp_path, settings, teacher_run)) == 2
    err = capsys.readouterr().err
    assert f"babyteach train: error: {teacher_run / 'teacher'}" in err, err
    assert_no_output(tmp_path / "run")
