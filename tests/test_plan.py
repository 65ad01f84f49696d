from __future__ import annotations

import pytest

from devnix.errors import UsageError
from devnix.images import Filesystem, parse_ref
from devnix.plan import Facts, Known, Source, decide, store_volume_name
from devnix.platforms import Platform

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
BOTH = Known((AMD64, ARM64), Source.REGISTRY, "sha256:" + "1" * 64)
IMAGE = parse_ref("nixos/nix:latest")


def facts(engine: Platform, image: Known = BOTH, **kwargs: object) -> Facts:
    return Facts(
        image=IMAGE,
        image_platforms=image,
        engine_platform=engine,
        engine_source=Source.ENGINE,
        nix_path="nixpkgs=channel:nixos-unstable",
        **kwargs,  # type: ignore[arg-type]
    )


def setting_keys(engine: Platform, **kwargs: object) -> dict[str, str]:
    return {s.key: s.value for s in decide(facts(engine, **kwargs)).settings}


def test_multi_arch_image_runs_natively_on_either_engine() -> None:
    for engine in (AMD64, ARM64):
        plan = decide(facts(engine))
        assert plan.platform == engine
        assert not plan.emulated
        assert not plan.pin_platform
        assert "filter-syscalls" not in setting_keys(engine)


def test_apple_silicon_with_amd64_only_image_is_emulated_and_pinned() -> None:
    plan = decide(facts(ARM64, Known((AMD64,), Source.REGISTRY)))
    assert plan.platform == AMD64
    assert plan.emulated and plan.pin_platform
    assert {s.key: s.value for s in plan.settings}["filter-syscalls"] == "false"
    assert any("devnix bootstrap" in note for note in plan.notes)


def test_arm64_only_image_on_amd64_engine_is_emulated() -> None:
    plan = decide(facts(AMD64, Known((ARM64,), Source.REGISTRY)))
    assert plan.platform == ARM64 and plan.emulated


def test_requested_foreign_platform_is_emulated() -> None:
    plan = decide(facts(AMD64, requested_platform=ARM64))
    assert plan.platform == ARM64
    assert plan.emulated and plan.pin_platform
    assert plan.target_source is Source.FLAG


def test_requested_platform_the_image_lacks_is_refused() -> None:
    with pytest.raises(UsageError, match="no linux/arm64 variant"):
        decide(facts(AMD64, Known((AMD64,), Source.REGISTRY), requested_platform=ARM64))


def test_image_without_linux_variants_is_refused() -> None:
    with pytest.raises(UsageError):
        decide(facts(AMD64, Known((Platform("windows", "amd64"),), Source.REGISTRY)))


def test_assumed_platforms_trust_the_flag() -> None:
    plan = decide(facts(AMD64, Known((ARM64,), Source.ASSUMED), requested_platform=ARM64))
    assert plan.platform == ARM64


def test_assumed_platforms_trust_the_target_even_when_it_is_not_listed() -> None:
    """ASSUMED means nothing could tell which platforms the image has: the target is taken on trust,
    not checked against a list that no one filled in (the registry's answer would be refused)."""
    plan = decide(facts(AMD64, Known((), Source.ASSUMED), requested_platform=ARM64))
    assert (plan.platform, plan.emulated) == (ARM64, True)
    with pytest.raises(UsageError, match="has no linux/arm64 variant"):
        decide(facts(AMD64, Known((), Source.REGISTRY), requested_platform=ARM64))


def test_store_volume_is_keyed_to_the_digest() -> None:
    plan = decide(facts(AMD64, store_volume=True))
    assert plan.store_volume == store_volume_name(BOTH.digest or "")
    assert plan.store_volume is not None and "1111111111111111" in plan.store_volume
    other = store_volume_name("sha256:" + "2" * 64)
    assert other != plan.store_volume


def test_store_volume_without_digest_is_refused() -> None:
    with pytest.raises(UsageError, match="digest"):
        decide(facts(AMD64, Known((AMD64,), Source.CATALOG), store_volume=True))


@pytest.mark.parametrize(
    ("filesystem", "flag", "wanted"),
    [
        (Filesystem.STORE_ONLY, None, True),
        (Filesystem.UNKNOWN, None, True),  # a no-op where a loader exists: safer than a dead server
        (Filesystem.FHS, None, False),
        (Filesystem.STORE_ONLY, False, False),  # the user's --no-fhs-loader wins
        (Filesystem.FHS, True, True),
    ],
)
def test_the_fhs_loader_step_follows_the_layout_unless_told(
    filesystem: Filesystem, flag: bool | None, wanted: bool
) -> None:
    plan = decide(facts(AMD64, filesystem=filesystem, filesystem_source=Source.CATALOG, fhs_loader=flag))
    assert plan.fhs_loader is wanted
    assert (plan.filesystem, plan.filesystem_source) == (filesystem, Source.CATALOG)
