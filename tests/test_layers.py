"""The layers, read from the imports (AST, every ``import`` at any depth, lazy ones included).

contracts (kernel) <- plugin loading and composition <- services <- applications; first-party
plugins see only the kernel and the services meant for them; nothing but the tests imports
``vtgcore.testing``; no import cycles anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"vtgcore": ROOT / "vtgcore", "vtgcore_plugins": ROOT / "plugins"}

KERNEL = {"vtgcore.errors", "vtgcore.types", "vtgcore.interfaces", "vtgcore.hookspecs", "vtgcore.vocab", "vtgcore.ranges"}
LOADING = {"vtgcore.plugin_loader", "vtgcore.catalog"}
COMPOSITION = {"vtgcore.model", "vtgcore.build", "vtgcore.processor", "vtgcore.positions"}
TOP = KERNEL | LOADING | COMPOSITION
FACADE = {"vtgcore"}  # vtgcore/__init__.py: the public entry points, each a lazy import
MMENGINE_SCOPE = {"vtgcore.registry"}  # mmengine imports <default_scope>.registry: a shim onto vtgcore.mm.registry
SERVICES = ("vtgcore.config", "vtgcore.data", "vtgcore.eval", "vtgcore.mm", "vtgcore.checkpoint", "vtgcore.utils")
APPS = "vtgcore.apps"
TESTING = "vtgcore.testing"
PLUGIN_SERVICES = {"vtgcore.checkpoint", "vtgcore.data.transforms", "vtgcore.data.tiny_tokenizers",
                   "vtgcore.eval.parsers", "vtgcore.eval.metrics"}
"""The services first-party plugins may use: safe weight loading, pixel normalisation, the tiny
in-memory tokenizers that stand in for real ones in tests and ``make run``, and the task parsers and
metric functions (pure functions, no state or I/O): a reward plugin scores an answer exactly as
evaluation parses and scores it, instead of keeping a second copy that could drift."""


def _module_name(path: Path) -> str:
    for package, folder in PACKAGES.items():
        if folder in path.parents:
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            return ".".join((package, *parts))
    raise AssertionError(path)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for folder in PACKAGES.values() for p in folder.rglob("*.py")}


MODULES = _modules()


def _resolve(name: str) -> str:
    """The longest known module that ``name`` (a module or ``module.attribute``) falls in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> set[str]:
    """The first-party modules ``module`` imports, anywhere in its file."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                up = up[: len(up) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            if name.split(".")[0] in PACKAGES:
                target = _resolve(name)
                if target and target != module:
                    found.add(target)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _layer(module: str) -> str:
    if module in KERNEL:
        return "kernel"
    if module in LOADING | COMPOSITION:
        return "composition"
    if module in FACADE:
        return "facade"
    if module in MMENGINE_SCOPE or any(_in(module, s) for s in SERVICES):
        return "service"
    if _in(module, APPS):
        return "app"
    if _in(module, TESTING):
        return "testing"
    if _in(module, "vtgcore_plugins"):
        return "plugin"
    return "unplaced"


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in MODULES if _layer(m) == "unplaced")
    assert not unplaced, f"modules outside the layers (the top of vtgcore/ holds only the kernel and composition): {unplaced}"


def _violations(rule) -> list[str]:
    return sorted(f"{m} imports {t}" for m, targets in GRAPH.items() for t in targets if rule(m, t))


def test_kernel_imports_only_the_kernel():
    assert not _violations(lambda m, t: _layer(m) == "kernel" and _layer(t) != "kernel")


def test_kernel_and_composition_never_import_plugins_mm_or_applications():
    def bad(m: str, t: str) -> bool:
        return _layer(m) in ("kernel", "composition") and (
            _layer(t) in ("plugin", "app", "testing") or _in(t, "vtgcore.mm") or _in(t, "vtgcore.registry"))

    assert not _violations(bad)


def test_services_never_import_applications_or_plugins():
    assert not _violations(lambda m, t: _layer(m) == "service" and _layer(t) in ("app", "plugin", "testing"))


def test_first_party_plugins_import_only_the_kernel_and_services_meant_for_plugins():
    def bad(m: str, t: str) -> bool:
        if _layer(m) != "plugin":
            return False
        return not (_layer(t) in ("kernel", "plugin") or any(_in(t, s) for s in PLUGIN_SERVICES))

    assert not _violations(bad)


def test_nothing_outside_the_tests_imports_vtgcore_testing():
    assert not _violations(lambda m, t: _layer(m) != "testing" and _layer(t) == "testing")


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    # a package's __init__ importing its own submodules (registration side effects) is not a cycle
    # of the layers; every other strongly connected group is
    cycles = [c for c in _cycles() if not all(_in(m, c[0]) for m in c)]
    assert not cycles, cycles


@pytest.mark.parametrize("bad_source, rule", [
    ("from vtgcore_plugins.compressors.slot import SlotCompressor\n", test_kernel_and_composition_never_import_plugins_mm_or_applications),
    ("def f():\n    from vtgcore.apps import cli\n", test_kernel_and_composition_never_import_plugins_mm_or_applications),
])
def test_the_rules_catch_a_violation(monkeypatch, bad_source, rule, tmp_path):
    """The rules are not vacuous: a kernel module with a forbidden (even lazy) import fails them."""
    path = tmp_path / "types.py"
    path.write_text(bad_source)
    monkeypatch.setitem(MODULES, "vtgcore.types", path)
    monkeypatch.setitem(GRAPH, "vtgcore.types", _imports("vtgcore.types"))
    with pytest.raises(AssertionError):
        rule()


def test_a_cycle_is_found(monkeypatch):
    monkeypatch.setitem(GRAPH, "vtgcore.types", GRAPH["vtgcore.types"] | {"vtgcore.interfaces"})
    with pytest.raises(AssertionError):
        test_no_import_cycles()
