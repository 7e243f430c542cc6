"""``eva_vit_g_qformer``: the VTG-LLM / BLIP-2 frame encoder, EVA-ViT-g then an InstructBLIP Q-Former.

Per frame: EVA-ViT-g (timm's :class:`timm.models.eva.Eva`, 39 blocks as LAVIS keeps them, no final
norm) gives 257 tokens of width 1408; ``ln_vision`` (a LayerNorm computed in fp32) normalises them;
the Q-Former (transformers' :class:`~transformers.InstructBlipQFormerModel`, 12 BERT layers with
cross-attention every 2nd layer) reads them with 32 learned queries. Output: 32 tokens of width 768
per frame.

Weights are the LAVIS files the original uses, read with ``torch.load(weights_only=True)`` and
renamed by :func:`lavis_to_module_key`:

* ``vit_checkpoint``: ``eva_vit_g.pth`` (the state dict of LAVIS's ``visual_encoder``: ``cls_token``,
  ``pos_embed``, ``patch_embed.proj.*``, ``blocks.N.{norm1,attn.qkv,attn.q_bias,attn.v_bias,...}``);
* ``qformer_checkpoint``: ``instruct_blip_vicuna7b_trimmed.pth`` (``Qformer.bert.*``,
  ``query_tokens``, ``ln_vision.*``, optionally ``visual_encoder.*``; possibly under a ``model``
  key).

Loading is strict: every parameter of the part a file provides must be in it, and every key of the
file must land somewhere, except the keys of :data:`LAVIS_IGNORED` (the text-only parts of the
InstructBLIP Q-Former and the EVA-CLIP leftovers LAVIS drops); those are listed in the log, never
dropped silently. A mismatch raises :class:`vtgcore.errors.CheckpointError` naming the keys.

``text_input: true`` is the paper's "Q-Former text input" ablation (``qformer_text_input: True``,
``vtgllm-original.md`` section 1.4): every frame's Q-Former also reads the BERT-tokenised text
``This frame is sampled at <time> second.``, the time written by the recipe's time codec (set by the
model builder through :meth:`EvaViTGQFormer.set_time_writer`, which also adds the codec's tokens to
the BERT vocabulary and resizes the Q-Former word embeddings, rows copied from the digit rows when
the codec asks). Queries and text share self-attention (InstructBLIP's ``input_ids`` +
``query_embeds``). The Q-Former then keeps its word and position embeddings and the text-side
feed-forward, and the InstructBLIP file must provide them. Two behaviours to know:

* Quirk kept from the original: a frame's tokens are the *whole* last hidden state, queries and
  text (``num_query_tokens + text_max_length``), not only the queries.
* Difference: the text is always padded to ``text_max_length`` (the original padded to the longest
  text of the batch), so L is the same for every batch, K is known before the forward and the
  feature cache and compressors see one L. The padding positions' outputs are tokens too (their
  keys are masked in the attention, their queries are not). A text longer than ``text_max_length``
  is an error, never cut.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from vtgcore.checkpoint import torch_load_weights
from vtgcore.errors import CheckpointError, ConfigValidationError, ShapeError
from vtgcore.interfaces import FrameEncoder
from vtgcore.hookspecs import hookimpl

log = logging.getLogger(__name__)

_VIT = "visual_encoder."
_QFORMER = "Qformer.bert."

#: LAVIS keys that have no module here, each with the reason; they are reported, not loaded.
#: (The EVA-CLIP-g blocks past ``vit_depth``, e.g. ``blocks.39.*``, are ignored too: LAVIS drops
#: the 40th block and uses the penultimate-layer features.)
LAVIS_IGNORED: tuple[tuple[str, str], ...] = (
    (r"^visual_encoder\.(norm|fc_norm|head)\.",
     "final norm / head of an EVA-CLIP export (the LAVIS ViT returns pre-norm features, no head)"),
    (r"^Qformer\.bert\.embeddings\.(word_embeddings|position_embeddings)\.",
     "Q-Former text embeddings (text input is off)"),
    (r"^Qformer\.bert\.embeddings\.position_ids$", "Q-Former text position-id buffer"),
    (r"^Qformer\.bert\.encoder\.layer\.\d+\.(intermediate|output)\.",
     "Q-Former text-side feed-forward (the queries use intermediate_query/output_query)"),
    (r"^Qformer\.cls\.", "Q-Former masked-LM head"),
    (r"^llm_proj\.", "InstructBLIP's projection to Vicuna (VTG-LLM has its own projector)"),
    (r"^llm_model\.", "InstructBLIP's Vicuna weights (the LLM is a separate component)"),
)

#: The patterns of :data:`LAVIS_IGNORED` that name the Q-Former's text parts: loaded, not ignored,
#: when text input is on.
LAVIS_TEXT_PARTS: tuple[str, ...] = (
    r"^Qformer\.bert\.embeddings\.(word_embeddings|position_embeddings)\.",
    r"^Qformer\.bert\.encoder\.layer\.\d+\.(intermediate|output)\.",
)

#: BERT's position table size (``max_position_embeddings`` of bert-base-uncased).
BERT_MAX_POSITIONS = 512

#: Times whose frame texts :meth:`EvaViTGQFormer.cache_signature` gives (with ``text_input``).
CACHE_PROBE_SECONDS = (0.0, 1.5, 12.3, 345.6)


def lavis_to_module_key(key: str) -> Optional[str]:
    """The name in this encoder's state dict for a key of the LAVIS model namespace.

    LAVIS names: ``visual_encoder.*`` (the EVA ViT), ``ln_vision.*``, ``query_tokens`` and
    ``Qformer.bert.*`` (BERT layout: ``attention.self.query``, ``embeddings.LayerNorm``). Here:
    ``vit.*`` (timm's Eva uses the same inner names), ``ln_vision.*``, ``query_tokens`` and
    ``qformer.*`` (transformers' layout: ``attention.attention.query``, ``embeddings.layernorm``).
    The eva_vit_g.pth keys are the ``visual_encoder.*`` keys without that prefix.

    Args:
        key: a LAVIS key, e.g. ``Qformer.bert.encoder.layer.0.crossattention.self.key.weight``.

    Returns:
        The module key (``qformer.encoder.layer.0.crossattention.attention.key.weight``), or None
        when the key is outside these four parts. Pure: says nothing about whether it exists.
    """
    if key.startswith(_VIT):
        return "vit." + key[len(_VIT):]
    if key == "query_tokens" or key.startswith("ln_vision."):
        return key
    if key.startswith(_QFORMER):
        rest = key[len(_QFORMER):]
        rest = re.sub(r"^embeddings\.LayerNorm\.", "embeddings.layernorm.", rest)
        rest = re.sub(r"\.(attention|crossattention)\.self\.", r".\1.attention.", rest)
        return "qformer." + rest
    return None


def module_to_lavis_key(key: str) -> str:
    """Inverse of :func:`lavis_to_module_key` (used to write LAVIS-layout files, e.g. in tests).

    Raises:
        KeyError: the key is not one of this encoder's parts.
    """
    if key.startswith("vit."):
        return _VIT + key[len("vit."):]
    if key == "query_tokens" or key.startswith("ln_vision."):
        return key
    if key.startswith("qformer."):
        rest = key[len("qformer."):]
        rest = re.sub(r"^embeddings\.layernorm\.", "embeddings.LayerNorm.", rest)
        rest = re.sub(r"\.(attention|crossattention)\.attention\.", r".\1.self.", rest)
        return _QFORMER + rest
    raise KeyError(key)


def lavis_ignore_reason(key: str, vit_depth: int, text_input: bool = False) -> Optional[str]:
    """Why a LAVIS key is deliberately not loaded (None: it must be loaded).

    Args:
        key: a key of the LAVIS model namespace.
        vit_depth: blocks kept in the ViT; ``visual_encoder.blocks.N.*`` with N >= it are ignored.
        text_input: the Q-Former reads text, so its text parts (:data:`LAVIS_TEXT_PARTS`) are loaded.
    """
    m = re.match(r"^visual_encoder\.blocks\.(\d+)\.", key)
    if m and int(m.group(1)) >= vit_depth:
        return f"ViT block {m.group(1)} is past vit_depth={vit_depth} (LAVIS drops EVA-CLIP-g's last block)"
    if text_input and any(re.search(p, key) for p in LAVIS_TEXT_PARTS):
        return None
    for pattern, reason in LAVIS_IGNORED:
        if re.search(pattern, key):
            return reason
    return None


def read_weight_file(path: str, what: str) -> dict[str, torch.Tensor]:
    """Read a ``.pth`` state dict without running code (``weights_only=True``).

    Unwraps a ``{"model": state_dict}`` (LAVIS) or ``{"state_dict": ...}`` wrapper.

    Raises:
        CheckpointError: the file is missing, would run code when unpickled, is unreadable, or
            holds something other than a mapping of names to tensors.
    """
    obj: Any = torch_load_weights(path, what)
    for wrapper in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if (not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values())
            or not all(isinstance(k, str) for k in obj)):  # names must be strings (issue 20)
        raise CheckpointError(f"{what} {path}: not a state dict (a mapping of names to tensors)")
    return obj


def _names(keys: list[str], limit: int = 20) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


@dataclass
class EvaViTGQFormerConfig:
    """Params of ``eva_vit_g_qformer`` (defaults: the paper's EVA-ViT-g + InstructBLIP Q-Former).

    Attributes:
        image_size: input height and width (224; L_vit = (image_size / patch_size) ** 2 + 1).
        patch_size: ViT patch side (14).
        vit_width: ViT width (1408).
        vit_depth: ViT blocks kept (39: EVA-CLIP-g's 40 minus the last, as LAVIS).
        vit_heads: ViT attention heads (16, head dim 88).
        vit_mlp_ratio: ViT MLP hidden / width (4.3637 -> 6144).
        vit_precision: ``lavis_fp16`` (the original's: LAVIS's ``convert_weights_to_fp16`` casts
            the weights and biases of the ViT's Conv1d/Conv2d/Linear layers to half and keeps the
            LayerNorms, position embedding, CLS token and q/v biases fp32; the ViT runs under fp16
            autocast on the frames' device, so LayerNorms and the residual stream stay fp32),
            ``fp16`` (the whole ViT half, inputs cast to half, output back to fp32: less memory,
            LayerNorms and residuals in fp16) or ``fp32``. The half modes need ``freeze_vit``.
        freeze_vit: freeze the ViT and ``ln_vision`` (kept in eval mode), as the original.
        vit_grad_checkpointing: per-block activation checkpointing in the ViT (only useful when the
            ViT is trained).
        vit_checkpoint: LAVIS ``eva_vit_g.pth`` (None: random init, e.g. for tests).
        num_query_tokens: Q-Former queries = tokens per frame (32).
        qformer_hidden: Q-Former width = Dv (768).
        qformer_layers: Q-Former layers (12).
        qformer_heads: Q-Former attention heads (12).
        qformer_intermediate: Q-Former feed-forward width (3072).
        cross_attention_freq: a cross-attention to the ViT tokens every this many layers (2).
        qformer_dropout: Q-Former hidden and attention dropout in training (0.1, BERT's).
        freeze_qformer: freeze the Q-Former and the query tokens (the paper's training configs
            train them: False).
        qformer_checkpoint: LAVIS ``instruct_blip_vicuna7b_trimmed.pth`` (None: random init).
        frame_chunk: frames per pass through ViT and Q-Former (bounds activation memory; the
            output is the same up to float rounding: bit-identical on CPU, within 1e-5 on an H100,
            whose kernels vary with the batch size). 0: all at once.
        text_input: the paper's "Q-Former text input" ablation (see the module docstring): each
            frame's Q-Former also reads ``text_template`` with the frame's time; L becomes
            ``num_query_tokens + text_max_length``.
        text_tokenizer: local folder of a BERT tokenizer (``bert-base-uncased``; loaded with
            ``local_files_only=True``; LAVIS's ``[DEC]`` bos token is added, as InstructBLIP's
            30523-row word table expects), or ``tiny`` (built in memory, for tests). Needed with
            ``text_input``.
        text_template: the frame text; ``{time}`` is replaced by the time codec's text.
        text_max_length: BERT tokens of the frame text, ``[CLS]``/``[SEP]`` included (32, the
            original's maximum); every text is padded to it.
    """

    image_size: int = 224
    patch_size: int = 14
    vit_width: int = 1408
    vit_depth: int = 39
    vit_heads: int = 16
    vit_mlp_ratio: float = 4.3637
    vit_precision: str = "fp16"
    freeze_vit: bool = True
    vit_grad_checkpointing: bool = False
    vit_checkpoint: Optional[str] = None
    num_query_tokens: int = 32
    qformer_hidden: int = 768
    qformer_layers: int = 12
    qformer_heads: int = 12
    qformer_intermediate: int = 3072
    cross_attention_freq: int = 2
    qformer_dropout: float = 0.1
    freeze_qformer: bool = False
    qformer_checkpoint: Optional[str] = None
    frame_chunk: int = 32
    text_input: bool = False
    text_tokenizer: Optional[str] = None
    text_template: str = "This frame is sampled at {time} second."
    text_max_length: int = 32


def default_time_writer(seconds: float) -> str:
    """Seconds with one decimal (``12.3``): the frame-text writer until the model sets the codec's."""
    return f"{seconds:.1f}"


def load_text_tokenizer(path: str) -> Any:
    """The Q-Former's BERT tokenizer: a local folder, or ``tiny`` (built in memory).

    LAVIS's ``init_tokenizer`` adds ``[DEC]`` as the bos token; so is it here (InstructBLIP's word
    table has 30522 + 1 rows).

    Raises:
        ConfigValidationError: the folder is missing or holds no tokenizer.
    """
    if path == "tiny":
        from vtgcore.data.tiny_tokenizers import build_tiny_bert_tokenizer

        tokenizer = build_tiny_bert_tokenizer()
    else:
        from transformers import AutoTokenizer

        if not Path(path).is_dir():
            raise ConfigValidationError(f"eva_vit_g_qformer: text_tokenizer {path}: no such folder "
                                        "(a local bert-base-uncased tokenizer folder; nothing is downloaded)")
        try:
            # never the folder's own Python code (auto_map): transformers would ask on the terminal
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise ConfigValidationError(f"eva_vit_g_qformer: text_tokenizer {path}: cannot load a tokenizer "
                                        f"({str(exc).strip().splitlines()[0] if str(exc).strip() else exc})") from None
    if tokenizer.bos_token is None:
        tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    if tokenizer.pad_token_id is None:
        raise ConfigValidationError(f"eva_vit_g_qformer: text_tokenizer {path}: the tokenizer has no pad token")
    return tokenizer


VIT_PRECISIONS = ("lavis_fp16", "fp16", "fp32")


def lavis_weights_to_fp16(module: nn.Module) -> nn.Module:
    """Cast the weight and bias of every Conv1d, Conv2d and Linear to fp16, in place, and nothing
    else: LAVIS's ``convert_weights_to_fp16`` (``eva_vit.py``). LayerNorms, the position embedding,
    the CLS token and the attention's separate q/v biases keep their dtype (fp32)."""

    def convert(layer: nn.Module) -> None:
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            layer.weight.data = layer.weight.data.half()
            if layer.bias is not None:
                layer.bias.data = layer.bias.data.half()

    return module.apply(convert)


def fp16_autocast(device_type: str) -> Any:
    """fp16 autocast on ``device_type`` (the original's ``maybe_autocast``: matmuls and convolutions
    in fp16, LayerNorm and softmax in fp32, additions in the wider dtype). It overrides an enclosing
    bf16 autocast (the runner's precision) for the ViT only.

    Raises:
        RuntimeError: the device has no autocast (e.g. ``meta``); use ``vit_precision`` fp16 or fp32.
    """
    if not torch.amp.is_autocast_available(device_type):
        raise RuntimeError(f"eva_vit_g_qformer: vit_precision='lavis_fp16' needs autocast, which device "
                           f"{device_type!r} lacks; use vit_precision 'fp16' or 'fp32' there")
    return torch.autocast(device_type=device_type, dtype=torch.float16)


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 whatever the input and weight dtype (BLIP-2's ``ln_vision``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise in fp32 and return fp32.

        Shape:
            x: (..., C) -> (..., C)
        """
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return nn.functional.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)


def build_eva_vit(image_size: int = 224, patch_size: int = 14, width: int = 1408, depth: int = 39,
                  heads: int = 16, mlp_ratio: float = 4.3637) -> nn.Module:
    """EVA-ViT-g as LAVIS's ``create_eva_vit_g`` builds it, on timm's ``Eva``.

    Pre-norm blocks, LayerNorm eps 1e-6, exact GELU, fused qkv weight with separate q and v biases
    and no k bias (``qkv_fused=True, qkv_bias=True``: keys ``attn.qkv.weight``, ``attn.q_bias``,
    ``attn.v_bias``), learned absolute position embedding over CLS + patches, no RoPE, no layer
    scale, no drop path, no final norm and no head (``forward_features`` returns the last block's
    output).
    """
    from timm.models.eva import Eva

    return Eva(img_size=image_size, patch_size=patch_size, in_chans=3, num_classes=0, global_pool="",
               embed_dim=width, depth=depth, num_heads=heads, mlp_ratio=mlp_ratio,
               qkv_bias=True, qkv_fused=True, swiglu_mlp=False, scale_mlp=False, scale_attn_inner=False,
               attn_type="eva", drop_path_rate=0.0, init_values=None, class_token=True,
               use_abs_pos_emb=True, use_rot_pos_emb=False, use_pre_transformer_norm=False,
               use_post_transformer_norm=False, use_fc_norm=False)


def build_qformer(hidden: int = 768, layers: int = 12, heads: int = 12, intermediate: int = 3072,
                  encoder_width: int = 1408, cross_attention_freq: int = 2, dropout: float = 0.1,
                  text_vocab_size: int = 0, pad_token_id: int = 0) -> nn.Module:
    """The InstructBLIP Q-Former, with its text-only parts removed unless it reads text.

    transformers' ``InstructBlipQFormerModel`` (BERT layers; cross-attention in layers 0, f, 2f,
    ...; LayerNorm eps 1e-12). Without text (``text_vocab_size=0``) these are removed, as VTG-LLM
    removes them when text input is off: the word and position embeddings and each layer's
    text-side feed-forward (``intermediate``/``output``); the queries use
    ``intermediate_query``/``output_query``. With text they are kept: a word table of
    ``text_vocab_size`` rows and BERT's 512 positions.
    """
    from transformers import InstructBlipQFormerConfig, InstructBlipQFormerModel

    text = text_vocab_size > 0
    config = InstructBlipQFormerConfig(
        # without text the embeddings are built tiny, then removed
        vocab_size=text_vocab_size if text else 1, max_position_embeddings=BERT_MAX_POSITIONS if text else 1,
        pad_token_id=pad_token_id,
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=intermediate, hidden_act="gelu", hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout, layer_norm_eps=1e-12,
        cross_attention_frequency=cross_attention_freq, encoder_hidden_size=encoder_width)
    qformer = InstructBlipQFormerModel(config)
    if text:
        return qformer
    qformer.embeddings.word_embeddings = None
    qformer.embeddings.position_embeddings = None
    for layer in qformer.encoder.layer:
        layer.intermediate = None
        layer.output = None
    return qformer


class EvaViTGQFormer(FrameEncoder):
    """EVA-ViT-g, fp32 ``ln_vision`` and the InstructBLIP Q-Former: frames to 32 query tokens each.

    Modules (state-dict prefixes): ``vit`` (timm Eva), ``ln_vision``, ``qformer`` (transformers
    InstructBlipQFormerModel) and the parameter ``query_tokens`` (1, Q, Dv).

    With ``text_input``, :attr:`needs_timestamps` is True (the model passes each frame's seconds to
    :meth:`forward`) and :attr:`text_tokenizer` is the Q-Former's BERT tokenizer.
    """

    needs_timestamps: bool = False

    def __init__(self, image_size: int = 224, patch_size: int = 14, vit_width: int = 1408,
                 vit_depth: int = 39, vit_heads: int = 16, vit_mlp_ratio: float = 4.3637,
                 vit_precision: str = "fp16", freeze_vit: bool = True, vit_grad_checkpointing: bool = False,
                 vit_checkpoint: Optional[str] = None, num_query_tokens: int = 32, qformer_hidden: int = 768,
                 qformer_layers: int = 12, qformer_heads: int = 12, qformer_intermediate: int = 3072,
                 cross_attention_freq: int = 2, qformer_dropout: float = 0.1, freeze_qformer: bool = False,
                 qformer_checkpoint: Optional[str] = None, frame_chunk: int = 32, text_input: bool = False,
                 text_tokenizer: Optional[str] = None,
                 text_template: str = "This frame is sampled at {time} second.",
                 text_max_length: int = 32) -> None:
        super().__init__()
        from vtgcore.data.transforms import CLIP_MEAN, CLIP_STD

        if vit_precision not in VIT_PRECISIONS:
            raise ConfigValidationError(f"eva_vit_g_qformer: vit_precision must be one of "
                                        f"{', '.join(VIT_PRECISIONS)}, got {vit_precision!r}")
        if vit_precision != "fp32" and not freeze_vit:
            raise ConfigValidationError(
                f"eva_vit_g_qformer: vit_precision={vit_precision!r} needs freeze_vit=True (half master weights "
                "cannot be trained; use fp32 weights with bf16 autocast to train the ViT)")
        self.vit_precision = vit_precision
        if image_size % patch_size:
            raise ConfigValidationError(
                f"eva_vit_g_qformer: image_size {image_size} is not a multiple of patch_size {patch_size}")
        if frame_chunk < 0:
            raise ConfigValidationError(f"eva_vit_g_qformer: frame_chunk must be >= 0, got {frame_chunk}")
        self.text_input = text_input
        self.text_tokenizer: Any = None
        if text_input:
            if not text_tokenizer:
                raise ConfigValidationError("eva_vit_g_qformer: text_input needs text_tokenizer (a local BERT "
                                            "tokenizer folder, e.g. $VTG_WEIGHTS/bert-base-uncased, or 'tiny')")
            if "{time}" not in text_template:
                raise ConfigValidationError(
                    f"eva_vit_g_qformer: text_template must contain '{{time}}', got {text_template!r}")
            if not 1 <= text_max_length <= BERT_MAX_POSITIONS:
                raise ConfigValidationError(f"eva_vit_g_qformer: text_max_length must be in 1..{BERT_MAX_POSITIONS}, "
                                            f"got {text_max_length}")
            self.text_tokenizer = load_text_tokenizer(text_tokenizer)
            self.needs_timestamps = True
        self.text_template = text_template
        self.text_max_length = text_max_length if text_input else 0
        self.time_writer: Callable[[float], str] = default_time_writer
        self.image_size = image_size
        self.out_dim = qformer_hidden
        self.num_query_tokens = num_query_tokens
        self.tokens_per_frame = num_query_tokens + self.text_max_length
        self.mean, self.std = CLIP_MEAN, CLIP_STD
        self.vit_depth = vit_depth
        self.frame_chunk = frame_chunk
        self.freeze_vit = freeze_vit

        self.vit = build_eva_vit(image_size, patch_size, vit_width, vit_depth, vit_heads, vit_mlp_ratio)
        self.ln_vision = FP32LayerNorm(vit_width)
        self.qformer = build_qformer(qformer_hidden, qformer_layers, qformer_heads, qformer_intermediate,
                                     vit_width, cross_attention_freq, qformer_dropout,
                                     text_vocab_size=len(self.text_tokenizer) if text_input else 0,
                                     pad_token_id=self.text_tokenizer.pad_token_id if text_input else 0)
        self.query_tokens = nn.Parameter(torch.zeros(1, num_query_tokens, qformer_hidden))
        nn.init.normal_(self.query_tokens, mean=0.0, std=0.02)

        if vit_checkpoint:
            self.load_lavis(vit_checkpoint, vit_file=True)
        if qformer_checkpoint:
            self.load_lavis(qformer_checkpoint, vit_file=False)
        if vit_grad_checkpointing:
            self.vit.set_grad_checkpointing(True)
        if vit_precision == "fp16":
            self.vit.half()
        elif vit_precision == "lavis_fp16":
            lavis_weights_to_fp16(self.vit)
        if freeze_vit:
            self.vit.requires_grad_(False)
            self.ln_vision.requires_grad_(False)
            self.vit.eval()
            self.ln_vision.eval()
        if freeze_qformer:
            self.qformer.requires_grad_(False)
            self.query_tokens.requires_grad_(False)

    def train(self, mode: bool = True) -> "EvaViTGQFormer":
        """Set training mode; a frozen ViT and ``ln_vision`` stay in eval mode."""
        super().train(mode)
        if self.freeze_vit:
            self.vit.eval()
            self.ln_vision.eval()
        return self

    # -- weights -------------------------------------------------------------------------------

    def load_lavis(self, path: str, *, vit_file: bool) -> list[str]:
        """Load a LAVIS file strictly.

        Args:
            path: ``eva_vit_g.pth`` (``vit_file=True``: bare ViT keys) or an InstructBLIP file
                (``vit_file=False``: LAVIS model namespace).
            vit_file: which of the two.

        Returns:
            The LAVIS keys deliberately ignored (also logged).

        Raises:
            CheckpointError: the file is missing or refused, a required parameter is missing, a key
                lands nowhere, or a shape differs.
        """
        what = "vit_checkpoint" if vit_file else "qformer_checkpoint"
        raw = read_weight_file(path, what)
        if vit_file:
            raw = {_VIT + k: v for k, v in raw.items()}
        own = self.state_dict()
        mapped: dict[str, torch.Tensor] = {}
        lavis_name: dict[str, str] = {}
        ignored: list[str] = []
        unexpected: list[str] = []
        for key, tensor in raw.items():
            shown = key[len(_VIT):] if vit_file else key
            if lavis_ignore_reason(key, self.vit_depth, self.text_input) is not None:
                ignored.append(shown)
                continue
            target = lavis_to_module_key(key)
            if target is None or target not in own:
                unexpected.append(shown)
                continue
            mapped[target] = tensor
            lavis_name[target] = shown
        if vit_file:
            required = {k for k in own if k.startswith("vit.")}
        else:
            required = {k for k in own if not k.startswith("vit.")}
            if any(k.startswith("vit.") for k in mapped):  # the file carries the ViT too: all of it
                required |= {k for k in own if k.startswith("vit.")}
        missing = sorted(required - set(mapped))
        pos = "vit.pos_embed"
        if pos in mapped and mapped[pos].shape != own[pos].shape:
            mapped[pos] = self._resize_pos_embed(mapped[pos], path, what)
        wrong = [f"{lavis_name[k]} {tuple(t.shape)} vs {tuple(own[k].shape)}"
                 for k, t in mapped.items() if t.shape != own[k].shape]
        if missing or unexpected or wrong:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing key(s) (LAVIS names): "
                             + _names([module_to_lavis_key(k)[len(_VIT):] if vit_file else module_to_lavis_key(k)
                                       for k in missing]))
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected key(s): {_names(unexpected)}")
            if wrong:
                parts.append(f"{len(wrong)} shape mismatch(es) (file vs module): {_names(wrong)}")
            raise CheckpointError(f"{what} {path}: " + "; ".join(parts))
        self.load_state_dict(mapped, strict=False)
        if ignored:
            log.info("%s %s: %d key(s) not loaded on purpose (see LAVIS_IGNORED): %s",
                     what, path, len(ignored), _names(ignored, 8))
        return sorted(ignored)

    def _resize_pos_embed(self, posemb: torch.Tensor, path: str, what: str) -> torch.Tensor:
        """Bicubic resize of the patch part of a (1, 1 + g*g, C) position table (as LAVIS)."""
        from timm.layers import resample_abs_pos_embed

        own = self.vit.pos_embed
        old = posemb.shape[1] - 1
        side = int(round(old ** 0.5))
        if posemb.ndim != 3 or posemb.shape[2] != own.shape[2] or side * side != old:
            return posemb  # reported as a shape mismatch
        log.info("%s %s: resizing pos_embed from %dx%d to %s", what, path, side, side,
                 self.vit.patch_embed.grid_size)
        return resample_abs_pos_embed(posemb.float(), new_size=list(self.vit.patch_embed.grid_size),
                                      old_size=[side, side], num_prefix_tokens=1, antialias=False)

    # -- frame text (text_input) ---------------------------------------------------------------

    def set_time_writer(self, encode: Callable[[float], str], special_tokens: Sequence[str] = (),
                        token_init: Optional[dict[str, str]] = None) -> list[int]:
        """Write frame times with the recipe's time codec (called by the model builder).

        Adds ``special_tokens`` (the codec's new tokens) to the BERT tokenizer, grows the Q-Former
        word table to match (new rows: BERT's normal(0, 0.02) init) and copies into each new row the
        row of the last BERT token of ``token_init[token]`` (digit and dot rows for the time
        tokens). Without text input only the writer is kept.

        Args:
            encode: seconds -> text (the codec's ``encode``).
            special_tokens: new vocabulary entries (the codec's ``special_tokens()``).
            token_init: new token -> source text (the codec's ``token_init()``; empty or None: keep
                the fresh rows).

        Returns:
            The BERT ids of ``special_tokens`` (empty without text input); the model builder does
            not use them.
        """
        self.time_writer = encode
        if self.text_tokenizer is None:
            return []
        from tokenizers import AddedToken

        tok = self.text_tokenizer
        vocab = tok.get_vocab()
        new = [t for t in dict.fromkeys(special_tokens) if t not in vocab]
        if new:
            # not normalised: an uncased BERT would otherwise match the lower-cased text only
            tok.add_tokens([AddedToken(t, normalized=False) for t in new])
            old = self.qformer.get_input_embeddings().weight
            if len(tok) > old.shape[0]:
                trainable = old.requires_grad
                self.qformer.resize_token_embeddings(len(tok), mean_resizing=False)
                self.qformer.get_input_embeddings().weight.requires_grad_(trainable)
        ids = [int(i) for i in tok.convert_tokens_to_ids(list(special_tokens))]
        if token_init and new:
            weight = self.qformer.get_input_embeddings().weight
            with torch.no_grad():
                for token in new:
                    if token not in token_init:
                        continue
                    src = tok.encode(token_init[token], add_special_tokens=False)
                    if not src:
                        raise ConfigValidationError(
                            f"eva_vit_g_qformer: cannot initialise {token!r}: {token_init[token]!r} is no BERT token")
                    weight[tok.convert_tokens_to_ids(token)] = weight[src[-1]]
        return ids

    def cache_signature(self) -> Any:
        """With ``text_input``: the class name, and the frame texts and their BERT ids and mask for
        :data:`CACHE_PROBE_SECONDS` (so another time codec or tokenizer gives another feature cache
        key); None without (the output then depends on the params and weights only)."""
        if not self.text_input:
            return None
        ids, mask = self.text_ids(torch.tensor(CACHE_PROBE_SECONDS))
        return {"class": type(self).__qualname__, "texts": self.frame_texts(CACHE_PROBE_SECONDS),
                "ids": ids.tolist(), "mask": mask.tolist()}

    def frame_texts(self, timestamps: Sequence[float]) -> list[str]:
        """The Q-Former text of each frame (``text_template`` with the time writer's text)."""
        return [self.text_template.format(time=self.time_writer(float(t))) for t in timestamps]

    def text_ids(self, timestamps: torch.Tensor | Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """BERT ids and attention mask of the frame texts, padded to ``text_max_length``.

        Raises:
            ShapeError: a text needs more than ``text_max_length`` tokens (never cut silently).

        Shape:
            timestamps: (N,) -> ids (N, text_max_length) long, mask (N, text_max_length) long
        """
        if isinstance(timestamps, torch.Tensor):  # float32 times read back as decimals (0.7, not 0.6999)
            from vtgcore.types import seconds_list

            timestamps = seconds_list(timestamps)
        texts = self.frame_texts(timestamps)
        enc = self.text_tokenizer(texts, padding="max_length", max_length=self.text_max_length,
                                  truncation=False, return_tensors="pt")
        if enc["input_ids"].shape[1] > self.text_max_length:
            longest = max(texts, key=lambda t: len(self.text_tokenizer(t)["input_ids"]))
            raise ShapeError(
                f"eva_vit_g_qformer: the frame text {longest!r} needs {enc['input_ids'].shape[1]} BERT "
                f"tokens, more than text_max_length={self.text_max_length} (raise text_max_length)")
        return enc["input_ids"], enc["attention_mask"]

    # -- forward -------------------------------------------------------------------------------

    def encode_vit(self, frames: torch.Tensor) -> torch.Tensor:
        """ViT features of the last kept block (CLS first), in fp32, before ``ln_vision``.

        Shape:
            frames: (N, 3, H, W) -> (N, 1 + (H / patch) ** 2, vit_width)
        """
        trainable = any(p.requires_grad for p in self.vit.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
            if self.vit_precision == "lavis_fp16":
                with fp16_autocast(frames.device.type):
                    return self.vit.forward_features(frames.float()).float()
            dtype = self.vit.patch_embed.proj.weight.dtype
            return self.vit.forward_features(frames.to(dtype)).float()

    def _encode_chunk(self, frames: torch.Tensor, timestamps: Optional[torch.Tensor] = None) -> torch.Tensor:
        image_embeds = self.ln_vision(self.encode_vit(frames)).to(self.query_tokens.dtype)
        queries = self.query_tokens.expand(frames.shape[0], -1, -1)
        if not self.text_input:
            out = self.qformer(input_ids=None, query_embeds=queries, encoder_hidden_states=image_embeds)
            return out.last_hidden_state[:, : self.num_query_tokens]
        ids, mask = self.text_ids(timestamps)
        device = queries.device
        mask = torch.cat([torch.ones(mask.shape[0], self.num_query_tokens, dtype=mask.dtype), mask], 1)
        out = self.qformer(input_ids=ids.to(device), attention_mask=mask.to(device), query_embeds=queries,
                           encoder_hidden_states=image_embeds)
        return out.last_hidden_state  # the original's quirk: queries and text, (N, Q + text_max_length, Dv)

    def forward(self, frames: torch.Tensor, timestamps: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Encode frames to Q-Former query tokens, ``frame_chunk`` frames at a time.

        Args:
            frames: frames normalised with :attr:`mean` / :attr:`std`, any float dtype.
            timestamps: seconds of each frame; required with ``text_input`` (ignored otherwise).

        Returns:
            The query tokens (with ``text_input``, followed by the text tokens' outputs), in the
            Q-Former's dtype (fp32 unless the model was cast).

        Raises:
            ShapeError: ``text_input`` without one timestamp per frame.

        Shape:
            frames: (N, 3, H, W); timestamps: (N,) -> (N, tokens_per_frame, qformer_hidden), where
            tokens_per_frame = num_query_tokens (+ text_max_length with text_input)
        """
        if self.text_input:
            if timestamps is None or timestamps.numel() != frames.shape[0]:
                got = None if timestamps is None else tuple(timestamps.shape)
                raise ShapeError(f"eva_vit_g_qformer with text_input needs the seconds of each of the "
                                 f"{frames.shape[0]} frames (timestamps (N,)), got {got}")
            timestamps = timestamps.reshape(-1)
        else:
            timestamps = None
        step = self.frame_chunk or frames.shape[0]
        if frames.shape[0] <= step:
            return self._encode_chunk(frames, timestamps)
        return torch.cat([self._encode_chunk(frames[i:i + step], None if timestamps is None else timestamps[i:i + step])
                          for i in range(0, frames.shape[0], step)])


@hookimpl
def vtg_register_encoders(register):
    register("eva_vit_g_qformer", EvaViTGQFormer, config=EvaViTGQFormerConfig,
             description="EVA-ViT-g (timm Eva, 39 blocks) + InstructBLIP Q-Former: 32 tokens x 768 per frame "
                         "(text_input: + the frame's time as text, 32 + text_max_length tokens)")
