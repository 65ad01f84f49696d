"""Copying a local flake folder into the builder: a tar stream made on the fly, no bind mount.

A bind mount would need the folder to be visible to the engine (a VM's shared folders, a remote
engine); a stream through the engine API works wherever the builder runs.
"""

from __future__ import annotations

import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

from devnix import bootstrap as core
from devnix import engine
from devnix.commands.bootstrap.steps import Handle
from devnix.errors import FileSystemError

CHUNK = 1 << 20  # bytes per read from the tar pipe


def copy_flake(container: str, directory: Path, step: Handle) -> int:
    """Send the flake folder as a tar stream made on the fly (no copy on disk, nothing big in memory)."""
    entries = list(walk(directory))
    total = sum(size for _, _, size in entries)
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for chunk in tar_stream(directory, entries, Path(core.CONTAINER_FLAKE_DIR).name):
            sent += len(chunk)
            step.progress(sent, total)
            yield chunk

    engine.put_archive(container, str(Path(core.CONTAINER_FLAKE_DIR).parent), chunks())
    step.progress(sent, total, force=True)
    return sent


def walk(root: Path) -> Iterator[tuple[Path, str, int]]:
    """(path, name in the archive, size) of what to copy; VCS folders and result links are left out."""
    yield root, "", 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not core.skip_in_copy(d, (here / d).is_symlink()))
        for name in sorted(dirnames) + sorted(filenames):
            path = here / name
            if core.skip_in_copy(name, path.is_symlink()):
                continue
            size = path.lstat().st_size if path.is_file() and not path.is_symlink() else 0
            yield path, str(path.relative_to(root)), size


def tar_stream(root: Path, entries: list[tuple[Path, str, int]], top: str) -> Iterator[bytes]:
    """Tar written by a thread into a pipe, read here in chunks: memory stays at one chunk."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    def write() -> None:
        try:
            with (
                os.fdopen(write_fd, "wb", buffering=CHUNK) as pipe,
                tarfile.open(fileobj=pipe, mode="w|", format=tarfile.PAX_FORMAT) as archive,
            ):
                for path, name, _size in entries:
                    arcname = f"{top}/{name}" if name else top
                    archive.add(str(path), arcname=arcname, recursive=False, filter=as_root)
        except BaseException as error:  # reported by the reader; a closed pipe after Ctrl-C is expected
            failure.append(error)

    writer = threading.Thread(target=write, name="devnix-tar", daemon=True)
    writer.start()
    try:
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(CHUNK):
                yield chunk
    finally:
        writer.join(timeout=5)
    if failure:
        error = failure[0]
        raise FileSystemError(f"could not read the flake folder {root}: {error}") from None
