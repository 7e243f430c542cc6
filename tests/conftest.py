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
