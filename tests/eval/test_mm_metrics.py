"""mmengine BaseMetric wrappers driven through mmengine's Evaluator on CPU."""

from __future__ import annotations

import pytest
from mmengine.evaluator import Evaluator
from mmengine.registry import Registry

from vtgcore.data.formats import EvalItem
from vtgcore.eval import captioning
from vtgcore.eval.mm_metrics import DenseCaptionMetric, GroundingMetric, HighlightMetric, register
from fake_scorer import FakeScorer


MR = [EvalItem(id=str(k), video="a.mp4", task="mr", query="q", windows=[(0.0, 10.0)]) for k in range(3)]
HD = [EvalItem(id="h1", video="b.mp4", task="hd", query="q", duration=10.0, windows=[(2.0, 4.0)],
               saliency=[[4, 2, 0], [1, 4, 3]], clip_ids=[1, 3])]
DVC = [EvalItem(id="v1", video="v1.mp4", task="dvc", duration=60.0, windows=[(0.0, 10.0)], captions=["cut it."]),
       EvalItem(id="v2", video="v2.mp4", task="dvc", duration=60.0, windows=[(0.0, 10.0)], captions=["boil."])]


def _samples():
    return [
        {"task": "mr", "id": "0", "pred": [(0.0, 10.0)], "gt": MR[0]},  # IoU 1
        {"task": "mr", "id": "1", "pred": [(0.0, 5.0)], "gt": MR[1]},  # IoU .5
        {"task": "mr", "id": "2", "pred": None, "gt": MR[2]},  # nothing parsed: a miss
        {"task": "hd", "id": "h1", "pred": [0.1, 0.9, 0.2, 0.5, 0.3], "gt": HD[0]},
        {"task": "dvc", "id": "v1", "pred": [(0.0, 10.0, "cut it")], "gt": DVC[0]},
        {"task": "dvc", "id": "v2", "pred": [], "gt": DVC[1]},
    ]


def test_evaluator_with_the_three_metrics():
    evaluator = Evaluator([GroundingMetric(), HighlightMetric(), DenseCaptionMetric(scorer=FakeScorer())])
    samples = _samples()
    evaluator.process(samples[:3])
    evaluator.process(samples[3:] + [samples[0]])  # a repeated id (sampler padding) is scored once
    m = evaluator.evaluate(len(samples) + 1)
    # MR: R1@0.5 = 2/3, R1@0.7 = 1/3, mIoU = (1 + .5 + 0) / 3
    assert m["mr/R1@0.5"] == pytest.approx(200 / 3)
    assert m["mr/R1@0.7"] == pytest.approx(100 / 3)
    assert m["mr/mIoU"] == pytest.approx(50.0)
    assert (m["mr/count"], m["mr/missing"]) == (3, 1)
    # HD: the q1 query of test_metrics: VeryGood AP .5, Good 2/3, Fair 5/6, Hit@1 1
    assert m["hd/VeryGood-mAP"] == pytest.approx(50.0)
    assert m["hd/Good-mAP"] == pytest.approx(200 / 3)
    assert m["hd/Fair-Hit1"] == pytest.approx(100.0)
    # DVC: v1 perfect, v2 empty -> halves
    assert m["dvc/F1"] == pytest.approx(50.0, rel=1e-6)
    assert m["dvc/CIDEr"] == pytest.approx(50.0)
    assert (m["dvc/count"], m["dvc/missing"]) == (2, 1)


def test_metric_without_samples_of_its_task():
    evaluator = Evaluator([GroundingMetric(prefix="charades")])
    evaluator.process([s for s in _samples() if s["task"] == "hd"])
    assert evaluator.evaluate(1) == {"charades/count": 0}


def test_dense_caption_metric_without_java(monkeypatch):
    monkeypatch.setattr(captioning, "java_available", lambda: False)
    evaluator = Evaluator([DenseCaptionMetric()])
    evaluator.process(_samples())
    m = evaluator.evaluate(6)
    assert m["dvc/METEOR"] is None
    assert m["dvc/unavailable"]["SODA_c"] == "needs Java (not found on PATH)"
    assert m["dvc/Precision"] == pytest.approx(50.0, rel=1e-6)


def test_register_into_a_registry_and_build_from_config():
    registry = register(Registry("metric"))
    metric = registry.build({"type": "GroundingMetric", "thresholds": (0.5,)})
    assert isinstance(metric, GroundingMetric) and metric.prefix == "mr"
    assert isinstance(registry.build({"type": "HighlightMetric", "drop_missing": True}), HighlightMetric)
    assert isinstance(registry.build({"type": "DenseCaptionMetric"}), DenseCaptionMetric)
    metric.process(None, _samples())
    assert metric.evaluate(6) == {"mr/R1@0.5": pytest.approx(200 / 3), "mr/mIoU": pytest.approx(50.0),
                                  "mr/count": 3, "mr/missing": 1, "mr/unknown": 0}
    register(registry, force=True)  # registering again needs force
    with pytest.raises(KeyError):
        register(registry)
