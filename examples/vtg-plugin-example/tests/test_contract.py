"""The contract every vtgcore compressor passes, run against strided_pool, plus its own behaviour."""

import torch

from vtgcore.catalog import default_catalog
from vtgcore.testing.contracts import CompressorContract


class TestStridedPoolContract(CompressorContract):
    plugin_name = "strided_pool"
    params = {"stride": 2, "tokens_per_frame": 2}


class TestStridedPoolStrideThree(CompressorContract):
    plugin_name = "strided_pool"
    params = {"stride": 3, "tokens_per_frame": 1}


def test_groups_average_only_real_frames():
    comp = default_catalog().build("compressor", "strided_pool", {"stride": 2, "tokens_per_frame": 1}, dim=1)
    frames = torch.tensor([1.0, 3.0, 5.0, 100.0, 7.0])[None, :, None, None]  # (B=1, T=5, L=1, Dv=1)
    mask = torch.tensor([[True, True, True, False, True]])
    out = comp(frames, mask)
    assert comp.output_tokens(5, 1) == 3
    assert out.tokens.flatten().tolist() == [2.0, 5.0, 7.0]  # (1+3)/2, 5 alone (100 is padding), 7
    assert out.mask.tolist() == [[True, True, True]]
