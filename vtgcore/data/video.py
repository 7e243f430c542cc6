"""Video reading: frame sampling, a reader seam (decord, PyAV) and :func:`read_clip`.

Frame ``k`` of a video is the ``k``-th frame in presentation order, i.e. the ``k``-th smallest
packet pts of the video stream. Its timestamp is ``(pts - stream.start_time) * time_base`` in
seconds, the same definition decord uses (``get_frame_timestamp(k)[0]``), so both readers agree
on constant and on variable frame rate videos.

Frame times come in two kinds (``data.frame_times``, see :func:`frame_seconds`): the container's
(``container``, above) or the original VTG-LLM's ``round(index / avg_fps, 1)`` (``vtgllm``, for
replication). Both stay float64 Python floats until a tensor is needed; decord's float32 times are
read back as the decimal they stand for (:func:`seconds_list`), so 0.7 s is never written 0.6 s.

Every problem with a file raises :class:`~vtgcore.errors.VideoReadError` with the one-line
message ``"<path>: <problem>"``; decord and PyAV exceptions never leak out.
"""

from __future__ import annotations

import abc
import functools
import importlib
import os
from pathlib import Path
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import torch

from vtgcore.errors import VideoReadError
from vtgcore.types import seconds_list  # noqa: F401  (times as Python floats; defined in the kernel)
from vtgcore.utils.quiet import quiet_decord

SAMPLING_MODES = ("uniform", "uniform_vtgllm", "random_per_segment", "random_per_segment_legacy")
READER_NAMES = ("decord", "pyav", "auto")
FRAME_TIMES = ("container", "vtgllm")

PathLike = str | os.PathLike


@dataclass
class VideoInfo:
    """What a reader knows about a video without decoding it.

    Attributes:
        path: The file.
        num_frames: Number of video frames (packets of the video stream).
        fps: Average frame rate (frames per second).
        duration: Length of the video stream in seconds.
        width: Frame width in pixels.
        height: Frame height in pixels.
    """

    path: str
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int


@dataclass
class SampledClip:
    """Frames sampled from one video, with the time of each.

    Attributes:
        frames: ``(T, 3, H, W)`` uint8 RGB frames.
        timestamps: ``(T,)`` float64 seconds of each frame, from the container's pts.
        duration: Length of the video in seconds.
        indices: The frame index of each of the ``T`` frames.
        path: The file the frames came from.
        fps: The video's average frame rate as the reader reports it (decord's ``get_avg_fps()``,
            PyAV's ``average_rate``); 0.0 when unknown.
    """

    frames: torch.Tensor
    timestamps: torch.Tensor
    duration: float
    indices: list[int]
    path: str
    fps: float = 0.0


# --------------------------------------------------------------------------------------------
# Frame times


def vtgllm_frame_times(indices: Sequence[int], fps: float) -> list[float]:
    """The original VTG-LLM's frame times: ``round(index / fps, 1)`` for every frame index.

    ``index / fps`` is a float64 division and ``round`` Python's (correctly rounded to the
    nearest tenth, ties to even), as in the original's ``load_video``; the table row of such a
    time, ``round(t)``, is then the original's ``round(float(text))`` of the prompt's text.

    Args:
        indices: frame indices (into the whole video).
        fps: the average frame rate (decord's ``get_avg_fps()`` in the original).

    Returns:
        One float64 time in seconds per index.

    Raises:
        ValueError: ``fps`` is not a positive finite number.
    """
    fps = float(fps)
    if not (fps > 0 and np.isfinite(fps)):
        raise ValueError(f"frame_times 'vtgllm' needs the video's average frame rate, got {fps}")
    return [round(int(i) / fps, 1) for i in indices]


def frame_seconds(clip: SampledClip, mode: str = "container") -> torch.Tensor:
    """The times of a clip's frames under ``data.frame_times``.

    Args:
        clip: a clip from :func:`read_clip`.
        mode: ``container`` (each frame's presentation time) or ``vtgllm`` (the original's
            ``round(index / avg_fps, 1)``, :func:`vtgllm_frame_times`).

    Returns:
        float64 seconds.

    Shape:
        -> (T,)
    """
    if mode not in FRAME_TIMES:
        raise ValueError(f"unknown frame_times {mode!r}; allowed: {', '.join(FRAME_TIMES)}")
    if mode == "container":
        return clip.timestamps.to(torch.float64)
    try:
        return torch.tensor(vtgllm_frame_times(clip.indices, clip.fps), dtype=torch.float64)
    except ValueError as exc:
        raise _fail(clip.path, str(exc)) from None


# --------------------------------------------------------------------------------------------
# Sampling


def sample_indices(
    num_video_frames: int, n: int, mode: str, generator: torch.Generator | None = None
) -> list[int]:
    """Choose ``min(n, num_video_frames)`` sorted frame indices of a video.

    Modes:

    * ``uniform`` (evaluation): ``floor(i * vlen / n')`` for ``i < n'``, the original's formula;
      frame 0 is always taken and samples are not centred.
    * ``uniform_vtgllm``: the original's own computation, ``np.arange(0, vlen, vlen / n').astype(int)``:
      ``i * (vlen / n')`` in floats, truncated, which for some lengths lands one frame before the
      exact ``floor(i * vlen / n')`` (145 of the lengths 96..19,999 at n = 96; at 208 frames
      ``54 * (208 / 96)`` is 116.999..., index 116 instead of 117). Kept to replicate the
      original's evaluation (``load_video(sampling="uniform")``).
    * ``random_per_segment`` (training): ``[0, vlen)`` is split into ``n'`` segments at the
      integer boundaries ``floor(k * vlen / n')``; one frame is drawn uniformly from each
      segment, the segment's last frame included. Never raises, never repeats a frame.
    * ``random_per_segment_legacy``: the original VTG-LLM's draw, kept only to replicate its
      runs. It draws from ``[start, next_start - 2]``, so the last frame of a segment is never
      chosen (an off-by-one bug); when a segment has one frame (always when ``vlen < 2n``) it
      falls back to a sorted random subset of ``n'`` distinct frames.

    Args:
        num_video_frames: ``vlen``, number of frames in the video (``>= 0``).
        n: Number of frames wanted (``>= 1``).
        mode: One of :data:`SAMPLING_MODES`.
        generator: Random source of the random modes (global torch RNG when ``None``).

    Returns:
        ``n' = min(n, num_video_frames)`` sorted distinct indices.

    Raises:
        ValueError: Unknown mode, ``n < 1`` or a negative frame count.
    """
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; allowed: {', '.join(SAMPLING_MODES)}")
    if n < 1 or num_video_frames < 0:
        raise ValueError(
            f"need n >= 1 and num_video_frames >= 0, got n={n}, num_video_frames={num_video_frames}"
        )
    count = min(n, num_video_frames)
    if count == 0:
        return []
    if mode == "uniform":
        return [i * num_video_frames // count for i in range(count)]
    if mode == "uniform_vtgllm":
        return [int(i) for i in np.arange(0, num_video_frames, num_video_frames / count).astype(int)]
    starts = torch.arange(count + 1, dtype=torch.int64) * num_video_frames // count
    if mode == "random_per_segment":
        return _pick_in_segments(starts, 0, generator)
    return _pick_legacy(starts, num_video_frames, generator)


def _pick_in_segments(
    bounds: torch.Tensor, exclude_tail: int, generator: torch.Generator | None
) -> list[int]:
    """One uniform draw from ``[bounds[i], bounds[i+1] - 1 - exclude_tail]`` per segment."""
    starts, widths = bounds[:-1], bounds[1:] - bounds[:-1] - exclude_tail
    draws = torch.rand(len(starts), generator=generator, dtype=torch.float64)
    offsets = torch.minimum((draws * widths).floor().to(torch.int64), widths - 1)
    return (starts + offsets).tolist()


def _pick_legacy(bounds: torch.Tensor, num_video_frames: int, generator: torch.Generator | None) -> list[int]:
    """The original's draw: segment tails excluded, random subset when a segment is too short."""
    if bool(((bounds[1:] - bounds[:-1]) <= 1).any()):
        subset = torch.randperm(num_video_frames, generator=generator)[: len(bounds) - 1]
        return sorted(subset.tolist())
    return _pick_in_segments(bounds, 1, generator)


# --------------------------------------------------------------------------------------------
# Errors and basic checks


def _fail(path: PathLike, problem: object) -> VideoReadError:
    """A :class:`VideoReadError` with the one-line message ``"<path>: <problem>"``."""
    text = " ".join(str(problem).split()) or "unknown error"
    return VideoReadError(f"{os.fspath(path)}: {text}")


def _check_file(path: PathLike) -> None:
    """Raise unless ``path`` is an existing, non-empty regular file."""
    if not os.path.exists(path):
        raise _fail(path, "file not found")
    if not os.path.isfile(path):
        raise _fail(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise _fail(path, "empty file (0 bytes)")


def _ffmpeg_message(error: BaseException) -> str:
    """The useful part of a PyAV error (its strerror without the repeated file name)."""
    return getattr(error, "strerror", None) or str(error)


def _open_container(path: PathLike):
    """Open ``path`` with PyAV; return ``(container, video_stream)`` or raise VideoReadError."""
    import av

    _check_file(path)
    try:
        container = av.open(os.fspath(path), "r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise _fail(path, f"cannot open as a video: {_ffmpeg_message(error)}") from error
    if not container.streams.video:
        container.close()
        raise _fail(path, "no video stream")
    return container, container.streams.video[0]


def _stream_info(path: PathLike, container: Any, stream: Any, num_frames: int | None = None) -> VideoInfo:
    """A :class:`VideoInfo` from PyAV stream metadata.

    ``num_frames`` replaces the declared frame count (0 when the container declares none).
    """
    time_base = stream.time_base or Fraction(1, 1)
    count = int(stream.frames or 0) if num_frames is None else num_frames
    if stream.duration:
        duration = float(stream.duration * time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    else:
        duration = 0.0
    if stream.average_rate:
        fps = float(stream.average_rate)
    elif count and duration > 0:
        fps = count / duration
    else:
        fps = float(stream.guessed_rate or 0.0)
    if duration <= 0 and fps > 0:
        duration = count / fps
    width, height = stream.codec_context.width, stream.codec_context.height
    return VideoInfo(os.fspath(path), count, fps, duration, width, height)


# --------------------------------------------------------------------------------------------
# Reader seam


class VideoReader(abc.ABC):
    """Reads frames of a video by index. Implementations: :class:`DecordReader`, :class:`PyAVReader`."""

    name: str = ""

    @abc.abstractmethod
    def probe(self, path: PathLike) -> VideoInfo:
        """Describe a video without decoding it.

        Args:
            path: Video file.

        Returns:
            Frame count, frame rate, duration and size.

        Raises:
            VideoReadError: The file is missing, empty, unreadable or has no video stream.
        """

    @abc.abstractmethod
    def read(
        self, path: PathLike, indices: list[int], size: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode the frames at ``indices`` (any order, repeats allowed).

        Args:
            path: Video file.
            indices: Frame indices in presentation order, each in ``[0, num_frames)``.
            size: ``(height, width)`` to resize to while decoding; native size when ``None``.

        Returns:
            ``frames`` uint8 RGB and ``timestamps`` float64 seconds, in the order of ``indices``.

        Raises:
            VideoReadError: The file cannot be read or a frame cannot be decoded.

        Shape:
            frames: ``(T, 3, H, W)`` with ``T = len(indices)``; timestamps: ``(T,)``.
        """

    def read_clip(
        self,
        path: PathLike,
        num_frames: int,
        sampling: str = "uniform",
        size: tuple[int, int] | None = None,
        generator: torch.Generator | None = None,
    ) -> SampledClip:
        """Probe, sample indices and read them (see :func:`vtgcore.data.video.read_clip`)."""
        info = self.probe(path)
        if info.num_frames <= 0:
            raise _fail(path, "video stream has no frames")
        indices = sample_indices(info.num_frames, num_frames, sampling, generator)
        frames, timestamps = self.read(path, indices, size)
        return SampledClip(frames, timestamps, info.duration, indices, os.fspath(path), info.fps)


def _check_indices(path: PathLike, indices: list[int], num_frames: int) -> None:
    """Raise when an index is outside ``[0, num_frames)``."""
    bad = [i for i in indices if not 0 <= i < num_frames]
    if bad:
        raise _fail(path, f"frame index {bad[0]} out of range (video has {num_frames} frames)")


def _empty(size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero frames of the given size, for an empty index list."""
    return torch.empty((0, 3, *size), dtype=torch.uint8), torch.empty(0, dtype=torch.float64)


class DecordReader(VideoReader):
    """decord ``VideoReader`` (``get_batch``, ``get_frame_timestamp``), as the original.

    Frames are resized while decoding when ``size`` is given (decord's ``width``/``height``,
    ffmpeg's default bicubic scaler), exactly like the original's ``VideoReader(uri, 224, 224)``.
    The file is checked with PyAV first (exists, non-empty, opens, has a video stream, all
    declared frames present) because decord prints to stderr and can misbehave on such files.

    decord 0.6.0 quirks (x86_64 wheel):

    * times are float32 (exact to about 0.25 ms after two hours); VFR mp4/mkv times are right;
    * some output widths (2-16, 24, 48, 72 px) break its resize; those fall back to a native
      decode plus a torchvision resize (see :meth:`_read_then_resize`);
    * MPEG-TS with B-frames: it returns frames one GOP late while reporting the right times,
      and it cannot open VFR MPEG-TS. Use :class:`PyAVReader` for ``.ts`` files;
    * it bundles an old libvpx that, once decord is imported, breaks PyAV's libvpx *encoder*;
    * ``get_batch`` with indices that are not consecutive seeks before every frame, even when the
      next one is a few frames on: reading 16 frames of a 140-frame VTG-Synth video took 1.5x as
      long as decoding all 140 (one thread, quiet machine; more under load). So frames at most
      ``seek_gap`` after the previous one are decoded
      through (``get_batch`` of a consecutive run, in chunks of at most ``chunk_bytes``) and
      only the requested ones kept; the frames are the same.

    Args:
        num_threads: decord decoding threads (0 = decord's default).
        seek_gap: decode through to the next requested frame when it is at most this many frames
            on; seek when it is farther (1: seek for every frame that does not follow the last).
        chunk_bytes: the most decoded pixels held at once per run (bounds memory on long runs).
    """

    name = "decord"

    def __init__(self, num_threads: int = 0, seek_gap: int = 32, chunk_bytes: int = 64 << 20) -> None:
        if seek_gap < 1 or chunk_bytes < 1:
            raise ValueError(f"seek_gap and chunk_bytes must be >= 1, got {seek_gap} and {chunk_bytes}")
        self.num_threads = num_threads
        self.seek_gap = seek_gap
        self.chunk_bytes = chunk_bytes

    def _open(self, path: PathLike, size: tuple[int, int] | None = None):
        """Check the file with PyAV, then open it with decord."""
        container, stream = _open_container(path)
        info = _stream_info(path, container, stream)
        container.close()
        decord = importlib.import_module("decord")
        quiet_decord(decord)  # its FFmpeg log lines only with vtg --debug
        height, width = size if size is not None else (-1, -1)
        try:
            reader = decord.VideoReader(
                os.fspath(path), ctx=decord.cpu(0), width=width, height=height, num_threads=self.num_threads
            )
        except Exception as error:  # decord raises DECORDError, RuntimeError or worse
            try:  # PyAV's verdict on the same file, so both readers report it in the same words
                _frame_index(path)
            except VideoReadError as verdict:
                raise verdict from None
            raise _fail(path, f"decord cannot read it: {_decord_message(error)}") from error
        _check_complete(path, len(reader), info.num_frames)
        return reader, info

    def probe(self, path: PathLike) -> VideoInfo:
        """Frame count and average rate from decord; duration and size from the PyAV check."""
        reader, info = self._open(path)
        info.num_frames, info.fps = len(reader), float(reader.get_avg_fps())
        return info

    def read(
        self, path: PathLike, indices: list[int], size: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``get_batch`` and ``get_frame_timestamp(indices)[:, 0]`` (see :meth:`VideoReader.read`)."""
        reader, info = self._open(path, size)
        return self._read_open(path, reader, info, indices, size)

    def read_clip(
        self,
        path: PathLike,
        num_frames: int,
        sampling: str = "uniform",
        size: tuple[int, int] | None = None,
        generator: torch.Generator | None = None,
    ) -> SampledClip:
        """Like :meth:`VideoReader.read_clip`, opening (and indexing) the file once."""
        reader, info = self._open(path, size)
        if len(reader) <= 0:
            raise _fail(path, "video stream has no frames")
        indices = sample_indices(len(reader), num_frames, sampling, generator)
        frames, timestamps = self._read_open(path, reader, info, indices, size)
        fps = float(reader.get_avg_fps())  # the original's frame rate
        return SampledClip(frames, timestamps, info.duration, indices, os.fspath(path), fps)

    def _read_open(
        self, path: PathLike, reader: Any, info: VideoInfo, indices: list[int], size: tuple[int, int] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Read ``indices`` from an open decord reader."""
        _check_indices(path, indices, len(reader))
        if not indices:
            return _empty(size or (info.height, info.width))
        try:
            batch = self._get_frames(reader, indices, size or (info.height, info.width))
            times = reader.get_frame_timestamp(list(indices))[:, 0]
        except Exception as error:  # DECORDError and friends
            if size is not None and _SIZE_MISMATCH in str(error):
                return self._read_then_resize(path, indices, size)
            raise _fail(path, f"decoding failed: {_decord_message(error)}") from error
        if batch.shape[-1] != 3:  # the same decord resize bug, should it ever not raise
            return self._read_then_resize(path, indices, size or (info.height, info.width))
        frames = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
        # decord's times are float32: read them back as decimals (0.699999988 -> 0.7)
        return frames, torch.tensor(seconds_list(np.asarray(times, dtype=np.float32)), dtype=torch.float64)

    def _get_frames(self, reader: Any, indices: list[int], size: tuple[int, int]) -> np.ndarray:
        """``get_batch(indices)`` decoding consecutive runs (see the class note).

        Shape:
            returns (len(indices), H, W, C) uint8, frame ``indices[i]`` at row ``i``.
        """
        wanted = sorted(set(indices))
        per_chunk = max(1, self.chunk_bytes // max(1, size[0] * size[1] * 3))
        kept: dict[int, np.ndarray] = {}
        start = 0
        while start < len(wanted):
            # extend the run while the next wanted frame is near and the chunk stays small
            end = start
            while (end + 1 < len(wanted) and wanted[end + 1] - wanted[end] <= self.seek_gap
                   and wanted[end + 1] - wanted[start] < per_chunk):
                end += 1
            first, last = wanted[start], wanted[end]
            run = reader.get_batch(list(range(first, last + 1))).asnumpy()
            picked = run[np.asarray(wanted[start:end + 1]) - first]  # a copy: the run is freed
            kept.update(zip(wanted[start:end + 1], picked))
            start = end + 1
        return np.stack([kept[i] for i in indices])

    def _read_then_resize(
        self, path: PathLike, indices: list[int], size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode at native size and resize with torchvision (bicubic, antialiased).

        decord 0.6.0 cannot resize to some output widths (2-16, 24, 48, 72 px, seen on x86_64):
        its filter graph then yields 4-channel frames and ``get_batch`` fails with "The size must
        exactly match". Those sizes take this slower path.
        """
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as tvf

        frames, times = self.read(path, indices, None)
        resized = tvf.resize(frames, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
        return resized, times


_SIZE_MISMATCH = "size must exactly match"
_DECORD_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")


def _decord_message(error: BaseException) -> str:
    """Decord's error text without its ``[time] file.cc:line:`` prefix and stack trace."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = next((line for line in lines if "Stack trace" not in line), type(error).__name__)
    return _DECORD_PREFIX.sub("", first).strip() or type(error).__name__


@dataclass(frozen=True)
class _FrameIndex:
    """Packet pts of a video stream in presentation order, with keyframe positions.

    Attributes:
        pts: ``(N,)`` int64 pts, sorted.
        keyframes: Sorted positions (into ``pts``) of keyframes.
        origin: A timestamp before every packet's pts and dts, to seek to the very start.
        start: Stream start time in time-base units (subtracted for timestamps).
        time_base: Seconds per pts unit.
        declared: Frame count the container declares (0 when unknown).
        backwards: The first pts (decode order) that is smaller than one before it, with that
            larger pts, when the codec does not reorder frames (no B-frames): such a stream's
            timestamps are not monotonic. None otherwise.
    """

    pts: np.ndarray
    keyframes: np.ndarray
    origin: int
    start: int
    time_base: Fraction
    declared: int
    backwards: tuple[int, int] | None = None

    def seconds(self, positions: np.ndarray) -> np.ndarray:
        """Timestamps (float64 seconds) of frames at ``positions``: ``(pts - start) * time_base``
        correctly rounded (one division of exact integers), so a time of exactly 0.7 s is 0.7."""
        ticks = np.asarray(self.pts[positions] - self.start, dtype=np.int64)
        num, den = int(self.time_base.numerator), int(self.time_base.denominator)
        if ticks.size and (int(np.abs(ticks).max()) * abs(num) >= 2**53 or den >= 2**53):
            # not exact in float64: exact fractions, then one rounding
            return np.array([float(Fraction(int(t)) * self.time_base) for t in ticks.reshape(-1)],
                            dtype=np.float64).reshape(ticks.shape)
        return (ticks * num).astype(np.float64) / float(den)

    def keyframe_before(self, position: int) -> int:
        """Number of the last keyframe at or before frame ``position`` (-1 if there is none)."""
        return int(np.searchsorted(self.keyframes, position, side="right")) - 1

    def keyframe_position(self, keyframe: int) -> int:
        """Frame position of keyframe number ``keyframe`` (-1 for the stream start)."""
        return int(self.keyframes[keyframe]) if keyframe >= 0 else -1


@functools.lru_cache(maxsize=32)
def _cached_index(path: str, size: int, mtime_ns: int) -> _FrameIndex:
    """Build the frame index of a file by demuxing its packets (no decoding); cached per file version."""
    container, stream = _open_container(path)
    try:
        return _demux_index(path, container, stream)
    finally:
        container.close()


def _demux_index(path: str, container: Any, stream: Any) -> _FrameIndex:
    """Walk the video packets and collect their pts and keyframe flags."""
    import av

    pts, earliest, keys = [], [], []
    try:
        for packet in container.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if packet.size == 0 or stamp is None:
                continue
            pts.append(stamp)
            earliest.append(min(stamp, packet.dts) if packet.dts is not None else stamp)
            keys.append(packet.is_keyframe)
    except av.FFmpegError as error:
        raise _fail(path, f"cannot demux the video stream: {_ffmpeg_message(error)}") from error
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    origin = min(earliest, default=0) - 1
    start = stream.start_time if stream.start_time is not None else 0
    backwards = None
    if not getattr(stream.codec_context, "has_b_frames", 0):
        decode_order = np.asarray(pts, dtype=np.int64)
        running = np.maximum.accumulate(decode_order) if decode_order.size else decode_order
        drops = np.flatnonzero(decode_order < running)
        if drops.size:
            k = int(drops[0])
            backwards = (int(running[k]), int(decode_order[k]))
    return _FrameIndex(
        np.asarray(pts, dtype=np.int64)[order],
        np.flatnonzero(np.asarray(keys, dtype=bool)[order]),
        int(origin),
        int(start),
        stream.time_base,
        int(stream.frames or 0),
        backwards,
    )


def _frame_index(path: PathLike) -> _FrameIndex:
    """The (cached) frame index of ``path``; raises when the file is missing or truncated."""
    _check_file(path)
    stat = os.stat(path)
    index = _cached_index(os.fspath(path), stat.st_size, stat.st_mtime_ns)
    _check_complete(path, len(index.pts), index.declared)
    return index


def _check_complete(path: PathLike, readable: int, declared: int) -> None:
    """Raise when fewer packets can be read than the container declares (a cut-off file)."""
    if readable <= 0:
        raise _fail(path, "video stream has no frames")
    if declared and readable < declared:
        raise _fail(
            path,
            f"only {readable} of the {declared} frames the container declares can be read "
            "(truncated or corrupt file)",
        )


class PyAVReader(VideoReader):
    """PyAV reader that seeks instead of decoding the whole file.

    The frame index (pts of every packet, sorted) is built by demuxing without decoding and is
    cached per file. For each requested frame the reader seeks to the keyframe before it and
    decodes forward; requests that lie close together (the next one needs no new keyframe, or
    fewer than ``seek_gap`` frames would be skipped) are decoded in one sequential run.

    Args:
        seek_gap: Seek instead of decoding forward when at least this many frames can be skipped.
        threads: Decoder threads (0 = FFmpeg's choice).
        interpolation: swscale interpolation used when resizing (``BICUBIC`` matches decord).

    Attributes:
        frames_decoded: Frames the decoder produced during the last :meth:`read`.
        seeks: Seeks done during the last :meth:`read`.
    """

    name = "pyav"

    def __init__(self, seek_gap: int = 4, threads: int = 0, interpolation: str = "BICUBIC") -> None:
        self.seek_gap = max(1, seek_gap)
        self.threads = threads
        self.interpolation = interpolation
        self.frames_decoded = 0
        self.seeks = 0
        self._position = -1

    def probe(self, path: PathLike) -> VideoInfo:
        """Metadata of the stream; the frame count comes from packets when the container has none.

        The packets are demuxed (not decoded) once to check that the file is complete; the
        resulting frame index is cached for :meth:`read`.
        """
        index = _frame_index(path)  # validates the packets (cached for read)
        container, stream = _open_container(path)
        try:
            return _stream_info(path, container, stream, int(stream.frames or 0) or len(index.pts))
        finally:
            container.close()

    def read(
        self, path: PathLike, indices: list[int], size: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Seek and decode only near the requested frames (see :meth:`VideoReader.read`)."""
        self.frames_decoded = self.seeks = 0
        index = _frame_index(path)
        _check_indices(path, indices, len(index.pts))
        container, stream = _open_container(path)
        try:
            # A fixed output size also keeps the stack valid if the resolution changes mid-stream.
            size = size or (stream.codec_context.height, stream.codec_context.width)
            if not indices:
                return _empty(size)
            stream.codec_context.thread_count = self.threads
            wanted = sorted(set(indices))
            decoded = self._decode_positions(path, container, stream, index, wanted, size)
        finally:
            container.close()
        frames = torch.from_numpy(np.stack([decoded[i] for i in indices])).permute(0, 3, 1, 2)
        times = torch.from_numpy(index.seconds(np.asarray(indices, dtype=np.int64)))
        return frames.contiguous(), times

    def _decode_positions(
        self,
        path: PathLike,
        container: Any,
        stream: Any,
        index: _FrameIndex,
        wanted: list[int],
        size: tuple[int, int],
    ) -> dict[int, np.ndarray]:
        """Decode the sorted positions ``wanted``; return position -> (H, W, 3) RGB array."""
        import av

        out: dict[int, np.ndarray] = {}
        cursor, retries = 0, 0
        self._position = -1
        try:
            while cursor < len(wanted):
                candidates = self._seek_candidates(index, wanted[cursor])
                if retries >= len(candidates):
                    raise _fail(path, f"frame {wanted[cursor]} could not be decoded ({self._why_missed(index)})")
                self._seek(container, stream, index, candidates[retries])
                moved, stalled = self._decode_forward(container, stream, index, wanted, cursor, size, out)
                retries = (retries + 1 if moved == cursor else 1) if stalled else 0
                cursor = moved
        except av.FFmpegError as error:
            where = (
                f"after frame {self._position}" if self._position >= 0 else f"before frame {wanted[cursor]}"
            )
            raise _fail(path, f"decoding failed {where}: {_ffmpeg_message(error)}") from error
        return out

    @staticmethod
    def _why_missed(index: _FrameIndex) -> str:
        """Why a frame could not be reached: timestamps that go back or repeat, else a corrupt stream."""
        if index.backwards is not None:
            before, after = ((t - index.start) * float(index.time_base) for t in index.backwards)
            return (f"non-monotonic timestamps: a frame at {after:.3f} s follows one at {before:.3f} s in a "
                    "stream without B-frames, so frames cannot be placed in time")
        repeated = np.flatnonzero(np.diff(index.pts) == 0)
        if repeated.size:
            k = int(repeated[0])
            return (f"non-monotonic timestamps: frames {k} and {k + 1} share the time "
                    f"{float(index.seconds(np.asarray([k]))[0]):.3f} s, so frames cannot be told apart")
        return "corrupt stream?"

    @staticmethod
    def _seek_candidates(index: _FrameIndex, target: int) -> list[int]:
        """Keyframes to try for ``target``: the one before it, the one before that, the start (-1).

        Seeking goes to a keyframe's pts, which mov and matroska resolve exactly. Demuxers that
        seek by dts bisection (mpegts) can land on a later keyframe; the earlier candidates turn
        that into a retry instead of an error.
        """
        first = index.keyframe_before(target)
        return list(dict.fromkeys([first, max(first - 1, -1), -1]))

    def _seek(self, container: Any, stream: Any, index: _FrameIndex, keyframe: int) -> None:
        """Seek to keyframe number ``keyframe``, or to the very start of the stream for -1."""
        offset = int(index.pts[index.keyframes[keyframe]]) if keyframe >= 0 else index.origin
        container.seek(offset, stream=stream, backward=True, any_frame=False)
        self.seeks += 1

    def _decode_forward(
        self,
        container: Any,
        stream: Any,
        index: _FrameIndex,
        wanted: list[int],
        cursor: int,
        size: tuple[int, int],
        out: dict[int, np.ndarray],
    ) -> tuple[int, bool]:
        """Decode from the current position, storing wanted frames in ``out``.

        Returns:
            The cursor of the first frame still to read, and whether that frame was missed (the
            seek landed after it, the decoder skipped it or the stream ended), in which case the
            caller seeks further back.
        """
        collected = 0
        for frame in container.decode(stream):
            self.frames_decoded += 1
            stamp = frame.pts if frame.pts is not None else frame.dts
            if stamp is None:
                continue
            position = self._position = int(np.searchsorted(index.pts, stamp))
            exact = position < len(index.pts) and index.pts[position] == stamp
            if exact and position == wanted[cursor]:
                out[position] = self._to_rgb(frame, size)
                cursor, collected = cursor + 1, collected + 1
                if cursor == len(wanted):
                    return cursor, False
            elif position > wanted[cursor]:
                return cursor, True
            next_keyframe = index.keyframe_position(index.keyframe_before(wanted[cursor]))
            if collected and next_keyframe - position > self.seek_gap:
                return cursor, False
        return cursor, True

    def _to_rgb(self, frame: Any, size: tuple[int, int]) -> np.ndarray:
        """Convert a decoded frame to an (H, W, 3) uint8 RGB array of ``size`` (height, width)."""
        height, width = size
        if (frame.height, frame.width) == (height, width):
            return frame.to_ndarray(format="rgb24")
        return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation=self.interpolation)


# --------------------------------------------------------------------------------------------
# Factory and entry point


def _decord_available() -> bool:
    """Whether decord can be imported on this machine."""
    try:
        importlib.import_module("decord")
    except Exception:  # ImportError, or a broken binary wheel
        return False
    return True


TS_SUFFIXES = (".ts", ".m2ts", ".mts")
"""MPEG-TS files: decord 0.6.0 returns frames one GOP late there (with B-frames), silently."""


def reader_for(path: PathLike, name: str = "auto") -> str:
    """The reader ``auto`` picks for ``path``: PyAV for MPEG-TS files, otherwise ``name`` unchanged."""
    if name == "auto" and Path(os.fspath(path)).suffix.lower() in TS_SUFFIXES:
        return "pyav"
    return name


def get_reader(name: str = "auto") -> VideoReader:
    """Build a reader by name.

    Args:
        name: ``decord``, ``pyav`` or ``auto`` (decord when it can be imported, else PyAV).

    Returns:
        A new reader.

    Raises:
        ValueError: Unknown name.
        VideoReadError: ``decord`` asked for but not installed.
    """
    if name not in READER_NAMES:
        raise ValueError(f"unknown video reader {name!r}; allowed: {', '.join(READER_NAMES)}")
    if name == "auto":
        name = "decord" if _decord_available() else "pyav"
    if name == "decord" and not _decord_available():
        raise VideoReadError("decord: not installed (it has wheels for x86_64 only); use reader 'pyav'")
    return DecordReader() if name == "decord" else PyAVReader()


def read_clip(
    path: PathLike,
    num_frames: int,
    sampling: str = "uniform",
    reader: str | VideoReader = "auto",
    size: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> SampledClip:
    """Sample ``num_frames`` frames of a video and read them with their timestamps.

    Videos with fewer frames give all of them. Only the sampled frames are decoded (PyAV seeks;
    decord seeks internally), so hour-long videos are fine.

    Args:
        path: Video file.
        num_frames: Frames wanted (96 in VTG-LLM).
        sampling: A mode of :func:`sample_indices`.
        reader: A reader or its name (see :func:`get_reader`).
        size: ``(height, width)`` to resize to while decoding (the original squashes to 224x224).
        generator: Random source of the random sampling modes.

    Returns:
        The clip: frames ``(T, 3, H, W)`` uint8, timestamps ``(T,)`` seconds, ``T = min(num_frames,
        frames in the video)``.

    Raises:
        VideoReadError: Missing, empty, corrupt or truncated file, no video stream, failed decode.
        ValueError: Unknown sampling mode or reader name.
    """
    chosen = get_reader(reader_for(path, reader)) if isinstance(reader, str) else reader
    return chosen.read_clip(path, num_frames, sampling, size, generator)
