"""Start-up checks of the workflow: stop in seconds, not after hours, when a needed dataset is missing.

Snakemake evaluates the fetch rule's input function (``workflow/rules/data.smk``) for every
dataset the requested targets need while it builds the DAG, before any job runs, in a dry run
too. That function calls :func:`check_fetchable`, so only the requested targets' datasets count
(``snakemake ablation_alpha`` does not need Table 1's 100M corpus). A dataset that can be neither
copied from the configured mirror nor downloaded stops the workflow with one message naming the
dataset, why it is unavailable, the config keys that ask for it and the one-line change that
drops it, and how to provide it instead::

    check_fetchable("babylm-2024-100M", config, mirror_from(config["data_mirror"]),
                    Path("results/raw/babylm-2024-100M"))

Torch-free and cheap (a few ``stat`` calls per dataset).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babyteach.data.corpora import TRACKS, CorpusId
from babyteach.data.registry import DATASETS, MIRROR_ENV, unavailable_reason
from babyteach.errors import InputError
from babyteach.evaluate.families import FAMILIES


@dataclass(frozen=True)
class Request:
    """One config key that asks for a dataset, and the one-line change that stops it asking."""

    key: str  # dotted config key, e.g. report.table1_tracks
    value: Any  # the key's configured value
    purpose: str  # what the workflow does with the dataset because of this key
    change: str  # one line of YAML that drops the dataset, e.g. 'report: {table1_tracks: ["10M"]}'


def dataset_requests(name: str, config: Mapping[str, Any], available: Callable[[str], bool]) -> list[Request]:
    """The config keys that ask for registry dataset ``name``, each with the change that drops it.

    ``available(dataset)`` says whether another dataset could be fetched, so that a suggested
    replacement (another track, another probe dataset) is one that works where possible.
    """
    requests: list[Request] = []
    release, track = config["corpus"]["release"], config["corpus"]["track"]
    if name == f"babylm-{CorpusId(release, track).name}":
        other = _first([t for t in TRACKS if t != track], lambda t: available(f"babylm-{release}-{t}"))
        requests.append(
            Request(
                "corpus.track",
                track,
                "the corpus every target trains on (Table 1 adds report.table1_tracks)",
                f'corpus: {{track: "{other}"}}',
            )
        )
    tracks = list(config["report"]["table1_tracks"])
    for listed in tracks:
        if name == f"babylm-{CorpusId(release, listed).name}":
            rest = [t for t in tracks if t != listed] or [_first([track, *TRACKS], lambda t: t != listed)]  # noqa: B023
            requests.append(
                Request(
                    "report.table1_tracks",
                    tracks,
                    "Table 1 trains and evaluates the baseline and DWML on the corpus of every listed track",
                    f"report: {{table1_tracks: {json.dumps(rest)}}}",
                )
            )
    datasets = list(config["evaluation_data"])
    if name in datasets:
        rest = [d for d in datasets if d != name]
        requests.append(
            Request(
                "evaluation_data",
                datasets,
                "every trained model is evaluated on every listed dataset",
                f"evaluation_data: [{', '.join(rest)}]",
            )
        )
    probe = config.get("probe", {}).get("dataset")
    if name == probe:
        other = _first([f for f in FAMILIES if f != name], available)
        requests.append(
            Request(
                "probe.dataset",
                probe,
                "the recipe probe (target probe) scores every setting on it",
                f"probe: {{dataset: {other}}}",
            )
        )
    return requests


def _first(candidates: list[str], good: Callable[[str], bool]) -> str:
    """The first candidate ``good`` accepts, else the first candidate."""
    return next((c for c in candidates if good(c)), candidates[0])


def check_fetchable(name: str, config: Mapping[str, Any], mirror: Path | None, dest: Path) -> None:
    """Raise :class:`InputError` if registry dataset ``name``, needed by the requested targets, can be
    neither fetched into ``dest`` nor found there already (fetched before).

    The message names the dataset and why it is unavailable (:func:`unavailable_reason`), every
    config key that asks for it with the one-line change that drops it, and how to provide it.
    """
    if Path(dest).exists():
        return
    dataset = DATASETS[name]
    reason = unavailable_reason(dataset, mirror)
    if reason is None:
        return

    def available(other: str) -> bool:
        return unavailable_reason(DATASETS[other], mirror) is None

    requests = dataset_requests(name, config, available)
    lines = [f"dataset {name!r} is needed by the requested targets but cannot be fetched: {reason}."]
    if requests:
        lines.append("It is asked for by:")
        lines += [f"  {r.key} = {json.dumps(r.value)} ({r.purpose})" for r in requests]
        lines.append(
            "To run without it, make this change in config.yaml or in a YAML file added with another "
            "--configfile (name the target before --configfile):"
        )
        lines += [f"  {r.change}" for r in requests]
    else:
        lines.append("No config key asks for it: it was requested as a target; drop that target.")
    lines.append(f"Or provide it: {_provide_hint(dataset.name, mirror)}.")
    raise InputError("\n".join(lines))


def _provide_hint(name: str, mirror: Path | None) -> str:
    """How to make dataset ``name`` available: its files in the mirror, or a download."""
    dataset = DATASETS[name]
    source = f"official source: {', '.join(dataset.urls) or 'none public'}; see {dataset.homepage}"
    if mirror is not None:
        hint = f"put its files under {Path(mirror) / dataset.mirror_dir}/ ({source})"
        if dataset.sources:
            hint += f", or set `data_mirror: null` and unset {MIRROR_ENV} to download it"
        return hint
    return (
        f"set `data_mirror` (or {MIRROR_ENV}) to a folder laid out like shared/data with its files under "
        f"<mirror>/{dataset.mirror_dir}/ ({source})"
    )
