"""Helpers shared by the first-party rewards (not a plugin module: the leading underscore keeps it
out of discovery)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

from vtgcore.errors import VTGError
from vtgcore.eval.parsers import Parsed, parse


def field(item: Any, name: str) -> Any:
    """``item.<name>`` of an item object, or ``item[name]`` of a mapping; None when absent."""
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def duration(item: Any) -> Optional[float]:
    """The item's duration in seconds, None when absent or not a positive finite number."""
    try:
        value = float(field(item, "duration"))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def parse_answer(item: Any, answer_text: Any) -> Optional[Parsed]:
    """The answer parsed with the item task's parser (:func:`vtgcore.eval.parsers.parse`, as
    evaluation does, with the item's duration); None when it is empty, not a string, the task is
    unknown or nothing usable is found (``ok`` False)."""
    if not isinstance(answer_text, str) or not answer_text.strip():
        return None
    try:
        parsed = parse(str(field(item, "task")), answer_text, duration=duration(item))
    except (VTGError, TypeError, ValueError):
        return None
    return parsed if parsed.ok else None


def windows(item: Any) -> list[tuple[float, float]]:
    """The item's ground-truth windows as ``(start, end)`` floats (malformed ones left out)."""
    out = []
    for window in field(item, "windows") or []:
        try:
            start, end = (float(x) for x in window)
        except (TypeError, ValueError):
            continue
        if math.isfinite(start) and math.isfinite(end):
            out.append((min(start, end), max(start, end)))
    return out


def finite(value: Any) -> float:
    """``value`` as a float, 0.0 when it is not a finite number."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def predicted_windows(parsed: Optional[Parsed]) -> list[tuple[float, float]]:
    """The ``(start, end)`` of each parsed window or event (MR and DVC parsers); empty for a failed
    parse and for per-clip scores (HD, summary), which are no windows."""
    if parsed is None:
        return []
    return [(float(v[0]), float(v[1])) for v in parsed.value if isinstance(v, tuple) and len(v) >= 2]
