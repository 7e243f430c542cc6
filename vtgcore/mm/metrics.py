"""The evaluation metrics (:mod:`vtgcore.eval.mm_metrics`) registered under scope ``vtgcore``."""

from vtgcore.eval.mm_metrics import DenseCaptionMetric, GroundingMetric, HighlightMetric, register
from vtgcore.mm.registry import METRICS

register(METRICS)

__all__ = ["GroundingMetric", "HighlightMetric", "DenseCaptionMetric"]
