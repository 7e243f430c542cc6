"""Converters from other code bases' checkpoints to vtgcore checkpoint folders.

(Annotation files are converted by :mod:`vtgcore.data.format_convert`; this package is for weights.)
"""

from vtgcore.apps.convert_weights.vtgllm_original import convert_vtgllm_original, map_original_state

__all__ = ["convert_vtgllm_original", "map_original_state"]
