"""Annotation formats: VTG-IT with time tokens, the four eval ground truths, DiDeMo, errors."""

import json
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vtgcore.data.formats import (
    EVAL_FORMATS, EvalItem, TrainItem, detect_format, load_activitynet, load_charades, load_didemo,
    load_eval, load_qvhighlights, load_vtg_it, load_youcook2, markers_to_seconds, resolve_video,
    tokens_to_markers,
)
from vtgcore.errors import AnnotationError, VTGError
from vtgcore_plugins.time_codecs.absolute_time_tokens import TIME_TOKENS, AbsoluteTimeTokens

NAMES = dict(zip("0123456789.", TIME_TOKENS))


def toks(text: str, sep: str = "") -> str:
    """Time tokens for the characters of ``text``, joined by ``sep``."""
    return sep.join(NAMES[c] for c in text)


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------
# tokens_to_markers


def test_tokens_unspaced_one_group():
    assert tokens_to_markers(f"{toks('0012.3')} - {toks('0015.0')} seconds.") == \
        "<time>12.3</time> - <time>15</time> seconds."


def test_tokens_spaced_as_llama_decodes_them():
    text = f"{toks('0012.3', ' ')} - {toks('0015.0', ' ')} seconds, pour water."
    assert tokens_to_markers(text) == "<time>12.3</time> - <time>15</time> seconds, pour water."


def test_tokens_back_to_back_groups_are_two_numbers():
    assert tokens_to_markers(toks("0001.2") + toks("0003.4")) == "<time>1.2</time><time>3.4</time>"
    assert markers_to_seconds(tokens_to_markers(toks("0001.20003.4", " "))) == [1.2, 3.4]


def test_tokens_legacy_four_token_form():
    assert tokens_to_markers(f"{toks('12.0')} - {toks('0015.5')} seconds") == \
        "<time>12</time> - <time>15.5</time> seconds"
    assert markers_to_seconds(tokens_to_markers(toks("12.0") + toks("0012.3"))) == [12.0, 12.3]


def test_text_without_tokens_unchanged():
    text = "Add 2 eggs at <time>3.5</time> and stir 10.5 times."
    assert tokens_to_markers(text) == text
    assert markers_to_seconds(text) == [3.5]


def test_unreadable_token_run_raises():
    with pytest.raises(ValueError, match="do not form numbers"):
        tokens_to_markers(f"at {NAMES['.']} seconds")


def test_markers_to_seconds_rejects_non_numbers():
    with pytest.raises(VTGError, match="does not hold a number"):
        markers_to_seconds("<time>soon</time>")


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(min_value=0, max_value=10000, exclude_max=True, allow_nan=False), max_size=8),
       sep=st.sampled_from(["", " ", " - ", " seconds, a caption. "]),
       spaced=st.booleans())
def test_codec_text_round_trips_to_tenths(values, sep, spaced):
    codec = AbsoluteTimeTokens()
    pieces = [codec.encode(v) for v in values]
    if spaced:
        pieces = [" ".join(TIME_TOKENS["0123456789.".index(c)] for c in _chars(p)) for p in pieces]
    text = "Events: " + sep.join(pieces) + " end."
    expected = [float(Decimal(repr(v)).quantize(Decimal("0.1"), rounding=ROUND_DOWN)) for v in values]
    assert markers_to_seconds(tokens_to_markers(text)) == expected


def _chars(token_text: str) -> str:
    out = ""
    while token_text:
        token = next(t for t in TIME_TOKENS if token_text.startswith(t))
        out += "0123456789."[TIME_TOKENS.index(token)]
        token_text = token_text[len(token):]
    return out


# ------------------------------------------------------------------------------------------------
# VTG-IT


def test_load_vtg_it(tmp_path):
    path = write_json(tmp_path / "it.json", [
        {"video": "youcook2/a.mp4", "source": "Youcook2",
         "QA": [{"q": "Describe the events.", "a": f"{toks('0001.5')} - {toks('0010.0')} seconds, cut onions."}]},
        {"video": "/abs/b.mp4",
         "QA": [{"q": f"What happens at {toks('0002.0', ' ')} seconds?", "a": "A dog barks."},
                {"q": "And then?", "a": "<time>4</time> - <time>6.5</time> seconds, it runs."}]},
    ])
    items = load_vtg_it(path)
    assert items == [
        TrainItem(video="youcook2/a.mp4", source="Youcook2", index=0,
                  turns=[{"q": "Describe the events.",
                          "a": "<time>1.5</time> - <time>10</time> seconds, cut onions."}]),
        TrainItem(video="/abs/b.mp4", source="", index=1,
                  turns=[{"q": "What happens at <time>2</time> seconds?", "a": "A dog barks."},
                         {"q": "And then?", "a": "<time>4</time> - <time>6.5</time> seconds, it runs."}]),
    ]


@pytest.mark.parametrize("item, field, message", [
    ({"QA": [{"q": "x", "a": "y"}]}, "video", "missing"),
    ({"video": 3, "QA": [{"q": "x", "a": "y"}]}, "video", "must be a string"),
    ({"video": "v.mp4", "QA": []}, "QA", "empty list"),
    ({"video": "v.mp4", "QA": "q?"}, "QA", "must be a list"),
    ({"video": "v.mp4", "QA": [{"q": "x"}]}, "QA[0].a", "missing"),
    ({"video": "v.mp4", "QA": [{"q": "x", "a": 5}]}, "QA[0].a", "must be a string"),
    ({"video": "v.mp4", "QA": [{"q": "x", "a": "<time>-3</time> seconds"}]}, "QA[0].a", "negative time"),
    ({"video": "v.mp4", "QA": [{"q": "x", "a": f"{toks('0009.0')} - {toks('0003.0')} seconds"}]},
     "QA[0].a", "reversed window"),
    ({"video": "v.mp4", "QA": [{"q": "x", "a": f"{NAMES['.']} seconds"}]}, "QA[0].a", "do not form numbers"),
    ({"video": "v.mp4", "source": 1, "QA": [{"q": "x", "a": "y"}]}, "source", "must be a string"),
])
def test_vtg_it_malformed_items(tmp_path, item, field, message):
    good = {"video": "ok.mp4", "QA": [{"q": "x", "a": "y"}]}
    path = write_json(tmp_path / "bad.json", [good, item])
    with pytest.raises(AnnotationError) as info:
        load_vtg_it(path)
    text = str(info.value)
    assert str(path) in text and "item 1" in text and f"field '{field}'" in text and message in text
    assert "\n" not in text


def test_vtg_it_item_not_an_object(tmp_path):
    path = write_json(tmp_path / "bad.json", ["v.mp4"])
    with pytest.raises(AnnotationError, match=r"item 0: an item must be a JSON object"):
        load_vtg_it(path)


def test_invalid_json_missing_file_and_wrong_top_level(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"video": "a.mp4",', encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"broken\.json: invalid JSON at line 1"):
        load_vtg_it(broken)
    with pytest.raises(AnnotationError, match=r"nope\.json: annotation file not found"):
        load_vtg_it(tmp_path / "nope.json")
    top = write_json(tmp_path / "top.json", {"video": "a.mp4"})
    with pytest.raises(AnnotationError, match=r"top\.json: top level must be a list"):
        load_vtg_it(top)
    with pytest.raises(AnnotationError, match=r"top\.json: top level has no \"annotations\""):
        load_charades(top)
    with pytest.raises(AnnotationError, match=r"top\.json: top level must be an object keyed by video id"):
        load_activitynet(write_json(tmp_path / "top.json", []))


# ------------------------------------------------------------------------------------------------
# Charades-STA


def charades_file(tmp_path, annotations):
    return write_json(tmp_path / "test.caption_coco_format.json", {"annotations": annotations})


def test_load_charades(tmp_path):
    path = charades_file(tmp_path, [
        {"image_id": "3MSZA.mp4", "caption": "person turns on the light.", "timestamp": [24.3, 30.4], "id": 0},
        {"image_id": "3MSZA.mp4", "caption": "person opens the door", "timestamp": [0, 6.1], "id": 1},
    ])
    assert load_charades(path) == [
        EvalItem(id="0", video="3MSZA.mp4", task="mr", query="person turns on the light.",
                 windows=[(24.3, 30.4)], index=0),
        EvalItem(id="1", video="3MSZA.mp4", task="mr", query="person opens the door",
                 windows=[(0.0, 6.1)], index=1),
    ]


@pytest.mark.parametrize("change, field, message", [
    ({"timestamp": [9.0, 3.0]}, "timestamp", "reversed window"),
    ({"timestamp": [-1.0, 3.0]}, "timestamp", "negative time"),
    ({"timestamp": ["1", 3.0]}, "timestamp", "must be a number"),
    ({"timestamp": [1.0]}, "timestamp", "must be [start, end]"),
    ({"caption": None}, "caption", "must be a string"),
    ({"id": 0}, "id", "duplicate id"),
])
def test_charades_malformed(tmp_path, change, field, message):
    good = {"image_id": "a.mp4", "caption": "q", "timestamp": [1, 2], "id": 0}
    path = charades_file(tmp_path, [good, {**good, "id": 1, **change}])
    with pytest.raises(AnnotationError) as info:
        load_charades(path)
    text = str(info.value)
    assert str(path) in text and "item 1" in text and f"field '{field}'" in text and message in text


def test_charades_missing_field(tmp_path):
    path = charades_file(tmp_path, [{"image_id": "a.mp4", "caption": "q", "id": 0}])
    with pytest.raises(AnnotationError, match=r"item 0, field 'timestamp': missing"):
        load_charades(path)


# ------------------------------------------------------------------------------------------------
# QVHighlights


QVH = {"qid": 9769, "query": "some military patriots takes us through their safety procedures.",
       "duration": 150, "vid": "j7rJstUseKg_360.0_510.0", "relevant_clip_ids": [1, 2, 3],
       "saliency_scores": [[4, 3, 3], [4, 4, 4], [2, 1, 3]], "relevant_windows": [[2, 8]]}


def test_load_qvhighlights_skips_blank_lines(tmp_path):
    other = {**QVH, "qid": 1, "vid": "x.mkv", "relevant_clip_ids": [0], "saliency_scores": [[1, 2, 0]],
             "relevant_windows": [[0, 2], [10, 12]]}
    path = write_jsonl(tmp_path / "highlight_val_release.jsonl", [QVH, "", "   ", other])
    items = load_qvhighlights(path)
    assert items == [
        EvalItem(id="9769", video="j7rJstUseKg_360.0_510.0.mp4", task="hd", query=QVH["query"], duration=150.0,
                 windows=[(2.0, 8.0)], saliency=[[4.0, 3.0, 3.0], [4.0, 4.0, 4.0], [2.0, 1.0, 3.0]],
                 clip_ids=[1, 2, 3], index=0),
        EvalItem(id="1", video="x.mkv", task="hd", query=QVH["query"], duration=150.0,
                 windows=[(0.0, 2.0), (10.0, 12.0)], saliency=[[1.0, 2.0, 0.0]], clip_ids=[0], index=1),
    ]


def test_qvhighlights_bad_line_reports_line_number(tmp_path):
    path = write_jsonl(tmp_path / "gt.jsonl", [QVH, "", "{not json"])
    with pytest.raises(AnnotationError, match=r"gt\.jsonl: line 3: invalid JSON"):
        load_qvhighlights(path)


@pytest.mark.parametrize("change, field, message", [
    ({"relevant_windows": [[8, 2]]}, "relevant_windows[0]", "reversed window"),
    ({"relevant_clip_ids": [1, -2, 3]}, "relevant_clip_ids[1]", "integer >= 0"),
    ({"saliency_scores": [[4, 3, 3]]}, "saliency_scores", "1 score lists but 3 relevant clips"),
    ({"duration": "150"}, "duration", "must be a number"),
    ({"vid": None}, "vid", "must be a string"),
])
def test_qvhighlights_malformed(tmp_path, change, field, message):
    path = write_jsonl(tmp_path / "gt.jsonl", [QVH, "", {**QVH, "qid": 2, **change}])
    with pytest.raises(AnnotationError) as info:
        load_qvhighlights(path)
    text = str(info.value)
    assert str(path) in text and "line 3 (item 1)" in text and f"field '{field}'" in text and message in text


# ------------------------------------------------------------------------------------------------
# YouCook2 and ActivityNet


YC2 = {"image_id": "GLd3aX16zBg.mp4", "caption": "<time_token_1> unused", "duration": 241.6, "id": 3,
       "pure_cap": "spread margarine on two slices of white bread. place a slice of cheese on the bread.  ",
       "segments": [[90, 102], [114, 127.5]]}


def test_load_youcook2(tmp_path):
    path = write_json(tmp_path / "val.caption_coco_format.json", {"annotations": [YC2]})
    assert load_youcook2(path) == [EvalItem(
        id="GLd3aX16zBg", video="GLd3aX16zBg.mp4", task="dvc", duration=241.6,
        windows=[(90.0, 102.0), (114.0, 127.5)],
        captions=["spread margarine on two slices of white bread.", "place a slice of cheese on the bread."],
        index=0)]


def test_youcook2_caption_count_must_match(tmp_path):
    path = write_json(tmp_path / "yc.json", {"annotations": [{**YC2, "segments": [[1, 2]]}]})
    with pytest.raises(AnnotationError, match=r"yc\.json: item 0, field 'pure_cap': 2 sentences but 1 segments"):
        load_youcook2(path)


def test_load_activitynet(tmp_path):
    path = write_json(tmp_path / "val_2.json", {
        "v_abc": {"duration": 82.73, "timestamps": [[0, 20.5], [18.2, 82.73]],
                  "sentences": [" A man is standing.", "He plays the bagpipes."]},
        "v_def.webm": {"duration": 10, "timestamps": [[0, 20]], "sentences": ["Beyond the end is fine."]},
    })
    assert load_activitynet(path) == [
        EvalItem(id="v_abc", video="v_abc.mp4", task="dvc", duration=82.73, windows=[(0.0, 20.5), (18.2, 82.73)],
                 captions=["A man is standing.", "He plays the bagpipes."], index=0),
        EvalItem(id="v_def.webm", video="v_def.webm", task="dvc", duration=10.0, windows=[(0.0, 20.0)],
                 captions=["Beyond the end is fine."], index=1),
    ]


@pytest.mark.parametrize("change, field, message", [
    ({"timestamps": [[5, 1]]}, "timestamps[0]", "reversed window"),
    ({"timestamps": [[-5, 1]]}, "timestamps[0]", "negative time"),
    ({"sentences": ["a", "b"]}, "sentences", "2 sentences but 1 timestamps"),
    ({"duration": -3}, "duration", "must be > 0"),
    ({"timestamps": []}, "timestamps", "empty list"),
])
def test_activitynet_malformed(tmp_path, change, field, message):
    good = {"duration": 10, "timestamps": [[0, 1]], "sentences": ["a"]}
    path = write_json(tmp_path / "anet.json", {"v_a": good, "v_b": {**good, **change}})
    with pytest.raises(AnnotationError) as info:
        load_activitynet(path)
    text = str(info.value)
    assert str(path) in text and "item 1" in text and f"field '{field}'" in text and message in text


# ------------------------------------------------------------------------------------------------
# DiDeMo


def test_load_didemo_consensus(tmp_path):
    path = write_json(tmp_path / "didemo.json", [
        {"video": "a.mov", "description": "the dog jumps", "annotation_id": 7,
         "times": [[1, 1], [1, 2], [1, 1], [0, 1]]},                      # most common: [1, 1]
        {"video": "b.mp4", "description": "the car stops", "times": [[0, 1], [2, 3], [4, 5], [3, 3]]},
    ])
    assert load_didemo(path) == [
        EvalItem(id="7", video="a.mov", task="mr", query="the dog jumps", windows=[(5.0, 10.0)], index=0),
        # no annotation given twice: lower median of starts [0,2,3,4] -> 2, ends [1,3,3,5] -> 3
        EvalItem(id="1", video="b.mp4", task="mr", query="the car stops", windows=[(10.0, 20.0)], index=1),
    ]


def test_didemo_reversed_segment(tmp_path):
    path = write_json(tmp_path / "didemo.json", [{"video": "a.mov", "description": "x", "times": [[3, 1]]}])
    with pytest.raises(AnnotationError, match=r"item 0, field 'times\[0\]': reversed window"):
        load_didemo(path)


# ------------------------------------------------------------------------------------------------
# load_eval, detection, resolve_video


def test_load_eval_detects_every_format(tmp_path):
    files = {
        "charades": write_json(tmp_path / "c.json", {"annotations": [
            {"image_id": "a.mp4", "caption": "q", "timestamp": [1, 2], "id": 0}]}),
        "youcook2": write_json(tmp_path / "y.json", {"annotations": [YC2]}),
        "qvhighlights": write_jsonl(tmp_path / "q.txt", [QVH, {**QVH, "qid": 2}]),
        "activitynet": write_json(tmp_path / "a.json", {"v_a": {"duration": 3, "timestamps": [[0, 1]],
                                                                 "sentences": ["a"]}}),
        "didemo": write_json(tmp_path / "d.json", [{"video": "a.mov", "description": "x", "times": [[0, 0]]}]),
    }
    assert set(files) == set(EVAL_FORMATS)
    for fmt, path in files.items():
        assert detect_format(path) == fmt
        assert load_eval(path) == load_eval(path, fmt)
    single = write_jsonl(tmp_path / "one.json", [QVH])
    assert detect_format(single) == "qvhighlights"
    assert [i.id for i in load_eval(single)] == ["9769"]


def test_load_eval_errors(tmp_path):
    path = write_json(tmp_path / "odd.json", {"videos": [1, 2]})
    with pytest.raises(AnnotationError, match=r"odd\.json: cannot detect the annotation format; pass fmt="):
        load_eval(path)
    with pytest.raises(VTGError, match=r"unknown annotation format 'coco'; available: charades, qvhighlights"):
        load_eval(path, "coco")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json at all\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"garbage\.json: invalid JSON"):
        load_eval(garbage)


def test_resolve_video(tmp_path, monkeypatch):
    absolute = tmp_path / "v.mp4"
    assert resolve_video(str(absolute), "/elsewhere") == absolute
    assert resolve_video("sub/v.mp4", tmp_path) == tmp_path / "sub" / "v.mp4"
    assert resolve_video("sub/v.mp4", str(tmp_path)) == tmp_path / "sub" / "v.mp4"
    monkeypatch.chdir(tmp_path)
    assert resolve_video("v.mp4", None) == Path.cwd() / "v.mp4"
