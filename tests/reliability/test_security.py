"""No code execution from data (issue 9, item 4).

* Every ``torch.load`` in ``vtgcore/`` and ``plugins/`` passes ``weights_only=True`` and every
  ``from_pretrained`` passes ``trust_remote_code`` (an AST scan); nothing else unpickles.
* A pickle whose ``__reduce__`` would create a marker file is refused with ``CheckpointError``
  by every loader that reads ``.pth`` / ``.bin`` files (and by the safetensors loaders), and the
  marker never appears.
* ``trust_remote_code`` is off unless a recipe sets it *and* the caller passes ``--trust-remote-code``
  (issue 20: ``test_trust_policy.py``); when on, a warning and the run log say so.
* Recipes cannot import Python: ``_target_``-style keys, runner ``type`` import paths and
  unregistered names are refused before anything is imported; YAML Python tags are not constructed.

The demo (``vtg demo``: localhost binding, upload and duration limits) is not part of the code
base yet; its checks belong with it.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import warnings
from pathlib import Path

import pytest
import torch

from vtgcore.errors import CheckpointError, RecipeError

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "debug" / "tiny.yaml"
SYNTH_TINY = ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml"


# ------------------------------------------------------------------------------------------------
# Static scan


def _sources() -> list[Path]:
    return sorted([*(ROOT / "vtgcore").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")])


def _call_name(call: ast.Call) -> str:
    """Dotted name of what is called (``torch.load``, ``AutoTokenizer.from_pretrained``, ``load``)."""
    parts, node = [], call.func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):  # a method of a call's result (``model.build().eval()``)
        return "." + ".".join(reversed(parts))
    parts.append(node.id)
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_calls(source: str) -> list[str]:
    """The calls in ``source`` that could run code from data, as ``line: problem``."""
    tree = ast.parse(source)
    torch_load_aliases = {"torch.load"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "torch":
            torch_load_aliases |= {a.asname or a.name for a in node.names if a.name == "load"}
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        if name in torch_load_aliases:
            flag = _keyword(node, "weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                problems.append(f"{node.lineno}: {name} without weights_only=True")
        elif name.endswith("from_pretrained"):
            flag = _keyword(node, "trust_remote_code")
            if flag is None or (isinstance(flag, ast.Constant) and flag.value is True):
                problems.append(f"{node.lineno}: {name} without an explicit trust_remote_code (never a literal True)")
        elif name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "marshal.loads", "dill.load", "joblib.load",
                      "yaml.load", "yaml.unsafe_load", "yaml.full_load", "eval", "exec", "numpy.load", "np.load"):
            problems.append(f"{node.lineno}: {name}")
    return problems


def test_the_scanner_finds_what_it_looks_for():
    bad = """
import torch, pickle, yaml
from torch import load as tl
torch.load(p)
torch.load(p, weights_only=False)
tl(p)
AutoModel.from_pretrained(p)
AutoModel.from_pretrained(p, trust_remote_code=True)
pickle.loads(b)
yaml.load(t)
eval(s)
model.build().eval()
"""
    good = """
import torch
torch.load(p, map_location="cpu", weights_only=True)
AutoModel.from_pretrained(p, trust_remote_code=flag)
"""
    assert [p.split(": ")[0] for p in unsafe_calls(bad)] == ["4", "5", "6", "7", "8", "9", "10", "11"]
    assert unsafe_calls(good) == []


def test_no_code_runs_from_data_anywhere_in_the_package():
    found = {str(path.relative_to(ROOT)): problems for path in _sources()
             if (problems := unsafe_calls(path.read_text(encoding="utf-8")))}
    assert found == {}
    loads = [str(path.relative_to(ROOT)) for path in _sources()
             if any(isinstance(node, ast.Call) and _call_name(node) == "torch.load"
                    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))]
    assert loads == ["vtgcore/checkpoint/__init__.py"]  # the one place a .pth file is read


# ------------------------------------------------------------------------------------------------
# Pickles that would run code


class RunsCode:
    """Unpickling an instance runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ExecsCode:
    """Unpickling an instance runs Python source through ``exec``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


PAYLOADS = {"os.system": RunsCode, "exec": ExecsCode}


def test_the_payloads_do_run_code_when_unpickled_unsafely(tmp_path):
    """The test pickles are real: loaded without weights_only, they create their marker."""
    for name, payload in PAYLOADS.items():
        marker = tmp_path / f"ran_{name}"
        torch.save({"w": torch.zeros(1), "x": payload(marker)}, tmp_path / "evil.pth")
        torch.load(tmp_path / "evil.pth", weights_only=False)
        assert marker.exists(), name


def _tiny_llm_folder(folder: Path, marker: Path, payload) -> Path:
    from transformers import LlamaConfig

    from vtgcore.data.tiny_tokenizers import TINY_LLAMA

    folder.mkdir()
    LlamaConfig(vocab_size=400, **{k: v for k, v in TINY_LLAMA.items() if k != "model_type"}).save_pretrained(folder)
    torch.save({"model.embed_tokens.weight": torch.zeros(400, 32), "x": payload(marker)}, folder / "pytorch_model.bin")
    return folder


def _through_eva_encoder(path: Path, tmp_path: Path) -> None:
    from vtgcore_plugins.encoders.eva_vit_g_qformer import EvaViTGQFormer

    EvaViTGQFormer(image_size=28, patch_size=14, vit_width=48, vit_depth=2, vit_heads=2, num_query_tokens=4,
                   qformer_hidden=32, qformer_layers=2, qformer_heads=2, qformer_intermediate=64,
                   vit_precision="fp32", vit_checkpoint=str(path))


def _through_converter(path: Path, tmp_path: Path) -> None:
    from vtgcore.apps.convert_weights.vtgllm_original import convert_vtgllm_original

    convert_vtgllm_original(path, tmp_path / "converted", recipe=str(TINY))


def _through_video_llama_converter(path: Path, tmp_path: Path) -> None:
    from vtgcore.apps.convert_weights.video_llama import convert_video_llama

    convert_video_llama(path, tmp_path / "converted")  # for recipes/vtgllm/base.yaml


def _through_our_checkpoint_loader(path: Path, tmp_path: Path) -> None:
    from vtgcore import build_model, load_recipe
    from vtgcore.checkpoint import load_checkpoint

    folder = tmp_path / "ckpt"
    folder.mkdir()
    path.rename(folder / "model.safetensors")
    load_checkpoint(build_model(load_recipe(TINY))[0], folder)


def _through_a_component_checkpoint(path: Path, tmp_path: Path) -> None:
    from vtgcore import build_model, load_recipe

    build_model(load_recipe(TINY, [f"model.projector.checkpoint={path}"]))


def _through_open_clip(path: Path, tmp_path: Path) -> None:
    pytest.importorskip("open_clip")
    from vtgcore_plugins.encoders.open_clip import OpenCLIPEncoder

    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 28, "layers": 2, "width": 32, "patch_size": 7, "head_width": 16},
              "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}
    OpenCLIPEncoder("tiny", model_config=config, pretrained=str(path))


def _through_resume(path: Path, tmp_path: Path) -> None:
    from vtgcore.mm.hooks import TRAINING_FILES, VTGCheckpointHook

    from safetensors.torch import save_file

    folder = tmp_path / "iter_2"
    folder.mkdir()
    for name in TRAINING_FILES:  # a complete checkpoint but for the optimizer state, a pickle
        if name.endswith(".safetensors"):
            save_file({"t": torch.zeros(1)}, str(folder / name))
        else:
            (folder / name).write_text("{}")
    path.replace(folder / "optimizer.safetensors")
    VTGCheckpointHook().load(runner=None, path=folder)


LOADERS = {
    "eva_vit_g_qformer vit_checkpoint": (_through_eva_encoder, r"refused: unpickling it would import"),
    "vtg convert vtgllm-original": (_through_converter, r"refused: unpickling it would import"),
    "vtg convert video-llama": (_through_video_llama_converter, r"refused: unpickling it would import"),
    "vtgcore checkpoint folder": (_through_our_checkpoint_loader, r"not a safetensors file"),
    "component checkpoint": (_through_a_component_checkpoint, r"not a safetensors file"),
    "open_clip pretrained": (_through_open_clip, r"refused: unpickling it would import"),
    "training checkpoint (resume)": (_through_resume, r"optimizer.safetensors: unreadable"),
}


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_pickle_that_would_run_code_is_refused(loader, payload, tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "weights.pth"
    torch.save({"visual_encoder.cls_token": torch.zeros(1, 1, 48), "x": PAYLOADS[payload](marker)}, path)
    call, message = LOADERS[loader]
    with pytest.raises(CheckpointError, match=message):
        call(path, tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_a_model_folder_with_a_pickle_that_would_run_code_is_refused(payload, tmp_path):
    from vtgcore_plugins.llms.hf_causal_lm import HFCausalLM

    marker = tmp_path / "MARKER"
    folder = _tiny_llm_folder(tmp_path / "llm", marker, PAYLOADS[payload])
    with pytest.raises(CheckpointError, match=rf"hf_causal_lm model {folder}: refused: unpickling it would import"):
        HFCausalLM(path=str(folder), tokenizer="tiny")
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------
# trust_remote_code


def _custom_code_folder(folder: Path, marker: Path) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "evil_model", "auto_map": {"AutoConfig": "configuration_evil.EvilConfig",
                                                 "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM",
                                                 "AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}}))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "auto_map": {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}}))
    for name in ("configuration_evil", "modeling_evil", "tokenization_evil"):
        (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return folder


def test_trust_remote_code_is_off_by_default_and_a_folder_with_code_is_refused(tmp_path):
    from vtgcore_plugins.llms.hf_causal_lm import HFCausalLM, HFCausalLMConfig

    assert HFCausalLMConfig().trust_remote_code is False
    marker = tmp_path / "MARKER"
    folder = _custom_code_folder(tmp_path / "llm", marker)
    with pytest.raises(CheckpointError, match=r"own Python code \(auto_map\), which is not run unless the recipe "
                                              r"sets model.llm.params.trust_remote_code: true"):
        HFCausalLM(path=str(folder), tokenizer="tiny")
    with pytest.raises(CheckpointError, match=rf"hf_causal_lm tokenizer {folder}: the folder holds its own Python"):
        HFCausalLM(path=str(folder), tokenizer="auto")
    assert not marker.exists()


def test_the_eva_text_tokenizer_never_runs_folder_code(tmp_path):
    from vtgcore.errors import ConfigValidationError
    from vtgcore_plugins.encoders.eva_vit_g_qformer import load_text_tokenizer

    marker = tmp_path / "MARKER"
    folder = _custom_code_folder(tmp_path / "tok", marker)
    with pytest.raises(ConfigValidationError, match="cannot load a tokenizer"):
        load_text_tokenizer(str(folder))
    assert not marker.exists()


@pytest.fixture
def fake_from_pretrained(monkeypatch):
    """``AutoModelForCausalLM.from_pretrained`` recording its keyword arguments and returning a tiny
    LLaMA (so that ``trust_remote_code: true`` can be tested without running any folder's code)."""
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    from vtgcore.data.tiny_tokenizers import TINY_LLAMA

    seen: list[dict] = []

    def from_pretrained(path, **kwargs):
        seen.append({"path": str(path), **kwargs})
        cfg = {k: v for k, v in TINY_LLAMA.items() if k != "model_type"}
        return LlamaForCausalLM(LlamaConfig(vocab_size=400, **cfg))

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    return seen


def test_trust_remote_code_is_passed_as_the_recipe_says_and_announced(fake_from_pretrained, tmp_path):
    from vtgcore_plugins.llms.hf_causal_lm import HFCausalLM

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # off: not a word about it
        HFCausalLM(path=str(tmp_path), tokenizer="tiny")
    with pytest.warns(UserWarning, match=rf"trust_remote_code is on \(allowed by the caller\): Python files of {tmp_path}"):
        HFCausalLM(path=str(tmp_path), tokenizer="tiny", trust_remote_code=True)
    assert [call["trust_remote_code"] for call in fake_from_pretrained] == [False, True]


def test_the_run_log_says_when_trust_remote_code_is_on(fake_from_pretrained, synth_dir, tmp_path):
    from vtgcore.config.loader import load_recipe
    from vtgcore.mm.runner import build_runner

    overrides = [f"data.video_root={synth_dir}", "data.num_frames=4",
                 f"experiment_name=trust_{tmp_path.name}", f"model.llm.params.path={tmp_path}",
                 "+model.llm.params.trust_remote_code=true"]
    with pytest.raises(RecipeError, match=r"model.llm.params.trust_remote_code: true .*--trust-remote-code"):
        build_runner(load_recipe(SYNTH_TINY, overrides), work_dir=str(tmp_path / "refused"))
    assert fake_from_pretrained == [] and not (tmp_path / "refused").exists()
    with pytest.warns(UserWarning, match="trust_remote_code is on"):
        runner = build_runner(load_recipe(SYNTH_TINY, overrides), work_dir=str(tmp_path / "run"),
                              trust_remote_code=True)
    logs = list((tmp_path / "run").rglob("*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert (f"model.llm.params.trust_remote_code is true (set by the recipe, allowed by --trust-remote-code): "
            f"the Python code of {tmp_path}") in text
    assert fake_from_pretrained[-1]["trust_remote_code"] is True
    del runner


# ------------------------------------------------------------------------------------------------
# Recipes cannot import Python


def _recipe(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "recipes"
    root.mkdir()
    for sub in ("components", "debug"):
        (root / sub).symlink_to(ROOT / "recipes" / sub)
    path = root / "r.yaml"
    path.write_text("defaults: [/debug/tiny]\n" + text)
    return path


@pytest.mark.parametrize("text, problem", [
    ("model: {projector: {params: {_target_: os.system}}}\n", r"model.projector.params._target_: recipes cannot"),
    ("data: {train: {annotation: a.json, _target_: os.system}}\n", r"data.train._target_: recipes cannot"),
    ("runner: {env_cfg: {_args_: [x], _partial_: true}}\n", r"runner.env_cfg._partial_|runner.env_cfg._args_"),
    ("runner: {custom_hooks: [{type: subprocess.Popen, args: [touch, MARKER]}]}\n",
     r"runner.custom_hooks\[0\].type is 'subprocess.Popen'"),
    ("runner: {param_scheduler: [{type: os.system}]}\n", r"runner.param_scheduler\[0\].type is 'os.system'"),
    ("runner: {optim_wrapper: {optimizer: {type: mmengine.optim.AdamW}}}\n", r"never by a Python import path"),
    ("runner: {load_from: x.pth}\n", r"runner.load_from is not allowed"),
    ("runner: {resume: true}\n", r"runner.resume is not allowed"),
])
def test_a_recipe_naming_python_objects_is_refused_when_loaded(text, problem, tmp_path):
    from vtgcore.config.loader import load_recipe

    path = _recipe(tmp_path, text)
    with pytest.raises(RecipeError, match=problem) as info:
        load_recipe(path)
    assert str(info.value).startswith(str(path))


def test_an_unregistered_type_is_refused_before_mmengine_could_import_it(tmp_path, synth_dir):
    from vtgcore.config.loader import load_recipe
    from vtgcore.mm.runner import build_runner

    name = "vtg_never_imported_module"
    (tmp_path / f"{name}.py").write_text(f"open({str(tmp_path / 'MARKER')!r}, 'w').write('ran')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        recipe = load_recipe(SYNTH_TINY, [f"data.video_root={synth_dir}", f"runner.custom_hooks=[{{type: {name}}}]"])
        with pytest.raises(RecipeError, match=rf"runner.custom_hooks\[0\].type '{name}' is not a registered"):
            build_runner(recipe, work_dir=str(tmp_path / "run"))
    finally:
        sys.path.remove(str(tmp_path))
    assert name not in sys.modules and not (tmp_path / "MARKER").exists()


def test_registered_runner_types_still_build():
    """The check lets through what the recipes use (optimizers, schedulers, hooks, wrappers)."""
    from vtgcore.mm.registered_types import check_registered_types

    check_registered_types({
        "optim_wrapper": {"type": "AmpOptimWrapper", "optimizer": {"type": "AdamW"}},
        "param_scheduler": [{"type": "LinearLR"}, {"type": "CosineAnnealingLR"}],
        "custom_hooks": [{"type": "VTGCheckpointHook"}, {"type": "EMAHook"}],
        "model_wrapper_cfg": {"type": "MMFullyShardedDataParallel"},
    }, "r.yaml")


def test_yaml_python_tags_are_never_constructed(tmp_path):
    from vtgcore.config.loader import load_recipe

    marker = tmp_path / "MARKER"
    path = _recipe(tmp_path, f"description: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(RecipeError, match=r"not valid YAML: could not determine a constructor"):
        load_recipe(path)
    sweep = tmp_path / "recipes" / "sweeps"
    sweep.mkdir()
    (sweep / "s.yaml").write_text(f"base: ../r.yaml\nseeds: !!python/object/apply:os.system ['touch {marker}']\n")
    from vtgcore.errors import VTGError
    from vtgcore.apps.sweep import validate_sweep

    with pytest.raises(VTGError):
        validate_sweep(sweep / "s.yaml", [])
    assert not marker.exists()
