"""Running ``nix build`` in the builder: its log streamed line by line, and read when it fails.

Nix writes the result path on stdout and its log on stderr. The log goes to the step as it comes (so a
long build shows that it is alive), its tail is kept for the error, and a few known failures get a hint.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from devnix import bootstrap as core
from devnix import builders, engine
from devnix.bootstrap import FlakeRef, NixBuildError
from devnix.commands.bootstrap.steps import Handle
from devnix.errors import EngineError


@dataclass(frozen=True)
class BuildOutcome:
    out_path: str
    built: bool  # whether Nix built (or fetched) anything for it
    remote: dict[str, str] = field(default_factory=dict)  # derivation -> the builder URI Nix names
    local: tuple[str, ...] = ()  # derivations built in the builder container itself


def build(
    container: str,
    flake: FlakeRef,
    system: str,
    nix_options: tuple[tuple[str, str], ...],
    nix: core.BuilderNix,
    step: Handle,
    *,
    env: dict[str, str] | None = None,
) -> BuildOutcome:
    """Run the build; the output path and where Nix says each derivation was built."""
    command = core.nix_build_command(flake.installable, nix_options)
    run = engine.exec_stream(container, command, env=env)
    announced: list[str] = []  # Nix's "building '…'" lines: where each build ran
    out = bytearray()
    tail: deque[str] = deque(maxlen=core.LOG_TAIL_LINES)
    pending = b""
    built = False
    for stdout, stderr in run:
        if stdout:
            out += stdout
        if stderr:
            pending += stderr
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                if is_build_line(line):
                    built = True
                    announced.append(line)
                tail.append(line)
                step.log(line)
    if pending:
        tail.append(pending.decode("utf-8", "replace"))
    code = run.exit_code
    if code != 0:
        reason = core.build_failure_line(list(tail)) or f"nix exited with {code}"
        if flake.local_dir is not None:
            # Nix names the builder's copy; the user knows the folder on this machine.
            reason = reason.replace(flake.url, f"path:{flake.local_dir}")
        raise NixBuildError(
            f"nix build of {flake.shown} for {system} failed: {reason}",
            list(tail),
            hint=build_hint(list(tail), nix),
        )
    out_path = core.parse_build_output(out.decode("utf-8", "replace"))
    local = tuple(builders.local_builds(announced))
    return BuildOutcome(out_path, built, builders.built_on(announced), local)


def is_build_line(line: str) -> bool:
    # Nix announces each derivation it builds (and the paths it fetches) on stderr; a no-op build
    # prints none of these.
    return line.startswith(("building '", "copying path ")) or " will be built:" in line


def build_hint(tail: list[str], nix: core.BuilderNix) -> str | None:
    text = "\n".join(tail)
    wanted = re.search(r"a '([^']+)' with features \{[^}]*\} is required to build", text)
    if wanted and "but I am a" in text:
        system = wanted.group(1)
        if system == nix.target_system or system == nix.builder_system:
            return (
                f"the builder ({nix.builder_system}) cannot build for {system}: check that the engine runs "
                "that platform's binaries (binfmt/QEMU, Rosetta)"
            )
        return (
            f"the flake builds derivations for {system}, neither the builder's {nix.builder_system} nor the "
            f"target {nix.target_system}: pass --option extra-platforms {system} if the engine runs it"
        )
    if "unable to start any build" in text or "Failed to find a machine for remote build" in text:
        return (
            "no remote builder takes these derivations: check --remote-system (the systems the remotes "
            "build) against the derivations' system, or pass --option max-jobs 1 to build here"
        )
    if "does not provide attribute" in text:
        return "check the attribute after '#': `nix flake show` lists what the flake provides"
    if "unable to load seccomp BPF program" in text:
        # devnix turns the filter off when it sees emulation; an engine that hides it (some VMs) needs a push.
        return "the builder runs emulated without devnix seeing it: pass --option filter-syscalls false"
    if "substituter" in text or "cache.nixos.org" in text:
        return "offline? pass --option substituters ''"
    return None


def shape(container: str, out_path: str) -> str:
    """What the output is: an archive to ``cat`` or a script that writes one (see :mod:`devnix.bootstrap`)."""
    code, out, err = engine.exec_output(container, ["sh", "-c", core.CLASSIFY_SCRIPT, "sh", out_path])
    if code != 0:
        raise EngineError(f"could not look at {out_path} in the builder: {err.decode(errors='replace')}")
    return core.result_shape(out.decode().strip(), out_path)
