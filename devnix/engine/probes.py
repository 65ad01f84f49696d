"""Edge: throwaway containers for ``devnix doctor`` (raw API calls: create, start, wait, logs, remove)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

from devnix.engine.api import QUICK_TIMEOUT, ImageMissingError, _api_get, _api_json, _api_raw, _engine_message
from devnix.errors import EngineError, EngineUnreachableError

PROBE_LABEL = "org.devnix.doctor"


@dataclass(frozen=True)
class ProbeRun:
    """What a throwaway container did: its exit code (None when it ran out of time) and its output."""

    exit_code: int | None
    output: str


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
