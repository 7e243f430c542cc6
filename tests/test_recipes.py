"""Recipes: every file in the repo validates; defaults, overrides and errors behave as documented."""

import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vtgcore.apps import cli
from vtgcore.config.loader import is_component, load_recipe, recipe_files, validate_component
from vtgcore.errors import RecipeError

ROOT = Path(__file__).resolve().parents[1]
ALL = recipe_files([ROOT / "recipes"])


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_recipe_validates(path):
    if is_component(path):
        validate_component(path)
    else:
        recipe = load_recipe(path)
        assert recipe.experiment_name


def test_experiment_names_are_unique():
    names = [load_recipe(p).experiment_name for p in ALL if not is_component(p)]
    assert len(names) == len(set(names)) and len(names) >= 3


@pytest.fixture
def tree(tmp_path):
    """A small recipes tree: components plus files written by each test."""
    comp = tmp_path / "components"
    for group, option, text in [
        ("encoder", "tiny", "name: tiny_vit\nparams: {dim: 16}\n"),
        ("compressor", "slot_4", "name: slot\nparams: {num_slots: 4}\n"),
        ("compressor", "pool", "name: mean_pool\nparams: {tokens_per_frame: 2}\n"),
        ("llm", "tiny", "name: hf_causal_lm\nparams: {tokenizer: tiny, model_config: {model_type: llama}}\n"),
        ("runtime", "short", "train_cfg: {max_iters: 2}\n"),
    ]:
        (comp / group).mkdir(parents=True, exist_ok=True)
        (comp / group / f"{option}.yaml").write_text(text)

    def write(name, text):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    write("base.yaml", """\
        defaults:
          - encoder: tiny
          - compressor: slot_4
          - llm: tiny
          - runtime: short
          - _self_
        experiment_name: base
        seed: 7
        """)
    return write


def test_defaults_compose_groups_and_self(tree):
    r = load_recipe(tree("exp.yaml", "defaults: [/base, _self_]\nexperiment_name: exp\n"))
    assert r.model.encoder.params.dim == 16 and r.model.compressor.params.num_slots == 4
    assert r.runner.train_cfg.max_iters == 2 and r.seed == 7 and r.work_dir == "work_dirs/exp"


def test_override_group_replaces_whole_node(tree):
    r = load_recipe(tree("abl.yaml", """\
        defaults:
          - /base
          - override compressor: pool
          - _self_
        experiment_name: abl
        """))
    assert r.model.compressor.name == "mean_pool"
    assert dict(r.model.compressor.params) == {"tokens_per_frame": 2}  # no stale num_slots


def test_self_position_matters(tree):
    path = tree("first.yaml", "defaults: [_self_, /base]\nexperiment_name: first\nseed: 1\n")
    assert load_recipe(path).seed == 7  # the base, merged after, wins


def test_cli_overrides(tree):
    base = tree("exp.yaml", "defaults: [/base]\nexperiment_name: exp\n")
    r = load_recipe(base, ["model.compressor.params.num_slots=9", "seed=3"])
    assert r.model.compressor.params.num_slots == 9 and r.seed == 3
    r = load_recipe(base, ["compressor=pool"])
    assert r.model.compressor.name == "mean_pool" and "num_slots" not in r.model.compressor.params
    with pytest.warns(UserWarning, match="params were reset"):
        r = load_recipe(base, ["model.compressor.name=mean_pool"])
    assert dict(r.model.compressor.params) == {}
    r = load_recipe(base, ["~runner.train_cfg"])
    assert "train_cfg" not in r.runner


@pytest.mark.parametrize("overrides, pattern", [
    (["compressor=nope"], r"no compressor option 'nope'.*available: pool, slot_4"),
    (["compressor=../../debug/tiny"], r"must be a plain name of a file in .*no paths"),
    (["model.compresor.name=slot"], r"unknown key 'model.compresor'.*allowed here: encoder, time_embedding"),
    (["seed=abc"], r"bad value for 'seed'"),
    (["model.encoder.trainable=sometimes"], r"model.encoder.trainable is 'sometimes'; allowed: full, frozen, lora"),
    (["~model.nothing"], r"no key 'model.nothing' to delete"),
    (["justaword"], r"overrides are key=value"),
    (["model.compressor.name=slott"], r"unknown compressor plugin 'slott'; available: .*mean_pool, slot"),
    (["model.compressor.params.num_slot=4"], r"unknown param\(s\) \['num_slot'\].*allowed: \['num_slots', 'init_std'\]"),
    (["model.compressor.params.num_slots=[1]"], r"num_slots"),
    (["model.encoder.trainable=lora"], r"'lora' is only supported for the llm"),
    (["model.encoder.checkpoint=https://x/y.safetensors"], r"must be a local file"),
])
@pytest.mark.filterwarnings("ignore:.*params were reset")
def test_errors_name_key_and_allowed_values(tree, overrides, pattern):
    base = tree("exp.yaml", "defaults: [/base]\nexperiment_name: exp\n")
    with pytest.raises(RecipeError, match=pattern) as info:
        load_recipe(base, overrides)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name, text, pattern", [
    ("a.yaml", "defaults: [b.yaml]\nexperiment_name: a\n", r"circular defaults"),
    ("typo.yaml", "defaults: [/base]\nexperiment_name: t\nmodle: {}\n", r"typo.yaml: unknown key 'modle'"),
    ("missing.yaml", "seed: 1\n", r"required key\(s\) not set: experiment_name"),
    ("badgroup.yaml", "defaults: [{colour: red}]\nexperiment_name: g\n", r"unknown group 'colour'"),
    ("list.yaml", "- 1\n- 2\n", r"must be a YAML mapping"),
    ("broken.yaml", "a: [1\n", r"not valid YAML"),
    ("nobase.yaml", "defaults: [/nothere]\nexperiment_name: n\n", r"nothere.yaml: recipe file not found"),
])
def test_file_errors(tree, name, text, pattern):
    tree("b.yaml", "defaults: [a.yaml]\nexperiment_name: b\n")
    with pytest.raises(RecipeError, match=pattern):
        load_recipe(tree(name, text))


def test_cli_show_and_validate(tree, capsys, tiny_recipe_path):
    assert cli.main(["recipe", "show", str(tiny_recipe_path), "model.compressor.params.num_slots=4"]) == 0
    shown = OmegaConf.create(capsys.readouterr().out)
    assert shown.model.compressor.params.num_slots == 4
    good = tree("exp.yaml", "defaults: [/base]\nexperiment_name: exp\n")
    bad = tree("bad.yaml", "defaults: [/base]\nexperiment_name: bad\nmodel: {llm: {name: gpt9}}\n")
    assert cli.main(["recipe", "validate", str(good)]) == 0
    assert cli.main(["recipe", "validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "unknown llm plugin 'gpt9'; available: hf_causal_lm" in out
    assert cli.main(["recipe", "validate", str(good), "model.compressor.name=gpt9"]) == 1
    assert "vtg: warning:" in capsys.readouterr().err
    assert cli.main(["recipe", "show", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vtg: error:") and "gpt9" in err and "Traceback" not in err


def test_component_validation(tmp_path):
    bad = tmp_path / "components" / "compressor" / "bad.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("name: slot\nparams: {num_slots: 4, colour: red}\n")
    with pytest.raises(RecipeError, match=r"bad.yaml.*unknown param\(s\) \['colour'\]"):
        validate_component(bad)


def test_cli_takes_overrides_after_options(capsys):
    from vtgcore.apps.cli import build_parser, main, parse_args

    args = parse_args(build_parser(), ["eval", "r.yaml", "a=1", "--checkpoint", "ckpt", "b=2", "~c"])
    assert args.recipe == "r.yaml" and args.checkpoint == "ckpt" and args.overrides == ["a=1", "b=2", "~c"]
    with pytest.raises(SystemExit):
        parse_args(build_parser(), ["eval", "r.yaml", "--checkpoint", "ckpt", "--no-such-flag"])
    with pytest.raises(SystemExit):
        parse_args(build_parser(), ["plugins", "a=1"])  # a command without overrides
    assert main(["recipe", "show", "recipes/debug/tiny.yaml", "seed=5", "model.compressor.params.num_slots=3"]) == 0
    shown = capsys.readouterr().out
    assert "seed: 5" in shown and "num_slots: 3" in shown
