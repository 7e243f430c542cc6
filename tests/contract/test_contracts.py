"""Every registered plugin passes the contract of its kind (one generated class per plugin)."""

import pytest

from vtgcore.catalog import default_catalog
from vtgcore.testing import contracts
from vtgcore.data.tiny_tokenizers import TINY_LLAMA

CONTRACTS = {
    "encoder": contracts.EncoderContract,
    "time_embedding": contracts.TimeEmbeddingContract,
    "time_codec": contracts.TimeCodecContract,
    "compressor": contracts.CompressorContract,
    "projector": contracts.ProjectorContract,
    "llm": contracts.LLMContract,
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
    ("time_embedding", "none"): {},
    ("time_embedding", "abs_second_table"): {"max_seconds": 64, "init": "random", "max_frames": 8},
    ("time_embedding", "frame_index"): {"max_frames": 8},
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
}

for (kind, name), params in TEST_PARAMS.items():
    cls_name = f"Test_{kind}_{name}"
    globals()[cls_name] = type(cls_name, (CONTRACTS[kind],), {"plugin_name": name, "params": params})


def test_every_plugin_has_params():
    catalog = default_catalog()
    registered = {(e.kind, e.name) for e in catalog.entries() if e.provider.package == "vtgcore"}
    assert registered == set(TEST_PARAMS), registered ^ set(TEST_PARAMS)


def test_contract_without_plugin_name_skips():
    class Unset(contracts.CompressorContract):
        pass

    with pytest.raises(pytest.skip.Exception):
        Unset().build(dim=4)
