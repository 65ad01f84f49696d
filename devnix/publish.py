"""devcontainer Feature and Template collections, read from their folders and turned into OCI artifacts.

Not pure: it reads the collection's files (and only those); it never talks to a registry, which
:mod:`devnix.commands.publish` does.

The devcontainer distribution spec (features-distribution, templates-distribution) and the reference
CLI (@devcontainers/cli ``features publish`` / ``templates publish``) fix the format; this module decides
everything about it without a registry:

- which folders of a collection are Features/Templates, and that their metadata is usable (an ``id``
  equal to the folder's name and a valid OCI path component, a semver ``version``, ``install.sh`` for a
  Feature, a devcontainer.json for a Template), with one-line errors;
- the metadata as published: a Template's ``devcontainer-template.json`` gains ``type``, ``files``,
  ``fileCount`` and ``featureIds`` and is rewritten inside the archive, a Feature with ``legacyIds``
  gains ``currentId``, as the reference CLI's packaging step does;
- the layer: an uncompressed tar of the folder with ``./``-prefixed names, named
  ``devcontainer-<kind>-<id>.tgz``. Uncompressed because the reference CLI writes exactly that (the
  media type says ``+tar``; the ``.tgz`` name is historic) and consumers may trust the media type.
  Entries are sorted, mtimes 0, owner 0:0 without names, modes reduced to 0644/0755, so an unchanged
  source gives a byte-identical layer and manifest: that is what makes a second publish a no-op;
- the manifest bytes (the digest is of these bytes), the ``dev.containers.metadata`` annotation, and
  the collection metadata (``devcontainer-collection.json``) pushed at ``NS:latest``;
- which tags a version gets: ``1``, ``1.2``, ``1.2.3``, ``latest``, the floating ones only when the
  version is the highest of its range among the published ones.

Reading the source folder is the only I/O here; the registry side is :mod:`devnix.commands.publish`.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from devnix import jsonc
from devnix.errors import FileSystemError, UsageError

Kind = Literal["feature", "template"]
KINDS: tuple[Kind, ...] = ("feature", "template")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.devcontainers"
LAYER_MEDIA_TYPE = "application/vnd.devcontainers.layer.v1+tar"
COLLECTION_MEDIA_TYPE = "application/vnd.devcontainers.collection.layer.v1+json"
TITLE_ANNOTATION = "org.opencontainers.image.title"
METADATA_ANNOTATION = "dev.containers.metadata"
# ghcr.io shows a package as a Feature/Template/collection only with this annotation (the reference CLI
# adds it for ghcr.io alone, and so does devnix: elsewhere it would only change the digest).
GITHUB_PACKAGE_TYPE = "com.github.package.type"
GITHUB_REGISTRY = "ghcr.io"
COLLECTION_FILE = "devcontainer-collection.json"
COLLECTION_SOURCE = "devnix"

# The config blob is the two bytes ``{}``, as the reference CLI pushes it: registries that reject an
# empty blob accept it, and artifacts from either tool then share the config.
EMPTY_CONFIG = b"{}"

# OCI path components (what a Feature id must be to become ``NS/<id>``), and a whole namespace.
_COMPONENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
ID_RE = re.compile(rf"^{_COMPONENT}$")
NAMESPACE_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")

_NUM = r"0|[1-9][0-9]*"
_PRE_ID = r"0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*"
_SEMVER_RE = re.compile(
    rf"^({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-((?:{_PRE_ID})(?:\.(?:{_PRE_ID}))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

_FIXED_MTIME = 0


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


EMPTY_CONFIG_DIGEST = sha256_digest(EMPTY_CONFIG)


def human_kind(kind: Kind, count: int = 2) -> str:
    """``feature``/``features`` for messages."""
    return kind if count == 1 else f"{kind}s"


# --- semantic versions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """A semver 2.0 version; ordered by precedence (build metadata does not count)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: str = ""

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(part) for part in self.prerelease)
        if self.build:
            text += f"+{self.build}"
        return text

    @property
    def precedence(self) -> tuple[Any, ...]:
        # A release sorts after its prereleases; numeric identifiers sort before alphanumeric ones,
        # and a shorter identifier list before a longer one with the same start (semver.org §11).
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: Version) -> bool:
        return self.precedence < other.precedence

    def __le__(self, other: Version) -> bool:
        return self.precedence <= other.precedence

    def __gt__(self, other: Version) -> bool:
        return self.precedence > other.precedence

    def __ge__(self, other: Version) -> bool:
        return self.precedence >= other.precedence


def parse_version(text: str) -> Version | None:
    """A strict ``MAJOR.MINOR.PATCH[-pre][+build]``, or ``None``."""
    match = _SEMVER_RE.match(text)
    if match is None:
        return None
    major, minor, patch, pre, build = match.groups()
    parts: tuple[int | str, ...] = ()
    if pre:
        parts = tuple(int(p) if p.isdigit() else p for p in pre.split("."))
    return Version(int(major), int(minor), int(patch), parts, build or "")


def published_versions(tags: Iterable[str]) -> list[Version]:
    """The tags that are versions (``1``, ``1.2`` and ``latest`` are not), sorted.

    A leading ``v`` is read as node-semver's ``valid()`` reads it, so that devnix sees the same
    published versions as the reference CLI does on a registry both publish to.
    """
    found = []
    for tag in tags:
        version = parse_version(tag[1:] if tag.startswith("v") else tag)
        if version is not None:
            found.append(version)
    return sorted(found, key=lambda v: v.precedence)


def semantic_tags(version: Version, published: Iterable[str]) -> tuple[list[str], list[str]]:
    """The tags to write for ``version`` and the floating ones left where they are.

    ``1.2.3`` always; ``1``, ``1.2`` and ``latest`` when no released version of that range (``1.x``,
    ``1.2.x``, any) is higher, as the reference CLI decides with node-semver's ``maxSatisfying``.
    The published tag equal to ``version`` itself is not counted, so a forced re-publish of the
    highest version re-points its floating tags. A prerelease gets its own tag only: node-semver's
    ranges never contain prereleases, so it is not "the highest of its range" and ``:1`` must not
    move to a beta (the reference CLI would move it; this is where devnix differs on purpose).
    """
    exact = str(version)
    if version.prerelease:
        return [exact], [str(version.major), f"{version.major}.{version.minor}", "latest"]
    others = [
        v for v in published_versions(published) if not v.prerelease and v.precedence != version.precedence
    ]
    write: list[str] = []
    kept: list[str] = []

    def consider(tag: str, in_range: list[Version]) -> None:
        (write if not in_range or version > max(in_range) else kept).append(tag)

    consider(str(version.major), [v for v in others if v.major == version.major])
    consider(
        f"{version.major}.{version.minor}",
        [v for v in others if (v.major, v.minor) == (version.major, version.minor)],
    )
    write.append(exact)
    consider("latest", others)
    return write, kept


def highest_published(version: Version, published: Iterable[str]) -> Version | None:
    """The highest published version when it is above ``version`` (publishing would go backwards)."""
    versions = published_versions(published)
    if versions and versions[-1] > version:
        return versions[-1]
    return None


# --- the source: one Feature or Template folder -------------------------------------------------------


@dataclass(frozen=True)
class SourceEntry:
    """One tar entry: a path relative to the folder (posix), and what it is."""

    path: str
    type: Literal["dir", "file", "symlink"]
    data: bytes = b""
    executable: bool = False
    link: str = ""


@dataclass(frozen=True)
class Item:
    """One Feature or Template, packaged: metadata as published, and the layer's bytes."""

    kind: Kind
    id: str
    version: Version
    metadata: dict[str, Any]
    layer: bytes
    folder: Path
    legacy_ids: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return archive_name(self.kind, self.id)

    @property
    def layer_digest(self) -> str:
        return sha256_digest(self.layer)


@dataclass(frozen=True)
class Collection:
    kind: Kind
    source: Path
    items: tuple[Item, ...]
    skipped: tuple[str, ...] = ()  # folders without devcontainer-<kind>.json, as the reference CLI skips them


def metadata_file(kind: Kind) -> str:
    return f"devcontainer-{kind}.json"


def archive_name(kind: Kind, item_id: str) -> str:
    return f"devcontainer-{kind}-{item_id}.tgz"


def scan_collection(source: Path, kind: Kind) -> Collection:
    """Read a collection (``src/`` with one folder per item), its parent, or a single item's folder."""
    if not source.is_dir():
        raise UsageError(f"{source} is not a folder", hint=f"give the folder that holds the {kind}s")
    name = metadata_file(kind)
    if (source / name).is_file():
        return Collection(kind, source, (read_item(source, kind),))
    root = source
    if not _has_items(source, name) and (source / "src").is_dir():
        root = source / "src"  # the repository layout: features/src/<id>, features/test/<id>
    items: list[Item] = []
    skipped: list[str] = []
    for folder in sorted(root.iterdir(), key=lambda p: p.name):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        if not (folder / name).is_file():
            skipped.append(folder.name)
            continue
        items.append(read_item(folder, kind))
    if not items:
        raise UsageError(
            f"no {kind}s in {source}: no folder there has a {name}",
            hint=f"give the collection's src/ folder (src/<id>/{name}) or a single {kind}'s folder",
        )
    return Collection(kind, root, tuple(items), tuple(skipped))


def _has_items(folder: Path, name: str) -> bool:
    return any(child.is_dir() and (child / name).is_file() for child in folder.iterdir())


def read_item(folder: Path, kind: Kind) -> Item:
    """One folder as it will be published (metadata checked, enriched, and the layer built)."""
    entries = read_entries(folder)
    name = metadata_file(kind)
    where = f"{folder.name}/{name}"
    files = {e.path: e for e in entries if e.type == "file"}
    raw = files[name].data
    metadata = parse_metadata(raw, where)
    item_id, version = check_metadata(metadata, where, folder.name)
    legacy: tuple[str, ...] = ()
    rewritten: bytes | None = None
    if kind == "feature":
        if "install.sh" not in files:
            raise UsageError(
                f"feature {item_id!r} has no install.sh",
                hint=f"a Feature is at least {name} and install.sh in {folder}",
            )
        legacy = _legacy_ids(metadata, where)
        if legacy:
            # The reference CLI records the id that replaced the legacy ones, and ships that file.
            metadata["currentId"] = item_id
            rewritten = _pretty(metadata)
    else:
        enrich_template(metadata, entries, where)
        rewritten = _pretty(metadata)
    if rewritten is not None:
        entries = [
            SourceEntry(e.path, "file", rewritten, e.executable) if e.path == name else e for e in entries
        ]
    return Item(kind, item_id, version, metadata, build_layer(entries), folder, legacy)


def read_entries(folder: Path) -> list[SourceEntry]:
    """Every entry under ``folder``, parents before children, siblings by name (the tar's order)."""
    entries: list[SourceEntry] = []

    def walk(directory: Path, prefix: str) -> None:
        try:
            children = sorted(directory.iterdir(), key=lambda p: p.name)
        except OSError as error:
            raise FileSystemError(f"cannot list {directory}: {error.strerror or error}") from None
        for child in children:
            path = f"{prefix}{child.name}"
            try:
                info = child.lstat()
                if stat.S_ISLNK(info.st_mode):
                    entries.append(SourceEntry(path, "symlink", link=str(child.readlink())))
                elif stat.S_ISDIR(info.st_mode):
                    entries.append(SourceEntry(path, "dir"))
                    walk(child, f"{path}/")
                elif stat.S_ISREG(info.st_mode):
                    executable = bool(info.st_mode & 0o111)
                    entries.append(SourceEntry(path, "file", child.read_bytes(), executable))
                else:
                    raise UsageError(
                        f"{child} is neither a file, a folder nor a symlink",
                        hint="remove it from the folder being published",
                    )
            except OSError as error:
                raise FileSystemError(f"cannot read {child}: {error.strerror or error}") from None

    walk(folder, "")
    return entries


def parse_metadata(raw: bytes, where: str) -> dict[str, Any]:
    """devcontainer-feature.json / -template.json: JSONC, as the reference CLI reads them."""
    try:
        value = jsonc.parse(jsonc.decode(raw)).value
    except jsonc.JsoncSyntaxError as error:
        raise UsageError(f"{where}: {error.located(where)}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{where} is not a JSON object")
    return value


def check_metadata(metadata: Mapping[str, Any], where: str, folder_name: str) -> tuple[str, Version]:
    """The minimal checks that keep a publish from failing half-way or publishing garbage."""
    item_id = metadata.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise UsageError(f'{where} has no "id"', hint='add "id": "<folder name>"')
    if not ID_RE.match(item_id):
        raise UsageError(
            f"{where}: id {item_id!r} cannot be a registry path component",
            hint="use lowercase letters, digits and . _ - (not at the start or end)",
        )
    if item_id != folder_name:
        raise UsageError(
            f"{where}: id {item_id!r} differs from its folder's name {folder_name!r}",
            hint="the spec names each folder after its id; rename one of them",
        )
    raw_version = metadata.get("version")
    if not isinstance(raw_version, str) or not raw_version:
        raise UsageError(f'{where} has no "version"', hint='add "version": "1.0.0"')
    version = parse_version(raw_version)
    if version is None:
        raise UsageError(
            f"{where}: version {raw_version!r} is not a semantic version",
            hint="write MAJOR.MINOR.PATCH, e.g. 1.0.0 (no leading v)",
        )
    if version.build:
        raise UsageError(
            f"{where}: version {raw_version!r} has build metadata (+{version.build})",
            hint="registry tags cannot hold '+': drop the build metadata",
        )
    return item_id, version


def _legacy_ids(metadata: Mapping[str, Any], where: str) -> tuple[str, ...]:
    raw = metadata.get("legacyIds")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) and ID_RE.match(x) for x in raw):
        raise UsageError(f'{where}: legacyIds must be a list of ids (lowercase, like "id")')
    return tuple(raw)


def enrich_template(metadata: dict[str, Any], entries: Sequence[SourceEntry], where: str) -> None:
    """Add what the reference CLI's packaging adds to a Template's metadata (in place).

    ``type`` (image, dockerfile or dockerCompose, from the devcontainer.json), ``files`` (every file,
    relative), ``fileCount``, ``featureIds`` (the Features it uses, without tag), and an
    ``optionalPaths`` entry ``dir/*`` that covers a single file named as that file.
    """
    files = sorted(e.path for e in entries if e.type != "dir")
    by_path = {e.path: e for e in entries}
    config_path = next(
        (p for p in (".devcontainer.json", ".devcontainer/devcontainer.json") if p in by_path), None
    )
    if config_path is None or by_path[config_path].type != "file":
        raise UsageError(
            f"{where}: the template has no .devcontainer/devcontainer.json (or .devcontainer.json)",
            hint="a Template is devcontainer-template.json plus the devcontainer.json it applies",
        )
    config = parse_metadata(by_path[config_path].data, config_path)
    build = config.get("build")
    if "image" in config:
        kind = "image"
    elif "dockerFile" in config or (isinstance(build, dict) and "dockerfile" in build):
        kind = "dockerfile"
    elif "dockerComposeFile" in config:
        kind = "dockerCompose"
    else:
        raise UsageError(
            f"{where}: {config_path} has none of image, build.dockerfile, dockerComposeFile",
            hint="the template's devcontainer.json must say how its container is made",
        )
    metadata["type"] = kind
    metadata["files"] = files
    metadata["fileCount"] = len(files)
    features = config.get("features")
    ids = [feature_resource(key) for key in features] if isinstance(features, dict) else []
    metadata["featureIds"] = [r for r in ids if r is not None]
    optional = metadata.get("optionalPaths")
    if isinstance(optional, list):
        for index, entry in enumerate(list(optional)):
            if not isinstance(entry, str) or not entry.endswith("/*") or len(entry) < 3:
                continue
            inside = [p for p in files if p.startswith(entry[:-1])]
            if len(inside) == 1 and by_path[inside[0]].type == "file":
                optional[index] = inside[0]


def feature_resource(reference: str) -> str | None:
    """``ghcr.io/o/f/go:1`` -> ``ghcr.io/o/f/go``; ``None`` for local (``./x``) or legacy (``go``) ids."""
    text = reference.lower()
    if text.startswith("."):
        return None
    if "@" in text:
        text = text[: text.rfind("@")]
    elif text.rfind(":") > text.rfind("/"):
        text, _, tag = text.rpartition(":")
        if not _TAG_RE.match(tag):
            return None
    parts = text.split("/")
    if len(parts) < 3 or not NAMESPACE_RE.match("/".join(parts[1:])):
        return None
    return text


def _pretty(metadata: Mapping[str, Any]) -> bytes:
    # JSON.stringify(value, null, 4), which is what the reference CLI writes back into the archive.
    return json.dumps(metadata, indent=4, ensure_ascii=False).encode()


def compact_json(value: Any) -> str:
    """JSON.stringify(value): no spaces, non-ASCII kept (the manifest's digest depends on it)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- the artifact ---------------------------------------------------------------------------------


def build_layer(entries: Sequence[SourceEntry]) -> bytes:
    """A reproducible tar: ``./`` then each entry as ``./path``, in the given order, no timestamps."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_tar_info(".", tarfile.DIRTYPE, 0o755))
        for entry in entries:
            name = f"./{entry.path}"
            if entry.type == "dir":
                tar.addfile(_tar_info(name, tarfile.DIRTYPE, 0o755))
            elif entry.type == "symlink":
                info = _tar_info(name, tarfile.SYMTYPE, 0o777)
                info.linkname = entry.link
                tar.addfile(info)
            else:
                # Only the executable bit survives: it is all git keeps, so a fresh checkout under
                # another umask must still give the same digest.
                info = _tar_info(name, tarfile.REGTYPE, 0o755 if entry.executable else 0o644)
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
        end = tar.offset
    # tarfile pads the archive to a 10 KiB record; the two zero blocks that end a tar are enough (what
    # node-tar writes), and keep a small Feature's blob at a few KB.
    return buffer.getvalue()[: end + 2 * tarfile.BLOCKSIZE]


def _tar_info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = _FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


@dataclass(frozen=True)
class Artifact:
    """A manifest ready to PUT, with the blobs it needs."""

    manifest: bytes
    blobs: tuple[tuple[str, bytes], ...]  # (digest, data): the config first, then the layer

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def size(self) -> int:
        return len(self.manifest) + sum(len(data) for _, data in self.blobs)


def build_manifest(layer: bytes, layer_media_type: str, title: str, annotations: Mapping[str, str]) -> bytes:
    """An OCI image manifest around one layer, keys in the reference CLI's order, compact JSON."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": EMPTY_CONFIG_DIGEST, "size": len(EMPTY_CONFIG)},
        "layers": [
            {
                "mediaType": layer_media_type,
                "digest": sha256_digest(layer),
                "size": len(layer),
                "annotations": {TITLE_ANNOTATION: title},
            }
        ],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return compact_json(manifest).encode()


def item_artifact(item: Item, registry: str) -> Artifact:
    annotations = {METADATA_ANNOTATION: compact_json(item.metadata)}
    if registry == GITHUB_REGISTRY:
        annotations[GITHUB_PACKAGE_TYPE] = f"devcontainer_{item.kind}"
    manifest = build_manifest(item.layer, LAYER_MEDIA_TYPE, item.title, annotations)
    return Artifact(manifest, ((EMPTY_CONFIG_DIGEST, EMPTY_CONFIG), (item.layer_digest, item.layer)))


def collection_json(collection: Collection) -> bytes:
    """devcontainer-collection.json: who packaged it, and every item's metadata as published."""
    document = {
        "sourceInformation": {"source": COLLECTION_SOURCE},
        human_kind(collection.kind): [item.metadata for item in collection.items],
    }
    return json.dumps(document, indent=4, ensure_ascii=False).encode()


def collection_kind(manifest: Mapping[str, Any], blob_of: Callable[[str], bytes]) -> Kind | None:
    """What a published collection at ``NS:latest`` holds (``feature`` or ``template``), read from its
    devcontainer-collection.json (``blob_of(digest)`` fetches it); None when it is no collection."""
    layers = manifest.get("layers")
    found = [x for x in layers if isinstance(x, dict)] if isinstance(layers, list) else []
    layer = next((x for x in found if x.get("mediaType") == COLLECTION_MEDIA_TYPE), None)
    if layer is None or not isinstance(layer.get("digest"), str):
        return None
    try:
        document = json.loads(blob_of(layer["digest"]))
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    return next((kind for kind in KINDS if isinstance(document.get(human_kind(kind)), list)), None)


def collection_artifact(collection: Collection, registry: str) -> Artifact:
    data = collection_json(collection)
    annotations = {GITHUB_PACKAGE_TYPE: "devcontainer_collection"} if registry == GITHUB_REGISTRY else {}
    manifest = build_manifest(data, COLLECTION_MEDIA_TYPE, COLLECTION_FILE, annotations)
    return Artifact(manifest, ((EMPTY_CONFIG_DIGEST, EMPTY_CONFIG), (sha256_digest(data), data)))


# --- deciding what to do with one item ----------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What publishing one item to one repository means, given the tags there and the digest at its
    version tag: ``push``, ``unchanged``, or a refusal (``lower``/``changed``) that --force overrides."""

    action: Literal["push", "unchanged", "lower", "changed"]
    tags: tuple[str, ...] = ()  # to write, the exact version first
    kept: tuple[str, ...] = ()  # floating tags a higher version keeps
    highest: Version | None = None  # for ``lower``: the published version above this one
    replaces: str | None = None  # the digest a forced publish overwrites at the version tag
    forced: bool = False

    @property
    def refused(self) -> bool:
        return self.action in ("lower", "changed")


def decide(
    version: Version, digest: str, published: Sequence[str], existing: str | None, force: bool
) -> Decision:
    """``existing``: the manifest digest at the version tag, when that tag exists."""
    exact = str(version)
    if existing is not None and existing == digest:
        return Decision("unchanged", tags=(exact,))
    write, kept = semantic_tags(version, published)
    ordered = (exact, *[t for t in write if t != exact])
    if existing is not None:
        if not force:
            return Decision("changed", replaces=existing)
        return Decision("push", ordered, tuple(kept), replaces=existing, forced=True)
    higher = highest_published(version, published)
    if higher is not None:
        if not force:
            return Decision("lower", highest=higher)
        return Decision("push", ordered, tuple(kept), highest=higher, forced=True)
    return Decision("push", ordered, tuple(kept))
