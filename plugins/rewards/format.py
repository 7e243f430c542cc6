"""``format``: 1.0 when the answer parses with its task's parser, else 0.0."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from vtgcore.hookspecs import hookimpl
from vtgcore.interfaces import Reward, TimeCodec
from vtgcore_plugins.rewards._common import parse_answer


class FormatReward(Reward):
    """1.0 when :func:`vtgcore.eval.parsers.parse` reads something usable from the answer for the
    item's task (``ok``; with the item's duration, as evaluation parses), else 0.0 (an empty answer,
    an unknown task, a highlight item without a duration).

    Args:
        build_reward: wiring (unused).
    """

    def __init__(self, build_reward: Optional[Callable[..., Any]] = None) -> None:
        pass

    def reward(self, item: Any, answer_text: str, answer_ids: Sequence[int], codec: TimeCodec) -> float:
        return 1.0 if parse_answer(item, answer_text) is not None else 0.0


@hookimpl
def vtg_register_rewards(register):
    register("format", FormatReward, description="1 when the answer parses with its task's parser, else 0")
