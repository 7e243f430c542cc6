"""``runner.global_batch_size`` -> gradient accumulation per world size, ``runner.optimizer_steps`` ->
``max_iters``, and the schedule stepping per optimizer step."""

from pathlib import Path

import pytest

from vtgcore.config.loader import load_recipe
from vtgcore.errors import RecipeError
from vtgcore.mm.batch import apply_global_batch, derive_accumulate, launcher_world_size

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml"


@pytest.mark.parametrize("global_batch, batch, world, expected", [
    (64, 1, 16, 4), (64, 1, 1, 64), (64, 2, 8, 4), (64, 4, 16, 1), (16, 1, 16, 1),
])
def test_accumulate_is_global_over_batch_times_world(global_batch, batch, world, expected):
    assert derive_accumulate(global_batch, batch, world) == expected
    assert derive_accumulate(global_batch, batch, world, accumulate=expected) == expected


@pytest.mark.parametrize("args, pattern", [
    ((64, 3, 16, None), r"global_batch_size 64 is not divisible by data.train.batch_size 3 x world size 16 = 48"),
    ((64, 1, 128, None), r"not divisible .* = 128"),
    ((64, 1, 16, 2), r"runner.accumulate 2 disagrees with runner.global_batch_size 64 = 1 .* x 16 .* x 4"),
    ((0, 1, 1, None), r"runner.global_batch_size must be a positive integer, got 0"),
    ((64.0, 1, 1, None), r"global_batch_size must be a positive integer"),
])
def test_bad_global_batch_is_a_recipe_error(args, pattern):
    with pytest.raises(RecipeError, match=pattern):
        derive_accumulate(*args)


def test_world_size_comes_from_the_process_group_or_the_launcher(monkeypatch):
    import mmengine.dist

    monkeypatch.setenv("WORLD_SIZE", "16")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    assert launcher_world_size("none") == 1
    assert launcher_world_size("pytorch") == 16
    assert launcher_world_size("slurm") == 8
    monkeypatch.setattr(mmengine.dist, "is_distributed", lambda: True)
    monkeypatch.setattr(mmengine.dist, "get_world_size", lambda: 32)
    assert launcher_world_size("none") == 32


def test_mocked_world_size_16(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "16")
    cfg = {"global_batch_size": 64, "optimizer_steps": 100, "train_cfg": {"by_epoch": False}}
    derived = apply_global_batch(cfg, batch_size=1, launcher="pytorch")
    assert cfg == {"accumulate": 4, "train_cfg": {"by_epoch": False, "max_iters": 400}}
    assert derived == {"global_batch_size": 64, "batch_size": 1, "world_size": 16, "accumulate": 4,
                       "optimizer_steps": 100, "max_iters": 400}
    with pytest.raises(RecipeError, match=r"not divisible"):
        apply_global_batch({"global_batch_size": 64}, batch_size=3, launcher="pytorch")
    with pytest.raises(RecipeError, match=r"max_iters 10 disagrees with runner.optimizer_steps 100 x accumulate 4"):
        apply_global_batch({"global_batch_size": 64, "optimizer_steps": 100, "train_cfg": {"max_iters": 10}},
                           batch_size=1, launcher="pytorch")
    assert apply_global_batch({"accumulate": 2}, batch_size=1) == {}  # neither key: nothing changes


def test_build_runner_derives_accumulation_at_world_size_1(synth_dir, tmp_path):
    from vtgcore.mm.hooks import OptimStepParamSchedulerHook
    from vtgcore.mm.runner import build_runner

    rec = load_recipe(RECIPE, [f"data.video_root={synth_dir}", "data.num_frames=4", "data.train.batch_size=2",
                               "runner.accumulate=null",
                               "runner.global_batch_size=6", "runner.optimizer_steps=5", "~runner.train_cfg.max_iters"])
    runner = build_runner(rec, work_dir=str(tmp_path))
    assert runner.optim_wrapper["accumulative_counts"] == 3  # 6 / (2 x 1); built by train()
    assert runner.train_loop.max_iters == 15  # 5 optimizer steps x 3
    cosine = runner.param_schedulers[-1]  # configs until train() builds them
    assert cosine["type"] == "CosineAnnealingLR" and cosine["end"] == 5  # the schedule runs over optimizer steps
    assert any(isinstance(h, OptimStepParamSchedulerHook) for h in runner.hooks)
    with pytest.raises(RecipeError, match=r"runner.accumulate 1 disagrees"):
        build_runner(load_recipe(RECIPE, [f"data.video_root={synth_dir}", "data.train.batch_size=2",
                                          "runner.global_batch_size=6"]), work_dir=str(tmp_path / "b"))
    with pytest.raises(RecipeError, match=r"not divisible by data.train.batch_size 4 x world size 1"):
        build_runner(load_recipe(RECIPE, [f"data.video_root={synth_dir}", "data.train.batch_size=4",
                                          "runner.accumulate=null", "runner.global_batch_size=6"]),
                     work_dir=str(tmp_path / "c"))
