"""``devnix manifest create`` and ``inspect`` against a real docker-registry and the real engine.

Most tests push tiny single-layer images through the registry API (a config blob, one gzipped layer
holding ``/arch``, a Docker v2 manifest): a push takes milliseconds, and the engine pulls and inspects
them like any image. One test joins the real Nix stand-ins (``nix_images``), ~240 MB each, which is
where "no blob downloaded" and the time budget mean something.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import socket
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from standins import (
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    NixImages,
    Registry,
    iter_platforms,
)
from typer.testing import CliRunner

from devnix import registry as registry_module
from devnix import transport
from devnix.cli import app
from devnix.commands import manifest as manifest_command

RegistryFactory = Callable[..., Registry]


# ------------------------------------------------------------------------------------------------
# Tiny images pushed through the API


@dataclass(frozen=True)
class TinyImage:
    ref: str
    repository: str
    digest: str
    media_type: str
    blobs: tuple[str, ...]  # config and layer digests
    arch: str


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(arch: str, salt: str) -> tuple[bytes, bytes]:
    """A gzipped tar with /arch and its uncompressed form (whose digest is the config's diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = f"{arch} {salt}\n".encode()
        info = tarfile.TarInfo("arch")
        info.size = len(data)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), tar_bytes


def _put_blob(reg: Registry, repository: str, data: bytes) -> str:
    digest = _digest(data)
    started = reg.request("POST", f"/v2/{repository}/blobs/uploads/", data=b"")
    assert started.status == 202, started.body
    location = urlsplit(started.headers["Location"])
    path = location.path + (f"?{location.query}" if location.query else "")
    separator = "&" if "?" in path else "?"
    done = reg.request(
        "PUT",
        f"{path}{separator}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status == 201, done.body
    return digest


def push_tiny(
    reg: Registry, repository: str, tag: str, arch: str, *, oci: bool = False, salt: str = ""
) -> TinyImage:
    """Push a runnable-looking single-layer linux/<arch> image; no engine involved."""
    gz, tar_bytes = _layer(arch, salt or f"{repository}:{tag}")
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/arch"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(tar_bytes)]},
        }
    ).encode()
    config_digest = _put_blob(reg, repository, config)
    layer_digest = _put_blob(reg, repository, gz)
    media_type = MEDIA_OCI_MANIFEST if oci else MEDIA_DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json"
            if oci
            else "application/vnd.docker.container.image.v1+json",
            "digest": config_digest,
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"
                if oci
                else "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": layer_digest,
                "size": len(gz),
            }
        ],
    }
    body = json.dumps(manifest).encode()
    digest = reg.put_manifest(repository, tag, body, media_type)
    return TinyImage(
        f"{reg.host}/{repository}:{tag}", repository, digest, media_type, (config_digest, layer_digest), arch
    )


# ------------------------------------------------------------------------------------------------
# Running the CLI and counting requests


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    calls: list[tuple[str, str]]  # (method, path) of every HTTP request devnix made

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.stdout)
        return value

    @property
    def blob_gets(self) -> list[str]:
        return [path for method, path in self.calls if method == "GET" and "/blobs/sha256:" in path]


@pytest.fixture
def devnix(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """Run ``devnix`` in-process and record each request the registry client sends."""
    calls: list[tuple[str, str]] = []
    exchange = transport.Transport._exchange

    def recording(self: transport.Transport, method: str, url: str, *args: Any) -> Any:
        calls.append((method, transport.url_target(url)))  # every exchange: retries and hops too
        return exchange(self, method, url, *args)

    monkeypatch.setattr(transport.Transport, "_exchange", recording)

    def run(*args: str) -> Run:
        calls.clear()
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr, list(calls))

    return run


def manifest_of(reg: Registry, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
    response = reg.get_manifest(repository, reference)
    assert response.status == 200, response.body
    value: dict[str, Any] = response.json()
    return response.headers["Content-Type"], value


def blob_links(reg: Registry, repository: str) -> set[str]:
    """The blobs a repository may serve: docker-registry's filesystem layout keeps one link each."""
    folder = reg.root / "docker/registry/v2/repositories" / repository / "_layers/sha256"
    return {f"sha256:{p.name}" for p in folder.iterdir()} if folder.is_dir() else set()


@pytest.fixture
def pulled(docker_client: Any) -> Iterator[Callable[[str, str], dict[str, Any]]]:
    """Pull a ref for one platform through the engine; every tag pulled is removed afterwards.

    Tags, not image ids: a pulled image may share its id with a cached stand-in that must stay.
    """
    refs: list[str] = []

    def pull(ref: str, platform: str) -> dict[str, Any]:
        repository, _, tag = ref.rpartition(":")
        image = docker_client.images.pull(repository, tag=tag, platform=platform)
        refs.append(ref)
        attrs: dict[str, Any] = image.attrs
        return attrs

    yield pull
    for ref in dict.fromkeys(refs):
        with contextlib.suppress(Exception):  # already untagged by a later pull of the same name
            docker_client.images.remove(ref)


# ------------------------------------------------------------------------------------------------
# create


def test_create_pushes_a_docker_list_each_platform_pulls_its_own(
    registry: Registry, devnix: Callable[..., Run], pulled: Callable[[str, str], dict[str, Any]]
) -> None:
    amd = push_tiny(registry, "mc/same", "amd64", "amd64")
    arm = push_tiny(registry, "mc/same", "arm64", "arm64")
    target = f"{registry.host}/mc/same:multi"

    run = devnix("manifest", "create", target, amd.ref, arm.ref, "--push", "--json")

    assert run.exit_code == 0, run.stderr
    media_type, index = manifest_of(registry, "mc/same", "multi")
    assert media_type == MEDIA_DOCKER_LIST  # all sources are Docker v2 manifests
    assert sorted(iter_platforms(index)) == ["linux/amd64", "linux/arm64"]
    assert {e["digest"] for e in index["manifests"]} == {amd.digest, arm.digest}
    assert run.json()["digest"] == _digest(registry.get_manifest("mc/same", "multi").body)
    # Same repository: 2 manifests + 2 configs read, 1 index written; no layer read, no blob moved.
    assert run.calls == [
        ("GET", "/v2/mc/same/manifests/amd64"),
        ("GET", f"/v2/mc/same/blobs/{amd.blobs[0]}"),
        ("GET", "/v2/mc/same/manifests/arm64"),
        ("GET", f"/v2/mc/same/blobs/{arm.blobs[0]}"),
        ("PUT", "/v2/mc/same/manifests/multi"),
    ]
    assert run.json()["requests"] == 5

    assert pulled(target, "linux/arm64")["Architecture"] == "arm64"
    assert pulled(target, "linux/amd64")["Architecture"] == "amd64"


def test_create_without_push_writes_nothing_and_prints_the_index(
    registry: Registry, devnix: Callable[..., Run]
) -> None:
    amd = push_tiny(registry, "mc/dry", "amd64", "amd64")
    arm = push_tiny(registry, "mc/dry", "arm64", "arm64", oci=True)

    run = devnix("manifest", "create", f"{registry.host}/mc/dry:multi", amd.ref, arm.ref)

    assert run.exit_code == 0, run.stderr
    assert "would push" in run.stdout
    assert MEDIA_OCI_INDEX in run.stdout  # one OCI child makes it an OCI index
    assert all(method == "GET" for method, _ in run.calls)
    assert registry.get_manifest("mc/dry", "multi").status == 404


def test_dry_run_across_repositories_lists_the_moves_and_makes_none(
    registry: Registry, devnix: Callable[..., Run]
) -> None:
    amd = push_tiny(registry, "mc/dry-src", "amd64", "amd64")
    arm = push_tiny(registry, "mc/dry-src", "arm64", "arm64")

    run = devnix("manifest", "create", f"{registry.host}/mc/dry-dst:v1", amd.ref, arm.ref, "--json")

    assert run.exit_code == 0, run.stderr
    assert run.json()["blobs"] == {"planned": 4}
    assert run.json()["manifests_copied"] == 2
    assert all(method == "GET" for method, _ in run.calls)
    assert blob_links(registry, "mc/dry-dst") == set()


def test_create_across_repositories_mounts_blobs_and_downloads_none(
    registry: Registry, devnix: Callable[..., Run], pulled: Callable[[str, str], dict[str, Any]]
) -> None:
    amd = push_tiny(registry, "mc/src-amd", "v1", "amd64")
    arm = push_tiny(registry, "mc/src-arm", "v1", "arm64")
    target = f"{registry.host}/mc/joined:v1"

    run = devnix("manifest", "create", target, amd.ref, arm.ref, "--push", "--json")

    assert run.exit_code == 0, run.stderr
    result = run.json()
    assert result["blobs"] == {"mounted": 4}
    assert result["manifests_copied"] == 2
    assert result["bytes_copied"] == 0
    # Only the two config blobs were read; the layers were mounted, not downloaded.
    assert sorted(run.blob_gets) == sorted(
        [f"/v2/mc/src-amd/blobs/{amd.blobs[0]}", f"/v2/mc/src-arm/blobs/{arm.blobs[0]}"]
    )
    mounts = [path for method, path in run.calls if method == "POST"]
    assert len(mounts) == 4 and all("mount=" in path for path in mounts)
    assert set(amd.blobs + arm.blobs) <= blob_links(registry, "mc/joined")
    _, index = manifest_of(registry, "mc/joined", "v1")
    for entry in index["manifests"]:
        assert registry.get_manifest("mc/joined", entry["digest"]).status == 200

    assert pulled(target, "linux/arm64")["Architecture"] == "arm64"
    assert pulled(target, "linux/amd64")["Architecture"] == "amd64"


def test_create_between_registries_streams_the_blobs(
    registry: Registry, registry_factory: RegistryFactory, devnix: Callable[..., Run]
) -> None:
    other = registry_factory(auth=False)
    amd = push_tiny(registry, "mc/far", "amd64", "amd64")
    arm = push_tiny(registry, "mc/far", "arm64", "arm64")

    run = devnix("manifest", "create", f"{other.host}/mc/near:v1", amd.ref, arm.ref, "--push", "--json")

    assert run.exit_code == 0, run.stderr
    result = run.json()
    assert result["blobs"] == {"copied": 4}
    assert result["bytes_copied"] > 0
    assert set(amd.blobs + arm.blobs) <= blob_links(other, "mc/near")
    _, index = manifest_of(other, "mc/near", "v1")
    assert sorted(iter_platforms(index)) == ["linux/amd64", "linux/arm64"]


def test_create_takes_the_entries_of_an_index_source(registry: Registry, devnix: Callable[..., Run]) -> None:
    amd = push_tiny(registry, "mc/idx", "amd64", "amd64")
    arm = push_tiny(registry, "mc/idx", "arm64", "arm64")
    first = devnix("manifest", "create", f"{registry.host}/mc/idx:both", amd.ref, arm.ref, "--push")
    assert first.exit_code == 0, first.stderr

    # Copy the index to another repository: its children and their blobs must follow it there.
    run = devnix(
        "manifest", "create", f"{registry.host}/mc/idx-copy:both", f"{registry.host}/mc/idx:both", "--push"
    )

    assert run.exit_code == 0, run.stderr
    _, index = manifest_of(registry, "mc/idx-copy", "both")
    assert {e["digest"] for e in index["manifests"]} == {amd.digest, arm.digest}
    assert run.blob_gets == []  # platforms come from the index: not even a config is read


def test_amend_replaces_the_same_platform_and_keeps_the_others(
    registry: Registry, devnix: Callable[..., Run]
) -> None:
    amd = push_tiny(registry, "mc/amend", "amd64", "amd64")
    arm = push_tiny(registry, "mc/amend", "arm64", "arm64")
    target = f"{registry.host}/mc/amend:multi"
    assert devnix("manifest", "create", target, amd.ref, arm.ref, "--push").exit_code == 0
    arm2 = push_tiny(registry, "mc/amend", "arm64-new", "arm64", salt="rebuilt")

    run = devnix("manifest", "create", target, arm2.ref, "--push", "--amend", "--json")

    assert run.exit_code == 0, run.stderr
    assert run.json()["replaced"] == ["linux/arm64"]
    assert run.json()["kept"] == ["linux/amd64"]
    _, index = manifest_of(registry, "mc/amend", "multi")
    assert [(e["platform"]["architecture"], e["digest"]) for e in index["manifests"]] == [
        ("amd64", amd.digest),
        ("arm64", arm2.digest),
    ]


def test_amend_turns_a_single_image_tag_into_an_index(registry: Registry, devnix: Callable[..., Run]) -> None:
    amd = push_tiny(registry, "mc/grow", "latest", "amd64")
    arm = push_tiny(registry, "mc/grow", "arm64", "arm64")

    run = devnix("manifest", "create", f"{registry.host}/mc/grow:latest", arm.ref, "--push", "--amend")

    assert run.exit_code == 0, run.stderr
    _, index = manifest_of(registry, "mc/grow", "latest")
    assert {e["digest"] for e in index["manifests"]} == {amd.digest, arm.digest}


def test_duplicate_platforms_are_refused_before_anything_is_written(
    registry: Registry, devnix: Callable[..., Run]
) -> None:
    one = push_tiny(registry, "mc/dup", "a", "amd64")
    two = push_tiny(registry, "mc/dup", "b", "amd64")

    run = devnix("manifest", "create", f"{registry.host}/mc/dup:multi", one.ref, two.ref, "--push")

    assert run.exit_code == 2
    assert "both give linux/amd64" in run.stderr
    assert "Traceback" not in run.stderr
    assert all(method == "GET" for method, _ in run.calls)


def test_missing_tag_is_one_clear_line(registry: Registry, devnix: Callable[..., Run]) -> None:
    amd = push_tiny(registry, "mc/missing", "amd64", "amd64")

    run = devnix(
        "manifest", "create", f"{registry.host}/mc/missing:multi", amd.ref, f"{registry.host}/mc/missing:nope"
    )

    assert run.exit_code == 4
    assert run.stderr.splitlines()[0] == f"devnix: error: {registry.host}/mc/missing:nope not found"


def test_unreachable_registry_is_one_clear_line(devnix: Callable[..., Run]) -> None:
    with socket.socket() as sock:  # a port nothing listens on: bound, never listened to
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        run = devnix("manifest", "create", f"localhost:{port}/a:multi", f"localhost:{port}/a:amd64")

    assert run.exit_code == 4
    first = run.stderr.splitlines()[0]
    assert first.startswith(f"devnix: error: cannot reach registry localhost:{port}")
    assert run.stderr.splitlines()[1].startswith("hint: check that the registry runs at that address")
    assert "Traceback" not in run.stderr


def _docker_login(username: str, password: str, host: str) -> None:
    """What ``docker login`` writes, in this test's private DOCKER_CONFIG (tests/conftest.py)."""
    import os

    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    path = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))


def test_basic_auth_registry_works_and_the_password_never_shows(
    registry_factory: RegistryFactory, devnix: Callable[..., Run]
) -> None:
    reg = registry_factory(auth=True)
    assert reg.password is not None
    amd = push_tiny(reg, "mc/auth", "amd64", "amd64")
    arm = push_tiny(reg, "mc/auth", "arm64", "arm64")
    _docker_login("devnix", reg.password, reg.host)

    run = devnix("manifest", "create", f"{reg.host}/mc/auth-joined:v1", amd.ref, arm.ref, "--push", "--json")
    shown = devnix("manifest", "inspect", f"{reg.host}/mc/auth-joined:v1")

    assert run.exit_code == 0, run.stderr
    assert run.json()["blobs"] == {"mounted": 4}
    assert shown.exit_code == 0, shown.stderr
    for output in (run.stdout, run.stderr, shown.stdout, shown.stderr):
        assert reg.password not in output
        assert base64.b64encode(f"devnix:{reg.password}".encode()).decode() not in output


def test_wrong_password_is_one_clear_line_without_the_password(
    registry_factory: RegistryFactory, devnix: Callable[..., Run]
) -> None:
    reg = registry_factory(auth=True)
    amd = push_tiny(reg, "mc/auth", "amd64", "amd64")
    _docker_login("devnix", "not-the-password", reg.host)

    run = devnix("manifest", "create", f"{reg.host}/mc/auth:multi", amd.ref, "--push")

    assert run.exit_code == 4
    lines = run.stderr.splitlines()
    assert lines[0].startswith(f"devnix: error: registry {reg.host} refused the credentials")
    assert lines[1].startswith("hint: run `docker login")
    assert "not-the-password" not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr


# ------------------------------------------------------------------------------------------------
# the registry client's blob moves, one by one


def test_a_refused_mount_falls_back_to_a_streamed_copy(registry: Registry) -> None:
    image = push_tiny(registry, "mc/mount-src", "v1", "amd64")
    client = registry_module.Client(registry.host)
    try:
        layer = image.blobs[1]
        size = len(registry.get_blob("mc/mount-src", layer))
        # Naming a repository that lacks the blob makes the registry refuse the mount (HTTP 202,
        # an upload session): the copy must then go through that session.
        upload = client.mount_blob("mc/mount-dst", layer, "mc/nowhere")
        assert upload is not None
        with client.open_blob("mc/mount-src", layer) as stream:
            client.finish_upload(upload, layer, size, stream)
        assert client.has_blob("mc/mount-dst", layer)
        assert client.mount_blob("mc/mount-dst2", layer, "mc/mount-src") is None  # mounted
        assert client.has_blob("mc/mount-dst2", layer)
    finally:
        client.close()


# ------------------------------------------------------------------------------------------------
# inspect


def test_inspect_shows_platforms_digests_and_sizes(registry: Registry, devnix: Callable[..., Run]) -> None:
    amd = push_tiny(registry, "mc/show", "amd64", "amd64")
    arm = push_tiny(registry, "mc/show", "arm64", "arm64")
    target = f"{registry.host}/mc/show:multi"
    assert devnix("manifest", "create", target, amd.ref, arm.ref, "--push").exit_code == 0
    body = registry.get_manifest("mc/show", "multi").body

    as_json = devnix("manifest", "inspect", target, "--json")
    as_text = devnix("manifest", "inspect", target)
    single = devnix("manifest", "inspect", amd.ref, "--json")

    assert as_json.exit_code == 0, as_json.stderr
    data = as_json.json()
    assert data["media_type"] == MEDIA_DOCKER_LIST
    assert data["digest"] == _digest(body)
    assert data["size"] == len(body)
    assert data["platforms"] == ["linux/amd64", "linux/arm64"]
    sizes = {m["platform"]: m["image_size"] for m in data["manifests"]}
    assert all(size > 0 for size in sizes.values())
    assert "linux/arm64" in as_text.stdout and arm.digest in as_text.stdout
    assert single.json()["platforms"] == ["linux/amd64"]
    assert single.json()["digest"] == amd.digest
    assert as_json.blob_gets == []  # an index's platforms need no config read


# ------------------------------------------------------------------------------------------------
# the real Nix stand-ins (~240 MB each)


def test_nix_standins_join_across_repositories_fast_without_downloading(
    nix_images: NixImages, devnix: Callable[..., Run], pulled: Callable[[str, str], dict[str, Any]]
) -> None:
    host = nix_images.registry.host
    target = f"{host}/devnix-test/nix-joined:multi"

    started = time.perf_counter()
    run = devnix("manifest", "create", target, nix_images.amd64, nix_images.arm64, "--push", "--json")
    elapsed = time.perf_counter() - started

    assert run.exit_code == 0, run.stderr
    assert elapsed < 1.0
    assert run.json()["bytes_copied"] == 0
    config_gets = {
        f"/v2/{nix_images.repository}/blobs/{digest}"
        for digest in (
            json.loads(nix_images.registry.get_manifest(nix_images.repository, arch).body)["config"]["digest"]
            for arch in ("amd64", "arm64")
        )
    }
    assert set(run.blob_gets) == config_gets
    assert pulled(target, "linux/arm64")["Architecture"] == "arm64"
    assert pulled(target, "linux/amd64")["Architecture"] == "amd64"


def test_command_module_agrees_with_the_cli(registry: Registry) -> None:
    """The result object the CLI prints is what ``create`` returns (used by the benchmark)."""
    amd = push_tiny(registry, "mc/api", "amd64", "amd64")
    arm = push_tiny(registry, "mc/api", "arm64", "arm64")
    result = manifest_command.create(
        manifest_command.CreateOptions(f"{registry.host}/mc/api:multi", (amd.ref, arm.ref), push=True)
    )
    assert result.pushed
    assert result.requests == 5
    assert registry.get_manifest("mc/api", "multi").body == result.index.body
