"""Time in the rotary positions (issue 21): ``model.time_positions`` and :mod:`vtgcore.positions`."""

from __future__ import annotations

import pytest
import torch

from vtgcore import build_model, load_recipe
from vtgcore.errors import RecipeError, ShapeError
from vtgcore.positions import TimePositions, time_position_ids

TINY = "recipes/debug/tiny.yaml"
ON = ["compressor=identity", "model.time_positions.enabled=true", "model.time_positions.rate=2.0"]
QA = [{"q": "When does the red circle appear?", "a": "From <time>1.5</time> to <time>4.0</time> seconds."}]

# ------------------------------------------------------------------------------------------------
# the hand-made batch: B = 2, T = 3 frames, L = 2 tokens per frame (identity: K = 6, frame-major)
# row 0: 3 prompt tokens, the video, 2 text tokens; row 1: 2 pads, 1 prompt token, the video, 2 text

V, X, P = 1, 0, 0  # video, text, pad (is_video)
IS_VIDEO = torch.tensor([[X, X, X, V, V, V, V, V, V, X, X],
                         [P, P, X, V, V, V, V, V, V, X, X]]).bool()
MASK = torch.tensor([[1] * 11, [0, 0] + [1] * 9])
FRAME_INDEX = torch.tensor([[0, 0, 1, 1, 2, 2]] * 2)
SECONDS = torch.tensor([[0.0, 2.0, 4.5], [1.0, 1.4, 3.0]])
RATE = 2.0  # starts: row 0 round(0, 4, 9) = 0, 4, 9; row 1 round(2, 2.8, 6) = 2, 3, 6


def test_hand_made_batch_share():
    pos = time_position_ids(IS_VIDEO, MASK, FRAME_INDEX, SECONDS, None, RATE, "share")
    # row 0: text 0..2, offset 3: frames at 3 + (0, 4, 9), text after the largest (12)
    # row 1: pads 1, text 0, offset 1: frames at 1 + (2, 3, 6), text after 7
    assert pos.tolist() == [[0, 1, 2, 3, 3, 7, 7, 12, 12, 13, 14],
                            [1, 1, 0, 3, 3, 4, 4, 7, 7, 8, 9]]
    assert pos.dtype == torch.long


def test_hand_made_batch_spread():
    pos = time_position_ids(IS_VIDEO, MASK, FRAME_INDEX, SECONDS, None, RATE, "spread")
    # token i of a frame's 2 adds floor(i * width / 2); width = next start - start, the last frame
    # takes the previous frame's width. row 0 widths 4, 5, 5 -> +0/+2 each; row 1 widths 1, 3, 3
    assert pos.tolist() == [[0, 1, 2, 3, 5, 7, 9, 12, 14, 15, 16],
                            [1, 1, 0, 3, 3, 4, 5, 7, 8, 9, 10]]


def test_padded_frame_tokens_are_masked_and_do_not_raise_the_text():
    mask = MASK.clone()
    mask[1, 7:9] = 0  # row 1's frame 2 is a padded frame: its tokens masked after splicing
    frame_mask = torch.tensor([[True, True, True], [True, True, False]])
    pos = time_position_ids(IS_VIDEO, mask, FRAME_INDEX, SECONDS, frame_mask, RATE, "spread")
    # frame 1 is now the last real one: it takes frame 0's width (1) -> +0, +0
    assert pos[1].tolist() == [1, 1, 0, 3, 3, 4, 4, 1, 1, 5, 6]


def test_tokens_without_one_frame_are_refused():
    index = FRAME_INDEX.clone()
    index[0, 2] = -1
    with pytest.raises(ShapeError, match="mixes frames"):
        time_position_ids(IS_VIDEO, MASK, index, SECONDS, None, RATE)
    with pytest.raises(ShapeError, match="video tokens"):
        time_position_ids(IS_VIDEO, MASK, FRAME_INDEX[:, :5], SECONDS, None, RATE)
    with pytest.raises(ValueError, match="spread"):
        TimePositions(1.0, "smear")
    with pytest.raises(ValueError, match="rate"):
        TimePositions(0.0)


# ------------------------------------------------------------------------------------------------
# the model


def video(b=2, t=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 3, size, size, generator=g), torch.tensor([[0.0, 1.5, 3.0, 4.5], [0.0, 2.0, 4.0, 6.0]])


def prompts(proc, ts):
    return proc([[{"q": "When?"}], [{"q": "When does the much longer query happen?"}]], ts.tolist(),
                add_generation_prompt=True)


@pytest.fixture(scope="module")
def timed():
    return build_model(load_recipe(TINY, ON + ["model.time_positions.spread=spread"]))


def test_model_positions_follow_time_and_text_continues(timed):
    model, proc = timed
    frames, ts = video()
    batch = prompts(proc, ts)
    visual, _, mask = model.prepare_inputs(frames, ts, batch["input_ids"], batch["attention_mask"])
    pos = model.position_ids(batch["input_ids"], mask, visual, ts)
    is_video = batch["input_ids"] == model.video_token_id
    for row in range(2):
        video_pos = pos[row][is_video[row]].reshape(4, -1)  # (T, L): frame-major
        starts = video_pos[:, 0] - video_pos[0, 0]
        assert starts.tolist() == torch.round(ts[row] * 2.0).long().sub(torch.round(ts[row, 0] * 2.0).long()).tolist()
        last_video = int(is_video[row].nonzero().max())
        after = pos[row, last_video + 1:]
        assert after[0] == pos[row][is_video[row]].max() + 1
        assert torch.equal(after, torch.arange(len(after)) + after[0])
    assert bool((pos[:, -1] == pos.masked_fill(mask == 0, -1).amax(1)).all())


def test_kv_cache_generation_equals_full_recompute(timed):
    check_kv_cache_equals_recompute(*timed)


def test_interleaved_layout_keeps_the_video_at_its_times_and_the_cache_exact():
    """With per-frame time text between the frames, that text continues after the largest earlier
    position; the video tokens stay at the offset + their time."""
    model, proc = build_model(load_recipe(TINY, ON + ["model.prompt.video_layout=interleaved"]))
    frames, ts = video()
    batch = prompts(proc, ts)
    visual, _, mask = model.prepare_inputs(frames, ts, batch["input_ids"], batch["attention_mask"])
    pos = model.position_ids(batch["input_ids"], mask, visual, ts)
    is_video = batch["input_ids"] == model.video_token_id
    for row in range(2):
        video_pos = pos[row][is_video[row]].reshape(4, -1)
        assert (video_pos - video_pos[0, 0])[:, 0].tolist() == (torch.round(ts[row] * 2.0).long()
                                                                 - round(float(ts[row, 0]) * 2.0)).tolist()
    check_kv_cache_equals_recompute(model, proc)


def check_kv_cache_equals_recompute(model, proc):
    model.eval()
    frames, ts = video()
    batch = prompts(proc, ts)
    n = 6
    out = model.generate(frames, ts, batch["input_ids"], batch["attention_mask"], max_new_tokens=n,
                         min_new_tokens=n, do_sample=False, return_dict_in_generate=True, output_logits=True)
    new, cached_logits = out.sequences, torch.stack(out.logits, 1)
    assert new.shape == (2, n)
    with torch.no_grad():
        visual, embeds, mask = model.prepare_inputs(frames, ts, batch["input_ids"], batch["attention_mask"])
        pos = model.position_ids(batch["input_ids"], mask, visual, ts)
        s = embeds.shape[1]
        default = (mask.cumsum(1) - 1).masked_fill(mask == 0, 1)
        assert not torch.equal(pos.masked_fill(mask == 0, 1), default)  # time moved them
        full_embeds = torch.cat([embeds, model.llm.embed(new)], 1)
        full_mask = torch.cat([mask, torch.ones_like(new)], 1)
        full_pos = torch.cat([pos, pos[:, -1:] + 1 + torch.arange(n)], 1)  # the text continues after the max
        logits = model.llm(inputs_embeds=full_embeds, attention_mask=full_mask, position_ids=full_pos).logits
        assert torch.equal(logits[:, s - 1:s - 1 + n].argmax(-1), new)
        torch.testing.assert_close(cached_logits, logits[:, s - 1:s - 1 + n], rtol=1e-4, atol=1e-4)
        # and the default positions would have predicted differently somewhere
        plain = model.llm(inputs_embeds=full_embeds, attention_mask=full_mask).logits
        assert not torch.allclose(plain[:, s - 1:s - 1 + n], logits[:, s - 1:s - 1 + n], atol=1e-4)


def test_hf_causal_lm_generate_refuses_a_row_that_does_not_end_at_its_largest_position(timed):
    model, _ = timed
    emb = model.llm.embed(torch.tensor([[5, 6, 7]]))
    with pytest.raises(ShapeError, match="largest"):
        model.llm.generate(emb, torch.ones(1, 3, dtype=torch.long), position_ids=torch.tensor([[0, 9, 2]]),
                           max_new_tokens=1)


def test_training_forward_with_time_positions(timed):
    model, proc = timed
    frames, ts = video()
    batch = proc([QA, QA], ts.tolist())
    full = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"])
    lean = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"], return_logits=False)
    assert torch.isfinite(full.loss)
    torch.testing.assert_close(lean.loss, full.loss, rtol=1e-4, atol=1e-5)


def test_off_by_default_passes_no_position_ids():
    model, proc = build_model(load_recipe(TINY, ["compressor=identity"]))
    assert model.time_positions is None
    model.eval()
    frames, ts = video()
    batch = proc([QA, QA], ts.tolist())
    with torch.no_grad():
        out = model(frames, ts, batch["input_ids"], batch["attention_mask"])
        visual, embeds, mask = model.prepare_inputs(frames, ts, batch["input_ids"], batch["attention_mask"])
        assert model.position_ids(batch["input_ids"], mask, visual, ts) is None
        direct = model.llm(inputs_embeds=embeds, attention_mask=mask)
    assert torch.equal(out.logits, direct.logits)


def test_a_compressor_that_mixes_frames_is_named():
    model, proc = build_model(load_recipe(TINY, ["model.time_positions.enabled=true"]))  # slot_8: slots mix frames
    frames, ts = video()
    batch = proc([QA, QA], ts.tolist())
    with pytest.raises(ShapeError, match="'slot'.*mix frames|'slot'.*no frame_index"):
        model(frames, ts, batch["input_ids"], batch["attention_mask"])


def test_recipe_values_are_checked():
    with pytest.raises(RecipeError, match="model.time_positions.rate"):
        load_recipe(TINY, ON + ["model.time_positions.rate=0"])
    with pytest.raises(RecipeError, match="model.time_positions.spread"):
        load_recipe(TINY, ON + ["model.time_positions.spread=smear"])
