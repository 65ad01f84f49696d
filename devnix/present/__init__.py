"""What the CLI shows: every command's result as text, one module per command.

Commands return result objects and print nothing; ``devnix.cli`` prints what these functions return
(``--json`` prints the result's ``to_json()`` instead). Only bootstrap's progress bars draw on the
terminal themselves, live, while the run goes on. rich is imported inside the functions that draw, so
importing this package costs nothing at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def files_written(directory: Path, files: Mapping[str, str], dry_run: bool) -> list[str]:
    """One line per file a command wrote, or would write (then with its text, indented), in name order."""
    verb = "would write" if dry_run else "wrote"
    lines = []
    for path, text in sorted(files.items()):
        lines.append(f"{verb}:    {directory / path}")
        if dry_run:
            lines.extend(f"    | {line}" for line in text.splitlines())
    return lines
