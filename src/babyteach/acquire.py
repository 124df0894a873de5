"""Fetch a registry dataset and read it the way the workflow will, before the folder appears.

:func:`fetch_dataset` fetches with :func:`babyteach.data.fetch.fetch` and runs
:func:`validate_dataset` on the staged folder, so
a damaged file (a jsonl line without ``sentence_bad``, an EWoK zip that is not one, a corpus file
that is not UTF-8) stops the fetch naming the file and line, instead of the evaluation hours later.
Each kind of dataset is read with the parser of the code that reads it later (one place per fact):

* minimal-pair families (BLiMP, supplement, EWoK): :func:`babyteach.evaluate.pairs.load_pairs`,
  every line of every task, EWoK zips opened with their password and read in memory only (the
  pair reader is torch-free: a fetch job does not load the scoring engine);
* ``glue-filtered``: :func:`babyteach.evaluate.glue.load_examples` on every ``<task>.<split>.jsonl``
  of a known task (fields and label range included);
* BabyLM corpora: :func:`babyteach.data.clean.read_text` on every ``<domain>.<split>`` file (UTF-8
  unless ``corpus.on_decode_error`` is ``replace``, not empty).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babyteach.data.fetch import fetch
from babyteach.data.registry import DATASETS, GLUE_DATASET
from babyteach.errors import InputError
from babyteach.evaluate.families import FAMILIES


def validate_dataset(name: str, folder: Path, on_decode_error: str | None = None) -> None:
    """Read every file of registry dataset ``name`` in ``folder`` with its loader's parser.

    Raises the loader's :class:`InputError` (file and line) for the first bad file. ``on_decode_error``
    is ``corpus.on_decode_error`` for corpora (None: ``strict``); other datasets ignore it.
    """
    folder = Path(folder)
    if name in FAMILIES:
        from babyteach.evaluate.pairs import load_pairs

        load_pairs(name, folder)
    elif name == GLUE_DATASET:
        _validate_glue(folder)
    elif name.startswith("babylm-"):
        from babyteach.data.clean import read_text

        for spec in DATASETS[name].files:
            read_text(folder / spec.path, on_decode_error or "strict")
    else:
        raise ValueError(f"dataset {name!r} has no validator; add one to babyteach.acquire")


def _validate_glue(folder: Path) -> None:
    """Every ``<task>.<split>.jsonl`` of a task the fine-tuning knows parses with its fields and labels."""
    from babyteach.evaluate.glue import load_examples
    from babyteach.evaluate.glue_tasks import TASKS

    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise InputError(f"{folder}: no <task>.<split>.jsonl files")
    for path in files:
        task = path.name.split(".", 1)[0]
        if task in TASKS:
            load_examples(TASKS[task], path)


def fetch_dataset(
    name: str, dest: Path, mirror: Path | None, *, on_decode_error: str | None = None, **fetch_options: Any
) -> None:
    """Fetch registry dataset ``name`` into the folder ``dest`` (from ``mirror`` if given, else its URLs).

    Every file is read as the workflow will read it (:func:`validate_dataset`;
    ``on_decode_error`` is ``corpus.on_decode_error`` for corpora) before ``dest`` appears: a bad
    file stops the fetch naming its source file and line, and nothing is written.
    ``fetch_options`` (``retries``, ``timeout_s``, ...) go to :func:`babyteach.data.fetch.fetch`,
    which holds their defaults.
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")

    def check(folder: Path) -> None:
        validate_dataset(name, folder, on_decode_error)

    fetch(DATASETS[name], Path(dest), mirror, check=check, **fetch_options)
