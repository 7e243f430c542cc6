"""`vtg run` (make run) end to end at toy size: the run folder and metrics.json layout."""

import json

import pytest

from vtgcore.apps import cli
from vtgcore.vocab import METRIC_KEYS


@pytest.mark.slow
def test_main_job_layout(tmp_path, capsys):
    out = tmp_path / "main"
    args = ["run", "--out", str(out), "--train", "4", "--val", "2", "--pretrain-steps", "2", "data.num_frames=4",
            "runner.train_cfg.max_iters=3", "runner.warmup_iters=1"]
    assert cli.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    run_dir = out / "run"
    assert lines[-1] == str(run_dir)
    assert any(line.startswith("moment retrieval R1@0.5: model") for line in lines)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for task, keys in METRIC_KEYS.items():
        assert set(keys) <= set(metrics[task]) and set(keys) <= set(metrics["baselines"][task])
    assert all(0.0 <= metrics["baselines"]["moment_retrieval"][k] <= 100.0 for k in METRIC_KEYS["moment_retrieval"])
    assert (run_dir / "checkpoints" / "iter_3" / "model.safetensors").is_file()
    assert (run_dir / "checkpoints" / "iter_3" / "recipe.yaml").is_file()
    assert (run_dir / "eval" / "moment_retrieval" / "predictions.json").is_file()
    assert list(run_dir.glob("*/*.log")), "the mmengine log is kept in the run folder"
    job_log = (run_dir / "run.log").read_text()
    assert "[3/5] training" in job_log and "moment retrieval R1@0.5: model" in job_log, "and the job's own log"
    assert " step/s, " in job_log and " left)" in job_log  # encoder pre-training lines carry rate and time left
    # the encoder was pre-trained on the synthetic frames and the run loaded those weights
    weights = list((out / "vtg_synth").glob("encoder-*.safetensors"))
    assert len(weights) == 1
    assert f"checkpoint: {weights[0]}" in (run_dir / "checkpoints" / "iter_3" / "recipe.yaml").read_text()
    assert any("pre-training the tiny_vit encoder" in line for line in lines)
