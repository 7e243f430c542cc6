"""The demo's safety defaults (issue 9, item 4): `vtg demo` binds to 127.0.0.1 unless told
otherwise, refuses uploads over 200 MB and videos over one hour by default, with a message naming
the option. The page itself is tested in tests/test_demo.py and, in Chromium, tests/test_demo_browser.py
(which also checks that the server listens on 127.0.0.1 only)."""

import re

import pytest

from vtgcore.apps import cli, demo
from vtgcore.apps.demo import NO_MODEL, DemoLimits, answer
from vtgcore.errors import VTGError



def test_limits_default_to_200_mb_and_one_hour():
    limits = DemoLimits()
    assert limits.max_upload_mb == 200 and limits.max_duration_s == 3600
    assert limits.max_upload_bytes == 200 * 1024 * 1024
    with pytest.raises(VTGError, match="positive"):
        DemoLimits(max_upload_mb=0)

def test_answer_refuses_videos_over_the_limits(tiny_pipe, val_video):
    size_kb = __import__("os").path.getsize(val_video) / 1024
    text, timeline = answer(tiny_pipe, val_video, "mr", "q", DemoLimits(max_upload_mb=size_kb / 2 / 1024))
    assert re.match(r"The video is 0\.0 MB; this demo accepts at most [0-9.e-]+ MB \(start it with --max-upload-mb",
                    text) and timeline == ""
    duration = tiny_pipe.probe(val_video).duration
    text, _ = answer(tiny_pipe, val_video, "mr", "q", DemoLimits(max_duration_s=duration - 1))
    assert text.startswith(f"The video is 00:09 long ({duration:.1f} s); this demo accepts at most 00:08") \
        and "--max-duration" in text
    assert answer(tiny_pipe, val_video, "mr", "q", DemoLimits(max_duration_s=duration))[0].startswith("val_00000.mp4")

def test_vtg_demo_binds_to_localhost_by_default(monkeypatch, tiny_run, capsys):
    calls = []
    monkeypatch.setattr(demo, "serve", lambda pipeline, **kw: calls.append((pipeline, kw)))
    assert cli.main(["demo"]) == 0
    pipeline, kw = calls.pop()
    assert pipeline is None and kw["host"] == "127.0.0.1" and kw["port"] == 7860
    assert kw["limits"] == DemoLimits(200.0, 3600.0) and kw["message"] == NO_MODEL
    recipe = tiny_run / "checkpoints" / "iter_100" / "recipe.yaml"
    assert cli.main(["demo", "--recipe", str(recipe)]) == 0
    pipeline, kw = calls.pop()
    assert pipeline is None and "no trained weights" in kw["message"] and "--checkpoint" in kw["message"]
    assert cli.main(["demo", "--run", str(tiny_run), "--host", "0.0.0.0", "--port", "9000", "--max-upload-mb", "5",
                     "--max-duration", "60"]) == 0
    pipeline, kw = calls.pop()
    assert pipeline.checkpoint == tiny_run / "checkpoints" / "iter_100"
    assert (kw["host"], kw["port"], kw["limits"]) == ("0.0.0.0", 9000, DemoLimits(5.0, 60.0))
    capsys.readouterr()
    assert cli.main(["demo", "--run", str(tiny_run), "--recipe", str(recipe)]) == 1
    assert "not both" in capsys.readouterr().err

