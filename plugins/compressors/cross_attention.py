"""``cross_attention``: K learned queries attend over all video tokens (VTG-LLM's ``cross`` sampler).

``out = MHA(Q, X, X)`` with ``Q`` in R^{K x Dv} (init randn) and ``X`` the N = T*L tokens, using
``torch.nn.MultiheadAttention(Dv, num_heads, batch_first=True)`` (input and output projections
included). Tokens of padded frames are excluded through ``key_padding_mask``.

Fixed bug of the original: it passed ``Q`` with a batch axis of 1 without expanding it, so only
B = 1 worked. Here ``Q`` is expanded over the batch, and every sample is computed exactly as if it
were run alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from vtgcore.ranges import in_range
from vtgcore.interfaces import TokenCompressor
from vtgcore.hookspecs import hookimpl
from vtgcore.types import VisualTokens


@dataclass
class CrossAttentionConfig:
    """Params of ``cross_attention``.

    Attributes:
        num_queries: K, the number of learned queries and output tokens (256 in the paper).
        num_heads: attention heads; must divide the visual width Dv (8 in the paper).
    """

    num_queries: int = in_range(256, low=1, high=1_000_000)
    num_heads: int = in_range(8, low=1)


class CrossAttentionCompressor(TokenCompressor):
    """See the module docstring.

    Attributes:
        queries: (K, Dv) learned queries, initialised from a standard normal.
        attn: the multi-head attention (batch first).
    """

    def __init__(self, dim: int, num_queries: int = 256, num_heads: int = 8) -> None:
        super().__init__()
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"cross_attention: num_heads={num_heads} must divide the visual width dim={dim}")
        self.num_queries = num_queries
        self.queries = nn.Parameter(torch.randn(num_queries, dim))
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)

    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        return self.num_queries

    def forward(self, tokens: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                timestamps: Optional[torch.Tensor] = None) -> VisualTokens:
        """Attend from the K queries (expanded over the batch) to the tokens of real frames.

        A video with no real frame gives zeros and mask False.

        Shape:
            tokens: (B, T, L, Dv); frame_mask: (B, T) -> tokens (B, K, Dv), mask (B, K)
        """
        b, t, l, d = tokens.shape
        x = tokens.reshape(b, t * l, d)
        q = self.queries.to(x.dtype).unsqueeze(0).expand(b, -1, -1)
        if frame_mask is None:
            has_frames = torch.ones(b, dtype=torch.bool, device=x.device)
            padding = None
        else:
            frame_mask = frame_mask.bool()
            has_frames = frame_mask.any(1)
            # True = ignore. A video without real frames would give a fully masked row (NaN): let it
            # attend to everything and zero its output below.
            padding = ~(frame_mask | ~has_frames.unsqueeze(1)).repeat_interleave(l, dim=1)
        out, _ = self.attn(q, x, x, key_padding_mask=padding, need_weights=False)
        out = out.masked_fill(~has_frames.view(b, 1, 1), 0.0)
        mask = has_frames.unsqueeze(1).expand(b, self.num_queries)
        index = torch.full((b, self.num_queries), -1, dtype=torch.long, device=x.device)
        return VisualTokens(out, mask, index)


@hookimpl
def vtg_register_compressors(register):
    register("cross_attention", CrossAttentionCompressor, config=CrossAttentionConfig,
             description="K learned queries, multi-head cross-attention over all tokens (VTG-LLM 'cross')")
