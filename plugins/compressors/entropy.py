"""``entropy``: sample K tokens favouring high local k-NN entropy (VTG-LLM's ``entropy`` sampler).

Per sample, over its N real tokens in Dv dimensions, the Kozachenko-Leonenko term of token i is

    h_i = -psi(k) + psi(N) + log c_d + (Dv / N) * log(2 * eps_i + tiny)

with ``psi`` the digamma function, max-norm distances (so ``log c_d = 0``) and ``eps_i`` the
distance from token i to its k-th nearest other real token (k = 5 in the original; fewer when the
sample has at most k real tokens). ``tiny`` is the smallest normal float32, so ``eps_i = 0`` gives a
large negative but finite term. K tokens are then drawn without replacement (Gumbel top-k) with
probability proportional to

* ``softmax(h / temperature)`` (``weighting="softmax"``, the default), or
* ``h - min(h) + 1e-6`` (``weighting="shifted"``: the original's "proportional to h", made positive).

The constant terms cancel in both; they are kept so that ``h`` is the documented estimator term.
Tokens of padded frames have probability zero and are never neighbours. The picks are returned in
temporal (token index) order.

Fixed bugs of the original: it ran per sample on the CPU through scipy's KDTree (slow); here
``torch.cdist(p=inf)`` and ``topk`` run on the tensor's device for the whole batch. A static video
(duplicated tokens, ``eps = 0``) gave ``h = -inf`` and ``torch.multinomial(h, K)`` raised (negative
h made it raise as well); here it samples uniformly.

When a sample has fewer than K real tokens the extra slots are zeros with mask False (a video with
no real frame gives all zeros). Randomness: torch's global RNG in training mode, a generator seeded
with ``seed`` on every call in eval mode (deterministic evaluation). The selection is not
differentiable; the gathered tokens carry gradient back to the input.
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

WEIGHTINGS = ("softmax", "shifted")
ROW_BLOCK_ELEMENTS = 1 << 22  # distances computed at once by knn_entropy_terms (16 MiB in fp32)


@dataclass
class EntropyConfig:
    """Params of ``entropy``.

    Attributes:
        num_tokens: K, the number of tokens kept (256 in the original).
        k: neighbour rank of the Kozachenko-Leonenko estimator (5 in the original).
        weighting: ``softmax`` or ``shifted`` (see the module docstring).
        temperature: softmax temperature (``softmax`` only).
        seed: seed of the generator used in eval mode.
    """

    num_tokens: int = in_range(256, low=1, high=1_000_000)
    k: int = in_range(5, low=1)
    weighting: str = "softmax"
    temperature: float = 1.0
    seed: int = 0


def knn_entropy_terms(x: torch.Tensor, real: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Per-token Kozachenko-Leonenko terms with max-norm distances (see the module docstring).

    Args:
        x: tokens.
        real: True for tokens that count (others are never neighbours and get ``-inf``).
        k: neighbour rank; a sample with ``n <= k`` real tokens uses rank ``max(n - 1, 1)``.

    Returns:
        ``h``, float32, ``-inf`` where ``real`` is False.

    Shape:
        x: (B, N, Dv); real: (B, N) -> (B, N)
    """
    b, n, d = x.shape
    xs = x.detach().float()
    n_real = real.sum(dim=1)  # (B,)
    k_eff = n_real.sub(1).clamp(min=1, max=k)  # (B,)
    kk = max(1, min(k, n - 1))
    if n > 1:
        # distances of a block of query tokens at a time, (B, rows, N) of at most ROW_BLOCK_ELEMENTS
        # floats, instead of the whole (B, N, N): bounded memory, and on a CPU the block stays in
        # cache (1.3x faster at B=4, N=3072); the same distances and neighbours
        rows = max(1, ROW_BLOCK_ELEMENTS // (b * n))
        position = torch.arange(n, device=x.device)
        blocks = []
        for start in range(0, n, rows):
            dist = torch.cdist(xs[:, start:start + rows], xs, p=float("inf"))  # (B, rows, N) max-norm
            itself = position[start:start + rows, None] == position[None, :]
            dist.masked_fill_(~real.unsqueeze(1) | itself, float("inf"))
            blocks.append(dist.topk(kk, dim=-1, largest=False).values)  # (B, rows, kk) ascending
        nearest = torch.cat(blocks, dim=1)
        eps = nearest.gather(-1, (k_eff - 1).clamp(max=kk - 1).view(b, 1, 1).expand(b, n, 1)).squeeze(-1)
    else:
        eps = torch.zeros(b, n, device=x.device)
    eps = torch.where(torch.isfinite(eps), eps, torch.zeros_like(eps))  # no other real token
    nf = n_real.clamp(min=1).float()
    tiny = torch.finfo(torch.float32).tiny
    h = (-torch.digamma(k_eff.float()) + torch.digamma(nf)).unsqueeze(1) + (d / nf).unsqueeze(1) * torch.log(2 * eps + tiny)
    return h.masked_fill(~real, float("-inf"))


class EntropyCompressor(TokenCompressor):
    """See the module docstring. Has no parameters."""

    def __init__(self, dim: int, num_tokens: int = 256, k: int = 5, weighting: str = "softmax",
                 temperature: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.dim = dim
        self.num_tokens = num_tokens
        self.k = k
        self.weighting = weighting
        self.temperature = temperature
        self.seed = seed

    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        return self.num_tokens

    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Unnormalised log sampling probabilities (``-inf`` for padded tokens).

        Shape:
            x: (B, N, Dv); real: (B, N) -> (B, N)
        """
        h = knn_entropy_terms(x, real, self.k)
        if self.weighting == "softmax":
            return h / self.temperature
        low = h.masked_fill(~real, float("inf")).amin(dim=1, keepdim=True)
        return torch.log(h - low + 1e-6).masked_fill(~real, float("-inf"))

    def forward(self, tokens: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                timestamps: Optional[torch.Tensor] = None) -> VisualTokens:
        """Draw K real tokens without replacement and return them in temporal order.

        Shape:
            tokens: (B, T, L, Dv); frame_mask: (B, T) -> tokens (B, K, Dv), mask (B, K),
            frame_index (B, K) (-1 for empty slots)
        """
        b, t, l, d = tokens.shape
        n, k = t * l, self.num_tokens
        x = tokens.reshape(b, n, d)
        real = real_tokens(frame_mask, b, t, l, x.device)
        with torch.no_grad():
            logw = self.log_weights(x, real)
            gen = None if self.training else torch.Generator(device=x.device).manual_seed(self.seed)
            u = torch.rand(b, n, device=x.device, generator=gen).clamp(1e-12, 1 - 1e-7)
            keys = (logw - torch.log(-torch.log(u))).masked_fill(~real, float("-inf"))  # Gumbel top-k
            top = keys.topk(min(k, n), dim=1)
            index, valid = top.indices, torch.isfinite(top.values)
            if k > n:  # more slots than tokens
                index = torch.cat([index, index.new_zeros(b, k - n)], dim=1)
                valid = torch.cat([valid, valid.new_zeros(b, k - n)], dim=1)
            index, valid = temporal_order(index, valid, n)
        return gather_tokens(x, index, valid, l)


@hookimpl
def vtg_register_compressors(register):
    register("entropy", EntropyCompressor, config=EntropyConfig,
             description="K tokens sampled by k-NN (Kozachenko-Leonenko) entropy, no parameters")
