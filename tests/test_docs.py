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


# ------------------------------------------------------------------------------------------------
# Every file of the repository a page names exists, and no page points outside the repository

REPO_FOLDERS = ("vtgcore", "plugins", "recipes", "docs", "tests", "bench", "examples", "configs")
REPO_PATH = re.compile(r"(?<![\w/.$-])(?<!\]\()((?:%s)/[\w./{},*-]*)" % "|".join(REPO_FOLDERS))
OUTSIDE = ("../shared", "/work/", "shared/reference", "vtgllm-original.md", "peers.md", "DESIGN.md")
"""Spellings of files a user of the repository does not have (the authors' notes and machines)."""


def _expand_braces(path: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    return [p for alt in m.group(1).split(",") for p in _expand_braces(path[:m.start()] + alt + path[m.end():])]


def _exists(path: str, bases: list[Path]) -> bool:
    """Every expansion of ``path`` (braces ``{a,b}``; a ``*`` glob matching something) under one of ``bases``."""
    def found(candidate: str, base: Path) -> bool:
        return any(base.glob(candidate)) if "*" in candidate else (base / candidate).exists()

    return all(any(found(candidate, base) for base in bases) for candidate in _expand_braces(path))


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def test_repository_paths_named_by_the_pages_exist():
    missing = []
    for page in PAGES:
        text = page.read_text()
        bases = [ROOT, page.parent]
        if page in (EXAMPLE / "README.md", DOCS / "writing_a_plugin.md"):  # the example package's own tree
            bases.append(EXAMPLE)
        for m in REPO_PATH.finditer(text):
            path = m.group(1).rstrip(".,;:")
            if not _exists(path, bases):
                missing.append(f"{page.relative_to(ROOT)}:{_line(text, m.start())}: {path}")
    assert not missing, "\n".join(missing)


def test_relative_links_of_the_pages_resolve_inside_the_repository():
    broken = []
    for page in PAGES:
        text = page.read_text()
        for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            target = m.group(1)
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}:{_line(text, m.start())}: {target}")
    assert not broken, "\n".join(broken)


def test_no_page_or_shipped_recipe_refers_outside_the_repository():
    sources = PAGES + sorted((ROOT / "recipes").rglob("*.yaml")) + sorted(p for p in EXAMPLE.rglob("*")
                                                                       if p.suffix in (".md", ".toml", ".py", ".yaml"))
    found = []
    for path in sources:
        text = path.read_text()
        for spelling in OUTSIDE:
            for m in re.finditer(re.escape(spelling), text):
                found.append(f"{path.relative_to(ROOT)}:{_line(text, m.start())}: {spelling}")
    assert not found, "\n".join(found)


def _resolves(dotted: str) -> bool:
    import importlib
    import importlib.util

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            if importlib.util.find_spec(module) is None:
                continue
        except (ImportError, ValueError):
            continue
        obj = importlib.import_module(module)
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_python_names_the_pages_give_exist():
    missing = []
    for page in PAGES:
        text = page.read_text()
        for m in re.finditer(r"(?<![\w/.-])(vtgcore(?:_plugins|_recipes)?(?:\.\w+)+)", text):
            if not _resolves(m.group(1)):
                missing.append(f"{page.relative_to(ROOT)}:{_line(text, m.start())}: {m.group(1)}")
    assert not missing, "\n".join(missing)


def test_the_path_check_catches_mistakes():
    assert _exists("vtgcore/config/loader.py", [ROOT]) and _exists("recipes/vtgllm/eval_*.yaml", [ROOT])
    assert _exists("recipes/vtgllm/finetune_{charades,youcook2}.yaml", [ROOT])
    assert not _exists("vtgcore/plugins.py", [ROOT]) and not _exists("recipes/vtgllm/finetune_{charades,nope}.yaml", [ROOT])
    found = [m.group(1) for m in REPO_PATH.finditer("see `vtgcore/cli.py`, [x](bench/a.json), https://h/docs/x.md")]
    assert found == ["vtgcore/cli.py"]
    assert _resolves("vtgcore.apps.cli.main") and not _resolves("vtgcore.plugins.BUILTIN_PLUGINS")


def test_the_readme_tour_lists_the_folders_of_the_source_tree():
    text = (ROOT / "README.md").read_text()
    block = text.split("## A short tour\n\n```\n", 1)[1].split("```", 1)[0]
    listed, stack = set(), []
    for line in block.splitlines():
        m = re.match(r"^( *)(\S+)/ {2,}\S", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        stack = stack[:depth] + [m.group(2)]
        listed.add("/".join(stack))
    assert listed, "the tour is a code block of `folder/   what lives there` lines"
    missing = sorted(p for p in listed if not (ROOT / p).is_dir())
    assert not missing, f"the README's tour names folders that do not exist: {missing}"
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "vtgcore").glob("*/__init__.py")}
    packages |= {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "vtgcore" / "apps").glob("*/__init__.py")}
    assert not packages - listed, f"the README's tour leaves out {sorted(packages - listed)}"
    assert "make run" in text.split("\n## ", 1)[0] and "make test" in text.split("\n## ", 1)[0]
