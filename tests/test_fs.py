from __future__ import annotations

import os
from pathlib import Path

import pytest

from devnix.errors import FileSystemError, WouldOverwriteError
from devnix.fs import write_all, write_atomic


def test_write_all_refuses_before_writing_anything(tmp_path: Path) -> None:
    (tmp_path / "b").write_text("mine")
    with pytest.raises(WouldOverwriteError):
        write_all(tmp_path, {"a": "new", "b": "new"}, force=False)
    assert not (tmp_path / "a").exists()
    assert (tmp_path / "b").read_text() == "mine"


def test_force_overwrites_and_keeps_permissions(tmp_path: Path) -> None:
    target = tmp_path / "x.sh"
    target.write_text("old")
    target.chmod(0o700)
    write_all(tmp_path, {"x.sh": "new"}, force=True)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o700


def test_no_temporary_file_is_left_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(tmp_path / "f", "text")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_target_is_a_clean_error(tmp_path: Path) -> None:
    # A file where the folder should be fails for root too, unlike a chmod'ed folder.
    (tmp_path / ".devcontainer").write_text("not a folder")
    with pytest.raises(FileSystemError, match="cannot write"):
        write_all(tmp_path, {".devcontainer/devcontainer.json": "{}"}, force=False)


def test_executable_files_get_the_x_bit(tmp_path: Path) -> None:
    write_all(tmp_path, {"run.sh": "#!/bin/sh\n"}, force=False, executable=("run.sh",))
    assert (tmp_path / "run.sh").stat().st_mode & 0o111


def test_a_symlinked_file_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "shared" / "devcontainer.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "project" / "devcontainer.json"
    link.parent.mkdir()
    link.symlink_to(real)
    write_all(tmp_path / "project", {"devcontainer.json": "new"}, force=True)
    assert link.is_symlink() and real.read_text() == "new"


def test_a_dangling_symlink_counts_as_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "nix.conf").symlink_to(tmp_path / "elsewhere.conf")
    with pytest.raises(WouldOverwriteError):
        write_all(tmp_path, {"nix.conf": "x"}, force=False)
    assert (tmp_path / "nix.conf").is_symlink()


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_folders_and_special_files_are_refused_not_replaced(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "nix.conf"
    if kind == "folder":
        target.mkdir()
    else:
        os.mkfifo(target)
    with pytest.raises(FileSystemError, match="devnix writes only regular files"):
        write_all(tmp_path, {"nix.conf": "x"}, force=True)
    assert target.is_dir() if kind == "folder" else target.is_fifo()
