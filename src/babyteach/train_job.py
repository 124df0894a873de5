"""One training job of the workflow, as a command::

    python -m babyteach.train_job SETTINGS JOB [LOG]

The training rules are ``shell:`` rules so that a job can run as several processes: with
``resources: gpu=N`` (N > 1) the rule starts ``torchrun --standalone --nproc_per_node N``
(as ``python -m torch.distributed.run``), every process runs this module, and
:func:`babyteach.train.train` joins the process group. ``training.batch_size`` is the global
batch over all processes, so the optimisation is the same for every GPU count. The arguments
are positional JSON objects, not ``--options``: torchrun's own parser would claim options
that abbreviate its own (e.g. ``--log`` for ``--log-dir``).

``SETTINGS`` is what the config decides about the trained models (the rule's tracked param,
so that a change of it reruns the job)::

    {"method": "dwml", "seed": 0, "block_size": 128, "training": {…config training section…},
     "method_options": {…}, "peers": 4}            # students: the search file's p peers
    {"method": "baseline", "seed": 0, …, "teacher": {"layers": 12, "heads": 12, "hidden": 768}}

``JOB`` is where the job reads and writes, and how often it checkpoints and logs (an untracked
param: a path, a GPU count or a cadence change does not rerun finished jobs)::

    {"shards": DIR, "tokenizer": DIR, "output": DIR, "checkpoint_dir": DIR,
     "search": FILE (students), "teacher_run": DIR (KD, KD_DWML: the baseline run),
     "cadence": {"checkpoint_every": 1000, "log_every": 10, "eval_every": 500}}

The ``cadence`` keys are ``training`` keys (``babyteach.train_config.CADENCE_KEYS``), merged
into the settings' ``training``.

``LOG`` is the log file (default: stderr).

A bad argument or bad input prints ``babyteach train: error: …`` and exits with status 2; a
non-finite loss prints where it happened and exits with status 1. Either message also ends ``LOG``
(:func:`babyteach.logs.job_logging`), without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babyteach.errors import InputError
from babyteach.layout import TEACHER_MODEL
from babyteach.logs import job_logging
from babyteach.models import Architecture
from babyteach.search import students_from_search
from babyteach.train import NonFiniteLossError, TrainConfig, train

#: Keys every SETTINGS object has (``method_options``, ``teacher`` and ``peers`` as the job needs).
SETTINGS_KEYS = ("method", "seed", "training", "block_size")

#: Keys every JOB object has (``search``, ``teacher_run`` and ``cadence`` as the job needs).
JOB_KEYS = ("shards", "tokenizer", "output", "checkpoint_dir")


def parse_object(text: str, what: str, required: tuple[str, ...]) -> dict[str, Any]:
    """One JSON argument (``what``: "settings" or "job") with every ``required`` key present."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise InputError(f"train job {what}: not JSON ({error}); the training rules write it") from error
    if not isinstance(value, dict):
        raise InputError(f"train job {what}: must be a JSON object, got {type(value).__name__}")
    missing = [key for key in required if key not in value]
    if missing:
        raise InputError(f"train job {what}: missing keys {missing}; the training rules write all of {list(required)}")
    return value


def students_of(settings: Mapping[str, Any], search: str | None) -> dict[str, Architecture]:
    """The models a job trains: the searched peers of ``search`` (``settings["peers"]`` of them),
    else the teacher architecture ``settings["teacher"]`` (config key ``model.teacher``)."""
    if search is not None:
        if "peers" not in settings:
            raise InputError("train job: a search file is given but the settings lack 'peers'")
        return students_from_search(search, int(settings["peers"]))
    if "teacher" not in settings:
        raise InputError("train job: give a search file (students) or a 'teacher' architecture in the settings")
    return {TEACHER_MODEL: Architecture.from_mapping(dict(settings["teacher"]), "model.teacher")}


def run_job(settings: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    """Train what ``settings`` and ``job`` describe (in this process, or in each torchrun
    process); the run's summary."""
    teacher_run = job.get("teacher_run")
    training = {**settings["training"], **(job.get("cadence") or {})}
    return train(
        settings["method"],
        students_of(settings, job.get("search")),
        shard_dir=Path(job["shards"]),
        tokenizer_dir=Path(job["tokenizer"]),
        out_dir=Path(job["output"]),
        ckpt_dir=Path(job["checkpoint_dir"]),
        cfg=TrainConfig(**training, block_size=int(settings["block_size"]), seed=int(settings["seed"])),
        teacher_dir=Path(teacher_run) / TEACHER_MODEL if teacher_run else None,
        method_options=dict(settings.get("method_options") or {}),
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one training job; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m babyteach.train_job", description=__doc__.splitlines()[0])
    parser.add_argument("settings", help="what the config decides, one JSON object (module docstring)")
    parser.add_argument("job", help="paths and cadence, one JSON object (module docstring)")
    parser.add_argument("log", nargs="?", default=None, help="log file (default: stderr)")
    args = parser.parse_args(argv)
    # bad input: status 2; a non-finite loss (its message names the step, the model and the checkpoint
    # kept): status 1; either ends the log with its message, without traceback
    with job_logging(args.log, "babyteach train", {InputError: 2, NonFiniteLossError: 1}) as outcome:
        run_job(parse_object(args.settings, "settings", SETTINGS_KEYS), parse_object(args.job, "job", JOB_KEYS))
    return outcome.status


if __name__ == "__main__":
    sys.exit(main())
