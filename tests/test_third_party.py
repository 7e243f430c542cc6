"""A separately installed package with a ``vtgcore`` entry point is listed and selectable by name."""

import json
import re
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PYPROJECT = """
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "vtg-first-k"
version = "0.3.1"
dependencies = ["vtgcore"]

[project.entry-points.vtgcore]
first_k = "vtg_first_k"

[tool.setuptools]
py-modules = ["vtg_first_k"]
"""

MODULE = '''
from dataclasses import dataclass
import torch
from vtgcore import hookimpl
from vtgcore.interfaces import TokenCompressor
from vtgcore.types import VisualTokens


@dataclass
class FirstKConfig:
    k: int = 4


class FirstK(TokenCompressor):
    def __init__(self, dim, k=4):
        super().__init__()
        self.k = k
        self.scale = torch.nn.Parameter(torch.ones(dim))

    def output_tokens(self, num_frames, tokens_per_frame):
        return self.k

    def forward(self, tokens, frame_mask=None, timestamps=None):
        b, t, l, d = tokens.shape
        x = tokens.reshape(b, t * l, d)[:, : self.k] * self.scale
        return VisualTokens(x, torch.ones(b, self.k, dtype=torch.bool))


@hookimpl
def vtg_register_compressors(register):
    register("first_k", FirstK, config=FirstKConfig, description="keep the first k tokens")
'''

CONTRACT_TEST = '''
from vtgcore.testing.contracts import CompressorContract

class TestFirstK(CompressorContract):
    plugin_name = "first_k"
    params = {"k": 2}
'''


@pytest.mark.slow
def test_installed_package_is_listed_selected_and_passes_the_contract(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "vtg_first_k.py").write_text(MODULE)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(pkg)], check=True, cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(site)}

    def vtg(*args):
        return subprocess.run([sys.executable, "-m", "vtgcore.apps.cli", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True)

    listed = vtg("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)}
    assert rows[("compressor", "first_k")] == {"kind": "compressor", "name": "first_k", "provider": "vtg-first-k",
                                              "version": "0.3.1", "description": "keep the first k tokens"}

    shown = vtg("recipe", "show", "recipes/debug/tiny.yaml", "model.compressor.name=first_k",
                "model.compressor.params.k=3")
    assert shown.returncode == 0, shown.stderr
    assert "name: first_k" in shown.stdout and "k: 3" in shown.stdout

    blocked = subprocess.run([sys.executable, "-m", "vtgcore.apps.cli", "recipe", "validate", "recipes/debug/tiny.yaml",
                              "model.compressor.name=first_k"], env={**env, "VTG_BLOCK_PLUGINS": "first_k"},
                             cwd=ROOT, capture_output=True, text=True)
    assert blocked.returncode == 1 and "unknown compressor plugin 'first_k'" in blocked.stdout

    code = textwrap.dedent("""
        import torch
        from vtgcore import build_model, load_recipe
        model, proc = build_model(load_recipe("recipes/debug/tiny.yaml", ["model.compressor.name=first_k", "model.compressor.params.k=3"]))
        ts = torch.arange(8.0)[None]
        batch = proc([[{"q": "when?", "a": "at <time>2</time>"}]], ts.tolist())
        out = model(torch.randn(1, 8, 3, 32, 32), ts, batch["input_ids"], batch["attention_mask"], batch["labels"])
        print(type(model.compressor).__name__, model.num_video_tokens(8), bool(torch.isfinite(out.loss)))
    """)
    built = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert built.stdout.split() == ["FirstK", "3", "True"]

    (tmp_path / "test_contract.py").write_text(CONTRACT_TEST)
    contract = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_contract.py")],
                              env=env, cwd=tmp_path, capture_output=True, text=True)
    assert contract.returncode == 0, contract.stdout + contract.stderr
    # every contract test the package's test file subclasses ran and passed (the class grows with the contract)
    passed = re.search(r"(\d+) passed", contract.stdout)
    assert passed and int(passed.group(1)) >= 3 and "failed" not in contract.stdout
