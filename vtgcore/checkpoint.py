"""Our own checkpoints: trainable weights as safetensors plus the resolved recipe and plugin list.

A checkpoint folder holds ``model.safetensors`` (only the parameters that were trainable;
everything else is rebuilt from the recipe),
``recipe.yaml`` (the resolved recipe), ``plugins.json`` (every plugin with its provider and
version) and ``manifest.json``. Loading never unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from vtgcore.errors import VTGError
from vtgcore.fileio import atomic_write_bytes, atomic_write_text

WEIGHTS = "model.safetensors"
RECIPE = "recipe.yaml"
PLUGINS = "plugins.json"
MANIFEST = "manifest.json"


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that require grad, detached and contiguous, by name."""
    return {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}


def plugin_rows(catalog: Any = None) -> list[dict[str, str]]:
    """Every registered plugin as ``vtg plugins --json`` lists it."""
    from vtgcore.catalog import default_catalog

    return [e.as_row() for e in (catalog or default_catalog()).entries()]


def save_checkpoint(model: torch.nn.Module, directory: str | Path, recipe: Optional[DictConfig] = None,
                    extra: Optional[dict[str, Any]] = None,
                    state: Optional[dict[str, torch.Tensor]] = None) -> Path:
    """Save the trainable weights and, when given, the recipe, atomically file by file.

    Args:
        model: the model (its trainable parameters are saved).
        directory: the checkpoint folder (created).
        recipe: the resolved recipe.
        extra: more fields for ``manifest.json`` (step, epoch, metrics ...).
        state: the tensors to save instead of the trainable parameters (names of ``model``'s
            parameters or buffers; e.g. a converted checkpoint saves frozen weights too).

    Returns:
        The folder.
    """
    from safetensors.torch import save

    directory = Path(directory)
    state = trainable_state(model) if state is None else {k: v.detach().contiguous().cpu() for k, v in state.items()}
    atomic_write_bytes(directory / WEIGHTS, save(state))
    if recipe is not None:
        atomic_write_text(directory / RECIPE, OmegaConf.to_yaml(recipe, resolve=True))
    atomic_write_text(directory / PLUGINS, json.dumps(plugin_rows(), indent=2))
    from vtgcore import __version__

    manifest = {"format": "vtgcore-checkpoint-1", "vtgcore": __version__, "tensors": len(state),
                "parameters": int(sum(t.numel() for t in state.values())), **(extra or {})}
    atomic_write_text(directory / MANIFEST, json.dumps(manifest, indent=2))
    return directory


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder meant by ``path``: a checkpoint folder or weights file as is; a
    ``checkpoints`` folder or a run folder (holding ``checkpoints/``) through its ``last`` pointer."""
    path = Path(path)
    for folder in (path, path / "checkpoints"):
        pointer = folder / "last"
        if folder.is_dir() and not (folder / WEIGHTS).is_file() and pointer.is_file():
            return folder / pointer.read_text().strip()
    return path


def load_checkpoint(model: torch.nn.Module, directory: str | Path) -> dict[str, Any]:
    """Load a checkpoint's weights into ``model`` (built from the same recipe).

    ``directory`` is a checkpoint folder, its weights file, or a run's ``checkpoints`` folder or run
    folder, whose ``last`` pointer names the newest complete checkpoint.

    Every tensor in the file must exist in the model with the same shape; tensors the model has and
    the file lacks keep their built values (they were frozen when saved).

    Returns:
        The manifest.

    Raises:
        VTGError: the folder or weights file is missing, not safetensors, or does not match.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = resolve_checkpoint(directory)
    weights = directory / WEIGHTS if directory.is_dir() else directory
    if not weights.is_file():
        raise VTGError(f"{weights}: checkpoint weights not found")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise VTGError(f"{weights}: not a safetensors file ({exc})") from None
    own = dict(model.named_parameters())
    own.update(dict(model.named_buffers()))
    unknown = sorted(set(state) - set(own))
    if unknown:
        raise VTGError(f"{weights}: {len(unknown)} tensor(s) not in the model, e.g. {unknown[0]!r}; "
                       "was it saved from another recipe?")
    bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items() if v.shape != own[k].shape]
    if bad:
        k, got, want = bad[0]
        raise VTGError(f"{weights}: shape mismatch for {k!r}: file {got}, model {want} ({len(bad)} mismatched)")
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value.to(own[key].dtype))
    manifest_path = directory / MANIFEST if directory.is_dir() else weights.parent / MANIFEST
    return json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
