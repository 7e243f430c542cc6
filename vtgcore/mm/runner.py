"""Build an mmengine ``Runner`` from a recipe (vtgcore builds the objects, mmengine runs them)."""

from __future__ import annotations

import copy
import functools
import itertools
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from vtgcore.config.runner_section import PRECISIONS, STRATEGIES
from vtgcore.errors import RecipeError
from vtgcore.mm.batch import DEFAULT_BATCH_SIZE, apply_global_batch

DEFAULT_OPTIM = {
    "type": "OptimWrapper",
    "optimizer": {"type": "AdamW", "lr": 1e-4, "weight_decay": 0.05, "betas": [0.9, 0.999]},
    "clip_grad": {"max_norm": 1.0},
    # as the original: no weight decay on biases, norms and other 1-d parameters
    "paramwise_cfg": {"bias_decay_mult": 0.0, "norm_decay_mult": 0.0, "flat_decay_mult": 0.0},
}


def bf16_supported() -> bool:
    """Whether the current accelerator runs bf16 autocast (CUDA with bf16, or an Ascend NPU)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        from mmengine.device import is_npu_available

        return is_npu_available()
    except ImportError:
        return False


def optim_wrapper_cfg(runner_cfg: dict[str, Any]) -> dict[str, Any]:
    """The optimizer wrapper config: defaults, the recipe's ``optim_wrapper``, ``precision`` and
    ``accumulate`` (gradient accumulation steps; mmengine scales the loss by 1/accumulate)."""
    cfg = copy.deepcopy(DEFAULT_OPTIM)
    user = runner_cfg.pop("optim_wrapper", {}) or {}
    cfg["optimizer"].update(user.pop("optimizer", {}) or {})
    cfg["paramwise_cfg"].update(user.pop("paramwise_cfg", {}) or {})
    cfg.update(user)
    precision = runner_cfg.pop("precision", "auto")
    if precision not in PRECISIONS:
        raise RecipeError(f"runner.precision is {precision!r}; allowed: {', '.join(PRECISIONS)}")
    if precision == "bf16" or (precision == "auto" and bf16_supported()):
        cfg.update(type="AmpOptimWrapper", dtype="bfloat16")
    elif precision == "fp16":
        cfg.update(type="AmpOptimWrapper", dtype="float16")
    accumulate = int(runner_cfg.pop("accumulate", None) or 1)  # null: not set
    if accumulate > 1:
        cfg["accumulative_counts"] = accumulate
    return cfg


def default_schedule(train_cfg: dict[str, Any], warmup: int, accumulate: int = 1) -> list[dict[str, Any]]:
    """Linear warmup for ``warmup`` optimizer steps, then cosine decay to the last step.

    Schedules step once per optimizer step (:class:`~vtgcore.mm.hooks.OptimStepParamSchedulerHook`),
    so their length is ``max_iters / accumulate``.
    """
    total = max(1, int(train_cfg.get("max_iters", 1000)) // max(1, accumulate))
    warmup = max(0, min(warmup, total - 1))
    schedule: list[dict[str, Any]] = []
    if warmup:
        schedule.append({"type": "LinearLR", "start_factor": 1e-3, "by_epoch": False, "begin": 0, "end": warmup})
    schedule.append({"type": "CosineAnnealingLR", "by_epoch": False, "begin": warmup, "end": total,
                     "T_max": total - warmup, "eta_min_ratio": 0.01})
    return schedule


def feature_cache(vtg: Any, recipe: DictConfig) -> Any:
    """The recipe's cache (``data.feature_cache``): encoder outputs when the encoder is frozen,
    decoded frames when it trains; None without the setting."""
    if not recipe.data.feature_cache:
        return None
    from vtgcore.data.feature_cache import FeatureCache

    enc = vtg.encoder
    frozen = not any(p.requires_grad for p in enc.parameters())
    spec = OmegaConf.to_container(recipe.model.encoder, resolve=True)
    return FeatureCache(recipe.data.feature_cache, enc if frozen else None,
                        {"name": spec["name"], "params": spec["params"]} if frozen else None,
                        image_size=enc.image_size, mean=enc.mean, std=enc.std, reader=recipe.data.reader,
                        frame_times=str(recipe.data.get("frame_times", "container")))


def train_loader(model: Any, recipe: DictConfig, video_root: Optional[str], where: str = "") -> DataLoader:
    """The training data loader of a recipe (``data.train``: annotation, batch_size, num_workers,
    skip_broken, crop, sources; or ``datasets: [{annotation, ratio, video_root?, sources?}]`` to mix
    several sets, see :mod:`vtgcore.mm.mixing`)."""
    from mmengine.logging import print_log

    from vtgcore.mm.datasets import EpochIndexSampler, VTGInstructDataset, vtg_collate
    from vtgcore.mm.mixing import MixedInstructDataset, MixSampler, check_train_data, dataset_videos

    data = recipe.data
    train = OmegaConf.to_container(data.train, resolve=True)
    grpo = recipe.training.objective == "grpo"
    if grpo:
        from vtgcore.config.train_data import check_prompt_data

        check_prompt_data(train, f"{where}: data.train" if where else "data.train")
    else:
        check_train_data(train, f"{where}: data.train" if where else "data.train")
    enc = model.vtg.encoder
    common = dict(num_frames=data.num_frames, sampling=data.train_sampling, reader=data.reader,
                  image_size=enc.image_size, resize=train.get("resize", "squash"), crop=train.get("crop", False),
                  mean=enc.mean, std=enc.std, skip_broken=train.get("skip_broken", False), seed=recipe.seed,
                  frame_times=str(data.get("frame_times", "container")))
    if grpo:  # prompts and ground truth from an evaluation-format annotation
        from vtgcore.mm.datasets import VTGPromptDataset

        dataset: Any = VTGPromptDataset(annotation=train["annotation"], format=train.get("format"),
                                        video_root=video_root or data.video_root, **common)
        sampler: Any = EpochIndexSampler(dataset, shuffle=True, seed=recipe.seed)
    elif train.get("datasets") is not None:
        dataset = MixedInstructDataset(train["datasets"], video_root=video_root or data.video_root, **common)
        sampler = MixSampler(dataset, shuffle=True, seed=recipe.seed)
        print_log(f"training data mix: {dataset.describe()}", logger="current")
    else:
        dataset = VTGInstructDataset(annotation=train["annotation"], video_root=video_root or data.video_root,
                                     sources=train.get("sources"), **common)
        sampler = EpochIndexSampler(dataset, shuffle=True, seed=recipe.seed)
    cache = feature_cache(model.vtg, recipe)
    if cache is not None:
        if train.get("crop", False) and cache.encoder is not None:
            raise RecipeError("data.train.crop changes pixels per sample; it cannot be used with cached encoder features")
        cache.fill(dataset_videos(dataset), progress=_log_progress("feature cache"))
        dataset.feature_cache = cache
    workers = int(train.get("num_workers", 0))
    return DataLoader(dataset, batch_size=int(train.get("batch_size", DEFAULT_BATCH_SIZE)), num_workers=workers,
                      sampler=sampler, collate_fn=vtg_collate, persistent_workers=False,
                      pin_memory=torch.cuda.is_available())


def _init_cpu_process_group() -> None:
    """Start the gloo process group under torchrun on a machine without CUDA.

    mmengine's own initialisation calls ``torch.cuda.set_device`` unless it finds an NPU, MLU or
    MUSA, which fails on CPU-only hosts; the Runner skips it when a group already exists.
    """
    import torch.distributed as dist
    from mmengine.device import is_npu_available

    if dist.is_available() and not dist.is_initialized() and not is_npu_available():
        dist.init_process_group(backend="gloo")


def _log_progress(what: str):
    """A progress callback ``(done, total, **counts)`` that logs about ten lines, with the rate and the time left."""
    import time

    from mmengine.logging import print_log

    from vtgcore.utils.progress import rate_text

    start = time.perf_counter()

    def progress(done: int, total: int, **counts: int) -> None:
        if done == total or done % max(1, total // 10) == 0:
            elapsed = time.perf_counter() - start
            extra = "".join(f", {k} {v} ({v / max(elapsed, 1e-9):.0f}/s)" for k, v in counts.items())
            print_log(f"{what}: {done}/{total} videos ({rate_text(done, total, elapsed, 'video')}{extra})",
                      logger="current")

    return progress


FROZEN_NOISE = "is skipped since its requires_grad=False"
"""mmengine's optimizer constructor warns once per frozen parameter (hundreds of lines for EVA-ViT-g);
the trainable-parameter table says the same in a few lines, so the console leaves these out."""


def _not_frozen_noise(record: Any) -> bool:
    return FROZEN_NOISE not in str(record.getMessage())


def quiet_console(logger: Any) -> None:
    """Tidy an mmengine logger's console; its log file keeps everything.

    The per-parameter "skipped since its requires_grad=False" warnings never reach the console.
    With ``--quiet`` (:func:`vtgcore.utils.progress.is_quiet`) only warnings and errors do, and on stderr,
    so that stdout holds only a command's results.
    """
    import logging
    import sys

    from vtgcore.utils.progress import is_quiet

    for handler in logger.handlers:
        if type(handler) is not logging.StreamHandler:  # the console, not the FileHandler subclass
            continue
        if _not_frozen_noise not in handler.filters:
            handler.addFilter(_not_frozen_noise)
        if is_quiet():
            handler.setLevel(max(handler.level, logging.WARNING))
            handler.setStream(sys.stderr)


@functools.cache
def _runner_class() -> type:
    """mmengine's ``Runner`` whose console logging follows ``--quiet`` from its first line."""
    from mmengine.runner import Runner

    class VTGRunner(Runner):
        def build_logger(self, log_level: Any = "INFO", log_file: Optional[str] = None, **kwargs: Any) -> Any:
            logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
            quiet_console(logger)
            return logger

    return VTGRunner


_RUNNERS = itertools.count(1)


def _unique_experiment_name(name: str) -> str:
    """``name`` for the first runner of this process, ``name-2``, ``name-3`` ... after it.

    mmengine names its logger and visualizer instances ``<experiment_name>_<second>``; two runners
    built in the same second in one process (a resumed run, tests, sweeps) would share the first's
    logger, whose console handler may write to a stream that is gone. Every process builds its
    runners in the same order, so the ranks of a distributed run agree on the name.
    """
    count = next(_RUNNERS)
    return name if count == 1 else f"{name}-{count}"


def build_runner(recipe: DictConfig, *, work_dir: Optional[str] = None, launcher: str = "none",
                 resume: bool | str = False, load_from: Optional[str] = None,
                 video_root: Optional[str] = None, where: str = "", trust_remote_code: bool = False) -> Any:
    """Build the mmengine ``Runner`` for ``vtg train``.

    Args:
        recipe: a loaded recipe.
        work_dir: overrides ``recipe.work_dir``.
        launcher: ``none``, ``pytorch`` (torchrun), ``slurm`` or ``mpi``.
        resume: resume from the last complete checkpoint of the work dir (or a given folder).
        load_from: a vtgcore checkpoint whose weights start the run (fine-tuning).
        video_root: overrides ``data.video_root``.
        where: the recipe file, named in errors (default: the experiment name).
        trust_remote_code: the caller (``vtg train --trust-remote-code``) allows the recipe's
            ``trust_remote_code: true``; without it such a recipe is refused before anything is built.

    Raises:
        RecipeError: the ``runner`` section names a key ``vtg train`` does not use or a ``type``
            no registry holds (nothing is imported by name), or asks for a model folder's code
            without ``trust_remote_code``.
    """
    import vtgcore.mm  # noqa: F401  (registers everything)

    from vtgcore.checkpoint import frozen_component_files, load_checkpoint
    from vtgcore.mm.grpo import VTGGRPOModel
    from vtgcore.mm.model import VTGModel

    from vtgcore.config.runner_section import check_recipe_objects, check_runner_values
    from vtgcore.mm.registered_types import check_registered_types

    work_dir = work_dir or recipe.work_dir
    runner_cfg: dict[str, Any] = OmegaConf.to_container(recipe.runner, resolve=True)
    where = where or recipe.experiment_name
    from vtgcore.build import check_remote_code

    remote_code = check_remote_code(recipe.model, trust_remote_code, where)  # before anything is built
    check_recipe_objects({"runner": runner_cfg}, where)
    check_runner_values(runner_cfg, where)  # as at load; the recipe may have been changed since
    check_registered_types(runner_cfg, where)  # before mmengine would import an unknown type by name
    if launcher == "pytorch" and not torch.cuda.is_available():
        _init_cpu_process_group()
    batch_size = int(OmegaConf.to_container(recipe.data.train, resolve=True).get("batch_size", DEFAULT_BATCH_SIZE))
    derived = apply_global_batch(runner_cfg, batch_size, launcher)  # before the model: fail fast
    train_cfg = {"type": "IterBasedTrainLoop", "max_iters": 1000, "val_interval": 10**9}
    train_cfg.update(runner_cfg.pop("train_cfg", {}) or {})
    by_epoch = train_cfg.pop("by_epoch", False)  # mmengine refuses both `type` and `by_epoch`
    if by_epoch:
        raise RecipeError(f"{where}: runner.train_cfg.by_epoch: true is not supported: vtg train runs an "
                          "iteration-based loop (set runner.train_cfg.max_iters)")
    warmup = int(runner_cfg.pop("warmup_iters", 0))
    checkpoint_interval = int(runner_cfg.pop("checkpoint_interval", max(1, int(train_cfg["max_iters"]))))
    log_interval = int(runner_cfg.pop("log_interval", 10))
    optim = optim_wrapper_cfg(runner_cfg)
    schedule = runner_cfg.pop("param_scheduler", None) or default_schedule(
        train_cfg, warmup, optim.get("accumulative_counts", 1))

    grpo = recipe.training.objective == "grpo"
    if grpo and int(optim.get("accumulative_counts", 1)) > 1:
        raise RecipeError(f"{where}: runner.accumulate (or global_batch_size) above 1 is not used with "
                          "training.objective grpo: one iteration is one batch of prompts, sampled and optimised "
                          "training.grpo.passes times; set data.train.batch_size instead")
    inherited = frozen_component_files(recipe, load_from) if load_from else []
    model = (VTGGRPOModel if grpo else VTGModel)(recipe, trust_remote_code=trust_remote_code)
    if load_from:
        load_checkpoint(model.vtg, load_from)
    if grpo:
        model.keep_reference()  # the policy the run starts from (a resume restores the saved one)
        model.log_interval = log_interval
        model.samples_file = Path(work_dir) / "grpo_samples.jsonl"
    default_hooks = {
        "timer": {"type": "IterTimerHook"},
        "logger": {"type": "LoggerHook", "interval": log_interval},
        "param_scheduler": {"type": "OptimStepParamSchedulerHook"},
        "checkpoint": {"type": "VTGCheckpointHook", "interval": checkpoint_interval, "resume": resume},
        "sampler_seed": {"type": "DistSamplerSeedHook"},
    }
    default_hooks.update(runner_cfg.pop("default_hooks", {}) or {})
    custom_hooks = [{"type": "TrainableTableHook"}, {"type": "SkipReportHook"}] + (runner_cfg.pop("custom_hooks", []) or [])
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    env_cfg = {"cudnn_benchmark": False, "dist_cfg": {"backend": backend}}
    env_cfg.update(runner_cfg.pop("env_cfg", {}) or {})
    wrapper = runner_cfg.pop("model_wrapper_cfg", None)
    strategy = runner_cfg.pop("strategy", "ddp")
    if strategy not in STRATEGIES:  # FSDP included: check_runner_values refused it above
        raise RecipeError(f"runner.strategy is {strategy!r}; allowed: {', '.join(STRATEGIES)} (DeepSpeed runs "
                          "through mmengine's FlexibleRunner, not wired yet)")
    if grpo and launcher != "none":  # the policy's forward through DDP; heads only SFT losses use are idle
        # (scoped: mmengine's Runner looks the type up in its root registry, which ignores the default scope)
        wrapper = {"broadcast_buffers": False, "find_unused_parameters": True,
                   **({} if torch.cuda.is_available() else {"device_ids": None}), **(wrapper or {}),
                   "type": "vtgcore.GRPODistributedDataParallel"}  # the recipe's other settings kept
    elif wrapper is None and launcher != "none" and not torch.cuda.is_available():
        wrapper = {"type": "MMDistributedDataParallel", "device_ids": None, "broadcast_buffers": False}
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    runner = _runner_class()(
        model=model, work_dir=work_dir, experiment_name=_unique_experiment_name(recipe.experiment_name),
        train_dataloader=train_loader(model, recipe, video_root, where), train_cfg=train_cfg,
        optim_wrapper=optim, param_scheduler=schedule, default_hooks=default_hooks, custom_hooks=custom_hooks,
        launcher=launcher, env_cfg=env_cfg, randomness={"seed": recipe.seed, "deterministic": False},
        default_scope="vtgcore", log_processor={"window_size": log_interval, "by_epoch": False},
        cfg={"model_wrapper_cfg": wrapper} if wrapper else None, **runner_cfg)
    if derived:
        runner.logger.info("derived from the recipe: " + ", ".join(f"{k} {v}" for k, v in derived.items()))
    for line in inherited:
        runner.logger.info(f"--load-from: {line}")
    for key in remote_code:
        params = OmegaConf.select(recipe, key.rsplit(".", 1)[0]) or {}
        runner.logger.warning(f"{key} is true (set by the recipe, allowed by --trust-remote-code): the Python "
                              f"code of {params.get('path') or 'its model folder'} was allowed to run")
    return runner
