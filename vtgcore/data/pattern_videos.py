"""Small generated test videos (written with PyAV) and broken files for reader tests.

Frame ``i`` of a video from :func:`write_test_video` shows a 4x4 grid of dark and light cells
that spells ``i`` in binary (cell ``k``, row-major, is light when bit ``k`` of ``i`` is set), so a
test can tell which frame a reader returned with :func:`decode_frame_id`. The pattern survives
lossy compression and resizing because only the centre of each cell is read.

Frames are written straight into the Y plane of a ``yuv420p`` picture (grey chroma), which makes
writing fast: a 10-minute 64x64 video at 8 fps (4800 frames) takes about half a second.

Known quirk: once ``decord`` is imported in a process, its bundled (older) libvpx shadows
PyAV's, and ``codec="libvpx"`` fails to open. Write webm files before importing decord or in a
separate process; ``mpeg4`` and ``libx264`` are unaffected.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

#: Cells per side of the frame-id grid; ``GRID * GRID`` bits can encode ids below 65536.
GRID = 4
_MAX_ID = 1 << (GRID * GRID)
_DARK_Y, _LIGHT_Y = 36, 220  # luma of a clear / set bit; decodes to RGB ~23 / ~237
_VFR_TIME_BASE = Fraction(1, 1000)

FrameFn = Callable[[int], np.ndarray]


def _cell_edges(extent: int) -> np.ndarray:
    """Integer boundaries of the ``GRID`` cells along one image axis."""
    return np.linspace(0, extent, GRID + 1).round().astype(int)


def _bit_map(height: int, width: int) -> np.ndarray:
    """(H, W) map from pixel to the bit number of the cell that contains it."""
    rows = np.searchsorted(_cell_edges(height), np.arange(height), side="right") - 1
    cols = np.searchsorted(_cell_edges(width), np.arange(width), side="right") - 1
    return rows[:, None] * GRID + cols[None, :]


def _pattern_luma(index: int, bit_map: np.ndarray) -> np.ndarray:
    """The luma plane (H, W) uint8 that encodes a frame id.

    Args:
        index: Frame id, ``0 <= index < 2**16``.
        bit_map: Output of the pixel-to-bit map for the frame size.

    Returns:
        The Y plane of the pattern.
    """
    bits = (index >> bit_map) & 1
    return np.where(bits == 1, _LIGHT_Y, _DARK_Y).astype(np.uint8)


def frame_times(num_frames: int, fps: float = 8.0, *, vfr: bool = False, seed: int = 0) -> list[float]:
    """Presentation times (seconds) that :func:`write_test_video` gives its frames.

    Constant frame rate: ``i / fps``. Variable frame rate: whole milliseconds, each gap drawn
    from ``[0.4, 1.6] / fps`` with ``numpy.random.default_rng(seed)``.

    Args:
        num_frames: Number of frames.
        fps: Nominal frame rate.
        vfr: Variable frame rate.
        seed: Seed of the gap draw (VFR only).

    Returns:
        One time per frame, starting at 0.0, strictly increasing.
    """
    pts, time_base = _frame_pts(num_frames, fps, vfr, seed)
    return [float(p * time_base) for p in pts]


def _frame_pts(num_frames: int, fps: float, vfr: bool, seed: int) -> tuple[list[int], Fraction]:
    """Integer pts of each frame and the time base they are counted in."""
    if not vfr:
        return list(range(num_frames)), 1 / _rate(fps)
    base_ms = 1000.0 / fps
    low, high = max(1, round(0.4 * base_ms)), max(2, round(1.6 * base_ms) + 1)
    gaps = np.random.default_rng(seed).integers(low, high, size=max(num_frames - 1, 0))
    return [0, *np.cumsum(gaps).tolist()], _VFR_TIME_BASE


def _rate(fps: float) -> Fraction:
    """A frame rate as the small fraction encoders need (29.97 -> 2997/100)."""
    return Fraction(fps).limit_denominator(1001)


def _resolve_count(num_frames: int | None, duration: float | None, fps: float) -> int:
    """Frame count from exactly one of ``num_frames`` and ``duration``."""
    if (num_frames is None) == (duration is None):
        raise ValueError("give exactly one of num_frames and duration")
    count = num_frames if num_frames is not None else round(duration * fps)  # type: ignore[operator]
    if not 0 < count < _MAX_ID:
        raise ValueError(f"num_frames must be in [1, {_MAX_ID}), got {count}")
    return count


def _make_frame(index: int, size: tuple[int, int], bit_map: np.ndarray, frame_fn: FrameFn | None):
    """One ``av.VideoFrame`` in yuv420p, from the id pattern or from ``frame_fn``."""
    import av

    height, width = size
    if frame_fn is not None:
        rgb = np.ascontiguousarray(frame_fn(index), dtype=np.uint8)
        return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    planes = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
    planes[:height] = _pattern_luma(index, bit_map)
    return av.VideoFrame.from_ndarray(planes, format="yuv420p")


def write_test_video(
    path: str | os.PathLike,
    *,
    num_frames: int | None = None,
    duration: float | None = None,
    fps: float = 8.0,
    size: tuple[int, int] = (64, 64),
    codec: str = "mpeg4",
    vfr: bool = False,
    frame_fn: FrameFn | None = None,
    seed: int = 0,
    gop_size: int = 12,
    codec_options: dict[str, str] | None = None,
    faststart: bool = False,
) -> Path:
    """Write an mp4 whose frame ``i`` encodes ``i`` (see :func:`decode_frame_id`).

    Args:
        path: Output file (``.mp4``); parent folders must exist.
        num_frames: Number of frames (give this or ``duration``).
        duration: Length in seconds; ``round(duration * fps)`` frames.
        fps: Frame rate (nominal rate when ``vfr``).
        size: ``(height, width)``, even numbers (yuv420p).
        codec: Encoder name (``mpeg4``, ``libx264``, ...).
        vfr: Variable frame rate: millisecond time base, uneven gaps (see :func:`frame_times`).
        frame_fn: Optional ``i -> (H, W, 3) uint8`` RGB image that replaces the id pattern.
        seed: Seed of the VFR gaps.
        gop_size: Distance between keyframes, in frames.
        codec_options: Extra encoder options (e.g. ``{"bf": "2"}`` for libx264 B-frames).
        faststart: Put the ``moov`` index at the start of the file.

    Returns:
        The path written.
    """
    import av

    count = _resolve_count(num_frames, duration, fps)
    pts, time_base = _frame_pts(count, fps, vfr, seed)
    height, width = size
    bit_map = _bit_map(height, width)
    out = Path(path)
    with av.open(str(out), "w", options={"movflags": "faststart"} if faststart else {}) as container:
        stream = container.add_stream(codec, rate=_rate(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = max(200_000, int(width * height * fps * 8))
        stream.codec_context.time_base = time_base
        stream.codec_context.gop_size = gop_size
        stream.options = (
            {"qmax": "4", **(codec_options or {})} if codec == "mpeg4" else dict(codec_options or {})
        )
        for index, frame_pts in enumerate(pts):
            frame = _make_frame(index, size, bit_map, frame_fn)
            frame.pts, frame.time_base = frame_pts, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out


def decode_frame_id(frame) -> int:
    """Recover the id that :func:`write_test_video` drew into a frame.

    Args:
        frame: One RGB frame, uint8, ``(H, W, 3)`` or ``(3, H, W)``; numpy array or torch tensor.

    Returns:
        The frame id.

    Shape:
        frame: ``(H, W, 3)`` or ``(3, H, W)``, with ``H, W >= 2 * GRID``.
    """
    array = frame.numpy() if hasattr(frame, "numpy") else np.asarray(frame)
    if array.ndim != 3 or 3 not in (array.shape[0], array.shape[-1]):
        raise ValueError(f"expected one RGB frame (H, W, 3) or (3, H, W), got shape {array.shape}")
    if array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)
    luma = array.astype(np.float32).mean(axis=-1)
    rows, cols = _cell_edges(luma.shape[0]), _cell_edges(luma.shape[1])
    value = 0
    for bit in range(GRID * GRID):
        r, c = divmod(bit, GRID)
        cell = _centre(luma[rows[r] : rows[r + 1], cols[c] : cols[c + 1]])
        value |= int(cell.mean() > 128) << bit
    return value


def decode_frame_ids(frames) -> list[int]:
    """:func:`decode_frame_id` of every frame of a clip.

    Args:
        frames: ``(T, 3, H, W)`` or ``(T, H, W, 3)`` uint8 frames.

    Returns:
        One id per frame.

    Shape:
        frames: ``(T, 3, H, W)`` or ``(T, H, W, 3)``.
    """
    return [decode_frame_id(frame) for frame in frames]


def _centre(cell: np.ndarray) -> np.ndarray:
    """The middle half (per axis) of a cell, away from compression ringing at the edges."""
    h, w = cell.shape
    return cell[h // 4 : h - h // 4 or None, w // 4 : w - w // 4 or None]


def write_audio_only(path: str | os.PathLike, seconds: float = 0.5) -> Path:
    """Write an mp4 that holds one AAC audio stream and no video stream.

    Args:
        path: Output file.
        seconds: Length of the silent audio.

    Returns:
        The path written.
    """
    import av

    rate, chunk = 8000, 1024
    out = Path(path)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        for start in range(0, max(chunk, int(seconds * rate)), chunk):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, chunk), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out


def write_corrupt_files(directory: str | os.PathLike) -> dict[str, Path]:
    """Write one file per way a video can be unusable.

    Keys: ``zero_byte`` (empty file), ``truncated`` (first half of an mp4 whose index is at the
    end, so it cannot be opened), ``truncated_midway`` (first half of an mp4 whose index is at the
    start: it opens and declares all its frames, but decoding stops midway), ``text_as_mp4``
    (a text file named ``.mp4``), ``audio_only`` (an mp4 with no video stream) and ``missing``
    (a path that does not exist).

    Args:
        directory: Existing folder to write into.

    Returns:
        Key to path.
    """
    root = Path(directory)
    files = {"missing": root / "missing.mp4", "zero_byte": root / "zero_byte.mp4"}
    files["zero_byte"].write_bytes(b"")
    files["text_as_mp4"] = root / "text_as_mp4.mp4"
    files["text_as_mp4"].write_text("this is a text file, not a video\n")
    files["audio_only"] = write_audio_only(root / "audio_only.mp4")
    files["truncated"] = _truncate(
        write_test_video(root / "whole_a.mp4", num_frames=64), root / "truncated.mp4"
    )
    midway = write_test_video(root / "whole_b.mp4", num_frames=64, faststart=True)
    files["truncated_midway"] = _truncate(midway, root / "truncated_midway.mp4")
    return files


def _truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` fraction of ``source`` to ``target`` and delete ``source``."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    source.unlink()
    return target


def write_sparse_video(path: str | os.PathLike, *, hours: float = 10.0, num_frames: int = 11,
                       size: tuple[int, int] = (32, 32)) -> Path:
    """Write a genuinely long video cheaply: ``num_frames`` frames spread evenly over ``hours``.

    The container and stream declare the whole length (10 hours by default) and frame ``i`` is at
    ``i * hours * 3600 / (num_frames - 1)`` seconds; frame ``i`` encodes ``i`` as in
    :func:`write_test_video`.

    Args:
        path: Output file (``.mp4``).
        hours: Length of the video.
        num_frames: Number of frames (at least 2).
        size: ``(height, width)``, even numbers.

    Returns:
        The path written.
    """
    import av

    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    height, width = size
    bit_map = _bit_map(height, width)
    second = Fraction(1, 1)
    out = Path(path)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("mpeg4", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = second
        for index in range(num_frames):
            frame = _make_frame(index, size, bit_map, None)
            frame.pts, frame.time_base = round(index * hours * 3600 / (num_frames - 1)), second
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out


def write_non_monotonic_video(path: str | os.PathLike, kind: str = "backwards", *, num_frames: int = 10) -> Path:
    """Write a video whose timestamps are broken the way some damaged or badly muxed files are.

    Every frame is a keyframe (no B-frames), written at 8 fps, so its presentation time should rise
    with each packet. ``kind`` ``backwards``: the fourth packet carries a time past the next six
    (times go back after it); ``repeated``: the fourth and seventh packets repeat the time of the
    packet before them. Use a ``.mkv`` or ``.mp4`` name.

    Args:
        path: Output file.
        kind: ``backwards`` or ``repeated``.
        num_frames: Number of frames (at least 8).

    Returns:
        The path written.
    """
    import av

    if kind not in ("backwards", "repeated") or num_frames < 8:
        raise ValueError(f"kind must be 'backwards' or 'repeated' and num_frames >= 8, got {kind!r}, {num_frames}")
    stamps = list(range(num_frames))
    if kind == "backwards":
        stamps[3] = num_frames - 1
        stamps[-1] = num_frames  # keep the times distinct
    else:
        stamps[3], stamps[6] = stamps[2], stamps[5]
    tick = Fraction(1, 8)
    size = (64, 64)
    bit_map = _bit_map(*size)
    out = Path(path)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        stream.codec_context.time_base = tick
        stream.codec_context.gop_size = 1
        for index in range(num_frames):
            frame = _make_frame(index, size, bit_map, None)
            frame.pts, frame.time_base = index, tick
            for packet in stream.encode(frame):
                # decode order stays 0, 1, 2, ...; only the presentation time is damaged
                packet.dts = packet.pts if kind == "backwards" else stamps[packet.pts]
                packet.pts = stamps[packet.pts]
                container.mux(packet)
        container.mux(stream.encode(None))
    return out
