"""VTG-Synth: a small, procedurally generated video temporal grounding benchmark.

Every video shows 1 to 4 coloured shapes over a plain or lightly textured dark background. Each shape
is one *event*: it appears at a known frame, moves (left, right, up, down) or changes size (grows,
shrinks), and vanishes at a known frame. Events may overlap in time; a (shape, colour) pair occurs
at most once per video, so a query such as "the red circle moves to the left" names exactly one
event without giving away when it happens.

Layout written by :func:`generate_synth` (all paths relative to ``out_dir``; the evaluation loaders
resolve them with ``video_root = out_dir``):

* ``videos/{split}_{i:05d}.mp4``: MPEG-4 part 2 in MP4, ``size`` x ``size`` pixels at ``fps``.
* ``train.json``: VTG-IT format, one item per training sample, sources ``vtg-synth-mr``,
  ``vtg-synth-dvc``, ``vtg-synth-hd`` and ``vtg-synth-summary``; answers hold ``<time>`` markers.
* ``val/charades.json``: Charades-STA coco format, one annotation per event of every validation
  video.
* ``val/qvhighlights.jsonl``: QVHighlights format (2-second clips, three annotator scores 0..4),
  one line per event that covers at least one whole-duration clip.
* ``val/youcook2.json``: YouCook2 coco format, one annotation per validation video listing all of
  its events.
* ``train_gt/charades.json``, ``train_gt/qvhighlights.jsonl``, ``train_gt/youcook2.json``: the
  same three ground truths for the training videos (prompts and rewards of RL post-training).
* ``meta.json``: the generation settings and every video's events (written last).

Ground-truth definitions:

* An event is shown on frames ``start_frame <= i < end_frame``; its window in seconds is
  ``[start_frame / fps, end_frame / fps]``.
* Saliency of an event on a frame = the fraction of the shape that is visible (after clipping at
  the frame border and occlusion by shapes drawn later) times its area relative to its largest size
  in the event, so it is higher when the shape is larger and fully visible (1 = fully visible at
  full size). Every shown frame keeps at least :data:`MIN_SHOWN_FRACTION` of the shape's current
  area visible.
* Highlight detection (training): per-second score = 4 x mean saliency over the frames of that
  second, rounded to 0.1; highlight seconds are those scoring at least :data:`HD_MIN_SCORE`.
* QVHighlights (validation): clip ``c`` covers ``[2c, 2c + 2)`` seconds, only clips
  ``c < int(duration / 2)`` exist; relevant clips are those where the event is visible; each of the
  three annotators scores ``round(4 x clip saliency + u)`` clamped to 0..4 with ``u`` uniform in
  ``[-0.5, 0.5)``, so annotators disagree by at most one point.
* Summarisation: per-second importance = 1 + mean number of visible shapes (1..5), listed for the
  seconds where a shape is visible (at most :data:`SUMMARY_MAX_POINTS`, the most important kept).

The same arguments give byte-identical files: every random draw comes from generators seeded by
``(seed, split, index)``, the encoder runs single-threaded with ``bitexact`` flags and the muxer
writes no wall-clock metadata.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from vtgcore.data import prompts
from vtgcore.errors import VTGError
from vtgcore.utils.fileio import atomic_write_text
from vtgcore.vocab import TASKS

GENERATOR_VERSION = "vtg-synth-1"

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")

#: RGB of each colour; saturated corners of the colour cube, so that blends at shape borders
#: (chroma subsampling) do not land close to another listed colour.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "green": (30, 210, 50),
    "blue": (40, 60, 235),
    "yellow": (235, 225, 30),
    "cyan": (30, 215, 225),
    "magenta": (225, 40, 215),
    "white": (240, 240, 240),
}

MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "grow", "shrink")

MOTION_PHRASES: dict[str, str] = {
    "left": "moves to the left",
    "right": "moves to the right",
    "up": "moves up",
    "down": "moves down",
    "grow": "grows larger",
    "shrink": "shrinks",
}

SOURCE_PREFIX = "vtg-synth-"
SPLITS: tuple[str, ...] = ("train", "val")

MIN_SHOWN_FRACTION = 0.5
HD_MIN_SCORE = 1.0
SUMMARY_MAX_POINTS = 20
CLIP_SECONDS = 2.0
MAX_EVENTS = 4
MIN_EVENT_SECONDS = 2.0
MAX_LAYOUT_TRIES = 60
QSCALE = 3  # fixed quantiser (qmin = qmax) of the MPEG-4 encoder
GOP = 12
BACKGROUND = 255  # label of background pixels in the label maps

_SPLIT_CODE = {"train": 1, "val": 2}


class SynthError(VTGError, ValueError):
    """Invalid arguments for the VTG-Synth generator."""


@dataclass(frozen=True)
class SynthEvent:
    """One shape's appearance in a video.

    Attributes:
        shape: one of :data:`SHAPES`.
        colour: one of :data:`COLOURS`.
        motion: one of :data:`MOTIONS`.
        start_frame: first frame showing the shape.
        end_frame: first frame after the shape vanished (exclusive).
        x0: centre x (pixels) on the first frame.
        y0: centre y (pixels) on the first frame.
        x1: centre x on the last frame.
        y1: centre y on the last frame.
        size0: extent (pixels) on the first frame.
        size1: extent on the last frame.
    """

    shape: str
    colour: str
    motion: str
    start_frame: int
    end_frame: int
    x0: float
    y0: float
    x1: float
    y1: float
    size0: float
    size1: float

    @property
    def num_frames(self) -> int:
        """Number of frames showing the shape."""
        return self.end_frame - self.start_frame

    def query(self) -> str:
        """Moment-retrieval query, e.g. ``the red circle moves to the left``."""
        return f"the {self.colour} {self.shape} {MOTION_PHRASES[self.motion]}"

    def caption(self) -> str:
        """Dense-captioning sentence, e.g. ``a red circle moves to the left``."""
        return f"a {self.colour} {self.shape} {MOTION_PHRASES[self.motion]}"

    def track(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per shown frame centre x, centre y and extent, linearly interpolated."""
        alpha = np.linspace(0.0, 1.0, self.num_frames) if self.num_frames > 1 else np.zeros(1)
        return (self.x0 + (self.x1 - self.x0) * alpha, self.y0 + (self.y1 - self.y0) * alpha,
                self.size0 + (self.size1 - self.size0) * alpha)


@dataclass(frozen=True)
class VideoPlan:
    """Everything needed to render one video and write its ground truth.

    Attributes:
        name: file name, ``{split}_{index:05d}.mp4``.
        split: ``train`` or ``val``.
        index: position in the split.
        num_frames: number of frames.
        fps: frames per second.
        size: width and height in pixels.
        background: grey level of the background.
        texture: amplitude of the static background texture (0 = plain).
        events: the shapes, in drawing order (later ones on top).
    """

    name: str
    split: str
    index: int
    num_frames: int
    fps: float
    size: int
    background: int
    texture: int
    events: tuple[SynthEvent, ...]

    @property
    def duration(self) -> float:
        """Length in seconds (``num_frames / fps``)."""
        return self.num_frames / self.fps

    @property
    def video(self) -> str:
        """Path relative to the benchmark root."""
        return f"videos/{self.name}"

    def seconds(self, frame: int) -> float:
        """Time of a frame boundary in seconds."""
        return _round_time(frame / self.fps)


@dataclass
class RenderedVideo:
    """Frames and per-event visibility of one video.

    Attributes:
        frames: ``(F, H, W, 3)`` uint8 RGB.
        visible: ``(E, F)`` visible pixels of each event per frame.
        saliency: ``(E, F)`` visible fraction of the shape (clipping, occlusion) times its area
            relative to its largest size (0..1); 1 when the shape is fully visible at full size.
    """

    frames: np.ndarray
    visible: np.ndarray
    saliency: np.ndarray


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------

def _round_time(seconds: float) -> float:
    return round(float(seconds), 4)


def _rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODE[split], index, stream]))


def _prompt_rng(seed: int, split: str, index: int) -> random.Random:
    return random.Random(int(_rng(seed, split, index, 3).integers(0, 2**63 - 1)))


def _readable_length(num_frames: int, low: int, fps: float) -> int:
    """Shorten ``num_frames`` (not below ``low``) until the duration does not round up at 0.1 s.

    Answers write times rounded to 0.1 s; this keeps every written time within the duration.
    """
    while num_frames > low and round(num_frames / fps, 1) > num_frames / fps + 1e-9:
        num_frames -= 1
    return num_frames


def _event_timing(rng: np.random.Generator, num_frames: int, fps: float) -> tuple[int, int]:
    duration = num_frames / fps
    shortest = min(duration, max(MIN_EVENT_SECONDS, 0.1 * duration))
    longest = min(duration, max(shortest, 0.45 * duration))
    length = max(2, min(num_frames, int(round(rng.uniform(shortest, longest) * fps))))
    start = int(rng.integers(0, num_frames - length + 1))
    return start, start + length


def _event_geometry(rng: np.random.Generator, motion: str, size: int) -> tuple[float, ...]:
    """``(x0, y0, x1, y1, size0, size1)`` for one event in a ``size`` x ``size`` frame."""
    if motion in ("grow", "shrink"):
        small, big = rng.uniform(0.12, 0.16) * size, rng.uniform(0.30, 0.38) * size
        half = big / 2
        x, y = rng.uniform(half, size - half), rng.uniform(half, size - half)
        s0, s1 = (small, big) if motion == "grow" else (big, small)
        return x, y, x, y, s0, s1
    extent = rng.uniform(0.20, 0.32) * size
    half = extent / 2
    low = rng.uniform(0.35 * half, 0.40 * size)
    high = rng.uniform(0.60 * size, size - 0.35 * half)
    across = rng.uniform(half, size - half)
    a, b = (high, low) if motion in ("left", "up") else (low, high)
    if motion in ("left", "right"):
        return a, across, b, across, extent, extent
    return across, a, across, b, extent, extent


def plan_video(seed: int, split: str, index: int, *, size: int, fps: float, min_duration: float,
               max_duration: float) -> VideoPlan:
    """Draw one video's duration, background and events (deterministic in its arguments).

    Events are placed one after another, each drawn on top of the earlier ones. A candidate's
    timing and position are redrawn (up to :data:`MAX_LAYOUT_TRIES` times) until every shape keeps
    at least :data:`MIN_SHOWN_FRACTION` of its current area visible on every frame it is shown; an
    event that cannot be placed is left out (the first one always stays).
    """
    rng = _rng(seed, split, index, 0)
    low = max(1, math.ceil(min_duration * fps - 1e-9))
    high = max(low, math.floor(max_duration * fps + 1e-9))
    num_frames = _readable_length(int(rng.integers(low, high + 1)), low, fps)
    background = int(rng.integers(20, 70))
    texture = int(rng.choice([0, 4, 8]))
    count = int(rng.integers(1, MAX_EVENTS + 1))
    combos = list(itertools.product(SHAPES, COLOURS))
    picks = rng.choice(len(combos), size=count, replace=False)
    identities = [(combos[int(p)][0], combos[int(p)][1], str(rng.choice(MOTIONS))) for p in picks]
    layout_rng = _rng(seed, split, index, 1)
    canvas = _Canvas(num_frames, size)
    for shape, colour, motion in identities:
        for attempt in range(MAX_LAYOUT_TRIES):
            start, end = _event_timing(layout_rng, num_frames, fps)
            event = SynthEvent(shape, colour, motion, start, end, *_event_geometry(layout_rng, motion, size))
            if canvas.fits(event) or (not canvas.events and attempt == MAX_LAYOUT_TRIES - 1):
                canvas.add(event)
                break
    return VideoPlan(f"{split}_{index:05d}.mp4", split, index, num_frames, fps, size, background, texture,
                     tuple(canvas.events))


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

def shape_mask(shape: str, cx: np.ndarray, cy: np.ndarray, extent: np.ndarray, xs: np.ndarray,
               ys: np.ndarray) -> np.ndarray:
    """Boolean masks ``(N, H, W)`` of ``N`` shapes with centres ``cx, cy`` and extents ``extent``.

    Args:
        shape: one of :data:`SHAPES`.
        cx: ``(N,)`` centre x in pixels.
        cy: ``(N,)`` centre y in pixels.
        extent: ``(N,)`` width/height of the shape's bounding box in pixels.
        xs: ``(W,)`` pixel-centre x coordinates.
        ys: ``(H,)`` pixel-centre y coordinates.
    """
    dx = xs[None, None, :] - cx[:, None, None]
    dy = ys[None, :, None] - cy[:, None, None]
    r = (extent / 2)[:, None, None]
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= r
    if shape == "triangle":  # apex up, base down (image y grows downwards)
        return (np.abs(dy) <= r) & (np.abs(dx) <= (dy + r) / 2)
    if shape == "cross":
        arm = r / 3
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    raise SynthError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


class _Canvas:
    """Per-frame owner labels of a video being composed, with each event's pixel counts."""

    def __init__(self, num_frames: int, size: int) -> None:
        self.size = size
        self.pad = size // 2
        self.coords = np.arange(-self.pad, size + self.pad, dtype=np.float64) + 0.5
        self.labels = np.full((num_frames, size, size), BACKGROUND, dtype=np.uint8)
        self.events: list[SynthEvent] = []
        self.visible: list[np.ndarray] = []
        self.unclipped: list[np.ndarray] = []

    def _masks(self, event: SynthEvent) -> tuple[np.ndarray, np.ndarray]:
        """Masks inside the frame ``(n, H, W)`` and unclipped areas ``(n,)`` of the shown frames."""
        cx, cy, extent = event.track()
        masks = shape_mask(event.shape, cx, cy, extent, self.coords, self.coords)
        inner = slice(self.pad, self.pad + self.size)
        return masks[:, inner, inner], masks.sum(axis=(1, 2))

    def fits(self, event: SynthEvent) -> bool:
        """Whether ``event``, drawn on top, leaves every shape enough of its area visible."""
        masks, area = self._masks(event)
        if (masks.sum(axis=(1, 2)) < MIN_SHOWN_FRACTION * area).any():
            return False
        span = slice(event.start_frame, event.end_frame)
        region = self.labels[span]
        for k, other in enumerate(self.events):
            if other.end_frame <= event.start_frame or event.end_frame <= other.start_frame:
                continue
            left = self.visible[k][span] - ((region == k) & masks).sum(axis=(1, 2))
            if (left < MIN_SHOWN_FRACTION * self.unclipped[k][span]).any():
                return False
        return True

    def add(self, event: SynthEvent) -> None:
        """Draw ``event`` on top of the shapes already placed."""
        k = len(self.events)
        masks, area = self._masks(event)
        span = slice(event.start_frame, event.end_frame)
        region = self.labels[span]
        for j in range(k):
            self.visible[j][span] -= ((region == j) & masks).sum(axis=(1, 2))
        region[masks] = k
        visible = np.zeros(self.labels.shape[0], dtype=np.int64)
        unclipped = np.zeros(self.labels.shape[0], dtype=np.int64)
        visible[span] = masks.sum(axis=(1, 2))
        unclipped[span] = area
        self.events.append(event)
        self.visible.append(visible)
        self.unclipped.append(unclipped)


def _compose(plan: VideoPlan) -> _Canvas:
    canvas = _Canvas(plan.num_frames, plan.size)
    for event in plan.events:
        canvas.add(event)
    return canvas


def _background(plan: VideoPlan, rng: np.random.Generator) -> np.ndarray:
    size = plan.size
    base = np.full((size, size, 3), plan.background, dtype=np.int16)
    if plan.texture:
        cells = max(2, size // 8)
        coarse = rng.integers(-plan.texture, plan.texture + 1, size=(cells, cells), dtype=np.int16)
        reps = math.ceil(size / cells)
        base += np.kron(coarse, np.ones((reps, reps), dtype=np.int16))[:size, :size, None]
    return np.clip(base, 0, 255).astype(np.uint8)


def label_maps(plan: VideoPlan) -> np.ndarray:
    """Per-pixel owner of every frame: the event's index in ``plan.events``, or :data:`BACKGROUND`.

    Shape:
        -> (F, size, size) uint8
    """
    return _compose(plan).labels


def render_video(plan: VideoPlan, seed: int) -> RenderedVideo:
    """Render a planned video and measure every event's visibility per frame."""
    canvas = _compose(plan)
    palette = np.zeros((256, 3), dtype=np.uint8)
    for k, event in enumerate(plan.events):
        palette[k] = COLOURS[event.colour]
    background = _background(plan, _rng(seed, plan.split, plan.index, 2))
    is_background = (canvas.labels == BACKGROUND)[..., None]
    frames = np.where(is_background, background[None], palette[canvas.labels])
    visible = np.stack(canvas.visible)
    shown = visible / np.maximum(np.stack(canvas.unclipped), 1)
    relative_size = np.zeros(visible.shape)
    for k, event in enumerate(plan.events):
        extent = event.track()[2]
        relative_size[k, event.start_frame:event.end_frame] = (extent / extent.max()) ** 2
    return RenderedVideo(frames=frames, visible=visible, saliency=shown * relative_size)


def encode_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """Write RGB frames as MPEG-4 part 2 in MP4, deterministically, via a temp file.

    Args:
        path: destination (replaced atomically).
        frames: ``(F, H, W, 3)`` uint8 RGB with even H and W.
        fps: frame rate.
    """
    import av

    tmp = path.with_name(f".{path.name}.tmp")
    rate = Fraction(fps).limit_denominator(1000)
    try:
        with av.open(str(tmp), mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream("mpeg4", rate=rate)
            stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
            stream.pix_fmt = "yuv420p"
            stream.thread_count = 1
            stream.codec_context.options = {"flags": "+bitexact", "qmin": str(QSCALE), "qmax": str(QSCALE),
                                            "g": str(GOP), "bf": "0"}
            for i, rgb in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------

def _bins(num_frames: int, fps: float, width: float) -> np.ndarray:
    """Bin index of each frame for bins of ``width`` seconds."""
    return np.floor(np.arange(num_frames) / fps / width + 1e-9).astype(np.int64)


def _bin_means(values: np.ndarray, bins: np.ndarray, count: int) -> np.ndarray:
    """Mean of ``values`` (..., F) over the frames of each bin ``0..count-1``."""
    sums = np.zeros(values.shape[:-1] + (count,))
    frames = np.bincount(bins, minlength=count)[:count]
    for b in range(count):
        sums[..., b] = values[..., bins == b].sum(axis=-1)
    return sums / np.maximum(frames, 1)


def _second_scores(plan: VideoPlan, rendered: RenderedVideo) -> np.ndarray:
    """``(E, S)`` 4 x mean saliency per whole or partial second, rounded to 0.1."""
    seconds = math.ceil(plan.num_frames / plan.fps - 1e-9)
    return np.round(4 * _bin_means(rendered.saliency, _bins(plan.num_frames, plan.fps, 1.0), seconds), 1)


def highlight(plan: VideoPlan, rendered: RenderedVideo, k: int) -> tuple[list[float], list[float]]:
    """Highlight seconds and their 0..4 scores for event ``k`` (at least one second)."""
    scores = _second_scores(plan, rendered)[k]
    keep = np.flatnonzero(scores >= HD_MIN_SCORE)
    if keep.size == 0:
        keep = np.array([int(np.argmax(scores))])
    return [float(t) for t in keep], [float(scores[t]) for t in keep]


def summary(plan: VideoPlan, rendered: RenderedVideo) -> tuple[list[float], list[float]]:
    """Summary seconds and their 1..5 importance (1 + mean number of visible shapes)."""
    seconds = math.ceil(plan.num_frames / plan.fps - 1e-9)
    shown = (rendered.visible > 0).sum(axis=0).astype(np.float64)
    importance = np.round(1 + _bin_means(shown, _bins(plan.num_frames, plan.fps, 1.0), seconds), 1)
    candidates = np.flatnonzero(importance > 1.0)
    if candidates.size == 0:
        candidates = np.arange(seconds)
    order = sorted(candidates.tolist(), key=lambda t: (-importance[t], t))[:SUMMARY_MAX_POINTS]
    chosen = sorted(order)
    return [float(t) for t in chosen], [float(importance[t]) for t in chosen]


def qvh_clips(plan: VideoPlan, rendered: RenderedVideo, k: int,
              rng: np.random.Generator) -> tuple[list[int], list[list[int]]]:
    """QVHighlights relevant clip ids and three annotator scores (0..4) per clip for event ``k``."""
    count = int(plan.duration / CLIP_SECONDS)
    if count == 0:
        return [], []
    bins = _bins(plan.num_frames, plan.fps, CLIP_SECONDS)
    shown = _bin_means((rendered.visible[k] > 0).astype(np.float64), bins, count)
    saliency = _bin_means(rendered.saliency[k], bins, count)
    clip_ids = [int(c) for c in np.flatnonzero(shown > 0)]
    scores = []
    for c in clip_ids:
        noisy = np.round(4 * saliency[c] + rng.uniform(-0.5, 0.5, size=3))
        scores.append([int(s) for s in np.clip(noisy, 0, 4)])
    return clip_ids, scores


def _window(plan: VideoPlan, event: SynthEvent) -> list[float]:
    return [plan.seconds(event.start_frame), plan.seconds(event.end_frame)]


def _time_order(plan: VideoPlan) -> list[int]:
    return sorted(range(len(plan.events)),
                  key=lambda k: (plan.events[k].start_frame, plan.events[k].end_frame, k))


# --------------------------------------------------------------------------------------------
# Annotation records
# --------------------------------------------------------------------------------------------

def _train_items(plan: VideoPlan, rendered: RenderedVideo, rng: random.Random) -> list[dict[str, Any]]:
    """VTG-IT items of one training video: one MR item per event, one DVC, HD and summary item."""
    def item(task: str, question: str, answer: str) -> dict[str, Any]:
        return {"video": plan.video, "QA": [{"q": question, "a": answer}], "source": SOURCE_PREFIX + task}

    items = []
    for event in plan.events:
        start, end = _window(plan, event)
        items.append(item("mr", prompts.train_prompt("mr", event.query(), rng=rng),
                          prompts.mr_answer(start, end)))
    order = _time_order(plan)
    windows = [tuple(_window(plan, plan.events[k])) for k in order]
    captions = [plan.events[k].caption() for k in order]
    items.append(item("dvc", prompts.train_prompt("dvc", rng=rng), prompts.dvc_answer(windows, captions)))
    k = rng.randrange(len(plan.events))
    times, scores = highlight(plan, rendered, k)
    items.append(item("hd", prompts.train_prompt("hd", plan.events[k].query(), rng=rng),
                      prompts.hd_answer(times, scores)))
    times, scores = summary(plan, rendered)
    items.append(item("summary", prompts.train_prompt("summary", rng=rng), prompts.summary_answer(times, scores)))
    return items


def _charades_rows(plan: VideoPlan) -> list[dict[str, Any]]:
    return [{"image_id": plan.video, "caption": event.query(), "timestamp": _window(plan, event)}
            for event in plan.events]


def _qvh_rows(plan: VideoPlan, rendered: RenderedVideo, seed: int) -> list[dict[str, Any]]:
    rng = _rng(seed, plan.split, plan.index, 4)
    rows = []
    for k, event in enumerate(plan.events):
        clip_ids, scores = qvh_clips(plan, rendered, k, rng)
        if not clip_ids:
            continue
        window = [clip_ids[0] * CLIP_SECONDS, (clip_ids[-1] + 1) * CLIP_SECONDS]
        rows.append({"query": event.query(), "duration": _round_time(plan.duration), "vid": plan.video,
                     "relevant_clip_ids": clip_ids, "saliency_scores": scores, "relevant_windows": [window]})
    return rows


def _youcook_row(plan: VideoPlan) -> dict[str, Any]:
    order = _time_order(plan)
    sentences = [plan.events[k].caption() for k in order]
    return {"image_id": plan.video, "segments": [_window(plan, plan.events[k]) for k in order],
            "pure_cap": ". ".join(sentences) + ".", "duration": _round_time(plan.duration)}


def _meta_video(plan: VideoPlan) -> dict[str, Any]:
    events = []
    for event in plan.events:
        record = asdict(event)
        record.update(start=plan.seconds(event.start_frame), end=plan.seconds(event.end_frame),
                      query=event.query())
        for key in ("x0", "y0", "x1", "y1", "size0", "size1"):
            record[key] = round(record[key], 3)
        events.append(record)
    return {"video": plan.video, "split": plan.split, "num_frames": plan.num_frames,
            "duration": _round_time(plan.duration), "background": plan.background,
            "texture": plan.texture, "events": events}


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as UTF-8 JSON (keys in insertion order) atomically."""
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


def write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    """Write one compact JSON object per line atomically."""
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _validate(seed: int, n_train: int, n_val: int, size: int, fps: float, min_duration: float,
              max_duration: float) -> None:
    for name, value in (("seed", seed), ("n_train", n_train), ("n_val", n_val)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SynthError(f"{name} must be an integer >= 0, got {value!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 16 or size % 2:
        raise SynthError(f"size must be an even integer >= 16 (the encoder needs even sizes), got {size!r}")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= 60):
        raise SynthError(f"fps must be a number in (0, 60], got {fps!r}")
    if not (math.isfinite(min_duration) and math.isfinite(max_duration)):
        raise SynthError(f"durations must be finite, got min_duration={min_duration!r}, "
                         f"max_duration={max_duration!r}")
    if min_duration < CLIP_SECONDS:
        raise SynthError(f"min_duration must be at least {CLIP_SECONDS:g} seconds (one highlight clip), "
                         f"got {min_duration!r}")
    if min_duration > max_duration:
        raise SynthError(f"min_duration ({min_duration!r}) must not exceed max_duration ({max_duration!r})")


@dataclass
class _Annotations:
    """Records gathered while the videos are generated."""

    train: list[dict[str, Any]] = field(default_factory=list)
    charades: list[dict[str, Any]] = field(default_factory=list)
    qvhighlights: list[dict[str, Any]] = field(default_factory=list)
    youcook2: list[dict[str, Any]] = field(default_factory=list)
    # the training videos' ground truth in the evaluation formats (train_gt/: RL post-training
    # reads prompts and ground truth from them; docs/training.md "GRPO")
    train_charades: list[dict[str, Any]] = field(default_factory=list)
    train_qvhighlights: list[dict[str, Any]] = field(default_factory=list)
    train_youcook2: list[dict[str, Any]] = field(default_factory=list)
    videos: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {split: 0.0 for split in SPLITS})

    def add(self, plan: VideoPlan, rendered: RenderedVideo, seed: int) -> None:
        """Add the records of one generated video."""
        self.seconds[plan.split] += plan.duration
        self.videos.append(_meta_video(plan))
        train = plan.split == "train"
        if train:
            self.train.extend(_train_items(plan, rendered, _prompt_rng(seed, plan.split, plan.index)))
        prefix = "train_" if train else ""  # each row draws from its own stream: the val rows are unchanged
        getattr(self, prefix + "charades").extend(_charades_rows(plan))
        getattr(self, prefix + "qvhighlights").extend(_qvh_rows(plan, rendered, seed))
        getattr(self, prefix + "youcook2").append(_youcook_row(plan))

    def extend(self, other: "_Annotations") -> None:
        """Append another video's (or batch's) records after these."""
        for name in ("train", "charades", "qvhighlights", "youcook2", "train_charades", "train_qvhighlights",
                     "train_youcook2", "videos"):
            getattr(self, name).extend(getattr(other, name))
        for split, value in other.seconds.items():
            self.seconds[split] += value

    def write(self, root: Path, settings: dict[str, Any]) -> None:
        """Write ``train.json``, the ``val/`` ground truths (with ids), the same for the training
        videos in ``train_gt/`` and ``meta.json`` (last: its presence marks a finished folder)."""
        write_json(root / "train.json", self.train)
        for folder, prefix in (("val", ""), ("train_gt", "train_")):
            write_json(root / folder / "charades.json",
                       {"annotations": [{**row, "id": i} for i, row in enumerate(getattr(self, prefix + "charades"))]})
            write_jsonl(root / folder / "qvhighlights.jsonl",
                        [{"qid": i, **row} for i, row in enumerate(getattr(self, prefix + "qvhighlights"))])
            write_json(root / folder / "youcook2.json",
                       {"annotations": [{**row, "id": i} for i, row in enumerate(getattr(self, prefix + "youcook2"))]})
        write_json(root / "meta.json", {**settings, "videos": self.videos})

    def summary(self) -> dict[str, Any]:
        """Counts per split and task, and seconds of video."""
        videos = {split: sum(v["split"] == split for v in self.videos) for split in SPLITS}
        tasks = {task: sum(item["source"] == SOURCE_PREFIX + task for item in self.train) for task in TASKS}
        queries = {"charades": len(self.charades), "qvhighlights": len(self.qvhighlights),
                   "youcook2": len(self.youcook2)}
        train_queries = {"charades": len(self.train_charades), "qvhighlights": len(self.train_qvhighlights),
                         "youcook2": len(self.train_youcook2)}
        return {"videos": videos, "train_samples": tasks, "val_queries": queries, "train_queries": train_queries,
                "seconds": {split: round(value, 3) for split, value in self.seconds.items()},
                "total_seconds": round(sum(self.seconds.values()), 3)}


def _make_video(job: tuple[str, int], *, root: str, seed: int, size: int, fps: float, min_duration: float,
                max_duration: float) -> _Annotations:
    """Plan, render and encode one video; its annotation records (runs in a worker process too)."""
    split, index = job
    plan = plan_video(seed, split, index, size=size, fps=fps, min_duration=min_duration, max_duration=max_duration)
    rendered = render_video(plan, seed)
    encode_mp4(Path(root) / plan.video, rendered.frames, plan.fps)
    part = _Annotations()
    part.add(plan, rendered, seed)
    return part


def generate_synth(out_dir: str | os.PathLike[str], *, seed: int = 0, n_train: int = 200, n_val: int = 50,
                   size: int = 64, fps: float = 4.0, min_duration: float = 8.0, max_duration: float = 60.0,
                   workers: int = 1, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Generate the VTG-Synth benchmark under ``out_dir``.

    Videos and annotation files are (re)written atomically; files left from an earlier, larger
    generation are not removed. The same arguments give byte-identical files. Video ``i`` of a
    split depends only on ``(seed, split, i)`` and the video settings, not on the split sizes.

    Args:
        out_dir: benchmark root (created if missing); use it as ``video_root`` when loading.
        seed: master seed (>= 0).
        n_train: number of training videos.
        n_val: number of validation videos.
        size: frame width and height in pixels (even, >= 16).
        fps: frame rate; all event times lie on the ``1 / fps`` grid.
        min_duration: shortest video in seconds (>= 2).
        max_duration: longest video in seconds.
        workers: processes that render and encode videos in parallel (the files do not depend on it).
        progress: called as ``progress(done, total)`` after each video.

    Returns:
        ``{"out_dir", "seed", "videos": {split: n}, "train_samples": {task: n},
        "val_queries": {format: n}, "train_queries": {format: n}, "seconds": {split: s}, "total_seconds",
        "wall_s"}``.

    Raises:
        SynthError: (a ``ValueError``) invalid arguments.
    """
    _validate(seed, n_train, n_val, size, fps, min_duration, max_duration)
    started = time.perf_counter()
    root = Path(out_dir)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    jobs = [("train", i) for i in range(n_train)] + [("val", i) for i in range(n_val)]
    if workers < 1:
        raise SynthError(f"workers must be >= 1, got {workers}")
    make = functools.partial(_make_video, root=str(root), seed=seed, size=size, fps=float(fps),
                             min_duration=min_duration, max_duration=max_duration)
    records = _Annotations()
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(jobs) > 1:
            import multiprocessing

            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))))
            results: Iterable[_Annotations] = pool.imap(make, jobs, chunksize=4)
        else:
            results = map(make, jobs)
        for done, part in enumerate(results, start=1):  # in job order, whatever the worker count
            records.extend(part)
            if progress is not None:
                progress(done, len(jobs))
    settings = {"generator": GENERATOR_VERSION, "seed": seed, "n_train": n_train, "n_val": n_val,
                "size": size, "fps": float(fps), "min_duration": float(min_duration),
                "max_duration": float(max_duration), "video_root": ".", "codec": "mpeg4", "qscale": QSCALE}
    records.write(root, settings)
    return {"out_dir": str(root), "seed": seed, **records.summary(),
            "wall_s": round(time.perf_counter() - started, 3)}
