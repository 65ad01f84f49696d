"""Edge: the Docker engine. The only module that imports ``docker``.

Which engine: ``DOCKER_HOST`` if set, else the Docker CLI's current context (``DOCKER_CONTEXT`` or the
config's ``currentContext``: Colima, OrbStack, Rancher Desktop and Docker Desktop all install one), else
the default socket. Small questions (``/version``, ``/info``, an image's platform) go straight to the API
over the socket, which answers in milliseconds without importing the docker SDK (~100 ms); pulls, runs,
streams and loads use the SDK.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from devnix import dockerconfig
from devnix.errors import EngineError, EngineUnreachableError
from devnix.platforms import Platform, from_engine

if TYPE_CHECKING:
    import http.client

    import docker

    from devnix.images import ImageRef

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
    env: tuple[str, ...] = ()  # the image config's Env


def endpoint() -> Endpoint:
    """Find the engine the Docker CLI would talk to (the context is read by :mod:`devnix.dockerconfig`)."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        context = os.environ.get("DOCKER_CONTEXT", "default")
        return Endpoint(_checked_host(host, "DOCKER_HOST"), context, "DOCKER_HOST")
    selected = dockerconfig.selected_context()
    if selected.name != "default":
        found = dockerconfig.context_host(selected.name)
        origin = f"the Docker context {selected.name!r}"
        return Endpoint(_checked_host(found, origin), selected.name, "context")
    return Endpoint(DEFAULT_HOST, "default", "default")


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


class ImageMissingError(EngineError):
    """The engine has no local copy of the image asked for (HTTP 404 from container create)."""


def _unreachable(where: Endpoint, error: BaseException) -> EngineUnreachableError:
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    origin = {"DOCKER_HOST": "from DOCKER_HOST", "context": f"from context {where.context!r}"}.get(
        where.source, "the default socket"
    )
    # socket timeouts are TimeoutError; the SDK's (requests') are their own Timeout classes.
    kinds = type(error).__mro__
    timed_out = isinstance(error, TimeoutError) or any(k.__name__.endswith("Timeout") for k in kinds)
    return EngineUnreachableError(
        f"the Docker engine at {where.host} ({origin}) does not answer: {reason}",
        hint="start Docker (Docker Desktop, `colima start`, OrbStack, or dockerd) or fix DOCKER_HOST",
        timed_out=timed_out,
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
    answer = image_details(reference, timeout=timeout)
    if answer is None:
        return None
    variant = answer.get("Variant") or None
    platform = Platform(
        str(answer.get("Os", "linux")),
        from_engine("linux", str(answer.get("Architecture", ""))).architecture,
        variant,
    )
    if platform.architecture == "arm64" and variant == "v8":
        platform = Platform(platform.os, platform.architecture)
    config = answer.get("Config")
    env = config.get("Env") if isinstance(config, dict) else None
    return LocalImage(
        platform,
        tuple(str(d) for d in answer.get("RepoDigests") or ()),
        tuple(str(item) for item in env) if isinstance(env, list) else (),
    )


def local_image_of(ref: ImageRef, *, timeout: float = QUICK_TIMEOUT) -> LocalImage | None:
    """The engine's copy of an image under either spelling (``nixos/nix:latest``, ``docker.io/…``)."""
    return local_image(ref.familiar, timeout=timeout) or local_image(str(ref), timeout=timeout)


def client(*, timeout: float = 60.0) -> docker.DockerClient:
    """A docker SDK client for the same endpoint (imported here so light commands never pay for it)."""
    import docker
    import docker.errors

    where = endpoint()
    try:
        return docker.DockerClient(base_url=where.host, timeout=int(timeout))
    except docker.errors.DockerException as error:
        raise _unreachable(where, error) from None


# --- probes for `devnix doctor`: raw API calls, throwaway containers, disk usage, volumes ----------------

PROBE_LABEL = "org.devnix.doctor"


@dataclass(frozen=True)
class ProbeRun:
    """What a throwaway container did: its exit code (None when it ran out of time) and its output."""

    exit_code: int | None
    output: str


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


def images_with_platforms(*, timeout: float = QUICK_TIMEOUT, limit: int = 200) -> list[dict[str, Any]]:
    """Local images, smallest first, each ``/images/json`` entry plus ``Os``/``Architecture`` from inspect.

    ``/images/json`` does not tell an image's platform on API 1.41, so each one is inspected; the cap keeps
    an engine with thousands of images from costing seconds.
    """
    status, listing = _api_get("/images/json", timeout=timeout)
    if status != 200 or not isinstance(listing, list):
        raise EngineError(f"the Docker engine answered /images/json with HTTP {status}")
    entries = sorted((e for e in listing if isinstance(e, dict)), key=lambda e: int(e.get("Size") or 0))
    found: list[dict[str, Any]] = []
    for entry in entries[:limit]:
        status, detail = _api_get(
            f"/images/{quote(str(entry.get('Id', '')), safe=':')}/json", timeout=timeout
        )
        if status != 200 or not isinstance(detail, dict):
            continue
        found.append(
            {
                **entry,
                "Os": str(detail.get("Os", "linux")),
                "Architecture": from_engine("linux", str(detail.get("Architecture", ""))).architecture,
                "Variant": detail.get("Variant"),
            }
        )
    return found


def _demux(data: bytes) -> str:
    """Container logs without a TTY come in frames (1 byte stream, 3 zero, 4 big-endian length)."""
    out = bytearray()
    position = 0
    while (
        position + 8 <= len(data)
        and data[position] in (0, 1, 2)
        and data[position + 1 : position + 4] == b"\0\0\0"
    ):
        size = int.from_bytes(data[position + 4 : position + 8], "big")
        out += data[position + 8 : position + 8 + size]
        position += 8 + size
    if position == 0:
        return data.decode("utf-8", "replace")
    return out.decode("utf-8", "replace")


def run_probe(
    image: str,
    command: list[str],
    *,
    platform: str | None = None,
    binds: tuple[str, ...] = (),
    labels: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> ProbeRun:
    """Run ``command`` in a throwaway container of ``image`` and return its exit code and output.

    The container has no network, carries :data:`PROBE_LABEL`, and is removed (forced) whatever happens,
    including when it runs out of time: then ``exit_code`` is None. Raises :class:`EngineError` when the
    engine refuses to create or start it (missing image, wrong platform, no such executable).
    """
    import time
    from contextlib import suppress

    deadline = time.monotonic() + timeout
    query = f"?platform={quote(platform, safe='')}" if platform else ""
    spec = {
        "Image": image,
        "Entrypoint": command[:1],
        "Cmd": command[1:],
        "Labels": {PROBE_LABEL: "1", **(labels or {})},
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "NetworkDisabled": True,
        "HostConfig": {"Binds": list(binds), "NetworkMode": "none", "AutoRemove": False},
    }
    status, answer = _api_json("POST", f"/containers/create{query}", body=spec, timeout=timeout)
    if status != 201 or not isinstance(answer, dict) or not answer.get("Id"):
        kind = ImageMissingError if status == 404 else EngineError  # the API's "No such image"
        raise kind(f"could not create a probe container from {image}: {_engine_message(answer)}")
    container = str(answer["Id"])
    try:
        status, data = _api_raw(
            "POST", f"/containers/{container}/start", timeout=max(0.5, deadline - time.monotonic())
        )
        if status not in (204, 304):
            raise EngineError(
                f"could not start a probe container from {image}: {_engine_message(None, data)}"
            )
        try:
            status, answer = _api_json(
                "POST", f"/containers/{container}/wait", timeout=max(0.5, deadline - time.monotonic())
            )
        except EngineError as error:
            if isinstance(error, EngineUnreachableError) and error.timed_out:
                return ProbeRun(None, "")
            raise
        exit_code = int(answer.get("StatusCode", -1)) if isinstance(answer, dict) else -1
        status, data = _api_raw(
            "GET",
            f"/containers/{container}/logs?stdout=1&stderr=1",
            timeout=max(0.5, deadline - time.monotonic()),
        )
        return ProbeRun(exit_code, _demux(data) if status == 200 else "")
    finally:
        # Forced removal also stops a container that outlived its timeout; its anonymous volumes go too.
        # If the engine went away meanwhile, remove_stale_probes() sweeps the container up on a later run.
        with suppress(EngineError):
            _api_raw("DELETE", f"/containers/{container}?force=1&v=1", timeout=QUICK_TIMEOUT)


def remove_stale_probes(*, older_than: float = 600.0, timeout: float = QUICK_TIMEOUT) -> int:
    """Remove probe containers a killed ``devnix doctor`` left behind.

    Only old ones: a younger one may belong to a doctor running right now.
    """
    import time

    filters = quote(json.dumps({"label": [PROBE_LABEL]}), safe="")
    status, listing = _api_get(f"/containers/json?all=1&filters={filters}", timeout=timeout)
    if status != 200 or not isinstance(listing, list):
        return 0
    removed = 0
    for entry in listing:
        if isinstance(entry, dict) and time.time() - float(entry.get("Created") or 0) > older_than:
            try:
                _api_raw("DELETE", f"/containers/{entry.get('Id')}?force=1&v=1", timeout=timeout)
            except EngineError:
                continue
            removed += 1
    return removed


def pull(reference: str, *, platform: str | None = None, timeout: float = 30.0) -> None:
    """Pull one platform of an image; errors (which arrive inside the 200 stream) raise EngineError."""
    from devnix.images import parse_ref

    ref = parse_ref(reference)
    query = (
        f"fromImage={quote(f'{ref.registry}/{ref.repository}', safe='')}&tag={quote(ref.reference, safe='')}"
    )
    if platform:
        query += f"&platform={quote(platform, safe='')}"
    try:
        status, data = _api_raw("POST", f"/images/create?{query}", timeout=timeout)
    except EngineError as error:
        raise EngineError(f"pulling {reference} failed: {error.message}") from None
    message = ""
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and (event.get("error") or event.get("message")):
            message = str(event.get("error") or event.get("message"))
    if status != 200 or message:
        raise EngineError(f"pulling {reference} failed: {message or f'HTTP {status}'}")


def system_df(*, timeout: float = QUICK_TIMEOUT) -> dict[str, Any]:
    """The engine's ``/system/df``: sizes of images, containers, volumes and the build cache."""
    status, answer = _api_get("/system/df", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise EngineError(f"the Docker engine answered /system/df with HTTP {status}")
    return answer


def volumes(prefix: str, *, timeout: float = QUICK_TIMEOUT) -> list[dict[str, Any]]:
    """Volumes whose name starts with ``prefix`` (the engine's ``name`` filter matches substrings)."""
    filters = quote(json.dumps({"name": [prefix]}), safe="")
    status, answer = _api_get(f"/volumes?filters={filters}", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise EngineError(f"the Docker engine answered /volumes with HTTP {status}")
    return [
        v
        for v in answer.get("Volumes") or []
        if isinstance(v, dict) and str(v.get("Name", "")).startswith(prefix)
    ]


def version_answer(*, timeout: float = QUICK_TIMEOUT) -> dict[str, Any]:
    """The engine's whole ``/version`` answer (``Platform.Name`` and ``Components`` tell engines apart)."""
    status, answer = _api_get("/version", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise EngineError(f"the Docker engine answered /version with HTTP {status}")
    return answer


# --- bootstrap: long-lived builder containers, exec streams, archives, load, tag, push, volumes -------
#
# These use the SDK with a long socket timeout: a `nix build` may print nothing for minutes, and an
# image of hundreds of MB streams for a while. Every byte stream here is a generator consumed chunk by
# chunk, so nothing the size of an image is ever held in memory.

BOOTSTRAP_LABEL = "org.devnix.bootstrap"
STREAM_TIMEOUT = 6 * 3600.0


@dataclass
class ExecStream:
    """A command running in a container: iterate for ``(stdout, stderr)`` chunks; then ``exit_code``.

    Made by :func:`exec_stream`. ``exit_code`` is read from the engine once the output has ended (the
    high-level ``exec_run(stream=True)`` cannot tell it).
    """

    exec_id: str
    _chunks: Iterator[tuple[bytes | None, bytes | None]]
    _api: Any

    def __iter__(self) -> Iterator[tuple[bytes | None, bytes | None]]:
        return self._chunks

    @property
    def exit_code(self) -> int | None:
        answer = self._api.exec_inspect(self.exec_id)
        if answer.get("Running"):
            return None
        code = answer.get("ExitCode")
        return int(code) if code is not None else None


def _sdk_errors() -> tuple[type[BaseException], ...]:
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException)


def _sdk_message(error: BaseException) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error).strip() or type(error).__name__


def _stream_client() -> Any:
    return client(timeout=STREAM_TIMEOUT).api


def _inspect(path: str, what: str, timeout: float) -> dict[str, Any] | None:
    """An object's inspect answer, or None when the engine has no such object (HTTP 404)."""
    status, answer = _api_get(path, timeout=timeout)
    if status == 404 or not isinstance(answer, dict):
        return None
    if status != 200:
        raise EngineError(f"the Docker engine answered HTTP {status} about {what}")
    return answer


def image_details(reference: str, *, timeout: float = QUICK_TIMEOUT) -> dict[str, Any] | None:
    """The engine's whole inspect answer for an image (Id, Architecture, RepoTags ...), or None."""
    return _inspect(f"/images/{quote(reference, safe='/:@')}/json", f"image {reference}", timeout)


def image_ids(*, timeout: float = QUICK_TIMEOUT) -> set[str]:
    """The ids of every image the engine holds (to tell, after a load, whether an image is new)."""
    status, listing = _api_get("/images/json?all=1", timeout=timeout)
    if status != 200 or not isinstance(listing, list):
        raise EngineError(f"the Docker engine answered /images/json with HTTP {status}")
    return {str(entry.get("Id")) for entry in listing if isinstance(entry, dict)}


def pull_with_progress(
    reference: str, *, platform: str | None, on_event: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """Pull one platform of an image, passing each progress event on; errors in the stream raise."""
    from devnix.images import parse_ref

    ref = parse_ref(reference)
    api = _stream_client()
    try:
        for event in api.pull(
            f"{ref.registry}/{ref.repository}", tag=ref.reference, platform=platform, stream=True, decode=True
        ):
            if not isinstance(event, dict):
                continue
            message = stream_error(event)
            if message:
                raise EngineError(f"pulling {reference} failed: {message}")
            if on_event is not None:
                on_event(event)
    except _sdk_errors() as error:
        raise EngineError(f"pulling {reference} failed: {_sdk_message(error)}") from None


def stream_error(event: dict[str, Any]) -> str | None:
    """The error inside one event of a pull, push or load stream (the engine answers 200 regardless)."""
    detail = event.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"]).strip()
    if event.get("error"):
        return str(event["error"]).strip()
    return None


def create_container(
    image: str,
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    volumes: dict[str, str] | None = None,
    platform: str | None = None,
    stdin_once: bool = False,
    auto_remove: bool = False,
) -> str:
    """Create (not start) a container with no network besides the default bridge; return its id.

    ``volumes`` maps named volumes to paths in the container (an empty volume is filled from the
    image's content at that path, by the engine). ``stdin_once`` opens stdin for one attachment: with
    :func:`attach_stdin` the container's main process sees end-of-file when that attachment closes.
    """
    spec: dict[str, Any] = {
        "Image": image,
        "Entrypoint": command[:1],
        "Cmd": command[1:],
        "Env": [f"{key}={value}" for key, value in (env or {}).items()],
        "Labels": labels or {},
        "AttachStdin": stdin_once,
        "OpenStdin": stdin_once,
        "StdinOnce": stdin_once,
        "Tty": False,
        "HostConfig": {
            "AutoRemove": auto_remove,
            "Mounts": [
                {"Type": "volume", "Source": name, "Target": target, "ReadOnly": False}
                for name, target in (volumes or {}).items()
            ],
        },
    }
    return create_container_raw(spec, platform=platform)


def create_container_raw(spec: dict[str, Any], *, platform: str | None = None, timeout: float = 30.0) -> str:
    """Create a container from a raw ``/containers/create`` body (fields the SDK does not offer)."""
    query = f"?platform={quote(platform, safe='')}" if platform else ""
    status, answer = _api_json("POST", f"/containers/create{query}", body=spec, timeout=timeout)
    if status != 201 or not isinstance(answer, dict) or not answer.get("Id"):
        raise EngineError(f"could not create a container from {spec.get('Image')}: {_engine_message(answer)}")
    return str(answer["Id"])


def attach_stdin(container: str) -> Any:
    """Attach to a created container's stdin and return the socket; keep it open while it should run.

    With ``StdinOnce`` the engine closes the container's stdin when this socket closes, including when
    the process holding it is killed: a main process that reads stdin (``cat``) then ends, and an
    auto-removed container goes away. A dead man's switch that needs no cleanup code to run.
    """
    api = _stream_client()
    try:
        return api.attach_socket(container, params={"stdin": 1, "stream": 1})
    except _sdk_errors() as error:
        raise EngineError(f"could not attach to container {container[:12]}: {_sdk_message(error)}") from None


def start_container(container: str) -> None:
    status, data = _api_raw("POST", f"/containers/{container}/start", timeout=60.0)
    if status not in (204, 304):
        raise EngineError(f"could not start container {container[:12]}: {_engine_message(None, data)}")


def remove_container(container: str, *, timeout: float = 60.0) -> None:
    """Force-remove a container and its anonymous volumes; a container already gone is fine."""
    status, data = _api_raw("DELETE", f"/containers/{container}?force=1&v=1", timeout=timeout)
    if status not in (204, 404, 409):  # 409: removal already in progress (auto-remove)
        raise EngineError(f"could not remove container {container[:12]}: {_engine_message(None, data)}")


def remove_container_promptly(container: str, *, wait: float = 8.0) -> None:
    """Force-remove a container, waiting at most ``wait`` seconds for a busy engine.

    After a Ctrl-C the user wants the prompt back at once, and an engine busy with other containers
    can take a minute to kill and remove one. Past ``wait``, a detached process (``devnix.reaper``)
    goes on removing it after devnix exits; the engine usually finishes the first request anyway.
    """
    try:
        remove_container(container, timeout=wait)
    except EngineError as error:
        if not isinstance(error, EngineUnreachableError):
            raise
        import subprocess
        import sys

        subprocess.Popen(
            [sys.executable, "-m", "devnix.reaper", container],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives devnix, and no Ctrl-C of the terminal reaches it
        )


def containers_with_label(label: str, *, timeout: float = QUICK_TIMEOUT) -> list[dict[str, Any]]:
    """Containers (running or not) that carry ``label`` (``key`` or ``key=value``)."""
    filters = quote(json.dumps({"label": [label]}), safe="")
    status, listing = _api_get(f"/containers/json?all=1&filters={filters}", timeout=timeout)
    if status != 200 or not isinstance(listing, list):
        raise EngineError(f"the Docker engine answered /containers/json with HTTP {status}")
    return [entry for entry in listing if isinstance(entry, dict)]


def exec_stream(
    container: str, command: list[str], *, env: dict[str, str] | None = None, workdir: str | None = None
) -> ExecStream:
    """Start ``command`` in a running container and stream its stdout and stderr apart."""
    api = _stream_client()
    try:
        created = api.exec_create(
            container, command, stdout=True, stderr=True, environment=env or None, workdir=workdir
        )
        chunks = api.exec_start(created["Id"], stream=True, demux=True)
    except _sdk_errors() as error:
        raise EngineError(f"could not run {command[0]} in the builder: {_sdk_message(error)}") from None
    return ExecStream(str(created["Id"]), iter(chunks), api)


def exec_output(
    container: str, command: list[str], *, env: dict[str, str] | None = None
) -> tuple[int | None, bytes, bytes]:
    """Run a short command in a running container: (exit code, stdout, stderr)."""
    run = exec_stream(container, command, env=env)
    out, err = bytearray(), bytearray()
    for stdout, stderr in run:
        out += stdout or b""
        err += stderr or b""
    return run.exit_code, bytes(out), bytes(err)


def put_archive(container: str, path: str, chunks: Iterable[bytes]) -> None:
    """Unpack a tar stream (chunks from a generator, sent as they come) at ``path`` in a container."""
    api = _stream_client()
    try:
        api.put_archive(container, path, chunks)
    except _sdk_errors() as error:
        raise EngineError(f"could not copy into container {container[:12]}: {_sdk_message(error)}") from None


def load_image(chunks: Iterable[bytes]) -> list[dict[str, Any]]:
    """``docker load`` from a generator of docker-archive bytes (plain or compressed); return its events.

    The engine decompresses and unpacks as the bytes arrive; errors come inside its answer.
    """
    api = _stream_client()
    events: list[dict[str, Any]] = []
    try:
        for event in api.load_image(chunks):
            if not isinstance(event, dict):
                continue
            message = stream_error(event)
            if message:
                raise EngineError(f"the engine could not load the image: {message}")
            events.append(event)
    except _sdk_errors() as error:
        raise EngineError(f"the engine could not load the image: {_sdk_message(error)}") from None
    return events


def tag_image(image: str, reference: str) -> None:
    """Point ``reference`` (``repo[:tag]``) at ``image`` (an id or another reference)."""
    from devnix.images import parse_ref

    ref = parse_ref(reference)
    repository = ref.familiar.rsplit(":", 1)[0] if ref.tag else ref.familiar
    query = f"repo={quote(repository, safe='')}&tag={quote(ref.tag or 'latest', safe='')}"
    status, data = _api_raw("POST", f"/images/{quote(image, safe=':')}/tag?{query}", timeout=30.0)
    if status not in (200, 201):
        raise EngineError(f"could not tag {image[:19]} as {reference}: {_engine_message(None, data)}")


def remove_image(reference: str, *, force: bool = False) -> bool:
    """Remove a tag (the image too when it was its last name); False when there was nothing to remove.

    An image still used by a container, or named by a digest of another tag, stays (409 is not an
    error here: the caller only wants its own name gone).
    """
    query = "?force=1" if force else ""
    status, data = _api_raw("DELETE", f"/images/{quote(reference, safe='/:@')}{query}", timeout=60.0)
    if status == 200:
        return True
    if status in (404, 409):
        return False
    raise EngineError(f"could not remove image {reference}: {_engine_message(None, data)}")


def push_image(reference: str, *, on_event: Callable[[dict[str, Any]], None] | None = None) -> str | None:
    """Push a local tag with the Docker config's credentials; return the pushed manifest digest.

    The engine answers 200 and reports failures (unreachable registry, refused credentials) inside the
    stream; those raise :class:`EngineError` here.
    """
    from devnix.images import parse_ref

    ref = parse_ref(reference)
    repository = ref.familiar.rsplit(":", 1)[0] if ref.tag else ref.familiar
    api = _stream_client()
    digest: str | None = None
    try:
        for event in api.push(repository, tag=ref.tag or "latest", stream=True, decode=True):
            if not isinstance(event, dict):
                continue
            message = stream_error(event)
            if message:
                raise EngineError(f"pushing {reference} failed: {message}")
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            if on_event is not None:
                on_event(event)
    except _sdk_errors() as error:
        raise EngineError(f"pushing {reference} failed: {_sdk_message(error)}") from None
    return digest


def volume_details(name: str, *, timeout: float = QUICK_TIMEOUT) -> dict[str, Any] | None:
    return _inspect(f"/volumes/{quote(name, safe='')}", f"volume {name}", timeout)


def create_volume(name: str, labels: dict[str, str]) -> dict[str, Any]:
    """Create a named volume (creating one that exists returns it unchanged)."""
    status, answer = _api_json("POST", "/volumes/create", body={"Name": name, "Labels": labels}, timeout=30.0)
    if status not in (200, 201) or not isinstance(answer, dict):
        raise EngineError(f"could not create volume {name}: {_engine_message(answer)}")
    return answer


def remove_volume(name: str) -> bool:
    """Remove a volume; False when it is gone already or still in use."""
    status, data = _api_raw("DELETE", f"/volumes/{quote(name, safe='')}", timeout=60.0)
    if status == 204:
        return True
    if status in (404, 409):
        return False
    raise EngineError(f"could not remove volume {name}: {_engine_message(None, data)}")
