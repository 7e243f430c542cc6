"""Full-size architectures without weights: built on the ``meta`` device, parameter counts checked
against numbers worked out by hand from the paper's architecture."""

import pytest
import torch

from vtgcore_plugins.encoders.eva_vit_g_qformer import EvaViTGQFormer


def eva_vit_g_params(width=1408, depth=39, patch=14, grid=16, hidden=6144) -> int:
    """EVA-ViT-g as BLIP-2 keeps it: conv stem, CLS, positions, pre-norm blocks, no final norm."""
    stem = 3 * patch * patch * width + width      # patch_embed.proj weight + bias
    stem += width                                 # cls_token
    stem += (grid * grid + 1) * width             # pos_embed (257 positions)
    block = (2 * width                            # norm1
             + 3 * width * width + 2 * width      # qkv weight, q_bias, v_bias (no k bias)
             + width * width + width              # attn.proj
             + 2 * width                          # norm2
             + width * hidden + hidden            # mlp.fc1
             + hidden * width + width)            # mlp.fc2
    return stem + depth * block


def qformer_params(h=768, inter=3072, enc=1408, layers=12, cross_every=2) -> int:
    """BERT-base Q-Former, queries only: no word/position embeddings, no text feed-forward."""
    attention_out = h * h + h + 2 * h             # output.dense + output.LayerNorm
    self_attn = 3 * (h * h + h) + attention_out
    cross_attn = (h * h + h) + 2 * (enc * h + h) + attention_out
    ffn_query = (h * inter + inter) + (inter * h + h) + 2 * h
    n_cross = len(range(0, layers, cross_every))
    return 2 * h + layers * (self_attn + ffn_query) + n_cross * cross_attn  # + embeddings.LayerNorm


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def full():
    with torch.device("meta"):
        return EvaViTGQFormer()  # the paper's settings, no weights


def test_eva_vit_g_parameter_count(full):
    assert int(1408 * 4.3637) == 6144  # the MLP width LAVIS gets from mlp_ratio 4.3637
    expected = eva_vit_g_params()
    assert expected == 985_894_528  # about 1.0B (EVA-CLIP-g's 40 blocks minus one)
    assert count(full.vit) == expected
    assert len(full.vit.blocks) == 39
    assert full.vit.pos_embed.shape == (1, 257, 1408)
    assert full.vit.blocks[0].attn.num_heads == 16 and full.vit.blocks[0].attn.head_dim == 88
    assert all(p.dtype == torch.float16 for p in full.vit.parameters())  # vit_precision fp16


def test_qformer_ln_vision_and_queries(full):
    assert count(full.qformer) == qformer_params() == 105_137_664
    assert full.query_tokens.shape == (1, 32, 768)
    assert full.ln_vision.normalized_shape == (1408,) and count(full.ln_vision) == 2 * 1408
    assert full.ln_vision.weight.dtype == torch.float32
    assert (full.out_dim, full.tokens_per_frame, full.image_size) == (768, 32, 224)


def test_full_size_shapes_on_meta(full):
    x = torch.empty(2, 3, 224, 224, device="meta")
    assert full.encode_vit(x).shape == (2, 257, 1408)
    out = full(x)
    assert out.shape == (2, 32, 768) and out.dtype == torch.float32


def llama2_7b_params(vocab: int, d=4096, inter=11008, layers=32) -> int:
    """LLaMA-2-7B: untied input embeddings and head, per layer q/k/v/o, gate/up/down, 2 RMSNorms."""
    per_layer = 4 * d * d + 3 * d * inter + 2 * d
    return 2 * vocab * d + layers * per_layer + d


def test_llama2_7b_with_time_tokens_and_lora_on_meta():
    from peft import LoraConfig, inject_adapter_in_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=32)
    with torch.device("meta"):
        llm = AutoModelForCausalLM.from_config(config)
    assert count(llm) == llama2_7b_params(32000) == 6_738_415_616  # the published 6.74B
    llm.resize_token_embeddings(32000 + 1 + 11, mean_resizing=False)  # <ImageHere> + 11 time tokens
    assert llm.get_input_embeddings().weight.shape == (32012, 4096)
    assert llm.get_output_embeddings().weight.shape == (32012, 4096)
    assert count(llm) == llama2_7b_params(32012)
    inject_adapter_in_model(LoraConfig(r=32, lora_alpha=32, lora_dropout=0.1,
                                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]), llm)
    lora = sum(p.numel() for n, p in llm.named_parameters() if "lora_" in n)
    assert lora == 32 * 4 * (32 * 4096 + 4096 * 32) == 33_554_432  # "LoRA about 33.5M" in the reference


def test_vision_to_llm_side_at_paper_size_on_meta():
    from vtgcore_plugins.compressors.slot import SlotCompressor
    from vtgcore_plugins.projectors.linear import LinearProjector
    from vtgcore_plugins.time_embeddings.abs_second_table import AbsSecondTable

    with torch.device("meta"):
        table = AbsSecondTable(768, max_seconds=8192, max_frames=96, out_of_range="clamp")  # no range check on meta
        slots = SlotCompressor(768, num_slots=256)
        projector = LinearProjector(768, 4096)
        tokens = torch.empty(1, 96, 32, 768)
        seconds = torch.zeros(1, 96)
        out = projector(slots(table(tokens, seconds)).tokens)
    assert table.weight.shape == (8192, 768) and table.frame_index.weight.shape == (96, 768)
    assert slots.slots.shape == (768, 256)
    assert count(projector) == 768 * 4096 + 4096
    assert out.shape == (1, 256, 4096)


def _paper_recipe_on_meta(path):
    """A recipes/vtgllm file built without weights on the meta device, as
    vtgcore.apps.perf.gpu.real_shape_recipe("paper") builds eval_charades.yaml."""
    from omegaconf import OmegaConf

    from vtgcore.apps.perf.gpu import PAPER_LLAMA
    from vtgcore.build import build_model
    from vtgcore.config.loader import load_recipe

    recipe = load_recipe(path, ["model.encoder.params.vit_checkpoint=null", "model.encoder.params.qformer_checkpoint=null",
                                "model.llm.params.path=null", "model.llm.params.tokenizer=tiny",
                                "model.llm.params.gradient_checkpointing=false", "model.llm.params.dtype=float16",
                                "model.init_from=null"])
    recipe.model.llm.params.model_config = OmegaConf.create(PAPER_LLAMA)
    with torch.device("meta"):
        model, _ = build_model(recipe)
    return recipe, model


def test_grpo_charades_trains_the_finetuned_paper_model_on_meta():
    """recipes/vtgllm/grpo_charades.yaml: finetune_charades.yaml's model with the GRPO objective."""
    from vtgcore.build import build_reward

    grpo, model = _paper_recipe_on_meta("recipes/vtgllm/grpo_charades.yaml")
    assert grpo.training.objective == "grpo"
    g = grpo.training.grpo
    assert (g.group_size, g.temperature, g.top_p, g.max_new_tokens, g.passes, g.clip_eps, g.kl_coef) == (
        8, 1.0, 1.0, 64, 2, 0.2, 0.04)
    assert g.reward.name == "temporal_iou" and build_reward(g.reward) is not None
    assert grpo.data.train.format == "charades" and grpo.data.train.batch_size == 1 and "datasets" not in grpo.data.train
    assert grpo.data.train.annotation.endswith("Charades/train.caption_coco_format.json")
    assert grpo.runner.optim_wrapper.optimizer.lr == 2e-6 and grpo.runner.global_batch_size is None
    sft, sft_model = _paper_recipe_on_meta("recipes/vtgllm/finetune_charades.yaml")
    assert sft.training.objective == "sft"
    trainable = [sum(p.numel() for p in m.parameters() if p.requires_grad) for m in (model, sft_model)]
    assert count(model) == count(sft_model) and trainable[0] == trainable[1]
    from vtgcore.apps.perf.floors import PAPER_TRAINABLE

    assert trainable[0] == PAPER_TRAINABLE  # the count the GRPO memory estimate uses (docs/performance.md)
    assert count(model.encoder.vit) == eva_vit_g_params()
    assert not any(p.requires_grad for p in model.encoder.vit.parameters())  # the ViT frozen, the Q-Former trains
    assert count(model.encoder.qformer) == qformer_params()
    assert all(p.requires_grad for p in model.encoder.qformer.parameters())
    lora = sum(p.numel() for n, p in model.llm.model.named_parameters() if "lora_" in n)
    assert lora == 33_554_432
