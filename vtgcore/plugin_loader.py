"""Loading plugins: the built-in list, entry points of group ``vtgcore``, and the env switches.

Environment variables:

* ``VTG_DISABLE_PLUGIN_AUTOLOAD=1``: do not load third-party entry points (built-ins still load).
* ``VTG_LOAD_PLUGINS=a,b``: load only these third-party plugins (entry-point name or package name).
* ``VTG_BLOCK_PLUGINS=a,b``: never load these third-party plugins.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass

import pluggy

from vtgcore import hookspecs
from vtgcore.hookspecs import hookimpl  # noqa: F401  (re-exported for old imports)
from vtgcore.errors import PluginError

ENTRY_POINT_GROUP = "vtgcore"

BUILTIN_PACKAGE = "vtgcore_plugins"
"""Import package of the first-party plugins (folder ``plugins/``)."""


def builtin_plugin_modules() -> tuple[str, ...]:
    """Every first-party plugin module: each module under :data:`BUILTIN_PACKAGE` whose name does not
    start with ``_`` (``_selection.py`` and the like are helpers), found with :mod:`pkgutil`, so a
    new plugin file is registered without editing a list. They are registered exactly like
    third-party plugins.
    """
    import pkgutil

    package = importlib.import_module(BUILTIN_PACKAGE)
    found = []
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{BUILTIN_PACKAGE}."):
        if info.ispkg or info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        found.append(info.name)
    return tuple(sorted(found))


@dataclass(frozen=True)
class Provider:
    """Where a registered plugin module comes from.

    Attributes:
        plugin: the name the module is registered under in the plugin manager.
        package: the distribution that ships it (``vtgcore`` for built-ins).
        version: that distribution's version.
    """

    plugin: str
    package: str
    version: str


def _env_list(name: str) -> set[str]:
    return {item.strip() for item in os.environ.get(name, "").split(",") if item.strip()}


def _vtgcore_version() -> str:
    from vtgcore import __version__

    return __version__


def _register(pm: pluggy.PluginManager, module: object, name: str) -> None:
    try:
        pm.register(module, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r}: {exc}") from None


def get_plugin_manager(entry_points: bool | None = None) -> tuple[pluggy.PluginManager, dict[str, Provider]]:
    """Build a fresh plugin manager with the built-in and (optionally) third-party plugins.

    Args:
        entry_points: load the ``vtgcore`` entry-point group. ``None`` means "unless
            ``VTG_DISABLE_PLUGIN_AUTOLOAD`` is set".

    Returns:
        The plugin manager and a map from registered plugin name to its :class:`Provider`.

    Raises:
        PluginError: a plugin fails to import, or implements a hook that does not exist (for
            example a misspelled ``vtg_register_compresors``). The message names the plugin and
            its package.
    """
    if entry_points is None:
        entry_points = os.environ.get("VTG_DISABLE_PLUGIN_AUTOLOAD", "").strip() in ("", "0")
    pm = pluggy.PluginManager("vtgcore")
    pm.add_hookspecs(hookspecs)
    providers: dict[str, Provider] = {}
    version = _vtgcore_version()
    for module_name in builtin_plugin_modules():
        module = importlib.import_module(module_name)
        _register(pm, module, module_name)
        providers[module_name] = Provider(module_name, "vtgcore", version)
    if entry_points:
        allow, block = _env_list("VTG_LOAD_PLUGINS"), _env_list("VTG_BLOCK_PLUGINS")
        seen: set[str] = set()
        for dist in importlib.metadata.distributions():
            dist_name = dist.metadata["Name"] or "?"
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP or ep.name in seen:
                    continue
                if allow and not ({ep.name, dist_name} & allow):
                    continue
                if {ep.name, dist_name} & block:
                    continue
                seen.add(ep.name)
                try:
                    module = ep.load()
                except Exception as exc:  # a broken third-party plugin must not show a traceback
                    raise PluginError(
                        f"plugin {ep.name!r} from package {dist_name!r} failed to import: "
                        f"{type(exc).__name__}: {exc} (set VTG_BLOCK_PLUGINS={ep.name} to skip it)"
                    ) from None
                _register(pm, module, ep.name)
                providers[ep.name] = Provider(ep.name, dist_name, dist.version or "?")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or "?"
        provider = providers.get(name)
        package = provider.package if provider else "?"
        known = ", ".join(sorted(hookspecs.KINDS.values()))
        raise PluginError(
            f"plugin {name!r} from package {package!r} implements an unknown hook: {exc} "
            f"(known hooks: {known})"
        ) from None
    return pm, providers
