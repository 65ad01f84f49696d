"""devnix.lint: each Nix rule with a case that fires and one that does not."""

from __future__ import annotations

from typing import Any

import pytest

from devnix import jsonc, lint, render
from devnix.images import Filesystem
from devnix.platforms import parse as platform

AMD64, ARM64 = platform("linux/amd64"), platform("linux/arm64")
DIGEST = "sha256:" + "ab12" * 16
NIX = {"image": "nixos/nix:latest"}
# The Env of an image config: nixos/nix's PATH (Nix profiles only), and a Debian-based image's.
STORE_ONLY_ENV = ("PATH=/root/.nix-profile/bin:/nix/var/nix/profiles/default/bin",)
FHS_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)


def ids(config: Any, **context: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """The findings of every rule but store-only-image: nixos/nix, the image these tests use for the
    other rules, is store-only, and that rule has its own tests below (:func:`store_only`)."""
    return [
        (f.id, f.path) for f in lint.lint(config, lint.LintContext(**context)) if f.id != "store-only-image"
    ]


def store_only(config: Any, **context: Any) -> list[lint.LintFinding]:
    return [f for f in lint.lint(config, lint.LintContext(**context)) if f.id == "store-only-image"]


# filter-syscalls-native


def test_filter_syscalls_off_where_nix_runs_natively() -> None:
    config = {**NIX, "containerEnv": {"NIX_CONFIG": "sandbox = false\nfilter-syscalls = false"}}
    assert ids(config) == [("filter-syscalls-native", ("containerEnv", "NIX_CONFIG"))]
    native = {**config, "runArgs": ["--platform=linux/amd64"]}
    assert ids(native, engine_platform=AMD64) == [("filter-syscalls-native", ("containerEnv", "NIX_CONFIG"))]
    finding = lint.lint(native, lint.LintContext(engine_platform=AMD64))[0]
    assert finding.severity == "warning" and "emulation" in finding.hint


def test_filter_syscalls_off_under_emulation_or_unknown_is_fine() -> None:
    config = {**NIX, "runArgs": ["--platform", "linux/amd64"]}
    nix_conf = "filter-syscalls = false\n"
    assert ids(config, nix_conf=nix_conf, engine_platform=ARM64) == []
    assert ids(config, nix_conf=nix_conf) == []  # engine unknown: say nothing
    assert ids(NIX, nix_conf=nix_conf, engine_platform=ARM64, image_platforms=(AMD64,)) == [
        ("image-platform-missing", ("image",))
    ]
    assert ids(NIX, nix_conf="filter-syscalls = true\n") == []


def test_filter_syscalls_in_nix_conf_points_at_its_line() -> None:
    findings = lint.lint(NIX, lint.LintContext(nix_conf="# x\nfilter-syscalls = false\n"))
    assert [(f.id, f.nix_conf_line) for f in findings] == [
        ("filter-syscalls-native", 2),
        ("store-only-image", None),
    ]


# image-platform-missing


def test_image_without_the_target_platform() -> None:
    config = {**NIX, "runArgs": ["--platform=linux/arm64"]}
    assert ids(config, image_platforms=(AMD64,)) == [("image-platform-missing", ("runArgs", 0))]
    finding = lint.lint(NIX, lint.LintContext(engine_platform=ARM64, image_platforms=(AMD64,)))[0]
    assert finding.severity == "error"
    assert finding.message == "nixos/nix:latest has no linux/arm64 variant (it has linux/amd64)"


def test_image_with_the_target_platform_or_unknown() -> None:
    assert ids(NIX, engine_platform=ARM64, image_platforms=(AMD64, ARM64)) == []
    assert ids(NIX, engine_platform=ARM64) == []
    assert ids(NIX, image_platforms=(AMD64,)) == []


# nix-path-missing


def test_channels_without_nix_path() -> None:
    config = {**NIX, "postCreateCommand": {"shell": ["nix-shell", "-p", "hello"]}}
    assert ids(config) == [("nix-path-missing", ("postCreateCommand", "shell"))]
    config = {**NIX, "onCreateCommand": "nix-instantiate --eval -E 'import <nixpkgs> {}'"}
    assert ids(config) == [("nix-path-missing", ("onCreateCommand",))]


def test_channels_with_nix_path_or_without_nix() -> None:
    config = {**NIX, "postCreateCommand": "nix-shell -p hello", "remoteEnv": {"NIX_PATH": "x"}}
    assert ids(config) == []
    assert ids({"image": "ubuntu", "postCreateCommand": "nix-shell -p hello"}) == []
    assert ids({**NIX, "postCreateCommand": "nix-shell shell.nix"}) == []


# nix-store-volume


def test_unkeyed_nix_volume() -> None:
    assert ids({**NIX, "mounts": ["source=nix-store,target=/nix,type=volume"]}) == [
        ("nix-store-volume", ("mounts", 0))
    ]
    assert ids({**NIX, "mounts": [{"source": "nix", "target": "/nix/", "type": "volume"}]}) == [
        ("nix-store-volume", ("mounts", 0))
    ]
    assert ids({**NIX, "runArgs": ["-v", "nix:/nix"]}) == [("nix-store-volume", ("runArgs", 1))]
    # A digest that is not this image's does not count.
    pinned = {"image": f"nixos/nix@{DIGEST}", "mounts": [f"source=nix-{'cd34' * 4},target=/nix"]}
    assert ids(pinned) == [("nix-store-volume", ("mounts", 0))]


def test_digest_keyed_or_other_mounts_are_fine() -> None:
    keyed = f"source=devnix-nix-{DIGEST[7:19]},target=/nix,type=volume"
    assert ids({"image": f"nixos/nix@{DIGEST}", "mounts": [keyed]}) == []
    assert ids({**NIX, "mounts": [keyed]}, image_digest=DIGEST) == []
    assert ids({**NIX, "mounts": ["source=nix,target=/nix,type=bind"]}) == []
    assert ids({**NIX, "mounts": ["source=cache,target=/home/x/.cache,type=volume"]}) == []
    assert ids({**NIX, "runArgs": ["-v", "/host/nix:/nix"]}) == []


# flakes-not-enabled


def test_flakes_used_but_not_enabled() -> None:
    assert ids({**NIX, "postCreateCommand": "nix develop -c true"}) == [
        ("flakes-not-enabled", ("postCreateCommand",))
    ]
    assert ids({**NIX, "postStartCommand": ["nix", "build", ".#default"]}) == [
        ("flakes-not-enabled", ("postStartCommand",))
    ]
    assert ids(NIX, flake_nix=True) == [("flakes-not-enabled", ())]
    assert ids(NIX, envrc="use flake\n") == [("flakes-not-enabled", ())]


def test_flakes_enabled_or_unused() -> None:
    command = {**NIX, "postCreateCommand": "nix develop -c true"}
    assert ids(command, nix_conf="experimental-features = nix-command flakes\n") == []
    enabled = {"NIX_CONFIG": "extra-experimental-features = flakes"}
    assert ids({**command, "containerEnv": enabled}) == []
    options = {"extraNixConfig": "experimental-features = nix-command flakes"}
    feature = {"ghcr.io/devcontainers/features/nix:1": options}
    assert ids({**command, "features": feature}) == []
    assert ids({**NIX, "postCreateCommand": "nix-build"}, envrc="use nix\n") == []


# store-only-image


def devnix_output(image: str) -> tuple[dict[str, Any], str]:
    """The devcontainer.json and Dockerfile `devnix init` writes for a store-only image."""
    layout = render.Layout("x")
    values = {
        **render.base_context(layout),
        "image": image,
        "platform": "linux/amd64",
        "engine_platform": "linux/amd64",
        "emulated": False,
        "pin_platform": False,
        "nix_path": "nixpkgs=channel:nixos-unstable",
        "settings": {},
        "store_volume": None,
        "fhs_loader": True,
        "store_only": True,
    }
    files = render.render_context(values, layout)
    return jsonc.parse(files[".devcontainer/devcontainer.json"]).value, files[".devcontainer/Dockerfile"]


def test_store_only_image_is_flagged() -> None:
    [finding] = store_only(NIX)  # the catalog says nixos/nix is store-only
    assert (finding.path, finding.severity) == (("image",), "warning")
    assert finding.message.startswith(
        "nixos/nix:latest is a store-only Nix image (no /lib64/ld-linux-x86-64.so.2)"
    )
    assert "devnix init --merge" in finding.hint and "RUN sh /tmp/devnix-fhs-loader.sh" in finding.hint
    # The loader VS Code's server asks for on the platform the container runs as.
    [arm] = store_only({**NIX, "runArgs": ["--platform=linux/arm64"]})
    assert "/lib/ld-linux-aarch64.so.1" in arm.message
    # An image the catalog does not know, whose config (local copy or registry) says store-only.
    [learned] = store_only({"image": "ghcr.io/acme/nix:1"}, image_env=STORE_ONLY_ENV)
    assert learned.message.startswith("ghcr.io/acme/nix:1 is a store-only")


def test_dockerfile_from_a_store_only_image_without_the_step_is_flagged() -> None:
    dockerfile = "ARG TAG=2.24\nFROM nixos/nix:${TAG} AS nix\nFROM nix\nRUN nix --version\n"
    [finding] = store_only({"build": {"dockerfile": "Dockerfile"}}, dockerfile=dockerfile)
    assert finding.path == ("build", "dockerfile")
    assert finding.message.startswith("Dockerfile builds FROM nixos/nix:2.24, a store-only Nix image")
    [legacy] = store_only({"dockerFile": "nix.Dockerfile"}, dockerfile="FROM nixos/nix\n")
    assert legacy.path == ("dockerFile",)


def test_devnix_dockerfile_is_not_flagged() -> None:
    config, dockerfile = devnix_output("nixos/nix:latest")
    assert config["build"] == {"dockerfile": "Dockerfile"}
    assert store_only(config, dockerfile=dockerfile) == []
    # The same config whose Dockerfile lost the step is flagged again.
    without = "\n".join(line for line in dockerfile.splitlines() if "fhs-loader" not in line)
    assert [f.id for f in store_only(config, dockerfile=without)] == ["store-only-image"]


def test_fhs_or_unknown_images_are_not_flagged() -> None:
    assert store_only({"image": "mcr.microsoft.com/devcontainers/base:debian"}) == []  # unknown
    assert store_only({"image": "ghcr.io/xtruder/nix-devcontainer:v1"}) == []  # in the catalog, unknown
    assert store_only({"image": "ghcr.io/acme/nix:1"}, image_env=FHS_ENV) == []
    # The catalog's word is knowledge, a PATH a heuristic (images.filesystem_of, as init and doctor).
    assert len(store_only(NIX, image_env=FHS_ENV)) == 1
    assert lint.layout_of("nixos/nix", FHS_ENV) is Filesystem.STORE_ONLY
    assert lint.layout_of("${localEnv:IMAGE}", STORE_ONLY_ENV) is Filesystem.STORE_ONLY
    assert store_only({"build": {"dockerfile": "Dockerfile"}}, dockerfile="FROM debian:bookworm\n") == []
    # A FROM that cannot be told offline, or a Dockerfile that could not be read: nothing to say.
    assert store_only({"build": {"dockerfile": "Dockerfile"}}, dockerfile="ARG IMAGE\nFROM $IMAGE\n") == []
    assert store_only({"build": {"dockerfile": "Dockerfile"}}) == []
    assert store_only({"dockerComposeFile": "compose.yml", "service": "dev"}) == []


@pytest.mark.parametrize(
    ("feature", "local"),
    [
        ("ghcr.io/me/devnix/nix:1", frozenset()),
        ("ghcr.io/me/devnix-features/nix", frozenset()),
        (f"ghcr.io/me/devnix/nix@{DIGEST}", frozenset()),
        ("./nix", frozenset({"./nix"})),
    ],
)
def test_the_devnix_nix_feature_fixes_it(feature: str, local: frozenset[str]) -> None:
    assert store_only({**NIX, "features": {feature: {}}}, loader_features=local) == []


def test_other_features_do_not_fix_it() -> None:
    for feature in ("ghcr.io/devcontainers/features/nix:1", "ghcr.io/me/devnix/nixpkgs:1"):
        assert len(store_only({**NIX, "features": {feature: {}}})) == 1, feature
    # A local ./nix folder counts only when validate saw fhs-loader.sh in it.
    assert len(store_only({**NIX, "features": {"./nix": {}}})) == 1


def test_dockerfile_base_follows_stages_and_args() -> None:
    assert lint.dockerfile_base("FROM --platform=$BUILDPLATFORM nixos/nix AS b\nFROM b\n") == "nixos/nix"
    assert lint.dockerfile_base("ARG I=nixos/nix\nFROM ${I}\n") == "nixos/nix"
    assert lint.dockerfile_base("ARG I\nFROM ${I:-nixos/nix:2.24}\n") == "nixos/nix:2.24"
    assert lint.dockerfile_base("ARG I=a\nFROM $I\n", {"I": "nixos/nix"}) == "nixos/nix"
    assert lint.dockerfile_base("FROM scratch\n") is None
    assert lint.dockerfile_base("# no FROM\n") is None


@pytest.mark.parametrize("config", [None, [], "x", {"image": "${localEnv:IMAGE}"}, {"runArgs": 3}])
def test_odd_configs_are_not_a_crash(config: Any) -> None:
    assert lint.lint(config) == []


def test_rules_are_a_table() -> None:
    assert [rule.id for rule in lint.RULES] == [
        "filter-syscalls-native",
        "image-platform-missing",
        "nix-path-missing",
        "nix-store-volume",
        "flakes-not-enabled",
        "store-only-image",
    ]
