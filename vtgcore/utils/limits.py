"""Limits on everything read from files, and the readers that enforce them (issue 20).

A small file must not be able to make vtg hang, exhaust memory or overflow Python's stack. Every
JSON and YAML file the tool reads (annotations, predictions, manifests, run metrics, recipes,
component and sweep files) goes through :func:`loads_json` or :func:`load_yaml`; counts and
durations read from files are checked against the limits here before they size anything.

=========================  ===========  ==============================================================
limit                      value        what it bounds
=========================  ===========  ==============================================================
``MAX_JSON_DEPTH``         100          nesting of JSON arrays and objects
``MAX_JSON_INT_DIGITS``    100          digits of a JSON integer (Python refuses > 4300 with a traceback)
``MAX_YAML_DEPTH``         100          nesting of YAML sequences and mappings
``MAX_YAML_NODES``         10 000       YAML nodes after alias expansion (omegaconf's own limit)
``MAX_DEFAULTS_DEPTH``     32           length of a recipe's ``defaults:`` chain
``MAX_SWEEP_RUNS``         1 000        variants x seeds of a sweep (``vtg sweep --max-runs`` raises it)
``MAX_DURATION_S``         86 400 * 7   a duration or time read from an annotation (one week)
=========================  ===========  ==============================================================

Errors never quote the structure that broke a limit, only its size and where it is.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

MAX_JSON_DEPTH = 100
MAX_JSON_INT_DIGITS = 100
MAX_YAML_DEPTH = 100
MAX_YAML_NODES = 10_000
MAX_DEFAULTS_DEPTH = 32
MAX_SWEEP_RUNS = 1_000
MAX_DURATION_S = 86_400.0 * 7


class JSONLimitError(json.JSONDecodeError):
    """A JSON text breaks a limit (too deep, an integer too long). A :class:`json.JSONDecodeError`,
    so callers that report invalid JSON report this too; :func:`json_problem` words it."""

    def __init__(self, msg: str, doc: str = "", pos: int = 0, *, plain: bool = False) -> None:
        super().__init__(msg, doc, pos)
        self.plain = plain  # the message stands alone (no "invalid JSON")


def json_problem(err: json.JSONDecodeError) -> str:
    """One line for a JSON error: ``invalid JSON at line L column C: <msg>`` (or the limit broken)."""
    if isinstance(err, JSONLimitError):
        return err.msg if err.plain else f"invalid JSON: {err.msg}"
    return f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_INT_DIGITS:
        raise JSONLimitError(f"an integer with {digits} digits (more than {MAX_JSON_INT_DIGITS})")
    return int(text)


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON (iterative: no recursion on deep input)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in node if isinstance(child, (list, dict)))
    return deepest


def loads_json(text: str) -> Any:
    """``json.loads`` with limits: nesting at most :data:`MAX_JSON_DEPTH`, integers at most
    :data:`MAX_JSON_INT_DIGITS` digits, strings valid Unicode (no lone surrogates from ``\\ud800``
    escapes; such a string could not be printed or written as UTF-8).

    Raises:
        json.JSONDecodeError: invalid JSON, or a :class:`JSONLimitError` for a broken limit.
    """
    try:
        data = json.loads(text, parse_int=_parse_int)
    except RecursionError:
        raise JSONLimitError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError:  # a JSONLimitError too
        raise
    except ValueError as exc:  # anything else the decoder refuses, in one line
        raise JSONLimitError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    if isinstance(data, (list, dict)) and _depth(data) > MAX_JSON_DEPTH:
        raise JSONLimitError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if "\\u" in text or "\\U" in text:
        bad = _surrogate_path(data)
        if bad is not None:
            raise JSONLimitError(f"{bad}: not valid Unicode text (a lone surrogate such as \\ud800)", plain=True)
    return data


_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    """True when ``text`` holds a lone surrogate (it cannot be encoded as UTF-8)."""
    return bool(_SURROGATE.search(text))


def _surrogate_path(value: Any) -> str | None:
    """Where the first string holding a lone surrogate is (``item 3, field 'caption'``), or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if has_surrogates(node):
                return where or "the text"
        elif isinstance(node, dict):
            for key, child in node.items():
                here = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and has_surrogates(key):
                    return f"a key in {where or 'the top level'}"
                stack.append((child, here))
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{k}]") for k, child in enumerate(node))
    return None


def surrogate_field(value: Any) -> str | None:
    """Public form of the check :func:`loads_json` makes: the path of the first string in ``value``
    that is not valid Unicode, or None."""
    return _surrogate_path(value)


# ------------------------------------------------------------------------------------------------
# YAML


def _loader() -> type:
    """omegaconf's YAML loader (safe, with its alias-expansion limit of :data:`MAX_YAML_NODES`)
    plus a nesting limit checked while composing (before Python's stack would overflow)."""
    from omegaconf._yaml import get_yaml_loader

    base = get_yaml_loader(max_yaml_expanded_nodes=MAX_YAML_NODES)

    class LimitedLoader(base):  # type: ignore[misc, valid-type]
        def construct_document(self, node: Any) -> Any:
            deepest, seen = 0, set()
            stack = [(node, 1)]
            while stack:  # iterative: omegaconf's own checks recurse
                current, depth = stack.pop()
                if id(current) in seen or not isinstance(current, (yaml.SequenceNode, yaml.MappingNode)):
                    continue
                seen.add(id(current))
                if depth > MAX_YAML_DEPTH:
                    raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                                      current.start_mark)
                children = current.value if isinstance(current, yaml.SequenceNode) else [
                    part for pair in current.value for part in pair]
                stack.extend((child, depth + 1) for child in children)
            return super().construct_document(node)

    return LimitedLoader


_LOADER: list[type] = []


def load_yaml(text: str) -> Any:
    """Parse YAML safely within the limits (no Python tags; at most :data:`MAX_YAML_NODES` nodes after
    alias expansion; nesting at most :data:`MAX_YAML_DEPTH`; no recursive aliases).

    Raises:
        yaml.YAMLError: invalid YAML or a broken limit (its first line says which).
    """
    if not _LOADER:
        _LOADER.append(_loader())
    loader = _LOADER[0](text)  # omegaconf's loader derives from yaml's SafeLoader: no Python tags
    try:
        return loader.get_single_data()
    except RecursionError:
        raise yaml.YAMLError(f"nested deeper than {MAX_YAML_DEPTH} levels") from None
    finally:
        loader.dispose()


def yaml_problem(exc: BaseException) -> str:
    """The first line of a YAML error, never the structure it is about."""
    text = str(exc).strip()
    if "node expansion exceeds" in text or "aliases expand the document" in text:
        return f"YAML aliases expand to more than {MAX_YAML_NODES} nodes (the limit)"
    if "recursive aliases" in text:
        return "YAML recursive aliases are not supported"
    if "increasing flow level" in text or "increasing indent" in text:
        return f"nested deeper than {MAX_YAML_DEPTH} levels"
    return text.splitlines()[0][:300] if text else type(exc).__name__


# ------------------------------------------------------------------------------------------------
# Durations and counts


def check_duration(seconds: float, what: str = "duration") -> str | None:
    """Why ``seconds`` (read from a file) cannot size anything, or None when it can."""
    if not math.isfinite(seconds):
        return f"{what} must be finite, got {seconds}"
    if seconds > MAX_DURATION_S:
        return f"{what} {seconds:g} s is longer than the limit of {MAX_DURATION_S:g} s (one week)"
    return None


def short(value: Any, limit: int = 60) -> str:
    """A bounded repr of ``value`` for messages (never the whole of a huge structure)."""
    if isinstance(value, (list, tuple, dict)):
        kind = type(value).__name__
        if len(value) > 8:
            return f"a {kind} of {len(value)} entries"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # a huge int, a deeply nested structure
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
