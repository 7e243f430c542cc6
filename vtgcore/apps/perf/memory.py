"""Peak memory of training and evaluation of a recipe, each measured in a fresh process.

    python -m vtgcore.apps.perf.memory train RECIPE --video-root SYNTH [--steps 3] [overrides ...]
    python -m vtgcore.apps.perf.memory eval RECIPE --video-root SYNTH [--items 16] [--batch-size 8] [overrides ...]

Prints one JSON object: ``max_rss_bytes`` (``getrusage`` peak of the whole process: Python,
torch's libraries, the model and the phase), ``rss_after_build_bytes`` (the model built, data
ready), ``phase_peak_bytes`` (the highest RSS sampled every 2 ms during the phase, by
:class:`~vtgcore.apps.perf.timing.PeakRSS`) and ``phase_extra_bytes`` (that peak above the RSS after the
build: what the steps themselves add); on CUDA also ``cuda_peak_bytes``
(``torch.cuda.max_memory_allocated``). A fresh process per phase keeps one phase's freed memory,
which the allocator keeps, from hiding the next one's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Optional, Sequence

from vtgcore.apps.perf.timing import PeakRSS, max_rss_bytes, rss_bytes


def _cuda_reset() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _cuda_peak() -> Optional[int]:
    import torch

    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def train_phase(recipe_path: str, overrides: Sequence[str], steps: int) -> dict[str, Any]:
    """Build the recipe's model, loader and optimizer, then run ``steps`` training steps."""
    import torch
    from mmengine.optim import OptimWrapper

    from vtgcore.config.loader import load_recipe
    from vtgcore.mm.model import VTGModel
    from vtgcore.mm.runner import train_loader

    recipe = load_recipe(recipe_path, list(overrides))
    model = VTGModel(recipe)
    if torch.cuda.is_available():
        model = model.cuda()
    model.train()
    loader = iter(train_loader(model, recipe, None))
    optim = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4))
    first = next(loader)
    after_build = rss_bytes()
    _cuda_reset()
    with PeakRSS() as peak:
        model.train_step(first, optim)
        for _ in range(steps - 1):
            model.train_step(next(loader), optim)
    return {"phase": "train", "steps": steps, "batch_size": int(recipe.data.train.batch_size),
            "num_frames": int(recipe.data.num_frames), "rss_after_build_bytes": after_build,
            "phase_peak_bytes": peak.peak, "phase_extra_bytes": peak.peak - after_build,
            "max_rss_bytes": max_rss_bytes(), "cuda_peak_bytes": _cuda_peak()}


def eval_phase(recipe_path: str, overrides: Sequence[str], items: int, batch_size: int, new_tokens: int) -> dict[str, Any]:
    """Build the recipe's model and evaluate its first ``data.val`` set on ``items`` items."""
    from omegaconf import OmegaConf

    from vtgcore.build import build_model
    from vtgcore.config.loader import load_recipe
    from vtgcore.data.dataset import FrameConfig
    from vtgcore.eval.generate import GenerationConfig
    from vtgcore.eval.evaluation import EvalSet, evaluate_set

    recipe = load_recipe(recipe_path, list(overrides))
    model, processor = build_model(recipe)
    sets = OmegaConf.to_container(recipe.data.val, resolve=True)
    task, spec = next(iter(sets.items()))
    enc = model.encoder
    frames = FrameConfig(recipe.data.num_frames, recipe.data.eval_sampling, recipe.data.reader, enc.image_size,
                         mean=enc.mean, std=enc.std)
    after_build = rss_bytes()
    _cuda_reset()
    with tempfile.TemporaryDirectory() as out, PeakRSS() as peak:
        evaluate_set(model, processor, EvalSet(task, spec["annotation"], spec.get("format")), out, frames=frames,
                     video_root=recipe.data.video_root, batch_size=batch_size,
                     generation=GenerationConfig(max_new_tokens=new_tokens), limit=items)
    return {"phase": "eval", "task": task, "items": items, "batch_size": batch_size,
            "num_frames": int(recipe.data.num_frames), "rss_after_build_bytes": after_build,
            "phase_peak_bytes": peak.peak, "phase_extra_bytes": peak.peak - after_build,
            "max_rss_bytes": max_rss_bytes(), "cuda_peak_bytes": _cuda_peak()}


def measure(phase: str, recipe: str, overrides: Sequence[str], *, steps: int = 3, items: int = 16,
            batch_size: int = 8, new_tokens: int = 32, timeout: float = 600) -> dict[str, Any]:
    """Run one phase in a fresh Python process and return its JSON report."""
    cmd = [sys.executable, "-m", "vtgcore.apps.perf.memory", phase, recipe, *overrides, "--steps", str(steps),
           "--items", str(items), "--batch-size", str(batch_size), "--new-tokens", str(new_tokens)]
    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode:
        raise RuntimeError(f"memory {phase} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry point (one phase, JSON on the last line of stdout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["train", "eval"])
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_intermixed_args(argv)
    import logging

    logging.getLogger("mmengine").setLevel(logging.ERROR)
    if args.phase == "train":
        report = train_phase(args.recipe, args.overrides, args.steps)
    else:
        report = eval_phase(args.recipe, args.overrides, args.items, args.batch_size, args.new_tokens)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
