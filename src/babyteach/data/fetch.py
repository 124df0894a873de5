"""Fetch a registry dataset (BabyLM corpus or evaluation set) from a local mirror or its official URL.

What each dataset is (its official sources, expected files and mirror folder) is data in
:mod:`babyteach.data.registry`; this module moves and checks the bytes. :func:`fetch` (through
:func:`babyteach.acquire.fetch_dataset`) turns a :class:`~babyteach.data.registry.Dataset`
into a folder with a fixed, flat layout (a BabyLM corpus becomes ``<domain>.<split>`` files
whatever the release's archive layout), verifies every byte against the known sha256 sums (the
registry's and the mirror's ``SHA256SUMS``), and writes ``MANIFEST.json`` (name, source, per-file
size and sha256). Downloads are retried with backoff; ``osf://`` sources are resolved through the
OSF API. The folder appears atomically: a failed fetch leaves nothing that looks complete.

    from babyteach.acquire import fetch_dataset   # fetch, then read every file (validate)
    from babyteach.data.registry import mirror_from
    fetch_dataset("blimp-fast", Path("results/raw/blimp-fast"), mirror_from("../shared/data"))
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import http.client
import json
import logging
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TypeVar

from tqdm import tqdm

from babyteach.data.registry import MIRROR_ENV, Dataset, Source, is_hex, missing_in_mirror
from babyteach.errors import InputError
from babyteach.io import atomic_path, write_json_atomic

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_MIRROR_HINT = (
    f"set the config key `data_mirror` (or the environment variable {MIRROR_ENV}) to a local "
    "folder laid out like shared/data (see shared/data/README.md)"
)
_CHUNK = 1 << 20
_USER_AGENT = "babyteach-fetch/0.1 (+https://babylm.github.io)"


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
    """Fetch ``dataset`` (any :class:`Dataset`, registered or not) into ``dest``; see :func:`babyteach.acquire.fetch_dataset`.

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


# --- mirror ------------------------------------------------------------------------------------


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
        if not sep or len(digest) != 64 or not is_hex(digest.lower()):
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
