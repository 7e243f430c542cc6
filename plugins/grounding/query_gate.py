"""``query_gate``: query-conditioned video tokens with a frame grounding loss (``model.grounding``;
not in VTG-LLM).

VTG-LLM's LLaMA-2 and InstructBLIP Q-Former come pre-trained and aligned, so the LLM can tell which
video tokens a query names. A small LLM trained from scratch does not learn that binding from the
answers' times alone (docs/training.md: it learns *where* events happen, not *which* one is asked
for). This optional stage gives it the binding directly, as UniVTG's foreground loss and
InstructBLIP's instruction-aware visual tokens do:

* a gate mixes the prompt into every time-injected token,
  ``x + W_o(gelu(W_x x) * W_q LN(mean prompt embedding))`` (a bilinear match of token and query);
* a linear head scores every frame from its gated tokens, and on training items whose answer
  states one window (moment retrieval) a binary cross-entropy teaches it which sampled frames lie
  inside that window.

The compressor then sees tokens that carry "this frame matches the question", and keeps every
frame's own time (use a compressor that does not mix frames, e.g. ``identity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn
from torch.nn import functional as F

from vtgcore.errors import ShapeError
from vtgcore.hookspecs import hookimpl
from vtgcore.interfaces import GroundingStage, TimeCodec
from vtgcore.types import IGNORE_INDEX


@dataclass
class QueryGateConfig:
    """Params of ``query_gate``.

    Attributes:
        hidden: width of the gate's bilinear product (>= 1).
        loss_weight: weight of the frame grounding loss (>= 0; 0: the gate trains only through the
            LM loss).
    """

    hidden: int = 64
    loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.hidden < 1 or not self.loss_weight >= 0:
            raise ValueError(f"query_gate needs hidden >= 1 and loss_weight >= 0, got hidden={self.hidden}, "
                             f"loss_weight={self.loss_weight}")


class QueryGate(GroundingStage):
    """Bilinear gate of the video tokens by the mean prompt embedding, plus a frame scorer.

    Args:
        dim: Dv, the width of the video tokens.
        text_dim: D, the width of the LLM's token embeddings.
        hidden: width of the bilinear product.
        loss_weight: weight of the frame grounding loss.
    """

    needs_prompt = True

    def __init__(self, dim: int, text_dim: int, hidden: int = 64, loss_weight: float = 1.0) -> None:
        super().__init__()
        QueryGateConfig(hidden, loss_weight)  # the same checks as a recipe's params
        self.loss_weight = loss_weight
        self.text_norm = nn.LayerNorm(text_dim)
        self.text_proj = nn.Linear(text_dim, hidden)
        self.token_proj = nn.Linear(dim, hidden)
        self.out = nn.Linear(hidden, dim)
        self.frame_head = nn.Linear(dim, 1)

    def forward(self, tokens: torch.Tensor, text: Optional[torch.Tensor],
                text_mask: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate the tokens by the query and score every frame.

        Args:
            tokens: time-injected per-frame tokens.
            text: the prompt's token embeddings.
            text_mask: True for the prompt tokens to pool (a row with none pools to zeros).

        Shape:
            tokens: (B, T, L, Dv); text: (B, S, D); text_mask: (B, S)
            -> tokens (B, T, L, Dv), frame logits (B, T)
        """
        if text is None or text_mask is None:
            raise ShapeError("grounding needs the prompt: query_gate reads text (B, S, D) and text_mask (B, S)")
        if tokens.dim() != 4 or text.dim() != 3 or text_mask.shape != text.shape[:2] or text.shape[0] != tokens.shape[0]:
            raise ShapeError(f"grounding needs tokens (B, T, L, Dv), text (B, S, D) and text_mask (B, S); got "
                             f"{tuple(tokens.shape)}, {tuple(text.shape)}, {tuple(text_mask.shape)}")
        dtype = self.out.weight.dtype
        weight = text_mask.to(dtype).unsqueeze(-1)
        query = (text.to(dtype) * weight).sum(1) / weight.sum(1).clamp(min=1.0)  # (B, D)
        query = self.text_proj(self.text_norm(query))  # (B, H)
        gate = F.gelu(self.token_proj(tokens.to(dtype))) * query[:, None, None, :]  # (B, T, L, H)
        tokens = tokens + self.out(gate).to(tokens.dtype)
        return tokens, self.frame_head(tokens.to(dtype).mean(2)).squeeze(-1)

    def losses(self, frame_logits: Optional[torch.Tensor], labels: torch.Tensor, timestamps: torch.Tensor,
               frame_mask: Optional[torch.Tensor], time_codec: TimeCodec, tokenizer: Any) -> dict[str, torch.Tensor]:
        """``{"grounding": loss_weight * grounding_loss}`` on the moment-retrieval answers of the batch
        (empty when ``loss_weight`` is 0).

        Shape:
            frame_logits: (B, T); labels: (B, S); timestamps, frame_mask: (B, T) -> {name: scalar}
        """
        if frame_logits is None or not self.loss_weight:
            return {}
        targets, valid = window_targets(labels, timestamps, time_codec, tokenizer)
        return {"grounding": self.loss_weight * grounding_loss(frame_logits, targets, valid, frame_mask)}


def window_targets(labels: torch.Tensor, timestamps: torch.Tensor, codec: Any,
                   tokenizer: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame targets from the answers: 1 inside the window an answer states, else 0.

    Only rows whose labelled answer holds exactly two times (start before end: one moment) get
    targets; the others (captions, highlight lists, no answer) are marked invalid.

    Shape:
        labels: (B, S) with ``IGNORE_INDEX`` outside the answers; timestamps: (B, T)
        -> targets (B, T) float, valid (B,) bool
    """
    targets = torch.zeros(timestamps.shape, dtype=torch.float32, device=timestamps.device)
    valid = torch.zeros(timestamps.shape[0], dtype=torch.bool, device=timestamps.device)
    for row in range(labels.shape[0]):
        ids = labels[row][labels[row] != IGNORE_INDEX].tolist()
        times = codec.decode_ids(ids, tokenizer) if ids else []
        if len(times) == 2 and times[0] < times[1]:
            targets[row] = ((timestamps[row] >= times[0]) & (timestamps[row] <= times[1])).float()
            valid[row] = True
    return targets, valid


def grounding_loss(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor,
                   frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean binary cross-entropy over the real frames of the valid rows.

    A batch without a valid row gives a zero that still depends on ``logits``, so that every
    parameter takes part in the backward pass (DDP expects it).

    Shape:
        logits, targets: (B, T); valid: (B,); frame_mask: (B, T) -> scalar
    """
    if not bool(valid.any()):
        return logits.float().sum() * 0.0
    mask = valid[:, None].expand_as(targets).float()
    if frame_mask is not None:
        mask = mask * frame_mask.float()
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="none")
    # per row: mean over its real frames; then the mean over the valid rows
    per_row = (loss * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return per_row[valid].mean()


@hookimpl
def vtg_register_groundings(register):
    register("query_gate", QueryGate, config=QueryGateConfig,
             description="query-gated video tokens + frame grounding loss (not in VTG-LLM)")
