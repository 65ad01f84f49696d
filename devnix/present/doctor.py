"""``devnix doctor``'s text: the engine in one line, a table of checks, and a count."""

from __future__ import annotations

import shutil

from devnix.commands.doctor import DoctorResult
from devnix.doctor import Status

_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


def describe(result: DoctorResult, width: int | None = None) -> str:
    """The table the CLI prints: status, check, finding, what to do."""
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    report = result.report
    engine_summary = report.engine
    width = width or shutil.get_terminal_size((120, 24)).columns
    table = Table(show_header=True, header_style="bold", expand=False, show_lines=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("finding", ratio=3)
    table.add_column("what to do", ratio=2)
    for check in report.checks:
        # Text, not markup: messages quote paths, image names and engine errors, where "[old]" is text.
        table.add_row(
            f"[{_STYLE[check.status]}]{check.status.value}[/]",
            Text(check.id),
            Text(check.message),
            Text(check.hint or ""),
            style=None,
        )
    buffer = io.StringIO()
    # force_terminal keeps the colours; click.echo strips them again when stdout is not a terminal.
    console = Console(file=buffer, width=width, force_terminal=True, color_system="standard", highlight=False)
    if engine_summary.kind is not None and engine_summary.os is not None:
        console.print(
            f"engine: {engine_summary.kind.display_name} {engine_summary.version} "
            f"{engine_summary.os}/{engine_summary.arch} at {engine_summary.endpoint} "
            f"(context {engine_summary.context}); host: {report.host_os}/{report.host_arch}",
            markup=False,
        )
    console.print(table)
    failed = sum(c.status is Status.FAIL for c in report.checks)
    warned = sum(c.status is Status.WARN for c in report.checks)
    console.print(
        f"{len(report.checks)} checks: {failed} failed, {warned} warnings ({result.seconds:.1f} s)",
        markup=False,
    )
    return buffer.getvalue().rstrip("\n")
