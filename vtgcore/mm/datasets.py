"""mmengine-buildable datasets, the collate function and an infinite epoch-aware sampler."""

from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import torch
from mmengine.dist import get_dist_info
from torch.utils.data import Sampler

from vtgcore.data.dataset import CLIP_MEAN, CLIP_STD, FrameConfig, VideoCollator, VideoConversationDataset
from vtgcore.mm.registry import DATA_SAMPLERS, DATASETS, FUNCTIONS


class _EpochIndexed(VideoConversationDataset):
    """Index ``e * len + i`` means item ``i`` in epoch ``e`` (random draws depend on both)."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.items)
        self.epoch = index // n
        sample = super().__getitem__(index % n)
        return sample


@DATASETS.register_module()
class VTGInstructDataset(_EpochIndexed):
    """VTG-IT training items (``vtg-it`` JSON) as model-ready samples.

    Args:
        annotation: the VTG-IT file.
        video_root: folder relative video paths are resolved against.
        num_frames: frames per video.
        sampling: frame sampling mode.
        reader: video reader.
        image_size: frame size (the encoder's).
        resize: ``squash`` or ``pad``.
        crop: random resized crop per clip.
        mean: normalisation mean (the encoder's).
        std: normalisation std (the encoder's).
        skip_broken: skip and report broken videos instead of stopping.
        seed: seed of the per-sample random draws.
        sources: keep only items whose ``source`` is listed (None: all).
        frame_times: ``container`` or ``vtgllm`` frame times (``data.frame_times``).
    """

    def __init__(self, annotation: str, video_root: Optional[str] = None, num_frames: int = 96,
                 sampling: str = "random_per_segment", reader: str = "auto", image_size: int = 224,
                 resize: str = "squash", crop: bool = False, mean: Sequence[float] = CLIP_MEAN,
                 std: Sequence[float] = CLIP_STD, skip_broken: bool = False, seed: int = 0,
                 sources: Optional[Sequence[str]] = None, frame_times: str = "container") -> None:
        from vtgcore.data.formats import load_vtg_it

        items = load_vtg_it(annotation)
        if sources is not None:
            items = [item for item in items if item.source in set(sources)]
        frames = FrameConfig(num_frames, sampling, reader, image_size, resize, crop, tuple(mean), tuple(std),
                             frame_times=frame_times)
        super().__init__(items, frames, video_root=video_root, skip_broken=skip_broken, seed=seed)


@DATASETS.register_module()
class VTGPromptDataset(_EpochIndexed):
    """Prompts with their ground truth for RL post-training (``training.objective: grpo``): the
    items of an evaluation-format annotation (Charades-STA, QVHighlights, YouCook2 ... as
    ``vtg eval`` reads them), each with its task's evaluation prompt and no answer.

    Args:
        annotation: the annotation file.
        format: its format (None: detected from the content).
        others: as :class:`VTGInstructDataset`.
    """

    def __init__(self, annotation: str, format: Optional[str] = None, video_root: Optional[str] = None,
                 num_frames: int = 96, sampling: str = "random_per_segment", reader: str = "auto",
                 image_size: int = 224, resize: str = "squash", crop: bool = False,
                 mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD, skip_broken: bool = False,
                 seed: int = 0, frame_times: str = "container") -> None:
        from vtgcore.data.formats import load_eval

        items = load_eval(annotation, format)
        frames = FrameConfig(num_frames, sampling, reader, image_size, resize, crop, tuple(mean), tuple(std),
                             frame_times=frame_times)
        super().__init__(items, frames, video_root=video_root, skip_broken=skip_broken, seed=seed)


@FUNCTIONS.register_module()
def vtg_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad samples into a batch (tokenization happens in the model's data preprocessor)."""
    return VideoCollator()(samples)


@DATA_SAMPLERS.register_module()
class EpochIndexSampler(Sampler):
    """Infinite sampler: a fresh permutation per epoch (seeded by ``seed + epoch``), split over ranks,
    yielding ``epoch * len + index`` so the dataset knows the epoch of each draw.

    An infinite sampler also avoids the pause mmengine's iteration loop takes between epochs.

    Args:
        dataset: the dataset.
        shuffle: permute within each epoch.
        seed: base seed.
    """

    def __init__(self, dataset: Any, shuffle: bool = True, seed: Optional[int] = None) -> None:
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = 0 if seed is None else seed
        self.rank, self.world_size = get_dist_info()

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        epoch = 0
        while True:
            if self.shuffle:
                order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
            else:
                order = list(range(n))
            for index in order[self.rank::self.world_size]:
                yield epoch * n + index
            epoch += 1

    def __len__(self) -> int:
        return len(self.dataset) // self.world_size
