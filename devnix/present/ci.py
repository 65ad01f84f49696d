"""``devnix ci github``'s text: where each architecture builds, what re-runs the workflow, the files."""

from __future__ import annotations

from devnix.commands.ci import GithubResult
from devnix.present import files_written


def describe(result: GithubResult) -> str:
    """The text the CLI prints."""
    lines = [
        "builds:   "
        + ", ".join(f"{r.system} on {r.label}" for r in result.runners)
        + " (native), joined into one tag",
        f"registry: {result.registry}",
        f"re-runs:  on a push touching {', '.join(result.watched)}; by hand"
        + (f"; on schedule ({result.schedule}, UTC)" if result.schedule else ""),
        f"devnix:   pip install '{result.devnix_requirement}' on the runner",
    ]
    lines.extend(f"note:     {note}" for note in result.notes)
    lines.extend(files_written(result.directory, result.files, result.dry_run))
    return "\n".join(lines)
