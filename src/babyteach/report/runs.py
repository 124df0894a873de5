"""Reading the workflow's result files: one place that knows their paths and formats.

Every table and figure is built from per-model result files only, and the caller (a
Snakemake rule) passes the **explicit list of paths** it depends on; nothing here globs the
results folder, so the DAG's dependencies are exact. A path in such a list that does not
exist is not an error: it becomes a *missing* row (score NaN, ``status == "missing"``) that
the table shows as "--" and names in its notes; it never counts as a zero.

Public API (stable; the table and figure modules of :mod:`babyteach.report` import
it)::

    from babyteach.report.runs import (
        RunId, ResultPath, parse_result_path,           # path -> typed record
        load_zero_shot, load_glue, load_summary, load_search, load_eval, load_peer_weights,
        COLLAPSE_WEIGHT, Collapse, collapse_of,           # did a DWML run's ω collapse onto one peer?
        eval_frame, summary_frame, check_consistent, aggregate_seeds, glue_tasks_included,
        BENCHMARK_OF_FAMILY, METHOD_LABELS, METHOD_ORDER, INDEPENDENT_LABEL, run_label,
    )

    rec = parse_result_path("results/2024-10M/eval/dwml/peers-4/alpha-0.5/seed-1/peer-2/blimp-filtered.json")
    rec.run.corpus, rec.run.method, rec.run.peers, rec.run.alpha, rec.run.seed  # "2024-10M" "dwml" 4 0.5 1
    rec.model, rec.family, rec.benchmark                                       # "peer-2" "blimp-filtered" "blimp"
    rec.run.name, rec.run.group                 # "dwml/peers-4/alpha-0.5/seed-1", "dwml/peers-4/alpha-0.5"

    df = eval_frame(paths)                      # one row per file (level="overall"), scoring pll-word-l2r
    df = eval_frame(paths, level="group")       # one row per BLiMP phenomenon / EWoK domain / GLUE task
    df = eval_frame(paths, variant="official")  # the BabyLM 2024 pipeline's scoring of the same files
    check_consistent(df)                        # InputError naming two files that mix variants/data
    agg = aggregate_seeds(df, ["method", "peers", "alpha", "model", "benchmark"])
    # -> mean, std (ddof=1; NaN for one seed), n_seeds, seeds, missing_runs per group

Path layout (``<corpus>`` like ``2024-10M``; ``<run>`` one of ``baseline/seed-<s>``,
``{baseline,kd,sd}/peers-<p>/seed-<s>``, ``{dml,dwml,kd_dwml}/peers-<p>/alpha-<a>/seed-<s>``;
``<model>`` ``teacher`` or ``peer-<i>``; the run grammar and the methods are :mod:`babyteach.layout`'s)::

    .../<corpus>/eval/<run>/<model>/<family>.json   zero-shot (family in BENCHMARK_OF_FAMILY)
    .../<corpus>/eval/<run>/<model>/glue.json       (Super)GLUE fine-tuning
    .../<corpus>/train/<run>/train_summary.json     training summary (also gpu.csv,
                                                    peer_weights.csv, metrics.jsonl)
    .../search/peers-<p>.json                       architecture search

Two kinds of run share the method ``baseline`` (plain masked-LM training, no peer or teacher term):
``baseline/seed-<s>`` is the RoBERTa-base teacher (``RunId(corpus, "baseline", None, None, s)``,
model ``teacher``, labelled "RoBERTa-base"); ``baseline/peers-<p>/seed-<s>`` are the model-size
ablation's searched student architectures trained alone (``RunId(corpus, "baseline", p, None, s)``,
models ``peer-1`` .. ``peer-<p>``, labelled :data:`INDEPENDENT_LABEL` "Independent" by
:func:`run_label`). ``RunId.peers is None`` tells them apart; :data:`METHOD_LABELS` labels methods
(``baseline`` = the teacher), :func:`run_label` labels runs.

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
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from os import PathLike
from pathlib import Path, PurePath
from typing import Any

import pandas as pd

from babyteach import layout
from babyteach.errors import InputError
from babyteach.evaluate.families import FAMILIES
from babyteach.evaluate.variants import STRICT, VARIANTS
from babyteach.io import read_json

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_OF_FAMILY",
    "COLLAPSE_WEIGHT",
    "Collapse",
    "INDEPENDENT_LABEL",
    "METHOD_LABELS",
    "METHOD_ORDER",
    "MUTUAL_METHODS",
    "ResultPath",
    "RunId",
    "aggregate_seeds",
    "check_consistent",
    "collapse_of",
    "eval_frame",
    "glue_tasks_included",
    "load_eval",
    "load_glue",
    "load_json",
    "load_peer_weights",
    "load_search",
    "load_summary",
    "load_zero_shot",
    "parse_result_path",
    "parse_search_path",
    "read_result_csv",
    "run_label",
    "summary_frame",
]

#: Benchmark of each result-file stem: the zero-shot families of
#: :data:`babyteach.evaluate.families.FAMILIES` and ``glue``.
BENCHMARK_OF_FAMILY: dict[str, str] = {name: family.benchmark for name, family in FAMILIES.items()} | {"glue": "glue"}

#: Benchmarks in table order, with their display names.
BENCHMARKS: dict[str, str] = {"blimp": "BLiMP", "supplement": "BLiMP suppl.", "ewok": "EWoK", "glue": "(Super)GLUE"}

#: Methods in table order and how tables name them (:mod:`babyteach.layout`).
METHOD_LABELS: dict[str, str] = layout.method_labels()
METHOD_ORDER: tuple[str, ...] = tuple(METHOD_LABELS)

#: How the searched students trained alone with the baseline objective (``baseline/peers-<p>/seed-<s>``,
#: the model-size ablation) are named; ``METHOD_LABELS["baseline"]`` stays the teacher's name.
INDEPENDENT_LABEL = "Independent"

#: Methods whose runs train all peers together and carry ``alpha`` in their path.
MUTUAL_METHODS: tuple[str, ...] = layout.mutual_methods()

#: Result-format versions this module reads.
ZERO_SHOT_VERSIONS = (2,)  # 2: numbers per scoring variant (1 held one variant's)
GLUE_VERSIONS = (
    2,
)  # 2: the BabyLM 2024 protocol (evaluate/glue.py); 1 (the earlier inputs and epoch choice) is refused: rerun
SUMMARY_VERSIONS = (1, 2, 3)
SEARCH_VERSIONS = (1, 2)


def _result_pattern() -> re.Pattern[str]:
    """A result path; its run and model names are :mod:`babyteach.layout`'s grammar, as the methods
    registered now make it (``re`` keeps the compiled pattern)."""
    return re.compile(
        r"(?:^|/)(?P<corpus>(?:2023|2024)-(?:10M|100M))/(?P<kind>eval|train)/"
        rf"(?P<run>{layout.run_pattern()})(?:/(?P<model>{layout.MODEL_PATTERN}))?/(?P<file>[^/]+)$"
    )


_SEARCH = re.compile(r"(?:^|/)search/peers-(?P<peers>\d+)\.json$")


@dataclass(frozen=True, order=True)
class RunId:
    """One training run: corpus, method, peer count and alpha where the method has them, seed."""

    corpus: str
    method: str
    peers: int | None
    alpha: float | None
    seed: int

    @property
    def _run(self) -> layout.Run:
        """The run without its corpus (:class:`babyteach.layout.Run`, which names it)."""
        return layout.Run(self.method, self.peers, self.alpha, self.seed)

    @property
    def group(self) -> str:
        """The run without its seed (what seeds are averaged over), e.g. ``dwml/peers-4/alpha-0.5``."""
        return self._run.group

    @property
    def name(self) -> str:
        """The run folder under ``results/<corpus>/train``, e.g. ``dwml/peers-4/alpha-0.5/seed-1``."""
        return self._run.name

    @property
    def is_teacher(self) -> bool:
        """Whether this is the RoBERTa-base teacher's run (``baseline/seed-<s>``, not ``baseline/peers-<p>/...``)."""
        return self._run.is_teacher

    @property
    def models(self) -> tuple[str, ...]:
        """The saved models of the run: ``teacher``, or ``peer-1`` .. ``peer-<peers>``."""
        return self._run.models

    def eval_path(self, model: str, family: str, results: str | PathLike[str] = "results") -> Path:
        """Where the workflow writes this run's ``family`` result for ``model``."""
        return Path(results) / self.corpus / "eval" / self.name / model / f"{family}.json"

    def summary_path(self, results: str | PathLike[str] = "results") -> Path:
        """Where the workflow writes this run's ``train_summary.json``."""
        return Path(results) / self.corpus / "train" / self.name / "train_summary.json"


def run_label(run: RunId) -> str:
    """How figures name a run's kind: :data:`METHOD_LABELS` (``RoBERTa-base`` for the teacher), but
    :data:`INDEPENDENT_LABEL` for students trained alone with the baseline objective (``baseline/peers-<p>``)."""
    if run.method == layout.teacher_method() and not run.is_teacher:
        return INDEPENDENT_LABEL
    return METHOD_LABELS.get(run.method, run.method)


@dataclass(frozen=True)
class ResultPath:
    """A result file's path parsed into what it is the result of."""

    path: Path
    kind: str  # "eval" or "train"
    run: RunId
    model: str | None  # teacher / peer-<i>; None for run-level files (train_summary.json, ...)
    file: str  # the file name
    family: str | None  # eval files: the file stem (blimp-filtered, ..., glue)
    benchmark: str | None  # eval files: blimp, supplement, ewok or glue


def parse_result_path(path: str | PathLike[str]) -> ResultPath:
    """Parse a result path of the workflow's layout (module docstring); InputError if it is not one."""
    text = PurePath(path).as_posix()
    m = _result_pattern().search(text)
    if not m:
        raise InputError(
            f"{path}: not a result path of the workflow's layout "
            "(<corpus>/eval/<run>/<model>/<family>.json or <corpus>/train/<run>/<file>, "
            "<run> like baseline/seed-0, baseline/peers-4/seed-0, kd/peers-4/seed-0 or "
            "dwml/peers-4/alpha-0.5/seed-0)"
        )
    parsed = layout.parse_run(m["run"])
    run = RunId(m["corpus"], parsed.method, parsed.peers, parsed.alpha, parsed.seed)
    family = benchmark = None
    if m["kind"] == "eval":
        if m["model"] is None or not m["file"].endswith(".json"):
            raise InputError(f"{path}: an eval result must be <corpus>/eval/<run>/<model>/<family>.json")
        family = m["file"].removesuffix(".json")
        if family not in BENCHMARK_OF_FAMILY:
            raise InputError(f"{path}: unknown result family {family!r}; known: {', '.join(BENCHMARK_OF_FAMILY)}")
        benchmark = BENCHMARK_OF_FAMILY[family]
        if m["model"] not in run.models:
            raise InputError(
                f"{path}: model {m['model']!r} does not exist in run {run.name} (models: {', '.join(run.models)})"
            )
    return ResultPath(Path(path), m["kind"], run, m["model"], m["file"], family, benchmark)


def parse_search_path(path: str | PathLike[str]) -> int:
    """The peer count of a ``search/peers-<p>.json`` path."""
    m = _SEARCH.search(PurePath(path).as_posix())
    if not m:
        raise InputError(f"{path}: not an architecture-search result (search/peers-<p>.json)")
    return int(m["peers"])


# --- loading with validation --------------------------------------------------------------------

#: What to do about a damaged result file.
_RERUN = "delete it and rerun the step that writes it"


def load_json(path: str | PathLike[str]) -> dict[str, Any]:
    """A JSON object from ``path``; InputError naming the file if it is missing or not a JSON object."""
    return read_json(path, _RERUN, missing="result file missing; run the workflow step that writes it")


def _need(ok: bool, path: Path, what: str) -> None:
    if not ok:
        raise InputError(f"{path}: {what}; the file is not a result of this workflow version, rerun its step")


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _load_versioned(path: str | PathLike[str], key: str, versions: tuple[int, ...]) -> tuple[Path, dict[str, Any]]:
    """``(path, data)`` of a result file whose field ``key`` is one of ``versions`` (InputError otherwise)."""
    path = Path(path)
    data = load_json(path)
    _need(data.get(key) in versions, path, f"{key} {data.get(key)!r} is not one of {versions}")
    return path, data


def load_zero_shot(path: str | PathLike[str]) -> dict[str, Any]:
    """A zero-shot result (:func:`babyteach.evaluate.pairs.evaluate_pairs`), validated."""
    path = Path(path)
    data = load_json(path)
    _need(
        data.get("version") in ZERO_SHOT_VERSIONS,
        path,
        f"result version {data.get('version')!r} is not one of {ZERO_SHOT_VERSIONS}",
    )
    _need(
        data.get("family") in BENCHMARK_OF_FAMILY and data.get("family") != "glue",
        path,
        f"unknown family {data.get('family')!r}",
    )
    if path.stem in BENCHMARK_OF_FAMILY and path.stem != data["family"]:
        raise InputError(f"{path}: the file is named {path.stem!r} but holds family {data['family']!r}")
    _need(isinstance(data.get("data_dir"), str), path, "no 'data_dir'")
    variants = data.get("variants")
    _need(isinstance(variants, dict) and variants, path, "no 'variants' table")
    for variant, numbers in variants.items():
        _need(variant in VARIANTS and isinstance(numbers, dict), path, f"variants[{variant!r}] is not a known scoring")
        _need(_is_num(numbers.get("macro_accuracy")), path, f"variants[{variant!r}] has no numeric 'macro_accuracy'")
        for key in ("tasks", "groups"):
            table = numbers.get(key)
            _need(isinstance(table, dict) and table, path, f"variants[{variant!r}] has no '{key}' table")
            for name, entry in table.items():
                _need(
                    isinstance(entry, dict) and _is_num(entry.get("accuracy")),
                    path,
                    f"variants[{variant!r}].{key}[{name!r}] has no numeric accuracy",
                )
    return data


def load_glue(path: str | PathLike[str]) -> dict[str, Any]:
    """A (Super)GLUE result (:func:`babyteach.evaluate.glue.finetune_model`), validated."""
    path, data = _load_versioned(path, "format_version", GLUE_VERSIONS)
    tasks = data.get("tasks")
    _need(isinstance(tasks, dict), path, "no 'tasks' table")
    for name, entry in tasks.items():
        _need(
            isinstance(entry, dict) and entry.get("status") in ("ok", "missing"),
            path,
            f"tasks[{name!r}] has no status ok|missing",
        )
        if entry["status"] == "ok":
            _need(
                _is_num(entry.get("value")) and isinstance(entry.get("metric"), str),
                path,
                f"tasks[{name!r}] has no metric/value",
            )
    _need(data.get("macro_average") is None or _is_num(data.get("macro_average")), path, "bad 'macro_average'")
    _need(isinstance(data.get("tasks_included", []), list), path, "bad 'tasks_included'")
    return data


def load_eval(path: str | PathLike[str]) -> dict[str, Any]:
    """A zero-shot or GLUE result, chosen by the file name (``glue.json`` or ``<family>.json``)."""
    return load_glue(path) if Path(path).stem == "glue" else load_zero_shot(path)


def load_summary(path: str | PathLike[str]) -> dict[str, Any]:
    """A ``train_summary.json`` (:mod:`babyteach.train`), validated."""
    path, data = _load_versioned(path, "format_version", SUMMARY_VERSIONS)
    _need(isinstance(data.get("method"), str), path, "no 'method'")
    students = data.get("students")
    _need(isinstance(students, dict) and students, path, "no 'students' table")
    for name, entry in students.items():
        _need(
            isinstance(entry, dict)
            and _is_num(entry.get("parameters"))
            and isinstance(entry.get("architecture"), dict),
            path,
            f"students[{name!r}] has no architecture/parameters",
        )
    for key in ("steps", "tokens", "wall_time_s"):
        _need(_is_num(data.get(key)), path, f"no numeric {key!r}")
    return data


def load_search(path: str | PathLike[str]) -> dict[str, Any]:
    """An architecture-search result (:func:`babyteach.search.write_search`), validated."""
    path, data = _load_versioned(path, "version", SEARCH_VERSIONS)
    teacher = data.get("teacher")
    _need(
        isinstance(teacher, dict) and _is_num(teacher.get("params")) and isinstance(teacher.get("arch"), dict),
        path,
        "no teacher arch/params",
    )
    peers = data.get("peers")
    _need(isinstance(peers, list) and peers, path, "no 'peers' list")
    for i, peer in enumerate(peers, 1):
        _need(
            isinstance(peer, dict)
            and peer.get("peer") == i
            and isinstance(peer.get("arch"), dict)
            and all(_is_num(peer.get(k)) for k in ("params", "target", "rel_error")),
            path,
            f"peers[{i - 1}] lacks peer/arch/params/target/rel_error",
        )
    return data


def read_result_csv(path: str | PathLike[str], missing: str) -> pd.DataFrame:
    """A result CSV as a frame; an absent or unreadable file is an InputError naming it (``missing``
    says what an absent file means)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {missing}") from None
    except OSError as err:  # a folder, no permission
        raise InputError(f"{path}: cannot be read ({err.strerror}); {_RERUN}") from None
    if data and not data.endswith(b"\n"):  # every writer ends the last row with a newline
        raise InputError(f"{path}: truncated (the last line has no newline); {_RERUN}")
    try:
        return pd.read_csv(BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV ({err}); {_RERUN}") from None


def load_peer_weights(path: str | PathLike[str]) -> pd.DataFrame:
    """A run's ``peer_weights.csv`` (DWML/KD_DWML): ``step``, ``update``, ``weight.peer-<i>``, ..."""
    path = Path(path)
    frame = read_result_csv(path, "peer-weight file missing; only DWML and KD_DWML runs write one")
    if "step" not in frame.columns or not any(c.startswith("weight.") for c in frame.columns):
        raise InputError(f"{path}: expected columns step and weight.peer-<i>, found {', '.join(frame.columns)}")
    return frame


#: A run whose largest final peer weight ω_k is at least this has *collapsed* onto peer k: its
#: ω-weighted ensemble is then, within 1 %, that one peer, and the other peers are distilled from it
#: with almost no label term of their own (docs/METHODS.md, "Collapse"). Figure 3 says so on the panel.
COLLAPSE_WEIGHT = 0.99


@dataclass(frozen=True)
class Collapse:
    """A run's ω collapsed onto ``peer``: ω_peer ≥ :data:`COLLAPSE_WEIGHT` at every logged step from
    ``step`` to the end, where it is ``weight``."""

    peer: str
    step: int
    weight: float


def collapse_of(frame: pd.DataFrame) -> Collapse | None:
    """Whether a run's ω collapsed onto one peer, from its ``peer_weights.csv`` (:func:`load_peer_weights`).

    Collapsed: the largest weight of the last logged row is ≥ :data:`COLLAPSE_WEIGHT`. The step is the
    first logged step from which that peer's weight stays at or above the threshold. A run with one
    peer (ω = 1 by construction) or no rows has no collapse to report: None.
    """
    weights = frame.set_index("step")[[c for c in frame.columns if c.startswith("weight.")]].dropna()
    if weights.shape[1] < 2 or weights.empty:
        return None
    final = weights.iloc[-1]
    column = str(final.idxmax())
    if final[column] < COLLAPSE_WEIGHT:
        return None
    below = weights.index[weights[column] < COLLAPSE_WEIGHT]
    since = weights.index[weights.index > below.max()] if len(below) else weights.index
    return Collapse(peer=column.removeprefix("weight."), step=int(since.min()), weight=float(final[column]))


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
        return [float(g[key]) for g in per_gpu if _is_num(g.get(key))]

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
