"""Batched generation and turning generated ids into text with times in seconds."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch

from vtgcore.interfaces import TimeCodec

_DECIMAL = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class GenerationConfig:
    """Decoding settings, recorded with every evaluation.

    Attributes:
        max_new_tokens: longest answer.
        do_sample: sample instead of greedy decoding (the original samples with top_p 0.8, t=1.0).
        temperature: sampling temperature.
        top_p: nucleus sampling mass.
        num_beams: beam search width (1: none).
        seed: seeds torch before each batch, so sampled runs repeat exactly.
    """

    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    num_beams: int = 1
    seed: int = 42

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``generate`` (sampling knobs only when sampling)."""
        kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample,
                              "num_beams": self.num_beams}
        if self.do_sample:
            kw.update(temperature=self.temperature, top_p=self.top_p)
        return kw

    def as_dict(self) -> dict[str, Any]:
        """The settings, for the run record."""
        return asdict(self)


def render_times(ids: Sequence[int], codec: TimeCodec, tokenizer: Any) -> str:
    """Decode generated ids to text in which every time is a decimal number of seconds.

    Times are located by the codec from token ids (:meth:`~vtgcore.interfaces.TimeCodec.decode_spans`),
    so no text regex can merge neighbouring numbers. Each span is written as its seconds
    (``f"{seconds:g}"``) unless its text already is that decimal number (a codec that writes plain
    digits): the text is then kept as written, and when every span is kept the result is the plain
    decode. Times that share one span are written one after the other, separated by a space.
    """
    ids = [int(i) for i in ids]
    spans = codec.decode_spans(ids, tokenizer)
    texts = [tokenizer.decode(ids[start:end], skip_special_tokens=True) for start, end, _ in spans]
    kept = [_reads_as(text, seconds) for text, (_, _, seconds) in zip(texts, spans)]
    if all(kept):
        return tokenizer.decode(ids, skip_special_tokens=True).strip()
    pieces: list[str] = []
    pos = 0
    for (start, end, seconds), text, keep in zip(spans, texts, kept):
        if start < pos:  # shares the previous time's span
            pieces.append(" ")
        pieces.append(tokenizer.decode(ids[pos:start], skip_special_tokens=True))
        pieces.append(text if keep else _rewritten(text, seconds))
        pos = max(pos, end)
    pieces.append(tokenizer.decode(ids[pos:], skip_special_tokens=True))
    return "".join(pieces).strip()


def _rewritten(text: str, seconds: float) -> str:
    """``seconds`` in place of a span's text, keeping the spaces around it (a BPE token " 1")."""
    core = text.strip()
    if not core:
        return f"{seconds:g}"
    start = text.index(core)
    return f"{text[:start]}{seconds:g}{text[start + len(core):]}"


def _reads_as(text: str, seconds: float) -> bool:
    """Whether ``text`` is exactly one plain decimal number equal to ``seconds``."""
    text = text.strip()
    return _DECIMAL.fullmatch(text) is not None and float(text) == seconds


@torch.no_grad()
def generate_batch(model: Any, batch: dict[str, Any], config: GenerationConfig) -> list[dict[str, Any]]:
    """Generate answers for a collated generation batch (left-padded prompts).

    Returns:
        One ``{"text", "raw", "legacy_text"}`` per video: ``text`` with times in seconds, ``raw``
        the plain decode, ``legacy_text`` the text the original VTG-LLM's parsers read
        (:func:`vtgcore.eval.legacy_text.original_output_text`, for ``--legacy-parser``).
    """
    from vtgcore.eval.legacy_text import original_output_text

    device = next(model.parameters()).device
    if config.do_sample:
        torch.manual_seed(config.seed)
    out = model.generate(batch["frames"].to(device), batch["timestamps"].to(device), batch["input_ids"].to(device),
                         batch["attention_mask"].to(device), frame_mask=batch["frame_mask"].to(device),
                         **config.kwargs())
    tok = model.tokenizer
    results = []
    for row in out.tolist():
        if tok.eos_token_id in row:
            row = row[: row.index(tok.eos_token_id)]
        results.append({"text": render_times(row, model.time_codec, tok),
                        "raw": tok.decode(row, skip_special_tokens=False),
                        "legacy_text": original_output_text(row, tok, model.time_codec)})
    return results
