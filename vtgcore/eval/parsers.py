"""Task output parsers: robust ones for evaluation, legacy ones that reproduce VTG-LLM exactly.

Generated token ids are first turned into text in which every time is a plain decimal number of
seconds (the time codec decodes time tokens by id), so the robust parsers read plain text:

* :func:`parse_windows` (moment retrieval): every ``start - end`` window, in order of appearance.
* :func:`parse_events` (dense video captioning): ``(start, end, caption)`` triples.
* :func:`parse_saliency` (highlight detection): one score per clip of ``clip_length`` seconds.
* :func:`parse_summary` (video summarisation): one score per second.

The robust parsers never raise on any input string; a text without anything usable gives
``Parsed(ok=False)``, which counts as a parse failure (see :class:`ParseStats`).

The legacy parsers (:func:`legacy_parse_tvg`, :func:`legacy_parse_dvc`, :func:`legacy_parse_vhd`)
reproduce ``utils/format_{tvg,dvc,vhd}.py`` of the original VTG-LLM, quirks included, for parity
studies (``vtgllm-original.md`` sections 2.4 and 5.2). Each of them first runs the original's text
decoding step (:func:`legacy_decode_time_tokens`), so it accepts raw ``<TIME_X>`` text or plain text.
Where the original itself crashes or stops in the debugger, they return ``ok=False`` with a note.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

from vtgcore.errors import VTGError
from vtgcore.vocab import TASKS

__all__ = [
    "ParseStats", "Parsed", "legacy_decode_time_tokens", "legacy_parse_dvc", "legacy_parse_tvg",
    "legacy_parse_vhd", "parse", "parse_events", "parse_saliency", "parse_summary", "parse_windows",
]

Window = tuple[float, float]
Event = tuple[float, float, str]

_MAX_BINS = 1_000_000  # a saliency list longer than this means the duration is not a video's


@dataclass
class Parsed:
    """The result of parsing one generated answer.

    Attributes:
        value: the parsed prediction: windows ``[(start, end), ...]`` (MR), events
            ``[(start, end, caption), ...]`` (DVC) or scores ``[float, ...]`` (HD, summary).
        ok: False when nothing usable was found; the sample then counts as a parse failure.
        note: why parsing failed, or which fallback or correction was applied ("; "-separated).
    """

    value: Any
    ok: bool
    note: str = ""


@dataclass
class ParseStats:
    """Counts parse failures so that every evaluation can report them.

    Attributes:
        failures: results with ``ok=False``.
        total: results added.
    """

    failures: int = 0
    total: int = 0

    def add(self, parsed: Parsed) -> Parsed:
        """Count one result and return it unchanged."""
        self.total += 1
        if not parsed.ok:
            self.failures += 1
        return parsed

    @property
    def rate(self) -> float:
        """The failure rate in [0, 1] (0.0 before anything was added)."""
        return self.failures / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """``{"parse_failures": n, "parse_total": m, "parse_failure_rate": r}``."""
        return {"parse_failures": self.failures, "parse_total": self.total, "parse_failure_rate": self.rate}


# ==================================================================================================
# Robust parsers: shared text scanning
# ==================================================================================================

_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
                         "\u2015": "-", "\u2212": "-", "\uff5e": "~", "\r": "\n"})
_TIME_TAG = re.compile(r"</?time>", re.I)

_D = "[0-9]"
_CLOCK = rf"(?:{_D}{{1,2}}:[0-5]{_D}:[0-5]{_D}(?:\.{_D}+)?|{_D}{{1,3}}:[0-5]{_D}(?:\.{_D}+)?)"
_DECIMAL = rf"{_D}+(?:\.{_D}+)?"
_UNIT = r"(?:seconds?|secs?|s|minutes?|mins?|hours?|hrs?)"
# A time: hh:mm:ss, mm:ss (both with an optional fraction) or a decimal, with an optional unit. Not
# part of a word, a version string ("1.5.3"), a clock that is not one ("1:75") or a fraction ("3/5").
_TIME = re.compile(
    rf"(?<![\w.:/])(?P<body>{_CLOCK}|{_DECIMAL})(?!{_D}|:{_D}|\.{_D})(?:[ \t]*(?P<unit>{_UNIT})\b)?(?!\w)", re.I)
# Numbers that are obviously not times: followed by a non-time unit ...
_NOT_TIME_AFTER = re.compile(
    r"[ \t]*(?:%|/[ \t]*[0-9]|(?:percent|per[ \t]?cent|frames?|fps|times|x|steps?|people|persons?|pixels?|px"
    r"|points?|stars?|out[ \t]+of)\b)", re.I)
# ... or preceded by a word that makes them a score, an index or a count (checked for unit-less numbers).
_NOT_TIME_BEFORE = re.compile(
    r"(?:\b(?:scores?|ratings?|rated|confidence|saliency|significance)[ \t]*[:=]?[ \t]*(?:(?:of|is|was|are)[ \t]+)?"
    r"|\b(?:rank(?:ed)?|top|number|no\.|steps?|items?|frames?|clips?|events?|moments?|segments?|quer(?:y|ies)"
    r"|options?|answers?|parts?|scenes?|shots?|ids?)[ \t]*#?[ \t]*|#[ \t]*)$", re.I)

_RANGE_GAP = re.compile(r"[ \t]*(?:-{1,2}|~|to|till|until|through|thru)[ \t]*", re.I)
_AND_GAP = re.compile(r"[ \t]*(?:and|&)[ \t]*", re.I)
_COMMA_GAP = re.compile(r"[ \t]*,[ \t]*")
_BETWEEN_BEFORE = re.compile(r"\bbetween[ \t]+(?:the[ \t]+)?$", re.I)
_FROM_BEFORE = re.compile(r"\b(?:from|between)[ \t]+(?:the[ \t]+)?$", re.I)
_OPEN_BEFORE = re.compile(r"[\[(][ \t]*$")
_CLOSE_AFTER = re.compile(r"[ \t]*[\])]")
_AT_BEFORE = re.compile(r"(?:\b(?:at|around|about|approximately|approx\.?|near|roughly)|@)[ \t]*$", re.I)
_EDGE_KEYWORD = re.compile(
    r"\b(?:(?P<start>start(?:s|ed|ing)?|begin(?:s|ning)?|began|onset)"
    r"|(?P<end>end(?:s|ed|ing)?|finish(?:es|ed|ing)?|stop(?:s|ped|ping)?|until|till))\b", re.I)
_SENTENCE_BREAK = re.compile(r"[.!?]\s|\n")
_CONTEXT = 48  # characters looked at before a time for keywords

# Captions (DVC).
_CLAUSE_START = re.compile(r"(?:^|[.!?;:\n])\s*(?:(?:[0-9]{1,2}[.)]|[-*\u2022])[ \t]*)?$")
_LEAD_WORD = re.compile(r"^(?:(?:seconds?|secs?)\b|(?:description|caption|event|activity)[ \t]*:|[0-9]{1,2}[.)](?=\s))",
                        re.I)
_TRAIL_WORD = re.compile(r"(?:^|(?<=\s))(?:at|in|from|between|during|around|within)$", re.I)
_TRAIL_MARKER = re.compile(r"(?<=[.!?])\s+[0-9]{1,2}[.)]?$")
_LEAD_CHARS = " \t\n,;:.-)]>*\u2022~"
_TRAIL_CHARS = " \t\n,;:.-([<*\u2022!?~"
_FIRST_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_LAST_CLAUSE = re.compile(r"(?<=[.!?:])\s+")
_SPACES = re.compile(r"\s+")

# Saliency (HD, summary).
_PAIR_SCORE = re.compile(
    r"[ \t]*[,:;\-]?[ \t]*(?:(?:with|has|and)[ \t]+)?(?:(?:an?|the|its)[ \t]+)?"
    r"(?:(?:significance|saliency|highlight|relevance|importance)[ \t]+)?scores?[ \t]*"
    r"(?:(?:of|is|was)[ \t]+|[:=][ \t]*)?(?P<score>[0-9]+(?:\.[0-9]+)?)(?![0-9])", re.I)
_NUMBER_LIST = r"[0-9]+(?:\.[0-9]+)?(?:[ \t]*(?:,[ \t]*and|,|and)[ \t]*[0-9]+(?:\.[0-9]+)?)*"
_LIST_TIMES = re.compile(rf"\bin[ \t]+the[ \t]+(?P<times>{_NUMBER_LIST})[ \t]*(?:seconds?|secs?)\b", re.I)
_LIST_SCORES = re.compile(rf"\bscores?[ \t]+(?:are|is|were|:)[ \t]*(?P<scores>{_NUMBER_LIST})", re.I)
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class _Time:
    """One time found in the text: its span, the number as written and its unit."""

    start: int
    end: int
    raw: float
    unit: Optional[str]
    clock: bool

    def seconds(self, unit: Optional[str] = None) -> float:
        """The time in seconds; ``unit`` stands in for a missing unit (``2 - 3 minutes``)."""
        if self.clock:
            return self.raw
        return self.raw * _unit_scale(self.unit or unit)


@dataclass
class _Candidate:
    """A window (or event) found in the text, before clamping and de-duplication."""

    start: float
    end: float
    span: tuple[int, int]
    caption: str = ""


def _as_text(text: Any) -> str:
    """``text`` as a string: None -> "", bytes decoded as UTF-8 (bad bytes replaced), else ``str()``."""
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", errors="replace")
    return text if isinstance(text, str) else str(text)


def _normalize(text: Any) -> str:
    """Plain text with ``<time>`` markers removed and every dash written as ``-``."""
    return _TIME_TAG.sub("", _as_text(text)).translate(_DASHES)


def _unit_scale(unit: Optional[str]) -> float:
    word = (unit or "").lower()
    if word.startswith("m"):
        return 60.0
    if word.startswith("h"):
        return 3600.0
    return 1.0


def _body_value(body: str) -> float:
    if ":" not in body:
        return float(body)
    value = 0.0
    for part in body.split(":"):
        value = value * 60.0 + float(part)
    return value


def _is_not_time(text: str, match: re.Match) -> bool:
    if _NOT_TIME_AFTER.match(text, match.end()):
        return True
    plain = match.group("unit") is None and ":" not in match.group("body")
    return plain and _NOT_TIME_BEFORE.search(text, max(0, match.start() - 40), match.start()) is not None


def _times(text: str) -> list[_Time]:
    """Every time in ``text``, numbers that are obviously not times left out."""
    found = []
    for match in _TIME.finditer(text):
        if _is_not_time(text, match):
            continue
        body = match.group("body")
        raw = _body_value(body)
        if math.isfinite(raw):
            found.append(_Time(match.start(), match.end(), raw, match.group("unit"), ":" in body))
    return found


def _pair_values(first: _Time, second: _Time) -> tuple[float, float]:
    """Seconds of a start and end time; the end's unit stands in for a missing start unit."""
    return first.seconds(None if second.clock else second.unit), second.seconds()


def _is_range(text: str, first: _Time, second: _Time) -> bool:
    gap = text[first.end:second.start]
    if _RANGE_GAP.fullmatch(gap):
        return True
    if _AND_GAP.fullmatch(gap):
        return _BETWEEN_BEFORE.search(text, max(0, first.start - 16), first.start) is not None
    if _COMMA_GAP.fullmatch(gap):
        return (_OPEN_BEFORE.search(text, max(0, first.start - 4), first.start) is not None
                and _CLOSE_AFTER.match(text, second.end) is not None)
    return False


def _ranges(text: str, times: list[_Time]) -> tuple[list[_Candidate], set[int]]:
    """``s - e``, ``s to e``, ``from s to e``, ``between s and e`` and ``(s, e)`` windows."""
    found: list[_Candidate] = []
    used: set[int] = set()
    k = 0
    while k < len(times) - 1:
        first, second = times[k], times[k + 1]
        if not _is_range(text, first, second):
            k += 1
            continue
        prefix = _FROM_BEFORE.search(text, max(0, first.start - 16), first.start)
        start, end = _pair_values(first, second)
        found.append(_Candidate(start, end, (prefix.start() if prefix else first.start, second.end)))
        used.update((k, k + 1))
        k += 2
    return found, used


def _edge_role(text: str, lo: int, hi: int) -> Optional[tuple[str, int]]:
    """``("start" | "end", keyword position)`` of the last start/end keyword in ``text[lo:hi]``."""
    context = text[lo:hi]
    breaks = list(_SENTENCE_BREAK.finditer(context))
    if breaks:
        lo += breaks[-1].end()
    last = None
    for last in _EDGE_KEYWORD.finditer(text, lo, hi):
        pass
    if last is None:
        return None
    return ("start" if last.group("start") else "end"), last.start()


def _keyword_pairs(text: str, times: list[_Time], used: set[int]) -> tuple[list[_Candidate], set[int]]:
    """Windows from sentences such as "starts at 12 seconds ... ends at 15 seconds"."""
    found: list[_Candidate] = []
    marked: set[int] = set()
    pending: Optional[tuple[_Time, int]] = None
    previous_end = 0
    for k, time in enumerate(times):
        role = None if k in used else _edge_role(text, max(previous_end, time.start - _CONTEXT), time.start)
        previous_end = time.end
        if role is None:
            continue
        marked.add(k)
        if role[0] == "start":
            pending = (time, role[1])
        elif pending is not None:
            start, end = _pair_values(pending[0], time)
            found.append(_Candidate(start, end, (pending[1], time.end)))
            pending = None
    return found, marked


def _single_times(text: str, times: list[_Time], marked: set[int]) -> list[_Candidate]:
    """Zero-length windows for times that are clearly times ("at 12 seconds", "1:05", "starts at 3")."""
    found = []
    for k, time in enumerate(times):
        keyword = _AT_BEFORE.search(text, max(0, time.start - 16), time.start)
        if time.clock or time.unit is not None or keyword is not None or k in marked:
            value = time.seconds()
            found.append(_Candidate(value, value, (keyword.start() if keyword else time.start, time.end)))
    return found


def _candidates(text: str) -> tuple[list[_Candidate], list[str]]:
    """All windows of ``text`` in order of appearance, with notes on the fallback used."""
    times = _times(text)
    ranges, used = _ranges(text, times)
    pairs, marked = _keyword_pairs(text, times, used)
    notes = ["windows from start/end keywords"] if pairs and not ranges else []
    found = sorted(ranges + pairs, key=lambda c: c.span[0])
    if found:
        return found, notes
    singles = _single_times(text, times, marked)
    return singles, (["single times only: read as zero-length windows"] if singles else [])


def _clean_duration(duration: Any) -> tuple[Optional[float], list[str]]:
    """``duration`` as a finite float >= 0, or None (with a note when it was given but unusable)."""
    if duration is None:
        return None, []
    try:
        value = float(duration)
    except (TypeError, ValueError):
        return None, [f"ignored an unusable duration {duration!r}"]
    if not math.isfinite(value) or value < 0:
        return None, [f"ignored an unusable duration {duration!r}"]
    return value, []


def _add_note(notes: list[str], note: str) -> None:
    if note not in notes:
        notes.append(note)


def _finish(candidates: list[_Candidate], duration: Optional[float], notes: list[str]) -> list[_Candidate]:
    """Swap reversed windows, clamp to ``[0, duration]``, drop those beyond it and duplicates."""
    kept: list[_Candidate] = []
    seen: set[tuple[float, float, str]] = set()
    for cand in candidates:
        start, end = cand.start, cand.end
        if not (math.isfinite(start) and math.isfinite(end)):
            _add_note(notes, "dropped a non-finite time")
            continue
        if start > end:
            start, end = end, start
            _add_note(notes, "swapped reversed window(s)")
        if duration is not None:
            if start > duration:
                _add_note(notes, "dropped window(s) beyond the duration")
                continue
            if end > duration:
                end = duration
                _add_note(notes, "clamped window(s) to the duration")
        key = (round(start, 6), round(end, 6), cand.caption)
        if key in seen:
            _add_note(notes, "removed duplicate(s)")
            continue
        seen.add(key)
        kept.append(_Candidate(start, end, cand.span, cand.caption))
    return kept


def _result(value: list, notes: list[str], failure: str) -> Parsed:
    if not value:
        _add_note(notes, failure)
    return Parsed(value, bool(value), "; ".join(notes))


# ==================================================================================================
# Robust parsers: MR and DVC
# ==================================================================================================


def parse_windows(text: str, duration: Optional[float] = None) -> Parsed:
    """Every time window of a moment-retrieval answer, in order of appearance.

    Reads ``s - e``, ``s to e``, ``from s to e``, ``between s and e``, ``(s, e)`` and
    ``s-e seconds``; times may be decimals (optionally with a unit: s, sec, seconds, min, hours) or
    ``mm:ss`` / ``hh:mm:ss`` (also ``1:05.5``). Sentences such as "starts at 12 s ... ends at 15 s"
    give a window too. Preambles and other text are ignored, and numbers that are obviously not
    times ("3 frames", "50%", "score: 3", "step 2", ordinals) create no window. When no window is
    found, single times with a keyword or a unit ("at 12 seconds", "1:05") become zero-length
    windows (noted). Unlike the original, every window is kept, not only the first.

    Args:
        text: the generated answer with times as plain decimals.
        duration: the video length in seconds; when given, windows are clamped to
            ``[0, duration]`` and windows starting after it are dropped (noted).

    Returns:
        ``Parsed`` whose value is ``[(start, end), ...]`` with ``0 <= start <= end`` (reversed
        windows swapped, duplicates removed keeping the first); ``ok`` is False when empty.
    """
    text = _normalize(text)
    limit, notes = _clean_duration(duration)
    found, fallback = _candidates(text)
    notes.extend(fallback)
    kept = _finish(found, limit, notes)
    return _result([(c.start, c.end) for c in kept], notes, "no time window found")


def _outer_span(text: str, cand: _Candidate) -> tuple[int, int, bool]:
    """The span of a window widened over enclosing brackets, and whether there were any."""
    lo, hi = cand.span
    opening = _OPEN_BEFORE.search(text, max(0, lo - 4), lo)
    closing = _CLOSE_AFTER.match(text, hi)
    if opening and closing:
        return opening.start(), closing.end(), True
    return lo, hi, False


def _strip_caption(caption: str) -> str:
    """Remove separators, a leftover unit, labels, list markers and trailing punctuation."""
    while True:
        before = caption
        caption = _LEAD_WORD.sub("", caption.lstrip(_LEAD_CHARS))
        caption = _TRAIL_MARKER.sub("", caption.rstrip(_TRAIL_CHARS))
        if caption == before:
            return _SPACES.sub(" ", caption).strip()


def _caption_after(piece: str, last: bool) -> str:
    """The caption written after its window: up to the line end (the last one: the sentence end)."""
    piece = _LEAD_WORD.sub("", piece.lstrip(_LEAD_CHARS)).lstrip(_LEAD_CHARS).split("\n", 1)[0]
    if last:
        piece = _FIRST_SENTENCE.split(piece, 1)[0]
    return _strip_caption(piece)


def _caption_before(piece: str) -> str:
    """The caption written before its window: its line's last sentence or clause, without the
    preposition that led to the time ("appears at (12 - 15)")."""
    piece = _TRAIL_WORD.sub("", piece.rstrip(_TRAIL_CHARS)).rstrip(_TRAIL_CHARS)
    piece = piece.rsplit("\n", 1)[-1]
    return _strip_caption(_LAST_CLAUSE.split(piece)[-1])


def _attach_captions(text: str, found: list[_Candidate], notes: list[str]) -> None:
    """Give each window its caption: after the time ("12 - 15 seconds, caption") or before it
    ("caption (12 - 15)"), chosen for the whole answer."""
    spans = [_outer_span(text, cand) for cand in found]
    bounds = [0] + [hi for _, hi, _ in spans]
    befores = [text[bounds[k]:lo] for k, (lo, _, _) in enumerate(spans)]
    afters = [text[hi:(spans[k + 1][0] if k + 1 < len(spans) else len(text))] for k, (_, hi, _) in enumerate(spans)]
    bracketed = sum(1 for _, _, b in spans if b)
    clause_starts = sum(1 for before in befores if _CLAUSE_START.search(before))
    caption_first = bracketed * 2 > len(found) or clause_starts * 2 < len(found)
    if caption_first:
        captions = [_caption_before(before) for before in befores]
        _add_note(notes, "captions written before their times")
    else:
        captions = [_caption_after(after, k == len(found) - 1) for k, after in enumerate(afters)]
        if _strip_caption(befores[0]):
            _add_note(notes, "ignored text before the first event")
    for cand, caption in zip(found, captions):
        cand.caption = caption


def parse_events(text: str, duration: Optional[float] = None) -> Parsed:
    """The events of a dense-captioning answer.

    Reads the training format ``s - e seconds, caption. s - e seconds, caption.``, one event per
    sentence or line, ``caption (s - e)``, every window form of :func:`parse_windows` and
    ``mm:ss`` times. Whether captions follow or precede their times is decided for the whole
    answer (brackets around the times, or times that do not start a clause, mean "before"). Text
    before the first event is ignored and never shifts the captions (the original's quirk), and
    text after the last event's sentence is ignored. Captions lose the unit word, separators,
    labels ("description:"), list markers and trailing punctuation. An empty caption is kept
    (noted). Without any window, single times ("12 seconds, caption", ViTT style) become
    zero-length events (noted).

    Args:
        text: the generated answer with times as plain decimals.
        duration: the video length in seconds; clamps the windows as in :func:`parse_windows`.

    Returns:
        ``Parsed`` whose value is ``[(start, end, caption), ...]`` in order of appearance, exact
        duplicates removed; ``ok`` is False when there is no event.
    """
    text = _normalize(text)
    limit, notes = _clean_duration(duration)
    found, fallback = _candidates(text)
    notes.extend(fallback)
    if found:
        _attach_captions(text, found, notes)
    kept = _finish(found, limit, notes)
    if any(not c.caption for c in kept):
        _add_note(notes, "empty caption(s)")
    return _result([(c.start, c.end, c.caption) for c in kept], notes, "no event found")


# ==================================================================================================
# Robust parsers: HD and summary
# ==================================================================================================


def _list_pairs(text: str, notes: list[str]) -> tuple[list[tuple[float, float]], list[tuple[int, int]]]:
    """Pairs of the TimeIT form "... in the t1, t2 seconds. Their saliency scores are s1, s2"."""
    pairs: list[tuple[float, float]] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        times = _LIST_TIMES.search(text, pos)
        scores = _LIST_SCORES.search(text, times.end()) if times else None
        if not times or not scores:
            return pairs, spans
        t_values = [float(v) for v in _NUMBER.findall(times.group("times"))]
        s_values = [float(v) for v in _NUMBER.findall(scores.group("scores"))]
        if len(t_values) != len(s_values):
            _add_note(notes, f"{len(t_values)} times but {len(s_values)} scores: extra ones ignored")
        pairs.extend(zip(t_values, s_values))
        spans.append((times.start(), scores.end()))
        pos = scores.end()


def _score_pairs(text: str, notes: list[str]) -> list[tuple[float, float]]:
    """``(time, score)`` pairs of ``t seconds, (significance|saliency) score: s`` items and of the
    TimeIT list form, in order of appearance."""
    pairs, spans = _list_pairs(text, notes)
    for time in _times(text):
        if any(lo <= time.start < hi for lo, hi in spans):
            continue
        match = _PAIR_SCORE.match(text, time.end)
        if match:
            pairs.append((time.seconds(), float(match.group("score"))))
    return pairs


def _mean_per_bin(pairs: list[tuple[float, float]], n_bins: int, bin_length: float, duration: float,
                  notes: list[str]) -> tuple[list[float], int]:
    """Average scores per bin ``min(int(t // bin_length), n_bins - 1)``; empty bins get 0.0."""
    means = [0.0] * n_bins
    counts = [0] * n_bins
    used = 0
    for time, score in pairs:
        if not (math.isfinite(time) and math.isfinite(score)):
            _add_note(notes, "dropped a non-finite time or score")
            continue
        if time > duration:
            _add_note(notes, "dropped time(s) beyond the duration")
            continue
        index = min(int(time // bin_length), n_bins - 1)
        counts[index] += 1
        means[index] += (score - means[index]) / counts[index]
        used += 1
    return means, used


def _scores(text: str, duration: Any, n_bins: Callable[[float], int], bin_length: float) -> Parsed:
    limit, notes = _clean_duration(duration)
    if limit is None:
        _add_note(notes, "a duration is needed to place the scores")
        return Parsed([], False, "; ".join(notes))
    count = n_bins(limit)
    if count == 0 or count > _MAX_BINS:
        return Parsed([], False, f"duration {limit:g} s gives {count} bins")
    pairs = _score_pairs(_normalize(text), notes)
    means, used = _mean_per_bin(pairs, count, bin_length, limit, notes)
    if not used:
        _add_note(notes, "no (time, score) pair found" if not pairs else "no score could be placed")
    return Parsed(means, used > 0, "; ".join(notes))


def parse_saliency(text: str, duration: float, clip_length: float = 2.0) -> Parsed:
    """Per-clip saliency scores of a highlight-detection answer.

    Reads ``t seconds, significance score: s`` (also "saliency score", "score of s") pairs and the
    TimeIT form ``There are N highlight moments in the t1, t2, ... second(s). Their saliency scores
    are s1, s2, ...``. A time ``t`` goes to clip ``min(int(t // clip_length), n_clips - 1)``; this
    differs from the original's ``max(0, int((t - 1) / 2))`` (kept by :func:`legacy_parse_vhd`),
    which shifts every time by one second. Times after ``duration`` are dropped (noted); several
    scores in one clip are averaged; clips without a prediction get 0.0.

    Args:
        text: the generated answer with times as plain decimals.
        duration: the video length in seconds; ``n_clips = int(duration / clip_length)``.
        clip_length: seconds per clip (2.0 for QVHighlights).

    Returns:
        ``Parsed`` whose value has exactly ``n_clips`` finite scores (an empty list, ``ok=False``,
        when the duration is missing or unusable); ``ok`` is False when no score was placed.

    Raises:
        VTGError: ``clip_length`` is not a positive finite number.
    """
    try:
        length = float(clip_length)
    except (TypeError, ValueError):
        length = math.nan
    if not (math.isfinite(length) and length > 0):
        raise VTGError(f"clip_length must be a positive number of seconds, got {clip_length!r}")
    return _scores(text, duration, lambda d: int(d / length), length)


def parse_summary(text: str, duration: float) -> Parsed:
    """Per-second scores of a video-summarisation answer.

    Reads the same pairs as :func:`parse_saliency` (scores 1-5 in the VTG-IT-VS and TimeIT
    formats; other values are kept as written). Time ``t`` goes to second
    ``min(int(t), n - 1)`` with ``n = ceil(duration)``; several scores in one second are averaged;
    seconds without a prediction get 0.0.

    Args:
        text: the generated answer with times as plain decimals.
        duration: the video length in seconds.

    Returns:
        ``Parsed`` whose value has exactly ``ceil(duration)`` finite scores (an empty list,
        ``ok=False``, when the duration is missing or unusable); ``ok`` is False when no score
        was placed.
    """
    return _scores(text, duration, math.ceil, 1.0)


# ==================================================================================================
# Legacy parsers (the original VTG-LLM, quirks included)
# ==================================================================================================

_LEGACY_TOKENS = (("ZERO", "0"), ("ONE", "1"), ("TWO", "2"), ("THREE", "3"), ("FOUR", "4"), ("FIVE", "5"),
                  ("SIX", "6"), ("SEVEN", "7"), ("EIGHT", "8"), ("NINE", "9"), ("DOT", "."))
_LEGACY_DIGIT_RUN = re.compile(r"\d[\d\s]*(\.[\s\d]*\d)*")
# The original's number pattern ``\d+\.*\d*`` is written ``(?<!\d)\d+(?:\.+\d*)?`` where a text
# must follow it: the same matches and groups (the distinct end positions are tried in the same
# order, and a match cannot start inside a digit run when one starting earlier fails), without the
# cubic backtracking of the original on long digit runs such as a merged "1 1 1 ...".
_LEGACY_NUM = r"(?<!\d)\d+(?:\.+\d*)?"
_LEGACY_PAIR = re.compile(rf"({_LEGACY_NUM})\s*-\s*(\d+\.*\d*)")
_LEGACY_PAIR_TEXT = re.compile(rf"({_LEGACY_NUM}\s*-\s*\d+\.*\d*)")
_LEGACY_SENTENCES = re.compile(r"[!?\n]")
_LEGACY_TVG_KEYWORDS = ("starts", "ends", "happens in", "start time", "end time", "start", "end", "happen")
_LEGACY_FIRST_NUMBER = re.compile(r"\b(\d+\.\d+\b|\b\d+)\b")
_LEGACY_HMS = re.compile(r"\b((\d{1,2}:\d{2}:\d{2}))\b")
_LEGACY_START_TIME = re.compile(r"(?:start(?:ing)? time: (\d+\.*\d*)(?:s| seconds)?)", re.DOTALL | re.IGNORECASE)
_LEGACY_END_TIME = re.compile(r"(?:end(?:ing)? time: (\d+\.*\d*)(?:s| seconds)?)", re.DOTALL | re.IGNORECASE)
_LEGACY_DESCRIPTION = re.compile(r"description: (.*)")
_LEGACY_BULLET = re.compile(r"\*\s*(.*)")
_LEGACY_PDB_BRANCH = re.compile(r"start time (\d+\.*\d*), end time (\d+\.*\d*)")
_LEGACY_RANGE_TEXT = re.compile(rf"{_LEGACY_NUM}\s*-\s*\d+\.*\d*")
_LEGACY_COLON_TIME = re.compile(rf"{_LEGACY_NUM}:\d+\.*\d*")
_LEGACY_LONE_NUMBER = re.compile(r"\d+\.*\d*(?!\.)")
_LEGACY_RADIUS = 20
_LEGACY_VHD_SPLIT = re.compile(r"[,\n]+")
_LEGACY_SCORE = re.compile(r"\b\d\.?\d?\b")
_LEGACY_VHD_TIME = re.compile(r"\b((\d{1,2}:\d{2}:\d{2}))\b|\b(\d+\.?\d+?\b|\b\d+)\b")


class _OriginalFailure(Exception):
    """The original code raises or stops at this point; the message says how."""


def legacy_decode_time_tokens(text: str) -> str:
    """The original's text decoding of time tokens (``vtgllm-original.md`` section 2.4).

    Replaces each ``<TIME_ZERO>`` ... ``<TIME_NINE>`` by its digit and ``<TIME_DOT>`` by ``.``,
    then removes the spaces inside every match of ``\\d[\\d\\s]*(\\.[\\s\\d]*\\d)*``.

    Quirks kept: separate numbers divided only by spaces merge ("3 4 seconds" -> "34seconds"); a
    caption ending in a digit followed by ". 0010.0" merges into "2.0010.0"; only spaces are
    removed, so a newline inside a digit run stays.

    Args:
        text: decoded model output (time tokens separated by spaces) or plain text.

    Returns:
        The text with digits in place of the time tokens.
    """
    text = _as_text(text)
    for name, char in _LEGACY_TOKENS:
        text = text.replace(f"<TIME_{name}>", char)
    return _LEGACY_DIGIT_RUN.sub(lambda m: m.group(0).replace(" ", ""), text)


def _legacy_floats(pairs: list[tuple[str, str]]) -> list[tuple[float, float]]:
    try:
        return [(float(a), float(b)) for a, b in pairs]
    except ValueError as err:
        raise _OriginalFailure(f"the original raises ValueError ({err})") from None


def _legacy_tvg_windows(paragraph: str) -> tuple[list[tuple[float, float]], str]:
    candidates = [s for s in _LEGACY_SENTENCES.split(paragraph) if any(k in s for k in _LEGACY_TVG_KEYWORDS)]
    windows = _legacy_floats(_LEGACY_PAIR.findall(paragraph))
    if windows:
        return windows, ""
    times = []
    for sentence in candidates:
        found = _LEGACY_FIRST_NUMBER.findall(sentence)
        if found:
            times.append(float(found[0]))
    times = times[:len(times) // 2 * 2]
    if times:
        return [(times[k], times[k + 1]) for k in range(0, len(times), 2)], "keyword-sentence fallback"
    if any(_LEGACY_HMS.search(sentence) for sentence in candidates):
        raise _OriginalFailure("the original raises UnboundLocalError in its hh:mm:ss fallback "
                               "(re.findall returns tuples there)")
    return [], ""


def legacy_parse_tvg(text: str) -> Parsed:
    """The original moment-retrieval parser (``utils/format_tvg.py``).

    Steps: :func:`legacy_decode_time_tokens`, lowercase, then all matches of
    ``(\\d+\\.*\\d*)\\s*-\\s*(\\d+\\.*\\d*)`` over the whole text. Fallback: sentences (split on
    ``!?\\n``) with a keyword (starts, ends, happens in, start time, end time, start, end, happen)
    give their first number, paired up in order (an odd last one dropped). Reversed windows are
    swapped. **Only the first window is kept.**

    Quirks kept: only the first window; digit runs merged by the decoding step ("top 1 12.3 - 15.0"
    -> 112.3), which also glues a number to the next word ("12 seconds" -> "12seconds") so that the
    keyword fallback's ``\b``-bounded numbers miss it; a number such as "1..5" makes the original
    raise ValueError; the hh:mm:ss fallback can never give a window: it
    is reached only when a keyword sentence holds a clock time the first fallback could not pair,
    and then ``re.findall`` returns tuples and the original raises UnboundLocalError (its mm:ss
    branch is unreachable). Where the original raises, this returns ``ok=False`` with a note. No
    clamping to the duration.

    Args:
        text: raw ``<TIME_X>`` text or plain text.

    Returns:
        ``Parsed`` whose value is ``[(start, end)]`` or ``[]``.
    """
    paragraph = legacy_decode_time_tokens(text).lower()
    try:
        windows, note = _legacy_tvg_windows(paragraph)
    except _OriginalFailure as failure:
        return Parsed([], False, str(failure))
    notes = [note] if note else []
    if len(windows) > 1:
        notes.append(f"kept only the first of {len(windows)} windows")
    result = [(s, e) if e > s else (e, s) for s, e in windows[:1]]
    if not result:
        notes.append("no time window found")
    return Parsed(result, bool(result), "; ".join(notes))


def _legacy_dvc_paragraph(paragraph: str) -> tuple[list[tuple[float, float]], list[str], str]:
    """Steps 1-3 of the original DVC parser on the decoded, lowercased text."""
    timestamps = _legacy_floats(_LEGACY_PAIR.findall(paragraph))
    captions: list[str] = []
    if timestamps:
        rest = paragraph
        for time_text in _LEGACY_PAIR_TEXT.findall(paragraph):
            rest = rest.replace(time_text, "\n")
        captions = rest.replace("seconds", "").split("\n")
    else:
        starts = _LEGACY_START_TIME.findall(paragraph)
        ends = _LEGACY_END_TIME.findall(paragraph)
        if starts and ends:
            timestamps = _legacy_floats(list(zip(starts, ends)))
            captions = _LEGACY_DESCRIPTION.findall(paragraph) or _LEGACY_BULLET.findall(paragraph)
    if not timestamps and _LEGACY_PDB_BRANCH.findall(paragraph):
        raise _OriginalFailure("the original stops in pdb.set_trace() on 'start time X, end time Y'")
    captions = [c.strip().strip(", ").rstrip() for c in captions if len(c) > 5]
    count = min(len(timestamps), len(captions))
    note = "" if len(timestamps) == len(captions) else \
        f"{len(timestamps)} windows and {len(captions)} captions: truncated to {count}"
    return timestamps[:count], captions[:count], note


def _legacy_window(value: float) -> str:
    if value > _LEGACY_RADIUS:
        return f"{value - _LEGACY_RADIUS} - {value + _LEGACY_RADIUS}"
    return f"{value} - {value + 2 * _LEGACY_RADIUS}"


def _legacy_time_part(time_part: str) -> list[str]:
    """The original ``extract_time_part``: a window as text, e.g. ``["12 - 15"]``, or ``[]``."""
    found = _LEGACY_RANGE_TEXT.findall(time_part)
    if not found and time_part.count(":") == 1:
        minutes, seconds = _LEGACY_COLON_TIME.findall(time_part)[0].split(":")[:2]
        found = [_legacy_window(int(minutes) * 60 + int(seconds))]
    elif not found and time_part.count(":") == 2:
        start, end = _LEGACY_COLON_TIME.findall(time_part)
        found = [f"{int(start.split(':')[0]) * 60 + int(start.split(':')[1])} - "
                 f"{int(end.split(':')[0]) * 60 + int(end.split(':')[1])}"]
    if not found:
        numbers = _LEGACY_LONE_NUMBER.findall(time_part)
        if len(numbers) == 1:
            found = [_legacy_window(float(numbers[0]))]
        elif len(numbers) == 2:
            found = [f"{numbers[0]} - {numbers[1]}"]
    return found


def _legacy_dvc_sentences(caption: str) -> tuple[list[tuple[float, float]], list[str]]:
    """The original's "type 2" fallback on the raw (not decoded, not lowercased) text."""
    if "\n" in caption:
        pieces = [c for c in caption.split("\n") if len(c) > 7]
    else:
        pieces = [c + "." for c in caption.split(".") if len(c) > 7]
    for piece in pieces:
        try:
            parts = [p.strip(",") for p in piece.split("seconds")]
            found = _legacy_time_part(parts[0])
            if not found:
                continue
            bounds = found[0].split("-")
            start, end = round(float(bounds[0].strip()), 2), round(float(bounds[1].strip()), 2)
        except Exception:  # the original's bare except: this piece is skipped
            continue
        return [(start, end)], [parts[-1].strip()]
    return [], []


def legacy_parse_dvc(text: str) -> Parsed:
    """The original dense-captioning parser (``utils/format_dvc.py``).

    Steps: :func:`legacy_decode_time_tokens`, lowercase; every ``s - e`` pair is a window (not
    swapped when reversed); captions = the text with each matched time string replaced by "\\n",
    "seconds" removed, split on "\\n", pieces longer than 5 characters kept and stripped of ", ";
    both lists truncated to the shorter. Fallbacks: "start time: X ... end time: Y" with
    "description:" (or "*") lines; then, on the raw text, sentences (or lines) longer than 7
    characters where a single number ``t`` becomes ``[t - 20, t + 20]`` (``[t, t + 40]`` when
    ``t <= 20``), ``mm:ss`` forms and "Ns-Ms".

    Quirks kept: a preamble before the first time becomes the first caption, shifting every
    caption by one event and dropping the last one; captions keep their trailing period; the
    sentence fallback returns at most one event (its loop only runs while no event was found) and
    splits decimals on "."; the "start time X, end time Y" branch stops in ``pdb.set_trace()`` in
    the original: here it returns ``ok=False`` with a note, as does a number that makes the
    original raise ValueError.

    Args:
        text: raw ``<TIME_X>`` text or plain text.

    Returns:
        ``Parsed`` whose value is ``[(start, end, caption), ...]``.
    """
    raw = _as_text(text)
    try:
        timestamps, captions, note = _legacy_dvc_paragraph(legacy_decode_time_tokens(raw).lower())
    except _OriginalFailure as failure:
        return Parsed([], False, str(failure))
    if not timestamps:
        timestamps, captions = _legacy_dvc_sentences(raw)
        note = "; ".join(filter(None, [note, "sentence fallback" if timestamps else "no event found"]))
    events = [(s, e, c) for (s, e), c in zip(timestamps, captions)]
    return Parsed(events, bool(events), note)


def _legacy_highlights(paragraph: str) -> tuple[list[float], list[float]]:
    """The original ``parse_highlights`` on decoded text: ``(timestamps, scores)``."""
    paragraph = paragraph.lower().replace("th", " ")
    if "second" not in paragraph or "score" not in paragraph:
        return [], []
    times: list[float] = []
    scores: list[float] = []
    for piece in _LEGACY_VHD_SPLIT.split(paragraph):
        if "score" in piece:
            found = _LEGACY_SCORE.findall(piece)
            if found:
                scores.append(float(found[-1]))
        elif "second" in piece or ":" in piece:
            # The original tests ``':' in`` the tuple findall returns, never true: clock times are lost.
            numbers = [groups[-1] for groups in _LEGACY_VHD_TIME.findall(piece) if groups[-1] != ""]
            if numbers:
                times.append(float(numbers[-1]))
    if len(times) > 1:
        scores = (scores + [0.0] * len(times))[:len(times)]
    return times, scores


def legacy_parse_vhd(text: str, duration: float) -> Parsed:
    """The original highlight-detection parser (``utils/format_vhd.py``).

    Steps: :func:`legacy_decode_time_tokens`, lowercase, **every "th" replaced by a space**; the text
    must contain "second" and "score". Split on ``[,\\n]+``; a piece with "score" gives a score
    (the last ``\\b\\d\\.?\\d?\\b``), another piece with "second" or ":" gives a time (its last
    number). With more than one time, scores are zero-padded or truncated to the times. Then
    ``clip_num = int(duration / 2)``; each (t, s) with ``t <= duration`` goes to clip
    ``max(0, int((t - 1) / 2))`` (a one-second offset: t in [0, 3) -> 0, [3, 5) -> 1, ...); scores
    are averaged per clip, empty clips get 0.0.

    Quirks kept: the "th" replacement turns ordinals into numbers ("the 5th" -> "  e 5 "), which can
    become the score; a whole line written as ``t seconds, significance score: s. t seconds, ...``
    (no comma after the score) puts the next time into a score piece, where it is read as the score;
    the decoding step glues an integer time to "seconds" ("7 seconds" -> "7seconds"), which then
    gives no time (the original's times are always "dddd.d", so only plain-integer text is hit);
    hh:mm:ss times are not converted (the original's ``':' in`` test runs on the tuple ``findall``
    returns), so a clock time gives no time or a wrong one; one time alone is placed but counts as
    a failure (the original reports it as unparsed); the TimeIT "There are N highlight moments in
    the ..." form mostly fails; a time in the last odd second of an odd duration makes the original
    raise IndexError (``ok=False`` here, with zero scores).

    Args:
        text: raw ``<TIME_X>`` text or plain text.
        duration: the video length in seconds.

    Returns:
        ``Parsed`` whose value has ``int(duration / 2)`` scores; ``ok`` is False unless more than
        one time was read (the original's failure count).
    """
    limit, notes = _clean_duration(duration)
    if limit is None:
        _add_note(notes, "a duration is needed to place the scores")
        return Parsed([], False, "; ".join(notes))
    clip_num = int(limit / 2)
    if clip_num > _MAX_BINS:
        return Parsed([], False, f"duration {limit:g} s gives {clip_num} clips (more than {_MAX_BINS})")
    times, scores = _legacy_highlights(legacy_decode_time_tokens(text))
    sums, counts = [0.0] * clip_num, [0] * clip_num
    for time, score in zip(times, scores):
        if time > limit:
            continue
        clip = max(0, int((time - 1) / 2))
        if clip >= clip_num:
            return Parsed([0.0] * clip_num, False, f"the original raises IndexError (clip {clip} of {clip_num})")
        sums[clip] += score
        counts[clip] += 1
    value = [s / c if c else 0.0 for s, c in zip(sums, counts)]
    if len(times) > 1:
        return Parsed(value, True, "")
    note = "one time only (the original counts it as a failure)" if times else "no (time, score) pair found"
    return Parsed(value, False, note)


# ==================================================================================================
# Dispatcher
# ==================================================================================================


def parse(task: str, text: str, duration: Optional[float] = None, legacy: bool = False) -> Parsed:
    """Parse one generated answer of ``task``.

    Args:
        task: ``"mr"`` (windows), ``"dvc"`` (events), ``"hd"`` (per-2-second-clip scores) or
            ``"summary"`` (per-second scores).
        text: the generated answer.
        duration: the video length in seconds (needed by hd and summary; clamps mr and dvc windows
            in the robust parsers; the legacy mr/dvc parsers ignore it, as the original did).
        legacy: use the original VTG-LLM parser (mr, dvc, hd only).

    Returns:
        The :class:`Parsed` result.

    Raises:
        VTGError: an unknown task, or ``legacy`` for summary (the original has no parser for it).
    """
    if task not in TASKS:
        raise VTGError(f"unknown task {task!r} for parsing; tasks: {', '.join(TASKS)}")
    if legacy:
        if task == "mr":
            return legacy_parse_tvg(text)
        if task == "dvc":
            return legacy_parse_dvc(text)
        if task == "hd":
            return legacy_parse_vhd(text, duration)
        raise VTGError("the original VTG-LLM has no parser for summary; use legacy=False")
    if task == "mr":
        return parse_windows(text, duration)
    if task == "dvc":
        return parse_events(text, duration)
    if task == "hd":
        return parse_saliency(text, duration)
    return parse_summary(text, duration)
