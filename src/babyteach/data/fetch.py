"""Fetch a dataset (BabyLM corpus or evaluation set) from a local mirror or its official URL.

Every dataset is described once, as data, in :data:`DATASETS`: where it is published, which
files it consists of, and where it lives in a local mirror laid out like ``shared/data``.
:func:`fetch` (through :func:`babyteach.data.acquire.fetch_dataset`) turns that description into a folder with a fixed, flat layout (a BabyLM
corpus becomes ``<domain>.<split>`` files whatever the release's archive layout), verifies every
byte against the known sha256 sums, and writes ``MANIFEST.json`` (name, source, per-file size
and sha256). The folder appears atomically: a failed fetch leaves nothing that looks complete.

    from babyteach.data.acquire import fetch_dataset   # fetch, then read every file (validate)
    from babyteach.data.fetch import mirror_from
    fetch_dataset("blimp-fast", Path("results/raw/blimp-fast"), mirror_from("../shared/data"))

EWoK is gated data that must not reach the web in plain text, so it stays in its
password-protected zip on disk; read it with :func:`open_ewok_zip`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import http.client
import json
import logging
import os
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TypeVar

from tqdm import tqdm

from babyteach.data.corpora import BABYLM_DOMAINS, SPLITS, TRACKS
from babyteach.errors import InputError
from babyteach.io import atomic_path, write_json_atomic

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Environment variable read when the config key ``data_mirror`` is null.
MIRROR_ENV = "BABYTEACH_DATA_MIRROR"

#: Password of BabyLM's EWoK zips, published in the BabyLM 2025 evaluation pipeline README.
EWOK_ZIP_PASSWORD = "BabyLM2025"

_MIRROR_HINT = (
    f"set the config key `data_mirror` (or the environment variable {MIRROR_ENV}) to a local "
    "folder laid out like shared/data (see shared/data/README.md)"
)
_CHUNK = 1 << 20
_USER_AGENT = "babyteach-fetch/0.1 (+https://babylm.github.io)"


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
        if self.sha256 is not None and (len(self.sha256) != 64 or not _is_hex(self.sha256)):
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
    zip_password: str | None = field(default=None, metadata={"help": "password of the dataset's zips"})
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


def _is_hex(text: str) -> bool:
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
        zip_password=EWOK_ZIP_PASSWORD,
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


# --- public API --------------------------------------------------------------------------------


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


def fetch(
    dataset: Dataset,
    dest: Path,
    mirror: Path | None,
    *,
    retries: int = 3,
    timeout_s: float = 60.0,
    backoff_s: float = 1.0,
    osf: Osf | None = None,
    check: Callable[[Path], None] | None = None,
) -> None:
    """Fetch ``dataset`` (any :class:`Dataset`, registered or not) into ``dest``; see :func:`babyteach.data.acquire.fetch_dataset`.

    ``backoff_s`` is the first wait between attempts (doubled each retry); ``osf`` the OSF
    endpoints used to resolve ``osf://`` URLs. ``check`` reads the staged folder before it is
    renamed to ``dest``; an :class:`InputError` it raises stops the fetch, naming the source file.
    """
    if retries < 1:
        raise InputError(f"download.retries must be >= 1, got {retries}")
    if dataset.note:
        log.info("%s: note: %s", dataset.name, dataset.note)
    if mirror is not None:
        _fetch_from_mirror(dataset, Path(dest), Path(mirror), check)
    else:
        net = _Net(dataset, retries, timeout_s, backoff_s, osf or Osf())
        _fetch_from_urls(dataset, Path(dest), net, check)


def open_ewok_zip(path: Path) -> zipfile.ZipFile:
    """Open an EWoK zip with its password set, so members can be read in memory (never extract them)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: EWoK zip not found; fetch it first (datasets ewok-filtered / ewok-fast)")
    archive = zipfile.ZipFile(path)
    archive.setpassword(EWOK_ZIP_PASSWORD.encode())
    return archive


# --- mirror ------------------------------------------------------------------------------------


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


def _fetch_from_mirror(dataset: Dataset, dest: Path, mirror: Path, check: Callable[[Path], None] | None) -> None:
    """Copy the dataset's files from ``mirror/<mirror_dir>``, verifying each against the sums."""
    folder = mirror / dataset.mirror_dir
    missing = missing_in_mirror(dataset, mirror)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(
            f"dataset {dataset.name!r}: the data mirror {mirror} lacks {folder}/ files: {shown}. "
            f"Put the official files there (official source: {', '.join(dataset.urls) or 'none'}; "
            f"see {dataset.homepage}{'; ' + dataset.note if dataset.note else ''}), or {_MIRROR_HINT}; "
            "with `data_mirror: null` and the variable unset, the dataset is downloaded from its URL"
        )
    rel_paths = [f.path for f in dataset.files]
    if dataset.extra:
        found = sorted(p.name for p in folder.glob(dataset.extra) if p.is_file())
        rel_paths += [p for p in found if p not in rel_paths]
    sums = _read_sha256sums(mirror)
    log.info("%s: copying %d files from %s", dataset.name, len(rel_paths), folder)
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        digests = {}
        for rel in rel_paths:
            digests[rel] = _copy_hashed(lambda rel=rel: open(folder / rel, "rb"), tmp / rel)
            _check_sha(dataset, folder / rel, dataset.official_sha256(rel), digests[rel], "registry")
            if sums is None:
                continue
            key = (PurePosixPath(dataset.mirror_dir) / rel).as_posix()
            if key not in sums:
                raise InputError(
                    f"dataset {dataset.name!r}: {folder / rel} is not listed in {mirror / 'SHA256SUMS'}; add its "
                    f"line (`sha256sum ./{key} >> SHA256SUMS` in {mirror}) so every copy is verified"
                )
            _check_sha(dataset, folder / rel, sums[key], digests[rel], f"{mirror / 'SHA256SUMS'}")
        fix = (
            f"Replace the damaged file in {folder} with the official one ({', '.join(dataset.urls) or dataset.homepage}), "
            "then rerun the same command: Snakemake fetches the dataset again (this step alone: "
            f"`babyteach fetch {dataset.name} {dest} --mirror {mirror}`)"
        )
        _check_staged(dataset, check, tmp, str(folder), dest, fix)
        _write_manifest(dataset, tmp, {"mirror": str(folder)}, digests)


def _read_sha256sums(mirror: Path) -> dict[str, str] | None:
    """Parse ``mirror/SHA256SUMS`` (``<sha256>  ./relative/path`` lines); None if the mirror has none."""
    path = mirror / "SHA256SUMS"
    if not path.is_file():
        return None
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, rel = line.strip().partition("  ")
        if not sep or len(digest) != 64 or not _is_hex(digest.lower()):
            raise InputError(f"{path}:{number}: expected '<sha256>  ./relative/path', got {line!r}")
        sums[PurePosixPath(rel.strip().lstrip("*")).as_posix().removeprefix("./")] = digest.lower()
    return sums


def _check_sha(dataset: Dataset, file: Path | str, expected: str | None, actual: str, where: str) -> None:
    """Raise if ``actual`` differs from a known ``expected`` sha256 (nothing is written then)."""
    if expected and expected != actual:
        raise InputError(
            f"dataset {dataset.name!r}: checksum mismatch for {file}: expected sha256 {expected} ({where}), "
            f"got {actual}. The file is corrupt or altered: replace it with the official file "
            f"({', '.join(dataset.urls) or dataset.homepage}); nothing was written"
        )


# --- download ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Osf:
    """OSF endpoints for ``osf://`` URLs: the JSON API and the file server (WaterButler)."""

    api: str = "https://api.osf.io/v2"
    files: str = "https://files.osf.io/v1"


@dataclass
class _Net:
    """How one dataset is downloaded: retry policy, timeouts and where OSF lives."""

    dataset: Dataset
    retries: int
    timeout_s: float
    backoff_s: float
    osf: Osf

    def attempt(self, what: str, action: Callable[[], _T]) -> _T:
        """Run ``action`` up to ``retries`` times with exponential backoff on transient errors."""
        for number in range(1, self.retries + 1):
            try:
                return action()
            except urllib.error.HTTPError as error:
                if error.code not in (408, 429) and error.code < 500:
                    raise self._failed(what, error, number) from error
                last: Exception = error
            # URLError and timeouts are OSErrors; a cut connection is an HTTPException or EOFError.
            except (OSError, EOFError, http.client.HTTPException, json.JSONDecodeError) as error:
                last = error
            log.warning("%s: attempt %d/%d of %s failed: %s", self.dataset.name, number, self.retries, what, last)
            if number < self.retries:
                time.sleep(self.backoff_s * 2 ** (number - 1))
        raise self._failed(what, last, self.retries)

    def _failed(self, what: str, error: Exception, attempts: int) -> InputError:
        return InputError(
            f"dataset {self.dataset.name!r}: could not download {what} for {', '.join(self.dataset.urls)} "
            f"({attempts} attempt(s); last error: {error}). "
            f"No network or the file moved (see {self.dataset.homepage})? Fetch it by hand and "
            f"{_MIRROR_HINT}, with the files under <mirror>/{self.dataset.mirror_dir}/"
        )

    def open(self, url: str) -> IO[bytes]:
        """One GET request (no retry), with our own User-Agent (some hosts refuse the urllib default)."""
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        return urllib.request.urlopen(request, timeout=self.timeout_s)  # noqa: S310 (http(s) only)

    def get_json(self, url: str) -> dict:
        """GET a JSON document (an OSF listing), with retries."""

        def action() -> dict:
            with self.open(url) as response:
                return json.loads(response.read())

        return self.attempt(url, action)

    def download(self, url: str, target: Path) -> str:
        """Download ``url`` to ``target`` with a progress bar; return its sha256."""

        def action() -> str:
            with self.open(url) as response, open(target, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, mininterval=1.0) as bar:
                    sha256 = _stream_hashed(response, out, on_chunk=bar.update)
                if total is not None and out.tell() != total:
                    raise EOFError(f"got {out.tell()} of {total} bytes")
                return sha256

        return self.attempt(url, action)

    def resolve(self, url: str) -> str:
        """Turn ``osf://<project>/<path>`` into a download URL (a folder becomes a zip); others unchanged."""
        if not url.startswith("osf://"):
            return url
        project, *parts = url.removeprefix("osf://").strip("/").split("/")
        listing = f"{self.osf.api}/nodes/{project}/files/osfstorage/"
        for depth, part in enumerate(parts):
            item = self._find(listing, part, url)
            if depth == len(parts) - 1:
                if item["attributes"]["kind"] == "file":
                    return item["links"]["download"]
                return f"{self.osf.files}/resources/{project}/providers/osfstorage{item['attributes']['path']}?zip="
            listing = item["relationships"]["files"]["links"]["related"]["href"]
        raise InputError(f"dataset {self.dataset.name!r}: {url} names no file or folder inside the OSF project")

    def _find(self, listing: str, name: str, url: str) -> dict:
        """The entry called ``name`` in an OSF folder listing (following pagination)."""
        page: str | None = listing
        while page:
            body = self.get_json(page)
            for item in body.get("data", []):
                if item["attributes"]["name"] == name:
                    return item
            page = (body.get("links") or {}).get("next")
        raise InputError(
            f"dataset {self.dataset.name!r}: {url}: no {name!r} in the OSF listing {listing}; the official "
            f"layout changed (see {self.dataset.homepage}); fetch the files by hand and {_MIRROR_HINT}"
        )


def _fetch_from_urls(dataset: Dataset, dest: Path, net: _Net, check: Callable[[Path], None] | None) -> None:
    """Download every source, verify it, and write the expected files (flattened) to ``dest``."""
    if not dataset.sources:
        raise InputError(
            f"dataset {dataset.name!r} has no official download ({dataset.note or dataset.homepage}); "
            f"{_MIRROR_HINT}, with the files under <mirror>/{dataset.mirror_dir}/"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.download.", dir=dest.parent) as staging:
        downloads = []
        for number, source in enumerate(dataset.sources):
            url = net.resolve(source.url)
            target = Path(staging) / f"{number}-{source.filename or 'download'}"
            log.info("%s: downloading %s", dataset.name, url)
            _check_sha(dataset, source.url, source.sha256, net.download(url, target), "registry")
            downloads.append((source, target))
        with contextlib.ExitStack() as stack:
            members: dict[str, Callable[[], IO[bytes]]] = {}
            for source, target in downloads:
                members.update(stack.enter_context(_members(dataset, source, target)))
            picked = _pick_members(dataset, members)
            with atomic_path(dest) as tmp:
                tmp.mkdir()
                digests = {rel: _copy_hashed(members[member], tmp / rel) for rel, member in picked.items()}
                fix = (
                    "The download is damaged or the official file changed: rerun the same command to download it "
                    f"again; if it fails the same way, fetch and check the files by hand and {_MIRROR_HINT}"
                )
                _check_staged(dataset, check, tmp, f"[download of {', '.join(dataset.urls)}]", dest, fix)
                _write_manifest(dataset, tmp, {"urls": dataset.urls}, digests)


@contextlib.contextmanager
def _members(dataset: Dataset, source: Source, path: Path) -> Iterator[dict[str, Callable[[], IO[bytes]]]]:
    """Map member name → opener for a downloaded file: a zip or tar archive, or the file itself."""
    if not source.extract:
        yield {source.filename or path.name: lambda: open(path, "rb")}
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            yield {i.filename: (lambda i=i: archive.open(i)) for i in archive.infolist() if not i.is_dir()}
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            yield {m.name: (lambda m=m: archive.extractfile(m)) for m in archive.getmembers() if m.isfile()}
    else:
        raise InputError(
            f"dataset {dataset.name!r}: {source.url} is neither a zip nor a tar archive; the official file "
            f"changed (see {dataset.homepage}); fetch it by hand and {_MIRROR_HINT}"
        )


def _pick_members(dataset: Dataset, members: dict[str, Callable[[], IO[bytes]]]) -> dict[str, str]:
    """Choose the archive member of every expected file (and optional extras): dest path → member."""
    names = [n for n in members if not n.startswith("__MACOSX/") and not n.endswith(".DS_Store")]
    picked: dict[str, str] = {}
    for spec in dataset.files:
        hits = [n for n in names if n.removeprefix("./") == spec.member or n.endswith("/" + spec.member)]
        if len(hits) != 1:
            raise InputError(
                f"dataset {dataset.name!r}: expected exactly one member ending in {spec.member!r} in the download "
                f"from {', '.join(dataset.urls)}, found {len(hits)} {hits[:3]}; the official layout changed "
                f"(see {dataset.homepage}); arrange the files by hand and {_MIRROR_HINT}"
            )
        picked[spec.path] = hits[0]
    if dataset.extra:
        parents = {PurePosixPath(m).parent for m in picked.values()}
        for name in names:
            base = PurePosixPath(name).name
            if PurePosixPath(name).parent in parents and fnmatch.fnmatch(base, dataset.extra):
                picked.setdefault(base, name)
    return picked


# --- shared helpers ----------------------------------------------------------------------------


def _check_staged(
    dataset: Dataset, check: Callable[[Path], None] | None, staged: Path, origin: str, dest: Path, fix: str
) -> None:
    """Run ``check`` on the staged folder; its :class:`InputError` becomes one that names the file where
    it came from (``origin`` replaces the staging folder in the message), says that nothing was written
    to ``dest``, and ends with ``fix``."""
    if check is None:
        return
    try:
        check(staged)
    except InputError as error:
        detail = str(error).replace(str(staged), origin)
        raise InputError(
            f"dataset {dataset.name!r}: a fetched file cannot be read: {detail}\n"
            f"The fetch stopped and wrote nothing to {dest}. {fix}."
        ) from None


def _stream_hashed(src: IO[bytes], out: IO[bytes], on_chunk: Callable[[int], object] | None = None) -> str:
    """Copy ``src`` to ``out`` in chunks (``on_chunk`` sees each chunk's size); return the sha256."""
    digest = hashlib.sha256()
    while chunk := src.read(_CHUNK):
        out.write(chunk)
        digest.update(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return digest.hexdigest()


def _copy_hashed(opener: Callable[[], IO[bytes]], target: Path) -> str:
    """Stream a file to ``target`` and return its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with opener() as src, open(target, "wb") as out:
        return _stream_hashed(src, out)


def _write_manifest(dataset: Dataset, folder: Path, source: dict[str, object], digests: dict[str, str]) -> None:
    """Write ``MANIFEST.json``: dataset name, source, and path/bytes/sha256 of every file written."""
    files = [{"path": rel, "bytes": (folder / rel).stat().st_size, "sha256": digests[rel]} for rel in sorted(digests)]
    write_json_atomic(folder / "MANIFEST.json", {"dataset": dataset.name, "source": source, "files": files})
    log.info("%s: wrote %d files (%d bytes)", dataset.name, len(files), sum(f["bytes"] for f in files))
