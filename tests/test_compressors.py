"""Compressors beyond the contract: values by hand, padding, degenerate inputs, batch independence."""

from __future__ import annotations

import math

import pytest
import torch

from vtgcore.catalog import default_catalog
from vtgcore_plugins.compressors.codebook import CodebookCompressor
from vtgcore_plugins.compressors.cross_attention import CrossAttentionCompressor
from vtgcore_plugins.compressors.diverse import DiverseCompressor
from vtgcore_plugins.compressors.entropy import EntropyCompressor, knn_entropy_terms
from vtgcore_plugins.compressors.identity import IdentityCompressor
from vtgcore_plugins.compressors.video_qformer import VideoQFormerCompressor


def _picked(out, tokens):
    """Token index (into the flattened T*L tokens) of every output slot, -1 for empty slots."""
    b, t, l, d = tokens.shape
    flat = tokens.reshape(b, t * l, d)
    eq = (out.tokens.unsqueeze(2) == flat.unsqueeze(1)).all(-1)  # (B, K, N)
    idx = eq.float().argmax(-1)
    return torch.where(out.mask, idx, torch.full_like(idx, -1))


# ---------------------------------------------------------------- identity

def test_identity_flattens_frame_major_and_masks_padding():
    comp = IdentityCompressor(dim=2)
    tokens = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).view(2, 3, 2, 2)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    assert comp.output_tokens(3, 2) == 6
    out = comp(tokens, mask)
    assert out.tokens.shape == (2, 6, 2)
    torch.testing.assert_close(out.tokens[0, :4], tokens[0, :2].reshape(4, 2))  # (t, l) -> t * L + l
    torch.testing.assert_close(out.tokens[0, 3], tokens[0, 1, 1])
    assert out.frame_index.tolist() == [[0, 0, 1, 1, 2, 2]] * 2
    assert out.mask.tolist() == [[True] * 4 + [False] * 2, [False] * 6]
    assert (out.tokens[0, 4:] == 0).all() and (out.tokens[1] == 0).all()  # padding and empty video: zeros
    assert comp(tokens).mask.all()


# ---------------------------------------------------------------- cross_attention

def _manual_mha(attn, q, x, heads):
    """Multi-head attention from the module's weights, written out (one sample, no mask)."""
    d = q.shape[-1]
    wq, wk, wv = attn.in_proj_weight.split(d)
    bq, bk, bv = attn.in_proj_bias.split(d)
    qh, kh, vh = (t.view(t.shape[0], heads, d // heads).transpose(0, 1)
                  for t in (q @ wq.T + bq, x @ wk.T + bk, x @ wv.T + bv))
    a = (qh @ kh.transpose(1, 2) / math.sqrt(d // heads)).softmax(-1)
    out = (a @ vh).transpose(0, 1).reshape(q.shape[0], d)
    return out @ attn.out_proj.weight.T + attn.out_proj.bias


def test_cross_attention_by_hand_with_padding_and_any_batch():
    torch.manual_seed(0)
    comp = CrossAttentionCompressor(dim=8, num_queries=4, num_heads=2)
    tokens = torch.randn(3, 4, 2, 8)
    mask = torch.tensor([[True] * 4, [True, True, False, False], [False] * 4])
    out = comp(tokens, mask)  # B = 3: the original only worked for B = 1
    assert out.tokens.shape == (3, 4, 8) and out.frame_index.eq(-1).all()
    assert out.mask.tolist() == [[True] * 4, [True] * 4, [False] * 4]
    for b, real in ((0, 4), (1, 2)):
        x = tokens[b, :real].reshape(real * 2, 8)  # padded frames simply absent
        torch.testing.assert_close(out.tokens[b], _manual_mha(comp.attn, comp.queries, x, 2), atol=1e-5, rtol=1e-4)
        alone = comp(tokens[b:b + 1], mask[b:b + 1])
        torch.testing.assert_close(alone.tokens[0], out.tokens[b], atol=1e-6, rtol=1e-5)
    assert (out.tokens[2] == 0).all()  # no real frame: zeros, no NaN


def test_cross_attention_equals_mha_with_expanded_queries():
    torch.manual_seed(1)
    comp = CrossAttentionCompressor(dim=8, num_queries=3, num_heads=4)
    tokens = torch.randn(2, 3, 2, 8)
    x = tokens.reshape(2, 6, 8)
    expected, _ = comp.attn(comp.queries.expand(2, 3, 8), x, x)
    torch.testing.assert_close(comp(tokens).tokens, expected)


def test_cross_attention_heads_must_divide_dim():
    with pytest.raises(ValueError, match="num_heads=3 must divide .*dim=8"):
        CrossAttentionCompressor(dim=8, num_heads=3)
    with pytest.raises(Exception, match="num_heads"):
        default_catalog().build("compressor", "cross_attention", {"num_heads": 5}, dim=8)


# ---------------------------------------------------------------- codebook

def test_codebook_straight_through_and_loss_by_hand():
    comp = CodebookCompressor(dim=2, num_codes=3, loss_weight=0.5)
    with torch.no_grad():
        comp.codes.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
    tokens = torch.tensor([
        [[[9.0, 1.0], [50.0, 50.0]], [[1.0, 1.0], [-1.0, 9.0]], [[0.0, 0.0], [10.0, 0.0]]],  # frame 2 padded
        [[[3.0, 3.0], [8.0, -1.0]], [[2.0, 7.0], [20.0, 20.0]], [[-2.0, 0.0], [30.0, 0.0]]],
    ])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    want = torch.tensor([[2, 0, 3], [4, 1, 2]])  # nearest real token of each code, by hand
    x = tokens.clone().requires_grad_(True)
    out = comp(x, mask)
    flat = tokens.reshape(2, 6, 2)
    selected = torch.stack([flat[b, want[b]] for b in range(2)])
    torch.testing.assert_close(out.tokens, selected)  # forward value = the selected tokens
    assert out.frame_index.tolist() == (want // 2).tolist() and out.mask.all()
    codes = comp.codes.detach()
    by_hand = 0.5 * sum(2 * ((selected[b] - codes) ** 2).mean() for b in range(2)) / 2
    torch.testing.assert_close(out.aux_losses["codebook_loss"], by_hand)
    out.tokens.sum().backward()
    torch.testing.assert_close(comp.codes.grad, torch.full((3, 2), 2.0))  # identity gradient, summed over B
    assert x.grad is None or (x.grad == 0).all()  # the output itself sends nothing to the input
    comp.codes.grad = None
    comp(x, mask).aux_losses["codebook_loss"].backward()
    assert x.grad.abs().sum() > 0 and comp.codes.grad.abs().sum() > 0


def test_codebook_empty_video_gives_zeros_and_no_loss():
    comp = CodebookCompressor(dim=4, num_codes=2)
    tokens = torch.randn(2, 2, 3, 4)
    out = comp(tokens, torch.tensor([[True, False], [False, False]]))
    assert out.mask.tolist() == [[True, True], [False, False]] and out.frame_index[1].eq(-1).all()
    assert (out.tokens[1] == 0).all() and out.frame_index[0].eq(0).all()
    alone = comp(tokens[:1], torch.tensor([[True, False]]))
    torch.testing.assert_close(out.aux_losses["codebook_loss"], alone.aux_losses["codebook_loss"])


# ---------------------------------------------------------------- diverse

def test_diverse_distinct_real_and_deterministic_in_eval():
    comp = DiverseCompressor(dim=8, num_tokens=6).eval()
    tokens = torch.randn(4, 5, 3, 8)
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1, 3:] = False
    out = comp(tokens, mask)
    idx = _picked(out, tokens)
    for b in range(4):
        assert len(set(idx[b].tolist())) == 6
    assert (out.frame_index[1] < 3).all() and out.mask.all()
    assert (out.frame_index.diff(dim=1) >= 0).all()  # temporal order by default
    torch.testing.assert_close(comp(tokens, mask).tokens, out.tokens)
    comp.seed = 1
    assert not torch.equal(comp(tokens, mask).tokens, out.tokens)


def test_diverse_first_two_picks_from_different_clusters():
    comp = DiverseCompressor(dim=4, num_tokens=2, order="selection").train()
    torch.manual_seed(0)
    base = torch.randn(64, 8, 1, 4) * 0.01
    base[:, 4:] += 100.0  # frames 0-3 near 0, frames 4-7 near 100
    out = comp(base)
    first, second = out.frame_index[:, 0] // 4, out.frame_index[:, 1] // 4
    assert (first != second).all()
    assert 0 < first.sum() < 64  # the first pick is random


def test_diverse_draws_proportional_to_squared_distance():
    # tokens on a line at 0, 1 and 3; given the first pick at 0, the second is 1 with
    # probability 1/(1+9) (squared, k-means++) or 1/(1+3) (plain distance, the original)
    tokens = torch.zeros(3000, 3, 1, 2)
    tokens[:, 1, 0, 0], tokens[:, 2, 0, 0] = 1.0, 3.0
    for squared, p in ((True, 0.1), (False, 0.25)):
        torch.manual_seed(0)
        out = DiverseCompressor(dim=2, num_tokens=2, squared=squared, order="selection").train()(tokens)
        given = out.frame_index[:, 0] == 0
        freq = (out.frame_index[given, 1] == 1).float().mean().item()
        assert abs(freq - p) < 0.05, (squared, freq)


def test_diverse_static_video_and_too_few_tokens():
    comp = DiverseCompressor(dim=4, num_tokens=5).eval()
    static = torch.ones(2, 3, 2, 4)
    out = comp(static)
    assert torch.isfinite(out.tokens).all() and out.mask.all()
    assert all(len(set(r)) == 5 for r in (out.frame_index * 10 + torch.arange(5)).tolist())
    index, valid = comp.select(static.reshape(2, 6, 4), torch.ones(2, 6, dtype=torch.bool))
    assert valid.all() and all(len(set(r)) == 5 for r in index.tolist())  # fallback: uniform, distinct
    few = comp(torch.randn(2, 3, 1, 4), torch.tensor([[True, True, False], [False] * 3]))
    assert few.mask.tolist() == [[True, True, False, False, False], [False] * 5]
    assert (few.tokens[0, 2:] == 0).all() and (few.tokens[1] == 0).all()
    assert few.frame_index[0].tolist() == [0, 1, -1, -1, -1]


def test_diverse_is_vectorised_over_the_batch(monkeypatch):
    calls = []
    real = torch.multinomial

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "multinomial", counting)
    DiverseCompressor(dim=4, num_tokens=3)(torch.randn(5, 4, 2, 4))
    assert len(calls) == 3 and all(s[0] == 5 for s in calls)  # one draw per step for the whole batch


def test_diverse_gradient_reaches_input():
    x = torch.randn(2, 3, 2, 4, requires_grad=True)
    DiverseCompressor(dim=4, num_tokens=3)(x).tokens.sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="order"):
        DiverseCompressor(dim=4, order="random")


# ---------------------------------------------------------------- entropy

def test_entropy_terms_by_hand_max_norm():
    # 2-D points; max-norm distances; k = 1
    pts = torch.tensor([[0.0, 0.0], [1.0, 3.0], [2.0, 0.5], [10.0, 10.0]])
    real = torch.ones(1, 4, dtype=torch.bool)
    h = knn_entropy_terms(pts[None], real, k=1)[0]
    eps = torch.tensor([2.0, 2.5, 2.0, 9.0])  # L-inf distance to the nearest other point (L2 differs)
    const = -torch.digamma(torch.tensor(1.0)) + torch.digamma(torch.tensor(4.0))
    torch.testing.assert_close(h, const + (2 / 4) * torch.log(2 * eps))
    # with the last point padded it is neither counted nor a neighbour
    real[0, 3] = False
    h = knn_entropy_terms(pts[None], real, k=2)[0]
    eps = torch.tensor([3.0, 3.0, 2.5])  # 2nd neighbour of each among three points (k_eff = 2)
    const = -torch.digamma(torch.tensor(2.0)) + torch.digamma(torch.tensor(3.0))
    torch.testing.assert_close(h[:3], const + (2 / 3) * torch.log(2 * eps))
    assert h[3] == float("-inf")


def test_entropy_static_video_and_padding():
    comp = EntropyCompressor(dim=4, num_tokens=4, k=3).eval()
    static = torch.ones(2, 3, 2, 4)
    out = comp(static)  # eps = 0 everywhere: the original's multinomial raised here
    assert torch.isfinite(out.tokens).all() and out.mask.all()
    assert torch.isfinite(knn_entropy_terms(static.reshape(2, 6, 4), torch.ones(2, 6, dtype=torch.bool), 3)).all()
    shifted = EntropyCompressor(dim=4, num_tokens=4, weighting="shifted").eval()(static)
    assert torch.isfinite(shifted.tokens).all() and shifted.mask.all()
    comp.train()
    tokens = torch.randn(3, 6, 2, 4)
    tokens[:, 4:] *= 100  # padded frames are outliers: the highest entropy if they were counted
    mask = torch.tensor([[True] * 4 + [False] * 2] * 3)
    for seed in range(5):
        torch.manual_seed(seed)
        out = comp(tokens, mask)
        assert (out.frame_index < 4).all() and out.mask.all()
        idx = _picked(out, tokens)
        assert all(len(set(r)) == 4 for r in idx.tolist()) and (idx.diff(dim=1) > 0).all()  # temporal


def test_entropy_too_few_tokens_and_empty_video():
    comp = EntropyCompressor(dim=4, num_tokens=5, k=2).eval()
    out = comp(torch.randn(2, 2, 2, 4), torch.tensor([[True, False], [False, False]]))
    assert out.mask.tolist() == [[True, True, False, False, False], [False] * 5]
    assert (out.tokens[0, 2:] == 0).all() and (out.tokens[1] == 0).all()
    assert out.frame_index.tolist() == [[0, 0, -1, -1, -1], [-1] * 5]


def test_entropy_deterministic_in_eval_and_vectorised(monkeypatch):
    comp = EntropyCompressor(dim=4, num_tokens=3).eval()
    tokens = torch.randn(5, 4, 3, 4)
    a = comp(tokens)
    torch.testing.assert_close(comp(tokens).tokens, a.tokens)
    calls = []
    real = torch.cdist
    monkeypatch.setattr(torch, "cdist", lambda *args, **kw: calls.append(args[0].shape) or real(*args, **kw))
    comp(tokens)
    assert calls == [torch.Size([5, 12, 4])]  # one batched call, no per-sample loop
    # each sample's terms equal the sample computed alone
    real_mask = torch.ones(5, 12, dtype=torch.bool)
    real_mask[2, 6:] = False
    h = knn_entropy_terms(tokens.reshape(5, 12, 4), real_mask, 5)
    torch.testing.assert_close(h[2, :6], knn_entropy_terms(tokens.reshape(5, 12, 4)[2:3, :6], real_mask[2:3, :6], 5)[0])
    with pytest.raises(ValueError, match="weighting"):
        EntropyCompressor(dim=4, weighting="max")


def test_entropy_favours_isolated_tokens():
    # 8 duplicated tokens and one far away: with K = 1 the isolated one has by far the highest h
    tokens = torch.zeros(400, 9, 1, 2)
    tokens[:, 8] = 5.0
    torch.manual_seed(0)
    out = EntropyCompressor(dim=2, num_tokens=1, k=1).train()(tokens)
    assert (out.frame_index[:, 0] == 8).float().mean() > 0.9


# ---------------------------------------------------------------- video_qformer

def _vqf(**kw):
    torch.manual_seed(0)
    params = dict(num_query_tokens=3, num_layers=1, num_heads=2, window_size=3, stride=2, max_frames=16, dropout=0.0)
    params.update(kw)
    return VideoQFormerCompressor(dim=8, **params).eval()


@pytest.mark.parametrize("t, windows", [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (9, 5)])
def test_video_qformer_k_formula(t, windows):
    comp = _vqf()
    k = comp.output_tokens(t, 2)
    assert k == windows * 3 == math.ceil(t / 2) * 3
    out = comp(torch.randn(2, t, 2, 8))
    assert out.tokens.shape == (2, k, 8) and out.mask.all() and out.frame_index.eq(-1).all()


def test_video_qformer_windows_by_hand():
    comp = _vqf()  # T = 5, stride 2, window 3: frames [0, 1, 2], [2, 3, 4], [4]
    tokens = torch.randn(1, 5, 2, 8)
    out = comp(tokens)
    x = tokens + comp.frame_position.weight[:5].view(1, 5, 1, 8)
    for w, frames in enumerate(([0, 1, 2], [2, 3, 4], [4])):
        enc = x[:, frames].reshape(1, len(frames) * 2, 8)
        want = comp.qformer(query_embeds=comp.query_tokens, encoder_hidden_states=enc).last_hidden_state
        torch.testing.assert_close(out.tokens[:, 3 * w:3 * w + 3], want, atol=1e-5, rtol=1e-4)


def test_video_qformer_padding_ignored_and_empty_windows_zero():
    comp = _vqf(window_size=2, stride=2)
    tokens = torch.randn(2, 6, 2, 8)
    mask = torch.tensor([[True] * 3 + [False] * 3, [True] * 6])
    out = comp(tokens, mask)
    other = tokens.clone()
    other[0, 3:] = torch.randn(3, 2, 8) * 100
    again = comp(other, mask)
    torch.testing.assert_close(again.tokens, out.tokens)
    assert out.mask.tolist() == [[True] * 6 + [False] * 3, [True] * 9]
    assert (out.tokens[0, 6:] == 0).all()
    alone = comp(tokens[1:], mask[1:])
    torch.testing.assert_close(alone.tokens[0], out.tokens[1], atol=1e-5, rtol=1e-4)
    empty = comp(tokens[:1], torch.zeros(1, 6, dtype=torch.bool))
    assert not empty.mask.any() and (empty.tokens == 0).all()


def test_video_qformer_errors_and_gradients():
    with pytest.raises(ValueError, match="num_heads"):
        VideoQFormerCompressor(dim=8, num_heads=3)
    comp = _vqf().train()
    with pytest.raises(ValueError, match="max_frames"):
        comp(torch.randn(1, 17, 2, 8))
    x = torch.randn(2, 4, 2, 8, requires_grad=True)
    comp(x).tokens.square().sum().backward()
    assert x.grad.abs().sum() > 0
    assert comp.query_tokens.grad.abs().sum() > 0 and comp.frame_position.weight.grad[:4].abs().sum() > 0


def test_slot_matches_reference_and_empty_video_gives_zeros():
    """The slot mix equals ``softmax_n(X S)^T X`` over real tokens; a video with no real frame gives
    zeros, mask False, and finite gradients (no NaN pass over (B, N, K))."""
    from vtgcore_plugins.compressors.slot import SlotCompressor

    torch.manual_seed(0)
    comp = SlotCompressor(8, num_slots=5)
    x = torch.randn(3, 4, 3, 8, requires_grad=True)
    mask = torch.tensor([[True] * 4, [True, True, False, False], [False] * 4])
    out = comp(x, mask)
    flat = x.reshape(3, 12, 8)
    for i in range(2):
        real = flat[i][mask[i].repeat_interleave(3)]
        ref = (real @ comp.slots).softmax(0).T @ real
        torch.testing.assert_close(out.tokens[i], ref)
    assert torch.equal(out.tokens[2], torch.zeros(5, 8)) and out.mask.tolist() == [[True] * 5, [True] * 5, [False] * 5]
    out.tokens.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(comp.slots.grad).all()
    assert torch.equal(x.grad[2], torch.zeros(4, 3, 8))


def test_entropy_terms_same_in_row_blocks(monkeypatch):
    """Distances computed a block of query rows at a time give exactly the whole-matrix result."""
    from vtgcore_plugins.compressors import entropy

    torch.manual_seed(0)
    x = torch.randn(3, 50, 6)
    x[0, :10] = 0.0  # duplicated tokens: zero distances
    real = torch.ones(3, 50, dtype=torch.bool)
    real[1, 30:] = False
    real[2, 1:] = False  # a single real token
    monkeypatch.setattr(entropy, "ROW_BLOCK_ELEMENTS", 1 << 30)
    whole = knn_entropy_terms(x, real)
    for block in (3 * 50 * 7, 1):  # 7 rows, then one row at a time
        monkeypatch.setattr(entropy, "ROW_BLOCK_ELEMENTS", block)
        assert torch.equal(knn_entropy_terms(x, real), whole)
