"""Times written as plain decimal text ("12.3"), the "no time tokens" ablation of the paper."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

from vtgcore.errors import TimeCodecError
from vtgcore.interfaces import TimeCodec
from vtgcore.types import checked_seconds
from vtgcore.hookspecs import hookimpl

_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?")


@dataclass
class PlainDigitsConfig:
    """Params of ``plain_digits``.

    Attributes:
        decimals: digits after the dot (0 writes whole seconds).
    """

    decimals: int = 1


class PlainDigits(TimeCodec):
    """Writes ``f"{seconds:.{decimals}f}"``; reads every decimal number of the decoded text."""

    def __init__(self, decimals: int = 1) -> None:
        if decimals < 0:
            raise TimeCodecError(f"decimals must be >= 0, got {decimals}")
        self.decimals = decimals

    def special_tokens(self) -> list[str]:
        return []

    def token_init(self) -> dict[str, str]:
        return {}

    def encode(self, seconds: float) -> str:
        value = checked_seconds(seconds)
        return f"{value:.{self.decimals}f}"

    def decode_ids(self, ids: Sequence[int], tokenizer: Any) -> list[float]:
        try:
            text = tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)
        except Exception:  # out-of-vocabulary ids: decode what can be decoded
            size = len(tokenizer)
            text = tokenizer.decode([int(i) for i in ids if 0 <= int(i) < size], skip_special_tokens=True)
        # A digit run too long for a float (1e400 -> inf) is not a time: it is left out.
        return [v for v in (float(m.group()) for m in _NUMBER.finditer(text)) if math.isfinite(v)]


@hookimpl
def vtg_register_time_codecs(register):
    register("plain_digits", PlainDigits, config=PlainDigitsConfig,
             description="times as plain decimal text (the paper's 'no time tokens' ablation)")
