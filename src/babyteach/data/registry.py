"""The dataset registry: every dataset the workflow fetches, as data, and where a local mirror holds it.

Every dataset is described once, in :data:`DATASETS`: where it is published (:class:`Source`),
which files it consists of (:class:`FileSpec`), and where it lives in a local mirror laid out like
``shared/data``. The mirror is found from the config or the environment (:func:`mirror_from`), and
whether a dataset can be fetched is answered without fetching anything (:func:`unavailable_reason`:
a few ``stat`` calls), so the workflow's start-up check reads this module, torch-free and light;
how the files are copied or downloaded and verified is :mod:`babyteach.data.fetch`::

    from babyteach.data.registry import DATASETS, mirror_from, unavailable_reason
    unavailable_reason(DATASETS["blimp-fast"], mirror_from("../shared/data"))  # None: fetchable

EWoK is gated data that must not reach the web in plain text, so it stays in its
password-protected zip on disk; read it with :func:`open_ewok_zip`.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from babyteach.data.corpora import BABYLM_DOMAINS, SPLITS, TRACKS
from babyteach.errors import InputError

#: Environment variable read when the config key ``data_mirror`` is null.
MIRROR_ENV = "BABYTEACH_DATA_MIRROR"

#: Password of BabyLM's EWoK zips, published in the BabyLM 2025 evaluation pipeline README.
EWOK_ZIP_PASSWORD = "BabyLM2025"


# --- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One official download.

    ``url`` is ``http(s)://…`` or ``osf://<project>/<path>`` (a file or folder in an OSF
    project's storage, resolved through the public OSF API; a folder arrives as a zip).
    ``sha256`` is set only where the official file is fixed (a pinned commit). With
    ``extract=False`` the file is kept as downloaded under ``filename`` (BLiMP.zip, EWoK zips).
    """

    url: str
    sha256: str | None = None
    extract: bool = True
    filename: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://", "osf://")):
            raise ValueError(f"Source.url must be http(s):// or osf://, got {self.url!r}")
        if self.sha256 is not None and (len(self.sha256) != 64 or not is_hex(self.sha256)):
            raise ValueError(f"Source.sha256 must be 64 hex digits, got {self.sha256!r}")
        if not self.extract and not self.filename:
            raise ValueError(f"Source {self.url}: a file kept as downloaded needs a filename")


@dataclass(frozen=True)
class FileSpec:
    """One expected file: its path in the dataset folder (and mirror folder) and in the download.

    ``member`` is the path suffix that identifies the file among the members of the downloaded
    archives, e.g. ``train_10M/childes.train``; it must match exactly one member.
    """

    path: str
    member: str


@dataclass(frozen=True)
class Dataset:
    """A dataset as data: official sources, expected files and its folder in a local mirror."""

    name: str
    mirror_dir: str = field(metadata={"help": "folder in the mirror, relative to its root"})
    files: tuple[FileSpec, ...] = field(metadata={"help": "files that must be present"})
    sources: tuple[Source, ...] = field(metadata={"help": "official downloads; () = mirror only"})
    homepage: str = field(metadata={"help": "where the dataset is documented"})
    extra: str | None = field(
        default=None, metadata={"help": "glob of optional files copied too when present beside the required ones"}
    )
    note: str = field(default="", metadata={"help": "caveats shown in errors and logs"})

    def __post_init__(self) -> None:
        paths = [f.path for f in self.files]
        if not paths or len(set(paths)) != len(paths):
            raise ValueError(f"dataset {self.name}: files must be non-empty and unique")

    @property
    def urls(self) -> list[str]:
        """The official URLs (for messages and the manifest)."""
        return [s.url for s in self.sources]

    def official_sha256(self, path: str) -> str | None:
        """The registry sha256 of ``path`` where it is an official file kept as downloaded."""
        return next((s.sha256 for s in self.sources if not s.extract and s.filename == path), None)


def is_hex(text: str) -> bool:
    """Whether ``text`` is lower-case hexadecimal (a sha256 digest's alphabet)."""
    return all(c in "0123456789abcdef" for c in text)


#: The 67 BLiMP paradigms (UIDs), the file stems of blimp_filtered and blimp_fast.
BLIMP_UIDS: tuple[str, ...] = (
    "adjunct_island",
    "anaphor_gender_agreement",
    "anaphor_number_agreement",
    "animate_subject_passive",
    "animate_subject_trans",
    "causative",
    "complex_NP_island",
    "coordinate_structure_constraint_complex_left_branch",
    "coordinate_structure_constraint_object_extraction",
    "determiner_noun_agreement_1",
    "determiner_noun_agreement_2",
    "determiner_noun_agreement_irregular_1",
    "determiner_noun_agreement_irregular_2",
    "determiner_noun_agreement_with_adj_2",
    "determiner_noun_agreement_with_adj_irregular_1",
    "determiner_noun_agreement_with_adj_irregular_2",
    "determiner_noun_agreement_with_adjective_1",
    "distractor_agreement_relational_noun",
    "distractor_agreement_relative_clause",
    "drop_argument",
    "ellipsis_n_bar_1",
    "ellipsis_n_bar_2",
    "existential_there_object_raising",
    "existential_there_quantifiers_1",
    "existential_there_quantifiers_2",
    "existential_there_subject_raising",
    "expletive_it_object_raising",
    "inchoative",
    "intransitive",
    "irregular_past_participle_adjectives",
    "irregular_past_participle_verbs",
    "irregular_plural_subject_verb_agreement_1",
    "irregular_plural_subject_verb_agreement_2",
    "left_branch_island_echo_question",
    "left_branch_island_simple_question",
    "matrix_question_npi_licensor_present",
    "npi_present_1",
    "npi_present_2",
    "only_npi_licensor_present",
    "only_npi_scope",
    "passive_1",
    "passive_2",
    "principle_A_c_command",
    "principle_A_case_1",
    "principle_A_case_2",
    "principle_A_domain_1",
    "principle_A_domain_2",
    "principle_A_domain_3",
    "principle_A_reconstruction",
    "regular_plural_subject_verb_agreement_1",
    "regular_plural_subject_verb_agreement_2",
    "sentential_negation_npi_licensor_present",
    "sentential_negation_npi_scope",
    "sentential_subject_island",
    "superlative_quantifiers_1",
    "superlative_quantifiers_2",
    "tough_vs_raising_1",
    "tough_vs_raising_2",
    "transitive",
    "wh_island",
    "wh_questions_object_gap",
    "wh_questions_subject_gap",
    "wh_questions_subject_gap_long_distance",
    "wh_vs_that_no_gap",
    "wh_vs_that_no_gap_long_distance",
    "wh_vs_that_with_gap",
    "wh_vs_that_with_gap_long_distance",
)

#: The five BLiMP supplement tasks (BabyLM 2023-2025).
SUPPLEMENT_TASKS: tuple[str, ...] = (
    "hypernym",
    "qa_congruence_easy",
    "qa_congruence_tricky",
    "subject_aux_inversion",
    "turn_taking",
)

#: The registry name of the BabyLM (Super)GLUE fine-tuning files (what `evaluation_data` lists).
GLUE_DATASET = "glue-filtered"

#: (Super)GLUE files of BabyLM's glue_filtered that the evaluation needs: the valid (evaluation)
#: file of every task and the train files the shared mirror has. The 2024 release also has
#: boolq/multirc/qnli/sst2 train files; any other ``*.jsonl`` found beside these is copied too.
GLUE_FILES: tuple[str, ...] = tuple(
    f"{task}.valid.jsonl"
    for task in ("boolq", "cola", "mnli", "mnli-mm", "mrpc", "multirc", "qnli", "qqp", "rte", "sst2", "wsc")
) + tuple(f"{task}.train.jsonl" for task in ("cola", "mnli", "mrpc", "qqp", "rte", "wsc"))

# Official locations. The BabyLM 2024 data is the OSF project ad7qg (babylm.github.io and the
# 2024 evaluation pipeline README link it): text_data/{train_10M,train_100M,dev,test}.zip and
# evaluation_data/<task folder>. BabyLM 2025's fast evaluation sets are the OSF project ryjfm,
# evaluation_data/fast_eval/. The folder paths inside the projects are the projects' documented
# locations, not checked from here (no network); the mirror's SHA256SUMS verifies copies.
_OSF_2024 = "osf://ad7qg"
_OSF_2025_FAST = "osf://ryjfm/evaluation_data/fast_eval"
_BABYLM_2023_ZIP = "https://github.com/babylm/babylm.github.io/raw/main/babylm_data.zip"
_BLIMP_COMMIT = "3e56b06fcabca9b30822fc66435fca6b1aa40bb1"  # alexwarstadt/blimp, pinned: fixed sha256


def _babylm_corpus(release: str, track: str) -> Dataset:
    """A BabyLM text corpus: ``<domain>.<split>`` for every domain of the release and split."""
    if release == "2023":
        folders = {"train": f"babylm_{track}", "dev": "babylm_dev", "test": "babylm_test"}
        sources = (Source(_BABYLM_2023_ZIP),)  # babylm_data/{babylm_10M,babylm_100M,babylm_dev,babylm_test}/
        mirror_dir, homepage = f"babylm_2023_{track}", "https://babylm.github.io/archive_2023.html"
    else:
        folders = {"train": f"train_{track}", "dev": "dev", "test": "test"}
        sources = tuple(Source(f"{_OSF_2024}/text_data/{folders[s]}.zip") for s in SPLITS)
        mirror_dir, homepage = ("babylm_10M" if track == "10M" else f"babylm_{track}"), "https://osf.io/ad7qg/"
    files = tuple(FileSpec(f"{d}.{s}", f"{folders[s]}/{d}.{s}") for d in BABYLM_DOMAINS[release] for s in SPLITS)
    note = (
        "the shared mirror's babylm_10M/ is a SUBSTITUTE corpus (real BabyLM 2024 text, re-split; "
        "see shared/data/README.md), not the official release"
        if (release, track) == ("2024", "10M")
        else ""
    )
    return Dataset(f"babylm-{release}-{track}", mirror_dir, files, sources, homepage, note=note)


def _jsonl_set(name: str, mirror_dir: str, stems: tuple[str, ...], url: str, homepage: str) -> Dataset:
    """An evaluation set of one ``<stem>.jsonl`` per task, published as one (OSF) folder."""
    files = tuple(FileSpec(f"{s}.jsonl", f"{s}.jsonl") for s in stems)
    return Dataset(name, mirror_dir, files, (Source(url),), homepage)


def _ewok(name: str, filename: str, sources: tuple[Source, ...], note: str = "") -> Dataset:
    """An EWoK set: one password-protected zip, kept encrypted on disk (never extracted)."""
    return Dataset(
        name,
        "ewok",
        (FileSpec(filename, filename),),
        sources,
        "https://huggingface.co/datasets/ewok-core/ewok-core-1.0",
        note=note,
    )


def _registry() -> dict[str, Dataset]:
    corpora = [_babylm_corpus(release, track) for release in BABYLM_DOMAINS for track in TRACKS]
    blimp_zip = f"https://github.com/alexwarstadt/blimp/raw/{_BLIMP_COMMIT}/BLiMP.zip"
    evaluation = [
        # Original BLiMP, kept as the official BLiMP.zip (data/<UID>.jsonl inside).
        Dataset(
            "blimp",
            "blimp",
            (FileSpec("BLiMP.zip", "BLiMP.zip"),),
            (
                Source(
                    blimp_zip,
                    "172a1a714d72e72a89e8384dd531483f3d0f8a9aee3d33dccaf7992d8cecbb73",
                    extract=False,
                    filename="BLiMP.zip",
                ),
            ),
            "https://github.com/alexwarstadt/blimp",
        ),
        _jsonl_set(
            "blimp-filtered",
            "blimp_filtered",
            BLIMP_UIDS,
            f"{_OSF_2024}/evaluation_data/blimp_filtered",
            "https://osf.io/ad7qg/",
        ),
        _jsonl_set(
            "blimp-fast",
            "blimp_filtered/blimp_fast",
            BLIMP_UIDS,
            f"{_OSF_2025_FAST}/blimp_fast",
            "https://osf.io/ryjfm/",
        ),
        _jsonl_set(
            "blimp-supplement",
            "blimp_supplement",
            SUPPLEMENT_TASKS,
            f"{_OSF_2024}/evaluation_data/supplement_filtered",
            "https://osf.io/ad7qg/",
        ),
        _jsonl_set(
            "supplement-fast",
            "blimp_supplement/supplement_fast",
            SUPPLEMENT_TASKS,
            f"{_OSF_2025_FAST}/supplement_fast",
            "https://osf.io/ryjfm/",
        ),
        _ewok(
            "ewok-filtered",
            "ewok_filtered.zip",
            (),
            note="BabyLM does not distribute ewok_filtered: its 2024 pipeline builds it (ewok/dl_and_filter.py) "
            "from the gated Hugging Face dataset ewok-core/ewok-core-1.0; provide it as "
            "<data_mirror>/ewok/ewok_filtered.zip (zip -P BabyLM2025, members ewok_filtered/<domain>.jsonl)",
        ),
        # sha256 left None: the shared mirror's copy (310ffb7d…) is not checked against OSF from here.
        _ewok(
            "ewok-fast",
            "ewok_fast.zip",
            (Source(f"{_OSF_2025_FAST}/ewok_fast.zip", extract=False, filename="ewok_fast.zip"),),
        ),
        Dataset(
            GLUE_DATASET,
            "glue_filtered",
            tuple(FileSpec(f, f) for f in GLUE_FILES),
            (Source(f"{_OSF_2024}/evaluation_data/glue_filtered"),),
            "https://osf.io/ad7qg/",
            extra="*.jsonl",
            note="the shared mirror's mnli.train/qqp.train are BabyLM 2025's 10k-row subsamples",
        ),
    ]
    return {d.name: d for d in corpora + evaluation}


#: Every fetchable dataset by name (the workflow's ``{dataset}`` wildcard values).
DATASETS: dict[str, Dataset] = _registry()


# --- the mirror and EWoK's zips ----------------------------------------------------------------


def mirror_from(config_value: str | None) -> Path | None:
    """Resolve the mirror folder: the config value, else $BABYTEACH_DATA_MIRROR, else None (download).

    A configured folder that does not exist is an error rather than a silent download.
    """
    origin = "config key `data_mirror`"
    if not config_value:
        config_value, origin = os.environ.get(MIRROR_ENV) or None, f"environment variable {MIRROR_ENV}"
    if not config_value:
        return None
    path = Path(config_value).expanduser().resolve()
    if not path.is_dir():
        raise InputError(
            f"{origin} = {config_value!r}: folder {path} does not exist; point `data_mirror` (or {MIRROR_ENV}) "
            "at a folder laid out like shared/data, or set `data_mirror: null` and unset the variable to download"
        )
    return path


def missing_in_mirror(dataset: Dataset, mirror: Path) -> list[str]:
    """The dataset's required files (paths in its folder) that ``mirror/<mirror_dir>`` lacks."""
    folder = Path(mirror) / dataset.mirror_dir
    return [f.path for f in dataset.files if not (folder / f.path).is_file()]


def unavailable_reason(dataset: Dataset, mirror: Path | None) -> str | None:
    """Why :func:`fetch` cannot fetch ``dataset`` (None: it can), checked without fetching anything.

    With a mirror, every required file must be in ``mirror/<mirror_dir>`` (the copy never falls
    back to a download); without one, the dataset needs an official download. Whether the network
    answers is not checked: a download that fails stops its fetch job with its own message.
    """
    if mirror is not None:
        folder = Path(mirror) / dataset.mirror_dir
        if not folder.is_dir():
            return f"the data mirror {mirror} has no {dataset.mirror_dir}/ folder"
        missing = missing_in_mirror(dataset, mirror)
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            return f"the data mirror's {folder}/ lacks {len(missing)} of its {len(dataset.files)} files ({shown})"
        return None
    if not dataset.sources:
        return (
            f"it has no public download ({dataset.note or dataset.homepage}) and no data mirror is set "
            f"(config key `data_mirror` or the environment variable {MIRROR_ENV})"
        )
    return None


def open_ewok_zip(path: Path) -> zipfile.ZipFile:
    """Open an EWoK zip with its password set, so members can be read in memory (never extract them)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: EWoK zip not found; fetch it first (datasets ewok-filtered / ewok-fast)")
    archive = zipfile.ZipFile(path)
    archive.setpassword(EWOK_ZIP_PASSWORD.encode())
    return archive
