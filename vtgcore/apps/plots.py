"""Pictures of runs and sweeps (matplotlib, Agg backend).

Two kinds of picture:

* :func:`timeline`: one PNG per evaluated video: ground-truth windows, predicted windows, the
  per-clip saliency as bars and the sampled frame times as ticks.
* :func:`sweep_chart`: one metric per sweep variant, mean over seeds with the standard deviation as
  error bars.

Every picture is drawn from a plain dict prepared by a pure function (:func:`timeline_data`,
:func:`sweep_chart_data`) so tests can check what the drawing code receives. matplotlib is
imported inside the drawing functions only.

:func:`run_timelines` reads a run folder written by :func:`vtgcore.apps.main_job.run` (or ``vtg eval
--out RUN_DIR/eval``): ``eval/moment_retrieval/{metrics.json, predictions.json,
generations.jsonl}``, the ground truth named in that ``metrics.json``, and, when present,
``eval/highlights/predictions.json`` for the saliency bars. :func:`sweep_charts` reads a sweep
folder's ``results.json`` (:mod:`vtgcore.apps.sweep`).
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import yaml

from vtgcore.errors import VTGError
from vtgcore.utils.fileio import locate
from vtgcore.vocab import EVAL_TASKS
from vtgcore.utils.limits import json_problem, load_yaml, loads_json, yaml_problem

CLIP_SECONDS = 2.0
"""Length of one saliency clip (QVHighlights and VTG-Synth: 2-second clips)."""
PLOTS_DIR = "plots"

Window = Sequence[float]


# --------------------------------------------------------------------------------------------------
# Data preparation (pure)


def timeline_data(duration: Optional[float], gt_windows: Sequence[Window],
                  pred_windows: Sequence[Optional[Window]], saliency: Optional[Sequence[float]] = None,
                  frame_times: Optional[Sequence[float]] = None, *, labels: Optional[Sequence[str]] = None,
                  clip_seconds: float = CLIP_SECONDS) -> dict[str, Any]:
    """What :func:`timeline` draws.

    Args:
        duration: video length in seconds (None: taken from the furthest window, clip or frame).
        gt_windows: ground-truth ``(start, end)`` windows in seconds, one per query.
        pred_windows: predicted windows; entry ``k`` belongs to the query of ``gt_windows[k]`` when
            both lists come from the same queries; None marks a query without a parsed prediction.
        saliency: one score per ``clip_seconds`` clip, clip 0 starting at 0 s.
        frame_times: the sampled frames' times in seconds.
        labels: one text per query (the legend).
        clip_seconds: clip length of ``saliency``.

    Returns:
        ``{"duration", "xmax", "gt": [(start, end, k)], "pred": [(start, end, k)], "missing": [k],
        "bars": {"left": [...], "heights": [...], "width": clip_seconds}, "ticks": [...],
        "labels": [...]}``; ``k`` is the query index (same colour for a query's two windows).
    """
    gt = [(float(w[0]), float(w[1]), k) for k, w in enumerate(gt_windows)]
    pred, missing = [], []
    for k, w in enumerate(pred_windows):
        if w is None or len(w) < 2:
            missing.append(k)
        else:
            pred.append((float(w[0]), float(w[1]), k))
    heights = [float(s) for s in (saliency or [])]
    bars = {"left": [i * clip_seconds for i in range(len(heights))], "heights": heights, "width": clip_seconds}
    ticks = [float(t) for t in (frame_times or [])]
    ends = [e for _, e, _ in gt + pred] + [s for s, _, _ in gt + pred] + ticks + [len(heights) * clip_seconds]
    xmax = max([float(duration or 0.0), *ends, 1e-6])
    return {"duration": float(duration) if duration else None, "xmax": xmax, "gt": gt, "pred": pred,
            "missing": missing, "bars": bars, "ticks": ticks, "labels": list(labels or [])}


def _std_or_zero(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and value == value else 0.0


def sweep_chart_data(results: dict[str, Any] | Sequence[dict[str, Any]], metric: str) -> dict[str, Any]:
    """What :func:`sweep_chart` draws: one bar per variant that has the metric.

    Args:
        results: a sweep's ``results.json`` content (its ``summary``: variant -> metric ->
            ``{mean, std, n}``), or its ``rows`` (one dict per variant and seed; rows whose
            ``status`` is not ``finished`` are left out).
        metric: ``task/name``, e.g. ``moment_retrieval/R1@0.5``.

    Returns:
        ``{"metric", "variants", "means", "errors", "n", "baseline"}``; ``errors`` is the sample
        standard deviation over seeds (0 with one seed); ``baseline`` the constant-window value or
        None.
    """
    from vtgcore.eval.aggregate import summarize

    if isinstance(results, dict):
        summary = results.get("summary")
        if summary is None:
            summary = summarize(results.get("rows", []))
        baseline = (results.get("baselines") or {}).get(metric)
    else:
        summary, baseline = summarize(list(results)), None
    variants, means, errors, counts = [], [], [], []
    for variant, metrics in summary.items():
        stat = metrics.get(metric)
        if not stat or not stat.get("n"):
            continue
        variants.append(variant)
        means.append(float(stat["mean"]))
        errors.append(_std_or_zero(stat.get("std")))
        counts.append(int(stat["n"]))
    return {"metric": metric, "variants": variants, "means": means, "errors": errors, "n": counts,
            "baseline": baseline}


# --------------------------------------------------------------------------------------------------
# Drawing


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colour(k: int) -> Any:
    import matplotlib

    return matplotlib.colormaps["tab10"](k % 10)


def draw_timeline(data: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Draw :func:`timeline_data`'s dict to a PNG."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    has_bars = bool(data["bars"]["heights"])
    fig, axes = plt.subplots(2 if has_bars else 1, 1, sharex=True, squeeze=False,
                             figsize=(8, 3.2 if has_bars else 2.0),
                             gridspec_kw={"height_ratios": [1.4, 1] if has_bars else [1]})
    ax = axes[0][0]
    lanes = max([len(data["labels"]), *(k + 1 for _, _, k in data["gt"] + data["pred"])], default=1)
    height = 0.7 / lanes  # one thin lane per query, so overlapping windows stay apart
    for row, (key, hatch, alpha) in enumerate((("pred", "//", 0.45), ("gt", None, 0.8))):
        for start, end, k in data[key]:
            ax.broken_barh([(start, max(end - start, 1e-3))], (row + 0.15 + (lanes - 1 - k) * height, height),
                           facecolors=_colour(k), alpha=alpha, hatch=hatch, edgecolor="black", linewidth=0.5)
    ax.set_yticks([-0.25, 0.5, 1.5], ["frames", "predicted", "ground truth"])
    ax.set_ylim(-0.5, 2)
    if data["ticks"]:
        ax.plot(data["ticks"], [-0.25] * len(data["ticks"]), "|", color="black", markersize=9)
    if data["duration"]:
        ax.axvline(data["duration"], color="grey", linestyle=":", linewidth=1)
    labels = data["labels"]
    if labels:
        import matplotlib.patches as mpatches

        handles = [mpatches.Patch(color=_colour(k), label=_short(text)) for k, text in enumerate(labels)]
        ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if data["missing"]:
        ax.text(0.99, 0.02, f"no prediction: {', '.join(str(k) for k in data['missing'])}", fontsize=6,
                ha="right", va="bottom", transform=ax.transAxes)
    if title:
        ax.set_title(title, fontsize=9)
    if has_bars:
        bx = axes[1][0]
        bars = data["bars"]
        bx.bar(bars["left"], bars["heights"], width=bars["width"], align="edge", color="tab:orange",
               edgecolor="black", linewidth=0.3)
        bx.set_ylabel("saliency", fontsize=8)
        bx.set_title(data.get("saliency_label") or "saliency", fontsize=7, loc="left")
    axes[-1][0].set_xlim(-0.01 * data["xmax"], data["xmax"])
    axes[-1][0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def timeline(video_id: str, duration: Optional[float], gt_windows: Sequence[Window],
             pred_windows: Sequence[Optional[Window]], saliency: Optional[Sequence[float]] = None,
             frame_times: Optional[Sequence[float]] = None, path: str | Path | None = None, *,
             labels: Optional[Sequence[str]] = None, saliency_label: str = "saliency") -> Path:
    """Draw one video's timeline to ``path`` (a PNG); see :func:`timeline_data` for the arguments."""
    if path is None:
        raise TypeError("timeline: path is required")
    data = timeline_data(duration, gt_windows, pred_windows, saliency, frame_times, labels=labels)
    data["saliency_label"] = saliency_label
    return draw_timeline(data, path, title=str(video_id))


def draw_sweep_chart(data: dict[str, Any], path: str | Path) -> Path:
    """Draw :func:`sweep_chart_data`'s dict to a PNG."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = len(data["variants"])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * count + 2), 3.2))
    xs = list(range(count))
    ax.bar(xs, data["means"], yerr=data["errors"], capsize=4, color=[_colour(k) for k in xs], alpha=0.85)
    ax.set_xticks(xs, [f"{v}\n(n={n})" for v, n in zip(data["variants"], data["n"])], fontsize=7,
                  rotation=20 if count > 4 else 0)
    if data.get("baseline") is not None:
        ax.axhline(data["baseline"], color="grey", linestyle="--", linewidth=1, label="constant window")
        ax.legend(fontsize=7)
    ax.set_ylabel(data["metric"], fontsize=8)
    ax.set_title(f"{data['metric']}: mean ± std over seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def sweep_chart(results: dict[str, Any] | Sequence[dict[str, Any]], metric: str, path: str | Path) -> Path:
    """Draw one metric per sweep variant (error bars: std over seeds) to ``path``."""
    data = sweep_chart_data(results, metric)
    if not data["variants"]:
        raise VTGError(f"sweep chart: no finished variant has the metric {metric!r}")
    return draw_sweep_chart(data, path)


# --------------------------------------------------------------------------------------------------
# Run folders and sweep folders


def _read_json(path: Path, what: str) -> Any:
    try:
        return loads_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VTGError(f"{path}: {what} not found") from None
    except json.JSONDecodeError as exc:
        raise VTGError(f"{path}: cannot read {what}: {json_problem(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VTGError(f"{path}: cannot read {what}: {exc}") from None


def latest_recipe(run_dir: Path) -> Optional[dict[str, Any]]:
    """The resolved recipe of a run's latest checkpoint (``checkpoints/iter_N/recipe.yaml``), or None."""
    from omegaconf import OmegaConf

    best, best_iter = None, -1
    for recipe in (run_dir / "checkpoints").glob("*/recipe.yaml"):
        match = re.search(r"(\d+)$", recipe.parent.name)
        it = int(match.group(1)) if match else 0
        if it > best_iter:
            best, best_iter = recipe, it
    if best is None:
        return None
    try:
        return OmegaConf.to_container(OmegaConf.create(load_yaml(best.read_text(encoding="utf-8")) or {}), resolve=False)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise VTGError(f"{best}: cannot read the run's recipe: {yaml_problem(exc)}") from None


def frame_times(video: Path, num_frames: int, sampling: str = "uniform", reader: str = "auto") -> list[float]:
    """Times (seconds) of the frames the evaluation samples from ``video``: the ``uniform`` indices
    over the frame rate (a random ``sampling`` cannot be replayed; uniform is drawn for it too)."""
    from vtgcore.data.video import get_reader, sample_indices

    info = get_reader(reader).probe(video)
    return [i / info.fps for i in sample_indices(info.num_frames, num_frames, "uniform")] if info.fps > 0 else []


def run_timeline_data(run_dir: str | Path, *, limit: Optional[int] = 20, video_root: str | Path | None = None,
                      num_frames: Optional[int] = None, sampling: str = "uniform", reader: str = "auto",
                      warn: Callable[[str], Any] = lambda message: None) -> list[dict[str, Any]]:
    """Per evaluated video of a run's moment-retrieval set, the arguments of :func:`timeline`.

    Videos come in the order of the ground-truth file; ``limit`` keeps the first ones (None or 0:
    all). Saliency bars are the model's highlight scores for the video's first query that has a
    highlight prediction (``eval/highlights/predictions.json``), else none. Frame ticks need the
    video (probed, not decoded) and ``num_frames``; both default to the run's latest checkpoint
    recipe.

    Returns:
        ``[{"video_id", "duration", "gt_windows", "pred_windows", "saliency", "frame_times",
        "labels", "saliency_label"}]``.

    Raises:
        VTGError: no moment-retrieval evaluation in the run folder, or its files cannot be read.
    """
    from vtgcore.data.formats import load_eval, resolve_video
    from vtgcore.eval.evaluation import read_cache

    run_dir = Path(run_dir)
    folder = run_dir / "eval" / EVAL_TASKS["mr"]
    record = _read_json(folder / "metrics.json", "moment-retrieval evaluation record")
    predictions = _read_json(folder / "predictions.json", "moment-retrieval predictions")
    rows = read_cache(folder / "generations.jsonl")
    annotation = locate(record["annotation"], run_dir)
    try:
        items = load_eval(annotation, None)
    except VTGError as exc:
        raise VTGError(f"{run_dir}: cannot read the ground truth named in {folder / 'metrics.json'}: {exc}") from None
    recipe = latest_recipe(run_dir) if (video_root is None or num_frames is None) else None
    if recipe is not None:
        data = recipe.get("data", {})
        video_root = video_root if video_root is not None else data.get("video_root")
        num_frames = num_frames if num_frames is not None else data.get("num_frames")
        sampling = data.get("eval_sampling", sampling)
        reader = data.get("reader", reader)
    root = locate(video_root, run_dir) if video_root else None
    saliency_by_query: dict[tuple[str, str], list[float]] = {}
    hd = run_dir / "eval" / EVAL_TASKS["hd"] / "predictions.json"
    if hd.is_file():
        for row in _read_json(hd, "highlight predictions"):
            saliency_by_query[(str(row.get("vid")), str(row.get("query")))] = list(row.get("pred_saliency_scores") or [])

    videos: "OrderedDict[str, list[Any]]" = OrderedDict()
    for item in items:
        videos.setdefault(item.video, []).append(item)
    out = []
    tick_failures = 0
    for video, queries in videos.items():
        if limit and len(out) >= limit:
            break
        vid = Path(video).stem
        duration = next((q.duration for q in queries if q.duration), None)
        duration = duration or next((rows[q.id].get("duration") for q in queries
                                     if q.id in rows and rows[q.id].get("duration")), None)
        preds = []
        for q in queries:
            windows = (predictions.get(q.id) or {}).get("timestamp") or []
            preds.append(tuple(windows[0]) if windows else None)
        saliency, label = None, "saliency"
        for q in queries:
            scores = saliency_by_query.get((vid, q.query))
            if scores:
                saliency, label = scores, f"predicted saliency: {_short(q.query, 30)}"
                break
        times: list[float] = []
        if num_frames:
            try:
                times = frame_times(resolve_video(video, root), int(num_frames), sampling, reader)
            except (VTGError, OSError, ValueError):
                tick_failures += 1
        out.append({"video_id": vid, "duration": duration, "gt_windows": [q.windows[0] for q in queries],
                    "pred_windows": preds, "saliency": saliency, "frame_times": times,
                    "labels": [q.query for q in queries], "saliency_label": label})
    if tick_failures:
        warn(f"{tick_failures} of {len(out)} videos could not be probed under {root}: drawn without frame ticks")
    elif not num_frames:
        warn(f"{run_dir}: no recipe with data.num_frames found: timelines drawn without frame ticks")
    return out


def run_timelines(run_dir: str | Path, *, limit: Optional[int] = 20, out_dir: str | Path | None = None,
                  video_root: str | Path | None = None, num_frames: Optional[int] = None,
                  sampling: str = "uniform", reader: str = "auto",
                  warn: Callable[[str], Any] = lambda message: None) -> list[Path]:
    """Draw the timelines of a run folder into ``RUN_DIR/plots/`` (one ``<video id>.png`` each)."""
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / PLOTS_DIR
    paths = []
    for entry in run_timeline_data(run_dir, limit=limit, video_root=video_root, num_frames=num_frames,
                                   sampling=sampling, reader=reader, warn=warn):
        name = re.sub(r"[^A-Za-z0-9._-]", "_", entry["video_id"]) or "video"
        paths.append(timeline(entry["video_id"], entry["duration"], entry["gt_windows"], entry["pred_windows"],
                              entry["saliency"], entry["frame_times"], out / f"timeline_{name}.png",
                              labels=entry["labels"], saliency_label=entry["saliency_label"]))
    return paths


def chart_name(metric: str) -> str:
    """File name of a metric's sweep chart: ``moment_retrieval/R1@0.5`` -> ``moment_retrieval__R1@0.5.png``."""
    return re.sub(r"[^A-Za-z0-9@._-]", "_", metric.replace("/", "__")) + ".png"


def sweep_charts(sweep_dir: str | Path, metrics: Optional[Sequence[str]] = None,
                 out_dir: str | Path | None = None) -> list[Path]:
    """Draw one chart per metric (default: every metric some finished variant has) from
    ``SWEEP_DIR/results.json`` into ``SWEEP_DIR/plots/``."""
    sweep_dir = Path(sweep_dir)
    results = _read_json(sweep_dir / "results.json", "sweep results (run vtg sweep first)")
    out = Path(out_dir) if out_dir is not None else sweep_dir / PLOTS_DIR
    names = list(metrics) if metrics else list(results.get("metrics") or [])
    paths = []
    for metric in names:
        data = sweep_chart_data(results, metric)
        if data["variants"]:
            paths.append(draw_sweep_chart(data, out / chart_name(metric)))
        elif metrics:
            raise VTGError(f"{sweep_dir / 'results.json'}: no finished variant has the metric {metric!r}; "
                           f"metrics: {', '.join(results.get('metrics') or []) or '(none)'}")
    return paths
