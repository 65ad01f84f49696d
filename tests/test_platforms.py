from __future__ import annotations

import pytest

from devnix.errors import UsageError
from devnix.platforms import Platform, from_engine, from_nix_system, normalize_arch, parse, parse_supported


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/arm64", Platform("linux", "arm64")),
        ("linux/arm64/v8", Platform("linux", "arm64")),
        ("linux/aarch64", Platform("linux", "arm64")),
        ("arm64", Platform("linux", "arm64")),
        ("x86_64", Platform("linux", "amd64")),
        ("aarch64-linux", Platform("linux", "arm64")),
        ("x86_64-linux", Platform("linux", "amd64")),
        ("linux/arm/v7", Platform("linux", "arm", "v7")),
    ],
)
def test_parse_accepts_every_spelling(text: str, expected: Platform) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["", "linux/", "a/b/c/d", "linux//v8"])
def test_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(UsageError):
        parse(text)


def test_parse_supported_refuses_other_platforms_with_a_hint() -> None:
    with pytest.raises(UsageError) as caught:
        parse_supported("linux/s390x")
    assert caught.value.hint is not None
    assert "linux/amd64" in caught.value.hint


def test_nix_system_and_uname_round_trip() -> None:
    arm = Platform("linux", "arm64")
    assert arm.nix_system == "aarch64-linux"
    assert arm.uname_machine == "aarch64"
    assert from_nix_system("aarch64-linux") == arm
    assert Platform("linux", "amd64").nix_system == "x86_64-linux"


def test_engine_answers_map_to_oci_names() -> None:
    assert from_engine("linux", "aarch64") == Platform("linux", "arm64")
    assert from_engine("linux", "x86_64") == Platform("linux", "amd64")
    assert normalize_arch("AMD64") == "amd64"


def test_same_machine_ignores_variant() -> None:
    assert Platform("linux", "arm64", "v8").same_machine(Platform("linux", "arm64"))
    assert not Platform("linux", "arm64").same_machine(Platform("linux", "amd64"))
