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


def create(
    image: str,
    *,
    env: dict[str, str],
    labels: dict[str, str],
    volume: str,
    platform: str,
    network: str | None = None,
    binds: dict[str, str] | None = None,
) -> str:
    """Create the builder container: ``cat`` as its main process on a stdin devnix holds (see
    :func:`engine.attach_stdin`), the store volume at /nix, auto-removed, never committed.

    Built from the raw API body (``engine.create_container`` has no network or bind mounts): the
    network where remote builders are reachable, and an SSH agent's socket bound in by path.
    """
    mounts = [{"Type": "volume", "Source": volume, "Target": "/nix", "ReadOnly": False}]
    mounts += [
        {"Type": "bind", "Source": source, "Target": target, "ReadOnly": False}
        for source, target in (binds or {}).items()
    ]
    host_config: dict[str, Any] = {"AutoRemove": True, "Mounts": mounts}
    if network:
        host_config["NetworkMode"] = network
    spec = {
        "Image": image,
        "Entrypoint": ["cat"],
        "Cmd": [],
        "Env": [f"{key}={value}" for key, value in env.items()],
        "Labels": labels,
        "AttachStdin": True,
        "OpenStdin": True,
        "StdinOnce": True,
        "Tty": False,
        "HostConfig": host_config,
    }
    try:
        return engine.create_container_raw(spec, platform=platform)
    except EngineError as error:
        if network and "network" in error.message and "not found" in error.message:
            raise EngineError(
                f"the network {network} does not exist", hint="`docker network ls` lists the networks"
            ) from None
        raise
