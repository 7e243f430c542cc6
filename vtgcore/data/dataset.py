"""Datasets and collation: annotation items -> sampled, preprocessed clips -> padded batches.

A broken video raises :class:`~vtgcore.errors.VideoReadError` naming the file; with
``skip_broken=True`` the sample comes back as an error record instead, the collator leaves it out
of the batch and lists it in ``batch["skipped"]``, and :class:`SkipLog` counts and reports every
skipped sample (collation may run in worker processes, so the batch carries the record).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch.utils.data import Dataset

from vtgcore.data.transforms import CLIP_MEAN, CLIP_STD
from vtgcore.errors import VideoReadError, VTGError



@dataclass
class FrameConfig:
    """How frames are sampled and preprocessed.

    Attributes:
        num_frames: frames per video (fewer when the video is shorter).
        sampling: ``uniform``, ``random_per_segment`` or ``random_per_segment_legacy``.
        reader: ``decord``, ``pyav`` or ``auto``.
        image_size: output height and width.
        resize: ``squash`` (the original) or ``pad`` (keep the aspect ratio, letterbox).
        crop: train-time random resized crop, one box per clip.
        mean: normalisation mean (the encoder's).
        std: normalisation std (the encoder's).
        frame_times: ``container`` (each frame's presentation time) or ``vtgllm`` (the original's
            ``round(index / avg_fps, 1)``, for replication); see :func:`vtgcore.data.video.frame_seconds`.
    """

    num_frames: int = 96
    sampling: str = "uniform"
    reader: str = "auto"
    image_size: int = 224
    resize: str = "squash"
    crop: bool = False
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    frame_times: str = "container"

    def __post_init__(self) -> None:
        from vtgcore.data.video import FRAME_TIMES

        if self.frame_times not in FRAME_TIMES:
            raise ValueError(f"unknown frame_times {self.frame_times!r}; allowed: {', '.join(FRAME_TIMES)}")

    @classmethod
    def for_eval(cls, recipe: Any, encoder: Any) -> "FrameConfig":
        """The frames a model sees at evaluation and inference (``vtg eval``, ``vtg run``, the
        pipeline): ``data.num_frames`` frames drawn by ``data.eval_sampling`` with ``data.reader``,
        timed by ``data.frame_times``, at the encoder's image size and normalisation.

        Args:
            recipe: a loaded recipe.
            encoder: the built frame encoder (``image_size``, ``mean``, ``std``).
        """
        data = recipe.data
        return cls(int(data.num_frames), str(data.eval_sampling), str(data.reader), encoder.image_size,
                   mean=encoder.mean, std=encoder.std, frame_times=str(data.get("frame_times", "container")))


class VideoConversationDataset(Dataset):
    """Training items (:class:`~vtgcore.data.formats.TrainItem`) or evaluation items
    (:class:`~vtgcore.data.formats.EvalItem`) as model-ready samples.

    A sample is a dict: ``frames`` (T, 3, H, W) float normalised, ``timestamps`` (T,) float64
    seconds (``frames.frame_times`` says which), ``duration`` float, ``turns`` (list of
    ``{"q", "a"}``; evaluation items get the task's evaluation prompt and no answer), ``video``
    (resolved path), ``index``, ``item`` (the record).

    Args:
        items: records from the loaders in :mod:`vtgcore.data.formats`.
        frames: sampling and preprocessing.
        video_root: folder relative video paths are resolved against.
        skip_broken: return an error record for a broken video instead of raising.
        seed: base seed; sample ``i`` of epoch ``e`` draws from ``seed, e, i`` (reproducible with
            any number of workers).
        prompt_version: version of the evaluation prompt templates.
        feature_cache: a :class:`~vtgcore.data.feature_cache.FeatureCache`; samples then carry the
            frozen encoder's outputs, shape (T, L, Dv), under ``frames`` instead of pixels (or,
            for a cache of decoded frames, the pixels without decoding the video again).
    """

    def __init__(self, items: Sequence[Any], frames: FrameConfig, *, video_root: Optional[str | Path] = None,
                 skip_broken: bool = False, seed: int = 0, prompt_version: str = "v1",
                 feature_cache: Any = None) -> None:
        self.items = list(items)
        self.frames = frames
        self.video_root = video_root
        self.skip_broken = skip_broken
        self.seed = seed
        self.epoch = 0
        self.prompt_version = prompt_version
        self.feature_cache = feature_cache

    def set_epoch(self, epoch: int) -> None:
        """Change the random draws (sampling, crops) for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def _turns(self, item: Any) -> list[dict[str, str]]:
        if hasattr(item, "turns"):
            return [dict(t) for t in item.turns]
        from vtgcore.data.prompts import eval_prompt

        return [{"q": eval_prompt(item.task, item.query, version=self.prompt_version)}]

    def __getitem__(self, index: int) -> dict[str, Any]:
        from vtgcore.data.formats import resolve_video
        from vtgcore.data.transforms import normalize, random_resized_crop, resize_frames
        from vtgcore.data.video import frame_seconds, read_clip

        item = self.items[index]
        path = resolve_video(item.video, self.video_root)
        cfg = self.frames
        generator = torch.Generator().manual_seed(hash((self.seed, self.epoch, index)) & 0x7FFF_FFFF_FFFF)
        size = (cfg.image_size, cfg.image_size) if cfg.resize == "squash" else None
        try:
            if self.feature_cache is not None:
                return self._from_cache(path, item, index, generator)
            clip = read_clip(path, cfg.num_frames, sampling=cfg.sampling, reader=cfg.reader, size=size,
                             generator=generator)
            times = frame_seconds(clip, cfg.frame_times)  # vtgllm times need the video's frame rate
        except VideoReadError as exc:
            if self.skip_broken:
                return {"error": str(exc), "index": index, "video": str(path)}
            raise
        frames = clip.frames
        if frames.shape[-2:] != (cfg.image_size, cfg.image_size):
            frames = resize_frames(frames, cfg.image_size, cfg.resize)
        if cfg.crop:
            frames = random_resized_crop(frames, cfg.image_size, generator=generator)
        return {
            "frames": normalize(frames, cfg.mean, cfg.std),
            "timestamps": times,
            "duration": float(clip.duration),
            "turns": self._turns(item),
            "video": str(path),
            "index": index,
            "item": item,
        }


    def _from_cache(self, path: Path, item: Any, index: int, generator: torch.Generator) -> dict[str, Any]:
        from vtgcore.data.transforms import normalize, random_resized_crop
        from vtgcore.data.video import sample_indices, seconds_list

        cached = getattr(self.feature_cache, "frame_times", "container")
        if cached != self.frames.frame_times:
            raise VTGError(f"the feature cache holds {cached!r} frame times but the data wants "
                           f"{self.frames.frame_times!r} (data.frame_times)")
        entry = self.feature_cache.get(path)
        if "features" in entry:
            data = entry["features"]
            indices = sample_indices(data.shape[0], self.frames.num_frames, self.frames.sampling, generator)
            frames = data[indices]
        else:  # cached pixels (trainable encoder)
            data = entry["frames"]
            indices = sample_indices(data.shape[0], self.frames.num_frames, self.frames.sampling, generator)
            frames = data[indices]
            if self.frames.crop:
                frames = random_resized_crop(frames, self.frames.image_size, generator=generator)
            frames = normalize(frames, self.frames.mean, self.frames.std)
        times = entry["timestamps"][indices]
        if times.dtype != torch.float64:  # a cache written before times were float64
            times = torch.tensor(seconds_list(times), dtype=torch.float64)
        return {"frames": frames, "timestamps": times,
                "duration": float(entry["duration"]), "turns": self._turns(item), "video": str(path),
                "index": index, "item": item}


class VideoCollator:
    """Pads a list of samples into a batch; tokenizes with the processor when one is given.

    The batch: ``frames`` (B, T, 3, H, W) zero-padded to the longest clip (or cached features
    (B, T, L, Dv)), ``frame_mask`` (B, T)
    bool, ``timestamps`` (B, T) float32 for the model (padding repeats the last time),
    ``frame_seconds`` (per video, its frames' float64 seconds as Python floats: prompts are written
    from these, never from the float32 tensor), ``duration`` (B,), ``turns``,
    ``videos``, ``indices``, ``items``, ``skipped`` (error records ``{index, video, error, kind}`` of
    samples left out: ``kind`` ``"video"`` for a broken video, ``"prompt"`` with ``skip_errors``, whose
    record also holds the bare ``problem``) and,
    with a processor, ``input_ids``, ``attention_mask``, ``labels`` (B, S).

    Args:
        processor: a :class:`~vtgcore.processor.VideoLLMProcessor`, or None.
        add_generation_prompt: build generation prompts (left-padded, no answers).
        skip_errors: a sample whose prompt cannot be built (a time the codec cannot write, a query
            longer than ``max_length``) is left out and listed in ``skipped`` with ``kind``
            ``"prompt"``, instead of failing the whole batch.
    """

    def __init__(self, processor: Any = None, add_generation_prompt: bool = False, skip_errors: bool = False) -> None:
        self.processor = processor
        self.add_generation_prompt = add_generation_prompt
        self.skip_errors = skip_errors

    def _prompt_errors(self, good: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Error records of the samples whose prompt the processor cannot build."""
        from vtgcore.data.video import seconds_list

        t = max(s["frames"].shape[0] for s in good)
        records = []
        for s in good:
            try:
                self.processor.encode_conversation(s["turns"], seconds_list(s["timestamps"]), self.add_generation_prompt,
                                                   num_frames=t)
            except VTGError as exc:
                records.append({"index": s["index"], "video": s["video"], "error": f"{s['video']}: {exc}",
                                "kind": "prompt", "problem": str(exc)})
        return records

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        skipped = [{"kind": "video", **{k: s[k] for k in ("index", "video", "error")}} for s in samples if "error" in s]
        good = [s for s in samples if "error" not in s]
        if not (self.skip_errors and self.processor is not None and good):
            return self._build(good, skipped)
        from vtgcore.errors import VTGError

        try:
            return self._build(good, skipped)
        except VTGError:
            bad = self._prompt_errors(good)
            if not bad:
                raise
        dropped = {r["index"] for r in bad}
        return self._build([s for s in good if s["index"] not in dropped], skipped + bad)

    def _build(self, good: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> dict[str, Any]:
        """The batch of the samples ``good``; ``skipped`` lists the ones left out."""
        batch: dict[str, Any] = {"skipped": skipped, "turns": [s["turns"] for s in good],
                                 "videos": [s["video"] for s in good], "indices": [s["index"] for s in good],
                                 "items": [s["item"] for s in good]}
        if not good:
            batch.update(frames=torch.zeros(0), frame_mask=torch.zeros(0, dtype=torch.bool),
                         timestamps=torch.zeros(0), frame_seconds=[], duration=torch.zeros(0))
            return batch
        from vtgcore.data.video import seconds_list

        t = max(s["frames"].shape[0] for s in good)
        frames = torch.zeros(len(good), t, *good[0]["frames"].shape[1:], dtype=good[0]["frames"].dtype)
        mask = torch.zeros(len(good), t, dtype=torch.bool)
        times = torch.zeros(len(good), t)
        for i, s in enumerate(good):
            n = s["frames"].shape[0]
            frames[i, :n] = s["frames"]
            mask[i, :n] = True
            times[i, :n] = s["timestamps"]
            times[i, n:] = s["timestamps"][-1] if n else 0.0
        real = [seconds_list(s["timestamps"]) for s in good]
        batch.update(frames=frames, frame_mask=mask, timestamps=times, frame_seconds=real,
                     duration=torch.tensor([s["duration"] for s in good], dtype=torch.float32))
        if self.processor is not None:
            batch.update(self.processor(batch["turns"], real, self.add_generation_prompt, num_frames=t))
        return batch


class SkipLog:
    """Counts the samples collators left out, for the report at the end of an epoch."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def update(self, batch: dict[str, Any]) -> None:
        """Record the ``skipped`` entries of a batch."""
        self.records.extend(batch.get("skipped", []))

    def report(self) -> str:
        """One line per skipped sample after a count; empty when nothing was skipped."""
        if not self.records:
            return ""
        lines = [f"{len(self.records)} sample(s) skipped because their video could not be read:"]
        lines += [f"  #{r['index']}: {r['error']}" for r in self.records]
        return "\n".join(lines)
