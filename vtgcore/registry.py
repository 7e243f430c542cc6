"""mmengine imports ``<scope>.registry`` when ``default_scope="vtgcore"``; the registries live in
:mod:`vtgcore.mm.registry`."""

from vtgcore.mm.registry import *  # noqa: F401,F403
