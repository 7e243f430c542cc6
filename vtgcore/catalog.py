"""The catalog: every registered component, by kind and name, with its provider and schema."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vtgcore.errors import ConfigValidationError, PluginError, UnknownPluginError, VTGError
from vtgcore.hookspecs import KINDS
from vtgcore.plugin_loader import Provider, get_plugin_manager


@dataclass(frozen=True)
class Entry:
    """One registered component.

    Attributes:
        kind: one of :data:`vtgcore.hookspecs.KINDS`.
        name: the name recipes use.
        factory: callable building the component.
        config: dataclass describing the recipe ``params`` (``None``: the factory takes none).
        description: one line for ``vtg plugins``.
        provider: the package that registered it.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    config: type | None
    description: str
    provider: Provider

    def as_row(self) -> dict[str, str]:
        """The row ``vtg plugins --json`` prints."""
        return {
            "kind": self.kind,
            "name": self.name,
            "provider": self.provider.package,
            "version": self.provider.version,
            "description": self.description,
        }


class Catalog:
    """Typed facade over the plugin hooks: collects registrations and builds components.

    Args:
        entry_points: passed to :func:`vtgcore.plugin_loader.get_plugin_manager`.
    """

    def __init__(self, entry_points: bool | None = None) -> None:
        self.pm, self.providers = get_plugin_manager(entry_points)
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        for kind, hook_name in KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                provider = self.providers[impl.plugin_name]
                impl.function(register=self._registrar(kind, provider))

    def component_dirs(self) -> list[tuple[Provider, Path]]:
        """``components/`` folders shipped by the loaded third-party plugins, in loading order.

        A plugin package may ship recipe component files beside its module:
        ``<module folder>/components/<group>/<option>.yaml``. The recipe loader looks there when the
        recipes tree has no such option (see :func:`vtgcore.config.loader.load_component`).
        """
        found: list[tuple[Provider, Path]] = []
        for name, provider in self.providers.items():
            module = self.pm.get_plugin(name)
            file = getattr(module, "__file__", None)
            if provider.package == "vtgcore" or not file:
                continue
            folder = Path(file).parent / "components"
            if folder.is_dir() and all(folder != known for _, known in found):
                found.append((provider, folder))
        return found

    def _registrar(self, kind: str, provider: Provider) -> Callable[..., None]:
        def register(name: str, factory: Callable[..., Any], *, config: type | None = None,
                     description: str = "") -> None:
            where = f"plugin {provider.plugin!r} from package {provider.package!r}"
            if not isinstance(name, str) or not name:
                raise PluginError(f"{where} registered a {kind} with an invalid name {name!r}")
            if not callable(factory):
                raise PluginError(f"{where} registered {kind} {name!r} with a factory that is not callable")
            if config is not None and not dataclasses.is_dataclass(config):
                raise PluginError(f"{where} registered {kind} {name!r} with config={config!r}, which is not a dataclass")
            old = self._entries[kind].get(name)
            if old is not None:
                raise PluginError(
                    f"duplicate {kind} name {name!r}: registered by plugin {old.provider.plugin!r} "
                    f"(package {old.provider.package!r}) and by {where}"
                )
            self._entries[kind][name] = Entry(kind, name, factory, config, description, provider)

        return register

    def names(self, kind: str) -> list[str]:
        """Sorted names registered for ``kind``."""
        return sorted(self._entries[self._check_kind(kind)])

    def entries(self) -> list[Entry]:
        """All entries, ordered by kind (hook order) and name."""
        return [self._entries[kind][name] for kind in KINDS for name in sorted(self._entries[kind])]

    def get(self, kind: str, name: str) -> Entry:
        """Look up one entry.

        Raises:
            UnknownPluginError: ``name`` is not registered; the message lists the available names.
        """
        table = self._entries[self._check_kind(kind)]
        if name not in table:
            close = difflib.get_close_matches(str(name), table, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownPluginError(
                f"unknown {kind} plugin {name!r}; available: {', '.join(sorted(table)) or '(none)'}.{hint}"
            )
        return table[name]

    def resolve_params(self, kind: str, name: str, params: Mapping[str, Any] | None,
                       where: str = "") -> dict[str, Any]:
        """Validate ``params`` against the plugin's config dataclass and fill in defaults.

        Args:
            kind: plugin kind.
            name: plugin name.
            params: the recipe's ``params`` mapping.
            where: text naming the recipe file, used in error messages.

        Returns:
            The complete keyword arguments for the factory (without wiring arguments).

        Raises:
            ConfigValidationError: an unknown key, a missing required key or a wrong type.
        """
        pre = f"{where}: " if where else ""
        try:
            entry = self.get(kind, name)
        except UnknownPluginError as exc:
            raise UnknownPluginError(f"{pre}{exc}") from None
        params = dict(params or {})
        if entry.config is None:
            if params:
                raise ConfigValidationError(
                    f"{pre}{kind} plugin {name!r} takes no params, got {sorted(params)}")
            return {}
        allowed = [f.name for f in dataclasses.fields(entry.config)]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ConfigValidationError(
                f"{pre}{kind} plugin {name!r}: unknown param(s) {unknown}; allowed: {allowed}")
        try:
            merged = OmegaConf.merge(OmegaConf.structured(entry.config), params)
            missing = sorted(OmegaConf.missing_keys(merged))
            if missing:
                raise ConfigValidationError(
                    f"{pre}{kind} plugin {name!r}: required param(s) {missing} not set")
            resolved = OmegaConf.to_container(merged, resolve=True)
        except OmegaConfBaseException as exc:
            key = getattr(exc, "full_key", "") or "?"
            msg = str(exc).splitlines()[0]
            raise ConfigValidationError(
                f"{pre}{kind} plugin {name!r}: bad value for param {key!r}: {msg}") from None
        from vtgcore.ranges import declared_ranges

        for key, allowed in declared_ranges(entry.config).items():  # declared ranges (vtgcore.ranges.in_range)
            problem = allowed.problem(resolved.get(key))
            if problem:
                raise ConfigValidationError(f"{pre}{kind} plugin {name!r}: bad value for param {key!r}: {problem}")
        try:  # the dataclass's own checks (``__post_init__``) run when the recipe is validated
            entry.config(**resolved)
        except (TypeError, ValueError) as exc:
            raise ConfigValidationError(f"{pre}{kind} plugin {name!r}: {exc}") from None
        return resolved

    def build(self, kind: str, name: str, params: Mapping[str, Any] | None = None, *,
              where: str = "", **wiring: Any) -> Any:
        """Build one component: validate ``params`` then call the factory with them and ``wiring``.

        Args:
            kind: plugin kind.
            name: plugin name.
            params: recipe params.
            where: recipe file for error messages.
            **wiring: arguments the core supplies (``dim``, ``in_dim``, ``out_dim``).

        Raises:
            PluginError: the factory raised an exception that is not a :class:`VTGError`: one line
                naming the kind, the plugin and its package, with the exception's first line; the
                exception itself is the ``__cause__`` (``vtg --debug`` shows its traceback).
            VTGError: the factory raised one (a bad checkpoint, a bad param ...): re-raised as is,
                its message prefixed with the kind and plugin name unless it names the plugin.
        """
        kwargs = self.resolve_params(kind, name, params, where)
        entry = self.get(kind, name)
        try:
            return entry.factory(**kwargs, **wiring)
        except VTGError as exc:
            if (name not in str(exc) and len(exc.args) == 1 and isinstance(exc.args[0], str)
                    and not isinstance(exc, OSError)):
                exc.args = (f"{kind} plugin {name!r}: {exc.args[0]}",)
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of third-party code becomes one line
            pre = f"{where}: " if where else ""
            detail = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            raise PluginError(
                f"{pre}{kind} plugin {name!r} (plugin {entry.provider.plugin!r} from package "
                f"{entry.provider.package!r} {entry.provider.version}) failed to build: "
                f"{type(exc).__name__}{': ' + detail[:300] if detail else ''} (vtg --debug shows the traceback)"
            ) from exc

    @staticmethod
    def _check_kind(kind: str) -> str:
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
        return kind


_DEFAULT: Catalog | None = None


def default_catalog() -> Catalog:
    """The process-wide catalog (built on first use, honouring the ``VTG_*`` env variables)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Catalog()
    return _DEFAULT
