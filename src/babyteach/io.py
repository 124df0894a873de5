"""File helpers shared by the package: atomic output and one checked JSON reader.

Atomic output: a killed job never leaves a half-written file that looks complete. Every
writer in the package goes through these helpers: data is written to a temporary sibling
(same directory, so ``os.replace`` is an atomic rename on POSIX) and renamed into place only
after it has been flushed and fsynced.

Write failures: a full disk, a used-up quota, a read-only file system or a folder without write
permission, met anywhere in an atomic write (creating the temporary, writing it, fsync, rename),
raises one :class:`~babyteach.errors.WriteError` that names the file (the final path, not the
temporary) and what to do; the temporary is removed and the previous file stays as it was. The
libraries report such a failure in their own ways, all recognised (:func:`os_error_of`): Python
raises ``OSError``; ``torch.save`` into a Python file raises ``RuntimeError`` while handling the
file's ``OSError``; safetensors (Rust) raises ``SafetensorError`` with ``(os error 28)`` in its text.

Checked input: :func:`read_json` turns every way a JSON file can be bad (missing, not UTF-8,
truncated, not an object) into an :class:`~babyteach.errors.InputError` naming the file,
:func:`json_object_line` does the same for one line of a jsonl file, and :func:`load_pretrained` for
a damaged file of a saved model folder (``from_pretrained``; training reads its teacher with it, the
evaluations their models).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babyteach.errors import InputError, WriteError

#: Errors that mean the file system cannot take the data, whichever file the error names.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})

#: How the operating system's error reads in a Rust library's message (safetensors: "(os error 28)").
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def os_error_of(error: BaseException) -> OSError | None:
    """The operating system's error behind ``error``: itself, the first ``OSError`` in its chain of
    causes and contexts, or one rebuilt from a Rust library's "(os error N)" text; None if there is none."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, WriteError):
            return current.error
        if isinstance(current, OSError):
            return current
        match = _RUST_OS_ERROR.search(str(current))
        if match:
            code = int(match.group(1))
            return OSError(code, os.strerror(code))
        current = current.__cause__ or current.__context__
    return None


def _within(path: str | os.PathLike[str] | None, folder: Path) -> bool:
    return path is not None and (Path(path) == folder or folder in Path(path).parents)


def _existing_folder(path: Path) -> Path:
    """``path``'s nearest ancestor that exists (where the space or the permission is missing)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _at_final_place(name: str | os.PathLike[str], tmp: Path, final: Path) -> Path:
    """Where a file written inside the temporary ``tmp`` ends up: under ``final``."""
    return final / Path(name).relative_to(tmp) if Path(name) != tmp else final


def write_error(
    final: Path, error: OSError, shown: Path | None = None, kept: str | None = None, existed: bool = False
) -> WriteError:
    """The :class:`WriteError` of a failed write of ``final``; ``shown`` is the file named (default ``final``).

    The message names the file, the system's reason and what to do, and says what was kept:
    ``kept`` if given, else that the previous ``final`` is unchanged (``existed``) or that nothing
    was written.
    """
    shown = final if shown is None else shown
    folder = _existing_folder(final)
    code = error.errno
    reason = f"{error.strerror or error} ({errno.errorcode.get(code, code)})" if code else str(error)
    if code == errno.ENOSPC:
        advice = (
            f"the disk that holds {folder} is full: free space there (`df -h {folder}`) or move the output elsewhere"
        )
    elif code == errno.EDQUOT:
        advice = f"your disk quota on {folder} is used up: free space there or move the output elsewhere"
    elif code == errno.EFBIG:
        advice = f"the file is too large for the file system of {folder}: move the output to another file system"
    elif code == errno.EROFS:
        advice = f"{folder} is on a read-only file system: run from a folder you can write"
    elif code in (errno.EACCES, errno.EPERM):
        advice = f"no permission to write in {folder}: make it writable for you or run from a folder you own"
    else:
        advice = f"check that {folder} can be written"
    if kept is None:
        kept = f"the previous {final.name} is unchanged" if existed else f"nothing was written to {final}"
    return WriteError(
        f"{shown}: cannot be written: {reason}. {advice[0].upper()}{advice[1:]}, then run the same "
        f"command again; {kept}",
        Path(shown),
        error,
    )


def _is_write_failure(error: OSError, tmp: Path) -> bool:
    """Whether ``error`` is this write's failure, not a read of some input inside the block."""
    if error.errno in WRITE_ERRNOS:
        return True
    names = (getattr(error, "filename", None), getattr(error, "filename2", None))
    return any(_within(name, tmp) for name in names)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], kept: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it to ``final`` on success.

    The caller writes a file (or a directory) at the yielded path. If the block raises,
    the temporary is removed and ``final`` is left untouched; a write failure (full disk, no
    permission: see the module docstring) becomes a :class:`WriteError` naming the file, with
    ``kept`` (what the user still has, e.g. "the previous checkpoint is unchanged; the run resumes
    from it") at the end of its message.
    """
    final = Path(final)
    existed = final.exists()
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as error:  # an unwritable or full folder
        raise write_error(final, error, kept=kept, existed=existed) from error
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
    except BaseException as error:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(error, WriteError):
            if _within(error.path, tmp):  # a nested atomic write of a file inside this folder
                raise write_error(final, error.error, _at_final_place(error.path, tmp, final), kept, existed) from error
            raise
        failure = os_error_of(error) if isinstance(error, Exception) else None
        if failure is not None and _is_write_failure(failure, tmp):
            names = [getattr(failure, key, None) for key in ("filename2", "filename")]
            inside = [_at_final_place(name, tmp, final) for name in names if _within(name, tmp)]
            raise write_error(final, failure, inside[0] if inside else final, kept, existed) from error
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


#: Weight files ``save_pretrained`` writes (one file, or an index of shards).
WEIGHT_FILES: tuple[str, ...] = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def load_pretrained(loader, folder: Path, what: str = "weights", **kwargs):
    """``loader.from_pretrained(folder, **kwargs)``; a damaged file in ``folder`` is an :class:`InputError`.

    ``loader`` is a transformers class (``AutoConfig``, ``AutoTokenizer``, ``AutoModel…``);
    ``what`` names the part in the message. Truncated or garbled ``config.json``, tokenizer
    files or weights surface as many exception types (``OSError``, ``ValueError``, safetensors'
    ``SafetensorError``, a bare ``Exception`` from tokenizers), hence the broad catch; the
    original error is kept in the message and as the cause.
    """
    try:
        return loader.from_pretrained(folder, **kwargs)
    except Exception as err:
        raise InputError(
            f"{folder}: the saved {what} cannot be loaded ({type(err).__name__}: {err}); a file in the folder is "
            "truncated or damaged: save or copy the model there again (rerun its training step)"
        ) from err
