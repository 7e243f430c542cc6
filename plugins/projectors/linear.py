"""``linear``: one Linear layer from the visual width to the LLM width (VTG-LLM's llama_proj)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vtgcore.interfaces import Projector
from vtgcore.hookspecs import hookimpl


@dataclass
class LinearProjectorConfig:
    """Params of ``linear``.

    Attributes:
        bias: add a bias (True in the paper).
    """

    bias: bool = True


class LinearProjector(Projector):
    """``y = x W^T + b``."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim, bias=bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Project.

        Shape:
            tokens: (B, K, Dv) -> (B, K, D)
        """
        return self.proj(tokens)


@hookimpl
def vtg_register_projectors(register):
    register("linear", LinearProjector, config=LinearProjectorConfig,
             description="single linear layer Dv -> D (VTG-LLM llama_proj)")
