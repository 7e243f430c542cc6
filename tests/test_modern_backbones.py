"""Modern backbones (issue 21): the ``siglip`` encoder (SigLIP / SigLIP 2 vision towers), Qwen2.5 and
Qwen3 through ``hf_causal_lm`` with the tokenizer's chat template, tiny models of exactly those
architecture classes built in memory, and the paper-size recipe (SigLIP-so400m + Qwen2.5-7B + LoRA)
built on the ``meta`` device with its parameter counts checked against hand-computed numbers."""

import json

import pytest
import torch

from vtgcore import build_model, load_recipe
from vtgcore.catalog import default_catalog
from vtgcore.data.tiny_tokenizers import TINY_QWEN2, TINY_QWEN3
from vtgcore.errors import CheckpointError, ConfigValidationError, VTGError
from vtgcore.processor import IGNORE_INDEX
from vtgcore.testing import contracts

TINY_SIGLIP = {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
               "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 28, "patch_size": 7}
TINY_SIGLIP2 = {"model_type": "siglip2_vision_model", "hidden_size": 32, "intermediate_size": 64,
                "num_hidden_layers": 2, "num_attention_heads": 2, "num_patches": 16, "patch_size": 7}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- contract tests of the variants (the plain tower is in tests/contract/test_contracts.py) ------

class TestSiglipPooledFrozenContract(contracts.EncoderContract):
    plugin_name = "siglip"
    params = {"model_config": TINY_SIGLIP, "pool": "avg", "pooled_grid": 2, "freeze": True}


class TestSiglipPenultimateContract(contracts.EncoderContract):
    plugin_name = "siglip"
    params = {"model_config": TINY_SIGLIP, "layer": -2, "final_norm": False, "freeze": False}


class TestSiglip2Contract(contracts.EncoderContract):
    plugin_name = "siglip"
    params = {"model_config": TINY_SIGLIP2, "freeze": False, "pool": "avg", "pooled_grid": 3}


class TestQwen2LLMContract(contracts.LLMContract):
    plugin_name = "hf_causal_lm"
    params = {"tokenizer": "tiny_chatml", "model_config": TINY_QWEN2}


class TestQwen3LLMContract(contracts.LLMContract):
    plugin_name = "hf_causal_lm"
    params = {"tokenizer": "tiny_chatml", "model_config": TINY_QWEN3}


# -- the siglip encoder ---------------------------------------------------------------------------

def build_encoder(**params):
    return default_catalog().build("encoder", "siglip", params)


def test_siglip_tokens_are_transformers_last_hidden_state():
    from transformers import SiglipVisionConfig, SiglipVisionModel

    enc = build_encoder(model_config=TINY_SIGLIP).eval()
    assert type(enc.tower) is SiglipVisionModel and not hasattr(enc.tower, "head")
    assert (enc.out_dim, enc.tokens_per_frame, enc.image_size, enc.grid_size) == (32, 16, 28, (4, 4))
    assert enc.mean == enc.std == (0.5, 0.5, 0.5)
    assert not any(p.requires_grad for p in enc.parameters())  # freeze: true by default
    enc.train()
    assert not enc.tower.training  # a frozen tower stays in eval mode
    fields = {k: v for k, v in TINY_SIGLIP.items() if k != "model_type"}
    ref = SiglipVisionModel(SiglipVisionConfig(**fields)).eval()
    ref.load_state_dict(enc.tower.state_dict(), strict=False)  # the head is dropped in the encoder
    x = torch.randn(3, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), ref(pixel_values=x).last_hidden_state)
        hidden = ref(pixel_values=x, output_hidden_states=True).hidden_states
        penultimate = build_encoder(model_config=TINY_SIGLIP, layer=-2, final_norm=False)
        penultimate.tower.load_state_dict(enc.tower.state_dict(), strict=False)
        assert len(penultimate.tower.encoder.layers) == 1  # the later layer is dropped
        torch.testing.assert_close(penultimate.eval()(x), hidden[-2])


def test_siglip_avg_pooling_of_the_patch_grid():
    enc = build_encoder(model_config=TINY_SIGLIP).eval()
    pooled = build_encoder(model_config=TINY_SIGLIP, pool="avg", pooled_grid=2).eval()
    pooled.tower.load_state_dict(enc.tower.state_dict())
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        full, out = enc(x), pooled(x)
    assert out.shape == (2, 4, 32) and pooled.tokens_per_frame == 4
    grid = full.reshape(2, 4, 4, 32)  # row-major 4x4 patch grid
    torch.testing.assert_close(out[:, 0], grid[:, :2, :2].mean((1, 2)))
    torch.testing.assert_close(out[:, 3], grid[:, 2:, 2:].mean((1, 2)))


def test_siglip2_matches_transformers_with_processor_patches():
    from transformers import Siglip2VisionConfig, Siglip2VisionModel
    from transformers.models.siglip2.image_processing_siglip2 import convert_image_to_patches

    enc = build_encoder(model_config=TINY_SIGLIP2, image_size=21).eval()
    assert enc.family == "siglip2" and enc.image_size == 21 and enc.tokens_per_frame == 9
    assert build_encoder(model_config=TINY_SIGLIP2).image_size == 28  # sqrt(num_patches) * patch
    ref = Siglip2VisionModel(Siglip2VisionConfig(**{k: v for k, v in TINY_SIGLIP2.items() if k != "model_type"}))
    ref.load_state_dict(enc.tower.state_dict(), strict=False)
    x = torch.randn(2, 3, 21, 21)
    patches = torch.stack([convert_image_to_patches(f, 7) for f in x])
    with torch.no_grad():
        expected = ref.eval()(pixel_values=patches, pixel_attention_mask=torch.ones(2, 9, dtype=torch.long),
                              spatial_shapes=torch.tensor([[3, 3], [3, 3]])).last_hidden_state
        torch.testing.assert_close(enc(x), expected)


def test_siglip_loads_a_local_folder_and_checks_it(tmp_path):
    from transformers import SiglipConfig, SiglipModel

    fields = {k: v for k, v in TINY_SIGLIP.items() if k != "model_type"}
    full = SiglipModel(SiglipConfig(vision_config=fields, text_config={
        "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
        "vocab_size": 64, "max_position_embeddings": 8}))
    full.save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.4, 0.5, 0.6],
                                                                    "image_std": [0.2, 0.3, 0.4]}))
    enc = build_encoder(model_path=str(tmp_path), model_config=TINY_SIGLIP).eval()
    assert enc.mean == (0.4, 0.5, 0.6) and enc.std == (0.2, 0.3, 0.4)
    x = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), full.vision_model(pixel_values=x).last_hidden_state)
    with pytest.raises(ConfigValidationError, match="hidden_size: recipe 64, folder 32"):
        build_encoder(model_path=str(tmp_path), model_config={**TINY_SIGLIP, "hidden_size": 64})
    with pytest.raises(CheckpointError, match="not a local model folder"):  # never a Hub download
        build_encoder(model_path="google/siglip-so400m-patch14-384")


@pytest.mark.parametrize("params, match", [
    ({"model_config": TINY_SIGLIP, "pool": "max"}, "pool must be"),
    ({"model_config": TINY_SIGLIP, "pool": "avg"}, "needs pooled_grid"),
    ({"model_config": TINY_SIGLIP, "pool": "avg", "pooled_grid": 0}, "pooled_grid"),
    ({"model_config": TINY_SIGLIP, "pool": "avg", "pooled_grid": 5}, "exceeds the 4x4"),
    ({"model_config": TINY_SIGLIP, "layer": 2}, "outside the tower's 2 layers"),
    ({"model_config": TINY_SIGLIP2, "image_size": 30}, "not a multiple of the patch size"),
    ({"model_config": TINY_SIGLIP, "image_size": 6}, "smaller than a patch"),
    ({"model_config": {**TINY_SIGLIP, "model_type": "clip_vision_model"}}, "not a SigLIP vision config"),
    ({}, "set 'model_path'"),
])
def test_siglip_param_errors(params, match):
    with pytest.raises(VTGError, match=match):
        build_encoder(**params)


def test_siglip_other_input_sizes():
    enc = build_encoder(model_config=TINY_SIGLIP, image_size=30).eval()  # 30 // 7: the native 4x4 grid
    assert enc.grid_size == (4, 4) and enc(torch.randn(1, 3, 30, 30)).shape == (1, 16, 32)
    big = build_encoder(model_config=TINY_SIGLIP, image_size=42).eval()  # 6x6: positions interpolated
    assert big.tokens_per_frame == 36 and torch.isfinite(big(torch.randn(1, 3, 42, 42))).all()


def test_siglip_refuses_frames_of_the_wrong_size():
    with pytest.raises(VTGError, match="expected 28x28"):
        build_encoder(model_config=TINY_SIGLIP)(torch.randn(1, 3, 32, 32))


# -- Qwen through hf_causal_lm ---------------------------------------------------------------------

@pytest.mark.parametrize("config, cls", [(TINY_QWEN2, "Qwen2ForCausalLM"), (TINY_QWEN3, "Qwen3ForCausalLM")])
def test_hf_causal_lm_builds_the_qwen_classes(config, cls):
    llm = default_catalog().build("llm", "hf_causal_lm", {"tokenizer": "tiny_chatml", "model_config": config})
    assert type(llm.model).__name__ == cls
    assert llm.tokenizer.eos_token == "<|im_end|>" and llm.tokenizer.chat_template
    assert llm.model.get_output_embeddings().weight is not llm.model.get_input_embeddings().weight


@pytest.fixture(scope="module", params=["qwen2", "qwen3"])
def tiny_modern(request):
    return build_model(load_recipe(f"recipes/debug/tiny_siglip_{request.param}.yaml")), request.param


QA = [{"q": "When does the red circle appear?", "a": "From <time>1.5</time> to <time>4.0</time> seconds."}]


def test_tiny_siglip_qwen_video_llm_forward_and_generate(tiny_modern):
    (model, proc), family = tiny_modern
    assert type(model.llm.model).__name__ == {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[family]
    assert type(model.encoder.tower).__name__ == "SiglipVisionModel"
    assert proc.prompt.chat_template == "tokenizer"
    t = 8
    ts = torch.arange(t).float().mul(1.5).expand(2, t).clone()
    frames = torch.randn(2, t, 3, 28, 28)
    batch = proc([QA, QA], ts.tolist())
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    tok, codec = model.tokenizer, model.time_codec
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>user\n") and "<|im_end|>\n<|im_start|>assistant\n" in text
    kept = tok.decode([i for i, lab in zip(ids, labels) if lab != IGNORE_INDEX])
    assert kept == f"From {codec.encode(1.5)} to {codec.encode(4.0)} seconds.<|im_end|>\n"
    assert ids.count(proc.video_token_id) == model.num_video_tokens(t) == 8
    out = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert torch.isfinite(out.loss)
    out.loss.backward()
    lora = [p for n, p in model.llm.named_parameters() if "lora_" in n]
    assert lora and all(p.grad is not None for p in lora)
    assert any(p.grad is not None for p in model.encoder.parameters())  # tiny_siglip trains its tower
    prompt = proc([[{"q": "When?"}]], ts[:1].tolist(), add_generation_prompt=True)
    assert tok.decode(prompt["input_ids"][0]).endswith("<|im_start|>assistant\n")
    new = model.generate(frames[:1], ts[:1], prompt["input_ids"], prompt["attention_mask"], max_new_tokens=4)
    assert new.shape[0] == 1 and 1 <= new.shape[1] <= 4


# -- paper size on the meta device -----------------------------------------------------------------

def siglip_vision_params(d=1152, inter=4304, layers=27, patch=14, image=384, head=True) -> int:
    """SigLIP vision tower: conv patch stem, learned positions, pre-norm blocks with biased q/k/v/o
    and a 2-layer MLP, the post layer norm, and (``head``) the attention-pooling head."""
    positions = (image // patch) ** 2
    stem = 3 * patch * patch * d + d + positions * d
    block = 2 * d + 4 * (d * d + d) + 2 * d + (d * inter + inter) + (inter * d + d)
    total = stem + layers * block + 2 * d
    if head:  # probe, nn.MultiheadAttention (in_proj + out_proj), layer norm, MLP
        total += d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * inter + inter) + (inter * d + d)
    return total


def qwen_params(vocab, d, inter, layers, heads, kv_heads, head_dim, qkv_bias, qk_norm) -> int:
    """Qwen2 / Qwen3 decoder: untied embeddings and head, GQA attention (q/k/v biases in Qwen2,
    q/k RMSNorms over head_dim in Qwen3), SwiGLU MLP, two RMSNorms a layer, a final RMSNorm."""
    q, kv = heads * head_dim, kv_heads * head_dim
    attn = d * q + 2 * d * kv + q * d + (q + 2 * kv if qkv_bias else 0) + (2 * head_dim if qk_norm else 0)
    layer = attn + 3 * d * inter + 2 * d
    return 2 * vocab * d + layers * layer + d


def lora_params(r, d, q, kv, layers) -> int:
    """LoRA on q/k/v/o: A (r x in) and B (out x r) per adapted projection."""
    return layers * r * ((d + q) + 2 * (d + kv) + (q + d))


def test_hand_counts_match_the_published_sizes():
    assert siglip_vision_params() == 428_225_600  # "so400m": the 400M-class vision tower
    assert siglip_vision_params(head=False) == 412_987_248
    qwen25 = qwen_params(152064, 3584, 18944, 28, 28, 4, 128, qkv_bias=True, qk_norm=False)
    assert qwen25 == 7_615_616_512  # Qwen2.5-7B: "7.61B"
    qwen3 = qwen_params(151936, 4096, 12288, 36, 32, 8, 128, qkv_bias=False, qk_norm=True)
    assert qwen3 == 8_190_735_360  # Qwen3-8B: "8.2B"


META = ["model.encoder.params.model_path=null", "model.llm.params.path=null", "model.llm.params.tokenizer=tiny_chatml"]


@pytest.mark.parametrize("recipe, llm_counts", [
    ("recipes/modern/siglip_qwen2_5_7b_lora.yaml",
     dict(vocab=152064, d=3584, inter=18944, layers=28, heads=28, kv_heads=4, head_dim=128, qkv_bias=True,
          qk_norm=False)),
    ("recipes/modern/siglip_qwen3_8b_lora.yaml",
     dict(vocab=151936, d=4096, inter=12288, layers=36, heads=32, kv_heads=8, head_dim=128, qkv_bias=False,
          qk_norm=True)),
])
def test_paper_size_recipe_builds_on_meta_with_its_parameter_counts(recipe, llm_counts):
    with torch.device("meta"):
        model, proc = build_model(load_recipe(recipe, META))
    enc, llm = model.encoder, model.llm.model
    c = llm_counts
    d, q, kv = c["d"], c["heads"] * c["head_dim"], c["kv_heads"] * c["head_dim"]
    # the vision tower without its unused pooling head, bf16, frozen; 9x9 pooled tokens of width 1152
    assert count(enc) == siglip_vision_params(head=False)
    assert (enc.out_dim, enc.image_size, enc.grid_size, enc.tokens_per_frame) == (1152, 384, (27, 27), 81)
    assert len(enc.tower.encoder.layers) == 27 and enc.tower.encoder.layers[0].self_attn.num_heads == 16
    assert all(p.dtype == torch.bfloat16 and not p.requires_grad for p in enc.parameters())
    # the LLM: the published vocabulary rows have room for the time tokens and the video token
    assert type(llm).__name__ == ("Qwen2ForCausalLM" if c["qkv_bias"] else "Qwen3ForCausalLM")
    base = sum(p.numel() for n, p in llm.named_parameters() if "lora_" not in n)
    assert base == qwen_params(**c)
    assert llm.get_input_embeddings().weight.shape == (c["vocab"], d)
    lora = sum(p.numel() for n, p in llm.named_parameters() if "lora_" in n)
    assert lora == lora_params(32, d, q, kv, c["layers"])
    trainable = sum(p.numel() for p in llm.parameters() if p.requires_grad)
    assert trainable == lora + 2 * c["vocab"] * d  # LoRA plus embeddings and head in full
    # the video side: absolute-second table (8192 + 96 frame rows), 256 slots, linear 1152 -> D
    assert count(model.time_embedding) == (8192 + 96) * 1152
    assert count(model.projector) == 1152 * d + d
    assert model.num_video_tokens(96) == 256
    assert proc.prompt.chat_template == "tokenizer"
    print(f"{recipe}: encoder {count(enc):,} llm {base:,} lora {lora:,} "
          f"slot {count(model.compressor):,} total {count(model):,}")


def test_grpo_recipe_trains_the_sft_model_on_meta():
    """recipes/modern/siglip_qwen2_5_7b_lora_grpo.yaml: the SFT recipe's model with the GRPO objective."""
    from vtgcore.build import build_reward

    grpo = load_recipe("recipes/modern/siglip_qwen2_5_7b_lora_grpo.yaml", META)
    assert grpo.training.objective == "grpo"
    g = grpo.training.grpo
    assert (g.group_size, g.temperature, g.top_p, g.max_new_tokens, g.passes, g.clip_eps, g.kl_coef) == (
        8, 1.0, 1.0, 64, 2, 0.2, 0.04)
    assert g.reward.name == "temporal_iou" and build_reward(g.reward) is not None
    assert grpo.data.train.format == "charades" and grpo.data.train.batch_size == 1 and "datasets" not in grpo.data.train
    assert grpo.runner.optim_wrapper.optimizer.lr == 2e-6
    counts = []
    for recipe in (grpo, load_recipe("recipes/modern/siglip_qwen2_5_7b_lora.yaml", META)):
        with torch.device("meta"):
            model, _ = build_model(recipe)
        counts.append((count(model), sum(p.numel() for p in model.parameters() if p.requires_grad)))
    assert counts[0] == counts[1]
    assert counts[0][1] == lora_params(32, 3584, 3584, 512, 28) + 2 * 152064 * 3584 + sum(
        p.numel() for kind in ("time_embedding", "compressor", "projector")
        for p in getattr(model, kind).parameters() if p.requires_grad)
