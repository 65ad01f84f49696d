"""``devnix ci github``'s text: where each architecture builds, what re-runs the workflow, the files."""

from __future__ import annotations

from devnix.commands.ci import GithubResult


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
    verb = "would write" if result.dry_run else "wrote"
    for path, text in sorted(result.files.items()):
        lines.append(f"{verb}:    {result.directory / path}")
        if result.dry_run:
            lines.extend(f"    | {line}" for line in text.splitlines())
    return "\n".join(lines)
