"""``mean_pool``: average each frame's L tokens down to P tokens, K = T * P."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from vtgcore.ranges import in_range
from vtgcore.interfaces import TokenCompressor
from vtgcore.hookspecs import hookimpl
from vtgcore.types import VisualTokens
from vtgcore_plugins.compressors._selection import real_tokens, token_frames


@dataclass
class MeanPoolConfig:
    """Params of ``mean_pool``.

    Attributes:
        tokens_per_frame: P, tokens kept per frame (adaptive average pooling over the L tokens).
    """

    tokens_per_frame: int = in_range(1, low=1, high=1_000_000)


class MeanPoolCompressor(TokenCompressor):
    """See the module docstring. Has no parameters."""

    def __init__(self, dim: int, tokens_per_frame: int = 1) -> None:
        super().__init__()
        if tokens_per_frame < 1:
            raise ValueError(f"tokens_per_frame must be >= 1, got {tokens_per_frame}")
        self.dim = dim
        self.pool = tokens_per_frame

    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        return num_frames * min(self.pool, tokens_per_frame)

    def frame_groups(self, num_frames: int, tokens_per_frame: int) -> list[tuple[int, int]]:
        """Frame t's P pooled tokens, in frame order."""
        return [(t, min(self.pool, tokens_per_frame)) for t in range(num_frames)]

    def forward(self, tokens: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                timestamps: Optional[torch.Tensor] = None) -> VisualTokens:
        """Pool every frame separately; output tokens stay in frame order.

        Shape:
            tokens: (B, T, L, Dv); frame_mask: (B, T) -> tokens (B, T*P, Dv), mask (B, T*P)
        """
        b, t, l, d = tokens.shape
        p = min(self.pool, l)
        x = tokens.reshape(b * t, l, d).transpose(1, 2)  # (B*T, Dv, L)
        pooled = F.adaptive_avg_pool1d(x, p).transpose(1, 2).reshape(b, t * p, d)
        mask = real_tokens(frame_mask, b, t, p, tokens.device)
        index = token_frames(b, t, p, tokens.device)
        return VisualTokens(pooled, mask, index)


@hookimpl
def vtg_register_compressors(register):
    register("mean_pool", MeanPoolCompressor, config=MeanPoolConfig,
             description="average each frame's tokens to P tokens (K = T*P), no parameters")
