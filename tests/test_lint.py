"""devnix.lint: each Nix rule with a case that fires and one that does not."""

from __future__ import annotations

from typing import Any

import pytest

from devnix import lint
from devnix.platforms import parse as platform

AMD64, ARM64 = platform("linux/amd64"), platform("linux/arm64")
DIGEST = "sha256:" + "ab12" * 16
NIX = {"image": "nixos/nix:latest"}


def ids(config: Any, **context: Any) -> list[tuple[str, tuple[Any, ...]]]:
    return [(f.id, f.path) for f in lint.lint(config, lint.LintContext(**context))]


# filter-syscalls-native


def test_filter_syscalls_off_where_nix_runs_natively() -> None:
    config = {**NIX, "containerEnv": {"NIX_CONFIG": "sandbox = false\nfilter-syscalls = false"}}
    assert ids(config) == [("filter-syscalls-native", ("containerEnv", "NIX_CONFIG"))]
    native = {**config, "runArgs": ["--platform=linux/amd64"]}
    assert ids(native, engine_platform=AMD64) == [
        ("filter-syscalls-native", ("containerEnv", "NIX_CONFIG"))
    ]
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
    assert [(f.id, f.nix_conf_line) for f in findings] == [("filter-syscalls-native", 2)]


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
    ]
