"""Declared ranges for numeric settings (issue 20): recipe schema fields and plugin params (kernel:
plugins import it).

A dataclass field declares its allowed range in its metadata; :func:`check_ranges` enforces it.
The recipe loader checks the :class:`~vtgcore.config.schema.Recipe` schema's fields this way, and
the catalog checks every plugin's config dataclass the same way when a recipe is validated (``vtg
recipe validate``) and before the plugin is built, so a value out of range never reaches a
constructor, an optimizer or a loop::

    from vtgcore.ranges import in_range

    @dataclass
    class SlotConfig:
        num_slots: int = in_range(256, low=1)           # >= 1
        init_std: float = in_range(1.0, low=0.0, low_open=True)   # > 0, finite

A range is ``(low, high)`` with either end None for no bound; numbers must also be finite, and an
``int`` field must hold a whole number. Use ``field(metadata={"range": Range(...)})`` where a
``default_factory`` or other field options are needed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

SEED_MAX = 2**64 - 1
"""The largest seed torch and numpy accept."""


@dataclass(frozen=True)
class Range:
    """Allowed values of a number: ``low`` .. ``high`` (None: unbounded), ends included unless open."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: Any) -> Optional[str]:
        """Why ``value`` is out of range, or None (non-numbers are the type checker's business,
        except strings, which are refused here because some fields are typed ``Any``)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number {self.describe()}, got {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number {self.describe()}, got {value}"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            shown = str(value) if not isinstance(value, int) or abs(value) < 10**30 else f"{float(value):.3g}"
            return f"must be {self.describe()}, got {shown}"
        return None

    def describe(self) -> str:
        def fmt(x: float) -> str:
            return str(int(x)) if float(x).is_integer() and abs(x) < 10**20 else f"{x:g}"

        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{fmt(self.low)}, {fmt(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {fmt(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {fmt(self.high)}"
        return "(any finite number)"


def in_range(default: Any, low: Optional[float] = None, high: Optional[float] = None, *,
             low_open: bool = False, high_open: bool = False) -> Any:
    """A dataclass field with ``default`` and a declared :class:`Range` (see the module docstring)."""
    return field(default=default, metadata={"range": Range(low, high, low_open, high_open)})


def declared_ranges(cls: type) -> dict[str, Range]:
    """Field name -> :class:`Range` of a dataclass's declared ranges."""
    if not dataclasses.is_dataclass(cls):
        return {}
    return {f.name: f.metadata["range"] for f in dataclasses.fields(cls) if "range" in f.metadata}


def range_problems(values: Mapping[str, Any], cls: type, prefix: str = "") -> list[str]:
    """``"<prefix><name> must be ..."`` for every value of ``values`` outside its declared range."""
    out = []
    for name, allowed in declared_ranges(cls).items():
        if name in values:
            problem = allowed.problem(values[name])
            if problem:
                out.append(f"{prefix}{name} {problem}")
    return out


def check_ranges(values: Mapping[str, Any], cls: type, prefix: str = "") -> None:
    """Raise ``ValueError`` with the first value of ``values`` outside its declared range."""
    problems = range_problems(values, cls, prefix)
    if problems:
        raise ValueError(problems[0])
