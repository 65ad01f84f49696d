"""Pure: the Nix settings a dev container needs, and why each one is there.

The rules live here so that ``init``, ``validate``, the Feature and ``bootstrap`` agree:

- ``filter-syscalls = false`` only when Nix runs emulated. QEMU's user-mode emulation (and Rosetta) cannot
  load Nix's seccomp BPF filter (``unable to load seccomp BPF program: Invalid argument``, NixOS/nix#5258);
  natively the filter is a real protection and stays on.
- ``sandbox = false``: Docker's default seccomp profile and the missing user namespaces keep Nix's build
  sandbox from starting in an unprivileged container, and devnix never asks for ``--privileged``.
- ``build-users-group =`` (empty): single-user Nix as root builds as root instead of needing ``nixbld``
  users that many images lack; a daemon ignores this client-side value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from devnix.errors import UsageError

DEFAULT_NIX_PATH = "nixpkgs=channel:nixos-unstable"


@dataclass(frozen=True)
class Setting:
    """One ``key = value`` line with the reason it is there (rendered as a comment)."""

    key: str
    value: str
    why: str


@dataclass(frozen=True)
class NixOptions:
    """What the user chose about Nix, independent of where it runs."""

    flakes: bool = True
    extra_platforms: tuple[str, ...] = ()
    trusted_users: tuple[str, ...] = ()
    substituters: tuple[str, ...] = ()
    trusted_public_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Each value becomes one word of a nix.conf line: whitespace would add words, a newline a
        # setting of its own, and '#' starts a comment anywhere on a line.
        for flag, values in (
            ("--extra-platform", self.extra_platforms),
            ("--trusted-user", self.trusted_users),
            ("--substituter", self.substituters),
            ("--trusted-public-key", self.trusted_public_keys),
        ):
            for value in values:
                if not value or _UNSAFE.search(value):
                    raise UsageError(
                        f"{flag} {value!r} cannot go into nix.conf: it must be one word without spaces, "
                        "newlines or '#'",
                        hint=f"give each value to its own {flag}",
                    )
        for system in self.extra_platforms:
            if not _SYSTEM.match(system):
                raise UsageError(
                    f"--extra-platform {system!r} is not a Nix system",
                    hint="a Nix system is <cpu>-<os>, such as aarch64-linux or x86_64-linux",
                )


_UNSAFE = re.compile(r"[\s#\x00-\x1f\x7f]")
_SYSTEM = re.compile(r"^[a-z0-9_]+-[a-z0-9_]+$")


def settings(options: NixOptions, *, emulated: bool) -> list[Setting]:
    """The settings for a container in which Nix runs natively or under emulation."""
    result: list[Setting] = []
    if options.flakes:
        result.append(Setting("experimental-features", "nix-command flakes", "the nix CLI and flakes"))
    if emulated:
        result.append(
            Setting(
                "filter-syscalls",
                "false",
                "Nix runs under emulation here, which cannot load its seccomp filter",
            )
        )
    result.append(Setting("sandbox", "false", "an unprivileged container cannot start Nix's build sandbox"))
    result.append(Setting("build-users-group", "", "single-user Nix builds as the container user"))
    # The list-valued settings the user may add: (key, values, why).
    lists = (
        ("extra-platforms", options.extra_platforms, "build for these systems too (binfmt emulation)"),
        ("trusted-users", options.trusted_users, "trusted users are effectively root (NixOS/nix#6672)"),
        ("extra-substituters", options.substituters, "extra caches"),
        ("extra-trusted-public-keys", options.trusted_public_keys, "keys of the extra caches"),
    )
    result.extend(Setting(key, " ".join(_unique(values)), why) for key, values, why in lists if values)
    return result


def parse(text: str) -> dict[str, str]:
    """Read ``key = value`` lines (comments and ``include`` lines ignored); later lines win."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(("include ", "!include ")):
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def filter_syscalls_off(values: dict[str, str]) -> bool:
    """Whether a parsed nix.conf turns the syscall filter off."""
    return values.get("filter-syscalls", "").lower() in ("false", "0", "no")


def flakes_enabled(values: dict[str, str]) -> bool:
    """Whether a parsed nix.conf enables flakes (through either spelling of the key)."""
    features = f"{values.get('experimental-features', '')} {values.get('extra-experimental-features', '')}"
    return "flakes" in features.split()


def _unique(items: Iterable[str]) -> Sequence[str]:
    return list(dict.fromkeys(item for item in items if item))
