"""Pure: doctor's words (statuses, engine kinds, checks) and the facts it judges, gathered by
:mod:`devnix.commands.doctor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from devnix.doctor.server import ServerProbe
from devnix.images import Filesystem
from devnix.platforms import Platform

STORE_VOLUME_PREFIX = "devnix-nix-"
GIB = 1024**3
# Below this the engine cannot pull a Nix image and build anything: fail. Below WARN_FREE: warn, because a
# Nix store grows by gigabytes with a single nixpkgs evaluation and a few builds.
FAIL_FREE = 2 * GIB
WARN_FREE = 10 * GIB


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class Kind(str, Enum):
    """Engine kinds, named as the JSON output spells them."""

    DOCKER_DESKTOP = "docker-desktop"
    COLIMA = "colima"
    LIMA = "lima"
    RANCHER_DESKTOP = "rancher-desktop"
    ORBSTACK = "orbstack"
    PODMAN = "podman"
    DOCKERD = "dockerd"

    @property
    def display_name(self) -> str:
        return _TITLES[self]

    @property
    def cli(self) -> str:
        """The CLI that works on this engine's image store (Podman's is not dockerd's)."""
        return "podman" if self is Kind.PODMAN else "docker"

    def in_vm_on(self, host_os: str) -> bool:
        """Whether this kind runs its engine inside a Linux VM of its own on a host of ``host_os``.

        Podman is the one kind that is both: `podman machine` on macOS and Windows, the host's own
        kernel on Linux (measured here: Debian's Podman 4.3 is a plain service, as dockerd is).
        """
        if self is Kind.PODMAN:
            return host_os != "linux"
        return self is not Kind.DOCKERD


_TITLES = {
    Kind.DOCKER_DESKTOP: "Docker Desktop",
    Kind.COLIMA: "Colima",
    Kind.LIMA: "Lima",
    Kind.RANCHER_DESKTOP: "Rancher Desktop",
    Kind.ORBSTACK: "OrbStack",
    Kind.PODMAN: "Podman",
    Kind.DOCKERD: "dockerd",
}


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    id: str
    status: Status
    message: str
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status.value, "message": self.message, "hint": self.hint}


# --- facts --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointFacts:
    """Which engine the Docker CLI would use, and how that was decided."""

    host: str  # unix:///..., tcp://..., ssh://...
    context: str
    source: str  # devnix.engine.Endpoint.source: "DOCKER_HOST", "context", "default", "podman-rootless"...
    resolved: str | None = None  # the socket path with symlinks resolved, when it is a local socket
    context_also: str | None = None  # a context that DOCKER_HOST overrides
    error: str | None = None  # endpoint() itself failed (a selected context without an endpoint)
    error_hint: str | None = None  # what to do about that failure (it is about configuration)


@dataclass(frozen=True)
class Probe:
    """Outcome of a probe: True/False when proven, None when it could not tell (and ``detail`` says why)."""

    result: bool | None
    detail: str


@dataclass(frozen=True)
class Disk:
    free: int | None = None  # bytes free where the engine keeps images (from a probe's df)
    total: int | None = None
    usage: Mapping[str, int] = field(default_factory=dict)  # images, containers, volumes, build cache
    detail: str = ""  # why free space is unknown


@dataclass(frozen=True)
class Devcontainer:
    """What the project's ``.devcontainer/`` says, and what the image's registry (or the engine) said."""

    path: str
    error: str | None = None
    image: str | None = None
    built: bool = False  # build.dockerfile / dockerComposeFile instead of image
    pinned: Platform | None = None  # --platform in runArgs or build.options
    image_platforms: tuple[Platform, ...] | None = None
    platforms_detail: str = ""  # where image_platforms came from, or why they are unknown
    local_platform: Platform | None = None  # the engine's copy under the image's tag (None: none)
    nix_conf: Mapping[str, str] | None = None  # parsed .devcontainer/nix.conf, None when there is none
    store_volume: str | None = None  # source of a devnix-nix-* volume mounted at /nix
    # `devnix validate`'s Nix findings that doctor has no check of its own for: (id, severity, message, hint)
    lint: tuple[tuple[str, str, str, str], ...] = ()
    dockerfile: str | None = None  # build.dockerfile (or dockerFile), as the config names it
    base_image: str | None = None  # that Dockerfile's FROM, when it can be told
    loader_step: str | None = None  # what in the config adds devnix's FHS loader at build time
    filesystem: Filesystem = Filesystem.UNKNOWN  # the image's layout without running it
    filesystem_detail: str = ""  # where that came from
    server: ServerProbe | None = None  # the vscode-server probe of the image (base_image for a build)
    notes: tuple[str, ...] = ()  # values of the wrong shape that doctor left out (devconfig.Note)
    keep_id_user: str | None = None  # DevConfig.podman_keep_id_user

    @property
    def probe_image(self) -> str | None:
        """The image VS Code's server would run in, before any Dockerfile step."""
        return self.image or self.base_image


@dataclass(frozen=True)
class Facts:
    endpoint: EndpointFacts
    host_os: str  # darwin, linux, windows
    host_arch: str  # OCI name
    info: Mapping[str, Any] | None = None  # None: the engine did not answer
    version: Mapping[str, Any] | None = None
    unreachable: str | None = None  # why the engine did not answer
    emulation: Mapping[str, Probe] = field(default_factory=dict)  # by platform, the non-native ones
    mount: Probe | None = None
    directory: str = "."
    disk: Disk | None = None
    store_volumes: Mapping[str, int | None] | None = None  # name -> bytes (None: size unknown)
    store_volumes_detail: str = ""
    devcontainer: Devcontainer | None = None
    vscode: VSCodeSettings | None = None  # None: not read
    builders: tuple[RemoteBuilder, ...] | None = None  # None: this host has no Nix configuration


@dataclass(frozen=True)
class RemoteBuilder:
    """A remote builder this host's Nix is configured with (nix.conf ``builders``, a machines file), and
    what happened when devnix tried it over ssh as Nix would."""

    uri: str
    systems: tuple[str, ...]
    source: str  # the file that names it
    answered: bool | None  # None: not tried (no ssh client here, or an entry devnix cannot read)
    detail: str  # the remote's ``nix-store --version``, or why it did not answer
    problem: str | None = None  # devnix.builders.connection_problem: host-key, refused-key, unreachable...

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "systems": list(self.systems)}


@dataclass(frozen=True)
class VSCodeSettings:
    """What VS Code's user settings say about the CLI its Dev Containers run, and what is on PATH here."""

    docker_path: str | None = None  # dev.containers.dockerPath (None: not set)
    settings_file: str | None = None  # the settings.json that set it, or the first one found
    error: str | None = None  # a settings.json that could not be read
    podman_cli: str | None = None  # where `podman` is on PATH, None when it is not


@dataclass(frozen=True)
class EngineSummary:
    os: str | None
    arch: str | None
    kind: Kind | None
    version: str | None
    context: str
    endpoint: str
    evidence: str = ""
    rootless: bool | None = None  # None: the engine did not answer


@dataclass(frozen=True)
class Report:
    engine: EngineSummary
    host_os: str
    host_arch: str
    emulation: Mapping[str, bool | None]
    checks: tuple[Check, ...]
    builders: tuple[RemoteBuilder, ...] = ()

    @property
    def failed(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)

    @property
    def reachable(self) -> bool:
        return self.engine.os is not None

    def to_json(self) -> dict[str, Any]:
        engine = self.engine
        return {
            "engine": {
                "os": engine.os,
                "arch": engine.arch,
                "kind": engine.kind.value if engine.kind else None,
                "version": engine.version,
                "context": engine.context,
                "endpoint": engine.endpoint,
                "rootless": engine.rootless,
            },
            "host": {"os": self.host_os, "arch": self.host_arch},
            "emulation": dict(self.emulation),
            "builders": [b.to_json() for b in self.builders],
            "checks": [c.to_json() for c in self.checks],
        }
