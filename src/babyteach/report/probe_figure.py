"""The recipe probe's figure: dev loss against training tokens, one line per setting, beside the
unigram baseline (``results/probe/dev_loss.pdf`` and ``.png``, rule ``probe_figure``)::

    from babyteach.report.probe_figure import write_probe_figure
    write_probe_figure("results/probe/summary.csv", run_dirs, "results/probe/dev_loss.pdf",
                       "results/probe/dev_loss.png")

The curves are each run's ``dev_loss`` lines of ``metrics.jsonl`` (masked-LM cross-entropy on the
same dev blocks and masks at every point, so settings are comparable); the two horizontal lines
are the loss of a model that ignores its context: the train tokens' unigram entropy and the dev
tokens' cross-entropy under those frequencies (the one to compare a dev loss with). A run whose
curve flattens near them has learned the token frequencies and little else. The summary table
(:mod:`babyteach.report.probe_summary`) gives the legend's numbers and the baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from babyteach.errors import InputError
from babyteach.report.figure_style import _RC, PNG_DPI, _save, _style  # the paper figures' style and writer
from babyteach.report.probe_summary import dev_curve

#: The horizontal lines of a model that ignores its context: summary column, line style, legend text.
_UNIGRAM_LINES = (
    ("unigram_dev_cross_entropy", "--", "unigram dev cross-entropy"),
    ("unigram_entropy", ":", "unigram entropy (train)"),
)


def _label(row: Mapping[str, Any]) -> str:
    """A legend entry: the setting with its final dev loss and accuracy."""
    return f"{row['setting']}: dev {row['final_dev_loss']:.2f} nats, {row['dataset']} {row['accuracy_pct']:.1f} %"


def probe_figure(
    summary: pd.DataFrame,
    curves: Mapping[str, pd.DataFrame],
    out_pdf: str | PathLike[str],
    out_png: str | PathLike[str],
    dpi: int = PNG_DPI,
) -> Figure:
    """Draw dev loss against tokens per setting of ``summary`` (its rows: :mod:`babyteach.report.probe_summary`)
    with ``curves[setting]`` (:func:`dev_curve`), and the unigram lines; write PDF and PNG atomically."""
    missing = [name for name in summary["setting"] if name not in curves]
    if missing:
        raise InputError(f"probe figure: no dev-loss curve for settings {missing}; pass their run folders")
    for column in ("unigram_entropy", "unigram_dev_cross_entropy", "corpus"):
        if summary[column].nunique() != 1:
            raise InputError(
                f"probe figure: the summary's {column!r} differs between rows; rebuild "
                "results/probe/summary.csv (one corpus per probe)"
            )
    first = summary.iloc[0]
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.subplots()
        for i, row in enumerate(summary.to_dict("records")):
            curve = curves[row["setting"]]
            ax.plot(curve["tokens"], curve["loss"], label=_label(row), markersize=4, linewidth=1.4, **_style(i))
        for column, linestyle, name in _UNIGRAM_LINES:
            ax.axhline(
                first[column], color="0.3", linestyle=linestyle, linewidth=1, label=f"{name} {first[column]:.2f}"
            )
        ax.set_xlabel("training tokens")
        ax.set_ylabel("dev masked-LM loss (nats)")
        ax.set_title(f"Recipe probe on {first['corpus']}: dev loss per setting")
        ax.legend(loc="best", frameon=False)
    _save(fig, out_pdf, out_png, dpi)
    return fig


def write_probe_figure(
    summary_csv: str | PathLike[str],
    run_dirs: Sequence[str | PathLike[str]],
    out_pdf: str | PathLike[str],
    out_png: str | PathLike[str],
) -> Figure:
    """:func:`probe_figure` from ``results/probe/summary.csv`` and the probe's run folders (named after
    their settings)."""
    try:
        summary = pd.read_csv(summary_csv)
    except (FileNotFoundError, pd.errors.EmptyDataError) as error:
        raise InputError(f"{summary_csv}: cannot read the probe summary ({error}); rerun rule probe_summary") from None
    curves = {Path(run_dir).name: dev_curve(run_dir) for run_dir in run_dirs}
    return probe_figure(summary, curves, out_pdf, out_png)
