"""Faults under Snakemake: a training job killed with SIGKILL resumes from its checkpoint when
the same command is rerun with --rerun-incomplete, and ends with the uninterrupted run's weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM

from conftest import REPO
from workflow_helpers import run_snakemake

CONFIG = {
    "corpus": {"max_lines_per_file": 200},
    "tokenizer": {"vocab_size": 400},
    "model": {"block_size": 128, "teacher": {"layers": 2, "heads": 2, "hidden": 32}},
    "evaluation_data": ["blimp-fast"],
    "seeds": [0],
    "training": {
        "epochs": None,
        "token_budget": 200 * 4 * 128,
        "batch_size": 4,
        "lr": 0.002,
        "checkpoint_every": 10,
        "log_every": 10,
        "dev_blocks": 4,
    },
}
TARGET = "results/2024-10M/train/baseline/seed-0"


def weights(workdir: Path) -> dict[str, torch.Tensor]:
    return dict(AutoModelForMaskedLM.from_pretrained(workdir / TARGET / "teacher").named_parameters())


def test_killed_training_job_resumes_from_its_checkpoint(tmp_path: Path, data_mirror: Path):
    config = {**CONFIG, "data_mirror": str(data_mirror)}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run_snakemake(whole, "--cores", "1", TARGET, config=config)

    run_snakemake(killed, "--cores", "1", "results/2024-10M/shards", "results/2024-10M/tokenizer", config=config)
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(killed),
        "--configfile",
        str(killed / "test-config.yaml"),
        "--cores",
        "1",
        TARGET,
    ]
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = killed / "results/checkpoints/2024-10M/train/baseline/seed-0"
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("run-*/checkpoint.pt")) and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)  # Snakemake and the training job, mid-run
    job.wait()
    assert list(checkpoints.glob("run-*/checkpoint.pt")), "no checkpoint was written before the kill"
    assert not (killed / TARGET).exists()

    # a killed Snakemake leaves its lock: unlock, then the same command (--rerun-incomplete)
    run_snakemake(killed, "--unlock", config=config)
    run_snakemake(killed, "--cores", "1", "--rerun-incomplete", TARGET, config=config)
    log = (killed / "results/logs/2024-10M/train/baseline/seed-0.log").read_text()
    resumed_at = int(log.split("resumed from", 1)[1].split(" at step ", 1)[1].split()[0])
    assert 10 <= resumed_at < 200, log[-2000:]
    a, b = weights(whole), weights(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)
