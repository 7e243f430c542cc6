"""Rewards (``vtg_register_rewards``): hand-computed values of every first-party reward, with answers
written by a real time codec, tokenized by the tiny tokenizer and rendered as evaluation renders them
(times read by token id), plus :func:`vtgcore.build.build_reward`."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from vtgcore.build import build_reward
from vtgcore.catalog import default_catalog
from vtgcore.data.formats import EvalItem
from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer
from vtgcore.errors import ConfigValidationError, RecipeError, UnknownPluginError
from vtgcore.eval.generate import render_times
from vtgcore.interfaces import Reward
from vtgcore.vocab import MODEL_KINDS, PLUGIN_KINDS

MR = EvalItem(id="q", video="v.mp4", task="mr", query="a dog", duration=30.0, windows=[(15.0, 25.0)])
DVC = EvalItem(id="v", video="v.mp4", task="dvc", duration=60.0, windows=[(0.0, 10.0), (12.0, 20.0)],
               captions=["a man walks", "he sits down"])
# 6 clips of 2 s; mean annotation per clip: [0, 11/3, 5/3, 0, 4, 0]
HD = EvalItem(id="h", video="v.mp4", task="hd", query="a dog", duration=12.0, windows=[(2.0, 6.0), (8.0, 10.0)],
              saliency=[[4, 3, 4], [2, 1, 2], [4, 4, 4]], clip_ids=[1, 2, 4])


@pytest.fixture(params=["absolute_time_tokens", "plain_digits"])
def codec_tok(request):
    codec = default_catalog().build("time_codec", request.param, {})
    tok = build_tiny_tokenizer()
    tok.add_tokens([t for t in codec.special_tokens() if t not in tok.get_vocab()])
    return codec, tok


def score(spec, item, answer, codec_tok):
    """Build the reward, write ``answer``'s ``{t:...}`` times with the codec, tokenize, render by id
    and score: ``answer`` uses ``{0}``, ``{1}`` ... for the times given after it."""
    codec, tok = codec_tok
    text, times = answer if isinstance(answer, tuple) else (answer, ())
    ids = tok.encode(text.format(*(codec.encode(t) for t in times)), add_special_tokens=False)
    value = build_reward(spec).reward(item, render_times(ids, codec, tok), ids, codec)
    assert isinstance(value, float)
    return value


IOU_ANSWER = ("{0} - {1} seconds.", (10.0, 20.0))  # vs (15, 25): 5 / 15
EMPTY = ""
GARBAGE = "I cannot tell, sorry!"


# ------------------------------------------------------------------------------------------------
# the kind


def test_reward_is_a_plugin_kind_outside_the_model():
    assert PLUGIN_KINDS["reward"] == "vtg_register_rewards"
    assert "reward" not in MODEL_KINDS and set(MODEL_KINDS) == set(PLUGIN_KINDS) - {"reward"}
    names = default_catalog().names("reward")
    assert names == ["event_f1", "format", "highlight", "temporal_iou", "weighted_sum"]
    for name in names[:-1]:
        assert isinstance(build_reward({"name": name}), Reward)


def test_vtg_plugins_lists_the_rewards(capsys):
    from vtgcore.apps import cli

    assert cli.main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    rewards = {r["name"] for r in rows if r["kind"] == "reward"}
    assert rewards == {"event_f1", "format", "highlight", "temporal_iou", "weighted_sum"}


# ------------------------------------------------------------------------------------------------
# temporal_iou


def test_temporal_iou_hand_computed(codec_tok):
    assert score({"name": "temporal_iou"}, MR, IOU_ANSWER, codec_tok) == pytest.approx(5 / 15)
    assert score({"name": "temporal_iou"}, MR, ("{0} - {1} seconds.", (15.0, 25.0)), codec_tok) == 1.0
    # only the first window counts
    first = ("{0} - {1} seconds, then {2} - {3} seconds.", (10.0, 20.0, 15.0, 25.0))
    assert score({"name": "temporal_iou"}, MR, first, codec_tok) == pytest.approx(1 / 3)
    # disjoint
    assert score({"name": "temporal_iou"}, MR, ("{0} - {1} seconds.", (0.0, 5.0)), codec_tok) == 0.0


def test_temporal_iou_threshold(codec_tok):
    assert score({"name": "temporal_iou", "params": {"threshold": 0.3}}, MR, IOU_ANSWER, codec_tok) == 1.0
    assert score({"name": "temporal_iou", "params": {"threshold": 0.5}}, MR, IOU_ANSWER, codec_tok) == 0.0
    assert score({"name": "temporal_iou", "params": {"threshold": 1 / 3}}, MR, IOU_ANSWER, codec_tok) == 1.0  # >=


@pytest.mark.parametrize("params", [{}, {"threshold": 0.0}])
def test_temporal_iou_empty_and_unparseable_answers_score_zero(codec_tok, params):
    spec = {"name": "temporal_iou", "params": params}
    assert score(spec, MR, EMPTY, codec_tok) == 0.0
    assert score(spec, MR, GARBAGE, codec_tok) == 0.0
    assert score(spec, EvalItem(id="x", video="v", task="mr"), IOU_ANSWER, codec_tok) == 0.0  # no ground truth


def test_rewards_read_times_by_token_id():
    """With time tokens, the raw decode holds no digits; the rendered answer (times read by id) does."""
    codec = default_catalog().build("time_codec", "absolute_time_tokens", {})
    tok = build_tiny_tokenizer()
    tok.add_tokens(codec.special_tokens())
    ids = tok.encode(f"{codec.encode(10.0)} - {codec.encode(20.0)} seconds.", add_special_tokens=False)
    reward = build_reward({"name": "temporal_iou"})
    assert reward.reward(MR, tok.decode(ids), ids, codec) == 0.0
    assert reward.reward(MR, render_times(ids, codec, tok), ids, codec) == pytest.approx(1 / 3)


# ------------------------------------------------------------------------------------------------
# event_f1

DVC_ANSWER = ("{0} - {1} seconds, a man walks. {2} - {3} seconds, he sits down. {4} - {5} seconds, he leaves.",
              (0.0, 9.0, 13.0, 19.0, 30.0, 40.0))


def test_event_f1_hand_computed(codec_tok):
    # tIoU: (0, 9) vs (0, 10) = 0.9 - 1e-8 (the evaluator's epsilon), (13, 19) vs (12, 20) = 6 / 8 = 0.75,
    # (30, 40) matches nothing. At 0.3, 0.5, 0.7: P = 2/3, R = 2/2; at 0.9 (strict >): P = R = 0.
    # P = (3 * 2/3) / 4 = 0.5, R = 3 / 4 = 0.75, F1 = 2 * 0.5 * 0.75 / 1.25 = 0.6
    assert score({"name": "event_f1"}, DVC, DVC_ANSWER, codec_tok) == pytest.approx(0.6)
    # at 0.5 alone: P = 2/3, R = 1, F1 = 0.8
    assert score({"name": "event_f1", "params": {"thresholds": [0.5]}}, DVC, DVC_ANSWER, codec_tok) == pytest.approx(0.8)
    # one event covering both ground-truth events: tIoU 10/20 and 8/20; not one-to-one
    # at 0.3: P = 1, R = 2/2; the rest 0 -> P = R = 1/4 -> F1 = 0.25
    assert score({"name": "event_f1"}, DVC, ("{0} - {1} seconds, all of it.", (0.0, 20.0)), codec_tok) == pytest.approx(0.25)


def test_event_f1_empty_and_unparseable_answers_score_zero(codec_tok):
    assert score({"name": "event_f1"}, DVC, EMPTY, codec_tok) == 0.0
    assert score({"name": "event_f1"}, DVC, GARBAGE, codec_tok) == 0.0
    assert score({"name": "event_f1"}, DVC, ("{0} - {1} seconds, far away.", (40.0, 50.0)), codec_tok) == 0.0


def test_event_f1_thresholds_are_checked():
    with pytest.raises(ConfigValidationError, match="thresholds"):
        build_reward({"name": "event_f1", "params": {"thresholds": [1.5]}})


# ------------------------------------------------------------------------------------------------
# highlight


def test_highlight_hand_computed(codec_tok):
    spec = {"name": "highlight"}
    # 2 s -> clip 1 (score 3), 4 s -> clip 2 (score 1): top clip 1, annotation 11/3, best 4 -> 11/12
    two = ("{0} seconds, saliency score: 3. {1} seconds, saliency score: 1.", (2.0, 4.0))
    assert score(spec, HD, two, codec_tok) == pytest.approx(11 / 12)
    # top clip 4 (8 s), annotated 4 = the best -> 1.0
    best = ("{0} seconds, saliency score: 5. {1} seconds, saliency score: 3.", (8.0, 2.0))
    assert score(spec, HD, best, codec_tok) == 1.0
    # top clip 0, not relevant -> 0.0
    assert score(spec, HD, ("{0} seconds, saliency score: 4.", (0.0,)), codec_tok) == 0.0


def test_highlight_empty_unparseable_and_no_highlight_score_zero(codec_tok):
    spec = {"name": "highlight"}
    assert score(spec, HD, EMPTY, codec_tok) == 0.0
    assert score(spec, HD, GARBAGE, codec_tok) == 0.0
    assert score(spec, HD, ("{0} seconds, saliency score: 0.", (8.0,)), codec_tok) == 0.0  # names no highlight
    no_duration = EvalItem(id="h", video="v", task="hd", saliency=[[4]], clip_ids=[1])
    assert score(spec, no_duration, ("{0} seconds, saliency score: 3.", (2.0,)), codec_tok) == 0.0


# ------------------------------------------------------------------------------------------------
# format


def test_format_hand_computed(codec_tok):
    spec = {"name": "format"}
    assert score(spec, MR, IOU_ANSWER, codec_tok) == 1.0
    assert score(spec, DVC, DVC_ANSWER, codec_tok) == 1.0
    assert score(spec, HD, ("{0} seconds, saliency score: 3.", (2.0,)), codec_tok) == 1.0
    assert score(spec, MR, EMPTY, codec_tok) == 0.0
    assert score(spec, MR, GARBAGE, codec_tok) == 0.0
    assert score(spec, EvalItem(id="x", video="v", task="hd"), ("{0} seconds, saliency score: 3.", (2.0,)),
                 codec_tok) == 0.0  # a highlight answer cannot be placed without a duration
    assert score(spec, EvalItem(id="x", video="v", task="nope"), IOU_ANSWER, codec_tok) == 0.0


# ------------------------------------------------------------------------------------------------
# weighted_sum


def weighted(*terms):
    return {"name": "weighted_sum", "params": {"terms": list(terms)}}


def test_weighted_sum_hand_computed(codec_tok):
    spec = weighted({"name": "temporal_iou", "weight": 0.7}, {"name": "format", "weight": 0.3})
    assert score(spec, MR, IOU_ANSWER, codec_tok) == pytest.approx(0.7 / 3 + 0.3)
    assert score(spec, MR, EMPTY, codec_tok) == 0.0
    assert score(spec, MR, GARBAGE, codec_tok) == 0.0
    thresholded = weighted({"name": "temporal_iou", "params": {"threshold": 0.5}, "weight": 0.7},
                           {"name": "format", "weight": 0.3})
    assert score(thresholded, MR, IOU_ANSWER, codec_tok) == pytest.approx(0.3)
    nested = weighted({"name": "weighted_sum", "params": spec["params"], "weight": 2.0}, {"name": "format"})
    assert score(nested, MR, IOU_ANSWER, codec_tok) == pytest.approx(2 * (0.7 / 3 + 0.3) + 1.0)


@pytest.mark.parametrize("terms, error, match", [
    ([], ConfigValidationError, "at least one"),
    ([{"name": "format", "wieght": 1.0}], ConfigValidationError, "unknown key"),
    ([{"name": "format", "weight": "heavy"}], ConfigValidationError, "weight"),
    ([{"weight": 1.0}], ConfigValidationError, "name"),
    ([{"name": "temporal_iuo"}], UnknownPluginError, "temporal_iou"),
    ([{"name": "temporal_iou", "params": {"threshold": 2.0}}], ConfigValidationError, "threshold"),
])
def test_weighted_sum_bad_terms(terms, error, match):
    with pytest.raises(error, match=match):
        build_reward(weighted(*terms))


# ------------------------------------------------------------------------------------------------
# build_reward


def test_build_reward_takes_an_omegaconf_node():
    spec = OmegaConf.create({"name": "weighted_sum", "params": {"terms": [{"name": "format", "weight": 0.5}]}})
    codec = default_catalog().build("time_codec", "plain_digits", {})
    assert build_reward(spec).reward(MR, "10 - 20 seconds", [], codec) == 0.5


@pytest.mark.parametrize("spec, error, match", [
    ("temporal_iou", RecipeError, "mapping"),
    ({"params": {}}, RecipeError, "'name'"),
    ({"name": "format", "weight": 1.0}, RecipeError, "unknown key"),
    ({"name": "temporal_iou", "params": [1]}, RecipeError, "'params' must be a mapping"),
    ({"name": "iou"}, UnknownPluginError, "available"),
    ({"name": "temporal_iou", "params": {"threshold": 1.5}}, ConfigValidationError, "threshold"),
    ({"name": "format", "params": {"x": 1}}, ConfigValidationError, "takes no params"),
])
def test_build_reward_errors(spec, error, match):
    with pytest.raises(error, match=match):
        build_reward(spec)
