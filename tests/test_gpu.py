"""GPU sampler: the no-GPU path, sampling and summary with a fake NVML, CUDA_VISIBLE_DEVICES, failures."""

from __future__ import annotations

import csv
import logging
import sys
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from babyteach.gpu import (
    CSV_COLUMNS,
    GpuReading,
    GpuSampler,
    NvmlUnavailable,
    PynvmlBackend,
    summarize,
    visible_nvml_indices,
)

FAST = 0.01  # seconds between samples with the fake


class FakeNvml:
    """Deterministic NVML: the k-th read (from 1) of GPU i reports utilisation 10k + i %,
    memory 100k of 1000 MiB and power 50 + k W (None with ``power=False``)."""

    def __init__(
        self,
        n_gpus: int = 2,
        power: bool = True,
        init_error: str | None = None,
        broken: frozenset[int] = frozenset(),
        bug: Exception | None = None,
    ) -> None:
        self.n_gpus, self.power, self.init_error, self.broken, self.bug = n_gpus, power, init_error, broken, bug
        self.reads = dict.fromkeys(range(n_gpus), 0)
        self.shut_down = False

    def init(self) -> None:
        if self.init_error is not None:
            raise NvmlUnavailable(self.init_error)

    def device_count(self) -> int:
        return self.n_gpus

    def name(self, index: int) -> str:
        return f"Fake GPU {index}"

    def read(self, index: int) -> GpuReading:
        if self.bug is not None:
            raise self.bug
        if index in self.broken:
            raise NvmlUnavailable("GPU is lost")
        self.reads[index] += 1
        k = self.reads[index]
        return GpuReading(
            util_pct=10.0 * k + index,
            mem_used_mib=100.0 * k,
            mem_total_mib=1000.0,
            power_w=50.0 + k if self.power else None,
        )

    def shutdown(self) -> None:
        self.shut_down = True


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the sampler took no samples"
        time.sleep(FAST / 2)


def read_csv(path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_no_gpu_on_this_machine_gives_header_only_and_a_reason(tmp_path, caplog):
    path = tmp_path / "gpu.csv"
    caplog.set_level(logging.WARNING, logger="babyteach.gpu")
    with GpuSampler(path, interval_s=FAST) as sampler:  # the real pynvml
        time.sleep(5 * FAST)
    summary = sampler.summary()
    if summary["gpus"]:
        pytest.skip("NVML works on this machine; the no-GPU path is covered with the fake below")
    assert set(summary) == {"gpus", "reason"} and summary["reason"]
    assert read_csv(path) == (list(CSV_COLUMNS), [])
    assert [r.message for r in caplog.records].count(f"GPU sampling off: {summary['reason']}") == 1
    assert not sampler.running


def test_nvml_init_failure_is_logged_once_and_writes_header_only(tmp_path, caplog):
    path, fake = tmp_path / "gpu.csv", FakeNvml(init_error="NVML Shared Library Not Found")
    caplog.set_level(logging.WARNING, logger="babyteach.gpu")
    with GpuSampler(path, interval_s=FAST, backend=fake, cuda_visible_devices="0") as sampler:
        time.sleep(5 * FAST)
    assert sampler.summary() == {"gpus": 0, "reason": "NVML Shared Library Not Found"}
    assert read_csv(path) == (list(CSV_COLUMNS), [])
    assert len(caplog.records) == 1 and fake.reads == {0: 0, 1: 0}
    assert not fake.shut_down  # NVML never started


def test_samples_visible_gpus_and_summarises_exactly(tmp_path):
    path, fake = tmp_path / "gpu.csv", FakeNvml(n_gpus=3)
    with GpuSampler(path, interval_s=FAST, backend=fake, cuda_visible_devices="2,0") as sampler:
        wait_for(lambda: fake.reads[0] >= 3)
        assert sampler.running
    assert not sampler.running and fake.shut_down
    header, rows = read_csv(path)
    assert header == list(CSV_COLUMNS)
    n = fake.reads[0]
    assert fake.reads == {0: n, 1: 0, 2: n}  # GPU 1 is not this process's
    assert [int(r["gpu"]) for r in rows] == [2, 0] * n  # CUDA's order within each sample
    for index in (0, 2):
        mine = [r for r in rows if int(r["gpu"]) == index]
        assert [float(r["util_pct"]) for r in mine] == [10.0 * k + index for k in range(1, n + 1)]
        assert [float(r["mem_used_mib"]) for r in mine] == [100.0 * k for k in range(1, n + 1)]
        assert [float(r["power_w"]) for r in mine] == [50.0 + k for k in range(1, n + 1)]
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times) and times[0] >= 0

    summary = sampler.summary()
    assert summary["gpus"] == 2 and summary["samples"] == n and summary["interval_s"] == FAST
    assert summary["visible"] == "CUDA_VISIBLE_DEVICES=2,0"
    assert summary["duration_s"] >= times[-1]
    assert summary["per_gpu"] == [
        {
            "index": index,
            "name": f"Fake GPU {index}",
            "samples": n,
            "util_mean_pct": 5.0 * (n + 1) + index,  # mean of 10k + i, k = 1..n
            "util_max_pct": 10.0 * n + index,
            "mem_peak_mib": 100.0 * n,
            "mem_total_mib": 1000.0,
            "power_mean_w": 50.0 + (n + 1) / 2,
        }
        for index in (2, 0)
    ]


def test_summarize_arithmetic():
    rows = [
        {"time_s": 0.0, "gpu": 0, "util_pct": 10.0, "mem_used_mib": 500.0, "mem_total_mib": 8000.0, "power_w": 100.0},
        {"time_s": 0.0, "gpu": 1, "util_pct": 0.0, "mem_used_mib": 1.0, "mem_total_mib": 8000.0, "power_w": None},
        {"time_s": 1.0, "gpu": 0, "util_pct": 95.0, "mem_used_mib": 7000.0, "mem_total_mib": 8000.0, "power_w": None},
        {"time_s": 2.0, "gpu": 0, "util_pct": 60.0, "mem_used_mib": 3000.0, "mem_total_mib": 8000.0, "power_w": 300.0},
    ]
    assert summarize(rows, {0: "A", 1: "B", 3: "C"}) == [
        {
            "index": 0,
            "name": "A",
            "samples": 3,
            "util_mean_pct": 55.0,
            "util_max_pct": 95.0,
            "mem_peak_mib": 7000.0,
            "mem_total_mib": 8000.0,
            "power_mean_w": 200.0,
        },
        {
            "index": 1,
            "name": "B",
            "samples": 1,
            "util_mean_pct": 0.0,
            "util_max_pct": 0.0,
            "mem_peak_mib": 1.0,
            "mem_total_mib": 8000.0,
            "power_mean_w": None,
        },
        {
            "index": 3,
            "name": "C",
            "samples": 0,
            "util_mean_pct": None,
            "util_max_pct": None,
            "mem_peak_mib": None,
            "mem_total_mib": None,
            "power_mean_w": None,
        },
    ]


def test_exception_in_body_stops_thread_and_still_writes_csv(tmp_path):
    path, fake = tmp_path / "gpu.csv", FakeNvml(n_gpus=1)
    sampler = GpuSampler(path, interval_s=FAST, backend=fake, cuda_visible_devices="0")
    with pytest.raises(KeyError, match="boom"), sampler:
        wait_for(lambda: fake.reads[0] >= 2)
        raise KeyError("boom")
    assert not sampler.running and fake.shut_down
    with pytest.raises(RuntimeError, match="one block only"), sampler:
        pass
    time.sleep(3 * FAST)
    _, rows = read_csv(path)
    assert len(rows) == fake.reads[0] >= 2  # nothing sampled after exit


def test_missing_power_is_an_empty_cell(tmp_path):
    path, fake = tmp_path / "gpu.csv", FakeNvml(n_gpus=1, power=False)
    with GpuSampler(path, interval_s=FAST, backend=fake, cuda_visible_devices="0") as sampler:
        wait_for(lambda: fake.reads[0] >= 1)
    _, rows = read_csv(path)
    assert {r["power_w"] for r in rows} == {""}
    assert sampler.summary()["per_gpu"][0]["power_mean_w"] is None


def test_failed_reads_are_skipped_and_logged_once(tmp_path, caplog):
    path, fake = tmp_path / "gpu.csv", FakeNvml(n_gpus=2, broken=frozenset({1}))
    caplog.set_level(logging.WARNING, logger="babyteach.gpu")
    with GpuSampler(path, interval_s=FAST, backend=fake, cuda_visible_devices="0,1") as sampler:
        wait_for(lambda: fake.reads[0] >= 3)
    _, rows = read_csv(path)
    assert {r["gpu"] for r in rows} == {"0"}
    assert [r.message.startswith("GPU 1: reading NVML failed") for r in caplog.records] == [True]
    gpu1 = sampler.summary()["per_gpu"][1]
    assert gpu1["index"] == 1 and gpu1["samples"] == 0 and gpu1["util_mean_pct"] is None


def test_a_sampling_bug_is_raised_after_the_body(tmp_path):
    path = tmp_path / "gpu.csv"
    buggy = FakeNvml(bug=ZeroDivisionError("bug"))
    sampler = GpuSampler(path, interval_s=FAST, backend=buggy, cuda_visible_devices="0")
    with pytest.raises(RuntimeError, match="sampling thread failed") as raised, sampler:
        time.sleep(3 * FAST)
    assert isinstance(raised.value.__cause__, ZeroDivisionError)
    assert read_csv(path) == (list(CSV_COLUMNS), [])


@pytest.mark.parametrize(
    "value, count, expected",
    [
        (None, 3, [0, 1, 2]),  # unset: every GPU
        ("", 3, []),  # empty: none
        ("2,0", 3, [2, 0]),  # CUDA's order
        (" 1 , 2 ", 3, [1, 2]),
        ("1,5,0", 3, [1]),  # CUDA stops at the first invalid index
        ("-1", 3, []),
        ("0,0", 3, [0]),
        ("GPU-8f6e2c1a-0000", 3, None),  # a UUID: not mapped
        ("MIG-1234", 1, None),
        ("0,GPU-8f6e2c1a", 2, [0]),
    ],
)
def test_visible_nvml_indices(value, count, expected):
    assert visible_nvml_indices(value, count) == expected


def test_unmapped_visible_devices_sample_every_gpu_and_say_so(tmp_path, caplog):
    fake = FakeNvml(n_gpus=2)
    caplog.set_level(logging.WARNING, logger="babyteach.gpu")
    with GpuSampler(
        tmp_path / "gpu.csv", interval_s=FAST, backend=fake, cuda_visible_devices="GPU-8f6e2c1a"
    ) as sampler:
        wait_for(lambda: fake.reads[1] >= 1)
    assert [g["index"] for g in sampler.summary()["per_gpu"]] == [0, 1]
    assert "not mapped" in sampler.summary()["visible"]
    assert "not a list of GPU indices" in caplog.text


def test_empty_visible_devices_means_no_gpu(tmp_path):
    fake = FakeNvml(n_gpus=2)
    with GpuSampler(tmp_path / "gpu.csv", interval_s=FAST, backend=fake, cuda_visible_devices="") as sampler:
        pass
    assert sampler.summary() == {"gpus": 0, "reason": "no GPU visible to this process (CUDA_VISIBLE_DEVICES=)"}
    assert fake.reads == {0: 0, 1: 0} and fake.shut_down


def test_pynvml_backend_converts_units_and_errors(monkeypatch):
    class NVMLError(Exception):
        pass

    def power(handle):
        if handle == 1:
            raise NVMLError("Not Supported")
        return 250_500  # mW

    fake_pynvml = SimpleNamespace(
        NVMLError=NVMLError,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetName=lambda handle: b"NVIDIA H200",
        nvmlDeviceGetUtilizationRates=lambda handle: SimpleNamespace(gpu=87, memory=40),
        nvmlDeviceGetMemoryInfo=lambda handle: SimpleNamespace(used=3 * 2**30, total=8 * 2**30),
        nvmlDeviceGetPowerUsage=power,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml)
    backend = PynvmlBackend()
    backend.init()
    assert backend.device_count() == 2 and backend.name(0) == "NVIDIA H200"
    assert backend.read(0) == GpuReading(util_pct=87.0, mem_used_mib=3072.0, mem_total_mib=8192.0, power_w=250.5)
    assert backend.read(1).power_w is None

    def lost(handle):
        raise NVMLError("GPU is lost")

    monkeypatch.setattr(fake_pynvml, "nvmlDeviceGetMemoryInfo", lost)
    with pytest.raises(NvmlUnavailable, match="GPU is lost"):
        backend.read(0)
    backend.shutdown()

    def no_library():
        raise NVMLError("NVML Shared Library Not Found")

    monkeypatch.setattr(fake_pynvml, "nvmlInit", no_library)
    with pytest.raises(NvmlUnavailable, match="Shared Library Not Found"):
        PynvmlBackend().init()
