"""Plain metric functions, checked against hand computations (written next to each case)."""

from __future__ import annotations

import pytest

from vtgcore.data.formats import EvalItem
from vtgcore.errors import VTGError
from vtgcore.eval import captioning
from vtgcore.eval.metrics import (
    average_precision, dvc_metrics, dvc_tiou, grounding_metrics, highlight_metrics, iou, keyshot_summary,
    knapsack, summary_f1,
)
from fake_scorer import FakeScorer

APPROX = dict(rel=1e-6, abs=1e-6)


# --------------------------------------------------------------------------------------------------
# Moment retrieval


def test_iou_basic_and_edge_cases():
    # overlap 5..10 = 5, union = hull 0..15 = 15
    assert iou((0, 10), (5, 15)) == pytest.approx(1 / 3)
    assert iou((0, 5), (5, 10)) == 0.0  # touching windows share no time
    assert iou((0, 5), (7, 10)) == 0.0
    assert iou((3, 3), (3, 3)) == 1.0  # identical zero-length windows
    assert iou((5, 5), (0, 10)) == 0.0  # a point inside a window: no duration in common
    assert iou((5, 5), (6, 6)) == 0.0
    assert iou((10, 0), (0, 10)) == 1.0  # reversed window read as (0, 10)
    assert iou((0, 10), (0, 10)) == 1.0


def test_iou_rejects_non_windows():
    with pytest.raises(VTGError, match="start, end"):
        iou((1, 2, 3), (0, 1))
    with pytest.raises(VTGError):
        iou(("a", "b"), (0, 1))


def test_grounding_metrics_counts_every_gt_query():
    gts = {"q1": (0, 10), "q2": (5, 10), "q3": (1, 2), "q4": (3, 4)}
    preds = {"q1": [(0, 10)],  # IoU 1
             "q2": [(0, 10)],  # inter 5 / hull 10 = 0.5 (>= 0.5 counts, as eval_tvg.py)
             "q3": [],  # empty prediction: a miss
             # q4 missing: a miss
             "zz": [(0, 1)]}  # unknown id: ignored, counted
    m = grounding_metrics(preds, gts)
    # R1@0.3 = R1@0.5 = 2/4; R1@0.7 = 1/4; mIoU = (1 + 0.5 + 0 + 0) / 4
    assert m["R1@0.3"] == pytest.approx(50.0)
    assert m["R1@0.5"] == pytest.approx(50.0)
    assert m["R1@0.7"] == pytest.approx(25.0)
    assert m["mIoU"] == pytest.approx(37.5)
    assert (m["count"], m["missing"], m["unknown"]) == (4, 2, 1)
    assert not any(k.startswith("R5") for k in m)


def test_grounding_threshold_is_inclusive():
    # 3/10 = 0.3 and 7/10 = 0.7 exactly: both count at their threshold
    m = grounding_metrics({"a": [(0, 3)], "b": [(0, 7)]}, {"a": (0, 10), "b": (0, 10)})
    assert m["R1@0.3"] == 100.0
    assert m["R1@0.7"] == 50.0


def test_grounding_multi_window_reports_r5_and_first_window_r1():
    gts = {"a": (0, 10), "b": (0, 10)}
    preds = {"a": [(20, 30), (0, 10)],  # first window IoU 0, best of first 5 = 1
             "b": [(0, 10), (0, 10)]}  # duplicate windows: IoU 1 either way
    m = grounding_metrics(preds, gts)
    assert m["R1@0.5"] == 50.0  # only b's first window hits
    assert m["R5@0.5"] == 100.0
    assert m["mIoU"] == pytest.approx(50.0)
    assert m["missing"] == 0


def test_grounding_ids_compared_as_strings_and_empty_gt_rejected():
    m = grounding_metrics({1: [(0, 10)]}, {"1": (0, 10)})
    assert m["R1@0.7"] == 100.0 and m["missing"] == 0
    with pytest.raises(VTGError, match="no ground-truth"):
        grounding_metrics({}, {})
    with pytest.raises(VTGError, match="predicted window of 'a'"):
        grounding_metrics({"a": [(1,)]}, {"a": (0, 1)})
    with pytest.raises(VTGError, match="two predictions for id '1'"):
        grounding_metrics({1: [(0, 1)], "1": [(0, 1)]}, {"1": (0, 1)})


# --------------------------------------------------------------------------------------------------
# Highlight detection: AP as video2gif get_ap


def test_average_precision_hand_computed_5_clips():
    # ranking 0..4 (scores descending); positives at ranks 1 and 3:
    # precision 1/1, 1/2, 2/3, 2/4, 2/5; recall .5, .5, 1, 1, 1
    # interpolated (max at this or higher recall): 1, 2/3, 2/3, .5, .4
    # recall rises at ranks 1 and 3 -> AP = (1 + 2/3) / 2
    assert average_precision([1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5]) == pytest.approx(5 / 6)


def test_average_precision_ties_form_one_operating_point():
    # groups by score: {clip0: .9}, {clips 1-3: .5}, {clip4: .1}
    # group 1: TP 0/1; group 2: TP 2/4 (precision .5, recall 1); group 3: TP 2/5 (.4)
    # recall rises only at group 2 -> AP = max(.5, .4) = .5 (one term for two positives)
    assert average_precision([0, 1, 1, 0, 0], [0.9, 0.5, 0.5, 0.5, 0.1]) == pytest.approx(0.5)
    # all scores equal: one point, precision = positives / clips
    assert average_precision([1, 0, 1, 0, 0], [0, 0, 0, 0, 0]) == pytest.approx(0.4)


def test_average_precision_special_cases():
    assert average_precision([0, 0, 0], [0.3, 0.2, 0.1]) == 0.0  # no positive
    assert average_precision([1, 1], [0.0, 0.5]) == 1.0  # all positive
    assert average_precision([], []) == 0.0
    with pytest.raises(VTGError):
        average_precision([1, 0], [0.5])


def _hd(qid, duration, clip_ids, saliency):
    return EvalItem(id=qid, video=f"{qid}.mp4", task="hd", query="q", duration=duration, windows=[(0.0, 2.0)],
                    saliency=saliency, clip_ids=clip_ids)


HD_GT = [
    # 10 s -> 5 clips; clip 1 scores [4, 2, 0], clip 3 scores [1, 4, 3]
    _hd("q1", 10, [1, 3], [[4, 2, 0], [1, 4, 3]]),
    # 9 s -> int(4.5) = 4 clips; clip 0 scores [2, 3, 1]
    _hd("q2", 9, [0], [[2, 3, 1]]),
]


def test_highlight_metrics_hand_computed():
    preds = {"q1": [0.1, 0.9, 0.2, 0.5, 0.3],  # ranking: clip 1, 3, 4, 2, 0
             "q2": [0, 0, 0, 0]}  # all zero: Hit@1 takes clip 0, AP of a full tie
    m = highlight_metrics(preds, HD_GT)
    # q1 VeryGood (>=4): ann0 pos {1} rank 1 -> AP 1; ann1 pos {3} rank 2 -> 1/2; ann2 none -> 0: mean .5
    #    Good (>=3): 1, 1/2, 1/2 -> 2/3;   Fair (>=2): ann0 {1} 1, ann1 {1, 3} 1, ann2 {3} 1/2 -> 5/6
    #    Hit@1 at clip 1: VeryGood (ann0 = 4) hit, so every level hits
    # q2 VeryGood: no positive anywhere -> AP 0, Hit 0 (a query with no positives at a level)
    #    Good: ann1 pos {0}, full tie -> precision 1/4 -> AP (0 + .25 + 0) / 3 = 1/12; Hit at clip 0: yes
    #    Fair: ann0 and ann1 pos {0} -> (.25 + .25 + 0) / 3 = 1/6; Hit yes
    assert m["VeryGood-mAP"] == pytest.approx(100 * (0.5 + 0) / 2)
    assert m["VeryGood-Hit1"] == pytest.approx(50.0)
    assert m["Good-mAP"] == pytest.approx(100 * (2 / 3 + 1 / 12) / 2)
    assert m["Good-Hit1"] == pytest.approx(100.0)
    assert m["Fair-mAP"] == pytest.approx(100 * (5 / 6 + 1 / 6) / 2)
    assert m["Fair-Hit1"] == pytest.approx(100.0)
    assert (m["count"], m["missing"], m["unknown"]) == (2, 0, 0)
    assert list(m)[:6] == ["VeryGood-mAP", "VeryGood-Hit1", "Good-mAP", "Good-Hit1", "Fair-mAP", "Fair-Hit1"]


def test_highlight_missing_prediction_scored_as_all_zero_or_dropped():
    gts = [*HD_GT, _hd("q3", 4, [1], [[4, 4, 4]])]  # 2 clips, clip 1 positive for every annotator
    preds = {"q1": [0.1, 0.9, 0.2, 0.5, 0.3], "q2": [0, 0, 0, 0], "other": [1.0]}
    m = highlight_metrics(preds, gts)
    # q3 as all-zero: VeryGood AP per annotator = 1/2 (full tie, 1 of 2 positive); Hit@1 clip 0 -> miss
    assert m["VeryGood-mAP"] == pytest.approx(100 * (0.5 + 0 + 0.5) / 3)
    assert m["VeryGood-Hit1"] == pytest.approx(100 * (1 + 0 + 0) / 3)
    assert (m["count"], m["missing"], m["unknown"]) == (3, 1, 1)
    dropped = highlight_metrics(preds, gts, drop_missing=True)
    assert dropped["VeryGood-mAP"] == pytest.approx(25.0)
    assert (dropped["count"], dropped["missing"]) == (2, 1)
    empty = highlight_metrics({"q3": []}, [gts[2]])  # an empty list is a missing prediction too
    assert empty["missing"] == 1 and empty["VeryGood-mAP"] == pytest.approx(50.0)
    with pytest.raises(VTGError, match="no query has a prediction"):
        highlight_metrics({}, [gts[2]], drop_missing=True)


def test_highlight_prediction_length_handling():
    gt = [_hd("q", 4, [0], [[4, 4, 4]])]  # 2 clips, clip 0 positive
    # longer prediction: AP on the truncated [1, 0] -> 1; Hit@1 on the prediction as given: top
    # index 2 is beyond the video -> miss (Moment-DETR compute_hl_hit1)
    m = highlight_metrics({"q": [1, 0, 5]}, gt)
    assert m["VeryGood-mAP"] == pytest.approx(100.0)
    assert m["VeryGood-Hit1"] == 0.0
    # shorter prediction: zero-padded to [0.5, 0] for AP; top clip 0 -> hit
    m = highlight_metrics({"q": [0.5]}, gt)
    assert m["VeryGood-mAP"] == pytest.approx(100.0)
    assert m["VeryGood-Hit1"] == 100.0


def test_highlight_rejects_bad_ground_truth():
    with pytest.raises(VTGError, match="outside"):
        highlight_metrics({}, [_hd("q", 4, [2], [[4, 4, 4]])])  # clip 2 of a 2-clip video
    with pytest.raises(VTGError, match="duplicate"):
        highlight_metrics({}, [HD_GT[0], HD_GT[0]])
    with pytest.raises(VTGError, match="duration"):
        highlight_metrics({}, [_hd("q", None, [0], [[4, 4, 4]])])


# --------------------------------------------------------------------------------------------------
# Dense video captioning


def _dvc(vid, windows, captions):
    return EvalItem(id=vid, video=f"{vid}.mp4", task="dvc", duration=100.0, windows=windows, captions=captions)


DVC_GT = [
    _dvc("v1", [(0, 10), (10, 20), (30, 40)], ["cut the onion.", "fry the onion.", "add salt."]),
    _dvc("v2", [(0, 20)], ["boil water."]),
]
DVC_PRED = {
    "not-a-gt-video": [],  # unknown id: ignored, counted
    # tIoU with its GT: p0 = 10/(10+1e-8) ~ 1; p1 vs g1: inter 8 / min(hull 10, 8+10) = .8;
    # p2 vs g2: 6 / min(10, 16) = .6; p3: no overlap
    "v1": [(0, 10, "cut the onion"), (12, 20, "fry the onion"), (30, 36, "add pepper"), (50, 60, "serve")],
    # 10 / (min(20, 30) + 1e-8): just below .5, so > .3 but not > .5 (strict rule)
    "v2": [(0, 10, "boil water")],
}


def test_dvc_tiou():
    assert dvc_tiou((0, 10), (5, 15)) == pytest.approx(1 / 3)  # inter 5 / min(hull 15, 10 + 10)
    assert dvc_tiou((0, 10), (2, 4)) == pytest.approx(0.2)  # inter 2 / min(hull 10, 12)
    assert dvc_tiou((3, 3), (3, 3)) == 0.0  # 0 / (0 + 1e-8)
    assert dvc_tiou((10, 0), (0, 10)) == pytest.approx(1.0)
    assert dvc_tiou((0, 10), (0, 5)) < 0.5  # exactly .5 without the original's epsilon


@pytest.mark.parametrize("threshold, precision, recall", [
    # v1: P = matched preds / 4, R = covered GT / 3; v2: P = R = 1 at .3, else 0
    (0.3, (3 / 4 + 1) / 2, (1 + 1) / 2),
    (0.5, (3 / 4 + 0) / 2, (1 + 0) / 2),  # v2's IoU .5 - eps is not > .5
    (0.7, (2 / 4 + 0) / 2, (2 / 3 + 0) / 2),
    (0.9, (1 / 4 + 0) / 2, (1 / 3 + 0) / 2),
])
def test_dvc_precision_recall_per_threshold(threshold, precision, recall):
    m = dvc_metrics(DVC_PRED, DVC_GT, thresholds=(threshold,), scorer=FakeScorer())
    assert m["Precision"] == pytest.approx(100 * precision)
    assert m["Recall"] == pytest.approx(100 * recall)


def test_dvc_f1_is_per_video_then_averaged():
    m = dvc_metrics(DVC_PRED, DVC_GT, scorer=FakeScorer())
    # v1: P = (.75 + .75 + .5 + .25) / 4 = .5625, R = (1 + 1 + 2/3 + 1/3) / 4 = .75 -> F1 = 9/14
    # v2: P = R = 1/4 -> F1 = .25
    assert m["Precision"] == pytest.approx(100 * (0.5625 + 0.25) / 2)
    assert m["Recall"] == pytest.approx(100 * (0.75 + 0.25) / 2)
    assert m["F1"] == pytest.approx(100 * (9 / 14 + 0.25) / 2)
    assert (m["count"], m["missing"], m["unknown"]) == (2, 0, 1)
    assert "unavailable" not in m


def test_dvc_caption_pairs_per_threshold():
    scorer = FakeScorer()
    m = dvc_metrics(DVC_PRED, DVC_GT, scorer=scorer)
    # FakeScorer CIDEr = fraction of identical (GT, pred) pairs; pairs have IoU >= threshold,
    # unmatched predictions pair with a random string.
    # v1 at .3/.5: pairs p0-g0 (same), p1-g1 (same), p2-g2 (differs), p3-random -> 2/4
    #    at .7: p0, p1 same; p2, p3 random -> 2/4;  at .9: p0 same; p1, p2, p3 random -> 1/4
    # v2 at .3: p0-g0 same (IoU .5 - eps >= .3) -> 1; at .5/.7/.9: random -> 0
    v1 = (0.5 + 0.5 + 0.5 + 0.25) / 4
    v2 = (1 + 0 + 0 + 0) / 4
    assert m["CIDEr"] == pytest.approx(100 * (v1 + v2) / 2)
    assert m["METEOR"] == pytest.approx(100 * (v1 + v2) / 2)  # same fake score
    # one tokenization for every caption, one METEOR call for SODA + one per video and threshold
    assert scorer.calls["tokenize"] == 1
    assert scorer.calls["meteor"] == 1 + 2 * 4


def test_dvc_soda_c_with_known_meteor_scores():
    gt = [_dvc("v", [(0, 10), (10, 20)], ["a", "b"])]
    pred = {"v": [(0, 10, "x"), (10, 20, "y")]}
    # SODA's METEOR matrix: hypothesis = GT caption, reference = prediction (original sodac order)
    table = {("x", "a"): 0.5, ("y", "a"): 0.9, ("x", "b"): 0.1, ("y", "b"): 0.6}
    m = dvc_metrics(pred, gt, scorer=FakeScorer(table))
    # IoU ~ identity (1 - 1e-9), so IoU x METEOR = [[.5, 0], [0, .6]]; best order-preserving
    # matching .5 + .6 = 1.1; P = 1.1 / 2, R = 1.1 / 2 -> F = .55
    assert m["SODA_c"] == pytest.approx(55.0, rel=1e-6)


def test_soda_c_is_order_preserving():
    # a crossing assignment ((0, 1) and (1, 0)) is not allowed: best total 1 of a 2 x 2 -> F = .5
    assert captioning.soda_c([[1, 1], [1, 1]], [[0, 1], [1, 0]]) == pytest.approx(0.5)
    # diagonal: 2 -> P = R = 1
    assert captioning.soda_c([[1, 1], [1, 1]], [[1, 0], [0, 1]]) == pytest.approx(1.0)
    # 1 GT, 3 predictions: best 0.6 -> P = .2, R = .6 -> F = 2*.12/.8 = .3
    assert captioning.soda_c([[1, 1, 1]], [[0.2, 0.6, 0.1]]) == pytest.approx(0.3)
    assert captioning.soda_c(((),), ((),)) == 0.0
    assert captioning.order_preserving_max([[0.5, 0.2, 0.0], [0.9, 0.1, 0.4]]) == pytest.approx(0.9)


def test_dvc_video_without_prediction_scores_zero():
    m = dvc_metrics({}, DVC_GT, scorer=FakeScorer())
    assert all(m[k] == 0.0 for k in ("Precision", "Recall", "F1", "CIDEr", "METEOR", "SODA_c"))
    assert (m["count"], m["missing"]) == (2, 2)


def test_dvc_without_java_reports_caption_metrics_unavailable(monkeypatch):
    monkeypatch.setattr(captioning, "java_available", lambda: False)
    m = dvc_metrics(DVC_PRED, DVC_GT)
    assert m["CIDEr"] is None and m["METEOR"] is None and m["SODA_c"] is None
    assert m["unavailable"] == {name: "needs Java (not found on PATH)" for name in ("CIDEr", "METEOR", "SODA_c")}
    assert m["F1"] == pytest.approx(100 * (9 / 14 + 0.25) / 2)  # localization still scored


def test_java_detection_follows_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert captioning.java_available() is False
    assert captioning.caption_backend_problem() == "needs Java (not found on PATH)"


def test_dvc_rejects_malformed_segments():
    with pytest.raises(VTGError, match="start, end, caption"):
        dvc_metrics({"v2": [(0, 10)]}, DVC_GT, scorer=FakeScorer())
    with pytest.raises(VTGError, match="caption must be a string"):
        dvc_metrics({"v2": [(0, 10, None)]}, DVC_GT, scorer=FakeScorer())


# --------------------------------------------------------------------------------------------------
# Video summarization


def test_knapsack_hand_made():
    # capacity 5: {1, 2} = 10 + 12 = 22 (weight 5) beats {0, 2} = 18 and {0, 1} = 16
    assert knapsack([6, 10, 12], [1, 2, 3], 5) == [1, 2]
    # equal values: an item is taken only if it strictly improves, so the earlier one stays
    assert knapsack([1, 1], [1, 1], 1) == [0]
    assert knapsack([5, 4], [3, 3], 2) == []
    assert knapsack([], [], 3) == []
    with pytest.raises(VTGError):
        knapsack([1], [1.5], 3)
    with pytest.raises(VTGError):
        knapsack([1, 2], [1], 3)


def test_summary_f1_hand_made():
    # 20 frames, shots [0-3] (4 frames), [4-9] (6), [10-12] (3), [13-19] (7)
    shots = [[0, 3], [4, 9], [10, 12], [13, 19]]
    scores = [0.5] * 4 + [0.2] * 6 + [0.9] * 3 + [0.1] * 7
    # budget 0.15 -> floor(3) frames: only shot 2 fits -> machine summary = frames 10-12
    assert list(keyshot_summary(scores, shots)) == [0] * 10 + [1] * 3 + [0] * 7
    user1 = [0] * 10 + [1] * 3 + [0] * 7  # identical: F = 1
    user2 = [0] * 11 + [1] * 4 + [0] * 5  # frames 11-14: overlap 2 -> P = 2/3, R = 2/4 -> F = 4/7
    assert summary_f1(scores, shots, [user1, user2]) == pytest.approx(100 * (1 + 4 / 7) / 2, rel=1e-6)
    assert summary_f1(scores, shots, [user1, user2], aggregate="max") == pytest.approx(100.0, rel=1e-6)
    # budget .25 -> 5 frames: shot 0 (value .5) or shot 2 (value .9) fit alone; shot 2 wins
    assert list(keyshot_summary(scores, shots, budget=0.25)) == [0] * 10 + [1] * 3 + [0] * 7
    assert summary_f1(scores, shots, [[0] * 20]) == 0.0  # P = R = 0


def test_summary_f1_rejects_bad_input():
    with pytest.raises(VTGError, match="aggregate"):
        summary_f1([1, 2], [[0, 1]], [[1, 0]], aggregate="median")
    with pytest.raises(VTGError, match="frames"):
        summary_f1([1, 2, 3], [[0, 2]], [[1, 0]])
    with pytest.raises(VTGError, match="shot 0"):
        summary_f1([1, 2], [[0, 5]], [[1, 0]])
