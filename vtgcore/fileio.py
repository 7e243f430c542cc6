"""Small file helpers shared by the whole package: atomic writes and text reads with one-line errors."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vtgcore.errors import VTGError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync, then rename.

    A crash leaves either the old file or the new one, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
