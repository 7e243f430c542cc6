"""Benchmark: read 96 uniformly sampled frames of a generated 10-minute video.

Compares decord (:class:`~vtgcore.data.video.DecordReader`), the seek-based PyAV reader
(:class:`~vtgcore.data.video.PyAVReader`; ``pyav_seek`` rebuilds its packet index each time,
``pyav_seek_cached_index`` reuses it) and a naive PyAV loop that decodes every frame. Each
reader's frames are checked against the frame ids drawn into the video.

Run from the repository root::

    python -m bench.decode [--minutes 10] [--fps 25] [--size 64] [--frames 96] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vtgcore.data import video as video_io
from vtgcore.data.pattern_videos import decode_frame_ids, write_test_video


def naive_pyav_read(path: Path, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every frame in order and keep the wanted ones (the baseline).

    Args:
        path: Video file.
        indices: Frame indices to keep.

    Returns:
        Frames ``(T, 3, H, W)`` uint8 and their times ``(T,)`` in the order of ``indices``.
    """
    import av

    wanted, kept, times = set(indices), {}, {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for position, frame in enumerate(container.decode(stream)):
            if position in wanted:
                kept[position], times[position] = frame.to_ndarray(format="rgb24"), float(frame.time)
    frames = torch.from_numpy(np.stack([kept[i] for i in indices])).permute(0, 3, 1, 2)
    return frames, torch.tensor([times[i] for i in indices], dtype=torch.float64)


def _pyav_cold(path: Path, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Seek-based PyAV read with an empty index cache (demux cost included)."""
    video_io._cached_index.cache_clear()
    return video_io.PyAVReader().read(path, indices)


def _pyav_warm(path: Path, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Seek-based PyAV read with the packet index already cached (a file read before)."""
    return video_io.PyAVReader().read(path, indices)


def _decord(path: Path, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """decord read, opening (and indexing) the file each time as a data loader would."""
    return video_io.DecordReader().read(path, indices)


def time_reader(
    read: Callable[[Path, list[int]], tuple[torch.Tensor, torch.Tensor]],
    path: Path,
    indices: list[int],
    repeats: int,
) -> float:
    """Best wall time of ``repeats`` calls; checks the decoded frame ids once.

    Args:
        read: ``(path, indices) -> (frames, times)``.
        path: Video file.
        indices: Frames to read.
        repeats: Number of timed calls.

    Returns:
        Seconds of the fastest call.
    """
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        frames, _ = read(path, indices)
        best = min(best, time.perf_counter() - start)
    if decode_frame_ids(frames) != indices:
        raise AssertionError(f"{read.__name__} returned the wrong frames")
    return best


def run(minutes: float, fps: float, size: int, frames: int, repeats: int) -> dict:
    """Write the video, time every reader and return the results.

    Args:
        minutes: Video length.
        fps: Video frame rate.
        size: Frame side in pixels.
        frames: Number of uniformly sampled frames to read.
        repeats: Timed calls per reader (best is kept).

    Returns:
        A JSON-ready dict with the setup and one row per reader.
    """
    readers: dict[str, Callable] = {
        "naive_pyav_decode_all": naive_pyav_read,
        "pyav_seek": _pyav_cold,
        "pyav_seek_cached_index": _pyav_warm,
    }
    if video_io._decord_available():
        readers = {"decord": _decord, **readers}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mp4"
        start = time.perf_counter()
        write_test_video(path, duration=minutes * 60, fps=fps, size=(size, size))
        write_seconds = time.perf_counter() - start
        num_frames = video_io.PyAVReader().probe(path).num_frames
        indices = video_io.sample_indices(num_frames, frames, "uniform")
        seconds = {name: time_reader(read, path, indices, repeats) for name, read in readers.items()}
    naive = seconds["naive_pyav_decode_all"]
    rows = [
        {"reader": name, "seconds": s, "frames_per_s": len(indices) / s, "speedup_vs_naive": naive / s}
        for name, s in seconds.items()
    ]
    setup = {
        "minutes": minutes,
        "fps": fps,
        "size": size,
        "video_frames": num_frames,
        "sampled": len(indices),
    }
    return {"setup": setup, "write_seconds": write_seconds, "machine": platform.machine(), "rows": rows}


def format_table(result: dict) -> str:
    """The rows of :func:`run` as a fixed-width text table."""
    lines = [f"{'reader':<24}{'seconds':>10}{'frames/s':>12}{'vs naive':>10}"]
    for row in result["rows"]:
        lines.append(
            f"{row['reader']:<24}{row['seconds']:>10.3f}{row['frames_per_s']:>12.1f}{row['speedup_vs_naive']:>9.1f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    result = run(args.minutes, args.fps, args.size, args.frames, args.repeats)
    setup = result["setup"]
    print(
        f"{setup['video_frames']} frames ({setup['minutes']} min, {setup['fps']} fps, {setup['size']}px, "
        f"written in {result['write_seconds']:.1f} s); reading {setup['sampled']} uniformly sampled frames"
    )
    print(format_table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
