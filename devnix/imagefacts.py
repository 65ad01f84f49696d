"""Edge: what can be learned about an image without running it, each fact with its source.

One chain for ``devnix init`` and ``devnix doctor``, so that they agree offline: the platforms come from
the image's registry (the tag's index or manifest), else from the engine's local copy, else from
devnix's catalog; the layout (FHS or store-only) from the catalog, else from the image config's ``PATH``
(:func:`devnix.images.filesystem_of`). The engine's copy under the tag is asked at the same time as the
registry: it is the first fallback and what the stale-copy rule (:func:`devnix.plan.stale_copy`) reads,
so it costs no time of its own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from devnix import engine, images, registry
from devnix.errors import DevnixError
from devnix.images import Filesystem, ImageRef
from devnix.plan import Known, Source
from devnix.platforms import Platform


@dataclass(frozen=True)
class ImageFacts:
    """An image's platforms and layout, where each came from, and the engine's copy under its tag."""

    ref: ImageRef
    known: Known | None  # None: neither the registry, nor the engine, nor the catalog could tell
    filesystem: Filesystem = Filesystem.UNKNOWN
    filesystem_source: Source = Source.ASSUMED
    local: engine.LocalImage | None = None
    registry_error: str | None = None  # why the registry did not tell (None: it did)
    catalog_name: str | None = None  # the catalog entry's name, when the catalog told the platforms


def learn(
    ref: ImageRef,
    *,
    timeout: float,
    config_for: Platform | None = None,
    local_timeout: float = engine.QUICK_TIMEOUT,
) -> ImageFacts:
    """Ask the registry and the engine at once; fall back from one to the next.

    ``config_for`` also reads that platform's image config (its ``Env`` tells a store-only image), two
    more requests that are skipped when devnix's catalog already knows the layout.
    """
    entry = images.lookup(ref)
    if entry is not None and entry.filesystem is not Filesystem.UNKNOWN:
        config_for = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        local_future = pool.submit(_local_image, ref, local_timeout)
        try:
            remote = registry.image_platforms(ref, timeout=timeout, config_for=config_for)
            registry_error = None
        except DevnixError as error:
            remote, registry_error = None, error.message
        local = local_future.result()
    if remote is not None:
        known = Known(remote.platforms, Source.REGISTRY, remote.digest)
        return _with_layout(ImageFacts(ref, known, local=local), remote.env, Source.REGISTRY)
    if local is not None:
        known = Known((local.platform,), Source.LOCAL, _local_digest(ref, local))
        found = ImageFacts(ref, known, local=local, registry_error=registry_error)
        return _with_layout(found, local.env, Source.LOCAL)
    if entry is not None:
        found = ImageFacts(
            ref,
            Known(entry.platforms, Source.CATALOG),
            registry_error=registry_error,
            catalog_name=entry.name,
        )
        return _with_layout(found, None, Source.CATALOG)
    return ImageFacts(ref, None, registry_error=registry_error)


def _with_layout(found: ImageFacts, env: tuple[str, ...] | None, source: Source) -> ImageFacts:
    layout, from_catalog = images.filesystem_of(found.ref, env)
    if layout is Filesystem.UNKNOWN:
        return found
    return replace(found, filesystem=layout, filesystem_source=Source.CATALOG if from_catalog else source)


def _local_image(ref: ImageRef, timeout: float) -> engine.LocalImage | None:
    try:
        return engine.local_image_of(ref, timeout=timeout)
    except DevnixError:  # no engine, or one that does not answer: no local copy to speak of
        return None


def _local_digest(ref: ImageRef, local: engine.LocalImage) -> str | None:
    """The digest the engine recorded when it pulled this repository (``repo@sha256:…``)."""
    prefixes = {f"{ImageRef(ref.registry, ref.repository).familiar}@", f"{ref.registry}/{ref.repository}@"}
    for pinned in local.repo_digests:
        name, at, digest = pinned.partition("@")
        if at and f"{name}@" in prefixes:
            return digest
    return None
