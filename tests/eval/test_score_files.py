"""Prediction files in the original VTG-LLM formats scored against small ground-truth files."""

from __future__ import annotations

import json

import pytest

from vtgcore.errors import DataError, VTGError
from vtgcore.eval import captioning
from vtgcore.eval.score_files import (
    PredictionError, format_table, read_dense_caption_predictions, read_grounding_predictions,
    read_highlight_predictions, score_dense_captioning, score_grounding, score_highlights,
)
from fake_scorer import FakeScorer


def _write(path, data, *, lines=False):
    text = "\n".join(json.dumps(row) for row in data) if lines else json.dumps(data)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# Moment retrieval


@pytest.fixture
def charades_gt(tmp_path):
    return _write(tmp_path / "test.caption_coco_format.json", {"annotations": [
        {"image_id": "AAA.mp4", "caption": "a person opens a door.", "timestamp": [0.0, 10.0], "id": 0},
        {"image_id": "AAA.mp4", "caption": "a person sits.", "timestamp": [5.0, 10.0], "id": 1},
        {"image_id": "BBB.mp4", "caption": "a person eats.", "timestamp": [1.0, 2.0], "id": 2},
    ]})


def test_score_grounding(tmp_path, charades_gt):
    pred = _write(tmp_path / "fmt_charades_test_f96_result.json", {
        "0": {"timestamp": [[0.0, 10.0]], "query": "a person opens a door", "vid": "AAA"},  # IoU 1
        "1": {"timestamp": [0.0, 10.0], "query": "a person sits", "vid": "AAA"},  # flat pair; IoU .5
        # id 2 missing; id 9 unknown
        "9": {"timestamp": [], "query": "x", "vid": "CCC"},
    })
    m = score_grounding(pred, charades_gt)
    # R1@0.3 = R1@0.5 = 2/3, R1@0.7 = 1/3, mIoU = (1 + .5 + 0) / 3
    assert m["R1@0.3"] == pytest.approx(200 / 3)
    assert m["R1@0.5"] == pytest.approx(200 / 3)
    assert m["R1@0.7"] == pytest.approx(100 / 3)
    assert m["mIoU"] == pytest.approx(50.0)
    assert (m["count"], m["missing"], m["unknown"]) == (3, 1, 1)


@pytest.mark.parametrize("content, message", [
    ({"0": {"timestamp": "abc"}}, r"entry '0', field 'timestamp': must be a list"),
    ({"0": {"timestamp": [[0, "x"]]}}, r"entry '0', field 'timestamp': must be a finite number"),
    ({"0": {"timestamp": [[0, 1, 2]]}}, r"a window must be \[start, end\]"),
    ({"0": {"query": "q"}}, r"entry '0', field 'timestamp': missing"),
    ({"0": [0, 1]}, r"entry '0': must be a JSON object"),
    ([1, 2], r"top level must be an object"),
])
def test_malformed_grounding_predictions(tmp_path, content, message):
    pred = _write(tmp_path / "pred.json", content)
    with pytest.raises(PredictionError, match=message) as err:
        read_grounding_predictions(pred)
    assert str(pred) in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, DataError)


def test_unreadable_prediction_files(tmp_path, charades_gt):
    with pytest.raises(PredictionError, match="not found"):
        score_grounding(tmp_path / "nope.json", charades_gt)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(PredictionError, match="invalid JSON at line 1"):
        score_grounding(bad, charades_gt)


# --------------------------------------------------------------------------------------------------
# Highlights


@pytest.fixture
def qvh_gt(tmp_path):
    return _write(tmp_path / "highlight_val_release.jsonl", [
        {"qid": 1, "query": "q one", "duration": 10, "vid": "vidA_0.0_10.0", "relevant_clip_ids": [1, 3],
         "saliency_scores": [[4, 2, 0], [1, 4, 3]], "relevant_windows": [[2, 4], [6, 8]]},
        {"qid": 2, "query": "q two", "duration": 9, "vid": "vidB_0.0_9.0", "relevant_clip_ids": [0],
         "saliency_scores": [[2, 3, 1]], "relevant_windows": [[0, 2]]},
    ], lines=True)


HL_PRED = [{"qid": 1, "query": "q one", "vid": "vidA_0.0_10.0", "pred_saliency_scores": [0.1, 0.9, 0.2, 0.5, 0.3]},
           {"qid": 2, "query": "q two", "vid": "vidB_0.0_9.0", "pred_saliency_scores": [0, 0, 0, 0]}]


@pytest.mark.parametrize("lines", [False, True])
def test_score_highlights(tmp_path, qvh_gt, lines):
    pred = _write(tmp_path / "pred.json", HL_PRED, lines=lines)
    m = score_highlights(pred, qvh_gt)
    # same queries as tests/eval/test_metrics.py::test_highlight_metrics_hand_computed
    assert m["VeryGood-mAP"] == pytest.approx(25.0)
    assert m["VeryGood-Hit1"] == pytest.approx(50.0)
    assert m["Good-mAP"] == pytest.approx(37.5)
    assert m["Fair-mAP"] == pytest.approx(50.0)
    assert (m["count"], m["missing"], m["unknown"]) == (2, 0, 0)


def test_score_highlights_missing_query(tmp_path, qvh_gt):
    pred = _write(tmp_path / "pred.json", HL_PRED[:1])
    assert score_highlights(pred, qvh_gt)["missing"] == 1
    dropped = score_highlights(pred, qvh_gt, drop_missing=True)
    assert dropped["count"] == 1 and dropped["VeryGood-mAP"] == pytest.approx(50.0)


@pytest.mark.parametrize("content, message", [
    ([{"qid": 1, "pred_saliency_scores": [0.1, "x"]}], r"entry 0 \(qid 1\), field 'pred_saliency_scores'"),
    ([{"qid": 1, "pred_saliency_scores": 3}], r"must be a list"),
    ([{"pred_saliency_scores": []}], r"entry 0, field 'qid': missing"),
    ([{"qid": 1, "pred_saliency_scores": []}, {"qid": "1", "pred_saliency_scores": []}], r"duplicate qid"),
    ({"qid": 1}, r"top level must be a list"),
])
def test_malformed_highlight_predictions(tmp_path, content, message):
    pred = _write(tmp_path / "pred.json", content)
    with pytest.raises(PredictionError, match=message):
        read_highlight_predictions(pred)


def test_highlight_jsonl_error_names_the_line(tmp_path):
    pred = tmp_path / "pred.jsonl"
    pred.write_text('{"qid": 1, "pred_saliency_scores": []}\n{"qid": 2,\n', encoding="utf-8")
    with pytest.raises(PredictionError, match="line 2"):
        read_highlight_predictions(pred)


# --------------------------------------------------------------------------------------------------
# Dense captioning


@pytest.fixture
def youcook_gt(tmp_path):
    return _write(tmp_path / "val.caption_coco_format.json", {"annotations": [
        {"image_id": "yc/v1.mp4", "caption": "unused", "pure_cap": "cut the onion. fry the onion.",
         "segments": [[0, 10], [10, 20]], "duration": 60.0, "id": 0},
        {"image_id": "v2.mp4", "caption": "unused", "pure_cap": "boil water.", "segments": [[0, 20]],
         "duration": 60.0, "id": 1},
    ]})


DVC_PRED = {"v1.mp4": [{"timestamp": [0, 10], "caption": "cut the onion"},
                       {"timestamp": [10, 20], "caption": "fry the onion"}],
            "other.mp4": [{"timestamp": [0, 1], "caption": "x"}]}  # unknown video; v2 missing


def test_score_dense_captioning_youcook2(tmp_path, youcook_gt):
    pred = _write(tmp_path / "pred.json", DVC_PRED)
    m = score_dense_captioning(pred, youcook_gt, scorer=FakeScorer())
    # v1: every prediction matches its GT at every threshold (IoU ~ 1) and captions agree -> 1;
    # v2 has no prediction -> 0 everywhere
    for key in ("Precision", "Recall", "F1", "CIDEr", "METEOR", "SODA_c"):
        assert m[key] == pytest.approx(50.0, rel=1e-6), key
    assert (m["count"], m["missing"], m["unknown"]) == (2, 1, 1)


def test_score_dense_captioning_activitynet(tmp_path):
    gt = _write(tmp_path / "val_2.json", {"v_abc": {"duration": 30.0, "timestamps": [[0, 10], [10, 30]],
                                                    "sentences": ["A man talks.", "He leaves."]}})
    pred = _write(tmp_path / "pred.json", {"v_abc": [{"timestamp": [10, 30], "caption": "He leaves."}]})
    m = score_dense_captioning(pred, gt, scorer=FakeScorer())
    # 1 prediction matching GT 2 at every threshold: P = 1, R = 1/2 -> F1 = 2/3
    assert m["Precision"] == pytest.approx(100.0, rel=1e-6)
    assert m["Recall"] == pytest.approx(50.0, rel=1e-6)
    assert m["F1"] == pytest.approx(200 / 3, rel=1e-6)


def test_score_dense_captioning_without_java(tmp_path, youcook_gt, monkeypatch):
    monkeypatch.setattr(captioning, "java_available", lambda: False)
    m = score_dense_captioning(_write(tmp_path / "pred.json", DVC_PRED), youcook_gt)
    assert m["METEOR"] is None and "METEOR" in m["unavailable"]
    table = format_table(m)
    assert "n/a" in table and "METEOR: unavailable, needs Java (not found on PATH)" in table


def test_dense_captioning_keys_and_errors(tmp_path, charades_gt, youcook_gt):
    preds = read_dense_caption_predictions(_write(tmp_path / "p.json", {"a/b/xyz.mp4": [], "plain": []}))
    assert set(preds) == {"xyz", "plain"}
    with pytest.raises(PredictionError, match="name the same video 'v1'"):
        read_dense_caption_predictions(_write(tmp_path / "p.json", {"v1": [], "v1.mp4": []}))
    with pytest.raises(PredictionError, match=r"entry 'v1' segment 0, field 'caption'"):
        read_dense_caption_predictions(_write(tmp_path / "p.json", {"v1": [{"timestamp": [0, 1], "caption": 3}]}))
    with pytest.raises(PredictionError, match=r"entry 'v1' segment 0, field 'timestamp'"):
        read_dense_caption_predictions(_write(tmp_path / "p.json", {"v1": [{"timestamp": [0, None], "caption": ""}]}))
    with pytest.raises(VTGError, match="not a dense-captioning ground truth"):
        score_dense_captioning(_write(tmp_path / "p.json", {}), charades_gt, scorer=FakeScorer())


# --------------------------------------------------------------------------------------------------
# Table


def test_format_table_aligns_columns():
    table = format_table({"R1@0.3": 45.204, "mIoU": 30.0, "count": 3720, "missing": 0, "SODA_c": None,
                          "unavailable": {"SODA_c": "needs Java (not found on PATH)"}})
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "value"]
    assert lines[2].split() == ["R1@0.3", "45.20"]
    assert lines[4].split() == ["count", "3720"]
    assert lines[6].split() == ["SODA_c", "n/a"]
    assert len({len(line) for line in lines[:7]}) == 1  # aligned rows
    assert lines[-1] == "SODA_c: unavailable, needs Java (not found on PATH)"
