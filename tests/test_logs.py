"""Errors where users look: a failed job's log ends with its message (no traceback for bad input),
and the log of a failed attempt survives Snakemake's retry (``babyteach.logs``)."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from babyteach.data.shards import write_shards
from babyteach.data.tokenizer import train_tokenizer
from babyteach.errors import InputError
from babyteach.logs import attempts_path, job_logging
from workflow_helpers import run_snakemake

HEADER = re.compile(r"^===== attempt started .* =====$", re.M)


def _last_line(path: Path) -> str:
    return path.read_text(encoding="utf-8").rstrip("\n").splitlines()[-1]


def _damaged_mirror(data_mirror: Path, root: Path) -> Path:
    """A mirror holding supplement-fast with one file cut short: its checksum no longer matches."""
    source = data_mirror / "blimp_supplement" / "supplement_fast"
    mirror = root / "mirror"
    shutil.copytree(source, mirror / "blimp_supplement" / "supplement_fast")
    sums = [
        line
        for line in (data_mirror / "SHA256SUMS").read_text().splitlines()
        if "./blimp_supplement/supplement_fast/" in line
    ]
    (mirror / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    damaged = mirror / "blimp_supplement" / "supplement_fast" / "hypernym.jsonl"
    damaged.write_bytes(damaged.read_bytes()[:100])
    return damaged


def test_failed_rule_log_ends_with_the_message_and_keeps_every_attempt(tmp_path: Path, data_mirror: Path):
    damaged = _damaged_mirror(data_mirror, tmp_path)
    workdir = tmp_path / "work"
    result = run_snakemake(
        workdir,
        "--cores",
        "1",
        "--retries",
        "1",
        "results/raw/supplement-fast",
        config={"data_mirror": str(tmp_path / "mirror")},
        check=False,
    )
    assert result.returncode != 0
    terminal = result.stdout + result.stderr
    # the script's message on the terminal, once per attempt, without a Python traceback
    messages = re.findall(r"^fetch_data: error: (.*)$", terminal, re.M)
    assert len(messages) == 2 and "checksum mismatch" in messages[0] and str(damaged) in messages[0]
    assert "Traceback" not in terminal

    log = workdir / "results/logs/fetch_data/supplement-fast.log"
    assert _last_line(log).endswith(f" ERROR fetch_data: {messages[0]}")
    assert "Traceback" not in log.read_text()
    # Snakemake deleted the first attempt's log before the retry; the attempts file kept both
    history = attempts_path(log).read_text()
    assert log.with_name("supplement-fast.attempts.log") == attempts_path(log)
    attempts = HEADER.split(history)
    assert attempts[0] == "" and len(attempts) == 3
    assert all(attempt.rstrip("\n").endswith(messages[0]) for attempt in attempts[1:])
    assert not (workdir / "results/raw/supplement-fast").exists()


def test_failed_training_job_log_ends_with_the_message(tmp_path: Path):
    """The training rules are shell rules (``python -m babyteach.train_job``): a truncated token shard."""
    workdir, clean = tmp_path / "work", tmp_path / "clean"
    corpus = workdir / "results/2024-10M"
    clean.mkdir()
    sentences = ["the cat sat on the mat .", "the dog sat on the rug .", "a bird flew over the house ."]
    (clean / "toy.train").write_text("\n".join(sentences * 40) + "\n")
    (clean / "toy.dev").write_text("\n".join(sentences * 4) + "\n")
    train_tokenizer(clean, corpus / "tokenizer", vocab_size=300)
    write_shards(clean, corpus / "tokenizer", corpus / "shards")
    shard = corpus / "shards/train.tokens.npy"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    config = {
        "model": {"block_size": 16, "teacher": {"layers": 1, "heads": 2, "hidden": 16}},
        "seeds": [0],
        "training": {"epochs": None, "token_budget": 2048, "batch_size": 4, "dev_blocks": 4},
    }
    result = run_snakemake(
        workdir, "--cores", "1", "results/2024-10M/train/baseline/seed-0", config=config, check=False
    )
    assert result.returncode != 0
    assert "rule train_baseline" in result.stdout + result.stderr  # only the training job ran
    (message,) = re.findall(r"^babyteach train: error: (.*)$", result.stdout + result.stderr, re.M)
    assert "results/2024-10M/shards/train.tokens.npy" in message
    log = workdir / "results/logs/2024-10M/train/baseline/seed-0.log"
    assert _last_line(log).endswith(f" ERROR babyteach train: {message}")
    assert "Traceback" not in log.read_text()
    assert HEADER.search(attempts_path(log).read_text())


def test_an_unexpected_error_ends_the_log_with_its_traceback_and_propagates(tmp_path: Path, capsys):
    log = tmp_path / "logs/job.log"
    with pytest.raises(ZeroDivisionError), job_logging(log, "some_rule"):
        logging.getLogger("babyteach.test").info("working")
        _ = 1 / 0
    text = log.read_text()
    assert "INFO babyteach.test: working" in text
    assert "ERROR some_rule: failed: ZeroDivisionError: division by zero\nTraceback" in text
    assert _last_line(log) == "ZeroDivisionError: division by zero"
    assert capsys.readouterr().err == ""  # the traceback reaches the terminal as the exception propagates


def test_bad_input_returns_its_status_with_the_message_and_no_traceback(tmp_path: Path, capsys):
    log = tmp_path / "job.log"
    with job_logging(log, "babyteach train", {InputError: 2, KeyError: 5}) as outcome:
        raise KeyError("no such key")
    assert outcome.status == 5
    assert _last_line(log).endswith(" ERROR babyteach train: 'no such key'")
    assert capsys.readouterr().err == "babyteach train: error: 'no such key'\n"
    with job_logging(None, "babyteach clean") as outcome:  # no log file: stderr only, once
        raise InputError("corpus/a.train, line 3: not UTF-8")
    assert outcome.status == 2
    assert capsys.readouterr().err == "babyteach clean: error: corpus/a.train, line 3: not UTF-8\n"


def test_the_attempts_file_stays_only_after_a_failed_attempt(tmp_path: Path):
    log = tmp_path / "job.log"
    with job_logging(log, "rule"):
        logging.getLogger("x").info("first try works")
    assert log.is_file() and not attempts_path(log).exists()

    with job_logging(log, "rule"):
        raise InputError("bad file")
    log.unlink()  # as Snakemake does before the next attempt
    with job_logging(log, "rule"):
        logging.getLogger("x").info("second try works")
    history = attempts_path(log).read_text()
    assert len(HEADER.findall(history)) == 2
    assert history.index("ERROR rule: bad file") < history.index("INFO x: second try works")
    assert "bad file" not in log.read_text()
    # the handlers are removed after the block: nothing more reaches either file
    logging.getLogger("x").warning("after the job")
    assert "after the job" not in log.read_text() + attempts_path(log).read_text()
