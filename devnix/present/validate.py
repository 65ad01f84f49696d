"""``devnix validate``'s text: compiler-style lines an editor can jump to."""

from __future__ import annotations

from devnix import jsonc
from devnix.commands.validate import ValidateResult


def describe(result: ValidateResult) -> str:
    """Compiler-style lines: ``FILE:LINE:COL: <json path>: message``."""
    skipped = []
    if result.schema_skipped:
        skipped.append(f"{result.file}: schema check skipped: {result.schema_skipped}")
    if not result.findings:
        return "\n".join([*skipped, f"{result.file}: ok"])
    lines = skipped
    for f in result.findings:
        where = f"{f.file}:{f.line}:{f.column}:"
        if f.kind == "syntax":
            lines.append(f"{where} {f.message}")
        elif f.kind == "schema":
            lines.append(f"{where} {jsonc.format_path(f.path or ())}: {f.message}")
        else:
            lines.append(f"{where} {jsonc.format_path(f.path or ())}: {f.severity}: {f.message} [{f.rule}]")
            if f.hint:
                lines.append(f"    hint: {f.hint}")
    return "\n".join(lines)
