"""``VideoLLM``: composes the seven components and splices video tokens into the LLM's input."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from vtgcore.errors import PlaceholderMismatchError, ShapeError
from vtgcore.interfaces import (FrameEncoder, GroundingStage, LanguageModel, Projector, TimeCodec, TimeEmbedding,
                                TokenCompressor)
from vtgcore.positions import TimePositions, time_position_ids
from vtgcore.types import IGNORE_INDEX, VideoLLMOutput, VisualTokens


class VideoLLM(nn.Module):
    """encode frames -> inject time -> ground -> compress -> project -> replace the K placeholder embeddings.

    On construction the codec's tokens (initialised as the codec asks) and the video placeholder
    token are added to the LLM's vocabulary.

    Args:
        encoder: frames to per-frame tokens.
        time_embedding: time injection.
        compressor: token compression.
        projector: visual width to LLM width.
        llm: the language model.
        time_codec: writes and reads times (not a module).
        video_token: placeholder text the processor expands to K ids.
        encoder_chunk_size: frames per encoder call (0: all at once); bounds activation memory.
        grounding: the grounding stage between time injection and compression (None: none); its
            ``losses`` join the total.
        time_positions: time in the rotary positions (:mod:`vtgcore.positions`; None: off, the
            LLM gets no position ids). Needs a compressor whose every real token has one frame.
        compressor_name: the compressor's registry name, for error messages.
    """

    def __init__(self, encoder: FrameEncoder, time_embedding: TimeEmbedding, compressor: TokenCompressor,
                 projector: Projector, llm: LanguageModel, time_codec: TimeCodec, *,
                 video_token: str = "<video>", encoder_chunk_size: int = 0,
                 grounding: Optional[GroundingStage] = None, time_positions: Optional[TimePositions] = None,
                 compressor_name: Optional[str] = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.time_embedding = time_embedding
        self.compressor = compressor
        self.projector = projector
        self.llm = llm
        self.time_codec = time_codec
        self.video_token = video_token
        self.encoder_chunk_size = encoder_chunk_size
        self.grounding = grounding
        self.time_positions = time_positions
        self.compressor_name = compressor_name or type(compressor).__name__
        self.time_token_ids = llm.add_tokens(time_codec.special_tokens(), init=time_codec.token_init())
        self.video_token_id = llm.add_tokens([video_token], special=True)[0]

    @property
    def tokenizer(self) -> Any:
        """The LLM's tokenizer (with the added tokens)."""
        return self.llm.tokenizer

    def num_video_tokens(self, num_frames: int) -> int:
        """K, the number of video tokens for ``num_frames`` frames."""
        return self.compressor.output_tokens(num_frames, self.encoder.tokens_per_frame)

    def encode_frames(self, frames: torch.Tensor, timestamps: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Run the encoder over all frames, in chunks of ``encoder_chunk_size``.

        Precomputed encoder outputs (from the feature cache) pass through unchanged. An encoder
        with ``needs_timestamps`` also gets each frame's seconds.

        Shape:
            frames: (B, T, 3, H, W) pixels, or (B, T, L, Dv) cached features; timestamps: (B, T)
            -> (B, T, L, Dv)
        """
        if frames.dim() == 4:
            expected = (self.encoder.tokens_per_frame, self.encoder.out_dim)
            if tuple(frames.shape[2:]) != expected:
                raise ShapeError(f"cached features must be (B, T, {expected[0]}, {expected[1]}), got {tuple(frames.shape)}")
            return frames
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ShapeError(f"frames must be (B, T, 3, H, W) or cached features (B, T, L, Dv), got {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        flat = frames.flatten(0, 1)
        step = self.encoder_chunk_size or flat.shape[0]
        if self.encoder.needs_timestamps:
            if timestamps is None or tuple(timestamps.shape) != (b, t):
                raise ShapeError(f"the encoder needs the frame timestamps (B, T) = {(b, t)}, got "
                                 f"{None if timestamps is None else tuple(timestamps.shape)}")
            secs = timestamps.reshape(-1)
            out = torch.cat([self.encoder(flat[i:i + step], secs[i:i + step]) for i in range(0, flat.shape[0], step)])
        else:
            out = torch.cat([self.encoder(flat[i:i + step]) for i in range(0, flat.shape[0], step)])
        return out.reshape(b, t, *out.shape[1:])

    def encode_video(self, frames: torch.Tensor, timestamps: torch.Tensor,
                     frame_mask: Optional[torch.Tensor] = None,
                     prompt: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> VisualTokens:
        """Video to projected video tokens.

        Args:
            frames: pixels or cached encoder features.
            timestamps: seconds of every frame.
            frame_mask: True for real frames.
            prompt: ``(embeddings, mask)`` of the prompt text (:meth:`prompt_text`), needed when the
                grounding stage ``needs_prompt``.

        Shape:
            frames: (B, T, 3, H, W) or cached features (B, T, L, Dv); timestamps, frame_mask: (B, T);
            prompt: (B, S, D), (B, S) -> tokens (B, K, D), mask (B, K), frame_logits (B, T) or None
        """
        if timestamps.shape != frames.shape[:2]:
            raise ShapeError(f"timestamps {tuple(timestamps.shape)} do not match frames {tuple(frames.shape[:2])}")
        tokens = self.encode_frames(frames, timestamps)
        tokens = self.time_embedding(tokens, timestamps, frame_mask)
        frame_logits = None
        if self.grounding is not None:
            if self.grounding.needs_prompt and prompt is None:
                raise ShapeError("this model's grounding stage reads the prompt: encode_video needs the prompt "
                                 "(VideoLLM.prompt_text)")
            tokens, frame_logits = self.grounding(tokens, *(prompt if self.grounding.needs_prompt else (None, None)))
        visual = self.compressor(tokens, frame_mask, timestamps)
        visual.frame_logits = frame_logits
        expected = self.num_video_tokens(frames.shape[1])
        if visual.tokens.shape[1] != expected:
            raise ShapeError(f"compressor returned {visual.tokens.shape[1]} tokens, output_tokens() said {expected}")
        visual.tokens = self.projector(visual.tokens)
        return visual

    def _needs_prompt(self) -> bool:
        return self.grounding is not None and bool(self.grounding.needs_prompt)

    def prompt_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    labels: Optional[torch.Tensor] = None,
                    embeds: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The prompt's token embeddings and which of them the grounding stage reads: real tokens
        that are neither video placeholders, time tokens nor (with ``labels``) answer tokens.

        Args:
            input_ids: token ids with the video placeholders.
            attention_mask: 1 for real tokens.
            labels: target ids, ``IGNORE_INDEX`` outside the answers.
            embeds: ``self.llm.embed(input_ids)`` when the caller has it already.

        Shape:
            input_ids, attention_mask, labels: (B, S) -> (B, S, D), (B, S) bool
        """
        mask = attention_mask.bool() & (input_ids != self.video_token_id)
        if self.time_token_ids:
            mask &= ~torch.isin(input_ids, torch.tensor(self.time_token_ids, device=input_ids.device))
        if labels is not None:
            mask &= labels == IGNORE_INDEX
        return (self.llm.embed(input_ids) if embeds is None else embeds), mask

    def splice(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, visual: VisualTokens,
               embeds: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace the placeholder embeddings by the video tokens; mask tokens of padded frames.

        ``embeds`` is ``self.llm.embed(input_ids)`` when the caller has it already.

        Raises:
            PlaceholderMismatchError: a row does not hold exactly K placeholder ids.

        Shape:
            input_ids, attention_mask: (B, S); visual.tokens: (B, K, D) -> (B, S, D), (B, S)
        """
        is_video = input_ids == self.video_token_id
        counts = is_video.sum(1)
        k = visual.tokens.shape[1]
        if input_ids.shape[0] != visual.tokens.shape[0] or bool((counts != k).any()):
            raise PlaceholderMismatchError(
                f"each row needs exactly {k} video placeholder ids ({self.video_token!r}), found "
                f"{counts.tolist()} for a batch of {visual.tokens.shape[0]} videos")
        embeds = self.llm.embed(input_ids) if embeds is None else embeds
        embeds = embeds.masked_scatter(is_video.unsqueeze(-1), visual.tokens.to(embeds.dtype))
        attention_mask = attention_mask.clone()
        attention_mask[is_video] = visual.mask.reshape(-1).to(attention_mask.dtype)
        return embeds, attention_mask

    def position_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, visual: VisualTokens,
                     timestamps: torch.Tensor, frame_mask: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
        """The LLM's position ids with time in the rotary positions (:func:`vtgcore.positions.time_position_ids`);
        None when ``time_positions`` is off (the LLM then uses its own).

        Args:
            input_ids: token ids with the video placeholders.
            attention_mask: the spliced attention mask (:meth:`splice`).
            visual: the video tokens, with ``frame_index``.
            timestamps: seconds of every frame.
            frame_mask: True for real frames.

        Raises:
            ShapeError: the compressor gives no ``frame_index`` or a real token that mixes frames.

        Shape:
            input_ids, attention_mask: (B, S); visual.frame_index: (B, K); timestamps, frame_mask:
            (B, T) -> (B, S) or None
        """
        if self.time_positions is None:
            return None
        if visual.frame_index is None:
            raise ShapeError(f"model.time_positions needs a compressor that keeps each token's frame; "
                             f"{self.compressor_name!r} gives no frame_index (use identity, mean_pool, diverse, entropy "
                             f"or codebook)")
        bad = visual.mask.bool() & (visual.frame_index < 0)
        if bool(bad.any()):
            raise ShapeError(f"model.time_positions needs a compressor that keeps each token's frame; "
                             f"{self.compressor_name!r} gives tokens that mix frames (frame_index -1: a slot mixes "
                             f"frames; use identity, mean_pool, diverse, entropy or codebook)")
        return time_position_ids(input_ids == self.video_token_id, attention_mask, visual.frame_index, timestamps,
                                 frame_mask, self.time_positions.rate, self.time_positions.spread)

    def prepare_inputs(self, frames: torch.Tensor, timestamps: torch.Tensor, input_ids: torch.Tensor,
                       attention_mask: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                       labels: Optional[torch.Tensor] = None) -> tuple[VisualTokens, torch.Tensor, torch.Tensor]:
        """The LLM's input embeddings: the video encoded (with the prompt when the grounding stage
        ``needs_prompt``; ``labels`` keep the answers out of it) and spliced into the text.

        Shape:
            frames: (B, T, 3, H, W); timestamps, frame_mask: (B, T); input_ids, attention_mask,
            labels: (B, S) -> visual tokens (B, K, D), embeddings (B, S, D), attention mask (B, S)
        """
        prompt = self.prompt_text(input_ids, attention_mask, labels) if self._needs_prompt() else None
        visual = self.encode_video(frames, timestamps, frame_mask, prompt)
        # the prompt's embeddings, when computed for the grounding stage, are the ones spliced into
        embeds, attention_mask = self.splice(input_ids, attention_mask, visual, None if prompt is None else prompt[0])
        return visual, embeds, attention_mask

    def forward(self, frames: torch.Tensor, timestamps: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor, labels: Optional[torch.Tensor] = None,
                frame_mask: Optional[torch.Tensor] = None, return_logits: bool = True) -> VideoLLMOutput:
        """Teacher-forced forward; the loss is the LM loss plus every auxiliary loss.

        Args:
            frames: pixels or cached encoder features.
            timestamps: seconds of every frame.
            input_ids: prompt and answer ids with K video placeholders per row.
            attention_mask: 1 for real tokens.
            labels: target ids, ``IGNORE_INDEX`` (-100) where no loss is taken.
            frame_mask: True for real frames.
            return_logits: False lets an LLM that can (``hf_causal_lm``) compute the head only
                where a label is predicted (training: same loss, no (B, S, V) logits); an LLM that
                cannot ignores it (:meth:`vtgcore.interfaces.LanguageModel.forward`).

        Shape:
            frames: (B, T, 3, H, W); timestamps, frame_mask: (B, T);
            input_ids, attention_mask, labels: (B, S) -> logits (B, S, V) (fewer positions when
            ``return_logits`` is False)
        """
        visual, embeds, attention_mask = self.prepare_inputs(frames, timestamps, input_ids, attention_mask,
                                                             frame_mask, labels)
        positions = self.position_ids(input_ids, attention_mask, visual, timestamps, frame_mask)
        extra = {} if positions is None else {"position_ids": positions}  # off: exactly as before
        out = self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, return_logits=return_logits,
                       **extra)
        aux = dict(visual.aux_losses)
        if self.grounding is not None and labels is not None:
            aux.update(self.grounding.losses(visual.frame_logits, labels, timestamps, frame_mask, self.time_codec,
                                             self.tokenizer))
        loss = None
        if out.loss is not None:
            loss = out.loss + sum(aux.values(), torch.zeros((), device=out.loss.device))
        return VideoLLMOutput(loss=loss, logits=out.logits, lm_loss=out.loss, aux_losses=aux)

    def completion_logprobs(self, frames: torch.Tensor, timestamps: torch.Tensor, input_ids: torch.Tensor,
                            attention_mask: torch.Tensor, completion_mask: torch.Tensor,
                            frame_mask: Optional[torch.Tensor] = None, temperature: float = 1.0,
                            group: int = 1) -> torch.Tensor:
        """Log-probabilities of generated tokens under the model, as RL post-training scores them.

        A row is a left-padded generation prompt followed by the tokens generated for it
        (:meth:`generate`), padding after them. The model sees the row as generation saw it: the
        grounding stage reads the prompt only (the completion is kept out as answers are in
        training), positions count real tokens (transformers' generation positions for left-padded
        prompts) or follow time (``time_positions``), and the logits are divided by the sampling
        ``temperature``. So for the model that generated them these are the log-probabilities the
        tokens were sampled with (before top-p truncation).

        Args:
            frames: pixels or cached encoder features.
            timestamps: seconds of every frame.
            input_ids: prompt and completion ids, K video placeholders per row.
            attention_mask: 1 for real tokens (prompt and completion).
            completion_mask: True at the completion tokens to score.
            frame_mask: True for real frames.
            temperature: the sampling temperature.
            group: rows per video: row ``i`` answers video ``i // group`` (the G answers of a
                prompt share its video, which is encoded once).

        Shape:
            frames: (B, T, 3, H, W) or (B, T, L, Dv); timestamps, frame_mask: (B, T);
            input_ids, attention_mask, completion_mask: (B * group, S) -> (B * group, S) float32:
            log p(token s | tokens before s) where ``completion_mask``, 0 elsewhere (and at s = 0)
        """
        scored = completion_mask.bool()
        labels = torch.where(scored, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
        # a sampled answer may hold the video placeholder's id: generation fed it back as its plain
        # embedding, so only the prompt's placeholders are video slots
        slots = torch.where(scored & (input_ids == self.video_token_id), torch.full_like(input_ids, -1), input_ids)
        embeds = self.llm.embed(input_ids)
        prompt = None
        if self._needs_prompt():  # the rows of a group share their prompt (answers are left out of it)
            prompt = self.prompt_text(slots[::group], attention_mask[::group], labels[::group], embeds[::group])
        visual = self.encode_video(frames, timestamps, frame_mask, prompt)
        if group > 1:
            visual = VisualTokens(*(None if t is None else t.repeat_interleave(group, 0) for t in
                                    (visual.tokens, visual.mask, visual.frame_index)),
                                  frame_logits=None if visual.frame_logits is None else
                                  visual.frame_logits.repeat_interleave(group, 0))
            timestamps = timestamps.repeat_interleave(group, 0)
            frame_mask = None if frame_mask is None else frame_mask.repeat_interleave(group, 0)
        embeds, mask = self.splice(slots, attention_mask, visual, embeds)
        positions = self.position_ids(slots, mask, visual, timestamps, frame_mask)
        if positions is None:  # as transformers' generate() numbers a left-padded row
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        logits = self.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits
        target = scored[:, 1:]
        picked = logits[:, :-1][target].float() / temperature
        chosen = torch.log_softmax(picked, -1).gather(-1, input_ids[:, 1:][target].unsqueeze(-1)).squeeze(-1)
        out = torch.zeros(target.shape, dtype=chosen.dtype, device=chosen.device).masked_scatter(target, chosen)
        return torch.cat([torch.zeros_like(out[:, :1]), out], 1)

    @torch.no_grad()
    def generate(self, frames: torch.Tensor, timestamps: torch.Tensor, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor, frame_mask: Optional[torch.Tensor] = None,
                 **generate_kwargs: Any) -> torch.Tensor:
        """Batched generation from left-padded prompts; returns only the new ids. With
        ``time_positions`` on, the LLM also gets the prompt's :meth:`position_ids` and the new
        tokens continue after each row's largest position.

        Shape:
            frames: (B, T, 3, H, W); timestamps: (B, T); input_ids, attention_mask: (B, S) -> (B, new)
        """
        visual, embeds, attention_mask = self.prepare_inputs(frames, timestamps, input_ids, attention_mask, frame_mask)
        positions = self.position_ids(input_ids, attention_mask, visual, timestamps, frame_mask)
        if positions is not None:  # off: exactly as before
            generate_kwargs["position_ids"] = positions
        return self.llm.generate(embeds, attention_mask, **generate_kwargs)
