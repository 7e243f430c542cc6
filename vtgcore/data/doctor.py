"""The data doctor: checks an annotation file and its videos without training.

It reports the number of items, missing videos, unreadable or corrupt videos (each video is probed
and its first and last frames decoded; timestamps that go back are found from the packets), annotation times outside the video's duration, malformed
items (with their index and field) and duplicate ids. Videos are checked in parallel threads (the
decoders release the GIL) with a progress callback.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from vtgcore.errors import VideoReadError

KINDS = ("malformed", "duplicate_id", "missing_video", "unreadable_video", "out_of_range")
TOLERANCE_S = 0.5
"""Times may exceed the probed duration by this much (container durations are rounded)."""


@dataclass
class Problem:
    """One finding.

    Attributes:
        kind: one of :data:`KINDS`.
        message: one line naming the file and the problem.
        index: item index in the annotation file, when the problem belongs to an item.
        field: the field concerned.
        video: the video file concerned.
    """

    kind: str
    message: str
    index: Optional[int] = None
    field: str = ""
    video: str = ""


@dataclass
class Report:
    """What :func:`check` found.

    Attributes:
        annotation: the annotation file.
        format: its format.
        items: items in the file (well-formed and malformed).
        videos: distinct videos referenced.
        problems: every finding.
    """

    annotation: str
    format: str
    items: int
    videos: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.problems

    def counts(self) -> dict[str, int]:
        """Number of problems per kind (every kind listed)."""
        found = Counter(p.kind for p in self.problems)
        return {kind: found.get(kind, 0) for kind in KINDS}

    def to_json(self) -> str:
        """The report as JSON (``ok``, counts and every problem)."""
        return json.dumps({"annotation": self.annotation, "format": self.format, "items": self.items,
                           "videos": self.videos, "ok": self.ok, "counts": self.counts(),
                           "problems": [asdict(p) for p in self.problems]}, indent=2, ensure_ascii=False)

    def to_text(self) -> str:
        """A human summary: one line of counts, then one line per problem."""
        counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in self.counts().items())
        head = f"{self.annotation} ({self.format}): {self.items} items, {self.videos} videos; {counts}"
        lines = [head] + [f"  [{p.kind}] {p.message}" for p in self.problems]
        lines.append("clean" if self.ok else f"{len(self.problems)} problem(s)")
        return "\n".join(lines)


def _item_id(item: Any) -> Optional[str]:
    return getattr(item, "id", None)


def _item_times(item: Any) -> list[tuple[str, float]]:
    """(field, seconds) for every time an item states."""
    if hasattr(item, "turns"):
        from vtgcore.data.formats import markers_to_seconds

        return [(f"QA[{k}].{key}", t) for k, turn in enumerate(item.turns) for key in ("q", "a")
                for t in markers_to_seconds(turn.get(key, ""))]
    name = {"mr": "timestamp", "dvc": "segments", "hd": "relevant_windows"}.get(item.task, "windows")
    return [(f"{name}[{k}]", t) for k, window in enumerate(item.windows) for t in window]


def _check_video(path: Path, reader: str) -> tuple[Optional[float], Optional[Problem]]:
    """Duration of a readable video, or the problem that makes it unusable."""
    from vtgcore.data.video import get_reader, reader_for

    if not path.exists():
        return None, Problem("missing_video", f"{path}: video file not found", video=str(path))
    try:
        chosen = get_reader(reader_for(path, reader))
        info = chosen.probe(path)
        if info.num_frames <= 0:
            raise VideoReadError(f"{path}: video stream has no frames")
        chosen.read(path, sorted({0, info.num_frames - 1}), (32, 32))
        _check_monotonic(path, repeats_ok=chosen.name != "pyav")
    except VideoReadError as exc:
        msg = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        return None, Problem("unreadable_video", msg, video=str(path))
    return info.duration, None


def _check_monotonic(path: Path, repeats_ok: bool) -> None:
    """Raise when the video's timestamps go back in a stream without B-frames (decord would pair
    frames with the wrong times, PyAV cannot place them) or, unless ``repeats_ok`` (decord reads
    those), when two frames share a time. Only packets are read (the PyAV frame index, cached)."""
    from vtgcore.data.video import PyAVReader, _frame_index

    index = _frame_index(path)
    why = PyAVReader._why_missed(index)
    if index.backwards is not None or (not repeats_ok and why.startswith("non-monotonic")):
        raise VideoReadError(f"{path}: {why}")


def check(annotation: str | Path, *, fmt: Optional[str] = None, video_root: Optional[str | Path] = None,
          reader: str = "auto", workers: int = 0,
          progress: Optional[Callable[[int, int], None]] = None) -> Report:
    """Check an annotation file and every video it names.

    Args:
        annotation: the annotation file.
        fmt: ``vtg-it`` or an evaluation format (see :data:`vtgcore.data.formats.ALL_FORMATS`);
            None detects it.
        video_root: folder relative video paths are resolved against (default: the current folder).
        reader: video reader used for the checks.
        workers: parallel video checks (0: one per CPU, at most 8).
        progress: called as ``progress(done, total)`` after each video.

    Returns:
        The :class:`Report`.

    Raises:
        AnnotationError: the annotation file itself cannot be read (missing, not JSON, wrong top level).
    """
    from vtgcore.data.formats import load_lenient, resolve_video

    fmt, items, errors = load_lenient(annotation, fmt)
    problems = [Problem("malformed", str(e), index=_index_of(str(e)), field=_field_of(str(e))) for e in errors]

    first_seen: dict[str, int] = {}
    for item in items:
        key = _item_id(item)
        if key is None:
            continue
        if key in first_seen:
            problems.append(Problem("duplicate_id", f"{annotation}: item {item.index}: duplicate id {key!r} "
                                    f"(first at item {first_seen[key]})", index=item.index, field="id"))
        else:
            first_seen[key] = item.index

    videos = sorted({resolve_video(item.video, video_root) for item in items})
    durations: dict[Path, Optional[float]] = {}
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_check_video, v, reader): v for v in videos}
        for done, future in enumerate(as_completed(futures), 1):
            duration, problem = future.result()
            durations[futures[future]] = duration
            if problem is not None:
                problems.append(problem)
            if progress is not None:
                progress(done, len(videos))

    for item in items:
        video = resolve_video(item.video, video_root)
        duration = durations.get(video)
        if duration is None:
            continue
        for name, seconds in _item_times(item):
            if seconds > duration + TOLERANCE_S:
                problems.append(Problem(
                    "out_of_range", f"{annotation}: item {item.index}, field '{name}': time {seconds:g} s is "
                    f"past the end of {video} ({duration:.1f} s)", index=item.index, field=name, video=str(video)))
    order = {k: i for i, k in enumerate(KINDS)}
    problems.sort(key=lambda p: (order[p.kind], p.index if p.index is not None else -1, p.video))
    return Report(str(annotation), fmt, len(items) + len(errors), len(videos), problems)


def _index_of(message: str) -> Optional[int]:
    match = re.search(r"\bitem (\d+)", message)
    return int(match.group(1)) if match else None


def _field_of(message: str) -> str:
    match = re.search(r"field '([^']*)'", message)
    return match.group(1) if match else ""
