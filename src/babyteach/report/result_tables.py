"""The result tables: Table 1 (main results beside the published baselines), Table 2 (every method's
peers) and Tables 6-8 (per BLiMP phenomenon, supplement task, EWoK domain). Inputs and options:
:mod:`babyteach.report.tables`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from babyteach.errors import InputError
from babyteach.evaluate.glue_tasks import TASKS as GLUE_TASKS
from babyteach.evaluate.variants import OFFICIAL, STRICT, describe
from babyteach.report.frames import aggregate_seeds, eval_frame, glue_tasks_included
from babyteach.report.runs import BENCHMARKS, METHOD_LABELS, RunId, load_glue, load_search, parse_search_path
from babyteach.report.selection import (
    DEFAULT_FAMILY,
    STUDENT_METHODS,
    TEACHER_METHODS,
    _cell,
    _complete,
    _corpus,
    _eval_inputs,
    _missing_note,
    _paths,
    _pick_student,
    _results_root,
    _run_id,
    _seeds,
    _seeds_caption,
    _select_runs,
)
from babyteach.report.table_model import Cell, Col, PathArg, Row, Table

#: The cited baselines of Table 1 (not produced here), with their source.
PUBLISHED = Path(__file__).with_name("published.yaml")


def _human(n: float) -> str:
    """A parameter count in words: 124.6M, 43.98K."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}" if abs(n) >= 10 * scale else f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


# --- Table 1: main results ----------------------------------------------------------------------


def _load_published(path: PathArg) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: published-baselines file missing") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({err})") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("tracks"), dict)
        or not isinstance(data.get("source"), dict)
    ):
        raise InputError(f"{path}: expected 'source' and 'tracks' mappings")
    for track, models in data["tracks"].items():
        for model, values in (models or {}).items():
            for key, value in (values or {}).items():
                if key not in (*BENCHMARKS, "macro") or not (value is None or isinstance(value, int | float)):
                    raise InputError(
                        f"{path}: tracks.{track}.{model}.{key} must be a benchmark key with a number or null"
                    )
    return data


def _track(corpus: str) -> str:
    return corpus.split("-", 1)[1]


def _glue_coverage(frame: pd.DataFrame) -> list[str] | None:
    """The tasks the (Super)GLUE results among ``frame`` scored (one list: check_consistent refuses a
    mix), or None without a GLUE result."""
    ok = frame[(frame["benchmark"] == "glue") & (frame["status"] == "ok")]
    return glue_tasks_included(load_glue(ok["path"].iloc[0])) if len(ok) else None


def table1(
    eval: Iterable[PathArg],
    *,
    published: PathArg = PUBLISHED,
    tracks: Sequence[str] = ("10M", "100M"),
    benchmarks: Sequence[str] = ("blimp", "supplement", "ewok", "glue"),
    seeds: Sequence[int] | None = None,
    peers: int | None = None,
    alpha: float | None = None,
    student: str = "best",
) -> Table:
    """Table 1: RoBERTa-base and DWML per track beside the organisers' published baselines.

    ``eval``: zero-shot and ``glue.json`` files of ``baseline/seed-<s>/teacher`` and of every peer
    of ``dwml/peers-<p>/alpha-<a>/seed-<s>``, for each track run (track from the corpus in the
    path). Tracks in ``tracks`` without inputs show "not run". Like is compared with like: the
    benchmark columns and the macro average are our ``official`` scores (the BabyLM 2024 pipeline's
    protocol, the one the published rows were measured with); the strict ``pll-word-l2r`` scores of
    the same files stand in the "(strict)" columns, which the published rows have no value for.
    "GLUE tasks" says how many of the (Super)GLUE tasks our GLUE macro is over; fewer than all of
    them marks our GLUE and macro cells ‡ and the notes name the tasks. The macro column is the mean
    of the benchmark columns, per seed, then over seeds. Published rows come from ``published``.
    """
    zero_shot = [b for b in benchmarks if b != "glue"]
    frame = _eval_inputs(eval, benchmarks, variant=OFFICIAL)
    strict = _eval_inputs(eval, zero_shot, variant=STRICT)
    pub = _load_published(published)
    glue_tasks = _glue_coverage(frame)
    partial_glue = glue_tasks is not None and len(glue_tasks) < len(GLUE_TASKS)
    coverage = f"{len(glue_tasks)}/{len(GLUE_TASKS)}" if glue_tasks is not None else ""
    rows: list[Row] = []
    notes: list[str] = []
    columns = [Col(b, BENCHMARKS[b]) for b in benchmarks]
    if "glue" in benchmarks:
        columns.append(Col("glue_tasks", "GLUE tasks", "text", None))
    columns += [Col("macro", "Macro avg.")] + [Col(f"{b}_strict", f"{BENCHMARKS[b]} (strict)") for b in zero_shot]
    for track in tracks:
        part = frame[frame["corpus"].map(_track) == track]
        group = f"{track} words"
        if part.empty:
            for method in ("baseline", "dwml"):
                rows.append(
                    Row(
                        (track, METHOD_LABELS[method]),
                        {c.key: Cell(text="not run") for c in columns},
                        group,
                        status="not run",
                    )
                )
        else:
            corpus = _corpus(part)
            part, p, a = _select_runs(part, peers, alpha, ["dwml"])
            if p is None:
                raise InputError(
                    f"table1, track {track}: no DWML results among the inputs; list them, or the "
                    "missing runs cannot be named"
                )
            root = _results_root(part["path"].iloc[0], corpus)
            track_seeds = _seeds(part, seeds)
            part = _complete(part, corpus, root, ["baseline", "dwml"], p, a, track_seeds, benchmarks)
            macro = (
                part[part["benchmark"].isin(benchmarks)]
                .groupby(["method", "model", "seed"], sort=False)
                .agg(
                    score=("score", lambda s: s.mean() if s.notna().all() and len(s) == len(benchmarks) else math.nan),
                    path=("path", lambda s: ";".join(s)),
                )
                .reset_index()
            )
            macro["benchmark"] = "macro"
            agg = aggregate_seeds(pd.concat([part, macro], ignore_index=True), ["method", "model", "benchmark"])
            strict_part = strict[strict["corpus"].map(_track) == track]
            if len(strict_part):
                strict_part, _, _ = _select_runs(strict_part, p, a, ["dwml"])
                strict_part = _complete(strict_part, corpus, root, ["baseline", "dwml"], p, a, track_seeds, zero_shot)
                strict_agg = aggregate_seeds(strict_part, ["method", "model", "benchmark"])
                strict_agg["benchmark"] = strict_agg["benchmark"] + "_strict"
                agg = pd.concat([agg, strict_agg], ignore_index=True)
            dwml_models = RunId(corpus, "dwml", p, a, 0).models
            model, why = _pick_student(agg, "dwml", list(dwml_models), student, benchmarks)
            if why:
                notes.append(f"{track}: DWML row shows {why}.")
            for method, mdl, label in (
                ("baseline", "teacher", "RoBERTa-base"),
                ("dwml", model, f"DWML ({model}, {p} peers)"),
            ):
                cells = {
                    c.key: _cell(agg, method=method, model=mdl, benchmark=c.key)
                    for c in columns
                    if c.key != "glue_tasks"
                }
                for c in cells.values():  # the macro of a seed with any benchmark missing names those files
                    c.missing = tuple(sorted({x for m in c.missing for x in m.split(";") if not Path(x).exists()}))
                if "glue" in benchmarks:
                    cells["glue_tasks"] = Cell(text=coverage)
                    if partial_glue:
                        cells["glue"].mark = cells["macro"].mark = "‡"
                rows.append(Row((track, label), cells, group))
        for name, values in (pub["tracks"].get(track) or {}).items():
            cells = {}
            for c in columns:
                value = (values or {}).get(c.key)
                cells[c.key] = Cell(float(value), n=1) if value is not None else Cell(text="n/a")
            cells.update({f"{b}_strict": Cell(text="") for b in zero_shot})
            if "glue" in benchmarks:
                cells["glue_tasks"] = Cell(text=f"{len(GLUE_TASKS)}/{len(GLUE_TASKS)}")
            rows.append(Row((track, f"{name}†"), cells, group, compare=False, status="published, not produced here"))
    src = pub["source"]
    unverified = any(c.text == "n/a" for r in rows if not r.compare for c in r.cells.values())
    shown = ", ".join(BENCHMARKS[b] for b in zero_shot)
    notes.insert(
        0,
        f"† Published by the BabyLM 2024 organisers, not produced here: {src.get('citation', '').strip()} "
        + ("n/a: not verified offline. " if unverified else "")
        + "Bold marks the best row produced here.",
    )
    if zero_shot:
        notes.insert(
            1,
            f"{shown} and the macro average: scoring {describe(OFFICIAL)}, as in the published rows. "
            f"{shown} (strict): scoring {describe(STRICT)}, this project's metric; the published rows "
            "have no such value.",
        )
    if partial_glue:
        notes.append(
            f"‡ Our (Super)GLUE macro is over {coverage} tasks ({', '.join(glue_tasks)}), not the "
            f"{len(GLUE_TASKS)}-task macro of the published rows, and so is our macro average that includes "
            "it: these cells are not comparable with the published ones."
        )
    if not frame.empty:
        fams = frame.groupby("benchmark")["family"].first()
        notes.append("Ours: " + ", ".join(f"{BENCHMARKS[b]} = {fams[b]}" for b in benchmarks if b in fams) + ".")
    table = Table("table1", "", ("Track", "Model"), columns, rows, notes)
    table.caption = (
        "Main results (accuracy %, GLUE: task metric %) of RoBERTa-base and DWML beside the "
        "published BabyLM 2024 baselines, compared on the pipeline's own scoring (official: mean PLL "
        "after the end-of-sentence token, ties correct); the (strict) columns score the same models "
        "with pll-word-l2r (summed PLL-word-l2r, ties wrong). "
        + _seeds_caption(c for r in rows if r.compare for c in r.cells.values())
    )
    table.notes = [*table.notes, *_missing_note(table)]
    return table


# --- Table 2: methods x peers -------------------------------------------------------------------


def table2(
    eval: Iterable[PathArg],
    search: PathArg,
    *,
    seeds: Sequence[int] | None = None,
    alpha: float | None = None,
    benchmarks: Sequence[str] = ("blimp", "supplement", "ewok"),
    methods: Sequence[str] = STUDENT_METHODS,
    variant: str = STRICT,
) -> Table:
    """Table 2: every method's peers (sizes from ``search``) on BLiMP, supplement and EWoK.

    One block per benchmark: a row per method (Teacher yes/no, Peer 1..p, Best = the peer with
    the highest mean) and RoBERTa-base (its score in the Best column), scored with ``variant``.
    Bold: best per column per block.
    """
    found = load_search(search)
    p = parse_search_path(search)
    if len(found["peers"]) != p:
        raise InputError(f"{search}: the file is named for {p} peers but holds {len(found['peers'])}")
    frame = _eval_inputs(eval, benchmarks, variant=variant)
    if frame.empty:
        raise InputError("table2: no zero-shot results among the inputs")
    corpus = _corpus(frame)
    frame, p, alpha = _select_runs(frame, p, alpha, methods)
    root = _results_root(frame["path"].iloc[0], corpus)
    frame = _complete(frame, corpus, root, ["baseline", *methods], p, alpha, _seeds(frame, seeds), benchmarks)
    agg = aggregate_seeds(frame, ["method", "model", "benchmark"])
    fams = frame.groupby("benchmark")["family"].first()
    peer_cols = [Col(f"peer_{i}", f"Peer {i} ({_human(s['params'])})") for i, s in enumerate(found["peers"], 1)]
    columns = [Col("teacher", "Teacher", "text", None), *peer_cols, Col("best", "Best")]
    rows = []
    for bench in benchmarks:
        group = f"{BENCHMARKS[bench]} ({fams.get(bench, DEFAULT_FAMILY[bench])})"
        for method in methods:
            cells = {"teacher": Cell(text="yes" if method in TEACHER_METHODS else "no")}
            for i, col in enumerate(peer_cols, 1):
                cells[col.key] = _cell(agg, method=method, model=f"peer-{i}", benchmark=bench)
            present = [cells[c.key] for c in peer_cols if math.isfinite(cells[c.key].mean)]
            best = max(present, key=lambda c: c.mean) if present else Cell()
            cells["best"] = Cell(
                best.mean, best.std, best.n, None, tuple(sorted({m for c in peer_cols for m in cells[c.key].missing}))
            )
            rows.append(Row((group, METHOD_LABELS[method]), cells, group))
        base = _cell(agg, method="baseline", model="teacher", benchmark=bench)
        rows.append(
            Row(
                (group, f"RoBERTa-base ({_human(found['teacher']['params'])})"),
                {"teacher": Cell(text=""), **{c.key: Cell(text="") for c in peer_cols}, "best": base},
                group,
            )
        )
    table = Table("table2", "", ("Benchmark", "Method"), columns, rows)
    table.caption = (
        f"Accuracy (%) of each method's students, {p} peers"
        + (f", alpha = {alpha:g}" if alpha else "")
        + f" ({corpus}; scoring {describe(variant)}). Peer sizes "
        "from the architecture search; Best: the best peer. "
        + _seeds_caption(c for r in rows for c in r.cells.values())
    )
    table.notes = [
        (
            "Teacher: trained with the RoBERTa-base baseline as a frozen teacher (KD, KD_DWML). "
            "Bold: best per column within a benchmark."
        ),
        *_missing_note(table),
    ]
    return table


# --- Tables 6/7/8: per phenomenon, per task, per domain -----------------------------------------


def _per_group(
    name: str,
    benchmark: str,
    row_label: str,
    eval: Iterable[PathArg],
    seeds: Sequence[int] | None,
    peers: int | None,
    alpha: float | None,
    student: str,
    methods: Sequence[str],
    variant: str,
) -> Table:
    paths = _paths(eval)
    overall = _eval_inputs(paths, [benchmark], variant=variant)
    if overall.empty:
        raise InputError(f"{name}: no {BENCHMARKS[benchmark]} results among the inputs")
    corpus = _corpus(overall)
    overall, p, alpha = _select_runs(overall, peers, alpha, methods)
    all_methods = ["baseline", *methods]
    root = _results_root(overall["path"].iloc[0], corpus)
    overall = _complete(overall, corpus, root, all_methods, p, alpha, _seeds(overall, seeds), [benchmark])
    agg = aggregate_seeds(overall, ["method", "model", "benchmark"])
    level = "task" if benchmark == "supplement" else "group"
    detail = eval_frame([f for f in overall.loc[overall["status"] == "ok", "path"]], level, variant)
    chosen, notes = {}, []
    chosen["baseline"] = "teacher"
    for method in methods:
        models = list(_run_id(corpus, method, p, alpha, 0).models)
        chosen[method], why = _pick_student(agg, method, models, student, [benchmark])
        if why:
            notes.append(f"{why}.")
    keys = sorted(detail["key"].dropna().unique())
    columns = [Col(m, METHOD_LABELS[m]) for m in all_methods]
    rows = []
    detail_agg = aggregate_seeds(detail, ["method", "model", "key"])
    for key in keys:
        cells = {}
        for m in all_methods:
            cell = _cell(detail_agg, method=m, model=chosen[m], key=key)
            cell.missing = _cell(agg, method=m, model=chosen[m], benchmark=benchmark).missing
            cells[m] = cell
        rows.append(Row((key,), cells, "groups"))
    rows.append(
        Row(
            ("Macro average",),
            {m: _cell(agg, method=m, model=chosen[m], benchmark=benchmark) for m in all_methods},
            "macro",
        )
    )
    fam = overall["family"].dropna().iloc[0]
    table = Table(
        name,
        f"{BENCHMARKS[benchmark]} ({fam}) accuracy (%) per {row_label}, per method ({corpus}, {p} peers"
        + (f", alpha = {alpha:g}" if alpha else "")
        + f"; scoring {describe(variant)}"
        + "); students: "
        + ("the best peer per method" if student == "best" else student)
        + ". "
        + _seeds_caption(c for r in rows for c in r.cells.values()),
        (row_label.capitalize(),),
        columns,
        rows,
        bold="row",
    )
    unit = {"blimp": "UIDs", "supplement": "tasks", "ewok": "domains"}[benchmark]
    table.notes = [
        f"Bold: best method per row. Macro average: the mean over all {unit} (the BabyLM aggregate).",
        *notes,
        *_missing_note(table),
    ]
    return table


def _per_group_table(name: str, benchmark: str, row_label: str, what: str) -> Callable[..., Table]:
    """The builder of one per-group table (Tables 6-8): :func:`_per_group` with its benchmark and the
    label of its rows (``phenomenon``: the caption's "per phenomenon" and the first column's header);
    ``what`` is the builder's docstring."""

    def build(
        eval: Iterable[PathArg],
        *,
        seeds: Sequence[int] | None = None,
        peers: int | None = None,
        alpha: float | None = None,
        student: str = "best",
        methods: Sequence[str] = STUDENT_METHODS,
        variant: str = STRICT,
    ) -> Table:
        return _per_group(name, benchmark, row_label, eval, seeds, peers, alpha, student, methods, variant)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"Table {name.removeprefix('table')}: {what}, per method, scored with ``variant``."
    return build


table6 = _per_group_table("table6", "blimp", "phenomenon", "BLiMP accuracy per phenomenon (``linguistics_term``)")
table7 = _per_group_table("table7", "supplement", "task", "BLiMP supplement accuracy per task")
table8 = _per_group_table("table8", "ewok", "domain", "EWoK accuracy per domain")
