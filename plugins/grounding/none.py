"""``none``: no grounding stage; the time-injected tokens go to the compressor unchanged (VTG-LLM)."""

from __future__ import annotations

from typing import Any, Optional

import torch

from vtgcore.hookspecs import hookimpl
from vtgcore.interfaces import GroundingStage, TimeCodec


class NoGrounding(GroundingStage):
    """Passes the tokens through, scores no frame and adds no loss.

    Args:
        dim: Dv (unused).
        text_dim: D (unused).
    """

    needs_prompt = False

    def __init__(self, dim: int, text_dim: int) -> None:
        super().__init__()

    def forward(self, tokens: torch.Tensor, text: Optional[torch.Tensor],
                text_mask: Optional[torch.Tensor]) -> tuple[torch.Tensor, None]:
        """Identity.

        Shape:
            tokens: (B, T, L, Dv) -> tokens (B, T, L, Dv), None
        """
        return tokens, None

    def losses(self, frame_logits: Optional[torch.Tensor], labels: torch.Tensor, timestamps: torch.Tensor,
               frame_mask: Optional[torch.Tensor], time_codec: TimeCodec, tokenizer: Any) -> dict[str, torch.Tensor]:
        """No auxiliary loss.

        Shape:
            labels: (B, S) -> {}
        """
        return {}


@hookimpl
def vtg_register_groundings(register):
    register("none", NoGrounding, description="no grounding stage (VTG-LLM)")
