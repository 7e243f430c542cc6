"""The project's vocabulary, defined once: plugin kinds, tasks and their names.

Every other module imports these names instead of spelling them again, so that adding a task or a
plugin kind is one edit here (and the code that handles it).
"""

from __future__ import annotations

PLUGIN_KINDS: dict[str, str] = {
    "encoder": "vtg_register_encoders",
    "time_embedding": "vtg_register_time_embeddings",
    "time_codec": "vtg_register_time_codecs",
    "compressor": "vtg_register_compressors",
    "projector": "vtg_register_projectors",
    "llm": "vtg_register_llms",
}
"""Plugin kind -> the hook that registers it (:mod:`vtgcore.hookspecs`), in data-flow order."""

MODULE_KINDS: tuple[str, ...] = ("encoder", "time_embedding", "compressor", "projector", "llm")
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

__all__ = ["PLUGIN_KINDS", "MODULE_KINDS", "TASKS", "TASK_LABELS", "QUERY_TASKS", "EVAL_TASKS"]
