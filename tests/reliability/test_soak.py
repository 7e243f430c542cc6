"""Soak (issue 9, item 5): ``vtg eval`` over 200 generated videos of which 10% are corrupt.

The run completes, reports exactly the 20 corrupt videos (in ``metrics.json`` and on stderr), and
scores the other 180 exactly as a clean run over those 180 alone does (greedy decoding, the tiny
recipe built in process: the same seed gives the same weights in both runs).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from vtgcore.apps import cli
from vtgcore.data import pattern_videos as V

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "debug" / "tiny.yaml"
N_VIDEOS, N_CORRUPT = 200, 20
QUERIES = ["a red circle appears", "the square moves to the left", "a blue triangle grows", "the screen goes dark"]


def _write_videos(folder: Path) -> tuple[list[dict], set[str]]:
    """200 short videos (10% corrupt, the corruptions mixed) and a Charades-STA item for each."""
    rng = random.Random(9)
    corrupt_at = set(rng.sample(range(N_VIDEOS), N_CORRUPT))
    kinds = ["zero_byte", "truncated", "text_as_mp4", "audio_only", "truncated_midway"]
    (folder / "broken").mkdir()
    broken = V.write_corrupt_files(folder / "broken")
    items, corrupt_ids = [], set()
    for i in range(N_VIDEOS):
        name = f"v{i:03d}.mp4"
        if i in corrupt_at:
            kind = kinds[len(corrupt_ids) % len(kinds)]
            (folder / name).write_bytes(broken[kind].read_bytes())
            corrupt_ids.add(str(i))
            duration = 2.0
        else:
            frames = 1 if i % 20 == 7 else rng.randint(8, 24)  # a few single-frame videos among the good
            V.write_test_video(folder / name, num_frames=frames, size=(32, 32))
            duration = frames / 8
        start = round(rng.uniform(0, duration / 2), 2)
        items.append({"image_id": name, "caption": rng.choice(QUERIES), "id": i,
                      "timestamp": [start, round(min(duration, start + rng.uniform(0.1, duration)), 2)]})
    return items, corrupt_ids


def _evaluate(folder: Path, items: list[dict], name: str, capsys) -> tuple[dict, dict[str, dict], str]:
    annotation = folder / f"{name}.json"
    annotation.write_text(json.dumps({"annotations": items}))
    out = folder / name
    rc = cli.main(["eval", str(TINY), f"data.val.mr.annotation={annotation}", "data.val.mr.format=charades",
                   "--video-root", str(folder), "--out", str(out), "--batch-size", "8", "--max-new-tokens", "12"])
    err = capsys.readouterr().err
    assert rc == 0, err
    record = json.loads((out / "moment_retrieval" / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "moment_retrieval" / "generations.jsonl").read_text().splitlines()]
    return record, {row["id"]: row for row in rows}, err


def test_two_hundred_videos_ten_percent_corrupt(tmp_path, capsys):
    from vtgcore.data.formats import load_eval
    from vtgcore.eval.evaluation import score

    items, corrupt_ids = _write_videos(tmp_path)
    good = [item for item in items if str(item["id"]) not in corrupt_ids]
    assert len(good) == N_VIDEOS - N_CORRUPT

    dirty, dirty_rows, err = _evaluate(tmp_path, items, "dirty", capsys)
    clean, clean_rows, clean_err = _evaluate(tmp_path, good, "clean", capsys)

    # the run completed over every item and reports exactly the corrupt ones
    assert dirty["items"] == dirty["metrics"]["count"] == N_VIDEOS
    assert {e["id"] for e in dirty["errors"]} == corrupt_ids and len(dirty["errors"]) == N_CORRUPT
    assert dirty["metrics"]["video_errors"] == dirty["metrics"]["item_errors"] == N_CORRUPT
    for error in dirty["errors"]:
        video = f"v{int(error['id']):03d}.mp4"
        assert error["kind"] == "video" and error["video"].endswith(video) and video in error["error"]
        assert "\n" not in error["error"]
    assert re.search(rf"moment_retrieval: {N_CORRUPT} item\(s\) could not be evaluated", err)
    assert "Traceback" not in err and "vtg: error" not in err
    assert clean["errors"] == [] and "could not be evaluated" not in clean_err

    # the good 180 are scored as a clean run over them alone: same answers, same metrics
    good_ids = {str(item["id"]) for item in good}
    assert {k: v["text"] for k, v in dirty_rows.items() if k in good_ids} == {k: v["text"] for k, v in clean_rows.items()}
    good_items = [i for i in load_eval(tmp_path / "dirty.json", "charades") if i.id in good_ids]
    rescored, _ = score("mr", good_items, dirty_rows)
    assert rescored == clean["metrics"]
    assert clean["metrics"]["count"] == N_VIDEOS - N_CORRUPT and clean["metrics"]["video_errors"] == 0
