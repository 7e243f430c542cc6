"""``diverse``: k-means++ seeding picks K mutually distant tokens (VTG-LLM's ``diverse`` sampler).

Per sample, over the N = T*L tokens of real frames, vectorised over the batch (the only Python
loop runs over the K picks):

1. the first token is drawn uniformly at random;
2. K-1 times: the next token is drawn with probability proportional to ``D(n)^2``, where ``D(n)``
   is the L2 distance from token n to the nearest token picked so far, then ``D`` is updated.

Fixed bug of the original: it drew with probability proportional to ``D(n)`` (plain distance),
which is not k-means++; ``squared=False`` restores that behaviour. The original also looped over
the samples one by one; here every step runs on the whole batch.

Degenerate inputs never give NaN or an error: when every remaining distance is zero (a static
video, duplicated tokens) the pick falls back to uniform over the real tokens not chosen yet; when a
sample has fewer real tokens than K, the extra slots are zeros with mask False (so a video with no
real frame gives all zeros, mask False).

Randomness: in training mode the picks use torch's global RNG; in eval mode a generator seeded with
``seed`` on every call, so evaluation is deterministic. The selection is not differentiable, but the
gathered tokens carry gradient back to the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from vtgcore.ranges import in_range
from vtgcore.interfaces import TokenCompressor
from vtgcore.hookspecs import hookimpl
from vtgcore.types import VisualTokens
from vtgcore_plugins.compressors._selection import gather_tokens, real_tokens, temporal_order

ORDERS = ("temporal", "selection")


@dataclass
class DiverseConfig:
    """Params of ``diverse``.

    Attributes:
        num_tokens: K, the number of tokens kept (256 in the original).
        squared: draw proportionally to the squared distance (true k-means++); False replicates
            the original's plain distance.
        order: ``temporal`` (picks sorted by token index, i.e. by frame) or ``selection`` (the
            order they were drawn in, as the original).
        seed: seed of the generator used in eval mode.
    """

    num_tokens: int = in_range(256, low=1, high=1_000_000)
    squared: bool = True
    order: str = "temporal"
    seed: int = 0


def _generator(module: torch.nn.Module, device: torch.device, seed: int) -> Optional[torch.Generator]:
    """None (global RNG) in training mode, a freshly seeded generator in eval mode."""
    if module.training:
        return None
    return torch.Generator(device=device).manual_seed(seed)


class DiverseCompressor(TokenCompressor):
    """See the module docstring. Has no parameters."""

    def __init__(self, dim: int, num_tokens: int = 256, squared: bool = True, order: str = "temporal",
                 seed: int = 0) -> None:
        super().__init__()
        if num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        self.dim = dim
        self.num_tokens = num_tokens
        self.squared = squared
        self.order = order
        self.seed = seed

    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        return self.num_tokens

    @torch.no_grad()
    def select(self, x: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw K token indices per sample by k-means++ seeding.

        Args:
            x: the tokens.
            real: True for tokens of real frames.

        Returns:
            ``(index, valid)``: picked token indices in selection order, and False for slots left
            empty because the sample has fewer than K real tokens.

        Shape:
            x: (B, N, Dv); real: (B, N) -> index (B, K) long, valid (B, K) bool
        """
        b, n, _ = x.shape
        k = self.num_tokens
        gen = _generator(self, x.device, self.seed)
        xs = x.detach().float()
        rows = torch.arange(b, device=x.device)
        available = real.clone()
        min_d = torch.full((b, n), float("inf"), device=x.device)
        index = torch.zeros(b, k, dtype=torch.long, device=x.device)
        valid = torch.zeros(b, k, dtype=torch.bool, device=x.device)
        for step in range(k):
            uniform = available.float()
            if step == 0:
                w = uniform
            else:
                w = min_d if self.squared else min_d.sqrt()
                w = torch.where(available, w.nan_to_num(0.0, posinf=0.0).clamp(min=0.0), torch.zeros_like(w))
                top = w.amax(dim=1, keepdim=True)
                w = torch.where(top > 0, w / top.clamp(min=torch.finfo(w.dtype).tiny), uniform)
            has = available.any(dim=1)
            w = torch.where(has.unsqueeze(1), w, torch.ones_like(w))  # dummy draw for exhausted samples
            pick = torch.multinomial(w, 1, generator=gen).squeeze(1)  # (B,)
            index[:, step] = pick
            valid[:, step] = has
            available[rows, pick] = False
            d2 = (xs - xs[rows, pick].unsqueeze(1)).pow(2).sum(-1)  # squared L2 to the new pick
            min_d = torch.minimum(min_d, d2)
        return index, valid

    def forward(self, tokens: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                timestamps: Optional[torch.Tensor] = None) -> VisualTokens:
        """Keep K diverse tokens of real frames.

        Shape:
            tokens: (B, T, L, Dv); frame_mask: (B, T) -> tokens (B, K, Dv), mask (B, K),
            frame_index (B, K) (-1 for empty slots)
        """
        b, t, l, d = tokens.shape
        x = tokens.reshape(b, t * l, d)
        index, valid = self.select(x, real_tokens(frame_mask, b, t, l, x.device))
        if self.order == "temporal":
            index, valid = temporal_order(index, valid, t * l)
        return gather_tokens(x, index, valid, l)


@hookimpl
def vtg_register_compressors(register):
    register("diverse", DiverseCompressor, config=DiverseConfig,
             description="k-means++ seeding: K mutually distant tokens, no parameters")
