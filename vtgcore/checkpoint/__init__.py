"""Our own checkpoints: trainable weights as safetensors plus the resolved recipe and plugin list.

A checkpoint folder holds ``model.safetensors`` (only the parameters that were trainable;
everything else is rebuilt from the recipe),
``recipe.yaml`` (the resolved recipe), ``plugins.json`` (every plugin with its provider and
version) and ``manifest.json``. Loading them never unpickles anything; other code bases' ``.pth``
files are read only through :func:`torch_load_weights` (``weights_only=True``: a pickle that would
run code is refused before any of it runs). Every file is written atomically (temporary file,
fsync, rename), so a crash during a save leaves the previous version in place.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from vtgcore.errors import CheckpointError
from vtgcore.utils.fileio import atomic_write_bytes, atomic_write_text
from vtgcore.utils.limits import json_problem, loads_json

WEIGHTS = "model.safetensors"
RECIPE = "recipe.yaml"
PLUGINS = "plugins.json"
MANIFEST = "manifest.json"
POINTER = "last"
"""File in a run's ``checkpoints/`` folder naming its newest complete checkpoint folder."""


def unpickling_refusal(error: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words.

    torch's message is several paragraphs; the useful part is the global the pickle asked for
    (``posix.system``, ``__main__.Evil``): the object it would have run or built.
    """
    text = str(error)
    match = re.search(r"GLOBAL\s+([\w.]+)", text)
    if match:
        return (f"refused: unpickling it would import {match.group(1)} (only tensors and plain containers "
                "are loaded, torch.load weights_only=True)")
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    return f"refused by the weights-only unpickler: {first}"


def torch_load_weights(path: str | Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU with one-line errors.

    Args:
        path: a ``.pth`` / ``.bin`` file written by ``torch.save``.
        what: what the file is, e.g. ``"VTG-LLM checkpoint"`` (starts every message).

    Raises:
        CheckpointError: the file is missing, would run code when unpickled (refused, nothing of it
            runs), or is not a torch file.
    """
    import pickle

    if not Path(path).is_file():
        raise CheckpointError(f"{what} {path}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{what} {path}: {unpickling_refusal(exc)}") from None
    except (RuntimeError, OSError, EOFError, ValueError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{what} {path}: unreadable ({first[:300]})") from None


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


def unreadable_file(folder: Path, files: Sequence[str] = (WEIGHTS,)) -> Optional[tuple[str, str]]:
    """The first of ``files`` in ``folder`` that is missing or unreadable, with why; None when all
    are there and readable (JSON files parse, safetensors files have a valid header)."""
    from safetensors import safe_open

    for name in files:
        path = folder / name
        try:
            if not path.is_file():
                return name, "missing"
            if path.stat().st_size == 0:
                return name, "empty"
            if name.endswith(".json"):
                loads_json(path.read_text(encoding="utf-8"))
            elif name.endswith(".safetensors"):
                with safe_open(str(path), framework="pt"):
                    pass
        except Exception as exc:  # noqa: BLE001 - any unreadable file makes the folder incomplete
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return name, f"unreadable: {first[:200]}"
    return None


def complete(folder: Path, files: Sequence[str] = (WEIGHTS,)) -> bool:
    """Whether ``folder`` holds every one of ``files``, each readable (see :func:`unreadable_file`):
    a torn or empty file makes the folder incomplete."""
    return unreadable_file(folder, files) is None


def latest_checkpoint(checkpoints: str | Path, files: Sequence[str] = (WEIGHTS,)) -> Optional[Path]:
    """The newest complete checkpoint folder of a run's ``checkpoints`` folder.

    The folder the ``last`` pointer names, when it is complete (see :func:`complete`); otherwise
    (no pointer, a torn pointer, or a folder damaged after it was written) the ``iter_<n>`` folder
    with the largest ``n`` among the complete ones. None when there is none.

    Args:
        checkpoints: the ``checkpoints`` folder.
        files: the files a complete folder holds.
    """
    checkpoints = Path(checkpoints)
    pointer = checkpoints / POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else ""
    except (OSError, UnicodeDecodeError):
        name = ""
    if name and "/" not in name and "\\" not in name and complete(checkpoints / name, files):
        return checkpoints / name
    numbered = []
    for folder in checkpoints.glob("iter_*") if checkpoints.is_dir() else ():
        suffix = folder.name.removeprefix("iter_")
        if folder.is_dir() and suffix.isdigit():
            numbered.append((int(suffix), folder))
    for _, folder in sorted(numbered, reverse=True):
        if complete(folder, files):
            return folder
    return None


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder meant by ``path``: a checkpoint folder or weights file as is; a
    ``checkpoints`` folder, a run folder (holding ``checkpoints/``) or the ``last`` pointer file
    itself through :func:`latest_checkpoint` (the pointer, or the newest complete folder)."""
    path = Path(path)
    if path.name == POINTER and path.is_file():
        path = path.parent
    for folder in (path, path / "checkpoints"):
        if folder.is_dir() and not (folder / WEIGHTS).is_file() and (
                (folder / POINTER).is_file() or any(folder.glob("iter_*"))):
            found = latest_checkpoint(folder)
            if found is None:
                raise CheckpointError(f"{folder}: no complete checkpoint (every iter_* folder lacks a readable {WEIGHTS})")
            return found
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
        CheckpointError: the folder or weights file is missing, not safetensors, or does not match.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = resolve_checkpoint(directory)
    weights = directory / WEIGHTS if directory.is_dir() else directory
    if not weights.is_file():
        raise CheckpointError(f"{weights}: checkpoint weights not found")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{weights}: not a safetensors file ({first})") from None
    own = dict(model.named_parameters())
    own.update(dict(model.named_buffers()))
    unknown = sorted(set(state) - set(own))
    if unknown:
        raise CheckpointError(f"{weights}: {len(unknown)} tensor(s) not in the model, e.g. {unknown[0]!r}; "
                       "was it saved from another recipe?")
    bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items() if v.shape != own[k].shape]
    if bad:
        k, got, want = bad[0]
        raise CheckpointError(f"{weights}: shape mismatch for {k!r}: file {got}, model {want} ({len(bad)} mismatched)")
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value.to(own[key].dtype))
    manifest_path = directory / MANIFEST if directory.is_dir() else weights.parent / MANIFEST
    if not manifest_path.is_file():
        return {}
    try:
        manifest = loads_json(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{manifest_path}: unreadable checkpoint manifest ({json_problem(exc)})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{manifest_path}: unreadable checkpoint manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{manifest_path}: unreadable checkpoint manifest (not a JSON object)")
    return manifest


def frozen_component_files(recipe: DictConfig, checkpoint: str | Path) -> list[str]:
    """Point ``recipe``'s components at the weight files the checkpoint's model loaded them from.

    A checkpoint holds the trainable tensors only. A component the run loaded from its own file
    (``model.<kind>.checkpoint``: the encoder ``vtg run`` pre-trains, a converted ViT) and kept
    frozen is not in it, so a model rebuilt from another recipe with the checkpoint's weights would
    start that component from scratch. For every model kind whose recorded recipe (the checkpoint's
    ``recipe.yaml``) names such a file while ``recipe`` names none for the same plugin, the file is
    set in ``recipe`` (in place). ``vtg train --load-from`` and ``vtg eval --checkpoint`` call it;
    a recipe that names its own file keeps it.

    Args:
        recipe: the loaded recipe the model will be built from.
        checkpoint: a checkpoint folder, weights file, run folder or ``checkpoints`` folder.

    Returns:
        One line per file taken (for the log); empty when none was.

    Raises:
        CheckpointError: a recorded file is missing (the message names the key to set).
    """
    from vtgcore.vocab import MODEL_KINDS
    from vtgcore.utils.limits import load_yaml

    folder = resolve_checkpoint(checkpoint)
    if not folder.is_dir():
        folder = folder.parent
    path = folder / RECIPE
    if not path.is_file():
        return []
    try:
        recorded = load_yaml(path.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - an unreadable record is no reason to refuse the weights
        return []
    model = recorded.get("model") if isinstance(recorded, dict) else None
    taken = []
    for kind in MODEL_KINDS:
        old = model.get(kind) if isinstance(model, dict) else None
        if not isinstance(old, dict) or not isinstance(old.get("checkpoint"), str) or not old["checkpoint"]:
            continue
        spec = recipe.model[kind]
        if spec.get("checkpoint") or spec.name != old.get("name"):
            continue
        if not Path(old["checkpoint"]).is_file():
            raise CheckpointError(f"{path}: model.{kind} ({spec.name}) was loaded from {old['checkpoint']}, which is "
                                  f"missing; set model.{kind}.checkpoint to its weights")
        spec.checkpoint = old["checkpoint"]
        taken.append(f"model.{kind}.checkpoint = {old['checkpoint']} (as the checkpoint's recipe {path})")
    return taken
