"""``frame_index``: VTG-LLM's frame-position ("sequence") embedding, one learned row per frame slot.

Frame i of the sampled clip (its order, not its time) gets row ``table[i]`` added to all of its L
tokens. Rows start at zero as the original (whose Video-LLaMA checkpoint then overwrites them); a
checkpoint with fewer rows is widened with :meth:`FrameIndexTable.resize_rows` (nearest, as the
original's 32 -> 96). Alone it is the paper's "no absolute time" ablation; ``abs_second_table`` with
``max_frames > 0`` adds it to the absolute-second rows, as the paper's model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from vtgcore.errors import ShapeError
from vtgcore.interfaces import TimeEmbedding
from vtgcore.hookspecs import hookimpl


@dataclass
class FrameIndexConfig:
    """Params of ``frame_index``.

    Attributes:
        max_frames: rows of the table (96 in the paper); clips with more frames are an error.
    """

    max_frames: int = 96


def nearest_rows(table: torch.Tensor, rows: int) -> torch.Tensor:
    """Resize a ``(R, D)`` table to ``(rows, D)`` by nearest-neighbour, exactly as the original's
    ``interpolate_frame_pos_embed`` (``F.interpolate(mode="nearest")`` over the row axis).

    Row j takes old row ``min(floor(j * float32(R / rows)), R - 1)``: PyTorch's float32 scale, not the
    exact ``floor(j * R / rows)``, which picks another row for some sizes (one row of 32 -> 82 and of
    8 -> 94); 32 -> 96 repeats each row 3 times either way. The row indices come from
    ``F.interpolate`` itself (on CPU, float32 indices: exact below 2 ** 24 rows), so every dtype
    and device gives the original's rows, bit for bit.

    Shape:
        table: (R, D) -> (rows, D)
    """
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    source = torch.arange(table.shape[0], dtype=torch.float32).view(1, 1, -1)
    index = torch.nn.functional.interpolate(source, size=rows, mode="nearest").view(-1).long()
    return table[index.to(table.device)]


class FrameIndexTable(TimeEmbedding):
    """See the module docstring."""

    def __init__(self, dim: int, max_frames: int = 96) -> None:
        super().__init__()
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        self.max_frames = max_frames
        self.weight = nn.Parameter(torch.zeros(max_frames, dim))

    def rows(self, num_frames: int, frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The row of each frame position, zero for padded frames.

        Shape:
            frame_mask: (B, T) -> (B or 1, T, Dv)
        """
        if num_frames > self.max_frames:
            raise ShapeError(f"clip has {num_frames} frames but the frame-index table has {self.max_frames} rows; "
                             "raise max_frames or sample fewer frames")
        rows = self.weight[:num_frames].unsqueeze(0)
        if frame_mask is not None:
            rows = rows * frame_mask.unsqueeze(-1).to(rows.dtype)
        return rows

    def forward(self, tokens: torch.Tensor, timestamps: torch.Tensor,
                frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Add frame i's row to all of its tokens.

        Shape:
            tokens: (B, T, L, Dv); timestamps: (B, T) (unused); frame_mask: (B, T) -> (B, T, L, Dv)
        """
        return tokens + self.rows(tokens.shape[1], frame_mask).unsqueeze(2).to(tokens.dtype)

    @torch.no_grad()
    def resize_rows(self, rows: int) -> None:
        """Widen (or shrink) the table to ``rows`` rows by nearest-neighbour."""
        self.weight = nn.Parameter(nearest_rows(self.weight.data, rows))
        self.max_frames = rows


@hookimpl
def vtg_register_time_embeddings(register):
    register("frame_index", FrameIndexTable, config=FrameIndexConfig,
             description="VTG-LLM frame-position embedding (by frame order), the no-absolute-time ablation")
