"""Plugin discovery: built-ins, entry points, env switches, and the errors for broken plugins."""

import importlib.metadata
import json
import sys
import textwrap
from pathlib import Path

import pytest

from vtgcore.apps import cli
from vtgcore.catalog import Catalog
from vtgcore.errors import ConfigValidationError, PluginError, UnknownPluginError
from vtgcore.hookspecs import KINDS

GOOD = '''
from dataclasses import dataclass
import torch
from vtgcore import hookimpl
from vtgcore.interfaces import TokenCompressor
from vtgcore.types import VisualTokens

@dataclass
class FirstConfig:
    k: int = 3

class First(TokenCompressor):
    def __init__(self, dim, k=3):
        super().__init__()
        self.k = k
    def output_tokens(self, num_frames, tokens_per_frame):
        return self.k
    def forward(self, tokens, frame_mask=None, timestamps=None):
        b, t, l, d = tokens.shape
        x = tokens.reshape(b, t * l, d)[:, : self.k]
        return VisualTokens(x, torch.ones(b, self.k, dtype=torch.bool))

@hookimpl
def vtg_register_compressors(register):
    register("first_k", First, config=FirstConfig, description="keeps the first k tokens")
'''


class FakeDist:
    def __init__(self, name, version, eps):
        self.metadata = {"Name": name}
        self.version = version
        self.entry_points = [importlib.metadata.EntryPoint(n, v, "vtgcore") for n, v in eps]


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    """Write plugin modules into tmp_path and expose them as installed distributions."""
    monkeypatch.syspath_prepend(str(tmp_path))
    dists = []

    def add(module_name, source, dist_name="vtg-fake", ep_name=None):
        (tmp_path / f"{module_name}.py").write_text(textwrap.dedent(source))
        dists.append(FakeDist(dist_name, "1.2.3", [(ep_name or module_name, module_name)]))

    monkeypatch.setattr(importlib.metadata, "distributions", lambda: list(dists))
    for var in ("VTG_LOAD_PLUGINS", "VTG_BLOCK_PLUGINS", "VTG_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(var, raising=False)
    return add


def test_builtins_cover_every_kind():
    catalog = Catalog(entry_points=False)
    for kind in KINDS:
        assert catalog.names(kind), kind
    assert {"slot", "mean_pool"} <= set(catalog.names("compressor"))
    assert {"absolute_time_tokens", "plain_digits"} <= set(catalog.names("time_codec"))


def test_entry_point_discovered_with_provenance(fake_plugins):
    fake_plugins("vtg_first_k", GOOD)
    entry = Catalog().get("compressor", "first_k")
    assert entry.provider.package == "vtg-fake" and entry.provider.version == "1.2.3"
    assert entry.description == "keeps the first k tokens"
    assert Catalog().build("compressor", "first_k", {"k": 2}, dim=4).k == 2


def test_autoload_disabled(fake_plugins, monkeypatch):
    fake_plugins("vtg_first_k", GOOD)
    monkeypatch.setenv("VTG_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "first_k" not in Catalog().names("compressor")
    assert "slot" in Catalog().names("compressor")  # built-ins still load


def test_allow_list_and_block_list(fake_plugins, monkeypatch):
    fake_plugins("vtg_first_k", GOOD, dist_name="vtg-a")
    fake_plugins("vtg_other", GOOD.replace('"first_k"', '"other_k"'), dist_name="vtg-b")
    monkeypatch.setenv("VTG_LOAD_PLUGINS", "vtg-b")
    assert {"other_k"} == set(Catalog().names("compressor")) - set(Catalog(entry_points=False).names("compressor"))
    monkeypatch.setenv("VTG_LOAD_PLUGINS", "vtg_first_k, vtg_other")
    monkeypatch.setenv("VTG_BLOCK_PLUGINS", "vtg_other")
    assert {"first_k"} == set(Catalog().names("compressor")) - set(Catalog(entry_points=False).names("compressor"))


def test_misspelled_hook_names_plugin_and_package(fake_plugins):
    fake_plugins("vtg_typo", GOOD.replace("def vtg_register_compressors", "def vtg_register_compresors"),
                 dist_name="vtg-typo-pkg")
    with pytest.raises(PluginError) as info:
        Catalog()
    msg = str(info.value)
    assert "'vtg_typo'" in msg and "'vtg-typo-pkg'" in msg and "vtg_register_compresors" in msg
    assert "\n" not in msg


def test_import_failure_names_plugin_and_package(fake_plugins):
    fake_plugins("vtg_broken", "raise RuntimeError('boom at import')\n", dist_name="vtg-broken-pkg")
    with pytest.raises(PluginError) as info:
        Catalog()
    msg = str(info.value)
    assert "'vtg_broken'" in msg and "'vtg-broken-pkg'" in msg and "boom at import" in msg
    assert "\n" not in msg


def test_duplicate_name_within_kind(fake_plugins):
    fake_plugins("vtg_dup", GOOD.replace('"first_k"', '"slot"'), dist_name="vtg-dup-pkg")
    with pytest.raises(PluginError, match=r"duplicate compressor name 'slot'.*'vtgcore'.*'vtg-dup-pkg'"):
        Catalog()


def test_same_name_in_another_kind_is_fine(fake_plugins):
    source = GOOD.replace("vtg_register_compressors", "vtg_register_projectors").replace('"first_k"', '"slot"')
    fake_plugins("vtg_proj", source)
    assert "slot" in Catalog().names("projector")


def test_unknown_plugin_lists_available():
    with pytest.raises(UnknownPluginError, match=r"unknown compressor plugin 'slott'; available: .*mean_pool, slot.*'slot'"):
        Catalog(entry_points=False).get("compressor", "slott")


def test_params_validated_against_config():
    catalog = Catalog(entry_points=False)
    assert catalog.resolve_params("compressor", "slot", {"num_slots": 4}) == {"num_slots": 4, "init_std": 1.0}
    with pytest.raises(ConfigValidationError, match=r"unknown param\(s\) \['slots'\].*allowed: \['num_slots', 'init_std'\]"):
        catalog.resolve_params("compressor", "slot", {"slots": 4})
    with pytest.raises(ConfigValidationError, match="num_slots"):
        catalog.resolve_params("compressor", "slot", {"num_slots": "many"})
    with pytest.raises(ConfigValidationError, match="takes no params"):
        catalog.resolve_params("time_embedding", "none", {"x": 1})


def test_cli_plugins_json(fake_plugins, capsys):
    fake_plugins("vtg_first_k", GOOD)
    assert cli.main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(set(r) == {"kind", "name", "provider", "version", "description"} for r in rows)
    by_name = {(r["kind"], r["name"]): r for r in rows}
    assert by_name[("compressor", "first_k")]["provider"] == "vtg-fake"
    assert by_name[("compressor", "slot")]["provider"] == "vtgcore"
    assert cli.main(["plugins"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:5] == ["KIND", "NAME", "PROVIDER", "VERSION", "DESCRIPTION"]
    assert "first_k" in table


def test_cli_broken_plugin_is_one_line(fake_plugins, capsys):
    fake_plugins("vtg_broken", "import does_not_exist_anywhere\n")
    assert cli.main(["plugins"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vtg_broken" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------
# components shipped by plugin packages


@pytest.fixture
def shipping_packages(tmp_path, monkeypatch):
    """Install fake plugin *packages* (folders with ``__init__.py``) that ship component files."""
    import vtgcore.catalog as catalog_module

    monkeypatch.syspath_prepend(str(tmp_path))
    dists = []

    def add(package, components, dist_name):
        folder = tmp_path / package
        folder.mkdir()
        (folder / "__init__.py").write_text("")  # no hooks needed: it only ships components
        for rel, text in components.items():
            (folder / "components" / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / "components" / rel).write_text(text)
        dists.append(FakeDist(dist_name, "0.1.0", [(package, package)]))
        monkeypatch.delitem(sys.modules, package, raising=False)  # not the same name from another test's folder
        monkeypatch.setattr(catalog_module, "_DEFAULT", None)  # the next recipe load sees the new set

    monkeypatch.setattr(importlib.metadata, "distributions", lambda: list(dists))
    for var in ("VTG_LOAD_PLUGINS", "VTG_BLOCK_PLUGINS", "VTG_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(catalog_module, "_DEFAULT", None)
    return add


POOL_2 = "name: mean_pool\nparams: {tokens_per_frame: 2}\n"
POOL_3 = "name: mean_pool\nparams: {tokens_per_frame: 3}\n"


def test_a_plugin_package_ships_a_component_that_recipes_select(shipping_packages, tmp_path):
    from vtgcore.config.loader import load_recipe, options

    shipping_packages("pkg_a", {"compressor/pool_two.yaml": POOL_2}, "vtg-a")
    found = Catalog().component_dirs()
    assert [(p.package, p.version, folder) for p, folder in found] == [("vtg-a", "0.1.0", tmp_path / "pkg_a" / "components")]
    recipe = load_recipe("recipes/debug/tiny.yaml", ["compressor=pool_two"])
    assert recipe.model.compressor.name == "mean_pool" and recipe.model.compressor.params.tokens_per_frame == 2
    assert "pool_two" in options(Path("recipes"), "compressor") and "slot_8" in options(Path("recipes"), "compressor")
    assert "pool_two" not in options(Path("recipes"), "compressor", plugins=False)


def test_the_recipes_tree_wins_and_two_shipping_packages_are_ambiguous(shipping_packages, tmp_path):
    import shutil

    from vtgcore.config.loader import load_recipe
    from vtgcore.errors import RecipeError

    shipping_packages("pkg_a", {"compressor/pool.yaml": POOL_2, "compressor/identity.yaml": POOL_2}, "vtg-a")
    shipping_packages("pkg_b", {"compressor/pool.yaml": POOL_3}, "vtg-b")
    with pytest.raises(RecipeError, match=r"compressor option 'pool' is shipped by several plugin packages "
                                          r"\(vtg-a: .*pkg_a.*, vtg-b: .*pkg_b.*\); copy the one you mean into"):
        load_recipe("recipes/debug/tiny.yaml", ["compressor=pool"])
    # the built-in recipes tree's identity.yaml is used, not pkg_a's
    assert load_recipe("recipes/debug/tiny.yaml", ["compressor=identity"]).model.compressor.name == "identity"
    # a copy in the recipes tree settles the ambiguity
    recipes = tmp_path / "recipes"
    shutil.copytree("recipes", recipes)
    (recipes / "components" / "compressor" / "pool.yaml").write_text(POOL_3)
    assert load_recipe(recipes / "debug" / "tiny.yaml", ["compressor=pool"]).model.compressor.params.tokens_per_frame == 3
    with pytest.raises(RecipeError, match=r"no compressor option 'nope' \(looked for .* and in the plugin packages\); "
                                          r"available: .*pool"):
        load_recipe("recipes/debug/tiny.yaml", ["compressor=nope"])


def test_blocked_packages_ship_no_components(shipping_packages, monkeypatch):
    from vtgcore.config.loader import load_recipe
    from vtgcore.errors import RecipeError

    shipping_packages("pkg_a", {"compressor/pool_two.yaml": POOL_2}, "vtg-a")
    monkeypatch.setenv("VTG_BLOCK_PLUGINS", "vtg-a")
    with pytest.raises(RecipeError, match="no compressor option 'pool_two'"):
        load_recipe("recipes/debug/tiny.yaml", ["compressor=pool_two"])
