"""A third-party package whose plugins implement only the abstract members of their interfaces
works end to end: the core calls nothing a plugin does not declare (docs/plugin_hooks.md, "Declared
members"). Its encoder defines ``forward(frames)`` alone, its time codec only the four abstract
methods (``decode_spans`` is the interface's default), and its LLM wraps a tiny transformers model
with exactly the signatures the interface declares (it ignores ``return_logits``). The package is
pip-installed as in tests/test_third_party.py; the model is built, trained with ``vtg smoke``,
evaluated with ``vtg eval`` and decoded, and the three plugins pass their contract classes.

A factory that raises is one line naming the plugin and its package; ``--debug`` shows its traceback.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PYPROJECT = """
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "vtg-minimal"
version = "0.0.1"
dependencies = ["vtgcore"]

[project.entry-points.vtgcore]
minimal = "vtg_minimal"

[tool.setuptools]
py-modules = ["vtg_minimal"]
"""

MODULE = '''
"""Plugins that implement only the abstract members of vtgcore's interfaces."""
import math
import re
from dataclasses import dataclass

import torch
from vtgcore import hookimpl
from vtgcore.errors import TimeCodecError
from vtgcore.interfaces import FrameEncoder, LanguageModel, TimeCodec


class PatchEncoder(FrameEncoder):
    """16 x 16 patches of a 32 x 32 frame: 4 tokens of width 16."""

    out_dim = 16
    tokens_per_frame = 4
    image_size = 32
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Conv2d(3, 16, kernel_size=16, stride=16)

    def forward(self, frames):
        """Shape: frames (N, 3, 32, 32) -> (N, 4, 16)"""
        return self.proj(frames).flatten(2).transpose(1, 2)


_TENTHS = re.compile(r"(\\d+)\\s*<TENTHS>")


class TenthsCodec(TimeCodec):
    """12.3 s is written "123<TENTHS>": a time needs rendering before the task parsers read it."""

    def special_tokens(self):
        return ["<TENTHS>"]

    def token_init(self):
        return {"<TENTHS>": "."}

    def encode(self, seconds):
        try:
            value = float(seconds)
        except (TypeError, ValueError):
            raise TimeCodecError(f"not a number of seconds: {seconds!r}") from None
        if not math.isfinite(value) or value < 0:
            raise TimeCodecError(f"not a time: {seconds!r}")
        return f"{round(value * 10)}<TENTHS>"

    def decode_ids(self, ids, tokenizer):
        size = len(tokenizer)
        text = tokenizer.decode([int(i) for i in ids if 0 <= int(i) < size], skip_special_tokens=False)
        values = [float(m.group(1)) / 10 for m in _TENTHS.finditer(text)]
        return [v for v in values if math.isfinite(v)]


@dataclass
class MiniLMConfig:
    hidden_size: int = 32
    layers: int = 2


class MiniLM(LanguageModel):
    """A tiny LLaMA; the methods take exactly what LanguageModel declares."""

    def __init__(self, hidden_size=32, layers=2):
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM
        from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer

        self.tokenizer = build_tiny_tokenizer()
        tok = self.tokenizer
        config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                             num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        self.model = LlamaForCausalLM(config)
        self.hidden_size = hidden_size

    def add_tokens(self, tokens, init=None, special=False):
        vocab = self.tokenizer.get_vocab()
        new = [t for t in tokens if t not in vocab]
        if new:
            self.tokenizer.add_tokens(new, special_tokens=special)
            self.model.resize_token_embeddings(len(self.tokenizer))
        weight = self.model.get_input_embeddings().weight
        with torch.no_grad():
            for token in new:
                if init and token in init:
                    src = self.tokenizer.encode(init[token], add_special_tokens=False)[-1]
                    weight[self.tokenizer.convert_tokens_to_ids(token)] = weight[src]
        return [int(i) for i in self.tokenizer.convert_tokens_to_ids(list(tokens))]

    def embed(self, input_ids):
        """Shape: input_ids (B, S) -> (B, S, D)"""
        return self.model.get_input_embeddings()(input_ids)

    def forward(self, inputs_embeds, attention_mask, labels=None, return_logits=True, position_ids=None):
        """Shape: inputs_embeds (B, S, D) -> logits (B, S, V); always the full logits."""
        return self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels,
                          position_ids=position_ids)

    def generate(self, inputs_embeds, attention_mask, position_ids=None, **generate_kwargs):
        """Shape: inputs_embeds (B, S, D) -> (B, new)"""
        kwargs = {"max_new_tokens": 16, "do_sample": False, "pad_token_id": self.tokenizer.pad_token_id,
                  "eos_token_id": self.tokenizer.eos_token_id, **generate_kwargs}
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        return self.model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs)

    def apply_lora(self, r, alpha, dropout, target_modules, extra_trainable=()):
        from peft import LoraConfig, inject_adapter_in_model

        inject_adapter_in_model(LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                                           target_modules=list(target_modules)), self.model)
        for name, param in self.model.named_parameters():
            param.requires_grad = "lora_" in name or any(key in name for key in extra_trainable)


def exploding_encoder():
    raise RuntimeError("boom: the weights folder is empty")


@hookimpl
def vtg_register_encoders(register):
    register("patch16", PatchEncoder, description="16 x 16 patches")
    register("exploding", exploding_encoder, description="raises while building")


@hookimpl
def vtg_register_time_codecs(register):
    register("tenths", TenthsCodec, description="123<TENTHS> = 12.3 s")


@hookimpl
def vtg_register_llms(register):
    register("mini_lm", MiniLM, config=MiniLMConfig, description="a tiny LLaMA")
'''

CONTRACT_TEST = '''
from vtgcore.testing.contracts import EncoderContract, LLMContract, TimeCodecContract


class TestPatch16(EncoderContract):
    plugin_name = "patch16"


class TestTenths(TimeCodecContract):
    plugin_name = "tenths"


class TestMiniLM(LLMContract):
    plugin_name = "mini_lm"
'''

RECIPE = "recipes/debug/tiny.yaml"
MINIMAL = ["model.encoder.name=patch16", "model.time_codec.name=tenths", "model.llm.name=mini_lm"]

BUILD_AND_DECODE = """
import torch
from vtgcore import build_model, load_recipe
from vtgcore.eval.generate import GenerationConfig, generate_batch, render_times
from vtgcore.eval.parsers import parse

model, proc = build_model(load_recipe("recipes/debug/tiny.yaml", {overrides!r}))
print(type(model.encoder).__name__, type(model.time_codec).__name__, type(model.llm).__name__)
ts = torch.arange(8.0)[None] * 2
qa = [{{"q": "when?", "a": "From <time>2.0</time> to <time>6.5</time> seconds."}}]
batch = proc([qa], ts.tolist())
frames = torch.randn(1, 8, 3, 32, 32)
full = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"])
lean = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"], return_logits=False)
print("same_loss", bool(torch.allclose(full.loss, lean.loss)))
tok, codec = model.tokenizer, model.time_codec
answer = tok.encode(f"From {{codec.encode(2.0)}} to {{codec.encode(6.5)}} seconds.", add_special_tokens=False)
text = render_times(answer, codec, tok)
print("rendered", repr(text), parse("mr", text, duration=16.0).value)
prompt = proc([[{{"q": "when?"}}]], ts.tolist(), add_generation_prompt=True)
out = generate_batch(model, {{"frames": frames, "timestamps": ts, "frame_mask": torch.ones(1, 8, dtype=torch.bool),
                              **prompt}}, GenerationConfig(max_new_tokens=6))
print("generated", len(out), isinstance(out[0]["text"], str))
"""


@pytest.fixture(scope="module")
def minimal_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("minimal")
    pkg = tmp / "pkg"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "vtg_minimal.py").write_text(MODULE)
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(pkg)], check=True, cwd=tmp)
    return tmp, {**os.environ, "PYTHONPATH": str(site)}


def _vtg(env, *args):
    return subprocess.run([sys.executable, "-m", "vtgcore.apps.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_minimal_plugins_build_train_evaluate_and_decode(minimal_env, synth_dir):
    tmp, env = minimal_env
    built = subprocess.run([sys.executable, "-c", BUILD_AND_DECODE.format(overrides=MINIMAL)], env=env, cwd=ROOT,
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    lines = built.stdout.splitlines()
    assert lines[0] == "PatchEncoder TenthsCodec MiniLM"
    assert lines[1] == "same_loss True"  # return_logits=False reaches an LLM that ignores it
    # the default decode_spans finds "20<TENTHS>" by id and the parser reads seconds
    assert lines[2] == "rendered 'From 2 to 6.5 seconds.' [(2.0, 6.5)]", lines[2]
    assert lines[3] == "generated 1 True"

    smoke = _vtg(env, "smoke", RECIPE, *MINIMAL, "--steps", "4")
    assert smoke.returncode == 0, smoke.stderr
    assert smoke.stdout.strip().splitlines()[-1].startswith("loss "), smoke.stdout

    out = tmp / "eval"
    evaluated = _vtg(env, "--quiet", "eval", RECIPE, "data=synth", f"data.video_root={synth_dir}", "data.num_frames=4",
                     *MINIMAL, "--task", "mr", "--limit", "2", "--max-new-tokens", "6", "--out", str(out))
    assert evaluated.returncode == 0, evaluated.stderr
    rows = [json.loads(r) for r in (out / "moment_retrieval" / "generations.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(isinstance(r["text"], str) for r in rows)
    metrics = json.loads((out / "moment_retrieval" / "metrics.json").read_text())
    assert metrics["items"] == 2 and metrics["metrics"]["parse_total"] == 2


@pytest.mark.slow
def test_minimal_plugins_pass_the_contracts(minimal_env):
    tmp, env = minimal_env
    (tmp / "test_contract.py").write_text(CONTRACT_TEST)
    contract = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp / "test_contract.py")],
                              env=env, cwd=tmp, capture_output=True, text=True)
    assert contract.returncode == 0, contract.stdout + contract.stderr
    assert "failed" not in contract.stdout and "skipped" not in contract.stdout, contract.stdout
    passed = re.search(r"(\d+) passed", contract.stdout)
    assert passed and int(passed.group(1)) >= 13, contract.stdout  # 4 encoder, 5 time codec, 4 LLM tests


@pytest.mark.slow
def test_a_factory_that_raises_is_one_line_and_its_traceback_is_shown_with_debug(minimal_env):
    _, env = minimal_env
    args = ["smoke", RECIPE, "model.encoder.name=exploding", "--steps", "1"]
    plain = _vtg(env, *args)
    assert plain.returncode == 1
    errors = [line for line in plain.stderr.splitlines() if line.startswith("vtg: error:")]
    assert len(errors) == 1 and "Traceback" not in plain.stderr, plain.stderr
    assert ("encoder plugin 'exploding' (plugin 'minimal' from package 'vtg-minimal' 0.0.1) failed to build: "
            "RuntimeError: boom: the weights folder is empty") in errors[0]
    debug = _vtg(env, "--debug", *args)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and 'raise RuntimeError("boom: the weights folder is empty")' in debug.stderr
    assert "vtgcore.errors.PluginError: " in debug.stderr, debug.stderr


def test_a_factory_error_names_the_plugin_and_keeps_the_cause():
    from dataclasses import dataclass

    from vtgcore.catalog import Catalog
    from vtgcore.errors import CheckpointError, PluginError
    from vtgcore.plugin_loader import Provider

    @dataclass
    class NoParams:
        pass

    def boom():
        raise ValueError("boom\nsecond line")

    def bad_file():
        raise CheckpointError("w.pth: file not found")

    catalog = Catalog(entry_points=False)
    register = catalog._registrar("encoder", Provider("thirdparty", "vtg-thirdparty", "1.0"))
    register("boom", boom, config=NoParams)
    register("bad_file", bad_file, config=NoParams)
    with pytest.raises(PluginError) as info:
        catalog.build("encoder", "boom", {}, where="r.yaml")
    message = str(info.value)
    assert message.startswith("r.yaml: encoder plugin 'boom' (plugin 'thirdparty' from package 'vtg-thirdparty' 1.0)")
    assert "ValueError: boom" in message and "\n" not in message
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(CheckpointError, match=r"^encoder plugin 'bad_file': w\.pth: file not found$"):
        catalog.build("encoder", "bad_file", {})


def test_builtin_plugins_take_every_declared_parameter():
    """A built-in's override of a declared member accepts all of its declared parameters, by name
    (an encoder that reads no times may leave out ``forward``'s ``timestamps``)."""
    import inspect

    from vtgcore import interfaces
    from vtgcore.catalog import Catalog

    bases = [c for _, c in inspect.getmembers(interfaces, inspect.isclass)
             if c.__module__ == interfaces.__name__ and inspect.isabstract(c)]
    checked = []
    for entry in Catalog(entry_points=False).entries():
        if not isinstance(entry.factory, type):
            continue
        for base in (b for b in bases if issubclass(entry.factory, b)):
            for name, declared in vars(base).items():
                own = getattr(entry.factory, name)
                if name.startswith("_") or not inspect.isfunction(declared) or own is declared:
                    continue
                params = inspect.signature(own).parameters
                if any(p.kind is p.VAR_KEYWORD for p in params.values()):
                    continue
                wanted = [p for p in inspect.signature(declared).parameters if p != "self"]
                if base is interfaces.FrameEncoder and name == "forward":
                    wanted.remove("timestamps")
                missing = [p for p in wanted if p not in params]
                assert not missing, f"{entry.kind} {entry.name}: {name} lacks {missing}"
                checked.append((entry.name, name))
    assert ("hf_causal_lm", "add_tokens") in checked and ("hf_causal_lm", "forward") in checked
    assert ("eva_vit_g_qformer", "set_time_writer") in checked and ("absolute_time_tokens", "decode_spans") in checked
