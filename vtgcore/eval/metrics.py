"""Evaluation metrics as plain functions.

Conventions:

* Every aggregate metric is returned in **percent** (float). Per-item building blocks
  (:func:`iou`, :func:`dvc_tiou`, :func:`average_precision`) return fractions in [0, 1].
* A metric is computed over **every ground-truth item** (``DESIGN.md``, "No silent drops"): a
  missing or empty prediction is scored as a miss, and the result says how many there were
  (``count``: items scored, ``missing``: items without a usable prediction, ``unknown``:
  predictions whose id is not in the ground truth; those are ignored).
* Prediction ids are compared with ground-truth ids as strings (``7803`` matches ``"7803"``).

References (``vtgllm-original.md`` section 5.3): moment retrieval follows VTG-LLM
``metrics/tvg/eval_tvg.py``; highlight detection the QVHighlights evaluator of Moment-DETR
(``standalone_eval/eval.py`` with video2gif ``get_ap``), used by VTG-LLM ``metrics/vhd/eval_vhd.py``;
dense captioning the Vid2Seq/TimeChat YouCook2 evaluator ``metrics/dvc/eval_dvc.py``;
summarization the key-shot F1 protocol of Zhang et al. 2016 (dppLSTM) as in the widely used
``vsum_tools`` (``generate_summary`` / ``evaluate_summary``, ``knapsack_dp``).
"""

from __future__ import annotations

import math
import random
import string
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vtgcore.errors import VTGError

if TYPE_CHECKING:
    from vtgcore.data.formats import EvalItem
    from vtgcore.eval.captioning import CaptionScorer

__all__ = [
    "DVC_THRESHOLDS", "HIGHLIGHT_LEVELS", "MR_THRESHOLDS", "average_precision", "dvc_metrics", "dvc_tiou",
    "grounding_metrics", "highlight_metrics", "iou", "keyshot_summary", "knapsack", "summary_f1",
]

MR_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
DVC_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)
HIGHLIGHT_LEVELS: tuple[tuple[str, int], ...] = (("VeryGood", 4), ("Good", 3), ("Fair", 2))
"""QVHighlights saliency levels: a clip is positive for an annotator when its score >= the level."""

HIGHLIGHT_CLIP_SECONDS = 2.0
_TIOU_EPS = 1e-8  # the Vid2Seq tIoU adds this to its denominator


# --------------------------------------------------------------------------------------------------
# Helpers


def _window(value: Any, what: str = "window") -> tuple[float, float]:
    """``(start, end)`` as floats, in increasing order."""
    try:
        start, end = value
        start, end = float(start), float(end)
    except (TypeError, ValueError):
        raise VTGError(f"a {what} must be (start, end) numbers, got {value!r}") from None
    return (start, end) if start <= end else (end, start)


def _by_id(preds: Mapping[Any, Any]) -> dict[str, Any]:
    """Predictions keyed by string id."""
    out: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    for key, value in preds.items():
        if str(key) in out:
            raise VTGError(f"two predictions for id {str(key)!r} (keys {keys[str(key)]!r} and {key!r})")
        out[str(key)] = value
        keys[str(key)] = key
    return out


def _unique_items(gts: Sequence[EvalItem], what: str) -> list[EvalItem]:
    """``gts`` as a list, checked non-empty and free of duplicate ids (DESIGN.md: no silent drops)."""
    seen: set[str] = set()
    for item in gts:
        if str(item.id) in seen:
            raise VTGError(f"{what}: duplicate ground-truth id {item.id!r}")
        seen.add(str(item.id))
    if not seen:
        raise VTGError(f"{what}: no ground-truth items to score")
    return list(gts)


def _threshold_name(prefix: str, threshold: float) -> str:
    """``"R1@0.5"``-style key (the names TRACE and VTG-LLM's README use)."""
    return f"{prefix}@{threshold:g}"


# --------------------------------------------------------------------------------------------------
# Moment retrieval


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Temporal IoU of two windows ``(start, end)`` in seconds, as a fraction.

    Follows VTG-LLM ``metrics/tvg/eval_tvg.py``: ``max(min_end - max_start, 0) / (max_end -
    min_start)``; the hull equals the union whenever the windows overlap, and the intersection is 0
    otherwise, so this is intersection over union. Differences from the original, which divides by
    zero there: two identical zero-length windows give 1.0; a zero-length window against any other
    window gives 0.0. A reversed window ``(end, start)`` is read as ``(start, end)`` (the original's
    parser swaps reversed pairs before scoring).

    Raises:
        VTGError: a window is not two numbers.
    """
    s1, e1 = _window(a)
    s2, e2 = _window(b)
    hull = max(e1, e2) - min(s1, s2)
    if hull <= 0:
        return 1.0
    return max(min(e1, e2) - max(s1, s2), 0.0) / hull


def grounding_metrics(preds: Mapping[Any, Sequence[Sequence[float]]], gts: Mapping[Any, Sequence[float]],
                      thresholds: Sequence[float] = MR_THRESHOLDS) -> dict[str, Any]:
    """Moment retrieval recall at IoU thresholds and mean IoU, in percent.

    Follows VTG-LLM ``metrics/tvg/eval_tvg.py`` (R@1 at IoU >= 0.3/0.5/0.7 over all queries, only
    the first predicted window counts, an empty prediction is a miss) with two additions: ``mIoU``
    (mean IoU of the first window, 0 for misses, as TRACE reports it) and, when some prediction
    has several windows, ``R5@t`` (best IoU among the first 5 windows). Unlike the original, which
    asserts equal counts, every ground-truth query is scored: a missing prediction is a miss.

    Args:
        preds: query id -> predicted windows ``[(start, end), ...]`` (best first; may be empty).
        gts: query id -> ground-truth window ``(start, end)``.
        thresholds: IoU thresholds (compared with ``>=``).

    Returns:
        ``R1@t`` for each threshold, ``mIoU``, ``R5@t`` (only with multi-window predictions),
        ``count``, ``missing`` and ``unknown``.

    Raises:
        VTGError: no ground truth, or a window that is not two numbers.
    """
    by_id = _by_id(preds)
    gt = {str(k): _window(v, "ground-truth window") for k, v in gts.items()}
    if not gt:
        raise VTGError("grounding_metrics: no ground-truth queries to score")
    first, best5, missing = [], [], 0
    multi = False
    for qid, window in gt.items():
        windows = list(by_id.get(qid) or [])
        multi = multi or len(windows) > 1
        if not windows:
            missing += 1
            first.append(0.0)
            best5.append(0.0)
            continue
        ious = [iou(_window(w, f"predicted window of {qid!r}"), window) for w in windows[:5]]
        first.append(ious[0])
        best5.append(max(ious))
    result: dict[str, Any] = {}
    for t in thresholds:
        result[_threshold_name("R1", t)] = 100.0 * float(np.mean([v >= t for v in first]))
    result["mIoU"] = 100.0 * float(np.mean(first))
    if multi:
        for t in thresholds:
            result[_threshold_name("R5", t)] = 100.0 * float(np.mean([v >= t for v in best5]))
    result.update(count=len(gt), missing=missing, unknown=len(set(by_id) - set(gt)))
    return result


# --------------------------------------------------------------------------------------------------
# Highlight detection


def average_precision(labels: Sequence[float], scores: Sequence[float]) -> float:
    """Interpolated average precision of one ranking, as a fraction (video2gif ``get_ap``).

    Follows ``get_ap(y_true, y_predict, interpolate=True, point_11=False)`` of Moment-DETR's
    ``standalone_eval/utils.py`` (from gyglim/video2gif_dataset), which uses scikit-learn's
    ``precision_recall_curve``:

    1. Clips are ranked by score, descending; tied scores form ONE operating point (all clips of a
       tie are taken together), as the distinct thresholds of ``precision_recall_curve``.
    2. At each operating point: precision = TP / taken, recall = TP / positives.
    3. Interpolated precision at a point = the maximum precision at that or any later point
       (later = lower threshold, recall greater or equal).
    4. AP = the plain (unweighted) mean of the interpolated precision over the operating points
       where recall increases. Without ties that is one term per positive clip (the usual
       interpolated AP); a tie holding several positives gives one term only.

    Special cases as ``get_ap``: all labels 0 -> 0.0; all labels 1 -> 1.0. An empty input gives
    0.0 (``get_ap`` fails on it).

    Args:
        labels: binary ground truth per clip (non-zero = positive).
        scores: predicted score per clip, same length.

    Raises:
        VTGError: the lengths differ.
    """
    y = np.asarray(labels, dtype=float) != 0
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise VTGError(f"average_precision: {y.size} labels but {s.size} scores")
    if y.size == 0 or not y.any():
        return 0.0
    if y.all():
        return 1.0
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    ends = np.r_[np.nonzero(np.diff(s_sorted))[0], y.size - 1]  # last index of each tie group
    tp = np.cumsum(y_sorted)[ends]
    precision = tp / (ends + 1)
    interpolated = np.maximum.accumulate(precision[::-1])[::-1]
    rises = tp > np.r_[0, tp[:-1]]
    return float(np.mean(interpolated[rises]))


def _saliency_matrix(item: EvalItem) -> np.ndarray:
    """(num_clips, annotators) scores: annotator scores at the relevant clips, 0 elsewhere.

    Follows Moment-DETR ``mk_gt_scores``: ``num_clips = int(duration / 2)``.
    """
    if item.duration is None:
        raise VTGError(f"highlight ground truth {item.id!r} has no duration")
    clip_ids = list(item.clip_ids or [])
    saliency = [list(row) for row in (item.saliency or [])]
    if len(clip_ids) != len(saliency):
        raise VTGError(f"highlight ground truth {item.id!r}: {len(saliency)} score rows but {len(clip_ids)} clip ids")
    widths = {len(row) for row in saliency}
    if len(widths) > 1:
        raise VTGError(f"highlight ground truth {item.id!r}: score rows have different annotator counts "
                       f"{sorted(widths)}")
    num_clips = int(item.duration / HIGHLIGHT_CLIP_SECONDS)
    matrix = np.zeros((num_clips, widths.pop() if widths else 3))
    for clip, row in zip(clip_ids, saliency):
        if not 0 <= clip < num_clips:
            raise VTGError(f"highlight ground truth {item.id!r}: relevant clip {clip} outside the "
                           f"{num_clips} clips of a {item.duration:g}-second video")
        matrix[clip] = row
    return matrix


def _fit(pred: Sequence[float], length: int) -> np.ndarray:
    """``pred`` truncated or zero-padded to ``length`` (Moment-DETR ``compute_ap_from_tuple``)."""
    out = np.zeros(length)
    values = np.asarray(pred, dtype=float)[:length]
    out[: values.size] = values
    return out


def _hit_index(pred: Sequence[float]) -> int:
    """The clip with the highest score, the first one on ties; 0 for an empty prediction."""
    return int(np.argmax(np.asarray(pred, dtype=float))) if len(pred) else 0


def _query_highlights(pred: Sequence[float], matrix: np.ndarray) -> dict[str, tuple[float, float]]:
    """(AP, Hit@1) as fractions per saliency level for one query."""
    fitted = _fit(pred, matrix.shape[0])
    top = _hit_index(pred)
    out = {}
    for name, level in HIGHLIGHT_LEVELS:
        binary = (matrix >= level).astype(float)
        ap = float(np.mean([average_precision(binary[:, a], fitted) for a in range(binary.shape[1])]))
        hit = float(binary[top].max()) if top < binary.shape[0] and binary.shape[1] else 0.0
        out[name] = (ap, hit)
    return out


def highlight_metrics(preds: Mapping[Any, Sequence[float]], gts: Sequence[EvalItem], *,
                      drop_missing: bool = False) -> dict[str, Any]:
    """QVHighlights highlight detection: HL-mAP and HL-Hit@1 per saliency level, in percent.

    Follows Moment-DETR ``standalone_eval/eval.py`` ``eval_highlight`` (used by VTG-LLM
    ``metrics/vhd/eval_vhd.py``):

    * GT per query: ``int(duration / 2)`` clips by annotators (3 in QVHighlights), the annotator
      scores 0-4 at ``relevant_clip_ids``, 0 elsewhere; per level (VeryGood 4, Good 3, Fair 2) a
      clip is positive for an annotator when its score >= the level.
    * mAP: per query the mean over annotators of :func:`average_precision` of the prediction
      truncated or zero-padded to the clip count; mean over queries.
    * Hit@1: the clip of the highest predicted score (the first on ties, so an all-zero
      prediction picks clip 0), taken from the prediction as given (as the original, not
      truncated: a top clip beyond the video is a miss); a hit when any annotator marks it
      positive; mean over queries.

    Difference from the original, which keeps only queries present on both sides: by default a
    query without a prediction (absent, None or empty) is scored as an all-zero prediction (its
    Hit@1 is clip 0 and its AP that of a random ranking, not 0) and counted in ``missing``. With
    ``drop_missing=True`` such queries are left out as in the original (still counted).

    Args:
        preds: query id -> predicted saliency score per 2-second clip.
        gts: highlight ground truth (:func:`vtgcore.data.formats.load_qvhighlights` items).
        drop_missing: leave queries without a prediction out of the averages.

    Returns:
        ``VeryGood-mAP``, ``VeryGood-Hit1``, ``Good-mAP``, ``Good-Hit1``, ``Fair-mAP``,
        ``Fair-Hit1``, ``count`` (queries averaged), ``missing`` and ``unknown``.

    Raises:
        VTGError: no ground truth (or nothing left to score), a duplicate id, an item without
            duration, or a relevant clip outside the video.
    """
    items = _unique_items(gts, "highlight_metrics")
    by_id = _by_id(preds)
    per_level: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in HIGHLIGHT_LEVELS}
    missing = 0
    for item in items:
        pred = by_id.get(str(item.id))
        if pred is None or len(pred) == 0:
            missing += 1
            if drop_missing:
                continue
            pred = []
        for name, value in _query_highlights(pred, _saliency_matrix(item)).items():
            per_level[name].append(value)
    count = len(per_level[HIGHLIGHT_LEVELS[0][0]])
    if count == 0:
        raise VTGError("highlight_metrics: no query has a prediction (drop_missing=True left nothing to score)")
    result: dict[str, Any] = {}
    for name, _ in HIGHLIGHT_LEVELS:
        values = np.asarray(per_level[name])
        result[f"{name}-mAP"] = 100.0 * float(values[:, 0].mean())
        result[f"{name}-Hit1"] = 100.0 * float(values[:, 1].mean())
    gt_ids = {str(item.id) for item in items}
    result.update(count=count, missing=missing, unknown=len(set(by_id) - gt_ids))
    return result


# --------------------------------------------------------------------------------------------------
# Dense video captioning


def dvc_tiou(a: Sequence[float], b: Sequence[float]) -> float:
    """Temporal IoU of the dense-captioning evaluator, as a fraction.

    Follows ``iou`` of the Vid2Seq/TimeChat ``eval_dvc.py``: each window is read as (min, max),
    ``inter / (min(hull, len_a + len_b) + 1e-8)``. The ``1e-8`` is kept, so an IoU that would be
    exactly a threshold falls just below it, as in the original; two zero-length windows give 0.
    """
    s1, e1 = _window(a)
    s2, e2 = _window(b)
    inter = max(0.0, min(e1, e2) - max(s1, s2))
    union = min(max(e1, e2) - min(s1, s2), (e1 - s1) + (e2 - s2))
    return inter / (union + _TIOU_EPS)


def _dvc_detection(ious: np.ndarray, thresholds: Sequence[float]) -> tuple[float, float]:
    """Threshold-averaged (precision, recall) of one video, strict ``>`` (``evaluate_detections``)."""
    n_gt, n_pred = ious.shape
    precisions, recalls = [], []
    for t in thresholds:
        hit = ious > t
        precisions.append(hit.any(axis=0).sum() / max(n_pred, 1))
        recalls.append(hit.any(axis=1).sum() / n_gt)
    return float(np.mean(precisions)), float(np.mean(recalls))


def _f1(precision: float, recall: float) -> float:
    """Harmonic mean, 0 when both are 0 (``F1_Score`` of eval_dvc.py, ``f_score`` of vsum_tools)."""
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _random_strings(rng: random.Random) -> Any:
    """Endless random lowercase strings of 10-20 letters (``random_string`` of the original)."""
    while True:
        yield "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(10, 20)))


def _caption_pairs(ious: np.ndarray, gt_caps: Sequence[str], pred_caps: Sequence[str], threshold: float,
                   fillers: Any) -> list[tuple[str, str]]:
    """(GT, prediction) caption pairs at one threshold (``match_captions``).

    Every (prediction, GT) pair with IoU >= threshold is a pair; a prediction without any is
    paired with a random string (so that it scores 0).
    """
    pairs = []
    for p, caption in enumerate(pred_caps):
        matched = [g for g in range(len(gt_caps)) if ious[g, p] >= threshold]
        pairs.extend((gt_caps[g], caption) for g in matched)
        if not matched:
            pairs.append((next(fillers), caption))
    return pairs


def _dvc_videos(by_id: Mapping[str, Sequence[Any]], items: Sequence[EvalItem]) -> list[dict[str, Any]]:
    """Per video: GT captions, predicted captions and the (G, P) tIoU matrix."""
    videos = []
    for item in items:
        if not item.windows or len(item.windows) != len(item.captions):
            raise VTGError(f"dense-captioning ground truth {item.id!r}: {len(item.windows)} windows but "
                           f"{len(item.captions)} captions")
        segments = list(by_id.get(str(item.id)) or [])
        ious = np.zeros((len(item.windows), len(segments)))
        captions = []
        for p, segment in enumerate(segments):
            try:
                start, end, caption = segment
            except (TypeError, ValueError):
                raise VTGError(f"prediction for {item.id!r}: a segment must be (start, end, caption), "
                               f"got {segment!r}") from None
            if not isinstance(caption, str):
                raise VTGError(f"prediction for {item.id!r}: caption must be a string, got {caption!r}")
            captions.append(caption)
            for g, window in enumerate(item.windows):
                ious[g, p] = dvc_tiou((start, end), window)
        videos.append({"id": str(item.id), "gt_caps": list(item.captions),
                       "pred_caps": captions, "ious": ious})
    return videos


def _caption_scores(videos: list[dict[str, Any]], thresholds: Sequence[float], scorer: CaptionScorer,
                    seed: int) -> dict[str, list[float]]:
    """Per video CIDEr, METEOR (threshold-averaged) and SODA_c, as fractions.

    Follows ``evaluate_single_dense_captions`` of the Vid2Seq/TimeChat evaluator: captions are
    PTB-tokenized; CIDEr and METEOR are computed per video and threshold over that video's pairs
    (0 when the video has no prediction) and averaged over thresholds; SODA_c uses the METEOR of
    each (GT, prediction) pair with the GT caption as METEOR's hypothesis and the prediction as its
    reference (the argument order of the original ``sodac`` and of fujiso/SODA).
    """
    from vtgcore.eval.captioning import soda_c

    texts = [c for v in videos for c in v["gt_caps"] + v["pred_caps"]]
    tokens = iter(scorer.tokenize(texts))
    for v in videos:
        v["gt_tok"] = [next(tokens) for _ in v["gt_caps"]]
        v["pred_tok"] = [next(tokens) for _ in v["pred_caps"]]
    soda_pairs = [(p, g) for v in videos for g in v["gt_tok"] for p in v["pred_tok"]]
    soda_scores = iter(scorer.meteor(soda_pairs)[1]) if soda_pairs else iter(())
    fillers = _random_strings(random.Random(seed))
    out: dict[str, list[float]] = {"CIDEr": [], "METEOR": [], "SODA_c": []}
    for v in videos:
        ciders, meteors = [], []
        for t in thresholds:
            pairs = _caption_pairs(v["ious"], v["gt_tok"], v["pred_tok"], t, fillers)
            ciders.append(scorer.cider(pairs) if pairs else 0.0)
            meteors.append(scorer.meteor(pairs)[0] if pairs else 0.0)
        n_gt, n_pred = v["ious"].shape
        matrix = np.array([next(soda_scores) for _ in range(n_gt * n_pred)]).reshape(n_gt, n_pred)
        out["CIDEr"].append(float(np.mean(ciders)))
        out["METEOR"].append(float(np.mean(meteors)))
        out["SODA_c"].append(soda_c(v["ious"], matrix) if n_pred else 0.0)
    return out


def _caption_percent(videos: list[dict[str, Any]], thresholds: Sequence[float], scorer: CaptionScorer,
                     seed: int) -> dict[str, float]:
    """CIDEr, METEOR and SODA_c averaged over videos, in percent (see :func:`_caption_scores`)."""
    scores = _caption_scores(videos, thresholds, scorer, seed)
    return {name: 100.0 * float(np.mean(values)) for name, values in scores.items()}


def dvc_metrics(preds: Mapping[Any, Sequence[tuple[float, float, str]]], gts: Sequence[EvalItem], *,
                thresholds: Sequence[float] = DVC_THRESHOLDS, scorer: CaptionScorer | None = None,
                seed: int = 0) -> dict[str, Any]:
    """Dense video captioning: localization P/R/F1, CIDEr, METEOR and SODA_c, in percent.

    Follows the Vid2Seq/TimeChat YouCook2 evaluator (VTG-LLM ``metrics/dvc/eval_dvc.py``), per
    video then averaged over videos:

    * tIoU: :func:`dvc_tiou`.
    * Precision / recall at each threshold (0.3, 0.5, 0.7, 0.9) with the strict ``>`` rule:
      precision = predictions with some GT above the threshold / #predictions, recall = GTs with
      some prediction above it / #GT; averaged over thresholds.
    * F1 = 2 P R / (P + R) of the video's threshold-averaged P and R (per video, then averaged
      over videos, as ``F1_Score`` of the original).
    * CIDEr and METEOR: see :func:`_caption_scores` (pairs with IoU >= threshold; a prediction
      without a match is paired with a random string and scores 0).
    * SODA_c: :func:`vtgcore.eval.captioning.soda_c` with METEOR and tIoU 0.

    Every ground-truth video is scored: a video without a prediction (absent or empty) scores 0 on
    everything, as in the original, and is counted in ``missing``.

    Without a caption back end (no Java or no pycocoevalcap; see
    :func:`vtgcore.eval.captioning.caption_backend_problem`) CIDEr, METEOR and SODA_c are ``None``
    and ``unavailable`` maps each of them to the reason; never 0.

    Args:
        preds: video id -> ``[(start, end, caption), ...]`` in generation order.
        gts: dense-captioning ground truth (YouCook2 / ActivityNet :class:`EvalItem`).
        thresholds: tIoU thresholds.
        scorer: caption back end; None: :class:`vtgcore.eval.captioning.CocoCaptionScorer`
            (one METEOR process for the whole call).
        seed: seed of the random strings paired with unmatched predictions.

    Returns:
        ``Precision``, ``Recall``, ``F1``, ``CIDEr``, ``METEOR``, ``SODA_c``, ``count``,
        ``missing``, ``unknown`` and, when some metric could not be computed, ``unavailable``.

    Raises:
        VTGError: no ground truth, a duplicate id, a GT item whose windows and captions differ in
            number, a malformed predicted segment, or a failing Java subprocess.
    """
    from vtgcore.eval import captioning

    items = _unique_items(gts, "dvc_metrics")
    by_id = _by_id(preds)
    videos = _dvc_videos(by_id, items)
    precision, recall, f1 = [], [], []
    for v in videos:
        p, r = _dvc_detection(v["ious"], thresholds)
        precision.append(p)
        recall.append(r)
        f1.append(_f1(p, r))
    result: dict[str, Any] = {"Precision": 100.0 * float(np.mean(precision)),
                              "Recall": 100.0 * float(np.mean(recall)), "F1": 100.0 * float(np.mean(f1))}
    problem = None if scorer is not None else captioning.caption_backend_problem()
    if problem is not None:
        result.update(dict.fromkeys(captioning.CAPTION_METRICS))
    elif scorer is not None:
        result.update(_caption_percent(videos, thresholds, scorer, seed))
    else:
        with captioning.CocoCaptionScorer() as coco:
            result.update(_caption_percent(videos, thresholds, coco, seed))
    gt_ids = {v["id"] for v in videos}
    result.update(count=len(videos), missing=sum(1 for v in videos if not v["pred_caps"]),
                  unknown=len(set(by_id) - gt_ids))
    if problem is not None:
        result["unavailable"] = {name: problem for name in captioning.CAPTION_METRICS}
    return result


# --------------------------------------------------------------------------------------------------
# Video summarization


def knapsack(values: Sequence[float], weights: Sequence[int], capacity: int) -> list[int]:
    """0/1 knapsack by dynamic programming: the items of largest total value within ``capacity``.

    Follows ``knapsack_dp`` of the summarization protocol (Zhang et al. 2016 / ``vsum_tools``):
    ``table[i][w] = max(table[i-1][w], v_i + table[i-1][w - w_i])`` where an item is taken only
    when it strictly increases the value (ties keep the earlier items), then backtracking from the
    last item. Values are float64 here (the original table is float32).

    Args:
        values: value of each item.
        weights: non-negative integer weight of each item.
        capacity: non-negative integer budget.

    Returns:
        Indices of the selected items, increasing.

    Raises:
        VTGError: lengths differ, or a weight or the capacity is negative or not an integer.
    """
    if len(values) != len(weights):
        raise VTGError(f"knapsack: {len(values)} values but {len(weights)} weights")
    ints = [capacity, *weights]
    if any(isinstance(w, bool) or int(w) != w or w < 0 for w in ints):
        raise VTGError(f"knapsack: weights and capacity must be integers >= 0, got {list(weights)} and {capacity}")
    capacity = int(capacity)
    n = len(values)
    table = np.zeros((n + 1, capacity + 1))
    keep = np.zeros((n + 1, capacity + 1), dtype=bool)
    for i in range(1, n + 1):
        weight, value = int(weights[i - 1]), float(values[i - 1])
        table[i] = table[i - 1]
        if weight <= capacity:
            taken = value + table[i - 1, : capacity + 1 - weight]
            better = taken > table[i - 1, weight:]
            table[i, weight:][better] = taken[better]
            keep[i, weight:] = better
    picks, room = [], capacity
    for i in range(n, 0, -1):
        if keep[i, room]:
            picks.append(i - 1)
            room -= int(weights[i - 1])
    return sorted(picks)


def _shots(shot_bounds: Sequence[Sequence[int]], n_frames: int) -> list[tuple[int, int]]:
    """Shots as inclusive ``(first, last)`` frame pairs inside the video (vsum_tools ``cps``)."""
    shots = []
    for k, bound in enumerate(shot_bounds):
        try:
            start, end = (int(b) for b in bound)
        except (TypeError, ValueError):
            raise VTGError(f"summary: shot {k} must be [first, last] frame indices, got {bound!r}") from None
        if not 0 <= start <= end < n_frames:
            raise VTGError(f"summary: shot {k} [{start}, {end}] is not inside frames 0..{n_frames - 1}")
        shots.append((start, end))
    return shots


def keyshot_summary(scores: Sequence[float], shot_bounds: Sequence[Sequence[int]],
                    budget: float = 0.15) -> np.ndarray:
    """Binary key-shot summary from per-frame importance scores.

    Follows ``generate_summary`` of ``vsum_tools`` (Zhang et al. 2016 protocol): a shot's value is
    the mean score of its frames, its weight its number of frames; :func:`knapsack` picks shots
    within ``floor(n_frames * budget)`` frames; the frames of the picked shots are 1.

    Args:
        scores: importance per frame (or per second: any unit shared with the user summaries).
        shot_bounds: ``[first, last]`` frame index of each shot, inclusive (change points).
        budget: summary length as a fraction of the video.

    Returns:
        (n_frames,) array of 0/1.
    """
    frame_scores = np.asarray(scores, dtype=float)
    shots = _shots(shot_bounds, frame_scores.size)
    values = [float(frame_scores[s: e + 1].mean()) for s, e in shots]
    weights = [e - s + 1 for s, e in shots]
    summary = np.zeros(frame_scores.size)
    for k in knapsack(values, weights, int(math.floor(frame_scores.size * budget))):
        start, end = shots[k]
        summary[start: end + 1] = 1
    return summary


def summary_f1(scores: Sequence[float], shot_bounds: Sequence[Sequence[int]],
               user_summaries: Sequence[Sequence[float]], budget: float = 0.15,
               aggregate: str = "mean") -> float:
    """Key-shot F-score of a predicted summary against user summaries, in percent.

    Follows ``evaluate_summary`` of ``vsum_tools`` (Zhang et al. 2016 / dppLSTM protocol): the
    machine summary is :func:`keyshot_summary`; for each user summary, precision = overlap /
    (machine frames + 1e-8), recall = overlap / (user frames + 1e-8), F = 2PR / (P + R) (0 when
    both are 0); the F-scores are averaged over users (``"mean"``, TVSum) or their maximum is
    taken (``"max"``, SumMe).

    Args:
        scores: predicted importance per frame (or per second), one per user-summary position.
        shot_bounds: ``[first, last]`` frame index of each shot, inclusive.
        user_summaries: (users, frames) binary summaries (> 0 = selected).
        budget: summary length as a fraction of the video (0.15).
        aggregate: ``"mean"`` or ``"max"``.

    Raises:
        VTGError: shapes differ, no user summary, a bad shot or an unknown ``aggregate``.
    """
    if aggregate not in ("mean", "max"):
        raise VTGError(f"summary_f1: aggregate must be 'mean' or 'max', got {aggregate!r}")
    users = np.asarray(user_summaries, dtype=float)
    if users.ndim != 2 or users.shape[0] == 0:
        raise VTGError(f"summary_f1: user summaries must be (users, frames), got shape {users.shape}")
    if users.shape[1] != len(scores):
        raise VTGError(f"summary_f1: {len(scores)} scores but user summaries have {users.shape[1]} frames")
    machine = keyshot_summary(scores, shot_bounds, budget)
    f_scores = []
    for user in users > 0:
        overlap = float((machine * user).sum())
        precision = overlap / (machine.sum() + 1e-8)
        recall = overlap / (user.sum() + 1e-8)
        f_scores.append(_f1(precision, recall))
    return 100.0 * float(np.mean(f_scores) if aggregate == "mean" else np.max(f_scores))
