"""Edge: writing the user's files so that none is ever lost or half-written."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from devnix.errors import FileSystemError, WouldOverwriteError


def existing(root: Path, files: Mapping[str, str]) -> list[str]:
    """The paths among ``files`` that already exist under ``root`` (a dangling symlink counts: writing
    there would put a file where the user made a link)."""
    return [path for path in files if os.path.lexists(root / path)]


def target_of(path: Path) -> Path:
    """Where writing ``path`` really goes: through symlinks, so that a linked config stays a link.

    Anything but a regular file (a folder, a FIFO, a device) is refused: replacing it would lose it,
    and reading or writing a FIFO would hang.
    """
    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        st = real.stat()
    except FileNotFoundError:
        return real
    except OSError as error:
        raise FileSystemError(f"cannot use {path}: {error.strerror or error}", hint="check it") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise FileSystemError(
            f"{path} is {kind}; devnix writes only regular files", hint="move it away, then run devnix again"
        )
    return real


def write_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers see old or new, never half.

    A file that exists keeps its permission bits; ``mode`` applies to new files. A symlink is written
    through (the link stays); a folder or special file is refused (:func:`target_of`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path = target_of(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".devnix-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            keep = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            keep = mode if mode is not None else 0o666 & ~_umask()
        os.chmod(tmp_name, keep)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_all(root: Path, files: Mapping[str, str], *, force: bool, executable: tuple[str, ...] = ()) -> None:
    """Write every file, refusing up front (before writing anything) if one exists and not ``force``."""
    clashes = existing(root, files)
    if clashes and not force:
        raise WouldOverwriteError(
            f"{root / clashes[0]} already exists"
            + (f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""),
            hint="pass --force to overwrite, or --dry-run to see what would be written",
        )
    try:
        for relative, text in files.items():
            write_atomic(root / relative, text, mode=0o755 if relative in executable else None)
    except OSError as error:
        raise FileSystemError(
            f"cannot write in {root}: {error.strerror or error}",
            hint="check that the folder exists and is writable",
        ) from None


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
