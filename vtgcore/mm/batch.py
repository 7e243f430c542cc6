"""Effective batch from a global batch size, and the run length in optimizer steps.

``runner.global_batch_size: N`` fixes the number of samples per optimizer step whatever the number
of processes: gradient accumulation = ``N / (data.train.batch_size x world_size)`` (the paper: 64 =
1 x 16 devices x 4). ``runner.optimizer_steps: S`` fixes the run length in optimizer steps:
``train_cfg.max_iters = S x accumulation`` (mmengine iterations are micro-batches). Both are resolved
when the runner is built, once the world size is known; schedules step per optimizer step
(:class:`~vtgcore.mm.hooks.OptimStepParamSchedulerHook`), so a recipe written with both reads the
same on 8 or 64 devices.
"""

from __future__ import annotations

import os
from typing import Any

from vtgcore.errors import RecipeError

DEFAULT_BATCH_SIZE = 8
"""``data.train.batch_size`` when a recipe does not set it (as :func:`vtgcore.mm.runner.train_loader`)."""

_WORLD_ENV = {"pytorch": ("WORLD_SIZE",), "slurm": ("SLURM_NTASKS",),
              "mpi": ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")}


def launcher_world_size(launcher: str = "none") -> int:
    """Processes of the run: ``mmengine.dist.get_world_size()`` once a process group exists, else
    what the launcher's environment says (``WORLD_SIZE`` under torchrun, ``SLURM_NTASKS``,
    ``OMPI_COMM_WORLD_SIZE``); 1 without a launcher."""
    from mmengine.dist import get_world_size, is_distributed

    if is_distributed():
        return int(get_world_size())
    if launcher == "none":
        return 1
    for name in _WORLD_ENV.get(launcher, ()):
        if os.environ.get(name):
            return int(os.environ[name])
    return 1


def derive_accumulate(global_batch_size: int, batch_size: int, world_size: int, accumulate: Any = None) -> int:
    """Gradient accumulation steps that give ``global_batch_size`` samples per optimizer step.

    Args:
        global_batch_size: samples per optimizer step over all processes.
        batch_size: samples per process and micro-batch (``data.train.batch_size``).
        world_size: processes.
        accumulate: the recipe's own ``runner.accumulate`` (None: not set); must agree.

    Raises:
        RecipeError: a value below 1, a global batch not divisible by ``batch_size x world_size``,
            or a disagreeing ``accumulate``.
    """
    for name, value in (("runner.global_batch_size", global_batch_size), ("data.train.batch_size", batch_size),
                        ("world size", world_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RecipeError(f"{name} must be a positive integer, got {value!r}")
    per_step = batch_size * world_size
    if global_batch_size % per_step:
        raise RecipeError(
            f"runner.global_batch_size {global_batch_size} is not divisible by data.train.batch_size "
            f"{batch_size} x world size {world_size} = {per_step}; change the batch size or the number of processes")
    derived = global_batch_size // per_step
    if accumulate is not None and int(accumulate) != derived:
        raise RecipeError(
            f"runner.accumulate {accumulate} disagrees with runner.global_batch_size {global_batch_size} = "
            f"{batch_size} (data.train.batch_size) x {world_size} (world size) x {derived}; drop one of them")
    return derived


def apply_global_batch(runner_cfg: dict[str, Any], batch_size: int, launcher: str = "none") -> dict[str, Any]:
    """Resolve ``global_batch_size`` and ``optimizer_steps`` of a runner config in place.

    ``global_batch_size`` becomes ``accumulate``; ``optimizer_steps`` becomes
    ``train_cfg.max_iters``. Returns what was derived (``world_size``, ``accumulate``,
    ``max_iters``), empty when the recipe uses neither key.

    Raises:
        RecipeError: see :func:`derive_accumulate`; ``optimizer_steps`` below 1 or disagreeing with
            an explicit ``train_cfg.max_iters``.
    """
    derived: dict[str, Any] = {}
    global_batch = runner_cfg.pop("global_batch_size", None)
    steps = runner_cfg.pop("optimizer_steps", None)
    if global_batch is not None:
        world = launcher_world_size(launcher)
        accumulate = derive_accumulate(global_batch, batch_size, world, runner_cfg.get("accumulate"))
        runner_cfg["accumulate"] = accumulate
        derived.update(global_batch_size=global_batch, batch_size=batch_size, world_size=world, accumulate=accumulate)
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise RecipeError(f"runner.optimizer_steps must be a positive integer, got {steps!r}")
        max_iters = steps * int(runner_cfg.get("accumulate", 1))
        train_cfg = runner_cfg.setdefault("train_cfg", {}) or {}
        runner_cfg["train_cfg"] = train_cfg
        if train_cfg.get("max_iters") is not None and int(train_cfg["max_iters"]) != max_iters:
            raise RecipeError(
                f"runner.train_cfg.max_iters {train_cfg['max_iters']} disagrees with runner.optimizer_steps {steps} x "
                f"accumulate {runner_cfg.get('accumulate', 1)} = {max_iters}; drop one of them")
        train_cfg["max_iters"] = max_iters
        derived.update(optimizer_steps=steps, max_iters=max_iters)
    return derived
