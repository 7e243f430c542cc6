"""Sweeps (``vtg sweep``): train and evaluate recipe variants over seeds with the main job, then
tabulate mean ± std over seeds.

A sweep file (YAML)::

    base: recipes/vtgllm/synth_tiny.yaml   # the recipe every variant starts from
    common: [runner.train_cfg.max_iters=500]   # optional overrides for every variant
    seeds: [0, 1, 2]                       # the recipe's ``seed`` (training randomness)
    variants:                              # name -> overrides (an empty list: the base itself)
      full: []
      no_time_tokens: [time_codec=plain_digits]
    # or, instead of variants, a cartesian product (names derived from the values):
    # grid: {compressor: [slot_8, mean_pool_1], runner.optim_wrapper.optimizer.lr: [0.001, 0.002]}
    main_job: {train: 1000, val: 50, pretrain_steps: 600}   # optional, see MAIN_JOB_DEFAULTS

Every variant x seed runs :func:`vtgcore.apps.main_job.run` in ``OUT/variants/NAME/seed_S/`` (run folder
``run/``, the resolved recipe ``recipe.yaml``, ``variant.json`` with its status, ``sweep.log``).
All of them share one VTG-Synth (``OUT/vtg_synth-s<synth_seed>-t<train>-v<val>``, which also keeps
the pre-trained encoders, one per encoder spec, steps and seed) and one feature cache
(``OUT/feature_cache``). A variant whose ``run/metrics.json`` exists and whose resolved recipe
and main-job settings are unchanged is skipped; one whose recipe changed is trained again from
scratch (its old run folder is removed); an interrupted one resumes. ``OUT/results.csv`` (one row per
variant and seed), ``results.json`` and ``results.md`` (per variant and metric: mean ± sample std
over the finished seeds, n) are rewritten after every variant, from what is on disk, so runs
started elsewhere (``--launcher print``, ``--only NAME --seed S``) are collected too.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import shlex
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import yaml

from vtgcore.errors import VTGError
from vtgcore.eval.aggregate import mean_std, summarize  # noqa: F401  (re-exported for callers)
from vtgcore.utils.fileio import atomic_write_text
from vtgcore.utils.limits import MAX_SWEEP_RUNS, load_yaml, loads_json, short, yaml_problem
from vtgcore.apps.main_job import N_TRAIN, PLOT_VIDEOS, PRETRAIN_STEPS
from vtgcore.vocab import METRIC_KEYS

SWEEP_KEYS = ("base", "common", "seeds", "variants", "grid", "main_job", "description")
MAIN_JOB_DEFAULTS: dict[str, int] = {"train": N_TRAIN, "val": 50, "pretrain_steps": PRETRAIN_STEPS, "synth_seed": 0,
                                     "plots": PLOT_VIDEOS}
"""``main_job`` settings: training and held-out VTG-Synth videos, encoder pre-training steps, the
VTG-Synth seed (one data set for every variant and seed), timelines drawn per run (0: none)."""
RESULT_SETTINGS = ("train", "val", "pretrain_steps", "synth_seed")
"""The ``main_job`` settings that change results (part of a finished variant's identity)."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+-]*$")


class SweepError(VTGError):
    """A sweep file is malformed."""


@dataclass
class Variant:
    """One named list of recipe overrides."""

    name: str
    overrides: list[str]


@dataclass
class Sweep:
    """A loaded sweep file (see the module docstring)."""

    path: Path
    base: Path
    common: list[str]
    seeds: list[int]
    variants: list[Variant]
    main_job: dict[str, int]
    description: str = ""

    @property
    def settings(self) -> dict[str, int]:
        """The main-job settings that change results."""
        return {k: self.main_job[k] for k in RESULT_SETTINGS}


@dataclass
class Job:
    """One variant x seed of a sweep.

    Attributes:
        state: ``finished`` (metrics present, recipe and settings unchanged), ``pending``,
            ``stale`` (a run folder from another recipe or settings is there) or ``invalid`` (the
            recipe does not resolve; ``error`` says why).
    """

    variant: str
    seed: int
    overrides: list[str]
    folder: Path
    recipe_text: Optional[str] = None
    error: Optional[str] = None
    state: str = "pending"

    @property
    def run_dir(self) -> Path:
        return self.folder / "run"

    @property
    def log(self) -> Path:
        return self.folder / "sweep.log"

    @property
    def label(self) -> str:
        return f"{self.variant} seed {self.seed}"


@dataclass
class SweepReport:
    """What one ``vtg sweep`` call did."""

    ran: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Sweep files


def _one_line(exc: BaseException) -> str:
    """The first line of an error; other than our own errors, with the exception's type."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return lines[0] if isinstance(exc, VTGError) else f"{type(exc).__name__}: {lines[0]}"


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SweepError(f"{where} must be a list of overrides (strings like key=value), got {short(value)}")
    return list(value)


def override_value(value: Any) -> str:
    """A YAML value written for a dotlist override (``key=<this>``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _name_part(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", override_value(value).replace(",", "+"))


def expand_grid(grid: dict[str, Sequence[Any]], where: str = "grid", max_runs: int = MAX_SWEEP_RUNS) -> list[Variant]:
    """The cartesian product of ``grid`` (key -> values), in key order then value order.

    A variant is named ``short=value`` joined by ``,``; ``short`` is the key's last dotted part
    (the full key where two keys share it); a group swap key (``compressor``) stays as it is.
    ``{compressor: [slot_8, mean_pool_1], model.compressor.params.num_slots: [4, 8]}`` gives
    ``compressor=slot_8,num_slots=4``, ``compressor=slot_8,num_slots=8``, ... with the overrides
    ``compressor=slot_8``, ``model.compressor.params.num_slots=4``.
    """
    if not isinstance(grid, dict) or not grid:
        raise SweepError(f"{where} must be a non-empty mapping key -> list of values")
    keys = [str(k) for k in grid]
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}.{key} must be a non-empty list of values, got {short(values)}")
    count = 1
    for values in grid.values():  # counted before anything is built: ten keys of ten values are 10^10
        count *= len(values)
        if count > max_runs:
            total = 1
            for v in grid.values():
                total *= len(v)
            raise SweepError(f"{where} makes {total:.3g} variants, more than the limit of {max_runs} "
                             f"(vtg sweep --max-runs raises it)")
    shorts = [k.rsplit(".", 1)[-1] for k in keys]
    shorts = [k if shorts.count(s) > 1 else s for k, s in zip(keys, shorts)]
    variants = []
    for combo in itertools.product(*(grid[k] for k in grid)):
        name = ",".join(f"{s}={_name_part(v)}" for s, v in zip(shorts, combo))
        variants.append(Variant(name, [f"{k}={override_value(v)}" for k, v in zip(keys, combo)]))
    return variants


def _find_base(base: Any, sweep_path: Path) -> Path:
    """The base recipe: as written (absolute or from the working folder), else beside the sweep file,
    else from the folder above the recipes root or from the recipes root, else a shipped recipe by
    name (``recipes/vtgllm/synth_tiny.yaml`` from any folder, :func:`~vtgcore.config.loader.resolve_recipe_path`)."""
    if not isinstance(base, str) or not base:
        raise SweepError(f"{sweep_path}: 'base' must name a recipe file")
    from vtgcore.config.loader import find_root, resolve_recipe_path

    path = Path(base)
    if path.is_absolute() or path.is_file():
        return path
    root = find_root(sweep_path.resolve())  # the recipes folder above a file in recipes/sweeps/
    for candidate in (sweep_path.parent / path, root.parent / path, root / path):
        if candidate.is_file():
            return candidate
    return resolve_recipe_path(path)  # unchanged when not shipped: load_recipe names it in its error


def load_sweep(path: str | Path, max_runs: int = MAX_SWEEP_RUNS) -> Sweep:
    """Read and check a sweep file (at most ``max_runs`` variants x seeds; YAML read within the
    limits of :mod:`vtgcore.utils.limits`).

    Raises:
        SweepError: unknown keys, missing ``base`` or ``seeds``, both or neither of ``variants``
            and ``grid``, bad names or values.
    """
    from vtgcore.config.loader import resolve_recipe_path

    path = resolve_recipe_path(path)  # a shipped sweep by name too: sweeps/synth_ablations
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"{path}: sweep file not found") from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        raise SweepError(f"{path}: not a readable YAML file: {yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: a sweep file is a YAML mapping with base, seeds and variants (or grid)")
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise SweepError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(SWEEP_KEYS)}")
    if "base" not in raw:
        raise SweepError(f"{path}: 'base' (the recipe every variant starts from) is missing")
    base = _find_base(raw["base"], path)
    seeds = raw.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
            or len(set(seeds)) != len(seeds)):
        raise SweepError(f"{path}: 'seeds' must be a non-empty list of distinct integers, got {short(seeds)}")
    if ("variants" in raw) == ("grid" in raw):
        raise SweepError(f"{path}: give either 'variants' (name -> overrides) or 'grid' (key -> values), not "
                         f"{'both' if 'variants' in raw else 'neither'}")
    if "variants" in raw:
        if not isinstance(raw["variants"], dict) or not raw["variants"]:
            raise SweepError(f"{path}: 'variants' must be a non-empty mapping name -> list of overrides")
        if len(raw["variants"]) * len(seeds) > max_runs:
            raise SweepError(f"{path}: {len(raw['variants'])} variants x {len(seeds)} seeds are more than the limit "
                             f"of {max_runs} runs (vtg sweep --max-runs raises it)")
        variants = [Variant(str(name), _strings(ovr, f"{path}: variants.{name}")) for name, ovr in raw["variants"].items()]
    else:
        variants = expand_grid(raw["grid"], f"{path}: grid", max(1, max_runs // len(seeds)))
    names = [v.name for v in variants]
    for name in names:
        if not NAME.match(name):
            raise SweepError(f"{path}: variant name {short(name)} must start with a letter or digit and hold only "
                             f"letters, digits and . _ = , + -")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SweepError(f"{path}: variant names repeat: {', '.join(duplicates)}")
    settings = raw.get("main_job") or {}
    if not isinstance(settings, dict):
        raise SweepError(f"{path}: 'main_job' must be a mapping of {', '.join(MAIN_JOB_DEFAULTS)}")
    bad = sorted(set(settings) - set(MAIN_JOB_DEFAULTS))
    if bad:
        raise SweepError(f"{path}: unknown main_job key(s) {', '.join(map(str, bad))}; allowed: "
                         f"{', '.join(MAIN_JOB_DEFAULTS)}")
    for key, value in settings.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SweepError(f"{path}: main_job.{key} must be an integer >= 0, got {short(value)}")
    return Sweep(path=path, base=base, common=_strings(raw.get("common"), f"{path}: common"), seeds=list(seeds),
                 variants=variants, main_job={**MAIN_JOB_DEFAULTS, **settings},
                 description=str(raw.get("description") or ""))


# --------------------------------------------------------------------------------------------------
# Layout and planning


def synth_dir(sweep: Sweep, out: Path) -> Path:
    """The VTG-Synth every variant of the sweep shares (named by the settings it was made with)."""
    m = sweep.main_job
    return out / f"vtg_synth-s{m['synth_seed']}-t{m['train']}-v{m['val']}"


def cache_dir(out: Path) -> Path:
    """The feature cache every variant shares (entries are keyed by the encoder and its weights)."""
    return out / "feature_cache"


def job_folder(out: Path, variant: str, seed: int) -> Path:
    return out / "variants" / variant / f"seed_{seed}"


def _read_meta(folder: Path) -> dict[str, Any]:
    try:
        meta = loads_json((folder / "variant.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _unchanged(job: Job, sweep: Sweep) -> bool:
    """Whether the run in ``job.folder`` trained today's recipe with today's main-job settings.

    A recipe saved before the schema gained a setting lacks that key; it is read again through
    today's schema, so a run whose only difference is a new setting at its default stays finished.
    """
    from vtgcore.config.loader import load_recipe, to_yaml

    if _read_meta(job.folder).get("main_job") != sweep.settings:
        return False
    recipe = job.folder / "recipe.yaml"
    try:
        saved = recipe.read_text(encoding="utf-8")
    except OSError:
        return False
    if saved == job.recipe_text:
        return True
    try:
        return to_yaml(load_recipe(recipe, validate_plugins=False)) == job.recipe_text
    except VTGError:  # a saved recipe today's schema rejects: the run is from another recipe
        return False


def _experiment_name(base: Path) -> str:
    from vtgcore.config.loader import load_recipe

    return str(load_recipe(base, validate_plugins=False).experiment_name)


def plan(sweep: Sweep, out: str | Path, *, only: Optional[Sequence[str]] = None,
         seeds: Optional[Sequence[int]] = None) -> list[Job]:
    """Resolve every variant x seed (``only``/``seeds`` keep some) and find its state; writes nothing.

    Each job's overrides are, in order: ``experiment_name=<base name>-<variant>-seed<S>`` (one
    logger per run), the sweep's ``common``, the variant's, ``seed=S``; :func:`vtgcore.apps.main_job.run`
    puts its data and work-dir overrides before them.

    Raises:
        SweepError: ``only`` or ``seeds`` name variants or seeds the sweep does not have.
        RecipeError: the base recipe itself does not load.
    """
    from vtgcore.config.loader import load_recipe, to_yaml
    from vtgcore.apps.main_job import job_overrides

    out = Path(out).resolve()  # one identity whatever spelling of the folder is given
    names = [v.name for v in sweep.variants]
    unknown = [n for n in (only or []) if n not in names]
    if unknown:
        raise SweepError(f"{sweep.path}: no variant {', '.join(map(repr, unknown))}; variants: {', '.join(names)}")
    missing = [s for s in (seeds or []) if s not in sweep.seeds]
    if missing:
        raise SweepError(f"{sweep.path}: seed(s) {missing} not in the sweep's seeds {sweep.seeds}")
    experiment = _experiment_name(sweep.base)
    jobs = []
    for variant in sweep.variants:
        if only and variant.name not in only:
            continue
        for seed in sweep.seeds:
            if seeds and seed not in seeds:
                continue
            folder = job_folder(out, variant.name, seed)
            tag = re.sub(r"[^A-Za-z0-9._-]", "_", f"{experiment}-{variant.name}-seed{seed}")
            overrides = [f"experiment_name={tag}", *sweep.common, *variant.overrides, f"seed={seed}"]
            job = Job(variant.name, seed, overrides, folder)
            try:
                recipe = load_recipe(sweep.base, [*job_overrides(folder, synth_dir(sweep, out), cache_dir(out)),
                                                  *overrides])
            except VTGError as exc:
                job.state, job.error = "invalid", _one_line(exc)
            else:
                job.recipe_text = to_yaml(recipe)
                if _unchanged(job, sweep):
                    job.state = "finished" if (job.run_dir / "metrics.json").is_file() else "pending"
                else:
                    job.state = "stale" if job.run_dir.exists() else "pending"
            jobs.append(job)
    return jobs


def validate_sweep(path: str | Path, overrides: Sequence[str] = (), max_runs: int = MAX_SWEEP_RUNS) -> list[Job]:
    """Resolve every variant x seed of a sweep file (``overrides`` after its ``common``) without
    training; the jobs.

    Raises:
        SweepError: the file is malformed or a variant does not resolve (the first ones named).
    """
    sweep = load_sweep(path, max_runs)
    sweep.common = [*sweep.common, *overrides]
    jobs = plan(sweep, default_out(path))
    bad = [j for j in jobs if j.state == "invalid"]
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise SweepError(f"{path}: " + "; ".join(f"{j.label}: {j.error}" for j in bad[:3]) + more)
    return jobs


# --------------------------------------------------------------------------------------------------
# Running


def _write_meta(job: Job, sweep: Sweep, **fields: Any) -> None:
    meta = {"variant": job.variant, "seed": job.seed, "sweep": str(sweep.path), "base": str(sweep.base),
            "overrides": job.overrides, "main_job": sweep.settings, "log": str(job.log), **fields}
    atomic_write_text(job.folder / "variant.json", json.dumps(meta, indent=2))


def _fail(job: Job, sweep: Sweep, error: str, detail: str = "") -> None:
    job.folder.mkdir(parents=True, exist_ok=True)
    with job.log.open("a", encoding="utf-8") as handle:
        handle.write(f"FAILED {job.label}: {error}\n{detail}")
    _write_meta(job, sweep, status="failed", error=error)


def run_job(job: Job, sweep: Sweep, out: Path, log: Callable[[str], Any] = print) -> Optional[str]:
    """Train and evaluate one variant x seed with :func:`vtgcore.apps.main_job.run`; None when it
    finished, else the one-line error (the traceback is in ``job.log``)."""
    from vtgcore.apps import main_job

    if job.state == "invalid":
        _fail(job, sweep, job.error or "invalid recipe")
        return job.error
    if job.state == "stale" and job.run_dir.exists():
        log(f"[{job.label}] its recipe or main-job settings changed: removing the old {job.run_dir}")
        shutil.rmtree(job.run_dir)
    job.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(job.folder / "recipe.yaml", job.recipe_text or "")
    _write_meta(job, sweep, status="running", started=time.strftime("%Y-%m-%d %H:%M:%S"))
    start = time.perf_counter()
    m = sweep.main_job
    with job.log.open("a", encoding="utf-8") as handle:
        def tee(message: str) -> None:
            handle.write(f"{message}\n")
            handle.flush()
            log(f"[{job.label}] {message}")

        tee(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {job.label}: {' '.join(job.overrides)}")
        try:
            main_job.run(job.folder, recipe=sweep.base, overrides=job.overrides, seed=m["synth_seed"],
                         n_train=m["train"], n_val=m["val"], pretrain_steps=m["pretrain_steps"], log=tee,
                         synth_dir=synth_dir(sweep, out), feature_cache_dir=cache_dir(out), plots=m["plots"])
        except Exception as exc:  # a failed variant is reported and the sweep goes on
            error = _one_line(exc)
            handle.write(traceback.format_exc())
            handle.flush()
            _write_meta(job, sweep, status="failed", error=error, seconds=round(time.perf_counter() - start, 1))
            return error
    _write_meta(job, sweep, status="finished", seconds=round(time.perf_counter() - start, 1))
    job.state = "finished"
    return None


# --------------------------------------------------------------------------------------------------
# Results


def _metric_columns(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for task, keys in METRIC_KEYS.items():
        if isinstance(metrics.get(task), dict):
            for key in keys:
                value = metrics[task].get(key)
                out[f"{task}/{key}"] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return out


def collect(sweep: Sweep, out: str | Path, jobs: Sequence[Job]) -> dict[str, Any]:
    """Results of every job from what is on disk: rows, per-variant summary, baselines."""
    out = Path(out)
    rows, baselines, metric_names = [], {}, []
    for job in jobs:
        meta = _read_meta(job.folder) if job.state != "invalid" else {}
        row: dict[str, Any] = {"variant": job.variant, "seed": job.seed, "status": job.state, "seconds": None,
                               "error": job.error or "", "log": "", "run_dir": str(job.run_dir)}
        if job.state == "finished":
            try:
                metrics = loads_json((job.run_dir / "metrics.json").read_text(encoding="utf-8"))
                if not isinstance(metrics, dict):
                    raise json.JSONDecodeError("not a JSON object", "", 0)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                row.update(status="failed", error=f"unreadable metrics.json: {_one_line(exc)}")
            else:
                row["seconds"] = metrics.get("wall_seconds", meta.get("seconds"))
                values = _metric_columns(metrics)
                row.update(values)
                metric_names += [k for k in values if k not in metric_names]
                if not baselines:
                    baselines = _metric_columns(metrics.get("baselines") or {})
        elif job.state != "invalid" and _unchanged(job, sweep) and meta.get("status") in ("failed", "running"):
            row["status"] = "failed" if meta["status"] == "failed" else "incomplete"
            row["error"] = meta.get("error", "")
            row["log"] = str(job.log)
        elif job.state == "invalid":
            row["log"] = str(job.log) if job.log.is_file() else ""
        else:
            row["status"] = "pending"
        rows.append(row)
    return {"sweep": str(sweep.path), "base": str(sweep.base), "description": sweep.description,
            "seeds": sweep.seeds, "variants": {v.name: v.overrides for v in sweep.variants},
            "common": sweep.common, "main_job": sweep.main_job, "out": str(out), "metrics": metric_names,
            "rows": rows, "summary": summarize(rows), "baselines": baselines}


def _cell(stat: Optional[dict[str, Any]]) -> str:
    if not stat or not stat.get("n"):
        return "n/a"
    return f"{stat['mean']:.1f}" if stat["std"] is None else f"{stat['mean']:.1f} ± {stat['std']:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """``results.md``: one table per task, rows = variants, cells = mean ± std over seeds, n."""
    rows, summary = results["rows"], results["summary"]
    finished = {v: sum(1 for r in rows if r["variant"] == v and r["status"] == "finished") for v in summary}
    lines = [f"# Sweep {Path(results['sweep']).stem}", ""]
    if results.get("description"):
        lines += [results["description"], ""]
    lines += [f"Base recipe `{results['base']}`, seeds {', '.join(map(str, results['seeds']))}. Cells: mean ± "
              f"sample standard deviation over the finished seeds (the mean alone with one seed); n: finished "
              f"seeds. Values in percent.", ""]
    for task, keys in METRIC_KEYS.items():
        cols = [k for k in keys if f"{task}/{k}" in results["metrics"]]
        if not cols:
            continue
        lines += [f"## {task}", "", "| variant | n | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
        for variant, stats in summary.items():
            lines.append(f"| {variant} | {finished[variant]} | "
                         + " | ".join(_cell(stats.get(f"{task}/{k}")) for k in cols) + " |")
        base = results.get("baselines") or {}
        if any(base.get(f"{task}/{k}") is not None for k in cols):
            lines.append("| constant window (baseline) | | " + " | ".join(
                "n/a" if base.get(f"{task}/{k}") is None else f"{base[f'{task}/{k}']:.1f}" for k in cols) + " |")
        lines.append("")
    other = [r for r in rows if r["status"] != "finished"]
    if other:
        lines += ["## Not finished", "", "| variant | seed | status | error | log |", "|---|---|---|---|---|"]
        for r in other:
            error = str(r.get("error") or "").replace("|", "\\|")
            lines.append(f"| {r['variant']} | {r['seed']} | {r['status']} | {error} | {r.get('log') or ''} |")
        lines.append("")
    return "\n".join(lines)


def write_results(results: dict[str, Any], out: str | Path) -> None:
    """Write ``results.csv``, ``results.json`` and ``results.md`` into ``out``."""
    out = Path(out)
    columns = ["variant", "seed", "status", "seconds", "error", "log", "run_dir", *results["metrics"]]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in results["rows"]:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    atomic_write_text(out / "results.csv", buffer.getvalue())
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    atomic_write_text(out / "results.md", markdown(results))


# --------------------------------------------------------------------------------------------------
# The command


def default_out(sweep_file: str | Path) -> Path:
    return Path("work_dirs") / "sweeps" / Path(sweep_file).stem


def commands(sweep_file: str | Path, out: str | Path, jobs: Sequence[Job]) -> list[str]:
    """One ``vtg sweep`` command per job that is not finished (invalid ones left out)."""
    return [f"vtg sweep {shlex.quote(str(sweep_file))} --out {shlex.quote(str(out))} "
            f"--only {shlex.quote(job.variant)} --seed {job.seed}"
            for job in jobs if job.state in ("pending", "stale")]


def run_sweep(sweep: Sweep, out: str | Path, *, only: Optional[Sequence[str]] = None,
              seeds: Optional[Sequence[int]] = None, log: Callable[[str], Any] = print,
              charts: bool = True) -> SweepReport:
    """Run the jobs of a sweep that are not finished (``only``/``seeds`` keep some), one after the
    other, and write the results files after each; see the module docstring."""
    out = Path(out)
    all_jobs = plan(sweep, out)
    chosen = {(j.variant, j.seed) for j in plan(sweep, out, only=only, seeds=seeds)} if (only or seeds) else None
    report = SweepReport()
    out.mkdir(parents=True, exist_ok=True)
    for job in all_jobs:
        if chosen is not None and (job.variant, job.seed) not in chosen:
            continue
        if job.state == "finished":
            log(f"skip {job.label}: finished ({job.run_dir / 'metrics.json'})")
            report.skipped.append(job)
            continue
        log(f"=== {job.label}" + (f": {job.error}" if job.state == "invalid" else ""))
        error = run_job(job, sweep, out, log)
        if error is None:
            report.ran.append(job)
        else:
            log(f"FAILED {job.label}: {error} (log: {job.log})")
            report.failed.append((job, error))
        write_results(collect(sweep, out, all_jobs), out)
    report.results = collect(sweep, out, all_jobs)
    write_results(report.results, out)
    if charts and report.results["metrics"]:
        from vtgcore.apps.plots import sweep_charts

        try:
            sweep_charts(out)
        except Exception as exc:  # a picture never fails a sweep; say so
            log(f"vtg: warning: sweep charts not drawn: {_one_line(exc)}")
    return report


def command(sweep_file: str | Path, *, out: str | Path | None = None, launcher: str = "none",
            dry_run: bool = False, only: Optional[Sequence[str]] = None, seeds: Optional[Sequence[int]] = None,
            collect_only: bool = False, echo: Callable[[str], Any] = print, note: Callable[[str], Any] = print,
            progress: Optional[Callable[[str], Any]] = None, max_runs: int = MAX_SWEEP_RUNS) -> int:
    """``vtg sweep``: returns the exit status (1 when a variant failed or does not resolve).

    ``echo`` gets the commands (``--launcher print``) and the progress; ``note`` the notes and the
    failures of the printing and dry-run modes. ``collect_only`` trains nothing and writes the
    results files and charts from the runs finished so far (all variants and seeds). ``progress``
    (default: ``echo``) gets the lines of the runs as they train and evaluate (each run's
    ``sweep.log`` keeps them either way).
    """
    sweep = load_sweep(sweep_file, max_runs)
    out = Path(out) if out is not None else default_out(sweep_file)
    if collect_only:
        jobs = plan(sweep, out)
        results = collect(sweep, out, jobs)
        out.mkdir(parents=True, exist_ok=True)
        write_results(results, out)
        if results["metrics"]:
            from vtgcore.apps.plots import sweep_charts

            sweep_charts(out)
        waiting = [j.label for j in jobs if j.state != "finished"]
        echo(f"sweep {sweep.path.stem}: {len(jobs) - len(waiting)} of {len(jobs)} runs finished"
             + (f"; not finished: {', '.join(waiting)}" if waiting else ""))
        echo(str(out / "results.md"))
        return 0
    if dry_run or launcher == "print":
        jobs = plan(sweep, out, only=only, seeds=seeds)
        invalid = [j for j in jobs if j.state == "invalid"]
        if dry_run:
            for job in jobs:
                echo(f"{job.state:<9} {job.variant} seed {job.seed}: "
                     + (job.error or " ".join(job.overrides[1:]) or "(base recipe)"))
            echo(f"{len(jobs)} runs: " + ", ".join(f"{sum(1 for j in jobs if j.state == s)} {s}"
                                                   for s in ("finished", "pending", "stale", "invalid")))
        else:
            synth = synth_dir(sweep, out)
            if not (synth / "meta.json").is_file() and any(j.state in ("pending", "stale") for j in jobs):
                m = sweep.main_job
                note(f"vtg: note: the shared VTG-Synth is not there yet; make it once before the runs start: "
                     f"vtg data synth {shlex.quote(str(synth))} --seed {m['synth_seed']} --train {m['train']} "
                     f"--val {m['val']}")
            for line in commands(sweep_file, out, jobs):
                echo(line)
            for job in invalid:
                note(f"vtg: error: {job.label} does not resolve: {job.error}")
            note(f"vtg: note: `vtg sweep {shlex.quote(str(sweep_file))} --out {shlex.quote(str(out))} --collect` "
                 "writes results.csv/json/md from the finished runs at any time")
        return 1 if invalid else 0
    report = run_sweep(sweep, out, only=only, seeds=seeds, log=progress or echo)
    echo(f"sweep {sweep.path.stem}: {len(report.ran)} run, {len(report.skipped)} already finished, "
         f"{len(report.failed)} failed")
    for job, error in report.failed:
        echo(f"FAILED {job.variant} seed {job.seed}: {error} (log: {job.log})")
    echo(str(out / "results.md"))
    return 1 if report.failed else 0
