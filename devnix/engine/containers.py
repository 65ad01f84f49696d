"""Edge: long-lived builder containers for bootstrap (create, attach, start, exec streams, archives, volumes).

The streams use the SDK with a long socket timeout: a `nix build` may print nothing for minutes. Every
byte stream here is a generator consumed chunk by chunk, so nothing large is ever held in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from devnix.engine.api import (
    _api_json,
    _api_raw,
    _engine_message,
    _sdk_errors,
    _sdk_message,
    _stream_client,
)
from devnix.errors import EngineError, EngineUnreachableError

BOOTSTRAP_LABEL = "org.devnix.bootstrap"


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
