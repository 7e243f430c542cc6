"""Training throughput with and without the feature cache, same recipe, one run.

    python -m bench.feature_cache [--iters 30] [--json out.json]

Trains ``recipes/vtgllm/synth_tiny.yaml`` (frozen tiny encoder) on a small generated VTG-Synth set
twice: decoding and encoding every clip each step, then reading encoder outputs from a filled
feature cache (the fill is timed separately). Prints iterations per second and the ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from mmengine.hooks import Hook


class _Clock(Hook):
    """Times the iterations after the first (warm-up) one."""

    def __init__(self) -> None:
        self.start = None
        self.count = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.start is None:
            self.start = time.perf_counter()
        else:
            self.count += 1

    def rate(self) -> float:
        return self.count / (time.perf_counter() - self.start)


def _train(overrides: list[str], work_dir: Path) -> float:
    from vtgcore.config.loader import load_recipe
    from vtgcore.mm.runner import build_runner

    rec = load_recipe("recipes/vtgllm/synth_tiny.yaml", overrides)
    runner = build_runner(rec, work_dir=str(work_dir))
    clock = _Clock()
    runner.register_hook(clock, priority="LOWEST")
    runner.train()
    return clock.rate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from vtgcore.data.synth import generate_synth

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_synth(root / "synth", seed=0, n_train=args.videos, n_val=1)
        common = [f"data.video_root={root / 'synth'}", f"runner.train_cfg.max_iters={args.iters}",
                  f"runner.checkpoint_interval={args.iters}", "runner.log_interval=1000"]
        no_cache = _train(common, root / "a")
        start = time.perf_counter()
        cached = _train(common + [f"data.feature_cache={root / 'cache'}"], root / "b")
        fill = time.perf_counter() - start - args.iters / cached
    result = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "iters": args.iters, "batch_size": 16, "no_cache_it_per_s": no_cache, "cache_it_per_s": cached,
              "ratio": cached / no_cache, "cache_fill_seconds_approx": fill}
    print(f"{'mode':<12}{'it/s':>10}")
    print(f"{'no cache':<12}{no_cache:>10.2f}")
    print(f"{'cache':<12}{cached:>10.2f}")
    print(f"ratio (cache / no cache): {result['ratio']:.2f}x; cache fill about {fill:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
