"""Every registered plugin passes the contract of its kind (one generated class per plugin)."""

import pytest

from vtgcore.catalog import default_catalog
from vtgcore.testing import contracts
from vtgcore.data.tiny_tokenizers import TINY_LLAMA

CONTRACTS = {
    "encoder": contracts.EncoderContract,
    "time_embedding": contracts.TimeEmbeddingContract,
    "grounding": contracts.GroundingContract,
    "time_codec": contracts.TimeCodecContract,
    "compressor": contracts.CompressorContract,
    "projector": contracts.ProjectorContract,
    "llm": contracts.LLMContract,
    "reward": contracts.RewardContract,
}

# Small params for each first-party plugin; a plugin missing here fails test_every_plugin_has_params.
TEST_PARAMS = {
    ("encoder", "tiny_vit"): {},
    ("encoder", "eva_vit_g_qformer"): {"image_size": 28, "vit_width": 48, "vit_depth": 2, "vit_heads": 2,
                                        "vit_precision": "fp32", "num_query_tokens": 4, "qformer_hidden": 32,
                                        "qformer_layers": 2, "qformer_heads": 2, "qformer_intermediate": 64},
    ("encoder", "open_clip"): {"model_name": "tiny", "model_config": {
        "embed_dim": 16, "vision_cfg": {"image_size": 28, "layers": 2, "width": 32, "patch_size": 7, "head_width": 16},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}},
    ("encoder", "siglip"): {"freeze": False, "model_config": {
        "model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "image_size": 28, "patch_size": 7}},
    ("time_embedding", "none"): {},
    ("time_embedding", "abs_second_table"): {"max_seconds": 64, "init": "random", "max_frames": 8},
    ("time_embedding", "frame_index"): {"max_frames": 8},
    ("grounding", "none"): {},
    ("grounding", "query_gate"): {"hidden": 8},
    ("time_codec", "plain_digits"): {},
    ("time_codec", "absolute_time_tokens"): {},
    ("compressor", "slot"): {"num_slots": 5},
    ("compressor", "mean_pool"): {"tokens_per_frame": 2},
    ("compressor", "identity"): {},
    ("compressor", "cross_attention"): {"num_queries": 5, "num_heads": 2},
    ("compressor", "codebook"): {"num_codes": 5},
    ("compressor", "diverse"): {"num_tokens": 5},
    ("compressor", "entropy"): {"num_tokens": 5, "k": 2},
    ("compressor", "video_qformer"): {"num_query_tokens": 3, "num_layers": 1, "num_heads": 2,
                                      "window_size": 2, "stride": 2, "max_frames": 8},
    ("projector", "linear"): {},
    ("llm", "hf_causal_lm"): {"tokenizer": "tiny", "model_config": TINY_LLAMA},
    ("reward", "temporal_iou"): {"threshold": 0.5},
    ("reward", "event_f1"): {},
    ("reward", "highlight"): {},
    ("reward", "format"): {},
    ("reward", "weighted_sum"): {"terms": [{"name": "temporal_iou", "weight": 0.5}, {"name": "event_f1", "weight": 0.2},
                                           {"name": "highlight", "weight": 0.2},
                                           {"name": "format", "params": {}, "weight": 0.1}]},
}

for (kind, name), params in TEST_PARAMS.items():
    cls_name = f"Test_{kind}_{name}"
    globals()[cls_name] = type(cls_name, (CONTRACTS[kind],), {"plugin_name": name, "params": params})


class Test_encoder_eva_vit_g_qformer_text_input(contracts.EncoderContract):
    """The Q-Former text input: ``needs_timestamps``, a time writer and a cache signature."""

    plugin_name = "eva_vit_g_qformer"
    params = {**TEST_PARAMS[("encoder", "eva_vit_g_qformer")], "text_input": True, "text_tokenizer": "tiny",
              "text_max_length": 20}


def test_every_plugin_has_params():
    catalog = default_catalog()
    registered = {(e.kind, e.name) for e in catalog.entries() if e.provider.package == "vtgcore"}
    missing = sorted(registered - set(TEST_PARAMS))
    assert not missing, f"first-party plugins without contract-test params in TEST_PARAMS: {missing}"
    stale = sorted(set(TEST_PARAMS) - registered)
    assert not stale, f"TEST_PARAMS names plugins that no first-party module registers: {stale}"


def test_every_plugin_file_is_registered():
    """Every module under plugins/ (but ``_helpers.py`` and ``__init__.py``) is found by discovery and
    registers at least one component: a file that registers nothing is named here."""
    from pathlib import Path

    import vtgcore_plugins
    from vtgcore.plugin_loader import builtin_plugin_modules

    root = Path(vtgcore_plugins.__file__).parent
    files = {".".join(("vtgcore_plugins", *p.relative_to(root).with_suffix("").parts))
             for p in root.rglob("*.py") if not p.name.startswith("_")}
    assert set(builtin_plugin_modules()) == files
    catalog = default_catalog()
    registering = {impl.plugin_name for hook in catalog.pm.hook.__dict__.values() if hasattr(hook, "get_hookimpls")
                   for impl in hook.get_hookimpls()}
    silent = sorted(files - registering)
    assert not silent, f"plugin files that register nothing (no @hookimpl vtg_register_*): {silent}"


def test_contract_without_plugin_name_skips():
    class Unset(contracts.CompressorContract):
        pass

    with pytest.raises(pytest.skip.Exception):
        Unset().build(dim=4)
