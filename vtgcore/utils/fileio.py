"""Small file helpers shared by the whole package: atomic writes and text reads with one-line errors."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Optional

from vtgcore.errors import OutputError, VTGError


def write_failure(path: str | os.PathLike, error: OSError) -> OutputError:
    """An :class:`OutputError` with one line naming ``path`` and why it cannot be written.

    Args:
        path: the file being written.
        error: the operating system's error (disk full, permission denied, ...).
    """
    reason = error.strerror or str(error) or type(error).__name__
    where = getattr(error, "filename", None)
    if where and os.fspath(where) != os.fspath(path) and not Path(os.fspath(where)).name.startswith("."):
        reason += f" ({os.fspath(where)})"
    return OutputError(f"{os.fspath(path)}: cannot write: {reason}")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems cannot sync folders)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system tells it (Linux
    ``/proc/self/status``); elsewhere set and restored at once under a lock."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def check_output_target(path: str | os.PathLike) -> Optional[os.stat_result]:
    """Refuse an output path that exists and is not a regular file (through symlinks).

    A device node (``/dev/null``, a disk), a FIFO, a socket or a directory is never replaced by a
    regular file.

    Returns:
        The ``stat`` of the existing regular file (its mode is kept when it is replaced), or None
        when nothing is there yet.

    Raises:
        OutputError: one line naming ``path`` and what it is.
    """
    try:
        info = os.stat(path)
    except OSError:  # not there yet (or not reachable: the write itself reports why)
        return None
    if stat.S_ISREG(info.st_mode):
        return info
    kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
    raise OutputError(f"{os.fspath(path)}: cannot write: it is {kind}, not a regular file; give a file path")


def check_not_input(outputs: str | os.PathLike | Iterable[str | os.PathLike],
                    inputs: Iterable[str | os.PathLike | None], command: str = "") -> None:
    """Refuse an output that is one of the command's inputs (the same path, or the same file
    through a symlink or a hard link), before anything is read or written.

    Args:
        outputs: the file(s) the command will write.
        inputs: the files it reads (None entries and paths that do not exist are ignored).
        command: the command, for the message (``vtg data convert``).

    Raises:
        OutputError: ``<output>: is the same file as the input <input>; ...`` (one line).
    """
    outs = [outputs] if isinstance(outputs, (str, os.PathLike)) else list(outputs)
    ins = [i for i in inputs if i is not None]
    pre = f"{command}: " if command else ""
    for out in outs:
        for source in ins:
            same = os.path.abspath(out) == os.path.abspath(source)
            if not same:
                with contextlib.suppress(OSError):
                    same = os.path.samefile(out, source)
            if same:
                raise OutputError(f"{pre}{os.fspath(out)}: is the same file as the input {os.fspath(source)}; "
                                  "writing it would destroy the input: give another output path")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync, then rename.

    A crash leaves either the old file or the new one, never a torn file; the temporary file is
    removed when the write fails. A new file gets the mode ``0o666`` less the umask (as ``open``
    would give it); a file replaced keeps its mode (and, where allowed, its owner). A symlink is
    followed: the file it points to is replaced, the link stays. A path that is a directory, a
    device, a FIFO or a socket is refused, never replaced.

    Raises:
        OutputError: the path is not a regular file, the folder cannot be created or the file
            cannot be written (disk full, permission denied, read-only file system); the message
            names ``path``.
    """
    named = Path(path)
    path = Path(os.path.realpath(named)) if named.is_symlink() else named
    existing = check_output_target(named)
    mode = (existing.st_mode & 0o777) if existing is not None else 0o666 & ~current_umask()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise write_failure(named, err) from err
    try:
        os.fchmod(fd, mode)
        if existing is not None and (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(OSError):
                os.fchown(fd, existing.st_uid, existing.st_gid)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, OutputError):
            raise write_failure(named, err) from err
        raise
    _fsync_folder(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_text(path: Path, error: type[VTGError], what: str) -> str:
    """The UTF-8 text of ``path``, or ``error`` with one line naming the file and the problem.

    Args:
        path: the file.
        error: exception class raised on failure.
        what: what the file is, e.g. ``"annotation file"``.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {what}") from None
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise error(f"{path}: cannot be read ({err.strerror})") from None


def locate(path: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """A file named in a run's records: as written, else relative to one of ``folder``'s parents.

    Run records (evaluation records, the recipe saved in a checkpoint) hold paths relative to the
    working directory of the run, so a run folder moved with its parents, or used from another
    directory, still finds them.

    Returns:
        The first existing candidate; ``path`` unchanged when it is absolute or none exists.
    """
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    for parent in Path(folder).resolve().parents:
        if (parent / p).exists():
            return parent / p
    return p
