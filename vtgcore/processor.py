"""The processor: chat prompt rendering, times written by the codec, placeholder expansion, labels.

Times inside conversation text are written as ``<time>12.3</time>`` (seconds); the processor hands
each to the time codec, so the same data trains every codec. The video placeholder (``<video>`` by
default, at most once per conversation, prepended to the first question when absent) is expanded to
exactly K placeholder ids (``video_layout: interleaved``: each frame group's time, then its
placeholder ids; still K in all). Text pieces are tokenized separately and concatenated, so labels mask the
prompt exactly: only answers and their end-of-sequence token are supervised. ``layout: vtgllm``
(the paper's recipes) instead writes and tokenizes the original VTG-LLM's strings exactly
(:class:`PromptConfig`; tests/test_replication_prompt.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

from vtgcore.errors import ShapeError, VTGError
from vtgcore.interfaces import TimeCodec
from vtgcore.types import IGNORE_INDEX  # noqa: F401  (re-exported: the processor writes the labels)

TIME_MARK = re.compile(r"<time>\s*([^<]*?)\s*</time>")


@dataclass
class PromptConfig:
    """How prompts are rendered.

    Attributes:
        system: system prompt (VTG-LLM trains with a single space).
        timestamps_in_prompt: tell the model the time of every sampled frame (VTG-LLM does).
        max_length: longest token sequence; longer training texts are cut at the end.
        chat_template: ``llama2`` (LLaMA-2 chat, as the original) or ``tokenizer`` (the
            tokenizer's own chat template).
        video_position: ``first`` (video, frame times, then the instruction: the original) or
            ``last`` (instruction, frame times, then the video, so that the causal LLM's video
            positions can attend to the query).
        video_template: the text that stands for the video in the first user turn; ``{video}``
            is where the K video ids go. ``{video}`` (default) writes the ids alone; VTG-LLM
            wraps them as ``<Video>{video}</Video>``.
        layout: how the first turn is joined and tokenized. ``compact`` (default): the video,
            the frame-time sentence (ending ``seconds.``) and the instruction joined by single
            spaces; text pieces between the video ids and the answers tokenized separately, BOS
            written as ``<s>`` text. ``vtgllm``: the original's exact strings and tokenization:
            the sentence ends ``seconds. `` (with its space) and the instruction follows it
            directly in training (``preprocess_multimodal``) and after one more space at
            evaluation (``Chat.ask``); at evaluation the prompt is split at the video and each
            piece tokenized on its own, the first with the tokenizer's BOS
            (``get_context_emb``); in training the whole conversation is one string (video
            placeholders included, answers ending `` </s>``) tokenized once, and labels mask
            the instructions by the original's round rule (``preprocess_for_llama_v2``).
            Needs ``chat_template: llama2`` and ``video_position: first``.
        video_layout: where the K video ids go. ``block`` (default): one run of K ids, after (or,
            with ``timestamps_in_prompt``, before) one sentence listing every frame's time.
            ``interleaved`` (TimeLens / Qwen3-VL style): for every frame group of the compressor
            (:meth:`vtgcore.interfaces.TokenCompressor.frame_groups`) its time written by
            ``frame_time_template``, then its tokens: ``0.0 seconds:<v><v>2.5 seconds:<v><v>...``;
            each frame's text tokenized on its own. The frame-time sentence is then never written
            (``timestamps_in_prompt`` is ignored: every time is already next to its frame), and
            the frames of a padded batch beyond a video's own get their ids with no time. Needs a
            compressor that keeps each token's frame (identity, mean_pool) and ``layout:
            compact``.
        frame_time_template: with ``video_layout: interleaved``, the text before each frame
            group's tokens; ``{time}`` (once) is the time codec's writing of the frame's seconds
            (with absolute time tokens, the codec's tokens).
    """

    system: str = " "
    timestamps_in_prompt: bool = True
    max_length: int = 2048
    chat_template: str = "llama2"
    video_position: str = "first"
    video_template: str = "{video}"
    layout: str = "compact"
    video_layout: str = "block"
    frame_time_template: str = "{time} seconds:"


LAYOUTS = ("compact", "vtgllm")
VIDEO_LAYOUTS = ("block", "interleaved")

#: The system prompt of the original's evaluation (``evaluate.py`` ``generate``); its training
#: uses a single space.
VTGLLM_EVAL_SYSTEM = ("You are able to understand the visual content that the user provides. "
                      "Follow the instructions carefully and explain your answers in detail.")


def format_times(text: str, codec: TimeCodec) -> str:
    """Replace every ``<time>seconds</time>`` in ``text`` with the codec's writing of it.

    Raises:
        VTGError: a marker does not hold a number.
    """
    def sub(match: re.Match) -> str:
        try:
            seconds = float(match.group(1))
        except ValueError:
            raise VTGError(f"time marker {match.group(0)!r} does not hold a number of seconds") from None
        return codec.encode(seconds)

    return TIME_MARK.sub(sub, text)


def time_mark(seconds: float) -> str:
    """The marker the processor turns into codec text: ``<time>12.3</time>``."""
    return f"<time>{float(seconds):g}</time>"


class VideoLLMProcessor:
    """Turns conversations plus frame times into ``input_ids``, ``attention_mask`` and ``labels``.

    Args:
        tokenizer: the LLM's tokenizer (with the video token and codec tokens already added).
        time_codec: writes every time.
        num_video_tokens: K, or a function of the number of frames giving K.
        video_token: the placeholder text.
        prompt: rendering options.
        frame_groups: the number of frames T -> the compressor's ``frame_groups(T, L)``
            (:meth:`vtgcore.interfaces.TokenCompressor.frame_groups`); needed by
            ``video_layout: interleaved`` only.
        compressor: the compressor's plugin name, for error messages.
    """

    def __init__(self, tokenizer: Any, time_codec: TimeCodec, num_video_tokens: int | Callable[[int], int],
                 video_token: str = "<video>", prompt: PromptConfig | None = None, *,
                 frame_groups: Callable[[int], Optional[list[tuple[int, int]]]] | None = None,
                 compressor: str = "") -> None:
        self.tokenizer = tokenizer
        self.time_codec = time_codec
        self.num_video_tokens = num_video_tokens
        self.frame_groups = frame_groups
        self.compressor = compressor
        self.video_token = video_token
        self.video_token_id = int(tokenizer.convert_tokens_to_ids(video_token))
        self.prompt = prompt or PromptConfig()
        if self.prompt.video_position not in ("first", "last"):
            raise VTGError(f"model.prompt.video_position must be 'first' or 'last', got {self.prompt.video_position!r}")
        if self.prompt.layout not in LAYOUTS:
            raise VTGError(f"model.prompt.layout must be one of {', '.join(LAYOUTS)}, got {self.prompt.layout!r}")
        if self.prompt.video_template.count("{video}") != 1:
            raise VTGError(f"model.prompt.video_template must hold '{{video}}' once, got {self.prompt.video_template!r}")
        if self.prompt.layout == "vtgllm" and (self.prompt.chat_template != "llama2"
                                               or self.prompt.video_position != "first"):
            raise VTGError("model.prompt.layout 'vtgllm' writes the original's LLaMA-2 prompt: it needs "
                           "chat_template 'llama2' and video_position 'first'")
        if self.prompt.video_layout not in VIDEO_LAYOUTS:
            raise VTGError(f"model.prompt.video_layout must be one of {', '.join(VIDEO_LAYOUTS)}, "
                           f"got {self.prompt.video_layout!r}")
        if self.prompt.video_layout == "interleaved":
            if self.prompt.layout != "compact":
                raise VTGError("model.prompt.video_layout 'interleaved' needs layout 'compact' (layout "
                               f"{self.prompt.layout!r} writes the original's single video block)")
            if self.prompt.frame_time_template.count("{time}") != 1:
                raise VTGError("model.prompt.frame_time_template must hold '{time}' once, got "
                               f"{self.prompt.frame_time_template!r}")
            self._groups(1)  # a compressor that mixes frames is refused now, not at the first batch

    def _groups(self, num_frames: int) -> list[tuple[int, int]]:
        """The compressor's frame groups for ``num_frames`` frames (layout ``interleaved``).

        Raises:
            VTGError: the compressor mixes frames (no groups).
        """
        groups = self.frame_groups(num_frames) if self.frame_groups is not None else None
        if groups is None:
            name = f"compressor {self.compressor!r}" if self.compressor else "the compressor"
            raise VTGError(f"model.prompt.video_layout 'interleaved' writes each frame's time before its tokens "
                           f"and needs a compressor that keeps each token's frame (identity, mean_pool); {name} "
                           f"mixes frames (its frame_groups() is None): use video_layout 'block' or another "
                           f"compressor")
        return [(int(f), int(n)) for f, n in groups]

    def video_ids(self, timestamps: Sequence[float], k: int, num_frames: int) -> list[int]:
        """The ids that stand for the video: K placeholder ids (``block``), or every frame group's
        time text followed by its placeholder ids (``interleaved``; frames past ``timestamps``,
        the padding of a batch, get no time).

        Raises:
            ShapeError: the frame groups do not hold exactly K tokens.
        """
        if self.prompt.video_layout != "interleaved":
            return [self.video_token_id] * k
        groups = self._groups(num_frames)
        if sum(n for _, n in groups) != k:
            raise ShapeError(f"the frame groups of {self.compressor or 'the compressor'} hold "
                             f"{sum(n for _, n in groups)} tokens, output_tokens() said {k}")
        ids: list[int] = []
        for frame, n in groups:
            if 0 <= frame < len(timestamps):
                time = self.time_codec.encode(float(timestamps[frame]))
                ids += self._ids(self.prompt.frame_time_template.replace("{time}", time))
            ids += [self.video_token_id] * n
        return ids

    def k(self, num_frames: int) -> int:
        """K for ``num_frames`` frames."""
        return self.num_video_tokens(num_frames) if callable(self.num_video_tokens) else int(self.num_video_tokens)

    def frame_message(self, timestamps: Sequence[float]) -> str:
        """``The video contains {n} frames sampled at t0, t1, ... seconds.`` with codec times
        (layout ``vtgllm``: ``seconds. ``, with the original's trailing space)."""
        times = ", ".join(self.time_codec.encode(float(t)) for t in timestamps)
        end = " " if self.prompt.layout == "vtgllm" else ""
        return f"The video contains {len(timestamps)} frames sampled at {times} seconds.{end}"

    def _video_text(self, count: int = 1) -> str:
        return self.prompt.video_template.replace("{video}", self.video_token * count)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def _user_ids(self, text: str, video: list[int]) -> list[int]:
        parts = text.split(self.video_token)
        ids = self._ids(parts[0])
        for part in parts[1:]:
            ids += video + self._ids(part)
        return ids

    def encode_conversation(self, turns: Sequence[Mapping[str, str]], timestamps: Sequence[float],
                            add_generation_prompt: bool = False,
                            num_frames: int | None = None) -> tuple[list[int], list[int]]:
        """Tokenize one conversation with the configured chat template.

        Args:
            turns: ``[{"q": question, "a": answer}, ...]``; with ``add_generation_prompt`` the last
                turn's answer is left for the model to write.
            timestamps: seconds of the sampled frames.
            add_generation_prompt: end where the model's answer begins.
            num_frames: frames the model will see (padded batches: the padded length); K is
                computed from it. Default: ``len(timestamps)``.

        Returns:
            ``(ids, labels)`` of equal length; labels are -100 except on answers and their
            end-of-turn token.
        """
        if not turns:
            raise VTGError("a conversation needs at least one turn")
        questions = [format_times(str(t.get("q", "")), self.time_codec) for t in turns]
        marks = sum(q.count(self.video_token) for q in questions)
        if marks > 1:
            raise VTGError(f"a conversation may hold the video placeholder {self.video_token!r} once, found {marks}")
        first = questions[0].replace(self.video_token, "").strip()
        interleaved = self.prompt.video_layout == "interleaved"
        times = self.frame_message(timestamps) if self.prompt.timestamps_in_prompt and not interleaved else ""
        answers = [format_times(str(t.get("a", "")), self.time_codec).strip() for t in turns]
        if add_generation_prompt:
            answers = answers[:-1]
        t = num_frames if num_frames is not None else len(timestamps)
        k = self.k(t)
        if self.prompt.layout == "vtgllm":
            ids, labels = self._encode_vtgllm(first, times, questions[1:], answers, k, add_generation_prompt)
            return self._cut(ids, labels, k, add_generation_prompt)
        video = self._video_text()
        if self.prompt.video_position == "last":
            questions[0] = f"{first} {times} {video}".replace("  ", " ")
        else:
            questions[0] = f"{video} {times} {first}".replace("  ", " ")
        render = self._segments_tokenizer if self.prompt.chat_template == "tokenizer" else self._segments_llama2
        video_ids = self.video_ids(timestamps, k, t)
        ids: list[int] = []
        labels: list[int] = []
        for text, supervised in render(questions, answers):
            piece = self._ids(text) if supervised else self._user_ids(text, video_ids)
            ids += piece
            labels += piece if supervised else [IGNORE_INDEX] * len(piece)
        return self._cut(ids, labels, k, add_generation_prompt)

    def _cut(self, ids: list[int], labels: list[int], k: int,
             add_generation_prompt: bool) -> tuple[list[int], list[int]]:
        """Cut a training text at ``max_length``; a prompt or video that does not fit is an error."""
        if len(ids) > self.prompt.max_length:
            if ids[self.prompt.max_length:].count(self.video_token_id) or add_generation_prompt:
                raise ShapeError(
                    f"prompt of {len(ids)} tokens (with {k} video tokens) exceeds max_length "
                    f"{self.prompt.max_length}; raise model.prompt.max_length or use fewer tokens")
            ids, labels = ids[: self.prompt.max_length], labels[: self.prompt.max_length]
        return ids, labels

    def _encode_vtgllm(self, first: str, times: str, later: list[str], answers: list[str], k: int,
                       add_generation_prompt: bool) -> tuple[list[int], list[int]]:
        """Layout ``vtgllm``: the original's prompt strings and tokenization (see :class:`PromptConfig`)."""
        tok = self.tokenizer
        if add_generation_prompt:   # Chat.upload_video_without_audio + Chat.ask: "<Video>..</Video> " + msg, " " + q
            user = f"{self._video_text()} {times} {first}"
        else:                       # preprocess_multimodal: "<Video>" + placeholders + "</Video> " + msg + q
            user = f"{self._video_text(k)} {times}{first}"
        prompt = self._llama2_string([user] + later, answers)
        if add_generation_prompt:   # get_context_emb: split at the video, BOS on the first piece only
            parts = prompt.split(self.video_token)
            ids = list(tok.encode(parts[0], add_special_tokens=True))
            for part in parts[1:]:
                ids += [self.video_token_id] * k + list(tok.encode(part, add_special_tokens=False))
            return ids, [IGNORE_INDEX] * len(ids)
        ids = list(tok.encode(prompt, add_special_tokens=True))
        # preprocess_for_llama_v2's labels: per round (split on </s>), its instruction masked with
        # len(tok(instruction + "[/INST] ")) - 2 tokens, the round counted as len(tok(round))
        labels = list(ids)
        cur = 1
        labels[:cur] = [IGNORE_INDEX] * min(cur, len(labels))
        sep = "[/INST] "
        for rnd in prompt.split(tok.eos_token):
            if rnd == "":
                break
            parts = rnd.split(sep)
            if len(parts) != 2:
                break
            round_len = len(tok.encode(rnd, add_special_tokens=True))
            instruction_len = len(tok.encode(parts[0] + sep, add_special_tokens=True)) - 2
            labels[cur: cur + instruction_len] = [IGNORE_INDEX] * len(labels[cur: cur + instruction_len])
            cur += round_len
        labels[cur:] = [IGNORE_INDEX] * len(labels[cur:])
        return ids, labels

    def _llama2_string(self, questions: list[str], answers: list[str]) -> str:
        """The original's ``Conversation.get_prompt`` (LLAMA_2 style, sep ``<s>``, sep2 ``</s>``),
        the leading ``<s>`` removed; with one answer fewer than questions it ends at ``[/INST]``."""
        bos, eos = self.tokenizer.bos_token, self.tokenizer.eos_token
        out = ""
        for i, question in enumerate(questions):
            if i == 0:
                question = f"<<SYS>>\n{self.prompt.system}\n<</SYS>>\n\n{question}"
            out += f"{bos}[INST] {question} [/INST]"
            if i < len(answers):
                out += f" {answers[i]} {eos}"
        return out[len(bos):]

    def _segments_llama2(self, questions: list[str], answers: list[str]) -> list[tuple[str, bool]]:
        """LLaMA-2 chat, as VTG-LLM trains: ``<s>[INST] <<SYS>>...<</SYS>>\n\nq [/INST] a </s>``."""
        bos, eos = self.tokenizer.bos_token, self.tokenizer.eos_token
        segments: list[tuple[str, bool]] = []
        for i, question in enumerate(questions):
            head = f"[INST] <<SYS>>\n{self.prompt.system}\n<</SYS>>\n\n" if i == 0 else "[INST] "
            segments.append((f"{bos}{head}{question} [/INST]", False))
            if i < len(answers):
                segments.append((f" {answers[i]}{eos}", True))
        return segments

    def _segments_tokenizer(self, questions: list[str], answers: list[str]) -> list[tuple[str, bool]]:
        """The tokenizer's own chat template; answers are the text each assistant turn adds."""
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            raise VTGError("model.prompt.chat_template is 'tokenizer' but the tokenizer has no chat template; "
                           "use 'llama2'")
        messages: list[dict[str, str]] = []
        if self.prompt.system.strip():
            messages.append({"role": "system", "content": self.prompt.system})
        segments: list[tuple[str, bool]] = []
        done = ""
        for i, question in enumerate(questions):
            messages.append({"role": "user", "content": question})
            prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            if i >= len(answers):
                segments.append((self._suffix(prompt, done), False))
                break
            messages.append({"role": "assistant", "content": answers[i]})
            full = tok.apply_chat_template(messages, tokenize=False)
            segments += [(self._suffix(prompt, done), False), (self._suffix(full, prompt), True)]
            done = full
        return segments

    @staticmethod
    def _suffix(text: str, prefix: str) -> str:
        if not text.startswith(prefix):
            raise VTGError("the tokenizer's chat template is not prefix-stable (an earlier turn renders "
                           "differently once a later turn is added); use chat_template 'llama2'")
        return text[len(prefix):]

    def __call__(self, conversations: Sequence[Sequence[Mapping[str, str]]],
                 timestamps: Sequence[Sequence[float]], add_generation_prompt: bool = False,
                 num_frames: int | None = None) -> dict[str, torch.Tensor]:
        """Batch several conversations.

        Training batches are right-padded; generation batches (``add_generation_prompt``) are
        left-padded so that every prompt ends at the last position. ``num_frames`` is the padded
        frame count of the batch (see :meth:`encode_conversation`).

        Returns:
            ``input_ids`` (B, S) long, ``attention_mask`` (B, S) long, ``labels`` (B, S) long.
        """
        if len(conversations) != len(timestamps):
            raise VTGError(f"{len(conversations)} conversations but {len(timestamps)} timestamp lists")
        rows = [self.encode_conversation(c, t, add_generation_prompt, num_frames)
                for c, t in zip(conversations, timestamps)]
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (ids, lab) in enumerate(rows):
            span = slice(width - len(ids), width) if add_generation_prompt else slice(0, len(ids))
            input_ids[r, span] = torch.tensor(ids, dtype=torch.long)
            labels[r, span] = torch.tensor(lab, dtype=torch.long)
            mask[r, span] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
