"""Recipe loading: a small ``defaults:`` grammar, group swaps, dotlist overrides, validation.

A recipe file may start with a ``defaults:`` list whose entries are, in order:

* ``/path/to/base`` (from the recipes root) or ``other.yaml`` (next to this file): another recipe,
  merged first;
* ``group: option`` or ``override group: option``: the component file
  ``<root>/components/<group>/<option>.yaml`` *replaces* the group's node (``compressor`` lands at
  ``model.compressor``, ``runtime`` at ``runner``; see :data:`GROUPS`);
* ``_self_``: where the file's own keys are merged (last when absent).

Command-line overrides: ``group=option`` (swap a whole component), ``a.b.c=value`` (dotlist; a
changed plugin ``name`` resets its ``params``), ``~a.b`` (delete a key).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vtgcore.config.runner_section import check_recipe_objects, check_runner_values
from vtgcore.ranges import declared_ranges
from vtgcore.config.schema import (CHAT_TEMPLATES, FRAME_TIMES, LOSS_AGGREGATIONS, OBJECTIVES, READERS, SAMPLINGS,
                                   SPREADS, TRAINABLE, VIDEO_LAYOUTS, DataSpec, EvalSpec, GRPOSpec, LoraSpec, ModelSpec,
                                   Recipe, TimePositionsSpec)
from vtgcore.config.train_data import check_prompt_data, check_train_data
from vtgcore.errors import RecipeError, VTGError
from vtgcore.vocab import MODEL_KINDS
from vtgcore.utils.limits import MAX_DEFAULTS_DEPTH, load_yaml, short, surrogate_field, yaml_problem

GROUPS: dict[str, str] = {**{kind: f"model.{kind}" for kind in MODEL_KINDS}, "data": "data", "runtime": "runner"}
"""Config group -> the node its component files land at."""

COMPONENTS_DIR = "components"
SWEEPS_DIR = "sweeps"


PACKAGED_RECIPES = "vtgcore_recipes"
"""Import package of the shipped recipes (the repository's ``recipes/`` folder, package data in
the wheel), so that recipes are addressable by name from any directory."""


def packaged_root() -> Path:
    """The folder of the shipped recipes (``recipes/`` in a checkout, site-packages in a wheel)."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGED_RECIPES)
    if spec is None or not spec.submodule_search_locations:
        raise RecipeError(f"the shipped recipes ({PACKAGED_RECIPES}) are not installed; reinstall vtgcore")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_recipe_path(path: str | Path, *, folders: bool = False) -> Path:
    """A recipe file by path, or a shipped recipe by name.

    ``recipes/vtgllm/synth_tiny.yaml`` (a file that exists) is returned as it is; a name such as
    ``vtgllm/synth_tiny`` (with or without ``.yaml``, with or without a leading ``recipes/``) that is
    not a file here is looked up among the shipped recipes. With ``folders``, a shipped folder is
    found the same way (``vtgllm``, ``recipes/vtgllm/``; ``recipes`` alone is the shipped root).
    Anything else is returned unchanged, so the loader's "recipe file not found" names what the
    user wrote.
    """
    given = Path(path)
    if given.exists():
        return given
    name = given.as_posix()
    if given.is_absolute() or name.startswith(("./", "../")):
        return given
    name = "" if name == "recipes" else name[len("recipes/"):] if name.startswith("recipes/") else name
    try:
        root = packaged_root()
    except RecipeError:
        return given
    candidates = [root / name, root / f"{name}.yaml"] if name else [root]
    for candidate in candidates:
        found = candidate.is_file() or (folders and candidate.is_dir())
        if found and candidate.resolve().is_relative_to(root.resolve()):
            return candidate
    return given


def find_root(path: Path) -> Path:
    """The recipes root: the nearest folder above ``path`` holding a ``components/`` folder."""
    for parent in [path.parent, *path.parents]:
        if (parent / COMPONENTS_DIR).is_dir():
            return parent
    return path.parent


def _read_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))  # the limits of vtgcore.utils.limits
        bad = surrogate_field(raw)
        if bad is not None:
            raise RecipeError(f"{path}: {bad}: not valid Unicode (a lone surrogate such as \\ud800)")
        cfg = None if raw is None else OmegaConf.create(raw) if isinstance(raw, (dict, list)) else raw
    except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError, ValueError) as exc:
        raise RecipeError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    if cfg is None or not isinstance(cfg, DictConfig):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping, got {type(cfg).__name__}")
    return cfg


def _plugin_component_dirs() -> list[tuple[str, Path]]:
    """``(package, components folder)`` of the loaded third-party plugins that ship components."""
    from vtgcore.catalog import default_catalog

    return [(provider.package, folder) for provider, folder in default_catalog().component_dirs()]


def options(root: Path, group: str, plugins: bool = True) -> list[str]:
    """Option names available for ``group``: under ``root``, then (``plugins``) those shipped by
    third-party plugin packages (see :func:`load_component`)."""
    folders = [root / COMPONENTS_DIR / group]
    if plugins:
        folders += [folder / group for _, folder in _plugin_component_dirs()]
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})


def load_component(root: Path, group: str, option: str, where: str) -> DictConfig:
    """Read ``<root>/components/<group>/<option>.yaml``, or else the one a plugin package ships.

    Plugin packages may ship components beside their module (``<module folder>/components/
    <group>/<option>.yaml``; :meth:`vtgcore.catalog.Catalog.component_dirs`). The recipes tree
    wins; an option that only plugin packages ship must come from exactly one of them.
    """
    if group not in GROUPS:
        raise RecipeError(f"{where}: unknown group {group!r}; groups: {', '.join(GROUPS)}")
    option = str(option)
    if not option or "/" in option or "\\" in option or option.startswith("."):
        raise RecipeError(f"{where}: {group} option {option!r} must be a plain name of a file in "
                          f"{root / COMPONENTS_DIR / group} (no paths); available: {', '.join(options(root, group)) or '(none)'}")
    path = root / COMPONENTS_DIR / group / f"{option}.yaml"
    if not path.is_file():
        candidates = [(package, folder / group / path.name) for package, folder in _plugin_component_dirs()]
        shipped = [(package, file) for package, file in candidates if file.is_file()]
        if len(shipped) > 1:
            raise RecipeError(f"{where}: {group} option {option!r} is shipped by several plugin packages ("
                              + ", ".join(f"{package}: {file}" for package, file in shipped)
                              + f"); copy the one you mean into {root / COMPONENTS_DIR / group}")
        if not shipped:
            raise RecipeError(f"{where}: no {group} option {option!r} (looked for {path} and in the plugin "
                              f"packages); available: {', '.join(options(root, group)) or '(none)'}")
        path = shipped[0][1]
    node = _read_yaml(path)
    if "defaults" in node:
        raise RecipeError(f"{path}: component files cannot have a defaults list")
    return node


def _set(cfg: DictConfig, dotted: str, node: Any) -> None:
    OmegaConf.update(cfg, dotted, node, merge=False, force_add=True)


def _compose(path: Path, root: Path, chain: tuple[Path, ...]) -> DictConfig:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise RecipeError(f"{path}: circular defaults: {cycle}")
    if len(chain) >= MAX_DEFAULTS_DEPTH:
        raise RecipeError(f"{chain[0]}: the defaults chain is deeper than {MAX_DEFAULTS_DEPTH} files "
                          f"(at {path})")
    raw = _read_yaml(path)
    defaults = raw.pop("defaults", None) or []
    if not isinstance(defaults, Iterable) or isinstance(defaults, (str, DictConfig)):
        raise RecipeError(f"{path}: 'defaults' must be a list")
    result = OmegaConf.create({})
    self_done = False
    for entry in defaults:
        if entry == "_self_":
            result = _merge(result, raw, path)
            self_done = True
        elif isinstance(entry, str):
            base = root / f"{entry.lstrip('/')}" if entry.startswith("/") else path.parent / entry
            base = base if base.suffix == ".yaml" else base.with_suffix(".yaml")
            if not base.is_file():
                raise RecipeError(f"{path}: defaults entry {entry!r}: {base}: recipe file not found")
            result = _merge(result, _compose(base, root, (*chain, path)), base)
        elif isinstance(entry, DictConfig) and len(entry) == 1:
            key, option = next(iter(entry.items()))
            group = str(key).removeprefix("override ").strip()
            _set(result, GROUPS.get(group, group), load_component(root, group, str(option), str(path)))
        else:
            raise RecipeError(f"{path}: bad defaults entry {entry!r}; use '/base', 'group: option' or '_self_'")
    if not self_done:
        result = _merge(result, raw, path)
    return result


def _merge(base: DictConfig, new: DictConfig, path: Path) -> DictConfig:
    merged = OmegaConf.merge(base, new)
    check_schema(merged, str(path), partial=True)
    return merged


def _allowed(dotted_parent: str) -> list[str]:
    node: Any = OmegaConf.structured(Recipe)
    for part in [p for p in dotted_parent.split(".") if p]:
        node = node.get(part) if isinstance(node, DictConfig) else None
    return list(node.keys()) if isinstance(node, DictConfig) else []


def _upgrade_grounding(cfg: DictConfig) -> None:
    """Rewrite the grounding settings of recipes written before grounding became a plugin kind
    (``model.grounding: {enabled, hidden, loss_weight}``, e.g. in older run folders) to the plugin
    form ``{name: query_gate | none, params: {hidden, loss_weight}}``, in place."""
    model = cfg.get("model") if isinstance(cfg, DictConfig) else None
    node = model.get("grounding") if isinstance(model, DictConfig) else None
    if not isinstance(node, DictConfig) or "enabled" not in node:
        return
    old = OmegaConf.to_container(node)
    enabled = old.pop("enabled")
    params = dict(old.pop("params", None) or {})
    params.update({key: old.pop(key) for key in ("hidden", "loss_weight") if key in old})
    old.setdefault("name", "query_gate")
    if enabled is False:
        old["name"], params = "none", {}
    old["params"] = params
    model["grounding"] = OmegaConf.create(old)


def check_schema(cfg: DictConfig, where: str, partial: bool = False) -> DictConfig:
    """Merge ``cfg`` into the :class:`Recipe` schema.

    Args:
        cfg: the composed recipe.
        where: file (or override) named in errors.
        partial: allow required values to be missing (for intermediate files).

    Raises:
        RecipeError: unknown key, wrong type, missing required key or a value outside its choices.
    """
    _upgrade_grounding(cfg)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Recipe), cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        kind = type(exc).__name__
        if "Key" in kind and "not in struct" in str(exc) or "ConfigAttributeError" in kind or "ConfigKeyError" in kind:
            parent = key.rsplit(".", 1)[0] if "." in key else ""
            raise RecipeError(f"{where}: unknown key {key!r}; allowed here: {', '.join(_allowed(parent))}") from None
        msg = str(exc).strip().splitlines()[0]
        raise RecipeError(f"{where}: bad value for {key!r}: {msg}") from None
    except (TypeError, ValueError) as exc:  # e.g. a mapping where the schema has a list (``lora.target_modules[0]=x``)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RecipeError(f"{where}: a value does not fit the recipe schema: {msg}") from None
    try:  # reading values below resolves interpolations, which may fail (``seed=${nope}``)
        _check_values(merged, where, partial)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        at = f" (at {key!r})" if key else ""
        raise RecipeError(f"{where}: cannot resolve an interpolation{at}: {str(exc).strip().splitlines()[0]}") from None
    return merged


def _check_ranges(merged: DictConfig, where: str) -> None:
    """The schema's declared ranges (:mod:`vtgcore.ranges`): ``data.num_frames >= 1``, ``seed``
    in [0, 2^64 - 1], LoRA ``r >= 1`` ..."""
    nodes = [(merged, Recipe, ""), (merged.data, DataSpec, "data."), (merged.model, ModelSpec, "model."),
             (merged.eval, EvalSpec, "eval.")]
    nodes += [(merged.model[kind].lora, LoraSpec, f"model.{kind}.lora.") for kind in MODEL_KINDS]
    nodes.append((merged.model.time_positions, TimePositionsSpec, "model.time_positions."))
    nodes.append((merged.training.grpo, GRPOSpec, "training.grpo."))
    for node, cls, prefix in nodes:
        for name, allowed in declared_ranges(cls).items():
            if name not in node or OmegaConf.is_missing(node, name):
                continue
            problem = allowed.problem(node[name])
            if problem:
                raise RecipeError(f"{where}: {prefix}{name} {problem}")


def _check_values(merged: DictConfig, where: str, partial: bool) -> None:
    if not partial:
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise RecipeError(f"{where}: required key(s) not set: {', '.join(missing)}")
    _check_ranges(merged, where)
    for kind in MODEL_KINDS:
        value = merged.model[kind].trainable
        if value not in TRAINABLE:
            raise RecipeError(f"{where}: model.{kind}.trainable is {value!r}; allowed: {', '.join(TRAINABLE)}")
    for key, allowed in (("train_sampling", SAMPLINGS), ("eval_sampling", SAMPLINGS), ("reader", READERS),
                         ("frame_times", FRAME_TIMES)):
        if merged.data[key] not in allowed:
            raise RecipeError(f"{where}: data.{key} is {merged.data[key]!r}; allowed: {', '.join(allowed)}")
    if merged.model.time_positions.spread not in SPREADS:
        raise RecipeError(f"{where}: model.time_positions.spread is {merged.model.time_positions.spread!r}; "
                          f"allowed: {', '.join(SPREADS)}")
    if merged.model.prompt.chat_template not in CHAT_TEMPLATES:
        raise RecipeError(f"{where}: model.prompt.chat_template is {merged.model.prompt.chat_template!r}; "
                          f"allowed: {', '.join(CHAT_TEMPLATES)}")
    for key, value, allowed in (("objective", merged.training.objective, OBJECTIVES),
                                ("grpo.loss_aggregation", merged.training.grpo.loss_aggregation, LOSS_AGGREGATIONS)):
        if value not in allowed:
            raise RecipeError(f"{where}: training.{key} is {value!r}; allowed: {', '.join(allowed)}")
    prompt = merged.model.prompt
    if prompt.get("video_layout", "block") not in VIDEO_LAYOUTS:
        raise RecipeError(f"{where}: model.prompt.video_layout is {prompt.video_layout!r}; "
                          f"allowed: {', '.join(VIDEO_LAYOUTS)}")
    template = prompt.get("frame_time_template", "{time}")
    if not isinstance(template, str) or template.count("{time}") != 1:
        raise RecipeError(f"{where}: model.prompt.frame_time_template must hold '{{time}}' once, got {template!r}")


def apply_overrides(cfg: DictConfig, overrides: Sequence[str], root: Path) -> DictConfig:
    """Apply command-line overrides (see the module docstring) in order."""
    for item in overrides:
        where = f"override {short(item, 120)}"  # never the whole of a huge override
        if item.startswith("~"):
            dotted = item[1:]
            parent_key, _, leaf = dotted.rpartition(".")
            parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
            if not isinstance(parent, DictConfig) or leaf not in parent:
                raise RecipeError(f"{where}: no key {dotted!r} to delete")
            with _unlocked(parent):
                parent.pop(leaf)
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("+")
        if not sep or not key:
            raise RecipeError(f"{where}: overrides are key=value, group=option or ~key")
        if "." not in key and key in GROUPS:
            _set(cfg, GROUPS[key], load_component(root, key, value.strip(), where))
            continue
        try:
            load_yaml(value)  # the limits of vtgcore.utils.limits (nesting, aliases) before omegaconf parses it
            parsed = OmegaConf.from_dotlist([f"{key}={value}"])
        except yaml.YAMLError as exc:
            raise RecipeError(f"{where}: cannot parse this override: {yaml_problem(exc)}") from None
        except (OmegaConfBaseException, LookupError, ValueError, TypeError, RecursionError) as exc:
            # a malformed key ("[") or a value that is not YAML ("[", control characters)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RecipeError(f"{where}: cannot parse this override: {first}") from None
        if key.startswith("model.") and key.endswith(".name"):
            # unresolved: an interpolation (``${seed}``) may point outside ``parsed``
            old = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
            new = OmegaConf.select(parsed, key, throw_on_resolution_failure=False)
            if old is not None and old != new:
                spec_key = key.rsplit(".", 1)[0]
                if OmegaConf.select(cfg, f"{spec_key}.params"):
                    warnings.warn(f"{where}: plugin changed from {old!r} to {new!r}; its params were reset "
                                  f"(use a group swap to pick a configured component)", stacklevel=2)
                _set(cfg, f"{spec_key}.params", {})
        try:
            cfg = OmegaConf.merge(cfg, parsed)
        except (OmegaConfBaseException, TypeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RecipeError(f"{where}: cannot apply this override: {first}") from None
    return cfg


class _unlocked:
    def __init__(self, node: DictConfig) -> None:
        self.node = node

    def __enter__(self) -> None:
        self.flag = self.node._get_node_flag("struct")
        OmegaConf.set_struct(self.node, False)

    def __exit__(self, *exc: Any) -> None:
        OmegaConf.set_struct(self.node, self.flag)


def load_recipe(path: str | Path, overrides: Sequence[str] = (), *, catalog: Any = None,
                validate_plugins: bool = True) -> DictConfig:
    """Load, compose, override and validate a recipe.

    Args:
        path: the recipe YAML.
        overrides: command-line overrides.
        catalog: plugin catalog for the plugin checks (default: the process-wide one).
        validate_plugins: also check plugin names and their params.

    Returns:
        The resolved recipe, typed by the :class:`Recipe` schema.

    Raises:
        RecipeError: for any problem; the message names the file, the key and the allowed values.
            A recipe never names Python code: ``_target_``-style keys, ``runner`` keys ``vtg
            train`` does not use and ``runner`` types spelled as import paths are errors, and the
            ``runner`` keys ``vtg train`` reads (``precision``, ``strategy``, ``train_cfg.by_epoch``,
            ``accumulate`` ...) are typed (see :mod:`vtgcore.config.runner_section`).
    """
    path = resolve_recipe_path(path)
    root = find_root(path.resolve())
    cfg = _compose(path, root, ())
    cfg = apply_overrides(OmegaConf.create(OmegaConf.to_container(cfg)), overrides, root)
    recipe = check_schema(cfg, str(path))
    try:
        resolved = OmegaConf.to_container(recipe, resolve=True)
    except OmegaConfBaseException as exc:
        raise RecipeError(f"{path}: cannot resolve an interpolation: {str(exc).splitlines()[0]}") from None
    check_recipe_objects(resolved, str(path))
    check_runner_values(resolved.get("runner"), str(path))
    if resolved["training"]["objective"] == "grpo":
        check_prompt_data(resolved["data"]["train"], f"{path}: data.train")
    elif resolved["data"]["train"].get("datasets") is not None:
        check_train_data(resolved["data"]["train"], f"{path}: data.train")
    if validate_plugins:
        check_plugins(recipe, catalog, str(path))
        if resolved["training"]["objective"] == "grpo":
            check_reward(resolved["training"]["grpo"]["reward"], catalog, f"{path}: training.grpo")
    return recipe


def check_reward(spec: Any, catalog: Any, where: str) -> None:
    """Build the reward once, so that an unknown plugin or bad params fail at load (``vtg recipe validate``).

    Raises:
        RecipeError: what :func:`vtgcore.build.build_reward` raises, as one recipe error.
    """
    from vtgcore.build import build_reward

    try:
        build_reward(spec, catalog, where)
    except VTGError as exc:
        raise RecipeError(str(exc)) from None


def check_plugins(recipe: DictConfig, catalog: Any = None, where: str = "") -> None:
    """Check every plugin name and its params against the catalog.

    Raises:
        RecipeError: unknown plugin (with the available names) or bad params.
    """
    from vtgcore.catalog import default_catalog

    catalog = catalog or default_catalog()
    for kind in MODEL_KINDS:
        spec = recipe.model[kind]
        try:
            catalog.resolve_params(kind, spec.name, OmegaConf.to_container(spec.params, resolve=True),
                                   f"{where}: model.{kind}" if where else f"model.{kind}")
        except VTGError as exc:
            raise RecipeError(str(exc)) from None
        if spec.trainable == "lora" and kind != "llm":
            raise RecipeError(f"{where}: model.{kind}.trainable: 'lora' is only supported for the llm")
        if spec.checkpoint and "://" in str(spec.checkpoint):
            raise RecipeError(f"{where}: model.{kind}.checkpoint must be a local file, not a URL: {spec.checkpoint}")
    init_from = recipe.model.get("init_from")
    if init_from and "://" in str(init_from):
        raise RecipeError(f"{where}: model.init_from must be a local folder or file, not a URL: {init_from}")


def recipe_files(paths: Sequence[str | Path], *, sweeps: bool = False) -> list[Path]:
    """YAML files named by ``paths`` (files or folders, by path or by the name of a shipped one, see
    :func:`resolve_recipe_path`); folders are searched recursively (component files included;
    sweep files, ``.../sweeps/*.yaml``, only with ``sweeps=True``)."""
    files: list[Path] = []
    for p in (resolve_recipe_path(path, folders=True) for path in paths):
        files += sorted(f for f in p.rglob("*.yaml") if sweeps or not is_sweep(f)) if p.is_dir() else [p]
    return files


def is_sweep(path: Path) -> bool:
    """True for a sweep file (``.../sweeps/<name>.yaml``, see :mod:`vtgcore.apps.sweep`): not a recipe."""
    return Path(path).parent.name == SWEEPS_DIR


def is_component(path: Path) -> bool:
    """True for a component file (``.../components/<group>/<option>.yaml``)."""
    return path.parent.parent.name == COMPONENTS_DIR


def validate_component(path: str | Path, catalog: Any = None) -> None:
    """Validate one component file: its node against the schema and, for plugins, its params
    (for ``runtime`` files, the ``runner`` checks of :mod:`vtgcore.config.runner_section`).

    Raises:
        RecipeError: unknown group folder, bad keys or types, unknown plugin or bad params, a bad
            ``runner`` key or value.
    """
    from vtgcore.catalog import default_catalog

    path = Path(path)
    group = path.parent.name
    if group not in GROUPS:
        raise RecipeError(f"{path}: unknown component group folder {group!r}; groups: {', '.join(GROUPS)}")
    node = _read_yaml(path)
    wrapped = OmegaConf.create({})
    _set(wrapped, GROUPS[group], node)
    checked = check_schema(wrapped, str(path), partial=True)
    if group == "runtime":
        check_recipe_objects({"runner": OmegaConf.to_container(checked.runner, resolve=False)}, str(path))
        try:
            runner = OmegaConf.to_container(checked.runner, resolve=True)
        except OmegaConfBaseException:  # it interpolates into the recipe that includes it: checked there
            runner = None
        check_runner_values(runner, str(path))
    if group in MODEL_KINDS:
        spec = checked.model[group]
        if OmegaConf.is_missing(spec, "name"):
            raise RecipeError(f"{path}: required key 'name' not set")
        try:
            (catalog or default_catalog()).resolve_params(
                group, spec.name, OmegaConf.to_container(spec.params, resolve=False), str(path))
        except VTGError as exc:
            raise RecipeError(str(exc)) from None


def to_yaml(recipe: DictConfig, resolve: bool = True) -> str:
    """The recipe as YAML text."""
    return OmegaConf.to_yaml(recipe, resolve=resolve)
