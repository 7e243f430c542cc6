"""The Python API (load_pipeline) and `vtg ground` on generated videos with a tiny trained run."""

import json
import math
import subprocess
import sys

import pytest

from vtgcore.apps import cli
from vtgcore.errors import VideoReadError, VTGError
from vtgcore.eval.generate import GenerationConfig
from vtgcore.apps.pipeline import Captions, Grounding, Highlights, clock, highlight_windows, load_pipeline, pick_device

GEN = GenerationConfig(max_new_tokens=48)
QUERIES = ["the red square moves to the left", "the white diamond shrinks", "a shape moves up"]


@pytest.fixture(scope="module")
def pipe(tiny_run):
    return load_pipeline(tiny_run, generation=GEN)


@pytest.fixture(scope="module")
def videos(synth_dir):
    return sorted(str(p) for p in (synth_dir / "videos").glob("val_*.mp4"))


def _check_windows(result):
    assert result.duration > 0
    for start, end in result.windows:
        assert 0.0 <= start <= end <= result.duration, (start, end, result.duration)


def test_clock_is_mm_ss_truncated_like_a_player():
    assert clock(0) == "00:00" and clock(9.99) == "00:09" and clock(59.999) == "00:59"
    assert clock(60) == "01:00" and clock(65.9) == "01:05" and clock(600.5) == "10:00"
    assert clock(3599.9) == "59:59" and clock(3600) == "1:00:00" and clock(3725) == "1:02:05"
    assert clock(-2) == "00:00"


def test_highlight_windows_are_runs_of_scored_clips_cut_at_the_duration():
    assert highlight_windows([0, 1, 2.5, 0, 3], 2.0, 9.0) == [(2.0, 6.0), (8.0, 9.0)]
    assert highlight_windows([0, 0], 2.0, 4.0) == []
    assert highlight_windows([1, 1, 1], 1.0, 2.5) == [(0.0, 2.5)]


def test_ground_one_video_and_a_batch(pipe, videos):
    one = pipe.ground(videos[0], QUERIES[0])
    assert isinstance(one, Grounding) and one.task == "mr" and one.query == QUERIES[0]
    assert one.video == videos[0] and one.duration == pytest.approx(pipe.probe(videos[0]).duration)
    _check_windows(one)
    batch = pipe.ground(videos, QUERIES)
    assert isinstance(batch, list) and len(batch) == len(videos)
    assert [r.video for r in batch] == videos
    # batched generation gives what one video at a time gives
    assert [r.to_dict() for r in batch] == [pipe.ground(v, q).to_dict() for v, q in zip(videos, QUERIES)]
    assert batch[0].to_dict() == one.to_dict()
    for r in batch:
        _check_windows(r)
    assert any(r.windows for r in batch), "the tiny trained run writes time windows"
    # one query for every video
    assert [r.query for r in pipe.ground(videos[:2], "a shape")] == ["a shape", "a shape"]


def test_describe_shows_seconds_and_mm_ss(pipe, videos):
    result = pipe.ground(videos[0], QUERIES[0])
    text = result.describe()
    assert f"({clock(result.duration)}, {result.duration:.1f} s)" in text and f"answer: {result.text}" in text
    for start, end in result.windows:
        assert f"{start:.1f} - {end:.1f} s  ({clock(start)} - {clock(end)})" in text
    assert "raw:" not in text and f"raw: {result.raw}" in result.describe(verbose=True)
    made = Grounding(windows=[(61.5, 125.0)], text="61.5 - 125 seconds.", task="mr", video="/x/v.mp4",
                     duration=3700.0, query="q")
    assert "  1. 61.5 - 125.0 s  (01:01 - 02:05)" in made.describe() and "v.mp4 (1:01:40, 3700.0 s)" in made.describe()


def test_caption_highlights_and_summary(pipe, videos):
    captions = pipe.caption(videos[:2])
    assert all(isinstance(c, Captions) and c.task == "dvc" and c.query == "" for c in captions)
    for c in captions:
        assert c.windows == [(e.start, e.end) for e in c.events]
        assert c.to_dict()["events"] == [{"start": e.start, "end": e.end, "caption": e.text} for e in c.events]
        _check_windows(c)
    hd = pipe.highlights(videos[0], QUERIES[0])
    assert isinstance(hd, Highlights) and hd.clip_length == 2.0
    if hd.parsed:
        assert len(hd.scores) == int(hd.duration / 2.0)
    assert hd.windows == highlight_windows(hd.scores, 2.0, hd.duration)
    _check_windows(hd)
    summary = pipe.summarize(videos[0])
    assert isinstance(summary, Highlights) and summary.task == "summary" and summary.clip_length == 1.0
    if summary.parsed:
        assert len(summary.scores) == math.ceil(summary.duration)


def test_errors_name_the_file(pipe, videos, tmp_path):
    with pytest.raises(VideoReadError, match="nothing.mp4: file not found"):
        pipe.ground(str(tmp_path / "nothing.mp4"), "q")
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(VideoReadError, match="notes.mp4"):
        pipe.ground([videos[0], str(bad)], "q")  # checked before anything is generated
    with pytest.raises(VTGError, match="needs a query"):
        pipe.ground(videos[0], "  ")
    with pytest.raises(VTGError, match="2 video"):
        pipe.ground(videos[:2], ["only one"])
    with pytest.raises(VTGError, match="unknown task"):
        pipe.predict(videos[0], "q", task="nope")


def test_load_from_a_recipe_and_checkpoint_or_a_checkpoint_folder(tiny_run, pipe, videos, tmp_path):
    ckpt = tiny_run / "checkpoints" / (tiny_run / "checkpoints" / "last").read_text().strip()
    expected = pipe.ground(videos[0], QUERIES[0]).to_dict()
    again = load_pipeline(ckpt / "recipe.yaml", checkpoint=tiny_run, generation=GEN)
    assert again.checkpoint == ckpt
    assert again.ground(videos[0], QUERIES[0]).to_dict() == expected
    with pytest.raises(VTGError, match="no trained weights.*checkpoint"):
        load_pipeline(ckpt / "recipe.yaml")
    random = load_pipeline(ckpt / "recipe.yaml", allow_random=True, generation=GenerationConfig(max_new_tokens=4))
    assert random.checkpoint is None and isinstance(random.ground(videos[0], "q"), Grounding)
    with pytest.raises(VTGError, match="not a run folder"):
        load_pipeline(tmp_path)
    with pytest.raises(VTGError, match="not found"):
        load_pipeline(tmp_path / "missing")
    with pytest.raises(VTGError, match="checkpoint not found"):
        load_pipeline(tiny_run, checkpoint=tmp_path / "missing")


def test_component_weights_named_relative_to_the_run_are_found_from_anywhere(tiny_run, pipe, videos, tmp_path,
                                                                             monkeypatch):
    """`vtg run` saves the pre-trained encoder's path relative to where it ran (work_dirs/main/...)."""
    import shutil

    from safetensors.torch import save_file

    work = tmp_path / "project"
    run = work / "work_dirs" / "main" / "run"
    shutil.copytree(tiny_run / "checkpoints", run / "checkpoints")
    (run.parent / "vtg_synth").mkdir()
    save_file({k: v.contiguous() for k, v in pipe.model.encoder.state_dict().items()},
              str(run.parent / "vtg_synth" / "encoder.safetensors"))
    recipe = run / "checkpoints" / "iter_100" / "recipe.yaml"
    text = recipe.read_text()
    assert text.count("checkpoint: null") >= 1
    recipe.write_text(text.replace("checkpoint: null", "checkpoint: work_dirs/main/vtg_synth/encoder.safetensors", 1))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    moved = load_pipeline(run, generation=GEN)
    assert moved.recipe.model.encoder.checkpoint == str(work / "work_dirs/main/vtg_synth/encoder.safetensors")
    assert moved.ground(videos[0], QUERIES[0]).windows == pipe.ground(videos[0], QUERIES[0]).windows


def test_pick_device():
    import torch

    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "npu")
        with pytest.raises(VTGError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(VTGError, match="unknown device"):
        pick_device("quantum")
    try:
        import torch_npu  # noqa: F401
    except ImportError:
        with pytest.raises(VTGError, match="no Ascend NPU"):
            pick_device("npu:0")


def test_vtg_ground_json_equals_the_api(tiny_run, pipe, videos, capsys):
    assert cli.main(["ground", videos[1], QUERIES[1], "--run", str(tiny_run), "--json", "--max-new-tokens", "48"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"windows", "text", "task", "video", "duration"} <= set(out)
    assert out == json.loads(json.dumps(pipe.ground(videos[1], QUERIES[1]).to_dict()))
    assert out["task"] == "mr" and out["video"] == videos[1]
    for start, end in out["windows"]:
        assert 0 <= start <= end <= out["duration"]
    assert cli.main(["ground", videos[1], "--task", "dvc", "--run", str(tiny_run), "--json",
                     "--max-new-tokens", "48"]) == 0
    dvc = json.loads(capsys.readouterr().out)
    assert dvc["task"] == "dvc" and dvc["query"] == "" and len(dvc["events"]) == len(dvc["windows"])


def test_vtg_ground_text_and_errors(tiny_run, videos, tmp_path, capsys):
    assert cli.main(["ground", videos[0], QUERIES[0], "--run", str(tiny_run), "--max-new-tokens", "48",
                     "--verbose"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("val_00000.mp4 (") and "moment retrieval" in out and "\nraw: " in out
    assert cli.main(["ground", str(tmp_path / "gone.mp4"), "q", "--run", str(tiny_run)]) == 1
    assert capsys.readouterr().err.strip() == f"vtg: error: {tmp_path / 'gone.mp4'}: file not found"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 2048)
    assert cli.main(["ground", str(broken), "q", "--run", str(tiny_run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"vtg: error: {broken}: ") and len([e for e in err if "error" in e]) == 1
    assert cli.main(["ground", videos[0], "--run", str(tiny_run)]) == 1
    assert "needs a query" in capsys.readouterr().err
    assert cli.main(["ground", videos[0], "q"]) == 1
    assert "--run RUN_DIR" in capsys.readouterr().err
    recipe = tiny_run / "checkpoints" / "iter_100" / "recipe.yaml"
    assert cli.main(["ground", videos[0], "q", "--recipe", str(recipe)]) == 1
    assert "no trained weights" in capsys.readouterr().err
    # recipe overrides follow the options, as in vtg eval (also where a task takes no query)
    assert cli.main(["ground", videos[0], "--task", "dvc", "--run", str(tiny_run), "data.num_frame=2"]) == 1
    assert "unknown key 'data.num_frame'" in capsys.readouterr().err
    assert load_pipeline(tiny_run, overrides=["data.num_frames=2"]).frames.num_frames == 2


def test_import_vtgcore_stays_light():
    code = "import sys, vtgcore; assert callable(vtgcore.load_pipeline); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
