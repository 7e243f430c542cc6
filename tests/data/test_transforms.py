"""Clip transforms: resize (squash, pad), one random resized crop per clip, normalisation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision import transforms as tv1

from vtgcore.data.transforms import (
    CLIP_MEAN,
    CLIP_STD,
    normalize,
    random_resized_crop,
    random_resized_crop_params,
    resize_frames,
)
from vtgcore.errors import ShapeError


def random_clip(t: int = 4, h: int = 48, w: int = 80, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (t, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_squash_shape_and_constant_frames():
    frames = torch.full((3, 3, 30, 70), 123, dtype=torch.uint8)
    out = resize_frames(frames, 24)
    assert out.shape == (3, 3, 24, 24) and out.dtype == torch.uint8
    assert (out == 123).all()


def test_pad_keeps_aspect_with_zero_rows_above_and_below():
    frames = torch.full((2, 3, 32, 64), 200, dtype=torch.uint8)  # wide: 2:1
    out = resize_frames(frames, 64, mode="pad")
    assert out.shape == (2, 3, 64, 64)
    assert (out[:, :, :16] == 0).all() and (out[:, :, 48:] == 0).all()
    assert (out[:, :, 16:48] == 200).all()


def test_pad_tall_frames_pads_columns_centred():
    frames = torch.full((1, 3, 60, 20), 90, dtype=torch.uint8)  # tall: 1:3
    out = resize_frames(frames, 30, mode="pad")
    assert (out[..., :, :10] == 0).all() and (out[..., :, 20:] == 0).all()
    assert (out[..., :, 10:20] == 90).all()


def test_resize_rejects_bad_input():
    with pytest.raises(ValueError, match="squash, pad"):
        resize_frames(random_clip(), 16, mode="crop")
    with pytest.raises(ShapeError):
        resize_frames(torch.zeros(3, 16, 16, dtype=torch.uint8), 8)
    with pytest.raises(ShapeError):
        resize_frames(torch.zeros(2, 3, 16, 16), 8)


def test_crop_is_the_same_box_for_every_frame():
    frame = random_clip(t=1)
    clip = frame.repeat(5, 1, 1, 1)
    out = random_resized_crop(clip, 32, generator=torch.Generator().manual_seed(3))
    assert out.shape == (5, 3, 32, 32) and out.dtype == torch.uint8
    assert all(torch.equal(out[0], out[i]) for i in range(1, 5))


def test_crop_is_reproducible_and_depends_on_the_seed():
    clip = random_clip()
    a = random_resized_crop(clip, 24, generator=torch.Generator().manual_seed(1))
    b = random_resized_crop(clip, 24, generator=torch.Generator().manual_seed(1))
    c = random_resized_crop(clip, 24, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_crop_of_a_clip_equals_crop_of_each_frame_with_the_same_box():
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as tvf

    clip = random_clip(t=3)
    out = random_resized_crop(clip, 20, generator=torch.Generator().manual_seed(9))
    top, left, h, w = random_resized_crop_params(48, 80, generator=torch.Generator().manual_seed(9))
    for i in range(3):
        one = tvf.resized_crop(
            clip[i], top, left, h, w, [20, 20], interpolation=InterpolationMode.BICUBIC, antialias=True
        )
        assert torch.equal(out[i], one)


@settings(max_examples=100, deadline=None)
@given(h=st.integers(8, 300), w=st.integers(8, 300), seed=st.integers(0, 2**31))
def test_crop_params_match_torchvision_for_the_same_seed(h, w, seed):
    ours = random_resized_crop_params(h, w, (0.5, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(seed))
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        theirs = tv1.RandomResizedCrop.get_params(torch.zeros(3, h, w), (0.5, 1.0), (3 / 4, 4 / 3))
    finally:
        torch.random.set_rng_state(state)
    assert ours == tuple(theirs)
    top, left, ch, cw = ours
    assert top >= 0 and top + ch <= h and left >= 0 and left + cw <= w


def test_normalize_matches_a_hand_computation():
    frames = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    frames[:, :, 0, 0] = 0
    frames[:, :, 0, 1] = 255
    frames[:, :, 1, 0] = 128
    frames[:, :, 1, 1] = 51
    out = normalize(frames)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 2, 2)
    for c in range(3):
        for (y, x), value in {(0, 0): 0, (0, 1): 255, (1, 0): 128, (1, 1): 51}.items():
            expected = (value / 255 - CLIP_MEAN[c]) / CLIP_STD[c]
            assert out[1, c, y, x].item() == pytest.approx(expected, abs=1e-5)


def test_normalize_with_custom_constants():
    frames = torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)
    out = normalize(frames, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.125))
    assert out.flatten().tolist() == pytest.approx([1.0, 2.0, 4.0])
