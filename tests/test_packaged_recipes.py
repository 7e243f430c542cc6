"""The shipped recipes (import package vtgcore_recipes) are addressable by name from any folder:
`vtg recipe show vtgllm/synth_tiny`, `vtg recipe validate` with no path, the defaults the `vtg`
commands write as `recipes/...`, and sweep files and their `base:`. tests/test_wheel.py checks the same
from an installed wheel."""

from pathlib import Path

import pytest

from vtgcore.apps import cli
from vtgcore.config.loader import load_recipe, packaged_root, recipe_files, resolve_recipe_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working folder outside the repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_packaged_root_is_the_recipes_folder_of_the_checkout():
    assert packaged_root().resolve() == (ROOT / "recipes").resolve()


@pytest.mark.parametrize("name", ["vtgllm/synth_tiny", "vtgllm/synth_tiny.yaml", "recipes/vtgllm/synth_tiny.yaml"])
def test_a_shipped_recipe_by_name(elsewhere, name):
    path = resolve_recipe_path(name)
    assert path.resolve() == (ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml").resolve()
    assert load_recipe(name).experiment_name == "vtgllm_synth_tiny"


def test_a_file_in_the_working_folder_wins_and_unknown_names_are_kept(elsewhere):
    own = elsewhere / "recipes" / "vtgllm" / "synth_tiny.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("experiment_name: mine\n")
    assert resolve_recipe_path("recipes/vtgllm/synth_tiny.yaml") == Path("recipes/vtgllm/synth_tiny.yaml")
    assert resolve_recipe_path("vtgllm/nope") == Path("vtgllm/nope")
    assert resolve_recipe_path("../vtgllm/synth_tiny") == Path("../vtgllm/synth_tiny")  # never looked up
    assert resolve_recipe_path("vtgllm") == Path("vtgllm")  # a folder only where folders are asked for


def test_shipped_folders_by_name(elsewhere):
    shipped = recipe_files([ROOT / "recipes"], sweeps=True)
    assert recipe_files(["recipes"], sweeps=True) == recipe_files(["recipes/"], sweeps=True)
    assert [p.resolve() for p in recipe_files(["recipes/"], sweeps=True)] == [p.resolve() for p in shipped]
    assert {p.name for p in recipe_files(["vtgllm/ablations"])} >= {"no_time_tokens.yaml", "random_init_table.yaml"}


def test_vtg_recipe_commands_by_name_from_any_folder(elsewhere, capsys):
    assert cli.main(["recipe", "show", "vtgllm/synth_tiny", "seed=5"]) == 0
    assert "experiment_name: vtgllm_synth_tiny" in capsys.readouterr().out
    assert cli.main(["recipe", "validate"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    shipped = len(recipe_files([ROOT / "recipes"], sweeps=True))
    assert lines[-1] == f"{shipped} valid, 0 invalid" and shipped > 40
    assert cli.main(["recipe", "validate", "debug", "data.num_frames=4"]) == 0
    debug = len(list((ROOT / "recipes" / "debug").glob("*.yaml")))
    assert debug >= 3 and capsys.readouterr().out.strip().endswith(f"{debug} valid, 0 invalid")


def test_the_cli_defaults_resolve_from_any_folder(elsewhere):
    parser = cli.build_parser()
    defaults = [parser.parse_args(["run"]).recipe,
                parser.parse_args(["data", "pretrain-encoder", "SYNTH"]).recipe]
    from vtgcore.apps.convert_weights.vtgllm_original import DEFAULT_RECIPE

    for default in [*defaults, DEFAULT_RECIPE]:
        assert resolve_recipe_path(default).is_file(), default


def test_a_shipped_sweep_and_its_base_by_name(elsewhere, capsys):
    from vtgcore.apps.sweep import load_sweep

    sweep = load_sweep("sweeps/synth_ablations")
    assert sweep.path.resolve() == (ROOT / "recipes" / "sweeps" / "synth_ablations.yaml").resolve()
    assert Path(sweep.base).resolve() == (ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml").resolve()
    assert cli.main(["sweep", "recipes/sweeps/synth_ablations.yaml", "--dry-run", "--only", "full", "--seed", "0"]) == 0
    assert "pending   full seed 0" in capsys.readouterr().out
    own = elsewhere / "mine.yaml"  # a sweep file of one's own whose base is a shipped recipe
    own.write_text("base: recipes/debug/tiny.yaml\nseeds: [0]\nvariants: {a: []}\n")
    assert Path(load_sweep(own).base).resolve() == (ROOT / "recipes" / "debug" / "tiny.yaml").resolve()
    assert not list(elsewhere.glob("work_dirs")), "a dry run writes nothing"
