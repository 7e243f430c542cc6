"""Turn a source data set's own annotation file into VTG-IT training items.

The output is what :func:`vtgcore.data.formats.load_vtg_it` reads: a JSON list of
``{"video", "QA": [{"q", "a"}, ...], "source"}`` with every time in the answers written as a
``<time>S</time>`` marker (seconds, rounded to 0.1), so the same file trains every time codec.
Instructions are drawn from the versioned train templates (:mod:`vtgcore.data.prompts`) with
``random.Random(seed)``; the same inputs and seed give the same bytes.

Sources and how items are formed:

* ``charades`` (Charades-STA COCO-style) and ``didemo`` (DiDeMo's own list): moment retrieval. The
  queries of one video become the turns of one multi-turn item, in file order (as VTG-IT-MR
  groups its events), so each video is decoded once per epoch.
* ``qvhighlights`` (JSON lines): highlight detection, one item per query; the highlight seconds are
  ``clip_id * 2`` and each score is the mean of the annotators, rounded to 0.1.
* ``youcook2`` (COCO-style) and ``activitynet`` (``{vid: {...}}``): dense captioning, one item per
  video.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Callable, Sequence

from vtgcore.data.formats import (
    EvalItem, load_activitynet, load_charades, load_didemo, load_qvhighlights, load_youcook2,
)
from vtgcore.data.prompts import DEFAULT_VERSION, dvc_answer, hd_answer, mr_answer, train_prompt
from vtgcore.errors import AnnotationError, VTGError
from vtgcore.utils.fileio import atomic_write_text, check_not_input, check_output_target

__all__ = ["SOURCES", "convert", "write_json_atomic"]

QVH_CLIP_SECONDS = 2.0


def _group_by_video(items: list[EvalItem]) -> list[list[EvalItem]]:
    groups: dict[str, list[EvalItem]] = {}
    for item in items:
        groups.setdefault(item.video, []).append(item)
    return list(groups.values())


def _item(video: str, turns: list[dict[str, str]], source: str) -> dict:
    return {"video": video, "QA": turns, "source": source}


def _mr_items(items: list[EvalItem], source: str, rng: random.Random, version: str) -> list[dict]:
    out = []
    for group in _group_by_video(items):
        turns = [{"q": train_prompt("mr", it.query, rng=rng, version=version), "a": mr_answer(*it.windows[0])}
                 for it in group]
        out.append(_item(group[0].video, turns, source))
    return out


def _hd_turn(item: EvalItem, rng: random.Random, version: str) -> dict[str, str]:
    clip_ids = item.clip_ids or []
    saliency = item.saliency or []
    times = [clip * QVH_CLIP_SECONDS for clip in clip_ids]
    scores = [round(sum(s) / len(s), 1) for s in saliency]
    return {"q": train_prompt("hd", item.query, rng=rng, version=version), "a": hd_answer(times, scores)}


def _hd_items(items: list[EvalItem], source: str, rng: random.Random, version: str) -> list[dict]:
    return [_item(it.video, [_hd_turn(it, rng, version)], source) for it in items]


def _dvc_items(items: list[EvalItem], source: str, rng: random.Random, version: str) -> list[dict]:
    return [_item(it.video, [{"q": train_prompt("dvc", rng=rng, version=version),
                              "a": dvc_answer(it.windows, it.captions)}], source) for it in items]


_Builder = Callable[[list[EvalItem], str, random.Random, str], list[dict]]
_SOURCES: dict[str, tuple[Callable[[Path], list[EvalItem]], _Builder]] = {
    "charades": (load_charades, _mr_items),
    "didemo": (load_didemo, _mr_items),
    "qvhighlights": (load_qvhighlights, _hd_items),
    "youcook2": (load_youcook2, _dvc_items),
    "activitynet": (load_activitynet, _dvc_items),
}
SOURCES: tuple[str, ...] = tuple(_SOURCES)


def write_json_atomic(data: object, out: Path) -> None:
    """Write ``data`` as JSON to ``out`` atomically (temporary file, fsync, ``os.replace``).

    The text is deterministic: fixed key order, ``ensure_ascii=False``, ``indent=1``, a final newline.
    """
    atomic_write_text(out, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def convert(source: str, src: Path | Sequence[Path], out: Path, *, seed: int = 0,
            prompt_version: str = DEFAULT_VERSION) -> int:
    """Convert a source data set's annotation file(s) into a VTG-IT training file.

    Args:
        source: one of :data:`SOURCES`.
        src: the source's annotation file, or several (e.g. splits), read in the order given.
        out: the VTG-IT JSON file to write (its folder is created).
        seed: seed of the template choice.
        prompt_version: the prompt templates to draw from.

    Returns:
        The number of items written.

    Raises:
        VTGError: unknown source (the message lists them) or prompt version.
        AnnotationError: a malformed input file, or inputs holding no item.
        OutputError: ``out`` is one of the inputs (also through a link), or not a regular file.
    """
    if source not in _SOURCES:
        raise VTGError(f"unknown conversion source {source!r}; available: {', '.join(SOURCES)}")
    load, build = _SOURCES[source]
    paths = [Path(src)] if isinstance(src, (str, os.PathLike)) else [Path(p) for p in src]
    check_not_input(out, paths, f"convert {source}")  # never overwrite the ground truth it reads
    check_output_target(out)  # a device, FIFO or folder is refused before the work
    rng = random.Random(seed)
    items: list[dict] = []
    for path in paths:
        loaded = load(path)
        if not loaded:
            raise AnnotationError(f"{path}: no items to convert")
        items.extend(build(loaded, source, rng, prompt_version))
    if not items:
        raise VTGError(f"convert {source}: no input file given")
    write_json_atomic(items, Path(out))
    return len(items)
