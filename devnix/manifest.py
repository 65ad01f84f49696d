"""Pure: multi-platform image indexes (OCI image index, Docker manifest list) built from descriptors.

``devnix manifest create`` reads per-architecture images from a registry (the edge, in
:mod:`devnix.registry`) and hands their descriptors here, which decides everything without I/O:

- which media type to write: a Docker manifest list when every child is a Docker v2 manifest (what
  Docker Engine 20.10 pushes, and what the oldest clients understand), an OCI image index otherwise;
- that no two sources claim the same platform (an index with two ``linux/amd64`` entries pulls one of
  them at random, depending on the client);
- how ``--amend`` merges into an index already at the target: an entry of the same platform is replaced
  in place (so the order people chose stays), the others are kept, new platforms are appended;
- the exact bytes to PUT (the index's digest is the digest of these bytes).

The media type names live in :mod:`devnix.images` (pure), which the registry edge shares.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devnix.errors import RegistryError, UsageError
from devnix.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
)
from devnix.platforms import Platform

# BuildKit's attestation manifests sit in an index as platform unknown/unknown and point at the image
# they describe with this annotation; they must follow that image in and out of an index.
ATTESTATION_REFERENCE = "vnd.docker.reference.digest"

_KIND = {
    OCI_INDEX: "OCI image index",
    OCI_MANIFEST: "OCI image manifest",
    DOCKER_LIST: "Docker manifest list",
    DOCKER_MANIFEST: "Docker v2 manifest",
}

# The platform fields an OCI descriptor may carry, in the order Docker writes them.
_PLATFORM_FIELDS = ("architecture", "os", "os.version", "os.features", "variant", "features")


def kind(media_type: str) -> str:
    """A media type's name for people (``Docker v2 manifest``), or the media type itself."""
    return _KIND.get(media_type, media_type)


@dataclass(frozen=True)
class Entry:
    """One child of an index: a manifest descriptor and where it came from.

    ``platform`` holds the descriptor's platform object as it will be written (``os.version`` and
    friends included); ``None`` for entries that are not runnable images (attestations).
    """

    media_type: str
    digest: str
    size: int
    platform: Mapping[str, Any] | None
    source: str
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def platform_key(self) -> Platform | None:
        """The platform as a machine sees it, or ``None`` for attestations and ``unknown/unknown``."""
        return platform_key(self.platform)

    @property
    def platform_text(self) -> str:
        key = self.platform_key
        if key is not None:
            return str(key)
        if self.attests is not None:
            return "attestation"
        return "unknown"

    @property
    def attests(self) -> str | None:
        """The digest of the image this attestation manifest describes, if it is one."""
        value = self.annotations.get(ATTESTATION_REFERENCE)
        return value if isinstance(value, str) else None

    def descriptor(self, with_annotations: bool) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform is not None:
            data["platform"] = dict(self.platform)
        if with_annotations and self.annotations:
            data["annotations"] = dict(self.annotations)
        return data


def platform_key(platform: Mapping[str, Any] | None) -> Platform | None:
    """Normalize a descriptor or config platform (``arm64/v8`` is ``arm64``) for comparisons."""
    if not platform:
        return None
    os_name = str(platform.get("os") or "")
    arch = str(platform.get("architecture") or "")
    if not os_name or not arch or "unknown" in (os_name, arch):
        return None
    variant = platform.get("variant") or None
    if arch == "arm64" and variant == "v8":
        variant = None
    return Platform(os_name, arch, str(variant) if variant else None)


def platform_from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The descriptor platform of an image from its config blob (``os``, ``architecture``, ...)."""
    if not config.get("architecture") or not config.get("os"):
        raise UsageError(
            "an image config names no os/architecture",
            hint="rebuild the image with a tool that records its platform",
        )
    return {key: config[key] for key in _PLATFORM_FIELDS if config.get(key)}


_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
# What the registry sent is not a valid OCI index: devnix will not guess at its entries.
_BAD_INDEX = "the registry's index is malformed; name the per-platform tags as sources instead"
_BAD_ANSWER = "the registry's answer is not an OCI manifest; check the reference and the registry"


def entries_of_index(index: Mapping[str, Any], source: str) -> list[Entry]:
    """The children of an index as entries (malformed descriptors are refused, not skipped)."""
    entries: list[Entry] = []
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise RegistryError(f"{source} is an index without a manifests list", hint=_BAD_INDEX)
    for raw in manifests:
        try:
            media_type = str(raw["mediaType"])
            digest = str(raw["digest"])
            size = int(raw["size"])
        except (KeyError, TypeError, ValueError):
            raise RegistryError(
                f"{source} has an index entry without mediaType, digest and size", hint=_BAD_INDEX
            ) from None
        platform = raw.get("platform")
        annotations = raw.get("annotations") or {}
        if not isinstance(annotations, dict) or not _DIGEST.match(digest):
            raise RegistryError(
                f"{source} has an index entry with a malformed digest or annotations", hint=_BAD_INDEX
            )
        entries.append(
            Entry(
                media_type=media_type,
                digest=digest,
                size=size,
                platform=dict(platform) if isinstance(platform, dict) else None,
                source=source,
                annotations={str(k): str(v) for k, v in annotations.items()},
            )
        )
    return entries


def check_unique(entries: Sequence[Entry]) -> None:
    """Refuse sources that give the same platform twice: pulls would pick one of them arbitrarily."""
    seen: dict[Platform, Entry] = {}
    for entry in entries:
        key = entry.platform_key
        if key is None:
            continue
        if key in seen:
            first = seen[key]
            where = (
                f"{first.source} and {entry.source} both give"
                if first.source != entry.source
                else f"{entry.source} gives twice"
            )
            raise UsageError(
                f"{where} {key}",
                hint="pass one image per platform (use --amend to replace a platform of the target)",
            )
        seen[key] = entry


@dataclass(frozen=True)
class Merge:
    """The entries of the index to write, and which platforms of the old one were replaced."""

    entries: tuple[Entry, ...]
    replaced: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


def merge(existing: Sequence[Entry], new: Sequence[Entry]) -> Merge:
    """``--amend``: new entries replace old ones of the same platform in place; new platforms go last.

    Attestations follow the image they describe: an old image's attestation goes when the image is
    replaced. Entries the new set already holds (same digest) are not repeated.
    """
    check_unique(new)
    by_platform = {entry.platform_key: entry for entry in new if entry.platform_key is not None}
    new_digests = {entry.digest for entry in new}
    result: list[Entry] = []
    placed: set[str] = set()
    replaced: list[str] = []
    kept: list[str] = []
    for old in existing:
        key = old.platform_key
        if key is not None and key in by_platform:
            replacement = by_platform[key]
            if replacement.digest not in placed:
                result.append(replacement)
                placed.add(replacement.digest)
            if old.digest != replacement.digest:
                replaced.append(str(key))
            continue
        if old.digest in new_digests:
            continue  # the same manifest comes again from a source; it is placed below
        result.append(old)
        placed.add(old.digest)
        if key is not None:
            kept.append(str(key))
    for entry in new:
        if entry.digest not in placed:
            result.append(entry)
            placed.add(entry.digest)
    runnable = {entry.digest for entry in result if entry.attests is None}
    result = [entry for entry in result if entry.attests is None or entry.attests in runnable]
    return Merge(tuple(result), tuple(replaced), tuple(kept))


def choose_media_type(entries: Iterable[Entry], existing_type: str | None = None) -> str:
    """A Docker manifest list only when every child is a Docker v2 manifest, an OCI index otherwise.

    ``--amend`` keeps an existing OCI index an OCI index (turning it into a Docker list would drop
    its annotations); a Docker list becomes an OCI index when an OCI manifest joins it.
    """
    if existing_type == OCI_INDEX:
        return OCI_INDEX
    return DOCKER_LIST if all(e.media_type == DOCKER_MANIFEST for e in entries) else OCI_INDEX


@dataclass(frozen=True)
class Index:
    """An index ready to PUT: its media type, exact bytes and their digest."""

    media_type: str
    body: bytes
    entries: tuple[Entry, ...]

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.body).hexdigest()

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except ValueError:
            raise RegistryError("the registry sent a manifest that is not JSON", hint=_BAD_ANSWER) from None
        if not isinstance(value, dict):
            raise RegistryError("the registry sent a manifest that is not a JSON object", hint=_BAD_ANSWER)
        return value


def build_index(
    entries: Sequence[Entry],
    *,
    existing_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Index:
    """The index over ``entries``; ``annotations`` (an amended OCI index's own) are kept on OCI only."""
    if not any(entry.platform_key is not None for entry in entries):
        raise UsageError("no runnable image among the sources", hint="pass per-platform image tags")
    media_type = choose_media_type(entries, existing_type)
    oci = media_type == OCI_INDEX
    data: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [entry.descriptor(with_annotations=oci) for entry in entries],
    }
    if oci and annotations:
        data["annotations"] = dict(annotations)
    return Index(media_type, json.dumps(data, indent=2).encode(), tuple(entries))


# --- inspecting -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSummary:
    """What an image manifest says about its blobs (sizes are compressed, as stored)."""

    config_digest: str | None
    config_size: int
    layers: tuple[tuple[str, int], ...]

    @property
    def layers_size(self) -> int:
        return sum(size for _, size in self.layers)

    @property
    def blobs(self) -> tuple[tuple[str, int], ...]:
        """Every blob the manifest needs, config first (what must exist in a repository it goes to)."""
        config = ((self.config_digest, self.config_size),) if self.config_digest else ()
        return config + self.layers


def summarize_manifest(manifest: Mapping[str, Any], source: str) -> ImageSummary:
    """The config and layer descriptors of an image manifest."""
    try:
        config = manifest.get("config") or {}
        layers = tuple((str(layer["digest"]), int(layer["size"])) for layer in manifest.get("layers") or ())
        config_digest = str(config["digest"]) if config.get("digest") else None
        config_size = int(config.get("size") or 0)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise RegistryError(f"{source} has a malformed image manifest", hint=_BAD_ANSWER) from None
    return ImageSummary(config_digest, config_size, layers)


def human_size(size: int) -> str:
    """``1536`` -> ``1.5 KB`` (decimal units, as registries and ``docker images`` show them)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover - the loop always returns
