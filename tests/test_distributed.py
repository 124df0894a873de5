"""Data-parallel training: 2 processes (torchrun, gloo on CPU) give a single process's result."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from conftest import REPO
from ddp_worker import train_all
from train_helpers import parameters_of, read_metrics

#: Tolerance: the processes sum per-process partial means instead of one mean over the whole
#: batch, so float32 rounding differs in the last bits and Adam carries it over 6 steps.
ATOL, RTOL = 2e-5, 1e-4


def test_two_processes_equal_one_process_with_the_same_global_batch(data, tmp_path):
    shards, tokenizer = data
    train_all(shards, tokenizer, tmp_path / "single")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(REPO / "tests" / "ddp_worker.py"),
            str(shards),
            str(tokenizer),
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    # the baseline with gradient accumulation: the same weights and logged losses
    single, ddp = tmp_path / "single" / "baseline" / "out", tmp_path / "ddp" / "baseline" / "out"
    for name in ("a", "b"):
        a, b = parameters_of(single, name), parameters_of(ddp, name)
        for key in a:
            torch.testing.assert_close(b[key], a[key], atol=ATOL, rtol=RTOL, msg=f"{name}/{key}")
    for line_single, line_ddp in zip(read_metrics(single), read_metrics(ddp), strict=True):
        assert line_single["loss"].keys() == line_ddp["loss"].keys()
        for name, value in line_single["loss"].items():
            assert abs(line_ddp["loss"][name] - value) <= 1e-5 * abs(value), line_single["step"]
    # DWML: the first step (before any outer step) is the single process's
    first_single = read_metrics(tmp_path / "single" / "dwml" / "out")[0]["loss"]
    first_ddp = read_metrics(tmp_path / "ddp" / "dwml" / "out")[0]["loss"]
    assert first_ddp == {name: pytest.approx(value, rel=1e-5) for name, value in first_single.items()}
    # DWML: the processes average their hypergradients on their halves of the batches, so ω
    # follows the single process's closely (not exactly: g is not linear in the batch)
    omega_single = pd.read_csv(tmp_path / "single" / "dwml" / "out" / "peer_weights.csv")
    omega_ddp = pd.read_csv(tmp_path / "ddp" / "dwml" / "out" / "peer_weights.csv")
    assert len(omega_ddp) == len(omega_single) == 4
    assert (omega_ddp["weight.a"] - omega_single["weight.a"]).abs().max() < 0.05
    assert not (tmp_path / "ddp" / "baseline" / "out.tmp").exists()
