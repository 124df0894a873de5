"""The exception types for problems the user can fix.

Every problem a user can fix (a wrong config value, a corrupt file, a missing dataset)
raises :class:`InputError` with a message that names the file, line or config key and
says what to do. Entry points (rule scripts, the training job, the ``babyteach`` command:
:func:`babyteach.logs.job_logging`) print it without a traceback and end the job's log with it.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input the user can fix; the message says where and how."""


class WriteError(InputError):
    """An output could not be written (a full disk, a quota, no permission, a read-only file system).

    Raised by the atomic writers of :mod:`babyteach.io`, so the file it names was left as it was
    before (or not created); the message names the file and what to do. ``path`` is that file,
    ``error`` the operating system's error.
    """

    def __init__(self, message: str, path: Path, error: OSError) -> None:
        super().__init__(message)
        self.path = path
        self.error = error
