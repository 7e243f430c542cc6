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
