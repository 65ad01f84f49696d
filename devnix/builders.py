"""Pure: Nix's remote builders, as the ``builders`` setting and the ``machines`` file write them.

One machine per line (or per ``;`` inside nix.conf's one-line ``builders``), fields separated by spaces,
``-`` for "the default" (Nix manual, "Remote Builds"):

    URI  SYSTEMS  SSH-KEY  MAX-JOBS  SPEED-FACTOR  SUPPORTED-FEATURES  MANDATORY-FEATURES  HOST-KEY

``URI`` is ``ssh://[user@]host`` (``nix-store --serve`` on the remote) or ``ssh-ng://[user@]host`` (the
daemon protocol); ``SYSTEMS`` and the features are comma-separated; ``HOST-KEY`` is the base64 of the
remote's public host key line (``base64 -w0 /etc/ssh/ssh_host_ed25519_key.pub``): Nix hands ssh a
known_hosts file with just that key. An entry ``@FILE`` reads more machines from a file (the default
``builders`` is ``@/etc/nix/machines``).

:func:`configured_builders` reads what a nix.conf and its machines file configure (for ``doctor``);
:func:`built_on` reads where Nix says it built each derivation.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from devnix import nixconf
from devnix.errors import UsageError

SCHEMES = ("ssh", "ssh-ng")
DEFAULT_MACHINES_FILE = "/etc/nix/machines"
# Store settings devnix sets itself from --remote-key / --remote-host-key; in the URI they would fight.
_OWN_PARAMETERS = ("ssh-key", "base64-ssh-public-host-key")
_HOST_RE = re.compile(r"^[A-Za-z0-9._-]+$|^\[[0-9A-Fa-f:.]+\]$")
_USER_RE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class RemoteUri:
    """A remote builder's address: ``scheme://[user@]host[:port][?params]``."""

    scheme: str
    host: str
    user: str | None = None
    port: int | None = None
    query: str = ""

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{user}{self.host}{port}{query}"

    @property
    def bare_host(self) -> str:
        """The host without IPv6 brackets, as ssh takes it."""
        return self.host[1:-1] if self.host.startswith("[") else self.host


def parse_uri(text: str) -> RemoteUri:
    """Read ``--remote-builder``: an ssh or ssh-ng URI (the ones Nix builds over)."""
    given = text.strip()
    scheme, sep, rest = given.partition("://")
    if not sep or scheme not in SCHEMES:
        raise UsageError(
            f"--remote-builder {given!r} is not an ssh:// or ssh-ng:// address",
            hint="e.g. --remote-builder ssh-ng://root@builder.example.org (Nix's `builders` syntax)",
        )
    authority, _, query = rest.partition("?")
    user: str | None = None
    if "@" in authority:
        user, _, authority = authority.rpartition("@")
        if not _USER_RE.match(user):
            raise UsageError(
                f"--remote-builder {given!r} has a bad user name {user!r}", hint="e.g. ssh-ng://root@HOST"
            )
    port: int | None = None
    host = authority
    port_text = ""
    if authority.startswith("["):
        host, _, tail = authority.partition("]")
        host += "]"
        port_text = tail.removeprefix(":") if tail.startswith(":") else tail
        if tail and not tail.startswith(":"):
            port_text = "x"  # garbage after the bracket
    elif ":" in authority:
        host, _, port_text = authority.partition(":")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(
                f"--remote-builder {given!r} has a bad port {port_text!r}",
                hint="e.g. ssh-ng://root@HOST:2222",
            )
        port = int(port_text)
    if not host or not _HOST_RE.match(host):
        raise UsageError(
            f"--remote-builder {given!r} has no usable host name",
            hint="e.g. ssh-ng://root@builder.example.org or ssh-ng://root@10.0.0.5:2222",
        )
    for parameter in query.split("&") if query else ():
        if parameter.partition("=")[0] in _OWN_PARAMETERS:
            raise UsageError(
                f"--remote-builder {given!r} sets {parameter.partition('=')[0]} itself",
                hint="pass the key with --remote-key and the host key with --remote-host-key",
            )
    return RemoteUri(scheme, host, user, port, query)


@dataclass(frozen=True)
class Machine:
    """One remote builder, as a line of the machines file."""

    uri: str
    systems: tuple[str, ...] = ()
    ssh_key: str | None = None
    max_jobs: int = 1
    speed_factor: int = 1
    supported_features: tuple[str, ...] = ()
    mandatory_features: tuple[str, ...] = ()
    public_host_key: str | None = None  # base64 of "TYPE BLOB", as Nix reads it

    @property
    def line(self) -> str:
        def field(values: Iterable[str]) -> str:
            return ",".join(values) or "-"

        return " ".join(
            [
                self.uri,
                field(self.systems),
                self.ssh_key or "-",
                str(self.max_jobs),
                str(self.speed_factor),
                field(self.supported_features),
                field(self.mandatory_features),
                self.public_host_key or "-",
            ]
        )

    @property
    def host_key_text(self) -> str | None:
        """The host key the base64 field holds (``TYPE BLOB``), or None when absent or unreadable."""
        if not self.public_host_key:
            return None
        try:
            return base64.b64decode(self.public_host_key, validate=True).decode().strip()
        except (binascii.Error, ValueError):
            return None


def host_key_field(public_key_text: str) -> str:
    """The HOST-KEY field for a key line (``TYPE BLOB``): base64 without line breaks."""
    return base64.b64encode((public_key_text.strip() + "\n").encode()).decode()


def builders_value(machines: Iterable[Machine]) -> str:
    """nix.conf's ``builders`` for these machines: one line, entries separated by ``;``."""
    return " ; ".join(m.line for m in machines)


def _int_field(value: str, default: int, name: str, line: str) -> int:
    if value in ("", "-"):
        return default
    if not value.isdigit():
        raise UsageError(f"the builders entry {line!r} has a bad {name} {value!r}")
    return int(value)


def parse_machine(line: str) -> Machine:
    fields = line.split()
    fields += [""] * (8 - len(fields))

    def listed(value: str) -> tuple[str, ...]:
        return () if value in ("", "-") else tuple(v for v in value.split(",") if v)

    return Machine(
        uri=fields[0],
        systems=listed(fields[1]),
        ssh_key=None if fields[2] in ("", "-") else fields[2],
        max_jobs=_int_field(fields[3], 1, "max-jobs", line),
        speed_factor=_int_field(fields[4], 1, "speed factor", line),
        supported_features=listed(fields[5]),
        mandatory_features=listed(fields[6]),
        public_host_key=None if fields[7] in ("", "-") else fields[7],
    )


def entries(text: str) -> list[str]:
    """The entries of a ``builders`` value or a machines file: lines and ``;``-separated parts,
    comments and blanks dropped (``@FILE`` entries kept, for the caller to read)."""
    found = []
    for raw in text.splitlines():
        for part in raw.split("#", 1)[0].split(";"):
            if part.strip():
                found.append(part.strip())
    return found


def parse_machines(text: str) -> list[Machine]:
    """Every machine of a machines file (``@FILE`` includes are not followed: the text is all there is)."""
    return [parse_machine(entry) for entry in entries(text) if not entry.startswith("@")]


def configured_builders(nix_conf_text: str, machines_text: str | None) -> list[Machine]:
    """The remote builders a nix.conf configures, with the text of the machines file it names.

    ``builders`` (later lines win) and ``extra-builders`` (appended) as Nix reads them; unset, the
    default ``@/etc/nix/machines``. Each ``@FILE`` entry stands for ``machines_text`` (the caller reads
    the file the entry names: see :func:`machines_files`); ``None`` means there is no such file.
    """
    machines: list[Machine] = []
    for entry in builder_entries(nix_conf_text):
        if entry.startswith("@"):
            machines.extend(parse_machines(machines_text or ""))
        else:
            machines.append(parse_machine(entry))
    return machines


def machines_files(nix_conf_text: str) -> list[str]:
    """The files a nix.conf's ``builders`` names with ``@FILE`` (the default: /etc/nix/machines)."""
    return [entry[1:].strip() for entry in builder_entries(nix_conf_text) if entry.startswith("@")]


def builder_entries(nix_conf_text: str) -> list[str]:
    """A nix.conf's builder entries in Nix's order: ``builders`` (unset: ``@/etc/nix/machines``), then
    ``extra-builders``; ``@FILE`` entries are left for the caller to read."""
    values = nixconf.parse(nix_conf_text)
    base = values.get("builders", f"@{DEFAULT_MACHINES_FILE}")
    return entries(base) + entries(values.get("extra-builders", ""))


# Nix's own words for a build it hands to a remote: "building '/nix/store/…drv' on 'ssh-ng://…'".
_BUILT_ON_RE = re.compile(r"building '(/nix/store/[^']+)' on '([^']+)'")


def built_on(log_lines: Iterable[str]) -> dict[str, str]:
    """Each derivation Nix built remotely, and the builder it names (as written in ``builders``)."""
    found: dict[str, str] = {}
    for line in log_lines:
        match = _BUILT_ON_RE.search(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def local_builds(log_lines: Iterable[str]) -> list[str]:
    """Derivations Nix built on the machine it runs on: "building '…drv'" with no "on '…'" anywhere.

    An ssh-ng remote's own log comes back too, and it says "building '…drv'" of the very derivation
    the local Nix announced "on '…'": that one is remote.
    """
    lines = list(log_lines)
    remote = built_on(lines)
    found = []
    for line in lines:
        match = re.search(r"building '(/nix/store/[^']+\.drv)'", line)
        if match and match.group(1) not in remote and match.group(1) not in found:
            found.append(match.group(1))
    return found


# What ssh and Nix print when a remote builder cannot be used, by cause. ssh's own messages (OpenSSH
# has said these for decades) come first: a refused key also ends in Nix's "cannot connect".
_PROBLEMS = (
    ("host-key", ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED",
                  "No ED25519 host key is known", "host key for", "Host key for")),
    ("refused-key", ("Permission denied (", "Too many authentication failures")),
    ("unreachable", ("Could not resolve hostname", "Connection refused", "No route to host",
                     "Connection timed out", "Network is unreachable", "Name or service not known",
                     "Temporary failure in name resolution", "Operation timed out")),
    ("no-nix", ("command not found", "nix-daemon: not found", "nix-store: not found",
                "No such file or directory")),
)  # fmt: skip


def connection_problem(output: str) -> str:
    """``host-key``, ``refused-key``, ``unreachable``, ``no-nix`` or ``other`` for a failed connection."""
    for kind, needles in _PROBLEMS:
        if any(needle in output for needle in needles):
            return kind
    return "other"
