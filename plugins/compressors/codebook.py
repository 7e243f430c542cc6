"""``codebook``: K learned codes, each replaced by its nearest video token (VTG-LLM's ``codebook``).

Per sample, with codes ``C`` in R^{K x Dv} (init randn) and the N = T*L tokens ``X``:

* squared L2 distances ``D[k, n] = ||C_k - X_n||^2`` (tokens of padded frames excluded);
* ``sel_k = X[argmin_n D[k, n]]`` (several codes may pick the same token);
* output ``C + stopgrad(sel - C)``: its value is ``sel`` and its gradient goes to ``C``
  (straight-through);
* aux loss ``codebook_loss = loss_weight * mean_b [MSE(sel_b, sg(C)) + MSE(C, sg(sel_b))]``,
  averaged over the samples that have at least one real frame (the original added it to the LM
  loss with weight 1).

Output order is the code order; ``frame_index`` is the frame of each selected token.
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
class CodebookConfig:
    """Params of ``codebook``.

    Attributes:
        num_codes: K, the number of codes and output tokens (256 in the original).
        loss_weight: factor on the VQ loss ``codebook_loss`` (1.0 in the original).
    """

    num_codes: int = in_range(256, low=1, high=1_000_000)
    loss_weight: float = in_range(1.0, low=0.0)


class CodebookCompressor(TokenCompressor):
    """See the module docstring.

    Attributes:
        codes: (K, Dv) learned codes, initialised from a standard normal.
    """

    def __init__(self, dim: int, num_codes: int = 256, loss_weight: float = 1.0) -> None:
        super().__init__()
        if num_codes < 1:
            raise ValueError(f"num_codes must be >= 1, got {num_codes}")
        self.num_codes = num_codes
        self.loss_weight = loss_weight
        self.codes = nn.Parameter(torch.randn(num_codes, dim))

    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        return self.num_codes

    def forward(self, tokens: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                timestamps: Optional[torch.Tensor] = None) -> VisualTokens:
        """Replace every code by its nearest real token (straight-through) and return the VQ loss.

        A video with no real frame gives zeros, mask False, frame_index -1, and adds nothing to
        the loss.

        Shape:
            tokens: (B, T, L, Dv); frame_mask: (B, T) -> tokens (B, K, Dv), mask (B, K),
            frame_index (B, K); aux_losses["codebook_loss"]: scalar
        """
        b, t, l, d = tokens.shape
        k = self.num_codes
        x = tokens.reshape(b, t * l, d)
        codes = self.codes.to(x.dtype)
        if frame_mask is None:
            frame_mask = torch.ones(b, t, dtype=torch.bool, device=x.device)
        frame_mask = frame_mask.bool()
        token_mask = frame_mask.repeat_interleave(l, dim=1)  # (B, N)
        has_frames = frame_mask.any(1)  # (B,)
        with torch.no_grad():
            # ||c||^2 + ||x||^2 - 2 c.x: no (B, K, N, Dv) intermediate
            dist = (codes.pow(2).sum(-1)[None, :, None] + x.pow(2).sum(-1)[:, None, :]
                    - 2.0 * torch.einsum("kd,bnd->bkn", codes, x))  # (B, K, N)
            dist = dist.masked_fill(~token_mask.unsqueeze(1), float("inf"))
            idx = dist.argmin(dim=2)  # (B, K)
        keep = has_frames.view(b, 1, 1)
        selected = x.gather(1, idx.unsqueeze(-1).expand(b, k, d))  # (B, K, Dv)
        selected = selected.masked_fill(~keep, 0.0)  # never read a padded token
        out = codes + (selected - codes).detach()
        out = out.masked_fill(~keep, 0.0)

        per_sample = ((selected - codes.detach()).pow(2).mean(dim=(1, 2))
                      + (codes - selected.detach()).pow(2).mean(dim=(1, 2)))  # (B,)
        per_sample = torch.where(has_frames, per_sample, torch.zeros_like(per_sample))
        loss = per_sample.sum() / has_frames.sum().clamp(min=1).to(per_sample.dtype)
        mask = has_frames.unsqueeze(1).expand(b, k)
        index = torch.where(mask, idx // l, torch.full_like(idx, -1))
        return VisualTokens(out, mask, index, {"codebook_loss": self.loss_weight * loss})


@hookimpl
def vtg_register_compressors(register):
    register("codebook", CodebookCompressor, config=CodebookConfig,
             description="K learned codes snapped to their nearest tokens, straight-through + VQ loss")
