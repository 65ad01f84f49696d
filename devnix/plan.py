"""Pure: from what is known about the engine, the image and the user's wishes, decide how Nix will run.

Nothing here talks to Docker or a registry; :mod:`devnix.commands.init` gathers the facts and passes them
in, which keeps every decision testable with plain values (the Apple Silicon cases included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from devnix.errors import UsageError
from devnix.images import Filesystem, ImageRef
from devnix.nixconf import NixOptions, Setting, settings
from devnix.platforms import SUPPORTED, Platform


class Source(str, Enum):
    """Where a fact came from; shown to the user so a fallback is never silent."""

    FLAG = "flag"
    ENGINE = "engine"
    HOST = "host"
    REGISTRY = "registry"
    LOCAL = "local"  # the engine's local copy of the image
    CATALOG = "catalog"
    ASSUMED = "assumed"  # nothing could tell; the user's --platform is taken on trust


@dataclass(frozen=True)
class Known:
    """A fact with its source."""

    platforms: tuple[Platform, ...]
    source: Source
    digest: str | None = None  # the digest of the tag (index or manifest), when a registry said it


@dataclass(frozen=True)
class Facts:
    """Everything :func:`decide` needs."""

    image: ImageRef
    image_platforms: Known
    engine_platform: Platform
    engine_source: Source  # ENGINE, or HOST when no engine answered
    requested_platform: Platform | None = None
    nix: NixOptions = field(default_factory=NixOptions)
    nix_path: str = ""
    store_volume: bool = False
    # FHS or store-only, and who said so (catalog, the registry's image config, the local copy).
    filesystem: Filesystem = Filesystem.UNKNOWN
    filesystem_source: Source = Source.ASSUMED
    fhs_loader: bool | None = None  # --fhs-loader / --no-fhs-loader; None: follow the layout


@dataclass(frozen=True)
class Plan:
    """How the dev container will run Nix."""

    image: ImageRef
    platform: Platform  # the platform the container runs as
    engine_platform: Platform
    emulated: bool
    pin_platform: bool  # whether the config must name the platform (runArgs / build options)
    settings: tuple[Setting, ...]
    nix_path: str
    store_volume: str | None  # volume name prefix, keyed to the image digest
    image_platforms: Known
    engine_source: Source
    target_source: Source
    notes: tuple[str, ...]
    filesystem: Filesystem = Filesystem.UNKNOWN
    filesystem_source: Source = Source.ASSUMED
    # Whether the config adds devnix's FHS loader step so that VS Code's server can start.
    fhs_loader: bool = True


def decide(facts: Facts) -> Plan:
    """Choose the platform, whether it is emulated, and the Nix settings that follow."""
    available = [p for p in facts.image_platforms.platforms if str(p) in SUPPORTED]
    engine = facts.engine_platform
    notes: list[str] = []
    listing = ", ".join(str(p) for p in available) or "none that devnix supports"

    if facts.requested_platform is not None:
        target, target_source = facts.requested_platform, Source.FLAG
    else:
        target, target_source = engine, facts.engine_source

    if facts.image_platforms.source is Source.ASSUMED or _has(available, target):
        platform = target
    elif facts.requested_platform is not None:
        raise UsageError(
            f"image {facts.image.familiar} has no {target} variant (it has {listing})",
            hint="drop --platform, pick another --image, or build one with `devnix bootstrap`",
        )
    elif available:
        platform = _prefer_native(available, engine)
        notes.append(
            f"{facts.image.familiar} has no {target} variant; using {platform} under emulation "
            "(expect builds several times slower); `devnix bootstrap` builds a native image"
        )
    else:
        raise UsageError(
            f"image {facts.image.familiar} has no linux/amd64 or linux/arm64 variant",
            hint="pick a Nix image built for Linux with --image",
        )

    emulated = not platform.same_machine(engine)
    if emulated and facts.requested_platform is not None:
        notes.append(
            f"{platform} runs under emulation on this {engine} engine (expect builds several times slower)"
        )
    if facts.store_volume and not facts.image_platforms.digest:
        raise UsageError(
            "--store-volume needs the image's digest, and no registry or local copy gave one",
            hint="pull the image once (docker pull) or drop --store-volume",
        )
    volume = None
    if facts.store_volume and facts.image_platforms.digest:
        volume = store_volume_name(facts.image_platforms.digest)
    return Plan(
        image=facts.image,
        platform=platform,
        engine_platform=engine,
        emulated=emulated,
        pin_platform=emulated,
        settings=tuple(settings(facts.nix, emulated=emulated)),
        nix_path=facts.nix_path,
        store_volume=volume,
        image_platforms=facts.image_platforms,
        engine_source=facts.engine_source,
        target_source=target_source,
        notes=tuple(notes),
        filesystem=facts.filesystem,
        filesystem_source=facts.filesystem_source,
        fhs_loader=wants_fhs_loader(facts),
    )


def wants_fhs_loader(facts: Facts) -> bool:
    """Store-only images need the step; so may an image nothing could tell about, and the step does
    nothing where an FHS loader exists. The user's flag wins."""
    if facts.fhs_loader is not None:
        return facts.fhs_loader
    return facts.filesystem is not Filesystem.FHS


def store_volume_name(digest: str) -> str:
    """A /nix volume per image digest: a new image gets a fresh volume seeded from its own store.

    Docker copies an image's content into a named volume only when the volume is new, so a volume that
    outlives its image hides the new image's /nix (devcontainers/features#1505). Keying the name to the
    digest makes a changed image mean a new volume.
    """
    algorithm, _, hexdigits = digest.partition(":")
    return f"devnix-nix-{algorithm}-{hexdigits[:16]}"


def stale_copy(
    local: Platform, image_platforms: tuple[Platform, ...], engine: Platform, pinned: Platform | None
) -> Platform | None:
    """The variant to pull when the engine's copy of a tag is not the one a config should start.

    After an emulated run pulled another variant of a multi-platform tag, the engine keeps that copy
    under the tag. ``docker run`` without ``--platform`` starts it as it is (Docker warns only on its own
    stderr), so a config written for the native variant runs emulated, with Nix's syscall filter on; with
    ``--platform`` the copy does not match what the config pins. None: the copy is the right one, or
    nothing says which one is (a single-platform tag, a pin the tag does not have).
    """
    if pinned is not None:
        if image_platforms and not _has(list(image_platforms), pinned):
            return None  # the platform check says the tag lacks it; a pull would fail too
        wanted: Platform | None = pinned
    elif len(image_platforms) < 2:
        return None
    else:
        wanted = next((p for p in image_platforms if p.same_machine(engine)), None)
    if wanted is None or local.same_machine(wanted):
        return None
    return wanted


def pull_command(platform: Platform, image: str, cli: str = "docker") -> str:
    """What puts the ``platform`` variant of ``image`` under its tag in the engine (``cli``: docker or
    podman, the engine's own tool)."""
    return f"{cli} pull --platform {platform} {image}"


def _has(platforms: list[Platform], wanted: Platform) -> bool:
    return any(p.same_machine(wanted) for p in platforms)


def _prefer_native(platforms: list[Platform], engine: Platform) -> Platform:
    for candidate in platforms:
        if candidate.same_machine(engine):
            return candidate
    return platforms[0]
