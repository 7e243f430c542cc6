"""A recipe's `runner:` section is typed when the recipe is loaded: `vtg recipe validate` names a bad
`precision`, `strategy`, `train_cfg.by_epoch` or step count (file, key, value, allowed values), not
first `vtg train`. The allowed values are defined once, in vtgcore.config.runner_section."""

import re
from pathlib import Path

import pytest

from vtgcore.apps import cli
from vtgcore.config import runner_section
from vtgcore.config.loader import load_recipe, validate_component
from vtgcore.config.runner_section import PRECISIONS, STRATEGIES, check_runner_values
from vtgcore.errors import RecipeError

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "debug" / "tiny.yaml"

BAD = [
    ("runner.precision=fp8", r"runner.precision is 'fp8'; allowed: auto, fp32, bf16, fp16$"),
    ("runner.precision=16", r"runner.precision is 16; allowed: auto, fp32, bf16, fp16$"),
    ("runner.precision=null", r"runner.precision is null; allowed: auto"),
    ("runner.strategy=deepspeed", r"runner.strategy is 'deepspeed'; allowed: ddp \(DeepSpeed runs through "
                                  r"mmengine's FlexibleRunner, not wired yet\)"),
    ("runner.strategy=zero", r"runner.strategy is 'zero'; allowed: ddp$"),
    ("runner.strategy=fsdp", r"runner.strategy is 'fsdp'; FSDP is refused until its checkpoints save the full "
                             r"weights: .* use runner.strategy: ddp"),
    ("runner.train_cfg.by_epoch=true", r"runner.train_cfg.by_epoch: true is not supported \(allowed: false\)"),
    ("runner.train_cfg.by_epoch=1", r"runner.train_cfg.by_epoch is 1; allowed: false"),
    ("runner.train_cfg.by_epoch=sometimes", r"runner.train_cfg.by_epoch is 'sometimes'; allowed: false"),
    ("runner.train_cfg.max_iters=0", r"runner.train_cfg.max_iters is 0; allowed: a positive integer$"),
    ("runner.train_cfg.max_iters=null", r"runner.train_cfg.max_iters is null; allowed: a positive integer \(or leave "
                                        r"it out and set runner.optimizer_steps\)"),
    ("runner.train_cfg=5", r"runner.train_cfg is 5; allowed: a mapping"),
    ("runner.accumulate=0", r"runner.accumulate is 0; allowed: a positive integer or null$"),
    ("runner.accumulate=2.5", r"runner.accumulate is 2.5; allowed: a positive integer or null$"),
    ("runner.accumulate=true", r"runner.accumulate is true; allowed: a positive integer or null$"),
    ("runner.accumulate='2'", r"runner.accumulate is '2'; allowed: a positive integer or null$"),
    ("runner.global_batch_size=-64", r"runner.global_batch_size is -64; allowed: a positive integer or null$"),
    ("runner.optimizer_steps=0", r"runner.optimizer_steps is 0; allowed: a positive integer or null$"),
    ("runner.checkpoint_interval=0", r"runner.checkpoint_interval is 0; allowed: a positive integer$"),
    ("runner.log_interval=null", r"runner.log_interval is null; allowed: a positive integer$"),
    ("runner.warmup_iters=-1", r"runner.warmup_iters is -1; allowed: an integer >= 0$"),
]


@pytest.mark.parametrize("override, pattern", BAD, ids=[o for o, _ in BAD])
def test_a_bad_runner_value_is_a_recipe_error_at_load(override, pattern):
    with pytest.raises(RecipeError) as info:
        load_recipe(RECIPE, [override])
    message = str(info.value)
    assert message.startswith(f"{RECIPE}: "), message  # names the file
    assert re.search(pattern, message), message
    assert "\n" not in message


@pytest.mark.parametrize("overrides", [
    ["runner.precision=bf16"],
    ["runner.precision=fp32", "runner.strategy=ddp", "runner.train_cfg.by_epoch=false"],
    ["runner.accumulate=null", "runner.global_batch_size=64", "runner.optimizer_steps=100", "~runner.train_cfg.max_iters"],
    ["runner.train_cfg.max_iters=null", "runner.optimizer_steps=3"],
    ["runner.warmup_iters=0", "runner.checkpoint_interval=1", "runner.log_interval=1", "runner.train_cfg=null"],
])
def test_good_runner_values_load(overrides):
    load_recipe(RECIPE, overrides)


def test_every_allowed_precision_and_strategy_loads():
    for precision in PRECISIONS:
        for strategy in STRATEGIES:
            recipe = load_recipe(RECIPE, [f"runner.precision={precision}", f"runner.strategy={strategy}"])
            assert recipe.runner.precision == precision and recipe.runner.strategy == strategy


def test_vtg_recipe_validate_reports_them(capsys):
    assert cli.main(["recipe", "validate", str(RECIPE), "runner.precision=fp8"]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {RECIPE}: runner.precision is 'fp8'; allowed: auto, fp32, bf16, fp16" in out
    assert out.rstrip().endswith("0 valid, 1 invalid")


def test_a_runtime_component_file_is_checked_too(tmp_path, capsys):
    bad = tmp_path / "components" / "runtime" / "bad.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("train_cfg: {max_iters: 10}\nprecision: half\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: runner.precision is 'half'; allowed: auto, fp32, bf16, fp16"):
        validate_component(bad)
    assert cli.main(["recipe", "validate", str(tmp_path)]) == 1
    assert "INVALID" in capsys.readouterr().out
    bad.write_text("custom_hooks: [{type: os.system}]\n")
    with pytest.raises(RecipeError, match=r"runner.custom_hooks\[0\].type is 'os.system'"):
        validate_component(bad)
    bad.write_text("train_cfg: {by_epoch: false, max_iters: 4}\naccumulate: 2\nstrategy: ddp\n")
    validate_component(bad)


def test_the_runner_builder_uses_the_same_lists():
    from vtgcore.mm import runner

    assert runner.PRECISIONS is runner_section.PRECISIONS and runner.STRATEGIES is runner_section.STRATEGIES
    with pytest.raises(RecipeError, match=r"runner.precision is 'fp8'"):
        runner.optim_wrapper_cfg({"precision": "fp8"})
    assert runner.optim_wrapper_cfg({"precision": "fp32", "accumulate": None}).get("accumulative_counts") is None


def test_check_runner_values_takes_an_empty_or_missing_section():
    check_runner_values(None, "r.yaml")
    check_runner_values({}, "r.yaml")
    with pytest.raises(RecipeError, match=r"^r.yaml: runner.strategy is 'ddp2'"):
        check_runner_values({"strategy": "ddp2"}, "r.yaml")
