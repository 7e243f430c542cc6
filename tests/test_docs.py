"""The docs say what the code does: hook signatures, the plugin tutorial's files, every recipe
component, and every `vtg` command line (its subcommand and flags) and recipe path they show."""

import argparse
import inspect
import re
from pathlib import Path

from vtgcore import hookspecs
from vtgcore.catalog import Catalog
from vtgcore.apps.cli import build_parser
from vtgcore.plugin_loader import Provider

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLE = ROOT / "examples" / "vtg-plugin-example"
PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md"), *(ROOT / "recipes").rglob("*.md"), *ROOT.glob("examples/*/README.md")])


class _Raw:
    """An annotation shown as written in the source (the modules use ``from __future__ import annotations``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def source_signature(fn) -> str:
    sig = inspect.signature(fn)

    def raw(annotation):
        return _Raw(annotation) if isinstance(annotation, str) else annotation

    return str(sig.replace(parameters=[p.replace(annotation=raw(p.annotation)) for p in sig.parameters.values()],
                           return_annotation=raw(sig.return_annotation)))


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


# ------------------------------------------------------------------------------------------------
# docs/plugin_hooks.md


def test_plugin_hooks_doc_has_every_hook_with_its_exact_signature():
    text = (DOCS / "plugin_hooks.md").read_text()
    documented = {}
    for block in python_blocks(text):
        for name, sig in re.findall(r"^def (\w+)(\(.*\) -> .+)$", block, flags=re.M):
            documented[name] = sig
    specs = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("vtg_")}
    assert set(specs) == set(hookspecs.KINDS.values())
    assert set(documented) == set(specs), "every hookspec documented, and nothing else"
    for name, fn in specs.items():
        assert documented[name] == source_signature(fn), name
        assert f"\n## {name}\n" in text, f"{name} has its own section"


def test_plugin_hooks_doc_register_signature_matches_the_catalog():
    text = (DOCS / "plugin_hooks.md").read_text()
    register = Catalog(entry_points=False)._registrar("compressor", Provider("p", "pkg", "0"))
    lines = [line for block in python_blocks(text) for line in block.splitlines()]
    assert f"register{source_signature(register)}" in [line.replace('""', "''") for line in lines]
    from typing import Any, Callable  # noqa: F401  (the alias as the page writes it)

    alias = next(line for line in lines if line.startswith("Register = "))
    assert eval(alias.split(" = ", 1)[1]) == hookspecs.Register


def test_plugin_hooks_doc_lists_the_builtin_plugins_of_each_kind():
    text = (DOCS / "plugin_hooks.md").read_text()
    catalog = Catalog(entry_points=False)
    for kind, hook in hookspecs.KINDS.items():
        section = text.split(f"\n## {hook}\n", 1)[1].split("\n## ", 1)[0]
        listed = re.search(r"Built-ins: (.*?)\.(?:\s|$)", section.replace("\n", " "))
        assert listed, hook
        assert set(re.findall(r"`(\w+)`", listed.group(1))) == set(catalog.names(kind)), hook


# ------------------------------------------------------------------------------------------------
# docs/writing_a_plugin.md and examples/vtg-plugin-example


def example_files() -> set[str]:
    skip = {"README.md"}
    return {p.relative_to(EXAMPLE).as_posix() for p in EXAMPLE.rglob("*") if p.is_file()
            and p.name not in skip and "__pycache__" not in p.parts and not any(x.endswith(".egg-info") or x == "build"
                                                                             for x in p.parts)}


def test_plugin_tutorial_shows_every_file_of_the_example_package_exactly():
    text = (DOCS / "writing_a_plugin.md").read_text()
    shown = dict(re.findall(r"^`examples/vtg-plugin-example/([^`]+)`:\n\n```\w*\n(.*?)^```", text, flags=re.M | re.S))
    assert set(shown) == example_files()
    for rel, body in shown.items():
        assert body == (EXAMPLE / rel).read_text(), f"docs/writing_a_plugin.md shows an old {rel}"


# ------------------------------------------------------------------------------------------------
# docs/recipes.md


def test_recipes_doc_names_every_component_file():
    text = (DOCS / "recipes.md").read_text()
    components = sorted((ROOT / "recipes" / "components").glob("*/*.yaml"))
    assert components
    missing = [f"{p.parent.name}/{p.stem}" for p in components if f"`{p.parent.name}/{p.stem}`" not in text]
    assert not missing, f"docs/recipes.md does not list {missing}"
    table = text.split("## Component files", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+/\w+)` \|", table, flags=re.M))
    assert listed <= {f"{p.parent.name}/{p.stem}" for p in components}, "no stale component in the list"


# ------------------------------------------------------------------------------------------------
# Command lines and recipe paths in README.md, docs/, recipes/ and examples/


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return None


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def command_lines() -> list[tuple[str, str]]:
    """(where, command) for every `vtg ...` or `torchrun ... -m vtgcore.apps.cli ...` in the docs and recipe comments."""
    found = []
    sources = [(p, p.read_text()) for p in PAGES]
    sources += [(p, "\n".join(line.lstrip("# ") for line in p.read_text().splitlines() if line.lstrip().startswith("#")))
                for p in sorted((ROOT / "recipes").rglob("*.yaml"))]
    for path, text in sources:
        text = text.replace("\\\n", " ")
        candidates = re.findall(r"`([^`\n]+)`", text) + re.findall(r"^\s*(?:\$ )?(.+)$", text, flags=re.M)
        for candidate in candidates:
            candidate = candidate.split(" #", 1)[0].strip()
            candidate = re.sub(r"-m vtgcore\.cli ", "vtg ", candidate)
            m = re.match(r"^(?:\S+=\S+ )*(?:\S*/)?(?:vtg|torchrun .*?vtg) (.+)$", candidate)
            if m:
                found.append((path.relative_to(ROOT).as_posix(), m.group(1)))
    return found


COMMANDS = command_lines()


def test_the_docs_show_many_commands():
    assert len(COMMANDS) > 80
    assert {c.split()[0] for _, c in COMMANDS} >= {"train", "eval", "run", "data", "recipe", "plugins", "convert"}


def _check(command: str) -> list[str]:
    parser = build_parser()
    problems = []
    tokens = [t.strip("[]()'\",;") for t in command.split()]
    tokens = [t for t in tokens if t]
    global_options = _options(parser)
    while tokens and tokens[0].startswith("-"):
        if tokens[0] not in global_options:
            problems.append(f"unknown global option {tokens[0]}")
        tokens.pop(0)
    current = parser
    while tokens and (choices := _subcommands(current)) is not None:
        word = tokens.pop(0)
        if word in ("...", "COMMAND") or word.startswith(("$", "<")):
            return problems
        if word not in choices:
            return problems + [f"unknown command {word!r} (known: {', '.join(choices)})"]
        current = choices[word]
    allowed = _options(current) | global_options
    for token in tokens:
        for flag in token.split("|"):
            flag = flag.split("=", 1)[0]
            if re.fullmatch(r"--?[a-z][a-z0-9-]*", flag) and flag not in allowed:
                problems.append(f"unknown option {flag}")
    return problems


def test_documented_commands_use_real_subcommands_and_flags():
    problems = [f"{where}: vtg {command}: {'; '.join(found)}" for where, command in COMMANDS
                if (found := _check(command))]
    assert not problems, "\n".join(problems)


def test_the_command_check_catches_mistakes():
    assert _check("eval recipes/x.yaml --checkpint C")
    assert _check("dta synth OUT")
    assert _check("data synth OUT --trian 3")
    assert not _check("--quiet data synth OUT --train 3 --val 1")


def test_documented_recipe_files_exist():
    missing = []
    for page in PAGES:
        for path in re.findall(r"(?<![\w/.])(recipes/[\w/.-]+\.yaml)", page.read_text()):
            if not (ROOT / path).is_file() and "<" not in path and "*" not in path:
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert not missing
