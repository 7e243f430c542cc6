"""The second half of the runner-section check: only names mmengine's or vtgcore's registries hold.

:func:`vtgcore.config.runner_section.check_recipe_objects` (pure, at recipe load) rejects import
paths; :func:`check_registered_types` runs just before the mmengine ``Runner`` is built and accepts
only ``type`` names a registry already holds, so mmengine never imports a module by name.
"""

from __future__ import annotations

from typing import Any, Mapping

from vtgcore.config.runner_section import _PLAIN_NAME, _walk
from vtgcore.errors import RecipeError


def registered_names() -> set[str]:
    """Every name held by mmengine's root registries and vtgcore's child registries (importing the
    modules they list, as mmengine does when it builds)."""
    import mmengine.registry as roots
    from mmengine.registry import Registry

    import vtgcore.mm  # noqa: F401  (registers vtgcore's components)

    names: set[str] = set()
    pending = [value for value in vars(roots).values() if isinstance(value, Registry)]
    seen: set[int] = set()
    while pending:
        registry = pending.pop()
        if id(registry) in seen:
            continue
        seen.add(id(registry))
        try:
            registry.import_from_location()
        except Exception:  # noqa: BLE001 - a location that fails to import registers nothing
            pass
        names.update(registry.module_dict)
        pending.extend(registry.children.values())
    return names


def check_registered_types(runner: Mapping[str, Any], where: str) -> None:
    """Accept only ``type`` names that a registry already holds (called before the Runner is built).

    Raises:
        RecipeError: a ``type`` that is not a plain name or that no registry holds.
    """
    known: set[str] | None = None
    for path, node in _walk(runner, "runner"):
        if "type" not in node:
            continue
        value = node["type"]
        if not (isinstance(value, str) and _PLAIN_NAME.match(value)):
            raise RecipeError(f"{where}: {path}.type is {value!r}: a runner component is named by its "
                              "registered name (e.g. AdamW, LinearLR), never by a Python import path")
        known = registered_names() if known is None else known
        if value not in known:
            raise RecipeError(f"{where}: {path}.type {value!r} is not a registered mmengine or vtgcore component "
                              "(recipes cannot import other Python objects)")
