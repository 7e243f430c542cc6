import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "recipes" / "debug" / "tiny.yaml"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def tiny_recipe_path() -> Path:
    return TINY


@pytest.fixture
def tiny():
    """A freshly built tiny model and its processor."""
    from vtgcore import build_model, load_recipe

    return build_model(load_recipe(TINY))


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small VTG-Synth set shared by the tests (4 train and 3 val videos of at most 16 s)."""
    from vtgcore.data.synth import generate_synth

    out = tmp_path_factory.mktemp("synth")
    generate_synth(out, seed=11, n_train=4, n_val=3, max_duration=16.0)
    return out


@pytest.fixture(scope="session")
def tiny_run(synth_dir, tmp_path_factory) -> Path:
    """A tiny trained run folder: recipes/vtgllm/synth_tiny.yaml at toy size, 100 iterations on the
    shared VTG-Synth set (about 10 s on 2 CPU cores). It writes answers with time windows, not
    accurate ones: tests built on it check structure and consistency, not quality."""
    from vtgcore.config.loader import load_recipe
    from vtgcore.mm.runner import build_runner

    run_dir = tmp_path_factory.mktemp("tiny_run") / "run"
    rec = load_recipe(ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml", [
        f"data.video_root={synth_dir}", "data.num_frames=4", "data.train.batch_size=4",
        "runner.train_cfg.max_iters=100", "runner.warmup_iters=5",
        "runner.optim_wrapper.optimizer.lr=5e-3", "runner.log_interval=50"])
    build_runner(rec, work_dir=str(run_dir)).train()
    return run_dir


@pytest.fixture(scope="session")
def tiny_pipe(tiny_run):
    """:func:`vtgcore.load_pipeline` on :func:`tiny_run` (CPU, greedy, at most 48 new tokens)."""
    from vtgcore.eval.generate import GenerationConfig
    from vtgcore.apps.pipeline import load_pipeline

    return load_pipeline(tiny_run, generation=GenerationConfig(max_new_tokens=48))


@pytest.fixture(scope="session")
def val_video(synth_dir) -> str:
    """The first held-out VTG-Synth video of :func:`synth_dir`."""
    return str(synth_dir / "videos" / "val_00000.mp4")
