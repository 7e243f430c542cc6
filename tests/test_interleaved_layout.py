"""``model.prompt.video_layout: interleaved``: each frame's time written by the codec, then its
tokens (TimeLens / Qwen3-VL style), pinned against a hand-built example; the compressors that keep
each token's frame, the refusal of those that mix frames, labels, batching, generation, cached
features and ``vtg ground`` with it; the default ``block`` layout unchanged."""

import functools

import pytest
import torch

from vtgcore import build_model, load_recipe
from vtgcore.data.tiny_tokenizers import build_tiny_chat_tokenizer, build_tiny_tokenizer
from vtgcore.errors import RecipeError, VTGError
from vtgcore.processor import IGNORE_INDEX, PromptConfig, VideoLLMProcessor
from vtgcore_plugins.compressors.identity import IdentityCompressor
from vtgcore_plugins.compressors.mean_pool import MeanPoolCompressor
from vtgcore_plugins.time_codecs.plain_digits import PlainDigits

TINY = "recipes/debug/tiny.yaml"
INTERLEAVED = ["compressor=identity", "model.prompt.video_layout=interleaved"]
TIMES = [0.0, 2.5, 5.0]
QA = [{"q": "When does it happen?", "a": "At <time>2.5</time> seconds."}]


def _processor(tok, compressor, tokens_per_frame, **prompt):
    tok.add_tokens(["<video>"], special_tokens=True)
    return VideoLLMProcessor(
        tok, PlainDigits(decimals=1), functools.partial(compressor.output_tokens, tokens_per_frame=tokens_per_frame),
        prompt=PromptConfig(video_layout="interleaved", **prompt),
        frame_groups=functools.partial(compressor.frame_groups, tokens_per_frame=tokens_per_frame),
        compressor=type(compressor).__name__)


def test_hand_built_layout_identity_plain_digits():
    tok = build_tiny_tokenizer()
    proc = _processor(tok, IdentityCompressor(8), 2)
    enc = functools.partial(tok.encode, add_special_tokens=False)
    v = [proc.video_token_id] * 2
    head = enc("<s>[INST] <<SYS>>\n \n<</SYS>>\n\n")
    video = enc("0.0 seconds:") + v + enc("2.5 seconds:") + v + enc("5.0 seconds:") + v
    prompt = head + video + enc(" When does it happen? [/INST]")
    answer = enc(" At 2.5 seconds.</s>")
    ids, labels = proc.encode_conversation(QA, TIMES)
    assert ids == prompt + answer
    assert labels == [IGNORE_INDEX] * len(prompt) + answer
    assert ids.count(proc.video_token_id) == 6 == proc.k(3)
    assert "sampled at" not in tok.decode(ids)  # no frame-time sentence, whatever timestamps_in_prompt says
    gen, gen_labels = proc.encode_conversation(QA, TIMES, add_generation_prompt=True)
    assert gen == prompt and set(gen_labels) == {IGNORE_INDEX}
    # the wording is a recipe setting
    worded = _processor(build_tiny_tokenizer(), IdentityCompressor(8), 2, frame_time_template="<{time}s>")
    assert worded.video_ids(TIMES, 6, 3) == enc("<0.0s>") + v + enc("<2.5s>") + v + enc("<5.0s>") + v


def test_padded_frames_get_their_tokens_without_a_time():
    tok = build_tiny_tokenizer()
    proc = _processor(tok, IdentityCompressor(8), 2)
    enc = functools.partial(tok.encode, add_special_tokens=False)
    v = [proc.video_token_id] * 2
    assert proc.video_ids([0.0, 2.5], 6, 3) == enc("0.0 seconds:") + v + enc("2.5 seconds:") + v + v
    batch = proc([QA, QA], [TIMES, TIMES[:2]], num_frames=3)
    assert (batch["input_ids"] == proc.video_token_id).sum(1).tolist() == [6, 6]


def test_mean_pool_groups_and_layout():
    pool = MeanPoolCompressor(8, tokens_per_frame=2)
    assert pool.frame_groups(3, 4) == [(0, 2), (1, 2), (2, 2)]
    assert pool.frame_groups(2, 1) == [(0, 1), (1, 1)]  # P is at most L
    assert IdentityCompressor(8).frame_groups(2, 3) == [(0, 3), (1, 3)]
    tok = build_tiny_tokenizer()
    proc = _processor(tok, MeanPoolCompressor(8, tokens_per_frame=1), 4)
    enc = functools.partial(tok.encode, add_special_tokens=False)
    v = [proc.video_token_id]
    assert proc.video_ids(TIMES, 3, 3) == enc("0.0 seconds:") + v + enc("2.5 seconds:") + v + enc("5.0 seconds:") + v


def test_tokenizer_chat_template():
    tok = build_tiny_chat_tokenizer()
    proc = _processor(tok, IdentityCompressor(8), 2, chat_template="tokenizer", system="")
    enc = functools.partial(tok.encode, add_special_tokens=False)
    v = [proc.video_token_id] * 2
    video = enc("0.0 seconds:") + v + enc("2.5 seconds:") + v + enc("5.0 seconds:") + v
    ids, labels = proc.encode_conversation(QA, TIMES)
    prompt = enc("<|im_start|>user\n") + video + enc(" When does it happen?<|im_end|>\n<|im_start|>assistant\n")
    assert ids[:len(prompt)] == prompt and set(labels[:len(prompt)]) == {IGNORE_INDEX}
    assert tok.decode([i for i, lab in zip(ids, labels) if lab != IGNORE_INDEX]).startswith("At 2.5 seconds.")


def test_compressors_that_mix_frames_are_refused_by_name():
    with pytest.raises(VTGError, match=r"compressor 'slot' mixes frames"):
        build_model(load_recipe(TINY, ["model.prompt.video_layout=interleaved"]))
    with pytest.raises(VTGError, match=r"compressor 'cross_attention' mixes frames"):
        build_model(load_recipe(TINY, ["compressor=cross_attention_256", "model.prompt.video_layout=interleaved"]))
    tok = build_tiny_tokenizer()
    tok.add_tokens(["<video>"], special_tokens=True)
    with pytest.raises(VTGError, match="needs a compressor that keeps each token's frame"):
        VideoLLMProcessor(tok, PlainDigits(), 4, prompt=PromptConfig(video_layout="interleaved"))
    with pytest.raises(VTGError, match="layout 'compact'"):
        _processor(build_tiny_tokenizer(), IdentityCompressor(8), 2, layout="vtgllm")
    with pytest.raises(VTGError, match="frame_time_template"):
        _processor(build_tiny_tokenizer(), IdentityCompressor(8), 2, frame_time_template="at {time} and {time}")
    with pytest.raises(VTGError, match="video_layout"):
        VideoLLMProcessor(tok, PlainDigits(), 4, prompt=PromptConfig(video_layout="sideways"))


def test_recipe_values_are_checked_at_load():
    with pytest.raises(RecipeError, match=r"model.prompt.video_layout is 'sideways'; allowed: block, interleaved"):
        load_recipe(TINY, ["model.prompt.video_layout=sideways"])
    with pytest.raises(RecipeError, match="frame_time_template"):
        load_recipe(TINY, ["model.prompt.frame_time_template=no time here"])
    rec = load_recipe(TINY)
    assert rec.model.prompt.video_layout == "block" and rec.model.prompt.frame_time_template == "{time} seconds:"


def test_forward_labels_batching_generation_and_cached_features():
    torch.manual_seed(0)
    model, proc = build_model(load_recipe(TINY, INTERLEAVED))
    t = 4
    frames = torch.randn(2, t, 3, 32, 32)
    ts = torch.tensor([[0.0, 1.5, 3.0, 4.5], [0.0, 2.0, 4.0, 4.0]])
    mask = torch.tensor([[True] * 4, [True] * 3 + [False]])
    real = [[0.0, 1.5, 3.0, 4.5], [0.0, 2.0, 4.0]]
    qa = [{"q": "When does the red circle appear?", "a": "From <time>1.5</time> to <time>4.0</time> seconds."}]
    batch = proc([qa, qa], real, num_frames=t)
    k = model.num_video_tokens(t)
    assert (batch["input_ids"] == model.video_token_id).sum(1).tolist() == [k, k]
    # every frame's time precedes its tokens: the codec reads the frame times back from the prompt
    row = batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist()
    assert model.time_codec.decode_ids(row, model.tokenizer)[:4] == real[0]
    assert model.time_codec.decode_ids(batch["input_ids"][1].tolist(), model.tokenizer)[:3] == real[1]
    # each run of placeholders is the run of tokens the compressor gives that frame
    visual = model.encode_video(frames, ts, mask)
    runs = [(f, n) for f, n in proc.frame_groups(t)]
    assert visual.frame_index[0].tolist() == [f for f, n in runs for _ in range(n)]
    out = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"], frame_mask=mask)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    # cached encoder features (the feature cache stores encoder outputs, not prompts) give the same loss
    with torch.no_grad():
        features = model.encode_frames(frames)
        again = model(features, ts, batch["input_ids"], batch["attention_mask"], batch["labels"], frame_mask=mask)
    torch.testing.assert_close(again.loss, out.loss.detach())
    prompt = proc([[{"q": "When?"}], [{"q": "When does the much longer query happen?"}]], real,
                  add_generation_prompt=True, num_frames=t)
    assert (prompt["attention_mask"][:, -1] == 1).all()
    ids = model.generate(frames, ts, prompt["input_ids"], prompt["attention_mask"], frame_mask=mask, max_new_tokens=4)
    assert ids.shape[0] == 2 and 1 <= ids.shape[1] <= 4


def test_block_layout_is_unchanged():
    model, proc = build_model(load_recipe(TINY, ["compressor=identity"]))
    plain = VideoLLMProcessor(model.tokenizer, model.time_codec, model.num_video_tokens, proc.video_token,
                              PromptConfig(max_length=512))
    ts = [0.0, 1.5, 3.0, 4.5]
    assert proc.prompt.video_layout == "block"
    assert proc.encode_conversation(QA, ts) == plain.encode_conversation(QA, ts)
    ids, _ = proc.encode_conversation(QA, ts)
    k = model.num_video_tokens(4)
    first = ids.index(proc.video_token_id)
    assert ids[first:first + k] == [proc.video_token_id] * k  # one block of K


def test_vtg_ground_with_the_interleaved_layout(tiny_run, val_video):
    from vtgcore.apps.pipeline import load_pipeline
    from vtgcore.eval.generate import GenerationConfig

    pipe = load_pipeline(tiny_run, overrides=["model.prompt.video_layout=interleaved"],
                         generation=GenerationConfig(max_new_tokens=24))
    assert pipe.processor.prompt.video_layout == "interleaved"
    result = pipe.ground(val_video, "the red square moves to the left")
    assert result.duration > 0
    for start, end in result.windows:
        assert 0.0 <= start <= end <= result.duration
