from __future__ import annotations

import pytest

from devnix.errors import UsageError
from devnix.nixconf import NixOptions, filter_syscalls_off, flakes_enabled, parse, settings


def keys(options: NixOptions, emulated: bool) -> dict[str, str]:
    return {s.key: s.value for s in settings(options, emulated=emulated)}


def test_syscall_filter_is_turned_off_only_under_emulation() -> None:
    assert "filter-syscalls" not in keys(NixOptions(), emulated=False)
    assert keys(NixOptions(), emulated=True)["filter-syscalls"] == "false"


def test_flakes_on_by_default_and_off_on_request() -> None:
    assert keys(NixOptions(), False)["experimental-features"] == "nix-command flakes"
    assert "experimental-features" not in keys(NixOptions(flakes=False), False)


def test_optional_settings_are_deduplicated() -> None:
    values = keys(
        NixOptions(
            extra_platforms=("aarch64-linux", "aarch64-linux"),
            trusted_users=("root", "vscode"),
            substituters=("https://cache.example",),
            trusted_public_keys=("cache.example-1:abc=",),
        ),
        False,
    )
    assert values["extra-platforms"] == "aarch64-linux"
    assert values["trusted-users"] == "root vscode"
    assert values["extra-substituters"] == "https://cache.example"
    assert values["extra-trusted-public-keys"] == "cache.example-1:abc="


def test_parse_reads_what_settings_render() -> None:
    text = (
        "# comment\nfilter-syscalls = false  # trailing\nextra-experimental-features = flakes\n!include x\n"
    )
    values = parse(text)
    assert filter_syscalls_off(values)
    assert flakes_enabled(values)
    assert not filter_syscalls_off(parse("filter-syscalls = true\n"))
    assert not flakes_enabled(parse("experimental-features = nix-command\n"))


@pytest.mark.parametrize(
    "options",
    [
        {"trusted_users": ("root\nsandbox = true",)},
        # No space at all: the newline alone must be what is refused.
        {"trusted_users": ("root\nsandbox=true",)},
        {"substituters": ("https://a.example\rsandbox=true",)},
        {"trusted_users": ("root\x00",)},
        {"trusted_users": ("alice bob",)},
        {"substituters": ("https://cache.example#frag",)},
        {"trusted_public_keys": ("",)},
        {"extra_platforms": ("not a system",)},
        {"extra_platforms": ("aarch64",)},
        {"extra_platforms": ("Aarch64-Linux",)},
    ],
)
def test_values_that_would_break_nix_conf_are_refused(options: dict[str, tuple[str, ...]]) -> None:
    with pytest.raises(UsageError):
        NixOptions(**options)  # type: ignore[arg-type]


def test_ordinary_values_pass_and_land_as_one_word_each() -> None:
    options = NixOptions(
        extra_platforms=("aarch64-linux", "x86_64-darwin"),
        trusted_users=("root", "@wheel"),
        substituters=("https://cache.example.org",),
        trusted_public_keys=("cache.example.org-1:AbC+/=",),
    )
    values = {s.key: s.value for s in settings(options, emulated=False)}
    assert values["extra-platforms"] == "aarch64-linux x86_64-darwin"
    assert values["trusted-users"] == "root @wheel"
