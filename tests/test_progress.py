"""Progress bars with rate and ETA on stderr, ``--quiet`` for scripts, and run logs in the run folder."""

import io
import json
import re

import pytest

from vtgcore.apps import cli
from vtgcore.utils.progress import RunLog, bar, rate_text, set_quiet

BAR = re.compile(r"\d+/\d+ \[[0-9:]+<[0-9:?]+, +[0-9.?]+ ?\w+/s")
"""A tqdm line: done/total [elapsed<left, rate unit/s]."""


@pytest.fixture(autouse=True)
def _loud(monkeypatch):
    monkeypatch.delenv("VTG_QUIET", raising=False)
    yield
    set_quiet(False)


def test_quiet_is_accepted_before_and_after_the_command():
    parser = cli.build_parser()
    assert cli.parse_args(parser, ["--quiet", "plugins"]).quiet
    assert cli.parse_args(parser, ["plugins", "-q"]).quiet
    args = cli.parse_args(parser, ["eval", "r.yaml", "--quiet", "a.b=1", "--limit", "2"])
    assert args.quiet and args.overrides == ["a.b=1"] and args.limit == 2
    assert not cli.parse_args(parser, ["plugins"]).quiet


def test_rate_text():
    assert rate_text(10, 40, 5.0, "video") == "2 video/s, 0:15 left"
    assert rate_text(100, 7300, 1.0) == "100 it/s, 1:12 left"
    assert rate_text(1, 3601, 1.0) == "1 it/s, 1:00:00 left"
    assert rate_text(0, 10, 0.0, "item") == "? item/s"


def test_bar_shows_rate_eta_and_counts_and_is_silent_when_quiet(monkeypatch):
    out = io.StringIO()
    progress = bar("encoding videos", file=out)
    for done in range(1, 5):
        progress(done, 4, frames=done * 100)
    text = out.getvalue()
    assert "encoding videos" in text and "4/4" in text and BAR.search(text), text
    assert "frames=400 (" in text and text.endswith("\n")  # the last state is kept in a log
    # one state per line, no carriage returns or padding: a log reads line by line
    lines = text.splitlines()
    assert "\r" not in text and lines and all(line.startswith("encoding videos") for line in lines), text
    assert lines[-1].rstrip() == lines[-1] and "4/4" in lines[-1] and "0/4" in lines[0]
    set_quiet(True)
    out = io.StringIO()
    progress = bar("encoding videos", file=out)
    progress(1, 2)
    progress(2, 2)
    assert out.getvalue() == ""
    monkeypatch.setenv("VTG_QUIET", "1")
    set_quiet(False)
    bar("x", file=out)(1, 1)
    assert out.getvalue() == ""


def test_run_log_writes_everything_and_echoes_unless_quiet(tmp_path, capsys):
    log = RunLog(tmp_path / "run" / "x.log")
    log.info("stage one")
    log.result("final 1.0")
    set_quiet(True)
    log.info("stage two")
    log.result("final 2.0")
    captured = capsys.readouterr()
    assert captured.err == "stage one\n" and captured.out == "final 1.0\nfinal 2.0\n"
    lines = (tmp_path / "run" / "x.log").read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == ["stage one", "final 1.0", "stage two", "final 2.0"]


def test_data_synth_progress_and_quiet(tmp_path, capsys):
    args = ["data", "synth", "--train", "2", "--val", "1", "--workers", "1"]
    assert cli.main([*args, str(tmp_path / "a")]) == 0
    loud = capsys.readouterr()
    assert "writing videos" in loud.err and "3/3" in loud.err and BAR.search(loud.err), loud.err
    assert cli.main(["--quiet", *args, str(tmp_path / "b")]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert json.loads(quiet.out)["videos"] == json.loads(loud.out)["videos"]  # the result is still printed


def test_train_and_eval_quiet_keep_logs_in_the_run_folder(synth_dir, tmp_path, capsys):
    recipe = "recipes/vtgllm/synth_tiny.yaml"
    overrides = [f"data.video_root={synth_dir}", "data.num_frames=4", "data.train.batch_size=2",
                 "runner.train_cfg.max_iters=2",
                 "runner.checkpoint_interval=2", "runner.log_interval=1", "experiment_name=quiet_train"]
    work = tmp_path / "run"
    assert cli.main(["--quiet", "train", recipe, *overrides, "--work-dir", str(work)]) == 0
    quiet = capsys.readouterr()
    assert quiet.out.strip().splitlines() == [str(work)], quiet.out  # only the result
    assert "Iter(train)" not in quiet.err
    logs = list(work.glob("*/*.log"))
    assert len(logs) == 1, "mmengine's log file is in the run folder"
    text = logs[0].read_text()
    assert "Iter(train) [2/2]" in text and "eta:" in text and "trainable parameters per module" in text

    ckpt = work / "checkpoints" / "iter_2"
    args = ["eval", recipe, *overrides, "--checkpoint", str(ckpt), "--task", "mr", "--limit", "2",
            "--max-new-tokens", "4"]
    assert cli.main([*args, "--out", str(tmp_path / "eval_quiet"), "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == "" and quiet.out.strip().splitlines()[-1] == str(tmp_path / "eval_quiet")
    assert "| moment_retrieval | R1@0.5 |" in quiet.out
    assert cli.main([*args, "--out", str(tmp_path / "eval_loud")]) == 0
    loud = capsys.readouterr()
    assert "evaluating mr" in loud.err and "2/2" in loud.err and BAR.search(loud.err), loud.err
    assert "vtg: eval: mr: 2 items scored in" in loud.err
    # decoding in a loader worker gives the same generations as decoding in the loop
    assert cli.main([*args, "--out", str(tmp_path / "eval_workers"), "--num-workers", "1", "--quiet"]) == 0
    capsys.readouterr()

    def texts(folder):
        rows = (tmp_path / folder / "moment_retrieval" / "generations.jsonl").read_text().splitlines()
        return [json.loads(r)["text"] for r in rows]
    assert texts("eval_workers") == texts("eval_quiet") and len(texts("eval_quiet")) == 2
    with pytest.raises(SystemExit):
        cli.main([*args, "--num-workers", "-1"])
    assert "--num-workers: must be 0 or more, got -1" in capsys.readouterr().err
    for folder in ("eval_quiet", "eval_loud"):
        log = (tmp_path / folder / "eval.log").read_text()
        assert "vtg eval recipes/vtgllm/synth_tiny.yaml" in log and "mr: 2 items scored" in log
        assert "| moment_retrieval | R1@0.5 |" in log
