"""The main job (``make run``): generate VTG-Synth, train the tiny VTG-LLM on CPU, evaluate it on
the held-out split with the real evaluation path, compare with a constant-window baseline.

The run folder holds the resolved recipe and plugins (in each checkpoint), the checkpoints, the
training log, per-task generations and predictions, timelines of the first moment-retrieval videos
(``plots/``), and ``metrics.json``: one object per task
(``moment_retrieval``, ``highlights``, ``dense_captioning``) with the keys of ``vtg metrics
--json`` in percent, and ``baselines`` in the same layout.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from vtgcore.utils.fileio import atomic_write_text
from vtgcore.vocab import EVAL_TASKS, METRIC_KEYS

N_TRAIN = 1000
"""Training videos of the main job's VTG-Synth (200 gave R1@0.5 21, 1000 gave 40: docs/training.md)."""
PRETRAIN_STEPS = 600
PLOT_VIDEOS = 20
"""Timelines drawn at the end of a run (the first videos of the moment-retrieval set; 0: none)."""


def _select(metrics: dict[str, Any], task: str) -> dict[str, Any]:
    out = {k: metrics.get(k) for k in METRIC_KEYS[task]}
    for extra in ("count", "missing", "parse_failures", "parse_failure_rate", "unavailable"):
        if extra in metrics:
            out[extra] = metrics[extra]
    return out


def constant_window(items: Sequence[Any], video_root: Path) -> tuple[float, float]:
    """Mean (start, end) as fractions of the duration over the training MR answers."""
    from vtgcore.data.formats import markers_to_seconds, resolve_video
    from vtgcore.data.video import get_reader

    reader = get_reader("pyav")
    starts, ends = [], []
    for item in items:
        if not item.source.endswith("-mr"):
            continue
        duration = reader.probe(resolve_video(item.video, video_root)).duration
        for turn in item.turns:
            times = markers_to_seconds(turn["a"])
            if len(times) >= 2 and duration > 0:
                starts.append(times[0] / duration)
                ends.append(times[1] / duration)
    return statistics.mean(starts), statistics.mean(ends)


def fill_durations(items: Sequence[Any], video_root: Path) -> None:
    """Set ``duration`` from the video where the annotation has none (Charades-STA files)."""
    from vtgcore.data.formats import resolve_video
    from vtgcore.data.video import get_reader

    reader = get_reader("pyav")
    for item in items:
        if not item.duration:
            item.duration = reader.probe(resolve_video(item.video, video_root)).duration


def baseline_metrics(window: tuple[float, float], val: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """Metrics of predicting the same relative window for every query and video (items need durations)."""
    from vtgcore.eval import metrics as M

    fs, fe = window
    out: dict[str, dict[str, Any]] = {}
    if "mr" in val:
        preds = {i.id: [(fs * i.duration, fe * i.duration)] for i in val["mr"]}
        out[EVAL_TASKS["mr"]] = _select(M.grounding_metrics(preds, {i.id: i.windows[0] for i in val["mr"]}),
                                        EVAL_TASKS["mr"])
    if "hd" in val:
        preds = {}
        for i in val["hd"]:
            clips = int(i.duration / 2)
            preds[i.id] = [1.0 if fs * i.duration <= 2 * c + 1 <= fe * i.duration else 0.0 for c in range(clips)]
        out[EVAL_TASKS["hd"]] = _select(M.highlight_metrics(preds, val["hd"]), EVAL_TASKS["hd"])
    if "dvc" in val:
        preds = {i.id: [(fs * i.duration, fe * i.duration, "a shape appears and moves.")] for i in val["dvc"]}
        out[EVAL_TASKS["dvc"]] = _select(M.dvc_metrics(preds, val["dvc"]), EVAL_TASKS["dvc"])
    return out


def table(results: dict[str, dict[str, Any]], baselines: dict[str, dict[str, Any]]) -> str:
    """A text table: task, metric, trained model, constant-window baseline."""
    lines = [f"{'task':<18}{'metric':<15}{'model':>10}{'constant':>10}", "-" * 53]

    def fmt(v: Any) -> str:
        return "n/a" if v is None else f"{v:.1f}"

    for task, metrics in results.items():
        for key in METRIC_KEYS[task]:
            lines.append(f"{task:<18}{key:<15}{fmt(metrics.get(key)):>10}{fmt(baselines.get(task, {}).get(key)):>10}")
    return "\n".join(lines)


def _pretrained_encoder(rec: Any, synth: Path, steps: int, log: Callable[[str], Any]) -> Path:
    """Pre-train the recipe's encoder on VTG-Synth once per (encoder spec, steps, seed); its weights file."""
    import hashlib

    from omegaconf import OmegaConf

    from vtgcore.data.synth_encoder import pretrain_recipe_encoder
    from vtgcore.utils.progress import rate_text

    spec = OmegaConf.to_container(rec.model.encoder, resolve=True)
    key = hashlib.sha256(json.dumps([spec["name"], spec["params"], steps, int(rec.seed)], sort_keys=True).encode())
    weights = synth / f"encoder-{key.hexdigest()[:12]}.safetensors"
    if weights.is_file():
        log(f"[2/5] pre-trained encoder already in {weights}")
        return weights
    log(f"[2/5] pre-training the {spec['name']} encoder on VTG-Synth frames for {steps} steps")
    start = time.perf_counter()

    def progress(step: int, total: int, loss: float) -> None:
        nonlocal start
        if step == 0:  # the frames are decoded; the steps start now
            log(f"  frames decoded in {time.perf_counter() - start:.1f} s")
            start = time.perf_counter()
            return
        log(f"  step {step}/{total}  loss {loss:.4f}  ({rate_text(step, total, time.perf_counter() - start, 'step')})")

    report = pretrain_recipe_encoder(rec, synth, weights, steps=steps, progress=progress)
    val = report["val"]
    log(f"  held-out patch labels: accuracy {val['accuracy']:.3f} (majority {val['majority']:.3f}), "
        f"recall {val['recall']:.3f}; {report['seconds']} s")
    return weights


def job_overrides(out_dir: str | Path, synth_dir: str | Path | None = None,
                  feature_cache_dir: str | Path | None = None) -> list[str]:
    """The overrides :func:`run` puts before the caller's: VTG-Synth as the video root (default
    ``OUT/vtg_synth``), the feature cache (default ``OUT/feature_cache``), the work dir ``OUT/run``."""
    out = Path(out_dir)
    synth = Path(synth_dir) if synth_dir is not None else out / "vtg_synth"
    cache = Path(feature_cache_dir) if feature_cache_dir is not None else out / "feature_cache"
    return [f"data.video_root={synth}", f"data.feature_cache={cache}", f"work_dir={out / 'run'}"]


def _plot_timelines(run_dir: Path, synth: Path, rec: Any, limit: int, log: Callable[[str], Any]) -> None:
    """Draw the timelines of the first ``limit`` moment-retrieval videos; a failure is logged, not raised."""
    from vtgcore.apps.plots import run_timelines

    try:
        paths = run_timelines(run_dir, limit=limit, video_root=synth, num_frames=int(rec.data.num_frames),
                              sampling=rec.data.eval_sampling, reader=rec.data.reader,
                              warn=lambda message: log(f"warning: {message}"))
    except Exception as exc:  # the metrics are written; a picture must not fail the run
        log(f"warning: timelines not drawn: {type(exc).__name__}: {exc}")
    else:
        log(f"timelines of {len(paths)} videos in {run_dir / 'plots'}")


def run(out_dir: str | Path = "work_dirs/main", *, recipe: str | Path = "recipes/vtgllm/synth_tiny.yaml",
        overrides: Sequence[str] = (), seed: int = 0, n_train: int = N_TRAIN, n_val: int = 50,
        pretrain_steps: int = PRETRAIN_STEPS, workers: int | None = None,
        log: Callable[[str], Any] = print, synth_dir: str | Path | None = None,
        feature_cache_dir: str | Path | None = None, plots: int = PLOT_VIDEOS,
        result: Callable[[str], Any] | None = None) -> Path:
    """Run the whole job; returns the run folder.

    Steps: generate VTG-Synth (``workers`` processes; skipped when present), pre-train the recipe's
    frame encoder on the synthetic frames (``pretrain_steps``; 0 or a recipe that sets
    ``model.encoder.checkpoint`` skips it; the weights are kept per encoder spec and steps),
    train, evaluate on the held-out split, and score the constant-window baseline.

    ``synth_dir`` (default ``OUT/vtg_synth``) and ``feature_cache_dir`` (default
    ``OUT/feature_cache``) may be shared by several runs (``vtg sweep``): VTG-Synth is generated
    only when its ``meta.json`` is missing, the pre-trained encoders are kept in it, and cache
    entries are keyed by the encoder and its weights. ``plots``: timelines of the first N
    moment-retrieval videos in ``RUN/plots/`` (0: none).

    ``log`` gets the stage lines (``[1/5] ...``); ``result`` (default: ``log``) the final table and
    the R1@0.5 line. Progress bars (VTG-Synth videos, evaluated items) go to stderr through
    :func:`vtgcore.utils.progress.bar`, silent with ``--quiet``; training logs through mmengine into
    ``RUN/<timestamp>/<timestamp>.log``.
    """
    from vtgcore.config.loader import load_recipe
    from vtgcore.data.dataset import FrameConfig
    from vtgcore.data.formats import load_eval, load_vtg_it
    from vtgcore.data.synth import generate_synth
    from vtgcore.eval.generate import GenerationConfig
    from vtgcore.eval.evaluation import eval_sets, evaluate_split
    from vtgcore.mm.runner import build_runner, feature_cache
    from vtgcore.utils.progress import bar

    result = result or log

    start = time.perf_counter()
    out = Path(out_dir)
    synth = Path(synth_dir) if synth_dir is not None else out / "vtg_synth"
    if not (synth / "meta.json").is_file():
        import os

        workers = workers or min(4, os.cpu_count() or 1)
        log(f"[1/5] generating VTG-Synth (seed {seed}, {n_train} train + {n_val} val videos, {workers} processes) in {synth}")
        generate_synth(synth, seed=seed, n_train=n_train, n_val=n_val, workers=workers,
                       progress=bar("writing VTG-Synth videos"))
    else:
        log(f"[1/5] VTG-Synth already in {synth}")
    run_dir = out / "run"
    base = job_overrides(out, synth, feature_cache_dir)
    rec = load_recipe(recipe, [*base, *overrides])
    if pretrain_steps > 0 and not rec.model.encoder.get("checkpoint"):
        weights = _pretrained_encoder(rec, synth, pretrain_steps, log)
        rec = load_recipe(recipe, [*base, f"model.encoder.checkpoint={weights}", *overrides])
    else:
        log("[2/5] encoder pre-training skipped")
    log(f"[3/5] training {rec.experiment_name} for {rec.runner.train_cfg.max_iters} iterations in {run_dir}")
    runner = build_runner(rec, work_dir=str(run_dir), resume="auto")
    runner.train()
    model = runner.model.module.vtg if hasattr(runner.model, "module") else runner.model.vtg
    processor = runner.model.processor
    frames = FrameConfig.for_eval(rec, model.encoder)
    cache = feature_cache(model, rec)
    log("[4/5] evaluating on the held-out split")
    sets = eval_sets(rec.data.val)
    val_items = {task: load_eval(s.annotation, s.format) for task, s in sets.items()}
    evaluated = evaluate_split(model, processor, sets, run_dir / "eval", frames=frames, video_root=synth,
                               batch_size=16, feature_cache=cache, progress=True,
                               generation=lambda task: GenerationConfig(max_new_tokens=96 if task != "mr" else 24))
    results = {key: _select(metrics, key) for key, metrics in evaluated.items()}
    log("[5/5] constant-window baseline")
    window = constant_window(load_vtg_it(rec.data.train.annotation), synth)
    for items in val_items.values():
        fill_durations(items, synth)
    baselines = baseline_metrics(window, val_items)
    summary = {**results, "baselines": baselines,
               "baseline_window": {"start_fraction": window[0], "end_fraction": window[1]},
               "wall_seconds": round(time.perf_counter() - start, 1)}
    atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=2))
    result(table(results, baselines))
    mr, base = results.get(EVAL_TASKS["mr"], {}), baselines.get(EVAL_TASKS["mr"], {})
    result(f"moment retrieval R1@0.5: model {mr.get('R1@0.5', 0):.1f}, constant window {base.get('R1@0.5', 0):.1f} "
        f"({summary['wall_seconds']} s in all)")
    if plots > 0 and "mr" in rec.data.val:
        _plot_timelines(run_dir, synth, rec, plots, log)
    return run_dir
