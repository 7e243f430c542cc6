"""Data types handed between components."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import math

import numpy as np
import torch

from vtgcore.errors import TimeCodecError

IGNORE_INDEX = -100
"""Label value of the positions that take no loss (prompt, video, padding), as in transformers."""


@dataclass
class VisualTokens:
    """Output of a compressor (and, after projection, of :meth:`VideoLLM.encode_video`).

    Attributes:
        tokens: (B, K, D) video tokens.
        mask: (B, K) bool, False for tokens that come only from padded frames.
        frame_index: (B, K) long frame each token comes from, -1 when it mixes frames; or None.
        aux_losses: extra losses added to the LM loss (name them ``..._loss``; under mmengine a key
            without ``"loss"`` is renamed ``loss_<key>`` so that it is optimised, not only logged).
        frame_logits: (B, T) how well each frame matches the prompt, from ``model.grounding``;
            None without it.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    frame_index: Optional[torch.Tensor] = None
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)
    frame_logits: Optional[torch.Tensor] = None


@dataclass
class VideoLLMOutput:
    """Output of :meth:`VideoLLM.forward`.

    Attributes:
        loss: scalar, LM cross-entropy plus every auxiliary loss; None without labels.
        logits: (B, S, V) next-token logits (only the positions that predict a label when the
            forward ran with ``return_logits=False``).
        lm_loss: scalar LM cross-entropy alone; None without labels.
        aux_losses: auxiliary losses from the compressor.
    """

    loss: Optional[torch.Tensor]
    logits: torch.Tensor
    lm_loss: Optional[torch.Tensor] = None
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)


def seconds_list(times: Any) -> list[float]:
    """Times as Python floats, float32 ones read back as the decimal they stand for.

    A float64 tensor or array (or a list of floats) is returned as it is. A float32 value is an
    approximation of the time that was written into it: 0.7 s is stored as 0.699999988..., which
    a time codec that truncates to tenths would write as 0.6. Each float32 value is therefore
    read as the shortest decimal that round-trips to it (``0.7``), which is the time exactly
    whenever it had at most 7 significant digits, and otherwise is within float32 precision of it.
    Half and bfloat16 values go through float32 first.

    Args:
        times: a tensor, array or sequence of seconds.

    Returns:
        The times as float64 Python floats.

    Shape:
        times: (T,) -> T floats
    """
    if isinstance(times, torch.Tensor):
        if times.dtype == torch.float64 or not times.is_floating_point():
            return [float(t) for t in times.reshape(-1).tolist()]
        times = times.detach().to(torch.float32).cpu().numpy()
    array = np.asarray(times)
    if array.dtype == np.float64 or not np.issubdtype(array.dtype, np.floating):
        return [float(t) for t in array.reshape(-1).tolist()]
    return [float(str(v)) for v in array.reshape(-1).astype(np.float32)]


def checked_seconds(seconds: Any) -> float:
    """A time a codec is asked to write, as a float: finite and >= 0.

    Raises:
        vtgcore.errors.TimeCodecError: not a number, not finite, or negative (the message quotes it).
    """
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise TimeCodecError(f"time must be a number of seconds, got {seconds!r}") from None
    if not math.isfinite(value) or value < 0:
        raise TimeCodecError(f"time must be a finite number >= 0 seconds, got {seconds!r}")
    return value
