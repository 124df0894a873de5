"""The figures' shared handling of their inputs: path lists (a run folder standing for a file in it),
missing files, the one value a figure's inputs must share, and mean ± sample std over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from babyteach.errors import InputError

Paths = Sequence[str | PathLike[str]]


def _as_paths(paths: Paths, filename: str | None = None) -> list[Path]:
    """``paths`` (one path or several) as a list of Paths, without repeats.

    With ``filename``, a path that is a directory (a run folder: the training rules' ``directory()``
    output, which is what a Snakemake rule can depend on) stands for ``<folder>/<filename>``.
    """
    if isinstance(paths, str | PathLike):
        paths = [paths]
    out = [Path(p) for p in paths]
    if filename is not None:
        out = [p / filename if p.is_dir() else p for p in out]
    return list(dict.fromkeys(out))


def _need_inputs(figure: str, name: str, paths: Paths, pattern: str, filename: str | None = None) -> list[Path]:
    """The paths of input ``name`` as a list (see :func:`_as_paths`); InputError naming the figure if none."""
    paths = _as_paths(paths, filename)
    if not paths:
        raise InputError(f"{figure}: no input files given for {name!r} (expected {pattern}); nothing to plot")
    return paths


def _split_missing(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    present = [p for p in paths if p.exists()]
    return present, [p for p in paths if not p.exists()]


def _one(figure: str, values: Sequence[Any], what: str, hint: str) -> Any:
    """The single distinct value of ``values``; InputError naming the figure if there are several."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) != 1:
        shown = ", ".join(
            "none"
            if v is None or (isinstance(v, float) and math.isnan(v))
            else f"{v:g}"
            if isinstance(v, float)
            else str(v)
            for v in distinct
        )
        raise InputError(f"{figure}: the inputs mix {what} ({shown}); {hint}")
    return distinct[0]


def _mean_std(columns: Mapping[Any, pd.Series]) -> tuple[pd.DataFrame, int]:
    """Mean, sample std (ddof=1, NaN for one column) and count over aligned series (inner join on index).

    Returns the frame (index: the common x values; columns mean, std, n) and how many x values
    were dropped because not every series has them.
    """
    joined = pd.concat(dict(columns), axis=1, join="inner").sort_index()
    union = set().union(*(s.index for s in columns.values()))
    out = pd.DataFrame(
        {
            "mean": joined.mean(axis=1),
            "std": joined.std(axis=1, ddof=1) if joined.shape[1] > 1 else np.nan,
            "n": joined.shape[1],
        }
    )
    return out, len(union) - len(joined)


def _column_mean_std(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean and sample std (ddof=1) of each column; NaN where a column has too few values."""
    n = np.isfinite(table).sum(axis=0)
    total = np.where(np.isfinite(table), table, 0.0).sum(axis=0)
    mean = np.divide(total, n, out=np.full(table.shape[1], np.nan), where=n > 0)
    squares = np.where(np.isfinite(table), (table - mean) ** 2, 0.0).sum(axis=0)
    std = np.sqrt(np.divide(squares, n - 1, out=np.full(table.shape[1], np.nan), where=n > 1))
    return mean, std
