"""Versioned task prompts and the answer writers of the VTG-IT formats.

Templates are data files ``vtgcore/data/prompts/<version>/<task>.json`` holding
``{"version", "task", "eval", "train": [...]}``. ``eval`` is the prompt used at evaluation (for v1 the
original VTG-LLM prompts, ``vtgllm-original.md`` section 4.2); ``train`` holds the instruction
variants drawn at random when training data is built. MR and HD templates take the query as
``{query}``; DVC and summary templates take none. A new version is a new folder; old versions stay,
so a result can always name the prompts it was made with.

The answer writers produce the VTG-IT answer formats (section 4.3) with every time written as a
``<time>S</time>`` marker (seconds rounded to 0.1), which the processor renders with the configured
time codec:

* MR: ``<time>s</time> - <time>e</time> seconds.`` (the VTG-IT-MR form, without a description);
* DVC: ``<time>s</time> - <time>e</time> seconds, caption. ...``;
* HD and summary: ``<time>t</time> seconds, significance score: 3.5. ...`` (VTG-IT-VHD/VS form,
  one entry per highlight second).
"""

from __future__ import annotations

import copy
import json
import math
import random
import string
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

from vtgcore.errors import VTGError
from vtgcore.processor import time_mark
from vtgcore.vocab import QUERY_TASKS, TASKS
from vtgcore.utils.limits import json_problem, loads_json

__all__ = [
    "DEFAULT_VERSION", "available_versions", "dvc_answer", "eval_prompt", "hd_answer",
    "load_templates", "mr_answer", "summary_answer", "train_prompt",
]

DEFAULT_VERSION = "v1"


def _prompt_root() -> Any:
    return resources.files("vtgcore.data").joinpath("prompts")


def available_versions() -> list[str]:
    """The prompt versions shipped with vtgcore, sorted."""
    return sorted(entry.name for entry in _prompt_root().iterdir() if entry.is_dir() and not entry.name.startswith("_"))


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _check_template(task: str, template: Any, where: str) -> None:
    if not isinstance(template, str) or not template.strip():
        raise VTGError(f"{where}: a template must be a non-empty string")
    try:
        names = _fields(template)
    except ValueError as err:
        raise VTGError(f"{where}: malformed template ({err})") from None
    if task in QUERY_TASKS and "query" not in names:
        raise VTGError(f"{where}: a {task} template needs the {{query}} placeholder")
    if task not in QUERY_TASKS and "query" in names:
        raise VTGError(f"{where}: a {task} template takes no {{query}} placeholder")


@lru_cache(maxsize=None)
def _load(task: str, version: str) -> dict:
    if task not in TASKS:
        raise VTGError(f"unknown prompt task {task!r}; available: {', '.join(TASKS)}")
    versions = available_versions()
    if version not in versions:
        raise VTGError(f"unknown prompt version {version!r}; available: {', '.join(versions)}")
    entry = _prompt_root().joinpath(version, f"{task}.json")
    where = f"prompts/{version}/{task}.json"
    if not entry.is_file():
        raise VTGError(f"{where}: prompt version {version} has no templates for task {task}")
    try:
        data = loads_json(entry.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise VTGError(f"{where}: {json_problem(err)}") from None
    if not isinstance(data, dict) or data.get("version") != version or data.get("task") != task:
        raise VTGError(f"{where}: must be an object with version {version!r} and task {task!r}")
    _check_template(task, data.get("eval"), f"{where} eval")
    train = data.get("train")
    if not isinstance(train, list) or not train:
        raise VTGError(f"{where}: 'train' must be a non-empty list of templates")
    for k, template in enumerate(train):
        _check_template(task, template, f"{where} train[{k}]")
    return data


def load_templates(task: str, version: str = DEFAULT_VERSION) -> dict:
    """The templates of one task: ``{"version", "task", "eval": str, "train": [str, ...]}``.

    Args:
        task: one of :data:`vtgcore.vocab.TASKS`.
        version: a prompt version (see :func:`available_versions`).

    Raises:
        VTGError: unknown task or version (the message lists the available ones), or a malformed
            template file.
    """
    return copy.deepcopy(_load(task, version))


def _clean_query(query: str) -> str:
    return query.strip().rstrip(".").strip()


def _fill(task: str, template: str, query: str, fields: dict[str, Any]) -> str:
    if task in QUERY_TASKS and not _clean_query(query):
        raise VTGError(f"task {task} needs a non-empty query")
    values = dict(fields, query=_clean_query(query))
    missing = sorted(_fields(template) - values.keys())
    if missing:
        raise VTGError(f"{task} template needs the field(s) {', '.join(missing)}: {template!r}")
    return template.format(**values)


def eval_prompt(task: str, query: str = "", version: str = DEFAULT_VERSION) -> str:
    """The evaluation prompt of ``task`` with ``query`` (trailing "." stripped, as the original).

    Raises:
        VTGError: unknown task or version, or an MR/HD prompt without a query.
    """
    return _fill(task, _load(task, version)["eval"], query, {})


def train_prompt(task: str, query: str = "", *, rng: random.Random, version: str = DEFAULT_VERSION,
                 **fields: Any) -> str:
    """A training instruction for ``task``: one of the version's train templates, drawn with ``rng``.

    Args:
        task: one of :data:`vtgcore.vocab.TASKS`.
        query: the MR/HD query (its trailing "." is stripped).
        rng: the random source; the same seed gives the same choices.
        version: the prompt version.
        **fields: values of any further placeholders the templates use.

    Raises:
        VTGError: unknown task or version, a missing query or placeholder value.
    """
    return _fill(task, rng.choice(_load(task, version)["train"]), query, fields)


# --------------------------------------------------------------------------------------------------
# Answer writers


def _time(seconds: float, what: str) -> str:
    value = float(seconds)
    if not math.isfinite(value) or value < 0:
        raise VTGError(f"{what} must be a finite number of seconds >= 0, got {seconds!r}")
    return time_mark(round(value, 1))


def _score(score: float, low: float, high: float) -> str:
    value = float(score)
    if not math.isfinite(value) or not low <= value <= high:
        raise VTGError(f"a score must be in [{low:g}, {high:g}], got {score!r}")
    return f"{round(value, 1):.1f}"


def _sentence(caption: str) -> str:
    text = str(caption).strip().rstrip(".").strip()
    if not text:
        raise VTGError(f"a caption must not be empty, got {caption!r}")
    return f"{text}."


def _span(start: float, end: float) -> str:
    if float(start) > float(end):
        raise VTGError(f"reversed window [{start}, {end}]")
    return f"{_time(start, 'start')} - {_time(end, 'end')} seconds"


def mr_answer(start: float, end: float) -> str:
    """The MR answer ``<time>s</time> - <time>e</time> seconds.`` (VTG-IT-MR style).

    Raises:
        VTGError: a negative or non-finite time, or ``start > end``.
    """
    return f"{_span(start, end)}."


def dvc_answer(windows: Sequence[Sequence[float]], captions: Sequence[str]) -> str:
    """The DVC answer ``<time>s</time> - <time>e</time> seconds, caption. ...`` (one entry per event).

    Raises:
        VTGError: different numbers of windows and captions, no event, a bad time or an empty caption.
    """
    if len(windows) != len(captions):
        raise VTGError(f"{len(windows)} windows but {len(captions)} captions")
    if not windows:
        raise VTGError("a DVC answer needs at least one event")
    return " ".join(f"{_span(s, e)}, {_sentence(c)}" for (s, e), c in zip(windows, captions))


def _scored(times: Sequence[float], scores: Sequence[float], low: float, high: float) -> str:
    if len(times) != len(scores):
        raise VTGError(f"{len(times)} times but {len(scores)} scores")
    if not times:
        raise VTGError("an answer needs at least one highlight")
    return " ".join(f"{_time(t, 'a highlight time')} seconds, significance score: {_score(s, low, high)}."
                    for t, s in zip(times, scores))


def hd_answer(times: Sequence[float], scores: Sequence[float]) -> str:
    """The HD answer ``<time>t</time> seconds, significance score: 3.5. ...`` (VTG-IT-VHD style).

    One entry per highlight second; scores are rounded to 0.1 and must be >= 0.

    Raises:
        VTGError: different lengths, no highlight, a bad time or a negative score.
    """
    return _scored(times, scores, 0.0, math.inf)


def summary_answer(times: Sequence[float], scores: Sequence[float]) -> str:
    """The summary answer, as :func:`hd_answer` with scores on the 1-5 scale (VTG-IT-VS style).

    Raises:
        VTGError: different lengths, no highlight, a bad time or a score outside [1, 5].
    """
    return _scored(times, scores, 1.0, 5.0)
