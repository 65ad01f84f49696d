"""Pure: what devnix knows about Podman as an engine: where its API sockets are, how they are started, and
what VS Code and the reference devcontainer CLI need to drive it.

Podman serves the Docker API from ``podman system service`` (or systemd's ``podman.socket``): root's at
``/run/podman/podman.sock``, a user's (rootless) at ``$XDG_RUNTIME_DIR/podman/podman.sock``. On macOS and
Windows the engine runs in ``podman machine``'s VM and the socket is wherever the machine forwards it.
VS Code's Dev Containers and the reference CLI call a Docker-compatible CLI, ``docker`` unless told
otherwise: the ``dev.containers.dockerPath`` setting and ``--docker-path`` tell them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ROOTFUL_SOCKET = "/run/podman/podman.sock"
DOCKER_PATH_KEY = "dev.containers.dockerPath"
# The exact line for VS Code's settings.json, and the reference CLI's flag.
DOCKER_PATH_SETTING = f'"{DOCKER_PATH_KEY}": "podman"'
CLI_FLAG = "--docker-path podman"
# Older Remote - Containers releases read this key.
LEGACY_DOCKER_PATH_KEY = "remote.containers.dockerPath"

_ROOTLESS_PATH = re.compile(r"^/(?:var/)?run/user/\d+/podman/")


def rootless_socket(runtime_dir: str) -> str:
    """A user's Podman socket in ``runtime_dir`` (``$XDG_RUNTIME_DIR``, ``/run/user/<uid>`` without it)."""
    return f"{runtime_dir.rstrip('/')}/podman/podman.sock"


def is_rootful_socket(path: str) -> bool:
    return path.startswith(("/run/podman/", "/var/run/podman/"))


def is_rootless_socket(path: str) -> bool:
    return bool(_ROOTLESS_PATH.match(path))


def start_hint(socket_path: str, host_os: str) -> str:
    """How to start the Podman that should answer at ``socket_path`` on a host of ``host_os``."""
    if host_os != "linux" or "machine" in socket_path:
        return "start the machine: `podman machine start` (it prints the socket to use as DOCKER_HOST)"
    if is_rootful_socket(socket_path):
        return (
            "start root's Podman API: `sudo systemctl start podman.socket` "
            f"(or `sudo podman system service --time=0 unix://{socket_path} &`)"
        )
    return (
        "start your Podman API: `systemctl --user start podman.socket` "
        "(or `podman system service --time=0 &`)"
    )


def is_podman_cli(docker_path: str) -> bool:
    """Whether a ``dockerPath`` setting names the podman CLI (``podman``, ``/usr/bin/podman``, ...)."""
    name = re.split(r"[/\\]", docker_path.strip())[-1].lower()
    return name in ("podman", "podman.exe", "podman-remote")


def answers_as_podman(version: Mapping[str, Any]) -> bool:
    """Whether an engine's ``/version`` answer is Podman's: a ``Podman Engine`` component (Podman 4.3
    here, and 5), or a ``Platform.Name`` that says Podman."""
    components = version.get("Components")
    listed = components if isinstance(components, list) else []
    names = [str(c.get("Name", "")) for c in listed if isinstance(c, dict)]
    platform = version.get("Platform")
    platform_name = str(platform.get("Name", "")) if isinstance(platform, dict) else ""
    return any("podman" in name.lower() for name in [*names, platform_name])
