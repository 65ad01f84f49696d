"""Pure: image references and the catalog of Nix images devnix knows.

The catalog is package data (``devnix/data/images.json``), read through importlib.resources; nothing
else is read.

A reference follows the distribution grammar that Docker uses: ``[registry/]repository[:tag][@digest]``,
where a first component with a dot, a colon or equal to ``localhost`` names a registry, and the default
registry is Docker Hub (``docker.io``, repository ``library/<name>`` for single names).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache

from devnix.errors import UsageError
from devnix.platforms import Platform, parse

DOCKER_HUB = "docker.io"

# What a tag can point at: an index of per-platform images, or one image's manifest (OCI or Docker's).
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
# Docker Hub's API does not live at docker.io itself.
_API_HOSTS = {DOCKER_HUB: "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference with Docker's defaults filled in."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag (``latest`` by default)."""
        return self.digest or self.tag or "latest"

    @property
    def api_host(self) -> str:
        """Host[:port] that serves this registry's HTTP API."""
        return _API_HOSTS.get(self.registry, self.registry)

    @property
    def is_loopback(self) -> bool:
        """Loopback registries speak plain HTTP, as the Docker engine assumes for them."""
        host = self.registry.rsplit(":", 1)[0] if not self.registry.endswith("]") else self.registry
        host = host.strip("[]")
        if host == "localhost":
            return True
        import ipaddress  # only for numeric hosts; keeps start-up light

        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        """The short spelling people write (``nixos/nix:latest`` rather than ``docker.io/nixos/nix``)."""
        text = str(self)
        if self.registry == DOCKER_HUB:
            text = text[len(DOCKER_HUB) + 1 :]
            if text.startswith("library/"):
                text = text[len("library/") :]
        return text


def parse_ref(text: str) -> ImageRef:
    """Parse an image reference, raising :class:`UsageError` with a hint when it is malformed."""
    raw = text.strip()
    hint = "an image reference looks like nixos/nix:latest or ghcr.io/owner/image:tag"
    if not raw or any(c.isspace() for c in raw):
        raise UsageError(f"malformed image reference {text!r}", hint=hint)
    name, _, digest = raw.partition("@")
    if digest and not _DIGEST_RE.match(digest):
        raise UsageError(f"malformed digest in image reference {text!r}", hint=hint)
    tag: str | None = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise UsageError(f"malformed tag in image reference {text!r}", hint=hint)
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
        if not _HOST_RE.match(registry):
            raise UsageError(f"malformed registry in image reference {text!r}", hint=hint)
    else:
        registry, repository = DOCKER_HUB, name
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPOSITORY_RE.match(repository):
        raise UsageError(
            f"malformed repository in image reference {text!r}",
            hint="repository names are lowercase letters, digits and . _ - separated by /",
        )
    if tag is None and not digest:
        tag = "latest"
    return ImageRef(registry, repository, tag, digest or None)


class Filesystem(str, Enum):
    """Whether an image has an FHS loader (``/lib64/ld-linux-x86-64.so.2``…) for programs built elsewhere.

    VS Code's server is such a program. Images built by Nix (``nixos/nix``, dockerTools images) keep
    glibc only in ``/nix/store``: "store-only"; the server cannot start there until devnix's FHS loader
    step (``devnix/scaffolds/fhs-loader.sh``) adds one.
    """

    FHS = "fhs"
    STORE_ONLY = "store-only"
    UNKNOWN = "unknown"


# Where images built on a distribution put programs; Nix-built images have only profile folders.
_FHS_BIN_DIRS = frozenset({"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"})


def filesystem_from_env(env: Sequence[object] | None) -> Filesystem:
    """Guess the layout from an image config's ``Env``: its ``PATH`` names only Nix profiles in
    store-only images (nixos/nix: ``/root/.nix-profile/bin:/nix/var/nix/profiles/default/bin:…``) and
    FHS folders in distribution-based ones. Anything else is unknown (the loader step is then a no-op
    where it is not needed, and ``devnix doctor`` probes the image itself)."""
    for item in env or ():
        if not isinstance(item, str) or not item.startswith("PATH="):
            continue
        entries = [entry.rstrip("/") or "/" for entry in item[len("PATH=") :].split(":") if entry]
        if any(entry in _FHS_BIN_DIRS for entry in entries):
            return Filesystem.FHS
        if entries and all(entry.startswith("/nix/") or "/.nix-profile" in entry for entry in entries):
            return Filesystem.STORE_ONLY
        return Filesystem.UNKNOWN
    return Filesystem.UNKNOWN


def filesystem_of(ref: ImageRef | None, env: Sequence[object] | None) -> tuple[Filesystem, bool]:
    """An image's layout and whether the catalog said it: the catalog's word is knowledge and comes
    first; an image config's ``PATH`` (:func:`filesystem_from_env`) is a heuristic for the rest."""
    entry = lookup(ref) if ref is not None else None
    if entry is not None and entry.filesystem is not Filesystem.UNKNOWN:
        return entry.filesystem, True
    return filesystem_from_env(env), False


@dataclass(frozen=True)
class CatalogImage:
    """What devnix knows about a Nix image without asking its registry."""

    name: str
    ref: ImageRef
    platforms: tuple[Platform, ...]
    notes: str
    # Nix settings this image needs to build inside an unprivileged container.
    nix_settings: dict[str, str] = field(default_factory=dict)
    user: str = "root"
    filesystem: Filesystem = Filesystem.UNKNOWN


@cache
def catalog() -> tuple[CatalogImage, ...]:
    """The catalog shipped as package data (``devnix/data/images.json``)."""
    from importlib import resources  # ~10 ms, and only needed without --image or on a fallback

    raw = json.loads(resources.files("devnix").joinpath("data/images.json").read_text("utf-8"))
    return tuple(
        CatalogImage(
            name=entry["name"],
            ref=parse_ref(entry["ref"]),
            platforms=tuple(parse(p) for p in entry["platforms"]),
            notes=entry["notes"],
            nix_settings=dict(entry.get("nix_settings", {})),
            user=entry.get("user", "root"),
            filesystem=Filesystem(entry.get("filesystem", Filesystem.UNKNOWN.value)),
        )
        for entry in raw["images"]
    )


def default_image() -> CatalogImage:
    """The catalog's first entry is the default image."""
    return catalog()[0]


def lookup(ref: ImageRef) -> CatalogImage | None:
    """The catalog entry for this repository (any tag), if devnix knows it."""
    for image in catalog():
        if image.ref.registry == ref.registry and image.ref.repository == ref.repository:
            return image
    return None
