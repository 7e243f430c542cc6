"""Checks that keep a recipe from naming Python code to import or run.

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
