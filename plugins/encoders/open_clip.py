"""``open_clip``: the vision tower of any open_clip model, as patch tokens per frame.

The model is built with ``open_clip.create_model`` from

* a built-in architecture name (``ViT-L-14``, ``ViT-B-16-SigLIP``, ``EVA02-L-14``, ...) plus
  ``pretrained``, a local weight file (``.safetensors``, ``.bin``, ``.pt``, ``.npz``);
* ``local-dir:/folder`` (``open_clip_config.json`` with ``model_cfg`` and ``preprocess_cfg``, and
  the weights, in one folder);
* or ``model_config``, an in-memory open_clip config (tests, custom towers), with ``pretrained``
  optional.

Nothing is downloaded: an open_clip pretrained *tag* (``laion2b_s34b_b79k``) or an ``hf-hub:``
name is refused, as is a ``pretrained`` path that is not a file. Without ``pretrained`` the weights
are random (a warning is logged). Only the vision tower is kept.

The tokens are those of one transformer block (the last by default, ``layer=-2`` for the
penultimate), CLS/prefix tokens removed, after the tower's final norm when ``final_norm``; with
``pool_tokens`` the patch grid is average-pooled to a smaller square grid.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from vtgcore.errors import CheckpointError, ConfigValidationError, VTGError
from vtgcore.interfaces import FrameEncoder
from vtgcore.hookspecs import hookimpl

log = logging.getLogger(__name__)


@dataclass
class OpenCLIPConfig:
    """Params of ``open_clip``.

    Attributes:
        model_name: an open_clip architecture name, or ``local-dir:/folder``; with ``model_config``
            only a label.
        pretrained: local weight file for a built-in name or ``model_config`` (None: random init).
        model_config: in-memory open_clip config (``embed_dim``, ``vision_cfg``, ``text_cfg``; or
            ``{"model_cfg": ..., "preprocess_cfg": ...}``) used instead of a built-in name.
        preprocess_from_tag: an open_clip pretrained tag whose registered preprocessing (mean,
            std, interpolation) describes the local weights; only looked up, never downloaded.
        image_size: force another input size (open_clip's ``force_image_size``).
        layer: which block's tokens (-1 last, -2 penultimate, or an index from 0).
        final_norm: apply the tower's final norm (``ln_post``) to the tokens.
        pool_tokens: average-pool the patch grid to this many tokens (a square number; None: all
            patches).
    """

    model_name: str = "ViT-L-14"
    pretrained: Optional[str] = None
    model_config: dict[str, Any] = field(default_factory=dict)
    preprocess_from_tag: Optional[str] = None
    image_size: Optional[int] = None
    layer: int = -1
    final_norm: bool = True
    pool_tokens: Optional[int] = None


def _preprocess_overlay(model_name: str, tag: Optional[str]) -> dict[str, Any]:
    if tag is None:
        return {}
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        raise ConfigValidationError(
            f"open_clip: preprocess_from_tag {tag!r} is not a pretrained tag of {model_name!r}; tags: "
            f"{open_clip.list_pretrained_tags_by_model(model_name)}")
    return {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}


def build_open_clip_visual(model_name: str, pretrained: Optional[str] = None,
                           model_config: Optional[dict[str, Any]] = None,
                           preprocess_from_tag: Optional[str] = None,
                           image_size: Optional[int] = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build an open_clip model offline and return its vision tower and preprocess config.

    Raises:
        CheckpointError: ``pretrained`` is not an existing file, or its keys do not fit.
        ConfigValidationError: an ``hf-hub:`` name, an unknown architecture, or a bad combination.
        VTGError: open_clip_torch is not installed.
    """
    try:
        import open_clip
    except ImportError:
        raise VTGError("open_clip encoder: open_clip_torch is not installed (pip install open_clip_torch)") from None

    if model_name.startswith("hf-hub:"):
        raise ConfigValidationError(
            f"open_clip: {model_name!r} would download from the Hugging Face Hub; download it once and "
            f"use 'local-dir:/folder' or a built-in name with a local 'pretrained' file")
    if pretrained is not None and not os.path.isfile(pretrained):
        raise CheckpointError(
            f"open_clip: pretrained {pretrained!r} is not an existing local file (open_clip tags would "
            f"download; give the path of the weight file)")
    if pretrained is not None and model_name.startswith("local-dir:") and not model_config:
        raise ConfigValidationError("open_clip: a 'local-dir:' model carries its weights; leave 'pretrained' unset")
    overlay = _preprocess_overlay(model_name, preprocess_from_tag)
    common: dict[str, Any] = dict(force_image_size=image_size, force_preprocess_cfg=overlay or None,
                                  force_patch_dropout=0.0, pretrained_image=False, pretrained_text=False,
                                  weights_only=True)
    try:
        if model_config:
            config = dict(model_config) if "model_cfg" in model_config else {"model_cfg": dict(model_config)}
            with tempfile.TemporaryDirectory(prefix="vtg_open_clip_") as tmp:
                (Path(tmp) / "open_clip_config.json").write_text(json.dumps(config))
                model = open_clip.create_model(f"local-dir:{tmp}", **common)
            if pretrained is not None:
                open_clip.load_checkpoint(model, pretrained, strict=True, weights_only=True)
        else:
            if not model_name.startswith("local-dir:") and model_name.replace("/", "-") not in open_clip.list_models():
                raise ConfigValidationError(
                    f"open_clip: unknown architecture {model_name!r}; see open_clip.list_models()")
            model = open_clip.create_model(model_name, pretrained=pretrained, **common)
    except pickle.UnpicklingError as exc:  # weights_only=True refused a pickle that would run code
        from vtgcore.checkpoint import unpickling_refusal

        raise CheckpointError(f"open_clip {model_name}: pretrained {pretrained}: {unpickling_refusal(exc)}") from None
    except (RuntimeError, FileNotFoundError, ValueError, KeyError) as exc:
        if isinstance(exc, VTGError):
            raise
        source = pretrained or model_name
        raise CheckpointError(f"open_clip {model_name}: cannot load {source}: "
                              f"{str(exc).strip().splitlines()[0][:500]}") from None
    if pretrained is None and not model_name.startswith("local-dir:"):
        log.warning("open_clip %s: no pretrained file, the vision tower is randomly initialised", model_name)
    return model.visual, dict(open_clip.get_model_preprocess_cfg(model))


def _keep_only_tokens(visual: nn.Module, layer: int, final_norm: bool) -> list[int]:
    """Drop what the tokens do not use (blocks after ``layer``, pooling, projection, unused norm).

    Returns:
        The absolute block index to read, for ``forward_intermediates``.
    """
    if hasattr(visual, "prune_intermediate_layers"):  # open_clip VisionTransformer
        take = visual.prune_intermediate_layers([layer], prune_norm=not final_norm, prune_head=True)
        for name in ("attn_pool", "attn_pool_contrastive"):
            if getattr(visual, name, None) is not None:
                setattr(visual, name, None)
        return list(take)
    trunk = getattr(visual, "trunk", None)  # open_clip TimmModel: a timm trunk plus a projection head
    if trunk is not None and hasattr(trunk, "prune_intermediate_layers"):
        take = trunk.prune_intermediate_layers([layer], prune_norm=not final_norm, prune_head=True)
        visual.head = nn.Identity()
        return list(take)
    return [layer]


class OpenCLIPEncoder(FrameEncoder):
    """An open_clip vision tower returning patch tokens (not the pooled embedding)."""

    def __init__(self, model_name: str = "ViT-L-14", pretrained: Optional[str] = None,
                 model_config: Optional[dict[str, Any]] = None, preprocess_from_tag: Optional[str] = None,
                 image_size: Optional[int] = None, layer: int = -1, final_norm: bool = True,
                 pool_tokens: Optional[int] = None) -> None:
        super().__init__()
        if pool_tokens is not None and (pool_tokens < 1 or math.isqrt(pool_tokens) ** 2 != pool_tokens):
            raise ConfigValidationError(f"open_clip: pool_tokens must be a square number, got {pool_tokens}")
        self.visual, preprocess = build_open_clip_visual(model_name, pretrained, model_config,
                                                         preprocess_from_tag, image_size)
        if not hasattr(self.visual, "forward_intermediates"):
            raise ConfigValidationError(
                f"open_clip: the vision tower of {model_name!r} ({type(self.visual).__name__}) does not "
                f"expose forward_intermediates, so its patch tokens cannot be read")
        size = preprocess.get("size", 224)
        if isinstance(size, (tuple, list)):
            if len(set(size)) != 1:
                raise ConfigValidationError(f"open_clip: only square inputs are supported, got size {size}")
            size = size[0]
        self.image_size = int(size)
        self.mean = tuple(float(v) for v in preprocess["mean"])
        self.std = tuple(float(v) for v in preprocess["std"])
        self.indices = _keep_only_tokens(self.visual, layer, final_norm)
        self.final_norm = final_norm
        self.pool_side = math.isqrt(pool_tokens) if pool_tokens is not None else None
        param = next(self.visual.parameters())
        probe = torch.zeros(1, 3, self.image_size, self.image_size, dtype=param.dtype, device=param.device)
        was_training = self.visual.training
        self.visual.eval()
        with torch.no_grad():
            grid = self._grid(probe)
        self.visual.train(was_training)
        self.out_dim = int(grid.shape[1])
        self.grid_size = (int(grid.shape[2]), int(grid.shape[3]))
        if self.pool_side is not None and self.pool_side * self.pool_side > grid.shape[2] * grid.shape[3]:
            raise ConfigValidationError(
                f"open_clip: pool_tokens={pool_tokens} exceeds the {self.grid_size} patch grid")
        self.tokens_per_frame = (self.pool_side ** 2 if self.pool_side is not None
                                 else self.grid_size[0] * self.grid_size[1])

    def _grid(self, frames: torch.Tensor) -> torch.Tensor:
        out = self.visual.forward_intermediates(frames, indices=self.indices, output_fmt="NCHW",
                                                intermediates_only=True,
                                                normalize_intermediates=self.final_norm)
        return out["image_intermediates"][0]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Encode frames to patch tokens (row-major over the patch grid).

        Args:
            frames: frames normalised with :attr:`mean` / :attr:`std`.

        Shape:
            frames: (N, 3, H, W) -> (N, L, Dv); L = grid h * w, or pool_tokens when set
        """
        dtype = next(self.visual.parameters()).dtype
        grid = self._grid(frames.to(dtype))
        if self.pool_side is not None:
            grid = nn.functional.adaptive_avg_pool2d(grid, (self.pool_side, self.pool_side))
        return grid.flatten(2).transpose(1, 2)


@hookimpl
def vtg_register_encoders(register):
    register("open_clip", OpenCLIPEncoder, config=OpenCLIPConfig,
             description="vision tower of an open_clip model (local weights only): patch tokens per frame")
