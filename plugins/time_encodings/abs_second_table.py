"""VTG-LLM's absolute-time embedding: one learned row per whole second, added to a frame's tokens.

The row of frame i is ``table[round(t_i)]`` (round half to even, as Python's ``round``), broadcast
over the frame's L tokens. Rows start at zero (the paper) or random (its ablation). Rows of seconds
never seen in training get no gradient, so with AdamW they stay exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from vtgcore.errors import TimeRangeError
from vtgcore.interfaces import TimeEmbedding
from vtgcore.plugins import hookimpl


@dataclass
class AbsSecondTableConfig:
    """Params of ``abs_second_table``.

    Attributes:
        max_seconds: rows of the table; times must be below it (8192 in the paper).
        init: ``zeros`` (the paper) or ``random`` (normal, std 1: the paper's ablation).
        out_of_range: ``error`` or ``clamp`` for a frame at or beyond ``max_seconds``.
    """

    max_seconds: int = 8192
    init: str = "zeros"
    out_of_range: str = "error"


class AbsSecondTable(TimeEmbedding):
    """See the module docstring."""

    def __init__(self, dim: int, max_seconds: int = 8192, init: str = "zeros", out_of_range: str = "error") -> None:
        super().__init__()
        if init not in ("zeros", "random"):
            raise ValueError(f"init must be 'zeros' or 'random', got {init!r}")
        if out_of_range not in ("error", "clamp"):
            raise ValueError(f"out_of_range must be 'error' or 'clamp', got {out_of_range!r}")
        if max_seconds < 1:
            raise ValueError(f"max_seconds must be >= 1, got {max_seconds}")
        self.max_seconds = max_seconds
        self.out_of_range = out_of_range
        weight = torch.zeros(max_seconds, dim) if init == "zeros" else torch.randn(max_seconds, dim)
        self.weight = nn.Parameter(weight)

    def seconds_index(self, timestamps: torch.Tensor) -> torch.Tensor:
        """Row index of each timestamp (round half to even), checked or clamped.

        Shape:
            timestamps: (B, T) -> (B, T) long
        """
        index = torch.round(timestamps.float()).long()
        if self.out_of_range == "clamp":
            return index.clamp(0, self.max_seconds - 1)
        bad = (index < 0) | (index >= self.max_seconds)
        if bool(bad.any()):
            worst = float(timestamps[bad].flatten()[0])
            raise TimeRangeError(
                f"frame time {worst:.1f} s is outside the absolute-time table [0, {self.max_seconds}) s; "
                "raise max_seconds or set out_of_range: clamp")
        return index

    def forward(self, tokens: torch.Tensor, timestamps: torch.Tensor,
                frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Add each frame's second row to all of its tokens (padded frames get nothing).

        Shape:
            tokens: (B, T, L, Dv); timestamps: (B, T); frame_mask: (B, T) -> (B, T, L, Dv)
        """
        rows = self.weight[self.seconds_index(timestamps)]  # (B, T, Dv)
        if frame_mask is not None:
            rows = rows * frame_mask.unsqueeze(-1).to(rows.dtype)
        return tokens + rows.unsqueeze(2).to(tokens.dtype)


@hookimpl
def vtg_register_time_embeddings(register):
    register("abs_second_table", AbsSecondTable, config=AbsSecondTableConfig,
             description="VTG-LLM absolute-second embedding table added to every token of a frame")
