"""Running the Snakemake workflow from tests: in a temporary working directory, on the mirror."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO


def run_snakemake(
    workdir: Path,
    *args: str,
    config: dict | None = None,
    check: bool = True,
    timeout: float = 900,
    prelude: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``snakemake`` on this repository's Snakefile in ``workdir``.

    ``config`` is written to ``workdir/test-config.yaml`` and passed with ``--configfile``
    (merged over config.yaml), after ``args``: the README's safe order, since ``--configfile``
    takes several values and would read a target after it as one more file. ``prelude`` is Python
    code run in the Snakemake process before Snakemake starts (e.g. registering a toy method).
    Output is captured; with ``check`` a failure raises with it.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    start = ["-m", "snakemake"] if prelude is None else ["-c", f"{prelude}\nfrom snakemake.cli import main\nmain()"]
    command = [sys.executable, *start, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    if config is not None:
        config_file = workdir / "test-config.yaml"
        config_file.write_text(yaml.safe_dump(config))
        command += ["--configfile", str(config_file)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result
