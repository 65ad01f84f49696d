"""``devnix bootstrap``'s text: the steps as they run (plain lines, or progress bars on a terminal), Nix's
log when the build fails, and the summary of the result.

The progress bars are the one place outside the CLI that writes to the terminal: rich draws them live on
stderr while the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from devnix.bootstrap import NixBuildError
from devnix.commands.bootstrap import BootstrapResult, Event

if TYPE_CHECKING:
    from rich.console import Console


def describe(result: BootstrapResult) -> str:
    """The summary after a run: the image, the builder, each step's time and detail, the push."""
    lines = [
        f"{result.tag}: {result.platform} image {result.image_id[:19]} from {result.flake}",
        f"builder: {result.builder} ({result.builder_platform}, "
        f"{'emulated' if result.builder_emulated else 'native'}); store volume {result.volume}",
        "nix:     " + "; ".join(f"{k} = {v}" for k, v in result.nix_settings.items()),
    ]
    for remote in result.remote_builders:
        key = "the SSH agent" if remote["key"] == "agent" else "a key file"
        lines.append(
            f"remote:  {remote['uri']} ({','.join(remote['systems'])}; host key {remote['host_key']} "
            f"from {remote['host_key_from']}; signed in with {key})"
        )
    if result.built_on:
        lines.append(f"built on: {', '.join(result.built_on)}")
    elif result.remote_builders and not result.built:
        lines.append("built on: nothing to build (the store had it)")
    width = max((len(s.title) for s in result.steps), default=0)
    for step in result.steps:
        when = "skipped" if step.skipped else f"{step.seconds:6.1f} s"
        lines.append(f"  {step.title:<{width}}  {when:>8}  {step.detail}")
    lines.append(f"total:   {result.seconds:.1f} s")
    if result.pushed_digest:
        lines.append(f"pushed:  {result.tag}@{result.pushed_digest}")
    lines.extend(f"note:    {note}" for note in result.notes)
    return "\n".join(lines)


def event_line(event: Event) -> str | None:
    """A step event as a plain line for stderr (CI logs), or ``None`` for events only bars show."""
    if event.kind == "log":
        return f"  | {event.text}"
    if event.kind == "done":
        return f"[{event.title}] done in {event.seconds:.1f} s: {event.text}"
    if event.kind == "skip":
        return f"[{event.title}] skipped: {event.text}"
    if event.kind == "fail":
        return f"[{event.title}] failed after {event.seconds:.1f} s"
    return None


def build_log(error: NixBuildError) -> str:
    """Nix's last lines, shown above the one line saying what failed (on a terminal, where the bars
    showed only the latest line)."""
    return "\n".join(f"  | {line}" for line in error.log_tail)


@contextmanager
def progress_bars(console: Console | None = None) -> Iterator[Callable[[Event], None]]:
    """Bootstrap's step events as rich progress bars on stderr (a terminal), or on ``console``."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Column

    console = console or Console(stderr=True)
    # Fixed columns first, the note (the step's detail or Nix's last log line) takes what is left. The
    # columns read markup, so a note is escaped: Nix's lines and store paths are text ("[old]" included).
    progress = Progress(
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description}", table_column=Column(width=18, no_wrap=True)),
        BarColumn(bar_width=20),
        TextColumn("{task.fields[size]}", table_column=Column(width=16, no_wrap=True, justify="right")),
        TimeElapsedColumn(),
        TextColumn(
            "[dim]{task.fields[note]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")
        ),
        console=console,
        transient=False,
        expand=True,
    )
    tasks: dict[str, Any] = {}

    def size(completed: int | None, total: int | None) -> str:
        if completed is None:
            return ""
        if total:
            return f"{completed / 1e6:.1f}/{total / 1e6:.1f} MB"
        return f"{completed / 1e6:.1f} MB"

    def show(event: Event) -> None:
        task = tasks.get(event.step)
        if event.kind == "start":
            tasks[event.step] = progress.add_task(event.title, total=None, note="", size="")
        elif task is None and event.kind == "skip":
            task = tasks[event.step] = progress.add_task(
                f"[dim]{event.title}[/]", total=1, note=f"skipped: {escape(event.text)}", size=""
            )
            progress.update(task, completed=1)
        elif task is None:
            return
        elif event.kind == "progress":
            progress.update(
                task,
                completed=event.completed,
                total=event.total or None,
                size=size(event.completed, event.total),
            )
        elif event.kind == "log":
            progress.update(task, note=escape(event.text))
        elif event.kind == "done":
            total = progress.tasks[task].total or 1
            progress.update(task, total=total, completed=total, note=escape(event.text))
        elif event.kind == "fail":
            progress.update(task, description=f"[red]{event.title}[/]", note="failed")
            progress.stop_task(task)

    with progress:
        yield show
