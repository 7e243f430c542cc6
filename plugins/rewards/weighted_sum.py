"""``weighted_sum``: a weighted sum of other rewards, composed in the recipe."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from vtgcore.hookspecs import hookimpl
from vtgcore.interfaces import Reward, TimeCodec
from vtgcore_plugins.rewards._common import finite

_TERM_KEYS = ("name", "params", "weight")


@dataclass
class WeightedSumConfig:
    """Params of ``weighted_sum``.

    Attributes:
        terms: ``[{name: <reward>, params: {...}, weight: <number>}, ...]`` (at least one;
            ``params`` optional, default ``{}``; ``weight`` a finite number, default 1.0).
    """

    terms: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.terms:
            raise ValueError("terms must list at least one {name, params, weight}")
        for k, term in enumerate(self.terms):
            if not isinstance(term, Mapping):
                raise ValueError(f"terms[{k}] must be a mapping {{name, params, weight}}, got {term!r}")
            unknown = sorted(str(key) for key in term if key not in _TERM_KEYS)
            if unknown:
                raise ValueError(f"terms[{k}]: unknown key(s) {unknown}; allowed: {list(_TERM_KEYS)}")
            if not isinstance(term.get("name"), str) or not term.get("name"):
                raise ValueError(f"terms[{k}]: 'name' must be a reward name, got {term.get('name')!r}")
            weight = term.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ValueError(f"terms[{k}]: 'weight' must be a finite number, got {weight!r}")


class WeightedSum(Reward):
    """``sum(weight_i * reward_i)`` of its terms, each built through the catalog with the wiring
    ``build_reward`` (a plugin does not import the catalog), so a term's params are validated as a
    top-level reward's; terms may be weighted sums too. A term that returns a non-finite value
    counts 0.

    Args:
        terms: see :class:`WeightedSumConfig`.
        build_reward: ``build_reward({name, params}) -> Reward``, supplied by
            :func:`vtgcore.build.build_reward`.
    """

    def __init__(self, terms: Sequence[Mapping[str, Any]], build_reward: Callable[[Any], Reward]) -> None:
        WeightedSumConfig(list(terms))
        self.terms: list[tuple[float, Reward]] = [
            (float(t.get("weight", 1.0)), build_reward({"name": t["name"], "params": dict(t.get("params") or {})}))
            for t in terms]

    def reward(self, item: Any, answer_text: str, answer_ids: Sequence[int], codec: TimeCodec) -> float:
        return finite(sum(w * finite(r.reward(item, answer_text, answer_ids, codec)) for w, r in self.terms))


@hookimpl
def vtg_register_rewards(register):
    register("weighted_sum", WeightedSum, config=WeightedSumConfig,
             description="weighted sum of other rewards: terms [{name, params, weight}]")
