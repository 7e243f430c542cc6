"""VTG-LLM's slot compressor: K learned slots, each a softmax-weighted mix of all video tokens.

``A = softmax_n(X S)`` over the N = T*L tokens, output ``A^T X``: the "dispatch" half of
Soft-MoE, without scaling or output projection, exactly as the paper.
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
class SlotConfig:
    """Params of ``slot``.

    Attributes:
        num_slots: K, the number of output tokens (256 in the paper).
        init_std: std of the normal initialisation of the slot matrix (1.0 in the paper).
    """

    num_slots: int = in_range(256, low=1, high=1_000_000)
    init_std: float = in_range(1.0, low=0.0, low_open=True)


class SlotCompressor(TokenCompressor):
    """See the module docstring."""

    def __init__(self, dim: int, num_slots: int = 256, init_std: float = 1.0) -> None:
        super().__init__()
        if num_slots < 1:
            raise ValueError(f"num_slots must be >= 1, got {num_slots}")
        self.num_slots = num_slots
        self.slots = nn.Parameter(torch.randn(dim, num_slots) * init_std)

    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        return self.num_slots

    def forward(self, tokens: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                timestamps: Optional[torch.Tensor] = None) -> VisualTokens:
        """Mix all tokens of real frames into K slots.

        Shape:
            tokens: (B, T, L, Dv); frame_mask: (B, T) -> tokens (B, K, Dv), mask (B, K)
        """
        b, t, l, d = tokens.shape
        x = tokens.reshape(b, t * l, d)
        logits = x @ self.slots.to(x.dtype)  # (B, N, K)
        if frame_mask is None:
            has_frames = torch.ones(b, dtype=torch.bool, device=x.device)
        else:
            has_frames = frame_mask.bool().any(1)
            # padded frames' tokens get no weight; a video without real frames keeps all of its
            # (finite) logits and is zeroed after the mixing, on the small (B, K, Dv) output, so no
            # (B, N, K) pass is spent on NaNs (in place: the matmul's backward does not need it)
            ignore = ~(frame_mask.bool() | ~has_frames.unsqueeze(1)).repeat_interleave(l, dim=1)  # (B, N)
            logits.masked_fill_(ignore.unsqueeze(-1), float("-inf"))
        weights = logits.softmax(dim=1)  # over tokens
        out = weights.transpose(1, 2) @ x  # (B, K, Dv)
        if frame_mask is not None:
            out = out.masked_fill(~has_frames.view(b, 1, 1), 0.0)
        mask = has_frames.unsqueeze(1).expand(b, self.num_slots)
        index = torch.full((b, self.num_slots), -1, dtype=torch.long, device=x.device)
        return VisualTokens(out, mask, index)


@hookimpl
def vtg_register_compressors(register):
    register("slot", SlotCompressor, config=SlotConfig,
             description="VTG-LLM slot compression: K learned slots, softmax over all tokens")
