"""The bad-input corpus (issue 9, item 1): every file is generated here, tried through the command
line and through the library.

:data:`CASES` is the whole corpus, one row per bad input. For each row:

* ``test_cli``: ``vtg`` (``vtgcore.apps.cli.main`` in process) never prints a Python traceback and
  ends as the row's ``outcome`` says: ``error`` (exit 1, stderr is exactly one line
  ``vtg: error: <file>: <problem>``), ``report`` (``vtg data check`` exits 1 and its report names
  the file and the problem), ``skip`` (``vtg eval`` finishes, exit 0, and warns that the item was
  left out, naming the file and the problem) or ``ok`` (a valid if unusual input: exit 0);
* ``test_library``: the library call raises the row's class from :mod:`vtgcore.errors` with a
  message naming the file and the problem (``ok`` and ``report`` rows: returns what it should).

``before`` records how the input fared before issue 9's fixes: ``clear`` (already a clear error)
or a note of what happened (``fixed: ...``); :func:`corpus_counts` reads the totals off the table.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import torch

from vtgcore.apps import cli
from vtgcore.errors import AnnotationError, CheckpointError, RecipeError, TimeCodecError, VideoReadError, VTGError
from vtgcore.data import pattern_videos as V

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "debug" / "tiny.yaml"


@dataclass
class Case:
    """One bad input.

    Attributes:
        name: test id.
        kind: ``video``, ``annotation``, ``recipe`` or ``checkpoint``.
        make: writes the bad input under a folder and returns the file the messages must name.
        cli: the ``vtg`` arguments for ``(folder, bad file)``.
        outcome: ``error``, ``report``, ``skip`` or ``ok`` (see the module docstring).
        library: the library call for ``(folder, bad file)``.
        raises: the class it raises (None: it returns).
        problem: regex the messages must match (besides naming the file).
        before: ``clear``, or ``fixed: <what happened before>``.
    """

    name: str
    kind: str
    make: Callable[[Path], Path]
    cli: Callable[[Path, Path], list[str]]
    outcome: str
    library: Callable[[Path, Path], Any]
    raises: Optional[type[VTGError]]
    problem: str
    before: str = "clear"


# ------------------------------------------------------------------------------------------------
# Generators


def _mp4_with_declared_duration(folder: Path, seconds: float) -> Path:
    """A 2-second video whose container headers (mvhd, tkhd, mdhd, edit list) declare ``seconds``."""
    source = V.write_test_video(folder / "source.mp4", num_frames=16)
    data = bytearray(source.read_bytes())
    source.unlink()

    def field(box: bytes, offset: int) -> int:
        return data.index(box) + 4 + offset

    scale = struct.unpack(">I", data[field(b"mvhd", 12):field(b"mvhd", 16)])[0]
    media_scale = struct.unpack(">I", data[field(b"mdhd", 12):field(b"mdhd", 16)])[0]
    for box, offset, units in ((b"mvhd", 16, scale), (b"tkhd", 20, scale), (b"mdhd", 16, media_scale),
                               (b"elst", 8, scale)):
        at = field(box, offset)
        data[at:at + 4] = struct.pack(">I", int(seconds * units))
    out = folder / f"declares_{seconds:g}s.mp4"
    out.write_bytes(bytes(data))
    return out


def corrupt(key: str) -> Callable[[Path], Path]:
    """A generator for one of :func:`vtgcore.data.pattern_videos.write_corrupt_files`' broken files."""
    def make(folder: Path) -> Path:
        return V.write_corrupt_files(folder)[key]
    return make


def video_folder(folder: Path) -> Path:
    path = folder / "folder.mp4"
    path.mkdir()
    return path


def charades(folder: Path, annotations: list[Any], name: str = "gt.json") -> Path:
    path = folder / name
    path.write_text(json.dumps({"annotations": annotations}, ensure_ascii=False), encoding="utf-8")
    return path


def charades_item(**changes: Any) -> dict[str, Any]:
    item = {"image_id": "ok.mp4", "caption": "a red circle appears", "timestamp": [0.0, 1.0], "id": 1}
    for key, value in changes.items():
        if value is _DROP:
            item.pop(key)
        else:
            item[key] = value
    return item


_DROP = object()


def annotation(**changes: Any) -> Callable[[Path], Path]:
    """A Charades-STA file with one item changed (``_DROP`` removes a field)."""
    return lambda folder: charades(folder, [charades_item(**changes)])


def raw_file(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content)
        return path
    return make


def vtg_it(items: list[Any]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "train.json"
        path.write_text(json.dumps(items), encoding="utf-8")
        return path
    return make


def with_video(make: Callable[[Path], Path], seconds: float = 2.0) -> Callable[[Path], Path]:
    """``make`` plus a readable ``ok.mp4`` of ``seconds`` (the video the annotation names)."""
    def both(folder: Path) -> Path:
        V.write_test_video(folder / "ok.mp4", num_frames=int(seconds * 8))
        return make(folder)
    return both


def recipe(text: str, name: str = "bad.yaml") -> Callable[[Path], Path]:
    """A recipe file in a recipes root that has the repository's components and debug recipes."""
    def make(folder: Path) -> Path:
        root = folder / "recipes"
        root.mkdir(exist_ok=True)
        for sub in ("components", "debug"):
            if not (root / sub).exists():
                (root / sub).symlink_to(ROOT / "recipes" / sub)
        for extra_name, extra_text in _EXTRA_RECIPES.get(name, {}).items():
            (root / extra_name).write_text(extra_text)
        path = root / name
        path.write_text(text)
        return path
    return make


_EXTRA_RECIPES = {"cycle_a.yaml": {"cycle_b.yaml": "defaults: [cycle_a.yaml]\n"}}
BASE = "defaults: [/debug/tiny]\n"
MARKER = "PWNED"


class RunsCode:
    """Unpickling an instance would run ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(name: str, wrap: Callable[[Any], Any] = lambda x: {"model": {"w": torch.zeros(2)}, "x": x}):
    """A ``torch.save`` file that would create ``<folder>/PWNED`` when unpickled without weights_only."""
    def make(folder: Path) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(wrap(RunsCode(folder / MARKER)), path)
        return path
    return make


def _tiny_state() -> dict[str, torch.Tensor]:
    from vtgcore.checkpoint import trainable_state

    return {k: v.clone() for k, v in trainable_state(tiny_model()).items()}


def checkpoint_folder(state: Callable[[], dict[str, torch.Tensor]] = _tiny_state,
                      raw: Optional[bytes] = None, cut: Optional[float] = None) -> Callable[[Path], Path]:
    """A checkpoint folder whose ``model.safetensors`` holds ``state``, ``raw`` bytes, or the first
    ``cut`` fraction of a valid file; the path returned is the weights file."""
    def make(folder: Path) -> Path:
        from safetensors.torch import save

        out = folder / "ckpt"
        out.mkdir()
        data = raw if raw is not None else save(state())
        if cut is not None:
            data = data[: int(len(data) * cut)]
        (out / "model.safetensors").write_bytes(data)
        return out / "model.safetensors"
    return make


def pickle_as_safetensors(folder: Path) -> Path:
    make = evil_pickle("ckpt/model.safetensors", wrap=lambda x: {"w": torch.zeros(2), "x": x})
    return make(folder)


def mismatched_state() -> dict[str, torch.Tensor]:
    state = _tiny_state()
    key = next(k for k in state if k.startswith("projector"))
    state[key] = torch.zeros(*[n + 1 for n in state[key].shape])
    return state


def unknown_key_state() -> dict[str, torch.Tensor]:
    return {**_tiny_state(), "projector.extra.weight": torch.zeros(3)}


def projector_file(shape_delta: int) -> Callable[[Path], Path]:
    """A projector component checkpoint (safetensors) with every shape grown by ``shape_delta``."""
    def make(folder: Path) -> Path:
        from safetensors.torch import save_file

        state = {k: torch.zeros(*[n + shape_delta for n in v.shape]) for k, v in tiny_model().projector.state_dict().items()}
        path = folder / "projector.safetensors"
        save_file(state, str(path))
        return path
    return make


def llm_folder(kind: str) -> Callable[[Path], Path]:
    """A transformers model folder holding a pickled ``pytorch_model.bin`` that would run code, or
    a config whose ``auto_map`` names the folder's own Python code (which would run code)."""
    def make(folder: Path) -> Path:
        out = folder / "llm"
        out.mkdir()
        if kind == "pickle":
            from transformers import LlamaConfig

            cfg = {k: v for k, v in __import__("vtgcore.data.tiny_tokenizers", fromlist=["TINY_LLAMA"]).TINY_LLAMA.items()
                   if k != "model_type"}
            LlamaConfig(vocab_size=400, **cfg).save_pretrained(out)
            torch.save({"x": RunsCode(folder / MARKER)}, out / "pytorch_model.bin")
            return out
        (out / "config.json").write_text(json.dumps({
            "model_type": "evil_model", "architectures": ["EvilForCausalLM"],
            "auto_map": {"AutoConfig": "configuration_evil.EvilConfig",
                         "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}}))
        code = f"open({str(folder / MARKER)!r}, 'w').write('ran')\n"
        (out / "configuration_evil.py").write_text(code)
        (out / "modeling_evil.py").write_text(code)
        return out
    return make


# ------------------------------------------------------------------------------------------------
# The tiny model for the library's checkpoint calls (built once)

_MODEL: list[Any] = []


def tiny_model() -> Any:
    if not _MODEL:
        from vtgcore import build_model, load_recipe

        _MODEL.append(build_model(load_recipe(TINY))[0])
    return _MODEL[0]


# ------------------------------------------------------------------------------------------------
# Command lines and library calls


def data_check(reader: str = "pyav") -> Callable[[Path, Path], list[str]]:
    """``vtg data check`` on a Charades file naming the bad video (or on the bad annotation)."""
    def argv(folder: Path, bad: Path) -> list[str]:
        target = bad
        if bad.suffix.lower() in (".mp4", ".mkv"):
            target = charades(folder, [charades_item(image_id=bad.name)], name="check.json")
        return ["data", "check", str(target), "--video-root", str(folder), "--json", "--reader", reader,
                "--workers", "1"]
    return argv


def metrics_grounding(folder: Path, bad: Path) -> list[str]:
    pred = folder / "pred.json"
    pred.write_text("{}")
    return ["metrics", "grounding", "--pred", str(pred), "--gt", str(bad)]


def recipe_show(folder: Path, bad: Path) -> list[str]:
    return ["recipe", "show", str(bad)]


def train(*overrides: str) -> Callable[[Path, Path], list[str]]:
    def argv(folder: Path, bad: Path) -> list[str]:
        recipe_file = bad if bad.suffix == ".yaml" else TINY
        extra = [o.format(bad=bad, folder=folder) for o in overrides]
        return ["train", str(recipe_file), *extra, "--work-dir", str(folder / "work")]
    return argv


def evaluate(*overrides: str, annotation: bool = False) -> Callable[[Path, Path], list[str]]:
    """``vtg eval`` of the tiny recipe with overrides (``{bad}``, ``{folder}`` filled in); with
    ``annotation`` the moment-retrieval set is the bad file (or a Charades file naming the bad video)."""
    def argv(folder: Path, bad: Path) -> list[str]:
        extra = [o.format(bad=bad, folder=folder) for o in overrides]
        if annotation:
            gt = bad if bad.suffix == ".json" else charades(folder, [charades_item(image_id=bad.name)], "eval.json")
            extra += [f"data.val.mr.annotation={gt}", "data.val.mr.format=charades"]
        return ["eval", str(TINY), *extra, "--out", str(folder / "out"), "--video-root", str(folder),
                "--max-new-tokens", "4", "--batch-size", "2"]
    return argv


def _training_set(folder: Path, video: Path) -> Path:
    """A VTG-IT file with one item on ``video``; returned as the bad file (it names the video)."""
    path = folder / "train.json"
    answer = "".join(f"<TIME_{d}>" for d in ("ZERO", "ZERO", "ZERO", "ONE", "DOT", "ZERO"))
    path.write_text(json.dumps([{"video": video.name, "QA": [{"q": "When?", "a": answer}]}]))
    return video


def train_library(folder: Path, bad: Path) -> Any:
    from vtgcore.config.loader import load_recipe as load
    from vtgcore.mm.runner import build_runner

    recipe = load(TINY, [f"data.train.annotation={folder / 'train.json'}", f"data.video_root={folder}"])
    build_runner(recipe, work_dir=str(folder / "lib_work")).train()


def read(reader: str = "pyav") -> Callable[[Path, Path], Any]:
    def call(folder: Path, bad: Path) -> Any:
        from vtgcore.data.video import read_clip

        return read_clip(bad, 8, reader=reader, size=(32, 32))
    return call


def load_eval(folder: Path, bad: Path) -> Any:
    from vtgcore.data.formats import load_eval as load

    return load(bad)


def load_vtg_it(folder: Path, bad: Path) -> Any:
    from vtgcore.data.formats import load_vtg_it as load

    return load(bad)


def doctor(folder: Path, bad: Path) -> Any:
    from vtgcore.data.doctor import check

    return check(bad, video_root=folder, reader="pyav", workers=1)


def load_recipe(folder: Path, bad: Path) -> Any:
    from vtgcore.config.loader import load_recipe as load

    return load(bad)


def build_runner_of(folder: Path, bad: Path) -> Any:
    from vtgcore.config.loader import load_recipe as load
    from vtgcore.mm.runner import build_runner

    return build_runner(load(bad), work_dir=str(folder / "work"), where=str(bad))


def load_checkpoint(folder: Path, bad: Path) -> Any:
    from vtgcore.checkpoint import load_checkpoint as load

    return load(tiny_model(), bad)


def load_projector(folder: Path, bad: Path) -> Any:
    from vtgcore.build import load_component_checkpoint

    return load_component_checkpoint(tiny_model().projector, str(bad), "projector")


def read_pth(folder: Path, bad: Path) -> Any:
    from vtgcore_plugins.encoders.eva_vit_g_qformer import read_weight_file

    return read_weight_file(str(bad), "VTG-LLM checkpoint")


def hf_llm(folder: Path, bad: Path) -> Any:
    from vtgcore_plugins.llms.hf_causal_lm import HFCausalLM

    return HFCausalLM(path=str(bad), tokenizer="tiny")


def evaluate_library(folder: Path, bad: Path, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """The evaluation runner on a one-item set naming the bad input; returns ``metrics.json``."""
    from vtgcore.data.dataset import FrameConfig
    from vtgcore.eval import evaluation as R
    from vtgcore.eval.generate import GenerationConfig
    from vtgcore import build_model, load_recipe as load

    model, processor = build_model(load(TINY, list(overrides)))
    gt = bad if bad.suffix == ".json" else charades(folder, [charades_item(image_id=bad.name)], "eval.json")
    enc = model.encoder
    frames = FrameConfig(8, "uniform", "pyav", enc.image_size, mean=enc.mean, std=enc.std)
    R.evaluate_set(model, processor, R.EvalSet("mr", str(gt), "charades"), folder / "lib", frames=frames,
                   video_root=folder, batch_size=2, generation=GenerationConfig(max_new_tokens=4))
    return json.loads((folder / "lib" / "moment_retrieval" / "metrics.json").read_text())


# ------------------------------------------------------------------------------------------------
# The corpus

LONG_QUERY = "the person " * 4000
UNICODE_QUERY = "ein roter Kreis 🎈 erscheint — 赤い円が現れる \u202eRTL\u202c e\u0301"

CASES: list[Case] = [
    # -- videos ------------------------------------------------------------------------------------
    Case("video_zero_byte", "video", corrupt("zero_byte"), data_check(), "report", read(), VideoReadError,
         r"empty file \(0 bytes\)"),
    Case("video_truncated_index_at_end", "video", corrupt("truncated"), data_check(), "report", read(),
         VideoReadError, r"cannot open as a video"),
    Case("video_truncated_midway", "video", corrupt("truncated_midway"), data_check(), "report", read(),
         VideoReadError, r"only \d+ of the 64 frames .* \(truncated or corrupt file\)"),
    Case("video_text_named_mp4", "video", corrupt("text_as_mp4"), data_check(), "report", read(), VideoReadError,
         r"cannot open as a video"),
    Case("video_no_video_stream", "video", corrupt("audio_only"), data_check(), "report", read(), VideoReadError,
         r"no video stream"),
    Case("video_missing", "video", corrupt("missing"), data_check(), "report", read(), VideoReadError,
         r"not found"),
    Case("video_is_a_folder", "video", video_folder, data_check(), "report", read(), VideoReadError,
         r"not a regular file"),
    Case("video_single_frame", "video", lambda f: V.write_test_video(f / "single.mp4", num_frames=1),
         evaluate(annotation=True), "ok", read(), None, r""),
    Case("video_declares_0_seconds", "video", lambda f: _mp4_with_declared_duration(f, 0), data_check(), "report",
         read(), VideoReadError, r"only 1 of the 16 frames"),
    Case("video_declares_10_hours", "video", lambda f: _mp4_with_declared_duration(f, 36000), data_check(), "ok",
         read(), None, r""),
    Case("video_10_hours_long", "video", lambda f: V.write_sparse_video(f / "ten_hours.mp4"),
         evaluate(annotation=True), "skip", evaluate_library, None,
         r"time 14400.0 s exceeds 9999.9 s",
         before="fixed: the whole vtg eval stopped on a TimeCodecError naming neither the video nor the item"),
    Case("video_10_hours_past_the_time_table", "video", lambda f: V.write_sparse_video(f / "ten_hours.mp4"),
         evaluate("time_codec=plain_digits", annotation=True), "skip",
         lambda f, bad: evaluate_library(f, bad, ("time_codec=plain_digits",)), None,
         r"frame time 14400.0 s is outside the absolute-time table",
         before="fixed: the whole vtg eval stopped on a TimeRangeError naming neither the video nor the item"),
    Case("video_10_hours_in_training", "video", lambda f: _training_set(f, V.write_sparse_video(f / "ten_hours.mp4")),
         train("data.train.annotation={folder}/train.json", "data.video_root={folder}"), "error", train_library, TimeCodecError,
         r"ten_hours.mp4: time 10800.0 s exceeds 9999.9 s",
         before="fixed: training stopped with the codec's message, naming neither the video nor the item"),
    Case("video_timestamps_go_back", "video", lambda f: V.write_non_monotonic_video(f / "back.mkv", "backwards"),
         data_check("auto"), "report", read(), VideoReadError, r"non-monotonic timestamps: a frame at 0.500 s follows",
         before="fixed: PyAV said 'corrupt stream?'; decord (the auto reader) paired frames with wrong times and "
                "vtg data check passed it"),
    Case("video_timestamps_repeat", "video", lambda f: V.write_non_monotonic_video(f / "repeat.mkv", "repeated"),
         data_check(), "report", read(), VideoReadError, r"non-monotonic timestamps: frames 2 and 3 share the time",
         before="fixed: PyAV said 'corrupt stream?' and vtg data check --reader pyav passed it"),
    # -- annotations -------------------------------------------------------------------------------
    Case("annotation_missing_field", "annotation", annotation(timestamp=_DROP), metrics_grounding, "error",
         load_eval, AnnotationError, r"item 0, field 'timestamp': missing"),
    Case("annotation_window_wrong_type", "annotation", annotation(timestamp="0 to 5"), metrics_grounding, "error",
         load_eval, AnnotationError, r"field 'timestamp': a window must be \[start, end\]"),
    Case("annotation_query_wrong_type", "annotation", annotation(caption=42), metrics_grounding, "error",
         load_eval, AnnotationError, r"field 'caption': must be a string, got int"),
    Case("annotation_negative_window", "annotation", annotation(timestamp=[-2, 5]), metrics_grounding, "error",
         load_eval, AnnotationError, r"negative time -2"),
    Case("annotation_reversed_window", "annotation", annotation(timestamp=[8, 2]), metrics_grounding, "error",
         load_eval, AnnotationError, r"reversed window \[8.0, 2.0\]"),
    Case("annotation_nan_time", "annotation", raw_file("gt.json", b'{"annotations": [{"image_id": "ok.mp4", '
         b'"caption": "x", "timestamp": [0, NaN], "id": 1}]}'), metrics_grounding, "error", load_eval,
         AnnotationError, r"must be finite"),
    Case("annotation_window_past_duration", "annotation", with_video(annotation(timestamp=[1.0, 50.0])),
         data_check(), "report", doctor, None, r"time 50 s is past the end of .*ok.mp4 \(2.0 s\)"),
    Case("annotation_unicode_query", "annotation", with_video(annotation(caption=UNICODE_QUERY)),
         evaluate(annotation=True), "ok", load_eval, None, r""),
    Case("annotation_very_long_query", "annotation", with_video(annotation(caption=LONG_QUERY)),
         evaluate(annotation=True), "skip", evaluate_library, None, r"exceeds max_length 512",
         before="fixed: the whole vtg eval stopped on a ShapeError naming neither the file nor the item"),
    Case("annotation_empty_qa_list", "annotation", vtg_it([{"video": "ok.mp4", "QA": []}]),
         train("data.train.annotation={bad}"), "error", load_vtg_it, AnnotationError,
         r"item 0, field 'QA': empty list"),
    Case("annotation_qa_turn_without_answer", "annotation", vtg_it([{"video": "ok.mp4", "QA": [{"q": "when?"}]}]),
         data_check(), "report", load_vtg_it, AnnotationError, r"field 'QA\[0\].a': missing"),
    Case("annotation_not_json", "annotation", raw_file("gt.json", b'{"annotations": [{"image_id": '),
         metrics_grounding, "error", load_eval, AnnotationError, r"invalid JSON at line 1"),
    Case("annotation_not_utf8", "annotation", raw_file("gt.json", b"\xff\xfe\x00garbage"), metrics_grounding,
         "error", load_eval, AnnotationError, r"not UTF-8 text"),
    Case("annotation_missing_file", "annotation", lambda f: f / "absent.json", metrics_grounding, "error",
         load_eval, AnnotationError, r"annotation file not found"),
    Case("annotation_wrong_top_level", "annotation", raw_file("gt.json", b"[1, 2, 3]"), metrics_grounding,
         "error", load_eval, AnnotationError, r"cannot detect the annotation format|top level"),
    Case("annotation_duplicate_ids", "annotation", lambda f: charades(f, [charades_item(), charades_item()]),
         metrics_grounding, "error", load_eval, AnnotationError, r"duplicate id '1'"),
    # -- recipes -----------------------------------------------------------------------------------
    Case("recipe_unknown_plugin", "recipe", recipe(BASE + "model: {compressor: {name: no_such_compressor}}\n"),
         recipe_show, "error", load_recipe, RecipeError, r"unknown compressor plugin 'no_such_compressor'"),
    Case("recipe_wrong_type", "recipe", recipe(BASE + "data: {num_frames: eight}\n"), recipe_show, "error",
         load_recipe, RecipeError, r"bad value for 'data.num_frames'"),
    Case("recipe_wrong_param_type", "recipe", recipe(BASE + "model: {compressor: {params: {num_slots: many}}}\n"),
         recipe_show, "error", load_recipe, RecipeError, r"bad value for param 'num_slots'"),
    Case("recipe_unknown_key", "recipe", recipe(BASE + "model: {compresor: {name: slot}}\n"), recipe_show, "error",
         load_recipe, RecipeError, r"unknown key 'model.compresor'"),
    Case("recipe_missing_required_keys", "recipe", recipe("model: {encoder: {name: tiny_vit}}\n"), recipe_show,
         "error", load_recipe, RecipeError, r"required key\(s\) not set: experiment_name"),
    Case("recipe_circular_defaults", "recipe", recipe("defaults: [cycle_b.yaml]\n", name="cycle_a.yaml"),
         recipe_show, "error", load_recipe, RecipeError, r"circular defaults: .*cycle_a.yaml -> .*cycle_b.yaml"),
    Case("recipe_defaults_itself", "recipe", recipe("defaults: [bad.yaml]\n"), recipe_show, "error", load_recipe,
         RecipeError, r"circular defaults"),
    Case("recipe_defaults_missing_file", "recipe", recipe("defaults: [/debug/nope]\nexperiment_name: x\n"),
         recipe_show, "error", load_recipe, RecipeError, r"defaults entry '/debug/nope': .*nope.yaml: recipe file not found",
         before="fixed: the message named only the missing file, not the recipe listing it"),
    Case("recipe_not_yaml", "recipe", recipe("model: {encoder: [\n"), recipe_show, "error", load_recipe,
         RecipeError, r"not valid YAML"),
    Case("recipe_python_yaml_tag", "recipe", recipe(f"experiment_name: !!python/object/apply:os.system "
                                                      f"['touch {MARKER}']\n"),
         recipe_show, "error", load_recipe, RecipeError, r"not valid YAML: could not determine a constructor"),
    Case("recipe_target_key", "recipe", recipe(BASE + "data: {val: {mr: {annotation: x.json, _target_: os.system}}}\n"),
         recipe_show, "error", load_recipe, RecipeError, r"data.val.mr._target_: recipes cannot name Python objects",
         before="fixed: accepted silently"),
    Case("recipe_runner_type_import_path", "recipe",
         recipe(BASE + f"runner: {{custom_hooks: [{{type: subprocess.Popen, args: [touch, {MARKER}]}}]}}\n"),
         recipe_show, "error", load_recipe, RecipeError, r"runner.custom_hooks\[0\].type is 'subprocess.Popen'",
         before="fixed: vtg train imported subprocess.Popen and ran the command, then crashed with a traceback"),
    Case("recipe_runner_type_unregistered", "recipe",
         recipe(BASE + "runner: {optim_wrapper: {optimizer: {type: this}}}\n"), train(), "error",
         build_runner_of, RecipeError, r"type 'this' is not a registered mmengine or vtgcore component",
         before="fixed: mmengine imported the Python module 'this' (it printed the Zen of Python), then a "
                "TypeError traceback"),
    Case("recipe_without_training_data", "recipe", recipe(BASE), train(), "error", build_runner_of, RecipeError,
         r"data.train.annotation is not set", before="fixed: the message did not name the recipe"),
    Case("recipe_epoch_based_loop", "recipe", recipe(BASE + "runner: {train_cfg: {by_epoch: true}}\n"), train(),
         "error", build_runner_of, RecipeError, r"runner.train_cfg.by_epoch: true is not supported",
         before="fixed: a RuntimeError traceback from mmengine (the bundled debug runtime's by_epoch: false too)"),
    Case("recipe_runner_unknown_key", "recipe", recipe(BASE + "runner: {bogus_key: 1}\n"), recipe_show, "error",
         load_recipe, RecipeError, r"unknown key 'runner.bogus_key'",
         before="fixed: vtg train crashed with a TypeError traceback from mmengine's Runner"),
    Case("recipe_runner_load_from", "recipe", recipe(BASE + "runner: {load_from: old.pth}\n"), recipe_show, "error",
         load_recipe, RecipeError, r"runner.load_from is not allowed: use `vtg train --load-from",
         before="fixed: handed to mmengine, whose loader unpickles"),
    # -- checkpoints -------------------------------------------------------------------------------
    Case("checkpoint_not_safetensors", "checkpoint", checkpoint_folder(raw=b"this is not a checkpoint\n"),
         evaluate("--checkpoint={bad}"), "error", load_checkpoint, CheckpointError, r"not a safetensors file",
         before="fixed: a clear message, but the VTGError base class"),
    Case("checkpoint_truncated", "checkpoint", checkpoint_folder(cut=0.5), evaluate("--checkpoint={bad}"), "error",
         load_checkpoint, CheckpointError, r"not a safetensors file",
         before="fixed: a clear message, but the VTGError base class"),
    Case("checkpoint_pickle_named_safetensors", "checkpoint", pickle_as_safetensors, evaluate("--checkpoint={bad}"),
         "error", load_checkpoint, CheckpointError, r"not a safetensors file",
         before="fixed: a clear message, but the VTGError base class"),
    Case("checkpoint_mismatched_shapes", "checkpoint", checkpoint_folder(mismatched_state),
         evaluate("--checkpoint={bad}"), "error", load_checkpoint, CheckpointError, r"shape mismatch for 'projector",
         before="fixed: a clear message, but the VTGError base class"),
    Case("checkpoint_unknown_tensors", "checkpoint", checkpoint_folder(unknown_key_state),
         evaluate("--checkpoint={bad}"), "error", load_checkpoint, CheckpointError, r"1 tensor\(s\) not in the model",
         before="fixed: a clear message, but the VTGError base class"),
    Case("checkpoint_missing_folder", "checkpoint", lambda f: f / "no_ckpt" / "model.safetensors",
         evaluate("--checkpoint={bad}"), "error", load_checkpoint, CheckpointError, r"checkpoint weights not found",
         before="fixed: a clear message, but the VTGError base class"),
    Case("component_checkpoint_is_a_pickle", "checkpoint", evil_pickle("projector.pth"),
         evaluate("model.projector.checkpoint={bad}"), "error", load_projector, CheckpointError,
         r"not a safetensors file", before="fixed: a clear message, but the VTGError base class"),
    Case("component_checkpoint_mismatched_shapes", "checkpoint", projector_file(1),
         evaluate("model.projector.checkpoint={bad}"), "error", load_projector, CheckpointError,
         r"size mismatch for proj.weight",
         before="fixed: the message spread over several lines and had the VTGError base class"),
    Case("original_checkpoint_pickle_runs_code", "checkpoint", evil_pickle("vtgllm.pth"),
         lambda f, bad: ["convert", "vtgllm-original", str(bad), str(f / "out"), "--recipe", str(TINY)], "error",
         read_pth, CheckpointError, r"refused: unpickling it would import (posix|os|nt)\.system"),
    Case("llm_folder_pickle_runs_code", "checkpoint", llm_folder("pickle"), evaluate("model.llm.params.path={bad}"),
         "error", hf_llm, CheckpointError, r"refused: unpickling it would import (posix|os|nt)\.system",
         before="fixed: an UnpicklingError traceback"),
    Case("llm_folder_custom_code", "checkpoint", llm_folder("code"), evaluate("model.llm.params.path={bad}"),
         "error", hf_llm, CheckpointError, r"holds its own Python code \(auto_map\), which is not run unless",
         before="fixed: transformers asked on the terminal whether to run the folder's code, then a traceback"),
]


def corpus_counts() -> dict[str, int]:
    """Totals of :data:`CASES`: inputs tried, clear before issue 9's fixes, fixed by them."""
    fixed = sum(1 for c in CASES if c.before.startswith("fixed"))
    return {"tried": len(CASES), "clear_before": len(CASES) - fixed, "fixed": fixed}


# ------------------------------------------------------------------------------------------------
# Tests


_PROGRESS = re.compile(r"^\s*[\w ]+:\s+\d+%\|")  # a tqdm progress line
_NOTE = re.compile(r"^vtg: (?!error:)\w+:")


def _names_file(text: str, bad: Path) -> bool:
    return str(bad) in text or bad.name in text


def _marker_absent(folder: Path) -> None:
    assert not (folder / MARKER).exists() and not (Path.cwd() / MARKER).exists(), "a bad input ran code"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cli(case, tmp_path, capsys):
    bad = case.make(tmp_path)
    argv = case.cli(tmp_path, bad)
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    _marker_absent(tmp_path)
    lines = [line for line in err.splitlines() if line.strip()]
    # everything but warnings, progress notes (vtg: convert: ...) and progress bars
    errors = [line for line in lines if not _NOTE.match(line) and not _PROGRESS.match(line)]
    if case.outcome == "error":
        assert rc == 1 and len(errors) == 1, err
        assert errors[0].startswith("vtg: error: ") and _names_file(errors[0], bad), errors[0]
        assert re.search(case.problem, errors[0]), errors[0]
    elif case.outcome == "report":
        report = json.loads(out)
        assert rc == 1 and not report["ok"] and not errors, err
        named = [p["message"] for p in report["problems"] if _names_file(p["message"], bad)]
        assert len(named) == 1 and re.search(case.problem, named[0]), report["problems"]
    elif case.outcome == "skip":
        assert rc == 0 and not errors, err
        warned = [line for line in lines if _names_file(line, bad) and re.search(case.problem, line)]
        assert len(warned) == 1, err
        record = json.loads((tmp_path / "out" / "moment_retrieval" / "metrics.json").read_text())
        assert record["metrics"]["item_errors"] == 1 and record["metrics"]["count"] == 1
    else:
        assert case.outcome == "ok"
        assert rc == 0 and not errors, err


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_library(case, tmp_path):
    bad = case.make(tmp_path)
    if case.raises is not None:
        with pytest.raises(case.raises) as info:
            case.library(tmp_path, bad)
        message = str(info.value)
        assert "\n" not in message and _names_file(message, bad), message
        assert re.search(case.problem, message), message
        _marker_absent(tmp_path)
        return
    result = case.library(tmp_path, bad)
    if case.outcome == "skip":  # the runner records the item as an error naming the file, and goes on
        (error,) = result["errors"]
        assert _names_file(error["error"], bad) and re.search(case.problem, error["error"]), error
        assert result["metrics"]["count"] == 1 and result["metrics"]["item_errors"] == 1
    elif case.outcome == "report":  # the data doctor lists it
        named = [p.message for p in result.problems if re.search(case.problem, p.message)]
        assert len(named) == 1 and _names_file(named[0], Path("ok.mp4")), [p.message for p in result.problems]
    elif case.kind == "video":
        assert result.frames.shape[0] >= 1 and result.timestamps.tolist() == sorted(result.timestamps.tolist())
        assert 0 < result.duration < 10, result.duration  # the stream's own length, not a header's claim
    else:
        (item,) = result
        assert item.query == UNICODE_QUERY


@pytest.mark.parametrize("name", ["annotation_missing_field", "checkpoint_not_safetensors"])
def test_debug_raises_the_error_for_its_traceback(name, tmp_path):
    """With ``--debug`` the command re-raises the library's own exception (Python prints it)."""
    case = next(c for c in CASES if c.name == name)
    bad = case.make(tmp_path)
    with pytest.raises(case.raises, match=case.problem):
        cli.main(["--debug", *case.cli(tmp_path, bad)])


def test_debug_prints_a_traceback_from_the_vtg_process(tmp_path):
    import subprocess
    import sys

    case = next(c for c in CASES if c.name == "recipe_circular_defaults")
    bad = case.make(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    plain = subprocess.run([sys.executable, "-m", "vtgcore.apps.cli", "recipe", "show", str(bad)], capture_output=True,
                           text=True, env=env, timeout=300)
    debug = subprocess.run([sys.executable, "-m", "vtgcore.apps.cli", "--debug", "recipe", "show", str(bad)],
                           capture_output=True, text=True, env=env, timeout=300)
    assert plain.returncode == 1 and plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "vtgcore.errors.RecipeError" in debug.stderr and "circular defaults" in debug.stderr


def test_a_batch_the_model_refuses_is_split_so_that_only_the_culprit_fails(tmp_path):
    """The 10-hour video passes the prompt (plain digits) but not the 8192-s time table: its batch
    is generated again item by item, and only it fails."""
    V.write_test_video(tmp_path / "a.mp4", num_frames=8)
    V.write_test_video(tmp_path / "b.mp4", num_frames=12)
    V.write_sparse_video(tmp_path / "ten_hours.mp4")
    items = [charades_item(image_id=name, id=k) for k, name in enumerate(["a.mp4", "ten_hours.mp4", "b.mp4"])]
    record = evaluate_library(tmp_path, charades(tmp_path, items), ("time_codec=plain_digits",))
    assert [(e["id"], e["kind"]) for e in record["errors"]] == [("1", "model")]
    assert re.search(r"gt.json: item 1 \(.*ten_hours.mp4\): frame time 14400.0 s is outside the absolute-time table", record["errors"][0]["error"])
    rows = [json.loads(line) for line in (tmp_path / "lib" / "moment_retrieval" / "generations.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows if "error" not in r) == ["0", "2"] and record["metrics"]["count"] == 3


def test_decord_reads_repeated_timestamps_and_the_doctor_accepts_them(tmp_path):
    """Repeated times are only a problem for the PyAV reader: decord reads every frame, in order."""
    pytest.importorskip("decord")
    from vtgcore.data.doctor import _check_video
    from vtgcore.data.video import read_clip

    path = V.write_non_monotonic_video(tmp_path / "repeat.mkv", "repeated")
    clip = read_clip(path, 10, reader="decord")
    assert V.decode_frame_ids(clip.frames) == list(range(10))
    assert clip.timestamps.tolist()[2:4] == [0.25, 0.25]
    assert _check_video(path, "decord") == (pytest.approx(1.25), None)


def test_corpus_covers_every_kind_the_issue_lists():
    names = {c.name for c in CASES}
    for needle in ("zero_byte", "truncated", "text_named_mp4", "no_video_stream", "single_frame", "0_seconds",
                   "10_hours", "timestamps_go_back", "missing_field", "wrong_type", "negative_window",
                   "reversed_window", "past_duration", "unicode", "long_query", "empty_qa", "unknown_plugin",
                   "missing_required", "circular_defaults", "not_safetensors", "pickle", "mismatched_shapes"):
        assert any(needle in n for n in names), needle
    assert len(names) == len(CASES)
    counts = corpus_counts()
    assert counts["tried"] == counts["clear_before"] + counts["fixed"] >= 50
