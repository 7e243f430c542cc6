"""VTG-LLM's absolute-time tokens: 11 new tokens and a fixed ``dddd.d`` format.

Every time is written as exactly ``integer_digits + 2`` tokens, e.g. 12.3 s ->
``<TIME_ZERO><TIME_ZERO><TIME_ONE><TIME_TWO><TIME_DOT><TIME_THREE>``. The new rows start as copies
of the rows of ``"0"``..``"9"`` and ``"."``. Decoding works on token ids, so no text regex can merge
neighbouring numbers.

Two defects of the original formatter are fixed (``vtgllm-original.md`` section 2.2): a number
written without a dot ("12") is padded like any other (``0012.0`` instead of 4 tokens), and a time
of 10000 s or more is an error (or clamped to 9999.9 with ``out_of_range: clamp``) instead of
silently losing its fraction.

``fixed_format: false`` is the paper's "no fixed format" ablation: the same tokens, but the number as
plain text would write it, without leading zeros (12.3 s -> ``<TIME_ONE><TIME_TWO><TIME_DOT><TIME_THREE>``,
0.5 s -> ``<TIME_ZERO><TIME_DOT><TIME_FIVE>``); decoding reads such runs by their dots.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any, Sequence

from vtgcore.errors import TimeCodecError
from vtgcore.interfaces import TimeCodec
from vtgcore.types import checked_seconds
from vtgcore.hookspecs import hookimpl
from vtgcore.vocab import VTGLLM_TIME_TOKENS

DIGIT_NAMES = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
TIME_TOKENS: tuple[str, ...] = VTGLLM_TIME_TOKENS
_CHARS = "0123456789."
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class AbsoluteTimeTokensConfig:
    """Params of ``absolute_time_tokens``.

    Attributes:
        integer_digits: digits before the dot (4 in the paper: up to 9999.9 s).
        rounding: ``truncate`` (the original: 12.34 -> 12.3, 12.39 -> 12.3) or ``nearest``.
        out_of_range: ``error`` or ``clamp`` for times beyond the largest representable value.
        init_from_digits: start the new rows as copies of the digit and dot rows (the paper).
        fixed_format: pad the integer part to ``integer_digits`` (the paper); false writes it
            without leading zeros (the paper's "no fixed format" ablation).
    """

    integer_digits: int = 4
    rounding: str = "truncate"
    out_of_range: str = "error"
    init_from_digits: bool = True
    fixed_format: bool = True


class AbsoluteTimeTokens(TimeCodec):
    """The VTG-LLM time-token codec. See the module docstring."""

    def __init__(self, integer_digits: int = 4, rounding: str = "truncate", out_of_range: str = "error",
                 init_from_digits: bool = True, fixed_format: bool = True) -> None:
        if integer_digits < 1:
            raise TimeCodecError(f"integer_digits must be >= 1, got {integer_digits}")
        if rounding not in ("truncate", "nearest"):
            raise TimeCodecError(f"rounding must be 'truncate' or 'nearest', got {rounding!r}")
        if out_of_range not in ("error", "clamp"):
            raise TimeCodecError(f"out_of_range must be 'error' or 'clamp', got {out_of_range!r}")
        self.integer_digits = integer_digits
        self.rounding = rounding
        self.out_of_range = out_of_range
        self.init_from_digits = init_from_digits
        self.fixed_format = fixed_format
        self.width = integer_digits + 2
        self.max_seconds = float(10**integer_digits) - 0.1
        self._id_cache: tuple[int, dict[int, str]] | None = None

    def special_tokens(self) -> list[str]:
        return list(TIME_TOKENS)

    def token_init(self) -> dict[str, str]:
        return dict(zip(TIME_TOKENS, _CHARS)) if self.init_from_digits else {}

    def tenths(self, seconds: float) -> int:
        """The time in tenths of a second after rounding and range handling."""
        value = checked_seconds(seconds)
        mode = ROUND_DOWN if self.rounding == "truncate" else ROUND_HALF_EVEN
        tenths = int(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=mode) * 10)
        if tenths > 10 ** (self.integer_digits + 1) - 1:
            if self.out_of_range == "error":
                raise TimeCodecError(
                    f"time {value} s exceeds {self.max_seconds} s, the largest this codec writes "
                    f"with {self.integer_digits} integer digits (set out_of_range: clamp to clamp)")
            tenths = 10 ** (self.integer_digits + 1) - 1
        return tenths

    def encode(self, seconds: float) -> str:
        tenths = self.tenths(seconds)
        width = self.integer_digits if self.fixed_format else 1
        text = f"{tenths // 10:0{width}d}.{tenths % 10}"
        return "".join(TIME_TOKENS[_CHARS.index(c)] for c in text)

    def _id_map(self, tokenizer: Any) -> dict[int, str]:
        key = id(tokenizer)
        if self._id_cache is None or self._id_cache[0] != key:
            ids = tokenizer.convert_tokens_to_ids(list(TIME_TOKENS))
            unk = getattr(tokenizer, "unk_token_id", None)
            self._id_cache = (key, {i: c for i, c in zip(ids, _CHARS) if i is not None and i != unk})
        return self._id_cache[1]

    def decode_spans(self, ids: Sequence[int], tokenizer: Any) -> list[tuple[int, int, float]]:
        """Every time in ``ids`` as ``(start, end, seconds)`` with ``ids[start:end]`` its tokens.

        A run of time tokens is read as one ``dddd.d`` number; a run made of several whole
        ``dddd.d`` groups (numbers written back to back) is split into them; anything else is read
        leniently as the decimal numbers it contains. Never raises.
        """
        id_map = self._id_map(tokenizer)
        spans: list[tuple[int, int, float]] = []
        i, n = 0, len(ids)
        while i < n:
            if int(ids[i]) not in id_map:
                i += 1
                continue
            j = i
            while j < n and int(ids[j]) in id_map:
                j += 1
            spans.extend(self._read_run("".join(id_map[int(t)] for t in ids[i:j]), i))
            i = j
        return spans

    def _read_run(self, text: str, start: int) -> list[tuple[int, int, float]]:
        w = self.width
        fixed = re.compile(rf"\d{{{self.integer_digits}}}\.\d")
        if len(text) % w == 0 and all(fixed.fullmatch(text[k:k + w]) for k in range(0, len(text), w)):
            return [(start + k, start + k + w, float(text[k:k + w])) for k in range(0, len(text), w)]
        # A digit run too long for a float (1e400 -> inf) is not a time: it is left out.
        return [(start + m.start(), start + m.end(), float(m.group())) for m in _NUMBER.finditer(text)
                if math.isfinite(float(m.group()))]

    def decode_ids(self, ids: Sequence[int], tokenizer: Any) -> list[float]:
        return [seconds for _, _, seconds in self.decode_spans(ids, tokenizer)]


@hookimpl
def vtg_register_time_codecs(register):
    register("absolute_time_tokens", AbsoluteTimeTokens, config=AbsoluteTimeTokensConfig,
             description="VTG-LLM: 11 time tokens <TIME_ZERO>..<TIME_DOT>, fixed dddd.d, decoded by id")
