"""vtgcore: a plugin-based platform for video temporal grounding with large language models.

Public entry points: :data:`hookimpl` (for plugin authors), :func:`load_recipe`, :func:`build_model`,
:func:`load_pipeline` (ground your own videos).
"""

from __future__ import annotations

__version__ = "0.1.0"

from vtgcore.hookspecs import hookimpl  # noqa: E402


def load_recipe(*args, **kwargs):
    """Load and validate a recipe; see :func:`vtgcore.config.loader.load_recipe`."""
    from vtgcore.config.loader import load_recipe as _load

    return _load(*args, **kwargs)


def build_model(*args, **kwargs):
    """Build a :class:`~vtgcore.model.VideoLLM` and its processor; see :func:`vtgcore.build.build_model`."""
    from vtgcore.build import build_model as _build

    return _build(*args, **kwargs)


def load_pipeline(*args, **kwargs):
    """Load a trained model for grounding your own videos; see :func:`vtgcore.apps.pipeline.load_pipeline`.

    ``load_pipeline(run_dir_or_recipe, checkpoint=None, device="auto")`` returns a
    :class:`~vtgcore.apps.pipeline.Pipeline` with ``ground``, ``caption``, ``highlights`` and ``summarize``.
    """
    from vtgcore.apps.pipeline import load_pipeline as _load

    return _load(*args, **kwargs)


__all__ = ["__version__", "hookimpl", "load_recipe", "build_model", "load_pipeline"]
