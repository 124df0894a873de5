"""Which runs a table shows and which it expects: the eval files of its benchmarks, one peer count and
alpha, the seeds, a missing row for every expected result without a file, the best peer, and the
caption and notes that say how many seeds and which files are missing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path, PurePath
from typing import Any

import pandas as pd

from babyteach import layout
from babyteach.errors import InputError
from babyteach.evaluate.variants import STRICT
from babyteach.report.frames import check_consistent, eval_frame
from babyteach.report.runs import BENCHMARKS, METHOD_LABELS, MUTUAL_METHODS, RunId, parse_result_path
from babyteach.report.table_model import MISSING, Cell, PathArg, Table

log = logging.getLogger(__name__)

#: Student methods in the order of the paper's tables.
STUDENT_METHODS: tuple[str, ...] = layout.student_methods()
#: Methods trained with the baseline as a frozen teacher.
TEACHER_METHODS = layout.teacher_methods()
#: The family whose file name a missing result of each benchmark is given when no input names one.
DEFAULT_FAMILY = {"blimp": "blimp-filtered", "supplement": "blimp-supplement", "ewok": "ewok-filtered", "glue": "glue"}
#: Notes list at most this many absent files by name (the CSV lists all).
MAX_LISTED = 12


def _paths(paths: PathArg | Iterable[PathArg] | None) -> list[Path]:
    if paths is None:
        return []
    if isinstance(paths, str | PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _results_root(path: PathArg, corpus: str) -> PurePath:
    """The folder above ``<corpus>/{eval,train}`` in ``path`` (``results`` in the workflow)."""
    parts = PurePath(path).parts
    idx = max(i for i, p in enumerate(parts) if p == corpus)
    return PurePath(*parts[:idx]) if idx else PurePath(".")


def _seeds_caption(cells: Iterable[Cell]) -> str:
    counts = {c.n for c in cells if c.text is None and c.n > 0}
    if not counts:
        return "No results."
    if max(counts) == 1:
        return "One seed (n = 1), so no spread is shown."
    if len(counts) == 1:
        return f"Mean ± std over {max(counts)} seeds."
    return f"Mean ± std over {max(counts)} seeds ({min(counts)} where runs are missing, see notes)."


def _missing_note(tables: Iterable[Table] | Table) -> list[str]:
    tables = [tables] if isinstance(tables, Table) else list(tables)
    paths = sorted({m for t in tables for r in t.rows for c in r.cells.values() for m in c.missing})
    if not paths:
        return []
    by_run: dict[str, dict[str, list[str]]] = {}
    for p in paths:
        try:
            rec = parse_result_path(p)
        except InputError:
            by_run.setdefault(str(p), {})
            continue
        models = by_run.setdefault(f"{rec.run.corpus}/{rec.run.name}", {})
        models.setdefault(rec.model or "run", []).append(rec.family or rec.file)
    names = [
        run
        + (" (" + "; ".join(f"{m}: {', '.join(sorted(f))}" for m, f in sorted(models.items())) + ")" if models else "")
        for run, models in by_run.items()
    ]
    listed = "; ".join(names[:MAX_LISTED])
    more = (
        f"; and {len(names) - MAX_LISTED} more runs (all files in the CSV column 'missing')"
        if len(names) > MAX_LISTED
        else ""
    )
    return [
        (
            f"Missing results, shown as {MISSING} and never counted as 0 (a cell with a value but an absent "
            f"seed averages the seeds present): {listed}{more}."
        )
    ]


def _one(values: Iterable[Any], what: str, frame: pd.DataFrame, column: str) -> Any:
    values = list(dict.fromkeys(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))))
    if len(values) > 1:
        a = frame[frame[column] == values[0]].iloc[0]["path"]
        b = frame[frame[column] == values[1]].iloc[0]["path"]
        raise InputError(
            f"the inputs mix {what}s: {a} has {values[0]!r} but {b} has {values[1]!r}; pass one "
            f"{what} per table (option {column!r})"
        )
    return values[0] if values else None


def _eval_inputs(
    paths: Iterable[PathArg], benchmarks: Sequence[str], level: str = "overall", variant: str = STRICT
) -> pd.DataFrame:
    """The eval files of ``benchmarks`` among ``paths``, validated, zero-shot scores of scoring ``variant``,
    one data version per benchmark."""
    frame = eval_frame(_paths(paths), level, variant)
    dropped = frame[~frame["benchmark"].isin(benchmarks)]
    if len(dropped):
        log.info(
            "ignoring %d inputs of other benchmarks (%s)",
            dropped["path"].nunique(),
            ", ".join(sorted(dropped["benchmark"].unique())),
        )
    frame = frame[frame["benchmark"].isin(benchmarks)].reset_index(drop=True)
    check_consistent(frame)
    return frame


def _select_runs(
    frame: pd.DataFrame, peers: int | None, alpha: float | None, methods: Sequence[str]
) -> tuple[pd.DataFrame, int | None, float | None]:
    """Rows of the baseline and of ``methods`` at one peer count and alpha (defaults: largest / only one)."""
    frame = frame[frame["method"].isin(["baseline", *methods])]
    students = frame[frame["method"] != "baseline"]
    if peers is None and len(students):
        peers = int(students["peers"].max())
    if alpha is None:
        mutual = students[students["method"].isin(MUTUAL_METHODS)]
        alpha = _one(mutual["alpha"], "alpha", mutual, "alpha")
    keep = (frame["method"] == "baseline") | (
        (frame["peers"] == peers) & (~frame["method"].isin(MUTUAL_METHODS) | (frame["alpha"] == alpha))
    )
    dropped = frame[~keep.fillna(False).astype(bool)]
    if len(dropped):
        log.info("ignoring %d inputs of other peer counts or alphas", len(dropped))
    kept = frame[keep.fillna(False).astype(bool)].reset_index(drop=True)
    if kept.empty:
        raise InputError(
            f"none of the inputs is a result of the baseline or of {', '.join(methods)} at {peers} peers"
            + (f" and alpha {alpha:g}" if alpha is not None else "")
            + "; check the listed paths"
        )
    return kept, peers, alpha


def _run_id(corpus: str, method: str, peers: int | None, alpha: float | None, seed: int) -> RunId:
    if method == "baseline":
        return RunId(corpus, method, None, None, seed)
    return RunId(corpus, method, peers, alpha if method in MUTUAL_METHODS else None, seed)


def _complete(
    frame: pd.DataFrame,
    corpus: str,
    root: PurePath,
    methods: Sequence[str],
    peers: int | None,
    alpha: float | None,
    seeds: Sequence[int],
    benchmarks: Sequence[str],
) -> pd.DataFrame:
    """``frame`` plus a missing row for every expected (method, model, seed, benchmark) without a result."""
    family = {
        b: _one(frame.loc[frame["benchmark"] == b, "family"], "family", frame, "family") or DEFAULT_FAMILY[b]
        for b in benchmarks
    }
    have = set(zip(frame["method"], frame["model"], frame["seed"].astype(int), frame["benchmark"], strict=True))
    have_ok = set(
        zip(*(frame.loc[frame["status"] == "ok", c] for c in ("method", "model", "seed", "benchmark")), strict=True)
    )
    extra = []
    for method in methods:
        for seed in seeds:
            run = _run_id(corpus, method, peers, alpha, int(seed))
            for model in run.models:
                for bench in benchmarks:
                    key = (method, model, int(seed), bench)
                    if key in have_ok or key in have:
                        continue
                    extra.append(
                        {
                            "path": str(run.eval_path(model, family[bench], root)),
                            "corpus": corpus,
                            "method": method,
                            "peers": run.peers,
                            "alpha": run.alpha,
                            "seed": int(seed),
                            "run": run.name,
                            "group": run.group,
                            "model": model,
                            "family": family[bench],
                            "benchmark": bench,
                            "key": "macro",
                            "score": math.nan,
                            "status": "missing",
                        }
                    )
    if not extra:
        return frame
    return pd.concat([frame, pd.DataFrame(extra).astype({"peers": "Int64", "seed": "Int64"})], ignore_index=True)


def _cell(agg: pd.DataFrame, scale: float = 100.0, **key: Any) -> Cell:
    """The aggregate row matching ``key`` as a cell (values scaled to percent)."""
    mask = pd.Series(True, index=agg.index)
    for column, value in key.items():
        mask &= agg[column] == value
    part = agg[mask]
    if part.empty:
        return Cell()
    row = part.iloc[0]
    return Cell(row["mean"] * scale, row["std"] * scale, int(row["n_seeds"]), None, tuple(row["missing"]))


def _seeds(frame: pd.DataFrame, seeds: Sequence[int] | None) -> list[int]:
    if seeds is not None:
        return [int(s) for s in seeds]
    return sorted({int(s) for s in frame["seed"].dropna()})


def _corpus(frame: pd.DataFrame) -> str:
    return _one(frame["corpus"], "corpus", frame, "corpus")


def _pick_student(
    agg: pd.DataFrame, method: str, models: Sequence[str], student: str, benchmarks: Sequence[str]
) -> tuple[str, str | None]:
    """The peer shown for ``method``: ``student`` itself, or the best mean over ``benchmarks`` ("best")."""
    if student != "best":
        if student not in models:
            raise InputError(f"option student={student!r}: the runs have models {', '.join(models)}")
        return student, None
    scores = {}
    for model in models:
        part = agg[(agg["method"] == method) & (agg["model"] == model) & agg["benchmark"].isin(benchmarks)]
        means = part["mean"].dropna()
        if len(means) == len(benchmarks):
            scores[model] = means.mean()
    if not scores:
        return models[0], None
    best = max(scores, key=lambda m: (scores[m], -models.index(m)))
    return best, f"{METHOD_LABELS[method]}: {best} (highest mean over {', '.join(BENCHMARKS[b] for b in benchmarks)})"
