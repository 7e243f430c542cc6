"""The 8/4-bit LLM setting (``model.llm.params.quantization``): clear errors where it cannot run."""

import pytest
import torch

from vtgcore.errors import VTGError
from vtgcore_plugins.llms import hf_causal_lm as H


def test_none_needs_nothing():
    assert H.quantization_config("none", torch.float16) is None


def test_unknown_setting_is_named():
    with pytest.raises(VTGError, match="quantization must be one of none, 8bit, 4bit, got '16bit'"):
        H.quantization_config("16bit", torch.float16)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cpu_only_machine_is_told_it_needs_cuda():
    with pytest.raises(VTGError, match="needs a CUDA GPU"):
        H.quantization_config("8bit", torch.float16)


def test_missing_bitsandbytes_is_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(VTGError, match="needs the bitsandbytes package"):
        H.quantization_config("4bit", torch.float16)


def test_quantization_needs_weights_from_a_path():
    from vtgcore.data.tiny_tokenizers import TINY_LLAMA

    with pytest.raises(VTGError, match="quantizes weights loaded from 'path'"):
        H.HFCausalLM(model_config=dict(TINY_LLAMA), tokenizer="tiny", quantization="8bit")


def test_recipe_setting_reaches_the_plugin(tiny_recipe_path):
    from vtgcore import build_model, load_recipe

    recipe = load_recipe(tiny_recipe_path, ["model.llm.params.quantization=4bit"])
    assert recipe.model.llm.params.quantization == "4bit"
    with pytest.raises(VTGError, match="quantization"):
        build_model(recipe)
