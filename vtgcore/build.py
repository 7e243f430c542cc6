"""Build a :class:`~vtgcore.model.VideoLLM` and its processor from a recipe."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from vtgcore.catalog import Catalog, default_catalog
from vtgcore.errors import CheckpointError, RecipeError
from vtgcore.model import VideoLLM
from vtgcore.positions import TimePositions
from vtgcore.processor import PromptConfig, VideoLLMProcessor
from vtgcore.vocab import MODULE_KINDS


def load_component_checkpoint(module: nn.Module, path: str, kind: str) -> None:
    """Load a safetensors file into one component, strictly (never unpickles).

    Raises:
        CheckpointError: the file is missing, not safetensors (a pickle is never opened), or its
            keys or shapes do not match.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise CheckpointError(f"{kind} checkpoint {path}: file not found")
    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{kind} checkpoint {path}: not a safetensors file ({first})") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())  # torch lists missing/unexpected keys and shapes on several lines
        raise CheckpointError(f"{kind} checkpoint {path}: {detail[:500]}") from None


#: The command that makes the paper recipes' ``model.init_from`` (named when the file is missing).
INIT_FROM_COMMAND = "vtg convert video-llama VL_LLaMA_2_7B_Finetuned.pth {path}"


def load_init_from(model: nn.Module, path: str, where: str = "") -> dict[str, Any]:
    """Load ``model.init_from`` (a vtgcore checkpoint folder or safetensors file) into the model.

    Only the tensors the file holds are loaded; each must exist in the model with the same shape
    (:func:`vtgcore.checkpoint.load_checkpoint`). Never unpickles.

    Returns:
        The folder's manifest (empty when there is none).

    Raises:
        CheckpointError: one line naming ``model.init_from``: the path does not exist (with the
            command that makes the paper recipes' file), or the file does not fit the model.
    """
    from vtgcore.checkpoint import load_checkpoint

    pre = f"{where}: " if where else ""
    if not Path(path).exists():
        raise CheckpointError(
            f"{pre}model.init_from: {path} not found; the paper recipes start from Video-LLaMA-2's vision-language "
            f"checkpoint, made by `{INIT_FROM_COMMAND.format(path=path)}` (or set model.init_from=null to start "
            "from scratch)")
    try:
        return load_checkpoint(model, path)
    except CheckpointError as exc:
        raise CheckpointError(f"{pre}model.init_from: {exc}") from None


#: The command-line flag that lets a recipe's ``trust_remote_code: true`` take effect.
TRUST_FLAG = "--trust-remote-code"


def remote_code_requests(spec: Any, prefix: str = "model") -> list[str]:
    """The keys of a recipe's ``model`` section that ask to run a model folder's own Python code.

    Args:
        spec: the ``model`` section (a plain container or a ``DictConfig``).
        prefix: the dotted name of ``spec``, for the keys returned.

    Returns:
        Dotted keys such as ``model.llm.params.trust_remote_code`` whose value is true (at any depth).
    """
    if isinstance(spec, DictConfig):
        spec = OmegaConf.to_container(spec, resolve=True)
    found: list[str] = []
    if isinstance(spec, dict):
        for key, value in spec.items():
            name = f"{prefix}.{key}"
            if key == "trust_remote_code" and value not in (False, None, 0, "", "false", "False"):
                found.append(name)
            else:
                found += remote_code_requests(value, name)
    elif isinstance(spec, (list, tuple)):
        for i, value in enumerate(spec):
            found += remote_code_requests(value, f"{prefix}[{i}]")
    return found


def check_remote_code(spec: Any, allowed: bool, where: str = "") -> list[str]:
    """The trust policy: a recipe (or a run folder's or checkpoint's saved recipe) alone never runs code.

    A model folder's own Python code (transformers' ``auto_map``) runs only when the recipe asks for
    it (``trust_remote_code: true``) *and* the caller allows it: ``--trust-remote-code`` on the
    command line, ``trust_remote_code=True`` in the library. A run folder or checkpoint is data
    someone may have sent you; a value inside it is never enough.

    Args:
        spec: the recipe's ``model`` section.
        allowed: the caller's explicit permission.
        where: the recipe file, named in the error.

    Returns:
        The keys that ask for remote code (empty when none does).

    Raises:
        RecipeError: a key asks for it and ``allowed`` is False (one line naming the key and the flag).
    """
    keys = remote_code_requests(spec)
    if keys and not allowed:
        pre = f"{where}: " if where else ""
        raise RecipeError(
            f"{pre}{keys[0]}: true would run the Python code of a model folder; a recipe, run folder or checkpoint "
            f"cannot turn that on by itself: pass {TRUST_FLAG} (library: trust_remote_code=True) if you trust it")
    return keys


def build_model(recipe: DictConfig, catalog: Optional[Catalog] = None, *, where: str = "",
                seed: Optional[int] = None, trust_remote_code: bool = False) -> tuple[VideoLLM, VideoLLMProcessor]:
    """Build every component the recipe names, join them, apply ``init_from``, checkpoints and trainability.

    Args:
        recipe: a recipe from :func:`vtgcore.config.loader.load_recipe`.
        catalog: plugin catalog (default: the process-wide one).
        where: the recipe file, for error messages.
        seed: seed for parameter initialisation (default: the recipe's ``seed``).
        trust_remote_code: the caller allows a recipe's ``trust_remote_code: true`` to take
            effect (:func:`check_remote_code`); the recipe's value alone never does.

    Returns:
        The model and a processor bound to its tokenizer, codec and K.

    Raises:
        RecipeError: the recipe asks for remote code and ``trust_remote_code`` is False.
    """
    from vtgcore.utils.quiet import quiet_transformers

    quiet_transformers()  # transformers' embedding-resize notes stay off stderr (vtg --debug shows them)
    catalog = catalog or default_catalog()
    spec: dict[str, Any] = OmegaConf.to_container(recipe.model, resolve=True)
    check_remote_code(spec, trust_remote_code, where)
    torch.manual_seed(recipe.seed if seed is None else seed)

    def build(kind: str, **wiring: Any) -> Any:
        return catalog.build(kind, spec[kind]["name"], spec[kind]["params"], where=where, **wiring)

    encoder = build("encoder")
    llm = build("llm")
    grounding = build("grounding", dim=encoder.out_dim, text_dim=llm.hidden_size)
    model = VideoLLM(
        encoder=encoder,
        time_embedding=build("time_embedding", dim=encoder.out_dim),
        compressor=build("compressor", dim=encoder.out_dim),
        projector=build("projector", in_dim=encoder.out_dim, out_dim=llm.hidden_size),
        llm=llm,
        time_codec=build("time_codec"),
        video_token=spec["video_token"],
        encoder_chunk_size=spec["encoder_chunk_size"],
        grounding=grounding,
        time_positions=_time_positions(spec.get("time_positions")),
        compressor_name=str(spec["compressor"]["name"]),
    )
    # an encoder that writes frame times as text (Q-Former text input) writes them with the
    # recipe's codec and gets its tokens (default: nothing); before the checkpoints, which hold the
    # grown rows
    codec = model.time_codec
    encoder.set_time_writer(codec.encode, codec.special_tokens(), codec.token_init())
    # the model-level starting weights (the original's ``ckpt``: after the ViT, Q-Former and LLM
    # files, which the components loaded when built), then the components' own checkpoints
    if spec.get("init_from"):
        load_init_from(model, spec["init_from"], where)
    for kind in MODULE_KINDS:
        module: nn.Module = getattr(model, kind)
        if spec[kind]["checkpoint"]:
            load_component_checkpoint(module, spec[kind]["checkpoint"], kind)
        if spec[kind]["trainable"] == "frozen":
            module.requires_grad_(False)
        elif spec[kind]["trainable"] == "lora":
            lora = spec[kind]["lora"]
            model.llm.apply_lora(lora["r"], lora["alpha"], lora["dropout"], lora["target_modules"],
                                 lora["extra_trainable"])
    processor = VideoLLMProcessor(model.tokenizer, model.time_codec, model.num_video_tokens,
                                  video_token=spec["video_token"], prompt=PromptConfig(**spec["prompt"]),
                                  frame_groups=functools.partial(_frame_groups, model.compressor,
                                                                 model.encoder.tokens_per_frame),
                                  compressor=str(spec["compressor"]["name"]))
    return model, processor


def _frame_groups(compressor: Any, tokens_per_frame: int, num_frames: int) -> Optional[list[tuple[int, int]]]:
    """The compressor's frame groups for ``num_frames`` frames (the processor's ``frame_groups``)."""
    return compressor.frame_groups(num_frames, tokens_per_frame)


def _time_positions(spec: Optional[dict[str, Any]]) -> Optional[TimePositions]:
    """The model's time-position setting from ``model.time_positions`` (None: off)."""
    if not spec or not spec.get("enabled"):
        return None
    return TimePositions(rate=float(spec.get("rate", 1.0)), spread=str(spec.get("spread", "share")))


REWARD_SPEC_KEYS = ("name", "params")
"""The keys of a reward spec (:func:`build_reward`)."""


def build_reward(spec: Any, catalog: Optional[Catalog] = None, where: str = "") -> Any:
    """Build a reward (:class:`vtgcore.interfaces.Reward`) from its spec.

    The spec is ``{"name": <reward plugin>, "params": {...}}`` (a mapping or an omegaconf node;
    ``params`` optional). The params are validated against the plugin's config like any component's,
    and the factory gets the wiring ``build_reward``: this function bound to the same catalog, so
    that a composed reward builds its parts through the catalog without importing it (plugins may
    not; ``weighted_sum`` does so with ``terms: [{name, params, weight}, ...]``).

    Args:
        spec: the reward spec.
        catalog: the catalog (default: the process-wide one).
        where: text naming the recipe file, for error messages.

    Raises:
        RecipeError: the spec is not a mapping with a string ``name`` and optional mapping
            ``params``, or it has other keys.
        UnknownPluginError, ConfigValidationError, PluginError: as :meth:`Catalog.build`.
    """
    from collections.abc import Mapping

    catalog = catalog or default_catalog()
    if isinstance(spec, DictConfig):
        spec = OmegaConf.to_container(spec, resolve=True)
    pre = f"{where}: " if where else ""
    if not isinstance(spec, Mapping):
        raise RecipeError(f"{pre}a reward spec must be a mapping {{name, params}}, got {spec!r}")
    unknown = sorted(str(k) for k in spec if k not in REWARD_SPEC_KEYS)
    if unknown:
        raise RecipeError(f"{pre}reward spec: unknown key(s) {unknown}; allowed: {list(REWARD_SPEC_KEYS)}")
    name, params = spec.get("name"), spec.get("params") or {}
    if not isinstance(name, str) or not name:
        raise RecipeError(f"{pre}reward spec: 'name' must be a reward plugin name, got {name!r}")
    if not isinstance(params, Mapping):
        raise RecipeError(f"{pre}reward {name!r}: 'params' must be a mapping, got {params!r}")

    def build_part(part: Any) -> Any:
        return build_reward(part, catalog, where)

    return catalog.build("reward", name, dict(params), where=f"{pre}reward" if where else "", build_reward=build_part)
