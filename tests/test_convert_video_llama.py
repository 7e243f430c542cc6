"""``vtg convert video-llama`` and ``model.init_from``: Video-LLaMA-2's vision-language checkpoint
(``VL_LLaMA_2_7B_Finetuned.pth``) as the start of the paper's pre-training.

The fake file follows the original file's layout at tiny widths: ``llama_proj.weight`` / ``.bias``,
``video_frame_position_embedding.weight`` (32 rows), Video-LLaMA's ``video_Qformer.*`` and
``video_query_tokens``, buffers, and a few image-encoder keys spelled ``vision_encoder`` / ``qformer``
/ ``vision_layernorm``, which the original renames. Expected values come from these raw tensors and
from the original's ``interpolate_frame_pos_embed`` written out here.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vtgcore import build_model, load_recipe
from vtgcore.apps.cli import main
from vtgcore.errors import CheckpointError, RecipeError
from vtgcore_plugins.encoders.eva_vit_g_qformer import EvaViTGQFormer, module_to_lavis_key

ENCODER = dict(image_size=28, patch_size=14, vit_width=48, vit_depth=2, vit_heads=2, num_query_tokens=4,
               qformer_hidden=24, qformer_layers=2, qformer_heads=2, qformer_intermediate=64,
               vit_precision="fp32", qformer_dropout=0.0)
DV, D = 24, 32                                   # Q-Former width (Video-LLaMA: 768), tiny LLaMA width (4096)
BASE = "recipes/vtgllm/base.yaml"
NO_ABS = "recipes/vtgllm/ablations/no_absolute_time.yaml"
FRAME_KEY = "time_embedding.frame_index.weight"
#: base.yaml at tiny widths: tiny encoder and LLaMA, no LAVIS or LLaMA files.
TINY = ["llm=tiny_llama_lora", "model.encoder.params.vit_checkpoint=null",
        "model.encoder.params.qformer_checkpoint=null", "model.compressor.params.num_slots=4",
        "model.llm.params.dtype=float32",
        *(f"model.encoder.params.{k}={v}" for k, v in ENCODER.items())]
#: our encoder name -> the spelling in the file before the original's renames.
ENCODER_KEYS = {
    "ln_vision.weight": "vision_layernorm.weight",
    "ln_vision.bias": "vision_layernorm.bias",
    "vit.blocks.0.norm1.weight": "vision_encoder.blocks.0.norm1.weight",
    "qformer.embeddings.layernorm.weight": "qformer.bert.embeddings.LayerNorm.weight",
}
VIDEO_QFORMER = ["video_Qformer.bert.encoder.layer.0.attention.self.query.weight",
                 "video_Qformer.bert.encoder.layer.0.crossattention.self.key.weight",
                 "video_Qformer.bert.embeddings.position_ids"]


def original_interpolate_frame_pos_embed(frame_pos_embed_ckpt: torch.Tensor, new_n_frm: int = 96) -> torch.Tensor:
    """The original's ``vtgllm/processors/video_processor.py`` function, step by step."""
    frame_pos_embed_ckpt = frame_pos_embed_ckpt.unsqueeze(0).transpose(1, 2)  # (1, dim, old_n_frm)
    new = torch.nn.functional.interpolate(frame_pos_embed_ckpt, size=(new_n_frm), mode="nearest")  # (1, dim, new)
    return new.transpose(1, 2).squeeze(0)  # (new_n_frm, dim)


def nearest_index(old: int, new: int) -> np.ndarray:
    """PyTorch's nearest rule in plain numpy: row j takes ``floor(j * float32(old / new))``, clamped."""
    scale = np.float32(old) / np.float32(new)
    return np.minimum(np.floor(np.arange(new, dtype=np.float32) * scale).astype(np.int64), old - 1)


def encoder_shapes() -> dict[str, tuple[int, ...]]:
    torch.manual_seed(0)
    own = EvaViTGQFormer(**ENCODER).state_dict()
    return {k: tuple(own[k].shape) for k in ENCODER_KEYS}


def video_llama_state(frames: int = 32, seed: int = 0, encoder: bool = True) -> dict[str, torch.Tensor]:
    """A state dict in the layout of Video-LLaMA-2's VL checkpoint, random tensors at tiny widths."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g)

    state = {
        "llama_proj.weight": rand(D, DV),
        "llama_proj.bias": rand(D),
        "video_frame_position_embedding.weight": rand(frames, DV),
        "video_query_tokens": rand(1, 32, DV),
        VIDEO_QFORMER[0]: rand(DV, DV),
        VIDEO_QFORMER[1]: rand(DV, DV),
        VIDEO_QFORMER[2]: torch.arange(512).unsqueeze(0),
        "llama_model.model.layers.0.self_attn.rotary_emb.inv_freq": rand(4),
    }
    if encoder:
        for ours, spelled in ENCODER_KEYS.items():
            state[spelled] = rand(*encoder_shapes()[ours])
        state["qformer.bert.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    return state


def save(state, path, wrapped: bool = True):
    """As the runner saves it (``{"model": ..., "optimizer": ..., "epoch": ...}``) or the bare state dict."""
    if wrapped:
        torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "config": {"run": {"seed": 42}},
                    "scaler": None, "epoch": 4}, path)
    else:
        torch.save(state, path)
    return path


def convert(src, out, *extra) -> int:
    return main(["convert", "video-llama", str(src), str(out), *extra])


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("vtg: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    return errors[0]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The fake file converted for recipes/vtgllm/base.yaml (96 frames)."""
    tmp = tmp_path_factory.mktemp("video_llama")
    state = video_llama_state()
    src = save(state, tmp / "VL_LLaMA_2_7B_Finetuned.pth")
    out = tmp / "video_llama2_vl"
    assert convert(src, out) == 0
    return state, src, out


@pytest.mark.parametrize("wrapped", [True, False])
def test_projector_and_frame_table_32_to_96(tmp_path, wrapped):
    state = video_llama_state()
    out = tmp_path / "out"
    assert convert(save(state, tmp_path / "vl.pth", wrapped), out) == 0
    got = load_file(str(out / "model.safetensors"))
    assert torch.equal(got["projector.proj.weight"], state["llama_proj.weight"])
    assert torch.equal(got["projector.proj.bias"], state["llama_proj.bias"])
    source = state["video_frame_position_embedding.weight"]
    table = got[FRAME_KEY]
    assert table.shape == (96, DV) and table.dtype == source.dtype
    assert torch.equal(table, source.repeat_interleave(3, dim=0))  # each of the 32 rows 3 times
    assert torch.equal(table, original_interpolate_frame_pos_embed(source, 96))


@pytest.mark.parametrize("old, new", [(32, 20), (8, 24), (32, 82), (32, 32)])
def test_frame_table_other_sizes_follow_the_original(tmp_path, old, new):
    state = video_llama_state(frames=old)
    out = tmp_path / "out"
    assert convert(save(state, tmp_path / "vl.pth"), out, f"model.time_embedding.params.max_frames={new}") == 0
    source = state["video_frame_position_embedding.weight"]
    table = load_file(str(out / "model.safetensors"))[FRAME_KEY]
    assert torch.equal(table, source[torch.from_numpy(nearest_index(old, new))])
    assert torch.equal(table, original_interpolate_frame_pos_embed(source, new))
    if (old, new) == (32, 82):  # float32 nearest differs from the exact floor(j * old / new) here
        exact = torch.div(torch.arange(new) * old, new, rounding_mode="floor")
        assert not torch.equal(table, source[exact])
    manifest = json.loads((out / "manifest.json").read_text())["conversion"]
    assert manifest["frame_table"]["source_rows"] == old and manifest["frame_table"]["rows"] == new
    assert manifest["frame_table"]["resized"] is (old != new)


def test_renames_are_applied_as_the_original(converted):
    state, _, out = converted
    manifest = json.loads((out / "manifest.json").read_text())["conversion"]
    assert manifest["renamed"]["vision_layernorm.weight"] == "ln_vision.weight"
    assert manifest["renamed"]["vision_encoder.blocks.0.norm1.weight"] == "visual_encoder.blocks.0.norm1.weight"
    assert manifest["renamed"]["qformer.bert.embeddings.LayerNorm.weight"] == "Qformer.bert.embeddings.LayerNorm.weight"
    assert "llama_proj.weight" not in manifest["renamed"] and "video_query_tokens" not in manifest["renamed"]
    got = load_file(str(out / "model.safetensors"))
    for ours, spelled in ENCODER_KEYS.items():
        assert module_to_lavis_key(ours) == manifest["renamed"][spelled]
        assert torch.equal(got["encoder." + ours], state[spelled])
    assert set(got) == {"projector.proj.weight", "projector.proj.bias", FRAME_KEY,
                        *("encoder." + k for k in ENCODER_KEYS)}


def test_every_unused_key_is_reported_with_its_reason(converted, capsys, tmp_path):
    state, src, out = converted
    unused = json.loads((out / "manifest.json").read_text())["conversion"]["unused"]
    listed = {key: reason for reason, keys in unused.items() for key in keys}
    mapped = {"llama_proj.weight", "llama_proj.bias", "video_frame_position_embedding.weight", *ENCODER_KEYS.values()}
    assert set(listed) == set(state) - mapped
    for key in (*VIDEO_QFORMER[:2], "video_query_tokens"):
        assert "video Q-Former" in listed[key]
    assert "RoPE" in listed["llama_model.model.layers.0.self_attn.rotary_emb.inv_freq"]
    assert "position-id" in listed["qformer.bert.embeddings.position_ids"]
    # the command prints each of them with its reason
    assert convert(src, tmp_path / "again") == 0
    printed = capsys.readouterr().out
    for key in listed:
        assert key in printed
    assert "video_Qformer" in printed and "32 -> 96 rows" in printed and "model.init_from=" in printed


def test_manifest_holds_the_source_sha256(converted):
    _, src, out = converted
    conversion = json.loads((out / "manifest.json").read_text())["conversion"]
    assert conversion["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert conversion["converted_from"] == "video-llama2-vl" and conversion["recipe_key"] == "model.init_from"
    assert conversion["mapped"]["projector.proj.weight"] == "llama_proj.weight"
    assert conversion["mapped"][FRAME_KEY] == "video_frame_position_embedding.weight"
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files


class Exploit:
    """A pickled instance of this class would run code: weights_only must refuse it."""

    def __reduce__(self):
        return (print, ("ran code",))


def test_a_pickle_that_is_not_weights_only_is_refused(tmp_path, capsys):
    src = tmp_path / "evil.pth"
    torch.save({"model": video_llama_state(encoder=False), "config": Exploit()}, src)
    out = tmp_path / "out"
    assert convert(src, out) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("vtg: error:")]
    assert len(errors) == 1 and str(src) in errors[0] and "refused" in errors[0]
    assert "ran code" not in captured.out + captured.err
    assert not out.exists()


@pytest.mark.parametrize("edit, named", [
    ("missing", "llama_proj.bias"),
    ("unknown", "extra_head.weight"),
    ("shape", "llama_proj.bias"),
    ("collide", "collide after the original's renames"),
])
def test_bad_files_give_one_line(tmp_path, capsys, edit, named):
    state = video_llama_state(encoder=False)
    if edit == "missing":
        del state["llama_proj.bias"]
    elif edit == "unknown":
        state["extra_head.weight"] = torch.zeros(2, 2)
    elif edit == "shape":
        state["llama_proj.bias"] = torch.zeros(D + 1)
    elif edit == "collide":
        state["vision_layernorm.weight"] = state["ln_vision.weight"] = torch.zeros(48)
    out = tmp_path / "out"
    assert convert(save(state, tmp_path / "vl.pth"), out) == 1
    line = error_line(capsys)
    assert named in line and "vl.pth" in line
    assert not (out / "model.safetensors").exists()


def test_a_recipe_without_a_frame_table_or_linear_projector_is_refused(tmp_path, capsys):
    src = save(video_llama_state(encoder=False), tmp_path / "vl.pth")
    assert convert(src, tmp_path / "a", "model.time_embedding.params.max_frames=0") == 1
    assert "max_frames" in error_line(capsys)


def test_missing_source_file(tmp_path, capsys):
    assert convert(tmp_path / "absent.pth", tmp_path / "out") == 1
    assert "absent.pth" in error_line(capsys)


# ------------------------------------------------------------------------------------------------
# model.init_from: the paper's pre-training recipe starts from the converted folder


def test_base_recipe_starts_from_the_converted_file(converted, root):
    state, _, out = converted
    model, _ = build_model(load_recipe(root / BASE, [*TINY, f"model.init_from={out}"]))
    own = model.state_dict()
    assert torch.equal(own["projector.proj.weight"], state["llama_proj.weight"])
    assert torch.equal(own["projector.proj.bias"], state["llama_proj.bias"])
    widened = original_interpolate_frame_pos_embed(state["video_frame_position_embedding.weight"], 96)
    assert torch.equal(own[FRAME_KEY], widened)
    for ours, spelled in ENCODER_KEYS.items():  # loaded over the encoder's own files, as the original
        assert torch.equal(own["encoder." + ours], state[spelled])
    # the rest is as built: the absolute-second table starts at zero
    assert not own["time_embedding.weight"].any()
    # the frame table still trains (frozen_llama_proj: False, the projector too)
    params = dict(model.named_parameters())
    assert params[FRAME_KEY].requires_grad and params["projector.proj.weight"].requires_grad


def test_component_checkpoints_load_after_init_from(converted, root, tmp_path):
    _, _, out = converted
    mine = {"proj.weight": torch.full((D, DV), 0.5), "proj.bias": torch.zeros(D)}
    save_file(mine, str(tmp_path / "projector.safetensors"))
    component = f"model.projector.checkpoint={tmp_path / 'projector.safetensors'}"
    model, _ = build_model(load_recipe(root / BASE, [*TINY, f"model.init_from={out}", component]))
    assert torch.equal(model.projector.proj.weight, mine["proj.weight"])


def test_the_no_absolute_time_ablation_takes_a_folder_converted_for_it(root, tmp_path):
    state = video_llama_state(encoder=False)
    src = save(state, tmp_path / "vl.pth")
    out = tmp_path / "video_llama2_vl_frame_index"
    assert convert(src, out, "--recipe", str(root / NO_ABS)) == 0
    table = load_file(str(out / "model.safetensors"))["time_embedding.weight"]
    assert torch.equal(table, original_interpolate_frame_pos_embed(state["video_frame_position_embedding.weight"], 96))
    model, _ = build_model(load_recipe(root / NO_ABS, [*TINY, f"model.init_from={out}"]))
    assert torch.equal(model.time_embedding.weight, table)
    # the base recipe's folder does not fit it: one line naming the key
    base_out = tmp_path / "base"
    assert convert(src, base_out) == 0
    with pytest.raises(CheckpointError, match=r"model\.init_from.*time_embedding\.frame_index\.weight"):
        build_model(load_recipe(root / NO_ABS, [*TINY, f"model.init_from={base_out}"]))


def test_a_missing_init_file_names_the_key_and_the_command(root, tmp_path):
    absent = tmp_path / "weights" / "video_llama2_vl"
    recipe = load_recipe(root / BASE, [*TINY, f"model.init_from={absent}"])  # validates without the file
    with pytest.raises(CheckpointError) as info:
        build_model(recipe, where=BASE)
    message = str(info.value)
    assert "\n" not in message
    assert "model.init_from" in message and str(absent) in message
    assert f"vtg convert video-llama VL_LLaMA_2_7B_Finetuned.pth {absent}" in message


def test_a_frame_count_that_does_not_match_is_one_line(converted, root):
    _, _, out = converted
    with pytest.raises(CheckpointError, match=r"model\.init_from.*shape mismatch.*frame_index") as info:
        build_model(load_recipe(root / BASE, [*TINY, f"model.init_from={out}",
                                              "model.time_embedding.params.max_frames=48"]))
    assert "\n" not in str(info.value)


def test_init_from_must_be_local(root):
    with pytest.raises(RecipeError, match="model.init_from must be a local"):
        load_recipe(root / BASE, ["model.init_from=https://example.org/video_llama2_vl"])


def test_the_paper_recipes_name_the_converted_folder(root):
    from pathlib import Path

    from omegaconf import OmegaConf

    def init_from(name):
        return OmegaConf.to_container(load_recipe(root / "recipes/vtgllm" / name), resolve=True)["model"]["init_from"]

    assert Path(init_from("base.yaml")).name == "video_llama2_vl"
    assert Path(init_from("ablations/compressor_cross.yaml")).name == "video_llama2_vl"
    assert Path(init_from("ablations/no_absolute_time.yaml")).name == "video_llama2_vl_frame_index"
    assert init_from("eval_charades.yaml") is None and init_from("finetune_charades.yaml") is None
