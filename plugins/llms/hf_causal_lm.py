"""``hf_causal_lm``: any Hugging Face causal LM, from a local folder or from an in-memory config.

Real weights: ``path: /models/llama-2-7b-chat-hf`` (read with ``local_files_only``; nothing is
downloaded). Tests and CPU runs: ``model_config: {model_type: llama, hidden_size: 32, ...}`` with
``tokenizer: tiny``, a tokenizer built in memory.

A model folder's own Python code (``auto_map`` in its config) never runs unless the recipe sets
``trust_remote_code: true`` *and* the caller allows it (``--trust-remote-code``; library:
``trust_remote_code=True`` to ``build_model`` / ``load_pipeline``; see
:func:`vtgcore.build.check_remote_code`); it is then announced as a warning and in the training log.
Pickled ``.bin`` weights are read by transformers with ``weights_only`` loading; a file that would
run code is refused with :class:`~vtgcore.errors.CheckpointError`.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch

from vtgcore.errors import CheckpointError, ShapeError, VTGError
from vtgcore.interfaces import LanguageModel
from vtgcore.hookspecs import hookimpl

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class HFCausalLMConfig:
    """Params of ``hf_causal_lm``.

    Attributes:
        path: local folder of a transformers model (config + weights); None builds from model_config.
        model_config: in-memory config (``model_type`` plus its fields) used when ``path`` is None.
        tokenizer: ``auto`` (from ``tokenizer_path`` or ``path``), ``tiny`` (built offline) or
            ``tiny_chatml`` (the tiny one with Qwen's ChatML tokens and chat template, for
            ``model.prompt.chat_template: tokenizer``).
        tokenizer_path: local tokenizer folder when it differs from ``path``.
        use_fast: true (default) loads the folder's tokenizer with ``AutoTokenizer`` (transformers 5
            has only the ``tokenizers``-backed classes). false loads the slow SentencePiece LLaMA
            tokenizer from the folder's ``tokenizer.model``, as the original VTG-LLM's
            ``LlamaTokenizer.from_pretrained(..., use_fast=False)`` under transformers 4.36
            (:class:`~vtgcore_plugins.llms._llama_slow_tokenizer.LlamaSlowTokenizer`; needs the
            ``sentencepiece`` and ``protobuf`` packages). Only read with ``tokenizer: auto``
            (``tiny`` is built in memory, so a paper recipe at tiny widths keeps working).
        dtype: weight dtype: float32, bfloat16 or float16.
        mean_resizing: initialise new vocabulary rows from the old rows' distribution.
        gradient_checkpointing: trade compute for memory in training.
        trust_remote_code: run the Python files of the model folder (its ``auto_map``). Off unless
            the recipe sets it and the caller passes ``--trust-remote-code`` (a recipe, run folder
            or checkpoint alone never turns it on); when on, a warning names the folder.
        quantization: ``none``, ``8bit`` or ``4bit`` (NF4, computing in ``dtype``): weights loaded
            from ``path`` through bitsandbytes (transformers' ``BitsAndBytesConfig``); needs a CUDA
            GPU and the ``bitsandbytes`` package. LLaMA-2-7B then takes about 6.3 GiB (8-bit) or
            3.1 GiB (4-bit) instead of 12.6 GiB in fp16, so the paper's model runs inference on one
            16 GB GPU (docs/performance.md).
    """

    path: Optional[str] = None
    model_config: dict[str, Any] = field(default_factory=dict)
    tokenizer: str = "auto"
    tokenizer_path: Optional[str] = None
    use_fast: bool = True
    dtype: str = "float32"
    mean_resizing: bool = True
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    quantization: str = "none"


def _load(what: str, source: str, load: Callable[[], Any]) -> Any:
    """Call a transformers loader, turning its failures into one-line :class:`CheckpointError`."""
    try:
        return load()
    except pickle.UnpicklingError as exc:
        from vtgcore.checkpoint import unpickling_refusal

        raise CheckpointError(f"hf_causal_lm {what} {source}: {unpickling_refusal(exc)}") from None
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        text = str(exc)
        if "trust_remote_code" in text:
            raise CheckpointError(
                f"hf_causal_lm {what} {source}: the folder holds its own Python code (auto_map), which is not run "
                "unless the recipe sets model.llm.params.trust_remote_code: true and the command is given "
                "--trust-remote-code (only for a folder you trust)") from None
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        raise CheckpointError(f"hf_causal_lm {what} {source}: cannot be loaded ({first[:300]})") from None


def _slow_llama_tokenizer(source: str) -> Any:
    """The slow SentencePiece LLaMA tokenizer of folder ``source`` (``use_fast: false``)."""
    import importlib.util

    for package in ("sentencepiece", "google.protobuf"):
        try:
            found = importlib.util.find_spec(package) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise VTGError(f"hf_causal_lm: use_fast: false needs the {package.split('.')[-1]} package "
                           f"(pip install sentencepiece protobuf); it is not installed")
    from vtgcore_plugins.llms._llama_slow_tokenizer import LlamaSlowTokenizer

    # a class of ours: the folder's own code (auto_map) is never looked at
    return LlamaSlowTokenizer.from_pretrained(source, local_files_only=True, trust_remote_code=False)


QUANTIZATIONS = ("none", "8bit", "4bit")


def quantization_config(quantization: str, compute_dtype: torch.dtype) -> Any:
    """transformers' ``BitsAndBytesConfig`` for ``8bit`` or ``4bit``; None for ``none``.

    Raises:
        VTGError: an unknown setting, no CUDA GPU, or ``bitsandbytes`` not installed.
    """
    if quantization not in QUANTIZATIONS:
        raise VTGError(f"hf_causal_lm: quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    if quantization == "none":
        return None
    if not torch.cuda.is_available():
        raise VTGError(f"hf_causal_lm: quantization {quantization!r} needs a CUDA GPU (bitsandbytes kernels); "
                       "none is available here; use quantization: none")
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise VTGError(f"hf_causal_lm: quantization {quantization!r} needs the bitsandbytes package "
                       "(pip install bitsandbytes); it is not installed")
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype,
                              bnb_4bit_use_double_quant=True)


class HFCausalLM(LanguageModel):
    """Wraps ``AutoModelForCausalLM`` and its tokenizer behind :class:`LanguageModel`."""

    def __init__(self, path: Optional[str] = None, model_config: Optional[dict[str, Any]] = None,
                 tokenizer: str = "auto", tokenizer_path: Optional[str] = None, dtype: str = "float32",
                 mean_resizing: bool = True, gradient_checkpointing: bool = False,
                 trust_remote_code: bool = False, quantization: str = "none", use_fast: bool = True) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        if dtype not in _DTYPES:
            raise VTGError(f"hf_causal_lm: dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if tokenizer not in ("auto", "tiny", "tiny_chatml"):
            raise VTGError(f"hf_causal_lm: tokenizer must be 'auto', 'tiny' or 'tiny_chatml', got {tokenizer!r}")
        if path is None and not model_config:
            raise VTGError("hf_causal_lm: set either 'path' (a local model folder) or 'model_config'")
        self.trust_remote_code = bool(trust_remote_code)
        if self.trust_remote_code:
            warnings.warn(f"hf_causal_lm: trust_remote_code is on (allowed by the caller): Python files of "
                          f"{tokenizer_path or path or 'the model folder'} may run", stacklevel=2)
        if quantization not in QUANTIZATIONS:
            raise VTGError(f"hf_causal_lm: quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
        if quantization != "none" and path is None:
            raise VTGError(f"hf_causal_lm: quantization {quantization!r} quantizes weights loaded from 'path'; "
                           "a model built from 'model_config' has none")
        bnb = quantization_config(quantization, _DTYPES[dtype])
        if tokenizer == "tiny":
            from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer

            self.tokenizer = build_tiny_tokenizer()
        elif tokenizer == "tiny_chatml":
            from vtgcore.data.tiny_tokenizers import build_tiny_chat_tokenizer

            self.tokenizer = build_tiny_chat_tokenizer()
        else:
            source = tokenizer_path or path
            if source is None:
                raise VTGError("hf_causal_lm: tokenizer 'auto' needs 'path' or 'tokenizer_path'")
            if use_fast:
                self.tokenizer = _load("tokenizer", source, lambda: AutoTokenizer.from_pretrained(
                    source, local_files_only=True, trust_remote_code=self.trust_remote_code))
            else:
                self.tokenizer = _load("tokenizer", source, lambda: _slow_llama_tokenizer(source))
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.unk_token or self.tokenizer.eos_token
        self.compute_dtype = _DTYPES[dtype]
        self.quantization = quantization
        if bnb is not None:
            self.model = _load("model", path, lambda: AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, dtype=_DTYPES[dtype], quantization_config=bnb,
                device_map={"": torch.cuda.current_device()}, trust_remote_code=self.trust_remote_code))
        elif path is not None:
            self.model = _load("model", path, lambda: AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, dtype=_DTYPES[dtype], trust_remote_code=self.trust_remote_code))
        else:
            cfg = dict(model_config)
            model_type = cfg.pop("model_type", "llama")
            cfg.setdefault("vocab_size", len(self.tokenizer))
            for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
                cfg.setdefault(key, getattr(self.tokenizer, key))
            self.model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **cfg)).to(_DTYPES[dtype])
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.mean_resizing = mean_resizing
        self.hidden_size = int(self.model.get_input_embeddings().weight.shape[1])

    def add_tokens(self, tokens: Sequence[str], init: Optional[dict[str, str]] = None,
                   special: bool = False) -> list[int]:
        """Add ``tokens``, resize embeddings and head, copy rows named in ``init``.

        Args:
            tokens: new tokens (ones already in the vocabulary are kept as they are).
            init: new token -> source text; the row of the source's last token id is copied into
                the new row of both the input embeddings and the (untied) LM head.
            special: add as special tokens (removed by ``decode(skip_special_tokens=True)``).

        Returns:
            The ids of ``tokens``.
        """
        vocab = self.tokenizer.get_vocab()
        new = [t for t in tokens if t not in vocab]
        if new:
            self.tokenizer.add_tokens(new, special_tokens=special)
            rows = self.model.get_input_embeddings().weight.shape[0]
            if len(self.tokenizer) > rows:
                self.model.resize_token_embeddings(len(self.tokenizer), mean_resizing=self.mean_resizing)
        ids = [int(i) for i in self.tokenizer.convert_tokens_to_ids(list(tokens))]
        if init:
            inp = self.model.get_input_embeddings().weight
            out_emb = self.model.get_output_embeddings()
            out = None if out_emb is None or out_emb.weight is inp else out_emb.weight
            with torch.no_grad():
                for token in new:
                    if token not in init:
                        continue
                    src = self.tokenizer.encode(init[token], add_special_tokens=False)
                    if not src:
                        raise VTGError(f"cannot initialise {token!r}: {init[token]!r} tokenizes to nothing")
                    dst = self.tokenizer.convert_tokens_to_ids(token)
                    inp[dst] = inp[src[-1]]
                    if out is not None:
                        out[dst] = out[src[-1]]
        return ids

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings.

        Shape:
            input_ids: (B, S) -> (B, S, D)
        """
        return self.model.get_input_embeddings()(input_ids)

    def _autocast(self, inputs_embeds: torch.Tensor) -> Any:
        """Autocast to the weight dtype when the weights are half precision and no autocast is on.

        fp32 parts (trainable embeddings and head, LoRA adapters) then meet bf16/fp16 layers
        without dtype errors, as under the training loop's AMP wrapper.
        """
        import contextlib

        device = inputs_embeds.device.type
        if self.compute_dtype == torch.float32 or torch.is_autocast_enabled(device):
            return contextlib.nullcontext()
        return torch.autocast(device_type=device, dtype=self.compute_dtype)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                labels: Optional[torch.Tensor] = None, return_logits: bool = True,
                position_ids: Optional[torch.Tensor] = None) -> Any:
        """Causal-LM forward; ``loss`` is the mean cross-entropy over labels != -100.

        Args:
            inputs_embeds: input embeddings.
            attention_mask: 1 for real tokens.
            labels: target ids, -100 where no loss is taken (None: no loss).
            return_logits: False (with labels) computes the head and the loss only at the
                positions that predict a label (those of any row of the batch): the same loss and
                gradients without the (B, S, V) logits, which at a 32k vocabulary and 2048 tokens
                are 262 MB per sample in fp32. ``logits`` then holds only those positions.
            position_ids: every token's position, handed to the transformers model (its rotary
                positions for LLaMA/Qwen-family models); None: transformers' default.

        Shape:
            inputs_embeds: (B, S, D); attention_mask, labels, position_ids: (B, S) -> logits
            (B, S, V), or (B, P, V) for the P kept positions when ``return_logits`` is False
        """
        extra = {} if position_ids is None else {"position_ids": position_ids}
        with self._autocast(inputs_embeds):
            if labels is None or return_logits or not self._keeps_logits:
                return self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **extra)
            targets = labels[:, 1:]
            keep = (targets != -100).any(0).nonzero().squeeze(1)  # position t predicts token t + 1
            if keep.numel() == 0:
                return self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **extra)
            out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, logits_to_keep=keep, **extra)
        logits = out.logits
        out.loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                     targets[:, keep].reshape(-1), ignore_index=-100)
        return out

    @property
    def _keeps_logits(self) -> bool:
        """Whether the wrapped model's forward takes ``logits_to_keep`` (transformers >= 4.45)."""
        import inspect

        return "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def generate(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: Optional[torch.Tensor] = None, **generate_kwargs: Any) -> torch.Tensor:
        """Generate from embeddings (left-padded prompts); returns only the new ids.

        With ``position_ids``, transformers (5.x) keeps them in the generation state and gives the
        new tokens the last prompt position + 1, + 2, ... of each row (with the KV cache: the
        same positions a full recompute of the sequence would use).

        Raises:
            ShapeError: ``position_ids`` is not (B, S), or a row's last position is not its
                largest (the new tokens would reuse positions the prompt holds).

        Shape:
            inputs_embeds: (B, S, D); attention_mask, position_ids: (B, S) -> (B, new)
        """
        kwargs = {"max_new_tokens": 64, "do_sample": False,
                  "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self.tokenizer.eos_token_id}
        kwargs.update(generate_kwargs)
        if position_ids is not None:
            if tuple(position_ids.shape) != tuple(attention_mask.shape):
                raise ShapeError(f"hf_causal_lm.generate: position_ids {tuple(position_ids.shape)} do not match the "
                                 f"attention mask {tuple(attention_mask.shape)}")
            position_ids = position_ids.long()
            largest = position_ids.masked_fill(attention_mask == 0, torch.iinfo(position_ids.dtype).min).amax(-1)
            if bool((position_ids[:, -1] < largest).any()):
                raise ShapeError("hf_causal_lm.generate: each row's last position must be its largest (left-padded "
                                 "prompts ending with text); the new tokens continue from the last one")
            kwargs["position_ids"] = position_ids
        with self._autocast(inputs_embeds):
            return self.model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs)

    def apply_lora(self, r: int, alpha: int, dropout: float, target_modules: Sequence[str],
                   extra_trainable: Sequence[str] = ()) -> None:
        """Freeze the LM, inject LoRA adapters (peft) kept trainable in fp32.

        Args:
            r: LoRA rank.
            alpha: LoRA alpha.
            dropout: LoRA dropout.
            target_modules: module name suffixes to adapt (``q_proj`` ...).
            extra_trainable: name substrings of base parameters that stay trainable
                (VTG-LLM trains ``embed_tokens`` and ``lm_head`` in full).
        """
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules))
        inject_adapter_in_model(config, self.model)
        for name, param in self.model.named_parameters():
            is_lora = "lora_" in name
            param.requires_grad = is_lora or any(key in name for key in extra_trainable)
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()


@hookimpl
def vtg_register_llms(register):
    register("hf_causal_lm", HFCausalLM, config=HFCausalLMConfig,
             description="any transformers causal LM from a local folder or an in-memory config (LoRA via peft)")
