"""The minimal pairs of a benchmark family (BLiMP, BLiMP supplement, EWoK): read from a fetched
dataset folder, and counted right or wrong once scored.

Every benchmark family is described once, as data, in
:data:`babyteach.evaluate.families.FAMILIES`: where its pairs live in a fetched dataset folder,
which fields hold the good and bad sentence, the optional context and the group.
:func:`load_pairs` reads every task of a family (EWoK zips opened with their password, in memory
only) and stops at a malformed line naming its file and line; :func:`aggregate` turns scored pairs
into accuracies, a tie counted as its scoring variant says (:mod:`babyteach.evaluate.variants`)::

    from babyteach.evaluate.pairs import load_pairs
    pairs = load_pairs("blimp-fast", Path("results/raw/blimp-fast"))

Torch-free: a fetch reads every pair with :func:`load_pairs` before the dataset's folder appears
(:mod:`babyteach.acquire`) without loading the scoring engine
(:mod:`babyteach.evaluate.scoring`); :mod:`babyteach.evaluate.zero_shot` puts the two together.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from babyteach.data.registry import open_ewok_zip
from babyteach.errors import InputError
from babyteach.evaluate.families import FAMILIES, Family
from babyteach.evaluate.variants import STRICT, select_variants
from babyteach.io import json_object_line


@dataclass(frozen=True)
class Pair:
    """One minimal pair: ``good`` should score higher than ``bad``, both after ``prefix``."""

    task: str  # BLiMP UID, supplement task or EWoK domain file
    group: str  # linguistics_term, EWoK Domain, or the task where the family has none
    good: str
    bad: str
    prefix: str = ""  # context prepended to both (EWoK Context1), never scored
    line: int = 0  # 1-based line in the task's file (for messages and per-item output)


def load_pairs(family: str, folder: Path, max_per_task: int | None = None) -> list[Pair]:
    """The pairs of ``family`` in the fetched dataset ``folder``, task by task, in file order.

    ``max_per_task`` keeps the first N pairs of each task (None: all). Sentences are kept
    verbatim (supplement dialogues keep their newlines). A malformed line raises
    :class:`InputError` naming the file and line.
    """
    spec = _family(family)
    if max_per_task is not None and max_per_task < 1:
        raise InputError(f"max_per_task must be a positive integer or null, got {max_per_task}")
    pairs: list[Pair] = []
    for task, where, data in _task_files(spec, Path(folder)):
        count = 0
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if max_per_task is not None and count >= max_per_task:
                break
            if not raw.strip():
                continue
            pairs.append(_parse(spec, task, where, number, raw))
            count += 1
        if count == 0:
            raise InputError(f"{where}: no pairs; re-fetch dataset {family!r} (the file is empty)")
    return pairs


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise InputError(f"unknown benchmark family {name!r}; valid names: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def _task_files(spec: Family, folder: Path) -> Iterator[tuple[str, str, bytes]]:
    """``(task, where, bytes)`` for every task of ``spec``; ``where`` names the file in messages."""
    if spec.archive is None:
        for task in spec.tasks:
            path = folder / f"{task}.jsonl"
            if not path.is_file():
                raise InputError(f"{path}: task file missing; fetch dataset {spec.name!r} into {folder}")
            yield task, str(path), path.read_bytes()
        return
    path = folder / spec.archive
    if not path.is_file():
        raise InputError(f"{path}: archive missing; fetch dataset {spec.name!r} into {folder}")
    try:
        archive = open_ewok_zip(path) if spec.encrypted else zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise InputError(f"{path}: not a readable zip ({err}); re-fetch dataset {spec.name!r}") from None
    with archive:
        members: dict[str, list[str]] = {}
        for name in archive.namelist():
            member = PurePosixPath(name)
            if "__MACOSX" in member.parts or member.name.startswith(".") or member.suffix != ".jsonl":
                continue
            members.setdefault(member.stem, []).append(name)
        for task in spec.tasks:
            found = members.get(task, [])
            if len(found) != 1:
                problem = "has no member" if not found else f"has {len(found)} members"
                raise InputError(f"{path} {problem} '{task}.jsonl'; re-fetch dataset {spec.name!r}")
            # Read in memory only: EWoK must never be written out in plain text.
            try:
                data = archive.read(found[0])
            except RuntimeError as err:  # zipfile's "Bad password" / "password required"
                raise InputError(
                    f"{path}: cannot decrypt '{found[0]}' ({err}); the zip is not BabyLM's EWoK release with its "
                    f"published password; re-fetch dataset {spec.name!r}"
                ) from None
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:  # bad CRC, cut-off data
                raise InputError(
                    f"{path}: member '{found[0]}' is damaged ({err}); re-fetch dataset {spec.name!r}"
                ) from None
            yield task, f"{path}:{found[0]}", data


def _parse(spec: Family, task: str, where: str, number: int, raw: bytes) -> Pair:
    row = json_object_line(raw, f"{where}, line {number}", "re-fetch the dataset")
    fields = [spec.good, spec.bad] + [f for f in (spec.prefix, spec.group) if f]
    for name in fields:
        if not isinstance(row.get(name), str):
            raise InputError(
                f"{where}, line {number}: field {name!r} missing or not a string; "
                f"family {spec.name!r} needs {fields}; re-fetch the dataset"
            )
    return Pair(
        task=task,
        group=row[spec.group] if spec.group else task,
        good=row[spec.good],
        bad=row[spec.bad],
        prefix=row[spec.prefix] if spec.prefix else "",
        line=number,
    )


# --- aggregation -------------------------------------------------------------------------------


def aggregate(records: Iterable[Mapping], variant: str = STRICT) -> dict:
    """Accuracy numbers of scored pairs (each a mapping with ``task``, ``group``, ``good``, ``bad``).

    Whether a pair is correct is ``variant``'s rule (:meth:`~babyteach.evaluate.variants.Variant.prefers_good`): strictly
    ``good > bad`` for ``pll``/``pll-word-l2r``, where a tie (``good == bad``) is wrong; lm-eval's
    ``argmax`` for ``official``, where a tie is correct. Ties are reported either way. Returns
    ``n_pairs``, ``correct``, ``ties``, ``accuracy`` (over all pairs), ``macro_accuracy`` (mean of
    the per-task accuracies: the BabyLM aggregate), and ``tasks`` / ``groups``: per name
    ``{n, correct, ties, accuracy}``. Accuracies are fractions in [0, 1].
    """
    prefers_good = select_variants([variant])[0].prefers_good
    tasks: dict[str, dict[str, int]] = {}
    groups: dict[str, dict[str, int]] = {}
    for record in records:
        good, bad = float(record["good"]), float(record["bad"])
        for table, key in ((tasks, record["task"]), (groups, record["group"])):
            counts = table.setdefault(key, {"n": 0, "correct": 0, "ties": 0})
            counts["n"] += 1
            counts["correct"] += int(prefers_good(good, bad))
            counts["ties"] += int(good == bad)
    if not tasks:
        raise InputError("no scored pairs to aggregate")

    def finish(table: dict[str, dict[str, int]]) -> dict[str, dict]:
        return {k: {**v, "accuracy": v["correct"] / v["n"]} for k, v in sorted(table.items())}

    task_table = finish(tasks)
    n = sum(v["n"] for v in task_table.values())
    correct = sum(v["correct"] for v in task_table.values())
    return {
        "n_pairs": n,
        "correct": correct,
        "ties": sum(v["ties"] for v in task_table.values()),
        "accuracy": correct / n,
        "macro_accuracy": sum(v["accuracy"] for v in task_table.values()) / len(task_table),
        "tasks": task_table,
        "groups": finish(groups),
    }
