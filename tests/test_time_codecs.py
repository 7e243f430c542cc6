"""Time codecs: the VTG-LLM table (vtgllm-original.md section 2.2), its two defects fixed, id decoding."""

import random

import pytest

from vtgcore.errors import TimeCodecError
from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer
from vtgcore_plugins.time_codecs.absolute_time_tokens import TIME_TOKENS, AbsoluteTimeTokens
from vtgcore_plugins.time_codecs.plain_digits import PlainDigits

NAMES = dict(zip("0123456789.", TIME_TOKENS))


def tokens(text):
    return "".join(NAMES[c] for c in text)


@pytest.fixture(scope="module")
def tok():
    t = build_tiny_tokenizer()
    t.add_tokens(list(TIME_TOKENS))
    return t


# The spec table: input string -> what the original writes (training/demo column), with the two
# defect rows replaced by the clean behaviour.
@pytest.mark.parametrize("value, text", [
    ("0.0", "0000.0"), ("12.3", "0012.3"), ("123.4", "0123.4"), ("1234.5", "1234.5"),
    ("12.34", "0012.3"),  # truncated, as the original
    ("0.05", "0000.0"),
    ("12", "0012.0"),  # defect 1 fixed: the original wrote 4 tokens "12.0"
    ("9999.99", "9999.9"),
])
def test_spec_table(value, text):
    assert AbsoluteTimeTokens().encode(float(value)) == tokens(text)


def test_defect_2_out_of_range_is_an_error_or_clamps():
    with pytest.raises(TimeCodecError, match="exceeds 9999.9"):
        AbsoluteTimeTokens().encode(12345.6)  # the original silently wrote "12345." (fraction lost)
    assert AbsoluteTimeTokens(out_of_range="clamp").encode(12345.6) == tokens("9999.9")


def test_exactly_six_tokens_and_rounding_modes(tok):
    codec = AbsoluteTimeTokens()
    for v in (0, 0.1, 7.77, 59.95, 100, 3599.99):
        assert len(tok.encode(codec.encode(v), add_special_tokens=False)) == 6
    assert AbsoluteTimeTokens(rounding="nearest").encode(12.36) == tokens("0012.4")
    assert AbsoluteTimeTokens(rounding="truncate").encode(12.36) == tokens("0012.3")
    assert AbsoluteTimeTokens(integer_digits=2).encode(5.5) == tokens("05.5")


def test_init_rows_map_to_digits():
    init = AbsoluteTimeTokens().token_init()
    assert init["<TIME_ZERO>"] == "0" and init["<TIME_NINE>"] == "9" and init["<TIME_DOT>"] == "."
    assert AbsoluteTimeTokens(init_from_digits=False).token_init() == {}


def test_round_trip_every_tenth_in_a_range_and_random(tok):
    codec = AbsoluteTimeTokens()
    values = [i / 10 for i in range(0, 2001)] + [round(random.Random(3).uniform(0, 9999.9), 1) for _ in range(300)]
    for v in values:
        ids = tok.encode(codec.encode(v), add_special_tokens=False)
        assert codec.decode_ids(ids, tok) == [pytest.approx(v, abs=1e-9)]


def test_decode_by_id_keeps_adjacent_numbers_apart(tok):
    codec = AbsoluteTimeTokens()
    text = f"from {codec.encode(3)}{codec.encode(4)} and{codec.encode(12.5)}. {codec.encode(10)} 7 8 seconds"
    ids = tok.encode(text, add_special_tokens=False)
    assert codec.decode_ids(ids, tok) == [3.0, 4.0, 12.5, 10.0]  # plain "7 8" digits are not times
    spans = codec.decode_spans(ids, tok)
    assert [tok.decode(ids[s:e]) for s, e, _ in spans][0] == codec.encode(3)


def test_decode_malformed_runs_leniently(tok):
    codec = AbsoluteTimeTokens()
    ids = tok.encode(tokens("12.0") + " x " + tokens("..") + " y " + tokens("1.2.3"), add_special_tokens=False)
    assert codec.decode_ids(ids, tok) == [12.0, 1.2, 3.0]
    assert codec.decode_ids([], tok) == [] and codec.decode_ids([10**9, -5], tok) == []


def test_plain_digits(tok):
    codec = PlainDigits()
    assert codec.encode(12) == "12.0" and PlainDigits(decimals=0).encode(12.6) == "13"
    ids = tok.encode("from 12.5 to 20.0 seconds, 3", add_special_tokens=False)
    assert codec.decode_ids(ids, tok) == [12.5, 20.0, 3.0]
    assert codec.decode_ids([10**9], tok) == []
    with pytest.raises(TimeCodecError):
        codec.encode(-0.1)


def test_no_fixed_format_ablation_writes_no_leading_zeros_and_round_trips(tok):
    codec = AbsoluteTimeTokens(fixed_format=False)
    assert codec.encode(12.3) == tokens("12.3")
    assert codec.encode(0.5) == tokens("0.5")
    assert codec.encode(1234.5) == tokens("1234.5")
    for v in (0.0, 0.1, 7.7, 59.9, 100.0, 3599.9):
        text = f"from {codec.encode(v)} - {codec.encode(v + 1)} seconds"
        assert codec.decode_ids(tok.encode(text, add_special_tokens=False), tok) == [
            pytest.approx(v), pytest.approx(v + 1)]
