"""Pure: what ``devnix bootstrap`` decides before it touches anything.

- Which flake output to build: the flake reference as given (a local directory, ``path:DIR``, or any
  reference Nix can fetch) split into the part Nix fetches and the attribute path, with short attribute
  names expanded for the *target* system (Nix itself would pick the builder's system).
- Which Nix settings the builder needs: the rules of :mod:`devnix.nixconf` (the syscall filter off only
  when the builder runs emulated; ``extra-platforms`` when it builds for another system).
- The steps, their names and order, so the CLI can show each with its progress and time.
- Reading Nix's and the engine's answers (``nix build --json``, the events of ``docker load``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devnix.errors import DevnixError, UsageError
from devnix.nixconf import NixOptions, Setting, settings
from devnix.platforms import Platform, from_nix_system

# lucernae/docker-nixpkgs is what the seed recipe built from. Its `flake` branch (and
# `flake-devcontainer`, the same commit) exposes docker-nixpkgs.<system>."<channel>".<image> through
# flake-utils' eachDefaultSystem; `nix` there is dockerTools.buildImageWithNixDb, a .tar.gz archive.
DEFAULT_FLAKE = "github:lucernae/docker-nixpkgs/flake"
DEFAULT_CHANNEL = "nixos-unstable"
DEFAULT_IMAGE = "nix"
# The Nix image the builder defaults to, and the platform it is pulled for when missing: the issue's
# premise is an engine that has (or can get) only an x86_64 Nix image.
DEFAULT_BUILDER_IMAGE = "docker.io/nixos/nix:latest"
DEFAULT_BUILDER_PLATFORM = "linux/amd64"

# Where a local flake is unpacked in the builder: outside /nix, so that the store volume only ever holds
# what Nix put there, and fresh in every (fresh) builder container.
CONTAINER_FLAKE_DIR = "/tmp/devnix-flake"
# Per-store notes kept in the store volume: which image id each built output was loaded as.
LOADED_DIR = "/nix/var/devnix/loaded"

STORE_VOLUME_PREFIX = "devnix-nix-store-"
# --remote-builder: the machines file devnix writes into the builder (``builders = @…`` names it), and
# root's SSH folder there, which gets the key and the SSH client's settings (never an image layer).
MACHINES_FILE = "/etc/nix/devnix-machines"
SSH_DIR = "/root/.ssh"
LOG_TAIL_LINES = 25


class NixBuildError(DevnixError):
    """``nix build`` failed; ``log_tail`` holds the last lines of Nix's own log."""

    exit_code = 7

    def __init__(self, message: str, log_tail: Sequence[str] = (), hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.log_tail = tuple(log_tail)


class VerifyError(DevnixError):
    """The built image is not what was asked for (architecture, or Nix in it does not run)."""

    exit_code = 8


class RemoteBuilderError(DevnixError):
    """A remote builder cannot be used; ``kind`` says why (``host-key``, ``unreachable``, ``refused-key``,
    ``no-nix``, ``no-ssh``, ``other``) so that callers branch on it, never on the message."""

    exit_code = 9

    def __init__(self, message: str, hint: str | None = None, *, kind: str = "other") -> None:
        super().__init__(message, hint)
        self.kind = kind


class Terminated(DevnixError):
    """SIGTERM stopped the run (after cleaning up); the exit code a shell gives a SIGTERM'd process."""

    exit_code = 143


def default_attribute(system: str, channel: str = DEFAULT_CHANNEL, image: str = DEFAULT_IMAGE) -> str:
    return f'docker-nixpkgs.{system}."{channel}".{image}'


def default_flake(system: str) -> str:
    """The default flake reference for a target system (kept in this one place)."""
    return f"{DEFAULT_FLAKE}#{default_attribute(system)}"


@dataclass(frozen=True)
class FlakeRef:
    """A flake output to build.

    ``url`` is what Nix fetches (for a local flake: where it is unpacked in the builder); ``local_dir`` is
    the host folder to copy there, if any; ``attribute`` is the full attribute path.
    """

    given: str
    url: str
    attribute: str
    local_dir: str | None = None

    @property
    def installable(self) -> str:
        return f"{self.url}#{self.attribute}"

    @property
    def shown(self) -> str:
        """How to name it to people: the host path for a local flake, not the builder's copy."""
        base = f"path:{self.local_dir}" if self.local_dir is not None else self.url
        return f"{base}#{self.attribute}"


_SYSTEM_RE = re.compile(r"^[a-z0-9_]+-(linux|darwin)$")
_KNOWN_PER_SYSTEM = ("packages", "legacyPackages")


def split_attribute(attribute: str) -> list[str]:
    """``a."b.c".d`` -> ``["a", "b.c", "d"]`` (Nix's attribute path syntax: dots, double quotes)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in attribute:
        if char == '"':
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise UsageError(f"unbalanced quotes in flake attribute {attribute!r}")
    parts.append("".join(current))
    if any(part == "" for part in parts):
        raise UsageError(f"empty component in flake attribute {attribute!r}")
    return parts


def system_in_attribute(attribute: str) -> str | None:
    """The Nix system an attribute path names (``packages.aarch64-linux.x`` -> ``aarch64-linux``)."""
    for part in split_attribute(attribute):
        if _SYSTEM_RE.match(part):
            return part
    return None


def expand_attribute(attribute: str | None, system: str) -> str:
    """The full attribute path for ``system``.

    Nix resolves a short name (``#image``) as ``packages.<its own system>.image``; the builder's own
    system is not the target, so short names are expanded here. Paths that name a system, or are
    longer than one component, are used as they are.
    """
    if not attribute:
        return f"packages.{system}.default"
    parts = split_attribute(attribute)
    named = system_in_attribute(attribute)
    if named is not None:
        if named != system:
            raise UsageError(
                f"the flake attribute {attribute!r} is for {named}, but the target system is {system}",
                hint=f"pass --system {named}, or name the {system} output",
            )
        return attribute
    if len(parts) == 1:
        return f"packages.{system}.{_quote(parts[0])}"
    if parts[0] in _KNOWN_PER_SYSTEM:
        return ".".join([parts[0], system, *(_quote(p) for p in parts[1:])])
    return attribute


def _quote(part: str) -> str:
    return f'"{part}"' if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_'-]*", part) else part


def _looks_local(url: str) -> bool:
    return url.startswith(("/", "./", "../", "~")) or url in (".", "..")


def parse_flake_ref(text: str | None, system: str) -> FlakeRef:
    """Parse ``--flake`` (None: the default) for a target system."""
    if text is None or not text.strip():
        return FlakeRef(default_flake(system), DEFAULT_FLAKE, default_attribute(system))
    given = text.strip()
    url, _, attribute = given.partition("#")
    if not url:
        raise UsageError(f"the flake reference {given!r} has no flake before '#'", hint="e.g. ./flake#image")
    local_dir: str | None = None
    if url.startswith("path:"):
        local_dir, _, query = url[len("path:") :].partition("?")
        if query:
            raise UsageError(
                f"the flake reference {given!r} has parameters devnix cannot carry into the builder",
                hint="drop the ?... part; devnix copies the folder as it is",
            )
    elif _looks_local(url):
        local_dir = url
    elif url.startswith(("git+file:", "file:")):
        raise UsageError(
            f"the flake reference {given!r} names a file on this machine, which the builder cannot see",
            hint="use the folder itself (DIR#ATTR or path:DIR#ATTR): devnix copies it into the builder",
        )
    if local_dir is not None and not local_dir:
        raise UsageError(f"the flake reference {given!r} has an empty path")
    full = expand_attribute(attribute or None, system)
    if local_dir is not None:
        return FlakeRef(given, f"path:{CONTAINER_FLAKE_DIR}", full, local_dir)
    return FlakeRef(given, url, full)


# --- the builder's Nix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuilderNix:
    """The Nix configuration of the builder container and why."""

    builder_platform: Platform
    engine_platform: Platform
    target_system: str
    settings: tuple[Setting, ...]

    @property
    def emulated(self) -> bool:
        return not self.builder_platform.same_machine(self.engine_platform)

    @property
    def builder_system(self) -> str:
        return self.builder_platform.nix_system

    @property
    def cross(self) -> bool:
        return self.builder_system != self.target_system

    @property
    def text(self) -> str:
        """``NIX_CONFIG``: nix.conf lines, which Nix reads after its config files."""
        return "".join(f"{s.key} = {s.value}\n" for s in self.settings)

    def as_dict(self) -> dict[str, str]:
        return {s.key: s.value for s in self.settings}


def builder_nix(
    builder_platform: Platform, engine_platform: Platform, target_system: str, *, remote: bool = False
) -> BuilderNix:
    """The settings the builder needs: flakes on, sandbox off, no build users, the syscall filter off
    only when the builder itself is emulated, and the target as an extra platform when it differs.

    With remote builders: Nix reads them from :data:`MACHINES_FILE` and builds nothing itself
    (``max-jobs = 0``; a pass-through ``--option max-jobs N`` comes later on the command line and wins).
    """
    target = from_nix_system(target_system)
    emulated = not builder_platform.same_machine(engine_platform)
    extra = () if builder_platform.same_machine(target) else (target_system,)
    chosen = settings(NixOptions(flakes=True, extra_platforms=extra), emulated=emulated)
    if remote:
        chosen += [
            Setting("builders", f"@{MACHINES_FILE}", "the remote builders given with --remote-builder"),
            Setting("max-jobs", "0", "build on the remote builders only, never here"),
        ]
    return BuilderNix(builder_platform, engine_platform, target_system, tuple(chosen))


_OPTION_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")


def nix_build_command(installable: str, options: Iterable[tuple[str, str]] = ()) -> list[str]:
    """``nix build`` printing JSON (Nix 2.8 has no --print-out-paths) and the builders' logs."""
    command = ["nix", "build", installable, "--no-link", "--json", "--print-build-logs"]
    for name, value in options:
        command += ["--option", name, value]
    return command


def parse_nix_options(args: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Read pass-through ``--option NAME VALUE`` triples (the form Nix takes) from extra CLI arguments."""
    found: list[tuple[str, str]] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg != "--option":
            raise UsageError(
                f"unexpected argument {arg!r}",
                hint="Nix settings pass through as --option NAME VALUE, e.g. --option substituters ''",
            )
        if index + 2 >= len(args):
            raise UsageError("--option needs a NAME and a VALUE", hint="e.g. --option substituters ''")
        name, value = args[index + 1], args[index + 2]
        if not _OPTION_NAME_RE.match(name):
            raise UsageError(f"{name!r} is not a Nix setting name", hint="e.g. --option substituters ''")
        found.append((name, value))
        index += 3
    return tuple(found)


def parse_build_output(stdout: str) -> str:
    """The ``out`` path from ``nix build --json`` (a list with one entry per installable)."""
    try:
        data = json.loads(stdout)
        outputs = data[0]["outputs"]
        path = outputs.get("out") or next(iter(outputs.values()))
    except (ValueError, LookupError, TypeError, AttributeError, StopIteration):
        raise DevnixError(f"nix build printed no result path: {stdout[-300:]!r}") from None
    if not isinstance(path, str) or not path.startswith("/nix/store/"):
        raise DevnixError(f"nix build printed an unexpected result path: {path!r}")
    return path


def build_failure_line(log_tail: Sequence[str]) -> str | None:
    """Nix's own ``error:`` line, the one that says what failed, if it printed one."""
    for line in reversed(log_tail):
        stripped = line.strip()
        if stripped.startswith("error:"):
            return stripped[len("error:") :].strip()
    return None


# --- what comes out of the build --------------------------------------------------------------------

ARCHIVE = "archive"  # a docker-archive file, plain or compressed (dockerTools.buildImage)
STREAM = "stream"  # an executable that writes the archive to stdout (dockerTools.streamLayeredImage)

# Run in the builder: says what the result is, without needing anything but a POSIX shell.
CLASSIFY_SCRIPT = 'if [ -d "$1" ]; then echo dir; elif [ -x "$1" ]; then echo exec; else echo file; fi'


def result_shape(kind: str, path: str) -> str:
    """``archive`` or ``stream`` from what the builder's shell said about the result path."""
    if kind == "exec":
        return STREAM
    if kind == "file":
        return ARCHIVE
    raise UsageError(
        f"the flake output {path} is a {'folder' if kind == 'dir' else kind!r}, not an image",
        hint="build an output made by dockerTools.buildImage (a .tar.gz) or streamLayeredImage (a script)",
    )


def stream_command(shape: str, path: str) -> list[str]:
    return [path] if shape == STREAM else ["cat", path]


def loaded_note_path(out_path: str) -> str:
    return f"{LOADED_DIR}/{out_path.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class LoadOutcome:
    """What ``docker load`` said: the image id, the names it set, and names it took from other images."""

    image_id: str | None
    tags: tuple[str, ...]
    displaced: dict[str, str] = field(default_factory=dict)  # tag -> id of the image it named before


# Docker: "Loaded image: NAME" per name, "Loaded image ID: ID" for an archive without names, and a line for
# each name it moves. Podman: one "Loaded image: NAME,NAME" (full names: ``localhost/…`` for names without a
# registry), "Loaded image: ID" for an archive without names, and no word about names it moves.
_LOADED = re.compile(r"^Loaded image: (\S+)\s*$")
_LOADED_ID = re.compile(r"^Loaded image ID: (sha256:[0-9a-f]{64})\s*$")
_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_RENAMED = re.compile(
    r"^The image (\S+) already exists, renaming the old one with ID (sha256:[0-9a-f]{64}) to empty string"
)


def parse_load_events(events: Iterable[Mapping[str, Any]]) -> LoadOutcome:
    image_id: str | None = None
    tags: list[str] = []
    displaced: dict[str, str] = {}
    for event in events:
        for line in str(event.get("stream") or "").splitlines():
            if match := _LOADED.match(line):
                for name in match.group(1).split(","):
                    if _IMAGE_ID.match(name):
                        image_id = name
                    elif name:
                        tags.append(name)
            elif match := _LOADED_ID.match(line):
                image_id = match.group(1)
            elif match := _RENAMED.match(line):
                displaced[match.group(1)] = match.group(2)
    return LoadOutcome(image_id, tuple(dict.fromkeys(tags)), displaced)


def with_moved_names(outcome: LoadOutcome, names_before: Mapping[str, str], image_id: str) -> LoadOutcome:
    """The outcome with every name the load took from another image, as the names before it tell: Podman
    moves a name without saying so, and the undo must give it back all the same."""
    displaced = dict(outcome.displaced)
    for name in outcome.tags:
        before = names_before.get(name)
        if name not in displaced and before is not None and before != image_id:
            displaced[name] = before
    return LoadOutcome(outcome.image_id, outcome.tags, displaced)


def store_volume_name(builder_image_id: str) -> str:
    """One store volume per builder image: a changed builder (a new id) gets a fresh, freshly seeded one,
    so it never runs against a store and database another Nix left behind."""
    return STORE_VOLUME_PREFIX + hashlib.sha256(builder_image_id.encode()).hexdigest()[:16]


# --- the steps ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    key: str
    title: str


def plan_steps(local_flake: bool, push: bool, remote: bool = False) -> tuple[Step, ...]:
    steps = [
        Step("builder", "builder image"),
        Step("store", "store volume"),
        Step("start", "start builder"),
    ]
    if remote:
        # Before the flake is copied: a remote that cannot be used fails the run in seconds.
        steps.append(Step("remote", "remote builders"))
    if local_flake:
        steps.append(Step("copy", "copy flake"))
    steps += [
        Step("build", "nix build"),
        Step("load", "stream into engine"),
        Step("verify", "verify image"),
        Step("tag", "tag"),
    ]
    if push:
        steps.append(Step("push", "push"))
    return tuple(steps)


def default_tag(system: str) -> str:
    return f"devnix/nix:{system}"


# Files a local flake never needs in the builder: VCS data and Nix's own result links.
SKIP_NAMES = frozenset({".git", ".hg", ".direnv"})


def skip_in_copy(name: str, is_symlink: bool) -> bool:
    return name in SKIP_NAMES or (is_symlink and (name == "result" or name.startswith("result-")))
