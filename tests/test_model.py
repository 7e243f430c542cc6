"""VideoLLM assembly on the tiny recipe: loss, gradients, generation, splicing checks, processor."""

import pytest
import torch
from safetensors.torch import save_file

from vtgcore import build_model, load_recipe
from vtgcore.errors import PlaceholderMismatchError, VTGError
from vtgcore.processor import IGNORE_INDEX

T = 8
QA = [{"q": "When does the red circle appear?", "a": "From <time>1.5</time> to <time>4.0</time> seconds."}]


def video(b=2, t=T, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 3, size, size, generator=g), torch.arange(t).float().mul(1.5).expand(b, t).clone()


def test_forward_loss_and_gradients_reach_every_trainable_part(tiny):
    model, proc = tiny
    frames, ts = video()
    batch = proc([QA, QA], ts.tolist())
    out = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.logits.shape == (*batch["input_ids"].shape, len(model.tokenizer))
    out.loss.backward()
    for part in ("encoder", "time_embedding", "compressor", "projector", "llm"):
        params = [(n, p) for n, p in getattr(model, part).named_parameters() if p.requires_grad]
        assert params, part
        missing = [n for n, p in params if p.grad is None]
        assert not missing, (part, missing)
        assert any(p.grad.abs().sum() > 0 for _, p in params), part


def test_generate_returns_new_ids(tiny):
    model, proc = tiny
    frames, ts = video()
    prompt = proc([[{"q": "When?"}], [{"q": "When does the much longer query happen?"}]], ts.tolist(),
                  add_generation_prompt=True)
    assert (prompt["attention_mask"][:, -1] == 1).all()  # left padded
    ids = model.generate(frames, ts, prompt["input_ids"], prompt["attention_mask"], max_new_tokens=5)
    assert ids.dtype == torch.long and ids.shape[0] == 2 and 1 <= ids.shape[1] <= 5
    assert int(ids.max()) < len(model.tokenizer)


def test_placeholder_count_mismatch_raises(tiny):
    model, proc = tiny
    frames, ts = video(b=1)
    batch = proc([QA], ts.tolist())
    ids = batch["input_ids"].clone()
    first = int((ids[0] == model.video_token_id).nonzero()[0])
    ids[0, first] = model.tokenizer.pad_token_id
    with pytest.raises(PlaceholderMismatchError, match=r"exactly 8 video placeholder ids.*\[7\]"):
        model(frames, ts, ids, batch["attention_mask"], batch["labels"])
    with pytest.raises(PlaceholderMismatchError):  # two videos, one text
        model(*video(b=2)[:1], ts.expand(2, T), batch["input_ids"], batch["attention_mask"])


def test_processor_masks_everything_but_answers(tiny):
    model, proc = tiny
    convo = QA + [{"q": "And the blue square?", "a": "At <time>7.0</time> seconds."}]
    ids, labels = proc.encode_conversation(convo, [0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.0, 10.5])
    tok = model.tokenizer
    assert ids.count(proc.video_token_id) == model.num_video_tokens(T) == 8
    kept = [i for i, lab in zip(ids, labels) if lab != IGNORE_INDEX]
    codec = model.time_codec
    expected = (f" From {codec.encode(1.5)} to {codec.encode(4.0)} seconds.</s> At {codec.encode(7.0)} seconds.</s>")
    assert tok.decode(kept) == expected
    assert labels[ids.index(proc.video_token_id)] == IGNORE_INDEX
    text = tok.decode(ids)
    assert text.startswith("<s>[INST] <<SYS>>") and "The video contains 8 frames sampled at " in text
    assert codec.decode_ids(ids, tok)[:8] == [0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.0, 10.5]


def test_video_position_last_puts_the_video_after_the_question():
    from vtgcore.processor import PromptConfig, VideoLLMProcessor as VideoProcessor

    model, proc = build_model(load_recipe("recipes/debug/tiny.yaml"))
    last = VideoProcessor(model.tokenizer, model.time_codec, proc.num_video_tokens, proc.video_token,
                          PromptConfig(video_position="last"))
    ts = [0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.0, 10.5]
    for p, video_after_question in ((proc, False), (last, True)):
        ids, _ = p.encode_conversation(QA, ts)
        text = model.tokenizer.decode(ids)
        assert (text.index("red circle") < text.index("The video contains")) == video_after_question
        first_video = ids.index(p.video_token_id)
        assert (model.tokenizer.decode(ids[:first_video]).count("red circle") == 1) == video_after_question
        assert ids.count(p.video_token_id) == 8
    with pytest.raises(VTGError, match="video_position"):
        VideoProcessor(model.tokenizer, model.time_codec, 8, proc.video_token, PromptConfig(video_position="middle"))


def test_processor_errors(tiny):
    _, proc = tiny
    with pytest.raises(VTGError, match="placeholder"):
        proc.encode_conversation([{"q": "<video> a <video>", "a": "x"}], [0.0] * T)
    with pytest.raises(VTGError, match="does not hold a number"):
        proc.encode_conversation([{"q": "q", "a": "<time>soon</time>"}], [0.0] * T)
    with pytest.raises(VTGError, match="at least one turn"):
        proc.encode_conversation([], [0.0] * T)
    with pytest.raises(VTGError, match="exceeds max_length"):
        proc.prompt.max_length = 20
        proc.encode_conversation(QA, [0.0] * T)


def test_padded_frames_are_masked_out(tiny):
    model, proc = tiny
    model.eval()
    frames, ts = video(b=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    batch = proc([QA], ts.tolist())
    a = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"], frame_mask=mask).loss
    frames2 = frames.clone()
    frames2[:, 5:] = torch.randn(1, 3, 3, 32, 32) * 50
    b = model(frames2, ts, batch["input_ids"], batch["attention_mask"], batch["labels"], frame_mask=mask).loss
    torch.testing.assert_close(a, b)


def test_overfits_one_batch():
    model, proc = build_model(load_recipe("recipes/debug/tiny.yaml"))
    frames, ts = video(b=2)
    batch = proc([QA, QA], ts.tolist())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_untrained_time_rows_stay_exactly_zero_with_adamw_weight_decay():
    model, proc = build_model(load_recipe("recipes/debug/tiny.yaml"))
    table = model.time_embedding.weight
    frames, ts = video(b=2)  # frames at 0, 1.5, ..., 10.5 s -> rows {0, 2, 3, 4, 6, 8, 9, 10}
    batch = proc([QA, QA], ts.tolist())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)
    for _ in range(3):
        loss = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    seen = set(torch.round(ts).long().flatten().tolist())
    touched = {int(i) for i in (table.detach().abs().sum(1) > 0).nonzero().flatten()}
    assert touched == seen
    assert touched == {0, 2, 3, 4, 6, 8, 9, 10}  # round half to even: 1.5 -> 2, 4.5 -> 4, 7.5 -> 8


def test_lora_recipe_trains_adapters_embeddings_and_vision_side_only():
    model, _ = build_model(load_recipe("recipes/debug/tiny_lora.yaml"))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    llm_trainable = {n for n in trainable if n.startswith("llm.")}
    assert llm_trainable and all("lora_" in n or "embed_tokens" in n or "lm_head" in n for n in llm_trainable)
    assert any("lora_A" in n for n in llm_trainable)
    assert not any(n.startswith("encoder.") for n in trainable)
    assert any(n.startswith("compressor.") for n in trainable)
    assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if p.requires_grad)


def test_every_lora_parameter_trains_in_fp32_over_a_bf16_base_and_receives_gradient():
    # the original's HEAD left every LoRA parameter frozen in bf16 (vtgllm-original.md section 1.9)
    model, processor = build_model(load_recipe("recipes/debug/tiny_lora.yaml", ["model.llm.params.dtype=bfloat16"]))
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert len(lora) == 2 * 4 * 2  # A and B for q/k/v/o in each of the 2 layers
    frozen = [n for n, p in lora.items() if not p.requires_grad or p.dtype != torch.float32]
    assert frozen == []
    base = [p for n, p in model.llm.named_parameters() if "layers" in n and "lora_" not in n]
    assert base and all(not p.requires_grad and p.dtype == torch.bfloat16 for p in base)
    for name, p in lora.items():  # B starts at zero: give it a value so that A gets a gradient too
        if "lora_B" in name:
            p.data.normal_(0, 0.02)
    frames, ts = video()
    batch = processor([QA, QA], ts.tolist())
    model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"]).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora.values())


def test_component_checkpoint_round_trip_and_errors(tmp_path):
    model, _ = build_model(load_recipe("recipes/debug/tiny.yaml"))
    path = tmp_path / "slots.safetensors"
    save_file({"slots": torch.full_like(model.compressor.slots, 0.25)}, str(path))
    loaded, _ = build_model(load_recipe("recipes/debug/tiny.yaml", [f"model.compressor.checkpoint={path}"]))
    assert torch.all(loaded.compressor.slots == 0.25)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(VTGError, match="not a safetensors file"):
        build_model(load_recipe("recipes/debug/tiny.yaml", [f"model.compressor.checkpoint={bad}"]))
    wrong = tmp_path / "wrong.safetensors"
    save_file({"slots": torch.zeros(3, 3)}, str(wrong))
    with pytest.raises(VTGError, match="size mismatch"):
        build_model(load_recipe("recipes/debug/tiny.yaml", [f"model.compressor.checkpoint={wrong}"]))


CHAT = ("{% for m in messages %}{% if m['role'] == 'system' %}<|system|>{{ m['content'] }}\n"
        "{% elif m['role'] == 'user' %}<|user|>{{ m['content'] }}\n"
        "{% else %}<|assistant|>{{ m['content'] }}{{ eos_token }}\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_tokenizer_chat_template(tiny):
    model, proc = tiny
    tok = model.tokenizer
    proc.prompt.chat_template = "tokenizer"
    proc.prompt.system = "Be brief."
    with pytest.raises(VTGError, match="has no chat template"):
        proc.encode_conversation(QA, [0.0] * T)
    tok.chat_template = CHAT
    convo = QA + [{"q": "Again?", "a": "Yes."}]
    ids, labels = proc.encode_conversation(convo, [0.0] * T)
    kept = tok.decode([i for i, lab in zip(ids, labels) if lab != IGNORE_INDEX])
    codec = model.time_codec
    assert kept == f"From {codec.encode(1.5)} to {codec.encode(4.0)} seconds.</s>\nYes.</s>\n"
    text = tok.decode(ids)
    assert text.startswith("<|system|>Be brief.\n<|user|><video>") and ids.count(proc.video_token_id) == 8
    gen, gen_labels = proc.encode_conversation(convo, [0.0] * T, add_generation_prompt=True)
    assert tok.decode(gen).endswith("<|user|>Again?\n<|assistant|>") and set(gen_labels[-5:]) == {IGNORE_INDEX}
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}{{ messages | length }}"
    with pytest.raises(VTGError, match="not prefix-stable"):
        proc.encode_conversation(convo, [0.0] * T)
