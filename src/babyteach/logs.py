"""One logging set-up for every entry point: the rule scripts, the training job and the ``babyteach`` command.

A rule script is one block::

    from babyteach.logs import rule_logging

    with rule_logging(snakemake):  # noqa: F821 (injected by Snakemake)
        from babyteach.acquire import fetch_dataset

        fetch_dataset(...)

:func:`job_logging` (what :func:`rule_logging` wraps) makes a failed job's log say why it failed,
where Snakemake and a SLURM user look ("check log file(s) for error details"):

- Bad input (:class:`~babyteach.errors.InputError`, and what the caller adds to ``expected``)
  ends the log with its message, prints ``<job>: error: <message>`` on stderr without a
  traceback, and exits with status 2: the message names the file or key and what to do.
- Anything else (a bug) ends the log with the traceback (its last line is the exception and its
  message) and is re-raised, so the terminal shows the traceback too.
- Snakemake deletes a job's log before every attempt (``--retries``, the SLURM profile's
  ``retries: 1``), so the log holds the last attempt only. Every attempt is also appended to
  ``<log stem>.attempts<suffix>`` beside it (``seed-0.log`` → ``seed-0.attempts.log``), under a
  header with its start time, host and process; a failed or killed attempt stays there. When an
  attempt succeeds and the file held nothing before it, the file is removed again, so an
  ``*.attempts.log`` marks a job that failed or was killed at least once.

Imports inside the block are covered too: a broken environment (``No module named 'torch'``)
ends the log with the import error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babyteach.errors import InputError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Exit status of a job stopped by bad input (as ``babyteach`` and argparse use).
INPUT_ERROR_STATUS = 2


def log_to(path: str | os.PathLike[str] | None = None) -> None:
    """Send INFO-level logging to ``path`` (a log file), or to stderr when None (once per process).

    Plain set-up without the failure handling: jobs (rule scripts, the training job, the
    ``babyteach`` command) use :func:`rule_logging` / :func:`job_logging` instead."""
    logging.basicConfig(filename=path, level=logging.INFO, format=LOG_FORMAT)


def attempts_path(log_path: str | os.PathLike[str]) -> Path:
    """The file beside a job's log that keeps every attempt: ``seed-0.log`` → ``seed-0.attempts.log``."""
    path = Path(log_path)
    return path.with_name(f"{path.stem}.attempts{path.suffix}")


def _is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain process: the one that writes the attempt header."""
    return os.environ.get("RANK", "0") == "0"


@dataclass
class JobStatus:
    """The outcome of a :func:`job_logging` block: 0, or the exit status of the expected error it stopped."""

    status: int = 0


@contextlib.contextmanager
def job_logging(
    log_path: str | os.PathLike[str] | None,
    job: str,
    expected: Mapping[type[BaseException], int] | None = None,
) -> Iterator[JobStatus]:
    """Log INFO and above to ``log_path`` (stderr when None) for the block; a failure ends the log with its reason.

    ``job`` names the job in messages (a rule name, ``babyteach train``). An exception of a type in
    ``expected`` (default ``{InputError: 2}``; a subclass matches) is bad input or a known stop:
    its message ends the log and goes to stderr as ``<job>: error: <message>``, without traceback,
    the block's exception is swallowed and the yielded :class:`JobStatus` holds the exit status to
    return. Any other exception ends the log with its traceback and propagates. See the module
    docstring for the ``.attempts`` file beside the log.
    """
    expected = {InputError: INPUT_ERROR_STATUS} if expected is None else dict(expected)
    root = logging.getLogger()
    handlers: list[logging.Handler] = []
    history: Path | None = None
    history_was_empty = False
    if log_path is None:
        handlers.append(logging.StreamHandler(sys.stderr))
    else:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="a", encoding="utf-8"))
        history = attempts_path(log_path)
        history_was_empty = not history.exists() or history.stat().st_size == 0
        if _is_main_process():
            with open(history, "a", encoding="utf-8") as f:
                f.write(
                    f"===== attempt started {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()}, "
                    f"pid {os.getpid()} (its log: {Path(log_path).name}) =====\n"
                )
        handlers.append(logging.FileHandler(history, mode="a", encoding="utf-8"))
    formatter = logging.Formatter(LOG_FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    level = root.level
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    outcome = JobStatus()
    log = logging.getLogger(job)
    try:
        yield outcome
    except BaseException as error:
        status = next((code for kind, code in expected.items() if isinstance(error, kind)), None)
        if status is None:
            if isinstance(error, Exception):  # not SystemExit / KeyboardInterrupt: a bug or a fault
                log.error("failed: %s: %s", type(error).__name__, error, exc_info=error)
            raise
        outcome.status = status
        if log_path is not None:
            log.error("%s", error)
        print(f"{job}: error: {error}", file=sys.stderr)
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    if outcome.status == 0 and history is not None and history_was_empty and _is_main_process():
        history.unlink(missing_ok=True)  # a first attempt that succeeded leaves no history


@contextlib.contextmanager
def rule_logging(smk: Any) -> Iterator[None]:
    """:func:`job_logging` for a rule script: ``smk`` is the ``snakemake`` object (its ``log[0]`` and
    ``rule``); bad input exits with status 2 after its message is logged, without traceback."""
    with job_logging(smk.log[0] if smk.log else None, smk.rule) as outcome:
        yield
    if outcome.status:
        sys.exit(outcome.status)
