"""VTG-Synth: determinism, decodable videos, ground truth that matches the pixels, loadable files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from vtgcore.data.synth import COLOURS, SHAPES, SOURCE_PREFIX, generate_synth
from vtgcore.vocab import TASKS

SMALL = dict(n_train=4, n_val=3, min_duration=8.0, max_duration=16.0)
COLOUR_TOLERANCE = 30  # max per-channel distance of a decoded pixel to the reference colour


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _decode(path: Path) -> tuple[np.ndarray, float, float]:
    """Frames ``(F, H, W, 3)`` int32, container duration in seconds, stream frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)]).astype(np.int32)
        duration = container.duration / 1e6
    return frames, duration, rate


def _meta(root: Path) -> dict:
    return json.loads((root / "meta.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict, list]:
    root = tmp_path_factory.mktemp("synth") / "a"
    calls: list[tuple[int, int]] = []
    summary = generate_synth(root, seed=0, progress=lambda done, total: calls.append((done, total)), **SMALL)
    return root, summary, calls


def test_same_seed_gives_identical_files(small, tmp_path):
    root, _, _ = small
    again = generate_synth(tmp_path / "b", seed=0, **SMALL)
    first, second = _files(root), _files(Path(again["out_dir"]))
    assert sorted(first) == sorted(second)
    assert len([name for name in first if name.endswith(".mp4")]) == SMALL["n_train"] + SMALL["n_val"]
    differing = [name for name in first if first[name] != second[name]]
    assert differing == []
    assert not [name for name in first if Path(name).name.startswith(".")], "temp files left behind"


def test_identical_in_a_fresh_process_with_worker_processes(small, tmp_path):
    root, _, _ = small
    code = ("import sys; from vtgcore.data.synth import generate_synth; "
            f"generate_synth(sys.argv[1], seed=0, workers=2, **{SMALL!r})")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "c")], check=True, env=env, timeout=120)
    assert _files(root) == _files(tmp_path / "c")


def test_different_seed_differs(small, tmp_path):
    root, _, _ = small
    generate_synth(tmp_path / "d", seed=1, **SMALL)
    first, second = _files(root), _files(tmp_path / "d")
    assert first["videos/train_00000.mp4"] != second["videos/train_00000.mp4"]
    assert first["train.json"] != second["train.json"]
    assert first["val/charades.json"] != second["val/charades.json"]


def test_summary_and_progress(small):
    root, summary, calls = small
    total = SMALL["n_train"] + SMALL["n_val"]
    assert calls == [(i, total) for i in range(1, total + 1)]
    assert summary["videos"] == {"train": SMALL["n_train"], "val": SMALL["n_val"]}
    assert summary["train_samples"]["dvc"] == summary["train_samples"]["hd"] == SMALL["n_train"]
    assert summary["train_samples"]["mr"] >= SMALL["n_train"]
    assert summary["val_queries"]["youcook2"] == SMALL["n_val"]
    meta = _meta(root)
    assert meta["seed"] == 0 and meta["generator"]
    assert summary["total_seconds"] == pytest.approx(sum(v["duration"] for v in meta["videos"]), abs=1e-3)
    assert summary["wall_s"] >= 0


def test_videos_decode_with_expected_size_and_duration(small):
    root, _, _ = small
    for video in _meta(root)["videos"]:
        frames, duration, rate = _decode(root / video["video"])
        assert frames.shape[1:] == (64, 64, 3)
        assert abs(len(frames) - video["num_frames"]) <= 1
        assert rate == pytest.approx(4.0)
        assert SMALL["min_duration"] <= video["duration"] <= SMALL["max_duration"]
        assert duration == pytest.approx(video["duration"], abs=1 / 4 + 1e-6)


def test_ground_truth_is_consistent(small):
    root, _, _ = small
    meta = _meta(root)
    durations = {v["video"]: v["duration"] for v in meta["videos"]}
    for video in meta["videos"]:
        combos = [(e["shape"], e["colour"]) for e in video["events"]]
        assert 1 <= len(combos) <= 4 and len(set(combos)) == len(combos)
        for event in video["events"]:
            assert 0 <= event["start"] < event["end"] <= video["duration"]
            assert event["start"] * 4 == pytest.approx(event["start_frame"])
    charades = json.loads((root / "val/charades.json").read_text(encoding="utf-8"))["annotations"]
    assert charades and [a["id"] for a in charades] == list(range(len(charades)))
    for ann in charades:
        start, end = ann["timestamp"]
        assert 0 <= start < end <= durations[ann["image_id"]]
    for ann in json.loads((root / "val/youcook2.json").read_text(encoding="utf-8"))["annotations"]:
        sentences = ann["pure_cap"].split(". ")
        assert len(sentences) == len(ann["segments"]) and ann["pure_cap"].endswith(".")
        assert [s for s, _ in ann["segments"]] == sorted(s for s, _ in ann["segments"])
        assert all(0 <= s < e <= ann["duration"] for s, e in ann["segments"])
    lines = (root / "val/qvhighlights.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines
    for line in lines:
        row = json.loads(line)
        assert list(row) == ["qid", "query", "duration", "vid", "relevant_clip_ids", "saliency_scores",
                             "relevant_windows"]
        clips = int(row["duration"] / 2)
        assert row["relevant_clip_ids"] and all(0 <= c < clips for c in row["relevant_clip_ids"])
        assert len(row["saliency_scores"]) == len(row["relevant_clip_ids"])
        assert all(len(s) == 3 and all(isinstance(x, int) and 0 <= x <= 4 for x in s)
                   for s in row["saliency_scores"])
        for start, end in row["relevant_windows"]:
            assert start % 2 == 0 and end % 2 == 0 and 0 <= start < end <= row["duration"]


def _near(frames: np.ndarray, colour: str) -> np.ndarray:
    reference = np.array(COLOURS[colour])
    return (np.abs(frames - reference).max(axis=-1) <= COLOUR_TOLERANCE).sum(axis=(1, 2))


def _parse_query(query: str) -> tuple[str, str]:
    words = query.split()
    assert words[0] == "the" and words[1] in COLOURS and words[2] in SHAPES, query
    return words[1], words[2]


def _mr_ground_truth(root: Path) -> list[tuple[str, str, list[float]]]:
    """``(video, query, window)`` of the validation queries and of every training event."""
    charades = json.loads((root / "val/charades.json").read_text(encoding="utf-8"))["annotations"]
    truth = [(a["image_id"], a["caption"], a["timestamp"]) for a in charades]
    for video in _meta(root)["videos"]:
        if video["split"] == "train":
            truth += [(video["video"], e["query"], [e["start"], e["end"]]) for e in video["events"]]
    return truth


def test_query_shape_is_visible_inside_its_window_only(small):
    root, _, _ = small
    meta = {v["video"]: v for v in _meta(root)["videos"]}
    checked = 0
    for name, query, (start, end) in _mr_ground_truth(root):
        colour, shape = _parse_query(query)
        video = meta[name]
        events = [e for e in video["events"] if (e["colour"], e["shape"]) == (colour, shape)]
        assert len(events) == 1, "the query must name exactly one event"
        assert [events[0]["start"], events[0]["end"]] == [start, end]
        if [e["colour"] for e in video["events"]].count(colour) > 1:
            continue  # another shape of the same colour: pixel colours cannot tell them apart
        frames, _, _ = _decode(root / name)
        near = _near(frames, colour)
        first, stop = round(start * 4), round(end * 4)
        inside = near[first:stop]
        outside = np.concatenate([near[:max(0, first - 1)], near[stop + 1:]])
        assert inside.min() >= 4 and np.median(inside) >= 8, (name, query, inside)
        assert outside.size == 0 or outside.max() <= 2, (name, query, outside)
        checked += 1
    assert checked >= 5


def test_files_load_with_the_format_loaders(small):
    formats = pytest.importorskip("vtgcore.data.formats")
    root, summary, _ = small
    train = formats.load_vtg_it(root / "train.json")
    assert len(train) == sum(summary["train_samples"].values())
    assert {item.source for item in train} == {SOURCE_PREFIX + task for task in TASKS}
    assert all(formats.markers_to_seconds(item.turns[0]["a"]) for item in train)
    charades = formats.load_charades(root / "val/charades.json")
    qvh = formats.load_qvhighlights(root / "val/qvhighlights.jsonl")
    youcook = formats.load_youcook2(root / "val/youcook2.json")
    assert len(charades) == summary["val_queries"]["charades"]
    assert len(qvh) == summary["val_queries"]["qvhighlights"]
    assert len(youcook) == SMALL["n_val"]
    for item in [*train, *charades, *qvh, *youcook]:
        assert formats.resolve_video(item.video, root).is_file(), item.video



def test_training_videos_ground_truth_in_the_evaluation_formats(small):
    """train_gt/ holds the training videos' ground truth as val/ holds the held-out ones': one MR
    query per event whose window is the one the VTG-IT MR answers give (RL post-training reads it)."""
    formats = pytest.importorskip("vtgcore.data.formats")
    root, summary, _ = small
    charades = formats.load_charades(root / "train_gt/charades.json")
    youcook = formats.load_youcook2(root / "train_gt/youcook2.json")
    qvh = formats.load_qvhighlights(root / "train_gt/qvhighlights.jsonl")
    assert len(charades) == summary["train_queries"]["charades"] == summary["train_samples"]["mr"]
    assert len(youcook) == summary["train_queries"]["youcook2"] == SMALL["n_train"]
    assert len(qvh) == summary["train_queries"]["qvhighlights"]
    assert all(item.video.startswith("videos/train_") for item in [*charades, *youcook, *qvh])
    answers = sorted((item.video, tuple(formats.markers_to_seconds(item.turns[0]["a"])))
                     for item in formats.load_vtg_it(root / "train.json") if item.source == SOURCE_PREFIX + "mr")
    truth = sorted((item.video, tuple(item.windows[0])) for item in charades)
    assert [video for video, _ in truth] == [video for video, _ in answers]
    for (_, exact), (_, written) in zip(truth, answers):  # answers write one decimal (dddd.d)
        assert exact == pytest.approx(written, abs=0.05 + 1e-9)


def test_train_items_cover_tasks_and_match_events(small):
    root, _, _ = small
    meta = {v["video"]: v for v in _meta(root)["videos"]}
    items = json.loads((root / "train.json").read_text(encoding="utf-8"))
    assert {item["source"] for item in items} == {SOURCE_PREFIX + task for task in TASKS}
    for item in items:
        assert list(item) == ["video", "QA", "source"]
        assert item["video"].startswith("videos/train_")
        assert "<time>" in item["QA"][0]["a"]
        if item["source"] == SOURCE_PREFIX + "mr":
            queries = [e["query"] for e in meta[item["video"]]["events"] if e["query"] in item["QA"][0]["q"]]
            assert len(queries) == 1


def test_query_text_does_not_give_away_the_time(tmp_path):
    generate_synth(tmp_path, seed=3, n_train=40, n_val=0, size=32, min_duration=8.0, max_duration=20.0)
    windows: dict[str, set[tuple[float, float]]] = defaultdict(set)
    for video in _meta(tmp_path)["videos"]:
        for event in video["events"]:
            windows[event["query"]].add((event["start"], event["end"]))
    repeated = [query for query, spans in windows.items() if len(spans) > 1]
    assert repeated, "some query wording must occur with different windows"


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_train=-1), "n_train"),
    (dict(n_val=-2), "n_val"),
    (dict(min_duration=30.0, max_duration=10.0), "min_duration"),
    (dict(size=8), "size"),
    (dict(size=33), "size"),
    (dict(fps=0.0), "fps"),
])
def test_invalid_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_synth(tmp_path, **kwargs)
    assert not (tmp_path / "train.json").exists()


@pytest.mark.slow
def test_default_set_is_fast(tmp_path):
    summary = generate_synth(tmp_path)
    assert summary["videos"] == {"train": 200, "val": 50}
    assert all(summary["train_samples"][task] >= 200 for task in TASKS)
    assert summary["wall_s"] < 60
