"""The evaluation runner: generate over an evaluation set, parse, score, write everything.

For each task a folder holds ``generations.jsonl`` (one line per finished item, appended and
flushed as soon as its batch is done: an interrupted evaluation resumes from it), the parsed
predictions in the original VTG-LLM formats (``predictions.json``) and ``metrics.json``.
Items whose video cannot be read are recorded with their error and scored as misses.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from torch.utils.data import DataLoader

from vtgcore.fileio import atomic_write_text
from vtgcore.data.dataset import FrameConfig, VideoCollator, VideoConversationDataset
from vtgcore.eval.generate import GenerationConfig, generate_batch

TASK_NAMES = {"mr": "moment_retrieval", "hd": "highlights", "dvc": "dense_captioning"}


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
    """Finished items of an earlier (possibly interrupted) run; a torn last line is ignored."""
    done: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            done[str(row["id"])] = row
    return done


def _append(handle: Any, row: dict[str, Any]) -> None:
    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


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
                 feature_cache: Any = None) -> dict[str, dict[str, Any]]:
    """Generate an answer for every item not yet in ``cache``; return all rows by item id."""
    done = read_cache(cache)
    todo = [item for item in items if item.id not in done]
    total = len(items)
    if progress:
        progress(total - len(todo), total)
    if todo:
        dataset = VideoConversationDataset(todo, frames, video_root=video_root, skip_broken=True,
                                           feature_cache=feature_cache)
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                            collate_fn=VideoCollator(processor, add_generation_prompt=True))
        model.eval()
        place_for_eval(model)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("a", encoding="utf-8") as handle:
            for batch in loader:
                for record in batch["skipped"]:
                    item = todo[record["index"]]
                    row = {"id": item.id, "video": record["video"], "text": "", "raw": "", "error": record["error"]}
                    done[item.id] = row
                    _append(handle, row)
                if batch["items"]:
                    outputs = generate_batch(model, batch, generation)
                    for item, out, duration, video in zip(batch["items"], outputs, batch["duration"].tolist(),
                                                          batch["videos"]):
                        row = {"id": item.id, "video": video, "duration": duration, **out}
                        done[item.id] = row
                        _append(handle, row)
                if progress:
                    progress(total - len(todo) + sum(1 for i in todo if i.id in done), total)
    return {item.id: done[item.id] for item in items}


def _duration(item: Any, row: dict[str, Any]) -> Optional[float]:
    return item.duration if item.duration else row.get("duration")


def score(task: str, items: Sequence[Any], rows: dict[str, dict[str, Any]], *,
          legacy_parser: bool = False) -> tuple[dict[str, Any], Any]:
    """Parse every generation and compute the task's metrics.

    Returns:
        ``(metrics, predictions)``: metrics in percent plus parse-failure counts; predictions in
        the original VTG-LLM file format of the task.
    """
    from vtgcore.eval import metrics as M
    from vtgcore.eval.parsers import ParseStats, parse

    stats = ParseStats()
    parsed: dict[str, Any] = {}
    for item in items:
        row = rows[item.id]
        result = parse(task, row.get("text", ""), duration=_duration(item, row), legacy=legacy_parser)
        stats.add(result)
        parsed[item.id] = result.value if result.ok else None
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
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASK_NAMES)}")
    metrics.update(stats.as_dict())
    metrics["video_errors"] = sum(1 for i in items if rows[i.id].get("error"))
    return metrics, predictions


def evaluate_set(model: Any, processor: Any, eval_set: EvalSet, out_dir: str | Path, *, frames: FrameConfig,
                 video_root: Optional[str | Path] = None, batch_size: int = 8,
                 generation: Optional[GenerationConfig] = None, legacy_parser: bool = False,
                 limit: Optional[int] = None, num_workers: int = 0,
                 progress: Optional[Callable[[int, int], None]] = None, feature_cache: Any = None) -> dict[str, Any]:
    """Evaluate one set end to end and write its folder ``out_dir/<task name>``.

    Returns:
        The metrics (also in ``metrics.json``).
    """
    from vtgcore.data.formats import load_eval

    generation = generation or GenerationConfig()
    items = load_eval(eval_set.annotation, eval_set.format)
    if limit is not None:
        items = items[:limit]
    folder = Path(out_dir) / TASK_NAMES[eval_set.task]
    rows = generate_all(model, processor, items, folder / "generations.jsonl", frames=frames,
                        video_root=video_root, batch_size=batch_size, generation=generation,
                        num_workers=num_workers, progress=progress, feature_cache=feature_cache)
    metrics, predictions = score(eval_set.task, items, rows, legacy_parser=legacy_parser)
    atomic_write_text(folder / "predictions.json", json.dumps(predictions, indent=1, ensure_ascii=False))
    record = {"task": eval_set.task, "annotation": str(eval_set.annotation), "items": len(items),
              "generation": generation.as_dict(), "legacy_parser": legacy_parser, "metrics": metrics}
    atomic_write_text(folder / "metrics.json", json.dumps(record, indent=2))
    return metrics


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
