"""Property-based fuzzing (issue 9, item 2): time codecs, task parsers, the recipe loader, metrics.

Every property is sized with ``max_examples`` so that the whole file runs in well under a minute on
one core; ``deadline=None`` because the shared CI machines have noisy timings. Set
``VTG_FUZZ_SCALE`` (e.g. ``10``) to multiply every example count for a longer local hunt.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from vtgcore.config.loader import load_recipe  # noqa: E402
from vtgcore.data.formats import EvalItem  # noqa: E402
from vtgcore.errors import VTGError  # noqa: E402
from vtgcore.eval.metrics import (  # noqa: E402
    average_precision, dvc_metrics, dvc_tiou, grounding_metrics, highlight_metrics, iou)
from vtgcore.eval.parsers import parse, parse_events, parse_saliency, parse_summary, parse_windows  # noqa: E402
from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer  # noqa: E402
from vtgcore_plugins.time_codecs.absolute_time_tokens import TIME_TOKENS, AbsoluteTimeTokens  # noqa: E402
from vtgcore_plugins.time_codecs.plain_digits import PlainDigits  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "debug" / "tiny.yaml"

FAST = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


_SCALE = float(os.environ.get("VTG_FUZZ_SCALE", "1"))


def _settings(n: int):
    return settings(max_examples=max(1, int(n * _SCALE)), **FAST)


# ==================================================================================================
# 1. Time codecs
# ==================================================================================================

_TOK = None


def tok():
    """The tiny tokenizer with the 11 time tokens added (built once; hypothesis reruns the body)."""
    global _TOK
    if _TOK is None:
        t = build_tiny_tokenizer()
        t.add_tokens(list(TIME_TOKENS))
        _TOK = t
    return _TOK


def _time_ids():
    return tok().convert_tokens_to_ids(list(TIME_TOKENS))


tenths = st.integers(min_value=0, max_value=99_999)
codecs = st.builds(AbsoluteTimeTokens, fixed_format=st.booleans(), rounding=st.sampled_from(["truncate", "nearest"]))


@_settings(150)
@given(codec=codecs, t=tenths)
def test_absolute_time_tokens_round_trip(codec, t):
    value = t / 10
    ids = tok().encode(codec.encode(value), add_special_tokens=False)
    if codec.fixed_format:
        assert len(ids) == 6
    assert codec.decode_ids(ids, tok()) == [pytest.approx(value, abs=1e-9)]


@_settings(100)
@given(data=st.data(), digits=st.integers(min_value=1, max_value=6), fixed=st.booleans())
def test_absolute_time_tokens_integer_digits_round_trip(data, digits, fixed):
    codec = AbsoluteTimeTokens(integer_digits=digits, fixed_format=fixed)
    t = data.draw(st.integers(min_value=0, max_value=10 ** (digits + 1) - 1), label="tenths")
    value = t / 10
    ids = tok().encode(codec.encode(value), add_special_tokens=False)
    assert codec.decode_ids(ids, tok()) == [pytest.approx(value, abs=1e-9)]
    with pytest.raises(VTGError):
        codec.encode(10 ** digits)  # one past the largest representable value
    assert AbsoluteTimeTokens(integer_digits=digits, out_of_range="clamp").encode(10 ** digits + 5) == \
        AbsoluteTimeTokens(integer_digits=digits).encode(10 ** digits - 0.1)


@_settings(60)
@given(values=st.lists(tenths, min_size=1, max_size=8), digits=st.integers(min_value=1, max_value=5))
def test_absolute_time_tokens_back_to_back_fixed_format(values, digits):
    """Fixed-format times written without any separator are read back one by one, by id."""
    codec = AbsoluteTimeTokens(integer_digits=digits, out_of_range="clamp")
    top = 10 ** (digits + 1) - 1
    secs = [min(v, top) / 10 for v in values]
    ids = tok().encode("".join(codec.encode(s) for s in secs), add_special_tokens=False)
    assert codec.decode_ids(ids, tok()) == [pytest.approx(s, abs=1e-9) for s in secs]


@_settings(150)
@given(t=tenths)
def test_plain_digits_round_trip(t):
    codec = PlainDigits()
    value = t / 10
    ids = tok().encode(codec.encode(value), add_special_tokens=False)
    assert codec.decode_ids(ids, tok()) == [pytest.approx(value, abs=1e-9)]


def _id_lists(max_size: int):
    """Id lists from the whole vocabulary, biased towards the time tokens and the plain digits."""
    vocab = len(tok())
    time_ids = _time_ids()
    digit_ids = tok().convert_tokens_to_ids(list("0123456789."))
    one = st.one_of(st.integers(min_value=0, max_value=vocab - 1), st.sampled_from(time_ids),
                    st.sampled_from(digit_ids))
    return st.lists(one, max_size=max_size)


def _check_times(values):
    assert isinstance(values, list)
    for v in values:
        assert isinstance(v, float) and math.isfinite(v) and v >= 0, values


@_settings(200)
@given(data=st.data(), which=st.sampled_from(["abs", "abs_free", "abs_2", "plain", "plain_0"]))
def test_decode_arbitrary_ids_never_raises(data, which):
    codec = {"abs": AbsoluteTimeTokens(), "abs_free": AbsoluteTimeTokens(fixed_format=False),
             "abs_2": AbsoluteTimeTokens(integer_digits=2), "plain": PlainDigits(),
             "plain_0": PlainDigits(decimals=0)}[which]
    ids = data.draw(_id_lists(80), label="ids")
    _check_times(codec.decode_ids(ids, tok()))
    if isinstance(codec, AbsoluteTimeTokens):
        for start, end, seconds in codec.decode_spans(ids, tok()):
            assert 0 <= start < end <= len(ids)
            assert math.isfinite(seconds) and seconds >= 0


@pytest.mark.parametrize("codec", [AbsoluteTimeTokens(), AbsoluteTimeTokens(fixed_format=False), PlainDigits()],
                         ids=["abs", "abs_free", "plain"])
def test_decode_very_long_digit_run_is_finite(codec):
    """A run of 400 digits (no dot) would be 1e400 = inf as a float: it must not come out as a time."""
    nine_time = tok().convert_tokens_to_ids("<TIME_NINE>")
    nine_digit = tok().convert_tokens_to_ids("9")
    ids = [nine_time] * 400 + [nine_digit] * 400
    _check_times(codec.decode_ids(ids, tok()))


# ==================================================================================================
# 2. Task parsers
# ==================================================================================================

_FRAGMENTS = [
    " - ", "-", " to ", "seconds", " seconds", "s", " sec", " min", " minutes", " hours", ", ", ".", ". ", "\n",
    "(", ")", "[", "]", "from ", "between ", " and ", "starts at ", "ends at ", "until ", "at ", "score: ",
    "significance score: ", "saliency score of ", "There are 2 highlight moments in the ", "Their saliency scores are ",
    "<time>", "</time>", ":", "%", " frames", "a man runs", "description: ", "1. ", "* ", "\u2013", "~", "e", "E",
    "inf", "nan", "1e999", "0x1F", "step ", "#",
]
_numbers = st.one_of(
    st.integers(min_value=0, max_value=10 ** 6).map(str),
    st.tuples(st.floats(min_value=0, max_value=1e5, allow_nan=False), st.integers(0, 3))
    .map(lambda p: f"{p[0]:.{p[1]}f}"),
    st.integers(min_value=300, max_value=420).map(lambda n: "9" * n),  # overflows a float
    st.tuples(st.integers(0, 99), st.integers(0, 99)).map(lambda p: f"{p[0]}:{p[1]:02d}"),
    st.tuples(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59))
    .map(lambda p: f"{p[0]}:{p[1]:02d}:{p[2]:02d}"),
)
_fragment_texts = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), _numbers, st.sampled_from(TIME_TOKENS),
                                     st.text(max_size=4)), max_size=30).map("".join)
texts = st.one_of(st.text(max_size=200), _fragment_texts)
durations = st.one_of(st.none(), st.floats(min_value=0, max_value=1e4), st.just(float("nan")),
                      st.just(float("inf")), st.just(-3.0))


def _check_windows(windows, duration):
    for w in windows:
        start, end = w[0], w[1]
        assert isinstance(start, float) and isinstance(end, float), w
        assert math.isfinite(start) and math.isfinite(end), w
        assert 0 <= start <= end, w
        if duration is not None and math.isfinite(duration) and duration >= 0:
            assert end <= duration, (w, duration)


@_settings(500)
@given(text=texts, duration=durations)
def test_parse_windows_never_raises_and_is_well_formed(text, duration):
    parsed = parse_windows(text, duration)
    assert parsed.ok == bool(parsed.value)
    assert all(len(w) == 2 for w in parsed.value)
    _check_windows(parsed.value, duration)


@_settings(400)
@given(text=texts, duration=durations)
def test_parse_events_never_raises_and_is_well_formed(text, duration):
    parsed = parse_events(text, duration)
    assert parsed.ok == bool(parsed.value)
    assert all(len(e) == 3 and isinstance(e[2], str) for e in parsed.value)
    _check_windows(parsed.value, duration)


score_durations = st.one_of(st.none(), st.floats(min_value=0, max_value=600), st.just(float("nan")))


@_settings(200)
@given(text=texts, duration=score_durations, clip=st.sampled_from([2.0, 1.0, 0.5, 3.3]))
def test_parse_saliency_never_raises_and_has_one_score_per_clip(text, duration, clip):
    parsed = parse_saliency(text, duration, clip_length=clip)
    if duration is None or not math.isfinite(duration):
        assert parsed.value == [] and not parsed.ok
        return
    n = int(duration / clip)
    assert len(parsed.value) == (n if 0 < n else 0)
    assert all(isinstance(v, float) and math.isfinite(v) for v in parsed.value)


@_settings(200)
@given(text=texts, duration=score_durations)
def test_parse_summary_never_raises_and_has_one_score_per_second(text, duration):
    parsed = parse_summary(text, duration)
    if duration is None or not math.isfinite(duration):
        assert parsed.value == [] and not parsed.ok
        return
    assert len(parsed.value) == math.ceil(duration)
    assert all(isinstance(v, float) and math.isfinite(v) for v in parsed.value)


@_settings(100)
@given(windows=st.lists(st.tuples(tenths, tenths), min_size=1, max_size=4))
def test_parse_windows_reads_back_written_windows(windows):
    """Windows written in the training format come back exactly (ordered, de-duplicated)."""
    secs = [(min(a, b) / 10, max(a, b) / 10) for a, b in windows]
    text = ". ".join(f"{s:.1f} - {e:.1f} seconds" for s, e in secs)
    expected = list(dict.fromkeys(secs))
    assert parse_windows(text).value == [pytest.approx(w) for w in expected]


# ==================================================================================================
# 3. Recipe loader
# ==================================================================================================

_KEYS = [
    "experiment_name", "description", "work_dir", "seed", "model.encoder.name", "model.encoder.params.dim",
    "model.encoder.trainable", "model.encoder.checkpoint", "model.encoder.lora.r", "model.encoder.lora.target_modules",
    "model.time_codec.name", "model.time_codec.params.integer_digits", "model.time_codec.params.rounding",
    "model.compressor.name", "model.compressor.params.num_slots", "model.compressor.params",
    "model.projector.params.bias", "model.llm.params.tokenizer", "model.llm.params.model_config.hidden_size",
    "model.video_token", "model.prompt.max_length", "model.prompt.chat_template", "model.prompt",
    "model", "data", "data.num_frames", "data.train_sampling", "data.reader", "data.video_root", "data.train",
    "data.train.datasets", "runner", "runner.train_cfg.max_iters", "runner.optim_wrapper.optimizer.lr",
    "encoder", "compressor", "time_codec", "time_embedding", "projector", "llm", "runtime", "nope", "model.nope",
    "model.encoder.nope", "model.llm.params.model_config.nope", "a.b.c", "", ".", "..", "model..name", "0", "-1",
    "model.encoder.lora.target_modules.0", "model.encoder.lora.target_modules[0]", "data.train.datasets.0.name",
]
_VALUES = [
    "", "0", "-1", "1", "3.5", "1e999", "nan", "inf", "true", "false", "null", "~", "[]", "[1, 2]", "{}", "{a: 1}",
    "[[", "{", "}", "'", '"', "${seed}", "${nope}", "${", "${model}", "${oc.env:HOME}", "${oc.env:NOPE_VTG_X}",
    "???", "slot_8", "slot_256", "tiny_vit", "identity", "debug", "tiny", "llama2", "full", "lora", "frozen",
    "absolute_time_tokens", "plain_digits", "nope", "../../etc/passwd", "/", "a=b", "http://x/y.pt", "uniform",
    "${oc.decode:'[1'}", "${oc.create:{a: 1}}", "\x00", "\n", "- a", ": :",
]
_keys = st.one_of(st.sampled_from(_KEYS), st.text(max_size=12),
                  st.lists(st.sampled_from(["model", "data", "runner", "encoder", "params", "name", "x", "0"]),
                           min_size=1, max_size=4).map(".".join))
_values = st.one_of(st.sampled_from(_VALUES), st.text(max_size=12), st.integers().map(str),
                    st.floats().map(repr))
_overrides = st.one_of(
    st.text(max_size=30),
    st.tuples(st.sampled_from(["", "+", "~", "++"]), _keys, st.sampled_from(["=", "", "==", " = "]), _values)
    .map(lambda p: f"{p[0]}{p[1]}{p[2]}{p[3]}"),
)


def _load(overrides):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_recipe(TINY, overrides)


@_settings(150)
@given(overrides=st.lists(_overrides, max_size=3))
@example(overrides=["model.compressor.params=5"])
@example(overrides=["seed=${nope}"])
@example(overrides=["model.encoder.lora.target_modules=5"])
@example(overrides=["~"])
@example(overrides=["model=3"])
@example(overrides=["compressor=../../debug/tiny"])
def test_load_recipe_overrides_give_a_recipe_or_a_vtg_error(overrides):
    try:
        recipe = _load(overrides)
    except VTGError as exc:
        assert str(exc).strip()
        return
    except Exception as exc:  # anything else leaking out of the loader is a bug
        pytest.fail(f"load_recipe({overrides!r}) raised {type(exc).__name__}: {exc}")
    assert isinstance(recipe, DictConfig)


# ==================================================================================================
# 4. Metrics
# ==================================================================================================

_coord = st.floats(min_value=0, max_value=1e4, allow_nan=False)
_windows = st.tuples(_coord, _coord)


@_settings(300)
@given(a=_windows, b=_windows)
def test_iou_is_a_symmetric_fraction(a, b):
    for f in (iou, dvc_tiou):
        v = f(a, b)
        assert 0.0 <= v <= 1.0 and math.isfinite(v)
        assert v == pytest.approx(f(b, a))
    assert iou(a, a) == 1.0


def _mr_gts(n_min=1):
    pos = st.tuples(st.floats(0, 1e3, allow_nan=False), st.floats(0.5, 1e3, allow_nan=False)).map(
        lambda p: (p[0], p[0] + p[1]))
    return st.dictionaries(st.text("abcdefgh0123456789", min_size=1, max_size=6), pos, min_size=n_min, max_size=12)


@_settings(100)
@given(gts=_mr_gts())
def test_grounding_perfect_predictions_give_100(gts):
    result = grounding_metrics({k: [w] for k, w in gts.items()}, gts)
    for key in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"):
        assert result[key] == pytest.approx(100.0)
    assert result["count"] == len(gts) and result["missing"] == 0 and result["unknown"] == 0


@_settings(100)
@given(gts=_mr_gts(), data=st.data())
def test_grounding_covers_every_item_and_is_order_invariant(gts, data):
    ids = list(gts)
    kept = data.draw(st.lists(st.sampled_from(ids), unique=True), label="predicted ids")
    preds = {k: data.draw(st.lists(_windows, max_size=6), label=f"pred {k}") for k in kept}
    result = grounding_metrics(preds, gts)
    assert result["count"] == len(gts)
    assert result["missing"] == sum(1 for k in ids if not preds.get(k))
    for key, value in result.items():
        if key.startswith(("R1@", "R5@")) or key == "mIoU":
            assert 0.0 <= value <= 100.0
    perm = data.draw(st.permutations(ids), label="permutation")
    shuffled_gts = {k: gts[k] for k in perm}
    shuffled_preds = {k: preds[k] for k in reversed(list(preds))}
    again = grounding_metrics(shuffled_preds, shuffled_gts)
    assert again.keys() == result.keys()
    for key in result:
        assert again[key] == pytest.approx(result[key])
    # A missing prediction counts as a miss (0 IoU) in the mean over every ground-truth item.
    if kept and len(kept) < len(ids):
        part = grounding_metrics(preds, {k: gts[k] for k in kept})["mIoU"]
        assert result["mIoU"] == pytest.approx(part * len(kept) / len(ids))


@_settings(150)
@given(scores=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=30), data=st.data())
def test_average_precision_is_a_fraction(scores, data):
    labels = data.draw(st.lists(st.integers(0, 1), min_size=len(scores), max_size=len(scores)), label="labels")
    ap = average_precision(labels, scores)
    assert 0.0 <= ap <= 1.0
    if any(labels):
        # scoring the positives above every negative is a perfect ranking
        assert average_precision(labels, [float(x) for x in labels]) == 1.0


@st.composite
def _hl_item(draw, qid):
    n_clips = draw(st.integers(1, 20))
    annot = draw(st.integers(1, 3))
    clips = draw(st.lists(st.integers(0, n_clips - 1), min_size=1, max_size=n_clips, unique=True))
    rows = [draw(st.integers(0, 4)) for _ in clips]
    rows[0] = 4  # at least one clip positive at every level, so a perfect ranking exists
    return EvalItem(id=qid, video=f"{qid}.mp4", task="hd", duration=2.0 * n_clips + draw(st.floats(0, 1.9)),
                    saliency=[[float(r)] * annot for r in rows], clip_ids=clips)


@st.composite
def _hl_items(draw):
    ids = draw(st.lists(st.text("abcdef0123", min_size=1, max_size=5), min_size=1, max_size=6, unique=True))
    return [draw(_hl_item(q)) for q in ids]


def _gt_scores(item):
    n = int(item.duration / 2.0)
    out = [0.0] * n
    for clip, row in zip(item.clip_ids, item.saliency):
        out[clip] = row[0]
    return out


@_settings(80)
@given(items=_hl_items())
def test_highlight_perfect_predictions_give_100(items):
    result = highlight_metrics({it.id: _gt_scores(it) for it in items}, items)
    for key in ("VeryGood-mAP", "Good-mAP", "Fair-mAP", "VeryGood-Hit1", "Good-Hit1", "Fair-Hit1"):
        assert result[key] == pytest.approx(100.0), key
    assert result["count"] == len(items) and result["missing"] == 0


@_settings(80)
@given(items=_hl_items(), data=st.data())
def test_highlight_covers_every_item_and_is_order_invariant(items, data):
    kept = data.draw(st.lists(st.sampled_from([it.id for it in items]), unique=True), label="predicted ids")
    preds = {q: data.draw(st.lists(st.floats(0, 5, allow_nan=False), max_size=25), label=f"pred {q}") for q in kept}
    result = highlight_metrics(preds, items)
    assert result["count"] == len(items)
    assert result["missing"] == sum(1 for it in items if not preds.get(it.id))
    for key, value in result.items():
        if "mAP" in key or "Hit1" in key:
            assert 0.0 <= value <= 100.0
    perm = data.draw(st.permutations(items), label="permutation")
    again = highlight_metrics(dict(reversed(list(preds.items()))), perm)
    for key in result:
        assert again[key] == pytest.approx(result[key])


@_settings(150)
@given(text=texts, duration=score_durations, task=st.sampled_from(["mr", "dvc", "hd"]))
def test_legacy_parsers_never_raise(text, duration, task):
    """The original's parsers (parity mode) report the original's crashes as ok=False, never raise."""
    parsed = parse(task, text, duration, legacy=True)
    assert parsed.ok in (True, False)
    if task == "hd":
        assert all(isinstance(v, float) and math.isfinite(v) for v in parsed.value)
    elif parsed.ok:
        for w in parsed.value:
            assert all(isinstance(x, float) for x in w[:2]), w


class _ExactScorer:
    """A caption back end without Java: a pair scores 1 when the texts are equal, else 0."""

    def tokenize(self, texts):
        return [t.lower() for t in texts]

    def cider(self, pairs):
        return sum(ref == hyp for ref, hyp in pairs) / len(pairs)

    def meteor(self, pairs):
        scores = [float(ref == hyp) for ref, hyp in pairs]
        return sum(scores) / len(scores), scores


@st.composite
def _dvc_items(draw):
    ids = draw(st.lists(st.text("abcdef0123", min_size=1, max_size=5), min_size=1, max_size=5, unique=True))
    items = []
    for q in ids:
        n = draw(st.integers(1, 5))
        starts = draw(st.lists(st.floats(0, 500, allow_nan=False), min_size=n, max_size=n))
        lengths = draw(st.lists(st.floats(1, 100, allow_nan=False), min_size=n, max_size=n))
        windows = [(s, s + ln) for s, ln in zip(starts, lengths)]
        items.append(EvalItem(id=q, video=f"{q}.mp4", task="dvc", duration=700.0, windows=windows,
                              captions=[f"event {k} of {q}" for k in range(n)]))
    return items


@_settings(60)
@given(items=_dvc_items())
def test_dvc_perfect_localization_gives_100(items):
    preds = {it.id: [(s, e, c) for (s, e), c in zip(it.windows, it.captions)] for it in items}
    result = dvc_metrics(preds, items, scorer=_ExactScorer())
    for key in ("Precision", "Recall", "F1"):
        assert result[key] == pytest.approx(100.0), key
    assert result["count"] == len(items) and result["missing"] == 0 and result["unknown"] == 0


@_settings(60)
@given(items=_dvc_items(), data=st.data())
def test_dvc_covers_every_item_and_is_order_invariant(items, data):
    kept = data.draw(st.lists(st.sampled_from([it.id for it in items]), unique=True), label="predicted ids")
    preds = {q: data.draw(st.lists(st.tuples(_coord, _coord, st.sampled_from(["a", "event 0 of " + q])),
                                   max_size=4), label=f"pred {q}") for q in kept}
    result = dvc_metrics(preds, items, scorer=_ExactScorer())
    assert result["count"] == len(items)
    assert result["missing"] == sum(1 for it in items if not preds.get(it.id))
    for key in ("Precision", "Recall", "F1"):
        assert 0.0 <= result[key] <= 100.0
    again = dvc_metrics(dict(reversed(list(preds.items()))), data.draw(st.permutations(items), label="perm"),
                        scorer=_ExactScorer())
    for key in ("Precision", "Recall", "F1", "count", "missing", "unknown"):
        assert again[key] == pytest.approx(result[key])
