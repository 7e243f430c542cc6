"""The project's vocabulary, defined once: plugin kinds, tasks and their names.

Every other module imports these names instead of spelling them again, so that adding a task or a
plugin kind is one edit here (and the code that handles it).
"""

from __future__ import annotations

PLUGIN_KINDS: dict[str, str] = {
    "encoder": "vtg_register_encoders",
    "time_embedding": "vtg_register_time_embeddings",
    "grounding": "vtg_register_groundings",
    "time_codec": "vtg_register_time_codecs",
    "compressor": "vtg_register_compressors",
    "projector": "vtg_register_projectors",
    "llm": "vtg_register_llms",
    "reward": "vtg_register_rewards",
}
"""Plugin kind -> the hook that registers it (:mod:`vtgcore.hookspecs`), in data-flow order (the
model's parts first, then the kinds that are not part of ``model:``)."""

MODEL_KINDS: tuple[str, ...] = ("encoder", "time_embedding", "grounding", "time_codec", "compressor", "projector", "llm")
"""The kinds that are parts of a recipe's ``model:`` (``model.<kind>: {name, params, ...}``), in
data-flow order. Code that walks a recipe's components loops over these, not over
:data:`PLUGIN_KINDS`, which also holds kinds that live elsewhere (``reward``)."""

MODULE_KINDS: tuple[str, ...] = ("encoder", "time_embedding", "grounding", "compressor", "projector", "llm")
"""The kinds whose components are ``nn.Module`` s held by the model (a time codec is a plain object):
the parts that take a checkpoint, a ``trainable`` mode and a learning rate."""

TASKS: tuple[str, ...] = ("mr", "dvc", "hd", "summary")
"""Task codes of the data: moment retrieval, dense video captioning, highlight detection, video
summarization."""

TASK_LABELS: dict[str, str] = {
    "mr": "moment retrieval",
    "dvc": "dense video captioning",
    "hd": "highlight detection",
    "summary": "video summarization",
}
"""Task code -> words for people (demo, reports)."""

QUERY_TASKS = frozenset({"mr", "hd"})
"""Tasks whose prompt carries a text query."""

EVAL_TASKS: dict[str, str] = {"mr": "moment_retrieval", "hd": "highlights", "dvc": "dense_captioning"}
"""Evaluated task code -> its metrics key (the folder and the key in ``metrics.json``)."""

METRIC_KEYS: dict[str, tuple[str, ...]] = {
    EVAL_TASKS["mr"]: ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"),
    EVAL_TASKS["hd"]: ("VeryGood-mAP", "VeryGood-Hit1", "Good-mAP", "Good-Hit1", "Fair-mAP", "Fair-Hit1"),
    EVAL_TASKS["dvc"]: ("CIDEr", "METEOR", "SODA_c", "F1", "Precision", "Recall"),
}
"""Metrics key -> the headline metrics of that task, in order (percent): ``vtg metrics --json``, the
main job's ``metrics.json`` and table, the columns of a sweep's results."""

VTGLLM_TIME_TOKENS: tuple[str, ...] = tuple(
    f"<TIME_{n}>" for n in ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
) + ("<TIME_DOT>",)
"""VTG-LLM's 11 absolute-time tokens, digits 0-9 then the dot: written by the
``absolute_time_tokens`` codec and found in VTG-IT annotation files."""

__all__ = ["VTGLLM_TIME_TOKENS", "PLUGIN_KINDS", "MODEL_KINDS", "MODULE_KINDS", "TASKS", "TASK_LABELS", "QUERY_TASKS", "EVAL_TASKS", "METRIC_KEYS"]
