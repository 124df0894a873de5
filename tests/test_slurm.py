"""The SLURM profile: with the executor plugin installed, a job is submitted with the profile's
partition and account and the rule's GPU, memory and CPUs (fake sbatch; no cluster needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

FAKE_SBATCH = """#!/bin/sh
echo "$@" >> "{log}"
echo 4242
"""
FAKE_SACCTMGR = """#!/bin/sh
echo YOUR_ACCOUNT
"""


def uncommented_profile(folder: Path) -> Path:
    """A copy of the SLURM profile with its commented several-GPU example switched on."""
    text = (REPO / "workflow/profiles/slurm/config.yaml").read_text()
    example = text[text.index("# set-resources:") :]
    folder.mkdir()
    (folder / "config.yaml").write_text(text.replace(example, example.replace("# ", "")))
    return folder


@pytest.mark.parametrize(("several_gpus", "gpus", "cpus"), [(False, 1, 2), (True, 4, 8)])
def test_slurm_profile_submits_a_training_job_with_its_resources(
    tmp_path: Path, several_gpus: bool, gpus: int, cpus: int
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch-args.txt"
    for name, text in (("sbatch", FAKE_SBATCH.format(log=log)), ("sacctmgr", FAKE_SACCTMGR)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    work = tmp_path / "work"
    for folder in ("shards", "tokenizer"):  # the training job's inputs exist: it is submitted at once
        (work / "results/2024-10M" / folder).mkdir(parents=True)
    profile = uncommented_profile(tmp_path / "profile") if several_gpus else REPO / "workflow/profiles/slurm"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(work),
        "--profile",
        str(profile),
        "results/2024-10M/train/baseline/seed-0",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    deadline = time.monotonic() + 120
    try:
        for line in process.stdout:  # wait for the submission, then stop (no cluster to wait for)
            output.append(line)
            if "submitted with SLURM jobid 4242" in line or time.monotonic() > deadline:
                break
    finally:
        process.kill()
        process.wait()
    assert log.is_file(), "".join(output)
    args = log.read_text().split()
    assert args[args.index("-p") + 1] == "YOUR_PARTITION" and args[args.index("-A") + 1] == "YOUR_ACCOUNT"
    assert f"--gpus={gpus}" in args and args[args.index("--mem") + 1] == "16000" and f"--cpus-per-task={cpus}" in args
    assert not any("gres" in a for a in args)
