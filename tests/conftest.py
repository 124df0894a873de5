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
