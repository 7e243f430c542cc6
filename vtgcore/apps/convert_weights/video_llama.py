"""Convert Video-LLaMA-2's vision-language checkpoint (``VL_LLaMA_2_7B_Finetuned.pth``) into the
starting weights of the paper's pre-training (the recipe key ``model.init_from``).

The original's pre-training config names this file as ``ckpt`` and loads it after EVA-ViT-g, the
InstructBLIP Q-Former and LLaMA-2 (``vtgllm-original.md`` sections 1.5, 1.8, 1.9): ``llama_proj``
(Linear 768 -> 4096) starts aligned to the LLM, and the frame-position table starts from
Video-LLaMA's 32 rows, widened to ``max_frame_pos`` = 96 by ``interpolate_frame_pos_embed``
(``F.interpolate(mode="nearest")`` along the frame axis: each row repeated 3 times).

What is done here, in the original's order (``vtgllm.py`` ``from_config``):

1. The file is read with ``torch.load(weights_only=True)`` (a pickle that would run code is
   refused); its ``model`` entry is used when there is one, else the whole dict.
2. Every key is renamed as the original does, by plain substring replacement in this order:
   ``vision_encoder`` -> ``visual_encoder``, ``qformer`` -> ``Qformer``, ``vision_layernorm`` ->
   ``ln_vision`` (meant for VideoChat2 files; Video-LLaMA's own names pass unchanged).
3. The keys are mapped onto the recipe's model:

   =============================================  ===============================================
   ``llama_proj.weight`` / ``.bias``               ``projector.proj.weight`` / ``.bias`` (the
                                                   recipe's projector must be ``linear`` with bias)
   ``video_frame_position_embedding.weight``       the recipe's frame-position table
                                                   (``time_embedding.frame_index.weight`` for
                                                   ``abs_second_table`` with ``max_frames``,
                                                   ``time_embedding.weight`` for ``frame_index``),
                                                   resized to its row count exactly as
                                                   :func:`interpolate_frame_pos_embed`
   ``visual_encoder.*``, ``ln_vision.*``,          ``encoder.*`` through the encoder plugin's
   ``Qformer.*``, ``query_tokens`` (if any)        :func:`lavis_to_module_key` (the original's
                                                   non-strict load puts them over the ViT and
                                                   Q-Former files); its ``LAVIS_IGNORED`` applies
   =============================================  ===============================================

   Everything else is reported with its reason (:data:`UNUSED`: Video-LLaMA's video Q-Former and
   its queries, which VTG-LLM never builds, and buffers that are recomputed). A key that is none
   of these is an error (never dropped silently), as are missing, duplicate or ill-shaped keys.
4. The mapped tensors (the file's dtype) are written as ``model.safetensors`` beside a
   ``manifest.json`` holding the source's sha256, the renames, the mapping, the frame-table resize
   and every unused key with its reason; both atomically. The folder loads with
   :func:`vtgcore.checkpoint.load_checkpoint`, which the model builder calls for
   ``model.init_from`` (every tensor must exist in the model with the same shape).

The recipe (default ``recipes/vtgllm/base.yaml``) is only loaded, not built: the time embedding
and projector are built alone, at the file's widths, to learn the target names and the frame
count. The widths themselves (768 and 4096) are checked when the model is built.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from vtgcore.errors import CheckpointError, VTGError

#: The original file's name (``model/Video-LLaMA-2-7B-Finetuned/VL_LLaMA_2_7B_Finetuned.pth``).
SOURCE_NAME = "VL_LLaMA_2_7B_Finetuned.pth"

#: Recipe whose frame count and components the output is made for, when none is given.
DEFAULT_RECIPE = "recipes/vtgllm/base.yaml"

#: The recipe key that starts a model from the converted folder.
RECIPE_KEY = "model.init_from"

#: The original's key renames, applied in this order by ``str.replace`` on every key.
RENAMES: tuple[tuple[str, str], ...] = (
    ("vision_encoder", "visual_encoder"),
    ("qformer", "Qformer"),
    ("vision_layernorm", "ln_vision"),
)

#: Keys (after the renames) deliberately not converted, each with the reason.
UNUSED: tuple[tuple[str, str], ...] = (
    (r"^video_Qformer\.", "Video-LLaMA's video Q-Former (VTG-LLM runs with use_video_qformer: False; "
                          "its slot compressor takes the place)"),
    (r"^video_query_tokens$", "Video-LLaMA's video Q-Former queries (unused by VTG-LLM)"),
    (r"^llama_model\..*\.rotary_emb\.inv_freq$", "RoPE frequency buffer of older transformers (recomputed)"),
)

_PROJECTOR = ("llama_proj.weight", "llama_proj.bias")
_FRAME_TABLE = "video_frame_position_embedding.weight"
_ENCODER = re.compile(r"^(visual_encoder\.|ln_vision\.|Qformer\.|query_tokens$)")

WHAT = "Video-LLaMA checkpoint"


def rename_key(key: str) -> str:
    """A key of the file as the original renames it (``vision_encoder`` -> ``visual_encoder``,
    ``qformer`` -> ``Qformer``, ``vision_layernorm`` -> ``ln_vision``, substring replacements)."""
    for old, new in RENAMES:
        key = key.replace(old, new)
    return key


def interpolate_frame_pos_embed(table: torch.Tensor, rows: int) -> torch.Tensor:
    """Resize a frame-position table to ``rows`` rows as the original's ``interpolate_frame_pos_embed``
    (``video_processor.py``): the table as (1, dim, old rows), ``F.interpolate(size=rows,
    mode="nearest")`` along the frame axis, back to (rows, dim).

    Row j takes old row ``floor(j * float32(old / rows))`` (PyTorch's nearest, in float32; this can
    differ from the exact ``floor(j * old / rows)`` for some sizes, e.g. 32 -> 82). 32 -> 96 repeats
    each row 3 times. The values are copied, in the table's dtype.

    Shape:
        table: (R, D) -> (rows, D)
    """
    if table.shape[0] == rows:
        return table.clone()
    work = table.float().unsqueeze(0).transpose(1, 2)  # (1, D, R): frames are the length axis
    out = torch.nn.functional.interpolate(work, size=rows, mode="nearest")
    return out.transpose(1, 2).squeeze(0).to(table.dtype).contiguous()


def read_video_llama(path: str | Path) -> dict[str, torch.Tensor]:
    """The file's state dict: ``torch.load(weights_only=True)``, then its ``model`` entry when it
    has one, else the whole dict (as the original).

    Raises:
        CheckpointError: missing, refused (would run code), unreadable, or not names -> tensors.
    """
    from vtgcore.checkpoint import torch_load_weights

    obj: Any = torch_load_weights(path, WHAT)
    if isinstance(obj, dict) and "model" in obj:
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{WHAT} {path}: not a state dict (a mapping of names to tensors)")
    bad = sorted(str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor))
    if bad:
        raise CheckpointError(f"{WHAT} {path}: not a state dict: {len(bad)} entry(ies) are not named tensors, "
                              f"e.g. {bad[0]!r}")
    return obj


def unused_reason(key: str) -> Optional[str]:
    """Why a (renamed) key is not converted, from :data:`UNUSED` (None: it must be converted)."""
    for pattern, reason in UNUSED:
        if re.search(pattern, key):
            return reason
    return None


def _names(keys: Sequence[str], limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def frame_table_target(recipe: DictConfig, dim: int, catalog: Any = None, where: str = "") -> tuple[str, int]:
    """The model name of the recipe's frame-position table and its row count.

    The recipe's time embedding is built alone at width ``dim`` and searched for its
    :class:`~vtgcore_plugins.time_embeddings.frame_index.FrameIndexTable`.

    Raises:
        CheckpointError: the recipe has no frame-position table, or more than one.
    """
    from vtgcore.catalog import default_catalog
    from vtgcore_plugins.time_embeddings.frame_index import FrameIndexTable

    catalog = catalog or default_catalog()
    spec = recipe.model.time_embedding
    params = OmegaConf.to_container(spec.params, resolve=True)
    module = catalog.build("time_embedding", spec.name, params, where=where, dim=dim)
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, FrameIndexTable)]
    if len(found) != 1:
        hint = ("set model.time_embedding.params.max_frames (96, the original's max_frame_pos)"
                if spec.name == "abs_second_table" else "use abs_second_table with max_frames, or frame_index")
        raise CheckpointError(f"{where}: the recipe's time embedding {spec.name!r} has "
                              f"{'no' if not found else len(found)} frame-position table(s) for "
                              f"{_FRAME_TABLE}: {hint}")
    name, table = found[0]
    return "time_embedding." + (f"{name}." if name else "") + "weight", int(table.max_frames)


def projector_targets(recipe: DictConfig, in_dim: int, out_dim: int, catalog: Any = None,
                      where: str = "") -> dict[str, str]:
    """``llama_proj.weight`` / ``.bias`` -> the recipe projector's names (it must be one Linear with bias).

    Raises:
        CheckpointError: the recipe's projector is not a single linear layer with a bias.
    """
    from vtgcore.catalog import default_catalog
    from vtgcore_plugins.projectors.linear import LinearProjector

    catalog = catalog or default_catalog()
    spec = recipe.model.projector
    module = catalog.build("projector", spec.name, OmegaConf.to_container(spec.params, resolve=True), where=where,
                           in_dim=in_dim, out_dim=out_dim)
    if not isinstance(module, LinearProjector) or module.proj.bias is None:
        raise CheckpointError(f"{where}: llama_proj is one Linear layer with a bias; the recipe's projector "
                              f"{spec.name!r} is not (use projector=linear with bias: true)")
    return {"llama_proj.weight": "projector.proj.weight", "llama_proj.bias": "projector.proj.bias"}


def _encoder_mapper(recipe: DictConfig, catalog: Any,
                    where: str) -> Callable[[str], tuple[Optional[str], Optional[str]]]:
    """For a LAVIS-layout image-encoder key: (our model name, None), (None, why it is not loaded) or
    (None, None) for a key outside the encoder's parts."""
    from vtgcore.catalog import default_catalog
    from vtgcore_plugins.encoders.eva_vit_g_qformer import EvaViTGQFormer, lavis_ignore_reason, lavis_to_module_key

    catalog = catalog or default_catalog()
    spec = recipe.model.encoder
    if catalog.get("encoder", spec.name).factory is not EvaViTGQFormer:
        raise CheckpointError(f"{where}: the file holds image-encoder weights in the LAVIS layout (visual_encoder, "
                              f"ln_vision, Qformer, query_tokens), which map only onto the eva_vit_g_qformer encoder; "
                              f"the recipe's encoder is {spec.name!r}")
    params = catalog.resolve_params("encoder", spec.name, OmegaConf.to_container(spec.params, resolve=True), where)

    def mapper(key: str) -> tuple[Optional[str], Optional[str]]:
        reason = lavis_ignore_reason(key, params["vit_depth"], bool(params.get("text_input")))
        if reason is not None:
            return None, reason
        ours = lavis_to_module_key(key)
        return (None, None) if ours is None else ("encoder." + ours, None)

    return mapper


def map_video_llama_state(state: dict[str, torch.Tensor], recipe: DictConfig, *, catalog: Any = None,
                          where: str = WHAT) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Map a Video-LLaMA-2 VL state dict onto the names of ``recipe``'s model (the recipe is not built).

    Args:
        state: the file's state dict (unwrapped, original names).
        recipe: the target recipe (its time embedding, projector and encoder).
        catalog: plugin catalog (default: the process-wide one).
        where: the file, for messages.

    Returns:
        ``(tensors, report)``: model name -> tensor (the file's dtype, the frame table resized) and
        what was done (``renamed``, ``mapped``, ``frame_table``, ``unused`` by reason with every key).

    Raises:
        CheckpointError: one line naming unknown, missing, duplicate or ill-shaped keys, or a recipe
            the file cannot start (no frame table, a projector that is not linear).
    """
    renamed: dict[str, str] = {}
    by_new: dict[str, str] = {}
    duplicates = []
    for key in state:
        new = rename_key(key)
        if new in by_new:
            duplicates.append(f"{by_new[new]} and {key} (both {new})")
            continue
        by_new[new] = key
        if new != key:
            renamed[key] = new
    if duplicates:
        raise CheckpointError(f"{where}: {len(duplicates)} key(s) collide after the original's renames: "
                              f"{_names(duplicates)}")
    missing = [k for k in (*_PROJECTOR, _FRAME_TABLE) if k not in by_new]
    if missing:
        raise CheckpointError(f"{where}: missing {', '.join(missing)} (the keys VTG-LLM takes from Video-LLaMA-2's "
                              f"vision-language checkpoint {SOURCE_NAME}); found {len(state)} key(s), e.g. "
                              f"{_names(list(by_new), 4)}")
    weight, bias, table = (state[by_new[k]] for k in (*_PROJECTOR, _FRAME_TABLE))
    if weight.ndim != 2 or bias.shape != (weight.shape[0],) or table.ndim != 2 or table.shape[1] != weight.shape[1]:
        raise CheckpointError(
            f"{where}: shapes do not fit together: llama_proj.weight {tuple(weight.shape)} (out, in), "
            f"llama_proj.bias {tuple(bias.shape)} (out,), {_FRAME_TABLE} {tuple(table.shape)} (frames, in)")

    frame_key, rows = frame_table_target(recipe, int(table.shape[1]), catalog, where)
    targets = projector_targets(recipe, int(weight.shape[1]), int(weight.shape[0]), catalog, where)
    targets[_FRAME_TABLE] = frame_key
    encoder_map = None

    tensors: dict[str, torch.Tensor] = {}
    mapped: dict[str, str] = {}
    unused: dict[str, list[str]] = {}
    unknown: list[str] = []
    twice: list[str] = []
    for new, key in by_new.items():
        target: Optional[str] = targets.get(new)
        reason = unused_reason(new) if target is None else None
        if target is None and reason is None and _ENCODER.search(new):
            encoder_map = encoder_map or _encoder_mapper(recipe, catalog, where)
            target, reason = encoder_map(new)
        if target is not None and target in mapped:
            twice.append(f"{mapped[target]} and {key} (both {target})")
        elif target is not None:
            tensors[target] = state[key]
            mapped[target] = key
        elif reason is not None:
            unused.setdefault(reason, []).append(key)
        else:
            unknown.append(key)
    if twice:
        raise CheckpointError(f"{where}: {len(twice)} model tensor(s) given twice: {_names(twice)}")
    if unknown:
        raise CheckpointError(
            f"{where}: {len(unknown)} key(s) that are neither llama_proj, the frame-position table, image-encoder "
            f"weights nor Video-LLaMA's video Q-Former: {_names(unknown)} (not Video-LLaMA-2's vision-language "
            f"checkpoint {SOURCE_NAME}?)")
    tensors[frame_key] = interpolate_frame_pos_embed(table, rows)
    report = {
        "renamed": renamed,
        "mapped": mapped,
        "frame_table": {"key": frame_key, "source_rows": int(table.shape[0]), "rows": rows,
                        "resized": int(table.shape[0]) != rows,
                        "method": "interpolate_frame_pos_embed: F.interpolate(mode='nearest') along the frame axis"},
        "unused": {reason: sorted(keys) for reason, keys in unused.items()},
    }
    return tensors, report


def default_recipe() -> Path:
    """:data:`DEFAULT_RECIPE` in the working directory or in this repository.

    Raises:
        VTGError: it does not exist (pass ``--recipe``).
    """
    from vtgcore.config.loader import resolve_recipe_path

    path = resolve_recipe_path(DEFAULT_RECIPE)
    if path.is_file():
        return path
    raise VTGError(f"convert video-llama: no recipe given and the default {DEFAULT_RECIPE} does not exist; "
                   "pass --recipe (the recipe the output starts: its frame count and components)")


def convert_video_llama(in_path: str | Path, out_dir: str | Path, recipe: Optional[str | Path] = None,
                        overrides: Sequence[str] = (),
                        progress: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
    """Convert ``VL_LLaMA_2_7B_Finetuned.pth`` into a folder for ``model.init_from``.

    Args:
        in_path: the Video-LLaMA-2 vision-language checkpoint (``.pth``).
        out_dir: the folder to write (``model.safetensors`` + ``manifest.json``).
        recipe: the recipe the output is for (default :data:`DEFAULT_RECIPE`): the frame table is
            resized to its frame count and named for its time embedding.
        overrides: recipe overrides.
        progress: called with a short message at each stage.

    Returns:
        The report (also ``manifest.json``'s ``conversion``): source and its sha256, renames,
        mapping, frame-table resize, unused keys by reason, tensors and parameters written.

    Raises:
        CheckpointError: the file is missing, refused, unreadable or not this checkpoint, or the
            recipe cannot take it.
        RecipeError: the recipe is invalid.
        OutputError: the folder cannot be written.
    """
    from safetensors.torch import save

    from vtgcore import __version__
    from vtgcore.apps.convert_weights.vtgllm_original import sha256_file
    from vtgcore.checkpoint import MANIFEST, WEIGHTS
    from vtgcore.config.loader import load_recipe
    from vtgcore.utils.fileio import atomic_write_bytes, atomic_write_text

    say = progress or (lambda message: None)
    in_path, out_dir = Path(in_path), Path(out_dir)
    if not in_path.is_file():
        raise CheckpointError(f"{WHAT} {in_path}: file not found (Video-LLaMA-2's {SOURCE_NAME})")
    if out_dir.exists() and not out_dir.is_dir():
        raise VTGError(f"convert video-llama: {out_dir} exists and is not a folder")
    recipe_path = Path(recipe) if recipe is not None else default_recipe()
    from vtgcore.utils.fileio import check_not_input

    check_not_input([out_dir / WEIGHTS, out_dir / MANIFEST], [in_path, recipe_path], "convert video-llama")
    loaded = load_recipe(recipe_path, overrides)

    say(f"hashing {in_path}")
    digest = sha256_file(in_path)
    say(f"reading {in_path} (weights only)")
    state = read_video_llama(in_path)
    say(f"mapping {len(state)} tensors for {recipe_path}")
    tensors, report = map_video_llama_state(state, loaded, where=f"{WHAT} {in_path}")
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()}  # no shared storage
    report = {
        "converted_from": "video-llama2-vl",
        "source": str(in_path.resolve()),
        "source_sha256": digest,
        "source_keys": len(state),
        "recipe": str(recipe_path),
        "overrides": list(overrides),
        "recipe_key": RECIPE_KEY,
        **report,
        "tensors": len(tensors),
        "parameters": int(sum(t.numel() for t in tensors.values())),
    }
    say(f"saving {len(tensors)} tensors to {out_dir}")
    atomic_write_bytes(out_dir / WEIGHTS, save(tensors, metadata={"source_sha256": digest}))
    manifest = {"format": "vtgcore-checkpoint-1", "vtgcore": __version__, "tensors": report["tensors"],
                "parameters": report["parameters"], "conversion": report}
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2))
    report["out_dir"] = str(out_dir)
    return report
