"""Batched generation and turning generated ids into text with times in seconds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch


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


def render_times(ids: Sequence[int], codec: Any, tokenizer: Any) -> str:
    """Decode generated ids to text in which every time is a decimal number of seconds.

    Times are found by the codec from token ids (``decode_spans``, when the codec has it), so no
    text regex can merge neighbouring numbers; codecs that write plain text need no rendering.
    """
    ids = [int(i) for i in ids]
    spans = codec.decode_spans(ids, tokenizer) if hasattr(codec, "decode_spans") else []
    pieces: list[str] = []
    pos = 0
    for start, end, seconds in spans:
        pieces.append(tokenizer.decode(ids[pos:start], skip_special_tokens=True))
        pieces.append(f"{seconds:g}")
        pos = end
    pieces.append(tokenizer.decode(ids[pos:], skip_special_tokens=True))
    return "".join(pieces).strip()


@torch.no_grad()
def generate_batch(model: Any, batch: dict[str, Any], config: GenerationConfig) -> list[dict[str, Any]]:
    """Generate answers for a collated generation batch (left-padded prompts).

    Returns:
        One ``{"text", "raw"}`` per video: ``text`` with times in seconds, ``raw`` the plain decode.
    """
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
                        "raw": tok.decode(row, skip_special_tokens=False)})
    return results
