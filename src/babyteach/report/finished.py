"""What an HTML report of a partial run can hold: the tables and figures built so far.

``snakemake --report`` builds the DAG of its targets and stops at the first file marked for the
report that does not exist yet. The workflow's target ``finished`` asks only for the tables and
figures whose files all exist (:func:`finished`), so ``snakemake finished --report
results/report.html`` reports what exists after a partial run, and says which items are missing
with the target that builds each (:func:`missing_note`).

Torch-free: the workflow calls it while it builds the DAG.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """One table or figure of the report: the target that builds it and every file it consists of."""

    target: str  # e.g. table1, figure_training_loss
    files: tuple[str, ...]  # e.g. results/tables/table1.tex and .csv


@dataclass(frozen=True)
class Finished:
    """The files of the items built so far, and the items not built yet."""

    files: list[str]
    missing: list[Item]


def finished(items: Sequence[Item], exists: Callable[[str], bool] = os.path.exists) -> Finished:
    """Split ``items`` into the built ones (every file exists: their files, in order) and the rest."""
    built = [item for item in items if all(exists(f) for f in item.files)]
    return Finished([f for item in built for f in item.files], [item for item in items if item not in built])


def missing_note(missing: Sequence[Item], configfiles: Sequence[str] = ()) -> str:
    """One message naming every missing item, its first file and the command that builds them all."""
    if not missing:
        return "report: every table and figure of this configuration is built."
    options = "".join(f" --configfile {f}" for f in configfiles)
    listed = "; ".join(f"{item.target} ({item.files[0]})" for item in missing)
    return (
        f"report: {len(missing)} table(s)/figure(s) not built yet, left out of the report: {listed}. "
        f"Build them with `snakemake all --cores all{options}` (or name the targets above instead of all), "
        "then run the report again."
    )
