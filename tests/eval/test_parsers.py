"""Tests of the task output parsers: robust parsers, legacy (original VTG-LLM) parsers, dispatcher."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtgcore.data.prompts import dvc_answer, hd_answer, mr_answer, summary_answer
from vtgcore.errors import VTGError
from vtgcore.eval import parsers as P
from vtgcore.eval.parsers import (
    ParseStats, Parsed, legacy_decode_time_tokens, legacy_parse_dvc, legacy_parse_tvg, legacy_parse_vhd, parse,
    parse_events, parse_saliency, parse_summary, parse_windows,
)

_MARK = re.compile(r"<time>(.*?)</time>")
_DIGIT_NAMES = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def plain(answer: str) -> str:
    """A training answer as the plain-decimal codec text the parsers read."""
    return _MARK.sub(r"\1", answer)


def tokens(number: str) -> str:
    """A number as the original's slow tokenizer decodes time tokens (space separated)."""
    return " ".join("<TIME_DOT>" if c == "." else f"<TIME_{_DIGIT_NAMES[int(c)]}>" for c in number)


def approx_windows(value, expected):
    assert len(value) == len(expected), value
    for got, want in zip(value, expected):
        assert got == pytest.approx(want), value


# ==================================================================================================
# parse_windows
# ==================================================================================================


class TestWindows:
    def test_training_format_round_trip(self):
        for start, end in [(0.0, 0.0), (12.3, 15.0), (0.5, 120.7), (1234.5, 2000.0)]:
            result = parse_windows(plain(mr_answer(start, end)))
            assert result.ok and result.note == ""
            approx_windows(result.value, [(start, end)])

    def test_time_markers_are_accepted(self):
        approx_windows(parse_windows(mr_answer(12.3, 15.0)).value, [(12.3, 15.0)])

    @pytest.mark.parametrize("text", [
        "12.3 - 15.0 seconds.", "12.3-15.0 seconds", "12.3 to 15.0 seconds", "from 12.3 to 15.0",
        "between 12.3 and 15.0 seconds", "12.3s-15.0s", "12.3 seconds - 15.0 seconds", "12.3 \u2013 15.0 s",
        "The given query happens in 12.3 - 15.0 seconds.", "(12.3, 15.0)", "0012.3 - 0015.0 seconds",
        "12.3 until 15.0", "[12.3 - 15.0]",
    ])
    def test_range_forms(self, text):
        result = parse_windows(text)
        assert result.ok, result
        approx_windows(result.value, [(12.3, 15.0)])

    @pytest.mark.parametrize("text, expected", [
        ("from 1:05 to 1:30", (65.0, 90.0)),
        ("1:05.5 - 1:10", (65.5, 70.0)),
        ("00:00:18 - 00:01:02", (18.0, 62.0)),
        ("1:00:00 to 1:00:30", (3600.0, 3630.0)),
        ("2 - 3 minutes", (120.0, 180.0)),
    ])
    def test_clock_and_unit_forms(self, text, expected):
        approx_windows(parse_windows(text).value, [expected])

    @pytest.mark.parametrize("text", [
        "The event starts at 12.3 seconds and ends at 15.0 seconds.",
        "Start time: 12.3\nEnd time: 15.0",
        "The start time for this event is 12.3 seconds, and the end time is 15.0 seconds.",
        "It begins at 12.3 s. It finishes at 15.0 s.",
    ])
    def test_start_end_sentences(self, text):
        result = parse_windows(text)
        approx_windows(result.value, [(12.3, 15.0)])
        assert "keywords" in result.note

    def test_preamble_and_extra_text_are_ignored(self):
        text = ("Sure! I watched the 30 second video carefully. The person opens the door in 4.5 - 9 seconds. "
                "Let me know if you need anything else, it took 2 tries.")
        approx_windows(parse_windows(text).value, [(4.5, 9.0)])

    def test_every_window_is_kept_in_order(self):
        result = parse_windows("It happens in 20 - 25 seconds and again in 3 - 4 seconds.")
        approx_windows(result.value, [(20.0, 25.0), (3.0, 4.0)])

    def test_reversed_is_swapped_and_noted(self):
        result = parse_windows("15.0 - 12.3 seconds")
        approx_windows(result.value, [(12.3, 15.0)])
        assert "swapped" in result.note

    def test_zero_length_is_allowed(self):
        result = parse_windows("5.0 - 5.0 seconds")
        assert result.ok and result.value == [(5.0, 5.0)]

    def test_clamped_and_dropped_with_duration(self):
        result = parse_windows("10 - 40 seconds. 50 - 60 seconds. 30 - 30 seconds.", duration=30)
        approx_windows(result.value, [(10.0, 30.0), (30.0, 30.0)])
        assert "clamped" in result.note and "beyond the duration" in result.note

    def test_all_beyond_duration_fails(self):
        result = parse_windows("50 - 60 seconds", duration=30)
        assert not result.ok and result.value == []
        assert "beyond the duration" in result.note

    def test_duplicates_removed_keeping_first(self):
        result = parse_windows("1 - 2 seconds, 3 - 4 seconds, 1.0 - 2.0 seconds, 2 - 1 seconds")
        approx_windows(result.value, [(1.0, 2.0), (3.0, 4.0)])
        assert "duplicate" in result.note

    @pytest.mark.parametrize("text", [
        "The first person jumps.", "3 - 5 frames", "It covers 50% - 60% of the video.", "significance score: 3 - 4",
        "the 1st - 2nd clips", "step 3", "version 1.5.3-2.0.1", "3/5 - 4/5", "12", "",
        "\u2603\u2603 ??? ::: --- ...", "<TIME_ONE>",
    ])
    def test_not_times_make_no_window(self, text):
        result = parse_windows(text)
        assert not result.ok and result.value == []
        assert result.note

    def test_single_time_with_keyword_gives_zero_length_window(self):
        for text in ["It happens at 12 seconds.", "around 12", "The answer is 12 s.", "at 0:12"]:
            result = parse_windows(text)
            assert result.value == [(12.0, 12.0)], text
            assert "zero-length" in result.note

    def test_single_times_are_not_used_when_a_window_exists(self):
        approx_windows(parse_windows("At 3 seconds nothing; it happens in 5 - 8 seconds.").value, [(5.0, 8.0)])

    def test_invalid_duration_is_ignored_with_a_note(self):
        result = parse_windows("1 - 2 seconds", duration=float("nan"))
        assert result.value == [(1.0, 2.0)] and "duration" in result.note

    def test_non_string_input(self):
        assert parse_windows(None).ok is False
        assert parse_windows(b"1 - 2 s\xff").value == [(1.0, 2.0)]
        assert legacy_parse_tvg(None).ok is False


# ==================================================================================================
# parse_events
# ==================================================================================================

_TRAINING_DVC = "12.3 - 15.0 seconds, a red circle appears. 20.0 - 31.5 seconds, the blue square moves left."
_EXPECTED_DVC = [(12.3, 15.0, "a red circle appears"), (20.0, 31.5, "the blue square moves left")]


def approx_events(value, expected):
    assert len(value) == len(expected), value
    for (s, e, c), (ws, we, wc) in zip(value, expected):
        assert (s, e) == pytest.approx((ws, we)) and c == wc, value


class TestEvents:
    def test_training_format_round_trip(self):
        windows = [(0.0, 2.5), (3.0, 10.0), (10.0, 40.5)]
        captions = ["A red circle appears.", "the blue square moves left", "Two shapes collide, then part."]
        result = parse_events(plain(dvc_answer(windows, captions)))
        assert result.ok and result.note == ""
        approx_events(result.value, [(0.0, 2.5, "A red circle appears"), (3.0, 10.0, "the blue square moves left"),
                                     (10.0, 40.5, "Two shapes collide, then part")])

    def test_preamble_does_not_shift_captions(self):
        result = parse_events("Here are the events in the video. " + _TRAINING_DVC + " I hope this helps!")
        approx_events(result.value, _EXPECTED_DVC)
        assert "before the first event" in result.note

    def test_one_event_per_line(self):
        text = ("Events:\n1. 12.3 - 15.0 seconds: a red circle appears.\n"
                "2. 20 - 31.5 seconds - the blue square moves left\n")
        approx_events(parse_events(text).value, _EXPECTED_DVC)

    def test_caption_before_time(self):
        text = "A red circle appears (12.3 - 15.0).\nThe blue square moves left (20.0 - 31.5)."
        result = parse_events(text)
        approx_events(result.value, [(12.3, 15.0, "A red circle appears"), (20.0, 31.5, "The blue square moves left")])
        assert "before their times" in result.note

    def test_caption_before_time_in_one_paragraph(self):
        text = "Sure! The circle appears from 1 to 2 seconds, the square moves at 3 - 4 seconds."
        approx_events(parse_events(text).value, [(1.0, 2.0, "The circle appears"), (3.0, 4.0, "the square moves")])

    def test_mm_ss_and_labels(self):
        text = "Start time: 0:12\nEnd time: 0:15\nDescription: a red circle appears"
        approx_events(parse_events(text).value, [(12.0, 15.0, "a red circle appears")])
        approx_events(parse_events("0:12 - 0:15, a red circle appears. 1:00 - 1:05.5, it fades.").value,
                      [(12.0, 15.0, "a red circle appears"), (60.0, 65.5, "it fades")])

    def test_captions_are_stripped_consistently(self):
        text = "12.3 - 15.0 seconds , a red circle appears ;\n20 - 31.5 seconds: the blue square moves left!!"
        approx_events(parse_events(text).value, _EXPECTED_DVC)

    def test_empty_caption_is_kept_and_noted(self):
        result = parse_events("12 - 15 seconds.")
        assert result.ok and result.value == [(12.0, 15.0, "")]
        assert "empty caption" in result.note

    def test_reversed_clamped_and_duplicates(self):
        text = "15 - 12 seconds, a. 20 - 50 seconds, b. 60 - 70 seconds, c. 15 - 12 seconds, a."
        result = parse_events(text, duration=40)
        approx_events(result.value, [(12.0, 15.0, "a"), (20.0, 40.0, "b")])
        for word in ("swapped", "clamped", "beyond", "duplicate"):
            assert word in result.note

    def test_single_times_give_zero_length_events(self):
        result = parse_events("12 seconds, a red circle appears. 20 seconds, the blue square moves left.")
        approx_events(result.value, [(12.0, 12.0, "a red circle appears"), (20.0, 20.0, "the blue square moves left")])
        assert "zero-length" in result.note

    @pytest.mark.parametrize("text", ["", "nothing happens", "There are 3 people.", "score: 4"])
    def test_garbage(self, text):
        result = parse_events(text)
        assert not result.ok and result.value == [] and result.note


# ==================================================================================================
# parse_saliency / parse_summary
# ==================================================================================================


class TestSaliency:
    def test_training_format_round_trip(self):
        result = parse_saliency(plain(hd_answer([0.0, 4.0, 6.0, 9.5], [1.0, 3.5, 2.0, 4.0])), duration=10)
        assert result.ok
        assert result.value == pytest.approx([1.0, 0.0, 3.5, 2.0, 4.0])

    def test_timeit_form(self):
        text = "There are 3 highlight moments in the 2, 4.5 and 8 second. Their saliency scores are 1.3, 3.7, 2.0."
        assert parse_saliency(text, duration=10).value == pytest.approx([0.0, 1.3, 3.7, 0.0, 2.0])

    def test_saliency_score_wording_and_averaging(self):
        text = "2 seconds, saliency score: 2.0. 3.5 seconds, saliency score: 4.0. 0:08 seconds, score of 1."
        assert parse_saliency(text, duration=10).value == pytest.approx([0.0, 3.0, 0.0, 0.0, 1.0])

    def test_clip_mapping_and_duration_edges(self):
        text = "9.9 seconds, score: 1. 10 seconds, score: 3. 10.5 seconds, score: 5."
        result = parse_saliency(text, duration=10)
        assert result.value == pytest.approx([0.0, 0.0, 0.0, 0.0, 2.0])  # t == duration goes to the last clip
        assert "beyond the duration" in result.note

    def test_length_follows_duration_and_clip_length(self):
        assert len(parse_saliency("", duration=151).value) == 75
        assert len(parse_saliency("1 seconds, score: 2", duration=10, clip_length=1.0).value) == 10

    def test_failures(self):
        nothing = parse_saliency("The video shows a dog.", duration=10)
        assert not nothing.ok and nothing.value == [0.0] * 5
        assert not parse_saliency("4 seconds, score: 2", duration=None).ok
        assert not parse_saliency("4 seconds, score: 2", duration=1).ok  # no whole clip
        with pytest.raises(VTGError, match="clip_length"):
            parse_saliency("", duration=10, clip_length=0)

    def test_summary_round_trip(self):
        result = parse_summary(plain(summary_answer([0.0, 1.0, 2.5, 4.0], [5, 1, 3, 2])), duration=4.2)
        assert result.ok
        assert result.value == pytest.approx([5.0, 1.0, 3.0, 0.0, 2.0])

    def test_summary_timeit_form(self):
        text = "The highlight timestamps are in the 0, 2 seconds. Their saliency scores are 4.2, 1.0."
        assert parse_summary(text, duration=3).value == pytest.approx([4.2, 0.0, 1.0])


# ==================================================================================================
# Legacy parsers: the original's quirks, and the robust parsers fixing them
# ==================================================================================================


class TestLegacyDecode:
    def test_time_tokens(self):
        text = f"{tokens('0012.3')} - {tokens('0015.0')} seconds"
        assert legacy_decode_time_tokens(text) == "0012.3 - 0015.0 seconds"

    def test_digit_merge_quirks(self):
        assert legacy_decode_time_tokens("at 3 4 seconds") == "at 34seconds"
        assert legacy_decode_time_tokens("step 2. 0010.0 - 0012.0") == "step 2.0010.0 - 0012.0"
        assert legacy_decode_time_tokens("3\n4 x") == "3\n4x"  # only spaces are removed


class TestLegacyTvg:
    def test_keeps_only_the_first_window(self):
        text = "12.3 - 15.0 seconds. 20.0 - 25.0 seconds."
        legacy = legacy_parse_tvg(text)
        assert legacy.value == [(12.3, 15.0)] and "only the first" in legacy.note
        approx_windows(parse_windows(text).value, [(12.3, 15.0), (20.0, 25.0)])

    def test_time_tokens_and_swap(self):
        assert legacy_parse_tvg(f"{tokens('0015.0')} - {tokens('0012.3')} seconds").value == [(12.3, 15.0)]

    def test_digit_merge(self):
        text = "top 1 12.3 - 15.0 seconds"
        assert legacy_parse_tvg(text).value == [(15.0, 112.3)]
        approx_windows(parse_windows(text).value, [(12.3, 15.0)])

    def test_sentence_end_merges_into_a_decimal(self):
        assert legacy_parse_tvg("1 - 2. 3 - 4").value == [(1.0, 2.3)]  # "2. 3" -> "2.3"
        approx_windows(parse_windows("1 - 2. 3 - 4").value, [(1.0, 2.0), (3.0, 4.0)])

    def test_keyword_fallback(self):
        result = legacy_parse_tvg("Start time: 12\nEnd time: 15")
        assert result.value == [(12.0, 15.0)] and "fallback" in result.note

    def test_keyword_fallback_misses_numbers_glued_to_seconds(self):
        text = "The event starts at 12 seconds.\nIt ends at 15 seconds."
        assert legacy_parse_tvg(text).value == []
        approx_windows(parse_windows(text).value, [(12.0, 15.0)])

    def test_clock_fallback_crashes_in_the_original(self):
        result = legacy_parse_tvg("It starts at 00:00:18.\nThen it ends.")
        assert not result.ok and "UnboundLocalError" in result.note

    def test_value_error_in_the_original(self):
        result = legacy_parse_tvg("1..5 - 3 seconds")
        assert not result.ok and "ValueError" in result.note


class TestLegacyDvc:
    def test_training_format(self):
        approx_events(legacy_parse_dvc(_TRAINING_DVC).value,
                      [(12.3, 15.0, "a red circle appears."), (20.0, 31.5, "the blue square moves left.")])

    def test_preamble_shifts_captions(self):
        text = "Here are the events in the video. " + _TRAINING_DVC
        legacy = legacy_parse_dvc(text)
        approx_events(legacy.value, [(12.3, 15.0, "here are the events in the video."),
                                     (20.0, 31.5, "a red circle appears.")])
        assert "truncated" in legacy.note
        approx_events(parse_events(text).value, _EXPECTED_DVC)

    def test_time_tokens(self):
        text = f"{tokens('0012.3')} - {tokens('0015.0')} seconds, a red circle appears."
        approx_events(legacy_parse_dvc(text).value, [(12.3, 15.0, "a red circle appears.")])

    def test_reversed_is_not_swapped(self):
        result = legacy_parse_dvc("15 - 12 seconds, a red circle appears.")
        assert result.value == [(15.0, 12.0, "a red circle appears.")]

    def test_short_captions_fall_back_to_sentences(self):
        result = legacy_parse_dvc("12.3 - 15.0 seconds.")  # no caption: the "0 seconds" piece becomes [0, 40]
        assert result.value == [(0.0, 40.0, ".")] and "sentence fallback" in result.note
        assert legacy_parse_dvc("At 1:05, the man sits down and eats.").value == [
            (45.0, 85.0, "At 1:05, the man sits down and eats.")]

    def test_sentence_fallback_returns_one_event(self):
        text = "first 10s-38s, a man cuts.\nthen 40s-50s, he eats."
        assert legacy_parse_dvc(text).value == [(10.0, 38.0, "first 10s-38s, a man cuts.")]

    def test_start_time_description_fallback(self):
        text = "Start time: 12.3 seconds\nEnd time: 15.0 seconds\nDescription: a red circle appears"
        assert legacy_parse_dvc(text).value == [(12.3, 15.0, "a red circle appears")]

    def test_pdb_branch(self):
        result = legacy_parse_dvc("start time 12.3, end time 15.0, a red circle appears")
        assert not result.ok and result.value == [] and "pdb" in result.note


class TestLegacyVhd:
    def test_newline_format_and_clip_mapping(self):
        text = ("2.0 seconds, significance score: 3\n4.5 seconds, significance score: 2\n"
                "7.0 seconds, significance score: 4")
        legacy = legacy_parse_vhd(text, duration=10)
        assert legacy.ok and legacy.value == pytest.approx([3.0, 2.0, 0.0, 4.0, 0.0])  # clip = int((t - 1) / 2)
        assert parse_saliency(text, duration=10).value == pytest.approx([0.0, 3.0, 2.0, 4.0, 0.0])  # t // 2

    def test_integer_time_glued_to_seconds_is_lost(self):
        text = ("2.0 seconds, significance score: 3\n4.5 seconds, significance score: 2\n"
                "7 seconds, significance score: 4.")
        assert legacy_parse_vhd(text, duration=10).value == pytest.approx([3.0, 2.0, 0.0, 0.0, 0.0])
        assert parse_saliency(text, duration=10).value == pytest.approx([0.0, 3.0, 2.0, 4.0, 0.0])

    def test_th_replacement(self):
        text = "4.0 seconds, score: 3. the 5th moment, score: 2."
        assert legacy_parse_vhd(text, duration=10).value == pytest.approx([0.0, 5.0, 0.0, 0.0, 0.0])
        assert parse_saliency(text, duration=10).value == pytest.approx([0.0, 0.0, 3.0, 0.0, 0.0])

    def test_single_line_training_format_is_misread(self):
        text = "4.0 seconds, significance score: 3.5. 6.0 seconds, significance score: 2.0."
        legacy = legacy_parse_vhd(text, duration=10)
        assert not legacy.ok and legacy.value == pytest.approx([0.0, 6.0, 0.0, 0.0, 0.0])
        assert "one time only" in legacy.note
        assert parse_saliency(text, duration=10).value == pytest.approx([0.0, 0.0, 3.5, 2.0, 0.0])

    def test_timeit_form_fails(self):
        text = "There are 2 highlight moments in the 4, 6 second. Their saliency scores are 3.0, 2.0."
        assert not legacy_parse_vhd(text, duration=10).ok
        assert parse_saliency(text, duration=10).value == pytest.approx([0.0, 0.0, 3.0, 2.0, 0.0])

    def test_index_error_of_the_original(self):
        text = "3.0 seconds, score: 1\n11.0 seconds, score: 2"
        result = legacy_parse_vhd(text, duration=11)
        assert not result.ok and "IndexError" in result.note and result.value == [0.0] * 5

    def test_requires_second_and_score(self):
        result = legacy_parse_vhd("4 s: 3\n6 s: 2", duration=10)
        assert not result.ok and result.value == [0.0] * 5

    def test_time_tokens(self):
        text = f"{tokens('0004.0')} seconds, significance score: 3\n{tokens('0008.0')} seconds, significance score: 1"
        assert legacy_parse_vhd(text, duration=10).value == pytest.approx([0.0, 3.0, 0.0, 1.0, 0.0])


# ==================================================================================================
# Dispatcher and statistics
# ==================================================================================================


class TestDispatch:
    def test_tasks(self):
        assert parse("mr", "1 - 2 seconds").value == [(1.0, 2.0)]
        assert parse("dvc", "1 - 2 seconds, a.").value == [(1.0, 2.0, "a")]
        assert parse("hd", "2 seconds, score: 3", duration=4).value == [0.0, 3.0]
        assert parse("summary", "2 seconds, score: 3", duration=3).value == [0.0, 0.0, 3.0]

    def test_legacy(self):
        assert parse("mr", "1 - 2 seconds. 3 - 4 seconds", legacy=True).value == [(1.0, 2.0)]
        assert parse("dvc", "Intro text here. 1 - 2 seconds, a cat. 3 - 4 seconds, a dog.", legacy=True).value[0][2] \
            == "intro text here."
        assert parse("hd", "4.0 seconds, score: 3\n8.0 seconds, score: 1", duration=10, legacy=True).ok

    def test_errors(self):
        with pytest.raises(VTGError, match="no parser for summary"):
            parse("summary", "", duration=3, legacy=True)
        with pytest.raises(VTGError, match="unknown task"):
            parse("vqa", "")


class TestParseStats:
    def test_counts(self):
        stats = ParseStats()
        assert stats.rate == 0.0
        stats.add(Parsed([(1.0, 2.0)], True))
        assert stats.add(Parsed([], False, "no window")).ok is False
        stats.add(parse("mr", "nothing"))
        assert (stats.failures, stats.total) == (2, 3)
        assert stats.as_dict() == {"parse_failures": 2, "parse_total": 3, "parse_failure_rate": pytest.approx(2 / 3)}


# ==================================================================================================
# Properties
# ==================================================================================================

_FRAGMENTS = ["12.3", "0", "5", "1:05", "00:01:02.5", "99999", "9" * 400, " - ", "-", " to ", "from ", "between ",
              " and ", " seconds", "s", " minutes", ", ", ". ", "\n", "(", ")", "[", "]", ":", "start ", "ends at ",
              "at ", "score: ", "significance score: ", "saliency scores are ", "There are 2 highlight moments in the ",
              " frames", "%", "1st", "th", "description: ", "a red circle", "<TIME_ONE>", "<TIME_DOT>", " ", "..",
              "\u2013"]
timey_text = st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join)
any_text = st.one_of(st.text(max_size=200), timey_text)
durations = st.one_of(st.none(), st.floats(min_value=0, max_value=5000, allow_nan=False))


def _check_windows(windows, duration):
    for start, end in windows:
        assert math.isfinite(start) and math.isfinite(end)
        assert 0 <= start <= end
        if duration is not None:
            assert end <= duration


@PROPERTY
@given(any_text, durations)
def test_windows_never_raise_and_are_valid(text, duration):
    result = parse_windows(text, duration)
    assert isinstance(result, Parsed) and result.ok == bool(result.value)
    _check_windows(result.value, duration)


@PROPERTY
@given(any_text, durations)
def test_events_never_raise_and_are_valid(text, duration):
    result = parse_events(text, duration)
    assert result.ok == bool(result.value)
    _check_windows([(s, e) for s, e, _ in result.value], duration)
    assert all(isinstance(c, str) and c == c.strip() for _, _, c in result.value)


@PROPERTY
@given(any_text, st.floats(min_value=0, max_value=5000, allow_nan=False), st.sampled_from([1.0, 2.0, 0.5, 3.3]))
def test_saliency_has_the_right_length(text, duration, clip_length):
    result = parse_saliency(text, duration, clip_length)
    n_clips = int(duration / clip_length)
    assert len(result.value) == (n_clips if n_clips else 0)
    assert all(math.isfinite(v) for v in result.value)


@PROPERTY
@given(any_text, st.floats(min_value=0.01, max_value=5000, allow_nan=False))
def test_summary_has_the_right_length(text, duration):
    result = parse_summary(text, duration)
    assert len(result.value) == math.ceil(duration)
    assert all(math.isfinite(v) for v in result.value)


@PROPERTY
@given(any_text, st.floats(min_value=0, max_value=5000, allow_nan=False))
def test_legacy_parsers_never_raise(text, duration):
    for result in (legacy_parse_tvg(text), legacy_parse_dvc(text), legacy_parse_vhd(text, duration)):
        assert isinstance(result, Parsed)
    assert len(legacy_parse_vhd(text, duration).value) == int(duration / 2)


@PROPERTY
@given(st.lists(st.sampled_from(list("0123456789.  --::a\n")), max_size=20).map("".join))
def test_legacy_number_patterns_match_the_original(text):
    original = {"_LEGACY_PAIR": r"(\d+\.*\d*)\s*-\s*(\d+\.*\d*)",
                "_LEGACY_PAIR_TEXT": r"(\d+\.*\d*\s*-\s*\d+\.*\d*)",
                "_LEGACY_RANGE_TEXT": r"\d+\.*\d*\s*-\s*\d+\.*\d*", "_LEGACY_COLON_TIME": r"\d+\.*\d*:\d+\.*\d*"}
    for name, pattern in original.items():
        assert getattr(P, name).findall(text) == re.findall(pattern, text)


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 50000), st.integers(0, 50000)), min_size=1, max_size=5))
def test_windows_round_trip(pairs):
    windows = [(min(a, b) / 10, max(a, b) / 10) for a, b in pairs]
    expected = list(dict.fromkeys(windows))
    approx_windows(parse_windows(" ".join(plain(mr_answer(s, e)) for s, e in windows)).value, expected)
