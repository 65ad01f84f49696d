"""``devnix manifest create`` and ``devnix manifest inspect``: multi-platform tags through the registry API.

``create`` joins per-architecture tags into one tag without the docker CLI and without pulling a
layer: it reads each source's manifest (and the small config blob, for its platform), makes the blobs
present in the target repository when it differs (a cross-repository mount within one registry, a
streamed copy only when the registry refuses or between registries), writes the child manifests
there, and then the index. Without ``--push`` nothing is written: the index that would be is returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from devnix import manifest as core
from devnix import registry, transport
from devnix.errors import RegistryError, UsageError
from devnix.images import INDEX_TYPES, MANIFEST_TYPES, ImageRef, parse_ref
from devnix.manifest import Entry, Index


@dataclass(frozen=True)
class CreateOptions:
    target: str
    sources: tuple[str, ...]
    push: bool = False
    amend: bool = False
    insecure: bool = False
    timeout: float = registry.DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Child:
    """A manifest that goes into the index, where it lives now, and (when it must move) its bytes."""

    entry: Entry
    ref: ImageRef  # the registry and repository it is read from
    body: bytes | None = None  # fetched only when it has to be written into the target repository
    blobs: tuple[tuple[str, int], ...] = ()


@dataclass
class Transfers:
    """What moved (or, in a dry run, would move) into the target repository."""

    blobs: dict[str, int] = field(default_factory=dict)  # action (mounted, copied, present, planned) -> n
    bytes_copied: int = 0
    manifests: int = 0

    def count(self, action: str) -> None:
        self.blobs[action] = self.blobs.get(action, 0) + 1


@dataclass(frozen=True)
class CreateResult:
    target: ImageRef
    index: Index
    pushed: bool
    amended: bool
    replaced: tuple[str, ...]
    kept: tuple[str, ...]
    transfers: Transfers
    requests: int
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": str(self.target),
            "pushed": self.pushed,
            "dry_run": not self.pushed,
            "amended": self.amended,
            "media_type": self.index.media_type,
            "digest": self.index.digest,
            "size": self.index.size,
            "manifests": [_entry_json(entry) for entry in self.index.entries],
            "replaced": list(self.replaced),
            "kept": list(self.kept),
            "blobs": dict(self.transfers.blobs),
            "bytes_copied": self.transfers.bytes_copied,
            "manifests_copied": self.transfers.manifests,
            "requests": self.requests,
            "notes": list(self.notes),
            "index": self.index.json,
        }


@dataclass(frozen=True)
class InspectEntry:
    entry: Entry
    summary: core.ImageSummary | None  # None for entries whose manifest was not an image manifest


@dataclass(frozen=True)
class InspectResult:
    ref: ImageRef
    media_type: str
    digest: str
    size: int
    entries: tuple[InspectEntry, ...]
    requests: int

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def to_json(self) -> dict[str, Any]:
        manifests = []
        for item in self.entries:
            data = _entry_json(item.entry)
            if item.summary is not None:
                data["config"] = item.summary.config_digest
                data["layers"] = len(item.summary.layers)
                data["image_size"] = item.summary.config_size + item.summary.layers_size
            manifests.append(data)
        return {
            "ref": str(self.ref),
            "media_type": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "index": self.is_index,
            "platforms": [str(i.entry.platform_key) for i in self.entries if i.entry.platform_key],
            "manifests": manifests,
        }


def _entry_json(entry: Entry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "platform": entry.platform_text,
        "digest": entry.digest,
        "size": entry.size,
        "media_type": entry.media_type,
        "source": entry.source,
    }
    if entry.annotations:
        data["annotations"] = dict(entry.annotations)
    return data


class _Clients:
    """One :class:`registry.Client` per registry, so tokens and connections are reused."""

    def __init__(self, insecure: bool, timeout: float) -> None:
        self.insecure = insecure
        self.timeout = timeout
        self._by_registry: dict[str, registry.Client] = {}

    def get(self, ref: ImageRef) -> registry.Client:
        client = self._by_registry.get(ref.registry)
        if client is None:
            # --insecure means plain HTTP (and, for HTTPS, no certificate check), as with
            # the engine's insecure-registries; loopback registries are plain HTTP anyway.
            client = registry.Client.for_ref(
                ref, insecure=self.insecure, plain_http=True if self.insecure else None, timeout=self.timeout
            )
            self._by_registry[ref.registry] = client
        return client

    @property
    def requests(self) -> int:
        return sum(client.requests for client in self._by_registry.values())

    def close(self) -> None:
        for client in self._by_registry.values():
            client.close()


@contextmanager
def _clients(insecure: bool, timeout: float) -> Iterator[_Clients]:
    clients = _Clients(insecure, timeout)
    try:
        yield clients
    except RegistryError as error:
        # The edge's hint for an unreachable registry is written for `devnix init` (which can fall
        # back to the engine's copy); here nothing can stand in for the registry.
        if isinstance(error, transport.TransportError):
            raise RegistryError(
                error.message,
                hint="check that the registry runs at that address"
                + ("" if insecure else "; use --insecure for a plain-HTTP registry off loopback"),
            ) from None
        raise
    finally:
        clients.close()


# --- create -----------------------------------------------------------------------------------------


def create(options: CreateOptions) -> CreateResult:
    target = parse_ref(options.target)
    if target.digest:
        raise UsageError(
            f"the target {options.target} names a digest",
            hint="an index is written under a tag: drop the @sha256:... part",
        )
    if not options.sources:
        raise UsageError("no source images", hint="devnix manifest create TARGET SOURCE...")
    sources = [parse_ref(text) for text in options.sources]
    notes: list[str] = []
    with _clients(options.insecure, options.timeout) as clients:
        target_client = clients.get(target)
        children: list[Child] = []
        for ref in sources:
            children.extend(_read_source(clients.get(ref), ref, target, target_client))
        new_entries = [child.entry for child in children]
        core.check_unique(new_entries)

        existing: list[Entry] = []
        existing_type: str | None = None
        annotations: dict[str, str] | None = None
        if options.amend:
            existing, existing_type, annotations = _read_target(target_client, target, notes)
        merged = core.merge(existing, new_entries)
        index = core.build_index(merged.entries, existing_type=existing_type, annotations=annotations)

        transfers = Transfers()
        wanted = {entry.digest for entry in merged.entries}
        # Children read from elsewhere carry their bytes: they (and their blobs) must be written
        # into the target repository before an index there may point at them.
        moving = [(c, c.body) for c in children if c.entry.digest in wanted and c.body is not None]
        if options.push:
            for child, body in moving:
                _move(clients.get(child.ref), child, body, target_client, target, transfers)
            target_client.put_manifest(target.repository, target.reference, index.body, index.media_type)
        elif moving:
            transfers.blobs["planned"] = sum(len(child.blobs) for child, _ in moving)
            transfers.manifests = len(moving)
        return CreateResult(
            target=target,
            index=index,
            pushed=options.push,
            amended=options.amend,
            replaced=merged.replaced,
            kept=merged.kept,
            transfers=transfers,
            requests=clients.requests,
            notes=tuple(notes),
        )


def _read_source(
    client: registry.Client, ref: ImageRef, target: ImageRef, target_client: registry.Client
) -> list[Child]:
    """A source's entries: itself (platform from its config), or an index's children."""
    source = ref.familiar
    fetched = client.get_manifest(ref.repository, ref.reference)
    moves = client is not target_client or ref.repository != target.repository
    if fetched.is_index:
        children = []
        for entry in core.entries_of_index(fetched.json, source):
            if not moves:
                children.append(Child(entry, ref))
                continue
            # The child has to be written into the target repository, so its bytes and blob list
            # are needed (the manifest only; still no layer is read).
            if entry.media_type in INDEX_TYPES:
                raise UsageError(
                    f"{source} nests an index inside its index",
                    hint="pass the inner index's tag or digest as a source instead",
                )
            child = client.get_manifest(ref.repository, entry.digest)
            summary = core.summarize_manifest(child.json, f"{source}@{entry.digest}")
            children.append(Child(entry, ref, child.body, summary.blobs))
        return children
    if fetched.media_type not in MANIFEST_TYPES:
        raise UsageError(f"{source} is a {fetched.media_type}, not an image manifest or index")
    summary = core.summarize_manifest(fetched.json, source)
    if summary.config_digest is None:
        raise RegistryError(f"{source} has a manifest without a config")
    config = _json_object(client.get_blob(ref.repository, summary.config_digest), f"the config of {source}")
    entry = Entry(
        media_type=fetched.media_type,
        digest=fetched.digest,
        size=len(fetched.body),
        platform=core.platform_from_config(config),
        source=source,
    )
    return [Child(entry, ref, fetched.body if moves else None, summary.blobs if moves else ())]


def _read_target(
    client: registry.Client, target: ImageRef, notes: list[str]
) -> tuple[list[Entry], str | None, dict[str, str] | None]:
    """For ``--amend``: the entries, media type and annotations of what the target tag holds now."""
    try:
        fetched = client.get_manifest(target.repository, target.reference)
    except RegistryError as error:
        if not isinstance(error, transport.NotFoundError):
            raise
        notes.append(f"{target.familiar} does not exist yet; --amend starts a new index")
        return [], None, None
    source = f"{target.familiar} (existing)"
    if fetched.is_index:
        data = fetched.json
        raw = data.get("annotations")
        annotations = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else None
        return core.entries_of_index(data, source), fetched.media_type, annotations
    # A tag holding a single image joins the index as one platform of it.
    summary = core.summarize_manifest(fetched.json, source)
    if summary.config_digest is None:
        raise RegistryError(f"{source} has a manifest without a config")
    config = _json_object(
        client.get_blob(target.repository, summary.config_digest), f"the config of {source}"
    )
    entry = Entry(
        fetched.media_type, fetched.digest, len(fetched.body), core.platform_from_config(config), source
    )
    notes.append(f"{target.familiar} held a single {entry.platform_text} image; it joins the index")
    return [entry], None, None


def _move(
    source: registry.Client,
    child: Child,
    body: bytes,
    target_client: registry.Client,
    target: ImageRef,
    transfers: Transfers,
) -> None:
    """Blobs first, then the manifest: a registry refuses a manifest whose blobs it does not have."""
    for digest, size in child.blobs:
        action = registry.transfer_blob(
            source, child.ref.repository, target_client, target.repository, digest, size
        )
        transfers.count(action)
        if action == "copied":
            transfers.bytes_copied += size
    target_client.put_manifest(target.repository, child.entry.digest, body, child.entry.media_type)
    transfers.manifests += 1


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise RegistryError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise RegistryError(f"{what} is not a JSON object")
    return value


# --- inspect ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InspectOptions:
    ref: str
    insecure: bool = False
    timeout: float = registry.DEFAULT_TIMEOUT


def inspect(options: InspectOptions) -> InspectResult:
    ref = parse_ref(options.ref)
    source = ref.familiar
    with _clients(options.insecure, options.timeout) as clients:
        client = clients.get(ref)
        fetched = client.get_manifest(ref.repository, ref.reference)
        items: list[InspectEntry] = []
        if fetched.is_index:
            for entry in core.entries_of_index(fetched.json, source):
                summary = None
                if entry.media_type in MANIFEST_TYPES:
                    # Child manifests are small; their layer lists give each platform's image size.
                    child = client.get_manifest(ref.repository, entry.digest)
                    summary = core.summarize_manifest(child.json, f"{source}@{entry.digest}")
                items.append(InspectEntry(entry, summary))
        else:
            summary = core.summarize_manifest(fetched.json, source)
            platform = None
            if summary.config_digest:
                config = _json_object(
                    client.get_blob(ref.repository, summary.config_digest), f"the config of {source}"
                )
                platform = core.platform_from_config(config)
            entry = Entry(fetched.media_type, fetched.digest, len(fetched.body), platform, source)
            items.append(InspectEntry(entry, summary))
        body_size = len(fetched.body)
        return InspectResult(
            ref, fetched.media_type, fetched.digest, body_size, tuple(items), clients.requests
        )
