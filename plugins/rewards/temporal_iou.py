"""``temporal_iou``: moment retrieval, the IoU of the predicted window with the ground truth
(optionally thresholded)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from vtgcore.eval.metrics import iou
from vtgcore.hookspecs import hookimpl
from vtgcore.interfaces import Reward, TimeCodec
from vtgcore_plugins.rewards._common import finite, parse_answer, predicted_windows, windows


@dataclass
class TemporalIoUConfig:
    """Params of ``temporal_iou``.

    Attributes:
        threshold: None: the reward is the IoU itself; a number in [0, 1]: 1.0 when the IoU is at
            least ``threshold``, else 0.0 (R1@threshold of one query).
    """

    threshold: Optional[float] = None

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= float(self.threshold) <= 1.0:
            raise ValueError(f"threshold must be in [0, 1] or None, got {self.threshold!r}")


class TemporalIoU(Reward):
    """The temporal IoU (:func:`vtgcore.eval.metrics.iou`, as the MR metrics) of the answer's first
    window with the item's first ground-truth window. The answer is read with the item task's parser
    (:func:`vtgcore.eval.parsers.parse` with the item's duration, as evaluation reads it: the
    windows of an MR answer, the events' windows of a DVC one). An empty or unparseable answer, an
    answer without a window (scores of a highlight answer) or an item without a window scores 0.0.

    Args:
        threshold: see :class:`TemporalIoUConfig`.
        build_reward: wiring (unused).
    """

    def __init__(self, threshold: Optional[float] = None, build_reward: Optional[Callable[..., Any]] = None) -> None:
        self.threshold = None if threshold is None else float(threshold)

    def reward(self, item: Any, answer_text: str, answer_ids: Sequence[int], codec: TimeCodec) -> float:
        preds = predicted_windows(parse_answer(item, answer_text))
        truth = windows(item)
        if not preds or not truth:
            return 0.0
        value = finite(iou(preds[0], truth[0]))
        if self.threshold is None:
            return value
        return 1.0 if value >= self.threshold else 0.0


@hookimpl
def vtg_register_rewards(register):
    register("temporal_iou", TemporalIoU, config=TemporalIoUConfig,
             description="IoU of the first predicted window with the ground truth (or 1/0 at a threshold)")
