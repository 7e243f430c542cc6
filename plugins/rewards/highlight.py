"""``highlight``: highlight detection, the annotated saliency of the clip the answer rates highest."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from vtgcore.hookspecs import hookimpl
from vtgcore.interfaces import Reward, TimeCodec
from vtgcore_plugins.rewards._common import duration, field, finite, parse_answer


def annotated_saliency(item: Any) -> list[float]:
    """Per 2-second clip (``int(duration / 2)`` clips, as the highlight metrics), the mean over
    annotators of the item's saliency at its relevant clips, 0.0 elsewhere; malformed rows and clips
    outside the video are left out. Empty when the item has no duration."""
    length = duration(item)
    if length is None:
        return []
    out = [0.0] * int(length / 2.0)
    for clip, row in zip(field(item, "clip_ids") or [], field(item, "saliency") or []):
        try:
            clip, scores = int(clip), [float(x) for x in row]
        except (TypeError, ValueError):
            continue
        if scores and 0 <= clip < len(out):
            out[clip] = finite(sum(scores) / len(scores))
    return out


class HighlightReward(Reward):
    """A graded Hit@1: the annotated saliency of the clip the answer scores highest, divided by the
    highest annotated saliency of the video.

    The answer is read with :func:`vtgcore.eval.parsers.parse_saliency` (one score per 2-second
    clip, with the item's duration, as evaluation does). The top clip is the first clip with the
    highest predicted score; the annotation of a clip is the mean over annotators of its saliency
    (0 for clips that are not relevant; :func:`annotated_saliency`). The reward is
    ``annotation[top] / max(annotation)``, in [0, 1]: 1.0 when the answer's best clip is one of the
    best annotated clips. An empty or unparseable answer, an answer whose scores are all <= 0 (it
    names no highlight), and an item without a duration or a positive annotation score 0.0.

    Args:
        build_reward: wiring (unused).
    """

    def __init__(self, build_reward: Optional[Callable[..., Any]] = None) -> None:
        pass

    def reward(self, item: Any, answer_text: str, answer_ids: Sequence[int], codec: TimeCodec) -> float:
        parsed = parse_answer(item, answer_text)
        truth = annotated_saliency(item)
        if parsed is None or not truth or max(truth) <= 0:
            return 0.0
        scores = [finite(x) for x in parsed.value]
        if not scores or max(scores) <= 0:
            return 0.0
        top = scores.index(max(scores))
        return finite(truth[top] / max(truth)) if top < len(truth) else 0.0


@hookimpl
def vtg_register_rewards(register):
    register("highlight", HighlightReward,
             description="highlights: annotated saliency of the top-scored clip / the best annotated clip's")
