"""The benchmark suite: where the time of the common paths goes, as ratios against naive baselines.

    python -m bench [--quick] [--json out.json] [--only SECTION ...]
    vtg bench [--quick] [--json out.json]

Every row times a baseline and a fast path in this one process, back to back, several times
(alternating which runs first) and reports the median of the per-pair ratios (above 1: the fast
path is faster), so a machine whose load changes during the run still compares like with like.

Sections (rows):

* ``decode``: 96 uniformly sampled frames of a long generated video: seek-based readers (decord,
  PyAV) vs decoding every frame;
* ``loading``: training steps of ``recipes/vtgllm/synth_tiny.yaml`` at 96 frames with the clips
  decoded in DataLoader workers (prefetching) vs in the training loop;
* ``feature_cache``: the same training steps (frozen encoder) from cached features vs decoding and
  encoding every clip, at 96 frames and at the recipe's 16 on VTG-Synth (64 px, 4 fps), and at 96
  frames on clips shaped like Charades-STA's (480x360, 24 fps, 30 s, H.264 at about 1 Mbit/s, so
  decoding costs what it does on real clips); and, from the cache, the loss computed only at answer
  positions vs over all logits;
* ``compressors``: every first-party compressor over T in 8..96 frames and L in 4..32 tokens, the
  batch in one call vs a per-sample loop;
* ``generation``: the evaluation path's batched generation, batch 8 vs 1, at the recipe's 16 frames
  and at 96 (the prompt lists every frame's time: 227 and 867 tokens); and HF ``generate`` with its
  KV cache vs a greedy loop that runs the whole sequence every step (same tokens checked);
* ``eval``: end-to-end evaluation items per second (decode, encode, generate, parse, write) at the
  recipe's 16 frames: batch 8 with loader workers vs batch 1 without (same outputs checked);
* ``memory``: peak RSS of training and of evaluation of the tiny recipe (each in a fresh process);
* ``real_shapes``: on CUDA, the paper's shapes on random weights, time per video against the floor
  from FLOPs and memory bandwidth (:mod:`vtgcore.apps.perf.gpu`); without CUDA the same code at toy
  widths (a code-path check: its times are no measurement).

It prints a table and writes JSON (machine facts, settings, rows and details). ``--quick`` runs
every row at toy sizes in seconds (for the test suite; its ratios mean nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from vtgcore.apps.perf.timing import machine_info, paired, seconds

SECTIONS = ("decode", "loading", "feature_cache", "compressors", "generation", "eval", "memory", "real_shapes")
RECIPE = "vtgllm/synth_tiny.yaml"  # a shipped recipe, by name (vtgcore.config.loader.resolve_recipe_path)


@dataclass
class Settings:
    """Sizes of one run (``FULL`` or ``QUICK``)."""

    repeats: int = 5
    train_repeats: int = 5
    decode_minutes: float = 10.0
    decode_fps: float = 25.0
    decode_size: int = 128
    decode_codec: str = "libx264"
    decode_gop: int = 50
    sampled_frames: int = 96
    frames: int = 96
    recipe_frames: int = 16
    videos: int = 16
    val_videos: int = 6
    batch_size: int = 8
    steps: int = 3
    workers: int = 2
    comp_frames: tuple[int, ...] = (8, 32, 96)
    comp_tokens: tuple[int, ...] = (4, 32)
    comp_dim: int = 64
    comp_k: int = 32
    comp_batch: int = 4
    gen_items: int = 16
    gen_batch: int = 8
    new_tokens: int = 32
    eval_items: int = 16
    memory_steps: int = 3
    memory_batch: int = 16
    memory_subprocess: bool = True
    real_new_tokens: int = 64
    real_batch: int = 8
    clip_size: tuple[int, int] = (360, 480)
    clip_fps: float = 24.0
    clip_seconds: float = 30.0
    clip_videos: int = 4
    clip_batch: int = 4
    clip_repeats: int = 3


FULL = Settings()
QUICK = Settings(repeats=1, train_repeats=1, decode_minutes=0.1, decode_size=64, decode_codec="mpeg4", decode_gop=12,
                 sampled_frames=8, frames=4, recipe_frames=2, videos=2, val_videos=1, batch_size=2, steps=1, workers=1,
                 comp_frames=(4,), comp_tokens=(4,), comp_dim=16, comp_k=4, comp_batch=2, gen_items=2, gen_batch=2,
                 new_tokens=2, eval_items=2, memory_steps=1, memory_batch=2, memory_subprocess=False, real_new_tokens=2,
                 real_batch=2, clip_size=(32, 48), clip_fps=4.0, clip_seconds=4.0, clip_videos=2, clip_batch=2,
                 clip_repeats=1)


def row(section: str, name: str, baseline: Optional[str], fast: Optional[str], result: Optional[dict], *,
        unit: str = "s", value: Optional[float] = None, **extra: Any) -> dict[str, Any]:
    """One table row: a paired measurement (``result`` from :func:`~vtgcore.apps.perf.timing.paired`)
    or a single ``value``."""
    out: dict[str, Any] = {"section": section, "name": name, "baseline": baseline, "fast": fast, "unit": unit}
    if result is not None:
        out.update(baseline_value=result["baseline_s"], fast_value=result["fast_s"], ratio=result["ratio"],
                   ratios=result["ratios"])
    else:
        out.update(baseline_value=None, fast_value=value, ratio=None, ratios=[])
    out.update(extra)
    return out


# -- data -------------------------------------------------------------------------------------------

def make_synth(root: Path, s: Settings) -> Path:
    """VTG-Synth videos long enough for ``s.frames`` frames (4 fps, 24 to 40 s)."""
    from vtgcore.data.synth import generate_synth

    out = root / "synth"
    generate_synth(out, seed=0, n_train=s.videos, n_val=s.val_videos, min_duration=max(8.0, s.frames / 4.0),
                   max_duration=max(16.0, s.frames / 4.0 + 16.0))
    return out


def recipe_overrides(synth: Path, frames: int, batch_size: int, *extra: str) -> list[str]:
    """The tiny recipe at ``frames`` frames and training batch ``batch_size`` on the generated set
    (with prompt room for 96 frame times), with the VTG-LLM parts the benchmark was measured with:
    slot compression to 32 tokens, no grounding stage and every frame's time in the prompt (the
    recipe itself now does none of the three)."""
    return [f"data.video_root={synth}", f"data.num_frames={frames}", f"data.train.batch_size={batch_size}",
            "compressor=slot_8", "model.compressor.params.num_slots=32", "model.grounding.name=none",
            "model.prompt.timestamps_in_prompt=true",
            "model.prompt.max_length=2048", "model.llm.params.model_config.max_position_embeddings=2048", *extra]


# -- decode -----------------------------------------------------------------------------------------

def decode_all(path: Path, indices: list[int]) -> Any:
    """The baseline: decode every frame in order with PyAV, keep the wanted ones."""
    import av
    import numpy as np
    import torch

    wanted, kept = set(indices), {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for position, frame in enumerate(container.decode(stream)):
            if position in wanted:
                kept[position] = frame.to_ndarray(format="rgb24")
    return torch.from_numpy(np.stack([kept[i] for i in indices])).permute(0, 3, 1, 2)


def bench_decode(s: Settings, tmp: Path, details: dict) -> list[dict]:
    import av

    from vtgcore.data import video as V
    from vtgcore.data.pattern_videos import decode_frame_ids, write_test_video

    codec = s.decode_codec if s.decode_codec in av.codecs_available else "mpeg4"
    path = tmp / "long.mp4"
    start = time.perf_counter()
    write_test_video(path, duration=s.decode_minutes * 60, fps=s.decode_fps, size=(s.decode_size, s.decode_size),
                     codec=codec, gop_size=s.decode_gop)
    n = V.PyAVReader().probe(path).num_frames
    indices = V.sample_indices(n, s.sampled_frames, "uniform")
    details["decode"] = {"video_frames": n, "minutes": s.decode_minutes, "fps": s.decode_fps, "size": s.decode_size,
                         "codec": codec, "gop": s.decode_gop, "sampled": len(indices),
                         "write_s": time.perf_counter() - start}

    def checked(read: Callable[[], Any]) -> Callable[[], float]:
        def run() -> float:
            out: list = []
            t = seconds(lambda: out.append(read()))
            if decode_frame_ids(out[0]) != indices:
                raise AssertionError("a reader returned the wrong frames")
            return t
        return run

    def pyav_cold() -> Any:
        V._cached_index.cache_clear()
        return V.PyAVReader().read(path, indices)[0]

    baseline = checked(lambda: decode_all(path, indices))
    readers = {"seek, PyAV (index built per call)": pyav_cold}
    if V._decord_available():
        readers = {"seek, decord (opened per call)": lambda: V.DecordReader().read(path, indices)[0], **readers}
    # a seek lands on the keyframe before the target and decodes forward to it: about
    # min(gap, GOP) / 2 frames per sampled frame, against all n frames for the baseline
    gap = n / max(1, len(indices))
    predicted = n / (len(indices) * max(1.0, min(gap, s.decode_gop) / 2))
    details["decode"]["predicted_ratio_frames_decoded"] = predicted
    name = f"{len(indices)} of {n} frames ({s.decode_minutes:g} min, {s.decode_size}px {codec}, GOP {s.decode_gop})"
    rows = [row("decode", name, "decode all (PyAV)", label, paired(baseline, checked(read), s.repeats),
                prediction=f"at most {predicted:.1f}x (frames decoded), less the cost of each seek")
            for label, read in readers.items()]
    if V._decord_available():
        rows.append(_bench_decord_runs(s, tmp, details))
    return rows


def _bench_decord_runs(s: Settings, tmp: Path, details: dict) -> dict:
    """decord on short clips shaped like VTG-Synth's (140 frames, 64 px MPEG-4, GOP 12), the
    recipe's frames: a seek before every frame against decoding the gaps through."""
    from vtgcore.data import video as V
    from vtgcore.data.pattern_videos import decode_frame_ids, write_test_video

    clips = [write_test_video(tmp / f"short_{k}.mp4", num_frames=140, fps=4.0, size=(64, 64), seed=k)
             for k in range(s.clip_videos)]
    indices = V.sample_indices(140, s.recipe_frames, "uniform")
    details["decode"]["decord_runs"] = {"clips": len(clips), "frames": 140, "sampled": indices}

    def timed(reader: Any) -> Callable[[], float]:
        def run() -> float:
            start = time.perf_counter()
            for clip in clips:
                frames, _ = reader.read(clip, indices, (32, 32))
                if decode_frame_ids(frames) != indices:
                    raise AssertionError("decord returned the wrong frames")
            return time.perf_counter() - start
        return run

    gap = 140 / len(indices)
    return row("decode", f"{len(indices)} of 140 frames of {len(clips)} short clips (64 px MPEG-4, GOP 12)",
               "decord, a seek per frame", "decord, gaps decoded through",
               paired(timed(V.DecordReader(seek_gap=1)), timed(V.DecordReader()), s.repeats),
               prediction=f"decodes 140 frames instead of {len(indices)} seeks of about {min(gap, 12) / 2:.1f} "
                          "frames each: faster only when a seek costs more than decoding a gap")


# -- training steps ---------------------------------------------------------------------------------

def _train_step(model: Any, optim: Any, batch: dict, return_logits: bool = False) -> None:
    """What mmengine's ``train_step`` does (preprocess, forward, backward, step), with the choice
    of where the head runs."""
    data = model.data_preprocessor(batch, True)
    ds = data["data_samples"]
    out = model.vtg(data["inputs"], ds["timestamps"], ds["input_ids"], ds["attention_mask"], ds["labels"],
                    frame_mask=ds["frame_mask"], return_logits=return_logits)
    out.loss.backward()
    optim.step()
    optim.zero_grad()


def _timed_steps(model: Any, optim: Any, loader: Any, steps: int, return_logits: bool = False) -> float:
    """Seconds per step over ``steps`` steps of a fresh iterator after one untimed step."""
    it = iter(loader)
    _train_step(model, optim, next(it), return_logits)
    start = time.perf_counter()
    for _ in range(steps):
        _train_step(model, optim, next(it), return_logits)
    elapsed = time.perf_counter() - start
    del it
    return elapsed / steps


def _training_setup(synth: Path, frames: int, batch_size: int) -> tuple[Any, Any, Any]:
    import torch

    from vtgcore.config.loader import load_recipe
    from vtgcore.mm.model import VTGModel

    recipe = load_recipe(RECIPE, recipe_overrides(synth, frames, batch_size))
    model = VTGModel(recipe)
    model.train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return recipe, model, optim


def bench_loading(s: Settings, synth: Path, details: dict) -> list[dict]:
    from vtgcore.config.loader import load_recipe
    from vtgcore.mm.runner import train_loader

    recipe, model, optim = _training_setup(synth, s.frames, s.batch_size)
    plain = train_loader(model, recipe, None)
    workers_recipe = load_recipe(RECIPE, recipe_overrides(synth, s.frames, s.batch_size,
                                                          f"data.train.num_workers={s.workers}"))
    workers = train_loader(model, workers_recipe, None)
    res = paired(lambda: _timed_steps(model, optim, plain, s.steps), lambda: _timed_steps(model, optim, workers, s.steps),
                 s.train_repeats)
    return [row("loading", f"training step, {s.frames} frames, batch {s.batch_size}", "decode in the loop",
                f"{s.workers} workers, prefetch 2", res, unit="s/step",
                prediction="step = load + compute becomes max(load, compute) when a core is free for the workers")]


def panning_texture(height: int, width: int, seed: int = 0, speed: int = 2) -> Callable[[int], Any]:
    """``i -> (height, width, 3)`` uint8 frames of a blurred random texture panning ``speed`` pixels
    a frame: H.264 codes it at the bit rate of real footage of that size (about 1 Mbit/s at
    480x360, 24 fps), unlike VTG-Synth's flat shapes, which decode almost for free."""
    import numpy as np

    rng = np.random.default_rng(seed)
    block = 8
    span = 512
    small = rng.integers(0, 256, (height // block + 1, (width + span) // block + 1, 3)).astype(np.float32)
    texture = np.kron(small, np.ones((block, block, 1), np.float32))
    texture = sum(np.roll(texture, (dy, dx), (0, 1)) for dy in (-3, 0, 3) for dx in (-3, 0, 3)) / 9
    texture = np.clip(texture, 0, 255).astype(np.uint8)

    def frame(i: int) -> Any:
        x = (speed * i) % span
        return np.ascontiguousarray(texture[:height, x:x + width])
    return frame


def make_clips(root: Path, s: Settings) -> Path:
    """``s.clip_videos`` H.264 clips shaped like Charades-STA's (``s.clip_size`` = (height, width),
    ``s.clip_fps`` fps, ``s.clip_seconds`` s, about 1 Mbit/s) with one moment-retrieval item each,
    in the training-annotation format: decoding 96 of their frames costs what it costs on real clips."""
    import av

    from vtgcore.data.pattern_videos import write_test_video

    out = root / "clips"
    (out / "videos").mkdir(parents=True, exist_ok=True)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    options = {"preset": "veryfast"} if codec == "libx264" else None
    end = round(s.clip_seconds / 2, 1)
    items = []
    for i in range(s.clip_videos):
        name = f"videos/clip_{i:03d}.mp4"
        write_test_video(out / name, duration=s.clip_seconds, fps=s.clip_fps, size=s.clip_size, codec=codec,
                         gop_size=max(1, round(2 * s.clip_fps)), frame_fn=panning_texture(*s.clip_size, seed=i),
                         codec_options=options)
        items.append({"video": name, "source": "vtg-synth-mr", "QA": [{
            "q": "Find the video segment that corresponds to the given textual query 'the camera pans' and "
                 "determine its start and end seconds.", "a": f"<time>0</time> - <time>{end:g}</time> seconds."}]})
    (out / "train.json").write_text(json.dumps(items))
    return out


def _cache_pair(s: Settings, videos: Path, tmp: Path, frames: int, batch_size: int, repeats: int, tag: str,
                details: dict) -> tuple[dict, Any, Any, Any]:
    """Training steps from decoded and encoded clips vs from the feature cache (filled first, not
    timed in the ratio) on the same model, optimizer and recipe."""
    from vtgcore.config.loader import load_recipe
    from vtgcore.mm.runner import train_loader

    recipe, model, optim = _training_setup(videos, frames, batch_size)
    plain = train_loader(model, recipe, None)
    cache_recipe = load_recipe(RECIPE, recipe_overrides(videos, frames, batch_size,
                                                        f"data.feature_cache={tmp / f'features-{tag}'}"))
    start = time.perf_counter()
    cached = train_loader(model, cache_recipe, None)  # fills the cache
    details["feature_cache"][f"fill_s_{tag}"] = time.perf_counter() - start
    res = paired(lambda: _timed_steps(model, optim, plain, s.steps),
                 lambda: _timed_steps(model, optim, cached, s.steps), repeats)
    return res, model, optim, cached


def bench_feature_cache(s: Settings, synth: Path, tmp: Path, details: dict) -> list[dict]:
    rows = []
    details["feature_cache"] = {}
    for frames in (s.frames, s.recipe_frames):
        res, model, optim, cached = _cache_pair(s, synth, tmp, frames, s.batch_size, s.train_repeats,
                                                f"{frames}_frames", details)
        rows.append(row("feature_cache", f"training step, {frames} frames, batch {s.batch_size}, frozen encoder",
                        "decode + encode", "cached features", res, unit="s/step"))
        if frames == s.frames:
            head = paired(lambda: _timed_steps(model, optim, cached, s.steps, return_logits=True),
                          lambda: _timed_steps(model, optim, cached, s.steps, return_logits=False), s.train_repeats)
            rows.append(row("feature_cache", f"training step, cached features, {frames} frames",
                            "head + loss on all positions", "head + loss on answer positions", head, unit="s/step"))
    start = time.perf_counter()
    clips = make_clips(tmp, s)
    sizes = [p.stat().st_size for p in sorted((clips / "videos").glob("*.mp4"))]
    details["feature_cache"]["clips"] = {"videos": s.clip_videos, "height_width": list(s.clip_size), "fps": s.clip_fps,
                                         "seconds": s.clip_seconds, "write_s": time.perf_counter() - start,
                                         "mbit_per_s": sum(sizes) * 8 / 1e6 / (len(sizes) * s.clip_seconds)}
    res, *_ = _cache_pair(s, clips, tmp, s.frames, s.clip_batch, s.clip_repeats, "clips", details)
    rows.append(row("feature_cache", f"training step, {s.frames} frames of {s.clip_size[1]}x{s.clip_size[0]} "
                                     f"{s.clip_fps:g} fps {s.clip_seconds:g} s clips, batch {s.clip_batch}, frozen encoder",
                    "decode + encode", "cached features", res, unit="s/step",
                    prediction="decoding 96 frames of a Charades-sized clip dominates an uncached step of the "
                               "tiny model"))
    details["feature_cache"]["videos"] = s.videos
    return rows


# -- compressors ------------------------------------------------------------------------------------

def compressor_params(name: str, k: int, dim: int) -> Optional[dict[str, Any]]:
    """Params that give each first-party compressor K = ``k`` tokens (None: not benchmarked)."""
    heads = next(h for h in (8, 4, 2, 1) if dim % h == 0)
    return {"slot": {"num_slots": k}, "cross_attention": {"num_queries": k, "num_heads": heads},
            "codebook": {"num_codes": k}, "diverse": {"num_tokens": k}, "entropy": {"num_tokens": k},
            "mean_pool": {"tokens_per_frame": 1}, "identity": {},
            "video_qformer": {"num_heads": heads, "num_query_tokens": max(1, k // 4)}}.get(name)


def bench_compressors(s: Settings, details: dict) -> list[dict]:
    import torch

    from vtgcore.catalog import default_catalog

    catalog = default_catalog()
    grid: dict[str, list[dict]] = {}
    rows = []
    b, d = s.comp_batch, s.comp_dim
    for name in catalog.names("compressor"):
        params = compressor_params(name, s.comp_k, d)
        if params is None:
            continue
        torch.manual_seed(0)
        comp = catalog.build("compressor", name, params, dim=d).eval()
        grid[name] = []
        for t in s.comp_frames:
            for l in s.comp_tokens:
                x = torch.randn(b, t, l, d)
                mask = torch.ones(b, t, dtype=torch.bool)
                mask[-1, t // 2:] = False
                ts = torch.arange(t, dtype=torch.float32).expand(b, t)
                with torch.no_grad():
                    warm = seconds(lambda: comp(x, mask, ts))  # warm-up; a slow call is paired once
                    res = paired(lambda: seconds(lambda: [comp(x[i:i + 1], mask[i:i + 1], ts[i:i + 1]) for i in range(b)]),
                                 lambda: seconds(lambda: comp(x, mask, ts)), s.repeats if warm < 0.1 else 1)
                grid[name].append({"frames": t, "tokens": l, "n": t * l, "per_video_loop_s": res["baseline_s"] / b,
                                   "per_video_batched_s": res["fast_s"] / b, "ratio": res["ratio"]})
        last = grid[name][-1]
        rows.append(row("compressors", f"{name}: T={last['frames']} L={last['tokens']}, batch {b}",
                        "per-sample loop", "one batched call",
                        {"baseline_s": last["per_video_loop_s"], "fast_s": last["per_video_batched_s"],
                         "ratio": last["ratio"], "ratios": []}, unit="s/video",
                        per_video_s_by_tokens={g["n"]: g["per_video_batched_s"] for g in grid[name]}))
    details["compressors"] = {"dim": d, "k": s.comp_k, "batch": b, "grid": grid}
    return rows


# -- generation -------------------------------------------------------------------------------------

def _tiny_model(synth: Path, frames: int) -> tuple[Any, Any, Any]:
    from vtgcore.build import build_model
    from vtgcore.config.loader import load_recipe

    recipe = load_recipe(RECIPE, recipe_overrides(synth, frames, 1))
    model, processor = build_model(recipe)
    model.eval()
    return recipe, model, processor


def greedy_without_cache(model: Any, batch: dict, new_tokens: int) -> Any:
    """The no-KV-cache baseline: every step runs the LLM over the whole sequence again.

    Shape:
        batch["frames"]: (B, T, 3, H, W); batch["input_ids"]: (B, S) left-padded -> (B, new_tokens)
    """
    import torch

    llm = model.llm
    with torch.no_grad():
        _, embeds, mask = model.prepare_inputs(batch["frames"], batch["timestamps"], batch["input_ids"],
                                               batch["attention_mask"], batch["frame_mask"])
        out = []
        for _ in range(new_tokens):
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            with llm._autocast(embeds):
                logits = llm.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                                   use_cache=False, logits_to_keep=1).logits[:, -1]
            token = logits.argmax(-1)
            out.append(token)
            embeds = torch.cat([embeds, llm.embed(token[:, None]).to(embeds.dtype)], 1)
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
    return torch.stack(out, 1)


def bench_generation(s: Settings, synth: Path, details: dict) -> list[dict]:
    import torch

    from vtgcore.eval.generate import GenerationConfig, generate_batch

    class Forced(GenerationConfig):
        """Every item generates exactly ``max_new_tokens`` tokens, so batch sizes compare."""

        def kwargs(self) -> dict[str, Any]:
            return {**super().kwargs(), "min_new_tokens": self.max_new_tokens}

    queries = ["the red circle moves to the left", "the blue square grows larger", "a white cross shrinks",
               "the green triangle moves up"]
    cfg = Forced(max_new_tokens=s.new_tokens)
    n = s.gen_items
    rows = []
    details["generation"] = {"items": n, "new_tokens": s.new_tokens}
    for t in (s.recipe_frames, s.frames):
        _, model, processor = _tiny_model(synth, t)
        g = torch.Generator().manual_seed(0)
        frames = torch.randn(n, t, 3, model.encoder.image_size, model.encoder.image_size, generator=g)
        ts = (torch.arange(t, dtype=torch.float32) * 0.25).expand(n, t).contiguous()
        mask = torch.ones(n, t, dtype=torch.bool)

        def batch_of(idx: list[int]) -> dict:
            text = processor([[{"q": f"When does {queries[i % len(queries)]} happen?"}] for i in idx],
                             [ts[i].tolist() for i in idx], add_generation_prompt=True, num_frames=t)
            return {"frames": frames[idx], "timestamps": ts[idx], "frame_mask": mask[idx], **text}

        ones = [batch_of([i]) for i in range(n)]
        groups = [batch_of(list(range(i, min(i + s.gen_batch, n)))) for i in range(0, n, s.gen_batch)]
        outputs: dict[str, list] = {}

        def run(batches: list[dict], key: str) -> Callable[[], float]:
            def go() -> float:
                got: list = []
                t0 = time.perf_counter()
                for batch in batches:
                    got += generate_batch(model, batch, cfg)
                outputs[key] = [o["raw"] for o in got]
                return time.perf_counter() - t0
            return go

        run(groups[:1], "warm")()
        res = paired(run(ones, "b1"), run(groups, "b8"), s.repeats)
        prompt = int(groups[0]["input_ids"].shape[1])
        same = outputs["b1"] == outputs["b8"]
        details["generation"][f"{t}_frames"] = {"prompt_tokens": prompt, "batch_outputs_equal_unbatched": same}
        rows.append(row("generation", f"greedy, {t} frames (prompt {prompt} tokens), {s.new_tokens} new tokens, {n} items",
                        "batch 1", f"batch {s.gen_batch}",
                        {**res, "baseline_s": res["baseline_s"] / n, "fast_s": res["fast_s"] / n}, unit="s/item",
                        items_per_s={"baseline": n / res["baseline_s"], "fast": n / res["fast_s"]}, outputs_equal=same))
        if t == s.recipe_frames:
            tokens: dict[str, Any] = {}

            def naive() -> float:
                t0 = time.perf_counter()
                tokens["naive"] = [greedy_without_cache(model, batch, s.new_tokens) for batch in groups]
                return time.perf_counter() - t0

            def cached() -> float:
                t0 = time.perf_counter()
                with torch.no_grad():
                    tokens["cached"] = [model.generate(batch["frames"], batch["timestamps"], batch["input_ids"],
                                                       batch["attention_mask"], frame_mask=batch["frame_mask"],
                                                       **cfg.kwargs()) for batch in groups]
                return time.perf_counter() - t0

            kv = paired(naive, cached, max(1, s.repeats // 2))
            same_kv = all(torch.equal(a, b) for a, b in zip(tokens["naive"], tokens["cached"]))
            details["generation"]["kv_cache_tokens_equal"] = same_kv
            rows.append(row("generation", f"batch {s.gen_batch}, {t} frames, {s.new_tokens} new tokens",
                            "no KV cache (full recompute)", "KV cache (HF generate)",
                            {**kv, "baseline_s": kv["baseline_s"] / n, "fast_s": kv["fast_s"] / n}, unit="s/item",
                            outputs_equal=same_kv))
    return rows


# -- evaluation end to end ------------------------------------------------------------------------

def bench_eval(s: Settings, synth: Path, tmp: Path, details: dict) -> list[dict]:
    from vtgcore.data.dataset import FrameConfig
    from vtgcore.eval.generate import GenerationConfig
    from vtgcore.eval.evaluation import EvalSet, evaluate_set
    from vtgcore.vocab import EVAL_TASKS

    recipe, model, processor = _tiny_model(synth, s.recipe_frames)
    enc = model.encoder
    frames = FrameConfig(recipe.data.num_frames, recipe.data.eval_sampling, recipe.data.reader, enc.image_size,
                         mean=enc.mean, std=enc.std)
    spec = recipe.data.val.mr
    counter = iter(range(10**6))
    texts: dict[str, list] = {}

    def run(batch_size: int, workers: int) -> Callable[[], float]:
        def go() -> float:
            out = tmp / f"eval_{next(counter)}"
            t0 = time.perf_counter()
            evaluate_set(model, processor, EvalSet("mr", spec.annotation, spec.format), out, frames=frames,
                         video_root=str(synth), batch_size=batch_size, num_workers=workers,
                         generation=GenerationConfig(max_new_tokens=s.new_tokens), limit=s.eval_items)
            elapsed = time.perf_counter() - t0
            lines = (out / EVAL_TASKS["mr"] / "generations.jsonl").read_text().splitlines()
            texts[f"{batch_size}"] = sorted(json.loads(x)["raw"] for x in lines)
            return elapsed
        return go

    res = paired(run(1, 0), run(s.gen_batch, s.workers), max(1, s.train_repeats))
    n = s.eval_items
    same = texts["1"] == texts[f"{s.gen_batch}"]
    details["eval"] = {"items": n, "task": "mr", "new_tokens": s.new_tokens, "outputs_equal": same}
    return [row("eval", f"moment retrieval, {n} items, {s.recipe_frames} frames, up to {s.new_tokens} new tokens",
                "batch 1, no workers", f"batch {s.gen_batch}, {s.workers} workers",
                {**res, "baseline_s": res["baseline_s"] / n, "fast_s": res["fast_s"] / n}, unit="s/item",
                items_per_s={"baseline": n / res["baseline_s"], "fast": n / res["fast_s"]}, outputs_equal=same)]


# -- memory -----------------------------------------------------------------------------------------

def bench_memory(s: Settings, synth: Path, details: dict) -> list[dict]:
    from vtgcore.apps.perf import memory as M

    overrides = recipe_overrides(synth, s.recipe_frames, s.memory_batch)
    if s.memory_subprocess:
        train = M.measure("train", RECIPE, overrides, steps=s.memory_steps)
        ev = M.measure("eval", RECIPE, overrides, items=s.eval_items, batch_size=s.gen_batch, new_tokens=s.new_tokens)
    else:  # --quick: in this process (peaks then include what earlier sections left)
        train = M.train_phase(RECIPE, overrides, s.memory_steps)
        ev = M.eval_phase(RECIPE, overrides, s.eval_items, s.gen_batch, s.new_tokens)
    details["memory"] = {"train": train, "eval": ev, "fresh_process": s.memory_subprocess}
    mib = 2**20
    return [row("memory", f"training steps, batch {s.memory_batch}, {s.recipe_frames} frames: peak RSS of the step",
                None, "peak RSS", None, unit="MiB", value=train["phase_peak_bytes"] / mib,
                extra_mib=train["phase_extra_bytes"] / mib, process_max_rss_mib=train["max_rss_bytes"] / mib),
            row("memory", f"evaluation, batch {s.gen_batch}, {s.recipe_frames} frames: peak RSS of generation",
                None, "peak RSS", None, unit="MiB", value=ev["phase_peak_bytes"] / mib,
                extra_mib=ev["phase_extra_bytes"] / mib, process_max_rss_mib=ev["max_rss_bytes"] / mib)]


# -- real shapes --------------------------------------------------------------------------------------

def bench_real_shapes(s: Settings, details: dict, quick: bool) -> list[dict]:
    import torch

    from vtgcore.apps.perf.gpu import run_real_shapes

    cuda = torch.cuda.is_available()
    scale = "paper" if cuda else "scaled"
    res = run_real_shapes(scale, new_tokens=s.real_new_tokens, batch=s.real_batch, repeats=max(2, s.repeats // 2),
                          quick=quick)
    details["real_shapes"] = res
    label = f"{res['device']}, paper shapes" if cuda else "CPU, toy widths (code-path check only)"
    rows = []
    for b in (1, s.real_batch):
        entry = res[f"batch_{b}"]
        for part in ("encode", "prefill", "decode", "total"):
            key = f"{part}_s"
            rows.append(row("real_shapes", f"{label}: {part}, batch {b}, per video", "floor", "measured",
                            {"baseline_s": entry["floor_per_video_s"][part], "fast_s": entry["per_video_s"][key],
                             "ratio": entry["times_floor"][part], "ratios": []}, unit="s/video",
                            ratio_meaning="measured / floor"))
    if "train_step" in res:
        tr = res["train_step"]
        rows.append(row("real_shapes", f"{label}: LoRA training step, batch 1", "from pixels", "cached features",
                        {"baseline_s": tr["from_pixels_s"], "fast_s": tr["from_cached_features_s"],
                         "ratio": tr["cache_ratio"], "ratios": []}, unit="s/step"))
    return rows


# -- driver -----------------------------------------------------------------------------------------

def run_suite(quick: bool = False, only: Optional[Sequence[str]] = None,
              progress: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Run the sections (all, or ``only``) and return ``{machine, settings, rows, details, wall_s}``."""
    import logging

    import torch

    logging.getLogger("mmengine").setLevel(logging.ERROR)
    s = QUICK if quick else FULL
    wanted = list(only or SECTIONS)
    unknown = [x for x in wanted if x not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {unknown}; sections: {', '.join(SECTIONS)}")
    started = time.perf_counter()
    machine = machine_info()
    rows: list[dict] = []
    details: dict[str, Any] = {}
    timings: dict[str, float] = {}
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="vtg-bench-") as folder:
        tmp = Path(folder)
        synth = make_synth(tmp, s) if set(wanted) - {"decode", "compressors", "real_shapes"} else tmp
        for section in wanted:
            progress(section)
            t0 = time.perf_counter()
            try:
                rows += _run_section(section, s, tmp, synth, details, quick)
            except Exception as exc:  # one broken section must not lose the others' numbers
                rows.append(row(section, "FAILED", None, None, None, error=f"{type(exc).__name__}: {exc}"[:2000]))
            timings[section] = time.perf_counter() - t0
    machine["load_average_after"] = machine_info().get("load_average_1_5_15")
    return {"machine": machine, "quick": quick, "settings": asdict(s), "rows": rows, "details": details,
            "section_seconds": timings, "wall_s": time.perf_counter() - started}


def _run_section(section: str, s: Settings, tmp: Path, synth: Path, details: dict, quick: bool) -> list[dict]:
    runners: dict[str, Callable[[], list[dict]]] = {
        "decode": lambda: bench_decode(s, tmp, details),
        "loading": lambda: bench_loading(s, synth, details),
        "feature_cache": lambda: bench_feature_cache(s, synth, tmp, details),
        "compressors": lambda: bench_compressors(s, details),
        "generation": lambda: bench_generation(s, synth, details),
        "eval": lambda: bench_eval(s, synth, tmp, details),
        "memory": lambda: bench_memory(s, synth, details),
        "real_shapes": lambda: bench_real_shapes(s, details, quick),
    }
    return runners[section]()


def _fmt(value: Optional[float], unit: str) -> str:
    if value is None:
        return "-"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} us"


def format_table(result: dict[str, Any]) -> str:
    """The rows as a fixed-width text table (ratio: baseline time / fast-path time; for
    ``real_shapes``, measured time / floor)."""
    head = f"{'section':<14}{'measurement':<66}{'baseline':<30}{'fast path':<34}{'baseline':>11}{'fast':>11}{'ratio':>9}"
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        if r.get("error"):
            lines.append(f"{r['section']:<14}FAILED: {r['error'][:150]}")
            continue
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        lines.append(f"{r['section']:<14}{r['name'][:65]:<66}{(r['baseline'] or '-')[:29]:<30}{(r['fast'] or '-')[:33]:<34}"
                     f"{_fmt(r['baseline_value'], r['unit']):>11}{_fmt(r['fast_value'], r['unit']):>11}{ratio:>9}")
    m = result["machine"]
    lines.append(f"machine: {m.get('cpu')}, {m.get('cpu_count')} cores, torch {m.get('torch')}, "
                 f"threads {m.get('torch_threads')}, load {m.get('load_average_1_5_15')} -> {m.get('load_average_after')}"
                 + (f", {m['cuda_device']}" if m.get("cuda_device") else "") + f"; {result['wall_s']:.0f} s")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (``python -m bench``, ``vtg bench``)."""
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy sizes, every row, a few seconds (ratios mean nothing)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    args = parser.parse_args(argv)
    result = run_suite(args.quick, args.only, progress=lambda name: print(f"bench: {name} ...", file=sys.stderr))
    print(format_table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=str))
        print(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
