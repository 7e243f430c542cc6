"""``none``: no time embedding (the paper's "no absolute time" ablation without frame index)."""

from __future__ import annotations

from typing import Optional

import torch

from vtgcore.interfaces import TimeEmbedding
from vtgcore.hookspecs import hookimpl


class NoTimeEmbedding(TimeEmbedding):
    """Identity; built with ``dim`` for a uniform factory signature."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, tokens: torch.Tensor, timestamps: torch.Tensor,
                frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Return ``tokens`` unchanged.

        Shape:
            tokens: (B, T, L, Dv); timestamps: (B, T) -> (B, T, L, Dv)
        """
        return tokens


@hookimpl
def vtg_register_time_embeddings(register):
    register("none", NoTimeEmbedding, description="no time information added to visual tokens")
