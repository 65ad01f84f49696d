"""Edge: the Docker engine. The only module that imports ``docker``.

Which engine: ``DOCKER_HOST`` if set, else the Docker CLI's current context (``DOCKER_CONTEXT`` or the
config's ``currentContext``: Colima, OrbStack, Rancher Desktop and Docker Desktop all install one), else
the default socket. Small questions (``/version``, ``/info``, an image's platform) go straight to the API
over the socket, which answers in milliseconds without importing the docker SDK (~100 ms); pulls, runs,
streams and loads use the SDK.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from devnix.errors import EngineError
from devnix.platforms import Platform, from_engine

if TYPE_CHECKING:
    import http.client

    import docker

DEFAULT_HOST = "unix:///var/run/docker.sock"
QUICK_TIMEOUT = 3.0


@dataclass(frozen=True)
class Endpoint:
    """Where the engine is, and how devnix learnt it."""

    host: str
    context: str  # "default" unless a context was used
    source: str  # "DOCKER_HOST", "context" or "default"


@dataclass(frozen=True)
class EngineVersion:
    os: str
    arch: str
    version: str
    api_version: str

    @property
    def platform(self) -> Platform:
        return from_engine(self.os, self.arch)


@dataclass(frozen=True)
class LocalImage:
    """The engine's own copy of an image."""

    platform: Platform
    repo_digests: tuple[str, ...]


def _docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def endpoint() -> Endpoint:
    """Find the engine the Docker CLI would talk to."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        return Endpoint(host, os.environ.get("DOCKER_CONTEXT", "default"), "DOCKER_HOST")
    config_dir = _docker_config_dir()
    name = os.environ.get("DOCKER_CONTEXT")
    if not name:
        try:
            name = json.loads((config_dir / "config.json").read_text("utf-8")).get("currentContext")
        except (OSError, ValueError, AttributeError):
            name = None
    if name and name != "default":
        meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
        try:
            found = json.loads(meta.read_text("utf-8"))["Endpoints"]["docker"]["Host"]
        except (OSError, ValueError, KeyError, TypeError):
            raise EngineError(
                f"the Docker context {name!r} is selected but has no readable endpoint",
                hint="run `docker context use default` or `docker context ls`",
            ) from None
        return Endpoint(str(found), name, "context")
    return Endpoint(DEFAULT_HOST, "default", "default")


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
    import http.client

    where = endpoint()
    parts = urlsplit(where.host)
    if parts.scheme == "unix":
        connection = _UnixConnection.make(parts.path, timeout)
    elif parts.scheme in ("tcp", "http") and not os.environ.get("DOCKER_TLS_VERIFY"):
        connection = http.client.HTTPConnection(parts.netloc, timeout=timeout)
    else:
        return _sdk_get(path, timeout)
    try:
        connection.request("GET", path, headers={"Host": "docker"})
        response = connection.getresponse()
        body = response.read()
    except OSError as error:
        raise _unreachable(where, error) from None
    finally:
        connection.close()
    try:
        return response.status, json.loads(body) if body else None
    except ValueError:
        return response.status, None


def _sdk_get(path: str, timeout: float) -> tuple[int, Any]:
    """The same GET through the SDK, for TLS and ssh:// endpoints."""
    api = client(timeout=timeout).api
    try:
        response = api._get(api._url(path), versioned_api=False)
    except Exception as error:
        raise _unreachable(endpoint(), error) from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def _unreachable(where: Endpoint, error: BaseException) -> EngineError:
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    origin = {"DOCKER_HOST": "from DOCKER_HOST", "context": f"from context {where.context!r}"}.get(
        where.source, "the default socket"
    )
    return EngineError(
        f"the Docker engine at {where.host} ({origin}) does not answer: {reason}",
        hint="start Docker (Docker Desktop, `colima start`, OrbStack, or dockerd) or fix DOCKER_HOST",
    )


def version(*, timeout: float = QUICK_TIMEOUT) -> EngineVersion:
    """The engine's ``/version``: its OS and architecture are the platform containers run natively as."""
    status, answer = _api_get("/version", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise EngineError(f"the Docker engine answered /version with HTTP {status}")
    return EngineVersion(
        os=str(answer.get("Os", "linux")),
        arch=str(answer.get("Arch", "")),
        version=str(answer.get("Version", "")),
        api_version=str(answer.get("ApiVersion", "")),
    )


def info(*, timeout: float = QUICK_TIMEOUT) -> dict[str, Any]:
    """The engine's ``/info`` (OS name, kernel, CPUs, memory, storage driver, ...)."""
    status, answer = _api_get("/info", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise EngineError(f"the Docker engine answered /info with HTTP {status}")
    return answer


def local_image(reference: str, *, timeout: float = QUICK_TIMEOUT) -> LocalImage | None:
    """The engine's copy of ``reference`` (platform and repo digests), or ``None`` when it has none."""
    status, answer = _api_get(f"/images/{quote(reference, safe='/:@')}/json", timeout=timeout)
    if status == 404 or not isinstance(answer, dict):
        return None
    if status != 200:
        raise EngineError(f"the Docker engine answered HTTP {status} about image {reference}")
    variant = answer.get("Variant") or None
    platform = Platform(
        str(answer.get("Os", "linux")),
        from_engine("linux", str(answer.get("Architecture", ""))).architecture,
        variant,
    )
    if platform.architecture == "arm64" and variant == "v8":
        platform = Platform(platform.os, platform.architecture)
    return LocalImage(platform, tuple(str(d) for d in answer.get("RepoDigests") or ()))


def client(*, timeout: float = 60.0) -> docker.DockerClient:
    """A docker SDK client for the same endpoint (imported here so light commands never pay for it)."""
    import docker
    import docker.errors

    where = endpoint()
    try:
        return docker.DockerClient(base_url=where.host, timeout=int(timeout))
    except docker.errors.DockerException as error:
        raise _unreachable(where, error) from None
