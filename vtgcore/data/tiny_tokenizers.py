"""Tiny offline building blocks: a byte-level BPE tokenizer trained in memory, a tiny BERT WordPiece
tokenizer, a tiny LLaMA config."""

from __future__ import annotations

import functools
from typing import Any

_CORPUS = """
[INST] <<SYS>> <</SYS>> [/INST] </s> <s>
You are able to understand the visual content that the user provides.
Follow the instructions carefully and explain your answers in detail.
The video contains frames sampled at seconds.
Find the start and end time of the event in the video. Localize the moment described by the query.
Detect and report the start and end timestamps of all events in the video, with a description of each.
Give the saliency score of each frame. When does the following happen? The answer is from to seconds.
a red green blue yellow white black circle square triangle moves appears disappears grows shrinks
the object person man woman dog cat ball car door opens closes walks runs jumps sits stands picks up
puts down a an of in on at to and with from is are was were this that first then after before while
highlight summary caption moment retrieval dense captioning score saliency start end time event
0 1 2 3 4 5 6 7 8 9 . , : ; - ( ) ? ! ' "
"""


@functools.lru_cache(maxsize=4)
def _tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS.split("\n") * 4, trainer)
    return tok.to_str()


def build_tiny_tokenizer(vocab_size: int = 400) -> Any:
    """A byte-level BPE tokenizer trained in memory on a small fixed corpus (deterministic).

    Any text round-trips through it (byte fallback), digits are single tokens like LLaMA's, and it
    has ``<s>``, ``</s>``, ``<unk>`` and ``<pad>``. Building takes milliseconds and needs no network.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        clean_up_tokenization_spaces=False)


TINY_LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}
"""Config of the tiny LLaMA used in tests (about 40 k parameters with the tiny tokenizer)."""

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
"""A minimal Qwen-style ChatML chat template (Qwen2.5's without its default system message)."""


def build_tiny_chat_tokenizer(vocab_size: int = 400) -> Any:
    """:func:`build_tiny_tokenizer` with Qwen's ChatML: ``<|im_start|>`` and ``<|im_end|>`` as special
    tokens, ``<|im_end|>`` as the end-of-turn (eos) token and :data:`CHATML_TEMPLATE` as its chat
    template, so that ``model.prompt.chat_template: tokenizer`` works offline."""
    tok = build_tiny_tokenizer(vocab_size)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.eos_token = "<|im_end|>"
    tok.chat_template = CHATML_TEMPLATE
    return tok


TINY_QWEN2: dict[str, Any] = {**TINY_LLAMA, "model_type": "qwen2", "tie_word_embeddings": False}
"""A tiny ``Qwen2ForCausalLM`` config (Qwen2.5's architecture: q/k/v biases, GQA)."""

TINY_QWEN3: dict[str, Any] = {**TINY_QWEN2, "model_type": "qwen3", "head_dim": 16}
"""A tiny ``Qwen3ForCausalLM`` config (Qwen3's architecture: q/k norms, explicit head_dim)."""


_BERT_WORDS = """this frame is sampled at second seconds the video a an of in on and time"""


@functools.lru_cache(maxsize=1)
def _bert_tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("0123456789.,:;-()?!'\"") + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    pieces = [f"##{c}" for c in chars if c.isalnum()]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(specials + chars + pieces + _BERT_WORDS.split()))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.decoder = decoders.WordPiece()
    return tok.to_str()


def build_tiny_bert_tokenizer() -> Any:
    """A tiny uncased BERT-style WordPiece tokenizer built in memory (deterministic, no network).

    Like ``bert-base-uncased``: lower-cases, splits on whitespace and punctuation, ``[PAD]`` is id 0,
    adds ``[CLS] ... [SEP]``; its vocabulary is the special tokens, digits, punctuation, letters
    (with their ``##`` continuations, so any ASCII word tokenises) and a few words of the Q-Former's
    frame text (``this frame is sampled at ... second.``). A new object on every call.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_bert_tokenizer_json()),
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        clean_up_tokenization_spaces=False)
