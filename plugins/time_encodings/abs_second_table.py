"""VTG-LLM's absolute-time embedding: one learned row per whole second, added to a frame's tokens.

The row of frame i is ``table[round(t_i)]`` (round half to even, as Python's ``round``), broadcast
over the frame's L tokens. Rows start at zero (the paper), random (its ablation) or at the
sinusoidal position code of the second (ours: neighbouring seconds start close, so a small model
can read time before the table has learned anything). With zero rows, seconds never seen in
training get no gradient, so with AdamW they stay exactly zero.

With ``max_frames > 0`` the frame-position table of ``frame_index`` is added too, as the paper's
model: ``z'[i, j] = z[i, j] + W_s[i] + W_t[round(t_i)]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from vtgcore.errors import TimeRangeError
from vtgcore.interfaces import TimeEmbedding
from vtgcore.plugins import hookimpl
from vtgcore_plugins.time_encodings.frame_index import FrameIndexTable

INITS = ("zeros", "random", "sinusoidal")


def sinusoidal_table(rows: int, dim: int) -> torch.Tensor:
    """Transformer position codes: ``[s, 2i] = sin(s / w_i)``, ``[s, 2i+1] = cos(s / w_i)`` with
    ``w_i = rows ** (2i / dim)`` (the last column of an odd ``dim`` is a sine).

    Shape:
        -> (rows, dim)
    """
    position = torch.arange(rows, dtype=torch.float64).unsqueeze(1)
    wavelength = float(rows) ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angle = position / wavelength  # (rows, ceil(dim / 2))
    table = torch.zeros(rows, dim, dtype=torch.float64)
    table[:, 0::2] = angle.sin()
    table[:, 1::2] = angle.cos()[:, : dim // 2]
    return table.float()


@dataclass
class AbsSecondTableConfig:
    """Params of ``abs_second_table``.

    Attributes:
        max_seconds: rows of the table; times must be below it (8192 in the paper).
        init: ``zeros`` (the paper), ``random`` (normal, std 1: the paper's ablation) or
            ``sinusoidal`` (row s = the transformer position code of s, wavelengths from 2*pi to
            ``2*pi*max_seconds``).
        out_of_range: ``error`` or ``clamp`` for a frame at or beyond ``max_seconds``.
        max_frames: rows of the added frame-position table (96 in the paper); 0 adds none.
    """

    max_seconds: int = 8192
    init: str = "zeros"
    out_of_range: str = "error"
    max_frames: int = 0


class AbsSecondTable(TimeEmbedding):
    """See the module docstring."""

    def __init__(self, dim: int, max_seconds: int = 8192, init: str = "zeros", out_of_range: str = "error",
                 max_frames: int = 0) -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        if out_of_range not in ("error", "clamp"):
            raise ValueError(f"out_of_range must be 'error' or 'clamp', got {out_of_range!r}")
        if max_seconds < 1:
            raise ValueError(f"max_seconds must be >= 1, got {max_seconds}")
        self.max_seconds = max_seconds
        self.out_of_range = out_of_range
        if init == "zeros":
            weight = torch.zeros(max_seconds, dim)
        elif init == "random":
            weight = torch.randn(max_seconds, dim)
        else:
            weight = sinusoidal_table(max_seconds, dim)
        self.weight = nn.Parameter(weight)
        if max_frames < 0:
            raise ValueError(f"max_frames must be >= 0, got {max_frames}")
        self.frame_index = FrameIndexTable(dim, max_frames) if max_frames else None

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
        """Add each frame's second row (and frame-position row) to all of its tokens (padded frames get nothing).

        Shape:
            tokens: (B, T, L, Dv); timestamps: (B, T); frame_mask: (B, T) -> (B, T, L, Dv)
        """
        rows = self.weight[self.seconds_index(timestamps)]  # (B, T, Dv)
        if frame_mask is not None:
            rows = rows * frame_mask.unsqueeze(-1).to(rows.dtype)
        if self.frame_index is not None:
            rows = rows + self.frame_index.rows(tokens.shape[1], frame_mask)
        return tokens + rows.unsqueeze(2).to(tokens.dtype)


@hookimpl
def vtg_register_time_embeddings(register):
    register("abs_second_table", AbsSecondTable, config=AbsSecondTableConfig,
             description="VTG-LLM absolute-second embedding table added to every token of a frame")
