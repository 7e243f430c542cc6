"""Time embeddings: the absolute-second table, its initialisations, the frame-index table and their sum."""

from __future__ import annotations

import math

import pytest
import torch

from vtgcore.errors import ShapeError
from vtgcore_plugins.time_embeddings.abs_second_table import AbsSecondTable, fill_untrained_rows, sinusoidal_table
from vtgcore_plugins.time_embeddings.frame_index import FrameIndexTable, nearest_rows


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


def _trained_table() -> torch.Tensor:
    table = torch.zeros(10, 2)
    table[2] = torch.tensor([1.0, 0.0])
    table[6] = torch.tensor([0.0, 1.0])
    return table


def test_linear_fill_by_hand_with_end_clamping():
    filled = fill_untrained_rows(_trained_table(), "linear")
    expected = torch.tensor([[1, 0], [1, 0], [1, 0], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75],
                             [0, 1], [0, 1], [0, 1], [0, 1]])
    assert torch.allclose(filled, expected)


def test_legacy_swapped_reproduces_both_bugs():
    filled = fill_untrained_rows(_trained_table(), "legacy_swapped")
    # bug 1: second 3 (next to trained second 2) gets mostly second 6's vector
    assert torch.allclose(filled[3], torch.tensor([0.25, 0.75]))
    # the left margin starts at row 0 (untrained, zero): row 1 = 0.5 * row 2
    assert torch.allclose(filled[1], torch.tensor([0.5, 0.0]))
    # bug 2: past the last trained second, right = -1 (the last row), filled in place from the last
    # row down: row 9 = row 6 * 3 / -7 + row 9 (still zero); rows 8 and 7 read the filled row 9
    assert torch.allclose(filled[9], torch.tensor([0.0, -3 / 7]))
    assert torch.allclose(filled[8], torch.tensor([0.0, 2 / -7 + (-3 / 7) * -9 / -7]))  # -41/49
    assert torch.allclose(filled[7], torch.tensor([0.0, 1 / -7 + (-3 / 7) * -8 / -7]))  # -31/49


def test_fill_leaves_trained_rows_and_degenerate_tables_alone():
    table = _trained_table()
    for mode in ("linear", "legacy_swapped", "none"):
        filled = fill_untrained_rows(table, mode)
        assert torch.equal(filled[[2, 6]], table[[2, 6]])
    assert torch.equal(fill_untrained_rows(torch.zeros(4, 3)), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="interpolation"):
        fill_untrained_rows(table, "cubic")


def test_interpolation_applies_in_eval_mode_only_and_follows_updates():
    emb = AbsSecondTable(dim=2, max_seconds=10, interpolation="linear")
    with torch.no_grad():
        emb.weight.copy_(_trained_table())
    tokens = torch.zeros(1, 1, 1, 2)
    at_four = torch.tensor([[4.0]])
    assert torch.equal(emb(tokens, at_four), torch.zeros(1, 1, 1, 2))  # training: raw zero row
    emb.eval()
    assert torch.allclose(emb(tokens, at_four)[0, 0, 0], torch.tensor([0.5, 0.5]))
    with torch.no_grad():
        emb.weight[6] = torch.tensor([0.0, 3.0])  # a change invalidates the cached copy
    assert torch.allclose(emb(tokens, at_four)[0, 0, 0], torch.tensor([0.5, 1.5]))
    assert emb.weight[4].abs().sum() == 0  # the parameter itself is never filled


def test_untrained_rows_stay_exactly_zero_through_adamw_with_weight_decay():
    from mmengine.optim import build_optim_wrapper

    from vtgcore.mm.runner import optim_wrapper_cfg

    torch.manual_seed(0)

    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.time_embedding = AbsSecondTable(dim=4, max_seconds=32)
            self.head = torch.nn.Linear(4, 1)

    model = Toy()
    cfg = optim_wrapper_cfg({"optim_wrapper": {
        "optimizer": {"type": "AdamW", "lr": 1e-2, "weight_decay": 0.1},
        "paramwise_cfg": {"custom_keys": {"time_embedding": {"lr_mult": 10.0}}}}})
    optim = build_optim_wrapper(model, cfg)
    for _ in range(20):
        seconds = torch.randint(0, 8, (3, 5)).float()  # only seconds 0..7 are ever seen
        tokens = model.time_embedding(torch.randn(3, 5, 2, 4), seconds)
        optim.update_params(model.head(tokens).pow(2).mean())
    weight = model.time_embedding.weight.detach()
    assert (weight[:8].abs().sum(dim=1) > 0).all()
    assert torch.count_nonzero(weight[8:]) == 0


@pytest.mark.parametrize("old", [1, 2, 3, 7, 8, 16, 31, 32, 33, 64, 97])
def test_nearest_rows_equal_torch_interpolate_nearest_for_every_size(old):
    """The original widens the frame table with ``F.interpolate(mode="nearest")`` (float32 scale):
    the exact integer ``floor(j * R / rows)`` differs for some sizes (32 -> 82, 8 -> 94)."""
    import torch.nn.functional as F

    table = torch.randn(old, 3, generator=torch.Generator().manual_seed(old))
    for rows in range(1, 200):
        want = F.interpolate(table.T.unsqueeze(0), size=rows, mode="nearest")[0].T
        assert torch.equal(nearest_rows(table, rows), want), (old, rows)


def test_nearest_rows_where_exact_integer_arithmetic_differs():
    ids = torch.arange(32.0).unsqueeze(1)
    exact = [j * 32 // 82 for j in range(82)]
    got = nearest_rows(ids, 82)[:, 0].long().tolist()
    assert sum(a != b for a, b in zip(got, exact)) == 1  # PyTorch's float32 scale moves one row
    assert nearest_rows(torch.arange(8.0).unsqueeze(1), 94)[:, 0].long().tolist() != [j * 8 // 94 for j in range(94)]
    assert nearest_rows(ids, 96)[:, 0].long().tolist() == [j // 3 for j in range(96)]
    assert nearest_rows(ids.half(), 82).dtype == torch.float16
