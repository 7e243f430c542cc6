"""Versioned prompt templates and the VTG-IT answer writers."""

import random
import string

import pytest

from vtgcore.data.formats import markers_to_seconds
from vtgcore.data.prompts import (
    available_versions, dvc_answer, eval_prompt, hd_answer, load_templates, mr_answer, summary_answer,
    train_prompt,
)
from vtgcore.errors import VTGError
from vtgcore.vocab import TASKS

ORIGINAL_EVAL = {
    "mr": "Find the video segment that corresponds to the given textual query 'a man opens the door' and "
          "determine its start and end seconds.",
    "dvc": "Please locate a series of events in the video, output the start and end timestamps of each event, "
           "and describe each event in sentences. The output format of each predicted event should be as "
           "follows: \"Start - End seconds, event description\".",
    "hd": "After viewing the assigned video, identify the moments that align with the description: "
          "'a man opens the door'. Record the timecodes of these key scenes and assess their prominence using a "
          "relevance scale.",
}


def fields(template):
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_v1_is_available():
    assert "v1" in available_versions()


@pytest.mark.parametrize("task", TASKS)
def test_every_task_has_eval_and_six_train_templates(task):
    data = load_templates(task)
    assert data["version"] == "v1" and data["task"] == task
    assert isinstance(data["eval"], str) and data["eval"]
    assert len(data["train"]) >= 6 and len(set(data["train"])) == len(data["train"])
    expected = {"query"} if task in ("mr", "hd") else set()
    for template in [data["eval"], *data["train"]]:
        assert fields(template) <= expected | {"dataset"}
        assert ("query" in fields(template)) == (task in ("mr", "hd"))


@pytest.mark.parametrize("task", ["mr", "dvc", "hd"])
def test_eval_prompts_are_the_originals(task):
    query = "a man opens the door." if task != "dvc" else ""
    assert eval_prompt(task, query) == ORIGINAL_EVAL[task]


@pytest.mark.parametrize("task", TASKS)
def test_train_prompts_fill_placeholders_and_are_seeded(task):
    query = "a man opens the door." if task in ("mr", "hd") else ""
    draws = [train_prompt(task, query, rng=random.Random(3)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = random.Random(0)
    seen = {train_prompt(task, query, rng=rng) for _ in range(200)}
    assert len(seen) == len(load_templates(task)["train"])
    for prompt in seen:
        assert "{" not in prompt and "}" not in prompt
        if query:
            assert "'a man opens the door'" in prompt


def test_templates_returned_are_copies():
    load_templates("mr")["train"].clear()
    assert len(load_templates("mr")["train"]) >= 6


def test_unknown_task_version_and_missing_query():
    with pytest.raises(VTGError, match=r"unknown prompt task 'qa'; available: mr, dvc, hd, summary"):
        eval_prompt("qa")
    with pytest.raises(VTGError, match=r"unknown prompt version 'v9'; available: v1"):
        train_prompt("mr", "q", rng=random.Random(0), version="v9")
    with pytest.raises(VTGError, match="task mr needs a non-empty query"):
        eval_prompt("mr", " . ")


def test_mr_answer():
    assert mr_answer(1.25, 7) == "<time>1.2</time> - <time>7</time> seconds."
    assert markers_to_seconds(mr_answer(24.3, 30.44)) == [24.3, 30.4]
    with pytest.raises(VTGError, match="reversed window"):
        mr_answer(5, 2)
    with pytest.raises(VTGError, match=">= 0"):
        mr_answer(-1, 2)


def test_dvc_answer():
    text = dvc_answer([(90, 102), (114.06, 127.5)], ["spread margarine.", " place the cheese "])
    assert text == ("<time>90</time> - <time>102</time> seconds, spread margarine. "
                    "<time>114.1</time> - <time>127.5</time> seconds, place the cheese.")
    with pytest.raises(VTGError, match="2 windows but 1 captions"):
        dvc_answer([(0, 1), (1, 2)], ["a"])
    with pytest.raises(VTGError, match="caption must not be empty"):
        dvc_answer([(0, 1)], [" . "])


def test_hd_and_summary_answers():
    assert hd_answer([2, 4.0], [3.333, 4]) == ("<time>2</time> seconds, significance score: 3.3. "
                                               "<time>4</time> seconds, significance score: 4.0.")
    assert summary_answer([10.5], [5]) == "<time>10.5</time> seconds, significance score: 5.0."
    with pytest.raises(VTGError, match=r"score must be in \[1, 5\]"):
        summary_answer([1], [0.5])
    with pytest.raises(VTGError, match="2 times but 1 scores"):
        hd_answer([1, 2], [3])
    with pytest.raises(VTGError, match="at least one highlight"):
        hd_answer([], [])
