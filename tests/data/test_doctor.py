"""The data doctor and `vtg data check`: every kind of problem is found, reported and fails the run."""

import json

import pytest

from vtgcore.apps import cli
from vtgcore.data.doctor import check
from vtgcore.data.pattern_videos import write_corrupt_files, write_test_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    write_test_video(root / "good.mp4", duration=10.0, fps=4.0)
    write_test_video(root / "other.mp4", duration=6.0, fps=4.0)
    broken = write_corrupt_files(root)
    return root, {k: v.name for k, v in broken.items()}


def charades(path, rows):
    path.write_text(json.dumps({"annotations": rows}))
    return path


def row(i, video, s, e):
    return {"image_id": video, "caption": f"query {i}", "timestamp": [s, e], "id": i}


def test_clean_file_passes(videos, tmp_path, capsys):
    root, _ = videos
    ann = charades(tmp_path / "clean.json", [row(0, "good.mp4", 1, 4), row(1, "other.mp4", 0, 5.8)])
    report = check(ann, video_root=root)
    assert report.ok and report.items == 2 and report.videos == 2 and report.format == "charades"
    assert cli.main(["data", "check", str(ann), "--video-root", str(root)]) == 0
    assert capsys.readouterr().out.strip().endswith("clean")


@pytest.mark.parametrize("key", ["missing", "zero_byte", "truncated", "truncated_midway", "text_as_mp4", "audio_only"])
def test_each_broken_video_is_reported(videos, tmp_path, key):
    root, broken = videos
    ann = charades(tmp_path / "a.json", [row(0, "good.mp4", 1, 2), row(1, broken[key], 1, 2)])
    report = check(ann, video_root=root)
    kinds = [p.kind for p in report.problems]
    assert kinds == ["missing_video" if key == "missing" else "unreadable_video"], report.to_text()
    assert broken[key] in report.problems[0].message and "\n" not in report.problems[0].message


def test_all_problem_kinds_in_one_file(videos, tmp_path, capsys):
    root, broken = videos
    rows = [row(0, "good.mp4", 1, 2), row(1, "good.mp4", 3, 2),  # reversed window -> malformed
            row(2, "good.mp4", 2, 40), row(0, "other.mp4", 1, 2),  # past the 10 s end; duplicate id 0
            {"image_id": "other.mp4", "caption": "no times", "id": 9}, row(3, broken["text_as_mp4"], 0, 1)]
    ann = charades(tmp_path / "all.json", rows)
    report = check(ann, video_root=root, workers=2)
    counts = report.counts()
    assert counts == {"malformed": 2, "duplicate_id": 1, "missing_video": 0, "unreadable_video": 1, "out_of_range": 1}
    malformed = [p for p in report.problems if p.kind == "malformed"]
    assert [(p.index, p.field) for p in malformed] == [(1, "timestamp"), (4, "timestamp")]
    out_of_range = next(p for p in report.problems if p.kind == "out_of_range")
    assert out_of_range.index == 2 and "40 s is past the end" in out_of_range.message
    assert report.items == 6
    assert cli.main(["data", "check", str(ann), "--video-root", str(root), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["counts"] == counts and len(data["problems"]) == 5


def test_vtg_it_times_checked_against_duration(videos, tmp_path):
    root, _ = videos
    ann = tmp_path / "train.json"
    items = [{"video": "good.mp4", "QA": [{"q": "when?", "a": "<time>2</time> - <time>30</time> seconds."}]},
             {"video": "other.mp4", "QA": []}]
    ann.write_text(json.dumps(items))
    report = check(ann, video_root=root)
    assert report.format == "vtg-it"
    assert [(p.kind, p.index, p.field) for p in report.problems] == [("malformed", 1, "QA"), ("out_of_range", 0, "QA[0].a")]


def test_unreadable_annotation_file_is_a_clear_cli_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli.main(["data", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vtg: error:") and "bad.json" in err and "Traceback" not in err
    assert cli.main(["data", "check", str(tmp_path / "absent.json")]) == 1


def test_synth_ground_truth_is_clean(tmp_path):
    from vtgcore.data.synth import generate_synth

    generate_synth(tmp_path, seed=1, n_train=3, n_val=3, max_duration=16.0)
    for name, fmt in [("train.json", "vtg-it"), ("val/charades.json", "charades"),
                      ("val/qvhighlights.jsonl", "qvhighlights"), ("val/youcook2.json", "youcook2")]:
        report = check(tmp_path / name, video_root=tmp_path)
        assert report.ok and report.format == fmt and report.items > 0, report.to_text()
