"""``devnix templates render``: write (or check) ``templates/`` from the scaffolds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnix.fs import write_all
from devnix.templates import render_collection


@dataclass(frozen=True)
class RenderResult:
    destination: Path
    written: tuple[str, ...]
    drifted: tuple[str, ...]  # differ from the scaffolds (changed, missing or extra)
    check: bool

    @property
    def exit_code(self) -> int:
        return 1 if self.check and self.drifted else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "destination": str(self.destination),
            "written": list(self.written),
            "drifted": list(self.drifted),
            "check": self.check,
        }


def run(destination: Path, *, check: bool) -> RenderResult:
    wanted = render_collection()
    existing = (
        {
            path.relative_to(destination).as_posix()
            for path in destination.rglob("*")
            if path.is_file() and path.name != ".gitkeep"
        }
        if destination.is_dir()
        else set()
    )
    drifted = sorted(
        {p for p, text in wanted.items() if not _same(destination / p, text)} | (existing - set(wanted))
    )
    written: list[str] = []
    if not check:
        changed = {p: text for p, text in wanted.items() if p in drifted}
        executable = tuple(p for p in changed if p.endswith(".sh"))
        write_all(destination, changed, force=True, executable=executable)
        for stale in existing - set(wanted):
            (destination / stale).unlink()
        written = sorted(changed)
    return RenderResult(destination, tuple(written), tuple(drifted), check)


def _same(path: Path, text: str) -> bool:
    try:
        return path.read_text("utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False
