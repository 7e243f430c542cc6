"""The second round of the bad-input corpus (issue 20): unbounded work from small files, tracebacks
where one line was promised, text that is not valid Unicode, unchecked recipe values and
command-line numbers, and messages that did not name the file.

:data:`CASES` uses :class:`test_bad_inputs.Case` and the same two checks (``test_cli`` through
``vtg`` in process, ``test_library`` through the library call), plus the outcome ``usage``: argparse
refuses a command-line number (exit 2, the last stderr line names the option and what it must be).
``before`` records how each input fared before issue 20's fixes (measured on the previous commit).
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from test_bad_inputs import (BASE, ROOT, TINY, Case, _NOTE, _PROGRESS, _marker_absent, _names_file, charades,
                             charades_item, data_check, evaluate, load_eval, load_recipe, metrics_grounding, raw_file,
                             read, recipe, recipe_show, vtg_it, load_vtg_it, with_video)
from vtgcore.apps import cli
from vtgcore.errors import AnnotationError, CheckpointError, RecipeError, VideoReadError
from vtgcore.eval.score_files import PredictionError
from vtgcore.utils import limits as L

# ------------------------------------------------------------------------------------------------
# Generators

DEEP = 5000


def deep_json(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def charades_raw(item_text: str) -> bytes:
    return ('{"annotations": [{' + item_text + "}]}").encode()


ITEM = '"image_id": "ok.mp4", "caption": "a red circle", "timestamp": [0, 1], "id": 1'
HUGE_INT = "1" * 5000


def prediction_file(content: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        charades(folder, [charades_item()], name="gt.json")
        path = folder / "pred.json"
        path.write_text(content)
        return path
    return make


def metrics_pred(folder: Path, bad: Path) -> list[str]:
    return ["metrics", "grounding", "--pred", str(bad), "--gt", str(folder / "gt.json")]


def score_pred(folder: Path, bad: Path) -> Any:
    from vtgcore.eval.score_files import score_grounding

    return score_grounding(bad, folder / "gt.json")


def score_gt(folder: Path, bad: Path) -> Any:
    from vtgcore.eval.score_files import score_grounding

    pred = folder / "pred.json"
    pred.write_text("{}")
    return score_grounding(pred, bad)


def qvh(duration: float) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "hl.jsonl"
        path.write_text(json.dumps({"qid": 1, "query": "a circle", "duration": duration, "vid": "ok",
                                    "relevant_clip_ids": [0], "saliency_scores": [[1, 2, 3]],
                                    "relevant_windows": [[0, 2]]}) + "\n")
        return path
    return make


def metrics_highlights(folder: Path, bad: Path) -> list[str]:
    pred = folder / "pred.json"
    pred.write_text(json.dumps([{"qid": 1, "pred_saliency_scores": [1.0]}]))
    return ["metrics", "highlights", "--pred", str(pred), "--gt", str(bad)]


LAUGHS = "".join(f"{chr(98 + k)}: &{chr(98 + k)} [" + ", ".join([f"*{chr(97 + k)}"] * 10) + "]\n" for k in range(8))
"""Nine levels of ten aliases each: 10^9 nodes once expanded, a few hundred bytes as text."""


def laughs(prefix: str = "") -> str:
    return prefix + "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + LAUGHS


def sweep_file(text: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "sweep.yaml"
        path.write_text(f"base: {TINY}\n" + text)
        return path
    return make


def sweep_dry_run(*extra: str) -> Callable[[Path, Path], list[str]]:
    return lambda folder, bad: ["sweep", str(bad), "--dry-run", "--out", str(folder / "out"), *extra]


def load_sweep(folder: Path, bad: Path) -> Any:
    from vtgcore.apps.sweep import SweepError, load_sweep as load

    try:
        return load(bad)
    except SweepError as exc:  # a VTGError; reraised as RecipeError's sibling for the table
        raise RecipeError(str(exc)) from None


def defaults_chain(depth: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        root = folder / "recipes"
        (root / "components").mkdir(parents=True)
        for k in range(depth):
            (root / f"r{k}.yaml").write_text(f"defaults: [r{k + 1}.yaml]\n")
        (root / f"r{depth}.yaml").write_text("experiment_name: deep\n")
        return root / "r0.yaml"
    return make


def component_laughs(folder: Path) -> Path:
    """A compressor component file (in a recipes root of its own) that is an alias bomb."""
    root = folder / "recipes"
    (root / "components" / "compressor").mkdir(parents=True)
    (root / "debug").symlink_to(ROOT / "recipes" / "debug")
    for group in (ROOT / "recipes" / "components").iterdir():
        if group.name != "compressor":
            (root / "components" / group.name).symlink_to(group)
    for option in (ROOT / "recipes" / "components" / "compressor").glob("*.yaml"):
        (root / "components" / "compressor" / option.name).symlink_to(option)
    evil = root / "components" / "compressor" / "evil.yaml"
    evil.write_text(laughs())
    (root / "bad.yaml").write_text("defaults: [/debug/tiny, {override compressor: evil}]\n")
    return evil


def recipe_in(name: str) -> Callable[[Path, Path], list[str]]:
    return lambda folder, bad: ["recipe", "show", str(folder / "recipes" / name)]


def load_recipe_in(name: str) -> Callable[[Path, Path], Any]:
    def call(folder: Path, bad: Path) -> Any:
        from vtgcore.config.loader import load_recipe as load

        return load(folder / "recipes" / name)
    return call


def pth_with_int_keys(folder: Path) -> Path:
    path = folder / "vtgllm.pth"
    torch.save({"model": {1: torch.zeros(2), 2: torch.zeros(3)}}, path)
    return path


def read_pth(folder: Path, bad: Path) -> Any:
    from vtgcore_plugins.encoders.eva_vit_g_qformer import read_weight_file

    return read_weight_file(str(bad), "VTG-LLM checkpoint")


def deep_manifest(folder: Path) -> Path:
    from safetensors.torch import save

    from test_bad_inputs import _tiny_state

    out = folder / "ckpt"
    out.mkdir()
    (out / "model.safetensors").write_bytes(save(_tiny_state()))
    (out / "manifest.json").write_text(deep_json())
    return out / "manifest.json"


def load_checkpoint_folder(folder: Path, bad: Path) -> Any:
    from test_bad_inputs import tiny_model
    from vtgcore.checkpoint import load_checkpoint

    return load_checkpoint(tiny_model(), bad.parent)


def zero_frame_video(folder: Path) -> Path:
    """An mp4 whose sample table declares 0 frames (``stsz`` sample count 0)."""
    from vtgcore.data import pattern_videos as V

    source = V.write_test_video(folder / "source.mp4", num_frames=16)
    data = bytearray(source.read_bytes())
    source.unlink()
    at = data.index(b"stsz") + 4 + 8
    data[at:at + 4] = struct.pack(">I", 0)
    out = folder / "zero_frames.mp4"
    out.write_bytes(bytes(data))
    return out


def argv(*args: str) -> Callable[[Path, Path], list[str]]:
    return lambda folder, bad: [a.format(bad=bad, folder=folder, tiny=TINY) for a in args]


def no_library(folder: Path, bad: Path) -> Any:
    raise AssertionError("command-line only")


def surrogate_charades(field: str) -> Callable[[Path], Path]:
    item = {"image_id": "ok.mp4", "caption": "a red circle", "timestamp": [0, 1], "id": 1}
    item[field] = "SURROGATE"
    text = json.dumps({"annotations": [item]}).replace("SURROGATE", "a \\ud800 b")
    return raw_file("gt.json", text.encode())


SURROGATE = r"not valid Unicode text \(a lone surrogate"
NESTED = r"invalid JSON: nested deeper than 100 levels"
RECIPE_VALUE = "fixed: accepted by vtg recipe show and validate"

# ------------------------------------------------------------------------------------------------
# The corpus

CASES: list[Case] = [
    # -- JSON limits -------------------------------------------------------------------------------
    Case("json_annotation_nested_5000_deep", "annotation", raw_file("gt.json", b'{"annotations": ' + deep_json().encode() + b"}"),
         metrics_grounding, "error", load_eval, AnnotationError, NESTED,
         before="fixed: a RecursionError traceback"),
    Case("json_annotation_nested_150_deep", "annotation", raw_file("gt.json", b'{"annotations": [{"image_id": "ok.mp4", '
         b'"caption": "x", "timestamp": [0, 1], "id": 1, "extra": ' + deep_json(150).encode() + b"}]}"),
         metrics_grounding, "error", load_eval, AnnotationError, NESTED,
         before="fixed: accepted"),
    Case("json_annotation_5000_digit_time", "annotation", raw_file("gt.json", charades_raw(
         '"image_id": "ok.mp4", "caption": "x", "timestamp": [0, ' + HUGE_INT + '], "id": 1')),
         metrics_grounding, "error", load_eval, AnnotationError, r"an integer with 5000 digits \(more than 100\)",
         before="fixed: a ValueError traceback (Python's int-string conversion limit)"),
    Case("json_annotation_5000_digit_id", "annotation", raw_file("gt.json", charades_raw(
         '"image_id": "ok.mp4", "caption": "x", "timestamp": [0, 1], "id": ' + HUGE_INT)),
         metrics_grounding, "error", load_eval, AnnotationError, r"an integer with 5000 digits",
         before="fixed: a ValueError traceback (Python's int-string conversion limit)"),
    Case("json_qvhighlights_line_nested_deep", "annotation", raw_file("hl.jsonl", deep_json().encode() + b"\n"),
         metrics_highlights, "error", load_eval, AnnotationError, r"line 1: invalid JSON: nested deeper",
         before="fixed: a RecursionError traceback"),
    Case("json_prediction_nested_deep", "annotation", prediction_file(deep_json()), metrics_pred, "error", score_pred,
         PredictionError, NESTED, before="fixed: a RecursionError traceback"),
    Case("json_prediction_5000_digit_int", "annotation", prediction_file('{"1": {"timestamp": [[0, ' + HUGE_INT + "]]}}"),
         metrics_pred, "error", score_pred, PredictionError, r"an integer with 5000 digits",
         before="fixed: a ValueError traceback (Python's int-string conversion limit)"),
    Case("json_checkpoint_manifest_nested_deep", "checkpoint", deep_manifest, evaluate("--checkpoint={folder}/ckpt"), "error",
         load_checkpoint_folder, CheckpointError, r"unreadable checkpoint manifest \(invalid JSON: nested deeper",
         before="fixed: a RecursionError traceback"),
    # -- text that is not valid Unicode ------------------------------------------------------------
    Case("unicode_surrogate_caption", "annotation", surrogate_charades("caption"), metrics_grounding, "error",
         load_eval, AnnotationError, r"annotations\[0\]\.caption: " + SURROGATE,
         before="fixed: accepted"),
    Case("unicode_surrogate_video_name", "annotation", surrogate_charades("image_id"), metrics_grounding, "error",
         load_eval, AnnotationError, r"annotations\[0\]\.image_id: " + SURROGATE,
         before="fixed: accepted"),
    Case("unicode_surrogate_caption_in_evaluation", "annotation", with_video(surrogate_charades("caption")),
         evaluate(annotation=True), "error", load_eval, AnnotationError, SURROGATE,
         before="fixed: a traceback stopped the whole evaluation"),
    Case("unicode_surrogate_training_query", "annotation",
         raw_file("train.json", b'[{"video": "ok.mp4", "QA": [{"q": "when \\udfff?", "a": "0.0 - 1.0 seconds"}]}]'),
         data_check(), "error", load_vtg_it, AnnotationError, r"\[0\]\.QA\[0\]\.q: " + SURROGATE,
         before="fixed: vtg data check reported other problems, not this one"),
    Case("unicode_surrogate_in_recipe", "recipe", recipe(BASE + 'experiment_name: "run \\ud800"\n'), recipe_show,
         "error", load_recipe, RecipeError, r"not valid YAML: while parsing a quoted scalar"),
    Case("unicode_undecodable_bytes_in_recipe_path", "recipe", lambda f: f / "run\udcff.yaml", recipe_show, "error",
         load_recipe, RecipeError, r"run(\\udcff|\udcff)\.yaml: recipe file not found"),
    # -- YAML limits -------------------------------------------------------------------------------
    Case("yaml_recipe_alias_bomb", "recipe", recipe(laughs()), recipe_show, "error", load_recipe, RecipeError,
         r"YAML aliases expand to more than 10000 nodes"),
    Case("yaml_recipe_nested_5000_deep", "recipe", recipe("x: " + deep_json() + "\n"), recipe_show, "error",
         load_recipe, RecipeError, r"not valid YAML: nested deeper than 100 levels"),
    Case("yaml_recipe_recursive_alias", "recipe", recipe("x: &x [*x]\n"), recipe_show, "error", load_recipe,
         RecipeError, r"YAML recursive aliases are not supported"),
    Case("yaml_component_alias_bomb", "recipe", component_laughs, recipe_in("bad.yaml"), "error",
         load_recipe_in("bad.yaml"), RecipeError,
         r"YAML aliases expand to more than 10000 nodes"),
    Case("yaml_sweep_alias_bomb", "recipe", sweep_file("variants: {v: [seed=1]}\ndescription:\n" + "".join(f"  {line}\n" for line in laughs().splitlines())
                   + "seeds: *i\n"), sweep_dry_run(), "error",
         load_sweep, RecipeError, r"YAML aliases expand to more than 10000 nodes",
         before="fixed: hung with memory growing (no alias limit on sweep files; the error built the repr of "
                "the expanded structure)"),
    Case("yaml_sweep_nested_deep", "recipe", sweep_file("common: " + deep_json() + "\n"), sweep_dry_run(), "error",
         load_sweep, RecipeError, r"nested deeper than 100 levels", before="fixed: a RecursionError traceback"),
    Case("sweep_grid_ten_keys_one_list", "recipe",
         sweep_file("grid:\n" + "".join(f"  k{k}: {'&v [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]' if k == 0 else '*v'}\n"
                                         for k in range(10))), sweep_dry_run(), "error", load_sweep, RecipeError,
         r"grid makes 1e\+10 variants, more than the limit of 1000 \(vtg sweep --max-runs raises it\)",
         before="fixed: hung (10^10 variants built one by one)"),
    Case("sweep_variants_times_seeds_over_the_cap", "recipe",
         sweep_file("seeds: [" + ", ".join(map(str, range(200))) + "]\nvariants:\n"
                    + "".join(f"  v{k}: [seed=1]\n" for k in range(6))), sweep_dry_run(), "error", load_sweep,
         RecipeError, r"6 variants x 200 seeds are more than the limit of 1000 runs",
         before="fixed: hung (1200 runs resolved one by one, no limit)"),
    Case("recipe_defaults_chain_1000_deep", "recipe", defaults_chain(1000), recipe_show, "error", load_recipe,
         RecipeError, r"the defaults chain is deeper than 32 files",
         before="fixed: a RecursionError traceback from omegaconf"),
    # -- durations and counts before they size an array --------------------------------------------
    Case("highlight_duration_1e15", "annotation", qvh(1e15), metrics_highlights, "error", load_eval, AnnotationError,
         r"field 'duration': duration 1e\+15 s is longer than the limit of 604800 s",
         before="fixed: tried to allocate 10.7 PiB (a numpy MemoryError traceback)"),
    Case("charades_time_1e15", "annotation", lambda f: charades(f, [charades_item(timestamp=[0, 1e15])]),
         metrics_grounding, "error", load_eval, AnnotationError, r"field 'timestamp': time 1e\+15 s is longer than",
         before="fixed: accepted"),
    # -- recipe values the run died on -------------------------------------------------------------
    Case("recipe_num_frames_zero", "recipe", recipe(BASE + "data: {num_frames: 0}\n"), recipe_show, "error",
         load_recipe, RecipeError, r"data.num_frames must be in \[1, 100000\], got 0", before=RECIPE_VALUE),
    Case("recipe_num_frames_negative", "recipe", recipe(BASE + "data: {num_frames: -8}\n"), recipe_show, "error",
         load_recipe, RecipeError, r"data.num_frames must be in \[1, 100000\], got -8", before=RECIPE_VALUE),
    Case("recipe_compressor_size_zero", "recipe", recipe(BASE + "model: {compressor: {params: {num_slots: 0}}}\n"),
         recipe_show, "error", load_recipe, RecipeError, r"bad value for param 'num_slots': must be in \[1, 1000000\]",
         before=RECIPE_VALUE),
    Case("recipe_seed_beyond_64_bits", "recipe", recipe(BASE + f"seed: {2 ** 64}\n"), recipe_show, "error",
         load_recipe, RecipeError, r"seed must be in \[0, 18446744073709551615\]", before=RECIPE_VALUE),
    Case("recipe_lr_nan", "recipe", recipe(BASE + "runner: {optim_wrapper: {optimizer: {lr: .nan}}}\n"), recipe_show,
         "error", load_recipe, RecipeError, r"runner.optim_wrapper.optimizer.lr is nan; allowed: a finite number > 0",
         before=RECIPE_VALUE),
    Case("recipe_lr_negative", "recipe", recipe(BASE + "runner: {optim_wrapper: {optimizer: {lr: -0.1}}}\n"),
         recipe_show, "error", load_recipe, RecipeError, r"optimizer.lr is -0.1; allowed: a finite number > 0",
         before=RECIPE_VALUE),
    Case("recipe_lr_string", "recipe", recipe(BASE + "runner: {optim_wrapper: {optimizer: {lr: fast}}}\n"),
         recipe_show, "error", load_recipe, RecipeError, r"optimizer.lr is 'fast'; allowed: a finite number > 0",
         before=RECIPE_VALUE),
    Case("recipe_lora_rank_zero", "recipe", recipe(BASE + "model: {llm: {lora: {r: 0}}}\n"), recipe_show, "error",
         load_recipe, RecipeError, r"model.llm.lora.r must be >= 1, got 0", before="fixed: accepted"),
    # -- command-line numbers ----------------------------------------------------------------------
    Case("cli_smoke_steps_zero", "cli", lambda f: TINY, argv("smoke", "{tiny}", "--steps", "0"), "usage", no_library,
         None, r"argument --steps: must be at least 1, got 0", before="fixed: an IndexError traceback"),
    Case("cli_data_check_workers_negative", "cli", with_video(lambda f: charades(f, [charades_item()])),
         argv("data", "check", "{bad}", "--video-root", "{folder}", "--workers", "-1"),
         "usage", no_library, None, r"argument --workers: must be at least 0, got -1",
         before="fixed: a ValueError traceback from the process pool"),
    Case("cli_eval_batch_size_zero", "cli", lambda f: TINY, argv("eval", "{tiny}", "--batch-size", "0"), "usage",
         no_library, None, r"argument --batch-size: must be at least 1, got 0", before="fixed: accepted"),
    Case("cli_eval_max_new_tokens_zero", "cli", lambda f: TINY, argv("eval", "{tiny}", "--max-new-tokens", "0"),
         "usage", no_library, None, r"argument --max-new-tokens: must be at least 1, got 0",
         before="fixed: accepted"),
    Case("cli_ground_max_new_tokens_negative", "cli", lambda f: TINY,
         argv("ground", "x.mp4", "q", "--recipe", "{tiny}", "--max-new-tokens", "-5"), "usage", no_library, None,
         r"argument --max-new-tokens: must be at least 1, got -5", before="fixed: accepted (never checked)"),
    Case("cli_demo_max_upload_inf", "cli", lambda f: TINY, argv("demo", "--recipe", "{tiny}", "--max-upload-mb", "inf"),
         "usage", no_library, None, r"argument --max-upload-mb: must be a finite number above 0, got inf",
         before="fixed: an OverflowError traceback"),
    Case("cli_sweep_max_runs_zero", "cli", sweep_file("variants: {a: [seed=1]}\n"), sweep_dry_run("--max-runs", "0"),
         "usage", no_library, None, r"argument --max-runs: must be at least 1, got 0", before="clear"),
    # -- checkpoints -------------------------------------------------------------------------------
    Case("pth_with_integer_keys", "checkpoint", pth_with_int_keys,
         lambda f, bad: ["convert", "vtgllm-original", str(bad), str(f / "out"), "--recipe", str(TINY)], "error",
         read_pth, CheckpointError, r"not a state dict \(a mapping of names to tensors\)",
         before="fixed: a TypeError traceback"),
    # -- messages that did not name the file -------------------------------------------------------
    Case("annotation_empty_annotations_list", "annotation", lambda f: charades(f, []), metrics_grounding, "error",
         score_gt, AnnotationError, r"no ground-truth queries to score",
         before="fixed: 'no ground-truth queries to score' without the file"),
    Case("annotation_duplicated_annotations_key", "annotation",
         raw_file("gt.json", b'{"annotations": [{' + ITEM.encode() + b'}], "annotations": []}'), metrics_grounding,
         "error", score_gt, AnnotationError, r"no ground-truth queries to score",
         before="fixed: 'no ground-truth queries to score' without the file"),
    Case("video_stream_declares_0_frames_decord", "video", zero_frame_video, data_check("decord"), "report",
         read("decord"), VideoReadError, r"video stream has no frames",
         before="fixed: raw FFmpeg log lines and decord's internal 'Check failed: avfilter_graph_create_filter' text"),
]


def corpus_counts() -> dict[str, int]:
    """Totals of :data:`CASES`: inputs tried, clear before issue 20's fixes, fixed by them."""
    fixed = sum(1 for c in CASES if c.before.startswith("fixed"))
    return {"tried": len(CASES), "clear_before": len(CASES) - fixed, "fixed": fixed}


# ------------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cli(case, tmp_path, capsys):
    bad = case.make(tmp_path)
    rc = cli.main(case.cli(tmp_path, bad)) if case.outcome != "usage" else None
    if case.outcome == "usage":
        with pytest.raises(SystemExit) as info:
            cli.main(case.cli(tmp_path, bad))
        rc = info.value.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    _marker_absent(tmp_path)
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if not _NOTE.match(line) and not _PROGRESS.match(line)]
    if case.outcome == "usage":
        assert rc == 2 and re.search(case.problem, lines[-1]), err
    elif case.outcome == "error":
        assert rc == 1 and len(errors) == 1, err
        printable = Path(str(bad).encode("utf-8", "backslashreplace").decode())  # as the one line prints it
        assert errors[0].startswith("vtg: error: ") and _names_file(errors[0], printable), errors[0]
        assert re.search(case.problem, errors[0]), errors[0]
        assert len(errors[0]) < 600, "an error message must not quote a huge structure"
    else:
        assert case.outcome == "report"
        report = json.loads(out)
        assert rc == 1 and not report["ok"] and not errors, err
        named = [p["message"] for p in report["problems"] if _names_file(p["message"], bad)]
        assert len(named) == 1 and re.search(case.problem, named[0]), report["problems"]


@pytest.mark.parametrize("case", [c for c in CASES if c.raises is not None], ids=lambda c: c.name)
def test_library(case, tmp_path):
    bad = case.make(tmp_path)
    with pytest.raises(case.raises) as info:
        case.library(tmp_path, bad)
    message = str(info.value)
    assert "\n" not in message and _names_file(message, bad), message
    assert re.search(case.problem, message), message


def test_corpus_counts():
    counts = corpus_counts()
    assert counts["tried"] >= 30 and counts["tried"] == counts["clear_before"] + counts["fixed"]
    assert len({c.name for c in CASES}) == len(CASES)


# ------------------------------------------------------------------------------------------------
# The limits and the mechanisms themselves


def test_limits_are_documented_in_one_place():
    doc = L.__doc__
    for name in ("MAX_JSON_DEPTH", "MAX_JSON_INT_DIGITS", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "MAX_DEFAULTS_DEPTH",
                 "MAX_SWEEP_RUNS", "MAX_DURATION_S"):
        assert name in doc and hasattr(L, name)


def test_no_json_or_yaml_read_bypasses_the_limits():
    """Every JSON and YAML read of vtgcore goes through vtgcore.utils.limits (the perf suite reads
    only its own subprocesses' output)."""
    root = Path(__file__).resolve().parents[2] / "vtgcore"
    pattern = re.compile(r"json\.loads?\(|yaml\.(safe_)?load\(|OmegaConf\.load\(")
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "limits.py" or "perf" in path.parts:
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(root)}:{lineno}: {line.strip()}")
    assert not offenders, offenders


def test_sweep_max_runs_raises_the_cap(tmp_path):
    from vtgcore.apps.sweep import SweepError, load_sweep as load

    path = sweep_file("grid:\n  seed: [1, 2, 3]\n  data.num_frames: [4, 8]\n")(tmp_path)
    with pytest.raises(SweepError, match="grid makes 6 variants, more than the limit of 5"):
        load(path, max_runs=5)
    assert len(load(path, max_runs=6).variants) == 6


def test_a_plugin_declares_ranges_that_recipe_validation_enforces():
    import dataclasses
    from dataclasses import dataclass

    from vtgcore.catalog import Catalog
    from vtgcore.errors import ConfigValidationError
    from vtgcore.ranges import in_range

    @dataclass
    class Config:
        size: int = in_range(4, low=1, high=64)
        scale: float = in_range(1.0, low=0.0, low_open=True)

    catalog = Catalog(entry_points=False)
    entry = catalog.get("compressor", "slot")
    catalog._entries["compressor"]["ranged"] = dataclasses.replace(entry, name="ranged", config=Config)
    assert catalog.resolve_params("compressor", "ranged", {"size": 64}) == {"size": 64, "scale": 1.0}
    for params, problem in (({"size": 0}, r"'size': must be in \[1, 64\], got 0"),
                            ({"size": 65}, r"'size': must be in \[1, 64\], got 65"),
                            ({"scale": 0.0}, r"'scale': must be > 0, got 0.0"),
                            ({"scale": float("nan")}, r"'scale': must be a finite number > 0, got nan")):
        with pytest.raises(ConfigValidationError, match=problem):
            catalog.resolve_params("compressor", "ranged", params, "r.yaml: model.compressor")


@pytest.mark.parametrize("flag,value", [("--temperature", "-1"), ("--top-p", "0"), ("--top-p", "1.5"),
                                        ("--limit", "0"), ("--temperature", "nan")])
def test_eval_numbers_are_checked_where_they_enter(flag, value, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["eval", str(TINY), flag, value])
    assert info.value.code == 2 and f"argument {flag}: must be" in capsys.readouterr().err


def test_ground_says_the_window_lies_past_the_videos_end():
    from vtgcore.apps.pipeline import Grounding
    from vtgcore.eval.parsers import parse_windows

    parsed = parse_windows("10.8 - 19.8 seconds", duration=5.0)
    answer = Grounding(windows=[], text="10.8 - 19.8 seconds", task="mr", video="clip.mp4", duration=5.0,
                       query="a circle", parsed=parsed.ok, note=parsed.note)
    text = answer.describe()
    assert "lies past the video's end (5.0 s)" in text and "no time window" not in text


def test_model_builds_are_quiet_unless_debug(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("TRANSFORMERS_VERBOSITY", None)  # the test suite's conftest quiets transformers as a whole
    command = [sys.executable, "-m", "vtgcore.apps.cli", "smoke", str(TINY), "--steps", "1"]
    plain = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert plain.returncode == 0, plain.stderr
    assert "[transformers]" not in plain.stderr and "new embeddings" not in plain.stderr, plain.stderr
    debug = subprocess.run([sys.executable, "-m", "vtgcore.apps.cli", "--debug", *command[3:]], capture_output=True,
                           text=True, env=env, timeout=600)
    assert debug.returncode == 0 and "new embeddings" in debug.stderr


def test_json_reader_limits_directly():
    assert L.loads_json("[" * 100 + "]" * 100) is not None
    for text, problem in ((deep_json(101), "nested deeper"), ("[" + "9" * 101 + "]", "101 digits"),
                          ('"\\udc80"', "not valid Unicode")):
        with pytest.raises(json.JSONDecodeError, match=problem):
            L.loads_json(text)
    assert L.loads_json('"\\ud83d\\ude00"') == "\U0001F600"  # a valid surrogate pair is one character


def test_bounded_message_for_huge_values():
    assert L.short(list(range(10**6))) == "a list of 1000000 entries"
    assert L.short(10 ** 5000) == "a int" and len(L.short("x" * 10**6)) == 60


@pytest.mark.parametrize("depth", [150, 3000])
def test_a_deeply_nested_override_is_one_short_line(depth, capsys):
    rc = cli.main(["recipe", "show", str(TINY), "description=" + deep_json(depth)])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "nested deeper than 100 levels" in err and len(err) < 400, err
