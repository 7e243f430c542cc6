"""The benchmark suite's quick mode: every row is there and the JSON has the expected keys (no
timing ratio is asserted: quick sizes measure nothing)."""

import json

import pytest

ROWS = {
    "decode": 2, "loading": 1, "feature_cache": 4, "compressors": 8, "generation": 3, "eval": 1, "memory": 2,
    "real_shapes": 9,
}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    from vtgcore.apps.cli import main

    out = tmp_path_factory.mktemp("bench") / "bench.json"
    assert main(["bench", "--quick", "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_every_section_and_row_is_reported(quick):
    assert not [r for r in quick["rows"] if r.get("error")]
    sections = [r["section"] for r in quick["rows"]]
    for section, count in ROWS.items():
        if section == "decode":
            assert sections.count(section) in (1, 3)  # the two decord rows only where decord is installed
        else:
            assert sections.count(section) == count, section
    names = {r["name"].split(":")[0] for r in quick["rows"] if r["section"] == "compressors"}
    assert names == {"slot", "cross_attention", "codebook", "diverse", "entropy", "mean_pool", "identity",
                     "video_qformer"}


def test_json_keys(quick):
    assert {"machine", "quick", "settings", "rows", "details", "section_seconds", "wall_s"} <= set(quick)
    assert quick["quick"] is True
    assert {"cpu", "cpu_count", "torch", "torch_threads", "load_average_1_5_15"} <= set(quick["machine"])
    for r in quick["rows"]:
        assert {"section", "name", "baseline", "fast", "baseline_value", "fast_value", "ratio", "unit"} <= set(r)
        if r["section"] == "real_shapes":  # toy widths: decode time is a difference of medians, may be 0
            assert r["ratio"] >= 0 and r["baseline_value"] > 0
        elif r["section"] != "memory":
            assert r["ratio"] > 0 and r["fast_value"] > 0
        else:
            assert r["fast_value"] > 100 and r["extra_mib"] is not None  # MiB: a Python with torch
    d = quick["details"]
    frames = [k for k in d["generation"] if k.endswith("_frames")]
    assert len(frames) == 2 and all(d["generation"][k]["batch_outputs_equal_unbatched"] for k in frames)
    assert d["generation"]["kv_cache_tokens_equal"] is True  # the no-cache baseline computes the same tokens
    assert d["eval"]["outputs_equal"] is True
    assert {"train", "eval"} == set(d["memory"]) - {"fresh_process"}
    real = d["real_shapes"]
    assert {"batch_1", "batch_2", "memory", "train_step", "peaks", "shape", "seq"} <= set(real)
    assert real["peaks"]["floor_uses"] == "measured"  # no CUDA data sheet on a CPU
    for part in ("encode", "prefill", "decode", "total"):
        assert real["batch_1"]["floor_per_video_s"][part] > 0


def test_table_printed(quick):
    from vtgcore.apps.perf.suite import format_table

    table = format_table(quick)
    assert table.splitlines()[0].split()[:3] == ["section", "measurement", "baseline"]
    assert len(table.splitlines()) == len(quick["rows"]) + 3
