"""``devnix publish``'s text: one line per item (what was pushed, tagged, kept), then a total."""

from __future__ import annotations

from devnix import publish as core
from devnix.commands.publish import ItemResult, PublishResult
from devnix.manifest import human_size


def describe(result: PublishResult) -> str:
    lines = []
    for item in (*result.items, result.collection):
        lines.append(_describe_item(result.registry, item))
    if result.skipped:
        lines.append(
            f"skipped folders without {core.metadata_file(result.kind)}: {', '.join(result.skipped)}"
        )
    pushed = sum(1 for item in result.items if item.action != "unchanged")
    verb = "would publish" if result.dry_run else "published"
    lines.append(
        f"{verb} {pushed} of {len(result.items)} {core.human_kind(result.kind, len(result.items))} "
        f"to {result.registry}/{result.namespace}; {result.requests} requests"
    )
    return "\n".join(lines)


def _describe_item(registry_host: str, item: ItemResult) -> str:
    decision = item.decision
    name = f"{item.id} {item.version}" if item.version else item.id
    where = f"{registry_host}/{item.repository}"
    if item.action == "unchanged":
        tag = decision.tags[0] if decision.tags else item.version
        return f"{name}: unchanged at {where}:{tag} ({item.digest}); nothing pushed"
    line = (
        f"{name}: {item.action} {where}:{', '.join(decision.tags)} ({item.digest}, {human_size(item.size)})"
    )
    extras = []
    if decision.kept:
        extras.append(f"{', '.join(decision.kept)} kept by a higher version")
    if decision.forced and decision.replaces:
        extras.append(f"--force replaced {decision.replaces}")
    elif decision.forced and decision.highest:
        extras.append(f"--force: below the published {decision.highest}")
    if extras:
        line += "; " + "; ".join(extras)
    return line
