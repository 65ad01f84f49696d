"""``devnix publish features|templates SRC``: a devcontainer collection pushed to an OCI registry.

Each Feature/Template becomes one artifact at ``REGISTRY/NS/<id>`` tagged ``1.2.3`` (and ``1``, ``1.2``,
``latest`` while it is the highest of their range), and the collection metadata goes to ``NS:latest``,
as the devcontainer distribution spec and the reference CLI have it (the format is decided in
:mod:`devnix.publish`). Unlike the reference CLI, which skips a version that exists whatever it holds:

- every item is checked before anything is written, so a refusal never leaves a collection half
  published;
- a version already published with the same digest is left alone (no request writes anything);
- a version already published with other content, or a version below the highest published one, is
  refused unless ``--force``.

Credentials come from the Docker config or its credential helpers, through :mod:`devnix.registry`;
nothing here prints them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnix import publish as core
from devnix import registry, transport
from devnix.errors import RegistryError, UsageError, WouldOverwriteError
from devnix.registry import DEFAULT_TIMEOUT

_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class PublishOptions:
    kind: str  # features | templates (the singular is accepted too)
    source: Path
    registry: str
    namespace: str
    force: bool = False
    insecure: bool = False
    dry_run: bool = False
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class ItemResult:
    id: str
    version: str
    repository: str
    digest: str
    size: int
    action: str  # pushed, unchanged, would push
    decision: core.Decision
    blobs_uploaded: int = 0

    def to_json(self, registry_host: str) -> dict[str, Any]:
        decision = self.decision
        return {
            "id": self.id,
            "version": self.version or None,
            "ref": f"{registry_host}/{self.repository}",
            "digest": self.digest,
            "size": self.size,
            "action": self.action,
            "tags": list(decision.tags),
            "kept_tags": list(decision.kept),
            "forced": decision.forced,
            "replaced": decision.replaces,
            "blobs_uploaded": self.blobs_uploaded,
        }


@dataclass(frozen=True)
class PublishResult:
    kind: core.Kind
    registry: str
    namespace: str
    items: tuple[ItemResult, ...]
    collection: ItemResult
    skipped: tuple[str, ...]
    dry_run: bool
    requests: int

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "registry": self.registry,
            "namespace": self.namespace,
            "dry_run": self.dry_run,
            core.human_kind(self.kind): [item.to_json(self.registry) for item in self.items],
            "collection": self.collection.to_json(self.registry),
            "skipped_folders": list(self.skipped),
            "requests": self.requests,
        }


def parse_kind(text: str) -> core.Kind:
    value = text.strip().lower().removesuffix("s")
    for kind in core.KINDS:
        if value == kind:
            return kind
    raise UsageError(
        f"unknown kind {text!r}", hint="devnix publish features SRC, or devnix publish templates SRC"
    )


def check_target(registry_host: str, namespace: str) -> None:
    if "://" in registry_host or not _HOST_RE.match(registry_host):
        raise UsageError(
            f"malformed registry {registry_host!r}",
            hint="give a host[:port] without scheme or path, e.g. ghcr.io or localhost:5000",
        )
    if not core.NAMESPACE_RE.match(namespace):
        raise UsageError(
            f"malformed namespace {namespace!r}",
            hint="lowercase path components separated by /, e.g. owner/repo",
        )


@contextmanager
def _client(options: PublishOptions) -> Iterator[registry.Client]:
    # --insecure means plain HTTP, as in `devnix manifest`; loopback registries are plain HTTP anyway.
    client = registry.Client(
        options.registry,
        insecure=options.insecure,
        plain_http=True if options.insecure else None,
        timeout=options.timeout,
    )
    try:
        yield client
    except RegistryError as error:
        if isinstance(error, transport.TransportError):
            plain = options.insecure or client.plain_http
            raise RegistryError(
                error.message,
                hint="check that the registry runs at that address"
                + ("" if plain else "; use --insecure for a plain-HTTP registry off loopback"),
            ) from None
        if isinstance(error, registry.AuthError):
            raise RegistryError(
                error.message,
                hint=f"run `docker login {options.registry}` with an account that can push there",
            ) from None
        raise
    finally:
        client.close()


@dataclass(frozen=True)
class _Plan:
    repository: str
    artifact: core.Artifact
    decision: core.Decision
    id: str
    version: str


def run(options: PublishOptions) -> PublishResult:
    kind = parse_kind(options.kind)
    check_target(options.registry, options.namespace)
    collection = core.scan_collection(options.source, kind)
    with _client(options) as client:
        plans: list[_Plan] = []
        for item in collection.items:
            artifact = core.item_artifact(item, options.registry)
            # Legacy ids get the same artifact, so that old references keep resolving (as the
            # reference CLI does); they are decided like the item itself.
            for name in (item.id, *item.legacy_ids):
                repository = f"{options.namespace}/{name}"
                plans.append(_plan(client, repository, item, artifact, options.force))
        collection_artifact = core.collection_artifact(collection, options.registry)
        existing = registry.find_manifest(client, options.namespace, "latest")
        same = existing is not None and existing.digest == collection_artifact.digest
        if existing is not None and not same and not options.force:
            _refuse_the_other_kind(client, options, kind, existing)
        refused = [plan for plan in plans if plan.decision.refused]
        if refused:
            raise WouldOverwriteError(
                "; ".join(_refusal(plan, options.registry) for plan in refused),
                hint="bump the version in the metadata, or pass --force to publish anyway",
            )
        collection_decision = core.Decision(
            "unchanged" if same else "push",
            tags=("latest",),
            replaces=None if same or existing is None else existing.digest,
        )
        collection_plan = _Plan(
            options.namespace, collection_artifact, collection_decision, core.COLLECTION_FILE, ""
        )

        results = [_carry_out(client, plan, options.dry_run) for plan in plans]
        collection_result = _carry_out(client, collection_plan, options.dry_run)
        return PublishResult(
            kind=kind,
            registry=options.registry,
            namespace=options.namespace,
            items=tuple(results),
            collection=collection_result,
            skipped=collection.skipped,
            dry_run=options.dry_run,
            requests=client.requests,
        )


def _refuse_the_other_kind(
    client: registry.Client, options: PublishOptions, kind: core.Kind, existing: registry.Manifest
) -> None:
    """Features and Templates in one namespace replace each other's collection at ``NS:latest`` (and
    share a repository when an id is in both): the reference CLI lets that happen silently."""
    there = core.collection_kind(existing.json, lambda digest: client.get_blob(options.namespace, digest))
    if there is not None and there != kind:
        where = f"{options.registry}/{options.namespace}:latest"
        raise WouldOverwriteError(
            f"{where} is a {core.human_kind(there)} collection; publishing {core.human_kind(kind)} there "
            "would replace it",
            hint=f"publish each kind in its own namespace (e.g. --namespace {options.namespace}/"
            f"{core.human_kind(kind)}), or pass --force",
        )


def _plan(
    client: registry.Client, repository: str, item: core.Item, artifact: core.Artifact, force: bool
) -> _Plan:
    tags = registry.list_tags(client, repository)
    exact = str(item.version)
    existing = None
    if exact in tags:
        found = registry.find_manifest(client, repository, exact)
        existing = found.digest if found is not None else None
    decision = core.decide(item.version, artifact.digest, tags, existing, force)
    return _Plan(repository, artifact, decision, item.id, exact)


def _refusal(plan: _Plan, registry_host: str) -> str:
    where = f"{registry_host}/{plan.repository}"
    if plan.decision.action == "changed":
        return f"{where}:{plan.version} already holds other content ({plan.decision.replaces})"
    return f"{plan.id} {plan.version} is lower than the published {plan.decision.highest} at {where}"


def _carry_out(client: registry.Client, plan: _Plan, dry_run: bool) -> ItemResult:
    artifact = plan.artifact
    uploaded = 0
    action = "unchanged"
    if plan.decision.action == "push":
        action = "would push" if dry_run else "pushed"
        if not dry_run:
            # Blobs before the manifest: a registry refuses a manifest whose blobs it lacks. The exact
            # version tag goes first, so a failure half-way never leaves ``1`` ahead of ``1.2.3``.
            for digest, data in artifact.blobs:
                uploaded += registry.push_blob(client, plan.repository, digest, data)
            for tag in plan.decision.tags:
                written = client.put_manifest(plan.repository, tag, artifact.manifest, core.OCI_MANIFEST)
                if written != artifact.digest:
                    raise RegistryError(
                        f"registry {client.registry} stored {plan.repository}:{tag} as {written}, "
                        f"not as the {artifact.digest} devnix sent"
                    )
    return ItemResult(
        plan.id,
        plan.version,
        plan.repository,
        artifact.digest,
        artifact.size,
        action,
        plan.decision,
        uploaded,
    )
