"""The official devcontainer.json schema: where it comes from, and findings against it.

The schema is not shipped in the package (it is the spec's, and it changes): the two files are fetched
from devcontainers/spec at a pinned commit on first use into ``$XDG_CACHE_HOME/devnix/schemas/<commit>/``
and read from there afterwards, offline. ``--schema-dir DIR`` or ``DEVNIX_SCHEMA_DIR`` name a local copy
instead (air-gapped machines, tests).

``devContainer.schema.json`` also refers to two schemas that live in microsoft/vscode (Codespaces and
VS Code customizations). The second refers to ``vscode://schemas/settings/machine``, which exists only
inside VS Code, so both are read as permissive objects unless the schema folder holds a copy.

Validation uses ``jsonschema-rs``: it implements draft 2019-09 (``unevaluatedProperties``, which the
spec's schema relies on) and is ~300x faster than ``jsonschema``; a validator is compiled once per
process and schema folder. Its errors for ``oneOf``/``anyOf``/``unevaluatedProperties`` are drilled
down here to the cause a person can act on (the unknown property, the wrong type in the branch that
matches the document's shape) instead of "is not valid under any of the given schemas".
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devnix.errors import DevnixError, FileSystemError, RegistryError
from devnix.jsonc import JsonPath

if TYPE_CHECKING:
    import jsonschema_rs

SPEC_COMMIT = "c95ffeed1d059abfe9ffbe79762dc2fa4e7c2421"
SPEC_URL = f"https://raw.githubusercontent.com/devcontainers/spec/{SPEC_COMMIT}/schemas/"
BASE_SCHEMA = "devContainer.base.schema.json"
MAIN_SCHEMA = "devContainer.schema.json"
SCHEMA_FILES = (BASE_SCHEMA, MAIN_SCHEMA)
SCHEMA_DIR_ENV = "DEVNIX_SCHEMA_DIR"
_VSCODE_URL = (
    "https://raw.githubusercontent.com/microsoft/vscode/main/extensions/configuration-editing/schemas/"
)
VSCODE_SCHEMAS = ("devContainer.codespaces.schema.json", "devContainer.vscode.schema.json")
_PERMISSIVE: dict[str, Any] = {"type": "object"}
_MAX_SCHEMA = 8 << 20  # the two files are ~100 KB; a server sending more is not the spec's
_HINT = (
    f"pass --schema-dir DIR (or set {SCHEMA_DIR_ENV}) to a folder holding {BASE_SCHEMA} and "
    f"{MAIN_SCHEMA} from devcontainers/spec (schemas/ at commit {SPEC_COMMIT[:12]})"
)


class SchemaUnavailableError(RegistryError):
    """The schema could not be downloaded (no network, a proxy, a moved file)."""


def cache_dir() -> Path:
    """Where downloaded schemas live: ``$XDG_CACHE_HOME/devnix/schemas/<commit>``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "devnix" / "schemas" / SPEC_COMMIT


def _complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in SCHEMA_FILES)


def locate(schema_dir: Path | None = None, *, base_url: str = SPEC_URL, timeout: float = 10.0) -> Path:
    """The folder to read the schema from: --schema-dir, $DEVNIX_SCHEMA_DIR, the cache, or a download."""
    chosen = schema_dir or (Path(os.environ[SCHEMA_DIR_ENV]) if os.environ.get(SCHEMA_DIR_ENV) else None)
    if chosen is not None:
        if not _complete(chosen):
            missing = [name for name in SCHEMA_FILES if not (chosen / name).is_file()]
            raise FileSystemError(f"{chosen} has no {' or '.join(missing)}", hint=_HINT)
        return chosen
    target = cache_dir()
    if not _complete(target):
        download(target, base_url=base_url, timeout=timeout)
    return target


def download(target: Path, *, base_url: str = SPEC_URL, timeout: float = 10.0) -> None:
    """Fetch the pinned schema files into ``target``; each file appears whole or not at all."""
    from devnix import transport  # the one HTTP client: proxies, retries, redirects

    contents: dict[str, bytes] = {}
    with transport.Transport(timeout=timeout) as client:
        for name in SCHEMA_FILES:
            url = base_url + name
            try:
                response = client.request("GET", url, limit=_MAX_SCHEMA)
                transport.raise_for_status(response, "the download")
                json.loads(response.body)
            except transport.TransportError as error:
                raise SchemaUnavailableError(
                    f"cannot download the devcontainer schema ({url}): {error.reason}", hint=_HINT
                ) from None
            except (RegistryError, ValueError, RecursionError) as error:
                reason = error.message if isinstance(error, RegistryError) else "it is not JSON"
                raise SchemaUnavailableError(
                    f"cannot download the devcontainer schema ({url}): {reason}", hint=_HINT
                ) from None
            contents[name] = response.body
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, data in contents.items():
            partial = target / f".{name}.partial"
            partial.write_bytes(data)
            os.replace(partial, target / name)
    except OSError as error:
        raise FileSystemError(
            f"cannot write the schema cache {target}: {error.strerror or error}",
            hint=f"set XDG_CACHE_HOME to a writable folder, or {_HINT}",
        ) from None


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise FileSystemError(f"cannot read schema {path}: {error}", hint=_HINT) from None


@cache
def validator(directory: Path) -> jsonschema_rs.Validator:
    """The compiled validator for the schema in ``directory`` (compiled once per process)."""
    import jsonschema_rs  # heavy-ish native module: only when validating

    resources: list[tuple[str, Any]] = [(SPEC_URL + BASE_SCHEMA, _load(directory / BASE_SCHEMA))]
    for name in VSCODE_SCHEMAS:
        local = directory / name
        resources.append((_VSCODE_URL + name, _load(local) if local.is_file() else _PERMISSIVE))

    def retrieve(uri: str) -> Any:
        # Anything else a local VS Code schema refers to (vscode://schemas/settings/machine) exists
        # only inside VS Code; never go to the network from here.
        return _PERMISSIVE

    try:
        registry = jsonschema_rs.Registry(resources, retriever=retrieve)
        return jsonschema_rs.Draft201909Validator(
            _load(directory / MAIN_SCHEMA),
            registry=registry,
            retriever=retrieve,
            base_uri=SPEC_URL + MAIN_SCHEMA,
            # `format` is an annotation in 2019-09 and the spec's own tools do not check it: values
            # like "${localWorkspaceFolder}/x" must not be flagged as bad URIs.
            validate_formats=False,
        )
    except (ValueError, jsonschema_rs.ReferencingError) as error:
        raise DevnixError(f"the schema in {directory} does not compile: {error}", hint=_HINT) from None


@dataclass(frozen=True)
class SchemaFinding:
    """One reason the document does not match the schema, at ``path`` in the document."""

    path: JsonPath
    message: str


def check(value: Any, directory: Path) -> list[SchemaFinding]:
    """The schema findings for a devcontainer.json value, most specific cause first, deduplicated."""
    causes: list[SchemaFinding] = []
    unknown: list[SchemaFinding] = []
    failed_choices: set[JsonPath] = set()
    try:
        errors = list(validator(directory).iter_errors(value))
    except ValueError as refusal:  # jsonschema-rs refuses values nested deeper than 255 levels
        return [SchemaFinding((), f"cannot be checked: {refusal}")]
    for error in errors:
        if isinstance(error.kind, (_kinds().OneOfNotValid, _kinds().AnyOf)):
            failed_choices.add(_path(error))
        for finding in _explain(error):
            target = unknown if finding.message.startswith("unknown property") else causes
            if finding not in target:
                target.append(finding)
    known = _known_names(directory)
    # A property the schema knows is "unevaluated" only because its own check (or the oneOf branch
    # that defines it) failed: that failure is the finding, not the property's name.
    kept = [
        finding
        for finding in unknown
        if not (
            finding.path[-1] in known
            and (
                finding.path[:-1] in failed_choices
                or any(c.path[: len(finding.path)] == finding.path for c in causes)
            )
        )
    ]
    return causes + kept


def _kinds() -> Any:
    import jsonschema_rs

    return jsonschema_rs.ValidationErrorKind


@cache
def _known_names(directory: Path) -> frozenset[str]:
    """Every property name the base schema defines anywhere."""
    names: set[str] = set()
    stack = [_load(directory / BASE_SCHEMA)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                names.update(node["properties"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(names)


def _path(error: jsonschema_rs.ValidationError) -> JsonPath:
    return tuple(error.instance_path)


def _explain(error: jsonschema_rs.ValidationError) -> list[SchemaFinding]:
    """Drill a validator error down to what a person can act on."""
    kinds = _kinds()
    kind = error.kind
    path = _path(error)
    if isinstance(kind, (kinds.OneOfNotValid, kinds.AnyOf)):
        branches = [branch for branch in kind.context if branch]
        if branches:
            merged = _merge_type_errors(branches, path)
            if merged is not None:
                return [merged]
            best = max(branches, key=lambda branch: _shape_score(branch, path))
            return [finding for sub in best for finding in _explain(sub)]
    if isinstance(kind, kinds.OneOfMultipleValid) and not path:
        # The only top-level oneOf of the spec is "image, Dockerfile or Compose".
        return [SchemaFinding(path, 'use only one of "image", "build" and "dockerComposeFile"')]
    if isinstance(kind, (kinds.UnevaluatedProperties, kinds.AdditionalProperties)):
        return [SchemaFinding((*path, name), _unknown(path, name)) for name in kind.unexpected]
    return [SchemaFinding(path, error.message)]


# Top-level keys of old devcontainer.json files that the spec moved under customizations.
_MOVED = {"extensions": "vscode", "settings": "vscode"}


def _unknown(path: JsonPath, name: str) -> str:
    if not path and name in _MOVED:
        return f"unknown property {name!r} (it moved to customizations.{_MOVED[name]}.{name})"
    return f"unknown property {name!r}"


def _shape_score(branch: list[jsonschema_rs.ValidationError], path: JsonPath) -> tuple[int, int, int]:
    """How well a failed branch fits the document: no type clash where the branch starts, deepest
    errors, fewest errors. The branch meant for this kind of value is the one that got furthest."""
    type_clash = any(isinstance(e.kind, _kinds().Type) and _path(e) == path for e in branch)
    depth = max(len(_path(e)) for e in branch)
    return (0 if type_clash else 1, depth, -len(branch))


def _merge_type_errors(
    branches: list[list[jsonschema_rs.ValidationError]], path: JsonPath
) -> SchemaFinding | None:
    """When every branch only wants another type here, say so once: "expected string or array"."""
    wanted: list[str] = []
    for branch in branches:
        if len(branch) != 1 or _path(branch[0]) != path:
            return None
        kind = branch[0].kind
        if not isinstance(kind, _kinds().Type):
            return None
        wanted += [t for t in kind.types if t not in wanted]
    instance = branches[0][0].instance
    return SchemaFinding(path, f"{json.dumps(instance)[:60]} is not of type {' or '.join(wanted)}")
