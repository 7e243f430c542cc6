"""Ground your own videos from Python: :func:`load_pipeline` and its typed results.

.. code-block:: python

    from vtgcore import load_pipeline

    pipe = load_pipeline("work_dirs/main/run")          # a run folder: its recipe and last checkpoint
    hit = pipe.ground("video.mp4", "the red square moves to the left")
    print(hit.windows, hit.text)                        # [(23.0, 48.5)] '23.0 - 48.5 seconds.'

The pipeline runs the evaluation path of ``vtg eval`` on any video: the recipe's frame sampling
(:meth:`~vtgcore.data.dataset.FrameConfig.for_eval`), the task's evaluation prompt, batched
generation and the robust task parsers (:func:`vtgcore.eval.evaluation.generate_rows`,
:func:`vtgcore.eval.parsers.parse`), so an answer here is the answer the evaluation scores.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from vtgcore.errors import VTGError
from vtgcore.vocab import QUERY_TASKS, TASK_LABELS, TASKS

if TYPE_CHECKING:  # heavy imports only for type checkers
    import torch

    from vtgcore.data.video import VideoInfo
    from vtgcore.eval.generate import GenerationConfig

__all__ = ["Caption", "Captions", "Grounding", "Highlights", "Pipeline", "clock", "load_pipeline", "pick_device"]

CLIP_LENGTH = {"hd": 2.0, "summary": 1.0}
"""Seconds per saliency score: 2-second clips for highlights (QVHighlights), seconds for summaries."""

VideoPath = Union[str, "os.PathLike[str]"]


def clock(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` from one hour on) of a time, truncated to the second as players show it.

    >>> clock(65.9), clock(3725)
    ('01:05', '1:02:05')
    """
    total = int(math.floor(max(0.0, float(seconds))))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _span(start: float, end: float) -> str:
    return f"{start:.1f} - {end:.1f} s  ({clock(start)} - {clock(end)})"


@dataclass
class Grounding:
    """The answer of a moment-retrieval query (and the fields every result has).

    Attributes:
        windows: predicted ``(start, end)`` windows in seconds, in the order the model wrote them,
            inside ``[0, duration]`` with ``start <= end`` (the first is the answer the evaluation
            scores).
        text: the generated answer with every time written as seconds.
        task: ``mr``, ``dvc``, ``hd`` or ``summary``.
        video: the video file.
        duration: the video's length in seconds.
        query: the query ("" for tasks without one).
        raw: the generated text as the tokenizer decodes it (time tokens included).
        parsed: False when the parser found nothing usable in the answer.
        note: what the parser corrected or why it failed.
    """

    windows: list[tuple[float, float]]
    text: str
    task: str
    video: str
    duration: float
    query: str = ""
    raw: str = ""
    parsed: bool = True
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``windows`` (``[[s, e], ...]``), ``text``, ``task``, ``video``,
        ``duration``, ``query``, ``raw``, ``parsed``, ``note``, plus the task's own fields."""
        return {"windows": [[float(s), float(e)] for s, e in self.windows], "text": self.text, "task": self.task,
                "video": self.video, "duration": self.duration, "query": self.query, "raw": self.raw,
                "parsed": self.parsed, "note": self.note}

    def _lines(self) -> list[str]:
        if not self.windows:
            if "beyond the duration" in self.note:  # the answer had a window, but after the video's end
                return [f"  the answer's time window lies past the video's end ({self.duration:.1f} s)"]
            return ["  no time window in the answer"]
        return [f"  {k}. {_span(s, e)}" for k, (s, e) in enumerate(self.windows, start=1)]

    def describe(self, verbose: bool = False) -> str:
        """The answer for people: a header, the answer text and the windows in seconds and mm:ss.

        Args:
            verbose: also show the raw generated text and the parser's note.
        """
        about = f' for "{self.query}"' if self.query else ""
        lines = [f"{Path(self.video).name} ({clock(self.duration)}, {self.duration:.1f} s): "
                 f"{TASK_LABELS.get(self.task, self.task)}{about}",
                 f"answer: {self.text or '(empty)'}", *self._lines()]
        if verbose:
            lines.append(f"raw: {self.raw}")
            if self.note:
                lines.append(f"parser: {self.note}")
        return "\n".join(lines)


@dataclass
class Caption:
    """One event of a dense caption: ``start`` and ``end`` in seconds and its sentence."""

    start: float
    end: float
    text: str


@dataclass
class Captions(Grounding):
    """Dense video captions: one :class:`Caption` per event (``windows`` are the events' windows)."""

    events: list[Caption] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """:meth:`Grounding.to_dict` plus ``events``: ``[{"start", "end", "caption"}, ...]``."""
        return {**super().to_dict(), "events": [{"start": e.start, "end": e.end, "caption": e.text} for e in self.events]}

    def _lines(self) -> list[str]:
        if not self.events:
            return ["  no event in the answer"]
        return [f"  {k}. {_span(e.start, e.end)}  {e.text}" for k, e in enumerate(self.events, start=1)]


@dataclass
class Highlights(Grounding):
    """Highlight detection (``hd``: a saliency score per 2-second clip) or a summary (``summary``:
    a score per second).

    ``windows`` are the runs of consecutive clips the model gave a score above 0 (clips it did not
    mention score 0), cut at ``duration``.

    Attributes:
        scores: one score per clip, clip ``i`` covering ``[i * clip_length, (i + 1) * clip_length)``.
        clip_length: seconds per score.
    """

    scores: list[float] = field(default_factory=list)
    clip_length: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        """:meth:`Grounding.to_dict` plus ``scores`` and ``clip_length``."""
        return {**super().to_dict(), "scores": list(self.scores), "clip_length": self.clip_length}

    def _lines(self) -> list[str]:
        lines = super()._lines()
        if self.scores and max(self.scores) > 0:
            best = max(range(len(self.scores)), key=lambda i: self.scores[i])
            start = best * self.clip_length
            lines.append(f"  best clip: {_span(start, min(start + self.clip_length, self.duration))}, "
                         f"score {self.scores[best]:g}")
        return lines


def highlight_windows(scores: Sequence[float], clip_length: float, duration: float) -> list[tuple[float, float]]:
    """Runs of consecutive clips with a score above 0 as ``(start, end)`` windows, cut at ``duration``."""
    windows: list[tuple[float, float]] = []
    start: Optional[int] = None
    for i, score in enumerate([*scores, 0.0]):
        if score > 0 and start is None:
            start = i
        elif score <= 0 and start is not None:
            windows.append((start * clip_length, min(i * clip_length, duration)))
            start = None
    return windows


def pick_device(device: str = "auto") -> "torch.device":
    """The device to run on: ``auto`` takes CUDA, then an Ascend NPU (only when ``torch_npu`` can be
    imported), else the CPU; any other value is used as given (``cpu``, ``cuda:1``, ``npu:0``).

    Raises:
        VTGError: a CUDA or NPU device asked for but not available.
    """
    import torch
    from mmengine.device import is_npu_available  # imports torch_npu when it is installed and works

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("npu") if is_npu_available() else torch.device("cpu")
    if str(device).split(":")[0] == "npu" and not is_npu_available():  # torch knows "npu" only from torch_npu
        raise VTGError(f"device {device!r}: no Ascend NPU (torch_npu) on this machine")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise VTGError(f"unknown device {device!r} ({exc}); use auto, cpu, cuda[:N] or npu[:N]") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise VTGError(f"device {device!r}: CUDA is not available on this machine")
    return chosen


class Pipeline:
    """A loaded model that answers questions about videos. Build it with :func:`load_pipeline`.

    Every method takes one video (and returns one result) or a list of videos (and returns a list in
    the same order). Lists are answered in batches of ``batch_size`` videos with batched
    generation; greedy answers do not depend on the batch size.

    Attributes:
        model: the :class:`~vtgcore.model.VideoLLM`, in eval mode on ``device``.
        processor: its processor.
        recipe: the resolved recipe.
        checkpoint: the checkpoint folder the weights came from (None: random weights).
        device: where the model runs.
        generation: decoding settings (greedy by default).
        batch_size: videos per generation batch.
        source: what the pipeline was loaded from (run folder or recipe file).
    """

    def __init__(self, model: Any, processor: Any, recipe: Any, *, checkpoint: Optional[Path], device: Any,
                 generation: "GenerationConfig", batch_size: int = 8, source: str = "") -> None:
        from vtgcore.data.dataset import FrameConfig

        self.model = model
        self.processor = processor
        self.recipe = recipe
        self.checkpoint = checkpoint
        self.device = device
        self.generation = generation
        self.batch_size = max(1, int(batch_size))
        self.source = source
        self.frames = FrameConfig.for_eval(recipe, model.encoder)

    def __repr__(self) -> str:
        weights = self.checkpoint if self.checkpoint is not None else "random weights"
        return f"Pipeline({self.source or self.recipe.experiment_name}, {weights}, device={self.device})"

    def probe(self, video: VideoPath) -> "VideoInfo":
        """What the recipe's reader knows about ``video`` without decoding it (duration, size ...).

        Raises:
            VideoReadError: missing, empty or unreadable file (the message names it).
        """
        from vtgcore.data.video import get_reader, reader_for

        return get_reader(reader_for(video, str(self.recipe.data.reader))).probe(video)

    def predict(self, videos: VideoPath | Sequence[VideoPath], queries: str | Sequence[str] | None = None,
                task: str = "mr") -> Grounding | list[Grounding]:
        """Answer ``task`` for one video or a list of videos.

        Args:
            videos: a video file, or a list of them.
            queries: the query (``mr``, ``hd``): one string for every video or one per video; not
                used by ``dvc`` and ``summary``.
            task: ``mr`` (:class:`Grounding`), ``dvc`` (:class:`Captions`), ``hd`` or ``summary``
                (:class:`Highlights`).

        Returns:
            One result, or a list in the order of ``videos``.

        Raises:
            VTGError: unknown task, a missing query, or as many queries as videos missing.
            VideoReadError: a video is missing or cannot be read (checked before any generation).
        """
        from vtgcore.data.formats import EvalItem
        from vtgcore.eval.parsers import parse
        from vtgcore.eval.evaluation import generate_rows

        if task not in TASKS:
            raise VTGError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
        single = isinstance(videos, (str, os.PathLike))
        paths = [Path(os.fspath(v)) for v in ([videos] if single else list(videos))]
        if queries is None or isinstance(queries, str):
            texts = [queries or ""] * len(paths)
        else:
            texts = [str(q) for q in queries]
            if len(texts) != len(paths):
                raise VTGError(f"{len(paths)} video(s) but {len(texts)} queries; give one query or one per video")
        if task in QUERY_TASKS and any(not q.strip() for q in texts):
            raise VTGError(f"{TASK_LABELS[task]} ({task}) needs a query: what should be found in the video?")
        for path in paths:
            self.probe(path)  # fail on a bad file before generating anything
        items = [EvalItem(id=str(i), video=str(path.resolve()), task=task, query=q if task in QUERY_TASKS else "")
                 for i, (path, q) in enumerate(zip(paths, texts))]
        rows: dict[int, dict[str, Any]] = {}
        for batch in generate_rows(self.model, self.processor, items, frames=self.frames, video_root=None,
                                   batch_size=self.batch_size, generation=self.generation, skip_broken=False):
            rows.update(batch)
        results = []
        for index, (path, item) in enumerate(zip(paths, items)):
            row = rows[index]
            duration = float(row["duration"])
            parsed = parse(task, row["text"], duration=duration)
            common = dict(text=row["text"], task=task, video=str(path), duration=duration, query=item.query,
                          raw=row["raw"], parsed=parsed.ok, note=parsed.note)
            if task == "mr":
                results.append(Grounding(windows=list(parsed.value or []), **common))
            elif task == "dvc":
                events = [Caption(s, e, c) for s, e, c in (parsed.value or [])]
                results.append(Captions(windows=[(e.start, e.end) for e in events], events=events, **common))
            else:
                scores = [float(s) for s in (parsed.value or [])]
                length = CLIP_LENGTH[task]
                results.append(Highlights(windows=highlight_windows(scores, length, duration), scores=scores,
                                          clip_length=length, **common))
        return results[0] if single else results

    def ground(self, videos: VideoPath | Sequence[VideoPath],
               queries: str | Sequence[str]) -> Grounding | list[Grounding]:
        """When does ``query`` happen? Moment retrieval; see :meth:`predict`."""
        return self.predict(videos, queries, "mr")

    def caption(self, videos: VideoPath | Sequence[VideoPath]) -> Captions | list[Captions]:
        """Dense captions: every event with its window and sentence; see :meth:`predict`."""
        return self.predict(videos, None, "dvc")

    def highlights(self, videos: VideoPath | Sequence[VideoPath],
                   queries: str | Sequence[str]) -> Highlights | list[Highlights]:
        """Saliency of every 2-second clip for ``query``; see :meth:`predict`."""
        return self.predict(videos, queries, "hd")

    def summarize(self, videos: VideoPath | Sequence[VideoPath]) -> Highlights | list[Highlights]:
        """Key moments (a score per second, 1-5); see :meth:`predict`."""
        return self.predict(videos, None, "summary")


def _run_recipe(folder: Path) -> tuple[Path, Path]:
    """The checkpoint folder a run (or checkpoint) folder stands for and its saved recipe."""
    from vtgcore.checkpoint import RECIPE, resolve_checkpoint

    checkpoint = resolve_checkpoint(folder)
    recipe = checkpoint / RECIPE
    if not recipe.is_file():
        raise VTGError(f"{folder}: not a run folder (checkpoints/last) or a checkpoint folder with {RECIPE}; "
                       "give a run folder from vtg train / vtg run, or a recipe file with a checkpoint")
    return checkpoint, recipe


def load_pipeline(source: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None = None,
                  device: str = "auto", *, overrides: Sequence[str] = (), allow_random: bool = False,
                  generation: Optional["GenerationConfig"] = None, batch_size: int = 8,
                  trust_remote_code: bool = False) -> Pipeline:
    """Load a model for grounding your own videos.

    Args:
        source: a run folder (``vtg run``: ``OUT/run``; ``vtg train``: the work dir), its
            ``checkpoints`` folder or one checkpoint folder (the recipe saved with the checkpoint
            is used and the ``last`` pointer names the weights), or a recipe file (then give
            ``checkpoint``).
        checkpoint: the weights: a checkpoint folder, or a run or ``checkpoints`` folder standing for
            its last checkpoint. With a run folder as ``source`` it replaces the run's last one.
        device: ``auto`` (CUDA, then an Ascend NPU, else the CPU), or a torch device name.
        overrides: recipe overrides (``data.num_frames=48``), applied to the recipe file or to the
            run's saved recipe.
        allow_random: let a recipe without a checkpoint run with freshly initialised weights
            (smoke tests only: the answers mean nothing).
        generation: decoding settings (default: greedy, at most 256 new tokens).
        batch_size: videos per generation batch.
        trust_remote_code: allow the recipe's ``trust_remote_code: true`` (a model folder's own
            Python code) to take effect. A run folder or checkpoint may come from anyone: the value
            saved in it never turns code execution on by itself (``vtg ground --trust-remote-code``).

    Returns:
        The :class:`Pipeline`.

    Raises:
        VTGError: the source or checkpoint is missing or not usable, or a recipe comes without a
            checkpoint and ``allow_random`` is False.
        RecipeError: the recipe asks for a model folder's code and ``trust_remote_code`` is False.
    """
    from vtgcore.build import build_model
    from vtgcore.checkpoint import load_checkpoint, resolve_checkpoint
    from vtgcore.config.loader import load_recipe
    from vtgcore.vocab import MODEL_KINDS
    from vtgcore.eval.generate import GenerationConfig
    from vtgcore.utils.fileio import locate

    path = Path(os.fspath(source))
    if not path.exists():
        raise VTGError(f"{path}: not found (give a run folder, a checkpoint folder or a recipe file)")
    weights: Optional[Path] = Path(os.fspath(checkpoint)) if checkpoint is not None else None
    if path.is_dir():
        own, recipe_file = _run_recipe(path)
        weights = weights if weights is not None else own
    else:
        recipe_file = path
        if weights is None and not allow_random:
            raise VTGError(f"{path}: a recipe alone has no trained weights; give a checkpoint (--checkpoint DIR, "
                           "checkpoint=...) or a run folder (--run DIR), or allow random weights for a smoke test")
    if weights is not None:
        if not weights.exists():
            raise VTGError(f"{weights}: checkpoint not found")
        weights = resolve_checkpoint(weights)
    recipe = load_recipe(recipe_file, list(overrides))
    if path.is_dir():  # component weights the run names relative to where it was trained
        for kind in MODEL_KINDS:
            spec = recipe.model[kind]
            if spec.get("checkpoint"):
                spec.checkpoint = str(locate(spec.checkpoint, recipe_file.parent))
    if weights is not None:  # the trained weights replace the starting point: model.init_from is not needed
        recipe.model.init_from = None
    model, processor = build_model(recipe, where=str(recipe_file), trust_remote_code=trust_remote_code)
    if weights is not None:
        load_checkpoint(model, weights)
    chosen = pick_device(device)
    model.to(chosen).eval()
    return Pipeline(model, processor, recipe, checkpoint=weights, device=chosen,
                    generation=generation or GenerationConfig(), batch_size=batch_size, source=str(path))
