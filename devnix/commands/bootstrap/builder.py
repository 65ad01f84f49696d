"""The builder: its image (pulled when the engine lacks it), its store volume, its container's stdin."""

from __future__ import annotations

import contextlib
from typing import Any

from devnix import bootstrap as core
from devnix import engine, platforms
from devnix.commands.bootstrap.image import layer_progress, platform_of
from devnix.commands.bootstrap.steps import Handle
from devnix.errors import EngineError
from devnix.images import parse_ref
from devnix.platforms import Platform


def ensure_image(image: str, platform: str | None, step: Handle) -> tuple[str, Platform]:
    """The builder image's id and platform; pulled (for its own platform) when the engine lacks it."""
    ref = parse_ref(image)
    wanted = platforms.parse(platform) if platform else None
    details = engine.image_details(ref.familiar) or engine.image_details(str(ref))
    if details is not None and (wanted is None or platform_of(details).same_machine(wanted)):
        return str(details["Id"]), platform_of(details)
    pull_platform = wanted or platforms.parse(core.DEFAULT_BUILDER_PLATFORM)
    engine.pull_with_progress(str(ref), platform=str(pull_platform), on_event=layer_progress(step))
    details = engine.image_details(str(ref)) or engine.image_details(ref.familiar)
    if details is None:
        raise EngineError(f"pulled {ref.familiar}, but the engine does not show it")
    return str(details["Id"]), platform_of(details)


def stale_volumes(builder_image: str, builder_id: str, cli: str = "docker") -> list[str]:
    """Store volumes seeded from an earlier image of the same name: never reused (their Nix may differ
    from the new builder's), so say how to free their space (with the engine's ``cli``) rather than
    deleting a user's cache."""
    notes = []
    for found in engine.volumes(core.STORE_VOLUME_PREFIX):
        labels = found.get("Labels") or {}
        if (
            labels.get(f"{engine.BOOTSTRAP_LABEL}.builder-image") == builder_image
            and labels.get(f"{engine.BOOTSTRAP_LABEL}.builder-id") != builder_id
        ):
            name = found.get("Name")
            notes.append(
                f"store volume {name} is from an older {builder_image}; `{cli} volume rm {name}` frees it"
            )
    return notes


def close(attachment: Any) -> None:
    """Close the builder's stdin: its ``cat`` ends, and the container (auto-removed) with it."""
    with contextlib.suppress(OSError):
        attachment.close()
    raw = getattr(attachment, "_sock", None)
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.close()
