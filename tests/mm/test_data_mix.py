"""Mixing training sets (``data.train.datasets``): draw proportions, determinism, per-set video roots,
the feature cache over every set, bad entries, and exact resume of a mixed run."""

import json
from collections import Counter
from itertools import islice
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from vtgcore.config.loader import load_recipe
from vtgcore.config.train_data import check_train_data
from vtgcore.errors import RecipeError

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml"


@pytest.fixture(scope="module")
def second_synth(tmp_path_factory):
    """Another VTG-Synth set whose files have the same relative names as ``synth_dir``'s."""
    from vtgcore.data.synth import generate_synth

    out = tmp_path_factory.mktemp("synth_b")
    generate_synth(out, seed=12, n_train=3, n_val=1, max_duration=12.0)
    return out


def annotation(path, n, video="videos/v{}.mp4"):
    path.write_text(json.dumps([{"video": video.format(i), "QA": [{"q": "q", "a": "a"}], "source": "s"}
                                for i in range(n)]))
    return str(path)


def mixed(entries, seed=0, **kw):
    from vtgcore.mm.mixing import MixedInstructDataset, MixSampler

    dataset = MixedInstructDataset(entries, seed=seed, num_frames=4, image_size=32, **kw)
    return dataset, MixSampler(dataset, seed=seed)


def test_draws_follow_the_ratios_and_each_pass_covers_a_set_once(tmp_path):
    a, b = annotation(tmp_path / "a.json", 5), annotation(tmp_path / "b.json", 50)
    dataset, sampler = mixed([{"annotation": a, "ratio": 3}, {"annotation": b, "ratio": 1}])
    draws = [dataset.locate(i) for i in islice(iter(sampler), 20000)]
    counts = Counter(d for d, _, _ in draws)
    assert abs(counts[0] / 20000 - 0.75) < 0.015  # 3:1 whatever the sizes (5 vs 50 items)
    for d, size in ((0, 5), (1, 50)):
        per_pass = Counter((e, i) for dd, e, i in draws if dd == d)
        assert max(per_pass.values()) == 1  # no item twice within one pass over its set
        first = {i for (e, i) in per_pass if e == 0}
        assert first == set(range(size))  # a finished pass saw every item


def test_the_stream_is_the_same_for_two_builds_and_differs_by_seed(tmp_path):
    a, b = annotation(tmp_path / "a.json", 7), annotation(tmp_path / "b.json", 4)
    entries = [{"annotation": a, "ratio": 1}, {"annotation": b, "ratio": 1}]
    first = list(islice(iter(mixed(entries)[1]), 500))
    assert first == list(islice(iter(mixed(entries)[1]), 500))
    assert first != list(islice(iter(mixed(entries, seed=1)[1]), 500))


def test_ranks_share_each_pass_without_overlap(tmp_path, monkeypatch):
    import vtgcore.mm.mixing as mixing

    a, b = annotation(tmp_path / "a.json", 8), annotation(tmp_path / "b.json", 6)
    entries = [{"annotation": a, "ratio": 1}, {"annotation": b, "ratio": 1}]
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(mixing, "get_dist_info", lambda rank=rank: (rank, 2))
        dataset, sampler = mixed(entries)
        draws = [dataset.locate(i) for i in islice(iter(sampler), 200)]
        seen.append({(d, i) for d, e, i in draws if e == 0})
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == {(0, i) for i in range(8)} | {(1, i) for i in range(6)}


@pytest.mark.parametrize("train, pattern", [
    ({}, r"data.train.annotation is not set"),
    ({"annotation": "a.json", "datasets": [{"annotation": "b.json", "ratio": 1}]}, r"either annotation .* or datasets"),
    ({"datasets": []}, r"non-empty list"),
    ({"datasets": ["a.json"]}, r"datasets\[0\]: an entry must be a mapping"),
    ({"datasets": [{"ratio": 1}]}, r"datasets\[0\].annotation is not set"),
    ({"datasets": [{"annotation": "a.json", "ratio": 1}, {"annotation": "b.json"}]}, r"datasets\[1\].ratio is not set"),
    ({"datasets": [{"annotation": "a.json", "ratio": 0}]}, r"datasets\[0\].ratio must be a number > 0, got 0"),
    ({"datasets": [{"annotation": "a.json", "ratio": -1.5}]}, r"ratio must be a number > 0"),
    ({"datasets": [{"annotation": "a.json", "ratio": "half"}]}, r"ratio must be a number > 0"),
    ({"datasets": [{"annotation": "a.json", "ratio": 1, "weight": 2}]}, r"unknown key\(s\) \['weight'\]"),
    ({"datasets": [{"annotation": "a.json", "ratio": 1, "sources": "mr"}]}, r"sources must be a list"),
    ({"datasets": [{"annotation": "a.json", "ratio": 1}], "sources": ["x"]}, r"data.train.sources is not used"),
])
def test_bad_train_data_is_a_recipe_error(train, pattern):
    with pytest.raises(RecipeError, match=pattern) as info:
        check_train_data(train)
    assert "\n" not in str(info.value)


def test_recipe_validation_names_the_file_and_the_entry(synth_dir):
    bad = f"data.train.datasets=[{{annotation: {synth_dir}/train.json, ratio: 1}}, {{annotation: x.json, ratio: 0}}]"
    with pytest.raises(RecipeError, match=r"synth_tiny.yaml: data.train.*either annotation"):
        load_recipe(RECIPE, [bad])
    with pytest.raises(RecipeError, match=r"synth_tiny.yaml: data.train.datasets\[1\].ratio must be a number > 0"):
        load_recipe(RECIPE, ["~data.train.annotation", "~data.train.sources", bad])


def test_an_entry_left_empty_by_its_sources_is_an_error(synth_dir):
    with pytest.raises(RecipeError, match=r"datasets\[0\] \(train.json\): no training item left after the sources"):
        mixed([{"annotation": str(synth_dir / "train.json"), "ratio": 1, "sources": ["nothing"]}])


def mix_recipe(synth_dir, second, *extra, ratios=(1, 1)):
    entries = (f"[{{name: a, annotation: {synth_dir}/train.json, ratio: {ratios[0]}, sources: [vtg-synth-mr]}}, "
               f"{{name: b, annotation: {second}/train.json, video_root: {second}, ratio: {ratios[1]}}}]")
    return load_recipe(RECIPE, [f"data.video_root={synth_dir}", "data.num_frames=4", "data.train.batch_size=2",
                                "~data.train.annotation", "~data.train.sources",
                                f"data.train.datasets={entries}", *extra])


def fake_model(image_size=32):
    enc = SimpleNamespace(image_size=image_size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return SimpleNamespace(vtg=SimpleNamespace(encoder=enc))


def test_train_loader_mixes_with_each_sets_video_root_and_is_deterministic(synth_dir, second_synth):
    from vtgcore.mm.mixing import MixedInstructDataset, MixSampler
    from vtgcore.mm.runner import train_loader

    rec = mix_recipe(synth_dir, second_synth)
    loaders = [train_loader(fake_model(), rec, None) for _ in range(2)]
    assert isinstance(loaders[0].dataset, MixedInstructDataset) and isinstance(loaders[0].sampler, MixSampler)
    dataset = loaders[0].dataset
    assert dataset.names == ["a", "b"] and dataset.sizes[1] == len(json.loads((second_synth / "train.json").read_text()))
    assert all(item.source == "vtg-synth-mr" for item in dataset.parts[0].items)  # per-entry sources
    batches = [list(islice(iter(loader), 6)) for loader in loaders]
    videos = [v for batch in batches[0] for v in batch["videos"]]
    assert {Path(v).parent.parent for v in videos} == {synth_dir, second_synth}  # both roots, same relative names
    for one, two in zip(*batches):
        assert one["videos"] == two["videos"]
        torch.testing.assert_close(one["timestamps"], two["timestamps"], rtol=0, atol=0)
        torch.testing.assert_close(one["frames"], two["frames"], rtol=0, atol=0)
    # a sample of set b reads set b's video (the same relative name exists under set a's root)
    d, e, i = dataset.locate(next(index for index in iter(loaders[0].sampler) if dataset.locate(index)[0] == 1))
    sample = dataset[e * dataset.total + dataset.offsets[1] + i]
    assert Path(sample["video"]).is_relative_to(second_synth)


def test_feature_cache_fill_covers_every_set(synth_dir, second_synth, tmp_path):
    from vtgcore.build import build_model
    from vtgcore.mm.mixing import dataset_videos
    from vtgcore.mm.runner import train_loader

    rec = mix_recipe(synth_dir, second_synth, "model.encoder.trainable=frozen", f"data.feature_cache={tmp_path / 'fc'}")
    vtg, _ = build_model(rec)
    loader = train_loader(SimpleNamespace(vtg=vtg), rec, None)
    videos = set(dataset_videos(loader.dataset))
    assert {v.parent.parent for v in videos} == {synth_dir, second_synth}
    assert len(list((tmp_path / "fc").glob("*/*.safetensors"))) == len(videos)
    batch = next(iter(loader))
    assert batch["frames"].shape[-1] == vtg.encoder.out_dim  # features from the cache, not pixels


def test_mixed_training_resumes_exactly(synth_dir, second_synth, tmp_path):
    from mmengine.hooks import Hook

    from vtgcore.mm.runner import build_runner

    class Kill(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == 3:
                raise KeyboardInterrupt

    def run(work_dir, resume=False, hooks=()):
        rec = mix_recipe(synth_dir, second_synth, "runner.train_cfg.max_iters=4", "runner.warmup_iters=1",
                         "runner.checkpoint_interval=2", "runner.log_interval=1")
        runner = build_runner(rec, work_dir=str(work_dir), resume=resume)
        for hook in hooks:
            runner.register_hook(hook)
        runner.train()
        return {k: v.detach().clone() for k, v in runner.model.vtg.named_parameters() if v.requires_grad}

    full = run(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed", hooks=[Kill()])
    resumed = run(tmp_path / "killed", resume="auto")
    assert set(resumed) == set(full)
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], rtol=0, atol=1e-6, msg=name)


def test_mmengine_registries_build_the_mix(tmp_path):
    import vtgcore.mm  # noqa: F401
    from vtgcore.mm.registry import DATA_SAMPLERS, DATASETS

    entries = [{"annotation": annotation(tmp_path / "a.json", 3), "ratio": 1},
               {"annotation": annotation(tmp_path / "b.json", 2), "ratio": 1, "video_root": str(tmp_path)}]
    dataset = DATASETS.build({"type": "MixedInstructDataset", "datasets": entries, "num_frames": 4, "seed": 3})
    sampler = DATA_SAMPLERS.build({"type": "MixSampler", "seed": 3}, default_args={"dataset": dataset})
    assert len(dataset) == 5 and dataset.parts[1].video_root == str(tmp_path)
    assert list(islice(iter(sampler), 50)) == list(islice(iter(mixed(entries, seed=3)[1]), 50))
