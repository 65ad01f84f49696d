"""``devnix init``'s text: each fact with where it came from, then the files written (or the diff)."""

from __future__ import annotations

from devnix.commands.init import InitResult
from devnix.images import Filesystem
from devnix.plan import Plan, Source
from devnix.present import files_written

_SOURCE_WORDS = {
    Source.FLAG: "from --platform",
    Source.ENGINE: "the Docker engine's",
    Source.HOST: "this host's (no Docker engine answered)",
    Source.REGISTRY: "from the registry",
    Source.LOCAL: "from the engine's local copy (the registry could not be reached)",
    Source.CATALOG: "from devnix's catalog (neither the registry nor the engine could tell)",
    Source.ASSUMED: "assumed from --platform (nothing could tell)",
}


def describe(result: InitResult) -> str:
    """The text the CLI prints."""
    plan = result.plan
    how = "emulated" if plan.emulated else "native"
    lines = [
        f"platform: {plan.platform} ({how}; target {_SOURCE_WORDS[plan.target_source]}"
        + (f", engine {plan.engine_platform}" if plan.target_source is Source.FLAG else "")
        + ")",
        f"image:    {plan.image.familiar} ({', '.join(str(p) for p in plan.image_platforms.platforms)} "
        f"{_SOURCE_WORDS[plan.image_platforms.source]})",
    ]
    lines.append(f"layout:   {_layout_line(plan)}")
    if plan.emulated:
        lines.append("nix:      filter-syscalls = false (emulation cannot load Nix's seccomp filter)")
    lines.extend(f"note:     {note}" for note in result.notes)
    if result.merged is not None:
        if not result.files:
            lines.append(f"unchanged: {result.directory / result.merged} already has devnix's settings")
        elif result.dry_run:
            lines.append(result.diff.rstrip("\n"))
        else:
            lines.extend(f"updated:  {result.directory / path}" for path in sorted(result.files))
        return "\n".join(lines)
    lines.extend(files_written(result.directory, result.files, result.dry_run))
    return "\n".join(lines)


def _layout_line(plan: Plan) -> str:
    """What init knows of the image's layout, where from, and what it did about VS Code's server."""
    where = {
        Source.CATALOG: "devnix's catalog",
        Source.REGISTRY: "its config's PATH, from the registry",
        Source.LOCAL: "its config's PATH, from the engine's local copy",
    }.get(plan.filesystem_source, "")
    fs = plan.filesystem
    known = f"{fs.value} (from {where})" if fs is not Filesystem.UNKNOWN else "unknown (nothing could tell)"
    if plan.fhs_loader:
        if fs is Filesystem.STORE_ONLY:
            return f"{known}: the Dockerfile adds an FHS loader so that VS Code's server can start"
        return f"{known}: the Dockerfile adds an FHS loader for VS Code's server (a no-op if it has one)"
    if fs is Filesystem.FHS:
        return f"{known}: VS Code's server starts as it is"
    return f"{known}: no FHS loader step (--no-fhs-loader); VS Code's server cannot start if it is store-only"
