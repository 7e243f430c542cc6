"""The evaluation runner and `vtg eval` / `vtg metrics`: outputs, formats, interrupted runs resume."""

import json

import pytest

from vtgcore.apps import cli
from vtgcore.data.dataset import FrameConfig
from vtgcore.eval import evaluation as R
from vtgcore.eval.generate import GenerationConfig


def _frames(model):
    enc = model.encoder
    return FrameConfig(8, "uniform", "pyav", enc.image_size, mean=enc.mean, std=enc.std)


def test_interrupted_evaluation_resumes_without_recomputing(tiny, synth_dir, tmp_path, monkeypatch):
    model, proc = tiny
    calls = []
    real = R.generate_batch
    kill = {"at": 2}

    def flaky(m, batch, cfg):
        calls.append([i.id for i in batch["items"]])
        if len(calls) == kill["at"]:
            raise KeyboardInterrupt  # killed during the second batch
        return real(m, batch, cfg)

    monkeypatch.setattr(R, "generate_batch", flaky)
    eval_set = R.EvalSet("mr", str(synth_dir / "val" / "charades.json"), "charades")
    kw = dict(frames=_frames(model), video_root=synth_dir, batch_size=2, generation=GenerationConfig(max_new_tokens=8))
    with pytest.raises(KeyboardInterrupt):
        R.evaluate_set(model, proc, eval_set, tmp_path, **kw)
    cache = tmp_path / "moment_retrieval" / "generations.jsonl"
    assert [json.loads(line)["id"] for line in cache.read_text().splitlines()] == calls[0]
    with cache.open("a") as handle:
        handle.write('{"id": "torn')  # a line cut by the kill
    calls.clear()
    kill["at"] = -1
    metrics = R.evaluate_set(model, proc, eval_set, tmp_path, **kw)
    done_first = json.loads(cache.read_text().splitlines()[0])["id"]
    assert done_first not in {i for batch in calls for i in batch}  # finished items are not recomputed
    n = metrics["count"]
    assert n == sum(len(b) for b in calls) + 2 and metrics["parse_total"] == n
    predictions = json.loads((tmp_path / "moment_retrieval" / "predictions.json").read_text())
    assert len(predictions) == n and all(set(p) == {"timestamp", "query", "vid"} for p in predictions.values())
    record = json.loads((tmp_path / "moment_retrieval" / "metrics.json").read_text())
    assert record["generation"]["max_new_tokens"] == 8 and set(record["metrics"]) >= {"R1@0.5", "mIoU"}


def test_broken_video_is_a_scored_miss(tiny, synth_dir, tmp_path):
    model, proc = tiny
    gt = json.loads((synth_dir / "val" / "charades.json").read_text())
    gt["annotations"][0]["image_id"] = "videos/does_not_exist.mp4"
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    metrics = R.evaluate_set(model, proc, R.EvalSet("mr", str(path)), tmp_path / "out", frames=_frames(model),
                             video_root=synth_dir, batch_size=4, generation=GenerationConfig(max_new_tokens=4))
    assert metrics["video_errors"] == 1 and metrics["count"] == len(gt["annotations"])
    # the broken video generated nothing: not a parse failure of the model's output
    assert metrics["item_errors"] == 1 and metrics["parse_total"] == len(gt["annotations"]) - 1


def test_item_errors_are_misses_not_parse_failures(tmp_path):
    from vtgcore.data.formats import load_eval

    gt = {"annotations": [{"image_id": f"{k}.mp4", "caption": "x", "timestamp": [0, 10], "id": k} for k in (1, 2, 3)]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    items = load_eval(str(tmp_path / "gt.json"), "charades")
    for item in items:
        item.duration = 20.0
    rows = {items[0].id: {"text": "0.0 - 10.0 seconds."},       # parsed, IoU 1
            items[1].id: {"text": "no times here"},             # a parse failure
            items[2].id: {"text": "", "error": "cannot read", "error_kind": "video"}}
    metrics, predictions = R.score("mr", items, rows)
    assert (metrics["parse_total"], metrics["parse_failures"], metrics["parse_failure_rate"]) == (2, 1, 0.5)
    assert metrics["item_errors"] == metrics["video_errors"] == 1
    assert metrics["R1@0.5"] == pytest.approx(100 / 3) and predictions[items[2].id]["timestamp"] == []


def test_vtg_metrics_cli_json(tmp_path, capsys):
    gt = {"annotations": [{"image_id": "a.mp4", "caption": "x", "timestamp": [0, 10], "id": 1},
                          {"image_id": "b.mp4", "caption": "y", "timestamp": [5, 15], "id": 2}]}
    pred = {"1": {"timestamp": [[0, 10]], "query": "x", "vid": "a"}, "2": {"timestamp": [], "query": "y", "vid": "b"}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    args = ["metrics", "grounding", "--pred", str(tmp_path / "pred.json"), "--gt", str(tmp_path / "gt.json")]
    assert cli.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["R1@0.3"] == out["R1@0.7"] == 50.0 and out["mIoU"] == 50.0 and out["missing"] == 1
    assert cli.main(args) == 0 and "R1@0.5" in capsys.readouterr().out
    (tmp_path / "pred.json").write_text("[1, 2")
    assert cli.main([*args, "--json"]) == 1
    assert "pred.json" in capsys.readouterr().err


def test_vtg_metrics_cli_highlights_and_dense_captioning(tmp_path, capsys, monkeypatch):
    from vtgcore.eval import captioning

    qvh = {"qid": 7, "query": "q", "duration": 8, "vid": "v1", "relevant_clip_ids": [1, 2],
           "saliency_scores": [[4, 4, 4], [2, 2, 2]], "relevant_windows": [[2, 6]]}
    (tmp_path / "gt.jsonl").write_text(json.dumps(qvh) + "\n")
    (tmp_path / "hd.json").write_text(json.dumps([{"qid": 7, "pred_saliency_scores": [0, 3, 1, 0]}]))
    assert cli.main(["metrics", "highlights", "--pred", str(tmp_path / "hd.json"), "--gt", str(tmp_path / "gt.jsonl"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out)[:6] == ["VeryGood-mAP", "VeryGood-Hit1", "Good-mAP", "Good-Hit1", "Fair-mAP", "Fair-Hit1"]
    assert out["VeryGood-Hit1"] == 100.0 and out["VeryGood-mAP"] == 100.0  # the top clip is the only >=4 clip

    yc = {"annotations": [{"image_id": "v2.mp4", "segments": [[0, 4], [5, 9]], "pure_cap": "a red circle appears. a blue square moves",
                           "duration": 10, "id": 0}]}
    (tmp_path / "yc.json").write_text(json.dumps(yc))
    (tmp_path / "dvc.json").write_text(json.dumps({"v2.mp4": [{"timestamp": [0, 4], "caption": "a red circle appears."}]}))
    monkeypatch.setattr(captioning, "java_available", lambda: False)
    assert cli.main(["metrics", "dense-captioning", "--pred", str(tmp_path / "dvc.json"), "--gt", str(tmp_path / "yc.json"), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["Precision"] == 100.0 and out["Recall"] == 50.0 and out["METEOR"] is None and out["CIDEr"] is None
    assert "METEOR unavailable" in captured.err


def test_vtg_eval_cli_writes_outputs_and_resumes(synth_dir, tmp_path, capsys):
    from vtgcore.mm.runner import build_runner
    from vtgcore.config.loader import load_recipe

    overrides = [f"data.video_root={synth_dir}", "data.num_frames=4", "data.train.batch_size=2",
                 "runner.train_cfg.max_iters=2", "runner.checkpoint_interval=2"]
    recipe = "recipes/vtgllm/synth_tiny.yaml"
    build_runner(load_recipe(recipe, overrides), work_dir=str(tmp_path / "run")).train()
    ckpt = tmp_path / "run" / "checkpoints" / "iter_2"
    args = ["eval", recipe, *overrides, "--checkpoint", str(ckpt), "--task", "mr", "--limit", "3",
            "--max-new-tokens", "8", "--out", str(tmp_path / "eval")]
    assert cli.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == str(tmp_path / "eval") and "| moment_retrieval | R1@0.5 |" in "\n".join(lines)
    summary = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert summary["moment_retrieval"]["count"] == 3
    cache = tmp_path / "eval" / "moment_retrieval" / "generations.jsonl"
    before = cache.read_text()
    assert cli.main(args) == 0  # everything cached: nothing is generated again
    assert cache.read_text() == before
    task = json.loads((tmp_path / "eval" / "moment_retrieval" / "metrics.json").read_text())
    assert task["legacy_parser"] is False and task["generation"]["max_new_tokens"] == 8  # the flag
    assert task["generation"]["do_sample"] is False  # the recipe's eval.temperature 0: greedy
    # the recipe's eval section applies where no flag is given; a flag wins over it
    args = ["eval", recipe, *overrides, "eval.temperature=0.5", "eval.top_p=0.9", "eval.max_new_tokens=6",
            "eval.legacy_parser=true", "--checkpoint", str(ckpt), "--task", "mr", "--limit", "2",
            "--top-p", "0.7", "--out", str(tmp_path / "eval2")]
    assert cli.main(args) == 0
    task = json.loads((tmp_path / "eval2" / "moment_retrieval" / "metrics.json").read_text())
    assert task["legacy_parser"] is True
    assert {k: task["generation"][k] for k in ("max_new_tokens", "do_sample", "temperature", "top_p")} == {
        "max_new_tokens": 6, "do_sample": True, "temperature": 0.5, "top_p": 0.7}
    assert cli.main([*args[:-2], "--no-legacy-parser", "--out", str(tmp_path / "eval3")]) == 0
    assert json.loads((tmp_path / "eval3" / "moment_retrieval" / "metrics.json").read_text())["legacy_parser"] is False


def test_place_for_eval_joins_the_parts_on_the_accelerator():
    import torch

    from vtgcore.eval.evaluation import place_for_eval

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    if not torch.cuda.is_available():
        assert place_for_eval(model) == torch.device("cpu")
        assert all(p.device.type == "cpu" for p in model.parameters())
    model[1].to("meta")  # stands in for an LLM loaded straight onto the GPU
    assert place_for_eval(model) == torch.device("meta")
    assert all(p.device.type == "meta" for p in model.parameters())
