"""``tiny_vit``: a small ViT built from torch layers, for tests and CPU runs (no weights needed)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vtgcore.interfaces import FrameEncoder
from vtgcore.hookspecs import hookimpl

# The CLIP constants of vtgcore.data.transforms, repeated so that listing plugins does not import
# torchvision.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class TinyViTConfig:
    """Params of ``tiny_vit``.

    Attributes:
        image_size: input height and width.
        patch_size: square patch side; L = (image_size / patch_size) ** 2.
        dim: Dv.
        depth: transformer blocks.
        heads: attention heads.
    """

    image_size: int = 32
    patch_size: int = 16
    dim: int = 32
    depth: int = 1
    heads: int = 2


class TinyViT(FrameEncoder):
    """Patch embedding, learned positions, pre-norm transformer blocks, final LayerNorm."""

    def __init__(self, image_size: int = 32, patch_size: int = 16, dim: int = 32, depth: int = 1, heads: int = 2) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size = image_size
        self.out_dim = dim
        self.tokens_per_frame = (image_size // patch_size) ** 2
        self.mean, self.std = CLIP_MEAN, CLIP_STD
        self.patch = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.randn(1, self.tokens_per_frame, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=dim * 2, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Encode frames to patch tokens.

        Shape:
            frames: (N, 3, H, W) -> (N, L, Dv)
        """
        x = self.patch(frames).flatten(2).transpose(1, 2) + self.pos
        return self.norm(self.blocks(x))


@hookimpl
def vtg_register_encoders(register):
    register("tiny_vit", TinyViT, config=TinyViTConfig,
             description="small random-init ViT for tests and CPU runs")
