"""One logging set-up for every entry point (rule scripts and the ``babyteach`` command)."""

from __future__ import annotations

import logging
import os

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to(path: str | os.PathLike[str] | None = None) -> None:
    """Send INFO-level logging to ``path`` (a rule's ``log:`` file), or to stderr when None."""
    logging.basicConfig(filename=path, level=logging.INFO, format=LOG_FORMAT)
