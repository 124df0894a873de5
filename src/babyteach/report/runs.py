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
        BENCHMARK_OF_FAMILY, METHOD_LABELS, METHOD_ORDER, INDEPENDENT_LABEL, run_label,
    )

    rec = parse_result_path("results/2024-10M/eval/dwml/peers-4/alpha-0.5/seed-1/peer-2/blimp-filtered.json")
    rec.run.corpus, rec.run.method, rec.run.peers, rec.run.alpha, rec.run.seed  # "2024-10M" "dwml" 4 0.5 1
    rec.model, rec.family, rec.benchmark                                       # "peer-2" "blimp-filtered" "blimp"
    rec.run.name, rec.run.group                 # "dwml/peers-4/alpha-0.5/seed-1", "dwml/peers-4/alpha-0.5"

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

The tidy frames built from these files: :mod:`babyteach.report.frames`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import BytesIO
from os import PathLike
from pathlib import Path, PurePath
from typing import Any

import pandas as pd

from babyteach import layout
from babyteach.config_schema import is_number
from babyteach.errors import InputError
from babyteach.evaluate.families import FAMILIES
from babyteach.evaluate.variants import VARIANTS
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
    "collapse_of",
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


def _load_versioned(path: str | PathLike[str], key: str, versions: tuple[int, ...]) -> tuple[Path, dict[str, Any]]:
    """``(path, data)`` of a result file whose field ``key`` is one of ``versions`` (InputError otherwise)."""
    path = Path(path)
    data = load_json(path)
    _need(data.get(key) in versions, path, f"{key} {data.get(key)!r} is not one of {versions}")
    return path, data


def load_zero_shot(path: str | PathLike[str]) -> dict[str, Any]:
    """A zero-shot result (:func:`babyteach.evaluate.zero_shot.evaluate_pairs`), validated."""
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
        _need(is_number(numbers.get("macro_accuracy")), path, f"variants[{variant!r}] has no numeric 'macro_accuracy'")
        for key in ("tasks", "groups"):
            table = numbers.get(key)
            _need(isinstance(table, dict) and table, path, f"variants[{variant!r}] has no '{key}' table")
            for name, entry in table.items():
                _need(
                    isinstance(entry, dict) and is_number(entry.get("accuracy")),
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
                is_number(entry.get("value")) and isinstance(entry.get("metric"), str),
                path,
                f"tasks[{name!r}] has no metric/value",
            )
    _need(data.get("macro_average") is None or is_number(data.get("macro_average")), path, "bad 'macro_average'")
    _need(isinstance(data.get("tasks_included", []), list), path, "bad 'tasks_included'")
    return data


def load_eval(path: str | PathLike[str]) -> dict[str, Any]:
    """A zero-shot or GLUE result, chosen by the file name (``glue.json`` or ``<family>.json``)."""
    return load_glue(path) if Path(path).stem == "glue" else load_zero_shot(path)


def load_summary(path: str | PathLike[str]) -> dict[str, Any]:
    """A ``train_summary.json`` (:mod:`babyteach.train_outputs`), validated."""
    path, data = _load_versioned(path, "format_version", SUMMARY_VERSIONS)
    _need(isinstance(data.get("method"), str), path, "no 'method'")
    students = data.get("students")
    _need(isinstance(students, dict) and students, path, "no 'students' table")
    for name, entry in students.items():
        _need(
            isinstance(entry, dict)
            and is_number(entry.get("parameters"))
            and isinstance(entry.get("architecture"), dict),
            path,
            f"students[{name!r}] has no architecture/parameters",
        )
    for key in ("steps", "tokens", "wall_time_s"):
        _need(is_number(data.get(key)), path, f"no numeric {key!r}")
    return data


def load_search(path: str | PathLike[str]) -> dict[str, Any]:
    """An architecture-search result (:func:`babyteach.search.write_search`), validated."""
    path, data = _load_versioned(path, "version", SEARCH_VERSIONS)
    teacher = data.get("teacher")
    _need(
        isinstance(teacher, dict) and is_number(teacher.get("params")) and isinstance(teacher.get("arch"), dict),
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
            and all(is_number(peer.get(k)) for k in ("params", "target", "rel_error")),
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
