"""Shape check of ``data.train``: one ``annotation``, or ``datasets`` to mix several training sets
(see :mod:`vtgcore.mm.mixing`). Pure Python, so recipe validation does not import mmengine."""

from __future__ import annotations

from numbers import Real
from pathlib import Path
from typing import Any, Mapping, Sequence

from vtgcore.errors import RecipeError

ENTRY_KEYS = ("annotation", "video_root", "sources", "ratio", "name")
"""Keys of one ``data.train.datasets`` entry (``annotation`` and ``ratio`` are required)."""


def check_train_data(train: Mapping[str, Any], where: str = "data.train") -> None:
    """Check the shape of ``data.train``: one ``annotation`` or a ``datasets`` list.

    Raises:
        RecipeError: neither or both forms, an entry that is not a mapping, without an
            ``annotation``, with a ``ratio`` that is missing, not a number or not above 0, with
            ``sources`` that is not a list of names, or with an unknown key.
    """
    has_single = train.get("annotation") is not None
    if "datasets" not in train or train.get("datasets") is None:
        if not has_single:
            raise RecipeError(f"{where}.annotation is not set: name the VTG-IT training file "
                              f"(or list several under {where}.datasets to mix them)")
        return
    if has_single:
        raise RecipeError(f"{where}: set either annotation (one data set) or datasets (a mix), not both")
    for key in ("sources", "video_root"):
        if train.get(key) is not None:
            raise RecipeError(f"{where}.{key} is not used with {where}.datasets: set it per entry")
    entries = train["datasets"]
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence) or not entries:
        raise RecipeError(f"{where}.datasets must be a non-empty list of {{annotation, ratio, video_root?, "
                          f"sources?}} entries, got {entries!r}")
    for k, entry in enumerate(entries):
        at = f"{where}.datasets[{k}]"
        if not isinstance(entry, Mapping):
            raise RecipeError(f"{at}: an entry must be a mapping with annotation and ratio, got {entry!r}")
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise RecipeError(f"{at}: unknown key(s) {unknown}; allowed: {', '.join(ENTRY_KEYS)}")
        annotation = entry.get("annotation")
        if not isinstance(annotation, (str, Path)) or not str(annotation):
            raise RecipeError(f"{at}.annotation is not set: name the training file of this entry")
        ratio = entry.get("ratio")
        if ratio is None:
            raise RecipeError(f"{at}.ratio is not set: give the entry's share of the batch slots (e.g. 1)")
        if isinstance(ratio, bool) or not isinstance(ratio, Real) or not float(ratio) > 0:
            raise RecipeError(f"{at}.ratio must be a number > 0, got {ratio!r}")
        sources = entry.get("sources")
        if sources is not None and (isinstance(sources, str) or not isinstance(sources, Sequence)
                                    or not all(isinstance(s, str) for s in sources)):
            raise RecipeError(f"{at}.sources must be a list of source names, got {sources!r}")


PROMPT_DATA_KEYS = ("annotation", "format", "batch_size", "num_workers", "skip_broken", "crop", "resize")
"""``data.train`` keys of a GRPO recipe (prompts and ground truth from an evaluation-format file)."""


def check_prompt_data(train: Any, where: str) -> None:
    """``data.train`` of a GRPO recipe: one evaluation-format annotation (``annotation``, ``format``
    optional: detected from the content), no ``datasets``/``sources`` (those are VTG-IT's).

    Raises:
        RecipeError: no annotation, an unknown format or key.
    """
    from vtgcore.data.formats import EVAL_FORMATS

    if not isinstance(train, dict) or not isinstance(train.get("annotation"), str) or not train["annotation"]:
        raise RecipeError(f"{where}: training.objective grpo reads prompts and ground truth from an evaluation-format "
                          f"annotation: set data.train.annotation (and data.train.format: {', '.join(EVAL_FORMATS)})")
    unknown = sorted(str(k) for k in train if k not in PROMPT_DATA_KEYS)
    if unknown:
        raise RecipeError(f"{where}: key(s) {unknown} are not used with training.objective grpo; allowed: "
                          f"{', '.join(PROMPT_DATA_KEYS)}")
    fmt = train.get("format")
    if fmt is not None and fmt not in EVAL_FORMATS:
        raise RecipeError(f"{where}: format {fmt!r} is not an evaluation format; allowed: {', '.join(EVAL_FORMATS)}")
