"""Time embeddings: the absolute-second table, its initialisations, the frame-index table and their sum."""

from __future__ import annotations

import math

import pytest
import torch

from vtgcore.errors import ShapeError
from vtgcore_plugins.time_encodings.abs_second_table import AbsSecondTable, sinusoidal_table
from vtgcore_plugins.time_encodings.frame_index import FrameIndexTable, nearest_rows


def test_sinusoidal_rows_by_hand():
    table = sinusoidal_table(10, 4)
    w = 10 ** 0.5  # wavelength of the second pair: rows ** (2 / dim)
    expected = torch.tensor([math.sin(3.0), math.cos(3.0), math.sin(3.0 / w), math.cos(3.0 / w)])
    torch.testing.assert_close(table[3], expected)
    odd = sinusoidal_table(10, 5)  # wavelengths 10 ** (0, 0.4, 0.8); the last column is a sine
    w1, w2 = 10 ** 0.4, 10 ** 0.8
    expected = torch.tensor([math.sin(3.0), math.cos(3.0), math.sin(3 / w1), math.cos(3 / w1), math.sin(3 / w2)])
    torch.testing.assert_close(odd[3], expected)


def test_inits():
    assert AbsSecondTable(4, 16).weight.abs().sum() == 0
    torch.testing.assert_close(AbsSecondTable(4, 16, init="sinusoidal").weight.data, sinusoidal_table(16, 4))
    assert AbsSecondTable(4, 16, init="random").weight.std() > 0.5
    with pytest.raises(ValueError, match="sinusoidal"):
        AbsSecondTable(4, 16, init="xavier")


def test_sum_of_second_and_frame_rows_by_hand():
    emb = AbsSecondTable(3, max_seconds=8, max_frames=4)
    with torch.no_grad():
        emb.weight.copy_(torch.arange(24.0).view(8, 3))
        emb.frame_index.weight.copy_(100 * torch.arange(1.0, 13.0).view(4, 3))
    tokens = torch.zeros(1, 3, 2, 3)
    ts = torch.tensor([[0.4, 2.5, 3.6]])  # seconds rows 0, 2 (half to even), 4
    out = emb(tokens, ts, torch.tensor([[True, True, False]]))
    torch.testing.assert_close(out[0, 0, 0], emb.weight[0] + emb.frame_index.weight[0])
    torch.testing.assert_close(out[0, 1, 1], emb.weight[2] + emb.frame_index.weight[1])
    assert out[0, 2].abs().sum() == 0  # padded frame


def test_frame_index_rows_follow_order_not_time():
    emb = FrameIndexTable(2, max_frames=3)
    with torch.no_grad():
        emb.weight.copy_(torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]))
    out = emb(torch.zeros(1, 2, 1, 2), torch.tensor([[50.0, 7.0]]))
    assert out[0, :, 0, 0].tolist() == [1.0, 2.0]
    with pytest.raises(ShapeError, match="max_frames"):
        emb(torch.zeros(1, 4, 1, 2), torch.zeros(1, 4))


def test_nearest_resize_32_to_96_repeats_each_row_three_times():
    table = torch.arange(32.0).unsqueeze(1).expand(32, 2)
    wide = nearest_rows(table, 96)
    assert wide[:, 0].tolist() == [float(i // 3) for i in range(96)]
    emb = FrameIndexTable(2, max_frames=32)
    with torch.no_grad():
        emb.weight.copy_(table)
    emb.resize_rows(96)
    assert emb.max_frames == 96 and emb.weight.shape == (96, 2) and emb.weight.requires_grad
    torch.testing.assert_close(emb.weight.data, wide)
