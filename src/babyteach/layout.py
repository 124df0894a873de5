"""Where a configuration's files live: one results root per configuration (config key ``results_dir``).

Every file the workflow writes for one configuration lies under its root, so two configurations
with different roots (``config.yaml``: ``results``, ``config/demo.yaml``: ``results-demo``) never
replan or overwrite each other's outputs, and deleting the root removes one configuration's work::

    <root>/raw/<dataset>/               fetched datasets
    <root>/<corpus>/...                 cleaned corpus, tokenizer, shards, trained runs, evaluation
    <root>/search/, tables/, figures/, probe/
    <root>/checkpoints/<path>/          resumable trainer state of the run folder <root>/<path>
    <root>/logs/, <root>/benchmarks/    every job's log and timing

Torch-free: the workflow reads it at start-up.
"""

from __future__ import annotations

import posixpath
from pathlib import PurePosixPath

from babyteach.errors import InputError

#: Folder of the resumable trainer state under a results root (outside every declared output,
#: because Snakemake deletes a failed job's outputs and the state must survive them).
CHECKPOINTS = "checkpoints"


def results_root(value: str) -> str:
    """The normalised results root of config key ``results_dir`` (relative to the working directory
    or absolute), e.g. ``"./results/"`` → ``"results"``.

    Snakemake matches output paths as strings, so every path is built from this one spelling. An
    empty value, the working directory itself (``.``, which would mix outputs with the working
    directory's own files) and braces (read as wildcards) raise :class:`InputError`.
    """
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"results_dir: {value!r} is not a folder name; use e.g. `results_dir: results`")
    if "{" in value or "}" in value:
        raise InputError(f"results_dir: {value!r} contains a brace, which Snakemake reads as a wildcard; rename it")
    root = posixpath.normpath(value.strip())
    if root == ".":
        raise InputError(
            f"results_dir: {value!r} is the working directory itself; name a folder under it, e.g. `results_dir: results`"
        )
    return root


def checkpoint_dir(root: str, run_dir: str) -> str:
    """The checkpoint folder of the run folder ``run_dir`` (a path under ``root``):
    ``<root>/checkpoints/<run_dir relative to root>``."""
    relative = PurePosixPath(run_dir).relative_to(root)
    return str(PurePosixPath(root) / CHECKPOINTS / relative)
