"""``vtg convert vtgllm-original``: a hand-written checkpoint in the original VTG-LLM key layout
(tiny widths, random tensors) converted through the CLI and loaded into a freshly built model.

The fake file follows the original's layout exactly: ``{"model": state, "optimizer": ..., "epoch": ...}``
with ``visual_encoder.*`` / ``ln_vision.*`` / ``Qformer.bert.*`` / ``query_tokens``,
``video_frame_position_embedding.weight``, ``video_time_position_embedding``, ``sampler.slots``,
``llama_proj.*`` and the PEFT-wrapped ``llama_model.base_model.model.*`` with the vocabulary
LLaMA base + ``<ImageHere>`` + 11 time tokens. Expected values are computed from these raw tensors.
"""

from __future__ import annotations

import hashlib
import math
import json

import pytest
import torch
from omegaconf import OmegaConf

from vtgcore import build_model, load_recipe
from vtgcore.checkpoint import load_checkpoint
from vtgcore.apps.cli import main
from vtgcore_plugins.encoders.eva_vit_g_qformer import EvaViTGQFormer, module_to_lavis_key

ENCODER = dict(image_size=28, patch_size=14, vit_width=48, vit_depth=2, vit_heads=2, num_query_tokens=4,
               qformer_hidden=24, qformer_layers=2, qformer_heads=2, qformer_intermediate=64,
               vit_precision="fp32", qformer_dropout=0.0)
DV, D, K, LAYERS, R = 24, 32, 4, 2, 4          # Q-Former width, LLM width, slots, LLM layers, LoRA rank
MAX_SECONDS, MAX_FRAMES = 16, 8
KV = 16                                          # tiny LLaMA: 2 kv heads x head dim 8
TIME = ["<TIME_ZERO>", "<TIME_ONE>", "<TIME_TWO>", "<TIME_THREE>", "<TIME_FOUR>", "<TIME_FIVE>",
        "<TIME_SIX>", "<TIME_SEVEN>", "<TIME_EIGHT>", "<TIME_NINE>", "<TIME_DOT>"]
PREFIX = "llama_model.base_model.model."


@pytest.fixture
def recipe_path(root, tmp_path):
    """The paper's model at tiny widths; the LAVIS files it names do not exist (not needed)."""
    llm = OmegaConf.to_container(OmegaConf.load(root / "recipes/components/llm/tiny_llama_lora.yaml"))
    recipe = {
        "experiment_name": "convert_tiny",
        "model": {
            "encoder": {"name": "eva_vit_g_qformer", "trainable": "frozen",
                        "params": {**ENCODER, "vit_checkpoint": str(tmp_path / "absent/eva_vit_g.pth"),
                                   "qformer_checkpoint": str(tmp_path / "absent/instruct_blip.pth")}},
            "time_embedding": {"name": "abs_second_table",
                               "params": {"max_seconds": MAX_SECONDS, "max_frames": MAX_FRAMES}},
            "time_codec": {"name": "absolute_time_tokens"},
            "compressor": {"name": "slot", "params": {"num_slots": K}},
            "projector": {"name": "linear"},
            "llm": llm,
            "video_token": "<video>",
        },
    }
    path = tmp_path / "tiny_vtgllm.yaml"
    OmegaConf.save(OmegaConf.create(recipe), path)
    return path


def base_vocab() -> int:
    from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer

    return len(build_tiny_tokenizer())


def original_state(frame_rows: int = MAX_FRAMES, peft_default: bool = True, lora: bool = True,
                   trained_seconds=(0, 1, 2, 4, 5, 8), seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the original's key names, random tensors at the tiny widths."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g)

    torch.manual_seed(seed + 1)
    encoder = EvaViTGQFormer(**ENCODER)
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    state = {module_to_lavis_key(k): v.clone() for k, v in encoder.state_dict().items()}
    state["Qformer.bert.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    # Video-LLaMA's video Q-Former, built but never used by VTG-LLM
    state["video_Qformer.bert.encoder.layer.0.attention.self.query.weight"] = rand(DV, DV)
    state["video_query_tokens"] = rand(1, 32, DV)

    state["video_frame_position_embedding.weight"] = rand(frame_rows, DV)
    table = torch.zeros(MAX_SECONDS, DV)
    table[list(trained_seconds)] = rand(len(trained_seconds), DV)
    state["video_time_position_embedding"] = table
    state["sampler.slots"] = rand(DV, K)
    state["llama_proj.weight"] = rand(D, DV) * 0.2
    state["llama_proj.bias"] = rand(D)

    rows = base_vocab() + 12
    pre = PREFIX if lora else "llama_model."
    state[pre + "model.embed_tokens.weight"] = rand(rows, D)
    state[pre + "lm_head.weight"] = rand(rows, D)
    state[pre + "model.norm.weight"] = rand(D)
    for n in range(LAYERS):
        layer = f"{pre}model.layers.{n}."
        for proj, out in (("q_proj", D), ("k_proj", KV), ("v_proj", KV), ("o_proj", D)):
            base = ".base_layer.weight" if (lora and peft_default) else ".weight"
            state[f"{layer}self_attn.{proj}{base}"] = rand(out, D)
            if lora:
                mid = ".default" if peft_default else ""
                state[f"{layer}self_attn.{proj}.lora_A{mid}.weight"] = rand(R, D)
                state[f"{layer}self_attn.{proj}.lora_B{mid}.weight"] = rand(out, R)
        state[f"{layer}mlp.gate_proj.weight"] = rand(64, D)
        state[f"{layer}mlp.up_proj.weight"] = rand(64, D)
        state[f"{layer}mlp.down_proj.weight"] = rand(D, 64)
        state[f"{layer}input_layernorm.weight"] = rand(D)
        state[f"{layer}post_attention_layernorm.weight"] = rand(D)
    return state


def save_original(state, path):
    """As LAVIS saves it: the state under ``model`` beside the optimizer state and the epoch."""
    optimizer = {"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-4, "params": [0]}]}
    torch.save({"model": state, "optimizer": optimizer, "config": {"run": {"seed": 42}}, "scaler": None,
                "epoch": 9}, path)
    return path


def convert(src, out, recipe_path, *extra) -> int:
    return main(["convert", "vtgllm-original", str(src), str(out), "--recipe", str(recipe_path), *extra])


def converted_model(out):
    """A freshly built model (from the converted folder's recipe) with the converted weights loaded."""
    model, _ = build_model(load_recipe(out / "recipe.yaml"))
    load_checkpoint(model, out)
    return model.eval()


@pytest.fixture
def converted(recipe_path, tmp_path):
    state = original_state()
    src = save_original(state, tmp_path / "vtgllm.pth")
    out = tmp_path / "converted"
    assert convert(src, out, recipe_path) == 0
    return state, src, out


# -- (a) video tokens ----------------------------------------------------------------------------

@pytest.mark.parametrize("frame_rows", [MAX_FRAMES, MAX_FRAMES // 2])
def test_video_tokens_match_a_hand_computation(recipe_path, tmp_path, frame_rows):
    state = original_state(frame_rows=frame_rows)
    out = tmp_path / "converted"
    assert convert(save_original(state, tmp_path / "vtgllm.pth"), out, recipe_path) == 0
    model = converted_model(out)

    frames = torch.randn(1, 6, 3, 28, 28, generator=torch.Generator().manual_seed(3))
    seconds = [0.4, 1.5, 2.5, 3.6, 5.0, 7.5]  # Python round: 0, 2, 2, 4, 5, 8 (halves to even)
    with torch.no_grad():
        got = model.encode_video(frames, torch.tensor([seconds])).tokens
        feats = model.encoder(frames[0]).unsqueeze(0)  # (1, T, L, Dv); the encoder mapping is tested elsewhere

    frame_table = state["video_frame_position_embedding.weight"]
    if frame_rows < MAX_FRAMES:  # Video-LLaMA's shorter table, widened by nearest: each row repeated
        frame_table = frame_table.repeat_interleave(MAX_FRAMES // frame_rows, dim=0)
    time_table = state["video_time_position_embedding"]
    added = torch.stack([frame_table[i] + time_table[round(t)] for i, t in enumerate(seconds)])
    x = (feats + added[None, :, None, :]).reshape(1, -1, DV)
    weights = torch.softmax(x @ state["sampler.slots"], dim=1)      # softmax over the T*L tokens
    slots = weights.transpose(1, 2) @ x                              # (1, K, Dv)
    want = slots @ state["llama_proj.weight"].T + state["llama_proj.bias"]
    assert got.shape == (1, K, D)
    torch.testing.assert_close(got, want)


def test_encoder_and_slots_land(converted):
    state, _, out = converted
    model = converted_model(out)
    torch.testing.assert_close(model.encoder.query_tokens.data, state["query_tokens"])
    torch.testing.assert_close(model.encoder.ln_vision.weight.data, state["ln_vision.weight"])
    torch.testing.assert_close(model.encoder.vit.blocks[1].attn.qkv.weight.data,
                               state["visual_encoder.blocks.1.attn.qkv.weight"])
    torch.testing.assert_close(model.compressor.slots.data, state["sampler.slots"])


# -- (b) vocabulary rows by token string ---------------------------------------------------------

def test_embedding_rows_move_by_token_string(converted):
    state, _, out = converted
    model = converted_model(out)
    tok = model.tokenizer
    base = base_vocab()
    embed = model.llm.model.get_input_embeddings().weight.data
    head = model.llm.model.get_output_embeddings().weight.data
    orig_embed = state[PREFIX + "model.embed_tokens.weight"]
    orig_head = state[PREFIX + "lm_head.weight"]
    assert embed.shape[0] == orig_embed.shape[0] == base + 12
    # the original's ids: <ImageHere> = base, then the time tokens ZERO..NINE, DOT
    originals = {"<video>": base, **{t: base + 1 + i for i, t in enumerate(TIME)}}
    assert tok.convert_tokens_to_ids("<video>") != base  # ours sits elsewhere: a real permutation
    for token, orig_id in originals.items():
        ours = tok.convert_tokens_to_ids(token)
        torch.testing.assert_close(embed[ours], orig_embed[orig_id])
        torch.testing.assert_close(head[ours], orig_head[orig_id])
    torch.testing.assert_close(embed[:base], orig_embed[:base])
    torch.testing.assert_close(head[:base], orig_head[:base])


# -- (c) LoRA and base weights -------------------------------------------------------------------

@pytest.mark.parametrize("peft_default", [True, False], ids=["peft-default-base_layer", "old-peft"])
def test_lora_and_base_weights_land_on_their_modules(recipe_path, tmp_path, peft_default):
    state = original_state(peft_default=peft_default)
    out = tmp_path / "converted"
    assert convert(save_original(state, tmp_path / "vtgllm.pth"), out, recipe_path) == 0
    model = converted_model(out)
    params = dict(model.named_parameters())
    mid = ".default" if peft_default else ""
    base = ".base_layer.weight" if peft_default else ".weight"
    for n in range(LAYERS):
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            ours = f"llm.model.model.layers.{n}.self_attn.{proj}"
            orig = f"{PREFIX}model.layers.{n}.self_attn.{proj}"
            torch.testing.assert_close(params[f"{ours}.lora_A.default.weight"].data, state[f"{orig}.lora_A{mid}.weight"])
            torch.testing.assert_close(params[f"{ours}.lora_B.default.weight"].data, state[f"{orig}.lora_B{mid}.weight"])
            torch.testing.assert_close(params[f"{ours}.base_layer.weight"].data, state[orig + base])
        torch.testing.assert_close(params[f"llm.model.model.layers.{n}.mlp.down_proj.weight"].data,
                                   state[f"{PREFIX}model.layers.{n}.mlp.down_proj.weight"])
    torch.testing.assert_close(params["llm.model.model.norm.weight"].data, state[PREFIX + "model.norm.weight"])


def test_lora_off_file_into_a_full_llm_recipe(recipe_path, tmp_path):
    state = original_state(lora=False)  # llama_model.model.* names, no adapters
    out = tmp_path / "converted"
    src = save_original(state, tmp_path / "vtgllm.pth")
    assert convert(src, out, recipe_path, "model.llm.trainable=full") == 0
    model = converted_model(out)
    weight = dict(model.named_parameters())["llm.model.model.layers.1.self_attn.k_proj.weight"]
    torch.testing.assert_close(weight.data, state["llama_model.model.layers.1.self_attn.k_proj.weight"])


def test_llm_base_layers_may_come_from_the_recipe(recipe_path, tmp_path, capsys):
    state = {k: v for k, v in original_state().items()
             if not k.startswith(PREFIX) or "lora_" in k or "embed_tokens" in k or "lm_head" in k}
    out = tmp_path / "converted"
    assert convert(save_original(state, tmp_path / "vtgllm.pth"), out, recipe_path) == 0
    assert "LLM base weights from the recipe" in capsys.readouterr().out
    saved = json.loads((out / "manifest.json").read_text())["conversion"]
    assert saved["llm_base_weights"] == "recipe"


# -- manifest, recipe, ignore list ---------------------------------------------------------------

def test_manifest_and_recipe(converted, capsys):
    _, src, out = converted
    manifest = json.loads((out / "manifest.json").read_text())
    conv = manifest["conversion"]
    assert conv["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert conv["interpolation"] == "none"
    assert conv["llm_base_weights"] == "file"
    assert conv["ignored"]  # position ids and the video Q-Former, by reason
    assert sum(conv["ignored"].values()) == 3
    recipe = OmegaConf.load(out / "recipe.yaml")
    assert recipe.model.encoder.params.vit_checkpoint is None  # the folder holds the whole encoder
    # every mapped tensor is saved, the frozen encoder and LLM base included
    from safetensors.torch import load_file

    saved = load_file(str(out / "model.safetensors"))
    assert "encoder.vit.blocks.0.attn.qkv.weight" in saved
    assert "llm.model.model.layers.0.mlp.up_proj.weight" in saved
    assert manifest["tensors"] == len(saved)


# -- (d) time-table interpolation ----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["none", "linear", "legacy_swapped"])
def test_interpolation_of_untrained_seconds(recipe_path, tmp_path, mode):
    state = original_state(trained_seconds=(2, 6))
    out = tmp_path / "converted"
    assert convert(save_original(state, tmp_path / "vtgllm.pth"), out, recipe_path, "--interpolation", mode) == 0
    table = converted_model(out).time_embedding.weight.data
    orig = state["video_time_position_embedding"]
    r2, r6 = orig[2], orig[6]
    torch.testing.assert_close(table[[2, 6]], orig[[2, 6]])
    untrained = [s for s in range(MAX_SECONDS) if s not in (2, 6)]
    if mode == "none":
        assert table[untrained].abs().sum() == 0
    elif mode == "linear":
        torch.testing.assert_close(table[3], 0.75 * r2 + 0.25 * r6)
        torch.testing.assert_close(table[4], 0.5 * r2 + 0.5 * r6)
        for s in (0, 1):
            torch.testing.assert_close(table[s], r2)       # before the first trained second: copied
        for s in range(7, MAX_SECONDS):
            torch.testing.assert_close(table[s], r6)       # after the last: copied
    else:
        # the original: left row weighted (s - left) / (right - left), right row (right - s) / (right - left)
        torch.testing.assert_close(table[3], r2 * (3 - 2) / 4 + r6 * (6 - 3) / 4)
        torch.testing.assert_close(table[5], r2 * (5 - 2) / 4 + r6 * (6 - 5) / 4)
        torch.testing.assert_close(table[1], orig[0] * (1 - 0) / 2 + r2 * (2 - 1) / 2)  # left margin 0
        # right = -1 (the last row): span -1 - 6 = -7; the last row is filled first (from itself while
        # still zero) and every other trailing row reads it filled
        last = r6 * (MAX_SECONDS - 1 - 6) / (-1 - 6)
        torch.testing.assert_close(table[MAX_SECONDS - 1], last)
        for s in (7, 10, MAX_SECONDS - 2):
            torch.testing.assert_close(table[s], r6 * (s - 6) / (-1 - 6) + last * (-1 - s) / (-1 - 6))
    recipe = OmegaConf.load(out / "recipe.yaml")
    # filled here, not again at eval time
    assert recipe.model.time_embedding.params.get("interpolation", "none") == "none"
    assert json.loads((out / "manifest.json").read_text())["conversion"]["interpolation"] == mode


# -- (e) errors: one line naming the key or the file ---------------------------------------------

class Exploit:
    """A pickled instance of this class would run code: weights_only must refuse it."""

    def __reduce__(self):
        return (print, ("ran code",))


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("vtg: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    return errors[0]


@pytest.mark.parametrize("edit,named", [
    ("missing", "sampler.slots"),
    ("unexpected", "extra_head.weight"),
    ("shape", "llama_proj.weight"),
    ("missing_lora", "lora_B"),
    ("vocab", "rows"),
    ("no_lora", "no LoRA adapters"),
])
def test_bad_files_give_one_line_naming_the_key(recipe_path, tmp_path, capsys, edit, named):
    state = original_state(lora=edit != "no_lora")
    if edit == "missing":
        del state["sampler.slots"]
    elif edit == "unexpected":
        state["extra_head.weight"] = torch.zeros(2, 2)
    elif edit == "shape":
        state["llama_proj.weight"] = torch.zeros(D, DV + 1)
    elif edit == "missing_lora":
        del state[PREFIX + "model.layers.1.self_attn.v_proj.lora_B.default.weight"]
    elif edit == "vocab":
        for key in (PREFIX + "model.embed_tokens.weight", PREFIX + "lm_head.weight"):
            state[key] = state[key][:-1]
    out = tmp_path / "converted"
    assert convert(save_original(state, tmp_path / "vtgllm.pth"), out, recipe_path) == 1
    line = error_line(capsys)
    assert named in line and "vtgllm.pth" in line
    assert not (out / "model.safetensors").exists()


def test_a_pickle_that_runs_code_is_refused(recipe_path, tmp_path, capsys):
    src = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "config": Exploit()}, src)
    assert convert(src, tmp_path / "converted", recipe_path) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("vtg: error:")]
    assert len(errors) == 1 and str(src) in errors[0] and "refused" in errors[0]
    assert "ran code" not in captured.out + captured.err


def test_missing_file(recipe_path, tmp_path, capsys):
    assert convert(tmp_path / "absent.pth", tmp_path / "converted", recipe_path) == 1
    assert "absent.pth" in error_line(capsys)


# -- (f) video tokens against an independent transcription of the original's code -----------------
#
# Issue 19's closing criterion: a tiny checkpoint in the original's key layout, converted and
# evaluated, gives the same video tokens as the original's code under its interpolation settings.
# The oracle below reads the original-layout state dict directly and transcribes, without calling
# vtgcore, timm's Eva or transformers' Q-Former:
#   eva_vit.py VisionTransformer.forward_features (patch conv, CLS, pos_embed, pre-norm blocks with
#   q_bias / zero k bias / v_bias, no final norm) -> ln_vision (LayerNorm eps 1e-5) -> Qformer.py
#   BertModel with query_embeds only (embeddings LayerNorm; per layer self-attention, cross-attention
#   to the ViT tokens in layers 0, 2, ..., the query feed-forward) -> vtgllm.py
#   encode_videoQformer_visual (frame row arange(T) + one_hot(round(t)) @ time table, broadcast over
#   the Q-Former tokens; flatten (t q); SlotSampler; llama_proj), with from_config's checkpoint
#   edits (interpolate_frame_pos_embed nearest; the test-time interpolation loop, in place).
# All in fp32 (the original runs the ViT in fp16 under autocast; the fp32 path is what a CPU run of
# both computes, and lavis_fp16 is tested against fp32 in test_encoders.py).

def _ln(x, state, key, eps):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], state[key + ".weight"], state[key + ".bias"], eps)


def _linear(x, state, key):
    return x @ state[key + ".weight"].T + state[key + ".bias"]


def original_vit(images, state, heads=ENCODER["vit_heads"]):
    """eva_vit.py: (N, 3, H, W) -> (N, 1 + patches, C); then ln_vision."""
    p = "visual_encoder."
    w = state[p + "patch_embed.proj.weight"]
    x = torch.nn.functional.conv2d(images, w, state[p + "patch_embed.proj.bias"], stride=w.shape[-1])
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state[p + "cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + state[p + "pos_embed"]
    n, length, c = x.shape
    for b in range(ENCODER["vit_depth"]):
        k = f"{p}blocks.{b}."
        h = _ln(x, state, k + "norm1", 1e-6)
        bias = torch.cat([state[k + "attn.q_bias"], torch.zeros_like(state[k + "attn.v_bias"]), state[k + "attn.v_bias"]])
        qkv = (h @ state[k + "attn.qkv.weight"].T + bias).reshape(n, length, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, kk, v = qkv[0] * (c // heads) ** -0.5, qkv[1], qkv[2]
        attn = (q @ kk.transpose(-2, -1)).softmax(dim=-1)
        x = x + _linear((attn @ v).transpose(1, 2).reshape(n, length, c), state, k + "attn.proj")
        h = _ln(x, state, k + "norm2", 1e-6)
        x = x + _linear(torch.nn.functional.gelu(_linear(h, state, k + "mlp.fc1")), state, k + "mlp.fc2")
    return _ln(x, state, "ln_vision", 1e-5)


def _bert_attention(h, enc, state, key, heads):
    q = _linear(h, state, key + ".self.query")
    kv = h if enc is None else enc
    k, v = _linear(kv, state, key + ".self.key"), _linear(kv, state, key + ".self.value")

    def split(t):
        return t.view(t.shape[0], t.shape[1], heads, -1).permute(0, 2, 1, 3)

    q, k, v = split(q), split(k), split(v)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # masks are all ones: extended mask 0
    ctx = (scores.softmax(dim=-1) @ v).permute(0, 2, 1, 3).reshape(h.shape)
    return _ln(_linear(ctx, state, key + ".output.dense") + h, state, key + ".output.LayerNorm", 1e-12)


def original_qformer(image_embeds, state, heads=ENCODER["qformer_heads"], freq=2):
    """Qformer.py BertModel(query_embeds=query_tokens, encoder_hidden_states=image_embeds)."""
    p = "Qformer.bert."
    h = _ln(state["query_tokens"].expand(image_embeds.shape[0], -1, -1), state, p + "embeddings.LayerNorm", 1e-12)
    for i in range(ENCODER["qformer_layers"]):
        k = f"{p}encoder.layer.{i}."
        h = _bert_attention(h, None, state, k + "attention", heads)
        if i % freq == 0:
            h = _bert_attention(h, image_embeds, state, k + "crossattention", heads)
        mid = torch.nn.functional.gelu(_linear(h, state, k + "intermediate_query.dense"))
        h = _ln(_linear(mid, state, k + "output_query.dense") + h, state, k + "output_query.LayerNorm", 1e-12)
    return h


def original_time_table(table, mode):
    """from_config's edit of video_time_position_embedding before load_state_dict.

    ``legacy_swapped``: the original's loop (time_embedding_interpolation: True), transcribed: stack
    of untrained rows, right = -1 for trailing ones, weights swapped, filled in place. ``linear``:
    that loop's intent (the weights the right way round, the nearest trained row copied beyond the
    first and last trained seconds), vtgcore's fix. ``none``: the table as saved."""
    table = table.clone()
    zero = (table == 0).all(dim=1).int()
    if mode == "none":
        return table
    trained = [i for i in range(len(zero)) if not zero[i]]
    if mode == "linear":
        for idx in (i for i in range(len(zero)) if zero[i]):
            below = [t for t in trained if t < idx]
            above = [t for t in trained if t > idx]
            if not below or not above:
                table[idx] = table[(below or above)[-1 if below else 0]]
                continue
            left, right = below[-1], above[0]
            table[idx] = table[left] * (right - idx) / (right - left) + table[right] * (idx - left) / (right - left)
        return table
    bounds, stack, left_margin = [], [], 0
    for i in range(len(zero)):
        if zero[i] == 1:
            stack.append([i, left_margin])
        else:
            while len(stack):
                bounds.append(stack.pop() + [i])
            left_margin = i
    while len(stack):
        bounds.append(stack.pop() + [-1])
    for idx, left, right in bounds:
        table[idx] = table[left] * (idx - left) / (right - left) + table[right] * (right - idx) / (right - left)
    return table


def original_video_tokens(images, seconds, state, mode):
    """encode_videoQformer_visual: images (B, C, T, H, W) as the original's loader gives them."""
    b, _, t, _, _ = images.shape
    frames = images.permute(0, 2, 1, 3, 4).reshape(b * t, *images.shape[1:2], *images.shape[3:])  # (b t) c h w
    q = original_qformer(original_vit(frames, state), state)
    frame_table = state["video_frame_position_embedding.weight"]
    if frame_table.shape[0] != MAX_FRAMES:  # interpolate_frame_pos_embed
        frame_table = torch.nn.functional.interpolate(frame_table.unsqueeze(0).transpose(1, 2), size=MAX_FRAMES,
                                                      mode="nearest").transpose(1, 2).squeeze(0)
    time_table = original_time_table(state["video_time_position_embedding"], mode)
    absolute = torch.tensor([[round(float(s)) for s in row] for row in seconds])  # round(float("x.y"))
    position_ids = torch.arange(t).unsqueeze(0).expand(b, -1)
    pos = frame_table[position_ids] + torch.nn.functional.one_hot(absolute, MAX_SECONDS).float() @ time_table
    hidden = q.reshape(b, t, q.shape[1], q.shape[2]) + pos.unsqueeze(-2)
    video = hidden.view(b, -1, hidden.shape[-1])
    logits = torch.softmax(video @ state["sampler.slots"], dim=1)
    slots = (video.permute(0, 2, 1) @ logits).permute(0, 2, 1)
    return slots @ state["llama_proj.weight"].T + state["llama_proj.bias"]


# seconds with untrained rows (3, 6, 7, 11, 14, 15 and, below the first trained second, 0), trailing
# ones past the last trained second (8) where legacy_swapped blows up, and halves rounded to even
SECONDS = [[0.4, 2.5, 3.0, 4.6, 6.5, 7.4, 10.6, 13.5],
           [1.2, 1.9, 8.5, 9.0, 12.0, 15.4, 2.0, 5.5]]


@pytest.mark.parametrize("frame_rows", [MAX_FRAMES, 3])
@pytest.mark.parametrize("where", ["eval", "convert"])
@pytest.mark.parametrize("mode", ["legacy_swapped", "linear", "none"])
def test_video_tokens_equal_the_original_code(recipe_path, tmp_path, mode, where, frame_rows):
    """encoder -> time embedding -> slot compressor -> projector of a converted tiny checkpoint equals
    the transcription of the original's code, with the interpolation applied at evaluation
    (``model.time_embedding.params.interpolation``) or by ``vtg convert --interpolation``."""
    state = original_state(frame_rows=frame_rows, trained_seconds=(1, 2, 4, 5, 8), seed=5)
    # the tiny random Q-Former output is O(1); scale the tables so that the time rows matter
    state["video_time_position_embedding"] *= 3.0
    out = tmp_path / "converted"
    extra = ["--interpolation", mode] if where == "convert" else []
    assert convert(save_original(state, tmp_path / "vtgllm.pth"), out, recipe_path, *extra) == 0
    overrides = [] if where == "convert" else [f"model.time_embedding.params.interpolation={mode}"]
    model, _ = build_model(load_recipe(out / "recipe.yaml", overrides))
    load_checkpoint(model, out)
    model.eval()

    images = torch.randn(2, 3, MAX_FRAMES, 28, 28, generator=torch.Generator().manual_seed(11))  # b c t h w
    with torch.no_grad():
        got = model.encode_video(images.permute(0, 2, 1, 3, 4), torch.tensor(SECONDS)).tokens
        want = original_video_tokens(images, SECONDS, state, mode)
    assert got.shape == want.shape == (2, K, D)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_the_interpolation_settings_give_different_tokens(recipe_path, tmp_path):
    """The comparison above is not vacuous: the three settings change the tokens of these seconds."""
    state = original_state(trained_seconds=(1, 2, 4, 5, 8), seed=5)
    state["video_time_position_embedding"] *= 3.0
    images = torch.randn(2, 3, MAX_FRAMES, 28, 28, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        tokens = {m: original_video_tokens(images, SECONDS, state, m) for m in ("none", "linear", "legacy_swapped")}
    assert (tokens["none"] - tokens["linear"]).abs().max() > 1e-2
    assert (tokens["linear"] - tokens["legacy_swapped"]).abs().max() > 1e-2
