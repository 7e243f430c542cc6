"""Mixing several training sets: ``data.train.datasets`` and the sampler that draws from them.

The original VTG-LLM trains on VTG-IT-120K and Valley at once; its ``MultiIterLoader`` picks one of
the two loaders per iteration with equal probability, whatever their sizes
(``vtgllm-original.md`` section 3.3). Here every batch slot picks a data set with probability
proportional to its ``ratio``, then takes that data set's next item:

* each data set is walked through its own permutations, one per pass over it (seeded by
  ``(seed, data set, pass)``, the same on every rank), and each rank takes its share
  ``perm[rank::world_size]``, so within a pass no item is drawn twice;
* the data-set choices of rank ``r`` come from one random stream seeded by ``(seed, r)``.

The index stream is therefore a pure function of ``(seed, rank, world_size, sizes, ratios)`` and its
position, and sample ``i`` of pass ``e`` of a data set draws its frames from ``(seed', e, i)``
(:class:`~vtgcore.mm.datasets.VTGInstructDataset`): resuming replays the stream (mmengine advances
the data loader by the finished iterations) and every later batch is the same as in an
uninterrupted run, as with :class:`~vtgcore.mm.datasets.EpochIndexSampler`.

Recipe form::

    data:
      train:
        datasets:
          - {annotation: .../vtg-it-120k.json, ratio: 1}
          - {annotation: .../valley/time_token.json, video_root: /videos/valley, ratio: 1}
        batch_size: 1
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import torch
from mmengine.dist import get_dist_info
from torch.utils.data import Dataset, Sampler

from vtgcore.config.train_data import check_train_data
from vtgcore.errors import RecipeError
from vtgcore.mm.registry import DATA_SAMPLERS, DATASETS

PART_SEED_STRIDE = 1_000_003
"""Data set ``d`` of a mix draws its per-sample randomness from ``seed + d * PART_SEED_STRIDE``, so
item ``i`` of two data sets does not share its frame draws."""


@DATASETS.register_module()
class MixedInstructDataset(Dataset):
    """Several :class:`~vtgcore.mm.datasets.VTGInstructDataset` as one, for :class:`MixSampler`.

    Index ``e * len(self) + offset[d] + i`` is item ``i`` of data set ``d`` in its pass ``e`` (the
    pass decides the sample's random draws). ``len`` is the total number of items.

    Args:
        datasets: entries ``{annotation, ratio, video_root?, sources?, name?}``.
        video_root: folder for the entries without their own ``video_root``.
        seed: base seed; data set ``d`` uses ``seed + d * PART_SEED_STRIDE``.
        **common: the other :class:`~vtgcore.mm.datasets.VTGInstructDataset` arguments
            (num_frames, sampling, reader, image_size, resize, crop, mean, std, skip_broken).

    Raises:
        RecipeError: a bad entry (see :func:`check_train_data`) or an entry left with no item.
    """

    def __init__(self, datasets: Sequence[Mapping[str, Any]], video_root: Optional[str] = None, seed: int = 0,
                 **common: Any) -> None:
        from vtgcore.mm.datasets import VTGInstructDataset

        entries = [dict(e) if isinstance(e, Mapping) else e for e in datasets]
        check_train_data({"datasets": entries})
        self.parts: list[VTGInstructDataset] = []
        self.names: list[str] = []
        for d, entry in enumerate(entries):
            part = VTGInstructDataset(annotation=str(entry["annotation"]),
                                      video_root=entry.get("video_root") or video_root,
                                      sources=entry.get("sources"), seed=seed + d * PART_SEED_STRIDE, **common)
            name = str(entry.get("name") or Path(str(entry["annotation"])).name)
            if not len(part):
                raise RecipeError(f"data.train.datasets[{d}] ({name}): no training item left"
                                  + (f" after the sources filter {list(entry['sources'])}" if entry.get("sources") else ""))
            self.parts.append(part)
            self.names.append(name)
        self.ratios = [float(e["ratio"]) for e in entries]
        self.sizes = [len(p) for p in self.parts]
        self.offsets = [0]
        for size in self.sizes[:-1]:
            self.offsets.append(self.offsets[-1] + size)
        self.total = sum(self.sizes)

    def __len__(self) -> int:
        return self.total

    def locate(self, index: int) -> tuple[int, int, int]:
        """``(data set, pass, item)`` of a global index."""
        epoch, flat = divmod(int(index), self.total)
        d = bisect.bisect_right(self.offsets, flat) - 1
        return d, epoch, flat - self.offsets[d]

    def __getitem__(self, index: int) -> dict[str, Any]:
        d, epoch, i = self.locate(index)
        part = self.parts[d]
        return part[epoch * len(part) + i]

    @property
    def feature_cache(self) -> Any:
        return self.parts[0].feature_cache

    @feature_cache.setter
    def feature_cache(self, cache: Any) -> None:
        for part in self.parts:
            part.feature_cache = cache

    def describe(self) -> str:
        """One line per data set: name, items and share of the draws."""
        total = sum(self.ratios)
        return "; ".join(f"{n}: {s} items, {100 * r / total:.1f}% of draws"
                         for n, s, r in zip(self.names, self.sizes, self.ratios))


def dataset_videos(dataset: Any) -> list[Path]:
    """Resolved video paths of every item of a training data set (all data sets of a mix)."""
    from vtgcore.data.formats import resolve_video

    parts = getattr(dataset, "parts", [dataset])
    return [resolve_video(item.video, part.video_root) for part in parts for item in part.items]


def train_videos(train: Mapping[str, Any], video_root: Optional[str]) -> list[Path]:
    """Resolved video paths of a recipe's ``data.train`` (either form) without building a data set."""
    from vtgcore.data.formats import load_vtg_it, resolve_video

    if train.get("datasets") is not None:
        entries = list(train["datasets"])
    elif train.get("annotation") is not None:
        entries = [{"annotation": train["annotation"], "sources": train.get("sources")}]
    else:
        return []
    videos = []
    for entry in entries:
        root = entry.get("video_root") or video_root
        keep = set(entry["sources"]) if entry.get("sources") is not None else None
        videos += [resolve_video(i.video, root) for i in load_vtg_it(entry["annotation"])
                   if keep is None or i.source in keep]
    return videos


def _seed(*values: int) -> int:
    return hash(tuple(int(v) for v in values)) & 0x7FFF_FFFF_FFFF


@DATA_SAMPLERS.register_module()
class MixSampler(Sampler):
    """Infinite sampler over a :class:`MixedInstructDataset`: per draw, a data set chosen with
    probability ``ratio / sum(ratios)``, then its next item (see the module docstring).

    Args:
        dataset: the mixed data set.
        shuffle: permute each data set per pass (False: file order).
        seed: base seed.
        block: data-set choices drawn at a time (changes the stream; keep the default).
    """

    def __init__(self, dataset: MixedInstructDataset, shuffle: bool = True, seed: Optional[int] = None,
                 block: int = 4096) -> None:
        if not isinstance(dataset, MixedInstructDataset):
            raise TypeError(f"MixSampler needs a MixedInstructDataset, got {type(dataset).__name__}")
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = 0 if seed is None else int(seed)
        self.block = block
        self.rank, self.world_size = get_dist_info()

    def _shard(self, d: int, epoch: int) -> list[int]:
        n = self.dataset.sizes[d]
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(_seed(self.seed, d, epoch))).tolist()
        else:
            order = list(range(n))
        shard = order[self.rank::self.world_size]
        return shard or [order[self.rank % n]]  # fewer items than ranks: one each, repeated

    def __iter__(self) -> Iterator[int]:
        ds = self.dataset
        weights = torch.tensor(ds.ratios, dtype=torch.float64)
        bounds = torch.cumsum(weights / weights.sum(), 0)
        bounds[-1] = 1.0
        choices = torch.Generator().manual_seed(_seed(self.seed, -1, self.rank))
        epochs = [0] * len(ds.sizes)
        shards = [self._shard(d, 0) for d in range(len(ds.sizes))]
        cursors = [0] * len(ds.sizes)
        while True:
            draws = torch.rand(self.block, generator=choices, dtype=torch.float64)
            for d in torch.searchsorted(bounds, draws, right=True).clamp(max=len(ds.sizes) - 1).tolist():
                if cursors[d] == len(shards[d]):
                    epochs[d] += 1
                    shards[d] = self._shard(d, epochs[d])
                    cursors[d] = 0
                i = shards[d][cursors[d]]
                cursors[d] += 1
                yield epochs[d] * ds.total + ds.offsets[d] + i

    def __len__(self) -> int:
        return max(1, self.dataset.total // self.world_size)
