"""Pre-training the tiny encoder on VTG-Synth patch labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vtgcore.data.synth import BACKGROUND, SynthError, label_maps, plan_video, render_video
from vtgcore.data.synth_encoder import (FULL_FRACTION, LABELS, load_frames, patch_targets, pretrain_encoder,
                                        pretrain_recipe_encoder, token_grid)


def test_patch_targets_by_hand():
    labels = np.full((1, 4, 4), BACKGROUND, dtype=np.uint8)
    labels[0, 0, 0] = 0  # event 0 (red circle): 1 of the 4 pixels of the top-left 2x2 patch
    labels[0, 2:, 2:] = 1  # event 1 (blue square): the whole bottom-right patch
    labels[0, 3, 0] = 1  # and 1 pixel of the bottom-left patch
    y = patch_targets(labels, ["red", "blue"], ["circle", "square"], grid=2)
    assert y.shape == (1, 4, len(LABELS))
    red, blue, circle, square = (LABELS.index(n) for n in ("red", "blue", "circle", "square"))
    assert y[0, 0, red] == pytest.approx(min(1.0, 0.25 / FULL_FRACTION))
    assert y[0, 0, circle] == y[0, 0, red]
    assert y[0, 3, blue] == 1.0 and y[0, 3, square] == 1.0
    assert y[0, 2, blue] == pytest.approx(min(1.0, 0.25 / FULL_FRACTION))
    assert y[0, 1].sum() == 0  # top-right patch is background
    assert y.sum() == pytest.approx(2 * (y[0, 0, red] + 1.0 + y[0, 2, blue]))


def test_patch_targets_rejects_uneven_grid():
    with pytest.raises(SynthError, match="multiple"):
        patch_targets(np.zeros((1, 6, 6), dtype=np.uint8), ["red"], ["circle"], grid=4)


def test_label_maps_match_rendered_pixels():
    plan = plan_video(3, "train", 0, size=32, fps=4.0, min_duration=4.0, max_duration=6.0)
    maps = label_maps(plan)
    rendered = render_video(plan, 3)
    assert maps.shape == rendered.frames.shape[:3]
    for k in range(len(plan.events)):
        assert ((maps == k).sum(axis=(1, 2)) == rendered.visible[k]).all()


def test_load_frames_shapes_and_targets(synth_dir):
    frames, targets = load_frames(synth_dir, "val", image_size=32, grid=2, frame_stride=4)
    meta = json.loads((synth_dir / "meta.json").read_text())
    expected = sum(len(range(0, v["num_frames"], 4)) for v in meta["videos"] if v["split"] == "val")
    assert frames.shape == (expected, 3, 32, 32)
    assert targets.shape == (expected, 4, len(LABELS))
    assert targets.max() == 1.0 and targets.min() == 0.0


def test_token_grid_requires_square():
    class Enc(torch.nn.Module):
        tokens_per_frame = 6

    with pytest.raises(SynthError, match="square"):
        token_grid(Enc())


def test_missing_benchmark_is_clear(tmp_path):
    with pytest.raises(SynthError, match="vtg data synth"):
        load_frames(tmp_path, "train", image_size=32, grid=2)


def test_pretrain_learns_and_the_recipe_loads_the_weights(synth_dir, tmp_path):
    from vtgcore import build_model, load_recipe
    from vtgcore_plugins.encoders.tiny_vit import TinyViT

    torch.manual_seed(0)
    encoder = TinyViT()
    calls = []
    report = pretrain_encoder(encoder, synth_dir, steps=60, batch_size=64, lr=3e-3,
                              progress=lambda step, steps, loss: calls.append((step, steps, loss)))
    # once when the steps start (frames decoded), then at step 50 and at the end
    assert [(step, steps) for step, steps, _ in calls] == [(0, 60), (50, 60), (60, 60)]
    assert np.isnan(calls[0][2]) and calls[-1][2] == report["final_loss"]
    assert report["final_loss"] < 0.2  # starts near log(2) = 0.69
    assert 0.0 <= report["val"]["recall"] <= 1.0 and report["val"]["majority"] > 0.5

    recipe = load_recipe("recipes/vtgllm/synth_tiny.yaml", [f"data.video_root={synth_dir}"])
    out = tmp_path / "enc.safetensors"
    saved = pretrain_recipe_encoder(recipe, synth_dir, out, steps=5)
    assert saved["out"] == str(out) and saved["encoder"]["name"] == "tiny_vit"
    model, _ = build_model(load_recipe("recipes/vtgllm/synth_tiny.yaml",
                                       [f"data.video_root={synth_dir}", f"model.encoder.checkpoint={out}"]))
    from safetensors.torch import load_file

    state = load_file(str(out))
    for name, tensor in model.encoder.state_dict().items():
        assert torch.equal(tensor, state[name]), name
