"""The paper's figures, drawn with matplotlib from the workflow's per-run result files.

Every figure function takes the **explicit lists of result paths** a Snakemake rule passes
(nothing here globs the results folder) and its options, and returns the drawn
:class:`matplotlib.figure.Figure` (so that tests can read back what was drawn); :func:`write_figure`,
the one entry a rule script calls, checks the inputs and options of a figure of :data:`FIGURES`,
draws it and writes one PDF and one PNG atomically, the PNG at option ``dpi`` (default
:data:`~babyteach.report.figure_style.PNG_DPI`, for every figure). A thin script::

    from babyteach.report.figures import write_figure
    write_figure("figure3", dict(snakemake.input.items()), snakemake.output.pdf, snakemake.output.png,
                 dict(snakemake.params.options))

The figures (``FIGURES``; inputs are keyword arguments, the path patterns below)::

    figure2a       accuracy vs number of peers p (DWML at the main α; mean over peers and best peer)
                   evals:     <corpus>/eval/dwml/peers-<p>/alpha-<α>/seed-<s>/peer-<i>/<family>.json
                              for every p, every seed, every peer (one α, one method)
                   reference: optional, <corpus>/eval/baseline/seed-<s>/teacher/<family>.json
    figure2b       accuracy vs α (DWML at one peer count, the largest)
                   evals:     <corpus>/eval/dwml/peers-<P>/alpha-<a>/seed-<s>/peer-<i>/<family>.json
                              for every α, seed and peer (one p, one method)
                   reference: optional, as in figure2a
    figure2c       each peer's final learned weight ω vs its accuracy, with Pearson R
                   summaries: <corpus>/train/dwml/peers-<P>/alpha-<α>/seed-<s>/train_summary.json (every seed)
                   evals:     <corpus>/eval/dwml/peers-<P>/alpha-<α>/seed-<s>/peer-<i>/<family>.json
    figure2        (a), (b) and (c) side by side: inputs peers_evals, alpha_evals, weight_summaries,
                   weight_evals (as evals/evals/summaries/evals above) and the optional reference
    figure3        ω trajectories during DWML / KD_DWML, one panel per run configuration; a run whose ω
                   collapsed onto one peer (final ω ≥ COLLAPSE_WEIGHT) is named on its panel
                   peer_weights: <corpus>/train/{dwml,kd_dwml}/peers-<p>/alpha-<a>/seed-<s>/peer_weights.csv
    figure4        GPU utilisation over time, one panel per method (run configuration)
                   gpu:       <corpus>/train/<run>/gpu.csv
                   summaries: optional, <corpus>/train/<run>/train_summary.json (why no GPU was recorded)
    figure_size    accuracy vs model size (parameters, log scale): one series per kind of run, a point per
                   model (mean ± std over seeds): the RoBERTa-base teacher, the searched students trained
                   alone with the baseline objective ("Independent"), DWML (or any student method) peers
                   summaries: <corpus>/train/<run>/train_summary.json (parameter counts) of
                              baseline/seed-<s>, baseline/peers-<p>/seed-<s>, dwml/peers-<p>/alpha-<α>/seed-<s>, ...
                   evals:     <corpus>/eval/<run>/<model>/<family>.json of those runs' models
    training_loss  training and dev loss curves per method (metrics.jsonl: the method's own training
                   objective per student at every logged step, lines; the dev masked-LM loss at every
                   training.eval_every steps, open markers); runs logged without dev points show the
                   final dev loss of their summaries as a single open marker
                   metrics:   <corpus>/train/<run>/metrics.jsonl
                   summaries: optional, <corpus>/train/<run>/train_summary.json (final dev loss)

(``<corpus>`` like ``2024-10M``, normally under ``results/``; ``<family>`` a zero-shot family such
as ``blimp-filtered`` or ``glue``; see :mod:`babyteach.report.runs` for the layout.) Extra eval
files of other benchmarks are ignored, so a rule may pass all families of a run set. Wherever a
``<corpus>/train/<run>/<file>`` is expected, the run folder itself may be given instead (the
training rules' ``directory()`` output, which is what a rule can depend on): ``<folder>/<file>``
is read.

Conventions:

- Several seeds of one configuration are averaged: lines/points show the mean and a ± 1 sample
  standard deviation band or error bars; legends or titles say how many seeds (``n = 3 seeds``).
- A listed file that does not exist is not plotted and the figure carries a note naming it (as the
  tables show "--"); a figure left with no data at all raises :class:`~babyteach.errors.InputError`
  naming the figure and what is missing. On a CPU run (``gpu.csv`` with a header only) the GPU
  panel says "no GPU recorded" and why, instead of showing empty axes.
- Readable in grayscale: every line/marker series differs in line style and marker, not only colour.
  Accuracies are drawn in percent; zero-shot accuracies are the ``pll-word-l2r`` scoring
  (:data:`FIGURE_VARIANT`) and the axis says so; a (Super)GLUE axis says over how many tasks.

Only the object-oriented API is used (no pyplot state): figures are independent and thread-safe.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any

from matplotlib.figure import Figure

from babyteach.errors import InputError
from babyteach.report.figure_ablations import (
    _SIZE_EVALS,
    _SIZE_SUMMARIES,
    figure2,
    figure2a,
    figure2b,
    figure2c,
    figure_size,
)
from babyteach.report.figure_style import PNG_DPI, _save
from babyteach.report.figure_training import figure3, figure4, training_loss
from babyteach.report.inputs import builder_options

__all__ = ["FIGURES", "FigureSpec", "write_figure"]


# --- registry and dispatcher ---------------------------------------------------------------------

_EVAL_PEERS = "<corpus>/eval/dwml/peers-<p>/alpha-<α>/seed-<s>/peer-<i>/<family>.json: every peer count, seed, peer"
_EVAL_ALPHA = "<corpus>/eval/dwml/peers-<P>/alpha-<a>/seed-<s>/peer-<i>/<family>.json: every α, seed, peer"
_REFERENCE = "optional: <corpus>/eval/baseline/seed-<s>/teacher/<family>.json (teacher line)"
_SUMMARIES_W = "<corpus>/train/dwml/peers-<P>/alpha-<α>/seed-<s>/train_summary.json: one configuration, every seed"
_EVAL_W = "<corpus>/eval/dwml/peers-<P>/alpha-<α>/seed-<s>/peer-<i>/<family>.json of those runs"
_BENCH = "benchmark: blimp (default), supplement, ewok or glue; other files are ignored"
_AGG = "peer_aggregate: mean | best | both (default) — a run's peers as their mean score and/or the best one"


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its function, its inputs (name → path pattern), its options (besides ``dpi``, which
    every figure takes) and what it draws."""

    function: Callable[..., Figure]
    inputs: Mapping[str, str]
    options: tuple[str, ...]
    description: str

    @property
    def optional(self) -> tuple[str, ...]:
        """The inputs that may be omitted: those the function gives a default."""
        parameters = inspect.signature(self.function).parameters
        return tuple(k for k in self.inputs if parameters[k].default is not inspect.Parameter.empty)


#: Every figure by name: what it draws, its inputs (keyword → path pattern) and options.
FIGURES: dict[str, FigureSpec] = {
    "figure2": FigureSpec(
        figure2,
        {
            "peers_evals": _EVAL_PEERS,
            "alpha_evals": _EVAL_ALPHA,
            "weight_summaries": _SUMMARIES_W,
            "weight_evals": _EVAL_W,
            "reference": _REFERENCE,
        },
        (_BENCH, _AGG),
        "Figure 2 (a) accuracy vs number of peers, (b) vs α, (c) learned ω vs accuracy with Pearson R",
    ),
    "figure2a": FigureSpec(
        figure2a,
        {"evals": _EVAL_PEERS, "reference": _REFERENCE},
        (_BENCH, _AGG),
        "Figure 2 (a): accuracy vs number of peers",
    ),
    "figure2b": FigureSpec(
        figure2b,
        {"evals": _EVAL_ALPHA, "reference": _REFERENCE},
        (_BENCH, _AGG),
        "Figure 2 (b): accuracy vs α at the largest peer count",
    ),
    "figure2c": FigureSpec(
        figure2c,
        {"summaries": _SUMMARIES_W, "evals": _EVAL_W},
        (_BENCH,),
        "Figure 2 (c): each peer's final learned ω vs its accuracy, Pearson R",
    ),
    "figure3": FigureSpec(
        figure3,
        {"peer_weights": "<corpus>/train/{dwml,kd_dwml}/peers-<p>/alpha-<a>/seed-<s>/peer_weights.csv"},
        (),
        "Figure 3: ω trajectories during DWML/KD_DWML training, one panel per configuration",
    ),
    "figure4": FigureSpec(
        figure4,
        {
            "gpu": "<corpus>/train/<run>/gpu.csv of every run shown",
            "summaries": "optional: the same runs' train_summary.json (why no GPU was recorded)",
        },
        ("metric: util_pct (default), mem_used_mib or power_w",),
        "Figure 4: GPU utilisation over time per method; 'no GPU recorded' panels for CPU runs",
    ),
    "figure_size": FigureSpec(
        figure_size,
        {"summaries": _SIZE_SUMMARIES, "evals": _SIZE_EVALS},
        (_BENCH,),
        "Model-size ablation: accuracy vs parameters (log scale) for the teacher, students trained alone "
        "(baseline objective) and DWML peers",
    ),
    "training_loss": FigureSpec(
        training_loss,
        {
            "metrics": "<corpus>/train/<run>/metrics.jsonl of every run shown",
            "summaries": "optional: the same runs' train_summary.json (final dev loss of runs "
            "logged without dev points)",
        },
        ("x: step (default) or tokens", "smooth: moving-average window in logged points (1)"),
        "Training and dev loss curves per method (metrics.jsonl; dev masked-LM loss every training.eval_every "
        "steps, or the final dev loss of the summaries)",
    ),
}


def write_figure(
    name: str,
    inputs: Mapping[str, Any],
    out_pdf: str | PathLike[str],
    out_png: str | PathLike[str],
    options: Mapping[str, Any] | None = None,
) -> Figure:
    """Draw figure ``name`` of :data:`FIGURES` from ``inputs`` (input name → path or list of paths) and
    write it to ``out_pdf`` and ``out_png`` (both atomically); ``options`` are the figure's keyword
    options and ``dpi``, the PNG's resolution (default :data:`~babyteach.report.figure_style.PNG_DPI`).

    From a Snakemake script: ``write_figure(snakemake.wildcards.figure, dict(snakemake.input.items()),
    snakemake.output.pdf, snakemake.output.png, snakemake.params.options)``.
    InputError for an unknown figure, a missing or unknown input name, an unknown option, or no data
    (then nothing is written).
    """
    if name not in FIGURES:
        raise InputError(f"unknown figure {name!r}; one of {', '.join(FIGURES)}")
    spec = FIGURES[name]
    unknown = sorted(set(inputs) - set(spec.inputs))
    if unknown:
        raise InputError(f"{name}: unknown input(s) {', '.join(unknown)}; it takes {', '.join(spec.inputs)}")
    absent = [k for k in spec.inputs if k not in inputs and k not in spec.optional]
    if absent:
        raise InputError(
            f"{name}: input(s) {', '.join(absent)} not given; " + "; ".join(f"{k}: {spec.inputs[k]}" for k in absent)
        )
    options = dict(options or {})
    allowed = [*builder_options(spec.function, spec.inputs), "dpi"]
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise InputError(f"{name}: unknown option(s) {', '.join(bad)}; options: {', '.join(allowed)}")
    dpi = options.pop("dpi", PNG_DPI)
    paths = {k: [v] if isinstance(v, str | PathLike) else list(v) for k, v in inputs.items()}
    fig = spec.function(**paths, **options)
    _save(fig, out_pdf, out_png, dpi)
    return fig
