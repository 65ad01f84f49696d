"""``devnix manifest``'s text: the index written (or that would be), and what a tag holds."""

from __future__ import annotations

from devnix import manifest as core
from devnix.commands.manifest import CreateResult, InspectResult
from devnix.manifest import Entry


def describe_create(result: CreateResult) -> str:
    index = result.index
    verb = "pushed" if result.pushed else "would push"
    count = sum(1 for e in index.entries if e.platform_key is not None)
    lines = [
        f"{verb} {result.target.familiar}: {core.kind(index.media_type)} of {count} platform"
        f"{'s' if count != 1 else ''}, {index.size} B, {index.digest}"
    ]
    lines.extend(_entry_lines(index.entries))
    if result.replaced:
        lines.append(f"replaced: {', '.join(result.replaced)}")
    if result.kept:
        lines.append(f"kept:     {', '.join(result.kept)}")
    blobs = result.transfers.blobs
    if result.pushed and (blobs or result.transfers.manifests):
        parts = [f"{n} {action}" for action, n in sorted(blobs.items())]
        copied = f" ({core.human_size(result.transfers.bytes_copied)} streamed)" if "copied" in blobs else ""
        lines.append(
            f"blobs:    {', '.join(parts) or 'none'}{copied}; {result.transfers.manifests} manifest"
            f"{'s' if result.transfers.manifests != 1 else ''} written to {result.target.repository}"
        )
    elif blobs:
        lines.append(
            f"blobs:    {blobs.get('planned', 0)} to mount (or copy) into {result.target.repository}, "
            f"{result.transfers.manifests} manifests to write there"
        )
    lines.extend(f"note:     {note}" for note in result.notes)
    lines.append(f"requests: {result.requests}")
    if not result.pushed:
        lines.append("index (dry run; --push writes it):")
        lines.extend(f"    | {line}" for line in index.body.decode().splitlines())
    return "\n".join(lines)


def _entry_lines(entries: tuple[Entry, ...]) -> list[str]:
    width = max((len(e.platform_text) for e in entries), default=0)
    return [
        f"  {e.platform_text:<{width}}  {e.digest}  {core.human_size(e.size):>8}  "
        f"{core.kind(e.media_type)}  from {e.source}"
        for e in entries
    ]


def describe_inspect(result: InspectResult) -> str:
    lines = [
        f"{result.ref.familiar}",
        f"  media type: {result.media_type} ({core.kind(result.media_type)})",
        f"  digest:     {result.digest}",
        f"  size:       {core.human_size(result.size)}",
        "  platforms:" if result.is_index else "  platform:",
    ]
    width = max((len(i.entry.platform_text) for i in result.entries), default=0)
    for item in result.entries:
        entry = item.entry
        line = f"    {entry.platform_text:<{width}}  {entry.digest}  manifest {core.human_size(entry.size)}"
        if item.summary is not None:
            total = item.summary.config_size + item.summary.layers_size
            layers = len(item.summary.layers)
            line += f", image {core.human_size(total)} in {layers} layer{'s' if layers != 1 else ''}"
        line += f"  ({core.kind(entry.media_type)})"
        lines.append(line)
    return "\n".join(lines)
