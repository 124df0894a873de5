"""The SLURM profile: with the executor plugin installed, a job is submitted with the profile's
partition and account and the rule's GPU, memory and CPUs (fake sbatch; no cluster needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO

FAKE_SBATCH = """#!/bin/sh
echo "$@" >> "{log}"
echo 4242
"""
FAKE_SACCTMGR = """#!/bin/sh
echo YOUR_ACCOUNT
"""


def test_slurm_profile_submits_a_training_job_with_its_resources(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch-args.txt"
    for name, text in (("sbatch", FAKE_SBATCH.format(log=log)), ("sacctmgr", FAKE_SACCTMGR)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    work = tmp_path / "work"
    for folder in ("shards", "tokenizer"):  # the training job's inputs exist: it is submitted at once
        (work / "results/2024-10M" / folder).mkdir(parents=True)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
               "--profile", str(REPO / "workflow/profiles/slurm"), "results/2024-10M/train/baseline/seed-0"]
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
    assert "--gpus=1" in args and args[args.index("--mem") + 1] == "16000" and "--cpus-per-task=2" in args
    assert not any("gres" in a for a in args)
