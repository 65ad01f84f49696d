"""Pure: what ``devnix doctor`` concludes from what the engine, the host and the project answered.

Nothing here talks to the engine: :mod:`devnix.commands.doctor` gathers :class:`Facts` (the engine's
``/info`` and ``/version``, probe containers' outcomes, the project's files) and :func:`report` turns them
into verdicts. That split is what lets recorded answers of engines that cannot run on a Linux CI machine
(Docker Desktop on a Mac, Colima, OrbStack, ...) be tested for kind, architecture and hints.

The engine kind comes from the engine's own answers first (``OperatingSystem``, ``Name``, ``Labels``,
``KernelVersion``, ``/version``'s ``Platform.Name`` and ``Components``), and only then from where its
socket lives (``~/.colima/...``): ``/var/run/docker.sock`` on a Mac is a symlink to whichever engine
installed it last, so the path alone can lie.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from devnix import podman
from devnix.devconfig import DevConfig
from devnix.dockerconfig import endpoint_origin
from devnix.fhsloader import SCRIPT_NAME
from devnix.images import Filesystem
from devnix.plan import pull_command, stale_copy
from devnix.platforms import SUPPORTED, Platform, normalize_arch

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


# What VS Code's server (a glibc `node`) needs besides the FHS loader, found through that loader.
SERVER_LIBRARIES = ("libstdc++.so.6", "libgcc_s.so.1")

# The probe the vscode-server check runs with `/bin/sh -c` in the dev container's image. POSIX sh and
# only what a store-only Nix image has on its PATH (coreutils, grep; no /usr/bin): it prints facts, one
# per line, and :func:`parse_server_probe` judges them. The loader's own `--help` (glibc >= 2.33) lists
# the folders and the ld.so.cache it searches, in order; an older glibc gets the usual folders.
SERVER_PROBE = r"""export LC_ALL=C
m=$(uname -m)
echo "machine $m"
case $m in
    x86_64 | amd64) l=/lib64/ld-linux-x86-64.so.2 ;;
    aarch64 | arm64) l=/lib/ld-linux-aarch64.so.1 ;;
    *) exit 0 ;;
esac
[ -d /nix/store ] && echo nix-store
[ -e /usr/lib/devnix-fhs/.devnix-fhs-loader ] && echo devnix-loader
echo "loader $l"
[ -e "$l" ] || exit 0
echo "resolved $(readlink -f "$l")"
libs() {
    for n in libstdc++.so.6 libgcc_s.so.1; do [ -e "$1/$n" ] && echo "lib $n $1/$n"; done
}
cached() {
    echo "cache $1"
    [ -f "$1" ] || return 0
    for n in libstdc++.so.6 libgcc_s.so.1; do
        p=$(grep -ao "/[-+._/[:alnum:]]*/$n" "$1" 2>/dev/null | head -n 1)
        [ -n "$p" ] && [ -e "$p" ] && echo "lib $n $p"
    done
}
"$l" --help 2>/dev/null | {
    on=
    while IFS= read -r line; do
        case $line in "Shared library search path:"*) on=1; echo help; continue ;; esac
        [ -n "$on" ] || continue
        [ -n "$line" ] || break
        line=${line#"${line%%[! ]*}"}
        case $line in
            "(libraries located via "*) c=${line#"(libraries located via "}; cached "${c%)}" ;;
            /*) d=${line%% (*}; echo "search $d"; libs "$d" ;;
        esac
    done
    if [ -z "$on" ]; then
        cached /etc/ld.so.cache
        for d in "/lib/$m-linux-gnu" "/usr/lib/$m-linux-gnu" /lib64 /usr/lib64 /lib /usr/lib; do
            echo "search $d"; libs "$d"
        done
    fi
}
"""


@dataclass(frozen=True)
class ServerProbe:
    """What the vscode-server probe found in an image (``ran`` False: it could not tell, ``detail`` why)."""

    image: str
    ran: bool
    detail: str = ""
    machine: str = ""
    loader: str | None = None  # the FHS loader path VS Code's server asks for on that machine
    loader_found: bool = False
    resolved: str | None = None  # where the loader path leads
    help: bool = False  # the loader listed its own search path (glibc >= 2.33)
    search: tuple[str, ...] = ()  # folders it searches, in order
    cache: str | None = None  # the ld.so.cache it reads
    libraries: Mapping[str, str] = field(default_factory=dict)  # SERVER_LIBRARIES found: name -> path
    nix_store: bool = False
    devnix_loader: bool = False  # devnix's FHS loader step ran in this image


def parse_server_probe(image: str, output: str) -> ServerProbe:
    """Read what :data:`SERVER_PROBE` printed."""
    values: dict[str, Any] = {"image": image, "ran": True}
    search: list[str] = []
    libraries: dict[str, str] = {}
    for line in output.splitlines():
        word, _, rest = line.strip().partition(" ")
        # devnix's loader searches its folder padded with slashes (fhs-loader.sh says why): show it once.
        rest = re.sub(r"//+", "/", rest)
        if word == "machine":
            values["machine"] = rest
        elif word == "loader":
            values["loader"] = rest
        elif word == "resolved":
            values["loader_found"], values["resolved"] = True, rest
        elif word in ("nix-store", "devnix-loader", "help"):
            values[word.replace("-", "_")] = True
        elif word == "search":
            search.append(rest)
        elif word == "cache":
            values["cache"] = rest
        elif word == "lib":
            name, _, where = rest.partition(" ")
            libraries.setdefault(name, where)  # the first one found is the one the loader takes
    if not values.get("machine"):
        return ServerProbe(image, False, f"the probe printed {output.strip()[:200]!r}")
    return ServerProbe(**values, search=tuple(search), libraries=libraries)


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


# --- engine kind --------------------------------------------------------------------------------------


def _labels(info: Mapping[str, Any]) -> list[str]:
    labels = info.get("Labels") or []
    return [str(label) for label in labels] if isinstance(labels, list) else []


def _platform_name(version: Mapping[str, Any]) -> str:
    platform = version.get("Platform")
    return str(platform.get("Name", "")) if isinstance(platform, dict) else ""


def kind_from_endpoint(host: str, context: str = "default") -> tuple[Kind | None, str]:
    """Guess the kind from the socket path and the context name alone (all there is when nobody answers)."""
    path = host.lower()
    name = context.lower()
    rules: tuple[tuple[Kind, tuple[str, ...], tuple[str, ...]], ...] = (
        (Kind.PODMAN, ("podman",), ("podman",)),
        (Kind.ORBSTACK, ("/.orbstack/",), ("orbstack",)),
        (Kind.RANCHER_DESKTOP, ("/.rd/", "rancher-desktop"), ("rancher-desktop",)),
        (Kind.COLIMA, ("/.colima/",), ("colima",)),
        (Kind.LIMA, ("/.lima/",), ("lima",)),
        (
            Kind.DOCKER_DESKTOP,
            (
                "/.docker/run/docker.sock",
                "docker.raw.sock",
                "dockerdesktop",
                "docker_engine",
                "com.docker.docker",
            ),
            ("desktop-linux", "desktop-windows"),
        ),
    )
    for kind, paths, names in rules:
        if any(p in path for p in paths):
            return kind, f"socket {host}"
        if any(name == n or name.startswith(f"{n}-") for n in names):
            return kind, f"context {context!r}"
    return None, ""


def detect_kind(
    info: Mapping[str, Any], version: Mapping[str, Any], endpoint: EndpointFacts
) -> tuple[Kind, str]:
    """The engine's kind and the evidence for it, the engine's own answers first."""
    operating_system = str(info.get("OperatingSystem", ""))
    name = str(info.get("Name", ""))
    kernel = str(info.get("KernelVersion", ""))
    labels = _labels(info)
    platform_name = _platform_name(version)

    if podman.answers_as_podman(version):
        return Kind.PODMAN, "/version lists a Podman Engine component"
    if operating_system == "OrbStack" or "orbstack" in kernel.lower():
        return Kind.ORBSTACK, f"/info OperatingSystem {operating_system!r}, kernel {kernel}"
    if (
        operating_system.startswith("Docker Desktop")
        or platform_name.startswith("Docker Desktop")
        or any(label.startswith("com.docker.desktop") for label in labels)
    ):
        return Kind.DOCKER_DESKTOP, f"/info OperatingSystem {operating_system!r}"
    if "rancher-desktop" in name or any("rancher-desktop" in label for label in labels):
        return Kind.RANCHER_DESKTOP, f"/info Name {name!r}"
    if name == "colima" or name.startswith("colima-"):
        return Kind.COLIMA, f"/info Name {name!r} (the Colima VM's host name)"
    if name.startswith("lima-"):
        return Kind.LIMA, f"/info Name {name!r} (a Lima VM's host name)"
    # Nothing in the answers: the endpoint, with symlinks resolved, is the next best witness.
    for where in (endpoint.resolved, endpoint.host):
        if where:
            guessed, evidence = kind_from_endpoint(where, endpoint.context)
            if guessed is not None:
                return guessed, evidence
    return (
        Kind.DOCKERD,
        f"/info OperatingSystem {operating_system!r}" if operating_system else "no sign of a VM",
    )


def rootless_of(info: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the engine runs without root, and the evidence. Podman 4.3's Docker-compatible ``/info``
    says ``Rootless`` (and no ``name=rootless`` security option, measured here); libpod's own ``/info``
    says ``host.security.rootless``; a rootless dockerd lists ``name=rootless`` in ``SecurityOptions``."""
    if isinstance(info.get("Rootless"), bool):
        return info["Rootless"], f"/info Rootless {str(info['Rootless']).lower()}"
    host = info.get("host")
    security = host.get("security") if isinstance(host, dict) else None
    if isinstance(security, dict) and isinstance(security.get("rootless"), bool):
        return security["rootless"], f"/info host.security.rootless {str(security['rootless']).lower()}"
    options = info.get("SecurityOptions")
    if isinstance(options, list) and any("name=rootless" in str(o).split(",") for o in options):
        return True, "/info SecurityOptions name=rootless"
    return False, "no rootless sign in /info"


def _lima_instance(host: str) -> str:
    match = re.search(r"/\.lima/([^/]+)/", host)
    return match.group(1) if match else "<instance>"


def _colima_profile(host: str, context: str) -> str:
    match = re.search(r"/\.colima/([^/]+)/", host)
    if match and match.group(1) not in ("default", "_lima"):
        return f" {match.group(1)}"
    if context.startswith("colima-"):
        return f" {context[len('colima-') :]}"
    return ""


# --- hints ---------------------------------------------------------------------------------------------


def start_hint(kind: Kind | None, endpoint: EndpointFacts, host_os: str, reason: str = "") -> str:
    """What to do when the engine does not answer, for the engine the endpoint points at."""
    where = endpoint.resolved or endpoint.host
    if kind is Kind.DOCKER_DESKTOP:
        hint = "start Docker Desktop (`open -a Docker` on a Mac) and wait for 'Engine running'"
    elif kind is Kind.COLIMA:
        profile = _colima_profile(where, endpoint.context)
        hint = f"start the VM: `colima start{profile}` (`colima status{profile}` says why it stopped)"
    elif kind is Kind.LIMA:
        hint = f"start the VM: `limactl start {_lima_instance(where)}`"
    elif kind is Kind.RANCHER_DESKTOP:
        hint = (
            "start Rancher Desktop, with Preferences > Container Engine set to dockerd (moby), not containerd"
        )
    elif kind is Kind.ORBSTACK:
        hint = "start OrbStack (`orb start`)"
    elif kind is Kind.PODMAN:
        hint = podman.start_hint(urlpath(where), host_os)
        if "permission denied" in reason.lower() and podman.is_rootful_socket(urlpath(where)):
            hint = "root's Podman socket is for root: run devnix with sudo, or use your own rootless Podman"
    elif host_os == "linux":
        hint = "start dockerd (`sudo systemctl start docker`)"
        if endpoint.source == "default":
            # devnix looked for Podman's sockets too and found none: either engine would do.
            hint += " or Podman (`systemctl --user start podman.socket`)"
        if "permission denied" in reason.lower():
            hint = "add yourself to the docker group (`sudo usermod -aG docker $USER`, then log in again)"
    else:
        hint = (
            "nothing answers there: start your engine (Docker Desktop, `colima start`, OrbStack, "
            "Rancher Desktop, `podman machine start`) or select its context (`docker context ls`)"
        )
    if endpoint.source == "DOCKER_HOST":
        hint += "; or unset DOCKER_HOST to use the Docker CLI's current context"
    elif endpoint.source == "context":
        hint += f"; or `docker context use default` instead of {endpoint.context!r}"
    return hint


def shared_folders_hint(kind: Kind, directory: str, remote: bool, host_os: str | None = None) -> str:
    """Why a bind mount of ``directory`` is empty in a container, for each engine, and what to do."""
    if remote:
        return (
            "the engine runs on another machine, so bind mounts see that machine's files: run devnix there, "
            "or copy the project into a volume"
        )
    if kind is Kind.PODMAN and host_os == "linux":
        return (
            "Podman on Linux sees this host's files, as the user it runs as: make "
            f"{directory} readable by that user, and on SELinux hosts (Fedora, RHEL) relabel the mount "
            "(`:z`, or `--security-opt label=disable` in runArgs)"
        )
    hints = {
        Kind.DOCKER_DESKTOP: (
            "Docker Desktop's VM sees only the folders in Settings > Resources > File sharing (by default "
            f"/Users, /Volumes, /private, /tmp, /var/folders): add {directory}"
        ),
        Kind.COLIMA: (
            "Colima's VM mounts only your home folder by default: add "
            f"`- location: {directory}` with `writable: true` under `mounts:` in "
            f"~/.colima/<profile>/colima.yaml (or `colima start --mount {directory}:w`), "
            "then `colima restart`"
        ),
        Kind.LIMA: (
            "a Lima VM mounts your home folder read-only and /tmp/lima by default: add "
            f"`- location: {directory}` with `writable: true` under `mounts:` in "
            "~/.lima/<instance>/lima.yaml, then `limactl stop` and `limactl start`"
        ),
        Kind.RANCHER_DESKTOP: (
            "Rancher Desktop's VM mounts your home folder and /Volumes: add "
            f"{directory} under `mounts:` in "
            "~/Library/Application Support/rancher-desktop/lima/_config/override.yaml, then restart it"
        ),
        Kind.ORBSTACK: (
            "OrbStack shares the whole Mac file system at the same paths: check that "
            f"{directory} is on a local disk and that OrbStack may read it (System Settings > Privacy)"
        ),
        Kind.PODMAN: (
            "a Podman machine mounts only your home folder (and /private, /var/folders on a Mac) by default: "
            f"recreate it with `podman machine init -v {directory}:{directory}`"
        ),
        Kind.DOCKERD: (
            "the engine does not see this folder: a rootless or snap-installed Docker (the snap sees only "
            "/home) or an engine in another VM or namespace; move the project under your home folder or "
            "use the engine's native install"
        ),
    }
    return hints[kind]


def emulation_hint(kind: Kind, platform: str, host_os: str | None = None) -> str:
    """How to let the engine run ``platform`` images, for each engine."""
    binfmt = "`docker run --privileged --rm tonistiigi/binfmt --install all` (QEMU binfmt in the VM)"
    if kind is Kind.PODMAN and host_os == "linux":
        # Podman here is no VM: the host kernel's binfmt handlers run foreign binaries, rootless too.
        return (
            f"install this host's QEMU binfmt handlers for {platform}: `sudo apt-get install "
            "qemu-user-static binfmt-support` (Debian, Ubuntu) or `sudo dnf install qemu-user-static` "
            "(Fedora)"
        )
    hints = {
        Kind.DOCKER_DESKTOP: (
            "Docker Desktop ships QEMU; on Apple Silicon turn on Settings > General > 'Use Rosetta for "
            "x86_64/amd64 emulation on Apple Silicon', and reset the VM if it still fails"
        ),
        Kind.COLIMA: f"`colima start --vm-type vz --vz-rosetta` (macOS 13+), or {binfmt}",
        Kind.LIMA: f"`limactl start --vm-type vz --rosetta` for amd64 (macOS 13+), or {binfmt}",
        Kind.RANCHER_DESKTOP: (
            "Preferences > Virtual Machine > Emulation: VZ with 'Enable Rosetta support' for amd64, or "
            + binfmt
        ),
        Kind.ORBSTACK: "OrbStack runs amd64 through Rosetta: turn on Settings > System > 'Use Rosetta'",
        Kind.PODMAN: (
            "on Apple Silicon Podman 5 uses Rosetta (`rosetta = true` under [machine] in containers.conf); "
            "otherwise install qemu-user-static in the machine (`podman machine ssh`)"
        ),
        Kind.DOCKERD: (
            f"install QEMU binfmt handlers for {platform}: `sudo apt-get install qemu-user-static "
            f"binfmt-support` (Debian, Ubuntu) or {binfmt}"
        ),
    }
    return hints[kind]


def disk_hint(kind: Kind, root: str, host_os: str | None = None) -> str:
    prune = "`docker system prune` (and `docker builder prune`) frees unused images and build cache"
    if kind is Kind.PODMAN and host_os == "linux":
        where = root or "/var/lib/containers/storage (~/.local/share/containers/storage rootless)"
        return f"free space on the file system of {where}, or `podman system prune` frees unused images"
    hints = {
        Kind.DOCKER_DESKTOP: f"raise Settings > Resources > Advanced > 'Virtual disk limit', or {prune}",
        Kind.COLIMA: f"grow the VM disk with `colima start --disk <GiB>` (it can only grow), or {prune}",
        Kind.LIMA: f"raise `disk:` in ~/.lima/<instance>/lima.yaml (needs a new instance), or {prune}",
        Kind.RANCHER_DESKTOP: f"Rancher Desktop's VM disk is fixed in size: {prune}",
        Kind.ORBSTACK: f"OrbStack's disk grows with the Mac's free space: free space on the Mac, or {prune}",
        Kind.PODMAN: f"`podman machine set --disk-size <GiB>` (grow only), or {prune}",
        Kind.DOCKERD: f"free space on the file system of {root or '/var/lib/docker'}, or {prune}",
    }
    return hints[kind]


# --- reading the project's files --------------------------------------------------------------------------


def devcontainer_from_config(path: str, config: DevConfig) -> Devcontainer:
    """The parts of a devcontainer.json's model doctor checks."""
    if not config.is_object:
        return Devcontainer(path, error=str(config.notes[0]))
    store_volume = next(
        (m.source for m in config.mounts if m.is_nix_volume and m.source.startswith(STORE_VOLUME_PREFIX)),
        None,
    )
    return Devcontainer(
        path,
        image=config.image,
        built=config.built,
        pinned=config.pinned,
        store_volume=store_volume,
        notes=tuple(note.message for note in config.notes),
        keep_id_user=config.podman_keep_id_user,
    )


# --- the report -------------------------------------------------------------------------------------------


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "kB") else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover - the loop always returns


def _remote(endpoint: EndpointFacts) -> bool:
    return not endpoint.host.startswith(("unix://", "npipe://")) and not any(
        local in endpoint.host for local in ("://localhost", "://127.", "://[::1]")
    )


def report(facts: Facts) -> Report:
    """All verdicts, in the order the table shows them."""
    endpoint = facts.endpoint
    if facts.info is None or facts.version is None:
        return _unreachable_report(facts)
    info, version = facts.info, facts.version
    kind, evidence = detect_kind(info, version, endpoint)
    engine_platform = Platform(
        str(version.get("Os") or info.get("OSType") or "linux").lower(),
        normalize_arch(str(version.get("Arch") or info.get("Architecture") or "")),
    )
    engine_version = str(version.get("Version") or info.get("ServerVersion") or "")
    rootless, rootless_evidence = rootless_of(info)
    summary = EngineSummary(
        os=engine_platform.os,
        arch=engine_platform.architecture,
        kind=kind,
        version=engine_version,
        context=endpoint.context,
        endpoint=endpoint.host,
        evidence=evidence,
        rootless=rootless,
    )
    emulation: dict[str, bool | None] = {}
    for name in SUPPORTED:
        if name == str(engine_platform):
            emulation[name] = True
        else:
            probe = facts.emulation.get(name)
            emulation[name] = probe.result if probe else None

    checks: list[Check] = [
        _endpoint_check(facts, summary),
        _engine_check(kind, engine_version, evidence, rootless, rootless_evidence),
        _platform_check(facts, kind, engine_platform),
    ]
    for name in SUPPORTED:
        if name != str(engine_platform):
            checks.append(_emulation_check(name, facts.emulation.get(name), kind, facts.host_os))
    checks.append(_mount_check(facts, kind))
    if facts.devcontainer is not None:
        checks.extend(_devcontainer_checks(facts.devcontainer, engine_platform, emulation, kind.cli))
        if kind is Kind.PODMAN and rootless is False and facts.devcontainer.keep_id_user:
            checks.append(_rootful_keep_id_check(facts.devcontainer.keep_id_user))
    checks.append(_disk_check(facts, kind, str(info.get("DockerRootDir", ""))))
    if facts.builders:
        checks.append(_builders_check(facts.builders))
    checks.append(_store_check(facts))
    if kind is Kind.PODMAN:
        checks.append(_docker_path_check(facts.vscode))
    return Report(summary, facts.host_os, facts.host_arch, emulation, tuple(checks), facts.builders or ())


def _engine_check(kind: Kind, version: str, evidence: str, rootless: bool, rootless_evidence: str) -> Check:
    """The engine's kind and version; for Podman (where both modes are common) and a rootless dockerd,
    whether it runs as root: a rootless engine's containers are the user's processes, and what their root
    writes in a bind mount belongs to the user outside."""
    if kind is Kind.PODMAN or rootless:
        mode = "rootless" if rootless else "rootful"
        message = f"{kind.display_name} {version}, {mode} ({evidence}; {rootless_evidence})"
        return Check("engine", Status.OK, message)
    return Check("engine", Status.OK, f"{kind.display_name} {version} ({evidence})")


# What to do about a remote builder that did not answer, by what ssh or Nix said.
_BUILDER_HINTS = {
    "host-key": "its host key is not the one the machines line pins (last field) or your known_hosts has: "
    "compare with `ssh-keyscan HOST`",
    "refused-key": "it refused the key: add the key's .pub to the remote's authorized_keys (nix-daemon "
    "connects with root's keys, so root must be able to read the key file too)",
    "unreachable": "nothing answers at that address: start the builder (nix-darwin's linux-builder: "
    "`sudo launchctl kickstart -k system/org.nixos.linux-builder`) or fix the address",
    "no-nix": "the remote has no nix-store on the PATH of a non-interactive ssh session: install Nix there",
}


def _builders_check(found: tuple[RemoteBuilder, ...]) -> Check:
    """Whether each configured remote builder answers; a builder that does not is a warning (bootstrap
    and Nix builds fall back on the local machine, or fail when ``max-jobs = 0``)."""

    def name(builder: RemoteBuilder) -> str:
        systems = ", ".join(builder.systems) or "any system"
        return f"{builder.uri} ({systems}; {builder.source})"

    silent = [b for b in found if not b.answered]
    if not silent:
        answers = "; ".join(f"{name(b)}: {b.detail}" for b in found)
        return Check("nix.builders", Status.OK, f"remote builders answer: {answers}")
    message = "; ".join(f"{name(b)} " + ("does not answer: " if b.answered is False else "not tried: ")
                        + b.detail for b in silent)  # fmt: skip
    first = next((b.problem for b in silent if b.problem in _BUILDER_HINTS), None)
    hint = _BUILDER_HINTS[first] if first else "try it as Nix does: `nix store ping --store URI`"
    return Check("nix.builders", Status.WARN, message, hint)


def _docker_path_check(vscode: VSCodeSettings | None) -> Check:
    """Whether VS Code's Dev Containers will drive Podman: they run the CLI ``dev.containers.dockerPath``
    names (``docker`` unless set), and the reference CLI the one ``--docker-path`` names."""
    check_id = "vscode.docker-path"
    line = f"`{podman.DOCKER_PATH_SETTING}`"
    cli = f"for the reference CLI: `devcontainer up {podman.CLI_FLAG}`"
    if vscode is None or vscode.error is not None:
        detail = vscode.error if vscode is not None and vscode.error else "its settings.json was not read"
        return Check(
            check_id,
            Status.WARN,
            f"unknown whether VS Code runs podman: {detail}",
            f"make sure VS Code's settings.json has {line}; {cli}",
        )
    setting, where = vscode.docker_path, vscode.settings_file or "VS Code's settings.json"
    if setting is not None and podman.is_podman_cli(setting):
        if vscode.podman_cli is None:
            return Check(
                check_id,
                Status.WARN,
                f"{where} sets {podman.DOCKER_PATH_KEY} to {setting!r}, but no podman CLI is on PATH here",
                "install podman (the CLI VS Code runs), or give its full path in the setting",
            )
        return Check(
            check_id,
            Status.OK,
            f"{where} sets {podman.DOCKER_PATH_KEY} to {setting!r}: VS Code's Dev Containers drive Podman; "
            f"{cli}",
        )
    if setting is not None:
        message = f"{where} sets {podman.DOCKER_PATH_KEY} to {setting!r}: VS Code runs that, not podman"
    else:
        message = (
            "the engine is Podman, and VS Code's Dev Containers run `docker` unless settings.json says "
            f"otherwise ({podman.DOCKER_PATH_KEY} is not set)"
        )
    return Check(check_id, Status.WARN, message, f"add {line} to VS Code's settings.json; {cli}")


def _unreachable_report(facts: Facts) -> Report:
    endpoint = facts.endpoint
    kind, _ = kind_from_endpoint(endpoint.resolved or endpoint.host, endpoint.context)
    reason = facts.unreachable or endpoint.error or "no answer"
    origin = _origin(endpoint)
    message = (
        f"{endpoint.error}"
        if endpoint.error
        else f"the engine at {endpoint.host} ({origin}) does not answer: {reason}"
    )
    if kind is not None:
        message += f" (it looks like {kind.display_name})"
    # A configuration that names no usable engine has its own remedy; starting an engine is not it.
    hint = endpoint.error_hint or start_hint(kind, endpoint, facts.host_os, reason)
    check = Check("endpoint", Status.FAIL, message, hint)
    summary = EngineSummary(None, None, kind, None, endpoint.context, endpoint.host)
    return Report(summary, facts.host_os, facts.host_arch, dict.fromkeys(SUPPORTED), (check,))


def _origin(endpoint: EndpointFacts) -> str:
    return endpoint_origin(endpoint.source, endpoint.context)


def _endpoint_check(facts: Facts, summary: EngineSummary) -> Check:
    endpoint = facts.endpoint
    message = f"{endpoint.host} ({_origin(endpoint)}) answers"
    if endpoint.resolved and _same_place(endpoint.resolved) != _same_place(urlpath(endpoint.host)):
        message += f"; the socket is a link to {endpoint.resolved}"
    if endpoint.context_also:
        return Check(
            "endpoint",
            Status.WARN,
            f"{message}; DOCKER_HOST overrides the selected context {endpoint.context_also!r}",
            "unset DOCKER_HOST so that devnix, the docker CLI and your editor agree on one engine",
        )
    return Check("endpoint", Status.OK, message)


def _same_place(path: str) -> str:
    # /var/run is a link to /run on most Linux systems: not worth a word. A link into ~/.colima is.
    return "/run/" + path[len("/var/run/") :] if path.startswith("/var/run/") else path


def urlpath(host: str) -> str:
    return host[len("unix://") :] if host.startswith("unix://") else host


def _platform_check(facts: Facts, kind: Kind, engine: Platform) -> Check:
    host = f"{facts.host_os}/{facts.host_arch}"
    other = next((p for p in SUPPORTED if p != str(engine)), None)
    in_vm = kind.in_vm_on(facts.host_os)
    if facts.host_os != "linux" or in_vm:
        where = f"in {kind.display_name}'s Linux VM" if in_vm else "in a Linux VM"
        message = f"engine {engine} runs {where} on this {host} host"
    elif _remote(facts.endpoint):
        message = f"engine {engine} on another machine ({facts.endpoint.host}); this host is {host}"
    else:
        message = f"engine {engine} runs on this {host} host itself"
    if str(engine) in SUPPORTED:
        message += f": {engine} images run natively" + (f", {other} ones emulated" if other else "")
    if engine.architecture != facts.host_arch:
        return Check(
            "platform",
            Status.WARN,
            message + f"; its architecture differs from this host's ({facts.host_arch})",
            f"images you build here for {facts.host_os}/{facts.host_arch} run emulated on that engine; "
            "pick the engine's platform (`devnix init` does)",
        )
    return Check("platform", Status.OK, message)


def _emulation_check(platform: str, probe: Probe | None, kind: Kind, host_os: str) -> Check:
    check_id = f"emulation.{platform}"
    if probe is None or probe.result is None:
        detail = probe.detail if probe else "not tried"
        return Check(
            check_id,
            Status.WARN,
            f"unknown whether {platform} containers run: {detail}",
            f"make a {platform} image available (`{kind.cli} pull --platform {platform} busybox`) and run "
            "`devnix doctor` again",
        )
    if probe.result:
        message = f"{platform} containers run emulated ({probe.detail})"
        if platform == "linux/amd64":
            # The documented seccomp failure is for x86_64 guests (NixOS/nix#5258).
            message += "; Nix in them needs filter-syscalls = false"
        return Check(check_id, Status.OK, message)
    return Check(
        check_id,
        Status.WARN,
        f"{platform} containers do not run: {probe.detail}",
        emulation_hint(kind, platform, host_os),
    )


def _mount_check(facts: Facts, kind: Kind) -> Check:
    probe = facts.mount
    if probe is None or probe.result is None:
        detail = probe.detail if probe else "not tried"
        return Check(
            "mount",
            Status.WARN,
            f"unknown whether bind mounts of {facts.directory} work: {detail}",
            f"make a small image available (`{kind.cli} pull busybox`) and run `devnix doctor` again",
        )
    if probe.result:
        return Check("mount", Status.OK, f"a file written in {facts.directory} is visible in a container")
    return Check(
        "mount",
        Status.FAIL,
        f"a file written in {facts.directory} is missing in a container's bind mount ({probe.detail})",
        shared_folders_hint(kind, facts.directory, _remote(facts.endpoint), facts.host_os),
    )


def _devcontainer_checks(
    dev: Devcontainer, engine: Platform, emulation: Mapping[str, bool | None], cli: str = "docker"
) -> list[Check]:
    if dev.error is not None:
        return [
            Check(
                "devcontainer",
                Status.FAIL,
                f"cannot read {dev.path}: {dev.error}",
                "fix the file (`devnix init --force` writes a fresh one)",
            )
        ]
    target, platform_check = _devcontainer_platform(dev, engine, emulation)
    checks = [platform_check]
    if dev.notes:
        checks.append(
            Check(
                "devcontainer.config",
                Status.WARN,
                f"{dev.path}: " + "; ".join(dev.notes) + " (left out of these checks)",
                "fix the values (`devnix validate` shows each at its line)",
            )
        )
    local = _local_copy_check(dev, target, engine, cli)
    if local is not None:
        checks.append(local)
    if target is not None:
        checks.append(_nixconf_check(dev, target, engine))
    server = _vscode_server_check(dev, cli)
    if server is not None:
        checks.append(server)
    for rule, severity, message, hint in dev.lint:
        status = Status.FAIL if severity == "error" else Status.WARN
        checks.append(Check(f"devcontainer.{rule}", status, message, hint))
    return checks


def _rootful_keep_id_check(user: str) -> Check:
    # devcontainers/cli adds keep-id for any non-root user whatever the Podman (devcontainers/cli#1004),
    # and appends runArgs after it: an empty --userns there takes it back, and dockerd accepts that too.
    return Check(
        "devcontainer.podman-userns",
        Status.FAIL,
        f"the container's user is {user!r}, so VS Code and the devcontainer CLI add --userns=keep-id, "
        'which rootful Podman refuses ("keep-id is only supported in rootless mode")',
        'add "--userns=" to runArgs (Docker accepts it too; rootless Podman needs keep-id, so leave it '
        "out there), or use rootless Podman",
    )


def _devcontainer_platform(
    dev: Devcontainer, engine: Platform, emulation: Mapping[str, bool | None]
) -> tuple[Platform | None, Check]:
    """The platform the dev container will run as (None when unknown) and the verdict about it."""
    check_id = "devcontainer.platform"
    if dev.image is None:
        what = "is built from a Dockerfile or compose file" if dev.built else "names no image"
        target = dev.pinned or engine
        return target, Check(
            check_id, Status.OK, f"{dev.path} {what}; it runs as {target} (its base image is not checked)"
        )
    if dev.pinned is not None:
        target = dev.pinned
        if dev.image_platforms is not None and not any(target.same_machine(p) for p in dev.image_platforms):
            return target, Check(
                check_id,
                Status.FAIL,
                f"{dev.image} has no {target} variant ({_platforms(dev.image_platforms)}) but runArgs pin it",
                "drop the --platform pin or use an image that has that platform (`devnix init` picks one)",
            )
        why = f"pinned with --platform; {dev.image}: {_platforms(dev.image_platforms)}"
    elif dev.image_platforms is None:
        return None, Check(
            check_id,
            Status.WARN,
            f"the platforms of {dev.image} are unknown: {dev.platforms_detail}",
            "pull the image once (`docker pull`), or check it offers the engine's platform",
        )
    elif any(engine.same_machine(p) for p in dev.image_platforms):
        target, why = engine, f"{dev.image} has {_platforms(dev.image_platforms)} ({dev.platforms_detail})"
    else:
        runnable = [p for p in dev.image_platforms if str(p) in SUPPORTED]
        if not runnable:
            return None, Check(
                check_id,
                Status.FAIL,
                f"{dev.image} offers only {_platforms(dev.image_platforms)}: none this engine runs",
                "use a linux/amd64 or linux/arm64 image (`devnix init` picks one)",
            )
        target = runnable[0]
        why = f"{dev.image} has only {_platforms(dev.image_platforms)} ({dev.platforms_detail})"
    if target.same_machine(engine):
        return target, Check(check_id, Status.OK, f"runs natively as {target}: {why}")
    works = emulation.get(str(target))
    if works is False:
        return target, Check(
            check_id,
            Status.FAIL,
            f"would run emulated as {target}, which this engine cannot run: {why}",
            f"use an image with {engine} (multi-arch), or enable emulation (see emulation.{target})",
        )
    status = Status.WARN
    tail = "" if works else " (emulation not proven)"
    return target, Check(
        check_id,
        status,
        f"runs emulated as {target}{tail}, several times slower than native: {why}",
        f"use an image with a {engine} variant to run natively (`devnix init` picks one)",
    )


def _local_copy_check(
    dev: Devcontainer, target: Platform | None, engine: Platform, cli: str = "docker"
) -> Check | None:
    """Whether the engine's copy under the image's tag is the variant the config should start
    (:func:`devnix.plan.stale_copy`, the rule ``devnix init`` applies when it writes a config)."""
    local, image = dev.local_platform, dev.image
    if local is None or image is None:
        return None  # nothing pulled yet: the engine pulls the variant the config asks for
    check_id = "devcontainer.local-copy"
    wanted = stale_copy(local, dev.image_platforms or (), engine, dev.pinned)
    if wanted is None:
        if target is None or not local.same_machine(target):
            return None  # the platform check says what is wrong
        message = f"the engine's copy of {image} is {local}, the variant the config runs"
        return Check(check_id, Status.OK, message)
    if dev.pinned is not None:
        message = (
            f"the engine holds the {local} copy of {image}, but the config pins {wanted}: starting the "
            f"container pulls the {wanted} variant over that copy, and fails without the registry"
        )
    else:
        message = (
            f"the engine holds the {local} copy of {image} and the config pins no platform: the container "
            f"starts that copy, emulated, instead of the tag's native {wanted} variant"
        )
    return Check(
        check_id,
        Status.WARN,
        message,
        f"`{pull_command(wanted, image, cli)}` puts the {wanted} variant under the tag",
    )


def _platforms(platforms: tuple[Platform, ...] | None) -> str:
    return ", ".join(str(p) for p in platforms) if platforms else "no platforms known"


def _nixconf_check(dev: Devcontainer, target: Platform, engine: Platform) -> Check:
    check_id = "devcontainer.nix-conf"
    emulated = not target.same_machine(engine)
    if dev.nix_conf is None:
        if emulated:
            return Check(
                check_id,
                Status.WARN,
                f"no .devcontainer/nix.conf, and Nix runs emulated ({target} on {engine})",
                "make sure the image's nix.conf has filter-syscalls = false (`devnix init` writes one)",
            )
        return Check(check_id, Status.OK, "no .devcontainer/nix.conf; Nix runs natively with its defaults")
    off = dev.nix_conf.get("filter-syscalls", "").lower() in ("false", "0", "no")
    if emulated and not off:
        # The seccomp failure is documented for x86_64 guests (QEMU, Rosetta); aarch64 guests under QEMU
        # 7.2 built fine here, so for them it is a warning.
        status = Status.FAIL if target.architecture == "amd64" else Status.WARN
        return Check(
            check_id,
            status,
            f"Nix runs emulated ({target} on {engine}) with its seccomp filter on: builds fail with "
            "'unable to load seccomp BPF program'",
            "add `filter-syscalls = false` to .devcontainer/nix.conf",
        )
    if not emulated and off:
        return Check(
            check_id,
            Status.WARN,
            f"filter-syscalls = false, but Nix runs natively ({target}): the filter is off for nothing",
            "remove `filter-syscalls = false` from .devcontainer/nix.conf",
        )
    state = "off, as emulation needs" if emulated else "on, as it should be natively"
    return Check(check_id, Status.OK, f"filter-syscalls is {state} ({target} on {engine})")


def loader_hint(dev: Devcontainer) -> str:
    """How to give the image devnix's FHS loader: ``init --merge`` turns an image config into a build of a
    Dockerfile with the step; a Dockerfile of the user's own gets the two lines."""
    if dev.dockerfile is not None:
        return (
            f"add `COPY {SCRIPT_NAME} /tmp/devnix-fhs-loader.sh` and `RUN sh /tmp/devnix-fhs-loader.sh` "
            f"after the FROM of {dev.dockerfile}, with devnix's {SCRIPT_NAME} beside it "
            "(`devnix init --dry-run --template nix-dockerfile` shows it)"
        )
    return (
        "`devnix init --merge`: the config then builds a Dockerfile that adds devnix's FHS loader step "
        f"({SCRIPT_NAME}), or add devnix's nix Feature"
    )


def _vscode_server_check(dev: Devcontainer, cli: str = "docker") -> Check | None:
    """Whether VS Code's server (a glibc `node`) can start in the image: VS Code and Codespaces attach."""
    check_id = "devcontainer.vscode-server"
    probe = dev.server
    image = dev.probe_image
    if image is None:
        return None  # a compose config, or a Dockerfile whose FROM cannot be told offline
    where = image if dev.image is not None else f"{image} ({dev.dockerfile}'s FROM)"
    step = f"; {dev.loader_step} adds devnix's FHS loader at build time" if dev.loader_step else ""
    if probe is None or not probe.ran:
        detail = probe.detail if probe else "not tried"
        if dev.filesystem is Filesystem.STORE_ONLY and not dev.loader_step:
            return Check(
                check_id,
                Status.WARN,
                f"{where} is a store-only Nix image ({dev.filesystem_detail}): VS Code's server cannot "
                f"start in it without an FHS loader (not probed: {detail})",
                loader_hint(dev),
            )
        if dev.loader_step:
            # The step gives a store-only image its loader and does nothing where one exists.
            return Check(check_id, Status.OK, f"{where} not probed ({detail}){step}")
        return Check(
            check_id,
            Status.WARN,
            f"unknown whether VS Code's server can start in {where}: {detail}",
            f"`{cli} pull {image}` (or `devnix doctor --pull`) and run `devnix doctor` again",
        )
    loader = probe.loader or "an FHS loader"
    missing = [name for name in SERVER_LIBRARIES if name not in probe.libraries]
    if probe.loader_found and not missing:
        folders = {path.rsplit("/", 1)[0] for path in probe.libraries.values()}
        if len(folders) == 1:
            found = f"{' and '.join(probe.libraries)} in {folders.pop()}"
        else:
            found = ", ".join(f"{name} in {path.rsplit('/', 1)[0]}" for name, path in probe.libraries.items())
        whose = " (devnix's FHS loader)" if probe.devnix_loader else ""
        return Check(
            check_id, Status.OK, f"VS Code's server can start in {where}: {loader}{whose} finds {found}"
        )
    if dev.loader_step and probe.nix_store:
        return Check(
            check_id,
            Status.OK,
            f"{where} is store-only (no {loader}, as the probe found){step}, so VS Code's server can start",
        )
    if not probe.loader_found and probe.nix_store:
        return Check(
            check_id,
            Status.FAIL,
            f"VS Code's server cannot start in {where}: no {loader} (a store-only Nix image, "
            "as the probe found), so VS Code and Codespaces cannot attach",
            loader_hint(dev),
        )
    if not probe.loader_found:
        return Check(
            check_id,
            Status.WARN,
            f"{where} has no glibc loader {loader} and no Nix store: VS Code's server needs glibc "
            "(only on Alpine does VS Code bring a musl build)",
            "use a glibc-based image (Debian, Ubuntu) or a Nix image with devnix's FHS loader step",
        )
    searched = ", ".join(probe.search) or "no folders"
    if probe.cache:
        searched += f" and {probe.cache}"
    return Check(
        check_id,
        Status.FAIL,
        f"{loader} in {where} finds no {' or '.join(missing)} (it searches {searched}): "
        "VS Code's server cannot start",
        "install libstdc++ and libgcc_s in the image (Debian, Ubuntu: `libstdc++6`)",
    )


def _disk_check(facts: Facts, kind: Kind, root: str) -> Check:
    disk = facts.disk
    if disk is None:
        return Check("disk", Status.WARN, "disk space unknown: the engine did not say in time", None)
    used = ", ".join(f"{name} {_size(size)}" for name, size in disk.usage.items())
    if disk.free is None:
        message = f"free space unknown ({disk.detail})" + (f"; used: {used}" if used else "")
        return Check("disk", Status.OK if used else Status.WARN, message, None)
    message = f"{_size(disk.free)} free" + (f" of {_size(disk.total)}" if disk.total else "")
    message += f" where the engine keeps images; used: {used}" if used else " where the engine keeps images"
    if disk.free < FAIL_FREE:
        return Check("disk", Status.FAIL, message, disk_hint(kind, root, facts.host_os))
    if disk.free < WARN_FREE:
        message += "; a Nix store needs several GB"
        return Check("disk", Status.WARN, message, disk_hint(kind, root, facts.host_os))
    return Check("disk", Status.OK, message)


def _store_check(facts: Facts) -> Check:
    wanted = facts.devcontainer.store_volume if facts.devcontainer else None
    if facts.store_volumes is None:
        return Check("store-volume", Status.WARN, f"volumes unknown: {facts.store_volumes_detail}", None)
    volumes = facts.store_volumes
    if not volumes:
        if wanted:
            return Check(
                "store-volume",
                Status.OK,
                f"no {STORE_VOLUME_PREFIX}* volume yet; the dev container makes {wanted} on its first start",
            )
        return Check(
            "store-volume", Status.OK, f"no /nix store volume ({STORE_VOLUME_PREFIX}*) on this engine"
        )
    listed = ", ".join(
        f"{name} ({_size(size) if size is not None and size >= 0 else 'size unknown'})"
        for name, size in sorted(volumes.items())
    )
    return Check("store-volume", Status.OK, f"/nix store volumes: {listed}")
