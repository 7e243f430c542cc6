"""``video_qformer``: Video-LLaMA's video Q-Former over sliding windows of frames.

A small BERT-style Q-Former (transformers' ``Blip2QFormerModel``, cross-attention in every layer,
no text branch, hidden and encoder width Dv) runs once per window of frames:

1. a learned frame-position embedding (one row per frame index, up to ``max_frames``) is added to
   every token of its frame;
2. windows start at frames ``0, stride, 2*stride, ...`` and span ``window_size`` frames, so there
   are ``W = ceil(T / stride)`` windows (a last partial window is included; ``window_size >
   stride`` overlaps, ``window_size < stride`` skips frames, as the original's loop);
3. the window's ``window_size * L`` tokens are the ``encoder_hidden_states`` and the
   ``num_query_tokens`` learned queries (init normal, std 0.02) produce that many outputs.

Output: the windows' outputs concatenated in window order, ``K = ceil(T / stride) *
num_query_tokens``. Tokens of padded frames (and of frames past the end in the last window) are
masked with ``encoder_attention_mask``; a window without any real frame gives zeros with mask False.
All windows of the batch run as one Q-Former batch. The original (VTG-LLM's
``use_video_qformer``, never used by a VTG-LLM config) looped over windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from vtgcore.ranges import in_range
from vtgcore.interfaces import TokenCompressor
from vtgcore.hookspecs import hookimpl
from vtgcore.types import VisualTokens


@dataclass
class VideoQFormerConfig:
    """Params of ``video_qformer``.

    Attributes:
        num_query_tokens: learned queries, i.e. output tokens per window (32 in Video-LLaMA).
        num_layers: Q-Former layers (2 in Video-LLaMA).
        num_heads: attention heads; must divide the visual width Dv (12 in BERT-base).
        window_size: frames per window (32 in VTG-LLM's configs).
        stride: frames between window starts (32 in VTG-LLM's configs).
        max_frames: rows of the frame-position table; more frames is an error.
        dropout: hidden and attention dropout of the Q-Former (0.1 as BERT-base).
    """

    num_query_tokens: int = in_range(32, low=1, high=1_000_000)
    num_layers: int = 2
    num_heads: int = 12
    window_size: int = 32
    stride: int = 32
    max_frames: int = 96
    dropout: float = 0.1


class VideoQFormerCompressor(TokenCompressor):
    """See the module docstring.

    Attributes:
        query_tokens: (1, Q, Dv) learned queries.
        frame_position: (max_frames, Dv) frame-position embedding.
        qformer: the ``Blip2QFormerModel``.
    """

    def __init__(self, dim: int, num_query_tokens: int = 32, num_layers: int = 2, num_heads: int = 12,
                 window_size: int = 32, stride: int = 32, max_frames: int = 96, dropout: float = 0.1) -> None:
        super().__init__()
        from transformers import Blip2QFormerConfig, Blip2QFormerModel

        for name, value in (("num_query_tokens", num_query_tokens), ("num_layers", num_layers),
                            ("window_size", window_size), ("stride", stride), ("max_frames", max_frames)):
            if value < 1:
                raise ValueError(f"video_qformer: {name} must be >= 1, got {value}")
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"video_qformer: num_heads={num_heads} must divide the visual width dim={dim}")
        self.num_query_tokens = num_query_tokens
        self.window_size = window_size
        self.stride = stride
        self.max_frames = max_frames
        config = Blip2QFormerConfig(
            hidden_size=dim, num_hidden_layers=num_layers, num_attention_heads=num_heads,
            intermediate_size=4 * dim, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
            cross_attention_frequency=1, encoder_hidden_size=dim, use_qformer_text_input=False,
        )
        self.qformer = Blip2QFormerModel(config)
        self.query_tokens = nn.Parameter(torch.randn(1, num_query_tokens, dim) * config.initializer_range)
        self.frame_position = nn.Embedding(max_frames, dim)

    def num_windows(self, num_frames: int) -> int:
        """``ceil(T / stride)`` windows (at least one)."""
        return max(1, math.ceil(num_frames / self.stride))

    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        return self.num_windows(num_frames) * self.num_query_tokens

    def forward(self, tokens: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                timestamps: Optional[torch.Tensor] = None) -> VisualTokens:
        """Run the Q-Former on every window of frames.

        Raises:
            ValueError: more frames than ``max_frames``.

        Shape:
            tokens: (B, T, L, Dv); frame_mask: (B, T) -> tokens (B, W*Q, Dv), mask (B, W*Q),
            frame_index (B, W*Q) all -1, with W = ceil(T / stride) and Q = num_query_tokens
        """
        b, t, l, d = tokens.shape
        if t > self.max_frames:
            raise ValueError(f"video_qformer: {t} frames but max_frames={self.max_frames}")
        if frame_mask is None:
            frame_mask = torch.ones(b, t, dtype=torch.bool, device=tokens.device)
        frame_mask = frame_mask.bool()
        w, q = self.num_windows(t), self.num_query_tokens
        pos = self.frame_position(torch.arange(t, device=tokens.device)).to(tokens.dtype)  # (T, Dv)
        x = tokens + pos.view(1, t, 1, d)
        span = (w - 1) * self.stride + self.window_size
        if span > t:
            x = F.pad(x, (0, 0, 0, 0, 0, span - t))
            frame_mask = F.pad(frame_mask, (0, span - t), value=False)
        elif span < t:  # window_size < stride: frames after the last window are never read
            x, frame_mask = x[:, :span], frame_mask[:, :span]
        # (B, W, L, Dv, window) -> (B, W, window, L, Dv) -> (B*W, window*L, Dv)
        windows = x.unfold(1, self.window_size, self.stride).permute(0, 1, 4, 2, 3)
        windows = windows.reshape(b * w, self.window_size * l, d)
        enc_mask = frame_mask.unfold(1, self.window_size, self.stride)  # (B, W, window)
        enc_mask = enc_mask.repeat_interleave(l, dim=2).reshape(b * w, self.window_size * l)
        has_frames = enc_mask.any(dim=1)  # (B*W,)
        # a window without real frames would be a fully masked row: let it see everything, zero it below
        enc_mask = enc_mask | ~has_frames.unsqueeze(1)
        queries = self.query_tokens.expand(b * w, q, d)
        out = self.qformer(query_embeds=queries, encoder_hidden_states=windows,
                           encoder_attention_mask=enc_mask.long()).last_hidden_state  # (B*W, Q, Dv)
        out = out.to(tokens.dtype).masked_fill(~has_frames.view(b * w, 1, 1), 0.0).reshape(b, w * q, d)
        mask = has_frames.view(b, w).repeat_interleave(q, dim=1)
        index = torch.full((b, w * q), -1, dtype=torch.long, device=tokens.device)
        return VisualTokens(out, mask, index)


@hookimpl
def vtg_register_compressors(register):
    register("video_qformer", VideoQFormerCompressor, config=VideoQFormerConfig,
             description="Video-LLaMA video Q-Former over sliding windows (K = ceil(T/stride) * queries)")
