"""Pre-train a small frame encoder on VTG-Synth, as a stand-in for a pretrained image encoder.

VTG-LLM freezes an encoder pretrained on millions of images (EVA-ViT-g). A randomly initialised
tiny ViT is a poor stand-in: a linear probe on its frozen tokens barely beats the majority rate at
telling which colours are on screen (measured in ``docs/training.md``). This module gives the tiny
encoder what pre-training gives the real one, cheaply: each output token is trained to predict which
colours and shapes cover its patch, from the generator's per-pixel labels, on the training split's
frames only. The encoder is then frozen and saved as a safetensors file that a recipe loads with
``model.encoder.checkpoint``.

Targets: for token ``l`` of a ``g x g`` grid (``L = g * g`` tokens in row-major order, as a ViT's
patch tokens) and label ``c`` (one per colour of :data:`~vtgcore.data.synth.COLOURS`, then one per
shape of :data:`~vtgcore.data.synth.SHAPES`), ``y[l, c] = min(1, p / FULL_FRACTION)`` where ``p`` is
the fraction of the patch's pixels that belong to an event of that colour (or shape): a soft target,
so that a small shape in a large patch still counts. Frames are decoded with
the same reader, resize and normalisation as training, so the encoder sees what it will see later.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from vtgcore.data.synth import COLOURS, GENERATOR_VERSION, SHAPES, SynthError, label_maps, plan_video
from vtgcore.utils.limits import loads_json

LABELS: tuple[str, ...] = tuple(COLOURS) + tuple(SHAPES)
FULL_FRACTION = 0.25


def _meta(synth_dir: Path) -> dict[str, Any]:
    path = synth_dir / "meta.json"
    if not path.is_file():
        raise SynthError(f"{path}: not found; generate the benchmark first (vtg data synth {synth_dir})")
    try:
        meta = loads_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SynthError(f"{path}: unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise SynthError(f"{path}: not a JSON object; regenerate the benchmark")
    if meta.get("generator") != GENERATOR_VERSION:
        raise SynthError(f"{path}: written by generator {meta.get('generator')!r}, this is {GENERATOR_VERSION!r}; "
                         "regenerate the benchmark")
    return meta


def patch_targets(labels: np.ndarray, colours: list[str], shapes: list[str], grid: int) -> np.ndarray:
    """Per-patch presence targets from per-pixel owner labels.

    Args:
        labels: ``(F, H, W)`` uint8 owner maps: event index, or 255 for background.
        colours: colour of each event, by event index.
        shapes: shape of each event, by event index.
        grid: patches per side; ``H`` and ``W`` must be multiples of it.

    Returns:
        ``(F, grid * grid, len(LABELS))`` float32 in [0, 1].

    Raises:
        SynthError: the frame size is not a multiple of ``grid``.
    """
    f, h, w = labels.shape
    if h % grid or w % grid:
        raise SynthError(f"frame size {h}x{w} is not a multiple of the {grid}x{grid} token grid")
    fraction = np.zeros((f, grid * grid, len(LABELS)), dtype=np.float32)
    for k, (colour, shape) in enumerate(zip(colours, shapes)):
        # the share of each patch that event k owns; each pixel has one owner, so shares add up
        owned = (labels == k).reshape(f, grid, h // grid, grid, w // grid).mean(axis=(2, 4), dtype=np.float32)
        fraction[..., LABELS.index(colour)] += owned.reshape(f, grid * grid)
        fraction[..., LABELS.index(shape)] += owned.reshape(f, grid * grid)
    return np.minimum(1.0, fraction / FULL_FRACTION).astype(np.float32)


def load_frames(synth_dir: str | Path, split: str, *, image_size: int, grid: int, frame_stride: int = 2,
                reader: str = "auto", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                limit: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded, normalised frames of one split and their patch targets.

    Args:
        synth_dir: VTG-Synth root (holds ``meta.json``).
        split: ``train`` or ``val``.
        image_size: square frame size fed to the encoder.
        grid: token grid side of the encoder.
        frame_stride: keep every n-th frame.
        reader: video reader name.
        mean: normalisation mean.
        std: normalisation std.
        limit: at most this many videos.

    Returns:
        frames ``(N, 3, image_size, image_size)`` float32 and targets ``(N, grid * grid, len(LABELS))``.
    """
    from vtgcore.data.transforms import normalize
    from vtgcore.data.video import get_reader, reader_for

    root = Path(synth_dir)
    meta = _meta(root)
    frames, targets = [], []
    videos = [v for v in meta["videos"] if v["split"] == split][:limit]
    if not videos:
        raise SynthError(f"{root / 'meta.json'}: no {split} videos")
    for video in videos:
        index = int(Path(video["video"]).stem.rsplit("_", 1)[1])
        plan = plan_video(meta["seed"], split, index, size=meta["size"], fps=float(meta["fps"]),
                          min_duration=meta["min_duration"], max_duration=meta["max_duration"])
        if plan.video != video["video"] or len(plan.events) != len(video["events"]):
            raise SynthError(f"{video['video']}: meta.json does not match the generator's plan; regenerate")
        maps = label_maps(plan)
        keep = list(range(0, plan.num_frames, frame_stride))
        path = root / video["video"]
        pixels, _ = get_reader(reader_for(path, reader)).read(path, keep, (image_size, image_size))
        frames.append(normalize(pixels, mean, std))
        targets.append(torch.from_numpy(patch_targets(maps[keep], [e.colour for e in plan.events],
                                                      [e.shape for e in plan.events], grid)))
    return torch.cat(frames), torch.cat(targets)


def token_grid(encoder: nn.Module) -> int:
    """Side of the encoder's square token grid (``tokens_per_frame`` must be a square)."""
    tokens = int(encoder.tokens_per_frame)
    grid = math.isqrt(tokens)
    if tokens < 1 or grid * grid != tokens:
        raise SynthError(f"{type(encoder).__name__} has {tokens} tokens per frame, not a square grid of patches")
    return grid


@torch.no_grad()
def probe_accuracy(encoder: nn.Module, head: nn.Module, frames: torch.Tensor, targets: torch.Tensor,
                   chunk: int = 512) -> dict[str, float]:
    """Accuracy and recall of the patch labels on held-out frames.

    A (token, label) pair counts as present when its target is at least 0.5 (the label covers at
    least half of :data:`FULL_FRACTION` of the patch) and as predicted when its logit is positive.

    Returns:
        ``accuracy`` over every (token, label) pair, ``recall`` over the present ones, and
        ``majority`` (the accuracy of always answering "absent").
    """
    was = encoder.training
    encoder.eval()
    predicted = torch.cat([head(encoder(frames[i:i + chunk])) > 0 for i in range(0, len(frames), chunk)])
    encoder.train(was)
    present = targets >= 0.5
    return {"accuracy": float((predicted == present).float().mean()),
            "recall": float((predicted & present).sum() / present.sum().clamp(min=1)),
            "majority": float((~present).float().mean())}


def pretrain_encoder(encoder: nn.Module, synth_dir: str | Path, *, steps: int = 600, batch_size: int = 256,
                     lr: float = 2e-3, frame_stride: int = 2, reader: str = "auto", seed: int = 0,
                     progress: Optional[Callable[[int, int, float], Any]] = None) -> dict[str, Any]:
    """Train ``encoder`` in place on the patch labels of the training split; report held-out accuracy.

    Args:
        encoder: a frame encoder with ``image_size``, ``tokens_per_frame`` (a square), ``out_dim``,
            ``mean`` and ``std``.
        synth_dir: VTG-Synth root.
        steps: optimiser steps (AdamW, constant learning rate).
        batch_size: frames per step.
        lr: learning rate.
        frame_stride: keep every n-th frame of each video.
        reader: video reader name.
        seed: seed of the head's initialisation and the batch draws.
        progress: called as ``progress(step, steps, loss)`` every 50 steps and at the end, and as
            ``progress(0, steps, nan)`` once the frames are decoded, when the steps start (so
            that rates and times left count the steps only).

    Returns:
        ``{"steps", "train_frames", "final_loss", "val", "seconds"}``; ``val`` is
        :func:`probe_accuracy` of the trained encoder and head on the validation split's frames.

    Raises:
        SynthError: missing or stale benchmark, or an encoder without a square token grid.
    """
    if steps < 1 or batch_size < 1:
        raise SynthError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    started = time.perf_counter()
    grid = token_grid(encoder)
    opts = dict(image_size=encoder.image_size, grid=grid, frame_stride=frame_stride, reader=reader,
                mean=encoder.mean, std=encoder.std)
    frames, targets = load_frames(synth_dir, "train", **opts)
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(encoder.out_dim, len(LABELS))
    with torch.no_grad():
        head.weight.normal_(0.0, 0.02, generator=generator)
        head.bias.zero_()
    params = [p for p in encoder.parameters()] + list(head.parameters())
    for p in encoder.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    encoder.train()
    loss_value = float("nan")
    if progress is not None:
        progress(0, steps, loss_value)
    for step in range(1, steps + 1):
        pick = torch.randint(0, len(frames), (min(batch_size, len(frames)),), generator=generator)
        logits = head(encoder(frames[pick]))  # (B, L, C)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, targets[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_value = loss.item()
        if progress is not None and (step % 50 == 0 or step == steps):
            progress(step, steps, loss_value)
    encoder.eval()
    val_frames, val_targets = load_frames(synth_dir, "val", **opts)
    return {"steps": steps, "train_frames": len(frames), "final_loss": loss_value,
            "val": probe_accuracy(encoder, head, val_frames, val_targets),
            "seconds": round(time.perf_counter() - started, 1)}


def pretrain_recipe_encoder(recipe: Any, synth_dir: str | Path, out: str | Path, *, steps: int = 600,
                            progress: Optional[Callable[[int, int, float], Any]] = None) -> dict[str, Any]:
    """Build the recipe's encoder (seeded by the recipe), pre-train it on VTG-Synth and save its weights.

    Args:
        recipe: a loaded recipe; its ``model.encoder`` names the plugin and params.
        synth_dir: VTG-Synth root.
        out: safetensors file to write (atomically); load it with ``model.encoder.checkpoint=OUT``.
        steps: optimiser steps.
        progress: see :func:`pretrain_encoder`.

    Returns:
        :func:`pretrain_encoder`'s report plus ``out`` and ``encoder`` (plugin name and params).
    """
    from omegaconf import OmegaConf
    from safetensors.torch import save

    from vtgcore.catalog import default_catalog
    from vtgcore.utils.fileio import atomic_write_bytes

    spec = OmegaConf.to_container(recipe.model.encoder, resolve=True)
    torch.manual_seed(int(recipe.seed))
    encoder = default_catalog().build("encoder", spec["name"], spec["params"])
    report = pretrain_encoder(encoder, synth_dir, steps=steps, reader=recipe.data.reader, seed=int(recipe.seed),
                              progress=progress)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    atomic_write_bytes(Path(out), save(state, metadata={"encoder": json.dumps({"name": spec["name"],
                                                                               "params": spec["params"]}),
                                                        "generator": GENERATOR_VERSION}))
    return {**report, "out": str(out), "encoder": {"name": spec["name"], "params": spec["params"]}}
