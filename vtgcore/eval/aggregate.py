"""Mean and spread of metrics over repeated runs (seeds of one sweep variant)."""

from __future__ import annotations

import statistics
from typing import Any, Optional, Sequence


def mean_std(values: Sequence[float]) -> tuple[float, Optional[float]]:
    """Mean and sample standard deviation (n - 1; None for one value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """variant -> metric -> ``{"mean", "std", "n", "values"}`` over the finished rows (metrics are the
    ``task/name`` columns; missing values are left out of ``n``). Variants keep their row order; a
    variant without a finished row maps to ``{}``."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    values: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        per = values.setdefault(row["variant"], {})
        summary.setdefault(row["variant"], {})
        if row.get("status") != "finished":
            continue
        for key, value in row.items():
            if "/" in key and isinstance(value, (int, float)) and not isinstance(value, bool):
                per.setdefault(key, []).append(float(value))
    for variant, per in values.items():
        for key, vals in per.items():
            mean, std = mean_std(vals)
            summary[variant][key] = {"mean": mean, "std": std, "n": len(vals), "values": vals}
    return summary
