"""mmengine ``BaseMetric`` wrappers of the plain metric functions.

Each data sample handed to ``Evaluator.process`` (or ``metric.process``) is a dict (or an object
with the same attributes) with

* ``"task"``: ``"mr"``, ``"hd"`` or ``"dvc"``; a metric keeps only the samples of its task, so one
  evaluator can hold the three metrics for a mixed evaluation;
* ``"id"``: the query or video id;
* ``"pred"``: the parsed prediction (MR: windows ``[(s, e), ...]``; HD: a score per 2-second clip;
  DVC: ``[(s, e, caption), ...]``), or None when nothing could be parsed;
* ``"gt"``: the :class:`vtgcore.data.formats.EvalItem`.

``compute_metrics`` calls :func:`~vtgcore.eval.metrics.grounding_metrics`,
:func:`~vtgcore.eval.metrics.highlight_metrics` or :func:`~vtgcore.eval.metrics.dvc_metrics` on every
item collected, so missing predictions are scored as the plain functions score them. An id seen
twice (a distributed sampler pads the last batch with repeats) is scored once.

This module imports mmengine (its classes derive from ``BaseMetric``); the rest of
:mod:`vtgcore.eval` does not. The classes are not registered at import; :func:`register` puts them into a registry, e.g.
``register(mmengine.registry.METRICS)`` or a child registry with scope ``"vtgcore"``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from mmengine.evaluator import BaseMetric

from vtgcore.errors import VTGError

__all__ = ["DenseCaptionMetric", "GroundingMetric", "HighlightMetric", "VTGBaseMetric", "register"]


def _get(sample: Any, key: str) -> Any:
    """``sample[key]`` or ``sample.key`` (mmengine hands over dicts or data elements)."""
    if isinstance(sample, Mapping):
        if key not in sample:
            raise VTGError(f"evaluation data sample has no {key!r} (keys: {', '.join(map(str, sample))})")
        return sample[key]
    if not hasattr(sample, key):
        raise VTGError(f"evaluation data sample {type(sample).__name__} has no {key!r}")
    return getattr(sample, key)


class VTGBaseMetric(BaseMetric):
    """Collects ``{"id", "pred", "gt"}`` for the samples of one task; subclasses compute.

    Follows mmengine's ``BaseMetric`` protocol (``process`` per batch, ``compute_metrics`` on the
    collected results of all ranks).

    Args:
        collect_device: ``"cpu"`` or ``"gpu"`` (mmengine's result collection across ranks).
        prefix: metric name prefix; the class's ``default_prefix`` when None.
    """

    task: str = ""

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Store the id, prediction and ground truth of every sample of this metric's task.

        Follows ``BaseMetric.process``; the batch itself is not used.
        """
        for sample in data_samples:
            if _get(sample, "task") != self.task:
                continue
            self.results.append({"id": str(_get(sample, "id")), "pred": _get(sample, "pred"),
                                 "gt": _get(sample, "gt")})

    def compute_metrics(self, results: list) -> dict:
        """Metrics over the collected items (``{"count": 0}`` when none was collected).

        Follows ``BaseMetric.compute_metrics``; the computation is the subclass's :meth:`score`.
        """
        unique: dict[str, dict[str, Any]] = {}
        for result in results:
            unique.setdefault(result["id"], result)
        if not unique:
            return {"count": 0}
        preds = {key: r["pred"] for key, r in unique.items() if r["pred"] is not None}
        return self.score(preds, [r["gt"] for r in unique.values()])

    @abstractmethod
    def score(self, preds: dict[str, Any], gts: list[Any]) -> dict[str, Any]:
        """Compute the metrics of this task from predictions by id and the ground-truth items."""


class GroundingMetric(VTGBaseMetric):
    """Moment retrieval R1@t, mIoU (and R5@t) in percent, prefix ``"mr"``.

    Follows :func:`vtgcore.eval.metrics.grounding_metrics` (VTG-LLM ``eval_tvg.py``); the ground
    truth of an item is its first window.

    Args:
        thresholds: IoU thresholds.
        collect_device: see :class:`VTGBaseMetric`.
        prefix: see :class:`VTGBaseMetric`.
    """

    default_prefix = "mr"
    task = "mr"

    def __init__(self, thresholds: Sequence[float] = (0.3, 0.5, 0.7), collect_device: str = "cpu",
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.thresholds = tuple(thresholds)

    def score(self, preds: dict[str, Any], gts: list[Any]) -> dict[str, Any]:
        """:func:`~vtgcore.eval.metrics.grounding_metrics` over the collected items."""
        from vtgcore.eval.metrics import grounding_metrics

        windows = {}
        for item in gts:
            if not item.windows:
                raise VTGError(f"moment-retrieval ground truth {item.id!r} has no window")
            windows[str(item.id)] = item.windows[0]
        return grounding_metrics(preds, windows, self.thresholds)


class HighlightMetric(VTGBaseMetric):
    """QVHighlights HL-mAP and HL-Hit@1 per saliency level in percent, prefix ``"hd"``.

    Follows :func:`vtgcore.eval.metrics.highlight_metrics` (Moment-DETR ``eval_highlight``).

    Args:
        drop_missing: leave queries without a prediction out, as the original evaluator.
        collect_device: see :class:`VTGBaseMetric`.
        prefix: see :class:`VTGBaseMetric`.
    """

    default_prefix = "hd"
    task = "hd"

    def __init__(self, drop_missing: bool = False, collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.drop_missing = drop_missing

    def score(self, preds: dict[str, Any], gts: list[Any]) -> dict[str, Any]:
        """:func:`~vtgcore.eval.metrics.highlight_metrics` over the collected items."""
        from vtgcore.eval.metrics import highlight_metrics

        return highlight_metrics(preds, gts, drop_missing=self.drop_missing)


class DenseCaptionMetric(VTGBaseMetric):
    """Dense captioning P/R/F1, CIDEr, METEOR, SODA_c in percent, prefix ``"dvc"``.

    Follows :func:`vtgcore.eval.metrics.dvc_metrics` (Vid2Seq/TimeChat ``eval_dvc.py``). Without
    Java the caption metrics are None and ``unavailable`` gives the reason (mmengine logs
    non-scalar values as info).

    Args:
        thresholds: tIoU thresholds.
        scorer: caption back end (default: pycocoevalcap with Java, started per evaluation).
        collect_device: see :class:`VTGBaseMetric`.
        prefix: see :class:`VTGBaseMetric`.
    """

    default_prefix = "dvc"
    task = "dvc"

    def __init__(self, thresholds: Sequence[float] = (0.3, 0.5, 0.7, 0.9), scorer: Any = None,
                 collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.thresholds = tuple(thresholds)
        self.scorer = scorer

    def score(self, preds: dict[str, Any], gts: list[Any]) -> dict[str, Any]:
        """:func:`~vtgcore.eval.metrics.dvc_metrics` over the collected items."""
        from vtgcore.eval.metrics import dvc_metrics

        return dvc_metrics(preds, gts, thresholds=self.thresholds, scorer=self.scorer)


METRIC_CLASSES: tuple[type[VTGBaseMetric], ...] = (GroundingMetric, HighlightMetric, DenseCaptionMetric)


def register(registry: Any, *, force: bool = False) -> Any:
    """Register :class:`GroundingMetric`, :class:`HighlightMetric` and :class:`DenseCaptionMetric`.

    Follows mmengine's ``Registry.register_module`` (the names are the class names).

    Args:
        registry: an mmengine ``Registry`` (e.g. ``mmengine.registry.METRICS`` or a child of it).
        force: replace classes already registered under the same names.

    Returns:
        The registry.
    """
    for cls in METRIC_CLASSES:
        registry.register_module(module=cls, force=force)
    return registry
