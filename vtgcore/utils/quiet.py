"""Known third-party log noise kept off stderr unless ``vtg --debug`` (issue 20).

* transformers' lines about how new embedding rows are initialised (every model build that adds
  the time tokens printed two of them);
* the FFmpeg log lines decord's bundled FFmpeg prints while it opens a broken file (the reader's
  own error already says what is wrong, in the same words as the PyAV reader's).

:func:`set_debug` (the command line's ``--debug``) turns them back on.
"""

from __future__ import annotations

import logging

_DEBUG = [False]

NOISE = (
    "The new embeddings will be initialized from a multivariate normal distribution",
    "The new lm_head weights will be initialized from a multivariate normal distribution",
)
"""Beginnings of transformers log records that say nothing the user can act on."""


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _DEBUG[0]:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is not ours to judge
            return True
        return not message.startswith(NOISE)


_FILTER = _DropNoise()


def set_debug(debug: bool) -> None:
    """Show (``debug``) or hide the known noise; installs the filters."""
    _DEBUG[0] = bool(debug)
    quiet_transformers()


def is_debug() -> bool:
    return _DEBUG[0]


def quiet_transformers() -> None:
    """Drop :data:`NOISE` from transformers' loggers (their handler and the library root logger)."""
    for name in ("transformers", "transformers.modeling_utils"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def quiet_decord(decord: object) -> None:
    """Silence decord's FFmpeg logging unless debugging (its failures are reported as errors)."""
    log = getattr(decord, "logging", None)
    if log is not None and hasattr(log, "set_level"):
        log.set_level(log.DEBUG if _DEBUG[0] else log.QUIET)
