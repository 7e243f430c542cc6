"""The paper's model at its real shapes on random weights: time per video against the floor.

On a CUDA machine :func:`run_real_shapes` builds ``recipes/vtgllm/eval_charades.yaml`` (EVA-ViT-g
fp16 + Q-Former, 96 frames, slot 256, LLaMA-2-7B with LoRA) with random weights (no file is read),
the LLM in fp16 (what a V100 runs; no bf16), and measures, per video:

* ``encode``: 96 frames through ViT and Q-Former (in ``frame_chunk`` chunks), time embedding, slot
  compression and projection;
* ``prefill``: the LLM over the prompt (video tokens, 96 frame times, the query);
* ``decode``: ``new_tokens`` greedy steps with the KV cache (every step forced, so runs compare);

at batch 1 and batch 8, each beside its floor from :mod:`vtgcore.apps.perf.floors` (data-sheet peaks of
the device, and the matmul and copy rates measured on it); the peak GPU memory of inference (and
what the weights alone take, with the 8-bit and 4-bit estimates for a 16 GB card); and one LoRA
training step (gradient checkpointing, as ``base.yaml``) from pixels and from cached encoder
features: the feature cache's gain at the paper's shapes, decoding left out.

``scale="scaled"`` builds the same recipe at toy widths, which runs on a CPU in seconds: the test
suite uses it to check this code path and the arithmetic; its times mean nothing.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Optional

from vtgcore.apps.perf import floors as F
from vtgcore.apps.perf.timing import seconds, sync

PAPER_LLAMA = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
               "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096,
               "rms_norm_eps": 1e-5, "vocab_size": 32000}
SCALED_LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 4096,
                "vocab_size": 512}
SCALED_ENCODER = {"image_size": 28, "patch_size": 14, "vit_width": 32, "vit_depth": 2, "vit_heads": 2,
                  "vit_mlp_ratio": 2.0, "vit_precision": "fp32", "num_query_tokens": 4, "qformer_hidden": 32,
                  "qformer_layers": 2, "qformer_heads": 2, "qformer_intermediate": 64, "frame_chunk": 4}

QUERY = "Find the start and end time of the moment: a person opens the door and walks out of the room."
ANSWER = "From 0012.5 to 0017.0 seconds."


def recipe_path() -> Path:
    """The shipped ``recipes/vtgllm/eval_charades.yaml`` (a checkout's, or the installed package's)."""
    from vtgcore.config.loader import packaged_root

    path = packaged_root() / "vtgllm" / "eval_charades.yaml"
    if not path.is_file():
        from vtgcore.errors import VTGError

        raise VTGError(f"the real-shape benchmark needs the shipped recipes; {path} is missing")
    return path


def real_shape_recipe(scale: str = "paper", frames: Optional[int] = None) -> Any:
    """The evaluation recipe with random weights: no weight file, the LLM from an in-memory
    LLaMA-2-7B config in fp16 with the offline tiny tokenizer; ``scaled`` shrinks every width."""
    from omegaconf import OmegaConf

    from vtgcore.config.loader import load_recipe

    overrides = ["model.encoder.params.vit_checkpoint=null", "model.encoder.params.qformer_checkpoint=null",
                 "model.llm.params.path=null", "model.llm.params.tokenizer=tiny",
                 "model.llm.params.gradient_checkpointing=false", "data.video_root=.",
                 "model.llm.params.dtype=" + ("float16" if scale == "paper" else "float32")]
    if scale == "scaled":
        overrides += ["model.compressor.params.num_slots=8", "data.num_frames=8"]
    elif scale != "paper":
        raise ValueError(f"scale must be 'paper' or 'scaled', got {scale!r}")
    if frames is not None:
        overrides.append(f"data.num_frames={frames}")
    recipe = load_recipe(recipe_path(), overrides)
    recipe.model.llm.params.model_config = OmegaConf.create(PAPER_LLAMA if scale == "paper" else SCALED_LLAMA)
    if scale == "scaled":
        for key, value in SCALED_ENCODER.items():
            recipe.model.encoder.params[key] = value
    return recipe


def model_shape(recipe: Any, model: Any) -> F.ModelShape:
    """The :class:`~vtgcore.apps.perf.floors.ModelShape` of a built model (for its FLOP counts)."""
    enc = recipe.model.encoder.params
    cfg = model.llm.model.config
    vit = F.ViTShape(image_size=int(enc.image_size), patch_size=int(enc.patch_size), width=int(enc.vit_width),
                     depth=int(enc.vit_depth), mlp=int(enc.vit_width * enc.vit_mlp_ratio))
    qf = F.QFormerShape(queries=int(enc.num_query_tokens), hidden=int(enc.qformer_hidden),
                        layers=int(enc.qformer_layers), intermediate=int(enc.qformer_intermediate),
                        cross_every=int(enc.cross_attention_freq))
    llm = F.LLMShape(hidden=cfg.hidden_size, layers=cfg.num_hidden_layers, heads=cfg.num_attention_heads,
                     kv_heads=cfg.num_key_value_heads, intermediate=cfg.intermediate_size,
                     vocab=int(model.llm.model.get_input_embeddings().weight.shape[0]))
    return F.ModelShape(frames=int(recipe.data.num_frames), vit=vit, qformer=qf,
                        slots=int(recipe.model.compressor.params.num_slots), llm=llm)


def measured_peaks(device: Any, quick: bool = False) -> dict[str, float]:
    """Matmul FLOP/s (fp16 on CUDA, fp32 on CPU) and copy bandwidth (read + write) measured here."""
    import torch

    cuda = str(device).startswith("cuda")
    n = (4096 if quick else 8192) if cuda else 256
    dtype = torch.float16 if cuda else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    reps = 20 if cuda else 3
    t = statistics.median(seconds(lambda: a @ b, device) for _ in range(reps))
    src = torch.empty(int((2**30 if cuda else 2**24) // 4), device=device, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)
    c = statistics.median(seconds(lambda: dst.copy_(src), device) for _ in range(reps))
    return {"matmul_flops": 2 * n**3 / t, "copy_bytes_per_s": 2 * src.numel() * 4 / c, "matmul_n": n}


def _inputs(processor: Any, shape: F.ModelShape, batch: int, device: Any, answer: bool = False) -> dict:
    """Random frames, 30 s of frame times and the prompt (with an answer for training) on ``device``."""
    import torch

    t, size = shape.frames, shape.vit.image_size
    gen = torch.Generator().manual_seed(0)
    frames = torch.randn(batch, t, 3, size, size, generator=gen).to(device)
    ts = (torch.arange(t, dtype=torch.float32) * (30.0 / t)).expand(batch, t).contiguous()
    turns = [[{"q": QUERY, **({"a": ANSWER} if answer else {})}] for _ in range(batch)]
    text = processor(turns, [ts[i].tolist() for i in range(batch)], add_generation_prompt=not answer, num_frames=t)
    out = {"frames": frames, "timestamps": ts.to(device), "frame_mask": torch.ones(batch, t, dtype=torch.bool, device=device)}
    out.update({k: v.to(device) for k, v in text.items() if hasattr(v, "to")})
    return out


def _inference(model: Any, inputs: dict, new_tokens: int, repeats: int, device: Any) -> dict[str, float]:
    """Median seconds of encode, prefill and a whole generation of ``new_tokens`` forced steps."""
    import torch

    llm = model.llm

    def encode() -> Any:
        return model.prepare_inputs(inputs["frames"], inputs["timestamps"], inputs["input_ids"],
                                    inputs["attention_mask"], inputs["frame_mask"])

    with torch.no_grad():
        _, embeds, mask = encode()

    def prefill() -> Any:
        with llm._autocast(embeds):
            return llm.model(inputs_embeds=embeds, attention_mask=mask, use_cache=True, logits_to_keep=1)

    def generate() -> Any:
        return model.generate(inputs["frames"], inputs["timestamps"], inputs["input_ids"], inputs["attention_mask"],
                              frame_mask=inputs["frame_mask"], max_new_tokens=new_tokens, min_new_tokens=new_tokens)

    with torch.no_grad():
        generate()  # warm-up (kernels, allocator)
        enc = statistics.median(seconds(encode, device) for _ in range(repeats))
        pre = statistics.median(seconds(prefill, device) for _ in range(repeats))
        total = statistics.median(seconds(generate, device) for _ in range(repeats))
    # decoding is what the whole generation takes beyond encode and prefill (clipped at 0: at toy
    # widths on a busy CPU the medians can cross)
    return {"encode_s": enc, "prefill_s": pre, "decode_s": max(total - enc - pre, 0.0), "total_s": total}


def _vs_floor(measured: dict[str, float], floors: dict[str, Any], batch: int) -> dict[str, Any]:
    per_video = {k: v / batch for k, v in measured.items()}
    out: dict[str, Any] = {"per_video_s": per_video, "floor_per_video_s": {}, "times_floor": {}}
    for part, key in (("encode", "encode_s"), ("prefill", "prefill_s"), ("decode", "decode_s"), ("total", "total_s")):
        floor = floors[part]["floor_s"]
        out["floor_per_video_s"][part] = floor
        out["times_floor"][part] = per_video[key] / floor if floor > 0 else None
    return out


def _train_step(model: Any, inputs: dict, cached: Optional[Any], device: Any, repeats: int) -> float:
    """Median seconds of a LoRA step (forward, backward) from pixels or cached encoder features."""
    import torch

    frames = cached if cached is not None else inputs["frames"]
    cuda = str(device).startswith("cuda")

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            out = model(frames, inputs["timestamps"], inputs["input_ids"], inputs["attention_mask"], inputs["labels"],
                        frame_mask=inputs["frame_mask"], return_logits=False)
        out.loss.backward()
        model.zero_grad(set_to_none=True)

    step()
    return statistics.median(seconds(step, device) for _ in range(repeats))


def run_real_shapes(scale: str = "paper", device: Optional[str] = None, *, new_tokens: int = 64, batch: int = 8,
                    repeats: int = 3, train: bool = True, quick: bool = False) -> dict[str, Any]:
    """Build the model at ``scale`` on ``device`` with random weights and measure it (module docstring).

    Returns:
        JSON-ready results: ``device``, ``shape``, ``seq`` (prompt tokens), ``peaks`` (data sheet and
        measured), ``batch_1`` and ``batch_N`` (per-video seconds, floors, multiples of the floor),
        ``memory`` and ``train_step``.
    """
    import torch

    from vtgcore.build import build_model

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    recipe = real_shape_recipe(scale)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with torch.device(device):
        model, processor = build_model(recipe)
    model.eval()
    if cuda:
        torch.cuda.synchronize()
    weights_resident = int(torch.cuda.memory_allocated()) if cuda else None
    build_peak = int(torch.cuda.max_memory_allocated()) if cuda else None
    shape = model_shape(recipe, model)
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    sheet = F.device_peaks(name) if cuda else None
    measured = measured_peaks(device, quick=quick)
    peak_flops, bandwidth = sheet or (measured["matmul_flops"], measured["copy_bytes_per_s"])
    result: dict[str, Any] = {
        "scale": scale, "device": name, "shape": shape.as_dict(), "new_tokens": new_tokens,
        "peaks": {"datasheet": None if sheet is None else {"flops": sheet[0], "bytes_per_s": sheet[1]},
                  "measured": measured, "floor_uses": "datasheet" if sheet else "measured"},
    }
    for b in (1, batch):
        inputs = _inputs(processor, shape, b, device)
        seq = int(inputs["input_ids"].shape[1])
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        timing = _inference(model, inputs, new_tokens, repeats, device)
        floors = F.video_floors(shape, seq, new_tokens, peak_flops, bandwidth, batch=b)
        entry = _vs_floor(timing, floors, b)
        entry.update(seq=seq, batch=b, flops_per_video=floors["total"]["flops"],
                     cuda_peak_bytes=int(torch.cuda.max_memory_allocated()) if cuda else None)
        result[f"batch_{b}"] = entry
        result["seq"] = seq
    result["memory"] = {
        "weights_resident_bytes": weights_resident, "build_peak_bytes": build_peak,
        "inference_peak_bytes_batch_1": result["batch_1"]["cuda_peak_bytes"],
        # the recipe trains embeddings and head with LoRA (extra_trainable): fp32 rows
        "estimate_weights_bytes": {q: sum(F.weight_bytes(shape, llm_bytes=w, embed_bytes=4.0).values())
                                   for q, w in (("fp16", 2.0), ("8bit", 1.0), ("4bit", 0.5))},
        "estimate_kv_cache_bytes": F.kv_cache_bytes(shape.llm, result["seq"] + new_tokens),
        "weights_by_part_fp16": F.weight_bytes(shape, embed_bytes=4.0),
    }
    if train:
        model.train()
        hf = model.llm.model
        (getattr(hf, "activation_checkpointing_enable", None) or hf.gradient_checkpointing_enable)()
        inputs = _inputs(processor, shape, 1, device, answer=True)
        with torch.no_grad():
            features = model.encode_frames(inputs["frames"], inputs["timestamps"])
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        pixels = _train_step(model, inputs, None, device, repeats)
        pixel_peak = int(torch.cuda.max_memory_allocated()) if cuda else None
        cached = _train_step(model, inputs, features, device, repeats)
        seq = int(inputs["input_ids"].shape[1])
        answer = int((inputs["labels"] != -100).sum())
        result["train_step"] = {"batch": 1, "seq": seq, "from_pixels_s": pixels,
                                "from_cached_features_s": cached, "cache_ratio": pixels / cached,
                                "cache_ratio_from_flops": F.cache_ratio_from_flops(shape, seq, answer),
                                "gradient_checkpointing": True, "cuda_peak_bytes": pixel_peak}
    sync(device)
    return result
