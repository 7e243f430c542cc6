"""The processor: chat prompt rendering, times written by the codec, placeholder expansion, labels.

Times inside conversation text are written as ``<time>12.3</time>`` (seconds); the processor hands
each to the time codec, so the same data trains every codec. The video placeholder (``<video>`` by
default, at most once per conversation, prepended to the first question when absent) is expanded to
exactly K placeholder ids. Text pieces are tokenized separately and concatenated, so labels mask the
prompt exactly: only answers and their end-of-sequence token are supervised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

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
    """

    system: str = " "
    timestamps_in_prompt: bool = True
    max_length: int = 2048
    chat_template: str = "llama2"
    video_position: str = "first"


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
    """

    def __init__(self, tokenizer: Any, time_codec: TimeCodec, num_video_tokens: int | Callable[[int], int],
                 video_token: str = "<video>", prompt: PromptConfig | None = None) -> None:
        self.tokenizer = tokenizer
        self.time_codec = time_codec
        self.num_video_tokens = num_video_tokens
        self.video_token = video_token
        self.video_token_id = int(tokenizer.convert_tokens_to_ids(video_token))
        self.prompt = prompt or PromptConfig()
        if self.prompt.video_position not in ("first", "last"):
            raise VTGError(f"model.prompt.video_position must be 'first' or 'last', got {self.prompt.video_position!r}")

    def k(self, num_frames: int) -> int:
        """K for ``num_frames`` frames."""
        return self.num_video_tokens(num_frames) if callable(self.num_video_tokens) else int(self.num_video_tokens)

    def frame_message(self, timestamps: Sequence[float]) -> str:
        """``The video contains {n} frames sampled at t0, t1, ... seconds.`` with codec times."""
        times = ", ".join(self.time_codec.encode(float(t)) for t in timestamps)
        return f"The video contains {len(timestamps)} frames sampled at {times} seconds."

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def _user_ids(self, text: str, k: int) -> list[int]:
        parts = text.split(self.video_token)
        ids = self._ids(parts[0])
        for part in parts[1:]:
            ids += [self.video_token_id] * k + self._ids(part)
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
        times = self.frame_message(timestamps) if self.prompt.timestamps_in_prompt else ""
        if self.prompt.video_position == "last":
            questions[0] = f"{first} {times} {self.video_token}".replace("  ", " ")
        else:
            questions[0] = f"{self.video_token} {times} {first}".replace("  ", " ")
        answers = [format_times(str(t.get("a", "")), self.time_codec).strip() for t in turns]
        if add_generation_prompt:
            answers = answers[:-1]
        render = self._segments_tokenizer if self.prompt.chat_template == "tokenizer" else self._segments_llama2
        k = self.k(num_frames if num_frames is not None else len(timestamps))
        ids: list[int] = []
        labels: list[int] = []
        for text, supervised in render(questions, answers):
            piece = self._ids(text) if supervised else self._user_ids(text, k)
            ids += piece
            labels += piece if supervised else [IGNORE_INDEX] * len(piece)
        if len(ids) > self.prompt.max_length:
            if ids[self.prompt.max_length:].count(self.video_token_id) or add_generation_prompt:
                raise ShapeError(
                    f"prompt of {len(ids)} tokens (with {k} video tokens) exceeds max_length "
                    f"{self.prompt.max_length}; raise model.prompt.max_length or use fewer tokens")
            ids, labels = ids[: self.prompt.max_length], labels[: self.prompt.max_length]
        return ids, labels

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
