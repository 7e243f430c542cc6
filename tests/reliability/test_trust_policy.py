"""Code from a run folder (issue 20, item 1): the trust policy for saved runs and checkpoints.

A run folder, checkpoint or recipe file is data someone may have sent you. A recipe inside it that
sets ``trust_remote_code: true`` and points the LLM at a folder with its own Python code
(transformers' ``auto_map``) must not run that code: only an explicit ``--trust-remote-code`` on the
command line (``trust_remote_code=True`` in the library) lets it. Without the flag the call fails
with one line naming the recipe key and the flag, before any model is built.

The "remote code" here is a real one, built offline: a tiny LLaMA saved with ``save_pretrained``,
whose ``config.json`` maps ``AutoModelForCausalLM`` to a local ``marker_llama.py`` that writes a
marker file when imported. Without the flag the marker never appears; with it, the model loads
through that module (the marker appears and the LLM is the module's class).

:data:`CASES` lists the inputs tried, with how each fared before the fix (``before``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from vtgcore.apps import cli
from vtgcore.errors import RecipeError

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "debug" / "tiny.yaml"
KEY = "model.llm.params.trust_remote_code"

#: (name, before): every input of this file; ``before``: ``clear`` or ``fixed: <what happened>``.
CASES = [
    ("load_pipeline(run folder) without trust_remote_code", "fixed: ran the folder's code with one warning"),
    ("load_pipeline(recipe + checkpoint) without trust_remote_code", "fixed: ran the folder's code with one warning"),
    ("vtg ground --run DIR without --trust-remote-code", "fixed: ran the folder's code with one warning"),
    ("vtg ground --run DIR with a command-line override asking for remote code", "fixed: ran the code"),
    ("vtg eval RECIPE --checkpoint DIR without --trust-remote-code", "fixed: ran the folder's code with one warning"),
    ("vtg train RECIPE without --trust-remote-code", "fixed: ran the folder's code with one warning"),
    ("vtg demo --run DIR without --trust-remote-code", "fixed: ran the folder's code with one warning"),
    ("vtg cache features RECIPE without --trust-remote-code", "fixed: ran the folder's code with one warning"),
    ("build_model(recipe) without trust_remote_code", "fixed: ran the folder's code with one warning"),
    ("a third-party plugin's nested trust_remote_code", "fixed: passed on to the plugin"),
    ("load_pipeline(run folder, trust_remote_code=True)", "clear"),
    ("vtg ground --run DIR --trust-remote-code", "clear"),
]


def policy_counts() -> dict[str, int]:
    fixed = sum(1 for _, before in CASES if before.startswith("fixed"))
    return {"tried": len(CASES), "clear_before": len(CASES) - fixed, "fixed": fixed}


# ------------------------------------------------------------------------------------------------
# The tiny "remote code" model and a run folder that points at it


MODULE = '''"""Remote code: importing this module writes the marker (as any code in a model folder could)."""
import pathlib

pathlib.Path({marker!r}).write_text("ran")

from transformers import LlamaConfig, LlamaForCausalLM


class MarkerConfig(LlamaConfig):
    model_type = "marker_llama"


class MarkerForCausalLM(LlamaForCausalLM):
    config_class = MarkerConfig
'''


def _llm_folders(folder: Path, marker: Path) -> tuple[Path, Path]:
    """A plain tiny LLaMA folder and the same weights as a folder whose code writes ``marker``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from vtgcore.data.tiny_tokenizers import TINY_LLAMA, build_tiny_tokenizer

    plain = folder / "plain_llm"
    cfg = {k: v for k, v in TINY_LLAMA.items() if k != "model_type"}
    LlamaForCausalLM(LlamaConfig(vocab_size=len(build_tiny_tokenizer()), **cfg)).save_pretrained(plain)
    remote = folder / f"remote_llm_{folder.name}"  # a fresh module name per test (transformers caches modules)
    shutil.copytree(plain, remote)
    config = json.loads((remote / "config.json").read_text())
    config.update(model_type="marker_llama", architectures=["MarkerForCausalLM"],
                  auto_map={"AutoConfig": "marker_llama.MarkerConfig",
                            "AutoModelForCausalLM": "marker_llama.MarkerForCausalLM"})
    (remote / "config.json").write_text(json.dumps(config))
    (remote / "marker_llama.py").write_text(MODULE.format(marker=str(marker)))
    return plain, remote


@pytest.fixture
def sent_run(tmp_path):
    """A run folder someone sent: its saved recipe asks for the remote code of its LLM folder.

    Returns:
        ``(run folder, its checkpoint folder, the saved recipe, marker path)``.
    """
    from vtgcore.build import build_model
    from vtgcore.checkpoint import POINTER, RECIPE, save_checkpoint
    from vtgcore.config.loader import load_recipe

    marker = tmp_path / "MARKER"
    plain, remote = _llm_folders(tmp_path, marker)
    recipe = load_recipe(TINY, [f"model.llm.params.path={plain}", "model.llm.params.tokenizer=tiny"])
    model, _ = build_model(recipe)
    run = tmp_path / "run"
    checkpoint = save_checkpoint(model, run / "checkpoints" / "iter_1", recipe)
    (run / "checkpoints" / POINTER).write_text("iter_1\n")
    saved = OmegaConf.load(checkpoint / RECIPE)
    saved.model.llm.params.path = str(remote)
    saved.model.llm.params.trust_remote_code = True
    (checkpoint / RECIPE).write_text(OmegaConf.to_yaml(saved))
    assert not marker.exists()
    return run, checkpoint, checkpoint / RECIPE, marker


def _refused(message: str) -> None:
    assert KEY in message and "--trust-remote-code" in message, message
    assert "\n" not in message.strip()


def _cli_refused(argv: list[str], capsys, marker: Path) -> str:
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vtg: error: ") and len(err.splitlines()) == 1, err
    _refused(err)
    assert not marker.exists(), "the folder's code ran without --trust-remote-code"
    return err


# ------------------------------------------------------------------------------------------------
# Refused without the flag: nothing runs


def test_load_pipeline_refuses_a_run_folder_that_asks_for_remote_code(sent_run):
    from vtgcore.apps.pipeline import load_pipeline

    run, _, recipe, marker = sent_run
    with pytest.raises(RecipeError) as info:
        load_pipeline(run, device="cpu")
    _refused(str(info.value))
    assert str(recipe) in str(info.value)
    assert not marker.exists()


def test_load_pipeline_refuses_a_recipe_file_with_a_checkpoint(sent_run):
    from vtgcore.apps.pipeline import load_pipeline

    _, checkpoint, recipe, marker = sent_run
    with pytest.raises(RecipeError, match="trust_remote_code"):
        load_pipeline(recipe, checkpoint, device="cpu")
    assert not marker.exists()


def test_vtg_ground_refuses_the_run_folder(sent_run, val_video, capsys):
    run, _, _, marker = sent_run
    _cli_refused(["ground", val_video, "a red circle", "--run", str(run), "--device", "cpu"], capsys, marker)


def test_a_command_line_override_is_not_the_flag(sent_run, val_video, capsys):
    """Even typed at the call, ``+...trust_remote_code=true`` is a recipe value: only the flag counts."""
    run, _, _, marker = sent_run
    _cli_refused(["ground", val_video, "a red circle", "--run", str(run), "--device", "cpu",
                  f"{KEY}=true"], capsys, marker)


def test_vtg_eval_refuses_the_saved_recipe(sent_run, capsys):
    _, checkpoint, recipe, marker = sent_run
    _cli_refused(["eval", str(recipe), "--checkpoint", str(checkpoint), "--limit", "1"], capsys, marker)


def test_vtg_train_refuses_before_anything_is_built(sent_run, tmp_path, capsys):
    _, _, recipe, marker = sent_run
    work = tmp_path / "train"
    _cli_refused(["train", str(recipe), "--work-dir", str(work)], capsys, marker)
    assert not work.exists()


def test_vtg_demo_refuses_the_run_folder(sent_run, capsys, monkeypatch):
    from vtgcore.apps import demo

    served: list[Any] = []
    monkeypatch.setattr(demo, "serve", lambda *a, **k: served.append(a))
    run, _, _, marker = sent_run
    _cli_refused(["demo", "--run", str(run), "--device", "cpu"], capsys, marker)
    assert not served


def test_vtg_cache_features_refuses(sent_run, tmp_path, capsys):
    _, _, recipe, marker = sent_run
    _cli_refused(["cache", "features", str(recipe), f"data.feature_cache={tmp_path / 'features'}"], capsys, marker)


def test_build_model_refuses_without_the_argument(sent_run):
    from vtgcore.build import build_model
    from vtgcore.config.loader import load_recipe

    _, _, recipe, marker = sent_run
    with pytest.raises(RecipeError) as info:
        build_model(load_recipe(recipe), where=str(recipe))
    _refused(str(info.value))
    assert not marker.exists()


def test_a_nested_request_of_any_plugin_is_found():
    from vtgcore.build import check_remote_code, remote_code_requests

    spec = {"encoder": {"name": "x", "params": {"hf": {"trust_remote_code": True}}},
            "llm": {"name": "y", "params": {"trust_remote_code": False}},
            "projector": {"name": "z", "params": {"layers": [{"trust_remote_code": "yes"}]}}}
    assert remote_code_requests(spec) == ["model.encoder.params.hf.trust_remote_code",
                                          "model.projector.params.layers[0].trust_remote_code"]
    with pytest.raises(RecipeError, match=r"r.yaml: model.encoder.params.hf.trust_remote_code: true .* "
                                          r"--trust-remote-code"):
        check_remote_code(spec, False, "r.yaml")
    assert check_remote_code(spec, True) == remote_code_requests(spec)
    assert check_remote_code({"llm": {"params": {"trust_remote_code": False}}}, False) == []


# ------------------------------------------------------------------------------------------------
# Allowed with the flag


def test_load_pipeline_with_the_argument_runs_the_folder_code(sent_run):
    from vtgcore.apps.pipeline import load_pipeline

    run, _, _, marker = sent_run
    with pytest.warns(UserWarning, match="trust_remote_code is on"):
        pipe = load_pipeline(run, device="cpu", trust_remote_code=True)
    assert marker.read_text() == "ran"
    assert type(pipe.model.llm.model).__name__ == "MarkerForCausalLM"


def test_vtg_ground_with_the_flag_gets_past_the_policy(sent_run, val_video, capsys):
    run, _, _, marker = sent_run
    code = cli.main(["ground", val_video, "a red circle", "--run", str(run), "--device", "cpu",
                     "--trust-remote-code", "--max-new-tokens", "4", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert marker.exists()
    assert json.loads(captured.out.strip().splitlines()[-1])["task"] == "mr"


def test_the_policy_count():
    counts = policy_counts()
    assert counts["tried"] == len(CASES) >= 12
    assert counts["fixed"] == 10
