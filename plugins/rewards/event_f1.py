"""``event_f1``: dense video captioning, the localisation F1 of the predicted events at tIoU
thresholds (the evaluator's per-video F1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from vtgcore.eval.metrics import dvc_tiou
from vtgcore.hookspecs import hookimpl
from vtgcore.interfaces import Reward, TimeCodec
from vtgcore_plugins.rewards._common import finite, parse_answer, predicted_windows, windows


@dataclass
class EventF1Config:
    """Params of ``event_f1``.

    Attributes:
        thresholds: the tIoU thresholds (each in [0, 1)), those of the dense-captioning evaluator by
            default.
    """

    thresholds: list[float] = field(default_factory=lambda: [0.3, 0.5, 0.7, 0.9])

    def __post_init__(self) -> None:
        if not self.thresholds or not all(0.0 <= float(t) < 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds must be a non-empty list of numbers in [0, 1), got {list(self.thresholds)!r}")


class EventF1(Reward):
    """Localisation F1 of the answer's events against the item's ground-truth events.

    Matching, exactly as the dense-captioning evaluator scores one video (``evaluate_detections`` of
    the Vid2Seq/TimeChat ``eval_dvc.py``; :func:`vtgcore.eval.metrics.dvc_metrics`): the events are
    read with :func:`vtgcore.eval.parsers.parse_events` (the item's duration clamps them; captions
    are ignored) and compared with :func:`vtgcore.eval.metrics.dvc_tiou`. At each threshold ``t``,
    precision is the fraction of predicted events whose tIoU with *some* ground-truth event is
    strictly greater than ``t``, and recall the fraction of ground-truth events with some predicted
    event strictly above ``t`` (not a one-to-one matching: one prediction may cover several
    ground-truth events). Precision and recall are averaged over the thresholds, and the reward is
    ``2 P R / (P + R)`` of those averages (0 when both are 0). An empty or unparseable answer, or an
    item without a ground-truth window, scores 0.0.

    Args:
        thresholds: see :class:`EventF1Config`.
        build_reward: wiring (unused).
    """

    def __init__(self, thresholds: Sequence[float] = (0.3, 0.5, 0.7, 0.9),
                 build_reward: Optional[Callable[..., Any]] = None) -> None:
        self.thresholds = [float(t) for t in thresholds]

    def reward(self, item: Any, answer_text: str, answer_ids: Sequence[int], codec: TimeCodec) -> float:
        preds = predicted_windows(parse_answer(item, answer_text))
        truth = windows(item)
        if not preds or not truth:
            return 0.0
        ious = [[dvc_tiou(p, g) for p in preds] for g in truth]  # (#gt, #pred)
        precisions, recalls = [], []
        for t in self.thresholds:
            precisions.append(sum(any(row[j] > t for row in ious) for j in range(len(preds))) / len(preds))
            recalls.append(sum(any(x > t for x in row) for row in ious) / len(truth))
        p = sum(precisions) / len(precisions)
        r = sum(recalls) / len(recalls)
        return finite(2 * p * r / (p + r)) if p + r > 0 else 0.0


@hookimpl
def vtg_register_rewards(register):
    register("event_f1", EventF1, config=EventF1Config,
             description="dense captioning: F1 of the predicted events at tIoU 0.3/0.5/0.7/0.9 (the evaluator's)")
