"""``devnix templates render``'s text: what was written, or what drifted."""

from __future__ import annotations

from devnix.commands.templates import RenderResult


def describe(result: RenderResult) -> str:
    if result.check:
        if not result.drifted:
            return f"{result.destination} matches the scaffolds"
        lines = [f"{result.destination} differs from the scaffolds (run `devnix templates render`):"]
        return "\n".join(lines + [f"  {path}" for path in result.drifted])
    if not result.written and not result.drifted:
        return f"{result.destination} is up to date"
    return "\n".join(f"wrote: {result.destination / path}" for path in result.written)
