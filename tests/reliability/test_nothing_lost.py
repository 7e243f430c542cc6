"""Nothing lost (issue 9, item 3): atomic writes, crashes during a checkpoint save, resuming from
the last complete checkpoint, the evaluation cache, and disk-full / permission errors named with
their path.

The tests run as root, for whom permission bits do not fail: permission errors are simulated by
making the operating-system call raise ``OSError(EACCES)``; disk-full by ``OSError(ENOSPC)``.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from vtgcore.apps import cli
from vtgcore.checkpoint import latest_checkpoint, load_checkpoint
from vtgcore.errors import OutputError, VTGError
from vtgcore.utils.fileio import atomic_write_text
from vtgcore.mm.hooks import TRAINING_FILES, VTGCheckpointHook

ROOT = Path(__file__).resolve().parents[2]
SYNTH_TINY = ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml"
TINY = ROOT / "recipes" / "debug" / "tiny.yaml"


def _oserror(code: int, filename: str | None = None) -> OSError:
    return OSError(code, os.strerror(code), filename) if filename else OSError(code, os.strerror(code))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------------------------------
# Atomic writes


FAULTS = {
    "disk full while writing": ("os.fsync", errno.ENOSPC, "No space left on device"),
    "disk full at the rename": ("os.replace", errno.ENOSPC, "No space left on device"),
    "permission denied at the rename": ("os.replace", errno.EACCES, "Permission denied"),
    "permission denied creating the temp file": ("tempfile.mkstemp", errno.EACCES, "Permission denied"),
    "read-only file system": ("tempfile.mkstemp", errno.EROFS, "Read-only file system"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_write_names_the_path_and_keeps_the_old_file(fault, tmp_path, monkeypatch):
    target = tmp_path / "results" / "metrics.json"
    atomic_write_text(target, '{"old": 1}')
    where, code, text = FAULTS[fault]
    module, name = where.split(".")

    def fail(*args, **kwargs):
        raise _oserror(code)

    monkeypatch.setattr({"os": os, "tempfile": tempfile}[module], name, fail)
    with pytest.raises(OutputError) as info:
        atomic_write_text(target, '{"new": 2}')
    monkeypatch.undo()
    assert str(info.value) == f"{target}: cannot write: {text}"
    assert isinstance(info.value, OSError) and isinstance(info.value, VTGError)
    assert target.read_text() == '{"old": 1}'  # the previous version is intact
    assert _leftovers(target.parent) == []  # and no temporary file is left behind


def test_an_unwritable_folder_is_named(tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == blocked:
            raise _oserror(errno.EACCES, str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(OutputError, match=rf"^{blocked}/a.json: cannot write: Permission denied \({blocked}\)$"):
        atomic_write_text(blocked / "a.json", "{}")


def test_the_cli_reports_an_unwritable_output_folder_on_one_line(tmp_path, capsys, synth_dir):
    """A real failure (no simulation): ``--out`` lies under a regular file."""
    target = tmp_path / "a_file"
    target.write_text("not a folder")
    rc = cli.main(["eval", str(TINY), f"data.val.mr.annotation={synth_dir / 'val' / 'charades.json'}",
                   "--video-root", str(synth_dir), "--out", str(target / "out"), "--max-new-tokens", "2"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vtg: error")]
    # the first file vtg eval writes is its log, OUT/eval.log
    assert rc == 1 and err == [f"vtg: error: {target}/out/eval.log: cannot write: Not a directory ({target}/out)"]


# ------------------------------------------------------------------------------------------------
# Checkpoints: a crash during a save, and resuming from the last complete one


def _train_argv(synth_dir: Path, work: Path, iters: int, *extra: str) -> list[str]:
    return ["train", str(SYNTH_TINY), f"data.video_root={synth_dir}", "data.num_frames=4", "data.train.batch_size=2",
            f"runner.train_cfg.max_iters={iters}", "runner.warmup_iters=2",
            "runner.checkpoint_interval=2", "runner.log_interval=1", "--work-dir", str(work), *extra]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


CRASHES = {
    # (file of iter_6 whose rename fails, what fails, exit status)
    "disk full saving the optimizer state": ("optimizer.safetensors", _oserror(errno.ENOSPC), 1),
    "killed while writing loop.json": ("loop.json", KeyboardInterrupt(), 130),
}


@pytest.mark.parametrize("crash", list(CRASHES))
def test_a_crash_during_a_save_leaves_the_previous_checkpoint_and_resume_uses_it(crash, synth_dir, tmp_path,
                                                                                   monkeypatch, capsys):
    name, failure, status = CRASHES[crash]
    assert cli.main(_train_argv(synth_dir, tmp_path / "clean", 6)) == 0
    work = tmp_path / "run"
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst) == work / "checkpoints" / "iter_6" / name:
            raise failure
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    assert cli.main(_train_argv(synth_dir, work, 6)) == status
    monkeypatch.undo()
    err = capsys.readouterr().err
    if status == 1:
        assert f"vtg: error: {work}/checkpoints/iter_6/{name}: cannot write: No space left on device" in err.splitlines()
    assert "Traceback" not in err
    checkpoints = work / "checkpoints"
    assert (checkpoints / "last").read_text().strip() == "iter_4"
    assert not (checkpoints / "iter_6" / "loop.json").exists() and _leftovers(checkpoints / "iter_6") == []
    assert VTGCheckpointHook.last(work) == checkpoints / "iter_4"
    # the previous checkpoint is usable: eval and fine-tuning load it through the run folder
    from vtgcore import build_model, load_recipe

    model, _ = build_model(load_recipe(SYNTH_TINY, [f"data.video_root={synth_dir}"]))
    assert load_checkpoint(model, work)["iter"] == 4

    resumed_from = []
    real_load = VTGCheckpointHook.load

    def spy(self, runner, path):
        resumed_from.append(Path(path))
        return real_load(self, runner, path)

    monkeypatch.setattr(VTGCheckpointHook, "load", spy)
    assert cli.main(_train_argv(synth_dir, work, 6, "--resume")) == 0
    assert resumed_from == [checkpoints / "iter_4"]
    assert (checkpoints / "last").read_text().strip() == "iter_6"
    clean, resumed = _weights(tmp_path / "clean" / "checkpoints" / "iter_6"), _weights(checkpoints / "iter_6")
    assert set(clean) == set(resumed)
    for key in clean:  # the resumed run ends exactly where the uninterrupted one did
        torch.testing.assert_close(resumed[key], clean[key], rtol=0, atol=1e-6, msg=key)


def _fake_checkpoint(folder: Path, step: int) -> Path:
    """A complete training checkpoint folder as :class:`VTGCheckpointHook` writes it (small tensors)."""
    folder.mkdir(parents=True)
    for name in TRAINING_FILES:
        if name.endswith(".safetensors"):
            save_file({"t": torch.full((2,), float(step))}, str(folder / name))
        else:
            (folder / name).write_text(json.dumps({"iter": step, "epoch": 0}))
    return folder


@pytest.fixture
def checkpoints(tmp_path) -> Path:
    root = tmp_path / "checkpoints"
    for step in (2, 4, 6):
        _fake_checkpoint(root / f"iter_{step}", step)
    (root / "last").write_text("iter_6\n")
    return root


def test_the_pointer_names_the_checkpoint_to_resume(checkpoints):
    (checkpoints / "last").write_text("iter_4\n")  # iter_6 is a leftover of an older run in this work dir
    assert latest_checkpoint(checkpoints, TRAINING_FILES) == checkpoints / "iter_4"


@pytest.mark.parametrize("damage", ["pointer missing", "pointer torn", "pointer escapes the folder",
                                    "weights torn", "loop.json missing", "optimizer state empty"])
def test_resume_falls_back_to_the_newest_complete_checkpoint(damage, checkpoints):
    newest = checkpoints / "iter_6"
    if damage == "pointer missing":
        (checkpoints / "last").unlink()
        expected = newest
    elif damage == "pointer torn":
        (checkpoints / "last").write_bytes(b"iter_\xff")
        expected = newest
    elif damage == "pointer escapes the folder":
        (checkpoints / "last").write_text("../../etc\n")
        expected = newest
    else:
        damaged = {"weights torn": "model.safetensors", "loop.json missing": "loop.json",
                   "optimizer state empty": "optimizer.safetensors"}[damage]
        if damage == "weights torn":
            data = (newest / damaged).read_bytes()
            (newest / damaged).write_bytes(data[: len(data) // 2])
        elif damage == "loop.json missing":
            (newest / damaged).unlink()
        else:
            (newest / damaged).write_bytes(b"")
        expected = checkpoints / "iter_4"
    assert latest_checkpoint(checkpoints, TRAINING_FILES) == expected


def test_no_complete_checkpoint_is_none_and_eval_says_so(checkpoints):
    for folder in checkpoints.glob("iter_*"):
        (folder / "model.safetensors").write_bytes(b"torn")
    assert latest_checkpoint(checkpoints, TRAINING_FILES) is None
    from vtgcore.checkpoint import resolve_checkpoint
    from vtgcore.errors import CheckpointError

    with pytest.raises(CheckpointError, match=rf"^{checkpoints}: no complete checkpoint"):
        resolve_checkpoint(checkpoints.parent)


# ------------------------------------------------------------------------------------------------
# The evaluation cache


def _eval_argv(synth_dir: Path, out: Path) -> list[str]:
    return ["eval", str(TINY), f"data.val.mr.annotation={synth_dir / 'val' / 'charades.json'}",
            "data.val.mr.format=charades", "--video-root", str(synth_dir), "--out", str(out),
            "--batch-size", "2", "--max-new-tokens", "6"]


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "moment_retrieval" / "generations.jsonl").read_text().splitlines()]


@pytest.fixture
def generated(monkeypatch):
    """Records the item ids of every batch the evaluation generates for; ``fail`` makes a call fail."""
    from vtgcore.eval import evaluation as R

    real = R.generate_batch
    calls: list[list[str]] = []
    plan: dict[int, BaseException] = {}

    def generate(model, batch, cfg):
        calls.append([item.id for item in batch["items"]])
        if len(calls) in plan:
            raise plan[len(calls)]
        return real(model, batch, cfg)

    monkeypatch.setattr(R, "generate_batch", generate)
    return calls, plan


def test_an_interrupted_evaluation_generates_only_the_rest(synth_dir, tmp_path, generated, capsys):
    calls, plan = generated
    assert cli.main(_eval_argv(synth_dir, tmp_path / "clean")) == 0
    clean = {row["id"]: row["text"] for row in _rows(tmp_path / "clean")}
    total = len(clean)
    assert total >= 6
    calls.clear()
    plan[3] = KeyboardInterrupt()  # killed during the third batch: two batches (4 items) are finished
    assert cli.main(_eval_argv(synth_dir, tmp_path / "run")) == 130
    finished = [row["id"] for row in _rows(tmp_path / "run")]
    assert finished == calls[0] + calls[1] and len(finished) == 4
    calls.clear()
    plan.clear()
    assert cli.main(_eval_argv(synth_dir, tmp_path / "run")) == 0
    generated_again = [i for batch in calls for i in batch]
    assert sorted(generated_again) == sorted(set(clean) - set(finished))  # only the rest
    assert {row["id"]: row["text"] for row in _rows(tmp_path / "run")} == clean  # same answers
    record = json.loads((tmp_path / "run" / "moment_retrieval" / "metrics.json").read_text())
    assert record["metrics"]["count"] == total and record["errors"] == []


def test_disk_full_during_an_evaluation_is_reported_and_the_rerun_completes(synth_dir, tmp_path, generated,
                                                                             monkeypatch, capsys):
    calls, _ = generated
    from vtgcore.eval import evaluation as R

    real_fsync, count = os.fsync, {"n": 0}

    def fsync(fd):
        count["n"] += 1
        if count["n"] == 3:  # the third finished item cannot be made durable
            raise _oserror(errno.ENOSPC)
        return real_fsync(fd)

    monkeypatch.setattr(R.os, "fsync", fsync)
    out = tmp_path / "run"
    assert cli.main(_eval_argv(synth_dir, out)) == 1
    cache = out / "moment_retrieval" / "generations.jsonl"
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vtg: error")]
    assert errors == [f"vtg: error: {cache}: cannot write: No space left on device"]
    monkeypatch.setattr(R.os, "fsync", real_fsync)
    kept = {row["id"] for row in _rows(out)}
    assert len(kept) == 3  # the rows written before the disk filled up are kept
    calls.clear()
    assert cli.main(_eval_argv(synth_dir, out)) == 0
    redone = {i for batch in calls for i in batch}
    everything = {row["id"] for row in _rows(out)}
    assert not kept & redone and kept | redone == everything
    assert json.loads((out / "moment_retrieval" / "metrics.json").read_text())["metrics"]["count"] == len(everything)


def test_an_item_that_failed_is_tried_again_once_its_video_is_fixed(synth_dir, tmp_path, generated):
    from vtgcore.data.dataset import FrameConfig
    from vtgcore.eval import evaluation as R
    from vtgcore.eval.generate import GenerationConfig
    from vtgcore import build_model, load_recipe

    calls, _ = generated
    gt = json.loads((synth_dir / "val" / "charades.json").read_text())
    broken = tmp_path / "videos" / "broken.mp4"
    broken.parent.mkdir()
    broken.write_bytes(b"")
    gt["annotations"][0]["image_id"] = str(broken)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    model, processor = build_model(load_recipe(TINY))
    enc = model.encoder
    kwargs = dict(frames=FrameConfig(8, "uniform", "pyav", enc.image_size, mean=enc.mean, std=enc.std),
                  video_root=synth_dir, batch_size=4, generation=GenerationConfig(max_new_tokens=4))
    eval_set = R.EvalSet("mr", str(tmp_path / "gt.json"), "charades")
    first = R.evaluate_set(model, processor, eval_set, tmp_path / "out", **kwargs)
    bad_id = str(gt["annotations"][0]["id"])
    assert first["video_errors"] == 1 and first["item_errors"] == 1
    record = json.loads((tmp_path / "out" / "moment_retrieval" / "metrics.json").read_text())
    assert record["errors"] == [{"id": bad_id, "video": str(broken), "kind": "video",
                                 "error": f"{broken}: empty file (0 bytes)"}]
    broken.write_bytes((synth_dir / "videos" / "val_00000.mp4").read_bytes())  # the video is fixed
    calls.clear()
    second = R.evaluate_set(model, processor, eval_set, tmp_path / "out", **kwargs)
    assert calls == [[bad_id]]  # only the failed item is generated again
    assert second["video_errors"] == second["item_errors"] == 0
