"""The ``vtg`` command line.

Errors a user can cause are printed as one line (``vtg: error: ...``) with exit status 1; the
Python traceback is shown only with ``--debug``. An operating-system error about a named file (not
found, permission denied, disk full) is printed the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

from vtgcore.errors import VTGError
from vtgcore.vocab import EVAL_TASKS, METRIC_KEYS, QUERY_TASKS, TASK_LABELS, TASKS


def _split(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split positional arguments into paths and overrides (arguments containing ``=`` or ``~``)."""
    paths = [a for a in args if "=" not in a and not a.startswith("~")]
    return paths, [a for a in args if a not in paths]


def cmd_plugins(args: argparse.Namespace) -> int:
    from vtgcore.catalog import Catalog

    rows = [e.as_row() for e in Catalog().entries()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ("kind", "name", "provider", "version", "description")
    widths = [max(len(c), *(len(r[c]) for r in rows)) for c in cols[:-1]]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths)) + "  DESCRIPTION")
    for r in rows:
        print("  ".join(r[c].ljust(w) for c, w in zip(cols, widths)) + "  " + r["description"])
    return 0


def cmd_recipe_show(args: argparse.Namespace) -> int:
    from vtgcore.config.loader import load_recipe, to_yaml

    recipe = load_recipe(args.recipe, args.overrides)
    print(to_yaml(recipe), end="")
    return 0


def cmd_recipe_validate(args: argparse.Namespace) -> int:
    from vtgcore.config.loader import (is_component, is_sweep, load_recipe, packaged_root, recipe_files,
                                       validate_component)

    paths, overrides = _split(args.items)
    if not paths:  # the shipped recipes (recipes/ of a checkout, package data of a wheel)
        paths = [str(packaged_root())]
    files = recipe_files(paths, sweeps=True)
    if not files:
        raise VTGError(f"recipe validate: no .yaml recipes under {', '.join(paths)}")
    bad = 0
    for path in files:
        try:
            if is_component(path):
                validate_component(path)
            elif is_sweep(path):
                from vtgcore.apps.sweep import validate_sweep

                validate_sweep(path, overrides)
            else:
                load_recipe(path, overrides)
        except VTGError as exc:
            bad += 1
            msg = str(exc)
            print(f"INVALID {msg}" if msg.startswith(str(path)) else f"INVALID {path}: {msg}")
        else:
            print(f"ok      {path}")
    print(f"{len(files) - bad} valid, {bad} invalid")
    return 1 if bad else 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from vtgcore.config.loader import load_recipe
    from vtgcore.apps.smoke import run_smoke

    result = run_smoke(load_recipe(args.recipe, args.overrides), steps=args.steps, where=args.recipe)
    first, last = result["losses"][0], result["losses"][-1]
    print(f"loss {first:.4f} -> {last:.4f} in {len(result['losses'])} steps ({result['seconds']:.1f} s)")
    return 0


def _progress(desc: str, unit: str = "video"):
    """A tqdm progress callback ``(done, total, **counts)`` on stderr, silent with ``--quiet``
    (see :func:`vtgcore.utils.progress.bar`)."""
    from vtgcore.utils.progress import bar

    return bar(desc, unit)


def cmd_data_check(args: argparse.Namespace) -> int:
    from vtgcore.data.doctor import check

    report = check(args.annotation, fmt=args.format, video_root=args.video_root, reader=args.reader,
                   workers=args.workers, progress=None if args.json else _progress("checking videos"))
    print(report.to_json() if args.json else report.to_text())
    return 0 if report.ok else 1


def cmd_data_synth(args: argparse.Namespace) -> int:
    from vtgcore.data.synth import generate_synth

    summary = generate_synth(args.out_dir, seed=args.seed, n_train=args.train, n_val=args.val,
                             workers=args.workers, progress=_progress("writing videos"))
    print(json.dumps(summary, indent=2))
    return 0


def cmd_data_pretrain_encoder(args: argparse.Namespace) -> int:
    from vtgcore.config.loader import load_recipe
    from vtgcore.data.synth_encoder import pretrain_recipe_encoder

    recipe = load_recipe(args.recipe, args.overrides)
    out = args.out or str(Path(args.synth_dir) / "encoder.safetensors")
    from vtgcore.utils.fileio import check_not_input, check_output_target

    check_not_input(out, [args.recipe, *Path(args.synth_dir).glob("*.json*")], "vtg data pretrain-encoder")
    check_output_target(out)
    bars: dict[str, Any] = {}  # the bar opens when the steps start (after decoding), so its rate counts steps

    def progress(step: int, steps: int, loss: float) -> None:
        if "bar" not in bars:
            bars["bar"] = _progress("pre-training the encoder", unit="step")
        bars["bar"](step, steps)

    report = pretrain_recipe_encoder(recipe, args.synth_dir, out, steps=args.steps, progress=progress)
    print(json.dumps(report, indent=2))
    print(f"load it with: model.encoder.checkpoint={out}")
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    from vtgcore.data.format_convert import convert

    count = convert(args.source, [Path(p) for p in args.src], Path(args.out), seed=args.seed, prompt_version=args.prompt_version)
    print(f"wrote {count} training items to {args.out}")
    return 0


def cmd_convert_vtgllm_original(args: argparse.Namespace) -> int:
    from vtgcore.apps.convert_weights.vtgllm_original import convert_vtgllm_original
    from vtgcore.utils.progress import info

    report = convert_vtgllm_original(args.src, args.out_dir, recipe=args.recipe, interpolation=args.interpolation,
                                     overrides=args.overrides,
                                     progress=lambda message: info(f"vtg: convert: {message}"))
    for reason, count in report["ignored"].items():
        print(f"ignored {count} key(s): {reason}")
    if "frame_table_resized" in report:
        print("frame-position table widened by nearest: {} -> {} rows".format(*report["frame_table_resized"]))
    if "time_table" in report:
        t = report["time_table"]
        print(f"time table: {t['trained_rows']} of {t['rows']} rows trained, interpolation {t['interpolation']}")
    print(f"LLM base weights from the {report['llm_base_weights']}; "
          f"{report['tensors']} tensors ({report['parameters']:,} parameters) written")
    print(report["out_dir"])
    return 0


def cmd_convert_video_llama(args: argparse.Namespace) -> int:
    from vtgcore.apps.convert_weights.video_llama import convert_video_llama
    from vtgcore.utils.progress import info

    report = convert_video_llama(args.src, args.out_dir, recipe=args.recipe, overrides=args.overrides,
                                 progress=lambda message: info(f"vtg: convert: {message}"))
    for old, new in report["renamed"].items():
        print(f"renamed {old} -> {new} (as the original)")
    for target, source in report["mapped"].items():
        print(f"{source} -> {target}")
    frames = report["frame_table"]
    if frames["resized"]:
        print(f"frame-position table resized by nearest (interpolate_frame_pos_embed): "
              f"{frames['source_rows']} -> {frames['rows']} rows")
    for reason, keys in report["unused"].items():
        print(f"unused {len(keys)} key(s): {reason}: {', '.join(keys)}")
    print(f"{report['tensors']} tensors ({report['parameters']:,} parameters) written; "
          f"start a recipe from it with {report['recipe_key']}={report['out_dir']}")
    print(report["out_dir"])
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from vtgcore.config.loader import load_recipe
    from vtgcore.mm.runner import build_runner

    recipe = load_recipe(args.recipe, args.overrides)
    runner = build_runner(recipe, work_dir=args.work_dir, launcher=args.launcher,
                          resume=args.resume or False, load_from=args.load_from, video_root=args.video_root,
                          where=args.recipe, trust_remote_code=args.trust_remote_code)
    runner.train()
    print(runner.work_dir)
    return 0


def cmd_cache_features(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from vtgcore.build import build_model
    from vtgcore.config.loader import load_recipe
    from vtgcore.data.formats import load_eval, resolve_video
    from vtgcore.mm.runner import feature_cache

    recipe = load_recipe(args.recipe, args.overrides)
    if not recipe.data.feature_cache:
        raise VTGError(f"{args.recipe}: data.feature_cache is not set (give a folder, e.g. data.feature_cache=work_dirs/features)")

    model, _ = build_model(recipe, where=args.recipe, trust_remote_code=args.trust_remote_code)
    cache = feature_cache(model, recipe)
    root = args.video_root or recipe.data.video_root
    videos = []
    if args.split in ("train", "all"):
        from vtgcore.mm.mixing import train_videos

        videos += train_videos(OmegaConf.to_container(recipe.data.train, resolve=True), root)
    if args.split in ("val", "all"):
        for spec in OmegaConf.to_container(recipe.data.val, resolve=True).values():
            videos += [resolve_video(i.video, root) for i in load_eval(spec["annotation"], spec.get("format"))]
    computed = cache.fill(videos, progress=_progress("encoding videos"))
    print(f"{computed} computed, {len(set(videos)) - computed} already cached in {cache.folder}")
    return 0


SCORE_KINDS = {"grounding": "mr", "highlights": "hd", "dense-captioning": "dvc"}
"""``vtg metrics KIND`` -> the task code it scores."""


def cmd_metrics(args: argparse.Namespace) -> int:
    from vtgcore.eval import score_files

    score = {"grounding": score_files.score_grounding, "highlights": score_files.score_highlights,
             "dense-captioning": score_files.score_dense_captioning}[args.kind]
    metrics = score(args.pred, args.gt)
    for name, why in (metrics.get("unavailable") or {}).items():
        print(f"vtg: warning: {name} unavailable: {why}", file=sys.stderr)
    if args.json:
        out = {k: metrics.get(k) for k in METRIC_KEYS[EVAL_TASKS[SCORE_KINDS[args.kind]]]}
        out.update({k: metrics[k] for k in ("count", "missing") if k in metrics})
        print(json.dumps(out))
    else:
        print(score_files.format_table(metrics))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from vtgcore.build import build_model
    from vtgcore.checkpoint import load_checkpoint
    from vtgcore.config.loader import load_recipe
    from vtgcore.data.dataset import FrameConfig
    from vtgcore.eval.generate import GenerationConfig
    from vtgcore.utils.fileio import atomic_write_text
    from vtgcore.eval.evaluation import eval_sets, evaluate_split, markdown_table
    from vtgcore.utils.progress import RunLog

    recipe = load_recipe(args.recipe, args.overrides)
    sets = OmegaConf.to_container(recipe.data[args.split], resolve=True)
    tasks = args.task or list(sets)
    unknown = [t for t in tasks if t not in sets]
    if unknown:
        raise VTGError(f"{args.recipe}: no data.{args.split} entry for task(s) {unknown}; it has {sorted(sets)}")
    from vtgcore.data.formats import load_eval

    for task in tasks:  # a malformed annotation file fails before the model is built
        load_eval(sets[task]["annotation"], sets[task].get("format"))
    if args.checkpoint:  # the trained weights replace the starting point: model.init_from is not needed
        recipe.model.init_from = None
        from vtgcore.checkpoint import frozen_component_files

        for line in frozen_component_files(recipe, args.checkpoint):  # frozen parts are not in the checkpoint
            print(f"vtg: eval: {line}", file=sys.stderr)
    _check_eval_outputs(args, recipe, sets, tasks)
    model, processor = build_model(recipe, where=args.recipe, trust_remote_code=args.trust_remote_code)
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint)
    else:
        print("vtg: warning: no --checkpoint given: evaluating freshly initialised weights", file=sys.stderr)
    frames = FrameConfig.for_eval(recipe, model.encoder)
    settings = recipe.eval  # the command's flags win over the recipe's eval section
    temperature = settings.temperature if args.temperature is None else args.temperature
    legacy_parser = settings.legacy_parser if args.legacy_parser is None else args.legacy_parser
    generation = GenerationConfig(
        max_new_tokens=settings.max_new_tokens if args.max_new_tokens is None else args.max_new_tokens,
        do_sample=temperature > 0, temperature=temperature or 1.0,
        top_p=settings.top_p if args.top_p is None else args.top_p, seed=recipe.seed)
    out_dir = args.out or str(Path(args.checkpoint or recipe.work_dir) / f"eval_{args.split}")
    log = RunLog(Path(out_dir) / "eval.log")
    log.write(f"vtg eval {args.recipe} {' '.join(args.overrides)} --checkpoint {args.checkpoint} "
              f"--split {args.split} tasks {','.join(tasks)}")

    def done(task: str, metrics: dict[str, Any], seconds: float) -> None:
        log.info(f"vtg: eval: {task}: {metrics.get('parse_total', '?')} items scored in "
                 f"{seconds:.1f} s, {metrics.get('parse_failures', '?')} parse failures, "
                 f"{metrics.get('video_errors', 0)} unreadable videos")
        _warn_item_errors(Path(out_dir) / EVAL_TASKS[task] / "metrics.json")

    results = evaluate_split(model, processor, eval_sets(sets, tasks), out_dir, frames=frames,
                             video_root=args.video_root or recipe.data.video_root, batch_size=args.batch_size,
                             generation=generation, legacy_parser=legacy_parser, limit=args.limit,
                             num_workers=args.num_workers, progress=True, on_task=done)
    atomic_write_text(Path(out_dir) / "metrics.json", json.dumps(results, indent=2))
    table = markdown_table(results)
    atomic_write_text(Path(out_dir) / "metrics.md", table + "\n")
    log.result(table)
    log.result(out_dir)
    return 0


def _check_eval_outputs(args: argparse.Namespace, recipe: Any, sets: dict[str, Any], tasks: list[str]) -> None:
    """Refuse ``vtg eval --out`` when a file it writes is one of its inputs (recipe, annotations,
    checkpoint files), before the model is built."""
    from vtgcore.utils.fileio import check_not_input

    out_dir = Path(args.out or str(Path(args.checkpoint or recipe.work_dir) / f"eval_{args.split}"))
    outputs = [out_dir / name for name in ("metrics.json", "metrics.md", "eval.log")]
    for task in tasks:
        outputs += [out_dir / EVAL_TASKS[task] / name for name in ("generations.jsonl", "predictions.json",
                                                                     "metrics.json")]
    inputs = [args.recipe, *(sets[task]["annotation"] for task in tasks)]
    if args.checkpoint and Path(args.checkpoint).is_dir():
        inputs += [p for p in Path(args.checkpoint).iterdir() if p.is_file()]
    check_not_input(outputs, inputs, "vtg eval")


def _warn_item_errors(record_path: Path, show: int = 10) -> None:
    """Warn on stderr about the items of an evaluation that could not be evaluated (first ``show``)."""
    from vtgcore.utils.limits import loads_json

    errors = loads_json(record_path.read_text(encoding="utf-8")).get("errors", [])
    if not errors:
        return
    task = record_path.parent.name
    print(f"vtg: warning: {task}: {len(errors)} item(s) could not be evaluated and count as misses "
          f"(listed under 'errors' in {record_path}; the next run tries them again):", file=sys.stderr)
    for error in errors[:show]:
        print(f"vtg: warning:   {error['id']}: {error['error']}", file=sys.stderr)
    if len(errors) > show:
        print(f"vtg: warning:   ... and {len(errors) - show} more", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from vtgcore.apps.main_job import N_TRAIN, PRETRAIN_STEPS, run
    from vtgcore.utils.progress import RunLog

    args.train = N_TRAIN if args.train is None else args.train
    args.pretrain_steps = PRETRAIN_STEPS if args.pretrain_steps is None else args.pretrain_steps
    log = RunLog(Path(args.out) / "run" / "run.log", stream=sys.stdout)  # beside mmengine's training log
    run_dir = run(args.out, recipe=args.recipe, overrides=args.overrides, seed=args.seed, n_train=args.train,
                  n_val=args.val, pretrain_steps=args.pretrain_steps, plots=args.plots, log=log.info,
                  result=log.result)
    print(run_dir)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from vtgcore.utils.progress import is_quiet
    from vtgcore.apps.sweep import command

    return command(args.sweep_file, out=args.out, launcher=args.launcher, dry_run=args.dry_run, only=args.only,
                   seeds=args.seed, collect_only=args.collect, note=lambda message: print(message, file=sys.stderr),
                   progress=(lambda message: None) if is_quiet() else None,
                   **({"max_runs": args.max_runs} if args.max_runs else {}))


def cmd_plot(args: argparse.Namespace) -> int:
    from vtgcore.apps import plots

    folder = Path(args.folder)
    if (folder / "results.json").is_file():
        paths = plots.sweep_charts(folder, metrics=args.metric)
    else:
        run_dir = folder / "run" if (folder / "run" / "eval").is_dir() and not (folder / "eval").is_dir() else folder
        if not (run_dir / "eval" / EVAL_TASKS["mr"] / "metrics.json").is_file():
            raise VTGError(f"{folder}: neither a sweep folder (results.json) nor a run folder with a "
                           "moment-retrieval evaluation (eval/moment_retrieval/metrics.json)")
        paths = plots.run_timelines(run_dir, limit=args.limit or None,
                                    warn=lambda message: print(f"vtg: warning: {message}", file=sys.stderr))
    for path in paths:
        print(path)
    print(f"{len(paths)} picture(s) written")
    return 0


def _add_trust_flag(parser: argparse.ArgumentParser) -> None:
    """``--trust-remote-code``: the only way a recipe's ``trust_remote_code: true`` takes effect."""
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="let the recipe's trust_remote_code: true run the Python code of its model folder "
                             "(never on from a recipe, run folder or checkpoint alone; only for folders you trust)")


def _pipeline_source(args: argparse.Namespace, command: str) -> Optional[str]:
    """The run folder or recipe of ``--run`` / ``--recipe`` (at most one of them)."""
    if args.run and args.recipe:
        raise VTGError(f"{command}: give --run RUN_DIR or --recipe RECIPE (with --checkpoint DIR), not both")
    if args.checkpoint and not (args.run or args.recipe):
        raise VTGError(f"{command}: --checkpoint needs --recipe RECIPE (or use --run RUN_DIR alone)")
    return args.run or args.recipe


def cmd_ground(args: argparse.Namespace) -> int:
    from vtgcore.errors import VideoReadError
    from vtgcore.eval.generate import GenerationConfig
    from vtgcore.apps.pipeline import load_pipeline

    source = _pipeline_source(args, "vtg ground")
    if source is None:
        raise VTGError("vtg ground: give the model: --run RUN_DIR (a run folder from vtg run or vtg train), "
                       "or --recipe RECIPE --checkpoint DIR")
    video = Path(args.video)
    if not video.exists():
        raise VideoReadError(f"{video}: file not found")
    if not video.is_file():
        raise VideoReadError(f"{video}: not a regular file")
    if args.task in QUERY_TASKS and not (args.query or "").strip():
        raise VTGError(f'vtg ground: {TASK_LABELS[args.task]} needs a query: vtg ground VIDEO "QUERY" ...')
    overrides = list(args.overrides)
    if args.task not in QUERY_TASKS and args.query and "=" in args.query:  # an override, not a query
        overrides.insert(0, args.query)
        args.query = None
    if args.task not in QUERY_TASKS and args.query:
        print(f"vtg: warning: {TASK_LABELS[args.task]} takes no query; ignoring {args.query!r}", file=sys.stderr)
    pipe = load_pipeline(source, args.checkpoint, device=args.device, overrides=overrides,
                         allow_random=args.random_weights, trust_remote_code=args.trust_remote_code,
                         generation=GenerationConfig(max_new_tokens=args.max_new_tokens), batch_size=1)
    if pipe.checkpoint is None:
        print("vtg: warning: random weights (--random-weights): the answer means nothing", file=sys.stderr)
    result = pipe.predict(video, args.query if args.task in QUERY_TASKS else None, args.task)
    print(json.dumps(result.to_dict(), ensure_ascii=False) if args.json else result.describe(verbose=args.verbose))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vtgcore.apps.demo import NO_MODEL, DemoLimits, serve
    from vtgcore.eval.generate import GenerationConfig
    from vtgcore.apps.pipeline import load_pipeline

    limits = DemoLimits(max_upload_mb=args.max_upload_mb, max_duration_s=args.max_duration)
    source = _pipeline_source(args, "vtg demo")
    pipe, message = None, NO_MODEL
    if source is not None:
        if args.recipe and not args.checkpoint:
            message = (f"{args.recipe}: a recipe alone has no trained weights, so nothing can be answered. "
                       f"Restart with --checkpoint DIR, or with --run RUN_DIR.")
            print(f"vtg: warning: {message}", file=sys.stderr)
        else:
            pipe = load_pipeline(source, args.checkpoint, device=args.device, overrides=args.overrides,
                                 generation=GenerationConfig(max_new_tokens=args.max_new_tokens),
                                 trust_remote_code=args.trust_remote_code)
    else:
        print("vtg: warning: no model given (--run RUN_DIR): the page will say so", file=sys.stderr)
    print(f"vtg demo: serving on http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    serve(pipe, host=args.host, port=args.port, limits=limits, message=message)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from vtgcore.apps.perf.suite import main as bench_main

    argv = (["--quick"] if args.quick else []) + (["--json", args.json] if args.json else [])
    for section in args.only or []:
        argv += ["--only", section]
    return bench_main(argv)


def _non_negative(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _bounded_int(low: int, high: Optional[int] = None) -> Any:
    """argparse type: a whole number in [low, high] (no upper bound when ``high`` is None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
        if value < low or (high is not None and value > high):
            allowed = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text[:40]}")
        return value
    parse.__name__ = "int"
    return parse


positive_int = _bounded_int(1)
"""argparse type: an integer >= 1."""
non_negative_int = _bounded_int(0)
"""argparse type: an integer >= 0 (same as :func:`_non_negative`)."""
seed_int = _bounded_int(0, 2**64 - 1)
"""argparse type: a seed, 0 .. 2^64 - 1 (what torch and numpy accept)."""
port_int = _bounded_int(0, 65535)


def _bounded_float(low: float, high: float = float("inf"), *, low_open: bool = True) -> Any:
    """argparse type: a finite number above ``low`` (or at least ``low`` when not ``low_open``), at most ``high``."""
    import math

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
        if not math.isfinite(value) or value > high or (value <= low if low_open else value < low):
            side = "above" if low_open else "at least"
            top = f" and at most {high:g}" if math.isfinite(high) else ""
            raise argparse.ArgumentTypeError(f"must be a finite number {side} {low:g}{top}, got {text[:40]}")
        return value
    parse.__name__ = "float"
    return parse


positive_finite_float = _bounded_float(0.0)
"""argparse type: a finite number > 0."""
non_negative_finite_float = _bounded_float(0.0, low_open=False)
"""argparse type: a finite number >= 0."""
probability = _bounded_float(0.0, 1.0)
"""argparse type: a number in (0, 1]."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vtg", description="vtgcore: video temporal grounding with LLMs")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars or informational lines (errors, warnings and results are still "
                             "printed; run logs are still written); also after the command, or VTG_QUIET=1")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list registered plugins")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_plugins)

    recipe = sub.add_parser("recipe", help="show or validate recipes").add_subparsers(dest="recipe_command", required=True)
    p = recipe.add_parser("show", help="print the resolved recipe")
    p.add_argument("recipe", help="a recipe file, or a shipped recipe by name (vtgllm/synth_tiny)")
    p.add_argument("overrides", nargs="*", help="key=value, group=option or ~key")
    p.set_defaults(func=cmd_recipe_show)
    p = recipe.add_parser("validate", help="validate recipe files or folders (default: all shipped recipes)")
    p.add_argument("items", nargs="*", metavar="PATH_OR_OVERRIDE",
                   help="recipe files or folders, or shipped ones by name (vtgllm, debug/tiny); none: every "
                        "shipped recipe; arguments with '=' are overrides applied to each")
    p.set_defaults(func=cmd_recipe_validate)

    data = sub.add_parser("data", help="data tools: check, synth, convert").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("check", help="check an annotation file and its videos (exit 0 only when clean)")
    p.add_argument("annotation")
    p.add_argument("--video-root", default=None, help="folder relative video paths are resolved against")
    p.add_argument("--format", default=None,
                   choices=["vtg-it", "charades", "qvhighlights", "youcook2", "activitynet", "didemo"],
                   help="annotation format (default: detected)")
    p.add_argument("--reader", default="auto", choices=["auto", "decord", "pyav"])
    p.add_argument("--workers", type=non_negative_int, default=0, help="parallel video checks (default: CPUs, at most 8)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_data_check)
    p = data.add_parser("synth", help="write the VTG-Synth benchmark (videos, training and evaluation files)")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--train", type=positive_int, default=200, help="training videos (default 200)")
    p.add_argument("--val", type=positive_int, default=50, help="evaluation videos (default 50)")
    p.add_argument("--workers", type=positive_int, default=min(4, os.cpu_count() or 1),
                   help="processes writing videos (default: up to 4, one per core); the files do not depend on it")
    p.set_defaults(func=cmd_data_synth)
    p = data.add_parser("pretrain-encoder",
                        help="pre-train the recipe's frame encoder on VTG-Synth patch labels (stand-in for pretrained weights)")
    p.add_argument("synth_dir", help="VTG-Synth root (from vtg data synth)")
    p.add_argument("overrides", nargs="*", help="recipe overrides: key=value, group=option or ~key")
    p.add_argument("--recipe", default="recipes/vtgllm/synth_tiny.yaml", help="recipe whose model.encoder is built")
    p.add_argument("--out", default=None, help="safetensors file (default: SYNTH_DIR/encoder.safetensors)")
    p.add_argument("--steps", type=positive_int, default=600, help="optimiser steps (default 600)")
    p.set_defaults(func=cmd_data_pretrain_encoder)
    p = data.add_parser("convert", help="turn a data set's own annotations into VTG-IT training items")
    p.add_argument("--from", dest="source", required=True,
                   choices=["charades", "qvhighlights", "youcook2", "activitynet", "didemo"])
    p.add_argument("src", nargs="+", help="the source annotation file(s)")
    p.add_argument("out", help="output JSON file")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the prompt choice")
    p.add_argument("--prompt-version", default="v1")
    p.set_defaults(func=cmd_data_convert)

    convert = sub.add_parser("convert", help="convert other code bases' checkpoints to vtgcore checkpoint folders")
    convert = convert.add_subparsers(dest="convert_command", required=True)
    p = convert.add_parser("vtgllm-original", help="the released VTG-LLM checkpoint (LAVIS .pth, read weights-only)")
    p.add_argument("src", help="the original checkpoint file (e.g. vtgllm.pth)")
    p.add_argument("out_dir", help="the vtgcore checkpoint folder to write")
    p.add_argument("overrides", nargs="*", help="recipe overrides: key=value, group=option or ~key")
    p.add_argument("--recipe", default=None,
                   help="recipe of the target model (default: recipes/vtgllm/eval_charades.yaml)")
    p.add_argument("--interpolation", default="none", choices=["none", "linear", "legacy_swapped"],
                   help="fill the untrained rows of the absolute-time table: linear (correct), legacy_swapped "
                        "(the original's swapped weights, for replication) or none (default)")
    p.set_defaults(func=cmd_convert_vtgllm_original)
    p = convert.add_parser("video-llama", help="Video-LLaMA-2's vision-language checkpoint (VL_LLaMA_2_7B_Finetuned.pth, "
                           "read weights-only): the paper's pre-training start, for model.init_from")
    p.add_argument("src", help="the original checkpoint file (VL_LLaMA_2_7B_Finetuned.pth)")
    p.add_argument("out_dir", help="the folder to write (model.safetensors + manifest.json)")
    p.add_argument("overrides", nargs="*", help="recipe overrides: key=value, group=option or ~key")
    p.add_argument("--recipe", default=None,
                   help="recipe the output starts: its frame count and components (default: recipes/vtgllm/base.yaml)")
    p.set_defaults(func=cmd_convert_video_llama)

    p = sub.add_parser("train", help="train a recipe with mmengine (checkpoints are safetensors folders)")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", help="key=value, group=option or ~key")
    p.add_argument("--work-dir", default=None, help="run folder (default: the recipe's work_dir)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from the last complete checkpoint of the work dir, or from the given folder")
    p.add_argument("--load-from", default=None, help="start from the weights of a vtgcore checkpoint (fine-tuning)")
    p.add_argument("--video-root", default=None, help="folder relative video paths are resolved against")
    p.add_argument("--launcher", default="none", choices=["none", "pytorch", "slurm", "mpi"],
                   help="distributed launcher (pytorch: under torchrun)")
    _add_trust_flag(p)
    p.set_defaults(func=cmd_train)

    cache = sub.add_parser("cache", help="precompute caches").add_subparsers(dest="cache_command", required=True)
    p = cache.add_parser("features", help="encode every frame of the recipe's videos with its frozen encoder")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", help="key=value, group=option or ~key")
    p.add_argument("--split", default="all", choices=["train", "val", "all"])
    p.add_argument("--video-root", default=None, help="folder relative video paths are resolved against")
    _add_trust_flag(p)
    p.set_defaults(func=cmd_cache_features)

    p = sub.add_parser("metrics", help="score prediction files in the original VTG-LLM formats")
    p.add_argument("kind", choices=list(SCORE_KINDS))
    p.add_argument("--pred", required=True, help="predictions file")
    p.add_argument("--gt", required=True, help="ground truth file")
    p.add_argument("--json", action="store_true", help="print one JSON object, values in percent")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("eval", help="evaluate a trained recipe on its evaluation sets (resumable)")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", help="key=value, group=option or ~key")
    p.add_argument("--checkpoint", default=None, help="vtgcore checkpoint folder")
    p.add_argument("--task", action="append", choices=list(EVAL_TASKS), help="task(s) to run (default: all of the split)")
    p.add_argument("--split", default="val", choices=["val", "test"], help="recipe data.val or data.test sets")
    p.add_argument("--out", default=None, help="output folder (default: <checkpoint>/eval_<split>, or <work_dir>/eval_<split> without a checkpoint)")
    p.add_argument("--video-root", default=None, help="folder relative video paths are resolved against")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--num-workers", type=_non_negative, default=0,
                   help="data loader processes that decode the next batch's videos during generation (default 0)")
    p.add_argument("--max-new-tokens", type=positive_int, default=None, help="default: the recipe's eval.max_new_tokens")
    p.add_argument("--temperature", type=non_negative_finite_float, default=None,
                   help="0: greedy (default: the recipe's eval.temperature)")
    p.add_argument("--top-p", type=probability, default=None, help="default: the recipe's eval.top_p")
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N items")
    p.add_argument("--legacy-parser", action=argparse.BooleanOptionalAction, default=None,
                   help="the original regex parsers on its decoded text (default: the recipe's eval.legacy_parser)")
    _add_trust_flag(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("ground", help="ask a trained model when something happens in your own video",
                       usage="vtg ground VIDEO [QUERY] (--run RUN_DIR | --recipe RECIPE --checkpoint DIR) [options] "
                             "[key=value ...]")
    p.add_argument("video", help="a video file (anything decord or PyAV reads)")
    p.add_argument("query", nargs="?", default=None, help="what to find (needed by mr and hd)")
    p.add_argument("--run", default=None, help="a run folder (vtg run: OUT/run; vtg train: the work dir): its "
                   "recipe and last checkpoint")
    p.add_argument("--recipe", default=None, help="a recipe file (with --checkpoint)")
    p.add_argument("--checkpoint", default=None, help="a checkpoint folder, or a run folder for its last one")
    p.add_argument("--task", default="mr", choices=list(TASKS),
                   help="mr: moment retrieval (default), dvc: dense captions, hd: highlights, summary")
    p.add_argument("--json", action="store_true", help="print one JSON object: windows, text, task, video, duration, ...")
    p.add_argument("--verbose", action="store_true", help="also print the raw generated text and the parser's notes")
    p.add_argument("--device", default="auto", help="auto (CUDA, then NPU, else CPU), cpu, cuda[:N], npu[:N]")
    p.add_argument("--max-new-tokens", type=positive_int, default=256)
    p.add_argument("--random-weights", action="store_true",
                   help="allow --recipe without --checkpoint (random weights: smoke tests only)")
    _add_trust_flag(p)
    p.set_defaults(func=cmd_ground, overrides=[])  # recipe overrides (key=value) may follow the options

    p = sub.add_parser("demo", help="serve a local web page to ground your own videos (needs the demo extra: gradio)")
    p.add_argument("--run", default=None, help="a run folder: its recipe and last checkpoint")
    p.add_argument("--recipe", default=None, help="a recipe file (with --checkpoint)")
    p.add_argument("--checkpoint", default=None, help="a checkpoint folder, or a run folder for its last one")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=port_int, default=7860)
    p.add_argument("--max-upload-mb", type=positive_finite_float, default=200.0, help="largest upload in MB (default 200)")
    p.add_argument("--max-duration", type=positive_finite_float, default=3600.0,
                   help="longest video in seconds (default 3600)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then NPU, else CPU), cpu, cuda[:N], npu[:N]")
    p.add_argument("--max-new-tokens", type=positive_int, default=256)
    _add_trust_flag(p)
    p.set_defaults(func=cmd_demo, overrides=[])  # recipe overrides (key=value) may follow the options

    p = sub.add_parser("run", help="the main job: VTG-Synth, train the tiny VTG-LLM, evaluate, compare with a baseline")
    p.add_argument("overrides", nargs="*", help="recipe overrides: key=value, group=option or ~key")
    p.add_argument("--recipe", default="recipes/vtgllm/synth_tiny.yaml")
    p.add_argument("--out", default="work_dirs/main", help="output folder (the run folder is OUT/run)")
    p.add_argument("--seed", type=seed_int, default=0, help="VTG-Synth seed")
    p.add_argument("--train", type=positive_int, default=None, help="training videos (default 1000)")
    p.add_argument("--val", type=positive_int, default=50, help="held-out videos")
    p.add_argument("--pretrain-steps", type=non_negative_int, default=None,
                   help="encoder pre-training steps on VTG-Synth frames (default 600; 0 skips)")
    p.add_argument("--plots", type=non_negative_int, default=20, metavar="N",
                   help="draw timelines of the first N moment-retrieval videos into RUN/plots (default 20; 0: none)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="train and evaluate recipe variants x seeds (results.csv/json/md)")
    p.add_argument("sweep_file", help="sweep YAML: base, common, seeds, variants or grid, main_job (or a "
                   "shipped one by name: sweeps/synth_ablations)")
    p.add_argument("--out", default=None, help="output folder (default: work_dirs/sweeps/<sweep file name>)")
    p.add_argument("--launcher", default="none", choices=["none", "print"],
                   help="none: run here, one after the other; print: one command per pending run (for a cluster)")
    p.add_argument("--dry-run", action="store_true", help="resolve every variant and show what would run")
    p.add_argument("--collect", action="store_true",
                   help="train nothing: write results.csv/json/md and the charts from the finished runs "
                        "(after runs made by separate commands)")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this variant (repeatable)")
    p.add_argument("--seed", action="append", type=seed_int, metavar="S", help="run only this seed (repeatable)")
    p.add_argument("--max-runs", type=positive_int, default=None, metavar="N",
                   help="allow up to N runs (variants x seeds; default 1000, the limit that stops a grid from "
                        "exploding)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plot", help="draw a run folder's timelines or a sweep folder's charts into DIR/plots")
    p.add_argument("folder", help="a run folder (vtg run: OUT/run) or a sweep folder (vtg sweep --out)")
    p.add_argument("--limit", type=non_negative_int, default=20, help="run folder: first N videos (default 20; 0: all)")
    p.add_argument("--metric", action="append", help="sweep folder: metric(s) to chart, e.g. moment_retrieval/R1@0.5 "
                   "(default: all)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("bench", help="benchmark suite: decoding, loading, feature cache, compressors, generation, "
                       "evaluation, memory; real shapes against the FLOP/bandwidth floor on CUDA (docs/performance.md)")
    p.add_argument("--quick", action="store_true", help="every row at toy sizes in seconds (ratios mean nothing)")
    p.add_argument("--json", default=None, help="also write the results (machine, settings, rows) here")
    p.add_argument("--only", action="append", metavar="SECTION",
                   choices=["decode", "loading", "feature_cache", "compressors", "generation", "eval", "memory",
                            "real_shapes"], help="run only this section (repeatable)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("smoke", help="build a recipe's model and overfit one generated batch (no data needed)")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", help="key=value, group=option or ~key")
    p.add_argument("--steps", type=positive_int, default=20, help="optimisation steps (default 20)")
    p.set_defaults(func=cmd_smoke)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"vtg: warning: {message}", file=sys.stderr)


QUIET_FLAGS = ("-q", "--quiet")
"""The global ``--quiet`` switch, accepted before or after the command (``vtg eval R --quiet``)."""


def parse_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """Parse, taking recipe overrides placed after options too (``vtg eval R --checkpoint C key=value``)
    and the global ``--quiet`` after the command."""
    args, extra = parser.parse_known_args(argv)
    if any(e in QUIET_FLAGS for e in extra):
        args.quiet = True
        extra = [e for e in extra if e not in QUIET_FLAGS]
    if extra:
        if getattr(args, "overrides", None) is None or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    return args


def _one_line(message: str) -> str:
    """``message`` on one line (an error message must never spread over several), printable: text
    that is not valid Unicode (lone surrogates, e.g. from undecodable bytes in a file name) is
    written as ``\\udcff`` escapes instead of failing to print."""
    line = " ".join(message.split()) or "unknown error"
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``vtg``."""
    from vtgcore.utils.progress import close_bars, set_quiet

    parser = build_parser()
    args = parse_args(parser, argv)
    set_quiet(args.quiet)
    from vtgcore.utils.quiet import set_debug

    set_debug(args.debug)  # known third-party log noise only with --debug
    if args.quiet:  # transformers' informational warnings too (read when it is first imported)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except VTGError as exc:
        close_bars()  # an error's line stands alone
        if args.debug:
            raise
        print(f"vtg: error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:
        # a path the user gave or a folder the run writes to: missing, not permitted, disk full ...
        close_bars()  # an error's line stands alone
        if args.debug or not exc.filename:
            raise
        print(f"vtg: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        close_bars()  # an error's line stands alone
        print("vtg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
