"""Redraw the figures of docs/RECIPE.md from their CSV files (docs/recipe/*.csv → *.png).

Each CSV holds one row per dev-loss point: ``setting, step, tokens, dev_loss`` and the slice's
``unigram_dev_ce`` and ``own_token_floor`` (:mod:`babyteach.data.unigram`); the figure draws one
line per setting with both reference lines (:func:`gpu_recipe.plot_curves`). Run::

    python bench/recipe_plots.py            # every docs/recipe/*.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_recipe import plot_curves  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "recipe"
#: Figure titles by CSV stem; a CSV without one gets its stem.
TITLES: dict[str, str] = {
    "gpu_issue": "Issue author's H200 runs (bf16, vocab 50,265, f0eb2eb, 2026-11-29); lines: first 256 dev blocks",
    "cpu_lr_warmup": "CPU: L4-H4-D128, batch 8, demo slice (vocab 2,000), 1,200 steps: lr and warmup; "
    "lines: first 64 dev blocks",
    "cpu_factors": "CPU: L4-H4-D128, batch 8, demo slice, lr 2e-3, warmup 72 (seed 0): one change each",
    "cpu_peers": "CPU: teacher analogue L4-H4-D128 and peer analogues at one lr vs their own",
}


def redraw(csv: Path) -> Path:
    """Draw ``csv``'s figure next to it (same stem, .png); returns its path."""
    frame = pd.read_csv(csv)
    png = csv.with_suffix(".png")
    plot_curves(
        frame,
        float(frame["unigram_dev_ce"].iloc[0]),
        float(frame["own_token_floor"].iloc[0]),
        png,
        TITLES.get(csv.stem, csv.stem),
    )
    return png


if __name__ == "__main__":
    for path in sorted(DOCS.glob("*.csv")):
        if {"setting", "tokens", "dev_loss", "unigram_dev_ce"} <= set(pd.read_csv(path, nrows=1).columns):
            print(redraw(path))
