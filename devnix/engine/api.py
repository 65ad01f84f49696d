"""Edge: where the Docker engine is and how a call reaches its API; the only place ``docker`` is imported.

Which engine, as the Docker CLI would pick it, then Podman: ``DOCKER_HOST`` if set, else the Docker CLI's
current context (``DOCKER_CONTEXT`` or the config's ``currentContext``: Colima, OrbStack, Rancher Desktop
and Docker Desktop all install one), else the default socket when it is there, else Podman's socket
(:mod:`devnix.podman`: a user's rootless one first, root's for root, as ``podman`` itself picks), else the
default socket all the same (so that a machine with no engine hears about Docker). ``--engine`` (the
``DEVNIX_ENGINE`` variable) chooses explicitly: ``docker`` stops before Podman, ``podman`` takes Podman's
own ``CONTAINER_HOST`` (what ``podman --remote`` and ``podman machine`` users set) or its sockets, never
``DOCKER_HOST`` (which may name a Docker engine beside it). :attr:`Endpoint.source` says which rule
decided.

Calls go straight to the API over the socket (``http.client`` on a unix socket or plain TCP), which answers
in milliseconds without importing the docker SDK (~100 ms); the SDK carries them only for TLS and ssh://
endpoints, and the long streams of :mod:`devnix.engine.containers` and :mod:`devnix.engine.imagestore`,
and is imported inside the functions that need it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devnix import dockerconfig, podman
from devnix.errors import EngineError, EngineUnreachableError, UsageError

if TYPE_CHECKING:
    import http.client

    import docker


DEFAULT_SOCKET = "/var/run/docker.sock"
DEFAULT_HOST = f"unix://{DEFAULT_SOCKET}"
QUICK_TIMEOUT = 3.0
STREAM_TIMEOUT = 6 * 3600.0  # a `nix build` may print nothing for minutes; an image streams for a while
ENGINE_VARIABLE = "DEVNIX_ENGINE"
ENGINES = ("docker", "podman")


@dataclass(frozen=True)
class Endpoint:
    """Where the engine is, and how devnix learnt it."""

    host: str
    context: str  # "default" unless a context was used
    # "DOCKER_HOST", "context", "default", "CONTAINER_HOST", "podman-rootful" or "podman-rootless"
    source: str


@dataclass(frozen=True)
class LocalSockets:
    """The engine sockets a machine has in well-known places (a test binds its own in a folder)."""

    docker: str
    podman_rootful: str
    podman_rootless: str
    root: bool  # root's Podman is the rootful one; a user's is rootless first

    @classmethod
    def here(cls) -> LocalSockets:
        uid = os.getuid() if hasattr(os, "getuid") else -1
        runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
        return cls(DEFAULT_SOCKET, podman.ROOTFUL_SOCKET, podman.rootless_socket(runtime), uid == 0)

    def podman(self) -> tuple[tuple[str, str], ...]:
        """Podman's sockets with their sources, in the order ``podman`` itself takes them."""
        rootful = (self.podman_rootful, "podman-rootful")
        if self.root:
            return (rootful,)
        return ((self.podman_rootless, "podman-rootless"), rootful)


def endpoint(sockets: LocalSockets | None = None) -> Endpoint:
    """Find the engine (the context is read by :mod:`devnix.dockerconfig`); ``sockets`` default to this
    machine's."""
    sockets = sockets or LocalSockets.here()
    choice = engine_choice()
    if choice == "podman":
        podman_host = os.environ.get("CONTAINER_HOST")
        if podman_host:
            return Endpoint(_checked_host(podman_host, "CONTAINER_HOST"), "default", "CONTAINER_HOST")
        return _podman(sockets) or _socket_endpoint(*sockets.podman()[0])
    host = os.environ.get("DOCKER_HOST")
    if host:
        context = os.environ.get("DOCKER_CONTEXT", "default")
        return Endpoint(_checked_host(host, "DOCKER_HOST"), context, "DOCKER_HOST")
    selected = dockerconfig.selected_context()
    if selected.name != "default":
        found = dockerconfig.context_host(selected.name)
        origin = f"the Docker context {selected.name!r}"
        return Endpoint(_checked_host(found, origin), selected.name, "context")
    default = _socket_endpoint(sockets.docker, "default")
    if choice == "docker" or _usable(sockets.docker):
        return default
    return _podman(sockets) or default


def engine_choice() -> str | None:
    """``docker``, ``podman`` or None (find one), from ``DEVNIX_ENGINE`` (which ``--engine`` sets)."""
    value = os.environ.get(ENGINE_VARIABLE, "").strip().lower()
    if not value:
        return None
    if value not in ENGINES:
        raise UsageError(
            f"{ENGINE_VARIABLE} is {value!r}: devnix knows the engines {' and '.join(ENGINES)}",
            hint=f"set {ENGINE_VARIABLE} to docker or podman, or unset it to let devnix find the engine",
        )
    return value


def _podman(sockets: LocalSockets) -> Endpoint | None:
    for path, source in sockets.podman():
        if _usable(path):
            return _socket_endpoint(path, source)
    return None


def _socket_endpoint(path: str, source: str) -> Endpoint:
    return Endpoint(f"unix://{path}", "default", source)


def _usable(path: str) -> bool:
    """A socket this user may connect to (connecting needs write permission); no connection is made, so a
    socket-activated service is not woken by the search."""
    try:
        is_socket = stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:  # missing, or a folder on the way that this user may not enter
        return False
    return is_socket and os.access(path, os.W_OK)


_SCHEMES = ("unix", "tcp", "http", "https", "ssh", "npipe")


def _checked_host(host: str, origin: str) -> str:
    """An engine address that the clients can use, or one clear line about it."""
    try:
        parts = urlsplit(host)
        _ = parts.port  # raises on a port that is not a number
    except ValueError as error:
        raise EngineError(
            f"{origin} is {host!r}, which is not an address: {error}",
            hint="it looks like unix:///var/run/docker.sock or tcp://HOST:2375",
        ) from None
    if parts.scheme not in _SCHEMES:
        raise EngineError(
            f"{origin} is {host!r}: devnix knows {', '.join(s + '://' for s in _SCHEMES)} addresses",
            hint="it looks like unix:///var/run/docker.sock or tcp://HOST:2375",
        )
    return host


class _UnixConnection:
    """An http.client connection over a unix socket (the engine's usual endpoint)."""

    @staticmethod
    def make(path: str, timeout: float) -> http.client.HTTPConnection:
        import http.client

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(path)
                self.sock = sock

        return Connection("localhost", timeout=timeout)


def _api_get(path: str, *, timeout: float = QUICK_TIMEOUT) -> tuple[int, Any]:
    """GET an engine API path, quickly, without the SDK. Returns (status, decoded JSON or None)."""
    return _api_json("GET", path, timeout=timeout)


def _api_raw(
    method: str,
    path: str,
    *,
    body: Any = None,
    timeout: float = QUICK_TIMEOUT,
) -> tuple[int, bytes]:
    """Any engine API call over the socket (JSON body in, raw bytes out), SDK only for TLS and ssh://."""
    import http.client

    where = endpoint()
    parts = urlsplit(where.host)
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Host": "docker"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    if parts.scheme == "unix":
        connection = _UnixConnection.make(parts.path, timeout)
    elif parts.scheme in ("tcp", "http") and not os.environ.get("DOCKER_TLS_VERIFY"):
        connection = http.client.HTTPConnection(parts.netloc, timeout=timeout)
    else:
        return _sdk_raw(method, path, payload, headers, timeout)
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
    except OSError as error:
        raise _unreachable(where, error) from None
    finally:
        connection.close()
    return response.status, data


def _sdk_raw(
    method: str, path: str, payload: bytes | None, headers: dict[str, str], timeout: float
) -> tuple[int, bytes]:
    api = client(timeout=timeout).api
    try:
        # APIClient is a requests.Session that knows the endpoint's transport (TLS, ssh).
        response = api.request(
            method, api._url(path, versioned_api=False), data=payload, headers=headers, timeout=timeout
        )
    except Exception as error:
        raise _unreachable(endpoint(), error) from None
    return int(response.status_code), bytes(response.content)


def _api_json(method: str, path: str, *, body: Any = None, timeout: float = QUICK_TIMEOUT) -> tuple[int, Any]:
    status, data = _api_raw(method, path, body=body, timeout=timeout)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, None


def _engine_message(answer: Any, data: bytes = b"") -> str:
    """The engine's own words for an error (``{"message": ...}``), else the raw body."""
    if isinstance(answer, dict) and answer.get("message"):
        return str(answer["message"]).strip()
    return data.decode("utf-8", "replace").strip()[:300]


class ImageMissingError(EngineError):
    """The engine has no local copy of the image asked for (HTTP 404 from container create)."""


def _unreachable(where: Endpoint, error: BaseException) -> EngineUnreachableError:
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    path = urlsplit(where.host).path if where.host.startswith("unix://") else ""
    origin = dockerconfig.endpoint_origin(where.source, where.context)
    # socket timeouts are TimeoutError; the SDK's (requests') are their own Timeout classes.
    kinds = type(error).__mro__
    timed_out = isinstance(error, TimeoutError) or any(k.__name__.endswith("Timeout") for k in kinds)
    if where.source.startswith("podman-") or where.source == "CONTAINER_HOST" or "podman" in path:
        hint = podman.start_hint(path, "linux" if sys.platform.startswith("linux") else sys.platform)
        if where.source in ("DOCKER_HOST", "CONTAINER_HOST"):
            hint += f"; or fix {where.source}"
        message = f"the Podman engine at {where.host} ({origin}) does not answer: {reason}"
        return EngineUnreachableError(message, hint, timed_out=timed_out)
    hint = "start Docker (Docker Desktop, `colima start`, OrbStack, or dockerd) or fix DOCKER_HOST"
    if where.source == "default":
        # Nothing was found anywhere (no Docker socket, no Podman one): either engine would do.
        hint = (
            "start Docker (Docker Desktop, `colima start`, OrbStack, or dockerd) or Podman "
            "(`systemctl --user start podman.socket`), or set DOCKER_HOST"
        )
    return EngineUnreachableError(
        f"the Docker engine at {where.host} ({origin}) does not answer: {reason}", hint, timed_out=timed_out
    )


def client(*, timeout: float = 60.0) -> docker.DockerClient:
    """A docker SDK client for the same endpoint (imported here so light commands never pay for it)."""
    import docker
    import docker.errors

    where = endpoint()
    try:
        return docker.DockerClient(base_url=where.host, timeout=int(timeout))
    except docker.errors.DockerException as error:
        raise _unreachable(where, error) from None


def _stream_client() -> Any:
    return client(timeout=STREAM_TIMEOUT).api


def _sdk_errors() -> tuple[type[BaseException], ...]:
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException)


def _sdk_message(error: BaseException) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error).strip() or type(error).__name__
