"""Pure mapping between the three ways the field names a machine.

- OCI platforms, as registries and ``docker run --platform`` spell them: ``linux/arm64``.
- What engines and kernels answer: ``aarch64`` (``uname -m``, ``/info``'s ``Architecture``) or ``arm64``
  (``/version``'s ``Arch``, Go's ``GOARCH``).
- Nix systems: ``aarch64-linux``.
"""

from __future__ import annotations

from dataclasses import dataclass

from devnix.errors import UsageError

# Every spelling an engine, a kernel or a tool may use, to the OCI architecture name.
_ARCH_ALIASES: dict[str, str] = {
    "amd64": "amd64",
    "x86_64": "amd64",
    "x86-64": "amd64",
    "x64": "amd64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "arm64v8": "arm64",
    "armv8": "arm64",
}

# OCI architecture -> the CPU part of a Nix system name.
_NIX_CPU: dict[str, str] = {"amd64": "x86_64", "arm64": "aarch64"}

SUPPORTED = ("linux/amd64", "linux/arm64")


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform: ``os/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        parts = [self.os, self.architecture]
        if self.variant:
            parts.append(self.variant)
        return "/".join(parts)

    @property
    def nix_system(self) -> str:
        """The Nix system for this platform, e.g. ``aarch64-linux``."""
        cpu = _NIX_CPU.get(self.architecture)
        if cpu is None:
            raise UsageError(
                f"Nix has no system for platform {self}",
                hint="give a Nix system such as aarch64-linux or x86_64-linux (linux/arm64, linux/amd64)",
            )
        return f"{cpu}-{self.os}"

    @property
    def uname_machine(self) -> str:
        """What ``uname -m`` prints inside a container of this platform."""
        return _NIX_CPU.get(self.architecture, self.architecture)

    def same_machine(self, other: Platform) -> bool:
        """Whether code built for ``other`` runs natively here (variants such as ``v8`` don't matter)."""
        return self.os == other.os and self.architecture == other.architecture


def normalize_arch(name: str) -> str:
    """An architecture in any spelling to its OCI name (``aarch64`` -> ``arm64``)."""
    key = name.strip().lower()
    return _ARCH_ALIASES.get(key, key)


def parse(text: str) -> Platform:
    """Parse ``linux/arm64``, ``linux/arm64/v8``, ``arm64``, ``aarch64`` or ``aarch64-linux``."""
    raw = text.strip()
    if not raw:
        raise UsageError("empty platform", hint="use linux/amd64 or linux/arm64")
    if "/" in raw:
        parts = raw.split("/")
        if len(parts) > 3 or not all(parts):
            raise UsageError(f"malformed platform {text!r}", hint="use linux/amd64 or linux/arm64")
        os_name = parts[0].lower()
        arch = normalize_arch(parts[1])
        variant = parts[2] if len(parts) == 3 else None
    elif raw.endswith("-linux") or raw.endswith("-darwin"):
        cpu, _, os_name = raw.rpartition("-")
        arch = normalize_arch(cpu)
        variant = None
    else:
        os_name, arch, variant = "linux", normalize_arch(raw), None
    if arch == "arm64" and variant == "v8":
        variant = None  # linux/arm64/v8 and linux/arm64 are the same machine; keep one spelling
    return Platform(os_name, arch, variant)


def parse_supported(text: str) -> Platform:
    """Parse a platform a dev container can run as, refusing the others with a hint."""
    platform = parse(text)
    if str(platform) not in SUPPORTED:
        raise UsageError(
            f"unsupported platform {text!r}",
            hint=f"devnix supports {' and '.join(SUPPORTED)}",
        )
    return platform


def from_nix_system(system: str) -> Platform:
    """``aarch64-linux`` -> ``linux/arm64``."""
    if "-" not in system:
        raise UsageError(f"malformed Nix system {system!r}", hint="use e.g. aarch64-linux")
    return parse(system)


def from_engine(os_name: str, arch: str) -> Platform:
    """The platform of an engine from its ``/version`` answer (``Os``, ``Arch``)."""
    return Platform(os_name.lower() or "linux", normalize_arch(arch))


def host() -> Platform:
    """The platform of the machine devnix runs on, as a Linux container platform would name it."""
    import platform as stdlib_platform

    return Platform("linux", normalize_arch(stdlib_platform.machine()))
