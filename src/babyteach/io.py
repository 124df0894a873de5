"""File helpers shared by the package: atomic output and one checked JSON reader.

Atomic output: a killed job never leaves a half-written file that looks complete. Every
writer in the package goes through these helpers: data is written to a temporary sibling
(same directory, so ``os.replace`` is an atomic rename on POSIX) and renamed into place only
after it has been flushed and fsynced.

Checked input: :func:`read_json` turns every way a JSON file can be bad (missing, not UTF-8,
truncated, not an object) into an :class:`~babyteach.errors.InputError` naming the file, and
:func:`json_object_line` does the same for one line of a jsonl file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babyteach.errors import InputError


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it to ``final`` on success.

    The caller writes a file (or a directory) at the yielded path. If the block raises,
    the temporary is removed and ``final`` is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    tmp.unlink()  # the caller creates it, as a file or a directory
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike[str], fix: str, missing: str | None = None) -> dict[str, Any]:
    """The JSON object stored in ``path``.

    A file that is missing, unreadable (e.g. a folder), not UTF-8, not valid JSON (a truncated
    file: the message gives the line and column) or not a JSON object raises
    :class:`InputError` naming it and ending with ``fix`` (what to do). ``missing`` replaces the
    whole message after the path for a missing file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: {missing or 'file not found; ' + fix}") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not valid JSON (byte {err.start} is not UTF-8: {err.reason}); {fix}") from None
    except OSError as err:  # a folder, no permission
        raise InputError(f"{path}: cannot be read ({err.strerror}); {fix}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err}); {fix}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(data).__name__}; {fix}")
    return data


def json_object_line(raw: bytes | str, where: str, fix: str) -> dict[str, Any]:
    """The JSON object on one jsonl line; ``where`` names file and line in the error (``"<path>, line 3"``).

    A line that is not UTF-8 or not valid JSON (e.g. a file cut off mid-line) raises
    :class:`InputError` ending with ``fix``; a JSON value that is not an object raises one too.
    """
    try:
        row = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{where}: not valid JSON ({err}); {fix}") from None
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row
