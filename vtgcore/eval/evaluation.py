"""The evaluation runner: generate over an evaluation set, parse, score, write everything.

For each task a folder holds ``generations.jsonl`` (one line per finished item, appended and
fsynced as soon as its batch is done: an interrupted evaluation resumes from it), the parsed
predictions in the original VTG-LLM formats (``predictions.json``) and ``metrics.json``.
An item that cannot be evaluated (its video cannot be read, its prompt cannot be built, the model
refuses it) is recorded with its error, listed under ``errors`` in ``metrics.json`` and scored as a
miss; the rest of the set is unaffected, and the next run tries that item again.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

from torch.utils.data import DataLoader

from vtgcore.data.dataset import FrameConfig, VideoCollator, VideoConversationDataset
from vtgcore.errors import AnnotationError, DataError, VTGError
from vtgcore.utils.fileio import atomic_write_text, read_text, write_failure
from vtgcore.eval.generate import GenerationConfig, generate_batch
from vtgcore.vocab import EVAL_TASKS
from vtgcore.utils.limits import loads_json


@dataclass
class EvalSet:
    """One evaluation set of a recipe (``data.val.<task>``).

    Attributes:
        task: ``mr``, ``hd`` or ``dvc``.
        annotation: ground-truth file.
        format: its format (see :func:`vtgcore.data.formats.load_eval`); None detects it.
    """

    task: str
    annotation: str
    format: Optional[str] = None


def read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """Rows of an earlier (possibly interrupted) run by item id; a torn last line is ignored.

    The last row of an id wins, so a retried item replaces its earlier error row.
    """
    done: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return done
    for line in read_text(path, DataError, "generation cache").splitlines():
        try:
            row = loads_json(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            done[str(row["id"])] = row
    return done


def _append(handle: Any, row: dict[str, Any], path: Path) -> None:
    """Append one row and make it durable before the next item starts."""
    try:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as err:
        raise write_failure(path, err) from err


def _error_row(item: Any, video: str, fields: dict[str, str], source: str) -> dict[str, Any]:
    """The cache row of an item that could not be evaluated.

    A video error names the video; a prompt or model error (the item's query or times) names the
    annotation file, the item and its video when ``source`` is known.
    """
    error = fields["error"]
    if source and fields.get("problem") and fields["error_kind"] != "video":
        index = getattr(item, "index", -1)
        error = f"{source}: item {index if index >= 0 else repr(item.id)} ({video}): {fields['problem']}"
    return {"id": item.id, "video": video, "text": "", "raw": "", "error": " ".join(error.split()),
            "error_kind": fields["error_kind"]}


def _skipped_row(item: Any, record: dict[str, Any], source: str) -> dict[str, Any]:
    """The error row of an item the loader left out (``record``: the collator's skip record)."""
    return _error_row(item, record["video"], {"error": record["error"], "problem": record.get("problem", ""),
                                              "error_kind": record.get("kind", "video")}, source)


def _batch_rows(model: Any, batch: dict[str, Any], generation: GenerationConfig, dataset: Any,
                collate: Callable[[list[dict[str, Any]]], dict[str, Any]], source: str,
                retry: bool) -> list[dict[str, Any]]:
    """Generate for a batch and return one row per item, in order.

    With ``retry``, a batch that fails with a :class:`VTGError` (an item the model cannot take,
    e.g. a time past its time table) is generated item by item, so only the culprits get error
    rows; without it the error propagates.
    """
    try:
        outputs = generate_batch(model, batch, generation)
    except VTGError as exc:
        if not retry:
            raise
        if len(batch["items"]) == 1:
            video = batch["videos"][0]
            return [_error_row(batch["items"][0], video, {"error": f"{video}: {exc}", "error_kind": "model",
                                                          "problem": str(exc)}, source)]
        rows: list[dict[str, Any]] = []
        for index in batch["indices"]:
            single = collate([dataset[index]])
            if single["skipped"]:
                rows.append(_skipped_row(dataset.items[index], single["skipped"][0], source))
            else:
                rows += _batch_rows(model, single, generation, dataset, collate, source, retry)
        return rows
    return [{"id": item.id, "video": video, "duration": duration, **out} for item, out, duration, video in
            zip(batch["items"], outputs, batch["duration"].tolist(), batch["videos"])]


def generate_rows(model: Any, processor: Any, items: Sequence[Any], *, frames: FrameConfig,
                  video_root: Optional[str | Path], batch_size: int, generation: GenerationConfig,
                  num_workers: int = 0, skip_broken: bool = True, feature_cache: Any = None,
                  source: str = "") -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Sample frames, prompt and generate for ``items`` (evaluation items), batch by batch.

    This is the one inference path: the evaluation runner and :mod:`vtgcore.apps.pipeline` both use it.
    Items get the task's evaluation prompt (:func:`vtgcore.data.prompts.eval_prompt`), frames are
    sampled as ``frames`` says, and the model generates for a whole batch at once (left-padded
    prompts; greedy answers do not depend on the batch size).

    Args:
        model: the :class:`~vtgcore.model.VideoLLM` (put in eval mode).
        processor: its processor.
        items: :class:`~vtgcore.data.formats.EvalItem` records (``id``, ``video``, ``task``, ``query``).
        frames: frame sampling and preprocessing.
        video_root: folder relative video paths are resolved against.
        batch_size: videos per generation batch.
        generation: decoding settings.
        num_workers: data loader worker processes.
        skip_broken: an item that cannot be evaluated (unreadable video, a prompt the codec cannot
            write, an input the model refuses) gives a row with ``error`` and ``error_kind``
            instead of raising; a failing batch is retried item by item so only the culprits fail.
        feature_cache: a :class:`~vtgcore.data.feature_cache.FeatureCache`, or None.
        source: the annotation file, named in the errors of prompt and model failures.

    Yields:
        Per batch, ``(index into items, row)`` pairs: rows of items left out by the loader first
        (``{"id", "video", "text": "", "raw": "", "error", "error_kind"}``), then the generated
        ones (``{"id", "video", "duration", "text", "raw", "legacy_text"}``, or an error row) in item order.

    Raises:
        VideoReadError: a video cannot be read and ``skip_broken`` is False.
        VTGError: a prompt or the model fails and ``skip_broken`` is False.
    """
    dataset = VideoConversationDataset(items, frames, video_root=video_root, skip_broken=skip_broken,
                                       feature_cache=feature_cache)
    collate = VideoCollator(processor, add_generation_prompt=True, skip_errors=skip_broken)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
    model.eval()
    for batch in loader:
        rows = [(record["index"], _skipped_row(items[record["index"]], record, source)) for record in batch["skipped"]]
        if batch["items"]:
            rows += zip(batch["indices"], _batch_rows(model, batch, generation, dataset, collate, source, skip_broken))
        yield rows


def place_for_eval(model: Any) -> Any:
    """Put the model on the GPU for generation: a model wholly on the CPU moves to CUDA when it
    is available; a model with some parts already on an accelerator (an LLM loaded 8-bit straight
    onto the GPU) gets its other parts moved to that device. Without CUDA nothing moves.

    Returns:
        The model's device after placement.
    """
    import torch

    accelerators = [p.device for p in model.parameters() if p.device.type != "cpu"]
    if accelerators:
        target = accelerators[0]
    elif torch.cuda.is_available():
        target = torch.device("cuda", torch.cuda.current_device())
    else:
        return torch.device("cpu")
    for module in model.children():
        if any(t.device != target for t in itertools.chain(module.parameters(), module.buffers())):
            module.to(target)
    return target


def generate_all(model: Any, processor: Any, items: Sequence[Any], cache: Path, *, frames: FrameConfig,
                 video_root: Optional[str | Path], batch_size: int, generation: GenerationConfig,
                 num_workers: int = 0, progress: Optional[Callable[[int, int], None]] = None,
                 feature_cache: Any = None, source: str = "") -> dict[str, dict[str, Any]]:
    """Generate an answer for every item not yet finished in ``cache``; return all rows by item id.

    An item fails alone, never the run: a video that cannot be read, a prompt that cannot be built
    (a time the codec cannot write, a query past ``max_length``) or an input the model refuses gives
    a row with ``error`` (one line naming the file and the problem: the video, or for a prompt or
    model error the annotation file ``source``, the item and its video) and ``error_kind``
    (``video``, ``prompt`` or ``model``). Such rows are tried again by the next run, finished rows
    are not.

    Raises:
        OutputError: ``cache`` cannot be written (disk full, permission denied).
    """
    done = read_cache(cache)
    todo = [item for item in items if item.id not in done or done[item.id].get("error")]
    total = len(items)
    if progress:
        progress(total - len(todo), total)
    if todo:
        place_for_eval(model)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            handle = cache.open("a", encoding="utf-8")
        except OSError as err:
            raise write_failure(cache, err) from err
        finished = 0
        with handle:
            for rows in generate_rows(model, processor, todo, frames=frames, video_root=video_root,
                                      batch_size=batch_size, generation=generation, num_workers=num_workers,
                                      feature_cache=feature_cache, source=source):
                for _, row in rows:
                    done[row["id"]] = row
                    _append(handle, row, cache)
                    finished += 1
                if progress:
                    progress(total - len(todo) + finished, total)
    return {item.id: done[item.id] for item in items}


def item_errors(rows: dict[str, dict[str, Any]], items: Sequence[Any]) -> list[dict[str, Any]]:
    """The items that could not be evaluated: ``{id, video, kind, error}`` in item order."""
    return [{"id": i.id, "video": rows[i.id].get("video", ""), "kind": rows[i.id].get("error_kind", "video"),
             "error": rows[i.id]["error"]} for i in items if rows[i.id].get("error")]


def _duration(item: Any, row: dict[str, Any]) -> Optional[float]:
    return item.duration if item.duration else row.get("duration")


def score(task: str, items: Sequence[Any], rows: dict[str, dict[str, Any]], *,
          legacy_parser: bool = False) -> tuple[dict[str, Any], Any]:
    """Parse every generation and compute the task's metrics.

    With ``legacy_parser`` the original's parsers read each row's ``legacy_text`` (the generated
    ids decoded as the original's slow tokenizer writes them), not ``text``.

    Returns:
        ``(metrics, predictions)``: metrics in percent plus parse-failure counts (over the items
        that were generated; an item that failed before generating, e.g. an unreadable video, is a
        miss in the metrics and counted in ``item_errors``); predictions in the original VTG-LLM
        file format of the task.

    Raises:
        DataError: ``legacy_parser`` with a generated row that has no ``legacy_text`` (written by
            an older vtgcore: delete its ``generations.jsonl`` to generate again).
    """
    from vtgcore.eval import metrics as M
    from vtgcore.eval.parsers import ParseStats, parse

    stats = ParseStats()
    parsed: dict[str, Any] = {}
    for item in items:
        row = rows[item.id]
        if row.get("error"):  # nothing was generated: a scored miss, counted in item_errors, not a parse failure
            parsed[item.id] = None
            continue
        if legacy_parser and "legacy_text" not in row:
            raise DataError(f"generation of item {item.id!r} has no 'legacy_text' (written by an older vtgcore), "
                            "which --legacy-parser reads; delete its generations.jsonl to generate again")
        text = row["legacy_text"] if legacy_parser else row.get("text", "")
        result = parse(task, text, duration=_duration(item, row), legacy=legacy_parser)
        stats.add(result)
        # the original's highlight script writes its clip scores even when it counts a parse failure
        # (one time only, or none: all zeros), so the legacy path keeps them too
        kept = result.ok or (legacy_parser and task == "hd" and bool(result.value))
        parsed[item.id] = result.value if kept else None
    if task == "mr":
        metrics = M.grounding_metrics({k: v or [] for k, v in parsed.items()}, {i.id: i.windows[0] for i in items})
        predictions = {i.id: {"timestamp": [list(w) for w in (parsed[i.id] or [])[:1]], "query": i.query,
                              "vid": Path(i.video).stem} for i in items}
    elif task == "hd":
        metrics = M.highlight_metrics({k: v for k, v in parsed.items() if v is not None}, list(items))
        predictions = [{"qid": i.id, "query": i.query, "vid": Path(i.video).stem,
                        "pred_saliency_scores": parsed[i.id] or []} for i in items]
    elif task == "dvc":
        metrics = M.dvc_metrics({k: v for k, v in parsed.items() if v}, list(items))
        predictions = {i.id: [{"timestamp": [s, e], "caption": c} for s, e, c in (parsed[i.id] or [])]
                       for i in items}
    else:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(EVAL_TASKS)}")
    metrics.update(stats.as_dict())
    errors = item_errors(rows, items)
    metrics["video_errors"] = sum(1 for e in errors if e["kind"] == "video")
    metrics["item_errors"] = len(errors)
    return metrics, predictions


def evaluate_set(model: Any, processor: Any, eval_set: EvalSet, out_dir: str | Path, *, frames: FrameConfig,
                 video_root: Optional[str | Path] = None, batch_size: int = 8,
                 generation: Optional[GenerationConfig] = None, legacy_parser: bool = False,
                 limit: Optional[int] = None, num_workers: int = 0,
                 progress: Optional[Callable[[int, int], None]] = None, feature_cache: Any = None) -> dict[str, Any]:
    """Evaluate one set end to end and write its folder ``out_dir/<metrics key>``
    (:data:`vtgcore.vocab.EVAL_TASKS`).

    Returns:
        The metrics (also in ``metrics.json``).
    """
    from vtgcore.data.formats import load_eval

    generation = generation or GenerationConfig()
    items = load_eval(eval_set.annotation, eval_set.format)
    if not items:
        raise AnnotationError(f"{eval_set.annotation}: no ground-truth queries to score (the file holds no "
                              "annotations)")
    if limit is not None:
        items = items[:limit]
    folder = Path(out_dir) / EVAL_TASKS[eval_set.task]
    rows = generate_all(model, processor, items, folder / "generations.jsonl", frames=frames,
                        video_root=video_root, batch_size=batch_size, generation=generation,
                        num_workers=num_workers, progress=progress, feature_cache=feature_cache,
                        source=str(eval_set.annotation))
    metrics, predictions = score(eval_set.task, items, rows, legacy_parser=legacy_parser)
    atomic_write_text(folder / "predictions.json", json.dumps(predictions, indent=1, ensure_ascii=False))
    record = {"task": eval_set.task, "annotation": str(eval_set.annotation), "items": len(items),
              "generation": generation.as_dict(), "legacy_parser": legacy_parser, "metrics": metrics,
              "errors": item_errors(rows, items)}
    atomic_write_text(folder / "metrics.json", json.dumps(record, indent=2))
    return metrics


def eval_sets(split: Mapping[str, Any], tasks: Optional[Sequence[str]] = None) -> dict[str, EvalSet]:
    """The evaluation sets of a recipe split (``data.val`` or ``data.test``: ``{task: {annotation,
    format?}}``), all of them or those of ``tasks`` in that order."""
    return {task: EvalSet(task, split[task]["annotation"], split[task].get("format"))
            for task in (list(split) if tasks is None else tasks)}


def evaluate_split(model: Any, processor: Any, sets: Mapping[str, EvalSet], out_dir: str | Path, *,
                   frames: FrameConfig, video_root: Optional[str | Path] = None, batch_size: int = 8,
                   generation: Union[GenerationConfig, Callable[[str], GenerationConfig], None] = None,
                   legacy_parser: bool = False, limit: Optional[int] = None, num_workers: int = 0,
                   feature_cache: Any = None, progress: bool = False,
                   on_task: Optional[Callable[[str, dict[str, Any], float], Any]] = None) -> dict[str, dict[str, Any]]:
    """Evaluate every set of a split, one after the other, with :func:`evaluate_set`: the one
    evaluation loop of ``vtg eval`` and ``vtg run``.

    Each set writes its folder ``out_dir/<metrics key>`` (``generations.jsonl``,
    ``predictions.json``, ``metrics.json``); a summary of the split is the caller's to write.

    Args:
        sets: evaluation sets by task code (:func:`eval_sets`).
        generation: decoding settings, or a function of the task code giving them (None: defaults).
        progress: a progress bar per set on stderr (:func:`vtgcore.utils.progress.bar`, silent with
            ``--quiet``).
        on_task: called after each set with ``(task code, metrics, seconds)``.
        Others: as :func:`evaluate_set`.

    Returns:
        The metrics of each set by metrics key (:data:`vtgcore.vocab.EVAL_TASKS`), in the order of ``sets``.
    """
    from vtgcore.utils.progress import bar

    results: dict[str, dict[str, Any]] = {}
    for task, eval_set in sets.items():
        start = time.perf_counter()
        results[EVAL_TASKS[task]] = metrics = evaluate_set(
            model, processor, eval_set, out_dir, frames=frames, video_root=video_root, batch_size=batch_size,
            generation=generation(task) if callable(generation) else generation, legacy_parser=legacy_parser,
            limit=limit, num_workers=num_workers, feature_cache=feature_cache,
            progress=bar(f"evaluating {task}", unit="item") if progress else None)
        if on_task is not None:
            on_task(task, metrics, time.perf_counter() - start)
    return results


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """A markdown table: one row per task, one column per metric (percent, 1 decimal)."""
    lines = ["| task | metric | value |", "|---|---|---|"]
    for task, metrics in results.items():
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                lines.append(f"| {task} | {key} | {value:.1f} |" if isinstance(value, float) else f"| {task} | {key} | {value} |")
            elif value is None:
                lines.append(f"| {task} | {key} | unavailable |")
    return "\n".join(lines)
