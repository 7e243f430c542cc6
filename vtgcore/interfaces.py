"""Abstract interfaces of the eight plugin kinds. They hold the contracts and no logic,
except the small defaults of optional members (documented in ``docs/plugin_hooks.md``).

Shape notation: B batch, T frames, H = W image size, L tokens per frame, Dv encoder width,
K video tokens after compression, D LLM hidden size, S text length, V vocabulary size.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Optional, Sequence

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
        needs_timestamps: True when ``forward`` reads ``timestamps`` (N,), the seconds of each
            frame (e.g. a Q-Former that reads the frame's time as text); the model then passes them.
            Optional (default False).
    """

    out_dim: int
    tokens_per_frame: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    needs_timestamps: bool = False

    @abc.abstractmethod
    def forward(self, frames: torch.Tensor, timestamps: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Encode a batch of frames.

        Args:
            frames: normalised frames.
            timestamps: seconds of each frame. Passed only when :attr:`needs_timestamps` is True, so
                an encoder that does not read times may define ``forward(self, frames)`` alone.

        Returns:
            Per-frame tokens.

        Shape:
            frames: (N, 3, H, W); timestamps: (N,) -> (N, L, Dv)
        """

    def set_time_writer(self, encode: Callable[[float], str], special_tokens: Sequence[str] = (),
                        token_init: Optional[dict[str, str]] = None) -> None:
        """Receive the recipe's time codec (optional; default: nothing).

        The model builder calls it once for every encoder, after the model is joined and before
        the checkpoints load, with the codec's ``encode``, ``special_tokens()`` and ``token_init()``
        (an encoder that writes frame times as text writes them the recipe's way and adds the
        codec's tokens to its own vocabulary). It must not change :attr:`tokens_per_frame`.

        Args:
            encode: seconds -> text.
            special_tokens: the codec's new vocabulary entries.
            token_init: new token -> existing text whose embedding row initialises it.
        """

    def cache_signature(self) -> Any:
        """What, besides the plugin's name, params and weights, changes this encoder's output
        (optional; default None: nothing).

        A JSON-serialisable value, part of the feature cache key: e.g. the frame texts and token
        ids an encoder with a time writer produces for a few probe times, so that another time
        codec or tokenizer never reads a stale cache. Called after :meth:`set_time_writer`.
        """
        return None


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


class GroundingStage(nn.Module, abc.ABC):
    """Conditions the time-injected video tokens on the prompt, between time injection and
    compression (built with ``dim=Dv`` and ``text_dim=D``). The ``none`` plugin passes the tokens
    through; ``query_gate`` gates them by the query and adds a frame grounding loss.

    Attributes:
        needs_prompt: True when :meth:`forward` reads the prompt embeddings; False lets the model
            skip them (``text`` and ``text_mask`` are then None).
    """

    needs_prompt: bool = True

    @abc.abstractmethod
    def forward(self, tokens: torch.Tensor, text: Optional[torch.Tensor],
                text_mask: Optional[torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Condition the tokens on the prompt.

        Args:
            tokens: time-injected per-frame tokens.
            text: the prompt's token embeddings (None when ``needs_prompt`` is False).
            text_mask: True for the prompt tokens to read: real tokens that are neither video
                placeholders, time tokens nor answer tokens.

        Returns:
            The conditioned tokens and a score per frame (None when the stage scores none).

        Shape:
            tokens: (B, T, L, Dv); text: (B, S, D); text_mask: (B, S)
            -> tokens (B, T, L, Dv), frame logits (B, T) or None
        """

    @abc.abstractmethod
    def losses(self, frame_logits: Optional[torch.Tensor], labels: torch.Tensor, timestamps: torch.Tensor,
               frame_mask: Optional[torch.Tensor], time_codec: "TimeCodec", tokenizer: Any) -> dict[str, torch.Tensor]:
        """Auxiliary training losses, added to the LM loss (empty: none).

        Args:
            frame_logits: what :meth:`forward` returned as frame scores.
            labels: target ids, ``vtgcore.types.IGNORE_INDEX`` outside the answers.
            timestamps: seconds of every frame.
            frame_mask: True for real frames.
            time_codec: the recipe's codec, to read the answers' times by token id.
            tokenizer: the LLM's tokenizer.

        Shape:
            frame_logits: (B, T); labels: (B, S); timestamps, frame_mask: (B, T) -> {name: scalar}
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

    def decode_spans(self, ids: Sequence[int], tokenizer: Any) -> list[tuple[int, int, float]]:
        """Where each time of :meth:`decode_ids` is written (optional; a default is provided).

        Returns:
            One ``(start, end, seconds)`` per time, in order, with ``ids[start:end]`` its tokens:
            the seconds are exactly ``decode_ids(ids, tokenizer)``; ``0 <= start < end <=
            len(ids)``; starts and ends never decrease; the spans are disjoint, except that times
            no cut separates share one span. Never raises.

        The default derives the spans from :meth:`decode_ids` alone, so it is right for any codec
        that writes each time as a contiguous run of ids: it cuts ``ids`` wherever decoding the two
        sides separately reads the same times as the whole; a time's span runs from the last cut
        with the times before it on the left to the first cut with it on the left. It calls
        ``decode_ids`` up to ``2 * (len(ids) + 1)`` times; override it when the codec can find its
        runs in one pass.
        """
        ids = [int(i) for i in ids]
        values = self.decode_ids(ids, tokenizer)
        if not values:
            return []
        cuts: list[tuple[int, int]] = []  # (position, number of times left of it)
        for cut in range(len(ids) + 1):
            head = self.decode_ids(ids[:cut], tokenizer) if cut else []
            if head != values[:len(head)]:
                continue
            tail = self.decode_ids(ids[cut:], tokenizer) if cut < len(ids) else []
            if head + tail == values:
                cuts.append((cut, len(head)))
        spans: list[tuple[int, int, float]] = []
        for k, seconds in enumerate(values):
            start = max(c for c, n in cuts if n <= k)  # 0 is always a cut, with no time left of it
            end = min(c for c, n in cuts if n > k and c > start)  # so is len(ids), with every time
            spans.append((start, end, seconds))
        return spans


class TokenCompressor(nn.Module, abc.ABC):
    """Compresses the video's tokens to a fixed number K (built with ``dim=Dv``)."""

    @abc.abstractmethod
    def output_tokens(self, num_frames: int, tokens_per_frame: int) -> int:
        """K for T frames of L tokens, known before the forward."""

    def frame_groups(self, num_frames: int, tokens_per_frame: int) -> Optional[list[tuple[int, int]]]:
        """Which frame each run of the K output tokens belongs to, known before the forward
        (optional; default None: the output mixes frames or its order depends on the content).

        The interleaved video layout (``model.prompt.video_layout: interleaved``) writes the time
        of a group's frame before the group's tokens; it needs this, and is refused for a
        compressor that returns None.

        Returns:
            ``[(frame, n), ...]`` in output order: the next ``n`` tokens all carry ``frame`` as
            their ``frame_index`` in :meth:`forward`'s output (frames of a padded video
            included); the ``n`` sum to :meth:`output_tokens`, every ``n >= 1`` and the frames
            increase. None when the output tokens do not follow frames so.
        """
        return None

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
    def add_tokens(self, tokens: Sequence[str], init: Optional[dict[str, str]] = None,
                   special: bool = False) -> list[int]:
        """Add tokens to the vocabulary, resize embeddings and LM head, initialise rows from ``init``.

        Args:
            tokens: new tokens; ones already in the vocabulary keep their ids.
            init: new token -> existing text whose (last token's) embedding row initialises it.
            special: register them as special tokens: never split by the tokenizer and dropped by
                ``decode(skip_special_tokens=True)`` (the model adds its video placeholder so).

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
                labels: Optional[torch.Tensor] = None, return_logits: bool = True,
                position_ids: Optional[torch.Tensor] = None) -> Any:
        """Run the LM; returns an object with ``loss`` (None without labels) and ``logits``.

        Args:
            inputs_embeds: input embeddings.
            attention_mask: 1 for real tokens.
            labels: target ids, -100 where no loss is taken (None: no loss).
            return_logits: False (the model passes it in training) allows computing the head only
                at the positions that predict a label, with the same loss; ``logits`` may then
                hold only those positions. An LLM that cannot skip logits ignores it and returns
                the full logits.
            position_ids: the position of every token (None: the default ``0, 1, ...`` over the
                real tokens). The model passes them only with ``model.time_positions`` on
                (:mod:`vtgcore.positions`); a rotary LLM uses them as its rotary positions, an LLM
                without rotary positions may ignore them.

        Shape:
            inputs_embeds: (B, S, D); attention_mask, labels, position_ids: (B, S) -> logits
            (B, S, V), or (B, P, V) for P <= S positions when ``return_logits`` is False
        """

    @abc.abstractmethod
    def generate(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: Optional[torch.Tensor] = None, **generate_kwargs: Any) -> torch.Tensor:
        """Generate continuations; returns only the new ids.

        Args:
            inputs_embeds: prompt embeddings (left-padded).
            attention_mask: 1 for real tokens.
            position_ids: the prompt tokens' positions, as for :meth:`forward` (None: the
                default). The new tokens continue from the last prompt position + 1, + 2, ...
                of each row; the model's positions end every row at its largest position (the
                text after the video continues after it). An LLM without rotary positions may
                ignore them.
            generate_kwargs: transformers generation settings.

        Shape:
            inputs_embeds: (B, S, D); attention_mask, position_ids: (B, S) -> (B, new)
        """

    @abc.abstractmethod
    def apply_lora(self, r: int, alpha: int, dropout: float, target_modules: Sequence[str],
                   extra_trainable: Sequence[str] = ()) -> None:
        """Freeze the base weights and add trainable LoRA adapters."""


class Reward(abc.ABC):
    """Scores one generated answer against its item's ground truth (a plain object, not a module;
    built by :func:`vtgcore.build.build_reward` with the wiring ``build_reward``)."""

    @abc.abstractmethod
    def reward(self, item: Any, answer_text: str, answer_ids: Sequence[int], codec: TimeCodec) -> float:
        """The reward of one answer.

        Args:
            item: the item the answer is for, with the ground-truth fields of
                :class:`vtgcore.data.formats.EvalItem` (``task``, ``duration``, ``windows``,
                ``captions``, ``saliency``, ``clip_ids``), all in seconds.
            answer_text: the answer as evaluation reads it: the generated ids rendered by
                :func:`vtgcore.eval.generate.render_times`, so that every time was located by token
                id with ``codec`` and is written as a decimal number of seconds.
            answer_ids: the generated ids (only the new ones).
            codec: the recipe's time codec.

        Returns:
            A finite float. Never raises on any answer: an empty, unparseable or garbage answer
            scores what the reward gives to no prediction (0.0 for the first-party rewards).
        """
