"""Contract test classes, one per plugin kind. Subclass one and set ``plugin_name`` and ``params``::

    from vtgcore.testing.contracts import CompressorContract

    class TestToMe(CompressorContract):
        plugin_name = "tome"
        params = {"out_tokens": 8}

pytest then runs every ``test_*`` method against your plugin, exactly as for the built-ins. The
plugin is looked up in the catalog (built-ins plus installed entry points).
"""

from __future__ import annotations

import math
import random
from typing import Any, ClassVar

import pytest
import torch

from vtgcore.catalog import default_catalog
from vtgcore.errors import TimeCodecError


class _Contract:
    kind: ClassVar[str] = ""
    plugin_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}

    def build(self, **wiring: Any) -> Any:
        if not self.plugin_name:
            pytest.skip("set plugin_name on the contract subclass")
        return default_catalog().build(self.kind, self.plugin_name, dict(self.params), **wiring)


def _trainable(module: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad]


def _assert_grads(module: torch.nn.Module) -> None:
    missing = [n for n, p in _trainable(module) if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient reached: {missing}"


class EncoderContract(_Contract):
    """Contract of :class:`vtgcore.interfaces.FrameEncoder`: ``(N, 3, H, W) -> (N, L, Dv)``."""

    kind = "encoder"

    def test_attributes(self) -> None:
        enc = self.build()
        assert enc.out_dim > 0 and enc.tokens_per_frame > 0 and enc.image_size > 0
        assert len(enc.mean) == 3 and len(enc.std) == 3 and all(s > 0 for s in enc.std)

    def test_shape_and_gradients(self) -> None:
        enc = self.build()
        x = torch.randn(3, 3, enc.image_size, enc.image_size)
        out = enc(x)
        assert out.shape == (3, enc.tokens_per_frame, enc.out_dim)
        assert torch.isfinite(out).all()
        if _trainable(enc):
            out.float().pow(2).mean().backward()
            _assert_grads(enc)

    def test_frames_are_independent(self) -> None:
        enc = self.build().eval()
        x = torch.randn(2, 3, enc.image_size, enc.image_size)
        with torch.no_grad():
            both = enc(x)
            first = enc(x[:1])
        torch.testing.assert_close(both[:1], first, rtol=1e-4, atol=1e-5)


class TimeEmbeddingContract(_Contract):
    """Contract of :class:`vtgcore.interfaces.TimeEmbedding`: shape kept, padding untouched."""

    kind = "time_embedding"
    dim: ClassVar[int] = 8

    def test_shape_and_padding(self) -> None:
        emb = self.build(dim=self.dim)
        tokens = torch.randn(2, 5, 3, self.dim)
        ts = torch.tensor([[0.0, 1.0, 2.5, 3.0, 4.0], [0.0, 10.0, 20.0, 30.0, 40.0]])
        mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
        out = emb(tokens, ts, mask)
        assert out.shape == tokens.shape and torch.isfinite(out).all()
        torch.testing.assert_close(out[1, 3:], tokens[1, 3:])

    def test_gradients(self) -> None:
        emb = self.build(dim=self.dim)
        tokens = torch.randn(1, 4, 2, self.dim, requires_grad=True)
        out = emb(tokens, torch.tensor([[0.0, 1.0, 2.0, 3.0]]), torch.ones(1, 4, dtype=torch.bool))
        (out * torch.randn_like(out)).sum().backward()
        assert tokens.grad is not None
        _assert_grads(emb)


class TimeCodecContract(_Contract):
    """Contract of :class:`vtgcore.interfaces.TimeCodec`: round trips by id, never raises on garbage.

    Attributes:
        values: seconds that must round-trip.
        resolution: largest allowed round-trip error.
    """

    kind = "time_codec"
    values: ClassVar[tuple[float, ...]] = (0.0, 0.1, 1.0, 12.3, 59.9, 123.4, 1234.5, 3600.0)
    resolution: ClassVar[float] = 0.1

    @pytest.fixture
    def setup(self) -> tuple[Any, Any]:
        from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer

        codec = self.build()
        tok = build_tiny_tokenizer()
        tok.add_tokens([t for t in codec.special_tokens() if t not in tok.get_vocab()])
        return codec, tok

    def test_tokens(self, setup: tuple[Any, Any]) -> None:
        codec, _ = setup
        tokens = codec.special_tokens()
        assert len(tokens) == len(set(tokens))
        assert set(codec.token_init()) <= set(tokens)

    def test_round_trip(self, setup: tuple[Any, Any]) -> None:
        codec, tok = setup
        rng = random.Random(0)
        values = list(self.values) + [round(rng.uniform(0, 5000), 1) for _ in range(50)]
        for v in values:
            ids = tok.encode(f"from {codec.encode(v)} to {codec.encode(v + 1)} seconds", add_special_tokens=False)
            got = codec.decode_ids(ids, tok)
            assert len(got) == 2, (v, codec.encode(v), got)
            assert abs(got[0] - v) <= self.resolution + 1e-9 and abs(got[1] - v - 1) <= self.resolution + 1e-9

    def test_bad_times_raise(self, setup: tuple[Any, Any]) -> None:
        codec, _ = setup
        for bad in (-1.0, math.nan, math.inf, "abc"):
            with pytest.raises(TimeCodecError):
                codec.encode(bad)

    def test_arbitrary_ids_never_raise(self, setup: tuple[Any, Any]) -> None:
        codec, tok = setup
        rng = random.Random(1)
        special = tok.convert_tokens_to_ids(codec.special_tokens()) or [0]
        for _ in range(200):
            ids = [rng.choice(special) if rng.random() < 0.6 else rng.randrange(len(tok)) for _ in range(rng.randrange(30))]
            out = codec.decode_ids(ids, tok)
            assert all(isinstance(x, float) and x >= 0 for x in out)


class CompressorContract(_Contract):
    """Contract of :class:`vtgcore.interfaces.TokenCompressor`: static K, padding ignored."""

    kind = "compressor"
    dim: ClassVar[int] = 8
    sizes: ClassVar[tuple[tuple[int, int], ...]] = ((4, 3), (6, 4), (1, 2))

    def test_output_tokens_matches(self) -> None:
        comp = self.build(dim=self.dim)
        for t, l in self.sizes:
            out = comp(torch.randn(2, t, l, self.dim), torch.ones(2, t, dtype=torch.bool), torch.arange(t).float().expand(2, t))
            k = comp.output_tokens(t, l)
            assert out.tokens.shape == (2, k, self.dim) and out.mask.shape == (2, k)
            assert out.mask.dtype == torch.bool and torch.isfinite(out.tokens).all()
            if out.frame_index is not None:
                assert out.frame_index.shape == (2, k)

    def test_padding_frames_do_not_change_output(self) -> None:
        comp = self.build(dim=self.dim).eval()
        t, l = 6, 3
        x = torch.randn(1, t, l, self.dim)
        mask = torch.tensor([[True] * 4 + [False] * 2])
        ts = torch.arange(t).float()[None]
        y = x.clone()
        y[:, 4:] = torch.randn(1, 2, l, self.dim) * 100
        torch.manual_seed(0)
        a = comp(x, mask, ts)
        torch.manual_seed(0)
        b = comp(y, mask, ts)
        keep = a.mask[0]
        torch.testing.assert_close(a.tokens[0, keep], b.tokens[0, keep])

    def test_gradients(self) -> None:
        comp = self.build(dim=self.dim)
        x = torch.randn(2, 4, 3, self.dim, requires_grad=True)
        out = comp(x, torch.ones(2, 4, dtype=torch.bool), torch.arange(4).float().expand(2, 4))
        (out.tokens * torch.randn_like(out.tokens)).sum().backward()
        if _trainable(comp):
            _assert_grads(comp)


class ProjectorContract(_Contract):
    """Contract of :class:`vtgcore.interfaces.Projector`: ``(B, K, Dv) -> (B, K, D)``."""

    kind = "projector"

    def test_shape_and_gradients(self) -> None:
        proj = self.build(in_dim=8, out_dim=12)
        out = proj(torch.randn(2, 5, 8))
        assert out.shape == (2, 5, 12)
        out.sum().backward()
        _assert_grads(proj)


class LLMContract(_Contract):
    """Contract of :class:`vtgcore.interfaces.LanguageModel`."""

    kind = "llm"

    def test_add_tokens_keeps_old_rows_and_copies_init(self) -> None:
        llm = self.build()
        tok = llm.tokenizer
        old = llm.embed(torch.arange(len(tok))[None]).detach().clone()
        ids = llm.add_tokens(["<NEW_A>", "<NEW_B>"], init={"<NEW_A>": "7"})
        assert len(tok) >= old.shape[1] + 2 and tok.convert_tokens_to_ids("<NEW_A>") == ids[0]
        new = llm.embed(torch.arange(len(tok))[None]).detach()
        torch.testing.assert_close(new[:, : old.shape[1]], old)
        src = tok.encode("7", add_special_tokens=False)[-1]
        torch.testing.assert_close(new[0, ids[0]], new[0, src])
        assert llm.add_tokens(["<NEW_A>"]) == [ids[0]]

    def test_forward_loss_and_generate(self) -> None:
        llm = self.build()
        ids = torch.tensor([llm.tokenizer.encode("a red circle appears", add_special_tokens=False)])
        emb = llm.embed(ids)
        assert emb.shape == (1, ids.shape[1], llm.hidden_size)
        mask = torch.ones_like(ids)
        out = llm(inputs_embeds=emb, attention_mask=mask, labels=ids)
        assert out.logits.shape[:2] == ids.shape and torch.isfinite(out.loss)
        out.loss.backward()
        new = llm.generate(emb.detach(), mask, max_new_tokens=3, do_sample=False)
        assert new.dim() == 2 and new.shape[0] == 1 and 1 <= new.shape[1] <= 3
