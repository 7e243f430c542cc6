"""Small file helpers shared by the whole package: atomic writes and text reads with one-line errors."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync, then rename.

    A crash leaves either the old file or the new one, never a torn file; the temporary file is
    removed when the write fails.

    Raises:
        OutputError: the folder cannot be created or the file cannot be written (disk full,
            permission denied, read-only file system); the message names ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise write_failure(path, err) from err
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, OutputError):
            raise write_failure(path, err) from err
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
