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
import re
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
    """Contract of :class:`vtgcore.interfaces.FrameEncoder`: ``(N, 3, H, W) -> (N, L, Dv)``, with
    ``timestamps`` when it ``needs_timestamps``; ``set_time_writer`` and ``cache_signature``."""

    kind = "encoder"

    @staticmethod
    def encode(enc: Any, frames: torch.Tensor, seconds: Any = None) -> torch.Tensor:
        """Call the encoder as the model does: with each frame's seconds only when it needs them."""
        if not enc.needs_timestamps:
            return enc(frames)
        if seconds is None:
            seconds = torch.arange(frames.shape[0], dtype=torch.float32) * 1.5
        return enc(frames, seconds)

    def test_attributes(self) -> None:
        enc = self.build()
        assert enc.out_dim > 0 and enc.tokens_per_frame > 0 and enc.image_size > 0
        assert len(enc.mean) == 3 and len(enc.std) == 3 and all(s > 0 for s in enc.std)
        assert isinstance(enc.needs_timestamps, bool)

    def test_shape_and_gradients(self) -> None:
        enc = self.build()
        x = torch.randn(3, 3, enc.image_size, enc.image_size)
        out = self.encode(enc, x)
        assert out.shape == (3, enc.tokens_per_frame, enc.out_dim)
        assert torch.isfinite(out).all()
        if _trainable(enc):
            out.float().pow(2).mean().backward()
            _assert_grads(enc)

    def test_frames_are_independent(self) -> None:
        enc = self.build().eval()
        x = torch.randn(2, 3, enc.image_size, enc.image_size)
        seconds = torch.tensor([0.0, 12.3])
        with torch.no_grad():
            both = self.encode(enc, x, seconds)
            first = self.encode(enc, x[:1], seconds[:1])
        torch.testing.assert_close(both[:1], first, rtol=1e-4, atol=1e-5)

    def test_time_writer_and_cache_signature(self) -> None:
        import json

        enc = self.build().eval()
        codec = default_catalog().build("time_codec", "absolute_time_tokens", {})
        before = enc.cache_signature()
        json.dumps(before)  # part of the feature cache key: JSON-serialisable
        enc.set_time_writer(codec.encode, codec.special_tokens(), codec.token_init())
        signature = enc.cache_signature()
        json.dumps(signature)
        assert enc.cache_signature() == signature, "cache_signature() must be deterministic"
        x = torch.randn(2, 3, enc.image_size, enc.image_size)
        with torch.no_grad():
            out = self.encode(enc, x)
        assert out.shape == (2, enc.tokens_per_frame, enc.out_dim) and torch.isfinite(out).all()


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
            self._check_spans(codec, ids, tok, out)

    @staticmethod
    def _check_spans(codec: Any, ids: list[int], tok: Any, values: list[float]) -> list[tuple[int, int, float]]:
        spans = codec.decode_spans(ids, tok)
        assert [seconds for _, _, seconds in spans] == values, "decode_spans must read what decode_ids reads"
        for k, (start, end, _) in enumerate(spans):
            assert 0 <= start < end <= len(ids), spans
            if k:
                prev_start, prev_end, _ = spans[k - 1]
                assert start >= prev_start and end >= prev_end, spans
                assert start >= prev_end or (start, end) == (prev_start, prev_end), f"overlapping spans {spans}"
        return spans

    def test_decode_spans_locate_each_time(self, setup: tuple[Any, Any]) -> None:
        from vtgcore.eval.generate import render_times

        codec, tok = setup
        for v in self.values:
            ids = tok.encode(f"from {codec.encode(v)} to {codec.encode(v + 1)} seconds", add_special_tokens=False)
            spans = self._check_spans(codec, ids, tok, codec.decode_ids(ids, tok))
            assert len(spans) == 2 and spans[0][1] <= spans[1][0], spans
            for start, end, seconds in spans:  # each span reads its time alone
                assert codec.decode_ids(ids[start:end], tok) == [seconds]
            text = render_times(ids, codec, tok)  # what the task parsers read: times in decimal seconds
            numbers = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", text)]
            assert numbers == [seconds for _, _, seconds in spans], (text, spans)


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

    def test_frame_groups_follow_frame_index(self) -> None:
        """``frame_groups`` (when not None) sums to K and names every token's ``frame_index``,
        padded frames included."""
        comp = self.build(dim=self.dim).eval()
        for t, l in self.sizes:
            groups = comp.frame_groups(t, l)
            if groups is None:
                continue
            k = comp.output_tokens(t, l)
            assert sum(n for _, n in groups) == k, (groups, k)
            assert all(n >= 1 for _, n in groups), groups
            frames = [f for f, _ in groups]
            assert frames == sorted(set(frames)) and all(0 <= f < t for f in frames), groups
            expected = torch.tensor([f for f, n in groups for _ in range(n)])
            mask = torch.ones(2, t, dtype=torch.bool)
            mask[1, t // 2 + 1:] = False
            out = comp(torch.randn(2, t, l, self.dim), mask, torch.arange(t).float().expand(2, t))
            assert out.frame_index is not None, "a compressor with frame_groups must return frame_index"
            assert out.frame_index.tolist() == [expected.tolist()] * 2

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

    def test_add_special_tokens(self) -> None:
        llm = self.build()
        tok = llm.tokenizer
        (vid,) = llm.add_tokens(["<VIDEO_X>"], special=True)
        assert tok.convert_tokens_to_ids("<VIDEO_X>") == vid
        assert llm.embed(torch.tensor([[vid]])).shape == (1, 1, llm.hidden_size)
        ids = tok.encode("a<VIDEO_X><VIDEO_X> b", add_special_tokens=False)
        assert ids.count(vid) == 2, "a special token is never split"
        assert "VIDEO_X" not in tok.decode(ids, skip_special_tokens=True)
        assert llm.add_tokens(["<VIDEO_X>"], special=True) == [vid]

    def test_forward_without_logits_gives_the_same_loss(self) -> None:
        llm = self.build().eval()
        ids = torch.tensor([llm.tokenizer.encode("a red circle appears at the left", add_special_tokens=False)] * 2)
        labels = ids.clone()
        labels[:, : ids.shape[1] // 2] = -100  # the loss only on the answer half, as in training
        labels[1, -1] = -100
        mask = torch.ones_like(ids)
        emb = llm.embed(ids)
        with torch.no_grad():
            full = llm(inputs_embeds=emb, attention_mask=mask, labels=labels, return_logits=True)
            lean = llm(inputs_embeds=emb, attention_mask=mask, labels=labels, return_logits=False)
        assert full.logits.shape[:2] == ids.shape
        assert lean.logits.shape[0] == 2 and lean.logits.shape[1] <= ids.shape[1]
        assert lean.logits.shape[-1] == full.logits.shape[-1]
        torch.testing.assert_close(lean.loss, full.loss, rtol=1e-4, atol=1e-5)

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

    def test_default_position_ids_change_nothing(self) -> None:
        """``position_ids`` equal to the default ``0, 1, ...`` over the real tokens of left-padded
        rows (1 at padding) give the same logits, loss and greedy tokens as none."""
        llm = self.build().eval()
        tok = llm.tokenizer
        texts = ["a red circle appears at the left", "a blue square"]
        rows = [tok.encode(t, add_special_tokens=False) for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        positions = (mask.cumsum(1) - 1).masked_fill(mask == 0, 1)
        labels = ids.masked_fill(mask == 0, -100)
        emb = llm.embed(ids)
        with torch.no_grad():
            plain = llm(inputs_embeds=emb, attention_mask=mask, labels=labels)
            given = llm(inputs_embeds=emb, attention_mask=mask, labels=labels, position_ids=positions)
            lean = llm(inputs_embeds=emb, attention_mask=mask, labels=labels, return_logits=False,
                       position_ids=positions)
            real = mask.bool()
            torch.testing.assert_close(given.logits[real], plain.logits[real], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(given.loss, plain.loss, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(lean.loss, plain.loss, rtol=1e-4, atol=1e-5)
            a = llm.generate(emb, mask, max_new_tokens=3, do_sample=False)
            b = llm.generate(emb, mask, position_ids=positions, max_new_tokens=3, do_sample=False)
        assert torch.equal(a, b)


class GroundingContract(_Contract):
    """Contract of :class:`vtgcore.interfaces.GroundingStage`: shape kept, frame scores per frame,
    losses a dict of finite scalars that reach the stage's parameters."""

    kind = "grounding"
    dim: ClassVar[int] = 8
    text_dim: ClassVar[int] = 12

    def _inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens = torch.randn(2, 5, 3, self.dim)
        text = torch.randn(2, 7, self.text_dim)
        text_mask = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])
        return tokens, text, text_mask

    def _run(self, stage: Any, tokens: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> Any:
        return stage(tokens, text, mask) if stage.needs_prompt else stage(tokens, None, None)

    def test_shapes(self) -> None:
        stage = self.build(dim=self.dim, text_dim=self.text_dim)
        assert isinstance(stage.needs_prompt, bool)
        tokens, text, mask = self._inputs()
        out, logits = self._run(stage, tokens, text, mask)
        assert out.shape == tokens.shape and torch.isfinite(out).all()
        if logits is not None:
            assert logits.shape == tokens.shape[:2] and torch.isfinite(logits).all()

    def test_losses_and_gradients(self) -> None:
        from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer
        from vtgcore.types import IGNORE_INDEX

        stage = self.build(dim=self.dim, text_dim=self.text_dim)
        codec = default_catalog().build("time_codec", "plain_digits", {})
        tok = build_tiny_tokenizer()
        tokens, text, mask = self._inputs()
        tokens.requires_grad_(True)
        out, logits = self._run(stage, tokens, text, mask)
        answer = tok.encode(f"from {codec.encode(1.0)} to {codec.encode(3.0)} seconds", add_special_tokens=False)
        labels = torch.full((2, len(answer) + 2), IGNORE_INDEX)
        labels[0, 2:] = torch.tensor(answer)
        times = torch.arange(5).float().expand(2, 5)
        losses = stage.losses(logits, labels, times, torch.ones(2, 5, dtype=torch.bool), codec, tok)
        assert isinstance(losses, dict)
        total = out.float().pow(2).mean() + sum(losses.values(), torch.zeros(()))
        assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
        total.backward()
        assert tokens.grad is not None
        if _trainable(stage):
            _assert_grads(stage)


class RewardContract(_Contract):
    """Contract of :class:`vtgcore.interfaces.Reward`: a finite float for valid, empty, unparseable
    and garbage answers of every task, with each first-party time codec; never raises.

    The reward is built by :func:`vtgcore.build.build_reward` (so it gets the ``build_reward``
    wiring) and its answers are rendered as evaluation renders them
    (:func:`vtgcore.eval.generate.render_times`).
    """

    kind = "reward"
    codecs: ClassVar[tuple[str, ...]] = ("absolute_time_tokens", "plain_digits")

    def build(self, **wiring: Any) -> Any:
        from vtgcore.build import build_reward

        if not self.plugin_name:
            pytest.skip("set plugin_name on the contract subclass")
        return build_reward({"name": self.plugin_name, "params": dict(self.params)})

    @staticmethod
    def items() -> list[Any]:
        from vtgcore.data.formats import EvalItem

        return [
            EvalItem(id="q1", video="v.mp4", task="mr", query="a dog runs", duration=30.0, windows=[(15.0, 25.0)]),
            EvalItem(id="v1", video="v.mp4", task="dvc", duration=30.0, windows=[(0.0, 10.0), (12.0, 20.0)],
                     captions=["a man walks", "he sits down"]),
            EvalItem(id="q2", video="v.mp4", task="hd", query="a dog runs", duration=12.0, windows=[(2.0, 6.0)],
                     saliency=[[4, 3, 4], [2, 1, 2]], clip_ids=[1, 2]),
        ]

    @staticmethod
    def answers(codec: Any) -> list[str]:
        """Valid answers of the three tasks, times written with ``codec``."""
        t = codec.encode
        return [f"{t(10.0)} - {t(20.0)} seconds.",
                f"{t(0.0)} - {t(9.0)} seconds, a man walks. {t(12.0)} - {t(19.0)} seconds, he sits down.",
                f"{t(2.0)} seconds, saliency score: 3. {t(4.0)} seconds, saliency score: 1."]

    @pytest.fixture(params=codecs)
    def setup(self, request: Any) -> tuple[Any, Any, Any]:
        from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer

        codec = default_catalog().build("time_codec", request.param, {})
        tok = build_tiny_tokenizer()
        tok.add_tokens([t for t in codec.special_tokens() if t not in tok.get_vocab()])
        return self.build(), codec, tok

    @staticmethod
    def score(reward: Any, item: Any, ids: list[int], codec: Any, tok: Any) -> float:
        from vtgcore.eval.generate import render_times

        value = reward.reward(item, render_times(ids, codec, tok), ids, codec)
        assert isinstance(value, float) and math.isfinite(value), value
        return value

    def test_valid_answers(self, setup: tuple[Any, Any, Any]) -> None:
        reward, codec, tok = setup
        for item in self.items():
            for answer in self.answers(codec):
                ids = tok.encode(answer, add_special_tokens=False)
                first = self.score(reward, item, ids, codec, tok)
                assert self.score(reward, item, ids, codec, tok) == first, "a reward is deterministic"

    def test_empty_and_unparseable_answers(self, setup: tuple[Any, Any, Any]) -> None:
        reward, codec, tok = setup
        for item in self.items():
            self.score(reward, item, [], codec, tok)
            for text in ("", " ", "I don't know.", "nan - inf seconds", "-5 - 1e400 seconds", "9" * 400):
                self.score(reward, item, tok.encode(text, add_special_tokens=False), codec, tok)
                value = reward.reward(item, text, [], codec)  # the text alone, ids that do not match it
                assert isinstance(value, float) and math.isfinite(value), (text, value)

    def test_garbage_ids_never_raise(self, setup: tuple[Any, Any, Any]) -> None:
        reward, codec, tok = setup
        rng = random.Random(2)
        special = tok.convert_tokens_to_ids(codec.special_tokens()) or [0]
        for k in range(60):
            ids = [rng.choice(special) if rng.random() < 0.5 else rng.randrange(len(tok)) for _ in range(rng.randrange(40))]
            self.score(reward, self.items()[k % 3], ids, codec, tok)

    def test_odd_items_never_raise(self, setup: tuple[Any, Any, Any]) -> None:
        from vtgcore.data.formats import EvalItem

        reward, codec, tok = setup
        ids = tok.encode(self.answers(codec)[0], add_special_tokens=False)
        for item in (EvalItem(id="x", video="v", task="mr"), EvalItem(id="y", video="v", task="hd", duration=None),
                     EvalItem(id="z", video="v", task="summary", duration=5.0),
                     EvalItem(id="w", video="v", task="dvc", duration=float("nan"), windows=[(3.0, 1.0)])):
            self.score(reward, item, ids, codec, tok)
