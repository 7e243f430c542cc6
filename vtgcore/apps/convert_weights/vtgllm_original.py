"""Convert the released VTG-LLM checkpoint (``vtgllm.pth``, LAVIS layout) to a vtgcore checkpoint folder.

The original file is ``torch.save({"model": state_dict, "optimizer": ..., "config": ..., "scaler": ...,
"epoch": ...})`` (or the bare state dict) of the whole ``VTGLLM`` module, frozen weights included
(``vtgllm-original.md`` section 1.9). It is read with ``torch.load(weights_only=True)``; a file that
would run code when unpickled is refused. Only the ``model`` entry is used: the optimizer state,
config, scaler and epoch are training leftovers.

Key mapping (original -> this platform's :class:`~vtgcore.model.VideoLLM`):

=============================================  ===================================================
``visual_encoder.*``, ``ln_vision.*``,          ``encoder.*`` through the encoder plugin's own
``Qformer.bert.*``, ``query_tokens``            :func:`lavis_to_module_key` (``eva_vit_g_qformer``)
``video_frame_position_embedding.weight``       ``time_embedding.frame_index.weight`` (a table with
                                                fewer rows, e.g. Video-LLaMA's 32, is widened by
                                                nearest as the original's 32 -> 96)
``video_time_position_embedding``               ``time_embedding.weight`` (untrained all-zero rows
                                                filled as ``interpolation`` says)
``sampler.slots``                               ``compressor.slots`` (same (Dv, K) layout)
``llama_proj.weight`` / ``.bias``               ``projector.proj.weight`` / ``.bias``
``llama_model.base_model.model.<hf name>``      ``llm.model.<hf name>`` with peft's names on both
(LoRA on) or ``llama_model.<hf name>`` (off)    sides reduced to one form (``q_proj.base_layer.weight``
                                                = ``q_proj.weight``, ``lora_A.default.weight`` =
                                                ``lora_A.weight``), so any peft version matches
=============================================  ===================================================

Vocabulary: the original's rows are the LLaMA vocabulary (B rows), then ``<ImageHere>`` (row B),
then ``<TIME_ZERO>`` .. ``<TIME_NINE>``, ``<TIME_DOT>`` (rows B+1 .. B+11). The rows of
``embed_tokens`` and ``lm_head`` are moved by token string to the recipe tokenizer's ids
(``<ImageHere>`` -> the recipe's ``model.video_token``), never by position; the counts must agree.

Strictness: every original key must land on a model tensor or be in :data:`ORIGINAL_IGNORED` /
the encoder's ``LAVIS_IGNORED`` (reported by reason, never dropped silently); every tensor the file
must provide (the whole encoder, the time tables, the slots, the projector, the LoRA adapters and
embeddings/head) must be there; shapes must match. The LLM's frozen base layers are taken from the
file when it has them (then all of them), else they stay as the recipe's LLM ``path`` loaded them.

The converted folder holds **every mapped tensor, frozen ones included** (not only the trainable
ones, as a training checkpoint does): the released file's frozen ViT and LLM weights are the state
the paper evaluated, so the folder does not depend on separately downloaded LAVIS files.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from vtgcore.errors import CheckpointError, VTGError
from vtgcore_plugins.encoders.eva_vit_g_qformer import (EvaViTGQFormer, lavis_ignore_reason, lavis_to_module_key,
                                                         read_weight_file)
from vtgcore_plugins.llms.hf_causal_lm import HFCausalLM
from vtgcore_plugins.time_embeddings.abs_second_table import INTERPOLATIONS, fill_untrained_rows
from vtgcore_plugins.time_codecs.absolute_time_tokens import TIME_TOKENS
from vtgcore_plugins.time_embeddings.frame_index import FrameIndexTable, nearest_rows

#: The tokens the original added after the LLaMA vocabulary, in id order (ids B, B+1, ..., B+11).
ORIGINAL_IMAGE_TOKEN = "<ImageHere>"
ORIGINAL_ADDED_TOKENS: tuple[str, ...] = (ORIGINAL_IMAGE_TOKEN, *TIME_TOKENS)

#: The recipe used when none is given: this path in the working directory, else the shipped recipe
#: of that name (:func:`vtgcore.config.loader.resolve_recipe_path`).
DEFAULT_RECIPE = "recipes/vtgllm/eval_charades.yaml"

#: Original keys deliberately not converted, each with the reason (besides the encoder's
#: ``LAVIS_IGNORED``: Q-Former text embeddings, text-side feed-forward, MLM head, position-id buffer).
#: The optimizer, scaler, config and epoch entries beside ``model`` are never read.
ORIGINAL_IGNORED: tuple[tuple[str, str], ...] = (
    (r"^video_Qformer\.", "Video-LLaMA's video Q-Former (VTG-LLM never uses it: use_video_qformer is off)"),
    (r"^video_query_tokens$", "Video-LLaMA's video Q-Former queries (unused by VTG-LLM)"),
    (r"^llama_model\..*\.rotary_emb\.inv_freq$", "RoPE frequency buffer of older transformers (recomputed)"),
)

_FIXED = {
    "llama_proj.weight": "projector.proj.weight",
    "llama_proj.bias": "projector.proj.bias",
    "sampler.slots": "compressor.slots",
    "video_time_position_embedding": "time_embedding.weight",
}
_FRAME_TABLE = "video_frame_position_embedding.weight"
_LLM_FILE = "llama_model."
_PEFT_WRAP = "base_model.model."
_LLM_OURS = "llm.model."


def canonical_llm_key(name: str) -> str:
    """An HF LLM parameter name with peft's version-dependent parts removed.

    ``q_proj.base_layer.weight`` -> ``q_proj.weight``; ``lora_A.default.weight`` -> ``lora_A.weight``.
    """
    name = name.replace(".base_layer.", ".")
    return re.sub(r"\.(lora_[AB])\.default\.", r".\1.", name)


def original_ignore_reason(key: str, vit_depth: Optional[int] = None, text_input: bool = False) -> Optional[str]:
    """Why an original key is deliberately not converted (None: it must land on a model tensor).
    With ``text_input`` (the Q-Former text ablation) the Q-Former's text parts are converted too."""
    for pattern, reason in ORIGINAL_IGNORED:
        if re.search(pattern, key):
            return reason
    if vit_depth is not None:  # the encoder is the LAVIS one: its own ignore list applies
        return lavis_ignore_reason(key, vit_depth, text_input)
    return None


def _names(keys: Sequence[str], limit: int = 12) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def vocabulary_index(tokenizer: Any, file_rows: int, model_rows: int, video_token: str,
                     where: str = "VTG-LLM checkpoint") -> tuple[torch.Tensor, dict[str, list]]:
    """For each of our token ids, the row of the original table holding the same token string.

    The original's rows are B base tokens, ``<ImageHere>`` and the 11 time tokens (B = file rows - 12).
    The base tokens are the same LLaMA vocabulary at the same ids (the recipe must use the
    original's tokenizer); the 12 added tokens are found in our tokenizer by string (``<ImageHere>``
    as ``video_token``).

    Returns:
        ``index`` (our id -> original row) and ``{original token: [original id, our token, our id]}``.

    Raises:
        CheckpointError: the row counts disagree, or an added token is missing from our tokenizer or
            sits inside the base vocabulary.

    Shape:
        -> index (model_rows,)
    """
    added = len(ORIGINAL_ADDED_TOKENS)
    base = file_rows - added
    ours = len(tokenizer)
    if model_rows != ours:
        raise CheckpointError(f"{where}: the model's embedding has {model_rows} rows but its tokenizer "
                              f"{ours} tokens; cannot move rows by token")
    if file_rows != model_rows:
        raise CheckpointError(
            f"{where}: the file's embeddings have {file_rows} rows ({base} base tokens + {ORIGINAL_IMAGE_TOKEN} + "
            f"{added - 1} time tokens) but the recipe's tokenizer has {ours} tokens; it must hold the same base "
            "vocabulary plus the video token and the 11 time tokens (the original's LLaMA tokenizer and the "
            "absolute_time_tokens codec)")
    vocab = tokenizer.get_vocab()
    table: dict[str, list] = {}
    index = torch.arange(model_rows)
    targets = []
    for k, token in enumerate(ORIGINAL_ADDED_TOKENS):
        our_token = video_token if token == ORIGINAL_IMAGE_TOKEN else token
        if our_token not in vocab:
            raise CheckpointError(f"{where}: the recipe's tokenizer has no {our_token!r} for the original's {token!r}; "
                                  "use the absolute_time_tokens codec")
        our_id = int(vocab[our_token])
        if our_id < base:
            raise CheckpointError(f"{where}: the recipe's tokenizer has {our_token!r} at id {our_id}, inside the "
                                  f"original's {base}-token base vocabulary: not the original's tokenizer")
        index[our_id] = base + k
        targets.append(our_id)
        table[token] = [base + k, our_token, our_id]
    if sorted(targets) != list(range(base, base + added)):
        raise CheckpointError(f"{where}: the added tokens do not fill ids {base}..{base + added - 1} of the recipe's "
                              f"tokenizer (got {sorted(targets)})")
    return index, table


def map_original_state(state: dict[str, torch.Tensor], model: torch.nn.Module, tokenizer: Any, video_token: str,
                       interpolation: str = "none", *, where: str = "VTG-LLM checkpoint",
                       report: Optional[dict[str, Any]] = None) -> dict[str, torch.Tensor]:
    """Map an original VTG-LLM state dict onto ``model``'s tensor names (pure: ``model`` is only read).

    Args:
        state: the original state dict (already unwrapped from ``{"model": ...}``).
        model: a :class:`~vtgcore.model.VideoLLM` built from the target recipe (names and shapes).
        tokenizer: its tokenizer (with the time tokens and the video token added).
        video_token: the recipe's video placeholder, which takes ``<ImageHere>``'s row.
        interpolation: fill the time table's untrained (all-zero) rows: ``none``, ``linear`` or
            ``legacy_swapped`` (the original's formula, bugs included), as
            :func:`~vtgcore_plugins.time_embeddings.abs_second_table.fill_untrained_rows`.
        where: the file, for messages.
        report: filled with what was done (ignored keys by reason, vocabulary moves, resizes ...).

    Returns:
        model tensor name -> tensor (the file's dtype), shapes equal to the model's.

    Raises:
        CheckpointError: one line naming unmapped original keys, tensors the file should provide and
            lacks, duplicates and shape mismatches.
    """
    if interpolation not in INTERPOLATIONS:
        raise CheckpointError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    report = {} if report is None else report
    own = model.state_dict()
    # the original's encoder is the first-party LAVIS one: its keys map only onto that plugin
    encoder = model.encoder if isinstance(model.encoder, EvaViTGQFormer) else None
    vit_depth = None if encoder is None else encoder.vit_depth
    text_input = encoder is not None and encoder.text_input
    llm_names = {canonical_llm_key(k[len(_LLM_OURS):]): k for k in own if k.startswith(_LLM_OURS)}
    frame_target = "time_embedding.frame_index.weight"
    if frame_target not in own and isinstance(model.time_embedding, FrameIndexTable):
        frame_target = "time_embedding.weight"  # the "no absolute time" ablation
    embed_names = _embedding_names(model)

    mapped: dict[str, torch.Tensor] = {}
    source: dict[str, str] = {}
    ignored: dict[str, list[str]] = {}
    unexpected: list[str] = []
    duplicates: list[str] = []
    for key, tensor in state.items():
        reason = original_ignore_reason(key, vit_depth, text_input)
        if reason is not None:
            ignored.setdefault(reason, []).append(key)
            continue
        target = _target(key, llm_names, frame_target, vit_depth)
        if target is None or target not in own:
            unexpected.append(key)
            continue
        if target in mapped:
            duplicates.append(f"{source[target]} and {key}")
            continue
        mapped[target] = tensor
        source[target] = key

    # what the file must provide: everything but the LLM's frozen base layers, which are all-or-none
    base_llm = {k for k in own if k.startswith(_LLM_OURS) and "lora_" not in k and k not in embed_names}
    required = set(own) - base_llm
    llm_from_file = bool(base_llm & set(mapped))
    if llm_from_file:
        required |= base_llm
    missing = sorted(required - set(mapped))

    # shape adjustments: frame table rows, vocabulary order, time-table filling
    if frame_target in mapped:
        table, rows = mapped[frame_target], own[frame_target].shape[0]
        if table.ndim == 2 and table.shape[1] == own[frame_target].shape[1] and table.shape[0] < rows:
            mapped[frame_target] = nearest_rows(table, rows)
            report["frame_table_resized"] = [int(table.shape[0]), int(rows)]
    vocab_done = False
    for name in embed_names:
        if name not in mapped or mapped[name].ndim != 2 or mapped[name].shape[1] != own[name].shape[1]:
            continue
        index, moves = vocabulary_index(tokenizer, mapped[name].shape[0], own[name].shape[0], video_token, where)
        mapped[name] = mapped[name][index]
        if not vocab_done:
            report["vocabulary"] = {"rows": int(own[name].shape[0]), "moved": moves}
            vocab_done = True
    if "time_embedding.weight" in mapped and source["time_embedding.weight"] == "video_time_position_embedding":
        table = mapped["time_embedding.weight"]
        trained = int((table != 0).any(dim=1).sum()) if table.ndim == 2 else 0
        mapped["time_embedding.weight"] = fill_untrained_rows(table, interpolation) if table.ndim == 2 else table
        report["time_table"] = {"rows": int(table.shape[0]), "trained_rows": trained, "interpolation": interpolation}

    wrong = [f"{source[k]} {tuple(t.shape)} vs {k} {tuple(own[k].shape)}"
             for k, t in mapped.items() if tuple(t.shape) != tuple(own[k].shape)]
    if missing or unexpected or duplicates or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) (original names): "
                         + _names([_original_name(k, frame_target) for k in missing]))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) that map to nothing in the recipe's model: "
                         + _names(unexpected))
        if duplicates:
            parts.append(f"{len(duplicates)} key(s) given twice (two peft layouts in one file?): {_names(duplicates)}")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatch(es) (file vs model): {_names(wrong)}")
        if _FRAME_TABLE in unexpected:
            parts.append("the recipe has no frame-position table: set model.time_embedding.params.max_frames (96)")
        if any("lora_" in k for k in missing) and not any("lora_" in k for k in state):
            parts.append("the file has no LoRA adapters: use a recipe whose llm is not 'trainable: lora'")
        if any("lora_" in k for k in unexpected) and not any("lora_" in k for k in own):
            parts.append("the recipe's LLM has no LoRA adapters: set model.llm.trainable=lora with the original's r")
        raise CheckpointError(f"{where}: " + "; ".join(parts))
    report["ignored"] = {reason: len(keys) for reason, keys in ignored.items()}
    report["ignored_keys"] = sorted(k for keys in ignored.values() for k in keys)
    report["mapped"] = len(mapped)
    report["llm_base_weights"] = "file" if llm_from_file else "recipe"
    return mapped


def _embedding_names(model: torch.nn.Module) -> list[str]:
    """State-dict names of the LLM's input embedding and (untied) output head."""
    if not isinstance(model.llm, HFCausalLM):  # the original's LLaMA maps onto hf_causal_lm only
        return []
    llm = model.llm.model
    wanted = [m.weight for m in (llm.get_input_embeddings(), llm.get_output_embeddings()) if m is not None]
    names = []
    for name, param in model.named_parameters(remove_duplicate=False):
        if any(param is w for w in wanted) and name not in names:
            names.append(name)
    return names


def _target(key: str, llm_names: dict[str, str], frame_target: str, vit_depth: Optional[int]) -> Optional[str]:
    if key in _FIXED:
        return _FIXED[key]
    if key == _FRAME_TABLE:
        return frame_target
    if key.startswith(_LLM_FILE):
        rest = key[len(_LLM_FILE):]
        rest = rest[len(_PEFT_WRAP):] if rest.startswith(_PEFT_WRAP) else rest
        return llm_names.get(canonical_llm_key(rest))
    if vit_depth is not None:
        ours = lavis_to_module_key(key)
        return None if ours is None else "encoder." + ours
    return None


def _original_name(ours: str, frame_target: str) -> str:
    """The original key expected for one of our tensors (for messages)."""
    from vtgcore_plugins.encoders.eva_vit_g_qformer import module_to_lavis_key

    fixed = {v: k for k, v in _FIXED.items()}
    fixed[frame_target] = _FRAME_TABLE
    if ours in fixed:
        return fixed[ours]
    if ours.startswith(_LLM_OURS):
        return _LLM_FILE + _PEFT_WRAP + canonical_llm_key(ours[len(_LLM_OURS):])
    if ours.startswith("encoder."):
        try:
            return module_to_lavis_key(ours[len("encoder."):])
        except KeyError:
            pass
    return f"(for {ours})"


def sha256_file(path: str | Path, chunk: int = 1 << 24) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def default_recipe() -> Path:
    """:data:`DEFAULT_RECIPE` in the working directory, else the shipped one.

    Raises:
        VTGError: it does not exist (pass a recipe).
    """
    from vtgcore.config.loader import resolve_recipe_path

    path = resolve_recipe_path(DEFAULT_RECIPE)
    if path.is_file():
        return path
    raise VTGError(f"convert: no recipe given and the default {DEFAULT_RECIPE} does not exist; pass --recipe "
                   "(a recipe of the paper's model: eva_vit_g_qformer, abs_second_table with max_frames, slot, "
                   "linear, LLaMA-2 with LoRA, absolute_time_tokens)")


def _build_recipe(recipe: DictConfig, interpolation: str) -> tuple[DictConfig, list[str]]:
    """The recipe the model is built from and written with: the converted folder holds the whole
    encoder (so LAVIS weight files are not needed) and, when the time table was filled here, the
    eval-time filling is switched off."""
    recipe = copy.deepcopy(recipe)
    changes = []
    params = recipe.model.encoder.params
    for key in ("vit_checkpoint", "qformer_checkpoint"):
        if key in params and params[key] is not None:
            OmegaConf.update(recipe, f"model.encoder.params.{key}", None, force_add=True)
            changes.append(f"model.encoder.params.{key}=null (the converted weights hold the whole encoder)")
    if recipe.model.get("init_from"):
        recipe.model.init_from = None
        changes.append("model.init_from=null (the VTG-LLM checkpoint replaces the starting weights)")
    if interpolation != "none" and "interpolation" in recipe.model.time_embedding.params:
        if recipe.model.time_embedding.params.interpolation != "none":
            changes.append("model.time_embedding.params.interpolation=none (the table was filled at conversion)")
        OmegaConf.update(recipe, "model.time_embedding.params.interpolation", "none")
    return recipe, changes


def convert_vtgllm_original(in_path: str | Path, out_dir: str | Path, recipe: Optional[str | Path] = None,
                            interpolation: str = "none", overrides: Sequence[str] = (),
                            progress: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
    """Convert a released VTG-LLM checkpoint into a vtgcore checkpoint folder.

    Builds the recipe's model, maps the file with :func:`map_original_state`, loads it with shape
    checks and saves every mapped tensor (frozen ones included) with
    :func:`vtgcore.checkpoint.save_checkpoint`, plus ``recipe.yaml`` (the build recipe) and a
    manifest holding the source file's sha256 and the interpolation used.

    Args:
        in_path: the original ``.pth`` file.
        out_dir: the checkpoint folder to write.
        recipe: the recipe of the target model (default: :data:`DEFAULT_RECIPE`).
        interpolation: ``none``, ``linear`` or ``legacy_swapped`` (see :func:`map_original_state`).
        overrides: recipe overrides.
        progress: called with a short message at each stage.

    Returns:
        The report (also in ``manifest.json`` under ``conversion``).

    Raises:
        CheckpointError: the file is missing, refused, unreadable or does not match the recipe.
        RecipeError: the recipe is invalid.
    """
    from vtgcore.build import build_model
    from vtgcore.checkpoint import save_checkpoint
    from vtgcore.config.loader import load_recipe

    say = progress or (lambda message: None)
    if interpolation not in INTERPOLATIONS:
        raise VTGError(f"convert: interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    in_path = Path(in_path)
    if not in_path.is_file():
        raise CheckpointError(f"VTG-LLM checkpoint {in_path}: file not found")
    recipe_path = Path(recipe) if recipe is not None else default_recipe()
    from vtgcore.checkpoint import MANIFEST, PLUGINS, RECIPE, WEIGHTS
    from vtgcore.utils.fileio import check_not_input

    check_not_input([Path(out_dir) / name for name in (WEIGHTS, RECIPE, PLUGINS, MANIFEST)], [in_path, recipe_path],
                    "convert vtgllm-original")
    loaded = load_recipe(recipe_path, overrides)
    build_recipe, changes = _build_recipe(loaded, interpolation)

    say(f"hashing {in_path}")
    digest = sha256_file(in_path)
    say(f"reading {in_path} (weights only)")
    state = read_weight_file(str(in_path), "VTG-LLM checkpoint")
    say(f"building the model of {recipe_path}")
    model, _ = build_model(build_recipe, where=str(recipe_path))
    say(f"mapping {len(state)} tensors")
    report: dict[str, Any] = {}
    mapped = map_original_state(state, model, model.tokenizer, model.video_token, interpolation,
                                where=f"VTG-LLM checkpoint {in_path}", report=report)
    del state
    result = model.load_state_dict(mapped, strict=False)
    if result.unexpected_keys:  # map_original_state only returns model names; kept as a guard
        raise CheckpointError(f"VTG-LLM checkpoint {in_path}: not in the model: {_names(result.unexpected_keys)}")
    own = model.state_dict()
    converted = {k: own[k] for k in mapped}
    del mapped
    say(f"saving {len(converted)} tensors to {out_dir}")
    report.update({
        "converted_from": "vtgllm-original",
        "source": str(in_path.resolve()),
        "source_sha256": digest,
        "interpolation": interpolation,
        "recipe": str(recipe_path),
        "overrides": list(overrides),
        "recipe_changes": changes,
        "saved": "every mapped tensor, frozen ones included (the released file's frozen weights are its trained state)",
    })
    manifest = {"conversion": {k: v for k, v in report.items() if k != "ignored_keys"}}
    save_checkpoint(model, out_dir, recipe=build_recipe, extra=manifest, state=converted)
    report["out_dir"] = str(out_dir)
    report["tensors"] = len(converted)
    report["parameters"] = int(sum(t.numel() for t in converted.values()))
    return report
