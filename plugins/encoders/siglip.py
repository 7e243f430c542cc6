"""``siglip``: a SigLIP or SigLIP 2 vision tower (transformers), as patch tokens per frame.

The tower is transformers' ``SiglipVisionModel`` or ``Siglip2VisionModel``, built from

* ``model_path``, a local folder (a full ``SiglipModel`` / ``Siglip2Model`` checkpoint such as
  ``google/siglip-so400m-patch14-384`` or a vision-only one), read with ``local_files_only``:
  nothing is downloaded;
* or ``model_config``, an in-memory config (tests, and ``meta`` builds of the paper-size
  architecture), with random weights.

With both, the folder's config must agree with every key ``model_config`` gives (a recipe that
names an architecture gets that architecture). ``model_type`` selects the class: ``siglip`` /
``siglip_vision_model`` (default) or ``siglip2`` / ``siglip2_vision_model``; a full config's
``vision_config`` is used.

The tokens are the patch tokens of one encoder layer (the last by default, ``layer=-2`` for the
penultimate; later layers are dropped), after the tower's ``post_layernorm`` when ``final_norm``.
SigLIP has no CLS token, so every token is a patch. The attention-pooling head is dropped. With
``pool: avg`` the patch grid is average-pooled (adaptive) to ``pooled_grid x pooled_grid`` tokens.
Normalisation: the folder's ``preprocessor_config.json`` (``image_mean`` / ``image_std``), else
SigLIP's image processor convention, mean = std = (0.5, 0.5, 0.5).

SigLIP 2 (NaFlex) reads patchified pixels with their grid shape: frames are cut into patches here
as its image processor does, at a fixed square ``image_size`` (default: ``sqrt(num_patches)``
patches a side), so every frame has the same token count.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from vtgcore.errors import CheckpointError, ConfigValidationError, VTGError
from vtgcore.hookspecs import hookimpl
from vtgcore.interfaces import FrameEncoder
from vtgcore.ranges import in_range

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_SIGLIP = ("siglip", "siglip_vision_model")
_SIGLIP2 = ("siglip2", "siglip2_vision_model")
SIGLIP_MEAN_STD = (0.5, 0.5, 0.5)
"""SigLIP's image processor normalisation (``image_mean`` = ``image_std``)."""


@dataclass
class SiglipConfig:
    """Params of ``siglip``.

    Attributes:
        model_path: local folder of a SigLIP / SigLIP 2 checkpoint (None: build from ``model_config``).
        model_config: vision config (``model_type`` plus ``SiglipVisionConfig`` /
            ``Siglip2VisionConfig`` fields, or a full config with ``vision_config``); alone it builds
            a randomly initialised tower, with ``model_path`` the folder's config must agree with it.
        image_size: input side in pixels (None: the config's; SigLIP 2: ``sqrt(num_patches)`` patches).
            SigLIP reads ``image_size // patch`` patches a side (interpolating its position
            embeddings when that differs from its own grid); SigLIP 2 needs a multiple of the patch.
        layer: which encoder layer's tokens (-1 last, -2 penultimate, or an index from 0).
        final_norm: apply the tower's ``post_layernorm`` to the tokens.
        pool: ``none`` (every patch token) or ``avg`` (adaptive average pooling of the patch grid).
        pooled_grid: side of the pooled grid with ``pool: avg`` (2 -> 4 tokens per frame).
        freeze: freeze the tower (no gradients, kept in eval mode).
        dtype: weight dtype of the tower: float32, bfloat16 or float16 (the tokens come out float32).
    """

    model_path: Optional[str] = None
    model_config: dict[str, Any] = field(default_factory=dict)
    image_size: Optional[int] = in_range(None, low=1)
    layer: int = -1
    final_norm: bool = True
    pool: str = "none"
    pooled_grid: Optional[int] = in_range(None, low=1)
    freeze: bool = True
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.pool not in ("none", "avg"):
            raise ValueError(f"pool must be 'none' or 'avg', got {self.pool!r}")
        if self.pool == "avg" and self.pooled_grid is None:
            raise ValueError("pool 'avg' needs pooled_grid (the side of the pooled grid)")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")


def _vision_dict(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(family ``siglip`` / ``siglip2``, vision config fields) of an in-memory config."""
    cfg = dict(config)
    model_type = str(cfg.pop("model_type", "siglip_vision_model"))
    if model_type in _SIGLIP + _SIGLIP2 and "vision_config" in cfg:
        cfg = dict(cfg["vision_config"] or {})
        cfg.pop("model_type", None)
    if model_type in _SIGLIP:
        return "siglip", cfg
    if model_type in _SIGLIP2:
        return "siglip2", cfg
    raise ConfigValidationError(f"siglip: model_type {model_type!r} is not a SigLIP vision config; use one of "
                                f"{', '.join(_SIGLIP + _SIGLIP2)}")


def _classes(family: str) -> tuple[type, type]:
    import transformers

    names = ("SiglipVisionConfig", "SiglipVisionModel") if family == "siglip" else \
        ("Siglip2VisionConfig", "Siglip2VisionModel")
    if not all(hasattr(transformers, n) for n in names):
        raise VTGError(f"siglip: the installed transformers {transformers.__version__} has no {names[1]} "
                       f"(SigLIP 2 needs transformers >= 4.49)")
    return getattr(transformers, names[0]), getattr(transformers, names[1])


def build_siglip_tower(model_path: Optional[str], model_config: Optional[dict[str, Any]],
                       dtype: torch.dtype = torch.float32) -> tuple[nn.Module, str, tuple, tuple]:
    """Build a SigLIP / SigLIP 2 vision tower offline.

    Returns:
        The tower, its family (``siglip`` or ``siglip2``), and the mean and std of its inputs.

    Raises:
        CheckpointError: ``model_path`` is not a folder, or transformers cannot load it.
        ConfigValidationError: not a SigLIP config, or the folder disagrees with ``model_config``.
    """
    mean = std = SIGLIP_MEAN_STD
    if model_path is None:
        if not model_config:
            raise ConfigValidationError("siglip: set 'model_path' (a local folder) or 'model_config'")
        family, fields = _vision_dict(model_config)
        config_cls, model_cls = _classes(family)
        try:
            config = config_cls(**fields)
        except (TypeError, ValueError) as exc:
            raise ConfigValidationError(f"siglip: bad model_config: {exc}") from None
        tower = model_cls(config)
        log.warning("siglip: built from model_config without weights: the tower is randomly initialised")
        return tower.to(dtype), family, mean, std
    folder = Path(model_path)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"siglip: model_path {model_path!r} is not a local model folder (no config.json); "
                              f"nothing is downloaded")
    try:
        raw = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"siglip: {folder / 'config.json'} cannot be read: {exc}") from None
    family, _ = _vision_dict({"model_type": raw.get("model_type", "siglip_vision_model"), **raw})
    config_cls, model_cls = _classes(family)
    try:
        tower = model_cls.from_pretrained(str(folder), local_files_only=True, dtype=dtype, trust_remote_code=False)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise CheckpointError(f"siglip: cannot load {model_path}: {first[:300]}") from None
    if model_config:
        given_family, fields = _vision_dict(model_config)
        loaded = tower.config.to_dict()
        wrong = {k: (v, loaded.get(k)) for k, v in fields.items() if loaded.get(k) != v}
        if given_family != family or wrong:
            raise ConfigValidationError(
                f"siglip: {model_path} ({family}) disagrees with model_config ({given_family}): "
                + ", ".join(f"{k}: recipe {a!r}, folder {b!r}" for k, (a, b) in wrong.items()))
    pre = folder / "preprocessor_config.json"
    if pre.is_file():
        cfg = json.loads(pre.read_text())
        mean = tuple(float(v) for v in cfg.get("image_mean", mean))
        std = tuple(float(v) for v in cfg.get("image_std", std))
    return tower, family, mean, std


class SiglipEncoder(FrameEncoder):
    """A SigLIP / SigLIP 2 vision tower returning patch tokens (not the pooled embedding)."""

    def __init__(self, model_path: Optional[str] = None, model_config: Optional[dict[str, Any]] = None,
                 image_size: Optional[int] = None, layer: int = -1, final_norm: bool = True,
                 pool: str = "none", pooled_grid: Optional[int] = None, freeze: bool = True,
                 dtype: str = "float32") -> None:
        super().__init__()
        SiglipConfig(model_path, dict(model_config or {}), image_size, layer, final_norm, pool, pooled_grid,
                     freeze, dtype)  # the same checks when built directly
        self.tower, self.family, mean, std = build_siglip_tower(model_path, model_config, _DTYPES[dtype])
        config = self.tower.config
        patch = config.patch_size
        if not isinstance(patch, int):
            if len(set(patch)) != 1:
                raise ConfigValidationError(f"siglip: only square patches are supported, got {patch}")
            patch = patch[0]
        self.patch_size = int(patch)
        if self.family == "siglip2":
            native = math.isqrt(int(config.num_patches)) * self.patch_size
        else:
            native = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
        self.native_size = int(native)
        self.image_size = int(image_size or native)
        if self.family == "siglip2" and self.image_size % self.patch_size:
            raise ConfigValidationError(
                f"siglip: image_size {self.image_size} is not a multiple of the patch size {self.patch_size}")
        side = self.image_size // self.patch_size  # SigLIP's stride-patch conv drops the remainder (384 / 14 -> 27)
        if side < 1:
            raise ConfigValidationError(f"siglip: image_size {self.image_size} is smaller than a patch ({self.patch_size})")
        self.native_grid = self.native_size // self.patch_size
        self.grid_size = (side, side)
        depth = len(self.tower.encoder.layers)
        if not -depth <= layer < depth:
            raise ConfigValidationError(f"siglip: layer {layer} is outside the tower's {depth} layers")
        keep = layer % depth + 1
        self.tower.encoder.layers = self.tower.encoder.layers[:keep]  # later layers are never read
        if getattr(self.tower, "head", None) is not None:  # the attention-pooling head is not used
            del self.tower.head
            self.tower.use_head = False
        self.final_norm = final_norm
        if not final_norm:
            self.tower.post_layernorm = nn.Identity()
        self.pooled_grid = pooled_grid if pool == "avg" else None
        if self.pooled_grid is not None and self.pooled_grid > side:
            raise ConfigValidationError(f"siglip: pooled_grid {self.pooled_grid} exceeds the {side}x{side} patch grid")
        self.out_dim = int(config.hidden_size)
        self.tokens_per_frame = (self.pooled_grid or side) ** 2
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.freeze = freeze
        if freeze:
            self.tower.requires_grad_(False)
            self.tower.eval()

    def train(self, mode: bool = True) -> "SiglipEncoder":
        """Set training mode; a frozen tower stays in eval mode."""
        super().train(mode)
        if self.freeze:
            self.tower.eval()
        return self

    def _embed(self, frames: torch.Tensor) -> torch.Tensor:
        emb = self.tower.embeddings
        if self.family == "siglip":
            return emb(frames, interpolate_pos_encoding=self.grid_size[0] != self.native_grid)
        n, c, h, w = frames.shape  # SigLIP 2: patches as its image processor cuts them, (h, w, p, p, C) order
        p = self.patch_size
        patches = frames.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(n, -1, p * p * c)
        shapes = torch.tensor([[h // p, w // p]], dtype=torch.long, device=frames.device).expand(n, 2)
        return emb(patches, shapes)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Encode frames to patch tokens (row-major over the patch grid).

        Args:
            frames: frames normalised with :attr:`mean` / :attr:`std`, :attr:`image_size` square.

        Shape:
            frames: (N, 3, H, W) -> (N, L, Dv); L = (H / patch) ** 2, or pooled_grid ** 2 with pool avg
        """
        if frames.shape[-2:] != (self.image_size, self.image_size):
            raise VTGError(f"siglip: frames of {tuple(frames.shape[-2:])} pixels, expected "
                           f"{self.image_size}x{self.image_size}")
        x = self._embed(frames.to(self.tower.embeddings.patch_embedding.weight.dtype))
        x = self.tower.encoder(inputs_embeds=x).last_hidden_state
        x = self.tower.post_layernorm(x).float()
        if self.pooled_grid is not None:
            n, _, d = x.shape
            grid = x.transpose(1, 2).reshape(n, d, *self.grid_size)
            grid = nn.functional.adaptive_avg_pool2d(grid, (self.pooled_grid, self.pooled_grid))
            x = grid.flatten(2).transpose(1, 2)
        return x


@hookimpl
def vtg_register_encoders(register):
    register("siglip", SiglipEncoder, config=SiglipConfig,
             description="SigLIP / SigLIP 2 vision tower (transformers, local weights only): patch tokens per frame")
