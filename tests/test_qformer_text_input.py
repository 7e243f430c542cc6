"""The paper's "Q-Former text input" ablation: each frame's Q-Former also reads
"This frame is sampled at <time> second." (tiny EVA + Q-Former, tiny BERT tokenizer built in memory)."""

import re

import pytest
import torch

from vtgcore.errors import CheckpointError, ConfigValidationError, ShapeError
from vtgcore.interfaces import FrameEncoder
from vtgcore_plugins.encoders.eva_vit_g_qformer import EvaViTGQFormer, lavis_ignore_reason, module_to_lavis_key
from vtgcore_plugins.time_codecs.absolute_time_tokens import TIME_TOKENS, AbsoluteTimeTokens
from vtgcore_plugins.time_codecs.plain_digits import PlainDigits

TINY = dict(image_size=28, patch_size=14, vit_width=48, vit_depth=2, vit_heads=2, num_query_tokens=4,
            qformer_hidden=32, qformer_layers=2, qformer_heads=2, qformer_intermediate=64,
            vit_precision="fp32")
TEXT = dict(text_input=True, text_tokenizer="tiny", text_max_length=20)
Q = 4


def tiny_eva(**kw) -> EvaViTGQFormer:
    return EvaViTGQFormer(**{**TINY, **TEXT, **kw})


def frames(n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 28, 28, generator=torch.Generator().manual_seed(seed))


def with_codec(enc: EvaViTGQFormer, codec) -> EvaViTGQFormer:
    enc.set_time_writer(codec.encode, codec.special_tokens(), codec.token_init())
    return enc


# -- the encoder -----------------------------------------------------------------------------------

def test_output_is_queries_plus_fixed_text_length():
    assert FrameEncoder.needs_timestamps is False
    off = EvaViTGQFormer(**TINY)
    assert off.needs_timestamps is False and off.tokens_per_frame == Q
    enc = tiny_eva()
    assert enc.needs_timestamps is True and enc.tokens_per_frame == Q + 20
    out = enc(frames(3), torch.tensor([0.0, 1.5, 3.0]))
    assert out.shape == (3, Q + 20, 32)
    ids, mask = enc.text_ids(torch.tensor([0.0, 1234.5]))  # another time length: the same L
    assert ids.shape == mask.shape == (2, 20) and mask[0].sum() < mask[1].sum()
    with pytest.raises(ShapeError, match="timestamps"):
        enc(frames(3))
    with pytest.raises(ShapeError, match="timestamps"):
        enc(frames(3), torch.zeros(2))


def test_text_parts_are_kept_and_trainable():
    keys = set(tiny_eva().state_dict())
    assert "qformer.embeddings.word_embeddings.weight" in keys
    assert "qformer.embeddings.position_embeddings.weight" in keys
    assert "qformer.encoder.layer.1.intermediate.dense.weight" in keys
    assert "qformer.encoder.layer.1.output.LayerNorm.bias" in keys
    enc = tiny_eva()
    assert enc.qformer.embeddings.word_embeddings.weight.requires_grad
    assert not tiny_eva(freeze_qformer=True).qformer.embeddings.word_embeddings.weight.requires_grad


def test_the_text_conditions_the_query_outputs():
    enc = with_codec(tiny_eva().eval(), AbsoluteTimeTokens())
    x = frames(2)
    with torch.no_grad():
        a = enc(x, torch.tensor([1.0, 2.0]))
        same = enc(x, torch.tensor([1.0, 2.0]))
        b = enc(x, torch.tensor([7.0, 2.0]))
    torch.testing.assert_close(a, same, rtol=0, atol=0)
    assert not torch.allclose(a[0, :Q], b[0, :Q], atol=1e-4)  # another time: other query outputs
    torch.testing.assert_close(a[1], b[1])  # frames are independent


def test_chunked_equals_unchunked_with_text():
    x, ts = frames(5), torch.arange(5).float() * 2.5
    whole = tiny_eva(frame_chunk=0).eval()
    chunked = tiny_eva(frame_chunk=2).eval()
    chunked.load_state_dict(whole.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(chunked(x, ts), whole(x, ts), rtol=1e-5, atol=1e-6)


def test_time_tokens_join_the_bert_vocab_with_digit_rows():
    enc = tiny_eva()
    tok = enc.text_tokenizer
    before = len(tok)
    assert enc.qformer.embeddings.word_embeddings.weight.shape[0] == before
    with_codec(enc, AbsoluteTimeTokens())
    ids = tok.convert_tokens_to_ids(list(TIME_TOKENS))
    assert len(tok) == before + 11 and min(ids) >= before
    weight = enc.qformer.embeddings.word_embeddings.weight
    assert weight.shape[0] == before + 11 and weight.requires_grad
    for token, char in zip(TIME_TOKENS, "0123456789."):
        src = tok.encode(char, add_special_tokens=False)[-1]
        torch.testing.assert_close(weight[tok.convert_tokens_to_ids(token)], weight[src], rtol=0, atol=0)
    text = enc.frame_texts([12.3])[0]
    assert text == "This frame is sampled at " + AbsoluteTimeTokens().encode(12.3) + " second."
    row, mask = enc.text_ids([12.3])
    words = tok.convert_ids_to_tokens(row[0][mask[0].bool()].tolist())
    assert words == ["[CLS]", "this", "frame", "is", "sampled", "at", "<TIME_ZERO>", "<TIME_ZERO>",
                     "<TIME_ONE>", "<TIME_TWO>", "<TIME_DOT>", "<TIME_THREE>", "second", ".", "[SEP]"]


def test_no_token_init_and_plain_digits():
    enc = with_codec(tiny_eva(), AbsoluteTimeTokens(init_from_digits=False))
    tok, weight = enc.text_tokenizer, enc.qformer.embeddings.word_embeddings.weight
    zero, digit = tok.convert_tokens_to_ids("<TIME_ZERO>"), tok.encode("0", add_special_tokens=False)[-1]
    assert not torch.equal(weight[zero], weight[digit])
    plain = tiny_eva()
    before = len(plain.text_tokenizer)
    with_codec(plain, PlainDigits())
    assert len(plain.text_tokenizer) == before  # no tokens: digits written as text
    assert plain.frame_texts([12.3]) == ["This frame is sampled at 12.3 second."]
    frozen = with_codec(tiny_eva(freeze_qformer=True), AbsoluteTimeTokens())
    assert not frozen.qformer.embeddings.word_embeddings.weight.requires_grad


def test_bad_text_params_and_too_long_texts():
    with pytest.raises(ConfigValidationError, match="text_tokenizer"):
        tiny_eva(text_tokenizer=None)
    with pytest.raises(ConfigValidationError, match="no such folder"):
        tiny_eva(text_tokenizer="/nonexistent/bert-base-uncased")
    with pytest.raises(ConfigValidationError, match=r"\{time\}"):
        tiny_eva(text_template="no time here")
    enc = with_codec(tiny_eva(text_max_length=10), AbsoluteTimeTokens())
    with pytest.raises(ShapeError, match="text_max_length=10"):
        enc(frames(1), torch.tensor([1.0]))


# -- LAVIS loading --------------------------------------------------------------------------------

@pytest.fixture
def lavis_file(tmp_path):
    """An InstructBLIP-layout file of a tiny text-input model, with the keys still never loaded."""
    torch.manual_seed(5)
    src = tiny_eva()
    with torch.no_grad():
        for p in src.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    named = {module_to_lavis_key(k): v.clone() for k, v in src.state_dict().items() if not k.startswith("vit.")}
    assert {"Qformer.bert.embeddings.word_embeddings.weight", "Qformer.bert.embeddings.position_embeddings.weight",
            "Qformer.bert.encoder.layer.0.intermediate.dense.weight", "Qformer.bert.encoder.layer.0.output.dense.weight",
            "Qformer.bert.encoder.layer.1.output.LayerNorm.weight"} <= set(named)
    extras = {"Qformer.cls.predictions.bias": torch.randn(named["Qformer.bert.embeddings.word_embeddings.weight"].shape[0]),
              "Qformer.bert.embeddings.position_ids": torch.arange(512).unsqueeze(0), "llm_proj.weight": torch.randn(8, 32)}
    path = tmp_path / "instruct_blip_vicuna7b_trimmed.pth"
    torch.save({"model": {**named, **extras}}, path)
    return src, named, extras, path


def test_lavis_text_keys_load_with_text_input(lavis_file):
    src, _, extras, path = lavis_file
    enc = tiny_eva(qformer_checkpoint=str(path))
    own = enc.state_dict()
    for key, value in src.state_dict().items():
        if not key.startswith("vit."):
            assert torch.equal(own[key], value), key
    assert set(tiny_eva().load_lavis(str(path), vit_file=False)) == set(extras)
    assert lavis_ignore_reason("Qformer.bert.embeddings.word_embeddings.weight", 39, text_input=True) is None
    assert lavis_ignore_reason("Qformer.bert.embeddings.position_ids", 39, text_input=True) is not None
    assert lavis_ignore_reason("Qformer.cls.predictions.bias", 39, text_input=True) is not None


def test_lavis_text_keys_are_required_with_text_input_and_ignored_without(lavis_file, tmp_path):
    _, named, extras, path = lavis_file
    without = {k: v for k, v in named.items() if "word_embeddings" not in k}
    torch.save(without, tmp_path / "no_words.pth")
    with pytest.raises(CheckpointError, match=r"missing.*Qformer\.bert\.embeddings\.word_embeddings\.weight"):
        tiny_eva(qformer_checkpoint=str(tmp_path / "no_words.pth"))
    off = EvaViTGQFormer(**TINY)
    ignored = set(off.load_lavis(str(path), vit_file=False))
    text_keys = {k for k in named if re.search(r"embeddings\.(word|position)_|layer\.\d+\.(intermediate|output)\.", k)}
    assert text_keys and text_keys | set(extras) == ignored


# -- the model and the feature cache ----------------------------------------------------------------

ENCODER = [f"model.encoder.params.{k}={v}" for k, v in {**TINY, **TEXT}.items()]
QA = [{"q": "When does the red circle appear?", "a": "From <time>1.5</time> to <time>4.0</time> seconds."}]


@pytest.fixture
def text_model():
    from vtgcore import build_model, load_recipe

    with pytest.warns(UserWarning, match="params were reset"):
        recipe = load_recipe("recipes/debug/tiny.yaml", ["model.encoder.name=eva_vit_g_qformer", *ENCODER])
    return build_model(recipe)


def test_model_trains_and_generates_with_text_input(text_model):
    model, proc = text_model
    enc = model.encoder
    assert enc.tokens_per_frame == Q + 20
    assert set(TIME_TOKENS) <= set(enc.text_tokenizer.get_vocab())  # the recipe's codec reached BERT
    g = torch.Generator().manual_seed(0)
    x, ts = torch.randn(2, 4, 3, 28, 28, generator=g), torch.arange(4).float().mul(1.5).expand(2, 4).clone()
    tokens = model.encode_frames(x, ts)
    assert tokens.shape == (2, 4, Q + 20, 32)
    with pytest.raises(ShapeError, match="timestamps"):
        model.encode_frames(x)
    batch = proc([QA, QA], ts.tolist())
    out = model(x, ts, batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert torch.isfinite(out.loss)
    out.loss.backward()
    words = enc.qformer.embeddings.word_embeddings.weight.grad
    assert words is not None and words.abs().sum() > 0  # the text path is part of the graph
    prompt = proc([[{"q": "When?"}], [{"q": "When does it happen?"}]], ts.tolist(), add_generation_prompt=True)
    ids = model.generate(x, ts, prompt["input_ids"], prompt["attention_mask"], max_new_tokens=3)
    assert ids.shape[0] == 2 and 1 <= ids.shape[1] <= 3


def test_feature_cache_matches_the_direct_path_and_keys_on_the_text(text_model, tmp_path):
    from vtgcore.data.feature_cache import FeatureCache
    from vtgcore.data.transforms import normalize
    from vtgcore.data.video import read_clip
    from vtgcore.data.pattern_videos import write_test_video

    model, _ = text_model
    model.encoder.requires_grad_(False)
    enc = model.encoder.eval()
    video = write_test_video(tmp_path / "v.mp4", num_frames=10, fps=2.0)
    spec = {"name": "eva_vit_g_qformer", "params": {**TINY, **TEXT}}
    cache = FeatureCache(tmp_path / "fc", enc, spec, image_size=28, mean=enc.mean, std=enc.std, chunk=3)
    entry = cache.get(video)
    assert entry["features"].shape == (10, Q + 20, 32)
    clip = read_clip(video, 4, size=(28, 28))
    with torch.no_grad():
        direct = model.encode_frames(normalize(clip.frames, enc.mean, enc.std).unsqueeze(0),
                                     clip.timestamps.float().unsqueeze(0))[0]
    torch.testing.assert_close(entry["features"][clip.indices], direct, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(entry["features"][0], entry["features"][1])  # frame 0 and 1: other times
    # the key follows text_input (params) and the time codec writing the text (same weights)
    off = EvaViTGQFormer(**TINY).requires_grad_(False)
    assert FeatureCache(tmp_path / "fc", off, {"name": "eva_vit_g_qformer", "params": TINY}, image_size=28,
                        mean=enc.mean, std=enc.std).key != cache.key
    enc.set_time_writer(AbsoluteTimeTokens(fixed_format=False).encode)
    assert FeatureCache(tmp_path / "fc", enc, spec, image_size=28, mean=enc.mean, std=enc.std).key != cache.key
