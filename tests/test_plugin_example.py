"""examples/vtg-plugin-example: installed with pip, it is listed with its provider and version,
selected in a recipe through its component file, trained for a few steps, and passes its own
contract tests. The install goes into a temporary folder, so the environment is left as it was."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "vtg-plugin-example"


def _run(args, env, cwd):
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)


@pytest.mark.slow
def test_example_package_is_installed_listed_used_in_a_recipe_and_passes_its_contract(tmp_path):
    # build from a copy: an in-tree build would leave build/ and *.egg-info in the repository
    pkg = tmp_path / "vtg-plugin-example"
    shutil.copytree(EXAMPLE, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    site = tmp_path / "site"
    install = _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(pkg)], os.environ, tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    vtg = [sys.executable, "-m", "vtgcore.apps.cli"]
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]

    listed = _run([*vtg, "plugins", "--json"], env, ROOT)
    assert listed.returncode == 0, listed.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)}
    row = rows[("compressor", "strided_pool")]
    assert (row["provider"], row["version"]) == (project["name"], project["version"]) == ("vtg-plugin-example", "0.1.0")
    assert row["description"].startswith("average every `stride` frames")

    # the component file the package ships (installed as package data) selects it by group swap,
    # with nothing copied into the recipes tree; a blocked plugin ships nothing
    shipped = site / "vtg_plugin_example" / "components" / "compressor" / "strided_pool_2x4.yaml"
    assert shipped.is_file()
    recipes = ROOT / "recipes"
    assert not (recipes / "components" / "compressor" / "strided_pool_2x4.yaml").exists()
    checked = _run([*vtg, "recipe", "validate", str(shipped)], env, ROOT)
    assert checked.returncode == 0 and checked.stdout.startswith("ok"), checked.stdout + checked.stderr
    shown = _run([*vtg, "recipe", "show", str(recipes / "debug" / "tiny.yaml"), "compressor=strided_pool_2x4"], env, ROOT)
    assert shown.returncode == 0 and "name: strided_pool" in shown.stdout, shown.stdout + shown.stderr
    blocked = _run([*vtg, "recipe", "show", str(recipes / "debug" / "tiny.yaml"), "compressor=strided_pool_2x4"],
                   {**env, "VTG_BLOCK_PLUGINS": "vtg_plugin_example"}, ROOT)
    assert blocked.returncode != 0 and "no compressor option 'strided_pool_2x4'" in blocked.stdout + blocked.stderr

    # build the model from the recipe and train it: tiny.yaml has 8 frames of L = 4 tokens,
    # so K = ceil(8 / 2) * min(4, 4) = 16 (slot_8, the recipe's own compressor, gives 8)
    smoke = _run([*vtg, "smoke", str(recipes / "debug" / "tiny.yaml"), "compressor=strided_pool_2x4", "--steps", "5"],
                 env, ROOT)
    assert smoke.returncode == 0, smoke.stderr
    assert "K=16 video tokens" in smoke.stdout
    first, last = (float(x) for x in smoke.stdout.strip().splitlines()[-1].split()[1:4:2])
    assert last < first, smoke.stdout  # five steps on one batch lower the loss

    contract = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")], env, tmp_path)
    assert contract.returncode == 0, contract.stdout + contract.stderr
    # every test of the contract classes the example's test file subclasses ran and passed
    import re

    passed = re.search(r"(\d+) passed", contract.stdout)
    assert passed and int(passed.group(1)) >= 7 and "failed" not in contract.stdout and "skipped" not in contract.stdout
