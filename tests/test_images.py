from __future__ import annotations

import pytest

from devnix.errors import UsageError
from devnix.images import Filesystem, catalog, default_image, filesystem_from_env, lookup, parse_ref


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nixos/nix", "docker.io", "nixos/nix", "latest", None),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
        ("ghcr.io/owner/img:v1", "ghcr.io", "owner/img", "v1", None),
        ("localhost:5000/a/b:c", "localhost:5000", "a/b", "c", None),
        ("127.0.0.1:5000/x", "127.0.0.1:5000", "x", "latest", None),
        ("index.docker.io/nixos/nix:2.24", "docker.io", "nixos/nix", "2.24", None),
        (
            "nixos/nix@sha256:" + "a" * 64,
            "docker.io",
            "nixos/nix",
            None,
            "sha256:" + "a" * 64,
        ),
    ],
)
def test_parse_ref_fills_docker_defaults(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_ref(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize(
    "text", ["", "Nixos/Nix", "nix os", "nixos/nix:", "nixos/nix@sha256:xyz", "a//b", "nixos/nix:bad tag"]
)
def test_parse_ref_rejects_malformed(text: str) -> None:
    with pytest.raises(UsageError):
        parse_ref(text)


def test_familiar_and_api_host() -> None:
    ref = parse_ref("nixos/nix:latest")
    assert ref.familiar == "nixos/nix:latest"
    assert ref.api_host == "registry-1.docker.io"
    assert parse_ref("ubuntu").familiar == "ubuntu:latest"
    assert str(parse_ref("ghcr.io/a/b:1")) == "ghcr.io/a/b:1"


@pytest.mark.parametrize(
    ("text", "loopback"),
    [("localhost:5000/a", True), ("127.0.0.1:5000/a", True), ("[::1]:5000/a", True), ("ghcr.io/a", False)],
)
def test_loopback_registries_are_recognised(text: str, loopback: bool) -> None:
    assert parse_ref(text).is_loopback is loopback


def test_catalog_is_package_data_and_default_is_multi_arch() -> None:
    assert len(catalog()) >= 2
    default = default_image()
    assert {str(p) for p in default.platforms} == {"linux/amd64", "linux/arm64"}
    assert lookup(parse_ref("nixos/nix:2.20")) is default
    assert lookup(parse_ref("example.com/unknown")) is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # nixos/nix (NixOS/nix docker.nix) and dockerTools images: only Nix profiles on PATH.
        (
            [
                "USER=root",
                "PATH=/root/.nix-profile/bin:/nix/var/nix/profiles/default/bin:/nix/var/nix/profiles/default/sbin",
            ],
            Filesystem.STORE_ONLY,
        ),
        (["PATH=/nix/store/" + "a" * 32 + "-bash/bin"], Filesystem.STORE_ONLY),
        # Distribution-based images name FHS folders, Nix profiles or not.
        (["PATH=/home/code/.nix-profile/bin:/usr/local/bin:/usr/bin:/bin"], Filesystem.FHS),
        (["PATH=/usr/local/sbin/:/usr/local/bin"], Filesystem.FHS),
        # Nothing to go on.
        ([], Filesystem.UNKNOWN),
        (None, Filesystem.UNKNOWN),
        (["PATH="], Filesystem.UNKNOWN),
        (["PATH=/opt/tools/bin"], Filesystem.UNKNOWN),
        ([5, {"PATH": "/usr/bin"}], Filesystem.UNKNOWN),  # a hostile config is not trusted
    ],
)
def test_filesystem_from_an_image_configs_path(env: list[object] | None, expected: Filesystem) -> None:
    assert filesystem_from_env(env) is expected


def test_the_catalog_says_which_images_are_store_only() -> None:
    entry = lookup(parse_ref("nixos/nix:2.24.9"))
    assert entry is not None and entry.filesystem is Filesystem.STORE_ONLY
    assert all(isinstance(image.filesystem, Filesystem) for image in catalog())
