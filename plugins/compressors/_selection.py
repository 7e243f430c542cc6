"""Shared pieces of the compressors that keep, pool or select tokens per frame (identity, mean_pool,
diverse, entropy); not a plugin."""

from __future__ import annotations

from typing import Optional

import torch

from vtgcore.types import VisualTokens


def real_tokens(frame_mask: Optional[torch.Tensor], b: int, t: int, l: int, device: torch.device) -> torch.Tensor:
    """True for every token of a real frame (all frames real without a mask).

    Shape:
        frame_mask: (B, T) -> (B, T*L) bool
    """
    if frame_mask is None:
        return torch.ones(b, t * l, dtype=torch.bool, device=device)
    return frame_mask.bool().repeat_interleave(l, dim=1)


def token_frames(b: int, t: int, l: int, device: torch.device) -> torch.Tensor:
    """The frame of every token when frames are flattened in order (token ``i * L + j`` is frame i).

    Shape:
        -> (B, T*L) long
    """
    return torch.arange(t, device=device).repeat_interleave(l).expand(b, t * l)


def temporal_order(index: torch.Tensor, valid: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort selected token indices by position, empty slots last.

    Shape:
        index, valid: (B, K) -> (B, K), (B, K)
    """
    key = torch.where(valid, index, n + torch.arange(index.shape[1], device=index.device))
    perm = key.argsort(dim=1)
    return index.gather(1, perm), valid.gather(1, perm)


def gather_tokens(x: torch.Tensor, index: torch.Tensor, valid: torch.Tensor, l: int) -> VisualTokens:
    """The selected tokens (zeros in empty slots) with their frame (-1 when empty).

    Shape:
        x: (B, N, Dv); index, valid: (B, K) -> tokens (B, K, Dv), mask (B, K), frame_index (B, K)
    """
    b, k = index.shape
    out = x.gather(1, index.unsqueeze(-1).expand(b, k, x.shape[-1])).masked_fill(~valid.unsqueeze(-1), 0.0)
    return VisualTokens(out, valid, torch.where(valid, index // l, torch.full_like(index, -1)))
