"""`vtg sweep`: sweep files, grid names, resuming, failures, --launcher print, results files, and
the paper's ablation sweep resolving. The fast tests replace main_job.run by a stand-in that writes
a metrics.json; one slow test trains two tiny variants for real."""

import csv
import json
import statistics
import textwrap
from pathlib import Path

import pytest

from vtgcore.apps import cli, main_job
from vtgcore.config.loader import recipe_files
from vtgcore.errors import VTGError
from vtgcore.apps.sweep import expand_grid, load_sweep, plan, summarize, validate_sweep

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml"
TINY = ["data.num_frames=4", "runner.train_cfg.max_iters=3",
        "runner.warmup_iters=1"]


def write_sweep(path, variants, seeds=(0,), main=None, common=TINY):
    body = {"base": str(BASE), "common": list(common), "seeds": list(seeds), "variants": variants,
            "main_job": main or {"train": 4, "val": 2, "pretrain_steps": 2}}
    path.write_text(json.dumps(body))  # JSON is YAML
    return path


class FakeRun:
    """Stands in for main_job.run: records calls, writes a metrics.json (R1@0.5 = 10 * seed + offset)."""

    def __init__(self, fail=()):
        self.calls = []
        self.fail = set(fail)

    def __call__(self, out_dir, *, recipe, overrides, seed, n_train, n_val, pretrain_steps, log, synth_dir,
                 feature_cache_dir, plots):
        out_dir = Path(out_dir)
        variant, rseed = out_dir.parent.name, int(out_dir.name.split("_")[1])
        self.calls.append((variant, rseed, Path(synth_dir), Path(feature_cache_dir), n_train, n_val))
        log(f"fake run of {variant} seed {rseed}")
        if variant in self.fail:
            raise RuntimeError(f"boom in {variant}")
        value = 10.0 * rseed + {"a": 1.0, "b": 2.0}.get(variant, 0.0)
        metrics = {"moment_retrieval": {"R1@0.3": value + 5, "R1@0.5": value, "R1@0.7": None, "mIoU": value / 2},
                   "baselines": {"moment_retrieval": {"R1@0.3": 40.0, "R1@0.5": 25.0, "R1@0.7": 9.0, "mIoU": 30.0}},
                   "wall_seconds": 1.0}
        (out_dir / "run").mkdir(parents=True, exist_ok=True)
        (out_dir / "run" / "metrics.json").write_text(json.dumps(metrics))
        return out_dir / "run"


@pytest.fixture
def fake(monkeypatch):
    run = FakeRun()
    monkeypatch.setattr(main_job, "run", run)
    return run


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------------
# Sweep files


def test_grid_expansion_names():
    variants = expand_grid({"compressor": ["slot_8", "mean_pool_1"], "model.compressor.params.num_slots": [4, 8]})
    assert [v.name for v in variants] == ["compressor=slot_8,num_slots=4", "compressor=slot_8,num_slots=8",
                                          "compressor=mean_pool_1,num_slots=4", "compressor=mean_pool_1,num_slots=8"]
    assert variants[1].overrides == ["compressor=slot_8", "model.compressor.params.num_slots=8"]
    # keys with the same last part keep their full name; values are written as YAML for the dotlist
    variants = expand_grid({"a.lr": [0.001], "b.lr": [True], "c": [[1, 2]], "d": [None]})
    assert [v.name for v in variants] == ["a.lr=0.001,b.lr=true,c=_1+2_,d=null"]
    assert variants[0].overrides == ["a.lr=0.001", "b.lr=true", "c=[1,2]", "d=null"]


def test_load_sweep_with_grid(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(f"base: {BASE}\nseeds: [0, 1]\ngrid:\n  runner.optim_wrapper.optimizer.lr: [0.001, 0.002]\n")
    sweep = load_sweep(path)
    assert [v.name for v in sweep.variants] == ["lr=0.001", "lr=0.002"]
    assert sweep.seeds == [0, 1] and sweep.common == [] and sweep.main_job["train"] == main_job.N_TRAIN
    jobs = plan(sweep, tmp_path / "out")
    assert [(j.variant, j.seed, j.state) for j in jobs] == [("lr=0.001", 0, "pending"), ("lr=0.001", 1, "pending"),
                                                           ("lr=0.002", 0, "pending"), ("lr=0.002", 1, "pending")]
    assert "lr: 0.002" in jobs[2].recipe_text and "seed: 1" in jobs[3].recipe_text
    assert not (tmp_path / "out").exists()  # planning writes nothing


@pytest.mark.parametrize("text, message", [
    ("seeds: [0]\nvariants: {a: []}\n", "'base'"),
    ("base: B\nvariants: {a: []}\ngrid: {x: [1]}\n", "not both"),
    ("base: B\nseeds: [0]\n", "not neither"),
    ("base: B\nvariants: {a: []}\nepochs: 3\n", "unknown key(s) epochs"),
    ("base: B\nvariants: {'a/b': []}\n", "variant name 'a/b'"),
    ("base: B\nseeds: [0, 0]\nvariants: {a: []}\n", "distinct integers"),
    ("base: B\nvariants: {a: x=1}\n", "list of overrides"),
    ("base: B\nvariants: {a: []}\nmain_job: {steps: 3}\n", "unknown main_job key(s) steps"),
])
def test_bad_sweep_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(VTGError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_sweep(path)


# --------------------------------------------------------------------------------------------------
# Running with a stand-in for main_job.run


def test_sweep_results_failures_and_resume(tmp_path, fake, capsys):
    sweep = write_sweep(tmp_path / "s.yaml", {"a": [], "b": ["compressor=mean_pool_1"],
                                              "bad": ["model.compressor.name=no_such_plugin"]}, seeds=(0, 1))
    out = tmp_path / "out"
    assert cli.main(["sweep", str(sweep), "--out", str(out)]) == 1  # 'bad' does not resolve
    printed = capsys.readouterr().out
    assert [(v, s) for v, s, *_ in fake.calls] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    # one VTG-Synth and one feature cache for every variant, named by the settings
    assert {c[2] for c in fake.calls} == {out / "vtg_synth-s0-t4-v2"} and {c[3] for c in fake.calls} == {out / "feature_cache"}
    log = out / "variants" / "bad" / "seed_0" / "sweep.log"
    assert f"FAILED bad seed 0: " in printed and f"(log: {log})" in printed and "no_such_plugin" in printed
    assert "no_such_plugin" in log.read_text()

    rows = read_csv(out / "results.csv")
    assert [(r["variant"], r["seed"], r["status"]) for r in rows] == [
        ("a", "0", "finished"), ("a", "1", "finished"), ("b", "0", "finished"), ("b", "1", "finished"),
        ("bad", "0", "invalid"), ("bad", "1", "invalid")]
    assert rows[1]["moment_retrieval/R1@0.5"] == "11.0" and rows[0]["moment_retrieval/R1@0.7"] == ""
    results = json.loads((out / "results.json").read_text())
    a = results["summary"]["a"]["moment_retrieval/R1@0.5"]
    assert a["n"] == 2 and a["mean"] == pytest.approx((1 + 11) / 2)
    assert a["std"] == pytest.approx(((1 - 6) ** 2 + (11 - 6) ** 2) ** 0.5)  # sample std, n - 1 = 1
    assert results["summary"]["bad"] == {} and results["baselines"]["moment_retrieval/R1@0.5"] == 25.0
    md = (out / "results.md").read_text()
    assert "| a | 2 | 11.0 ± 7.1 | 6.0 ± 7.1 | n/a | 3.0 ± 3.5 |" in md
    assert "| b | 2 | 12.0 ± 7.1 | 7.0 ± 7.1 |" in md
    assert "| constant window (baseline) | | 40.0 | 25.0 | 9.0 | 30.0 |" in md
    assert "| bad | 0 | invalid |" in md
    recipe = (out / "variants" / "b" / "seed_1" / "recipe.yaml").read_text()
    assert "name: mean_pool" in recipe and "seed: 1" in recipe and "num_frames: 4" in recipe
    assert json.loads((out / "variants" / "b" / "seed_1" / "variant.json").read_text())["status"] == "finished"
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == [
        "moment_retrieval__R1@0.3.png", "moment_retrieval__R1@0.5.png", "moment_retrieval__mIoU.png"]

    # rerun: nothing finished is redone
    metrics = out / "variants" / "a" / "seed_0" / "run" / "metrics.json"
    mtime = metrics.stat().st_mtime_ns
    fake.calls.clear()
    assert cli.main(["sweep", str(sweep), "--out", str(out)]) == 1
    assert fake.calls == [] and metrics.stat().st_mtime_ns == mtime
    assert "skip a seed 0: finished" in capsys.readouterr().out

    # b's recipe changes: b runs again from scratch (its old run folder goes), a is still skipped
    marker = out / "variants" / "b" / "seed_0" / "run" / "old_checkpoint"
    marker.write_text("x")
    write_sweep(sweep, {"a": [], "b": ["compressor=mean_pool_1", "model.compressor.params.tokens_per_frame=2"],
                        "bad": ["model.compressor.name=no_such_plugin"]}, seeds=(0, 1))
    assert [(j.variant, j.state) for j in plan(load_sweep(sweep), out, only=["a", "b"], seeds=[0])] == [
        ("a", "finished"), ("b", "stale")]
    assert cli.main(["sweep", str(sweep), "--out", str(out)]) == 1
    assert [(v, s) for v, s, *_ in fake.calls] == [("b", 0), ("b", 1)]
    assert not marker.exists()
    assert "tokens_per_frame: 2" in (out / "variants" / "b" / "seed_0" / "recipe.yaml").read_text()
    # a run saved before the schema gained a setting (here: no video_position key) is still
    # finished when today's default is that run's behaviour; a changed value makes it stale
    saved = out / "variants" / "a" / "seed_0" / "recipe.yaml"
    text = saved.read_text()
    assert "    video_position: first\n" in text
    saved.write_text(text.replace("    video_position: first\n", ""))
    assert [j.state for j in plan(load_sweep(sweep), out, only=["a"], seeds=[0])] == ["finished"]
    saved.write_text(text.replace("video_position: first", "video_position: last"))
    assert [j.state for j in plan(load_sweep(sweep), out, only=["a"], seeds=[0])] == ["stale"]
    saved.write_text(text)
    # main_job settings are part of a run's identity too
    write_sweep(sweep, {"a": []}, seeds=(0, 1), main={"train": 5, "val": 2, "pretrain_steps": 2})
    assert {j.state for j in plan(load_sweep(sweep), out)} == {"stale"}


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path, monkeypatch, capsys):
    failing = FakeRun(fail={"a"})
    monkeypatch.setattr(main_job, "run", failing)
    sweep = write_sweep(tmp_path / "s.yaml", {"a": [], "b": []})
    out = tmp_path / "out"
    assert cli.main(["sweep", str(sweep), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    log = out / "variants" / "a" / "seed_0" / "sweep.log"
    assert f"FAILED a seed 0: RuntimeError: boom in a (log: {log})" in printed
    assert "Traceback" in log.read_text() and "fake run of a seed 0" in log.read_text()
    rows = read_csv(out / "results.csv")
    assert [(r["variant"], r["status"], r["error"]) for r in rows] == [
        ("a", "failed", "RuntimeError: boom in a"), ("b", "finished", "")]
    assert rows[0]["log"] == str(log)
    # a failed run is run again; the finished one is not
    working = FakeRun()
    monkeypatch.setattr(main_job, "run", working)
    assert cli.main(["sweep", str(sweep), "--out", str(out)]) == 0
    assert [(v, s) for v, s, *_ in working.calls] == [("a", 0)]
    assert [r["status"] for r in read_csv(out / "results.csv")] == ["finished", "finished"]


def test_launcher_print_only_and_dry_run(tmp_path, fake, capsys):
    sweep = write_sweep(tmp_path / "s.yaml", {"a": [], "b": ["compressor=mean_pool_1"]}, seeds=(0, 1))
    out = tmp_path / "out"
    assert cli.main(["sweep", str(sweep), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "pending   b seed 1:" in printed and "4 runs: 0 finished, 4 pending, 0 stale, 0 invalid" in printed
    assert not out.exists()

    # one run by name and seed, as a cluster job would do
    assert cli.main(["sweep", str(sweep), "--out", str(out), "--only", "a", "--seed", "1"]) == 0
    assert [(v, s) for v, s, *_ in fake.calls] == [("a", 1)]
    assert [r["status"] for r in read_csv(out / "results.csv")] == ["pending", "finished", "pending", "pending"]
    capsys.readouterr()

    assert cli.main(["sweep", str(sweep), "--out", str(out), "--launcher", "print"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"vtg sweep {sweep} --out {out} --only a --seed 0",
                                         f"vtg sweep {sweep} --out {out} --only b --seed 0",
                                         f"vtg sweep {sweep} --out {out} --only b --seed 1"]
    assert f"vtg data synth {out / 'vtg_synth-s0-t4-v2'} --seed 0 --train 4 --val 2" in captured.err
    assert len(fake.calls) == 1  # printing runs nothing

    # runs finished by separate commands (a cluster, two shells): --collect writes the results of
    # all of them and trains nothing
    assert cli.main(["sweep", str(sweep), "--out", str(out), "--only", "b", "--seed", "0"]) == 0
    (out / "results.csv").unlink()
    capsys.readouterr()
    assert cli.main(["sweep", str(sweep), "--out", str(out), "--collect"]) == 0
    assert len(fake.calls) == 2
    assert [r["status"] for r in read_csv(out / "results.csv")] == ["pending", "finished", "finished", "pending"]
    assert "2 of 4 runs finished; not finished: a seed 0, b seed 1" in capsys.readouterr().out
    assert (out / "plots" / "moment_retrieval__R1@0.5.png").is_file()

    assert cli.main(["sweep", str(sweep), "--out", str(out), "--only", "nope"]) == 1
    assert "no variant 'nope'; variants: a, b" in capsys.readouterr().err


def test_mean_and_std_by_hand():
    rows = [{"variant": "v", "seed": s, "status": "finished", "t/m": x} for s, x in enumerate([2.0, 4.0, 9.0])]
    rows.append({"variant": "v", "seed": 3, "status": "failed", "t/m": 100.0})  # not counted
    stat = summarize(rows)["v"]["t/m"]
    mean = (2 + 4 + 9) / 3
    assert stat["n"] == 3 and stat["mean"] == pytest.approx(5.0)
    assert stat["std"] == pytest.approx((((2 - mean) ** 2 + (4 - mean) ** 2 + (9 - mean) ** 2) / 2) ** 0.5)
    assert stat["std"] == pytest.approx(statistics.stdev([2.0, 4.0, 9.0]))


# --------------------------------------------------------------------------------------------------
# The paper's ablations in miniature


ABLATIONS = ROOT / "recipes" / "sweeps" / "synth_ablations.yaml"


def test_synth_ablations_every_variant_resolves():
    from omegaconf import OmegaConf

    jobs = validate_sweep(ABLATIONS)
    assert len(jobs) == 9 * 3 and all(j.state != "invalid" for j in jobs)
    assert load_sweep(ABLATIONS).seeds == [0, 1, 2]
    recipes = {j.variant: OmegaConf.create(j.recipe_text) for j in jobs if j.seed == 0}
    full = recipes["full"].model
    assert full.compressor.name == "identity" and full.grounding.name == "query_gate"
    # every variant keeps VTG-LLM's frame-time sentence but the one that drops it (make run's recipe)
    assert full.prompt.timestamps_in_prompt and recipes["no_abs_time_embedding"].model.prompt.timestamps_in_prompt
    assert not recipes["no_frame_times_in_prompt"].model.prompt.timestamps_in_prompt
    frames = recipes["full"].data.num_frames
    # every compressor gives K = 32 video tokens
    assert recipes["compressor_slot"].model.compressor.params.num_slots == 32
    assert recipes["compressor_mean_pool"].model.compressor.params.tokens_per_frame * frames == 32
    assert recipes["compressor_cross_attention"].model.compressor.params.num_queries == 32
    assert recipes["compressor_diverse"].model.compressor.params.num_tokens == 32
    assert recipes["no_abs_time_embedding"].model.time_embedding.name == "none"
    assert recipes["no_time_tokens"].model.time_codec.name == "plain_digits"
    # the random-init table is the full model's table but for its initialisation
    random = OmegaConf.to_container(recipes["random_init_time_table"].model.time_embedding.params)
    zeros = OmegaConf.to_container(full.time_embedding.params)
    assert random.pop("init") == "random" and zeros.pop("init") == "zeros" and random == zeros
    # each variant changes only the model part it names (and its experiment name)
    for name, recipe in recipes.items():
        assert recipe.data == recipes["full"].data and recipe.runner == recipes["full"].runner, name


def test_sweep_files_are_not_recipes(capsys):
    assert ABLATIONS not in recipe_files([ROOT / "recipes"])
    assert ABLATIONS in recipe_files([ROOT / "recipes"], sweeps=True)
    assert cli.main(["recipe", "validate", str(ABLATIONS.parent)]) == 0
    assert f"ok      {ABLATIONS.parent / 'synth_ablations.yaml'}" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------
# For real, at toy size


@pytest.mark.slow
def test_tiny_sweep_end_to_end(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "tiny.yaml", {"identity": [], "mean_pool": ["compressor=mean_pool_1"],
                                                 "broken": ["compressor=no_such_component"]})
    out = tmp_path / "out"
    assert cli.main(["sweep", str(sweep), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "FAILED broken seed 0: " in printed and "no compressor option 'no_such_component'" in printed
    rows = read_csv(out / "results.csv")
    assert [(r["variant"], r["status"]) for r in rows] == [("identity", "finished"), ("mean_pool", "finished"),
                                                           ("broken", "invalid")]
    for row in rows[:2]:
        assert 0.0 <= float(row["moment_retrieval/R1@0.5"]) <= 100.0
        assert row["highlights/Good-mAP"] != ""
    md = (out / "results.md").read_text()
    assert "| identity | 1 |" in md and "| mean_pool | 1 |" in md and "## highlights" in md
    synth = out / "vtg_synth-s0-t4-v2"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("vtg_synth")) == [synth.name]
    assert len(list(synth.glob("encoder-*.safetensors"))) == 1  # one pre-trained encoder for both variants
    for name in ("identity", "mean_pool"):
        folder = out / "variants" / name / "seed_0"
        assert (folder / "recipe.yaml").is_file() and (folder / "run" / "metrics.json").is_file()
        timelines = list((folder / "run" / "plots").glob("timeline_*.png"))
        assert timelines, "main_job.run draws the moment-retrieval timelines"
    assert "name: mean_pool" in (out / "variants" / "mean_pool" / "seed_0" / "recipe.yaml").read_text()
    assert list((out / "plots").glob("*.png"))
    # killed and started again: the finished variants are not trained again
    metrics = out / "variants" / "identity" / "seed_0" / "run" / "metrics.json"
    mtime = metrics.stat().st_mtime_ns
    assert cli.main(["sweep", str(sweep), "--out", str(out)]) == 1
    assert "skip identity seed 0: finished" in capsys.readouterr().out
    assert metrics.stat().st_mtime_ns == mtime
