"""vtgcore as a package, not only a checkout: the built wheel, installed (not editable) into a fresh
virtual environment, works from a folder outside the repository: `vtg plugins`, `vtg recipe show`
and `vtg recipe validate` on the shipped recipes (by name), `vtg sweep` on the shipped sweep,
`vtg bench --quick` and `vtg run` at toy size.

The fresh environment borrows the dependencies (torch, transformers, mmengine ...) of the one running
the tests through a ``.pth`` line naming its site-packages, which adds that folder to ``sys.path``
without processing the ``.pth`` files in it, so the editable install of the checkout is not seen;
the test checks that ``vtgcore`` is imported from the new environment.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What the wheel is built from: the checkout without its environments, build outputs and tests
# (building in a copy also keeps a stale build/ folder of the checkout out of the wheel).
SKIP = (".git", ".venv", "build", "dist", "work_dirs", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
        "tests")


def _run(cmd, cwd, env, timeout=300):
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    proc.seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_the_wheel_installed_in_a_fresh_environment_works_from_any_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="2", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1")

    # build the wheel
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*SKIP))
    wheels = tmp_path / "wheels"
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w", wheels, src],
                 tmp_path, env)
    log = build.stdout + build.stderr
    assert "is absent from the `packages` configuration" not in log, "a data folder is not declared as a package"
    assert "BuildBackendWarning" not in log, log[log.find("BuildBackendWarning") - 200:][:1500]
    (wheel,) = wheels.glob("vtgcore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    recipes = sorted(p.relative_to(ROOT / "recipes").as_posix() for p in (ROOT / "recipes").rglob("*")
                     if p.suffix in (".yaml", ".md"))
    expected = {f"vtgcore_recipes/{r}" for r in recipes}
    expected |= {f"vtgcore/{p.relative_to(ROOT / 'vtgcore').as_posix()}" for p in (ROOT / "vtgcore").rglob("*")
                 if p.suffix in (".py", ".json") and "__pycache__" not in p.parts}
    expected |= {f"vtgcore_plugins/{p.relative_to(ROOT / 'plugins').as_posix()}" for p in (ROOT / "plugins").rglob("*.py")
                 if "__pycache__" not in p.parts}
    assert {"vtgcore/data/prompts/v1/mr.json", "vtgcore/apps/perf/suite.py", "vtgcore_recipes/README.md",
            "vtgcore_recipes/vtgllm/synth_tiny.yaml"} <= expected
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"

    # a fresh environment: the wheel, and the dependencies of this one (not its editable vtgcore)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path,
                     env).stdout.strip())
    deps = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "_vtgcore_test_deps.pth").write_text("".join(f"{d}\n" for d in deps))
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel], tmp_path, env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = _run([python, "-c", "import vtgcore, vtgcore_plugins, vtgcore_recipes\n"
                  "for m in (vtgcore, vtgcore_plugins, vtgcore_recipes): print(list(m.__path__)[0])"],
                 elsewhere, env).stdout.split()
    assert len(found) == 3 and all(Path(p).is_relative_to(site) for p in found), found
    vtg = venv / "bin" / "vtg"
    times = {}

    def run(*args, timeout=300):
        proc = _run([vtg, *args], elsewhere, env, timeout)
        times[args[0]] = round(proc.seconds, 1)
        return proc

    out = run("plugins").stdout
    assert "tiny_vit" in out and "slot" in out and "absolute_time_tokens" in out

    out = run("recipe", "show", "vtgllm/synth_tiny").stdout
    assert "experiment_name: vtgllm_synth_tiny" in out
    assert run("recipe", "show", "recipes/debug/tiny.yaml", "seed=5").stdout.count("seed: 5") == 1  # the docs' spelling

    out = run("recipe", "validate").stdout.splitlines()
    shipped = sum(1 for r in recipes if r.endswith(".yaml"))
    assert out[-1] == f"{shipped} valid, 0 invalid", out[-5:]
    assert all(Path(line.split()[-1]).is_relative_to(site) for line in out[:-1]), out[:3]

    out = run("sweep", "recipes/sweeps/synth_ablations.yaml", "--dry-run", "--only", "full", "--seed", "0").stdout
    assert "pending   full seed 0" in out

    out = run("bench", "--quick", timeout=600).stdout
    assert "real_shapes" in out and "machine:" in out

    out = run("--quiet", "run", "--out", "main", "--train", "4", "--val", "2", "--pretrain-steps", "2", "--plots", "1",
              "data.num_frames=4", "runner.train_cfg.max_iters=3", "runner.warmup_iters=1", timeout=600).stdout
    assert out.splitlines()[-1] == str(Path("main") / "run")
    run_dir = elsewhere / "main" / "run"
    assert (run_dir / "metrics.json").is_file() and (run_dir / "checkpoints" / "iter_3" / "model.safetensors").is_file()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["main"], "vtg run wrote outside its --out folder"
    print("seconds per command:", times)
