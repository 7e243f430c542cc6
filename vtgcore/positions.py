"""Time in the rotary positions (issue 21): the video tokens' position ids follow their frame's
absolute time, as the temporal axis of Qwen2.5-VL's MRoPE does, and the text after the video
continues after the largest video position.

The rule, per row, over its real tokens only (``attention_mask`` 1; every other position gets 1,
as transformers gives padding, and is masked anyway):

* text before the first video token: ``0, 1, ..., n - 1``; ``offset = n``;
* video token of frame ``f`` (``frame_index``), seconds ``s_f``: ``offset + start_f`` with
  ``start_f = round(s_f * rate)`` (``rate``: position units per second; nearest integer, halves
  to even as ``torch.round``), plus, with ``spread="spread"``, ``floor(i * width_f / n_f)`` for the
  frame's ``i``-th token (0-based, in sequence order) of its ``n_f`` real tokens, where
  ``width_f = start_{f+1} - start_f`` is the frame's slot up to the next frame (``f + 1`` a real
  frame), else the previous frame's width, else 1 (a single frame), never below 0. With
  ``spread="share"`` every token of a frame has the frame's position;
* any other real token after the first video token (text after the video, or between frames):
  the largest position of the earlier real tokens of its row + 1.

A prompt that ends with text therefore ends at its row's largest position, and the generated
tokens continue from there (:meth:`vtgcore.interfaces.LanguageModel.generate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vtgcore.errors import ShapeError

SPREADS = ("share", "spread")
"""How the tokens of one frame sit in its slot: all at the frame's position, or spread evenly."""


@dataclass(frozen=True)
class TimePositions:
    """The model's time-position setting (built from the recipe's ``model.time_positions``).

    Attributes:
        rate: position units per second (> 0).
        spread: ``share`` or ``spread`` (see the module docstring).
    """

    rate: float = 1.0
    spread: str = "share"

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.rate == float("inf"):
            raise ValueError(f"time positions: rate must be a finite number > 0, got {self.rate}")
        if self.spread not in SPREADS:
            raise ValueError(f"time positions: spread must be one of {', '.join(SPREADS)}, got {self.spread!r}")


def time_position_ids(is_video: torch.Tensor, attention_mask: torch.Tensor, frame_index: torch.Tensor,
                      timestamps: torch.Tensor, frame_mask: torch.Tensor | None, rate: float,
                      spread: str = "share") -> torch.Tensor:
    """Position ids in which the video tokens follow their frame's absolute time (module docstring).

    Args:
        is_video: True at the K video tokens of each row, in the order of the compressor's output.
        attention_mask: 1 for real tokens (a video token of a padded frame may be 0).
        frame_index: the frame of each real video token (``VisualTokens.frame_index``); ignored at
            masked video tokens.
        timestamps: seconds of every frame.
        frame_mask: True for real frames (None: all real).
        rate: position units per second.
        spread: ``share`` or ``spread``.

    Returns:
        Long position ids; 1 at masked positions.

    Raises:
        ShapeError: shapes disagree, a row does not hold K video tokens, or a real video token has
            no frame (``frame_index`` -1 or out of range).

    Shape:
        is_video, attention_mask: (B, S); frame_index: (B, K); timestamps, frame_mask: (B, T)
        -> (B, S)
    """
    TimePositions(rate, spread)
    b, s = is_video.shape
    k = frame_index.shape[1]
    t = timestamps.shape[1]
    if attention_mask.shape != (b, s) or frame_index.shape[0] != b or timestamps.shape[0] != b:
        raise ShapeError(f"time positions: is_video {tuple(is_video.shape)}, attention_mask "
                         f"{tuple(attention_mask.shape)}, frame_index {tuple(frame_index.shape)} and timestamps "
                         f"{tuple(timestamps.shape)} do not agree")
    counts = is_video.sum(1)
    if bool((counts != k).any()):
        raise ShapeError(f"time positions: each row needs {k} video tokens, found {counts.tolist()}")
    real = attention_mask.bool()
    frames_real = torch.ones(b, t, dtype=torch.bool) if frame_mask is None else frame_mask.bool().cpu()
    secs = timestamps.detach().to(torch.float64).cpu()
    starts = torch.round(secs * float(rate)).long()  # (B, T)
    out = torch.ones(b, s, dtype=torch.long)
    video_cols = is_video.nonzero()[:, 1].reshape(b, k).cpu()  # each row's video columns, in order
    real_cpu, index_cpu, video_cpu = real.cpu(), frame_index.cpu().long(), is_video.cpu()
    for row in range(b):
        cols = video_cols[row]
        real_video = real_cpu[row, cols]
        frames = index_cpu[row]
        bad = real_video & ((frames < 0) | (frames >= t))
        if bool(bad.any()):
            raise ShapeError(f"time positions: video token {int(bad.nonzero()[0, 0])} of row {row} has no single "
                             f"frame (frame_index {int(frames[bad][0])}); its slot mixes frames")
        # the position of each real video token relative to the offset
        rel = torch.zeros(k, dtype=torch.long)
        safe = frames.clamp(0, t - 1)
        rel[real_video] = starts[row, safe[real_video]]
        if spread == "spread":
            real_f = frames_real[row]
            for f in safe[real_video].unique().tolist():
                mine = (real_video & (frames == f)).nonzero().squeeze(1)
                if f + 1 < t and bool(real_f[f + 1]):
                    width = int(starts[row, f + 1] - starts[row, f])
                elif f >= 1 and bool(real_f[f - 1]):
                    width = int(starts[row, f] - starts[row, f - 1])
                else:
                    width = 1
                width = max(width, 0)
                n = mine.numel()
                rel[mine] += torch.div(torch.arange(n) * width, n, rounding_mode="floor")
        rel_at = dict(zip(cols.tolist(), rel.tolist()))
        first_video = int(cols[0]) if k else s
        is_real, video = real_cpu[row].tolist(), video_cpu[row].tolist()
        positions = [1] * s
        offset, largest = 0, -1
        for col in range(s):
            if not is_real[col]:
                continue
            if col < first_video:
                pos = offset
                offset += 1
            elif video[col]:
                pos = offset + rel_at[col]
            else:
                pos = largest + 1
            positions[col] = pos
            largest = max(largest, pos)
        out[row] = torch.tensor(positions, dtype=torch.long)
    return out.to(is_video.device)
