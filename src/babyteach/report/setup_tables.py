"""The setup tables: Table 3 (searched architectures, pretraining hyperparameters), Table 4
(fine-tuning hyperparameters), Table 5 (corpus contents) and Table 9 (training compute). Inputs and
options: :mod:`babyteach.report.tables`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from babyteach.errors import InputError
from babyteach.report.frames import summary_frame
from babyteach.report.runs import (
    METHOD_LABELS,
    load_glue,
    load_search,
    load_summary,
    parse_result_path,
    parse_search_path,
    read_result_csv,
)
from babyteach.report.selection import (
    MAX_LISTED,
    STUDENT_METHODS,
    _corpus,
    _missing_note,
    _paths,
    _results_root,
    _run_id,
    _seeds,
    _seeds_caption,
    _select_runs,
)
from babyteach.report.table_model import MISSING, Cell, Col, PathArg, Row, Table

# --- Table 3: pretraining hyperparameters and searched architectures ----------------------------

#: Training config keys shown in Table 3, with their labels.
TRAIN_KEYS = {
    "lr": "Peak learning rate",
    "batch_size": "Batch size (blocks)",
    "grad_accum": "Gradient accumulation",
    "block_size": "Block size (tokens)",
    "epochs": "Epochs",
    "token_budget": "Token budget",
    "warmup_fraction": "Warmup fraction",
    "weight_decay": "Weight decay",
    "adam_beta1": "Adam beta1",
    "adam_beta2": "Adam beta2",
    "adam_eps": "Adam epsilon",
    "clip_norm": "Gradient clipping (norm)",
    "mask_prob": "Masking probability",
    "dropout": "Dropout",
    "precision": "Precision",
}


def _fmt_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_fmt_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt_value(v) for v in value)
    return str(value)


def _same_config(items: Sequence[tuple[Path, Mapping[str, Any]]], ignore: Iterable[str], what: str) -> Mapping:
    ignore = set(ignore)
    first_path, first = items[0]
    for path, cfg in items[1:]:
        for key in sorted(set(first) | set(cfg)):
            if key not in ignore and first.get(key) != cfg.get(key):
                raise InputError(
                    f"refusing to mix {what}: {first_path} has {key}={first.get(key)!r} but {path} has "
                    f"{key}={cfg.get(key)!r}"
                )
    return first


def table3(
    search: PathArg | Iterable[PathArg],
    *,
    summaries: Iterable[PathArg] | None = None,
) -> Table:
    """Table 3: the searched architectures for every peer count (and the pretraining hyperparameters).

    ``search``: ``results/search/peers-<p>.json`` files. ``summaries``: ``train_summary.json`` files
    whose ``config`` (all equal but for the seed) and per-method options give the hyperparameters.
    """
    files = sorted(_paths(search), key=parse_search_path)
    if not files:
        raise InputError("table3: no architecture-search results given")
    loaded = [(f, load_search(f)) for f in files]
    teacher = _same_config([(f, d["teacher"]) for f, d in loaded], (), "teacher architectures")
    columns = [
        Col("layers", "Layers", "int", None),
        Col("heads", "Heads", "int", None),
        Col("hidden", "Hidden", "int", None),
        Col("parameters", "Parameters", "int", None),
        Col("target", "Target", "int", None),
        Col("rel_error", "Rel. error (%)", "float2", None),
    ]

    def arch_cells(arch: Mapping, params: float, target: float, rel: float) -> dict[str, Cell]:
        return {
            "layers": Cell(arch["layers"], n=1),
            "heads": Cell(arch["heads"], n=1),
            "hidden": Cell(arch["hidden"], n=1),
            "parameters": Cell(params, n=1),
            "target": Cell(target, n=1),
            "rel_error": Cell(rel * 100, n=1),
        }

    rows = [
        Row(
            ("--", "RoBERTa-base (teacher)"),
            arch_cells(teacher["arch"], teacher["params"], math.nan, math.nan),
            "teacher",
        )
    ]
    rows[0].cells["target"] = Cell(text="")
    rows[0].cells["rel_error"] = Cell(text="")
    for path, data in loaded:
        p = parse_search_path(path)
        for peer in data["peers"]:
            rows.append(
                Row(
                    (str(p), f"Peer {peer['peer']}"),
                    arch_cells(peer["arch"], peer["params"], peer["target"], peer["rel_error"]),
                    f"p{p}",
                )
            )
    table = Table(
        "table3",
        "Pretraining setup: searched student architectures for each number of peers p "
        "(target N/(i+1) parameters for peer i; relative error |params - target| / target) and the "
        "pretraining hyperparameters.",
        ("Peers p", "Model"),
        columns,
        rows,
        bold=None,
        section="architectures",
    )
    summary_files = _paths(summaries)
    if summary_files:
        loaded_s = [(f, load_summary(f)) for f in summary_files]
        for f, _ in loaded_s:
            parse_result_path(f)  # a summary of this workflow's layout
        cfg = _same_config(
            [(f, d["config"]) for f, d in loaded_s],
            ("seed", "device", "compile", "checkpoint_every", "log_every", "eval_every"),
            "training configs",
        )
        hyper = [
            Row((label,), {"value": Cell(text=_fmt_value(cfg[key]))}) for key, label in TRAIN_KEYS.items() if key in cfg
        ]
        seen: dict[str, tuple[Path, Mapping]] = {}
        for f, d in loaded_s:
            if d["method"] in seen:
                _same_config([seen[d["method"]], (f, d["method_options"])], (), f"{d['method']} options")
            else:
                seen[d["method"]] = (f, d["method_options"])
        for method in (m for m in METHOD_LABELS if m in seen and seen[m][1]):
            hyper.append(Row((f"{METHOD_LABELS[method]} options",), {"value": Cell(text=_fmt_value(seen[method][1]))}))
        seeds = sorted({int(d["config"]["seed"]) for _, d in loaded_s})
        hyper.append(Row(("Seeds",), {"value": Cell(text=", ".join(map(str, seeds)))}))
        table.extra_tabulars.append(
            Table(
                "table3-hyper",
                "Pretraining hyperparameters",
                ("Hyperparameter",),
                [Col("value", "Value", "text", None)],
                hyper,
                bold=None,
                section="hyperparameters",
            )
        )
    else:
        table.notes.append("Pretraining hyperparameters: no training summaries were given.")
    return table


# --- Table 4: fine-tuning hyperparameters -------------------------------------------------------

#: Fine-tuning config keys shown in Table 4, with their labels.
FINETUNE_KEYS = {
    "lr": "Peak learning rate (linear decay)",
    "batch_size": "Batch size",
    "max_epochs": "Maximum epochs",
    "patience": "Patience (epochs)",
    "max_length": "Maximum length (tokens)",
    "warmup_fraction": "Warmup fraction",
    "weight_decay": "Weight decay",
    "clip_norm": "Gradient clipping (norm)",
    "seed": "Seed",
    "max_train_examples": "Train examples per task",
    "max_eval_examples": "Valid examples per task",
}
_METRIC_NAMES = {"mcc": "MCC", "f1": "F1", "accuracy": "accuracy"}


def table4(glue: Iterable[PathArg]) -> Table:
    """Table 4: the (Super)GLUE fine-tuning hyperparameters and the metric per task, from ``glue.json`` files."""
    files = _paths(glue)
    if not files:
        raise InputError("table4: no glue.json results given")
    loaded = [(f, load_glue(f)) for f in files]
    cfg = _same_config([(f, d.get("config") or {}) for f, d in loaded], ("device", "tasks"), "fine-tuning configs")
    rows = []
    for key, label in FINETUNE_KEYS.items():
        if key in cfg:
            value = cfg[key]
            text = "all" if value is None and key.startswith("max_") and "examples" in key else _fmt_value(value)
            rows.append(Row((label,), {"value": Cell(text=text)}))
    tasks: dict[str, str] = {}
    absent: set[str] = set()
    for _, d in loaded:
        for name, entry in d["tasks"].items():
            if entry["status"] == "ok":
                tasks.setdefault(name, _METRIC_NAMES.get(entry["metric"], entry["metric"]))
            else:
                absent.add(name)
    rows.append(Row(("Tasks (metric)",), {"value": Cell(text=", ".join(f"{t} ({m})" for t, m in tasks.items()))}))
    table = Table(
        "table4",
        f"(Super)GLUE fine-tuning hyperparameters ({len(files)} fine-tuned models; one "
        "fine-tuning run per model and task, scored on the valid split).",
        ("Hyperparameter",),
        [Col("value", "Value", "text", None)],
        rows,
        bold=None,
    )
    if absent - set(tasks):
        table.notes.append("Tasks without data files (not evaluated): " + ", ".join(sorted(absent - set(tasks))) + ".")
    return table


# --- Table 5: corpus contents -------------------------------------------------------------------

_SPLITS = ("train", "dev", "test")


def table5(corpus: PathArg | Iterable[PathArg]) -> Table:
    """Table 5: words per domain and split of each ``results/<c>/stats/corpus.csv``."""
    rows = []
    files = _paths(corpus)
    if not files:
        raise InputError("table5: no corpus.csv given")
    for path in files:
        frame = read_result_csv(path, "corpus statistics missing; run the data stage")
        need = {"domain", "split", "words"}
        if not need <= set(frame.columns) or frame.empty:
            raise InputError(f"{path}: expected columns domain, split, lines, words, found {', '.join(frame.columns)}")
        if not set(frame["split"]) <= set(_SPLITS) or frame.duplicated(["domain", "split"]).any():
            raise InputError(f"{path}: splits must be {', '.join(_SPLITS)}, one row per domain and split")
        if not pd.api.types.is_numeric_dtype(frame["words"]) or (frame["words"] < 0).any():
            raise InputError(f"{path}: 'words' must be non-negative integers")
        name = path.parent.parent.name if path.parent.name == "stats" else str(path)
        pivot = frame.pivot(index="domain", columns="split", values="words")
        for domain in list(pivot.index) + ["Total"]:
            values = pivot.sum() if domain == "Total" else pivot.loc[domain]
            cells = {s: Cell(float(values[s]), n=1) if s in values and pd.notna(values[s]) else Cell() for s in _SPLITS}
            cells["total"] = Cell(float(values.sum()), n=1)
            rows.append(Row((name, domain), cells, name))
    columns = [Col(s, f"{s.capitalize()} words", "int", None) for s in _SPLITS] + [Col("total", "Total", "int", None)]
    return Table(
        "table5",
        "Corpus contents: words (whitespace-separated) per domain and split after cleaning.",
        ("Corpus", "Domain"),
        columns,
        rows,
        bold=None,
    )


# --- Table 9: compute ---------------------------------------------------------------------------


def table9(
    summaries: Iterable[PathArg],
    *,
    seeds: Sequence[int] | None = None,
    peers: int | None = None,
    alpha: float | None = None,
    methods: Sequence[str] = STUDENT_METHODS,
) -> Table:
    """Table 9: GPU utilisation, training FLOPs per peer and in total, wall time, tokens, relative to RoBERTa-base.

    ``summaries``: ``train_summary.json`` of the baseline and of each method's run at one peer
    count, every seed. GPU utilisation is "n/a" for runs on CPU and for summaries that predate
    GPU logging (the notes say which); FLOPs are the analytic training FLOPs of the students
    (``training_flops``), the frozen teacher's forward passes of KD/KD_DWML not included.
    """
    frame = summary_frame(_paths(summaries))
    if frame.empty:
        raise InputError("table9: no training summaries given")
    corpus = _corpus(frame)
    frame, p, alpha = _select_runs(frame, peers, alpha, methods)
    all_methods = ["baseline", *methods]
    seeds = _seeds(frame, seeds)
    root = _results_root(frame["path"].iloc[0], corpus)
    have = set(zip(frame["method"], frame["seed"].astype(int), strict=True))
    extra = []
    for method in all_methods:
        for seed in seeds:
            if (method, seed) not in have:
                run = _run_id(corpus, method, p, alpha, seed)
                extra += [
                    {
                        "path": str(run.summary_path(root)),
                        "method": method,
                        "seed": seed,
                        "model": m,
                        "run": run.name,
                        "status": "missing",
                    }
                    for m in run.models
                ]
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
    per_run = (
        frame.groupby(["method", "seed", "path"], sort=False)
        .agg(
            flops=("training_flops", lambda s: s.sum() if s.notna().all() else math.nan),
            wall_h=("wall_time_s", lambda s: s.iloc[0] / 3600),
            tokens=("tokens", "first"),
            util=("gpu_util_mean_pct", "first"),
            gpus=("gpus", "first"),
            reason=("gpu_reason", "first"),
            status=("status", "first"),
        )
        .reset_index()
    )
    per_run.loc[per_run["status"] == "missing", ["flops", "wall_h", "tokens", "util"]] = math.nan
    base = per_run[per_run["method"] == "baseline"].set_index("seed")
    # relative to the baseline of the same seed where there is one, else its mean over seeds
    for column, rel in (("flops", "flops_rel"), ("wall_h", "wall_rel")):
        base_value = per_run["seed"].map(base[column]) if len(base) else pd.Series(math.nan, index=per_run.index)
        base_value = base_value.fillna(base[column].mean() if len(base) else math.nan)
        per_run[rel] = (per_run[column] / base_value - 1) * 100
    cols = [Col("gpu_util", "GPU util. (%)", "pct", None)]
    cols += [Col(f"flops_{i}", f"FLOPs peer {i}", "sci", None) for i in range(1, (p or 0) + 1)]
    cols += [
        Col("flops", "FLOPs total", "sci", None),
        Col("flops_rel", "FLOPs vs. base", "change", None),
        Col("wall_h", "Wall time (h)", "float2", None),
        Col("wall_rel", "Time vs. base", "change", None),
        Col("tokens", "Tokens", "sci", None),
    ]
    rows, gpu_notes = [], set()
    for method in all_methods:
        runs = per_run[per_run["method"] == method]
        missing = tuple(sorted(runs.loc[runs["status"] == "missing", "path"]))

        def stat(
            column: str, values: pd.Series | None = None, runs: pd.DataFrame = runs, missing: tuple[str, ...] = missing
        ) -> Cell:
            values = (runs[column] if values is None else values).dropna().astype(float)
            return Cell(
                values.mean() if len(values) else math.nan,
                values.std(ddof=1) if len(values) > 1 else math.nan,
                len(values),
                None,
                missing,
            )

        cells = {c: stat(c) for c in ("flops", "wall_h", "tokens")}
        cells["flops_rel"] = stat("flops_rel") if method != "baseline" else Cell(text="")
        cells["wall_rel"] = stat("wall_rel") if method != "baseline" else Cell(text="")
        ok = runs[runs["status"] == "ok"]
        if len(ok) and (ok["gpus"].fillna(0) == 0).all():
            cells["gpu_util"] = Cell(text="n/a")
            gpu_notes |= {str(r) for r in ok["reason"].dropna()}
        else:
            cells["gpu_util"] = stat("util")
        for i in range(1, (p or 0) + 1):
            model = "teacher" if method == "baseline" else f"peer-{i}"
            if method == "baseline":
                cells[f"flops_{i}"] = Cell(text="")
                continue
            part = frame[(frame["method"] == method) & (frame["model"] == model) & (frame["status"] == "ok")]
            cells[f"flops_{i}"] = stat("", part["training_flops"])
        label = METHOD_LABELS[method]
        rows.append(Row((label,), cells, "base" if method == "baseline" else "students"))
    table = Table(
        "table9",
        f"Training compute ({corpus}, {p} peers"
        + (f", alpha = {alpha:g}" if alpha else "")
        + "): mean GPU utilisation, analytic training FLOPs per peer and in total, wall time and tokens; "
        "'vs. base': change relative to RoBERTa-base (same seed). "
        + _seeds_caption(c for r in rows for c in r.cells.values()),
        ("Method",),
        cols,
        rows,
        bold=None,
    )
    table.notes = [
        (
            "FLOPs: 6 x matmul weights + attention per token x tokens, per student; the frozen teacher's "
            "forward passes of KD and KD_DWML are not included."
        )
    ]
    if gpu_notes:
        table.notes.append("GPU util. n/a: " + "; ".join(sorted(gpu_notes)) + ".")
    no_flops = frame[(frame["status"] == "ok") & frame["training_flops"].isna()]
    if len(no_flops):
        paths = sorted(no_flops["path"].unique())
        more = f" and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else ""
        table.notes.append(
            f"FLOPs {MISSING}: training_flops not recorded in "
            + "; ".join(paths[:MAX_LISTED])
            + more
            + " (summaries written before it was added; retrain to fill)."
        )
    table.notes += _missing_note(table)
    return table
