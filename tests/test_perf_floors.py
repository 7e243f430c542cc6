"""FLOP, byte and floor arithmetic of the benchmark, against hand computations; the real-shape
recipe built on the meta device has the shapes the arithmetic assumes."""

import pytest
import torch

from vtgcore.apps.perf import floors as F


def test_eva_vit_g_flops_per_frame_by_hand():
    # 257 tokens (16 x 16 patches + CLS), width 1408, MLP 6144, 39 blocks
    block = 2 * 257 * (4 * 1408**2 + 2 * 1408 * 6144) + 4 * 257**2 * 1408
    assert block == 12_968_919_040 + 371_987_968 == 13_340_907_008
    stem = 2 * 256 * (3 * 14 * 14) * 1408
    assert stem == 423_886_848
    assert F.vit_flops_per_frame(F.ViTShape()) == 39 * block + stem == 520_719_260_160


def test_qformer_flops_per_frame_by_hand():
    self_attn = 2 * 32 * 4 * 768**2 + 4 * 32**2 * 768          # 154,140,672
    ffn = 4 * 32 * 768 * 3072                                   # 301,989,888
    cross = 2 * 32 * 2 * 768**2 + 2 * 257 * 2 * 1408 * 768 + 4 * 32 * 257 * 768  # 1,212,383,232
    assert (self_attn, ffn, cross) == (154_140_672, 301_989_888, 1_212_383_232)
    assert F.qformer_flops_per_frame(F.QFormerShape(), 257, 1408) == 12 * (self_attn + ffn) + 6 * cross == 12_747_866_112


def test_video_encoder_flops_about_51_tflop():
    assert F.encoder_flops(F.PAPER) == 96 * (520_719_260_160 + 12_747_866_112) == 51_212_844_122_112


def test_llama2_7b_prefill_and_decode_by_hand():
    llm = F.PAPER.llm
    assert llm.params() == 6_738_415_616 + 2 * 12 * 4096  # LLaMA-2-7B plus 12 added rows in embeddings and head
    weights = 4 * 4096**2 + 3 * 4096 * 11008                    # 202,375,168 per layer, norms left out
    s = 1000
    by_hand = 32 * (2 * s * weights + 4 * 4096 * (s * (s + 1) // 2)) + 2 * 4096 * 32012
    assert by_hand == 12_952_010_752_000 + 262_406_144_000 + 262_242_304 == 13_214_679_138_304
    assert F.llm_prefill_flops(llm, s) == by_hand
    step = 32 * (2 * weights + 4 * 4096 * 1001) + 2 * 4096 * 32012
    assert F.llm_decode_flops(llm, 1000) == step and F.llm_decode_flops(llm, 1000, batch=8) == 8 * step
    # decoding reads every layer weight and the head once per step, plus the KV cache
    layer_bytes = 32 * (weights + 2 * 4096) * 2
    head = 4096 * 32012 * 2 + 4096 * 2
    kv = 2 * 32 * 1000 * 4096 * 2
    assert F.llm_decode_bytes(llm, 1000) == layer_bytes + head + 4096 * 2 + kv


def test_roofline_floor_and_h100_decode_is_memory_bound():
    assert F.floor_seconds(10e12, 1e9, 1e15, 1e12) == pytest.approx(0.01)   # compute-bound
    assert F.floor_seconds(1e9, 3e12, 1e15, 1e12) == pytest.approx(3.0)     # memory-bound
    flops, bw = F.device_peaks("NVIDIA H100 80GB HBM3")
    assert (flops, bw) == (989.4e12, 3.35e12)
    assert F.device_peaks("NVIDIA H100 PCIe") == (756.5e12, 2.0e12)
    assert F.device_peaks("Tesla V100-SXM2-16GB") == (125e12, 0.9e12)
    assert F.device_peaks("Some Future GPU") is None
    f = F.video_floors(F.PAPER, seq=1000, new_tokens=64, peak_flops=flops, bandwidth=bw)
    assert f["encode"]["floor_s"] == pytest.approx(f["encode"]["flops"] / flops)  # compute-bound
    one_step_bytes = F.llm_decode_bytes(F.PAPER.llm, 1000)
    assert f["decode"]["floor_s"] > 64 * one_step_bytes / bw * 0.99             # memory-bound, ~4 ms a token
    f8 = F.video_floors(F.PAPER, seq=1000, new_tokens=64, peak_flops=flops, bandwidth=bw, batch=8)
    assert f8["decode"]["floor_s"] < f["decode"]["floor_s"] / 6                  # weights read once per batch
    assert f8["encode"]["floor_s"] == pytest.approx(f["encode"]["floor_s"], rel=1e-3)


def test_weights_of_the_paper_model_and_the_16gb_budget():
    w = F.weight_bytes(F.PAPER)
    assert w["vit"] == 985_894_528 * 2                         # tests/test_full_size.py's count, fp16
    assert w["qformer"] == (105_137_664 + 32 * 768 + 2 * 1408) * 4  # + queries and ln_vision, fp32
    embed = 2 * 32012 * 4096
    assert w["llm_embed_head"] == embed * 2 and w["llm_layers"] == (F.PAPER.llm.params() - embed) * 2
    gib = 2**30
    fp16 = sum(F.weight_bytes(F.PAPER, embed_bytes=4.0).values()) / gib
    int8 = sum(F.weight_bytes(F.PAPER, llm_bytes=1.0, embed_bytes=4.0).values()) / gib
    assert 15.0 < fp16 < 15.5   # leaves under 0.5 GiB of a 16 GB card: fp16 alone does not fit
    assert 9.0 < int8 < 9.5     # 8-bit layers: fits with room for activations and the KV cache
    assert F.kv_cache_bytes(F.PAPER.llm, 1000) == 2 * 32 * 1000 * 4096 * 2


def test_real_shape_recipe_on_meta_has_the_paper_shapes():
    from vtgcore.build import build_model
    from vtgcore.apps.perf.gpu import model_shape, real_shape_recipe

    recipe = real_shape_recipe("paper")
    with torch.device("meta"):
        model, _ = build_model(recipe)
    assert model_shape(recipe, model) == F.ModelShape(llm=F.LLMShape(vocab=32000))
    assert sum(p.numel() for p in model.encoder.vit.parameters()) * 2 == F.weight_bytes(F.PAPER)["vit"]
    base = sum(p.numel() for n, p in model.llm.model.named_parameters() if "lora_" not in n)
    assert base == F.LLMShape(vocab=32000).params()
    assert model.encoder.vit.patch_embed.proj.weight.dtype == torch.float16
    assert model.llm.model.model.layers[0].self_attn.q_proj.base_layer.weight.dtype == torch.float16  # no bf16 (V100)


def test_lora_step_and_the_feature_cache_prediction_at_paper_shapes():
    llm = F.PAPER.llm
    fwd = F.llm_prefill_flops(llm, 1000, logits_positions=20)
    assert F.lora_step_flops(llm, 1000, 20) == 3 * fwd and F.lora_step_flops(llm, 1000, 20, checkpointing=False) == 2 * fwd
    ratio = F.cache_ratio_from_flops(F.PAPER, 1000, 20)
    step = 3 * fwd + 3 * F.compress_project_flops(F.PAPER)
    assert ratio == pytest.approx((51_212_844_122_112 + step) / step)
    assert 2.2 < ratio < 2.4  # the encoder is about 1.3x the LoRA step at 1000 tokens: compute alone gives < 3x


def test_grpo_step_estimate_adds_up_its_phases():
    from vtgcore.apps.perf.floors import (PAPER, encoder_flops, compress_project_flops, grpo_step_estimate,
                                          kv_cache_bytes, llm_prefill_flops, lora_step_flops, qformer_flops_per_frame,
                                          weight_bytes)

    peak, bw = 1e15, 3e12
    one = grpo_step_estimate(PAPER, 1000, 20, 8, 1, False, 10**8, peak, bw)
    two = grpo_step_estimate(PAPER, 1000, 20, 8, 2, True, 10**8, peak, bw)
    assert one["phases"]["reference"]["flops"] == one["phases"]["old_policy"]["flops"] == 0
    encode = encoder_flops(PAPER) + compress_project_flops(PAPER)
    forward = encode + 8 * llm_prefill_flops(PAPER.llm, 1020, logits_positions=20)
    assert two["phases"]["reference"]["flops"] == two["phases"]["old_policy"]["flops"] == forward
    step = (encode + 2 * PAPER.frames * qformer_flops_per_frame(PAPER.qformer, PAPER.vit.tokens, PAPER.vit.width)
            + 2 * compress_project_flops(PAPER) + 8 * lora_step_flops(PAPER.llm, 1020, 20))
    assert one["phases"]["train"]["flops"] == step and two["phases"]["train"]["flops"] == 2 * step
    assert one["phases"]["prefill"]["flops"] == 8 * llm_prefill_flops(PAPER.llm, 1000)
    assert one["total_floor_s"] == pytest.approx(sum(p["floor_s"] for p in one["phases"].values()))
    mem = two["memory"]
    assert mem["kv_cache_sampling"] == kv_cache_bytes(PAPER.llm, 1020, 8)
    assert mem["weights"] == sum(weight_bytes(PAPER, embed_bytes=4.0).values())
    assert mem["gradients_and_adam"] == 12 * 10**8 and mem["reference"] == 4 * 10**8
    assert mem["peak"] == (mem["weights"] + mem["gradients_and_adam"] + mem["reference"]
                           + max(mem["kv_cache_sampling"], mem["activations_training"] + mem["logits_training"]))
    assert one["memory"]["reference"] == 0
