"""The minimal-pair benchmark families (BLiMP, BLiMP supplement, EWoK), described as data.

Kept apart from :mod:`babyteach.evaluate.scoring` (which imports torch) so that the workflow
can name the families in its wildcard constraints without paying for that import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from babyteach.data.registry import BLIMP_UIDS, SUPPLEMENT_TASKS

#: The eleven EWoK domains (file stems in ewok_filtered / ewok_fast).
EWOK_DOMAINS: tuple[str, ...] = (
    "agent-properties",
    "material-dynamics",
    "material-properties",
    "physical-dynamics",
    "physical-interactions",
    "physical-relations",
    "quantitative-properties",
    "social-interactions",
    "social-properties",
    "social-relations",
    "spatial-relations",
)


# --- benchmark families as data ----------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """One benchmark family: where its tasks are and how a pair is read from a json line."""

    name: str
    benchmark: str = field(metadata={"help": "the benchmark the family measures: blimp, supplement or ewok"})
    tasks: tuple[str, ...] = field(metadata={"help": "task names = file stems (.jsonl), one file per task"})
    good: str = field(metadata={"help": "field of the sentence (or target) the model should prefer"})
    bad: str = field(metadata={"help": "field of the dispreferred sentence (or target)"})
    group: str | None = field(metadata={"help": "field naming the phenomenon/domain; None: the task"})
    prefix: str | None = field(default=None, metadata={"help": "context field, scored-on but not scored"})
    archive: str | None = field(
        default=None, metadata={"help": "zip in the dataset folder holding the files; None: plain files"}
    )
    encrypted: bool = field(default=False, metadata={"help": "the zip is an EWoK zip (password, in memory)"})

    def __post_init__(self) -> None:
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"family {self.name}: tasks must be non-empty and unique")
        if self.encrypted and not self.archive:
            raise ValueError(f"family {self.name}: an encrypted family needs an archive")


def _blimp(name: str, archive: str | None = None) -> Family:
    return Family(name, "blimp", BLIMP_UIDS, "sentence_good", "sentence_bad", "linguistics_term", archive=archive)


def _supplement(name: str) -> Family:
    return Family(name, "supplement", SUPPLEMENT_TASKS, "sentence_good", "sentence_bad", None)


def _ewok(name: str, archive: str) -> Family:
    return Family(
        name, "ewok", EWOK_DOMAINS, "Target1", "Target2", "Domain", prefix="Context1", archive=archive, encrypted=True
    )


#: Every family by name; the names are those of the fetched datasets (``babyteach fetch``).
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        _blimp("blimp", archive="BLiMP.zip"),
        _blimp("blimp-filtered"),
        _blimp("blimp-fast"),
        _supplement("blimp-supplement"),
        _supplement("supplement-fast"),
        _ewok("ewok-filtered", "ewok_filtered.zip"),
        _ewok("ewok-fast", "ewok_fast.zip"),
    )
}
