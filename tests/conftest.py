"""Shared test fixtures: the local data mirror and small seeded helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def mirror_path() -> Path:
    """The project's local data mirror: $BABYTEACH_DATA_MIRROR, else ../shared/data beside the repo."""
    return Path(os.environ.get("BABYTEACH_DATA_MIRROR", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """Path of the shared offline data mirror (skips nothing: CI always has it)."""
    path = mirror_path()
    assert (path / "SHA256SUMS").is_file(), f"data mirror not found at {path}; set BABYTEACH_DATA_MIRROR"
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, and do not slow down when other jobs share the cores
    (use as ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def planning_mirror(tmp_path_factory, data_mirror) -> Path:
    """A data mirror in which every registry dataset is present, for dry runs only.

    The shared mirror's folders are linked in; each dataset it lacks (the 100M and 2023 corpora)
    gets a folder of empty files under the expected names. A dry run's start-up check only asks
    whether the files exist, so configurations that need those corpora (config.yaml's Table 1)
    can be planned; running a job on this mirror would fail at the empty files.
    """
    from babyteach.data.registry import DATASETS, missing_in_mirror

    mirror = tmp_path_factory.mktemp("planning-mirror")
    for entry in data_mirror.iterdir():
        (mirror / entry.name).symlink_to(entry)
    for dataset in DATASETS.values():
        if (mirror / Path(dataset.mirror_dir).parts[0]).is_symlink():
            continue  # a folder of the shared mirror: never written to
        for path in missing_in_mirror(dataset, mirror):
            (mirror / dataset.mirror_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (mirror / dataset.mirror_dir / path).touch()
    return mirror


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The training tests' tiny corpus: ``(shards, tokenizer)`` (``train_helpers.tiny_corpus``)."""
    from train_helpers import tiny_corpus

    return tiny_corpus(tmp_path_factory.mktemp("train_data"))
