"""``identity``: no compression; every token of every frame reaches the LLM (K = T * L).

VTG-LLM's ``none`` sampler. Only practical with few tokens per frame (e.g. after a video
Q-Former) or short videos: at T = 96, L = 32 it hands 3072 tokens to the LLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from vtgcore.interfaces import TokenCompressor
from vtgcore.hookspecs import hookimpl
from vtgcore.types import VisualTokens
from vtgcore_plugins.compressors._selection import real_tokens, token_frames


@dataclass
class IdentityConfig:
    """Params of ``identity``: none."""


class IdentityCompressor(TokenCompressor):
    """See the module docstring. Has no parameters."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        return num_frames * tokens_per_frame

    def frame_groups(self, num_frames: int, tokens_per_frame: int) -> list[tuple[int, int]]:
        """Frame t's L tokens, in frame order."""
        return [(t, tokens_per_frame) for t in range(num_frames)]

    def forward(self, tokens: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                timestamps: Optional[torch.Tensor] = None) -> VisualTokens:
        """Flatten frames and tokens in frame-major order (token ``t * L + l`` is frame t, token l).

        Padded frames' tokens keep their slots but are zeroed, with mask False, so a video with no
        real frame gives zeros.

        Shape:
            tokens: (B, T, L, Dv); frame_mask: (B, T) -> tokens (B, T*L, Dv), mask (B, T*L),
            frame_index (B, T*L)
        """
        b, t, l, d = tokens.shape
        mask = real_tokens(frame_mask, b, t, l, tokens.device)
        out = tokens.reshape(b, t * l, d).masked_fill(~mask.unsqueeze(-1), 0.0)
        index = token_frames(b, t, l, tokens.device)
        return VisualTokens(out, mask, index)


@hookimpl
def vtg_register_compressors(register):
    register("identity", IdentityCompressor, config=IdentityConfig,
             description="no compression: all T*L tokens in frame order (VTG-LLM 'none')")
