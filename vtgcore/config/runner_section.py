"""Checks of a recipe's ``runner`` section: no Python code to import or run, and typed values.

A recipe chooses plugins by their registered names; it never names a Python object. Two places
could otherwise reach arbitrary code:

* ``_target_``-style keys (hydra's instantiate convention) anywhere in a recipe;
* the ``runner`` section, handed to mmengine, whose registries build every ``type: X`` and, for a
  name they do not know, import it as a dotted path (``type: subprocess.Popen`` would start a
  process; a plain unknown name would import a top-level module).

:func:`check_recipe_objects` runs when a recipe is loaded (pure Python, no mmengine import): it
rejects the ``_target_`` keys, ``runner`` keys that ``vtg train`` does not use, and any ``type``
that is not a plain name. :func:`vtgcore.mm.registered_types.check_registered_types` runs before the mmengine ``Runner`` is
built and accepts only names that mmengine's or vtgcore's registries already hold.

:func:`check_runner_values` (also at recipe load, so ``vtg recipe validate`` reports it, not first
``vtg train``) types the keys ``vtg train`` reads itself: ``precision`` and ``strategy`` are one of
:data:`PRECISIONS` and :data:`STRATEGIES` (defined here once; :mod:`vtgcore.mm.runner` imports
them), ``train_cfg.by_epoch`` is absent or false, the step counts are positive integers. The
mmengine pass-through dicts (``optim_wrapper``, hooks, ...) stay free-form.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

from vtgcore.errors import RecipeError

OBJECT_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_", "_call_")
"""Keys that mean "import and call this Python object" in hydra-style configs; never allowed."""

VTG_RUNNER_KEYS = (
    "train_cfg", "optim_wrapper", "param_scheduler", "precision", "accumulate", "global_batch_size",
    "optimizer_steps", "warmup_iters", "checkpoint_interval", "log_interval", "default_hooks", "custom_hooks",
    "env_cfg", "model_wrapper_cfg", "strategy",
)
"""``runner`` keys that ``vtg train`` reads itself (see ``docs/training.md``)."""

RUNNER_PASSTHROUGH = (
    "val_cfg", "test_cfg", "val_dataloader", "test_dataloader", "val_evaluator", "test_evaluator",
    "auto_scale_lr", "data_preprocessor", "log_level", "visualizer",
)
"""mmengine ``Runner`` arguments handed through unchanged."""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""``runner.precision``: ``auto`` is bf16 autocast where the device supports it (default)."""

STRATEGIES = ("ddp",)
"""``runner.strategy`` (default ``ddp``); DeepSpeed would need mmengine's FlexibleRunner, and FSDP
is refused (:data:`FSDP_REFUSAL`) until its checkpoints hold the full weights."""

FSDP_REFUSAL = ("FSDP is refused until its checkpoints save the full weights: the checkpoint hook saves "
                "the parameters rank 0 holds, which under FSDP are shards that cannot be loaded or resumed; "
                "use runner.strategy: ddp (memory levers: gradient checkpointing, bf16, the feature cache; "
                "docs/training.md)")
"""Why ``runner.strategy: fsdp`` (or an FSDP ``model_wrapper_cfg``) is refused (issue 20, item 7)."""

POSITIVE_INT_KEYS = ("accumulate", "global_batch_size", "optimizer_steps", "checkpoint_interval", "log_interval")
"""``runner`` keys that are positive integers."""

OPTIONAL_INT_KEYS = ("accumulate", "global_batch_size", "optimizer_steps")
"""Of those, the ones that may be null (not set: ``accumulate`` is then 1 or derived from
``global_batch_size``; see :mod:`vtgcore.mm.batch`)."""

NON_NEGATIVE_INT_KEYS = ("warmup_iters",)
"""``runner`` keys that are integers >= 0."""

REFUSED_RUNNER_KEYS = {
    "load_from": "use `vtg train --load-from CKPT` (vtgcore safetensors checkpoints; mmengine's loader unpickles)",
    "resume": "use `vtg train --resume` (vtgcore safetensors checkpoints; mmengine's loader unpickles)",
}

_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _walk(node: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every mapping inside ``node`` with its dotted path."""
    if isinstance(node, Mapping):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (list, tuple)):
        for k, value in enumerate(node):
            yield from _walk(value, f"{path}[{k}]")


def check_recipe_objects(recipe: Mapping[str, Any], where: str) -> None:
    """Reject recipe content that would name Python code (see the module docstring).

    Args:
        recipe: the resolved recipe as plain containers.
        where: the recipe file, named in errors.

    Raises:
        RecipeError: a ``_target_``-style key anywhere, a ``runner`` key ``vtg train`` does not
            use (``load_from`` and ``resume`` with the command-line option to use instead), or a
            ``runner`` ``type`` that is not a plain registered-name spelling.
    """
    for path, node in _walk(recipe, ""):
        found = [k for k in node if k in OBJECT_KEYS]
        if found:
            at = f"{path}.{found[0]}" if path else found[0]
            raise RecipeError(f"{where}: {at}: recipes cannot name Python objects to build; choose a "
                              "registered plugin by name (vtg plugins lists them)")
    runner = recipe.get("runner") or {}
    for key in runner:
        if key in REFUSED_RUNNER_KEYS:
            raise RecipeError(f"{where}: runner.{key} is not allowed: {REFUSED_RUNNER_KEYS[key]}")
        if key not in VTG_RUNNER_KEYS and key not in RUNNER_PASSTHROUGH:
            raise RecipeError(f"{where}: unknown key 'runner.{key}'; allowed: "
                              f"{', '.join(VTG_RUNNER_KEYS + RUNNER_PASSTHROUGH)}")
    for path, node in _walk(runner, "runner"):
        if "type" in node and not (isinstance(node["type"], str) and _PLAIN_NAME.match(node["type"])):
            raise RecipeError(f"{where}: {path}.type is {node['type']!r}: a runner component is named by its "
                              "registered name (e.g. AdamW, LinearLR), never by a Python import path")


def _show(value: Any) -> str:
    """A value as the recipe spells it (``null``, ``true``, ``'fp8'``, ``0``)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_runner_values(runner: Mapping[str, Any] | None, where: str) -> None:
    """Type the ``runner`` keys that ``vtg train`` reads itself (see the module docstring).

    Args:
        runner: the resolved ``runner`` section as plain containers (None: empty).
        where: the recipe file, named in errors.

    Raises:
        RecipeError: naming the file, the key, the value and the allowed values.
    """
    runner = runner or {}

    def bad(key: str, value: Any, allowed: str) -> RecipeError:
        return RecipeError(f"{where}: runner.{key} is {_show(value)}; allowed: {allowed}")

    wrapper = runner.get("model_wrapper_cfg")
    wrapper_type = str(wrapper.get("type", "")) if isinstance(wrapper, dict) else ""
    if str(runner.get("strategy", "")).lower() == "fsdp" or "fullysharded" in wrapper_type.lower():
        key = "strategy" if str(runner.get("strategy", "")).lower() == "fsdp" else "model_wrapper_cfg.type"
        value = runner["strategy"] if key == "strategy" else wrapper_type
        raise RecipeError(f"{where}: runner.{key} is {_show(value)}; {FSDP_REFUSAL}")
    for key, choices in (("precision", PRECISIONS), ("strategy", STRATEGIES)):
        if key in runner and runner[key] not in choices:
            note = (" (DeepSpeed runs through mmengine's FlexibleRunner, not wired yet)"
                    if key == "strategy" and str(runner[key]).lower() == "deepspeed" else "")
            raise bad(key, runner[key], ", ".join(choices) + note)
    for key in POSITIVE_INT_KEYS:
        value = runner.get(key)
        if key in runner and not (value is None and key in OPTIONAL_INT_KEYS) and not (_is_int(value) and value >= 1):
            raise bad(key, value, "a positive integer" + (" or null" if key in OPTIONAL_INT_KEYS else ""))
    for key in NON_NEGATIVE_INT_KEYS:
        if key in runner and not (_is_int(runner[key]) and runner[key] >= 0):
            raise bad(key, runner[key], "an integer >= 0")
    train_cfg = runner.get("train_cfg")
    if train_cfg is None:
        train_cfg = {}
    if not isinstance(train_cfg, Mapping):
        raise bad("train_cfg", train_cfg, "a mapping (mmengine loop settings: max_iters, val_interval)")
    if "by_epoch" in train_cfg:
        value = train_cfg["by_epoch"]
        if value is True:
            raise RecipeError(f"{where}: runner.train_cfg.by_epoch: true is not supported (allowed: false): vtg "
                              "train runs an iteration-based loop (set runner.train_cfg.max_iters)")
        if value is not False:
            raise bad("train_cfg.by_epoch", value, "false (vtg train runs an iteration-based loop)")
    if "max_iters" in train_cfg:
        value = train_cfg["max_iters"]
        if value is None and runner.get("optimizer_steps") is None:
            raise bad("train_cfg.max_iters", value, "a positive integer (or leave it out and set runner.optimizer_steps)")
        if value is not None and not (_is_int(value) and value >= 1):
            raise bad("train_cfg.max_iters", value, "a positive integer")
    _check_optimizer(runner, where)


OPTIMIZER_RANGES = {"lr": "a finite number > 0", "weight_decay": "a finite number >= 0",
                    "eps": "a finite number > 0", "momentum": "a finite number >= 0"}
"""Optimizer settings checked before mmengine builds the optimizer (torch's own errors are tracebacks)."""


def _check_optimizer(runner: Mapping[str, Any], where: str) -> None:
    """``runner.optim_wrapper.optimizer``'s ``lr`` (finite, > 0, a number), ``weight_decay``, ``eps``
    and ``momentum`` (finite, >= 0) and the wrapper's ``clip_grad.max_norm`` (finite, > 0)."""
    import math

    wrapper = runner.get("optim_wrapper")
    if not isinstance(wrapper, Mapping):
        return
    checks: list[tuple[str, Any, bool]] = []  # (key, value, zero allowed)
    optimizer = wrapper.get("optimizer")
    if isinstance(optimizer, Mapping):
        for key in OPTIMIZER_RANGES:
            if key in optimizer:
                checks.append((f"optim_wrapper.optimizer.{key}", optimizer[key], key in ("weight_decay", "momentum")))
    clip = wrapper.get("clip_grad")
    if isinstance(clip, Mapping) and "max_norm" in clip:
        checks.append(("optim_wrapper.clip_grad.max_norm", clip["max_norm"], False))
    for key, value, zero_ok in checks:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
            shown = _show(value) if not isinstance(value, (list, dict)) else type(value).__name__
            raise RecipeError(f"{where}: runner.{key} is {shown}; allowed: a finite number "
                              f"{'>= 0' if zero_ok else '> 0'}")
