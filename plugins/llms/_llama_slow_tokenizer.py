"""The slow (SentencePiece) LLaMA tokenizer, as the original VTG-LLM tokenizes.

The original loads ``LlamaTokenizer.from_pretrained(llama_model, use_fast=False)`` under
transformers 4.36.2 with sentencepiece 0.2.0 (its ``environment-npu.yaml``). transformers 5 removed
the slow model-specific classes: ``LlamaTokenizer`` is now the ``tokenizers``-backed (formerly
"fast") class and ``AutoTokenizer`` ignores ``use_fast``. Its generic
``SentencePieceBackend`` runs the ``tokenizer.model`` through sentencepiece as the slow class did
(added tokens split out first, each remaining chunk encoded by sentencepiece on its own, so that
with ``legacy: true`` every chunk gets the dummy-prefix space), but it lacks two pieces of the
LLaMA class, restored here from transformers 4.36's ``LlamaTokenizer``:

* BOS/EOS: ``add_bos_token`` (default true) puts ``<s>`` before the ids of
  ``tokenizer(text, add_special_tokens=True)``; ``add_eos_token`` (default false) ``</s>`` after.
* ``legacy: false`` (read from the folder's ``tokenizer_config.json``; absent means ``true``, as
  4.36 defaulted): the text gets one leading ``▁``, the dummy prefix is off in sentencepiece, and
  a chunk that starts with a space is encoded behind ``<unk>`` so the space is kept.

``pad_token`` is the unknown token when the folder sets none, as the original sets it.
"""

from __future__ import annotations

from typing import Any, Optional

from transformers.tokenization_utils_sentencepiece import SPIECE_UNDERLINE, SentencePieceBackend

__all__ = ["LlamaSlowTokenizer"]


class LlamaSlowTokenizer(SentencePieceBackend):
    """transformers 4.36's slow ``LlamaTokenizer`` on transformers 5's SentencePiece backend.

    Args:
        vocab_file: the SentencePiece ``tokenizer.model``.
        add_bos_token: prepend ``<s>`` when special tokens are added.
        add_eos_token: append ``</s>`` when special tokens are added.
        legacy: the 4.36 ``legacy`` flag (see the module docstring).
    """

    vocab_files_names = {"vocab_file": "tokenizer.model"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: str, unk_token: Any = "<unk>", bos_token: Any = "<s>",
                 eos_token: Any = "</s>", pad_token: Any = None, add_bos_token: bool = True,
                 add_eos_token: bool = False, legacy: Optional[bool] = None, **kwargs: Any) -> None:
        kwargs.pop("use_default_system_prompt", None)
        kwargs.pop("add_prefix_space", None)
        self.add_bos_token = bool(add_bos_token)
        self.add_eos_token = bool(add_eos_token)
        super().__init__(vocab_file=vocab_file, unk_token=unk_token, bos_token=bos_token, eos_token=eos_token,
                         pad_token=pad_token, legacy=True if legacy is None else bool(legacy), **kwargs)
        self.legacy = True if legacy is None else bool(legacy)
        if self.pad_token is None:
            self.pad_token = self.unk_token

    def tokenize(self, text: str, **kwargs: Any) -> list[str]:
        """4.36's ``LlamaTokenizer.tokenize``: with ``legacy: false`` one ``▁`` is put before the text
        (and dropped again when a special token comes first)."""
        if self.legacy or len(text) == 0:
            return super().tokenize(text, **kwargs)
        tokens = super().tokenize(SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " "), **kwargs)
        if len(tokens) > 1 and tokens[0] == SPIECE_UNDERLINE and tokens[1] in self.all_special_tokens:
            tokens = tokens[1:]
        return tokens

    def build_inputs_with_special_tokens(self, token_ids_0: list[int],
                                         token_ids_1: Optional[list[int]] = None) -> list[int]:
        bos = [self.bos_token_id] if self.add_bos_token else []
        eos = [self.eos_token_id] if self.add_eos_token else []
        out = bos + list(token_ids_0) + eos
        if token_ids_1 is not None:
            out += bos + list(token_ids_1) + eos
        return out

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: Optional[list[int]] = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        bos = [1] if self.add_bos_token else []
        eos = [1] if self.add_eos_token else []
        out = bos + [0] * len(token_ids_0) + eos
        if token_ids_1 is not None:
            out += bos + [0] * len(token_ids_1) + eos
        return out
