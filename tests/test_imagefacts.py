"""devnix.imagefacts: one chain for an image's platforms (registry, engine's copy, catalog), as init and
doctor both use it. The registry is a real HTTP server on loopback; the engine is one that is not there
(``DOCKER_HOST`` names a socket that does not exist), so nothing here needs Docker."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from devnix import engine, imagefacts, registry
from devnix.commands import doctor as doctor_command
from devnix.doctor import Devcontainer
from devnix.errors import RegistryError
from devnix.images import OCI_INDEX, OCI_MANIFEST, Filesystem, catalog, parse_ref
from devnix.plan import Source
from devnix.platforms import Platform

AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64")
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
STORE_ONLY_PATH = "PATH=/root/.nix-profile/bin:/nix/var/nix/profiles/default/bin"


def _blob(value: Any) -> tuple[str, bytes]:
    data = json.dumps(value).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


class _Registry(BaseHTTPRequestHandler):
    """``team/nix:multi``: an OCI index over an amd64 and an arm64 image whose config PATH is Nix's."""

    blobs: ClassVar[dict[str, tuple[str, bytes]]] = {}  # by digest, and the tag's index as "index"

    def do_GET(self) -> None:
        if self.path == "/v2/":
            self._answer("application/json", b"{}")
            return
        name = self.path.rsplit("/", 1)[-1]
        key = "index" if name == "multi" else name
        if key not in self.blobs:
            self.send_response(404)
            self.end_headers()
            return
        media_type, body = self.blobs[key]
        self._answer(media_type, body)

    def _answer(self, media_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def multi_registry() -> Iterator[str]:
    blobs: dict[str, tuple[str, bytes]] = {}
    entries = []
    for platform in (AMD64, ARM64):
        config_digest, config = _blob(
            {"os": "linux", "architecture": platform.architecture, "config": {"Env": [STORE_ONLY_PATH]}}
        )
        blobs[config_digest] = ("application/octet-stream", config)
        config_entry = {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)}
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_entry, "layers": []}
        digest, body = _blob(manifest)
        blobs[digest] = (OCI_MANIFEST, body)
        where = {"os": platform.os, "architecture": platform.architecture}
        entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "platform": where})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    blobs["index"] = (OCI_INDEX, json.dumps(index).encode())
    handler = type("Handler", (_Registry,), {"blobs": blobs})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")


def test_the_registry_answers_platforms_digest_and_layout(multi_registry: str) -> None:
    ref = parse_ref(f"{multi_registry}/team/nix:multi")
    found = imagefacts.learn(ref, timeout=5, config_for=ARM64)
    assert found.known is not None and found.known.source is Source.REGISTRY
    assert found.known.platforms == (AMD64, ARM64)
    assert found.known.digest is not None and found.known.digest.startswith("sha256:")
    assert (found.filesystem, found.filesystem_source) == (Filesystem.STORE_ONLY, Source.REGISTRY)
    assert (found.local, found.registry_error) == (None, None)  # no engine: no copy to speak of


def test_without_a_registry_or_an_engine_nothing_is_known(tmp_path: Path) -> None:
    found = imagefacts.learn(parse_ref("127.0.0.1:9/team/nix:1"), timeout=2)
    assert found.known is None and found.local is None
    assert found.registry_error and "127.0.0.1:9" in found.registry_error


def offline(monkeypatch: pytest.MonkeyPatch) -> list[Platform | None]:
    """Docker Hub out of reach (this machine has no internet): the catalog has to answer."""
    asked: list[Platform | None] = []

    def refuse(ref: Any, *, timeout: float, config_for: Platform | None = None) -> None:
        asked.append(config_for)
        raise RegistryError("registry-1.docker.io cannot be reached (offline by design)")

    monkeypatch.setattr(registry, "image_platforms", refuse)
    return asked


def test_the_catalog_answers_when_nothing_else_can(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = offline(monkeypatch)
    nixos = catalog()[0]
    found = imagefacts.learn(nixos.ref, timeout=1, config_for=AMD64)
    assert found.known is not None and found.known.source is Source.CATALOG
    assert (found.known.platforms, found.catalog_name) == (nixos.platforms, nixos.name)
    assert (found.filesystem, found.filesystem_source) == (nixos.filesystem, Source.CATALOG)
    assert found.registry_error == "registry-1.docker.io cannot be reached (offline by design)"
    # The catalog knows the layout: no image config is read (two requests fewer on init's path).
    assert asked == [None]


def test_init_and_doctor_agree_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from devnix.cli import app

    offline(monkeypatch)
    nixos = catalog()[0]
    result = CliRunner().invoke(
        app, ["init", str(tmp_path), "--image", nixos.ref.familiar, "--dry-run", "--json"]
    )
    assert result.exit_code == 0, result.output
    init = json.loads(result.stdout)
    dev = doctor_command._image_platforms(Devcontainer("p", image=nixos.ref.familiar), 1.0, AMD64)
    assert (init["source"], init["image_platforms"]) == (
        "catalog",
        [str(p) for p in dev.image_platforms or ()],
    )
    assert dev.platforms_detail.startswith("from devnix's catalog; the registry: registry-1.docker.io")
    assert (init["filesystem"], dev.filesystem, dev.filesystem_detail) == (
        "store-only",
        Filesystem.STORE_ONLY,
        "devnix's catalog",
    )


def test_the_local_copy_digest_is_found_under_a_registry_with_a_port() -> None:
    ref = parse_ref("localhost:5000/team/nix:multi")
    digest = "sha256:" + "ab" * 32
    local = engine.LocalImage(ARM64, ("other/x@sha256:" + "cd" * 32, f"localhost:5000/team/nix@{digest}"))
    assert imagefacts._local_digest(ref, local) == digest
    hub = engine.LocalImage(ARM64, (f"nixos/nix@{digest}",))
    assert imagefacts._local_digest(parse_ref("docker.io/nixos/nix:2.24"), hub) == digest
    assert imagefacts._local_digest(ref, hub) is None
