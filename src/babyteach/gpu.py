"""GPU utilisation sampling during training, for the model cards and the paper's GPU table.

A background thread reads NVML every ``interval_s`` seconds; on exit the samples are written
as one CSV (atomically) and summarised::

    with GpuSampler(ckpt_dir / "gpu.csv", interval_s=1.0) as gpu:
        ...                                                  # the training loop
    gpu.summary()
    # {"gpus": 1, "samples": 3600, "interval_s": 1.0, "duration_s": 3600.2, "visible": "CUDA_VISIBLE_DEVICES=0",
    #  "per_gpu": [{"index": 0, "name": "NVIDIA H200", "samples": 3600, "util_mean_pct": 87.1,
    #               "util_max_pct": 100.0, "mem_peak_mib": 40211.0, "mem_total_mib": 143771.0,
    #               "power_mean_w": 512.3}]}

The CSV has one row per GPU and sample: ``time_s`` (seconds since the sampler started),
``gpu`` (NVML index), ``util_pct``, ``mem_used_mib``, ``mem_total_mib`` and ``power_w``
(empty where the board does not report power).

Without a GPU (no NVML library, no driver, pynvml missing) nothing fails: the CSV gets its
header and no rows, :meth:`GpuSampler.summary` returns ``{"gpus": 0, "reason": ...}``, and
the reason is logged once. Only NVML's own errors are treated that way; anything else is a bug
and is raised.

Which GPUs: those this process can use, from ``CUDA_VISIBLE_DEVICES``
(:func:`visible_nvml_indices`). A comma list of integers is taken as NVML indices in CUDA's
order; CUDA stops at the first entry that is not a valid index, and so does the mapping.
Unset means every GPU; an empty value means none. Any other form (``GPU-<uuid>``,
``MIG-<uuid>``) is not mapped: every GPU is sampled and a warning says so. The integer mapping
assumes CUDA numbers GPUs in PCI-bus order as NVML does: guaranteed with
``CUDA_DEVICE_ORDER=PCI_BUS_ID``; under CUDA's default (fastest first) only the fastest GPU's
place is specified, which in practice is PCI order on a node of identical GPUs.

NVML is reached through a small adapter (:class:`NvmlBackend`); tests pass a fake one.
"""

from __future__ import annotations

import csv
import logging
import os
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from babyteach.errors import WriteError
from babyteach.io import atomic_path

log = logging.getLogger(__name__)

#: Columns of the sampler's CSV, in order.
CSV_COLUMNS = ("time_s", "gpu", "util_pct", "mem_used_mib", "mem_total_mib", "power_w")

_MIB = 2**20


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used here (no library, no driver, no pynvml, or a device read failed)."""


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one instant, in the units of the CSV."""

    util_pct: float  # share of the last sample period in which a kernel ran (NVML "GPU utilisation")
    mem_used_mib: float
    mem_total_mib: float
    power_w: float | None  # None where the board does not report power


class NvmlBackend(Protocol):
    """What the sampler needs from NVML. Every method raises :class:`NvmlUnavailable` on failure."""

    def init(self) -> None:
        """Start NVML."""

    def device_count(self) -> int:
        """Number of GPUs NVML sees (all of them, whatever ``CUDA_VISIBLE_DEVICES`` says)."""

    def name(self, index: int) -> str:
        """Product name of GPU ``index``, e.g. ``NVIDIA H200``."""

    def read(self, index: int) -> GpuReading:
        """Current utilisation, memory and power of GPU ``index``."""

    def shutdown(self) -> None:
        """Stop NVML."""


class PynvmlBackend:
    """:class:`NvmlBackend` over ``pynvml`` (the nvidia-ml-py package).

    ``pynvml.NVMLError`` (and a missing pynvml) become :class:`NvmlUnavailable`; other
    exceptions pass through.
    """

    def __init__(self) -> None:
        self._nvml: Any = None

    def init(self) -> None:
        try:
            import pynvml
        except ImportError as error:
            raise NvmlUnavailable(f"pynvml is not installed ({error}); install nvidia-ml-py") from error
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as error:
            raise NvmlUnavailable(f"NVML could not start: {error}") from error
        self._nvml = pynvml

    def _call(self, function: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml, function)(*args)
        except self._nvml.NVMLError as error:
            raise NvmlUnavailable(f"{function}{args}: {error}") from error

    def device_count(self) -> int:
        return int(self._call("nvmlDeviceGetCount"))

    def name(self, index: int) -> str:
        name = self._call("nvmlDeviceGetName", self._call("nvmlDeviceGetHandleByIndex", index))
        return name.decode() if isinstance(name, bytes) else str(name)  # bytes in older bindings

    def read(self, index: int) -> GpuReading:
        handle = self._call("nvmlDeviceGetHandleByIndex", index)
        util = self._call("nvmlDeviceGetUtilizationRates", handle)
        memory = self._call("nvmlDeviceGetMemoryInfo", handle)
        try:
            power_w: float | None = self._nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0  # mW → W
        except self._nvml.NVMLError:
            power_w = None  # not supported on this board (or not to this user): leave the cell empty
        return GpuReading(
            util_pct=float(util.gpu),
            mem_used_mib=memory.used / _MIB,
            mem_total_mib=memory.total / _MIB,
            power_w=power_w,
        )

    def shutdown(self) -> None:
        if self._nvml is not None:
            self._call("nvmlShutdown")
            self._nvml = None


def visible_nvml_indices(cuda_visible_devices: str | None, device_count: int) -> list[int] | None:
    """NVML indices of the GPUs CUDA shows this process, in CUDA's order; None when not mappable.

    ``None`` (unset) → every GPU. A comma list of integers → those indices, up to the first
    that is negative, repeated or not below ``device_count`` (CUDA ignores the rest, so
    ``"-1"`` or ``""`` hide every GPU). A list starting with anything else (UUIDs, MIG ids)
    → ``None``: the caller samples every GPU and says so.
    """
    if cuda_visible_devices is None:
        return list(range(device_count))
    indices: list[int] = []
    for entry in cuda_visible_devices.split(","):
        entry = entry.strip()
        if not entry:
            break
        try:
            index = int(entry)
        except ValueError:  # a UUID or MIG id: only mappable through NVML's UUIDs, not done here
            return indices if indices else None
        if not 0 <= index < device_count or index in indices:
            break
        indices.append(index)
    return indices


def summarize(rows: Sequence[Mapping[str, Any]], names: Mapping[int, str]) -> list[dict[str, Any]]:
    """Per GPU (in ``names``' order): mean and max utilisation, peak memory, mean power over ``rows``.

    ``rows`` are CSV rows (:data:`CSV_COLUMNS`); a GPU without rows gets ``None`` values, power
    is averaged over the rows that report it.
    """
    summary = []
    for index, name in names.items():
        mine = [row for row in rows if row["gpu"] == index]
        util = [row["util_pct"] for row in mine]
        power = [row["power_w"] for row in mine if row["power_w"] is not None]
        summary.append(
            {
                "index": index,
                "name": name,
                "samples": len(mine),
                "util_mean_pct": statistics.fmean(util) if util else None,
                "util_max_pct": max(util) if util else None,
                "mem_peak_mib": max(row["mem_used_mib"] for row in mine) if mine else None,
                "mem_total_mib": mine[-1]["mem_total_mib"] if mine else None,
                "power_mean_w": statistics.fmean(power) if power else None,
            }
        )
    return summary


class GpuSampler:
    """Context manager sampling the visible GPUs every ``interval_s`` seconds in a background thread.

    The first sample is taken on entry, then one per interval until exit. On exit, also when
    the body raises, the thread is stopped and the CSV is written atomically to ``csv_path``; a
    failed write (full disk, no permission) raises :class:`~babyteach.errors.WriteError` naming it,
    or, when the body raised, is logged as a warning so that the body's error is the one reported.
    A GPU read that fails mid-run is logged once per GPU and that sample skipped for it.
    """

    def __init__(
        self,
        csv_path: str | os.PathLike[str],
        interval_s: float = 1.0,
        backend: NvmlBackend | None = None,
        cuda_visible_devices: str | None = None,
    ) -> None:
        """``cuda_visible_devices`` defaults to the environment's ``CUDA_VISIBLE_DEVICES``."""
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.csv_path = Path(csv_path)
        self.interval_s = float(interval_s)
        self._backend: NvmlBackend = backend if backend is not None else PynvmlBackend()
        self._cuda_visible = (
            cuda_visible_devices if cuda_visible_devices is not None else os.environ.get("CUDA_VISIBLE_DEVICES")
        )
        self._names: dict[int, str] = {}  # NVML index → product name, of the sampled GPUs
        self._visible = "all GPUs"
        self._reason: str | None = None  # why nothing is sampled, if so
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: set[int] = set()
        self._samples = 0
        self._thread_error: BaseException | None = None
        self._started = 0.0
        self._duration = 0.0
        self._nvml_started = False

    # -- life cycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._stop.is_set():
            raise RuntimeError("a GpuSampler samples one block only; create a new one")
        self._started = time.monotonic()
        try:
            self._backend.init()
            self._nvml_started = True
            self._names = self._select_gpus()
        except NvmlUnavailable as error:
            self._reason = str(error)
        if not self._names and self._reason is None:
            self._reason = f"no GPU visible to this process ({self._visible})"
        if self._reason is not None:
            log.warning("GPU sampling off: %s", self._reason)
            return self
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._duration = time.monotonic() - self._started
        try:
            self._write_csv()
        except WriteError as error:
            if exc_type is None:
                raise
            # the body's own error (e.g. the disk filled while it wrote a checkpoint) is the one to report
            log.warning("%s", error)
        finally:
            if self._nvml_started:
                self._nvml_started = False
                try:
                    self._backend.shutdown()
                except NvmlUnavailable as error:
                    log.warning("NVML shutdown failed: %s", error)
        if self._thread_error is not None and exc_type is None:
            # A bug in sampling, not a missing GPU: surface it once the body is done (not over the body's own error).
            raise RuntimeError("the GPU sampling thread failed") from self._thread_error

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- sampling ----------------------------------------------------------------------------

    def _select_gpus(self) -> dict[int, str]:
        """NVML index → name of the GPUs this process uses (see :func:`visible_nvml_indices`)."""
        count = self._backend.device_count()
        indices = visible_nvml_indices(self._cuda_visible, count)
        if self._cuda_visible is not None:
            self._visible = f"CUDA_VISIBLE_DEVICES={self._cuda_visible}"
        if indices is None:
            log.warning(
                "CUDA_VISIBLE_DEVICES=%r is not a list of GPU indices; sampling all %d GPUs NVML sees",
                self._cuda_visible,
                count,
            )
            self._visible += " (not mapped: all GPUs sampled)"
            indices = list(range(count))
        return {index: self._backend.name(index) for index in indices}

    def _run(self) -> None:
        try:
            while True:
                self.sample()
                if self._stop.wait(self.interval_s):
                    return
        except BaseException as error:  # kept for __exit__, which raises it in the caller's thread
            self._thread_error = error
            log.exception("GPU sampling stopped by an unexpected error")

    def sample(self) -> None:
        """Take one sample of every sampled GPU now (the thread calls it every interval)."""
        now = time.monotonic() - self._started
        rows = []
        for index in self._names:
            try:
                reading = self._backend.read(index)
            except NvmlUnavailable as error:
                if index not in self._failed:  # a lost GPU would otherwise log every interval
                    self._failed.add(index)
                    log.warning("GPU %d: reading NVML failed (%s); its failed samples are skipped", index, error)
                continue
            rows.append(
                {
                    "time_s": now,
                    "gpu": index,
                    "util_pct": reading.util_pct,
                    "mem_used_mib": reading.mem_used_mib,
                    "mem_total_mib": reading.mem_total_mib,
                    "power_w": reading.power_w,
                }
            )
        with self._lock:
            self._rows.extend(rows)
            self._samples += 1

    # -- results -----------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """The samples so far, as CSV rows (:data:`CSV_COLUMNS`)."""
        with self._lock:
            return list(self._rows)

    def _write_csv(self) -> None:
        with atomic_path(self.csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for row in self.rows():
                writer.writerow({**row, "power_w": "" if row["power_w"] is None else row["power_w"]})

    def summary(self) -> dict[str, Any]:
        """JSON-able summary: ``{"gpus": 0, "reason": ...}`` without GPUs, else per-GPU statistics.

        Per GPU: mean and max utilisation (%), peak and total memory (MiB), mean power (W),
        and the number of samples (see :func:`summarize`).
        """
        if self._reason is not None:
            return {"gpus": 0, "reason": self._reason}
        with self._lock:
            rows, samples = list(self._rows), self._samples
        return {
            "gpus": len(self._names),
            "samples": samples,
            "interval_s": self.interval_s,
            "duration_s": self._duration if not self.running else time.monotonic() - self._started,
            "visible": self._visible,
            "per_gpu": summarize(rows, self._names),
        }
