"""Timing and memory helpers of the benchmark suite: paired ratios, peak RSS, machine facts."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional


def sync(device: Any = None) -> None:
    """Wait for queued GPU work (no-op on the CPU)."""
    import torch

    if torch.cuda.is_available() and (device is None or str(device).startswith("cuda")):
        torch.cuda.synchronize()


def seconds(fn: Callable[[], Any], device: Any = None) -> float:
    """Wall time of one call, GPU work included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def paired(baseline: Callable[[], float], fast: Callable[[], float], repeats: int) -> dict[str, Any]:
    """Run ``baseline`` and ``fast`` back to back ``repeats`` times (alternating which goes first)
    and take the median of the per-pair ratios, so that a machine whose load drifts during the run
    still gives a fair ratio.

    Args:
        baseline: returns its measured seconds (lower is better).
        fast: likewise.
        repeats: pairs to run.

    Returns:
        ``baseline_s`` and ``fast_s`` (medians), ``ratio`` (median of baseline / fast per pair:
        above 1 means the fast path is faster) and ``ratios`` (every pair's).
    """
    base, quick, ratios = [], [], []
    for i in range(repeats):
        if i % 2:
            f = fast()
            b = baseline()
        else:
            b = baseline()
            f = fast()
        base.append(b)
        quick.append(f)
        ratios.append(b / f if f > 0 else float("inf"))
    return {"baseline_s": statistics.median(base), "fast_s": statistics.median(quick),
            "ratio": statistics.median(ratios), "ratios": ratios}


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``; else the peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return max_rss_bytes()


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far (``getrusage``; KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024


class PeakRSS:
    """Samples the process RSS every ``interval`` seconds in a thread while the block runs.

    Attributes:
        start: RSS when the block began.
        peak: highest RSS sampled (the block's own allocations on top of ``start``).
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, load, versions, GPU, git commit."""
    import torch
    import transformers

    info: dict[str, Any] = {
        "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu": platform.processor() or platform.machine(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["cuda_device"] = props.name
        info["cuda_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["cuda_version"] = torch.version.cuda
    try:
        root = Path(__file__).resolve().parents[3]  # the checkout holding vtgcore/ (no commit for a wheel)
        info["git_commit"] = None
        if (root / "pyproject.toml").is_file():  # not site-packages, which may sit in some other repository
            info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info
