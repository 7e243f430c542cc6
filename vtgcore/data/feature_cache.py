"""Feature cache: a frozen encoder's outputs for every frame of a video, computed once.

Without an encoder (a trainable one cannot be cached), the same cache stores the decoded,
resized frames instead (uint8 pixels), so training still never decodes a video twice.

The cache folder has one sub-folder per *key*: a digest of the encoder (plugin name and params),
its weights (a digest of every tensor), the preprocessing (image size, resize mode, mean, std) and
the cache format; and the encoder's ``cache_signature()`` when it is not None (for the Q-Former text
input, the texts and token ids it writes for a few probe times, so another time codec or tokenizer
gives another key). Any change gives a new key, so a stale cache is never read. Inside, one
safetensors file per video (named by a digest of its path, size and modification time) holds
``features`` (N, L, Dv) for all N frames, their ``timestamps`` (N,) float64 and the ``duration``; any
frame sampling then reads its frames' rows, so the cache covers every set of frame indices. The
times are those of ``frame_times`` (``data.frame_times``); ``vtgllm`` times are part of the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch

from vtgcore.utils.fileio import atomic_write_bytes
from vtgcore.errors import VideoReadError, VTGError
from vtgcore.interfaces import FrameEncoder

FORMAT = "vtgcore-features-1"


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 over every tensor of a module's state dict (names, shapes, dtypes and bytes)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class FeatureCache:
    """Per-video cache of a frozen encoder's per-frame tokens.

    Args:
        root: cache folder (shared by every recipe; keys keep entries apart).
        encoder: the frozen encoder, or None to cache decoded frames.
        encoder_spec: its plugin name and params (part of the key).
        image_size: frame size fed to the encoder.
        resize: ``squash`` or ``pad``.
        mean: normalisation mean.
        std: normalisation std.
        reader: video reader used to decode.
        chunk: frames per encoder call.
        frame_times: ``container`` or ``vtgllm`` (:func:`vtgcore.data.video.frame_seconds`): the
            times stored, and given to an encoder that reads them.
    """

    def __init__(self, root: str | Path, encoder: Optional[FrameEncoder], encoder_spec: Optional[dict[str, Any]], *,
                 image_size: int, resize: str = "squash", mean: Iterable[float] = (0.0, 0.0, 0.0),
                 std: Iterable[float] = (1.0, 1.0, 1.0), reader: str = "auto", chunk: int = 256,
                 frame_times: str = "container") -> None:
        if encoder is not None and any(p.requires_grad for p in encoder.parameters()):
            raise VTGError("the feature cache needs a frozen encoder (set model.encoder.trainable: frozen)")
        self.encoder = encoder
        self.image_size = image_size
        self.resize = resize
        self.mean, self.std = tuple(mean), tuple(std)
        self.reader = reader
        self.chunk = chunk
        from vtgcore.data.video import FRAME_TIMES

        if frame_times not in FRAME_TIMES:
            raise VTGError(f"unknown frame_times {frame_times!r}; allowed: {', '.join(FRAME_TIMES)}")
        self.frame_times = frame_times
        fields = {"format": FORMAT, "encoder": encoder_spec,
                  "weights": weights_digest(encoder) if encoder is not None else None,
                  "image_size": image_size, "resize": resize, "mean": list(self.mean), "std": list(self.std)}
        signature = encoder.cache_signature() if encoder is not None else None
        if signature is not None:  # the field's name predates cache_signature(): kept, so are the keys
            fields["frame_text"] = signature
        if frame_times != "container":  # only then: the keys of existing caches stay as they were
            fields["frame_times"] = frame_times
        self.key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]
        self.folder = Path(root) / self.key
        self.folder.mkdir(parents=True, exist_ok=True)
        info = self.folder / "key.json"
        if not info.exists():
            atomic_write_bytes(info, json.dumps(fields, indent=2, sort_keys=True).encode())

    def file_for(self, video: str | Path) -> Path:
        """The cache file of a video (its path, size and modification time are in the name)."""
        path = Path(video).resolve()
        stat = path.stat() if path.exists() else None
        ident = f"{path}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}"
        return self.folder / f"{hashlib.sha256(ident.encode()).hexdigest()[:24]}.safetensors"

    def has(self, video: str | Path) -> bool:
        """Whether the video's features are cached."""
        return self.file_for(video).is_file()

    @torch.no_grad()
    def compute(self, video: str | Path) -> dict[str, torch.Tensor]:
        """Decode every frame, encode it and store the result.

        Returns:
            ``features`` (N, L, Dv) float32 (or, without an encoder, ``frames`` (N, 3, H, W) uint8),
            ``timestamps`` (N,) float64, ``duration`` () float32.
        """
        from safetensors.torch import save

        from vtgcore.data.transforms import normalize, resize_frames
        from vtgcore.data.video import get_reader, reader_for, vtgllm_frame_times

        reader = get_reader(reader_for(video, self.reader))
        info = reader.probe(video)
        size = (self.image_size, self.image_size) if self.resize == "squash" else None
        frames, times = reader.read(video, list(range(info.num_frames)), size)
        if frames.shape[-2:] != (self.image_size, self.image_size):
            frames = resize_frames(frames, self.image_size, self.resize)
        if self.frame_times == "vtgllm":
            try:
                times = torch.tensor(vtgllm_frame_times(range(info.num_frames), info.fps), dtype=torch.float64)
            except ValueError as exc:
                raise VideoReadError(f"{video}: {exc}") from None
        entry = {"timestamps": times.to(torch.float64).contiguous(), "duration": torch.tensor(float(info.duration))}
        if self.encoder is None:
            entry["frames"] = frames.contiguous()
        else:
            device = next(self.encoder.parameters()).device
            was_training = self.encoder.training
            self.encoder.eval()
            timed = self.encoder.needs_timestamps
            entry["features"] = torch.cat([
                self.encoder(normalize(frames[i:i + self.chunk], self.mean, self.std).to(device),
                             *((entry["timestamps"][i:i + self.chunk].to(device),) if timed else ())).float().cpu()
                for i in range(0, frames.shape[0], self.chunk)]).contiguous()
            self.encoder.train(was_training)
        atomic_write_bytes(self.file_for(video), save(entry))
        return entry

    def get(self, video: str | Path) -> dict[str, torch.Tensor]:
        """Cached features of a video, computed on first use."""
        from safetensors.torch import load_file

        path = self.file_for(video)
        if path.is_file():
            return load_file(str(path))
        return self.compute(video)

    def fill(self, videos: Iterable[str | Path], progress: Optional[Callable[..., None]] = None) -> int:
        """Compute every missing entry; returns how many were computed.

        Args:
            videos: video files (duplicates are computed once).
            progress: called after each video as ``progress(done, total, frames=decoded)``, where
                ``decoded`` counts the frames decoded so far (cached videos decode none).
        """
        videos = list(dict.fromkeys(os.fspath(v) for v in videos))
        computed = decoded = 0
        for done, video in enumerate(videos, 1):
            if not self.has(video):
                decoded += int(self.compute(video)["timestamps"].shape[0])
                computed += 1
            if progress:
                progress(done, len(videos), frames=decoded)
        return computed
