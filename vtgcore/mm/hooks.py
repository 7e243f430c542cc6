"""Hooks: trainable-parameter table, schedules stepped per optimizer step, safetensors checkpoints
with exact resume, and the report of skipped samples."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from vtgcore.checkpoint import (MANIFEST, POINTER, WEIGHTS, complete, latest_checkpoint, load_checkpoint,
                                save_checkpoint, unreadable_file)
from vtgcore.utils.fileio import atomic_write_bytes, atomic_write_text
from vtgcore.data.dataset import SkipLog
from vtgcore.errors import CheckpointError
from vtgcore.mm.registry import HOOKS
from vtgcore.vocab import MODULE_KINDS

TRAINING_FILES = (WEIGHTS, MANIFEST, "optimizer.safetensors", "optimizer.json", "schedulers.json",
                  "rng.safetensors", "rng.json", "loop.json")
"""The files of a complete training checkpoint folder (``loop.json`` is written last)."""

OBJECTIVE_STATE = "objective.safetensors"
"""The training objective's own tensors (GRPO's reference policy), only when it has some."""


def _vtg(runner: Any) -> Any:
    model = runner.model
    return getattr(model, "module", model)


def trainable_table(model: Any) -> str:
    """A table of parameters and trainable parameters per component of a ``VTGModel`` (the module
    kinds in data-flow order, then any further module of it)."""
    rows = []
    children = dict(model.vtg.named_children())
    order = [kind for kind in MODULE_KINDS if kind in children] + [name for name in children if name not in MODULE_KINDS]
    for part in order:
        params = list(children[part].parameters())
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        rows.append((part, total, trainable))
    rows.append(("total", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    lines = [f"{'module':<16}{'parameters':>14}{'trainable':>14}"]
    lines += [f"{name:<16}{total:>14,}{trainable:>14,}" for name, total, trainable in rows]
    return "\n".join(lines)


def scheduler_groups(runner: Any) -> list[list[Any]]:
    """The runner's parameter schedulers as a list of groups (one per optimizer)."""
    schedulers = runner.param_schedulers or []
    return list(schedulers.values()) if isinstance(schedulers, dict) else [schedulers]


@HOOKS.register_module()
class TrainableTableHook(Hook):
    """Prints the trainable-parameter table at the start of training."""

    priority = "VERY_HIGH"

    def before_train(self, runner: Any) -> None:
        print_log("trainable parameters per module:\n" + trainable_table(_vtg(runner)), logger="current")


@HOOKS.register_module()
class OptimStepParamSchedulerHook(Hook):
    """Steps iteration-based schedules once per optimizer step, so gradient accumulation does not
    make warmup and decay run ``accumulative_counts`` times too fast."""

    priority = "LOW"

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        counts = getattr(runner.optim_wrapper, "_accumulative_counts", 1)
        inner = getattr(runner.optim_wrapper, "_inner_count", runner.iter + 1)
        at_end = runner.iter + 1 >= runner.max_iters
        if inner % counts != 0 and not at_end:
            return
        for group in scheduler_groups(runner):
            for scheduler in group:
                if not scheduler.by_epoch:
                    scheduler.step()

    def after_train_epoch(self, runner: Any) -> None:
        for group in scheduler_groups(runner):
            for scheduler in group:
                if scheduler.by_epoch:
                    scheduler.step()


@HOOKS.register_module()
class SkipReportHook(Hook):
    """Counts samples left out because their video could not be read and reports them at the end."""

    def __init__(self) -> None:
        self.log = SkipLog()

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if isinstance(data_batch, dict):
            self.log.update(data_batch)

    def after_train(self, runner: Any) -> None:
        report = self.log.report()
        if report:
            print_log(report, logger="current", level=30)
            atomic_write_text(Path(runner.work_dir) / "skipped.txt", report + "\n")


# ------------------------------------------------------------------------------------------------
# Checkpoints: trainable weights, optimizer, schedulers and RNG, without pickle


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for pid, values in state["state"].items():
        entry = {}
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.detach().contiguous().cpu()
                entry[key] = {"tensor": f"{pid}.{key}"}
            else:
                entry[key] = value
        meta["state"][str(pid)] = entry
    return tensors, meta


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state = {}
    for pid, values in meta["state"].items():
        state[int(pid)] = {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v
                           for k, v in values.items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{i}"] = s
    py = random.getstate()
    np_state = np.random.get_state()
    meta = {"python": [py[0], list(py[1]), py[2]],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda"))]
        if states:
            torch.cuda.set_rng_state_all(states)
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))


@HOOKS.register_module()
class VTGCheckpointHook(Hook):
    """Saves ``checkpoints/iter_<n>/`` folders (safetensors + JSON) and resumes from the last one.

    A folder holds the trainable weights, the resolved recipe and plugin versions
    (:func:`vtgcore.checkpoint.save_checkpoint`), the optimizer state, every scheduler's state, the
    RNG states and the loop position. Every file is written atomically; ``loop.json`` marks the folder
    complete and is written after the others, and ``checkpoints/last`` names the newest complete
    folder and is written last, so a crash during a save leaves the previous checkpoint in use.
    Resuming takes the folder ``last`` names, or the newest complete folder when the pointer is
    missing or its folder damaged.

    Args:
        interval: save every ``interval`` iterations (and at the end of training).
        max_keep: complete checkpoints kept (older ones are deleted).
        resume: ``False``, ``True``/``"auto"`` (the last complete checkpoint, if any) or a folder.
    """

    priority = "VERY_LOW"

    def __init__(self, interval: int = 500, max_keep: int = 2, resume: bool | str = False) -> None:
        self.interval = interval
        self.max_keep = max_keep
        self.resume = resume

    @staticmethod
    def folder(work_dir: str | Path) -> Path:
        """The checkpoints folder of a work dir."""
        return Path(work_dir) / "checkpoints"

    @classmethod
    def last(cls, work_dir: str | Path) -> Optional[Path]:
        """The newest complete checkpoint of a work dir, or None.

        The folder ``checkpoints/last`` names when all its files are there and readable; else (the
        pointer is missing or torn, or its folder was damaged) the newest complete ``iter_<n>``
        folder (see :func:`vtgcore.checkpoint.latest_checkpoint`).
        """
        return latest_checkpoint(cls.folder(work_dir), TRAINING_FILES)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        from mmengine.dist import is_main_process

        if (self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner)) and is_main_process():
            self.save(runner)

    def save(self, runner: Any) -> Path:
        """Write a checkpoint of the current state."""
        from safetensors.torch import save

        model = _vtg(runner)
        step = runner.iter + 1
        path = self.folder(runner.work_dir) / f"iter_{step}"
        # loop.json marks a folder complete and is written last: a folder saved over (a run restarted
        # without --resume in an old work dir) stays incomplete until every file is new
        (path / "loop.json").unlink(missing_ok=True)
        save_checkpoint(model.vtg, path, recipe=getattr(model, "recipe", None), extra={"iter": step, "epoch": runner.epoch})
        tensors, meta = _flatten_optimizer(runner.optim_wrapper.state_dict())
        atomic_write_bytes(path / "optimizer.safetensors", save(tensors))
        atomic_write_text(path / "optimizer.json", json.dumps(meta))
        atomic_write_text(path / "schedulers.json",
                          json.dumps([[s.state_dict() for s in g] for g in scheduler_groups(runner)]))
        objective = model.training_state()
        if objective:
            tensors = {k: v.detach().contiguous().cpu() for k, v in objective.items()}
            atomic_write_bytes(path / OBJECTIVE_STATE, save(tensors))
        rng_tensors, rng_meta = _rng_state()
        atomic_write_bytes(path / "rng.safetensors", save(rng_tensors))
        atomic_write_text(path / "rng.json", json.dumps(rng_meta))
        atomic_write_text(path / "loop.json", json.dumps({"iter": step, "epoch": runner.epoch}))
        atomic_write_text(self.folder(runner.work_dir) / POINTER, path.name + "\n")
        self._prune(runner.work_dir, keep=path)
        return path

    def _prune(self, work_dir: str | Path, keep: Path) -> None:
        # incomplete folders (left by a crash during a save) go first, then the oldest complete ones
        folders = sorted((p for p in self.folder(work_dir).glob("iter_*")
                          if p.is_dir() and p != keep and p.name[5:].isdigit()),
                         key=lambda p: (complete(p, TRAINING_FILES), int(p.name[5:])))
        for old in folders[: max(0, len(folders) - (self.max_keep - 1))]:
            shutil.rmtree(old, ignore_errors=True)

    def before_train(self, runner: Any) -> None:
        if not self.resume:
            return
        if self.resume in (True, "auto"):
            path = self.last(runner.work_dir)
            pointer = self.folder(runner.work_dir) / POINTER
            if path is not None and pointer.is_file() and pointer.read_text(errors="replace").strip() != path.name:
                print_log(f"resume: {pointer} does not name a complete checkpoint; using {path.name}, the newest "
                          "complete one", logger="current", level=30)
        else:
            path = Path(self.resume)
        if path is None:
            print_log("resume: no complete checkpoint yet, starting from scratch", logger="current")
            return
        self.load(runner, path)

    def load(self, runner: Any, path: Path) -> None:
        """Restore model, optimizer, schedulers, RNG and loop position from ``path``.

        Raises:
            CheckpointError: ``path`` is not a complete training checkpoint, or one of its files
                is unreadable or does not fit the model (the message names the file).
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not path.is_dir():
            raise CheckpointError(f"{path}: checkpoint folder not found")
        missing = [name for name in TRAINING_FILES if not (path / name).is_file()]
        if missing:
            raise CheckpointError(f"{path}: not a complete training checkpoint (no {', '.join(missing)})")
        bad = unreadable_file(path, TRAINING_FILES)
        if bad is not None:
            raise CheckpointError(f"{path / bad[0]}: {bad[1]} (a torn or damaged training checkpoint; "
                                  "resume from an earlier one)")

        def read_json(name: str) -> Any:
            try:
                from vtgcore.utils.limits import loads_json

                return loads_json((path / name).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CheckpointError(f"{path / name}: unreadable ({exc})") from None

        def read_tensors(name: str) -> dict[str, torch.Tensor]:
            try:
                return load_file(str(path / name))
            except (SafetensorError, OSError, ValueError) as exc:
                raise CheckpointError(f"{path / name}: not a safetensors file ({exc})") from None

        meta, loop = read_json("optimizer.json"), read_json("loop.json")
        optimizer = read_tensors("optimizer.safetensors")
        schedulers, rng_meta = read_json("schedulers.json"), read_json("rng.json")
        rng = read_tensors("rng.safetensors")
        load_checkpoint(_vtg(runner).vtg, path)
        objective = read_tensors(OBJECTIVE_STATE) if (path / OBJECTIVE_STATE).is_file() else {}
        if _vtg(runner).training_state() and not objective:
            raise CheckpointError(f"{path}: no {OBJECTIVE_STATE}: this run keeps its objective's tensors (GRPO's "
                                  "reference policy) and the checkpoint was saved without them")
        try:
            _vtg(runner).load_training_state(objective)
        except CheckpointError as exc:
            raise CheckpointError(f"{path / OBJECTIVE_STATE}: {exc}") from None
        try:
            runner.optim_wrapper.load_state_dict(_unflatten_optimizer(optimizer, meta))
            for group, states in zip(scheduler_groups(runner), schedulers):
                for scheduler, state in zip(group, states):
                    scheduler.load_state_dict(state)
            _set_rng_state(rng, rng_meta)
            runner.train_loop._iter = loop["iter"]
            runner.train_loop._epoch = loop["epoch"]
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise CheckpointError(f"{path}: the optimizer, scheduler or loop state does not fit this run ({detail}); "
                                  "was it saved from another recipe?") from None
        print_log(f"resumed from {path} at iteration {loop['iter']}", logger="current")
