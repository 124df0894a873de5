"""Dataset fetching: the mirror layout, checksum verification, downloads with retries, EWoK zips."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import runpy
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from babyteach.acquire import fetch_dataset
from babyteach.data.corpora import BABYLM_DOMAINS, SPLITS
from babyteach.data.fetch import Osf, fetch
from babyteach.data.registry import (
    DATASETS,
    MIRROR_ENV,
    Dataset,
    FileSpec,
    Source,
    mirror_from,
    open_ewok_zip,
)
from babyteach.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mirror_sums(mirror: Path) -> dict[str, str]:
    """The mirror's SHA256SUMS as relative path → sha256."""
    lines = (mirror / "SHA256SUMS").read_text().splitlines()
    return {path.removeprefix("./"): digest for digest, path in (line.split("  ", 1) for line in lines)}


def manifest(dest: Path) -> dict:
    return json.loads((dest / "MANIFEST.json").read_text())


def assert_not_written(dest: Path) -> None:
    """Neither the destination nor a temporary sibling of it exists."""
    assert not dest.exists()
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")]


# --- the registry ------------------------------------------------------------------------------


def test_registry_names_are_the_workflow_wildcards() -> None:
    assert set(DATASETS) == {
        "babylm-2023-10M",
        "babylm-2023-100M",
        "babylm-2024-10M",
        "babylm-2024-100M",
        "blimp",
        "blimp-filtered",
        "blimp-fast",
        "blimp-supplement",
        "supplement-fast",
        "ewok-filtered",
        "ewok-fast",
        "glue-filtered",
    }
    for release in ("2023", "2024"):
        files = {f.path for f in DATASETS[f"babylm-{release}-100M"].files}
        assert files == {f"{d}.{s}" for d in BABYLM_DOMAINS[release] for s in SPLITS}


def test_unknown_dataset_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown dataset 'blimp-x'.*blimp-fast.*glue-filtered"):
        fetch_dataset("blimp-x", tmp_path / "out", None)


# --- from the shared mirror --------------------------------------------------------------------

# dataset → (mirror folder, number of files expected in it)
MIRRORED = {
    "babylm-2024-10M": ("babylm_10M", 18),
    "blimp": ("blimp", 1),
    "blimp-filtered": ("blimp_filtered", 67),
    "blimp-fast": ("blimp_filtered/blimp_fast", 67),
    "blimp-supplement": ("blimp_supplement", 5),
    "supplement-fast": ("blimp_supplement/supplement_fast", 5),
    "ewok-filtered": ("ewok", 1),
    "ewok-fast": ("ewok", 1),
    "glue-filtered": ("glue_filtered", 18),
}


@pytest.mark.parametrize("name", sorted(MIRRORED))
def test_fetch_from_mirror_gives_the_expected_verified_files(name: str, data_mirror: Path, tmp_path: Path) -> None:
    folder, count = MIRRORED[name]
    dest = tmp_path / name
    fetch_dataset(name, dest, data_mirror)
    files = {p.name for p in dest.iterdir()} - {"MANIFEST.json"}
    assert len(files) == count
    assert all((dest / f).is_file() for f in files)  # flat: no sub-folder (e.g. blimp_fast/) copied along
    if name.startswith("ewok"):
        assert files == {f"{name.replace('-', '_')}.zip"}
    sums = mirror_sums(data_mirror)
    record = manifest(dest)
    assert record["dataset"] == name and record["source"] == {"mirror": str(data_mirror / folder)}
    assert {f["path"] for f in record["files"]} == files
    for entry in record["files"]:
        assert entry["sha256"] == sums[f"{folder}/{entry['path']}"]
        assert entry["bytes"] == (dest / entry["path"]).stat().st_size


def test_fetched_corpus_is_flat_domain_split_files(data_mirror: Path, tmp_path: Path) -> None:
    fetch_dataset("babylm-2024-10M", tmp_path / "c", data_mirror)
    expected = {f"{d}.{s}" for d in BABYLM_DOMAINS["2024"] for s in SPLITS}
    assert {p.name for p in (tmp_path / "c").iterdir()} == expected | {"MANIFEST.json"}


def test_ewok_zip_stays_encrypted_and_opens_with_password(data_mirror: Path, tmp_path: Path) -> None:
    fetch_dataset("ewok-fast", tmp_path / "ewok", data_mirror)
    path = tmp_path / "ewok" / "ewok_fast.zip"
    with zipfile.ZipFile(path) as plain:
        member = next(n for n in plain.namelist() if n.endswith(".jsonl"))
        with pytest.raises(RuntimeError, match="password required"):
            plain.read(member)
    with open_ewok_zip(path) as archive:
        row = json.loads(archive.read(member).decode().splitlines()[0])
    assert {"Context1", "Target1", "Target2"} <= set(row)


def test_missing_mirror_folder_names_dataset_path_url_and_setting(data_mirror: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError) as error:
        fetch_dataset("babylm-2024-100M", tmp_path / "c", data_mirror)
    message = str(error.value)
    for part in (
        "'babylm-2024-100M'",
        str(data_mirror / "babylm_100M"),
        "osf://ad7qg/text_data/train_100M.zip",
        "data_mirror",
        MIRROR_ENV,
    ):
        assert part in message
    assert_not_written(tmp_path / "c")


def test_dataset_without_download_needs_a_mirror(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'ewok-filtered' has no official download.*dl_and_filter.*data_mirror"):
        fetch_dataset("ewok-filtered", tmp_path / "e", None)


# --- tiny temporary mirrors --------------------------------------------------------------------


def tiny_supplement_mirror(root: Path) -> Path:
    """A mirror holding only blimp_supplement/supplement_fast/ (5 one-line files) and its SHA256SUMS."""
    folder = root / "blimp_supplement" / "supplement_fast"
    folder.mkdir(parents=True)
    lines = []
    for task in ("hypernym", "qa_congruence_easy", "qa_congruence_tricky", "subject_aux_inversion", "turn_taking"):
        data = json.dumps({"sentence_good": f"{task} good.", "sentence_bad": f"{task} bad."}).encode() + b"\n"
        (folder / f"{task}.jsonl").write_bytes(data)
        lines.append(f"{sha256(data)}  ./blimp_supplement/supplement_fast/{task}.jsonl")
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return root


def test_tiny_mirror_copies_verbatim(tmp_path: Path) -> None:
    mirror = tiny_supplement_mirror(tmp_path / "mirror")
    fetch_dataset("supplement-fast", tmp_path / "out" / "sf", mirror)
    source = mirror / "blimp_supplement" / "supplement_fast" / "hypernym.jsonl"
    assert (tmp_path / "out" / "sf" / "hypernym.jsonl").read_bytes() == source.read_bytes()


def test_tampered_mirror_file_fails_and_writes_nothing(tmp_path: Path) -> None:
    mirror = tiny_supplement_mirror(tmp_path / "mirror")
    tampered = mirror / "blimp_supplement" / "supplement_fast" / "turn_taking.jsonl"
    expected = sha256(tampered.read_bytes())
    tampered.write_bytes(tampered.read_bytes().replace(b"good", b"goood"))
    dest = tmp_path / "out" / "sf"
    with pytest.raises(InputError) as error:
        fetch_dataset("supplement-fast", dest, mirror)
    message = str(error.value)
    for part in ("'supplement-fast'", str(tampered), expected, sha256(tampered.read_bytes())):
        assert part in message
    assert_not_written(dest)


def test_mirror_file_missing_from_sha256sums_is_an_error(tmp_path: Path) -> None:
    mirror = tiny_supplement_mirror(tmp_path / "mirror")
    sums = (mirror / "SHA256SUMS").read_text().splitlines()
    (mirror / "SHA256SUMS").write_text("\n".join(s for s in sums if "hypernym" not in s) + "\n")
    with pytest.raises(InputError, match="hypernym.jsonl is not listed in .*SHA256SUMS"):
        fetch_dataset("supplement-fast", tmp_path / "out", mirror)
    assert_not_written(tmp_path / "out")


def test_missing_mirror_file_names_dataset_path_url_and_setting(tmp_path: Path) -> None:
    mirror = tiny_supplement_mirror(tmp_path / "mirror")
    (mirror / "blimp_supplement" / "supplement_fast" / "turn_taking.jsonl").unlink()
    with pytest.raises(InputError) as error:
        fetch_dataset("supplement-fast", tmp_path / "out", mirror)
    message = str(error.value)
    for part in (
        "'supplement-fast'",
        "turn_taking.jsonl",
        str(mirror / "blimp_supplement" / "supplement_fast"),
        "osf://ryjfm/evaluation_data/fast_eval/supplement_fast",
        "data_mirror",
        MIRROR_ENV,
    ):
        assert part in message
    assert "hypernym" not in message.split("lacks")[1].split("Put")[0]  # only the missing file is listed


def test_registry_sha256_is_checked_for_mirror_copies(tmp_path: Path) -> None:
    (tmp_path / "mirror" / "blimp").mkdir(parents=True)
    (tmp_path / "mirror" / "blimp" / "BLiMP.zip").write_bytes(b"not the official zip")  # no SHA256SUMS here
    with pytest.raises(InputError, match=r"'blimp'.*expected sha256 172a1a71\w+ \(registry\)"):
        fetch_dataset("blimp", tmp_path / "out", tmp_path / "mirror")
    assert_not_written(tmp_path / "out")


def test_mirror_from_config_env_and_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert mirror_from(None) is None
    assert mirror_from(str(tmp_path)) == tmp_path.resolve()
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert mirror_from(None) == tmp_path.resolve()
    with pytest.raises(InputError, match="config key `data_mirror`.*does not exist"):
        mirror_from(str(tmp_path / "nope"))
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "nope"))
    with pytest.raises(InputError, match=f"environment variable {MIRROR_ENV}.*does not exist"):
        mirror_from(None)


def test_snakemake_script_fetches_into_its_output(data_mirror: Path, tmp_path: Path) -> None:
    snakemake = SimpleNamespace(
        log=[str(tmp_path / "fetch.log")],
        wildcards=SimpleNamespace(dataset="supplement-fast"),
        output=[str(tmp_path / "raw" / "supplement-fast")],
        params=SimpleNamespace(mirror=str(data_mirror), retries=1, timeout_s=5.0, on_decode_error=None),
        rule="fetch_data",
    )
    runpy.run_path(str(REPO / "workflow" / "scripts" / "fetch_data.py"), init_globals={"snakemake": snakemake})
    assert len(manifest(tmp_path / "raw" / "supplement-fast")["files"]) == 5


# --- downloads from a local HTTP server --------------------------------------------------------


@pytest.fixture
def server() -> Iterator[SimpleNamespace]:
    """An HTTP server on 127.0.0.1 serving ``routes`` (path → bytes); ``failures[path]`` 503s first."""
    state = SimpleNamespace(routes={}, failures=Counter(), hits=Counter())

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            state.hits[self.path] += 1
            if state.failures[self.path] > 0:
                state.failures[self.path] -= 1
                self.send_error(503)
            elif self.path not in state.routes:
                self.send_error(404)
            else:
                body = state.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


CORPUS = {  # a release-style archive: one folder per split, plus macOS junk and an unrelated file
    "data/train_tiny/a.train": b"train text\n",
    "data/dev/a.dev": b"dev text\n",
    "data/test/a.test": b"test text\n",
    "data/train_tiny/README.txt": b"not part of the corpus\n",
    "data/old_train_tiny/a.train": b"stale: only a suffix at a folder boundary may match\n",
    "__MACOSX/data/train_tiny/._a.train": b"junk",
    "__MACOSX/data/dev/a.dev": b"junk: macOS resource forks never count",
}


def tiny_corpus(url: str, sha: str | None = None) -> Dataset:
    files = tuple(
        FileSpec(f"a.{s}", f"{folder}/a.{s}")
        for s, folder in (("train", "train_tiny"), ("dev", "dev"), ("test", "test"))
    )
    return Dataset("tiny", "tiny", files, (Source(url, sha),), "https://example.org/tiny")


def test_download_extracts_zip_into_flat_layout(server: SimpleNamespace, tmp_path: Path) -> None:
    server.routes["/corpus.zip"] = data = zip_bytes(CORPUS)
    url = f"{server.url}/corpus.zip"
    fetch(tiny_corpus(url, sha256(data)), tmp_path / "out", None, backoff_s=0.01)
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"a.train", "a.dev", "a.test", "MANIFEST.json"}
    assert (out / "a.dev").read_bytes() == b"dev text\n"
    record = manifest(out)
    assert record["source"] == {"urls": [url]}
    assert {f["path"]: f["sha256"] for f in record["files"]}["a.train"] == sha256(b"train text\n")
    assert server.hits["/corpus.zip"] == 1


def test_download_of_tar_gz_with_optional_extras(server: SimpleNamespace, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in {
            "glue/x.valid.jsonl": b"{}\n",
            "glue/x.train.jsonl": b"{}\n{}\n",
            "glue/notes.md": b"no",
            "other/y.jsonl": b"{}\n",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    server.routes["/glue.tar.gz"] = buffer.getvalue()
    dataset = Dataset(
        "g",
        "g",
        (FileSpec("x.valid.jsonl", "x.valid.jsonl"),),
        (Source(f"{server.url}/glue.tar.gz"),),
        "https://example.org",
        extra="*.jsonl",
    )
    fetch(dataset, tmp_path / "g", None, backoff_s=0.01)
    assert {p.name for p in (tmp_path / "g").iterdir()} == {"x.valid.jsonl", "x.train.jsonl", "MANIFEST.json"}


def test_download_retries_after_a_server_error(server: SimpleNamespace, tmp_path: Path) -> None:
    server.routes["/corpus.zip"] = zip_bytes(CORPUS)
    server.failures["/corpus.zip"] = 1
    fetch(tiny_corpus(f"{server.url}/corpus.zip"), tmp_path / "out", None, retries=2, backoff_s=0.01)
    assert server.hits["/corpus.zip"] == 2
    assert (tmp_path / "out" / "a.test").read_bytes() == b"test text\n"


def test_download_gives_up_after_retries(server: SimpleNamespace, tmp_path: Path) -> None:
    server.routes["/corpus.zip"] = zip_bytes(CORPUS)
    server.failures["/corpus.zip"] = 5
    with pytest.raises(InputError, match="'tiny'.*3 attempt.*503"):
        fetch(tiny_corpus(f"{server.url}/corpus.zip"), tmp_path / "out", None, retries=3, backoff_s=0.01)
    assert server.hits["/corpus.zip"] == 3
    assert_not_written(tmp_path / "out")


def test_not_found_is_not_retried(server: SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="404"):
        fetch(tiny_corpus(f"{server.url}/gone.zip"), tmp_path / "out", None, retries=3, backoff_s=0.01)
    assert server.hits["/gone.zip"] == 1


def test_download_checksum_mismatch_writes_nothing(server: SimpleNamespace, tmp_path: Path) -> None:
    server.routes["/corpus.zip"] = zip_bytes(CORPUS)
    with pytest.raises(InputError, match="checksum mismatch.*expected sha256 0{64}"):
        fetch(tiny_corpus(f"{server.url}/corpus.zip", "0" * 64), tmp_path / "out", None, backoff_s=0.01)
    assert_not_written(tmp_path / "out")


def test_unreachable_url_names_dataset_url_and_mirror_setting(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/corpus.zip"
    with pytest.raises(InputError) as error:
        fetch(tiny_corpus(url), tmp_path / "out", None, retries=2, timeout_s=2.0, backoff_s=0.01)
    for part in ("'tiny'", url, "data_mirror", MIRROR_ENV, "<mirror>/tiny/"):
        assert part in str(error.value)
    assert_not_written(tmp_path / "out")


def test_osf_urls_resolve_folders_to_zips_and_files_to_downloads(server: SimpleNamespace, tmp_path: Path) -> None:
    base = server.url

    def listing(items: list[dict], next_page: str | None = None) -> bytes:
        return json.dumps({"data": items, "links": {"next": next_page}}).encode()

    def folder(name: str, path: str, href: str) -> dict:
        return {
            "attributes": {"name": name, "kind": "folder", "path": path},
            "relationships": {"files": {"links": {"related": {"href": href}}}},
        }

    server.routes.update(
        {
            "/v2/nodes/proj/files/osfstorage/": listing(
                [folder("text_data", "/t1/", f"{base}/v2/t1")], f"{base}/v2/p2"
            ),
            "/v2/p2": listing([folder("evaluation_data", "/e1/", f"{base}/v2/e1")]),
            "/v2/e1": listing(
                [
                    folder("tasks", "/f9/", f"{base}/v2/f9"),
                    {
                        "attributes": {"name": "secret.zip", "kind": "file", "path": "/s7"},
                        "links": {"download": f"{base}/v1/resources/proj/providers/osfstorage/s7"},
                    },
                ]
            ),
            "/v1/resources/proj/providers/osfstorage/f9/?zip=": zip_bytes({"t.jsonl": b"{}\n"}),
            "/v1/resources/proj/providers/osfstorage/s7": b"encrypted bytes",
        }
    )
    dataset = Dataset(
        "o",
        "o",
        (FileSpec("t.jsonl", "t.jsonl"), FileSpec("secret.zip", "secret.zip")),
        (
            Source("osf://proj/evaluation_data/tasks"),
            Source("osf://proj/evaluation_data/secret.zip", extract=False, filename="secret.zip"),
        ),
        "https://osf.io/proj/",
    )
    fetch(dataset, tmp_path / "o", None, backoff_s=0.01, osf=Osf(api=f"{base}/v2", files=f"{base}/v1"))
    assert (tmp_path / "o" / "secret.zip").read_bytes() == b"encrypted bytes"
    assert (tmp_path / "o" / "t.jsonl").read_bytes() == b"{}\n"
    assert manifest(tmp_path / "o")["source"] == {"urls": list(dataset.urls)}


# --- what fetch reads before the folder appears (issue 16) --------------------------------------


def damaged_mirror(root: Path, data_mirror: Path, name: str, file: str, damage) -> tuple[Path, Path]:
    """A mirror holding dataset ``name``'s files linked from the shared mirror, except ``file``, which is
    written as ``damage(original bytes)``; no SHA256SUMS, so only the reading can catch it.
    Returns (mirror, the damaged file)."""
    dataset = DATASETS[name]
    source, folder = data_mirror / dataset.mirror_dir, root / dataset.mirror_dir
    folder.mkdir(parents=True)
    for spec in dataset.files:
        if spec.path != file:
            (folder / spec.path).symlink_to(source / spec.path)
    (folder / file).write_bytes(damage((source / file).read_bytes()))
    return root, folder / file


def drop_field(field: str, line: int):
    """Remove ``field`` from the JSON object on 1-based ``line``."""

    def damage(data: bytes) -> bytes:
        lines = data.split(b"\n")
        row = json.loads(lines[line - 1])
        del row[field]
        lines[line - 1] = json.dumps(row).encode()
        return b"\n".join(lines)

    return damage


def set_field(field: str, value: object, line: int):
    def damage(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[line - 1] = json.dumps({**json.loads(lines[line - 1]), field: value}).encode()
        return b"\n".join(lines)

    return damage


def cut_line(line: int):
    """The file cut off in the middle of 1-based ``line``."""

    def damage(data: bytes) -> bytes:
        lines = data.split(b"\n")
        return b"\n".join(lines[: line - 1] + [lines[line - 1][: len(lines[line - 1]) // 2]])

    return damage


def bad_byte_on(line: int):
    def damage(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[line - 1] = lines[line - 1][:3] + b"\xff" + lines[line - 1][3:]
        return b"\n".join(lines)

    return damage


# (dataset, damaged file, damage, what the message must say about it)
DAMAGED = [
    (
        "blimp-fast",
        "adjunct_island.jsonl",
        drop_field("sentence_bad", 3),
        ["adjunct_island.jsonl, line 3", "'sentence_bad'"],
    ),
    ("supplement-fast", "turn_taking.jsonl", cut_line(2), ["turn_taking.jsonl, line 2", "not valid JSON"]),
    (
        "blimp-filtered",
        "passive_1.jsonl",
        set_field("linguistics_term", 7, 10),
        ["passive_1.jsonl, line 10", "'linguistics_term'"],
    ),
    ("ewok-fast", "ewok_fast.zip", lambda data: b"this is not a zip\n", ["ewok_fast.zip", "not a readable zip"]),
    ("glue-filtered", "cola.train.jsonl", set_field("label", 7, 5), ["cola.train.jsonl, line 5", "label 7"]),
    ("glue-filtered", "mrpc.valid.jsonl", drop_field("sentence2", 1), ["mrpc.valid.jsonl, line 1", "'sentence2'"]),
    ("babylm-2024-10M", "childes.dev", bad_byte_on(2), ["childes.dev: line 2", "not valid UTF-8"]),
]


@pytest.mark.parametrize(("name", "file", "damage", "says"), DAMAGED, ids=[f"{d[0]}:{d[1]}" for d in DAMAGED])
def test_a_damaged_file_stops_the_fetch_naming_file_and_line_and_writes_nothing(
    name: str, file: str, damage, says: list[str], data_mirror: Path, tmp_path: Path
) -> None:
    mirror, damaged = damaged_mirror(tmp_path / "mirror", data_mirror, name, file, damage)
    dest = tmp_path / "results" / "raw" / name
    with pytest.raises(InputError) as error:
        fetch_dataset(name, dest, mirror)
    message = str(error.value)
    assert f"dataset {name!r}" in message and str(damaged) in message  # the mirror's file, not a temporary
    for part in says:
        assert part in message, message
    # what to do: nothing to delete under results/, replace the mirror's file, rerun
    assert f"wrote nothing to {dest}" in message
    assert f"Replace the damaged file in {damaged.parent} with the official one" in message
    assert "rerun the same command" in message and f"babyteach fetch {name} {dest} --mirror {mirror}" in message
    assert ".tmp" not in message
    assert_not_written(dest)


def test_a_corpus_with_invalid_utf8_is_fetched_when_the_config_replaces_it(data_mirror: Path, tmp_path: Path) -> None:
    """corpus.on_decode_error: replace lets cleaning substitute U+FFFD, so fetch copies the bytes as they are."""
    mirror, damaged = damaged_mirror(tmp_path / "mirror", data_mirror, "babylm-2024-10M", "childes.dev", bad_byte_on(2))
    fetch_dataset("babylm-2024-10M", tmp_path / "c", mirror, on_decode_error="replace")
    assert (tmp_path / "c" / "childes.dev").read_bytes() == damaged.read_bytes()


def test_an_ewok_zip_that_does_not_open_with_the_password_stops_the_fetch(
    data_mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import babyteach.data.registry as registry_module

    monkeypatch.setattr(registry_module, "EWOK_ZIP_PASSWORD", "not-the-password")
    with pytest.raises(InputError, match=r"ewok_fast.zip: cannot decrypt .*\n.*wrote nothing") as error:
        fetch_dataset("ewok-fast", tmp_path / "ewok", data_mirror)
    assert str(data_mirror / "ewok" / "ewok_fast.zip") in str(error.value)
    assert_not_written(tmp_path / "ewok")


def test_a_damaged_download_names_the_download_and_says_to_download_again(
    server: SimpleNamespace, tmp_path: Path
) -> None:
    from dataclasses import replace

    from babyteach.acquire import validate_dataset

    tasks = ("hypernym", "qa_congruence_easy", "qa_congruence_tricky", "subject_aux_inversion", "turn_taking")
    good = json.dumps({"sentence_good": "A good one.", "sentence_bad": "A bad one."}).encode()
    members = {f"supplement_fast/{t}.jsonl": good + b"\n" for t in tasks}
    members["supplement_fast/turn_taking.jsonl"] = good + b"\n" + json.dumps({"sentence_good": "x"}).encode() + b"\n"
    server.routes["/sf.zip"] = zip_bytes(members)
    dataset = replace(DATASETS["supplement-fast"], sources=(Source(f"{server.url}/sf.zip"),))
    dest = tmp_path / "raw" / "supplement-fast"
    with pytest.raises(InputError) as error:
        fetch(dataset, dest, None, backoff_s=0.01, check=lambda folder: validate_dataset("supplement-fast", folder))
    message = str(error.value)
    assert f"[download of {server.url}/sf.zip]/turn_taking.jsonl, line 2" in message
    assert "'sentence_bad'" in message and f"wrote nothing to {dest}" in message
    assert "rerun the same command to download it again" in message
    assert_not_written(dest)


def test_a_fetch_that_reads_minimal_pairs_does_not_import_torch(data_mirror: Path, tmp_path: Path) -> None:
    """The pair reader (babyteach.evaluate.pairs) is torch-free, so a fetch job validating a minimal-pair
    set does not pay for importing torch (seconds per job); the scoring engine is a module of its own."""
    code = (
        "import sys; from pathlib import Path; from babyteach.acquire import fetch_dataset; "
        f"fetch_dataset('ewok-fast', Path({str(tmp_path / 'ewok')!r}), Path({str(data_mirror)!r})); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    assert (tmp_path / "ewok" / "MANIFEST.json").is_file()


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_registry_dataset_is_read_by_its_loader_when_fetched(name: str, tmp_path: Path) -> None:
    """A dataset without a reader would be copied unread: every registry name has one (an empty
    folder is reported as a missing file by that reader, not as an unknown dataset)."""
    from babyteach.acquire import validate_dataset

    with pytest.raises(InputError):
        validate_dataset(name, tmp_path)
