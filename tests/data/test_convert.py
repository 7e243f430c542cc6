"""Conversion of source data sets into VTG-IT training files."""

import json
import re
from pathlib import Path

import pytest

from vtgcore.data.format_convert import SOURCES, convert
from vtgcore.data.formats import load_vtg_it, markers_to_seconds
from vtgcore.data.prompts import load_templates
from vtgcore.errors import AnnotationError, VTGError

WINDOW = re.compile(r"<time>([^<]*)</time> - <time>([^<]*)</time>")
SCORED = re.compile(r"<time>([^<]*)</time> seconds, significance score: (\d+\.\d)")


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def windows(text):
    return [(float(s), float(e)) for s, e in WINDOW.findall(text)]


def charades(tmp_path):
    return write(tmp_path / "charades.json", {"annotations": [
        {"image_id": "AAA.mp4", "caption": "person opens a door.", "timestamp": [0.0, 6.1], "id": 0},
        {"image_id": "BBB.mp4", "caption": "person sits down", "timestamp": [3.44, 9.0], "id": 1},
        {"image_id": "AAA.mp4", "caption": "person turns on the light", "timestamp": [24.3, 30.4], "id": 2},
    ]})


def qvhighlights(tmp_path):
    rows = [
        {"qid": 5, "query": "a chef chops onions", "duration": 150, "vid": "vidA_60.0_210.0",
         "relevant_clip_ids": [3, 4], "saliency_scores": [[4, 3, 3], [2, 2, 1]], "relevant_windows": [[6, 10]]},
        {"qid": 6, "query": "a dog runs", "duration": 150, "vid": "vidB_0.0_150.0",
         "relevant_clip_ids": [0], "saliency_scores": [[1, 0, 0]], "relevant_windows": [[0, 2]]},
    ]
    path = tmp_path / "qvh.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def youcook2(tmp_path):
    return write(tmp_path / "yc2.json", {"annotations": [
        {"image_id": "GLd.mp4", "duration": 241.6, "id": 0, "segments": [[90, 102], [114, 127.5]],
         "pure_cap": "spread margarine on bread. place cheese on the bread."}]})


def activitynet(tmp_path):
    return write(tmp_path / "anet.json", {
        "v_a": {"duration": 82.7, "timestamps": [[0, 20.56], [18.2, 82.7]], "sentences": ["A man stands.", "He plays"]},
        "v_b": {"duration": 30, "timestamps": [[1, 2]], "sentences": ["Café owner waves."]}})


def didemo(tmp_path):
    return write(tmp_path / "didemo.json", [
        {"video": "a.mov", "description": "the dog jumps", "times": [[1, 1], [1, 2], [1, 1], [0, 1]]},
        {"video": "b.mov", "description": "the car stops", "times": [[2, 3], [2, 3], [0, 0], [5, 5]]},
        {"video": "a.mov", "description": "the dog sits", "times": [[4, 5]]},
    ])


MAKERS = {"charades": charades, "qvhighlights": qvhighlights, "youcook2": youcook2,
          "activitynet": activitynet, "didemo": didemo}


def test_every_source_is_tested():
    assert set(MAKERS) == set(SOURCES)


def test_charades_groups_queries_per_video(tmp_path):
    out = tmp_path / "out" / "charades_it.json"
    assert convert("charades", charades(tmp_path), out) == 2
    items = load_vtg_it(out)
    assert [(i.video, i.source) for i in items] == [("AAA.mp4", "charades"), ("BBB.mp4", "charades")]
    assert [[windows(t["a"]) for t in i.turns] for i in items] == [[[(0.0, 6.1)], [(24.3, 30.4)]], [[(3.4, 9.0)]]]
    assert "'person opens a door'" in items[0].turns[0]["q"]
    assert "'person turns on the light'" in items[0].turns[1]["q"]


def test_didemo_windows_from_segments(tmp_path):
    out = tmp_path / "didemo_it.json"
    assert convert("didemo", didemo(tmp_path), out) == 2
    items = load_vtg_it(out)
    assert [(i.video, [windows(t["a"]) for t in i.turns]) for i in items] == [
        ("a.mov", [[(5.0, 10.0)], [(20.0, 30.0)]]),
        ("b.mov", [[(10.0, 20.0)]]),
    ]


def test_qvhighlights_highlight_seconds_and_mean_scores(tmp_path):
    out = tmp_path / "qvh_it.json"
    assert convert("qvhighlights", qvhighlights(tmp_path), out) == 2
    items = load_vtg_it(out)
    assert [i.video for i in items] == ["vidA_60.0_210.0.mp4", "vidB_0.0_150.0.mp4"]
    assert [[(float(t), float(s)) for t, s in SCORED.findall(i.turns[0]["a"])] for i in items] == [
        [(6.0, 3.3), (8.0, 1.7)], [(0.0, 0.3)]]
    assert "a chef chops onions" in items[0].turns[0]["q"]


@pytest.mark.parametrize("source, expected", [
    ("youcook2", [("GLd.mp4", [(90.0, 102.0), (114.0, 127.5)],
                   ["spread margarine on bread.", "place cheese on the bread."])]),
    ("activitynet", [("v_a.mp4", [(0.0, 20.6), (18.2, 82.7)], ["A man stands.", "He plays."]),
                     ("v_b.mp4", [(1.0, 2.0)], ["Café owner waves."])]),
])
def test_dvc_sources(tmp_path, source, expected):
    out = tmp_path / f"{source}_it.json"
    assert convert(source, MAKERS[source](tmp_path), out) == len(expected)
    items = load_vtg_it(out)
    got = []
    for item in items:
        answer = item.turns[0]["a"]
        captions = [c.strip() for c in re.split(r"<time>[^<]*</time> - <time>[^<]*</time> seconds, ", answer) if c]
        got.append((item.video, windows(answer), captions))
        assert item.turns[0]["q"] in load_templates("dvc")["train"]
    assert got == expected
    assert "Café" in out.read_text(encoding="utf-8") or source == "youcook2"


@pytest.mark.parametrize("source", SOURCES)
def test_same_seed_same_bytes_and_answers_carry_markers(tmp_path, source):
    src = MAKERS[source](tmp_path)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    convert(source, src, a, seed=7)
    convert(source, [src], b, seed=7)
    assert a.read_bytes() == b.read_bytes()
    data = json.loads(a.read_text(encoding="utf-8"))
    assert all(list(item) == ["video", "QA", "source"] for item in data)
    assert all(markers_to_seconds(turn["a"]) for item in data for turn in item["QA"])
    assert not list(tmp_path.glob(".a.json.*"))  # no temporary file left


def test_different_seed_different_prompts(tmp_path):
    src = write(tmp_path / "many.json", {"annotations": [
        {"image_id": f"V{i}.mp4", "caption": f"query {i}", "timestamp": [i, i + 1], "id": i} for i in range(20)]})
    prompts = []
    for seed in (0, 1):
        out = tmp_path / f"seed{seed}.json"
        convert("charades", src, out, seed=seed)
        items = load_vtg_it(out)
        prompts.append([t["q"] for i in items for t in i.turns])
        assert [windows(t["a"]) for i in items for t in i.turns] == [[(float(i), float(i + 1))] for i in range(20)]
    assert prompts[0] != prompts[1]


def test_several_source_files_are_concatenated(tmp_path):
    first = charades(tmp_path)
    second = write(tmp_path / "more.json", {"annotations": [
        {"image_id": "CCC.mp4", "caption": "q", "timestamp": [1, 2], "id": 0}]})
    assert convert("charades", [first, second], tmp_path / "out.json") == 3


def test_errors(tmp_path):
    with pytest.raises(VTGError, match=r"unknown conversion source 'tvsum'; available: charades, didemo"):
        convert("tvsum", tmp_path / "x.json", tmp_path / "out.json")
    with pytest.raises(AnnotationError, match=r"missing\.json: annotation file not found"):
        convert("charades", tmp_path / "missing.json", tmp_path / "out.json")
    empty = write(tmp_path / "empty.json", {"annotations": []})
    with pytest.raises(AnnotationError, match=r"empty\.json: no items to convert"):
        convert("charades", empty, tmp_path / "out.json")
    with pytest.raises(VTGError, match="unknown prompt version 'v0'"):
        convert("charades", charades(tmp_path), tmp_path / "out.json", prompt_version="v0")
    assert not (tmp_path / "out.json").exists()
