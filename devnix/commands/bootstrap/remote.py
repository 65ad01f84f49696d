"""``--remote-builder``: what the builder container needs to hand its builds to remote Nix machines.

Read here, on the user's machine: the SSH key (``--remote-key``, else the agent, else ``~/.ssh/id_*``)
and each remote's host key (``--remote-host-key``, else the user's ``~/.ssh/known_hosts``). Given to the
builder without an image layer, a log or argv holding the key: the key file and the SSH client's
settings are unpacked into the (auto-removed, never committed) container's ``/root/.ssh`` with mode
0600, or the agent's socket is bound into it; the host key travels in the machines line's base64 field.

Then, before the build, each remote is tried the way Nix will use it (``nix store ping`` over the same
URI, key and host key): a wrong host key, an unreachable host, a refused key and a remote without Nix
each end the run there, as one line with a hint.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from devnix import bootstrap as core
from devnix import builders, engine, sshkeys
from devnix.bootstrap import RemoteBuilderError
from devnix.builders import Machine, RemoteUri
from devnix.commands.bootstrap.steps import Handle
from devnix.errors import FileSystemError, UsageError
from devnix.sshkeys import PublicKey

KEY_IN_CONTAINER = f"{core.SSH_DIR}/devnix-remote-key"
AGENT_IN_CONTAINER = "/run/devnix-ssh-agent.sock"
DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
_SYSTEM_RE = re.compile(r"^[a-z0-9_]+-[a-z0-9]+$")
_FEATURE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # Nix's system features: kvm, big-parallel…
CONNECT_TIMEOUT = 20  # seconds: an unreachable host fails the run in that time, not TCP's minutes


@dataclass(frozen=True)
class KeySource:
    """How the builder authenticates: a key ``file`` (its bytes go into the container) or the ``agent``."""

    kind: str
    path: str
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Remote:
    given: RemoteUri
    nix_uri: str  # what Nix gets: the URI itself, or an SSH alias carrying the port
    alias: str | None
    systems: tuple[str, ...]
    host_key: PublicKey | None  # None until a scan finds the key of ``fingerprint``
    fingerprint: str
    host_key_from: str  # "known_hosts" or "--remote-host-key"
    features: tuple[str, ...] = ()  # the system features it supports (a derivation may require some)

    def machine(self, key: KeySource) -> Machine:
        if self.host_key is None:
            raise RemoteBuilderError(f"no host key pinned for {self.given}", kind="host-key")
        return Machine(
            uri=self.nix_uri,
            systems=self.systems,
            ssh_key=KEY_IN_CONTAINER if key.kind == "file" else None,
            supported_features=self.features,
            public_host_key=builders.host_key_field(self.host_key.text),
        )


@dataclass(frozen=True)
class RemotePlan:
    remotes: tuple[Remote, ...]
    key: KeySource
    network: str | None

    def shown(self, nix_uri: str) -> str:
        """The user's URI for the one Nix names (Nix knows a remote with a port by its alias)."""
        for remote in self.remotes:
            if remote.nix_uri == nix_uri:
                return str(remote.given)
        return nix_uri

    def machines_text(self) -> str:
        return "".join(r.machine(self.key).line + "\n" for r in self.remotes)

    @property
    def env(self) -> dict[str, str]:
        """For the processes Nix starts ssh from: where the agent is, when there is one."""
        return {"SSH_AUTH_SOCK": AGENT_IN_CONTAINER} if self.key.kind == "agent" else {}

    @property
    def binds(self) -> dict[str, str]:
        return {self.key.path: AGENT_IN_CONTAINER} if self.key.kind == "agent" else {}


# --- on the user's machine -------------------------------------------------------------------------


def prepare(
    uris: tuple[str, ...],
    target_system: str,
    *,
    system: str | None = None,
    features: str | None = None,
    key: str | None = None,
    host_keys: tuple[str, ...] = (),
    network: str | None = None,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> RemotePlan:
    """Check the options and read the key and host keys, before anything starts."""
    environ = os.environ if environ is None else environ
    home = home if home is not None else Path(environ.get("HOME") or Path.home())
    parsed = [builders.parse_uri(uri) for uri in uris]
    if host_keys and len(host_keys) != len(parsed):
        raise UsageError(
            f"{len(host_keys)} --remote-host-key for {len(parsed)} --remote-builder",
            hint="give one host key per remote builder, in the same order (or none: ~/.ssh/known_hosts)",
        )
    systems = _systems(system or target_system)
    supported = _features(features or "")
    known = _read_known_hosts(home) if len(host_keys) < len(parsed) else ""
    remotes = []
    for index, uri in enumerate(parsed):
        pinned, fingerprint, source = _host_key(uri, host_keys[index] if host_keys else None, known)
        alias = f"devnix-remote-{index}" if uri.port is not None else None
        nix_uri = str(replace(uri, host=alias, port=None)) if alias else str(uri)
        remotes.append(Remote(uri, nix_uri, alias, systems, pinned, fingerprint, source, supported))
    return RemotePlan(tuple(remotes), _key_source(key, home, environ), network)


def _systems(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in values if not _SYSTEM_RE.match(v)]
    if not values or bad:
        raise UsageError(
            f"--remote-system {text!r} is not a list of Nix systems",
            hint="e.g. --remote-system aarch64-linux",
        )
    return values


def _features(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in values if not _FEATURE_RE.match(v)]
    if bad:
        raise UsageError(
            f"--remote-features {text!r} is not a list of Nix system features",
            hint="e.g. --remote-features kvm,big-parallel",
        )
    return values


def _read_known_hosts(home: Path) -> str:
    path = home / ".ssh" / "known_hosts"
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    except OSError as error:
        raise FileSystemError(f"cannot read {path}: {error.strerror}") from None


def _host_key(uri: RemoteUri, given: str | None, known_hosts: str) -> tuple[PublicKey | None, str, str]:
    """(the key to pin, its fingerprint, where it came from); a fingerprint alone pins after a scan."""
    if given is not None:
        if sshkeys.is_fingerprint(given.strip().rstrip("=")) or given.strip().startswith("SHA256:"):
            return None, sshkeys.parse_fingerprint(given), "--remote-host-key"
        try:
            key = sshkeys.parse_public_key(given)
        except UsageError as error:
            raise UsageError(f"--remote-host-key {error.message}", hint=error.hint) from None
        return key, key.fingerprint, "--remote-host-key"
    found = sshkeys.known_keys(known_hosts, uri.bare_host, uri.port)
    best = sshkeys.preferred(found.trusted)
    name = sshkeys.known_host_name(uri.bare_host, uri.port)
    if best is None:
        revoked = " (its keys there are @revoked)" if found.revoked else ""
        raise RemoteBuilderError(
            f"no host key for {name} in ~/.ssh/known_hosts{revoked}: "
            "devnix never accepts an unknown host key",
            hint="check the remote's key out of band, then pass --remote-host-key 'ssh-ed25519 AAAA…' "
            f"(or its SHA256:… fingerprint), or add it to ~/.ssh/known_hosts (`ssh {name}` once asks)",
            kind="host-key",
        )
    return best, best.fingerprint, "known_hosts"


def _key_source(key: str | None, home: Path, environ: Mapping[str, str]) -> KeySource:
    if key is not None:
        return _key_file(Path(key).expanduser())
    agent = environ.get("SSH_AUTH_SOCK")
    if agent and Path(agent).is_socket():
        return KeySource("agent", agent)
    for name in DEFAULT_KEYS:
        path = home / ".ssh" / name
        if path.is_file():
            return _key_file(path)
    raise UsageError(
        "no SSH key for the remote builders: no agent (SSH_AUTH_SOCK) and no ~/.ssh/id_ed25519, id_ecdsa "
        "or id_rsa",
        hint="pass --remote-key PATH (a key without a passphrase), or start ssh-agent and ssh-add one",
    )


def _key_file(path: Path) -> KeySource:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileSystemError(f"the SSH key {path} does not exist", hint="pass --remote-key PATH") from None
    except OSError as error:
        raise FileSystemError(f"cannot read the SSH key {path}: {error.strerror}") from None
    problem = sshkeys.private_key_problem(data.decode(errors="replace"))
    if problem:
        raise UsageError(
            f"the SSH key {path} cannot be used: {problem}",
            hint="give a private key without a passphrase, or load it into ssh-agent (SSH_AUTH_SOCK)",
        )
    return KeySource("file", str(path), data)


def described(plan: RemotePlan) -> tuple[dict[str, Any], ...]:
    """The remotes for the result: address, systems, the host key's fingerprint and where it came
    from, how the builder authenticates, and the machines line Nix got (public parts only)."""
    return tuple(
        {
            "uri": str(r.given),
            "systems": list(r.systems),
            "features": list(r.features),
            "host_key": r.fingerprint,
            "host_key_from": r.host_key_from,
            "key": plan.key.kind,
            "machine": r.machine(plan.key).line,
        }
        for r in plan.remotes
    )


# --- in the builder container ----------------------------------------------------------------------


def ssh_config(plan: RemotePlan) -> str:
    """The builder's ``~/.ssh/config``: never ask (no terminal there), never accept an unknown key,
    give up on a silent host; an alias per remote with a port (Nix's URIs carry none)."""
    lines = []
    for remote in plan.remotes:
        if remote.alias:
            lines += [
                f"Host {remote.alias}",
                f"  HostName {remote.given.bare_host}",
                f"  Port {remote.given.port}",
                # Nix writes the host key under the name in its URI: the alias.
                f"  HostKeyAlias {remote.alias}",
            ]
    lines += [
        "Host *",
        "  BatchMode yes",
        "  StrictHostKeyChecking yes",
        "  UpdateHostKeys no",
        f"  ConnectTimeout {CONNECT_TIMEOUT}",
        "  ServerAliveInterval 30",
    ]
    return "\n".join(lines) + "\n"


def _tar(files: dict[str, tuple[bytes, int]], folders: dict[str, int]) -> bytes:
    """A tar of root-owned files and folders with their modes (built in memory: a few KB)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        now = int(time.time())
        for name, mode in folders.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, now
            archive.addfile(info)
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, now
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def install(container: str, plan: RemotePlan) -> None:
    """The key and the SSH settings into the builder's /root/.ssh (0700, files 0600)."""
    files = {".ssh/config": (ssh_config(plan).encode(), 0o600)}
    if plan.key.kind == "file":
        files[".ssh/" + KEY_IN_CONTAINER.rsplit("/", 1)[1]] = (plan.key.data, 0o600)
    engine.put_archive(container, core.SSH_DIR.rsplit("/", 1)[0], iter([_tar(files, {".ssh": 0o700})]))


def check(container: str, plan: RemotePlan, builder_image: str, step: Handle) -> RemotePlan:
    """Pin every host key, write the machines file, and try each remote as Nix will; the pinned plan."""
    code, _, _ = engine.exec_output(container, ["sh", "-c", "command -v ssh"])
    if code != 0:
        raise RemoteBuilderError(
            f"the builder image {builder_image} has no SSH client",
            hint="use a Nix image with OpenSSH in it (nixos/nix has one) as --builder-image",
            kind="no-ssh",
        )
    pinned = RemotePlan(tuple(_pin(container, r) for r in plan.remotes), plan.key, plan.network)
    machines = pinned.machines_text().encode()
    engine.put_archive(container, "/", iter([_tar({core.MACHINES_FILE.lstrip("/"): (machines, 0o644)}, {})]))
    for remote in pinned.remotes:
        step.log(f"trying {remote.given} ({remote.fingerprint} from {remote.host_key_from})")
        _ping(container, pinned, remote)
    return pinned


def _pin(container: str, remote: Remote) -> Remote:
    """A remote known by fingerprint only: the host key it offers, if (and only if) it has that print."""
    if remote.host_key is not None:
        return remote
    host, port = remote.given.bare_host, str(remote.given.port or 22)
    command = ["ssh-keyscan", "-T", str(CONNECT_TIMEOUT), "-p", port, host]
    _, out, err = engine.exec_output(container, command)
    offered = sshkeys.scanned_keys(out.decode(errors="replace"))
    if not offered:
        said = err.decode(errors="replace").strip().splitlines()
        raise RemoteBuilderError(
            f"cannot reach {remote.given}: no SSH host key answered"
            + (f" ({said[-1]})" if said and not said[-1].startswith("#") else ""),
            hint=_HINTS["unreachable"],
            kind="unreachable",
        )
    for key in offered:
        if key.fingerprint == remote.fingerprint:
            return replace(remote, host_key=key)
    prints = ", ".join(sorted({k.fingerprint for k in offered}))
    raise RemoteBuilderError(
        f"the host key of {remote.given} is not {remote.fingerprint} (it offers {prints})",
        hint=_HINTS["host-key"],
        kind="host-key",
    )


_HINTS = {
    "host-key": "if the remote was reinstalled, check its new key out of band and update ~/.ssh/known_hosts "
    "or --remote-host-key; otherwise something else answers at that address",
    "unreachable": "is the host up, and on a network the builder container joins? for a Docker network pass "
    "--builder-network NAME",
    "refused-key": "add the public key to ~/.ssh/authorized_keys of that user on the remote, or pass "
    "--remote-key with the key it accepts",
    "no-nix": "install Nix on the remote, on the PATH of non-interactive SSH logins (or name it in the URI: "
    "?remote-program=/nix/var/nix/profiles/default/bin/nix-daemon)",
    "other": "try `nix store ping --store URI` by hand from a machine with the same key",
}

_SAID = {
    "host-key": "its host key is not the one pinned ({fingerprint}, from {source})",
    "unreachable": "the host cannot be reached",
    "refused-key": "it refused the SSH key ({key})",
    "no-nix": "it answers SSH but has no Nix",
    "other": "the connection failed",
}


def _ping(container: str, plan: RemotePlan, remote: Remote) -> None:
    machine = remote.machine(plan.key)
    parameters = [f"base64-ssh-public-host-key={quote(machine.public_host_key or '', safe='')}"]
    if machine.ssh_key:
        parameters.append(f"ssh-key={quote(machine.ssh_key, safe='/')}")
    store = remote.nix_uri + ("&" if "?" in remote.nix_uri else "?") + "&".join(parameters)
    code, out, err = engine.exec_output(
        container,
        ["nix", "--extra-experimental-features", "nix-command", "store", "ping", "--store", store],
        env=plan.env,
    )
    if code == 0:
        return
    text = (out + err).decode(errors="replace")
    kind = builders.connection_problem(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    key = f"{plan.key.path}" if plan.key.kind == "file" else f"the agent's keys, {plan.key.path}"
    said = _SAID[kind].format(fingerprint=remote.fingerprint, source=remote.host_key_from, key=key)
    # ssh's own line says what the network said ("Could not resolve hostname …", "Connection refused").
    said_by_ssh = [line for line in lines if line.startswith("ssh:")]
    if kind == "unreachable" and said_by_ssh:
        detail = f" ({said_by_ssh[-1]})"
    else:
        detail = f": {lines[-1]}" if kind == "other" and lines else ""
    raise RemoteBuilderError(
        f"cannot build on {remote.given}: {said}{detail}",
        hint=_HINTS[kind],
        kind=kind,
    )
