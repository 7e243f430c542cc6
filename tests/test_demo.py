"""`vtg demo` without a browser: the answer function, the timeline and the page without a model.
Its safety defaults (localhost, 200 MB, one hour) are in tests/reliability/test_demo_security.py,
the page in a real headless Chromium in tests/test_demo_browser.py."""

import re

from vtgcore.apps import demo
from vtgcore.apps.demo import NO_MODEL, answer, timeline_html
from vtgcore.apps.pipeline import Grounding




def test_answer_without_a_model_says_how_to_give_one():
    text, timeline = answer(None, "/some/video.mp4", "mr", "q")
    assert text == NO_MODEL and "--run RUN_DIR" in text and timeline == ""


def test_answer_checks_input_then_grounds(tiny_pipe, val_video, tmp_path):
    text, timeline = answer(tiny_pipe, val_video, "mr", "the red square moves")
    result = tiny_pipe.ground(val_video, "the red square moves")
    assert text == result.describe(verbose=True)
    found = [(float(s), float(e)) for s, e in re.findall(r'class="vtg-window" data-start="([^"]+)" data-end="([^"]+)"',
                                                         timeline)]
    assert found == result.windows and f'data-duration="{result.duration!r}"' in timeline
    assert timeline.count("<img ") == 8  # the frame strip
    assert answer(tiny_pipe, None, "mr", "q")[0].startswith("Upload a video first (at most 200 MB and 1:00:00 long)")
    assert "Type a query" in answer(tiny_pipe, val_video, "hd", " ")[0]
    assert answer(tiny_pipe, val_video, "dvc", "")[0].startswith("val_00000.mp4 (")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    assert answer(tiny_pipe, str(bad), "mr", "q")[0].startswith("This file cannot be read as a video: ")



def test_timeline_places_windows_over_the_duration():
    result = Grounding(windows=[(10.0, 30.0), (50.0, 50.0)], text="", task="mr", video="v.mp4", duration=100.0)
    html = timeline_html(result)
    assert 'data-start="10.0" data-end="30.0"' in html and "left:10.000%;width:20.000%" in html
    assert 'data-start="50.0" data-end="50.0"' in html and "left:50.000%;width:0.400%" in html  # still visible
    assert "<span>00:00</span><span>00:25</span><span>00:50</span><span>01:15</span><span>01:40</span>" in html
    assert "no window predicted" in timeline_html(Grounding(windows=[], text="", task="mr", video="v", duration=5))


def test_page_without_a_model_shows_the_message():
    config = demo.build_demo(None).get_config_file()
    values = {c["props"].get("elem_id"): c["props"].get("value") for c in config["components"]}
    assert NO_MODEL in values["vtg-status"] and values["vtg-answer"] == NO_MODEL
    assert values["vtg-limits"] == "Uploads up to 200 MB and videos up to 1:00:00 are accepted."
