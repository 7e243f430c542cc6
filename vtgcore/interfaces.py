"""Abstract interfaces of the six plugin kinds. They hold no logic, only the contracts.

Shape notation: B batch, T frames, H = W image size, L tokens per frame, Dv encoder width,
K video tokens after compression, D LLM hidden size, S text length, V vocabulary size.
"""

from __future__ import annotations

import abc
from typing import Any, Optional, Sequence

import torch
from torch import nn

from vtgcore.types import VisualTokens


class FrameEncoder(nn.Module, abc.ABC):
    """Frames to per-frame tokens.

    Attributes:
        out_dim: Dv.
        tokens_per_frame: L.
        image_size: H = W expected at the input.
        mean: per-channel normalisation mean for pixels in [0, 1].
        std: per-channel normalisation std.
        needs_timestamps: True when ``forward`` also takes ``timestamps`` (N,), the seconds of each
            frame (e.g. a Q-Former that reads the frame's time as text); the model then passes them.
    """

    out_dim: int
    tokens_per_frame: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    needs_timestamps: bool = False

    @abc.abstractmethod
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Encode a batch of frames.

        Args:
            frames: normalised frames.

        Returns:
            Per-frame tokens.

        Shape:
            frames: (N, 3, H, W) -> (N, L, Dv)
        """


class TimeEmbedding(nn.Module, abc.ABC):
    """Injects each frame's time into its visual tokens (built with ``dim=Dv``)."""

    @abc.abstractmethod
    def forward(self, tokens: torch.Tensor, timestamps: torch.Tensor,
                frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Add time information.

        Args:
            tokens: per-frame tokens.
            timestamps: seconds of every frame.
            frame_mask: True for real frames, False for padding.

        Shape:
            tokens: (B, T, L, Dv); timestamps: (B, T); frame_mask: (B, T) -> (B, T, L, Dv)
        """


class TimeCodec(abc.ABC):
    """Writes seconds as text and reads them back from generated token ids (not a module)."""

    @abc.abstractmethod
    def special_tokens(self) -> list[str]:
        """New vocabulary entries this codec needs (may be empty)."""

    @abc.abstractmethod
    def token_init(self) -> dict[str, str]:
        """New token -> existing text whose embedding row initialises it (empty: library default)."""

    @abc.abstractmethod
    def encode(self, seconds: float) -> str:
        """The text for a time in seconds.

        Raises:
            vtgcore.errors.TimeCodecError: the time cannot be written by this codec.
        """

    @abc.abstractmethod
    def decode_ids(self, ids: Sequence[int], tokenizer: Any) -> list[float]:
        """Every time written in a sequence of token ids, in order, in seconds. Never raises."""


class TokenCompressor(nn.Module, abc.ABC):
    """Compresses the video's tokens to a fixed number K (built with ``dim=Dv``)."""

    @abc.abstractmethod
    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        """K for T frames of L tokens, known before the forward."""

    @abc.abstractmethod
    def forward(self, tokens: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                timestamps: Optional[torch.Tensor] = None) -> VisualTokens:
        """Compress.

        Args:
            tokens: time-injected per-frame tokens.
            frame_mask: True for real frames.
            timestamps: seconds of every frame.

        Shape:
            tokens: (B, T, L, Dv); frame_mask, timestamps: (B, T) -> tokens (B, K, Dv), mask (B, K)
        """


class Projector(nn.Module, abc.ABC):
    """Maps the visual width to the LLM width (built with ``in_dim`` and ``out_dim``)."""

    @abc.abstractmethod
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Project.

        Shape:
            tokens: (B, K, Dv) -> (B, K, D)
        """


class LanguageModel(nn.Module, abc.ABC):
    """A causal LM that takes input embeddings.

    Attributes:
        tokenizer: a Hugging Face tokenizer (``bos_token_id``, ``eos_token_id``, ``pad_token_id``).
        hidden_size: D.
    """

    tokenizer: Any
    hidden_size: int

    @abc.abstractmethod
    def add_tokens(self, tokens: Sequence[str], init: Optional[dict[str, str]] = None) -> list[int]:
        """Add tokens to the vocabulary, resize embeddings and LM head, initialise rows from ``init``.

        Returns:
            The ids of ``tokens``, in order.
        """

    @abc.abstractmethod
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings.

        Shape:
            input_ids: (B, S) -> (B, S, D)
        """

    @abc.abstractmethod
    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                labels: Optional[torch.Tensor] = None) -> Any:
        """Run the LM; returns an object with ``loss`` (None without labels) and ``logits``.

        Shape:
            inputs_embeds: (B, S, D); attention_mask, labels: (B, S) -> logits (B, S, V)
        """

    @abc.abstractmethod
    def generate(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                 **generate_kwargs: Any) -> torch.Tensor:
        """Generate continuations; returns only the new ids.

        Shape:
            inputs_embeds: (B, S, D); attention_mask: (B, S) -> (B, new)
        """

    @abc.abstractmethod
    def apply_lora(self, r: int, alpha: int, dropout: float, target_modules: Sequence[str],
                   extra_trainable: Sequence[str] = ()) -> None:
        """Freeze the base weights and add trainable LoRA adapters."""
