"""Edge: questions to the engine (its version and info, local images, containers, volumes, disk usage).

Each is one or a few quick GETs over the socket, answered in milliseconds; none imports the docker SDK.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devnix.engine.api import QUICK_TIMEOUT, _api_get
from devnix.errors import EngineError
from devnix.platforms import Platform, from_engine
from devnix.podman import answers_as_podman

if TYPE_CHECKING:
    from devnix.images import ImageRef


@dataclass(frozen=True)
class EngineVersion:
    os: str
    arch: str
    version: str
    api_version: str
    podman: bool = False  # a ``Podman Engine`` component in /version (devnix.podman.answers_as_podman)

    @property
    def platform(self) -> Platform:
        return from_engine(self.os, self.arch)

    @property
    def cli(self) -> str:
        """The command line tool a hint tells the user to run against this engine."""
        return "podman" if self.podman else "docker"


@dataclass(frozen=True)
class LocalImage:
    """The engine's own copy of an image."""

    platform: Platform
    repo_digests: tuple[str, ...]
    env: tuple[str, ...] = ()  # the image config's Env


def version(*, timeout: float = QUICK_TIMEOUT) -> EngineVersion:
    """The engine's ``/version``: its OS and architecture are the platform containers run natively as."""
    status, answer = _api_get("/version", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise EngineError(f"the Docker engine answered /version with HTTP {status}")
    return EngineVersion(
        os=str(answer.get("Os", "linux")),
        arch=str(answer.get("Arch", "")),
        version=str(answer.get("Version", "")),
        api_version=str(answer.get("ApiVersion", "")),
        podman=answers_as_podman(answer),
    )


def version_answer(*, timeout: float = QUICK_TIMEOUT) -> dict[str, Any]:
    """The engine's whole ``/version`` answer (``Platform.Name`` and ``Components`` tell engines apart)."""
    status, answer = _api_get("/version", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise EngineError(f"the Docker engine answered /version with HTTP {status}")
    return answer


def info(*, timeout: float = QUICK_TIMEOUT) -> dict[str, Any]:
    """The engine's ``/info`` (OS name, kernel, CPUs, memory, storage driver, ...)."""
    status, answer = _api_get("/info", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise EngineError(f"the Docker engine answered /info with HTTP {status}")
    return answer


def local_image(reference: str, *, timeout: float = QUICK_TIMEOUT) -> LocalImage | None:
    """The engine's copy of ``reference`` (platform and repo digests), or ``None`` when it has none."""
    answer = image_details(reference, timeout=timeout)
    if answer is None:
        return None
    variant = answer.get("Variant") or None
    platform = Platform(
        str(answer.get("Os", "linux")),
        from_engine("linux", str(answer.get("Architecture", ""))).architecture,
        variant,
    )
    if platform.architecture == "arm64" and variant == "v8":
        platform = Platform(platform.os, platform.architecture)
    config = answer.get("Config")
    env = config.get("Env") if isinstance(config, dict) else None
    return LocalImage(
        platform,
        tuple(str(d) for d in answer.get("RepoDigests") or ()),
        tuple(str(item) for item in env) if isinstance(env, list) else (),
    )


def local_image_of(ref: ImageRef, *, timeout: float = QUICK_TIMEOUT) -> LocalImage | None:
    """The engine's copy of an image under either spelling (``nixos/nix:latest``, ``docker.io/…``)."""
    return local_image(ref.familiar, timeout=timeout) or local_image(str(ref), timeout=timeout)


def image_details(reference: str, *, timeout: float = QUICK_TIMEOUT) -> dict[str, Any] | None:
    """The engine's whole inspect answer for an image (Id, Architecture, RepoTags ...), or None."""
    return _inspect(f"/images/{quote(reference, safe='/:@')}/json", f"image {reference}", timeout)


def image_ids(*, timeout: float = QUICK_TIMEOUT) -> set[str]:
    """The ids of every image the engine holds (to tell, after a load, whether an image is new)."""
    status, listing = _api_get("/images/json?all=1", timeout=timeout)
    if status != 200 or not isinstance(listing, list):
        raise EngineError(f"the Docker engine answered /images/json with HTTP {status}")
    return {str(entry.get("Id")) for entry in listing if isinstance(entry, dict)}


def images_with_platforms(*, timeout: float = QUICK_TIMEOUT, limit: int = 200) -> list[dict[str, Any]]:
    """Local images, smallest first, each ``/images/json`` entry plus ``Os``/``Architecture`` from inspect.

    ``/images/json`` does not tell an image's platform on API 1.41, so each one is inspected; the cap keeps
    an engine with thousands of images from costing seconds.
    """
    status, listing = _api_get("/images/json", timeout=timeout)
    if status != 200 or not isinstance(listing, list):
        raise EngineError(f"the Docker engine answered /images/json with HTTP {status}")
    entries = sorted((e for e in listing if isinstance(e, dict)), key=lambda e: int(e.get("Size") or 0))
    found: list[dict[str, Any]] = []
    for entry in entries[:limit]:
        status, detail = _api_get(
            f"/images/{quote(str(entry.get('Id', '')), safe=':')}/json", timeout=timeout
        )
        if status != 200 or not isinstance(detail, dict):
            continue
        found.append(
            {
                **entry,
                "Os": str(detail.get("Os", "linux")),
                "Architecture": from_engine("linux", str(detail.get("Architecture", ""))).architecture,
                "Variant": detail.get("Variant"),
            }
        )
    return found


def containers_with_label(label: str, *, timeout: float = QUICK_TIMEOUT) -> list[dict[str, Any]]:
    """Containers (running or not) that carry ``label`` (``key`` or ``key=value``)."""
    filters = quote(json.dumps({"label": [label]}), safe="")
    status, listing = _api_get(f"/containers/json?all=1&filters={filters}", timeout=timeout)
    if status != 200 or not isinstance(listing, list):
        raise EngineError(f"the Docker engine answered /containers/json with HTTP {status}")
    return [entry for entry in listing if isinstance(entry, dict)]


def volume_details(name: str, *, timeout: float = QUICK_TIMEOUT) -> dict[str, Any] | None:
    return _inspect(f"/volumes/{quote(name, safe='')}", f"volume {name}", timeout)


def volumes(prefix: str, *, timeout: float = QUICK_TIMEOUT) -> list[dict[str, Any]]:
    """Volumes whose name starts with ``prefix`` (the engine's ``name`` filter matches substrings)."""
    filters = quote(json.dumps({"name": [prefix]}), safe="")
    status, answer = _api_get(f"/volumes?filters={filters}", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise EngineError(f"the Docker engine answered /volumes with HTTP {status}")
    return [
        v
        for v in answer.get("Volumes") or []
        if isinstance(v, dict) and str(v.get("Name", "")).startswith(prefix)
    ]


def system_df(*, timeout: float = QUICK_TIMEOUT) -> dict[str, Any]:
    """The engine's ``/system/df``: sizes of images, containers, volumes and the build cache."""
    status, answer = _api_get("/system/df", timeout=timeout)
    if status != 200 or not isinstance(answer, dict):
        raise EngineError(f"the Docker engine answered /system/df with HTTP {status}")
    return answer


def _inspect(path: str, what: str, timeout: float) -> dict[str, Any] | None:
    """An object's inspect answer, or None when the engine has no such object (HTTP 404)."""
    status, answer = _api_get(path, timeout=timeout)
    if status == 404 or not isinstance(answer, dict):
        return None
    if status != 200:
        raise EngineError(f"the Docker engine answered HTTP {status} about {what}")
    return answer
