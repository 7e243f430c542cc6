"""VTG-LLM's absolute-time embedding: one learned row per whole second, added to a frame's tokens.

The row of frame i is ``table[round(t_i)]`` (round half to even, as Python's ``round``), broadcast
over the frame's L tokens. Rows start at zero (the paper), random (its ablation) or at the
sinusoidal position code of the second (ours: neighbouring seconds start close, so a small model
can read time before the table has learned anything). With zero rows, seconds never seen in
training get no gradient, so with AdamW they stay exactly zero.

At test time, rows never trained (all zero) can be filled from their trained neighbours
(``interpolation``): ``linear`` mixes the nearest trained rows below and above with weights
``(right - s) / (right - left)`` and ``(s - left) / (right - left)`` and copies the nearest trained
row beyond either end; ``legacy_swapped`` reproduces the original's code exactly, bugs included
(the two weights swapped; rows past the last trained second mixed with the table's last row, which
is filled first and then read by every other trailing row), only to replicate its numbers. Filling
works on a copy used in eval mode; the parameter is untouched.

With ``max_frames > 0`` the frame-position table of ``frame_index`` is added too, as the paper's
model: ``z'[i, j] = z[i, j] + W_s[i] + W_t[round(t_i)]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from vtgcore.errors import TimeRangeError
from vtgcore.interfaces import TimeEmbedding
from vtgcore.hookspecs import hookimpl
from vtgcore_plugins.time_embeddings.frame_index import FrameIndexTable

INITS = ("zeros", "random", "sinusoidal")
INTERPOLATIONS = ("none", "linear", "legacy_swapped")


def fill_untrained_rows(table: torch.Tensor, mode: str = "linear") -> torch.Tensor:
    """A copy of ``table`` whose all-zero ("untrained") rows are filled from trained rows.

    Args:
        table: the absolute-second table.
        mode: ``linear`` (correct interpolation, nearest trained row beyond the ends), ``legacy_swapped``
            (the original VTG-LLM's code, see :func:`legacy_swapped_fill`) or ``none`` (a plain copy).

    Returns:
        the filled copy (trained rows unchanged). A table with no trained row is returned as is.

    Shape:
        table: (S, D) -> (S, D)
    """
    if mode not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {mode!r}")
    out = table.detach().clone()
    trained = (table != 0).any(dim=1)
    if mode == "none" or not bool(trained.any()) or bool(trained.all()):
        return out
    if mode == "legacy_swapped":
        return legacy_swapped_fill(out, trained)
    rows = torch.arange(table.shape[0], device=table.device)
    index = torch.where(trained, rows, torch.full_like(rows, -1))
    # nearest trained row at or below / at or above every row (-1 / S when none)
    left = torch.cummax(index, dim=0).values
    above = torch.where(trained, rows, torch.full_like(rows, table.shape[0]))
    right = torch.flip(torch.cummin(torch.flip(above, [0]), dim=0).values, [0])
    todo = ~trained
    s = rows.to(table.dtype)
    lo = torch.where(left < 0, right, left)  # before the first trained row: copy it
    hi = torch.where(right >= table.shape[0], left, right)  # after the last trained row: copy it
    span = (hi - lo).to(table.dtype)
    w_hi = torch.where(span > 0, (s - lo.to(table.dtype)) / span.clamp(min=1), torch.zeros_like(s))
    filled = table[lo] * (1 - w_hi).unsqueeze(1) + table[hi] * w_hi.unsqueeze(1)
    out[todo] = filled[todo].to(out.dtype)
    return out


def legacy_swapped_order(trained: Sequence[bool]) -> list[tuple[int, int, int]]:
    """The original's ``(row, left, right)`` triples, in the order it fills the rows.

    Untrained rows between two trained ones get those two; untrained rows before the first trained
    row get ``left = 0`` (the original's initial left margin, even when row 0 is untrained); rows
    after the last trained one get ``right = -1`` (Python's last row). Within each run of
    untrained rows the highest row comes first (the original pops them from a stack); runs follow
    in table order, the trailing run last.

    Args:
        trained: per row, whether it is trained (not all zero).

    Returns:
        ``(row, left, right)`` for every untrained row, in fill order.
    """
    order: list[tuple[int, int, int]] = []
    run: list[int] = []  # untrained rows since the last trained one
    left = 0
    for row, is_trained in enumerate(trained):
        if not is_trained:
            run.append(row)
            continue
        order.extend((r, left, row) for r in reversed(run))
        run, left = [], row
    order.extend((r, left, -1) for r in reversed(run))
    return order


def legacy_swapped_fill(out: torch.Tensor, trained: torch.Tensor) -> torch.Tensor:
    """Fill ``out``'s untrained rows in place exactly as the original VTG-LLM's test-time
    interpolation does (``vtgllm.py`` ``from_config``; ``vtgllm-original.md`` section 1.6).

    Row ``s`` becomes ``out[left] * (s - left) / (right - left) + out[right] * (right - s) / (right - left)``
    (the two weights swapped: a row next to ``left`` gets mostly ``right``), evaluated in that
    operation order in the table's dtype, one row at a time in the order of
    :func:`legacy_swapped_order`, each row reading the table as filled so far. So a row past the
    last trained second (``right = -1``) reads the table's last row, which is filled first (from
    itself while still zero: ``(S - 1 - left) / (-1 - left)`` times the last trained row) and read
    by every later one: with the last trained second at 500 of 8192 rows, row 501 is about
    -15.4 times row 500. Leading rows read row 0 before it is filled (it comes last).

    Args:
        out: the table to fill (a copy: it is modified).
        trained: per row, whether it is trained.

    Returns:
        ``out``.

    Shape:
        out: (S, D); trained: (S,) -> (S, D)
    """
    order = legacy_swapped_order(trained.tolist())
    work = out if out.device.type == "cpu" else out.cpu()  # thousands of one-row ops: cheaper on the CPU
    for row, left, right in order:
        work[row] = work[left] * (row - left) / (right - left) + work[right] * (right - row) / (right - left)
    if work is not out:
        out.copy_(work)
    return out


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
        interpolation: in eval mode, fill untrained (all-zero) rows: ``none``, ``linear`` or
            ``legacy_swapped`` (the original's buggy code, for replication only).
    """

    max_seconds: int = 8192
    init: str = "zeros"
    out_of_range: str = "error"
    max_frames: int = 0
    interpolation: str = "none"


class AbsSecondTable(TimeEmbedding):
    """See the module docstring."""

    def __init__(self, dim: int, max_seconds: int = 8192, init: str = "zeros", out_of_range: str = "error",
                 max_frames: int = 0, interpolation: str = "none") -> None:
        super().__init__()
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
        self.interpolation = interpolation
        self._filled: Optional[tuple[tuple[int, int], torch.Tensor]] = None
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

    def table(self) -> torch.Tensor:
        """The table used by the forward: the parameter in training, the filled copy in eval mode
        when ``interpolation`` is set (recomputed whenever the parameter changes).

        Shape:
            -> (max_seconds, Dv)
        """
        if self.training or self.interpolation == "none":
            return self.weight
        key = (self.weight.data_ptr(), self.weight._version)
        if self._filled is None or self._filled[0] != key:
            self._filled = (key, fill_untrained_rows(self.weight, self.interpolation))
        return self._filled[1]

    def forward(self, tokens: torch.Tensor, timestamps: torch.Tensor,
                frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Add each frame's second row (and frame-position row) to all of its tokens (padded frames get nothing).

        Shape:
            tokens: (B, T, L, Dv); timestamps: (B, T); frame_mask: (B, T) -> (B, T, L, Dv)
        """
        rows = self.table()[self.seconds_index(timestamps)]  # (B, T, Dv)
        if frame_mask is not None:
            rows = rows * frame_mask.unsqueeze(-1).to(rows.dtype)
        if self.frame_index is not None:
            rows = rows + self.frame_index.rows(tokens.shape[1], frame_mask)
        return tokens + rows.unsqueeze(2).to(tokens.dtype)


@hookimpl
def vtg_register_time_embeddings(register):
    register("abs_second_table", AbsSecondTable, config=AbsSecondTableConfig,
             description="VTG-LLM absolute-second embedding table added to every token of a frame")
