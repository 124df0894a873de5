"""Result files as tidy pandas frames, and the checks and seed aggregation the tables and figures share.

:func:`eval_frame` turns zero-shot and GLUE results into one row per (model, benchmark[, task]),
:func:`summary_frame` turns ``train_summary.json`` files into one row per trained model;
:func:`check_consistent` refuses frames that mix scoring variants or data versions and
:func:`aggregate_seeds` gives mean ± std over seeds. The files are read and validated by
:mod:`babyteach.report.runs`.

::

    df = eval_frame(paths)                      # one row per file (level="overall"), scoring pll-word-l2r
    df = eval_frame(paths, level="group")       # one row per BLiMP phenomenon / EWoK domain / GLUE task
    df = eval_frame(paths, variant="official")  # the BabyLM 2024 pipeline's scoring of the same files
    check_consistent(df)                        # InputError naming two files that mix variants/data
    agg = aggregate_seeds(df, ["method", "peers", "alpha", "model", "benchmark"])
    # -> mean, std (ddof=1; NaN for one seed), n_seeds, seeds, missing_runs per group

Columns of :func:`eval_frame`: ``path, corpus, method, peers, alpha, seed, run, group,
model, family, benchmark, key, score, n, ties, metric, variant, data_version, status``.
``score`` is a fraction in [0, 1] (GLUE: the task metric, MCC may be negative), ``key`` is
``"macro"`` at ``level="overall"`` (zero-shot: macro accuracy over tasks, the BabyLM 2024
aggregate; GLUE: ``macro_average``), the phenomenon/domain/GLUE task at ``level="group"`` and
the BLiMP UID / supplement task / EWoK domain / GLUE task at ``level="task"``. ``variant`` is
the scoring variant read from each zero-shot file (``eval_frame``'s ``variant``: ``pll-word-l2r``
by default, or ``official``; :mod:`babyteach.evaluate.variants`; GLUE: ``"finetune"`` with the
settings that change numbers), ``data_version`` the dataset folder, result-format version and
subsampling (``max_per_task``; GLUE: examples limits and the tasks included).

Columns of :func:`summary_frame` (one row per run and student): ``path, corpus, method,
peers, alpha, seed, run, group, model, architecture, layers, heads, hidden, parameters,
training_flops, final_dev_loss, peer_weight, steps, tokens, wall_time_s, device,
processes, gpus, gpu_util_mean_pct, gpu_util_max_pct, gpu_mem_peak_mib, gpu_names,
gpu_reason, status``. Fields absent from older summaries (``training_flops``, ``gpu``) are
NaN/None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path, PurePath
from typing import Any

import pandas as pd

from babyteach.config_schema import is_number
from babyteach.errors import InputError
from babyteach.evaluate.variants import STRICT, VARIANTS
from babyteach.report.runs import ResultPath, load_glue, load_summary, load_zero_shot, parse_result_path

# --- tidy frames --------------------------------------------------------------------------------

_RUN_COLUMNS = ["path", "corpus", "method", "peers", "alpha", "seed", "run", "group", "model"]
EVAL_COLUMNS = [
    *_RUN_COLUMNS,
    "family",
    "benchmark",
    "key",
    "score",
    "n",
    "ties",
    "metric",
    "variant",
    "data_version",
    "status",
]


def _run_fields(rec: ResultPath) -> dict[str, Any]:
    r = rec.run
    return {
        "path": str(rec.path),
        "corpus": r.corpus,
        "method": r.method,
        "peers": r.peers,
        "alpha": r.alpha,
        "seed": r.seed,
        "run": r.name,
        "group": r.group,
        "model": rec.model,
    }


def _zero_shot_rows(data: Mapping[str, Any], level: str, variant: str, path: Path) -> list[dict[str, Any]]:
    if variant not in data["variants"]:
        raise InputError(
            f"{path}: scored without the {variant!r} variant (it holds {', '.join(data['variants'])}); "
            "rerun its evaluate_zero_shot step, which scores official and pll-word-l2r"
        )
    numbers = data["variants"][variant]
    limit = data.get("max_per_task")
    version = f"{data['data_dir']} (results v{data['version']}" + (f", max_per_task={limit})" if limit else ")")
    common = {"variant": variant, "data_version": version, "metric": "accuracy", "status": "ok"}
    if level == "overall":
        return [
            {
                "key": "macro",
                "score": float(numbers["macro_accuracy"]),
                "n": numbers.get("n_pairs"),
                "ties": numbers.get("ties"),
                **common,
            }
        ]
    table = numbers["groups"] if level == "group" else numbers["tasks"]
    return [
        {"key": k, "score": float(v["accuracy"]), "n": v.get("n"), "ties": v.get("ties"), **common}
        for k, v in table.items()
    ]


def glue_tasks_included(data: Mapping[str, Any]) -> list[str]:
    """The (Super)GLUE tasks a ``glue.json`` (:func:`load_glue`) scored, i.e. those its macro average is over."""
    return data.get("tasks_included") or sorted(k for k, v in data["tasks"].items() if v["status"] == "ok")


def _glue_rows(data: Mapping[str, Any], level: str) -> list[dict[str, Any]]:
    cfg = data.get("config") or {}
    variant = (
        "finetune ("
        + ", ".join(
            f"{k}={cfg[k]}" for k in ("lr", "batch_size", "max_epochs", "patience", "max_length", "seed") if k in cfg
        )
        + ")"
    )
    included = glue_tasks_included(data)
    limits = ", ".join(f"{k}={cfg[k]}" for k in ("max_train_examples", "max_eval_examples") if cfg.get(k))
    version = (
        f"{PurePath(str(data.get('data_dir', '?'))).name} (results v{data['format_version']}"
        + (f", {limits}" if limits else "")
        + f"; tasks {','.join(included)})"
    )
    common = {"variant": variant, "data_version": version, "ties": None}
    if level == "overall":
        value = data.get("macro_average")
        ok = value is not None and bool(included)
        return [
            {
                "key": "macro",
                "score": float(value) if ok else math.nan,
                "n": len(included),
                "metric": "macro",
                "status": "ok" if ok else "missing",
                **common,
            }
        ]
    return [
        {
            "key": name,
            "score": float(v["value"]) if v["status"] == "ok" else math.nan,
            "n": v.get("n_valid"),
            "metric": v.get("metric"),
            "status": v["status"],
            **common,
        }
        for name, v in data["tasks"].items()
    ]


def eval_frame(paths: Iterable[str | PathLike[str]], level: str = "overall", variant: str = STRICT) -> pd.DataFrame:
    """A tidy frame of zero-shot/GLUE results, one row per file (``level="overall"``) or per group/task.

    Zero-shot numbers are those of scoring ``variant`` (every result holds ``official`` and
    ``pll-word-l2r``; a file without it is an InputError naming it). A path that does not exist
    gives one row with ``status == "missing"`` and NaN score (its run, model and benchmark from the
    path), so tables can name what is absent. Paths that exist are loaded with validation
    (InputError naming the file). Columns: :data:`EVAL_COLUMNS`.
    """
    if level not in ("overall", "group", "task"):
        raise ValueError(f"level must be overall, group or task, not {level!r}")
    if variant not in VARIANTS:
        raise InputError(f"unknown scoring variant {variant!r}; valid: {', '.join(VARIANTS)}")
    rows = []
    for path in dict.fromkeys(Path(p) for p in paths):
        rec = parse_result_path(path)
        if rec.kind != "eval":
            raise InputError(f"{path}: not an evaluation result (expected <corpus>/eval/<run>/<model>/<family>.json)")
        base = {**_run_fields(rec), "family": rec.family, "benchmark": rec.benchmark}
        if not path.exists():
            rows.append(
                {
                    **base,
                    "key": "macro" if level == "overall" else None,
                    "score": math.nan,
                    "n": None,
                    "ties": None,
                    "metric": None,
                    "variant": None,
                    "data_version": None,
                    "status": "missing",
                }
            )
            continue
        if rec.benchmark == "glue":
            rows += [{**base, **row} for row in _glue_rows(load_glue(path), level)]
        else:
            rows += [{**base, **row} for row in _zero_shot_rows(load_zero_shot(path), level, variant, path)]
    frame = pd.DataFrame(rows, columns=EVAL_COLUMNS)
    return frame.astype({"score": float, "alpha": float, "peers": "Int64", "seed": "Int64"})


SUMMARY_COLUMNS = [
    *_RUN_COLUMNS,
    "architecture",
    "layers",
    "heads",
    "hidden",
    "parameters",
    "training_flops",
    "final_dev_loss",
    "peer_weight",
    "steps",
    "tokens",
    "wall_time_s",
    "device",
    "processes",
    "gpus",
    "gpu_util_mean_pct",
    "gpu_util_max_pct",
    "gpu_mem_peak_mib",
    "gpu_names",
    "gpu_reason",
    "status",
]


def _gpu_fields(gpu: Any) -> dict[str, Any]:
    empty = {
        "gpus": math.nan,
        "gpu_util_mean_pct": math.nan,
        "gpu_util_max_pct": math.nan,
        "gpu_mem_peak_mib": math.nan,
        "gpu_names": None,
        "gpu_reason": None,
    }
    if not isinstance(gpu, dict):
        return {**empty, "gpu_reason": "not recorded (summary without a 'gpu' entry)"}
    per_gpu = [g for g in gpu.get("per_gpu") or [] if isinstance(g, dict)]
    if not gpu.get("gpus") or not per_gpu:
        return {**empty, "gpus": 0, "gpu_reason": gpu.get("reason") or "no GPU"}

    def values(key: str) -> list[float]:
        return [float(g[key]) for g in per_gpu if is_number(g.get(key))]

    util, peak, mem = values("util_mean_pct"), values("util_max_pct"), values("mem_peak_mib")
    return {
        "gpus": int(gpu["gpus"]),
        "gpu_util_mean_pct": sum(util) / len(util) if util else math.nan,
        "gpu_util_max_pct": max(peak) if peak else math.nan,
        "gpu_mem_peak_mib": max(mem) if mem else math.nan,
        "gpu_names": ", ".join(sorted({str(g.get("name")) for g in per_gpu})),
        "gpu_reason": None,
    }


def summary_frame(paths: Iterable[str | PathLike[str]]) -> pd.DataFrame:
    """A tidy frame of training summaries, one row per run and student (columns: :data:`SUMMARY_COLUMNS`).

    A path that does not exist gives one row per expected model of the run with ``status == "missing"``.
    ``gpu_util_mean_pct`` is the mean over the run's GPUs of their mean utilisation; ``gpus`` is 0 on CPU
    (``gpu_reason`` says why) and NaN when the summary predates GPU logging.
    """
    rows = []
    for path in dict.fromkeys(Path(p) for p in paths):
        rec = parse_result_path(path)
        if rec.kind != "train" or rec.file != "train_summary.json" or rec.model is not None:
            raise InputError(f"{path}: not a training summary (expected <corpus>/train/<run>/train_summary.json)")
        base = _run_fields(rec)
        if not path.exists():
            rows += [{**base, "model": m, "status": "missing"} for m in rec.run.models]
            continue
        data = load_summary(path)
        if data["method"] != rec.run.method:
            raise InputError(
                f"{path}: the summary is of method {data['method']!r} but the path says {rec.run.method!r}"
            )
        gpu = _gpu_fields(data.get("gpu"))
        for model, student in data["students"].items():
            arch = student["architecture"]
            rows.append(
                {
                    **base,
                    "model": model,
                    "architecture": f"{arch.get('layers')}L/{arch.get('heads')}H/{arch.get('hidden')}",
                    "layers": arch.get("layers"),
                    "heads": arch.get("heads"),
                    "hidden": arch.get("hidden"),
                    "parameters": student["parameters"],
                    "training_flops": student.get("training_flops", math.nan),
                    "final_dev_loss": student.get("final_dev_loss", math.nan),
                    "peer_weight": student.get("peer_weight", math.nan),
                    "steps": data["steps"],
                    "tokens": data["tokens"],
                    "wall_time_s": data["wall_time_s"],
                    "device": data.get("device"),
                    "processes": data.get("processes", 1),
                    **gpu,
                    "status": "ok",
                }
            )
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return frame.astype({"alpha": float, "peers": "Int64", "seed": "Int64"}).astype(
        {
            c: float
            for c in (
                "training_flops",
                "final_dev_loss",
                "peer_weight",
                "wall_time_s",
                "gpu_util_mean_pct",
                "gpu_util_max_pct",
                "gpu_mem_peak_mib",
            )
        }
    )


# --- checks and aggregation ---------------------------------------------------------------------


def check_consistent(frame: pd.DataFrame, by: Sequence[str] = ("benchmark",)) -> None:
    """Refuse to mix scoring variants or data versions within a table.

    Within each group of ``by`` (default: per benchmark, so BLiMP filtered and EWoK fast may sit in one
    table but BLiMP filtered and BLiMP fast may not), every present row must have the same ``variant``
    and ``data_version``; otherwise InputError naming one file of each kind. Missing rows are ignored.
    """
    present = frame[frame["status"] == "ok"]
    for _, part in present.groupby(list(by), dropna=False, sort=False):
        for column, what in (("variant", "scoring variant"), ("data_version", "data version")):
            first = part.iloc[0]
            other = part[part[column] != first[column]]
            if len(other):
                second = other.iloc[0]
                raise InputError(
                    f"refusing to mix {what}s in one table: {first['path']} has {first[column]!r} but "
                    f"{second['path']} has {second[column]!r}; rerun the evaluation of one of them with the "
                    "same settings (config 'evaluation' / 'finetune' and evaluation_data)"
                )


def aggregate_seeds(frame: pd.DataFrame, by: Sequence[str], value: str = "score") -> pd.DataFrame:
    """Mean and sample standard deviation of ``value`` over seeds, per group of ``by``.

    Returns one row per group with the ``by`` columns and ``mean``, ``std`` (ddof=1; NaN with one
    seed), ``n_seeds`` (seeds with a value), ``seeds`` (those seeds, sorted tuple) and ``missing``
    (sorted tuple of the paths/runs absent from the group: rows whose ``value`` is NaN). A group whose
    every row is missing has NaN mean. Groups keep their first-appearance order.
    """
    by = list(by)
    out = []
    for key, part in frame.groupby(by, dropna=False, sort=False):
        ok = part[part[value].notna()]
        values = ok[value].astype(float)
        missing_rows = part[part[value].isna()]
        missing = tuple(sorted(set(missing_rows["path"] if "path" in part else missing_rows.index.astype(str))))
        out.append(
            {
                **dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)),
                "mean": float(values.mean()) if len(values) else math.nan,
                "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                "n_seeds": int(ok["seed"].nunique()) if "seed" in ok else len(values),
                "seeds": tuple(sorted(int(s) for s in ok["seed"].unique())) if "seed" in ok else (),
                "missing": missing,
            }
        )
    return pd.DataFrame(out, columns=[*by, "mean", "std", "n_seeds", "seeds", "missing"])
