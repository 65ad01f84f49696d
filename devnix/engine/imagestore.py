"""Edge: the engine's image store (pull, load, tag, remove, push) and the errors inside its streams.

The engine answers these with HTTP 200 and reports failures inside the stream of events that follows;
:func:`stream_error` reads them. Pulls with progress, loads and pushes stream through the SDK, an image of
hundreds of MB chunk by chunk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from devnix.engine.api import _api_raw, _engine_message, _sdk_errors, _sdk_message, _stream_client
from devnix.errors import EngineError


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
