"""Clip-level image transforms: resize (squash or letterbox), random resized crop, normalise.

All functions take a whole clip ``(T, 3, H, W)`` and treat every frame the same way, as the
original VTG-LLM's video processors do. They are thin wrappers over
``torchvision.transforms.v2.functional``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as tvf

from vtgcore.errors import ShapeError

#: CLIP normalisation constants used by the original (EVA-ViT-g / BLIP-2).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

RESIZE_MODES = ("squash", "pad")


def _check_clip(frames: torch.Tensor, *, uint8: bool = True) -> None:
    """Raise ShapeError unless ``frames`` is a (T, 3, H, W) clip (uint8 when asked)."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ShapeError(f"expected frames of shape (T, 3, H, W), got {tuple(frames.shape)}")
    if uint8 and frames.dtype != torch.uint8:
        raise ShapeError(f"expected uint8 frames, got {frames.dtype}")


def resize_frames(frames: torch.Tensor, size: int, mode: str = "squash") -> torch.Tensor:
    """Resize every frame of a clip to ``size x size``.

    ``squash`` resizes to the square and ignores the aspect ratio (what the original gets from
    decord's ``VideoReader(uri, 224, 224)``). ``pad`` keeps the aspect ratio: the longer side
    becomes ``size`` and the shorter side is padded with zeros on both sides (centred).
    Resizing is bilinear with antialiasing.

    Args:
        frames: uint8 RGB clip.
        size: Output side length in pixels.
        mode: ``squash`` or ``pad``.

    Returns:
        The resized clip, uint8.

    Raises:
        ValueError: Unknown mode or ``size < 1``.
        ShapeError: ``frames`` is not a uint8 ``(T, 3, H, W)`` tensor.

    Shape:
        frames: ``(T, 3, H, W)``; output: ``(T, 3, size, size)``.
    """
    _check_clip(frames)
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; allowed: {', '.join(RESIZE_MODES)}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if mode == "squash":
        return _resize(frames, size, size)
    return _letterbox(frames, size)


def _resize(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear antialiased resize to (height, width); no-op when already that size."""
    if tuple(frames.shape[-2:]) == (height, width):
        return frames
    return tvf.resize(frames, [height, width], interpolation=InterpolationMode.BILINEAR, antialias=True)


def _letterbox(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Keep the aspect ratio, fit the longer side to ``size``, centre and pad with zeros."""
    height, width = frames.shape[-2:]
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = _resize(frames, new_h, new_w)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    padding = [left, top, size - new_w - left, size - new_h - top]
    return tvf.pad(resized, padding, fill=0)


def random_resized_crop_params(
    height: int,
    width: int,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """Draw a crop box the way ``torchvision.transforms.v2.RandomResizedCrop`` does.

    Same algorithm and draws (ten tries of area fraction in ``scale`` and log-uniform aspect
    ratio in ``ratio``, then a centre crop clamped to ``ratio``), but every draw uses
    ``generator``: a generator seeded with ``s`` gives the box torchvision's
    ``RandomResizedCrop.get_params`` gives after ``torch.manual_seed(s)``.

    Args:
        height: Image height.
        width: Image width.
        scale: Range of the crop area as a fraction of the image area.
        ratio: Range of the crop aspect ratio (width / height).
        generator: Random source (global torch RNG when ``None``).

    Returns:
        ``(top, left, crop_height, crop_width)``.
    """
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(float(log_ratio[0]), float(log_ratio[1]), generator))
        crop_w = round(math.sqrt(target_area * aspect))
        crop_h = round(math.sqrt(target_area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(torch.randint(0, height - crop_h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - crop_w + 1, (1,), generator=generator))
            return top, left, crop_h, crop_w
    return _central_crop_box(height, width, ratio)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    """One float drawn uniformly from [low, high) (float32, the draw torchvision makes)."""
    return float(torch.empty(1).uniform_(low, high, generator=generator))


def _central_crop_box(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """torchvision's fallback: the largest centred box whose aspect ratio lies in ``ratio``."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        crop_w, crop_h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        crop_h, crop_w = height, int(round(height * max(ratio)))
    else:
        crop_w, crop_h = width, height
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def random_resized_crop(
    frames: torch.Tensor,
    size: int,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Crop one random box from the whole clip and resize it to ``size x size`` (bicubic).

    One box is drawn per clip and applied to every frame, like the original's
    ``RandomResizedCropVideo(224, scale=(0.5, 1.0), ratio=(3/4, 4/3), bicubic)``.

    Args:
        frames: uint8 RGB clip.
        size: Output side length.
        scale: Range of the crop area as a fraction of the frame area.
        ratio: Range of the crop aspect ratio (width / height).
        generator: Random source of the box (see :func:`random_resized_crop_params`).

    Returns:
        The cropped clip, uint8.

    Shape:
        frames: ``(T, 3, H, W)``; output: ``(T, 3, size, size)``.
    """
    _check_clip(frames)
    top, left, crop_h, crop_w = random_resized_crop_params(
        frames.shape[-2], frames.shape[-1], scale, ratio, generator
    )
    return tvf.resized_crop(
        frames,
        top,
        left,
        crop_h,
        crop_w,
        [size, size],
        interpolation=InterpolationMode.BICUBIC,
        antialias=True,
    )


def normalize(
    frames: torch.Tensor, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD
) -> torch.Tensor:
    """Scale uint8 frames to [0, 1] and normalise each channel: ``(x / 255 - mean) / std``.

    Args:
        frames: uint8 RGB clip.
        mean: Per-channel mean (default: CLIP, as the original).
        std: Per-channel standard deviation (default: CLIP).

    Returns:
        float32 clip.

    Shape:
        frames: ``(T, 3, H, W)``; output: ``(T, 3, H, W)``.
    """
    _check_clip(frames)
    scaled = tvf.to_dtype(frames, torch.float32, scale=True)
    return tvf.normalize(scaled, list(mean), list(std))
