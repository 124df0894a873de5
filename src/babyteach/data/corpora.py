"""The BabyLM text corpora: releases, tracks, domains and splits (one place for these facts).

A corpus is named ``<release>-<track>``, e.g. ``2024-10M``; that id is the ``{corpus}``
wildcard of the workflow and the folder name under ``results/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from babyteach.errors import InputError

#: Domains of each BabyLM release (file stems of ``<domain>.<split>``).
BABYLM_DOMAINS: dict[str, tuple[str, ...]] = {
    "2023": (
        "aochildes",
        "bnc_spoken",
        "cbt",
        "children_stories",
        "gutenberg",
        "open_subtitles",
        "qed",
        "simple_wikipedia",
        "switchboard",
        "wikipedia",
    ),
    "2024": ("bnc_spoken", "childes", "gutenberg", "open_subtitles", "simple_wiki", "switchboard"),
}

#: Training-set size in words of each track offered by every release.
TRACK_WORDS: dict[str, int] = {"10M": 10_000_000, "100M": 100_000_000}

#: Tracks offered by every release, smallest first.
TRACKS: tuple[str, ...] = tuple(TRACK_WORDS)

#: Corpus splits, in the order they are listed in outputs.
SPLITS: tuple[str, ...] = ("train", "dev", "test")


@dataclass(frozen=True)
class CorpusId:
    """A BabyLM corpus: one release and one track."""

    release: str
    track: str

    def __post_init__(self) -> None:
        if self.release not in BABYLM_DOMAINS:
            raise InputError(
                f"corpus.release: unknown BabyLM release {self.release!r}; choose one of {sorted(BABYLM_DOMAINS)}"
            )
        if self.track not in TRACKS:
            raise InputError(f"corpus.track: unknown track {self.track!r}; choose one of {list(TRACKS)}")

    @property
    def name(self) -> str:
        """The id used in paths and wildcards, e.g. ``2024-10M``."""
        return f"{self.release}-{self.track}"

    @property
    def words(self) -> int:
        """The track's training-set size in words (what per-corpus budgets scale with)."""
        return TRACK_WORDS[self.track]

    @property
    def domains(self) -> tuple[str, ...]:
        """The domains of this corpus's release."""
        return BABYLM_DOMAINS[self.release]

    @classmethod
    def parse(cls, name: str) -> CorpusId:
        """Parse ``<release>-<track>`` (the inverse of :attr:`name`)."""
        release, sep, track = name.partition("-")
        if not sep:
            raise InputError(f"corpus id {name!r} is not of the form '<release>-<track>', e.g. '2024-10M'")
        return cls(release, track)
