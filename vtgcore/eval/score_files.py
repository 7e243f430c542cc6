"""Scoring prediction files in the original VTG-LLM formats against ground-truth files.

The prediction formats are those ``evaluate.py`` of VTG-LLM writes (``vtgllm-original.md``
section 5.1, step 7; examples in section 5.4):

* moment retrieval: ``{qid: {"timestamp": [[s, e]] or [], "query", "vid"}}``
* highlights: a JSON list (or JSON lines) of ``{"qid", "query", "vid", "pred_saliency_scores": [...]}``
* dense captioning: ``{vid: [{"timestamp": [s, e], "caption"}, ...]}``

Ground truths are read with the loaders of :mod:`vtgcore.data.formats`. A malformed prediction file
raises :class:`PredictionError` with a one-line message naming the file, the entry and the field.
The CLI (``vtg metrics grounding|highlights|dense-captioning``) calls :func:`score_grounding`,
:func:`score_highlights` and :func:`score_dense_captioning` and prints :func:`format_table`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtgcore.errors import AnnotationError, DataError, VTGError
from vtgcore.utils.fileio import read_text
from vtgcore.utils.limits import JSONLimitError, json_problem, loads_json

if TYPE_CHECKING:
    from vtgcore.eval.captioning import CaptionScorer

__all__ = [
    "PredictionError", "format_table", "read_dense_caption_predictions", "read_grounding_predictions",
    "read_highlight_predictions", "score_dense_captioning", "score_grounding", "score_highlights",
]


class PredictionError(DataError):
    """A prediction file is missing, not JSON, or has a malformed entry (the message names them)."""


# --------------------------------------------------------------------------------------------------
# Reading


def _read_text(path: Path) -> str:
    """The file's text, or a one-line :class:`PredictionError` (as the loaders of formats.py)."""
    return read_text(path, PredictionError, "prediction file")


def _load_json(path: Path, *, allow_lines: bool = False) -> Any:
    """The JSON content of ``path``; with ``allow_lines``, a JSON-lines file gives the list of its lines."""
    text = _read_text(path)
    try:
        return loads_json(text)
    except json.JSONDecodeError as err:
        if not allow_lines or isinstance(err, JSONLimitError):
            raise PredictionError(f"{path}: {json_problem(err)}") from None
        first_error = err
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(loads_json(line))
            except json.JSONDecodeError as err:
                if lineno == 1:
                    raise PredictionError(f"{path}: {json_problem(first_error)}") from None
                raise PredictionError(f"{path}: line {lineno}: {json_problem(err).replace(' at line 1 column', ' at column')}") from None
    return rows


def _short(value: Any) -> str:
    """A value as JSON, cut to 60 characters for error messages."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any, path: Path, entry: str, field: str) -> float:
    """A finite JSON number as float, else an error naming file, entry and field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PredictionError(f"{path}: entry {entry}, field '{field}': must be a finite number, got {_short(value)}")
    return float(value)


def _pair(value: Any, path: Path, entry: str, field: str) -> tuple[float, float]:
    """``[start, end]`` as two floats (either order: the metrics read reversed windows)."""
    if not isinstance(value, list) or len(value) != 2:
        raise PredictionError(f"{path}: entry {entry}, field '{field}': a window must be [start, end], "
                              f"got {_short(value)}")
    return _number(value[0], path, entry, field), _number(value[1], path, entry, field)


def _field(item: Any, key: str, path: Path, entry: str) -> Any:
    """``item[key]`` of a JSON object, else an error naming file, entry and field."""
    if not isinstance(item, dict):
        raise PredictionError(f"{path}: entry {entry}: must be a JSON object, got {type(item).__name__}")
    if key not in item:
        raise PredictionError(f"{path}: entry {entry}, field '{key}': missing")
    return item[key]


def read_grounding_predictions(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Read a VTG-LLM moment-retrieval prediction file.

    Follows the ``fmt_*_result.json`` of VTG-LLM ``evaluate.py`` for tvg: ``{qid: {"timestamp":
    [[s, e]] or [], "query", "vid"}}``. A flat ``[s, e]`` is read as one window; windows are kept
    in order (the first one is scored for R@1).

    Returns:
        query id -> windows.

    Raises:
        PredictionError: the file is missing or not JSON, or an entry is malformed.
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise PredictionError(f"{path}: top level must be an object keyed by query id, got {type(data).__name__}")
    out: dict[str, list[tuple[float, float]]] = {}
    for qid, item in data.items():
        entry = repr(qid)
        stamps = _field(item, "timestamp", path, entry)
        if not isinstance(stamps, list):
            raise PredictionError(f"{path}: entry {entry}, field 'timestamp': must be a list, got {_short(stamps)}")
        if len(stamps) == 2 and not any(isinstance(v, list) for v in stamps):
            stamps = [stamps]
        out[str(qid)] = [_pair(w, path, entry, "timestamp") for w in stamps]
    return out


def read_highlight_predictions(path: str | Path) -> dict[str, list[float]]:
    """Read a VTG-LLM highlight prediction file.

    Follows the vhd ``fmt_*_result.json`` of VTG-LLM ``evaluate.py`` (and Moment-DETR
    submissions): a JSON list, or JSON lines, of ``{"qid", "pred_saliency_scores": [per 2-s
    clip], ...}``.

    Returns:
        query id (as a string) -> scores.

    Raises:
        PredictionError: the file is missing or not JSON, an entry is malformed, or a qid repeats.
    """
    path = Path(path)
    data = _load_json(path, allow_lines=True)
    if not isinstance(data, list):
        raise PredictionError(f"{path}: top level must be a list of predictions, got {type(data).__name__}")
    out: dict[str, list[float]] = {}
    for index, item in enumerate(data):
        entry = str(index)
        qid = _field(item, "qid", path, entry)
        if isinstance(qid, bool) or not isinstance(qid, (int, str)):
            raise PredictionError(f"{path}: entry {entry}, field 'qid': must be an integer or a string, "
                                  f"got {_short(qid)}")
        entry = f"{index} (qid {qid!r})"
        scores = _field(item, "pred_saliency_scores", path, entry)
        if not isinstance(scores, list):
            raise PredictionError(f"{path}: entry {entry}, field 'pred_saliency_scores': must be a list, "
                                  f"got {_short(scores)}")
        if str(qid) in out:
            raise PredictionError(f"{path}: entry {entry}, field 'qid': duplicate qid {qid!r}")
        out[str(qid)] = [_number(v, path, entry, "pred_saliency_scores") for v in scores]
    return out


def read_dense_caption_predictions(path: str | Path) -> dict[str, list[tuple[float, float, str]]]:
    """Read a VTG-LLM dense-captioning prediction file.

    Follows the dvc ``fmt_*_result.json`` of VTG-LLM ``evaluate.py``: ``{vid: [{"timestamp": [s,
    e], "caption"}, ...]}``. Video keys are reduced to the video id as the ground-truth loaders do
    (folders and a video extension removed: ``"a/xyz.mp4"`` -> ``"xyz"``).

    Returns:
        video id -> ``[(start, end, caption), ...]`` in file order.

    Raises:
        PredictionError: the file is missing or not JSON, an entry is malformed, or two keys name
            the same video.
    """
    from vtgcore.data.formats import VIDEO_EXTENSIONS

    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise PredictionError(f"{path}: top level must be an object keyed by video, got {type(data).__name__}")
    out: dict[str, list[tuple[float, float, str]]] = {}
    keys: dict[str, str] = {}
    for key, segments in data.items():
        name = Path(key).name
        vid = Path(name).stem if Path(name).suffix.lower() in VIDEO_EXTENSIONS else name
        if vid in keys:
            raise PredictionError(f"{path}: entries {keys[vid]!r} and {key!r} name the same video {vid!r}")
        keys[vid] = key
        if not isinstance(segments, list):
            raise PredictionError(f"{path}: entry {key!r}: must be a list of segments, got {_short(segments)}")
        out[vid] = []
        for k, segment in enumerate(segments):
            entry = f"{key!r} segment {k}"
            start, end = _pair(_field(segment, "timestamp", path, entry), path, entry, "timestamp")
            caption = _field(segment, "caption", path, entry)
            if not isinstance(caption, str):
                raise PredictionError(f"{path}: entry {entry}, field 'caption': must be a string, "
                                      f"got {_short(caption)}")
            out[vid].append((start, end, caption))
    return out


# --------------------------------------------------------------------------------------------------
# Scoring


def score_grounding(pred_path: str | Path, gt_path: str | Path) -> dict[str, Any]:
    """Score a moment-retrieval prediction file against a Charades-STA COCO-style ground truth.

    Follows VTG-LLM ``metrics/tvg/eval_tvg.py`` through :func:`vtgcore.eval.metrics.grounding_metrics`
    (every GT query scored; a missing prediction is a miss).

    Returns:
        ``R1@0.3``, ``R1@0.5``, ``R1@0.7``, ``mIoU`` (percent), ``count``, ``missing``, ``unknown``.

    Raises:
        VTGError: a malformed prediction or ground-truth file.
    """
    from vtgcore.data.formats import load_charades
    from vtgcore.eval.metrics import grounding_metrics

    preds = read_grounding_predictions(pred_path)
    items = load_charades(gt_path)
    if not items:
        raise AnnotationError(f"{gt_path}: no ground-truth queries to score (the file holds no annotations)")
    return grounding_metrics(preds, {item.id: item.windows[0] for item in items})


def score_highlights(pred_path: str | Path, gt_path: str | Path, *, drop_missing: bool = False) -> dict[str, Any]:
    """Score a highlight prediction file against QVHighlights ground truth (JSON lines).

    Follows Moment-DETR's ``eval_highlight`` (VTG-LLM ``metrics/vhd/eval_vhd.py``) through
    :func:`vtgcore.eval.metrics.highlight_metrics`; see there for missing predictions.

    Returns:
        ``VeryGood-mAP``, ``VeryGood-Hit1``, ``Good-mAP``, ``Good-Hit1``, ``Fair-mAP``,
        ``Fair-Hit1`` (percent), ``count``, ``missing``, ``unknown``.

    Raises:
        VTGError: a malformed prediction or ground-truth file.
    """
    from vtgcore.data.formats import load_qvhighlights
    from vtgcore.eval.metrics import highlight_metrics

    preds = read_highlight_predictions(pred_path)
    items = load_qvhighlights(gt_path)
    if not items:
        raise AnnotationError(f"{gt_path}: no ground-truth queries to score (the file holds no annotations)")
    return highlight_metrics(preds, items, drop_missing=drop_missing)


def score_dense_captioning(pred_path: str | Path, gt_path: str | Path, *,
                           scorer: CaptionScorer | None = None) -> dict[str, Any]:
    """Score a dense-captioning prediction file against YouCook2 or ActivityNet ground truth.

    Follows the Vid2Seq/TimeChat ``eval_dvc.py`` used by VTG-LLM through
    :func:`vtgcore.eval.metrics.dvc_metrics` (for ActivityNet too, whose own evaluator in the
    original, ``eval_dvc_anet.py``, is corpus-level and ignores videos without a prediction). The
    ground-truth format is detected: a YouCook2 COCO-style file or an ActivityNet
    ``{vid: {duration, timestamps, sentences}}`` file.

    Args:
        pred_path: the prediction file.
        gt_path: the ground-truth file.
        scorer: caption back end (default: pycocoevalcap with Java).

    Returns:
        ``Precision``, ``Recall``, ``F1``, ``CIDEr``, ``METEOR``, ``SODA_c`` (percent, or None
        when unavailable), ``count``, ``missing``, ``unknown``, and ``unavailable`` when relevant.

    Raises:
        VTGError: a malformed prediction or ground-truth file, or a ground truth that is not a
            dense-captioning format.
    """
    from vtgcore.data.formats import detect_format, load_eval
    from vtgcore.eval.metrics import dvc_metrics

    preds = read_dense_caption_predictions(pred_path)
    items = load_eval(gt_path)
    if not items or any(item.task != "dvc" for item in items):
        raise VTGError(f"{gt_path}: not a dense-captioning ground truth (detected format "
                       f"{detect_format(gt_path)}; expected youcook2 or activitynet)")
    return dvc_metrics(preds, items, scorer=scorer)


# --------------------------------------------------------------------------------------------------
# Printing


def _cell(value: Any) -> str:
    """A metric value as table text: 2 decimals for floats, ``n/a`` for None."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def format_table(metrics: Mapping[str, Any]) -> str:
    """A small aligned text table of a metric dict: one ``name  value`` row per metric.

    Floats are printed with 2 decimals, counts as integers, unavailable metrics as ``n/a``; the
    reasons in ``unavailable`` follow the table, one line each.
    """
    rows = [(str(name), _cell(value)) for name, value in metrics.items() if name != "unavailable"]
    name_width = max([len("metric"), *(len(name) for name, _ in rows)])
    value_width = max([len("value"), *(len(cell) for _, cell in rows)])
    lines = [f"{'metric':<{name_width}}  {'value':>{value_width}}", f"{'-' * name_width}  {'-' * value_width}"]
    lines += [f"{name:<{name_width}}  {cell:>{value_width}}" for name, cell in rows]
    for name, reason in dict(metrics.get("unavailable") or {}).items():
        lines.append(f"{name}: unavailable, {reason}")
    return "\n".join(lines)
