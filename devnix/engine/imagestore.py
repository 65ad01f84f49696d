"""Edge: the engine's image store (pull, load, tag, remove, push) and the errors inside its streams.

The engine answers these with HTTP 200 and reports failures inside the stream of events that follows;
:func:`stream_error` reads them. Pulls with progress, loads and pushes stream through the SDK, an image of
hundreds of MB chunk by chunk.

Podman serves the same calls with its own habits: a loaded archive's names get its ``localhost/``
registry, an archive without names is reported as ``Loaded image: sha256:…``, a name a load takes from
another image moves without a word (:func:`image_names` before the load tells which), and a gzipped
archive is refused (see :func:`load_image`).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

from devnix.engine.api import (
    QUICK_TIMEOUT,
    _api_get,
    _api_raw,
    _engine_message,
    _sdk_errors,
    _sdk_message,
    _stream_client,
)
from devnix.engine.lookups import version
from devnix.errors import EngineError

GZIP_MAGIC = b"\x1f\x8b"
# The status line closing a push, Docker's and Podman's alike: "TAG: digest: sha256:… size: N".
_PUSHED = re.compile(r"^\S+: digest: (sha256:[0-9a-f]{64}) size: \d+$")
CHUNK = 1 << 20  # the most bytes one decompression step hands on


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

    The engine decompresses and unpacks as the bytes arrive; errors come inside its answer. Podman (Debian's
    4.3, built with Go >= 1.19 against a pgzip without klauspost/pgzip#50) refuses every gzipped archive,
    its CLI too ("loading tar component manifest.json: archive/tar: invalid tar header", containers/podman
    #15944); other compressions load. For Podman a gzipped stream is unpacked here on its way through.
    """
    api = _stream_client()
    events: list[dict[str, Any]] = []
    try:
        for event in api.load_image(_loadable(iter(chunks))):
            if not isinstance(event, dict):
                continue
            message = stream_error(event)
            if message:
                raise EngineError(f"the engine could not load the image: {message}")
            events.append(event)
    except _sdk_errors() as error:
        raise EngineError(f"the engine could not load the image: {_sdk_message(error)}") from None
    return events


def _loadable(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The stream as the engine can load it: gunzipped for Podman, as it comes for everyone else."""
    first = b""
    for chunk in chunks:
        first += chunk
        if len(first) >= len(GZIP_MAGIC):
            break
    if first.startswith(GZIP_MAGIC) and is_podman():
        yield from gunzip(_chain(first, chunks))
    else:
        yield from _chain(first, chunks)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress a gzip stream chunk by chunk (members one after another, as pigz writes them), never
    more than :data:`CHUNK` bytes at a time: a layer of zeros inflates a thousandfold."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    started = False
    for chunk in chunks:
        data = chunk
        while data:
            if inflate.eof:
                if not data.strip(b"\0"):
                    break  # zeros after the last member (tape-style padding), as gzip itself allows
                inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            started = True
            try:
                out = inflate.decompress(data, CHUNK)
            except zlib.error as error:
                raise EngineError(f"the image archive is not valid gzip: {error}") from None
            data = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
            if out:
                yield out
    if started and not inflate.eof:
        rest = inflate.flush()  # output zlib held back when a step stopped at CHUNK bytes
        if rest:
            yield rest
    if started and not inflate.eof:
        raise EngineError("the image archive ends in the middle of its gzip stream")


def is_podman(*, timeout: float = QUICK_TIMEOUT) -> bool:
    """Whether the engine is Podman: its ``/version`` lists a ``Podman Engine`` component."""
    return version(timeout=timeout).podman


def image_names(*, timeout: float = QUICK_TIMEOUT) -> dict[str, str]:
    """Every name in the store and the id it names (``RepoTags`` of ``/images/json``)."""
    status, listing = _api_get("/images/json", timeout=timeout)
    if status != 200 or not isinstance(listing, list):
        raise EngineError(f"the engine answered /images/json with HTTP {status}")
    return {
        str(name): str(entry.get("Id"))
        for entry in listing
        if isinstance(entry, dict)
        for name in entry.get("RepoTags") or ()
        if name and name != "<none>:<none>"
    }


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
    """Push a local tag with the Docker config's credentials; return the pushed manifest digest (from
    Docker's ``aux`` event, else from the closing status line, which is all Podman sends).

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
            elif match := _PUSHED.match(str(event.get("status") or "")):
                digest = digest or match.group(1)  # Podman sends no aux event, only this line
            if on_event is not None:
                on_event(event)
    except _sdk_errors() as error:
        raise EngineError(f"pushing {reference} failed: {_sdk_message(error)}") from None
    return digest
