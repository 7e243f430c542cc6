"""The text the original VTG-LLM's parsers read: generated ids decoded as its slow tokenizer does.

The original's ``utils/format_{tvg,dvc,vhd}.py`` parse ``Chat.answer``'s output
(``vtgllm/conversation/conversation_video_batch.py``): the generated ids, less a leading ``<unk>``
(id 0) and then a leading ``<s>`` (id 1), decoded by the slow ``LlamaTokenizer`` with special tokens
kept, cut at the first ``</s>``, the part after the last ``"ASSISTANT:"``, stripped. The slow
tokenizer (transformers 4.41, ``spaces_between_special_tokens=True``) writes every added,
non-special token on its own and joins the pieces with single spaces: ``<TIME_ZERO>`` ...
``<TIME_DOT>`` come out as ``<TIME_ZERO> <TIME_ZERO> <TIME_THREE> <TIME_ZERO> <TIME_DOT> <TIME_ZERO>``,
which the parsers turn into ``0030.0``; the text between them is decoded by SentencePiece, which
drops the leading space of each piece (``"▁seconds"`` -> ``"seconds"``), so ``0030.0 seconds`` keeps
its space. The robust path's text (times written ``f"{s:g}"``, ``30 seconds``) is not what those
parsers were written for: their digit merging glues ``30 seconds`` into ``30seconds``.

:func:`original_output_text` rebuilds that text from ids with any tokenizer: the time codec's
tokens and the tokenizer's other added non-special tokens stand alone, every other run is the
tokenizer's decode of it less one leading space, and the pieces are joined with single spaces.
The Llama-2 chat tokenizer the original loads does not clean up tokenization spaces, so neither
does this.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from vtgcore.interfaces import TimeCodec

__all__ = ["ASSISTANT_ROLE", "original_output_text", "separate_token_ids"]

ASSISTANT_ROLE = "ASSISTANT:"  # conv_llava_llama_2.roles[1] + ":" in the original


def separate_token_ids(tokenizer: Any, codec: Optional[TimeCodec] = None) -> dict[int, str]:
    """The ids the slow tokenizer writes as separate pieces, with their text: the codec's tokens
    and the tokenizer's added tokens that are not special.

    Args:
        tokenizer: a Hugging Face tokenizer.
        codec: the model's time codec (its :meth:`~vtgcore.interfaces.TimeCodec.special_tokens`).

    Returns:
        ``{id: token text}``.
    """
    out: dict[int, str] = {}
    for index, token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items():
        if not getattr(token, "special", True):
            out[int(index)] = str(token)
    if codec is not None:
        tokens = list(codec.special_tokens())
        unk = getattr(tokenizer, "unk_token_id", None)
        for token, index in zip(tokens, tokenizer.convert_tokens_to_ids(tokens)):
            if index is not None and index != unk:
                out[int(index)] = token
    return out


def original_output_text(ids: Sequence[int], tokenizer: Any, codec: Optional[TimeCodec] = None) -> str:
    """Generated ids as the original VTG-LLM's ``Chat.answer`` hands them to its parsers.

    Steps (see the module docstring): drop a leading ``unk`` id, then a leading ``bos`` id; cut at
    the first ``eos``; write each id of :func:`separate_token_ids` as its token text and each run
    of other ids as ``tokenizer.decode(run)`` (special tokens kept, no clean-up) less one leading
    space, skipping empty pieces; join the pieces with single spaces; keep the text after the last
    ``"ASSISTANT:"``; strip.

    Args:
        ids: the generated ids (new tokens only).
        tokenizer: the model's tokenizer.
        codec: the model's time codec.

    Returns:
        The text, e.g. ``<TIME_ZERO> <TIME_ZERO> <TIME_THREE> <TIME_ZERO> <TIME_DOT> <TIME_ZERO> seconds, ...``.
    """
    ids = [int(i) for i in ids]
    for leading in (getattr(tokenizer, "unk_token_id", None), getattr(tokenizer, "bos_token_id", None)):
        if ids and leading is not None and ids[0] == leading:
            ids = ids[1:]
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None and eos in ids:
        ids = ids[:ids.index(eos)]
    alone = separate_token_ids(tokenizer, codec)
    pieces: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if run:
            text = tokenizer.decode(run, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            text = text[1:] if text.startswith(" ") else text
            if text:
                pieces.append(text)
            run.clear()

    for i in ids:
        if i in alone:
            flush()
            pieces.append(alone[i])
        else:
            run.append(i)
    flush()
    return " ".join(pieces).split(ASSISTANT_ROLE)[-1].strip()
