"""Hook specifications: the eight ways a plugin adds components to vtgcore.

Every hook is called once per plugin as ``hook(register=register)``. ``register`` has the signature::

    register(name: str, factory: Callable[..., Any], *, config: type | None = None,
             description: str = "") -> None

``name`` is what recipes write (``model.compressor.name: slot``); it must be unique within a kind.
``factory`` is called with the recipe's ``params`` (validated against ``config``, a dataclass)
plus wiring arguments the core supplies (see each hook). Import heavy libraries inside the factory,
not at module top level, so that listing plugins stays fast.
"""

from __future__ import annotations

from typing import Callable

import pluggy

from vtgcore.vocab import PLUGIN_KINDS

hookspec = pluggy.HookspecMarker("vtgcore")

Register = Callable[..., None]


@hookspec
def vtg_register_encoders(register: Register) -> None:
    """Register frame encoders (:class:`vtgcore.interfaces.FrameEncoder`).

    Factory wiring: none. Contract: ``(N, 3, H, W) -> (N, L, Dv)``.
    """


@hookspec
def vtg_register_time_embeddings(register: Register) -> None:
    """Register time embeddings (:class:`vtgcore.interfaces.TimeEmbedding`).

    Factory wiring: ``dim`` (the encoder width Dv). Contract: ``(B, T, L, Dv) + seconds (B, T) ->
    (B, T, L, Dv)``.
    """


@hookspec
def vtg_register_groundings(register: Register) -> None:
    """Register grounding stages (:class:`vtgcore.interfaces.GroundingStage`).

    Factory wiring: ``dim`` (Dv) and ``text_dim`` (the LLM hidden size D). Contract: ``(B, T, L, Dv)
    + prompt (B, S, D) -> (B, T, L, Dv)`` and frame logits ``(B, T)`` or None, plus ``losses``.
    """


@hookspec
def vtg_register_time_codecs(register: Register) -> None:
    """Register time codecs (:class:`vtgcore.interfaces.TimeCodec`).

    Factory wiring: none. A codec writes seconds as text and reads them back from token ids.
    """


@hookspec
def vtg_register_compressors(register: Register) -> None:
    """Register token compressors (:class:`vtgcore.interfaces.TokenCompressor`).

    Factory wiring: ``dim`` (Dv). Contract: ``(B, T, L, Dv) -> (B, K, Dv)`` with K known from
    ``output_tokens(T, L)`` before the forward.
    """


@hookspec
def vtg_register_projectors(register: Register) -> None:
    """Register projectors (:class:`vtgcore.interfaces.Projector`).

    Factory wiring: ``in_dim`` (Dv) and ``out_dim`` (the LLM hidden size D). Contract:
    ``(B, K, Dv) -> (B, K, D)``.
    """


@hookspec
def vtg_register_llms(register: Register) -> None:
    """Register language models (:class:`vtgcore.interfaces.LanguageModel`).

    Factory wiring: none. Contract: ``inputs_embeds (B, S, D) -> loss / logits (B, S, V)``, and
    ``generate`` returning only the new ids.
    """


@hookspec
def vtg_register_rewards(register: Register) -> None:
    """Register rewards (:class:`vtgcore.interfaces.Reward`), built by
    :func:`vtgcore.build.build_reward`, not part of ``model:``.

    Factory wiring: ``build_reward`` (``build_reward(spec) -> Reward``, builds a nested reward spec
    ``{name, params}`` through the catalog; rewards that compose others use it, the others ignore
    it). Contract: ``reward(item, answer_text, answer_ids, codec) -> float``, finite, never raises.
    """


KINDS: dict[str, str] = PLUGIN_KINDS
"""Plugin kind -> the hook that registers it (defined in :mod:`vtgcore.vocab`)."""

hookimpl = pluggy.HookimplMarker("vtgcore")
"""Marker for a plugin's hook implementations (also exported as ``vtgcore.hookimpl``)."""

__all__ = ["hookspec", "hookimpl", "KINDS", "Register"]
