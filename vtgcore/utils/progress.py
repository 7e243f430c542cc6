"""Progress bars, ``--quiet`` and run logs shared by the long commands.

Long commands (``vtg data synth``, ``vtg cache features``, ``vtg eval``, ``vtg run``, ...) report
progress on stderr with tqdm: done/total, rate and estimated time left. ``vtg --quiet`` (or the
environment variable ``VTG_QUIET=1``) silences progress and informational output; errors,
warnings and final results are still printed. Runs keep a log file in their run folder whether
quiet or not (:class:`RunLog`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

_quiet = False

Progress = Callable[..., None]
"""A progress callback: ``progress(done, total, **counts)``; ``counts`` are running totals of
secondary quantities (e.g. ``frames=1234``), shown with their own rate."""


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) progress and informational output for this process."""
    global _quiet
    _quiet = bool(quiet)


def is_quiet() -> bool:
    """True after ``set_quiet(True)`` or when ``VTG_QUIET`` is set to anything but ``""``/``0``."""
    return _quiet or os.environ.get("VTG_QUIET", "").strip() not in ("", "0")


def info(message: str) -> None:
    """Print an informational line to stderr unless quiet."""
    if not is_quiet():
        print(message, file=sys.stderr, flush=True)


def rate_text(done: int, total: int, seconds: float, unit: str = "it") -> str:
    """``"12.3 video/s, 0:41 left"``: the rate so far and the time left at that rate."""
    if done <= 0 or seconds <= 0:
        return f"? {unit}/s"
    rate = done / seconds
    left = max(0.0, (total - done) / rate)
    minutes, secs = divmod(int(round(left)), 60)
    hours, minutes = divmod(minutes, 60)
    eta = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"{rate:.3g} {unit}/s, {eta} left"


_OPEN: list[Any] = []
"""tqdm bars still open (closed by :func:`close_bars`)."""


def close_bars() -> None:
    """Close every bar still open, so that a message printed next (an error) stands on its own line."""
    while _OPEN:
        _OPEN.pop().close()


class _Lines:
    """A stream for tqdm on a log or pipe: every redraw (``"\\r" + state``) becomes a line of its own.

    tqdm moves back to the start of the line with a carriage return before each redraw; in a file
    that leaves all states on one line. This writes each state as a line (without tqdm's padding)
    and drops tqdm's closing newline, which would otherwise repeat nothing.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        for part in text.split("\r"):
            line = part.rstrip(" ")
            if line.strip():
                self.stream.write(line if line.endswith("\n") else line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def bar(desc: str, unit: str = "video", file: Optional[TextIO] = None) -> Progress:
    """A tqdm progress callback ``progress(done, total, **counts)`` on stderr.

    The bar opens on the first call, shows done/total, the rate and the time left (tqdm's ETA), plus
    every running count given as a keyword with its own rate (``frames=12000`` shows
    ``frames=12000 (850/s)``), and closes when ``done >= total``. On a terminal it redraws every
    0.1 s and disappears when finished; otherwise (a log, a pipe) it writes a line at most every
    10 s, each state on a line of its own (no carriage returns), and keeps the last one. Rates count from the call of ``bar``, so create it just before
    the work starts (the first update usually comes after the first item). Quiet: does nothing.

    Args:
        desc: what is counted, e.g. ``"evaluating mr"``.
        unit: the unit of ``done``.
        file: the stream (default: ``sys.stderr`` at the first call).
    """
    state: dict[str, Any] = {"bar": None, "start": time.perf_counter(), "wall": time.time()}

    def update(done: int, total: int, **counts: int) -> None:
        if is_quiet():
            return
        from tqdm import tqdm

        if state["bar"] is None:
            stream = file or sys.stderr
            tty = hasattr(stream, "isatty") and stream.isatty()
            state["bar"] = tqdm(total=total, desc=desc, unit=unit, file=stream if tty else _Lines(stream), leave=not tty,
                                mininterval=0.1 if tty else 10.0, dynamic_ncols=tty)
            state["bar"].start_t = state["wall"]  # tqdm's clock (time.time) from the start of the work
            _OPEN.append(state["bar"])
        progress = state["bar"]
        if counts:
            elapsed = max(time.perf_counter() - state["start"], 1e-9)
            progress.set_postfix_str(", ".join(f"{k}={v} ({v / elapsed:.0f}/s)" for k, v in counts.items()),
                                     refresh=False)
        progress.update(done - progress.n)
        if done >= total:
            progress.close()
            if progress in _OPEN:
                _OPEN.remove(progress)

    return update


class RunLog:
    """Lines of a run: appended to ``path`` (with a time) and echoed unless quiet.

    Args:
        path: the log file, created with its folder; lines are appended, so a resumed run keeps
            the earlier lines.
        stream: where :meth:`info` echoes (default: ``sys.stderr``); :meth:`result` always prints
            to stdout.

    Raises:
        OutputError: the log (or its folder) cannot be written; one line naming the path.
    """

    def __init__(self, path: str | Path, stream: Optional[TextIO] = None) -> None:
        from vtgcore.utils.fileio import write_failure

        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise write_failure(self.path, err) from err
        self._stream = stream

    def write(self, message: str) -> None:
        """Append ``message`` to the file only."""
        from vtgcore.utils.fileio import write_failure

        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                for line in str(message).splitlines() or [""]:
                    handle.write(f"{stamp} {line}\n")
        except OSError as err:
            raise write_failure(self.path, err) from err

    def info(self, message: str) -> None:
        """Append ``message`` and echo it unless quiet."""
        self.write(message)
        if not is_quiet():
            print(message, file=self._stream or sys.stderr, flush=True)

    def result(self, message: str) -> None:
        """Append ``message`` and print it to stdout, quiet or not."""
        self.write(message)
        print(message, flush=True)


__all__ = ["Progress", "RunLog", "bar", "info", "is_quiet", "rate_text", "set_quiet"]
