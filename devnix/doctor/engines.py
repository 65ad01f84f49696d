"""Pure: which engine answered (its kind, rootless or not) and the hints that fit each kind.

The engine kind comes from the engine's own answers first (``OperatingSystem``, ``Name``, ``Labels``,
``KernelVersion``, ``/version``'s ``Platform.Name`` and ``Components``), and only then from where its
socket lives (``~/.colima/...``): ``/var/run/docker.sock`` on a Mac is a symlink to whichever engine
installed it last, so the path alone can lie.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from devnix import podman
from devnix.doctor.model import EndpointFacts, Kind

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


def urlpath(host: str) -> str:
    """A unix:// address's socket path (any other address as it is)."""
    return host[len("unix://") :] if host.startswith("unix://") else host
