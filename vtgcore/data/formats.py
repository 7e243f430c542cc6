"""Annotation formats: the VTG-IT training file and the evaluation ground truths, as typed records.

Training data (VTG-IT, ``vtgllm-original.md`` section 4.1) is a JSON list of
``{"video", "QA": [{"q", "a"}], "source"}``. Its answers carry times as runs of the 11 VTG-LLM
time tokens; :func:`load_vtg_it` turns each run into ``<time>seconds</time>`` markers so that the
processor can write them again with whatever time codec a recipe configures.

Evaluation ground truths (section 4.4) come in four layouts: Charades-STA and YouCook2 as COCO-style
``{"annotations": [...]}`` files, QVHighlights as JSON lines and ActivityNet Captions as a dict keyed
by video id. DiDeMo's own list format is read too (it is a conversion source). Every loader
validates what it reads and raises :class:`~vtgcore.errors.AnnotationError` with a one-line message
naming the file, the item (or line) and the field. Times beyond a video's duration are not checked
here; that is the data doctor's report.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vtgcore.errors import AnnotationError, VTGError
from vtgcore.utils.fileio import read_text
from vtgcore.processor import TIME_MARK, time_mark
from vtgcore.vocab import VTGLLM_TIME_TOKENS as TIME_TOKENS
from vtgcore.utils.limits import check_duration, has_surrogates, json_problem, loads_json

__all__ = [
    "EVAL_FORMATS", "EvalItem", "TrainItem", "detect_format", "load_activitynet", "load_charades",
    "load_didemo", "load_eval", "load_qvhighlights", "load_vtg_it", "load_youcook2",
    "markers_to_seconds", "resolve_video", "tokens_to_markers",
]

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg"})
DIDEMO_SEGMENT_SECONDS = 5.0

_TOKEN_CHAR = dict(zip(TIME_TOKENS, "0123456789."))
_TOKEN = "|".join(re.escape(t) for t in TIME_TOKENS)
_TOKEN_RUN = re.compile(rf"(?:{_TOKEN})(?:\s*(?:{_TOKEN}))*")
_ONE_TOKEN = re.compile(rf"(\s*)({_TOKEN})")
# Fixed dddd.d first, then the legacy forms the original wrote for whole numbers ("12.0", and
# "12345." when the fraction fell off the 6-token limit).
_NUMBER_AT = re.compile(r"\d{4}\.\d|\d+\.\d|\d+\.?")
_WINDOW_PAIR = re.compile(r"<time>\s*([^<]*?)\s*</time>\s*-\s*<time>\s*([^<]*?)\s*</time>")


@dataclass
class TrainItem:
    """One training conversation.

    Attributes:
        video: the video path as written in the file (relative to a video root, or absolute).
        turns: ``[{"q": question, "a": answer}, ...]`` with every time as a ``<time>S</time>`` marker.
        source: the sub-data set the item came from ("" when the file does not say).
        index: position of the item in its file.
    """

    video: str
    turns: list[dict[str, str]]
    source: str = ""
    index: int = -1


@dataclass
class EvalItem:
    """One evaluation query (MR, HD) or video (DVC) with its ground truth in seconds.

    Attributes:
        id: query id (MR, HD) or video id (DVC).
        video: the video path as written in the file.
        task: ``"mr"``, ``"dvc"`` or ``"hd"``.
        query: the MR/HD query text ("" for DVC).
        duration: video length in seconds when the file gives it.
        windows: ground-truth windows ``(start, end)``: one for MR, one per caption for DVC, the
            relevant windows for HD.
        captions: DVC sentences aligned with ``windows``.
        saliency: HD scores per relevant clip and annotator (QVHighlights: 0..4).
        clip_ids: HD relevant clip ids (2-second clips), aligned with ``saliency``.
        index: position of the item in its file.
    """

    id: str
    video: str
    task: str
    query: str = ""
    duration: float | None = None
    windows: list[tuple[float, float]] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    saliency: list[list[float]] | None = None
    clip_ids: list[int] | None = None
    index: int = -1


# --------------------------------------------------------------------------------------------------
# Time tokens <-> markers


def _read_run(chars: str, spaced: list[bool]) -> str:
    """Markers for one run of time-token characters; ``spaced[k]``: whitespace before token k."""
    out: list[str] = []
    pos = 0
    while pos < len(chars):
        match = _NUMBER_AT.match(chars, pos)
        if match is None:
            raise ValueError(f"time tokens {chars!r} do not form numbers (stuck at character {pos})")
        if out and spaced[pos]:
            out.append(" ")
        out.append(time_mark(float(match.group())))
        pos = match.end()
    return "".join(out)


def tokens_to_markers(text: str) -> str:
    """Replace every run of VTG-LLM time tokens in ``text`` with ``<time>seconds</time>`` markers.

    A run is a sequence of the 11 tokens, possibly separated by whitespace (the slow LLaMA
    tokenizer decodes them as ``<TIME_ZERO> <TIME_ZERO> <TIME_ONE> ...``). A run that is one
    ``dddd.d`` group becomes one number; whole groups written back to back become one number each;
    the legacy form of whole numbers (``12.0``, 4 tokens, no padding) is read too. Existing markers
    and plain-text numbers are left as they are.

    Args:
        text: an annotation or decoded model text.

    Returns:
        The text with markers in place of the token runs.

    Raises:
        ValueError: a run cannot be read as numbers (e.g. a lone ``<TIME_DOT>``).
    """
    def sub(match: re.Match) -> str:
        chars, spaced = [], []
        for token in _ONE_TOKEN.finditer(match.group()):
            spaced.append(bool(token.group(1)))
            chars.append(_TOKEN_CHAR[token.group(2)])
        return _read_run("".join(chars), spaced)

    return _TOKEN_RUN.sub(sub, text)


def markers_to_seconds(text: str) -> list[float]:
    """The seconds held by every ``<time>S</time>`` marker of ``text``, in order.

    Raises:
        VTGError: a marker does not hold a number.
    """
    seconds = []
    for match in TIME_MARK.finditer(text):
        try:
            seconds.append(float(match.group(1)))
        except ValueError:
            raise VTGError(f"time marker {match.group(0)!r} does not hold a number of seconds") from None
    return seconds


# --------------------------------------------------------------------------------------------------
# Reading and validation helpers


class _Where:
    """Builds one-line errors for one item: ``{file}: item {i}, field '{f}': {message}``."""

    def __init__(self, path: Path, index: int, line: int | None = None) -> None:
        self.path = path
        self.index = index
        self.line = line

    def __call__(self, field_name: str | None, message: str) -> AnnotationError:
        place = f"item {self.index}" if self.line is None else f"line {self.line} (item {self.index})"
        if field_name is None:
            return AnnotationError(f"{self.path}: {place}: {message}")
        return AnnotationError(f"{self.path}: {place}, field '{field_name}': {message}")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_text(path: str | Path) -> tuple[Path, str]:
    path = Path(path)
    return path, read_text(path, AnnotationError, "annotation file")


def _parse_json(path: Path, text: str) -> Any:
    try:
        return loads_json(text)
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}: {json_problem(err)}") from None


def _parse_jsonl(path: Path, text: str) -> list[tuple[int, Any]]:
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((lineno, loads_json(line)))
        except json.JSONDecodeError as err:
            raise AnnotationError(f"{path}: line {lineno}: {json_problem(err).replace(' at line 1 column', ' at column')}") from None
    return rows


def _expect_top(path: Path, data: Any, kind: type, what: str) -> None:
    if not isinstance(data, kind):
        raise AnnotationError(f"{path}: top level must be {what}, got {type(data).__name__}")


def _get(item: dict, key: str, where: _Where) -> Any:
    if key not in item:
        raise where(key, "missing")
    return item[key]


def _string(item: dict, key: str, where: _Where, *, allow_empty: bool = False) -> str:
    value = _get(item, key, where)
    if not isinstance(value, str):
        raise where(key, f"must be a string, got {type(value).__name__} {_short(value)}")
    if not allow_empty and not value.strip():
        raise where(key, "must not be empty")
    if has_surrogates(value):
        raise where(key, "not valid Unicode (a lone surrogate such as \\ud800)")
    return value


def _number(value: Any, key: str, where: _Where) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where(key, f"must be a number, got {type(value).__name__} {_short(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise where(key, f"must be finite, got {number}")
    return number


def _seconds(value: Any, key: str, where: _Where) -> float:
    number = _number(value, key, where)
    if number < 0:
        raise where(key, f"negative time {number}")
    too_long = check_duration(number, "time")
    if too_long:
        raise where(key, too_long)
    return number


def _duration(item: dict, key: str, where: _Where) -> float:
    number = _number(_get(item, key, where), key, where)
    if number <= 0:
        raise where(key, f"duration must be > 0 seconds, got {number}")
    too_long = check_duration(number)
    if too_long:
        raise where(key, too_long)
    return number


def _window(value: Any, key: str, where: _Where) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise where(key, f"a window must be [start, end], got {_short(value)}")
    start, end = (_seconds(v, key, where) for v in value)
    if start > end:
        raise where(key, f"reversed window [{start}, {end}]")
    return start, end


def _list(item: dict, key: str, where: _Where, *, non_empty: bool = True) -> list:
    value = _get(item, key, where)
    if not isinstance(value, list):
        raise where(key, f"must be a list, got {type(value).__name__}")
    if non_empty and not value:
        raise where(key, "empty list")
    return value


def _windows(item: dict, key: str, where: _Where) -> list[tuple[float, float]]:
    return [_window(w, f"{key}[{k}]", where) for k, w in enumerate(_list(item, key, where))]


def _dict_item(value: Any, where: _Where) -> dict:
    if not isinstance(value, dict):
        raise where(None, f"an item must be a JSON object, got {type(value).__name__}")
    return value


def _video_file(name: str) -> str:
    """``name`` with ``.mp4`` appended unless it already ends in a known video extension."""
    return name if Path(name).suffix.lower() in VIDEO_EXTENSIONS else f"{name}.mp4"


def _video_id(video: str) -> str:
    """The id of a video file: its name without folders and without a known video extension."""
    name = Path(video).name
    return Path(name).stem if Path(name).suffix.lower() in VIDEO_EXTENSIONS else name


def _unique(items: list[EvalItem], path: Path, what: str) -> list[EvalItem]:
    seen: dict[str, int] = {}
    for item in items:
        if item.id in seen:
            raise AnnotationError(
                f"{path}: item {item.index}, field '{what}': duplicate id {item.id!r} (first at item {seen[item.id]})")
        seen[item.id] = item.index
    return items


def resolve_video(video: str, video_root: str | Path | None) -> Path:
    """The file of a video as written in an annotation.

    Args:
        video: the path from the annotation.
        video_root: the folder relative paths start from; the current directory when None.

    Returns:
        ``video`` itself when absolute, else ``video_root / video``.
    """
    path = Path(video)
    if path.is_absolute():
        return path
    return (Path(video_root) if video_root is not None else Path.cwd()) / path


# --------------------------------------------------------------------------------------------------
# VTG-IT


def _turn_text(turn: dict, key: str, field_name: str, where: _Where) -> str:
    value = turn.get(key)
    if not isinstance(value, str):
        raise where(field_name, "missing" if key not in turn else f"must be a string, got {type(value).__name__}")
    try:
        text = tokens_to_markers(value)
        times = markers_to_seconds(text)
    except (ValueError, VTGError) as err:
        raise where(field_name, str(err)) from None
    negative = [t for t in times if t < 0]
    if negative:
        raise where(field_name, f"negative time {negative[0]}")
    for match in _WINDOW_PAIR.finditer(text):
        start, end = float(match.group(1)), float(match.group(2))
        if start > end:
            raise where(field_name, f"reversed window [{start:g}, {end:g}]")
    return text


def _vtg_it_item(path: Path, index: int, raw: Any) -> TrainItem:
    where = _Where(path, index)
    item = _dict_item(raw, where)
    video = _string(item, "video", where)
    source = item.get("source", "")
    if not isinstance(source, str):
        raise where("source", f"must be a string, got {type(source).__name__}")
    turns = []
    for k, turn in enumerate(_list(item, "QA", where)):
        if not isinstance(turn, dict):
            raise where(f"QA[{k}]", f"a turn must be an object with 'q' and 'a', got {type(turn).__name__}")
        turns.append({"q": _turn_text(turn, "q", f"QA[{k}].q", where),
                      "a": _turn_text(turn, "a", f"QA[{k}].a", where)})
    return TrainItem(video=video, turns=turns, source=source, index=index)


def load_vtg_it(path: str | Path) -> list[TrainItem]:
    """Read a VTG-IT training file, converting time tokens to ``<time>`` markers.

    Args:
        path: a JSON list of ``{"video", "QA": [{"q", "a"}, ...], "source"?}``.

    Returns:
        One :class:`TrainItem` per item, in file order.

    Raises:
        AnnotationError: the file is missing or not JSON, or an item is malformed (missing or
            mistyped field, empty ``QA``, unreadable time tokens, negative time, reversed window).
    """
    path, text = _read_text(path)
    data = _parse_json(path, text)
    _expect_top(path, data, list, "a list of items")
    return [_vtg_it_item(path, i, raw) for i, raw in enumerate(data)]


# --------------------------------------------------------------------------------------------------
# Evaluation ground truths


def _coco_annotations(path: Path, data: Any) -> list:
    _expect_top(path, data, dict, 'an object with "annotations"')
    if "annotations" not in data:
        raise AnnotationError(f"{path}: top level has no \"annotations\" list")
    if not isinstance(data["annotations"], list):
        raise AnnotationError(f"{path}: \"annotations\" must be a list, got {type(data['annotations']).__name__}")
    return data["annotations"]


def _charades_item(path: Path, index: int, raw: Any) -> EvalItem:
    where = _Where(path, index)
    item = _dict_item(raw, where)
    qid = _get(item, "id", where)
    if isinstance(qid, bool) or not isinstance(qid, (int, str)):
        raise where("id", f"must be an integer or a string, got {type(qid).__name__}")
    return EvalItem(id=str(qid), video=_video_file(_string(item, "image_id", where)), task="mr",
                    query=_string(item, "caption", where),
                    windows=[_window(_get(item, "timestamp", where), "timestamp", where)], index=index)


def _parse_charades(path: Path, data: Any) -> list[EvalItem]:
    items = [_charades_item(path, i, raw) for i, raw in enumerate(_coco_annotations(path, data))]
    return _unique(items, path, "id")


def load_charades(path: str | Path) -> list[EvalItem]:
    """Read a Charades-STA COCO-style file (``{"annotations": [{image_id, caption, timestamp, id}]}``).

    Returns:
        One MR :class:`EvalItem` per query; ``id`` is the annotation's ``id``.

    Raises:
        AnnotationError: a malformed file or item, or a duplicate ``id``.
    """
    path, text = _read_text(path)
    return _parse_charades(path, _parse_json(path, text))


def _split_captions(text: str) -> list[str]:
    """``"sent1. sent2."`` -> ``["sent1.", "sent2."]`` (split on ". ", empty pieces dropped)."""
    pieces = (piece.strip().rstrip(".").strip() for piece in text.split(". "))
    return [f"{piece}." for piece in pieces if piece]


def _youcook2_item(path: Path, index: int, raw: Any) -> EvalItem:
    where = _Where(path, index)
    item = _dict_item(raw, where)
    video = _video_file(_string(item, "image_id", where))
    windows = _windows(item, "segments", where)
    captions = _split_captions(_string(item, "pure_cap", where))
    if len(captions) != len(windows):
        raise where("pure_cap", f"{len(captions)} sentences but {len(windows)} segments")
    return EvalItem(id=_video_id(video), video=video, task="dvc", duration=_duration(item, "duration", where),
                    windows=windows, captions=captions, index=index)


def _parse_youcook2(path: Path, data: Any) -> list[EvalItem]:
    items = [_youcook2_item(path, i, raw) for i, raw in enumerate(_coco_annotations(path, data))]
    return _unique(items, path, "image_id")


def load_youcook2(path: str | Path) -> list[EvalItem]:
    """Read a YouCook2 COCO-style file (``image_id, segments, pure_cap, duration`` per video).

    ``pure_cap`` is split into sentences on ``". "``; each caption ends with one ``"."``.

    Returns:
        One DVC :class:`EvalItem` per video; ``id`` is the video name without folder and extension.

    Raises:
        AnnotationError: a malformed item, a sentence count different from the segment count, or
            a duplicate video.
    """
    path, text = _read_text(path)
    return _parse_youcook2(path, _parse_json(path, text))


def _qvhighlights_item(path: Path, index: int, line: int, raw: Any) -> EvalItem:
    where = _Where(path, index, line)
    item = _dict_item(raw, where)
    qid = _get(item, "qid", where)
    if isinstance(qid, bool) or not isinstance(qid, (int, str)):
        raise where("qid", f"must be an integer or a string, got {type(qid).__name__}")
    clip_ids = []
    for k, clip in enumerate(_list(item, "relevant_clip_ids", where)):
        if isinstance(clip, bool) or not isinstance(clip, int) or clip < 0:
            raise where(f"relevant_clip_ids[{k}]", f"must be an integer >= 0, got {_short(clip)}")
        clip_ids.append(clip)
    saliency = []
    for k, scores in enumerate(_list(item, "saliency_scores", where)):
        name = f"saliency_scores[{k}]"
        if not isinstance(scores, list) or not scores:
            raise where(name, f"must be a non-empty list of annotator scores, got {_short(scores)}")
        saliency.append([_seconds(s, name, where) for s in scores])
    if len(saliency) != len(clip_ids):
        raise where("saliency_scores", f"{len(saliency)} score lists but {len(clip_ids)} relevant clips")
    return EvalItem(id=str(qid), video=_video_file(_string(item, "vid", where)), task="hd",
                    query=_string(item, "query", where), duration=_duration(item, "duration", where),
                    windows=_windows(item, "relevant_windows", where), saliency=saliency,
                    clip_ids=clip_ids, index=index)


def _parse_qvhighlights(path: Path, rows: list[tuple[int, Any]]) -> list[EvalItem]:
    items = [_qvhighlights_item(path, i, line, raw) for i, (line, raw) in enumerate(rows)]
    return _unique(items, path, "qid")


def load_qvhighlights(path: str | Path) -> list[EvalItem]:
    """Read QVHighlights ground truth (JSON lines: ``qid, query, duration, vid, relevant_clip_ids,
    saliency_scores, relevant_windows``). Blank lines are skipped.

    Returns:
        One HD :class:`EvalItem` per line; the video is ``vid + ".mp4"`` unless ``vid`` has a video
        extension.

    Raises:
        AnnotationError: a line that is not JSON or a malformed item (the message gives the line
            number), or a duplicate ``qid``.
    """
    path, text = _read_text(path)
    return _parse_qvhighlights(path, _parse_jsonl(path, text))


def _activitynet_item(path: Path, index: int, vid: str, raw: Any) -> EvalItem:
    where = _Where(path, index)
    if not isinstance(raw, dict):
        raise where(vid, f"must be an object with duration, timestamps, sentences, got {type(raw).__name__}")
    windows = _windows(raw, "timestamps", where)
    sentences = _list(raw, "sentences", where)
    captions = []
    for k, sentence in enumerate(sentences):
        if not isinstance(sentence, str) or not sentence.strip():
            raise where(f"sentences[{k}]", f"must be a non-empty string, got {_short(sentence)}")
        captions.append(sentence.strip())
    if len(captions) != len(windows):
        raise where("sentences", f"{len(captions)} sentences but {len(windows)} timestamps")
    return EvalItem(id=vid, video=_video_file(vid), task="dvc", duration=_duration(raw, "duration", where),
                    windows=windows, captions=captions, index=index)


def _parse_activitynet(path: Path, data: Any) -> list[EvalItem]:
    _expect_top(path, data, dict, "an object keyed by video id")
    return [_activitynet_item(path, i, vid, raw) for i, (vid, raw) in enumerate(data.items())]


def load_activitynet(path: str | Path) -> list[EvalItem]:
    """Read ActivityNet Captions ground truth (``{vid: {duration, timestamps, sentences}}``).

    Returns:
        One DVC :class:`EvalItem` per video; ``id`` is the key, the video is ``vid + ".mp4"``.

    Raises:
        AnnotationError: a malformed item or a sentence count different from the window count.
    """
    path, text = _read_text(path)
    return _parse_activitynet(path, _parse_json(path, text))


def _didemo_window(item: dict, where: _Where) -> tuple[float, float]:
    pairs = []
    for k, pair in enumerate(_list(item, "times", where)):
        name = f"times[{k}]"
        if (not isinstance(pair, list) or len(pair) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in pair)):
            raise where(name, f"must be [first, last] segment indices, got {_short(pair)}")
        if min(pair) < 0:
            raise where(name, f"negative segment index in {pair}")
        if pair[0] > pair[1]:
            raise where(name, f"reversed window {pair}")
        pairs.append((pair[0], pair[1]))
    first, last = _consensus(pairs)
    return first * DIDEMO_SEGMENT_SECONDS, (last + 1) * DIDEMO_SEGMENT_SECONDS


def _consensus(pairs: list[tuple[int, int]]) -> tuple[int, int]:
    """The annotation given most often (at least twice), else the element-wise lower median."""
    counts = Counter(pairs).most_common()
    if counts[0][1] >= 2 and (len(counts) == 1 or counts[1][1] < counts[0][1]):
        return counts[0][0]
    middle = (len(pairs) - 1) // 2
    return sorted(p[0] for p in pairs)[middle], sorted(p[1] for p in pairs)[middle]


def _didemo_item(path: Path, index: int, raw: Any) -> EvalItem:
    where = _Where(path, index)
    item = _dict_item(raw, where)
    qid = item.get("annotation_id", index)
    return EvalItem(id=str(qid), video=_string(item, "video", where), task="mr",
                    query=_string(item, "description", where), windows=[_didemo_window(item, where)],
                    index=index)


def _parse_didemo(path: Path, data: Any) -> list[EvalItem]:
    _expect_top(path, data, list, "a list of items")
    return [_didemo_item(path, i, raw) for i, raw in enumerate(data)]


def load_didemo(path: str | Path) -> list[EvalItem]:
    """Read DiDeMo's own format (a JSON list of ``{video, description, times: [[i, j], ...]}``).

    ``times`` holds several annotators' choices of 5-second segment indices. The window is the
    annotation given most often (by at least two annotators and more than any other), otherwise the
    element-wise lower median of the annotations; ``[i, j]`` becomes ``[5 i, 5 (j + 1)]`` seconds.

    Returns:
        One MR :class:`EvalItem` per item; ``id`` is ``annotation_id`` when present, else the index.

    Raises:
        AnnotationError: a malformed item.
    """
    path, text = _read_text(path)
    return _parse_didemo(path, _parse_json(path, text))


_PARSERS: dict[str, Callable[[Path, Any], list[EvalItem]]] = {
    "charades": _parse_charades,
    "qvhighlights": _parse_qvhighlights,
    "youcook2": _parse_youcook2,
    "activitynet": _parse_activitynet,
    "didemo": _parse_didemo,
}
EVAL_FORMATS: tuple[str, ...] = tuple(_PARSERS)


def _detect(data: Any) -> str | None:
    if isinstance(data, dict):
        if isinstance(data.get("annotations"), list):
            first = data["annotations"][0] if data["annotations"] else None
            return "youcook2" if isinstance(first, dict) and "segments" in first else "charades"
        if "qid" in data and "vid" in data:
            return "qvhighlights"
        values = list(data.values())
        if values and all(isinstance(v, dict) for v in values) and "timestamps" in values[0]:
            return "activitynet"
    if isinstance(data, list) and data and isinstance(data[0], dict) and {"times", "description"} <= data[0].keys():
        return "didemo"
    return None


def _detect_text(path: Path, text: str) -> tuple[str, Any]:
    """The format of ``text`` and its parsed content (a list of ``(line, obj)`` for JSON lines)."""
    if path.suffix.lower() == ".jsonl":
        return "qvhighlights", _parse_jsonl(path, text)
    try:
        data = loads_json(text)
    except json.JSONDecodeError:
        first = next((line for line in text.splitlines() if line.strip()), "")
        try:
            is_jsonl = isinstance(loads_json(first), dict)
        except json.JSONDecodeError:
            is_jsonl = False
        if not is_jsonl:
            _parse_json(path, text)  # raises the JSON error
        return "qvhighlights", _parse_jsonl(path, text)
    fmt = _detect(data)
    if fmt is None:
        raise AnnotationError(
            f"{path}: cannot detect the annotation format; pass fmt= one of {', '.join(EVAL_FORMATS)}")
    if fmt == "qvhighlights":
        return fmt, _parse_jsonl(path, text)
    return fmt, data


def detect_format(path: str | Path) -> str:
    """The evaluation format of a file, one of :data:`EVAL_FORMATS`, detected from its content.

    JSON lines (or a ``.jsonl`` name) -> qvhighlights; ``{"annotations": [...]}`` whose items have
    ``segments`` -> youcook2, otherwise charades; a dict of dicts with ``timestamps`` ->
    activitynet; a list of ``{times, description}`` -> didemo.

    Raises:
        AnnotationError: the file cannot be read or matches no format.
    """
    path, text = _read_text(path)
    return _detect_text(path, text)[0]


def load_eval(path: str | Path, fmt: str | None = None) -> list[EvalItem]:
    """Read an evaluation ground truth in a named format, or the format detected from its content.

    Args:
        path: the annotation file.
        fmt: one of :data:`EVAL_FORMATS`, or None to detect it (see :func:`detect_format`).

    Raises:
        VTGError: ``fmt`` is not a known format.
        AnnotationError: the file cannot be read, matches no format, or holds a malformed item.
    """
    if fmt is not None and fmt not in _PARSERS:
        raise VTGError(f"unknown annotation format {fmt!r}; available: {', '.join(EVAL_FORMATS)}")
    path, text = _read_text(path)
    if fmt is None:
        fmt, data = _detect_text(path, text)
    elif fmt == "qvhighlights":
        data = _parse_jsonl(path, text)
    else:
        data = _parse_json(path, text)
    return _PARSERS[fmt](path, data)


# --------------------------------------------------------------------------------------------------
# Lenient reading for the data doctor: every malformed item is reported, none stops the reading

ALL_FORMATS: tuple[str, ...] = ("vtg-it", *EVAL_FORMATS)


def _raw_rows(path: Path, text: str, fmt: str) -> list[tuple[Callable[[], Any], int]]:
    """One thunk per raw item (calling it parses the item) with the item's index."""
    if fmt == "qvhighlights":
        rows = _parse_jsonl(path, text)
        return [((lambda i=i, ln=ln, raw=raw: _qvhighlights_item(path, i, ln, raw)), i)
                for i, (ln, raw) in enumerate(rows)]
    data = _parse_json(path, text)
    if fmt == "vtg-it":
        _expect_top(path, data, list, "a list of items")
        return [((lambda i=i, raw=raw: _vtg_it_item(path, i, raw)), i) for i, raw in enumerate(data)]
    if fmt == "activitynet":
        _expect_top(path, data, dict, "an object keyed by video id")
        return [((lambda i=i, vid=vid, raw=raw: _activitynet_item(path, i, vid, raw)), i)
                for i, (vid, raw) in enumerate(data.items())]
    if fmt == "didemo":
        _expect_top(path, data, list, "a list of items")
        return [((lambda i=i, raw=raw: _didemo_item(path, i, raw)), i) for i, raw in enumerate(data)]
    parse = _charades_item if fmt == "charades" else _youcook2_item
    return [((lambda i=i, raw=raw: parse(path, i, raw)), i) for i, raw in enumerate(_coco_annotations(path, data))]


def load_lenient(path: str | Path, fmt: str | None = None) -> tuple[str, list[Any], list[AnnotationError]]:
    """Read every well-formed item and collect an error for each malformed one.

    Unlike the strict loaders, duplicates are not checked here (the data doctor reports them all).

    Args:
        path: the annotation file.
        fmt: one of :data:`ALL_FORMATS`, or None to detect (a JSON list of ``{video, QA}`` items is
            ``vtg-it``).

    Returns:
        ``(format, items, errors)``.

    Raises:
        AnnotationError: the file itself cannot be read, is not JSON, or has the wrong top level.
    """
    if fmt is not None and fmt not in ALL_FORMATS:
        raise VTGError(f"unknown annotation format {fmt!r}; available: {', '.join(ALL_FORMATS)}")
    path, text = _read_text(path)
    if fmt is None:
        try:
            data = loads_json(text)
        except json.JSONDecodeError:
            data = None
        is_vtg_it = isinstance(data, list) and data and isinstance(data[0], dict) and "QA" in data[0]
        fmt = "vtg-it" if is_vtg_it else _detect_text(path, text)[0]
    items: list[Any] = []
    errors: list[AnnotationError] = []
    for parse, _ in _raw_rows(path, text, fmt):
        try:
            items.append(parse())
        except AnnotationError as exc:
            errors.append(exc)
    return fmt, items, errors
