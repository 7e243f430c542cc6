"""``strided_pool``: temporal pooling with a stride, then spatial pooling per group.

Every ``stride`` consecutive frames are averaged into one (padded frames left out), and each
averaged frame's L tokens are pooled to P tokens, so K = ceil(T / stride) * min(P, L), known before
the forward. With ``stride: 1`` this is vtgcore's ``mean_pool``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from vtgcore.interfaces import TokenCompressor
from vtgcore.types import VisualTokens


@dataclass
class StridedPoolConfig:
    """Params of ``strided_pool`` (what a recipe writes under ``model.compressor.params``).

    Attributes:
        stride: S, consecutive frames averaged into one group.
        tokens_per_frame: P, tokens kept per group (adaptive average pooling over the L tokens).
    """

    stride: int = 2
    tokens_per_frame: int = 4


class StridedPoolCompressor(TokenCompressor):
    """See the module docstring. Has no parameters.

    Args:
        dim: Dv, the encoder width (wiring supplied by vtgcore, not written in recipes).
        stride: see :class:`StridedPoolConfig`.
        tokens_per_frame: see :class:`StridedPoolConfig`.
    """

    def __init__(self, dim: int, stride: int = 2, tokens_per_frame: int = 4) -> None:
        super().__init__()
        if stride < 1 or tokens_per_frame < 1:
            raise ValueError(f"stride and tokens_per_frame must be >= 1, got {stride} and {tokens_per_frame}")
        self.dim = dim
        self.stride = stride
        self.pool = tokens_per_frame

    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        return math.ceil(num_frames / self.stride) * min(self.pool, tokens_per_frame)

    def forward(self, tokens: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                timestamps: Optional[torch.Tensor] = None) -> VisualTokens:
        """Average groups of ``stride`` real frames, then pool each group to P tokens.

        Args:
            tokens: per-frame tokens (after the time embedding).
            frame_mask: True for real frames, False for padding; None means all real.
            timestamps: seconds of every frame (unused).

        Returns:
            Tokens in time order. A group without a real frame gives zeros with mask False.
            ``frame_index`` is each token's frame with ``stride: 1``, else -1 (tokens mix frames).

        Shape:
            tokens: (B, T, L, Dv); frame_mask: (B, T) -> tokens (B, K, Dv), mask (B, K),
            frame_index (B, K), with G = ceil(T / stride), P = min(tokens_per_frame, L), K = G * P
        """
        b, t, l, d = tokens.shape
        s, p = self.stride, min(self.pool, l)
        g = math.ceil(t / s)
        real = torch.ones(b, t, dtype=torch.bool, device=tokens.device) if frame_mask is None else frame_mask.bool()
        weight = F.pad(real.to(tokens.dtype), (0, g * s - t)).view(b, g, s)  # pad T up to G*S with empty frames
        x = F.pad(tokens, (0, 0, 0, 0, 0, g * s - t)).view(b, g, s, l, d)
        count = weight.sum(dim=2)  # real frames per group (B, G)
        summed = (x * weight[..., None, None]).sum(dim=2)  # padded frames weigh 0, whatever they hold
        mean = summed / count.clamp(min=1)[..., None, None]  # (B, G, L, Dv)
        pooled = F.adaptive_avg_pool1d(mean.reshape(b * g, l, d).transpose(1, 2), p)  # (B*G, Dv, P)
        out = pooled.transpose(1, 2).reshape(b, g * p, d)
        mask = (count > 0).repeat_interleave(p, dim=1)
        if s == 1:
            index = torch.arange(g, device=tokens.device).repeat_interleave(p).expand(b, g * p)
        else:
            index = torch.full((b, g * p), -1, dtype=torch.long, device=tokens.device)
        return VisualTokens(out, mask, index)
