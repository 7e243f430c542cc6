"""Pictures: the data handed to the drawing code, valid PNGs, `vtg plot` on run and sweep folders."""

import json
import statistics

import pytest
from PIL import Image

from vtgcore.apps import cli, plots
from vtgcore.apps.sweep import summarize, write_results


def _png(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 50 and image.size[1] > 50
        image.load()


def test_timeline_data_counts():
    data = plots.timeline_data(30.0, [(1, 5), (10, 20), (22, 29)], [(2, 6), None, (21.5, 31)],
                               saliency=[0.1, 0.5, 0.9, 0.0, 0.3], frame_times=[0, 7.5, 15, 22.5],
                               labels=["a", "b", "c"])
    assert data["gt"] == [(1.0, 5.0, 0), (10.0, 20.0, 1), (22.0, 29.0, 2)]
    assert data["pred"] == [(2.0, 6.0, 0), (21.5, 31.0, 2)]  # query 1 has no prediction
    assert data["missing"] == [1]
    assert data["bars"]["heights"] == [0.1, 0.5, 0.9, 0.0, 0.3]
    assert data["bars"]["left"] == [0.0, 2.0, 4.0, 6.0, 8.0] and data["bars"]["width"] == 2.0
    assert data["ticks"] == [0.0, 7.5, 15.0, 22.5]
    assert data["duration"] == 30.0 and data["xmax"] == 31.0  # a prediction past the end stays visible
    assert data["labels"] == ["a", "b", "c"]


def test_timeline_data_without_optional_parts():
    data = plots.timeline_data(None, [(3, 4)], [])
    assert data["bars"]["heights"] == [] and data["ticks"] == [] and data["pred"] == []
    assert data["missing"] == [] and data["xmax"] == 4.0


def test_timeline_writes_png(tmp_path):
    path = plots.timeline("video_1", 12.0, [(1, 3), (5, 9)], [(1.5, 3.5), (6, 10)], saliency=[0, 1, 2, 3, 4, 2],
                          frame_times=[0, 3, 6, 9], path=tmp_path / "t" / "video_1.png", labels=["q1", "q2"])
    assert path == tmp_path / "t" / "video_1.png"
    _png(path)
    import matplotlib.image

    assert matplotlib.image.imread(path).ndim == 3


def test_timeline_hands_the_prepared_data_to_the_drawing(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(plots, "draw_timeline", lambda data, path, title="": seen.update(data=data, title=title) or path)
    plots.timeline("v", 10.0, [(1, 2)], [(1, 3)], [0.5] * 5, [0, 5], tmp_path / "x.png")
    assert seen["title"] == "v"
    assert len(seen["data"]["gt"]) == 1 and len(seen["data"]["pred"]) == 1
    assert len(seen["data"]["bars"]["heights"]) == 5 and seen["data"]["ticks"] == [0.0, 5.0]


def test_timeline_needs_a_path():
    with pytest.raises(TypeError):
        plots.timeline("v", 10.0, [(1, 2)], [(1, 3)])


ROWS = [
    {"variant": "a", "seed": 0, "status": "finished", "moment_retrieval/R1@0.5": 30.0, "moment_retrieval/mIoU": 20.0},
    {"variant": "a", "seed": 1, "status": "finished", "moment_retrieval/R1@0.5": 34.0, "moment_retrieval/mIoU": 22.0},
    {"variant": "a", "seed": 2, "status": "finished", "moment_retrieval/R1@0.5": 41.0, "moment_retrieval/mIoU": None},
    {"variant": "b", "seed": 0, "status": "finished", "moment_retrieval/R1@0.5": 10.0, "moment_retrieval/mIoU": 5.0},
    {"variant": "b", "seed": 1, "status": "failed", "error": "boom"},
    {"variant": "c", "seed": 0, "status": "pending"},
]


def test_sweep_chart_data_mean_and_std_by_hand():
    data = plots.sweep_chart_data(ROWS, "moment_retrieval/R1@0.5")
    assert data["variants"] == ["a", "b"]  # c has no finished seed
    mean_a = (30.0 + 34.0 + 41.0) / 3
    std_a = ((30.0 - mean_a) ** 2 + (34.0 - mean_a) ** 2 + (41.0 - mean_a) ** 2) ** 0.5 / (3 - 1) ** 0.5
    assert data["means"] == pytest.approx([mean_a, 10.0])
    assert data["errors"] == pytest.approx([std_a, 0.0])  # one seed: no spread, drawn as 0
    assert std_a == pytest.approx(statistics.stdev([30.0, 34.0, 41.0]))
    assert data["n"] == [3, 1]
    miou = plots.sweep_chart_data(ROWS, "moment_retrieval/mIoU")
    assert miou["n"] == [2, 1] and miou["means"] == pytest.approx([21.0, 5.0])  # the missing value is left out


def test_summary_from_results_json_matches_rows(tmp_path):
    results = {"sweep": "s.yaml", "base": "b.yaml", "seeds": [0, 1, 2], "description": "",
               "metrics": ["moment_retrieval/R1@0.5", "moment_retrieval/mIoU"], "rows": ROWS,
               "summary": summarize(ROWS), "baselines": {"moment_retrieval/R1@0.5": 25.0}}
    data = plots.sweep_chart_data(results, "moment_retrieval/R1@0.5")
    assert data["baseline"] == 25.0 and data["variants"] == ["a", "b"]
    assert results["summary"]["a"]["moment_retrieval/R1@0.5"]["std"] == pytest.approx(statistics.stdev([30, 34, 41]))
    assert results["summary"]["b"]["moment_retrieval/R1@0.5"]["std"] is None
    assert results["summary"]["c"] == {}
    path = plots.sweep_chart(results, "moment_retrieval/R1@0.5", tmp_path / "chart.png")
    _png(path)
    # vtg plot SWEEP_DIR: one chart per metric into SWEEP_DIR/plots
    write_results(results, tmp_path / "sweep")
    assert cli.main(["plot", str(tmp_path / "sweep")]) == 0
    charts = sorted(p.name for p in (tmp_path / "sweep" / "plots").glob("*.png"))
    assert charts == ["moment_retrieval__R1@0.5.png", "moment_retrieval__mIoU.png"]
    for chart in charts:
        _png(tmp_path / "sweep" / "plots" / chart)
    assert cli.main(["plot", str(tmp_path / "sweep"), "--metric", "highlights/Good-mAP"]) == 1


def _fake_run(tmp_path, video_root):
    """A run folder as main_job.run leaves it (eval files only) over a 2-video MR set."""
    gt = tmp_path / "gt" / "charades.json"
    gt.parent.mkdir(parents=True)
    gt.write_text(json.dumps({"annotations": [
        {"id": 0, "image_id": "val_00000", "caption": "the red circle moves left", "timestamp": [1.0, 4.0]},
        {"id": 1, "image_id": "val_00000", "caption": "the blue square grows", "timestamp": [3.0, 7.5]},
        {"id": 2, "image_id": "val_00001", "caption": "the green star appears", "timestamp": [0.5, 2.0]},
    ]}))
    run = tmp_path / "run"
    mr = run / "eval" / "moment_retrieval"
    mr.mkdir(parents=True)
    (mr / "metrics.json").write_text(json.dumps({"task": "mr", "annotation": str(gt), "items": 3, "metrics": {}}))
    (mr / "predictions.json").write_text(json.dumps({
        "0": {"timestamp": [[1.5, 4.5]], "query": "the red circle moves left", "vid": "val_00000"},
        "1": {"timestamp": [], "query": "the blue square grows", "vid": "val_00000"},
        "2": {"timestamp": [[0.0, 2.5]], "query": "the green star appears", "vid": "val_00001"}}))
    (mr / "generations.jsonl").write_text("".join(json.dumps(row) + "\n" for row in [
        {"id": "0", "video": "x", "duration": 8.0, "text": "1.5 - 4.5"},
        {"id": "1", "video": "x", "duration": 8.0, "text": "?"},
        {"id": "2", "video": "y", "duration": 3.0, "text": "0 - 2.5"}]))
    hd = run / "eval" / "highlights"
    hd.mkdir(parents=True)
    (hd / "predictions.json").write_text(json.dumps([
        {"qid": "0", "query": "the blue square grows", "vid": "val_00000", "pred_saliency_scores": [0, 1, 3, 2]}]))
    ckpt = run / "checkpoints" / "iter_3"
    ckpt.mkdir(parents=True)
    (ckpt / "recipe.yaml").write_text(f"data:\n  video_root: {video_root}\n  num_frames: 4\n  eval_sampling: uniform\n"
                                      f"  reader: pyav\n")
    return run


def test_run_timeline_data_from_the_run_files(tmp_path):
    from vtgcore.data.pattern_videos import write_test_video

    videos = tmp_path / "videos"
    videos.mkdir()
    write_test_video(videos / "val_00000.mp4", num_frames=64, fps=8.0)
    run = _fake_run(tmp_path, videos)  # the run's recipe names the video root and 4 frames
    warnings = []
    entries = plots.run_timeline_data(run, warn=warnings.append)
    assert [e["video_id"] for e in entries] == ["val_00000", "val_00001"]
    first, second = entries
    assert first["gt_windows"] == [(1.0, 4.0), (3.0, 7.5)]
    assert first["pred_windows"] == [(1.5, 4.5), None]
    assert first["duration"] == 8.0 and second["duration"] == 3.0
    assert first["saliency"] == [0, 1, 3, 2] and "blue square" in first["saliency_label"]
    assert second["saliency"] is None
    assert first["frame_times"] == pytest.approx([0.0, 2.0, 4.0, 6.0])  # 4 uniform frames of 64 at 8 fps
    assert second["frame_times"] == []  # no video: drawn without ticks, and said so
    assert warnings and "1 of 2 videos could not be probed" in warnings[0]
    assert len(plots.run_timeline_data(run, limit=1)) == 1


def test_vtg_plot_run_folder(tmp_path, capsys):
    run = _fake_run(tmp_path, tmp_path / "missing_videos")
    assert cli.main(["plot", str(run)]) == 0
    out = capsys.readouterr()
    pngs = sorted((run / "plots").glob("*.png"))
    assert [p.name for p in pngs] == ["timeline_val_00000.png", "timeline_val_00001.png"]
    for png in pngs:
        _png(png)
    assert "2 picture(s) written" in out.out and "could not be probed" in out.err
    assert cli.main(["plot", str(tmp_path / "gt")]) == 1  # neither a run nor a sweep folder
    assert cli.main(["plot", str(tmp_path)]) == 0  # a folder holding run/ (a sweep variant folder) is taken
