"""Write failures name their path: a full disk (ENOSPC) or an unwritable folder while writing a
checkpoint, the metrics, the GPU samples, the saved models or a table gives one WriteError naming
the file and what to do; the last good file stays usable and the same command resumes.

The faults are injected where each library writes, raising what that library raises on a full
disk (checked on a real full tmpfs, see docs/ROBUSTNESS.md): Python's ``OSError(ENOSPC)``,
``torch.save``'s ``RuntimeError`` raised while handling the file's ``OSError``, and safetensors'
``SafetensorError`` with "(os error 28)" in its text.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from babyteach import gpu
from babyteach.errors import WriteError
from babyteach.gpu import GpuSampler
from babyteach.io import atomic_path, os_error_of, write_text_atomic
from babyteach.report.tables import write_table
from babyteach.train import TrainConfig, train
from babyteach.train_checkpoint import CHECKPOINT_FILE
from babyteach.train_job import main as train_job
from train_helpers import TINY, checkpoint_of, config, parameters_of

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]


class FullDisk(io.RawIOBase):
    """A writable file that takes ``room`` bytes into ``target``, then fails as a full disk does."""

    def __init__(self, target, room: int) -> None:
        self.target, self.room = target, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            self.target.write(bytes(data[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.target.write(data)


# --- what the libraries raise ---------------------------------------------------------------------


def test_the_os_error_is_found_behind_each_librarys_error(tmp_path: Path):
    with open(tmp_path / "x.pt", "wb") as f, pytest.raises(RuntimeError) as raised:
        torch.save({"w": torch.zeros(10_000)}, FullDisk(f, 100))  # the real torch.save on a full file
    assert not isinstance(raised.value, OSError)
    assert os_error_of(raised.value).errno == errno.ENOSPC
    from safetensors import SafetensorError

    rust = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert os_error_of(rust).errno == errno.ENOSPC
    assert os_error_of(ValueError("not an I/O problem")) is None


# --- the atomic writers ---------------------------------------------------------------------------


def test_a_full_disk_names_the_file_keeps_the_previous_one_and_leaves_no_temporary(tmp_path: Path):
    target = tmp_path / "results" / "summary.json"
    write_text_atomic(target, "good\n")
    with pytest.raises(WriteError) as raised, atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
    message = str(raised.value)
    assert message.startswith(f"{target}: cannot be written: No space left on device (ENOSPC).")
    assert f"`df -h {target.parent}`" in message and "run the same command again" in message
    assert message.endswith("the previous summary.json is unchanged")
    assert raised.value.path == target and raised.value.error.errno == errno.ENOSPC
    assert target.read_text() == "good\n"
    assert _no_temporaries(tmp_path)


def test_an_unwritable_folder_is_named_with_what_to_do(tmp_path: Path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / ".new.json.x.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(WriteError) as raised:
        write_text_atomic(tmp_path / "new.json", "{}")
    assert str(raised.value) == (
        f"{tmp_path / 'new.json'}: cannot be written: Permission denied (EACCES). No permission to write in "
        f"{tmp_path}: make it writable for you or run from a folder you own, then run the same command again; "
        f"nothing was written to {tmp_path / 'new.json'}"
    )


def test_a_read_error_inside_a_write_is_not_called_a_write_failure(tmp_path: Path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text((tmp_path / "missing-input.txt").read_text())
    assert not (tmp_path / "out.txt").exists() and _no_temporaries(tmp_path)


# --- training: checkpoints, metrics, models, GPU samples -----------------------------------------


def test_full_disk_at_a_checkpoint_keeps_the_previous_one_and_the_rerun_resumes(data, tmp_path, monkeypatch, capsys):
    shards, tokenizer = data
    cfg = dict(token_budget=30 * 8 * 16, batch_size=8, lr=3e-3, warmup_fraction=0.1, dev_blocks=16, device="cpu")
    settings = {"method": "baseline", "seed": 0, "block_size": 16, "teacher": TINY.to_dict(), "training": cfg}

    def job(name: str) -> list[str]:
        paths = {
            "shards": str(shards),
            "tokenizer": str(tokenizer),
            "output": str(tmp_path / name / "out"),
            "checkpoint_dir": str(tmp_path / name / "ckpt"),
            "cadence": {"checkpoint_every": 10, "log_every": 10, "eval_every": None},
        }
        return [json.dumps(settings), json.dumps(paths), str(tmp_path / f"{name}.log")]

    assert train_job(job("whole")) == 0
    real_save, saves = torch.save, []

    def save_until_the_disk_is_full(obj, f, *args, **kwargs):
        saves.append(obj["step"])
        if len(saves) == 2:  # the step-20 checkpoint meets a full disk
            return real_save(obj, FullDisk(f, 4096), *args, **kwargs)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_is_full)
    capsys.readouterr()
    assert train_job(job("full")) == 2
    checkpoint = checkpoint_of(tmp_path / "full" / "ckpt")
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("babyteach train")]  # one message
    assert "Traceback" not in err and "inline_container" not in err
    assert line == (
        f"babyteach train: error: {checkpoint}: cannot be written: No space left on device (ENOSPC). "
        f"The disk that holds {checkpoint.parent} is full: free space there (`df -h {checkpoint.parent}`) "
        "or move the output elsewhere, then run the same command again; the previous checkpoint is "
        "unchanged and the run resumes from it"
    )
    assert (tmp_path / "full.log").read_text().rstrip("\n").endswith(line.removeprefix("babyteach train: error: "))
    assert torch.load(checkpoint, weights_only=True)["step"] == 10  # the last good checkpoint, readable
    assert _no_temporaries(tmp_path / "full") and not (tmp_path / "full" / "out").exists()

    monkeypatch.setattr(torch, "save", real_save)  # space freed: the same command resumes
    assert train_job(job("full")) == 0
    assert "resumed from" in (tmp_path / "full.log").read_text()
    assert "at step 10 of 30" in (tmp_path / "full.log").read_text()
    whole, resumed = (
        parameters_of(tmp_path / "whole" / "out", "teacher"),
        parameters_of(tmp_path / "full" / "out", "teacher"),
    )
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)


def _train(data, root: Path):
    shards, tokenizer = data
    return train(
        "baseline",
        {"teacher": TINY},
        shards,
        tokenizer,
        root / "out",
        root / "ckpt",
        config(checkpoint_every=10, log_every=10),
    )


@pytest.mark.parametrize("writer", ["metrics", "model"])
def test_full_disk_while_writing_the_outputs_keeps_the_checkpoint_and_the_rerun_writes_them(
    data, tmp_path, monkeypatch, writer
):
    if writer == "metrics":
        real_write_text = Path.write_text

        def write_text(self, *args, **kwargs):
            if self.name == "metrics.jsonl":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
            return real_write_text(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)
        named = tmp_path / "out" / "metrics.jsonl"
    else:
        import transformers.modeling_utils as modeling_utils
        from safetensors import SafetensorError

        def save_file(tensors, filename, *args, **kwargs):
            Path(filename).write_bytes(b"\0" * 100)  # what fitted
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

        monkeypatch.setattr(modeling_utils, "safe_save_file", save_file)
        named = tmp_path / "out"  # safetensors does not say which file
    with pytest.raises(WriteError) as raised:
        _train(data, tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{named}: cannot be written: No space left on device (ENOSPC).")
    assert message.endswith(
        "the final checkpoint is kept: the same command writes the outputs from it without training again"
    )
    assert not (tmp_path / "out").exists() and _no_temporaries(tmp_path)
    assert torch.load(checkpoint_of(tmp_path / "ckpt"), weights_only=True)["step"] == 30

    monkeypatch.undo()
    summary = _train(data, tmp_path)
    assert summary["steps"] == 30 and (tmp_path / "out" / "metrics.jsonl").is_file()
    assert (tmp_path / "out" / "teacher" / "model.safetensors").is_file()


class FullDictWriter(csv.DictWriter):
    """csv.DictWriter on a full disk: the header fits, the first row does not."""

    def writerow(self, row):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_writing_gpu_samples_names_the_csv_and_keeps_the_previous_one(tmp_path, monkeypatch):
    from test_gpu import FAST, FakeNvml

    path = tmp_path / "ckpt" / "gpu.csv"
    with GpuSampler(path, interval_s=FAST, backend=FakeNvml(), cuda_visible_devices="0"):
        pass
    good = path.read_text()
    monkeypatch.setattr(gpu.csv, "DictWriter", FullDictWriter)
    with pytest.raises(WriteError, match=f"^{path}: cannot be written: No space left on device"):
        with GpuSampler(path, interval_s=FAST, backend=FakeNvml(), cuda_visible_devices="0"):
            pass
    assert path.read_text() == good and _no_temporaries(tmp_path)
    # when the block failed first (a checkpoint on the same full disk), its error is the one raised
    with pytest.raises(WriteError, match="checkpoint.pt"):
        with GpuSampler(path, interval_s=FAST, backend=FakeNvml(), cuda_visible_devices="0"):
            with atomic_path(tmp_path / "ckpt" / CHECKPOINT_FILE) as tmp:
                tmp.write_bytes(b"")
                raise ENOSPC
    assert path.read_text() == good


# --- tables -----------------------------------------------------------------------------------------


def test_full_disk_while_writing_a_table_keeps_the_previous_one(tmp_path, monkeypatch):
    corpus = tmp_path / "results" / "2024-10M" / "stats" / "corpus.csv"
    corpus.parent.mkdir(parents=True)
    corpus.write_text("domain,split,lines,words\nchildes,train,2,10\nchildes,dev,1,5\nchildes,test,1,4\n")
    tex, table_csv = tmp_path / "tables" / "table5.tex", tmp_path / "tables" / "table5.csv"
    write_table("table5", {"corpus": corpus}, tex, table_csv)
    good = table_csv.read_text()
    real_write_text = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.startswith(".table5.csv."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(WriteError, match=f"^{table_csv}: cannot be written: No space left on device"):
        write_table("table5", {"corpus": corpus}, tex, table_csv)
    assert table_csv.read_text() == good and _no_temporaries(tmp_path)
    monkeypatch.undo()
    write_table("table5", {"corpus": corpus}, tex, table_csv)  # space freed: the same call works
    assert table_csv.read_text() == good


# --- a real full disk -------------------------------------------------------------------------------


def _can_mount_tmpfs(folder: Path) -> bool:
    """Whether this machine lets an unprivileged user namespace mount a tmpfs (most Linux kernels do)."""
    folder.mkdir()
    probe = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=64k tmpfs {shlex.quote(str(folder))}",
        ],
        capture_output=True,
    )
    return probe.returncode == 0


def test_a_real_full_disk_at_a_checkpoint(data, tmp_path):
    """The training job on a tmpfs that holds one checkpoint but not the temporary of the next one."""
    if shutil.which("unshare") is None or not _can_mount_tmpfs(tmp_path / "probe"):
        pytest.skip("no user namespaces to mount a small tmpfs in (the monkeypatched tests above still run)")
    shards, tokenizer = data
    settings = {
        "method": "baseline",
        "seed": 0,
        "block_size": 16,
        "teacher": TINY.to_dict(),
        "training": {"token_budget": 30 * 8 * 16, "batch_size": 8, "lr": 3e-3, "dev_blocks": 16, "device": "cpu"},
    }

    def command(root: Path, name: str) -> str:
        job = {
            "shards": str(shards),
            "tokenizer": str(tokenizer),
            "output": str(tmp_path / name / "out"),
            "checkpoint_dir": str(root / "ckpt"),
            "cadence": {"checkpoint_every": 10, "log_every": 10, "eval_every": None},
        }
        args = [
            sys.executable,
            "-m",
            "babyteach.train_job",
            json.dumps(settings),
            json.dumps(job),
            str(tmp_path / f"{name}.log"),
        ]
        return " ".join(shlex.quote(arg) for arg in args)

    plain = tmp_path / "plain"  # the same run on a roomy disk, in this process
    train(
        "baseline",
        {"teacher": TINY},
        shards,
        tokenizer,
        plain / "out",
        plain / "ckpt",
        TrainConfig(**settings["training"], block_size=16, checkpoint_every=10, log_every=10, eval_every=None),
    )
    pages = -(-checkpoint_of(plain / "ckpt").stat().st_size // 4096)
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (
        f"mount -t tmpfs -o size={(pages + pages // 2) * 4096} tmpfs {disk} && "
        f"{{ {command(disk, 'full')} 2> {tmp_path / 'stderr'}; echo $? > {tmp_path / 'status'}; }} && "
        f"mount -o remount,size=16m {disk} && {command(disk, 'full')}"
    )
    subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert (tmp_path / "status").read_text().strip() == "2"
    err = (tmp_path / "stderr").read_text()
    (line,) = [line for line in err.splitlines() if line.startswith("babyteach train")]
    assert re.fullmatch(
        rf"babyteach train: error: {disk}/ckpt/run-\w+/checkpoint\.pt: cannot be written: No space "
        r"left on device \(ENOSPC\)\. The disk that holds .*the previous checkpoint is unchanged and "
        r"the run resumes from it",
        line,
    )
    assert "Traceback" not in err
    assert "at step 10 of 30" in (tmp_path / "full.log").read_text()  # the rerun, after space was freed
    whole, resumed = (parameters_of(tmp_path / name / "out", "teacher") for name in ("plain", "full"))
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)
