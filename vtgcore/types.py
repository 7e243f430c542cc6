"""Data types handed between components."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch


@dataclass
class VisualTokens:
    """Output of a compressor (and, after projection, of :meth:`VideoLLM.encode_video`).

    Attributes:
        tokens: (B, K, D) video tokens.
        mask: (B, K) bool, False for tokens that come only from padded frames.
        frame_index: (B, K) long frame each token comes from, -1 when it mixes frames; or None.
        aux_losses: extra losses added to the LM loss (name them ``..._loss``; under mmengine a key
            without ``"loss"`` is renamed ``loss_<key>`` so that it is optimised, not only logged).
        frame_logits: (B, T) how well each frame matches the prompt, from ``model.grounding``;
            None without it.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    frame_index: Optional[torch.Tensor] = None
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)
    frame_logits: Optional[torch.Tensor] = None


@dataclass
class VideoLLMOutput:
    """Output of :meth:`VideoLLM.forward`.

    Attributes:
        loss: scalar, LM cross-entropy plus every auxiliary loss; None without labels.
        logits: (B, S, V) next-token logits (only the positions that predict a label when the
            forward ran with ``return_logits=False``).
        lm_loss: scalar LM cross-entropy alone; None without labels.
        aux_losses: auxiliary losses from the compressor.
    """

    loss: Optional[torch.Tensor]
    logits: torch.Tensor
    lm_loss: Optional[torch.Tensor] = None
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)
