"""FLOP and byte counts of the paper's model, and the floor they put on the time per video.

Conventions: a multiply-add is 2 FLOPs; only matrix products are counted (norms, softmax, GELU
and other element-wise work are left out, a few percent at these shapes), so every floor here is
a lower bound. A floor is the roofline time ``max(FLOPs / peak FLOP/s, bytes / bandwidth)``.

Shapes (the defaults are the paper's, ``recipes/vtgllm/base.yaml``):

* EVA-ViT-g: 224 px frames, 14 px patches (256 patches + CLS = 257 tokens), width 1408, 39
  blocks, MLP 6144;
* InstructBLIP Q-Former: 32 queries, width 768, 12 layers, cross-attention to the 257 ViT tokens
  every 2nd layer, feed-forward 3072;
* slot compressor: 96 x 32 tokens of width 768 mixed into 256 slots; linear projection 768 -> 4096;
* LLaMA-2-7B: width 4096, 32 layers, 32 heads (no grouped KV), MLP 11008, vocabulary 32000 plus
  the 12 added tokens (11 time tokens and ``<video>``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class ViTShape:
    """A pre-norm ViT with a conv patch stem and a CLS token."""

    image_size: int = 224
    patch_size: int = 14
    width: int = 1408
    depth: int = 39
    mlp: int = 6144

    @property
    def patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def tokens(self) -> int:
        return self.patches + 1


@dataclass(frozen=True)
class QFormerShape:
    """BERT-style Q-Former run on queries only (no text)."""

    queries: int = 32
    hidden: int = 768
    layers: int = 12
    intermediate: int = 3072
    cross_every: int = 2


@dataclass(frozen=True)
class LLMShape:
    """A LLaMA-style decoder (untied embeddings and head, SwiGLU MLP)."""

    hidden: int = 4096
    layers: int = 32
    heads: int = 32
    kv_heads: int = 32
    intermediate: int = 11008
    vocab: int = 32012

    @property
    def kv_width(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    def layer_params(self) -> int:
        """Weights of one decoder layer (q, k, v, o, gate, up, down, two RMSNorms)."""
        d = self.hidden
        return 2 * d * d + 2 * d * self.kv_width + 3 * d * self.intermediate + 2 * d

    def params(self) -> int:
        """All weights: embeddings, layers, final norm, head."""
        return 2 * self.vocab * self.hidden + self.layers * self.layer_params() + self.hidden


@dataclass(frozen=True)
class ModelShape:
    """The whole video LLM as the benchmark sees it."""

    frames: int = 96
    vit: ViTShape = field(default_factory=ViTShape)
    qformer: QFormerShape = field(default_factory=QFormerShape)
    slots: int = 256
    llm: LLMShape = field(default_factory=LLMShape)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PAPER = ModelShape()


def vit_flops_per_frame(s: ViTShape) -> int:
    """ViT forward FLOPs for one frame.

    Stem ``2 P (3 p^2) d``; per block ``2 N (4 d^2 + 2 d m)`` for the qkv, output and MLP
    projections plus ``4 N^2 d`` for scores and the weighted sum.
    """
    n, d = s.tokens, s.width
    stem = 2 * s.patches * 3 * s.patch_size ** 2 * d
    block = 2 * n * (4 * d * d + 2 * d * s.mlp) + 4 * n * n * d
    return stem + s.depth * block


def qformer_flops_per_frame(q: QFormerShape, enc_tokens: int, enc_width: int) -> int:
    """Q-Former forward FLOPs for one frame (queries only).

    Self-attention per layer ``2 Q 4h^2 + 4 Q^2 h``; cross-attention ``2 Q 2h^2`` (query, output)
    ``+ 2 N 2 e h`` (keys and values from the ViT tokens) ``+ 4 Q N h``; feed-forward ``4 Q h f``.
    """
    h, n_q = q.hidden, q.queries
    self_attn = 2 * n_q * 4 * h * h + 4 * n_q * n_q * h
    cross = 2 * n_q * 2 * h * h + 2 * enc_tokens * 2 * enc_width * h + 4 * n_q * enc_tokens * h
    ffn = 4 * n_q * h * q.intermediate
    n_cross = len(range(0, q.layers, q.cross_every))
    return q.layers * (self_attn + ffn) + n_cross * cross


def encoder_flops(m: ModelShape) -> int:
    """ViT and Q-Former over all frames of a video."""
    per_frame = vit_flops_per_frame(m.vit) + qformer_flops_per_frame(m.qformer, m.vit.tokens, m.vit.width)
    return m.frames * per_frame


def compress_project_flops(m: ModelShape) -> int:
    """Slot mixing (``X S`` then ``A^T X``: ``4 N Dv K``) and the projection ``2 K Dv D``."""
    n, dv = m.frames * m.qformer.queries, m.qformer.hidden
    return 4 * n * dv * m.slots + 2 * m.slots * dv * m.llm.hidden


def llm_prefill_flops(l: LLMShape, seq: int, logits_positions: int = 1) -> int:
    """Causal prefill of ``seq`` tokens: weights ``2 S W`` (W: the layer weights), attention
    ``4 h P`` per layer over the ``P = S (S + 1) / 2`` causal query-key pairs, and the head on
    ``logits_positions`` positions (generation needs 1)."""
    pairs = seq * (seq + 1) // 2
    return (l.layers * (2 * seq * (l.layer_params() - 2 * l.hidden) + 4 * l.hidden * pairs)
            + 2 * logits_positions * l.hidden * l.vocab)


def lora_step_flops(l: LLMShape, seq: int, answer_positions: int, checkpointing: bool = True) -> int:
    """A LoRA training step of the LLM on ``seq`` tokens with the loss on ``answer_positions``.

    The frozen base weights need only the gradient with respect to their inputs (as many FLOPs as
    the forward); gradient checkpointing runs the forward a second time; the adapters' own FLOPs
    (rank 32) are left out. So ``(2 + checkpointing) x forward``.
    """
    forward = llm_prefill_flops(l, seq, logits_positions=answer_positions)
    return (3 if checkpointing else 2) * forward


def cache_ratio_from_flops(m: ModelShape, seq: int, answer_positions: int, checkpointing: bool = True) -> float:
    """Training-step speed-up of the feature cache of a frozen encoder if time followed FLOPs:
    (encoder forward + LLM step) / LLM step. Decoding is left out (it runs in loader workers)."""
    step = lora_step_flops(m.llm, seq, answer_positions, checkpointing) + compress_project_flops(m) * 3
    return (encoder_flops(m) + step) / step


def llm_decode_flops(l: LLMShape, context: int, batch: int = 1) -> int:
    """One decoding step for ``batch`` sequences that already hold ``context`` tokens."""
    per_seq = (l.layers * (2 * (l.layer_params() - 2 * l.hidden) + 4 * l.hidden * (context + 1))
               + 2 * l.hidden * l.vocab)
    return batch * per_seq


def llm_decode_bytes(l: LLMShape, context: int, batch: int = 1, weight_bytes: float = 2.0,
                     kv_bytes: float = 2.0) -> int:
    """Memory traffic of one decoding step: every layer weight and the head read once for the
    whole batch, one embedding row per sequence, and each sequence's KV cache read."""
    weights = (l.layers * l.layer_params() + l.hidden * l.vocab + l.hidden) * weight_bytes
    rows = batch * l.hidden * weight_bytes
    kv = batch * 2 * l.layers * context * l.kv_width * kv_bytes
    return int(weights + rows + kv)


def weight_bytes(m: ModelShape, llm_bytes: float = 2.0, vit_bytes: float = 2.0, qformer_bytes: float = 4.0,
                 embed_bytes: float = 2.0) -> dict[str, int]:
    """Resident weights by part: fp16 ViT (``vit_precision: fp16``), fp32 Q-Former (as built),
    the LLM's layers at ``llm_bytes`` per weight (2: fp16/bf16, 1: 8-bit, 0.5: 4-bit; quantisation
    scales left out) and its embeddings and head at ``embed_bytes`` (bitsandbytes leaves them
    unquantised; 4 where LoRA recipes train them in fp32, ``extra_trainable``)."""
    v = m.vit
    vit = (3 * v.patch_size ** 2 * v.width + v.width + v.width + v.tokens * v.width
           + v.depth * (2 * v.width + 3 * v.width * v.width + 2 * v.width + v.width * v.width + v.width
                        + 2 * v.width + v.width * v.mlp + v.mlp + v.mlp * v.width + v.width))
    q, h = m.qformer, m.qformer.hidden
    attn_out = h * h + h + 2 * h
    qf = (2 * h + q.layers * (3 * (h * h + h) + attn_out + h * q.intermediate + q.intermediate
                              + q.intermediate * h + h + 2 * h)
          + len(range(0, q.layers, q.cross_every)) * ((h * h + h) + 2 * (v.width * h + h) + attn_out)
          + q.queries * h + 2 * v.width)
    embed = 2 * m.llm.vocab * m.llm.hidden
    return {"vit": int(vit * vit_bytes), "qformer": int(qf * qformer_bytes),
            "llm_layers": int((m.llm.params() - embed) * llm_bytes), "llm_embed_head": int(embed * embed_bytes)}


def kv_cache_bytes(l: LLMShape, tokens: int, batch: int = 1, bytes_per: float = 2.0) -> int:
    """KV cache of ``batch`` sequences of ``tokens`` tokens."""
    return int(batch * 2 * l.layers * tokens * l.kv_width * bytes_per)


# Dense (no sparsity) tensor-core fp16/bf16 peaks and memory bandwidths from the vendors' data sheets.
DEVICE_PEAKS: dict[str, tuple[float, float]] = {
    "H200": (989.4e12, 4.8e12),
    "H100 NVL": (835e12, 3.9e12),
    "H100 PCIe": (756.5e12, 2.0e12),
    "H100": (989.4e12, 3.35e12),  # SXM
    "A100-SXM4-80GB": (312e12, 2.039e12),
    "A100 80GB PCIe": (312e12, 1.935e12),
    "A100": (312e12, 1.555e12),  # 40 GB
    "V100": (125e12, 0.9e12),
}


def device_peaks(name: str) -> Optional[tuple[float, float]]:
    """Data-sheet (FLOP/s, bytes/s) for a CUDA device name, longest matching key first; None
    when unknown."""
    for key in sorted(DEVICE_PEAKS, key=len, reverse=True):
        if key.lower() in name.lower():
            return DEVICE_PEAKS[key]
    return None


def floor_seconds(flops: float, bytes_moved: float, peak_flops: float, bandwidth: float) -> float:
    """Roofline floor: the slower of the compute time and the memory time."""
    return max(flops / peak_flops, bytes_moved / bandwidth)


def video_floors(m: ModelShape, seq: int, new_tokens: int, peak_flops: float, bandwidth: float,
                 batch: int = 1, weight_bytes_per: float = 2.0) -> dict[str, Any]:
    """Floors of one video's inference: encoder, prefill of ``seq`` tokens, ``new_tokens`` decoding
    steps, all at ``batch`` videos per call (per-video numbers divide by ``batch``).

    Returns:
        FLOPs, bytes and floor seconds for ``encode`` (frames to video tokens), ``prefill``,
        ``decode`` (all steps) and their ``total``, per video.
    """
    w = weight_bytes(m)
    enc_flops = batch * (encoder_flops(m) + compress_project_flops(m))
    enc_bytes = w["vit"] + w["qformer"] + batch * m.frames * 3 * m.vit.image_size ** 2 * 4
    pre_flops = batch * llm_prefill_flops(m.llm, seq)
    pre_bytes = int(m.llm.params() * weight_bytes_per) + kv_cache_bytes(m.llm, seq, batch)
    dec_flops = sum(llm_decode_flops(m.llm, seq + i, batch) for i in range(new_tokens))
    dec_bytes = sum(llm_decode_bytes(m.llm, seq + i, batch, weight_bytes_per) for i in range(new_tokens))
    dec_floor = sum(floor_seconds(llm_decode_flops(m.llm, seq + i, batch),
                                  llm_decode_bytes(m.llm, seq + i, batch, weight_bytes_per), peak_flops, bandwidth)
                    for i in range(new_tokens))
    out = {
        "encode": {"flops": enc_flops / batch, "bytes": enc_bytes / batch,
                   "floor_s": floor_seconds(enc_flops, enc_bytes, peak_flops, bandwidth) / batch},
        "prefill": {"flops": pre_flops / batch, "bytes": pre_bytes / batch,
                    "floor_s": floor_seconds(pre_flops, pre_bytes, peak_flops, bandwidth) / batch},
        "decode": {"flops": dec_flops / batch, "bytes": dec_bytes / batch, "floor_s": dec_floor / batch,
                   "steps": new_tokens},
    }
    out["total"] = {"flops": sum(v["flops"] for v in out.values()), "bytes": sum(v["bytes"] for v in out.values()),
                    "floor_s": sum(v["floor_s"] for v in out.values())}
    return out


ACTIVATION_BYTES_PER_TOKEN_WIDTH = 34
"""Bytes of one decoder layer's saved activations per token and unit of width in 16-bit training
with fused attention (Korthikanti et al. 2022, ``34 s b h`` without the attention-score term)."""


def grpo_step_estimate(m: ModelShape, prompt: int, answer: int, group: int, passes: int, kl: bool,
                       trainable: int, peak_flops: float, bandwidth: float, *, encoder_trains: bool = True,
                       checkpointing: bool = True, embed_bytes: float = 4.0) -> dict[str, Any]:
    """Floors and memory of one GRPO iteration for one prompt (``vtgcore.mm.grpo``): the video
    encoded once for sampling, the prompt expanded to ``group`` rows and prefilled, ``answer``
    decoding steps for the group (KV cache), then with ``kl`` the reference policy's forward, with
    ``passes`` > 1 the sampling policy's forward, and ``passes`` training steps (LoRA with
    gradient checkpointing) on the group's ``prompt + answer`` tokens; every policy forward encodes
    the video once for the group (through the trainable Q-Former when ``encoder_trains``).

    Memory: the resident weights (:func:`weight_bytes`, embeddings and head at ``embed_bytes``),
    fp32 gradients and two AdamW moments of the ``trainable`` parameters, the reference policy's
    copy of them (``kl``), and the larger of the sampling phase (the group's KV cache) and the
    training phase (each layer's input kept for checkpointing, one layer's activations being
    recomputed, the fp32 logits of the group). Activations of the encoder are left out.

    Returns:
        ``phases``: FLOPs, bytes and floor seconds of ``encode``, ``prefill``, ``decode``,
        ``reference``, ``old_policy``, ``train``; ``total_floor_s``; ``memory`` in bytes by part and
        ``peak``.
    """
    llm, seq = m.llm, prompt + answer
    w = weight_bytes(m, embed_bytes=embed_bytes)
    weights = sum(w.values())
    encode = encoder_flops(m) + compress_project_flops(m)
    forward = encode + group * llm_prefill_flops(llm, seq, logits_positions=answer)
    step = (encode + (2 * qformer_flops_per_frame(m.qformer, m.vit.tokens, m.vit.width) * m.frames
                      if encoder_trains else 0) + compress_project_flops(m) * 2
            + group * lora_step_flops(llm, seq, answer, checkpointing))
    llm_bytes = int(llm.params() * 2.0)
    phases = {
        "encode": (encode, w["vit"] + w["qformer"]),
        "prefill": (group * llm_prefill_flops(llm, prompt), llm_bytes + kv_cache_bytes(llm, prompt, group)),
        "decode": (sum(llm_decode_flops(llm, prompt + i, group) for i in range(answer)),
                   sum(llm_decode_bytes(llm, prompt + i, group) for i in range(answer))),
        "reference": ((forward, weights) if kl else (0, 0)),
        "old_policy": ((forward, weights) if passes > 1 else (0, 0)),
        "train": (passes * step, passes * 3 * weights),
    }
    out: dict[str, Any] = {"phases": {}}
    for name, (flops, moved) in phases.items():
        if name == "decode":  # each step is its own roofline
            floor = sum(floor_seconds(llm_decode_flops(llm, prompt + i, group), llm_decode_bytes(llm, prompt + i, group),
                                      peak_flops, bandwidth) for i in range(answer))
        else:
            floor = floor_seconds(flops, moved, peak_flops, bandwidth) if flops else 0.0
        out["phases"][name] = {"flops": flops, "bytes": moved, "floor_s": floor}
    out["total_floor_s"] = sum(p["floor_s"] for p in out["phases"].values())
    states = 12 * trainable  # fp32 gradient + two AdamW moments
    reference = 4 * trainable if kl else 0
    kv = kv_cache_bytes(llm, seq, group)
    tokens = group * seq
    activations = (llm.layers * tokens * llm.hidden * 2 + ACTIVATION_BYTES_PER_TOKEN_WIDTH * tokens * llm.hidden
                   if checkpointing else llm.layers * ACTIVATION_BYTES_PER_TOKEN_WIDTH * tokens * llm.hidden)
    logits = tokens * llm.vocab * 4
    out["memory"] = {"weights": weights, "gradients_and_adam": states, "reference": reference,
                     "kv_cache_sampling": kv, "activations_training": activations, "logits_training": logits}
    out["memory"]["peak"] = weights + states + reference + max(kv, activations + logits)
    return out


def _grpo_table(argv: Optional[list[str]] = None) -> int:
    """``python -m vtgcore.apps.perf.floors grpo``: the estimate at the paper's shapes as a table."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vtgcore.apps.perf.floors grpo")
    parser.add_argument("--prompt", type=int, default=1000, help="prompt tokens (default 1000)")
    parser.add_argument("--answer", type=int, default=64, help="sampled tokens per answer (default 64)")
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--no-kl", action="store_true")
    parser.add_argument("--trainable", type=int, default=PAPER_TRAINABLE)
    args = parser.parse_args(argv)
    gib = 1024 ** 3
    for device in ("H100", "A100-SXM4-80GB"):
        peak, bw = DEVICE_PEAKS[device]
        est = grpo_step_estimate(PAPER, args.prompt, args.answer, args.group, args.passes, not args.no_kl,
                                 args.trainable, peak, bw)
        print(f"{device}: " + ", ".join(f"{k} {v['flops'] / 1e12:.1f} TFLOP {v['floor_s'] * 1e3:.0f} ms"
                                        for k, v in est["phases"].items())
              + f"; total floor {est['total_floor_s']:.2f} s")
    print("memory: " + ", ".join(f"{k} {v / gib:.2f} GiB" for k, v in est["memory"].items()))
    return 0


PAPER_TRAINABLE = 410_572_288
"""Trainable parameters of ``recipes/vtgllm/grpo_charades.yaml`` as built (LoRA r 32 on q, k, v,
o: 33.6M; the fp32 embeddings and head: 262.2M; the Q-Former: 105.1M; the absolute-second table,
slots and projection; ``tests/test_full_size.py`` counts them on the meta device)."""


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] != ["grpo"]:
        sys.exit("usage: python -m vtgcore.apps.perf.floors grpo [--prompt N] [--answer N] [--group G] "
                 "[--passes P] [--no-kl] [--trainable N]")
    sys.exit(_grpo_table(sys.argv[2:]))
