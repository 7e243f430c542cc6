"""The EVA-ViT-g + Q-Former and open_clip encoder plugins: shapes, chunking, precision, and loading
LAVIS / open_clip weight files (tiny models, files written by the tests)."""

import re

import open_clip
import pytest
import torch
import torch.nn.functional as F

from vtgcore.errors import CheckpointError, ConfigValidationError
from vtgcore_plugins.encoders.eva_vit_g_qformer import (
    EvaViTGQFormer,
    lavis_ignore_reason,
    lavis_to_module_key,
    module_to_lavis_key,
)
from vtgcore_plugins.encoders.open_clip import OpenCLIPEncoder

# Tiny EVA: ViT width 48 (differs from the Q-Former's 32, so cross-attention key/value shapes
# tell the two apart), 2 blocks, patch 14 on 28 px (4 patches + CLS); Q-Former 2 layers, 4 queries.
TINY = dict(image_size=28, patch_size=14, vit_width=48, vit_depth=2, vit_heads=2, num_query_tokens=4,
            qformer_hidden=32, qformer_layers=2, qformer_heads=2, qformer_intermediate=64,
            vit_precision="fp32")
VIT_EPS, BERT_EPS, LN_VISION_EPS = 1e-6, 1e-12, 1e-5


def tiny_eva(**kw) -> EvaViTGQFormer:
    return EvaViTGQFormer(**{**TINY, **kw})


def frames(n: int = 5, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# -- key mapping (pure functions) ----------------------------------------------------------------

MAPPING = [
    ("visual_encoder.cls_token", "vit.cls_token"),
    ("visual_encoder.pos_embed", "vit.pos_embed"),
    ("visual_encoder.patch_embed.proj.weight", "vit.patch_embed.proj.weight"),
    ("visual_encoder.blocks.7.attn.qkv.weight", "vit.blocks.7.attn.qkv.weight"),
    ("visual_encoder.blocks.7.attn.q_bias", "vit.blocks.7.attn.q_bias"),
    ("visual_encoder.blocks.38.mlp.fc2.bias", "vit.blocks.38.mlp.fc2.bias"),
    ("ln_vision.weight", "ln_vision.weight"),
    ("query_tokens", "query_tokens"),
    ("Qformer.bert.embeddings.LayerNorm.weight", "qformer.embeddings.layernorm.weight"),
    ("Qformer.bert.encoder.layer.0.attention.self.query.weight",
     "qformer.encoder.layer.0.attention.attention.query.weight"),
    ("Qformer.bert.encoder.layer.10.crossattention.self.value.bias",
     "qformer.encoder.layer.10.crossattention.attention.value.bias"),
    ("Qformer.bert.encoder.layer.3.attention.output.LayerNorm.bias",
     "qformer.encoder.layer.3.attention.output.LayerNorm.bias"),
    ("Qformer.bert.encoder.layer.2.crossattention.output.dense.weight",
     "qformer.encoder.layer.2.crossattention.output.dense.weight"),
    ("Qformer.bert.encoder.layer.11.output_query.LayerNorm.weight",
     "qformer.encoder.layer.11.output_query.LayerNorm.weight"),
]


@pytest.mark.parametrize("lavis,ours", MAPPING)
def test_key_mapping_both_ways(lavis, ours):
    assert lavis_to_module_key(lavis) == ours
    assert module_to_lavis_key(ours) == lavis


def test_key_mapping_outside_the_encoder():
    assert lavis_to_module_key("llama_proj.weight") is None
    assert lavis_to_module_key("t5_proj.weight") is None
    with pytest.raises(KeyError):
        module_to_lavis_key("projector.weight")


@pytest.mark.parametrize("key,ignored", [
    ("visual_encoder.blocks.39.attn.qkv.weight", True),   # EVA-CLIP-g's 40th block
    ("visual_encoder.blocks.38.attn.qkv.weight", False),
    ("visual_encoder.norm.weight", True),
    ("Qformer.bert.embeddings.word_embeddings.weight", True),
    ("Qformer.bert.embeddings.position_embeddings.weight", True),
    ("Qformer.bert.embeddings.position_ids", True),
    ("Qformer.bert.embeddings.LayerNorm.weight", False),
    ("Qformer.bert.encoder.layer.4.intermediate.dense.weight", True),
    ("Qformer.bert.encoder.layer.4.output.LayerNorm.bias", True),
    ("Qformer.bert.encoder.layer.4.output_query.LayerNorm.bias", False),
    ("Qformer.bert.encoder.layer.4.attention.output.dense.weight", False),
    ("Qformer.cls.predictions.bias", True),
    ("llm_proj.weight", True),
    ("query_tokens", False),
    ("vision_proj.weight", False),  # not InstructBLIP's: must surface as unexpected, not vanish
])
def test_ignore_list(key, ignored):
    assert (lavis_ignore_reason(key, vit_depth=39) is not None) == ignored


# -- building and running --------------------------------------------------------------------------

def test_shape_attributes_and_trainability():
    from vtgcore.data.transforms import CLIP_MEAN, CLIP_STD

    enc = tiny_eva()
    assert (enc.out_dim, enc.tokens_per_frame, enc.image_size) == (32, 4, 28)
    assert (enc.mean, enc.std) == (CLIP_MEAN, CLIP_STD)
    assert enc.query_tokens.shape == (1, 4, 32)
    assert enc.encode_vit(frames(2)).shape == (2, 5, 48)  # CLS + 2x2 patches
    out = enc(frames(3))
    assert out.shape == (3, 4, 32) and out.dtype == torch.float32
    trainable = {n.split(".")[0] for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == {"qformer", "query_tokens"}  # freeze_vit freezes the ViT and ln_vision
    enc.train()
    assert enc.training and enc.qformer.training and not enc.vit.training and not enc.ln_vision.training
    frozen = tiny_eva(freeze_qformer=True)
    assert not any(p.requires_grad for p in frozen.parameters())
    free = tiny_eva(freeze_vit=False)
    assert all(p.requires_grad for p in free.parameters())


def test_text_parts_of_the_qformer_are_removed():
    enc = tiny_eva()
    keys = list(enc.state_dict())
    assert not [k for k in keys if "word_embeddings" in k or "position_embeddings" in k]
    assert not [k for k in keys if re.search(r"layer\.\d+\.(intermediate|output)\.", k)]
    assert any(".intermediate_query." in k for k in keys)
    crossed = sorted({int(k.split(".")[3]) for k in keys if ".crossattention." in k})
    assert crossed == [0]  # cross-attention every 2nd layer: layer 0 of 2


def test_chunked_equals_unchunked():
    enc = tiny_eva(frame_chunk=2).eval()
    x = frames(5)
    with torch.no_grad():
        chunked = enc(x)
        enc.frame_chunk = 0
        whole = enc(x)
        enc.frame_chunk = 3
        other = enc(x)
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(other, whole, rtol=1e-6, atol=1e-6)


def test_fp16_vit_matches_fp32_closely():
    torch.manual_seed(0)
    full = tiny_eva().eval()
    half = tiny_eva(vit_precision="fp16").eval()
    half.load_state_dict(full.state_dict())  # copies into the half ViT
    assert all(p.dtype == torch.float16 for p in half.vit.parameters())
    assert half.ln_vision.weight.dtype == torch.float32 and half.query_tokens.dtype == torch.float32
    x = frames(3)
    with torch.no_grad():
        feats = half.encode_vit(x)
        out = half(x)
        ref = full(x)
    assert feats.dtype == torch.float32 and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2)


def test_lavis_fp16_casts_only_conv_and_linear_like_lavis():
    """``lavis_fp16``: LAVIS's ``convert_weights_to_fp16`` halves the weight and bias of every
    Conv1d/Conv2d/Linear; LayerNorms, pos_embed, cls_token and the q/v biases stay fp32."""
    torch.manual_seed(0)
    full = tiny_eva().eval()
    mixed = tiny_eva(vit_precision="lavis_fp16").eval()
    mixed.load_state_dict(full.state_dict())
    dtypes = {name: p.dtype for name, p in mixed.vit.named_parameters()}
    half = {n for n, d in dtypes.items() if d == torch.float16}
    assert half == {"patch_embed.proj.weight", "patch_embed.proj.bias"} | {
        f"blocks.{b}.{m}.{w}" for b in range(2) for m, ws in
        (("attn.qkv", ["weight"]), ("attn.proj", ["weight", "bias"]), ("mlp.fc1", ["weight", "bias"]),
         ("mlp.fc2", ["weight", "bias"])) for w in ws}
    fp32 = set(dtypes) - half
    assert {"cls_token", "pos_embed", "blocks.0.norm1.weight", "blocks.1.norm2.bias", "blocks.0.attn.q_bias",
            "blocks.1.attn.v_bias"} <= fp32
    assert all(dtypes[n] == torch.float32 for n in fp32)
    assert all(p.dtype == torch.float32 for p in [*mixed.ln_vision.parameters(), *mixed.qformer.parameters()])
    assert mixed.query_tokens.dtype == torch.float32

    x = frames(3)
    with torch.no_grad():
        feats = mixed.encode_vit(x)  # CPU: fp16 autocast (matmuls fp16, LayerNorms and residuals fp32)
        out, ref, ref_feats = mixed(x), full(x), full.encode_vit(x)
    assert feats.dtype == torch.float32 and out.dtype == torch.float32
    torch.testing.assert_close(feats, ref_feats, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(out, ref, rtol=1e-2, atol=1e-2)
    # closer to fp32 than the all-half ViT, whose LayerNorms and residual stream are half too
    allhalf = tiny_eva(vit_precision="fp16").eval()
    allhalf.load_state_dict(full.state_dict())
    with torch.no_grad():
        err_mixed = (feats - ref_feats).abs().max()
        err_half = (allhalf.encode_vit(x) - ref_feats).abs().max()
        # nested under a bf16 autocast (the runner's precision), the ViT still computes in fp16
        with torch.autocast("cpu", dtype=torch.bfloat16):
            nested = mixed.encode_vit(x)
    assert err_mixed <= err_half
    torch.testing.assert_close(nested, feats, rtol=0, atol=0)


def test_lavis_fp16_state_round_trips_through_a_checkpoint(tmp_path):
    from safetensors.torch import save_file

    from vtgcore.build import load_component_checkpoint

    src = tiny_eva(vit_precision="lavis_fp16")
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    dst = tiny_eva(vit_precision="lavis_fp16")
    load_component_checkpoint(dst, str(path), "encoder")
    for key, value in src.state_dict().items():
        assert dst.state_dict()[key].dtype == value.dtype and torch.equal(dst.state_dict()[key], value), key


def test_bad_params_are_clear():
    with pytest.raises(ConfigValidationError, match="freeze_vit"):
        tiny_eva(vit_precision="fp16", freeze_vit=False)
    with pytest.raises(ConfigValidationError, match="freeze_vit"):
        tiny_eva(vit_precision="lavis_fp16", freeze_vit=False)
    with pytest.raises(ConfigValidationError, match="vit_precision"):
        tiny_eva(vit_precision="bf16")
    with pytest.raises(ConfigValidationError, match="multiple of patch_size"):
        tiny_eva(image_size=30)


def test_encoder_state_fits_the_recipe_checkpoint_loader(tmp_path):
    """``model.encoder.checkpoint`` is a strict safetensors load of the whole encoder."""
    from safetensors.torch import save_file

    from vtgcore.build import load_component_checkpoint

    torch.manual_seed(1)
    src = tiny_eva(vit_precision="fp16")
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    dst = tiny_eva(vit_precision="fp16")
    load_component_checkpoint(dst, str(path), "encoder")
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key


# -- LAVIS weight files ----------------------------------------------------------------------------

# Hand-written LAVIS names (eva_vit.py / Qformer.py), independent of the mapping functions.
LAVIS_VIT_STEM = ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
LAVIS_VIT_BLOCK0 = [
    "blocks.0.norm1.weight", "blocks.0.norm1.bias",
    "blocks.0.attn.qkv.weight", "blocks.0.attn.q_bias", "blocks.0.attn.v_bias",
    "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
    "blocks.0.norm2.weight", "blocks.0.norm2.bias",
    "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias", "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias",
]
_L0 = "Qformer.bert.encoder.layer.0."
LAVIS_QFORMER_LAYER0 = [
    _L0 + n for n in [
        "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
        "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
        "attention.output.dense.weight", "attention.output.dense.bias",
        "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
        "crossattention.self.query.weight", "crossattention.self.query.bias",
        "crossattention.self.key.weight", "crossattention.self.key.bias",
        "crossattention.self.value.weight", "crossattention.self.value.bias",
        "crossattention.output.dense.weight", "crossattention.output.dense.bias",
        "crossattention.output.LayerNorm.weight", "crossattention.output.LayerNorm.bias",
        "intermediate_query.dense.weight", "intermediate_query.dense.bias",
        "output_query.dense.weight", "output_query.dense.bias",
        "output_query.LayerNorm.weight", "output_query.LayerNorm.bias",
    ]
]
LAVIS_QFORMER_REST = ["Qformer.bert.embeddings.LayerNorm.weight", "Qformer.bert.embeddings.LayerNorm.bias",
                      "ln_vision.weight", "ln_vision.bias", "query_tokens"]
# What a real InstructBLIP file also holds and we deliberately do not load.
LAVIS_TEXT_EXTRAS = {
    "Qformer.bert.embeddings.word_embeddings.weight": (30523, 32),
    "Qformer.bert.embeddings.position_embeddings.weight": (512, 32),
    "Qformer.cls.predictions.bias": (30523,),
    "llm_proj.weight": (64, 32),
    "llm_proj.bias": (64,),
    **{f"Qformer.bert.encoder.layer.{i}.{n}": s for i in range(2) for n, s in [
        ("intermediate.dense.weight", (64, 32)), ("intermediate.dense.bias", (64,)),
        ("output.dense.weight", (32, 64)), ("output.dense.bias", (32,)),
        ("output.LayerNorm.weight", (32,)), ("output.LayerNorm.bias", (32,))]},
}


@pytest.fixture
def lavis(tmp_path):
    """A tiny model and its weights written as LAVIS's eva_vit_g.pth and InstructBLIP file."""
    torch.manual_seed(3)
    src = tiny_eva()
    with torch.no_grad():  # non-trivial values everywhere (LayerNorms and biases start at 1 / 0)
        for p in src.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    named = {module_to_lavis_key(k): v.clone() for k, v in src.state_dict().items()}
    vit = {k[len("visual_encoder."):]: v for k, v in named.items() if k.startswith("visual_encoder.")}
    vit.update({k.replace("blocks.0.", "blocks.2.", 1): v for k, v in vit.items() if k.startswith("blocks.0.")})
    qformer = {k: v for k, v in named.items() if not k.startswith("visual_encoder.")}
    qformer.update({k: torch.randn(s) for k, s in LAVIS_TEXT_EXTRAS.items()})
    qformer["Qformer.bert.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    vit_path, qf_path = tmp_path / "eva_vit_g.pth", tmp_path / "instruct_blip_vicuna7b_trimmed.pth"
    torch.save(vit, vit_path)
    torch.save({"model": qformer}, qf_path)
    return src, vit, qformer, vit_path, qf_path


def test_generated_lavis_names_match_the_handwritten_ones(lavis):
    _, vit, qformer, _, _ = lavis
    assert set(LAVIS_VIT_STEM) | set(LAVIS_VIT_BLOCK0) == {
        k for k in vit if not k.startswith("blocks.") or k.startswith("blocks.0.")}
    assert set(LAVIS_QFORMER_LAYER0) == {k for k in qformer if k.startswith(_L0)} - set(LAVIS_TEXT_EXTRAS)
    assert set(LAVIS_QFORMER_REST) <= set(qformer)
    # and each hand-written name lands on an existing module parameter
    own = tiny_eva().state_dict()
    for name in LAVIS_VIT_STEM + LAVIS_VIT_BLOCK0:
        assert lavis_to_module_key("visual_encoder." + name) in own, name
    for name in LAVIS_QFORMER_LAYER0 + LAVIS_QFORMER_REST:
        assert lavis_to_module_key(name) in own, name


def test_lavis_files_load_every_tensor(lavis, caplog):
    src, _, _, vit_path, qf_path = lavis
    with caplog.at_level("INFO"):
        enc = tiny_eva(vit_checkpoint=str(vit_path), qformer_checkpoint=str(qf_path))
    for key, value in src.state_dict().items():
        assert torch.equal(enc.state_dict()[key], value), key
    assert "not loaded on purpose" in caplog.text and "blocks.2." in caplog.text
    ignored = tiny_eva().load_lavis(str(qf_path), vit_file=False)
    assert set(ignored) == set(LAVIS_TEXT_EXTRAS) | {"Qformer.bert.embeddings.position_ids"}


def _heads(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.reshape(*x.shape[:2], n, -1).transpose(1, 2)


def _attend(q, k, v, n):
    q, k, v = _heads(q, n), _heads(k, n), _heads(v, n)
    a = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(-1) @ v
    return a.transpose(1, 2).flatten(2)


def test_lavis_tensors_land_in_the_right_modules(lavis):
    """Recompute ViT block 0 and Q-Former layer 0 by hand from the raw LAVIS tensors."""
    _, vit, qformer, vit_path, qf_path = lavis
    enc = tiny_eva(vit_checkpoint=str(vit_path), qformer_checkpoint=str(qf_path)).eval()
    x = frames(2)
    seen = {}
    enc.vit.blocks[0].register_forward_hook(lambda m, i, o: seen.__setitem__("vit0", o))
    enc.qformer.encoder.layer[0].register_forward_hook(lambda m, i, o: seen.__setitem__("qf0", o))
    with torch.no_grad():
        enc(x)
        feats = enc.encode_vit(x)

    # ViT: patch embed, CLS, positions, then one pre-norm block with q/v biases and no k bias.
    r = vit
    h = F.conv2d(x, r["patch_embed.proj.weight"], r["patch_embed.proj.bias"], stride=14).flatten(2).transpose(1, 2)
    h = torch.cat([r["cls_token"].expand(2, -1, -1), h], 1) + r["pos_embed"]
    n = F.layer_norm(h, (48,), r["blocks.0.norm1.weight"], r["blocks.0.norm1.bias"], VIT_EPS)
    wq, wk, wv = r["blocks.0.attn.qkv.weight"].chunk(3)
    q = n @ wq.T + r["blocks.0.attn.q_bias"]
    k = n @ wk.T
    v = n @ wv.T + r["blocks.0.attn.v_bias"]
    h = h + _attend(q, k, v, 2) @ r["blocks.0.attn.proj.weight"].T + r["blocks.0.attn.proj.bias"]
    n = F.layer_norm(h, (48,), r["blocks.0.norm2.weight"], r["blocks.0.norm2.bias"], VIT_EPS)
    h = h + F.gelu(n @ r["blocks.0.mlp.fc1.weight"].T + r["blocks.0.mlp.fc1.bias"]) @ r["blocks.0.mlp.fc2.weight"].T \
        + r["blocks.0.mlp.fc2.bias"]
    torch.testing.assert_close(seen["vit0"], h, rtol=1e-4, atol=1e-5)

    # ln_vision (fp32, eps 1e-5) on the ViT output.
    r = qformer
    img = F.layer_norm(feats, (48,), r["ln_vision.weight"], r["ln_vision.bias"], LN_VISION_EPS)
    torch.testing.assert_close(enc.ln_vision(feats), img)

    # Q-Former layer 0: embeddings LayerNorm on the queries, self-attention, cross-attention to
    # the image tokens, query feed-forward; BERT post-norm residuals.
    def bert_attention(xq, xkv, part):
        p = _L0 + part
        q = xq @ r[p + ".self.query.weight"].T + r[p + ".self.query.bias"]
        k = xkv @ r[p + ".self.key.weight"].T + r[p + ".self.key.bias"]
        v = xkv @ r[p + ".self.value.weight"].T + r[p + ".self.value.bias"]
        o = _attend(q, k, v, 2) @ r[p + ".output.dense.weight"].T + r[p + ".output.dense.bias"]
        return F.layer_norm(o + xq, (32,), r[p + ".output.LayerNorm.weight"], r[p + ".output.LayerNorm.bias"], BERT_EPS)

    e = F.layer_norm(r["query_tokens"].expand(2, -1, -1), (32,), r["Qformer.bert.embeddings.LayerNorm.weight"],
                     r["Qformer.bert.embeddings.LayerNorm.bias"], BERT_EPS)
    a = bert_attention(e, e, "attention")
    c = bert_attention(a, img, "crossattention")
    f = F.gelu(c @ r[_L0 + "intermediate_query.dense.weight"].T + r[_L0 + "intermediate_query.dense.bias"])
    f = f @ r[_L0 + "output_query.dense.weight"].T + r[_L0 + "output_query.dense.bias"]
    out = F.layer_norm(f + c, (32,), r[_L0 + "output_query.LayerNorm.weight"], r[_L0 + "output_query.LayerNorm.bias"],
                       BERT_EPS)
    torch.testing.assert_close(seen["qf0"], out, rtol=1e-4, atol=1e-5)


def test_missing_key_is_named(lavis, tmp_path):
    _, vit, _, _, _ = lavis
    bad = dict(vit)
    del bad["blocks.1.attn.v_bias"]
    path = tmp_path / "missing.pth"
    torch.save(bad, path)
    with pytest.raises(CheckpointError, match=r"vit_checkpoint .*missing.pth: 1 missing key\(s\).*blocks\.1\.attn\.v_bias"):
        tiny_eva(vit_checkpoint=str(path))


def test_unexpected_key_is_named(lavis, tmp_path):
    _, _, qformer, _, _ = lavis
    bad = {**qformer, "Qformer.bert.encoder.layer.0.attention.self.k_bias": torch.zeros(32),
           "vision_proj.weight": torch.zeros(4, 32)}
    path = tmp_path / "unexpected.pth"
    torch.save({"model": bad}, path)
    with pytest.raises(CheckpointError, match=r"2 unexpected key\(s\): Qformer\.bert\.encoder\.layer\.0\.attention"
                                              r"\.self\.k_bias, vision_proj\.weight"):
        tiny_eva(qformer_checkpoint=str(path))


def test_shape_mismatch_and_partial_vit_in_qformer_file(lavis, tmp_path):
    _, _, qformer, _, _ = lavis
    bad = {**qformer, "query_tokens": torch.zeros(1, 5, 32)}
    torch.save(bad, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"shape mismatch.*query_tokens \(1, 5, 32\) vs \(1, 4, 32\)"):
        tiny_eva(qformer_checkpoint=str(tmp_path / "shape.pth"))
    # an InstructBLIP file that carries part of the ViT must carry all of it
    partial = {**qformer, "visual_encoder.cls_token": torch.zeros(1, 1, 48)}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"missing key\(s\).*visual_encoder\.blocks\.0\.attn\.q_bias"):
        tiny_eva(qformer_checkpoint=str(tmp_path / "partial.pth"))


def test_instructblip_file_with_the_vit_loads_it_too(lavis, tmp_path):
    src, _, qformer, _, _ = lavis
    full = {**qformer, **{module_to_lavis_key(k): v for k, v in src.state_dict().items() if k.startswith("vit.")}}
    torch.save({"model": full}, tmp_path / "full.pth")
    enc = tiny_eva(qformer_checkpoint=str(tmp_path / "full.pth"))
    assert torch.equal(enc.vit.blocks[1].attn.v_bias, src.vit.blocks[1].attn.v_bias)


def test_pos_embed_of_another_resolution_is_resized(lavis, tmp_path):
    _, vit, _, _, _ = lavis
    bigger = {**vit, "pos_embed": torch.randn(1, 1 + 3 * 3, 48)}  # a 42 px grid into a 28 px model
    torch.save(bigger, tmp_path / "pos.pth")
    enc = tiny_eva(vit_checkpoint=str(tmp_path / "pos.pth"))
    assert enc.vit.pos_embed.shape == (1, 5, 48)
    torch.testing.assert_close(enc.vit.pos_embed[:, :1], bigger["pos_embed"][:, :1])  # CLS entry kept


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 48), "payload": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        tiny_eva(vit_checkpoint=str(path))
    assert not marker.exists()


def test_missing_file_and_non_state_dict(tmp_path):
    with pytest.raises(CheckpointError, match="file not found"):
        tiny_eva(qformer_checkpoint=str(tmp_path / "nope.pth"))
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        tiny_eva(vit_checkpoint=str(tmp_path / "list.pth"))


# -- open_clip -------------------------------------------------------------------------------------


TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 28, "layers": 2, "width": 32, "patch_size": 7, "head_width": 16},
             "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}
TINY_NAME = "vtg-test-tiny-ViT"


@pytest.fixture
def clip_file(tmp_path):
    """A tiny open_clip architecture registered by name, and a weight file for it."""
    import json

    cfg = tmp_path / f"{TINY_NAME}.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(cfg)
    torch.manual_seed(5)
    model = open_clip.create_model(TINY_NAME).eval()
    path = tmp_path / "tiny_clip.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_open_clip_reload_and_tokens(clip_file):
    model, path = clip_file
    enc = OpenCLIPEncoder(TINY_NAME, pretrained=str(path)).eval()
    assert (enc.image_size, enc.out_dim, enc.tokens_per_frame) == (28, 32, 16)
    assert enc.mean == tuple(open_clip.OPENAI_DATASET_MEAN) and enc.std == tuple(open_clip.OPENAI_DATASET_STD)
    x = frames(3)
    model.visual.output_tokens = True
    with torch.no_grad():
        _, ref = model.visual(x)
        out = enc(x)
    assert out.shape == (3, 16, 32)
    torch.testing.assert_close(out, ref)  # the tower's own patch tokens (after ln_post)
    assert not any(p.requires_grad and n.endswith("proj") for n, p in enc.named_parameters())


def test_open_clip_pool_tokens_and_layer(clip_file):
    _, path = clip_file
    full = OpenCLIPEncoder(TINY_NAME, pretrained=str(path)).eval()
    pooled = OpenCLIPEncoder(TINY_NAME, pretrained=str(path), pool_tokens=4).eval()
    assert pooled.tokens_per_frame == 4
    x = frames(2)
    with torch.no_grad():
        grid = full(x).transpose(1, 2).reshape(2, 32, 4, 4)
        out = pooled(x)
    assert out.shape == (2, 4, 32)
    torch.testing.assert_close(out, F.avg_pool2d(grid, 2).flatten(2).transpose(1, 2))
    penultimate = OpenCLIPEncoder(TINY_NAME, pretrained=str(path), layer=-2, final_norm=False)
    assert len(penultimate.visual.transformer.resblocks) == 1 and penultimate(x).shape == (2, 16, 32)
    with pytest.raises(ConfigValidationError, match="square number"):
        OpenCLIPEncoder(TINY_NAME, pretrained=str(path), pool_tokens=3)


def test_open_clip_local_dir_and_in_memory_config(clip_file, tmp_path):
    import json

    from safetensors.torch import save_file

    model, path = clip_file
    folder = tmp_path / "local"
    folder.mkdir()
    pre = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP, "preprocess_cfg": pre}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    enc = OpenCLIPEncoder(f"local-dir:{folder}").eval()
    assert enc.mean == (0.5, 0.5, 0.5) and enc.std == (0.5, 0.5, 0.5)
    mem = OpenCLIPEncoder("tiny", model_config=TINY_CLIP, pretrained=str(path)).eval()
    x = frames(2)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), mem(x))
        torch.testing.assert_close(mem(x), OpenCLIPEncoder(TINY_NAME, pretrained=str(path)).eval()(x))


def test_open_clip_never_downloads(clip_file, tmp_path):
    with pytest.raises(CheckpointError, match="not an existing local file"):
        OpenCLIPEncoder(TINY_NAME, pretrained=str(tmp_path / "missing.pt"))
    with pytest.raises(CheckpointError, match="not an existing local file"):
        OpenCLIPEncoder("ViT-B-32", pretrained="openai")  # a tag: would download
    with pytest.raises(ConfigValidationError, match="hf-hub"):
        OpenCLIPEncoder("hf-hub:timm/ViT-B-16-SigLIP")
    with pytest.raises(ConfigValidationError, match="unknown architecture"):
        OpenCLIPEncoder("no-such-model", pretrained=str(clip_file[1]))


def test_open_clip_wrong_weights_are_a_checkpoint_error(tmp_path):
    other = dict(TINY_CLIP, vision_cfg={**TINY_CLIP["vision_cfg"], "width": 48, "head_width": 16})
    path = tmp_path / "other.pt"
    mismatched = OpenCLIPEncoder("tiny", model_config=other)
    torch.save({"visual." + k: v for k, v in mismatched.visual.state_dict().items()}, path)
    with pytest.raises(CheckpointError, match="cannot load"):
        OpenCLIPEncoder("tiny", model_config=TINY_CLIP, pretrained=str(path))
