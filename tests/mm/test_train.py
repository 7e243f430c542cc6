"""Training through mmengine: Mode A (vtg builds, mmengine runs), Mode B (Runner.from_cfg), exact
resume after a kill, gradient accumulation, checkpoints without pickle, the feature cache."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from safetensors.torch import load_file

from vtgcore.config.loader import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml"


def recipe(synth_dir, *extra):
    return load_recipe(RECIPE, [f"data.video_root={synth_dir}", "data.num_frames=4", "data.train.batch_size=2",
                                "runner.train_cfg.max_iters=6",
                                "runner.warmup_iters=2", "runner.checkpoint_interval=2", "runner.log_interval=1", *extra])


def train(rec, work_dir, resume=False, hooks=()):
    from vtgcore.mm.runner import build_runner

    runner = build_runner(rec, work_dir=str(work_dir), resume=resume)
    for hook in hooks:
        runner.register_hook(hook)
    runner.train()
    return runner


class Kill(Hook):
    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            raise KeyboardInterrupt


def trainable(runner):
    return {k: v.clone() for k, v in runner.model.vtg.named_parameters() if v.requires_grad}


def test_train_writes_safetensors_checkpoints_and_resumes_exactly(synth_dir, tmp_path):
    full = trainable(train(recipe(synth_dir), tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt):
        train(recipe(synth_dir), tmp_path / "killed", hooks=[Kill(at=5)])  # killed after the iter-4 checkpoint
    ckpts = tmp_path / "killed" / "checkpoints"
    assert (ckpts / "last").read_text().strip() == "iter_4"
    files = {p.name for p in (ckpts / "iter_4").iterdir()}
    assert {"model.safetensors", "optimizer.safetensors", "rng.safetensors", "recipe.yaml", "plugins.json",
            "manifest.json", "schedulers.json", "loop.json"} <= files
    assert not any(p.suffix in (".pth", ".pt", ".pkl") for p in (tmp_path / "killed").rglob("*"))
    resumed = train(recipe(synth_dir), tmp_path / "killed", resume="auto")
    assert resumed.iter == 6
    after = trainable(resumed)
    assert set(after) == set(full)
    for name in full:
        torch.testing.assert_close(after[name], full[name], rtol=0, atol=1e-6, msg=name)
    saved = load_file(str(tmp_path / "full" / "checkpoints" / "iter_6" / "model.safetensors"))
    assert set(saved) == set(full)  # only trainable weights are saved
    manifest = json.loads((tmp_path / "full" / "checkpoints" / "iter_6" / "manifest.json").read_text())
    assert manifest["iter"] == 6
    # a run folder, its checkpoints folder or the `last` pointer file stands for its last checkpoint
    from vtgcore.checkpoint import resolve_checkpoint

    ckpts = tmp_path / "full" / "checkpoints"
    for given in (tmp_path / "full", ckpts, ckpts / "last", ckpts / "iter_6"):
        assert resolve_checkpoint(given) == tmp_path / "full" / "checkpoints" / "iter_6"


class LRLog(Hook):
    priority = "LOWEST"

    def __init__(self):
        self.lrs = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.lrs.append(runner.optim_wrapper.get_lr()["lr"][0])


def test_gradient_accumulation_steps_schedules_per_optimizer_step(synth_dir, tmp_path):
    log = LRLog()
    runner = train(recipe(synth_dir, "runner.accumulate=2", "runner.train_cfg.max_iters=8", "runner.warmup_iters=0"),
                   tmp_path, hooks=[log])
    assert runner.optim_wrapper._accumulative_counts == 2
    lrs = log.lrs
    # the cosine runs over 8 / 2 = 4 optimizer steps: the LR changes only after every second iteration
    assert len(lrs) == 8
    assert all(lrs[i] == lrs[i - 1] for i in (2, 4, 6)) and all(lrs[i] < lrs[i - 1] for i in (1, 3, 5))
    assert lrs[7] <= lrs[6]  # the schedule ends at the last optimizer step
    assert lrs[-1] > 2e-3 * 0.01 - 1e-12


def test_feature_cache_matches_and_key_tracks_weights(synth_dir, tmp_path):
    from vtgcore.build import build_model
    from vtgcore.data.feature_cache import FeatureCache
    from vtgcore.data.video import read_clip
    from vtgcore.data.transforms import normalize

    rec = recipe(synth_dir, "model.encoder.trainable=frozen")
    model, _ = build_model(rec)
    enc = model.encoder
    spec = {"name": "tiny_vit", "params": dict(rec.model.encoder.params)}
    cache = FeatureCache(tmp_path, enc, spec, image_size=enc.image_size, mean=enc.mean, std=enc.std)
    video = synth_dir / "videos" / "train_00000.mp4"
    entry = cache.get(video)
    assert cache.has(video)
    clip = read_clip(video, 4, size=(enc.image_size, enc.image_size))
    with torch.no_grad():
        direct = enc(normalize(clip.frames, enc.mean, enc.std))
    torch.testing.assert_close(entry["features"][clip.indices], direct, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(entry["timestamps"][clip.indices], clip.timestamps)  # float64 both
    with torch.no_grad():
        enc.norm.weight.add_(1.0)  # other weights -> another key, the old entry is never used
    other = FeatureCache(tmp_path, enc, spec, image_size=enc.image_size, mean=enc.mean, std=enc.std)
    assert other.key != cache.key and not other.has(video)
    enc.norm.weight.requires_grad_(True)
    with pytest.raises(Exception, match="frozen encoder"):
        FeatureCache(tmp_path, enc, spec, image_size=enc.image_size)


def test_training_with_the_feature_cache(synth_dir, tmp_path):
    rec = recipe(synth_dir, "model.encoder.trainable=frozen", f"data.feature_cache={tmp_path / 'cache'}",
                 "runner.train_cfg.max_iters=3")
    runner = train(rec, tmp_path / "run")
    assert runner.iter == 3
    assert len(list((tmp_path / "cache").glob("*/*.safetensors"))) == 4  # every training video encoded once


def test_mmengine_native_config(synth_dir, tmp_path):
    from mmengine import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(ROOT / "configs" / "mmengine_synth_tiny.py"))
    cfg.model.overrides = ["data.num_frames=4"]
    cfg.train_dataloader.dataset.update(annotation=str(synth_dir / "train.json"), video_root=str(synth_dir), num_frames=4)
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.max_iters = 2
    cfg.param_scheduler = [dict(type="ConstantLR", factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint.interval = 2
    cfg.work_dir = str(tmp_path)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
    finally:
        os.chdir(cwd)
    assert runner.iter == 2 and (tmp_path / "checkpoints" / "iter_2" / "model.safetensors").is_file()


DIST_SCRIPT = """
import sys
from vtgcore.config.loader import load_recipe
from vtgcore.data.feature_cache import weights_digest
from vtgcore.mm.runner import build_runner
from mmengine.dist import get_rank
rec = load_recipe(sys.argv[1], sys.argv[3:])
runner = build_runner(rec, work_dir=sys.argv[2], launcher="pytorch")
runner.train()
open(f"{sys.argv[2]}/rank{get_rank()}.digest", "w").write(weights_digest(runner.model.module.vtg))
"""


@pytest.mark.slow
def test_two_processes_gloo_end_with_identical_weights(synth_dir, tmp_path):
    script = tmp_path / "dist_train.py"
    script.write_text(DIST_SCRIPT)
    overrides = [f"data.video_root={synth_dir}", "data.num_frames=4", "data.train.batch_size=2",
                 "runner.train_cfg.max_iters=3", "runner.checkpoint_interval=3"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           str(script), str(RECIPE), str(tmp_path), *overrides]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    d0, d1 = (tmp_path / "rank0.digest").read_text(), (tmp_path / "rank1.digest").read_text()
    assert d0 == d1


def test_load_from_starts_from_checkpoint_weights(synth_dir, tmp_path):
    from vtgcore.mm.runner import build_runner

    first = train(recipe(synth_dir, "runner.train_cfg.max_iters=2"), tmp_path / "a")
    ckpt = tmp_path / "a" / "checkpoints" / "iter_2"
    second = build_runner(recipe(synth_dir), work_dir=str(tmp_path / "b"), load_from=str(ckpt))
    for name, value in trainable(first).items():
        torch.testing.assert_close(dict(second.model.vtg.named_parameters())[name], value, rtol=0, atol=0)
    with pytest.raises(Exception, match="not a safetensors file|not found"):
        build_runner(recipe(synth_dir), work_dir=str(tmp_path / "c"), load_from=str(tmp_path / "nothing"))


def test_trainable_encoder_caches_decoded_frames(synth_dir, tmp_path):
    from vtgcore.data.feature_cache import FeatureCache
    from vtgcore.data.video import read_clip

    cache = FeatureCache(tmp_path, None, None, image_size=32)
    video = synth_dir / "videos" / "train_00001.mp4"
    entry = cache.get(video)
    clip = read_clip(video, 4, size=(32, 32))
    assert entry["frames"].dtype == torch.uint8 and "features" not in entry
    torch.testing.assert_close(entry["frames"][clip.indices], clip.frames)
    rec = recipe(synth_dir, f"data.feature_cache={tmp_path / 'px'}", "runner.train_cfg.max_iters=2",
                 "model.encoder.trainable=full")
    runner = train(rec, tmp_path / "run")
    assert runner.iter == 2 and any(p.requires_grad for p in runner.model.vtg.encoder.parameters())
    assert len(list((tmp_path / "px").glob("*/*.safetensors"))) == 4


def test_every_auxiliary_loss_is_in_the_total_mmengine_optimises():
    """VideoLLM adds every auxiliary loss to its total; mmengine sums only keys containing 'loss'."""
    from mmengine.model import BaseModel

    from vtgcore.mm.model import loss_dict

    lm = torch.tensor(1.0)
    aux = {"codebook_loss": torch.tensor(0.25), "commitment": torch.tensor(0.5)}
    losses = loss_dict(lm, aux)
    assert set(losses) == {"loss_lm", "codebook_loss", "loss_commitment"}
    total, logged = BaseModel.parse_losses(None, losses)
    assert float(total) == 1.75 == float(lm + sum(aux.values()))
    assert float(logged["loss_commitment"]) == 0.5


def test_registry_holds_the_model_and_its_preprocessor_only():
    """mmengine-native configs name both by type; a helper must not take a class's decorator."""
    from vtgcore.mm.model import VideoDataPreprocessor, VTGModel
    from vtgcore.mm.registry import MODELS

    assert MODELS.get("VideoDataPreprocessor") is VideoDataPreprocessor
    assert MODELS.get("VTGModel") is VTGModel
    assert MODELS.get("loss_dict") is None


def test_load_from_and_eval_take_frozen_component_files_from_the_checkpoint(synth_dir, tmp_path):
    """A frozen component loaded from its own file is not in a checkpoint; --load-from and vtg eval
    --checkpoint take the file from the checkpoint's recipe (a recipe's own file wins; another plugin
    or a missing file does not pass silently)."""
    from safetensors.torch import save_file

    from vtgcore.build import build_model
    from vtgcore.checkpoint import frozen_component_files
    from vtgcore.errors import CheckpointError
    from vtgcore.mm.runner import build_runner

    encoder = build_model(recipe(synth_dir))[0].encoder
    weights = tmp_path / "encoder.safetensors"
    save_file({k: v + 0.25 for k, v in encoder.state_dict().items()}, str(weights))
    first = train(recipe(synth_dir, "runner.train_cfg.max_iters=1", f"model.encoder.checkpoint={weights}"),
                  tmp_path / "a")
    expected = {k: v.clone() for k, v in first.model.vtg.encoder.state_dict().items()}
    rec = recipe(synth_dir)
    lines = frozen_component_files(rec, tmp_path / "a")
    assert rec.model.encoder.checkpoint == str(weights) and len(lines) == 1 and "model.encoder.checkpoint" in lines[0]
    second = build_runner(recipe(synth_dir), work_dir=str(tmp_path / "b"), load_from=str(tmp_path / "a"))
    for name, value in second.model.vtg.encoder.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0)
    own = tmp_path / "own.safetensors"
    save_file(encoder.state_dict(), str(own))
    rec = recipe(synth_dir, f"model.encoder.checkpoint={own}")
    assert frozen_component_files(rec, tmp_path / "a") == [] and rec.model.encoder.checkpoint == str(own)
    weights.rename(tmp_path / "moved.safetensors")
    with pytest.raises(CheckpointError, match="model.encoder .*missing; set model.encoder.checkpoint"):
        frozen_component_files(recipe(synth_dir), tmp_path / "a")
    rec = recipe(synth_dir, "encoder=tiny_siglip")  # another plugin: its own weights
    assert frozen_component_files(rec, tmp_path / "a") == [] and not rec.model.encoder.checkpoint
