"""Pure: OpenSSH's public keys, fingerprints and ``known_hosts`` text (read, never written).

What ``bootstrap --remote-builder`` needs to pin a remote's host key without asking anyone: the key a
user's ``known_hosts`` already trusts for a host (``host`` or ``[host]:port`` entries, wildcards,
negations, hashed ``|1|`` names; ``@revoked`` keys refused, ``@cert-authority`` lines skipped), or the
one key of a host whose fingerprint the user gave. Never "accept any": no key, no connection.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from devnix.errors import UsageError

# The key types OpenSSH offers, best first: when known_hosts has several for a host, Nix gets one, and
# ssh asks the server for the types it knows a key of.
KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
)
_FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


@dataclass(frozen=True)
class PublicKey:
    """One public key: ``type`` and the base64 ``blob`` as they appear in a ``.pub`` or known_hosts line."""

    type: str
    blob: str

    @property
    def text(self) -> str:
        return f"{self.type} {self.blob}"

    @property
    def fingerprint(self) -> str:
        """``SHA256:…``, as ``ssh-keygen -l`` and ssh's own messages show it."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_public_key(text: str) -> PublicKey:
    """``TYPE BASE64 [comment]`` (a ``.pub`` file's line); the blob must decode and name the same type."""
    parts = text.strip().split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise UsageError(
            f"{_shown(text)} is not an SSH public key",
            hint="give the host's key as `ssh-ed25519 AAAA…` (its /etc/ssh/ssh_host_ed25519_key.pub) "
            "or its fingerprint SHA256:…",
        )
    key_type, blob = parts[0], parts[1]
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"the {key_type} key {_shown(blob)} is not valid base64") from None
    # The blob starts with its own type (a 4-byte length, then the name): a truncated paste shows here.
    named = raw[4 : 4 + int.from_bytes(raw[:4], "big")] if len(raw) >= 4 else b""
    if named.decode(errors="replace") not in (key_type, "ssh-rsa"):
        raise UsageError(f"the {key_type} key {_shown(blob)} is damaged (its data names another type)")
    return PublicKey(key_type, blob)


def is_fingerprint(text: str) -> bool:
    return bool(_FINGERPRINT_RE.match(text.strip()))


def parse_fingerprint(text: str) -> str:
    value = text.strip()
    if value.startswith("SHA256:") and len(value) == len("SHA256:") + 44 and value.endswith("="):
        value = value[:-1]  # some tools print the base64 padding
    if not is_fingerprint(value):
        raise UsageError(
            f"{_shown(text)} is neither an SSH public key nor a SHA256 fingerprint",
            hint="`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the remote prints SHA256:…",
        )
    return value


def _shown(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= 40 else text[:37] + "...")


def known_host_name(host: str, port: int | None) -> str:
    """How known_hosts names a host: ``host``, or ``[host]:port`` off the default port."""
    return host if port in (None, 22) else f"[{host}]:{port}"


def _matches_pattern(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        try:
            _, _, salt, digest = pattern.split("|")
            expected = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(expected, base64.b64decode(digest))
        except (ValueError, binascii.Error):
            return False
    # OpenSSH's patterns know only `*` and `?` (fnmatch would read `[host]:port` as a character class).
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(regex, name.lower()) is not None


def _matches(patterns: str, name: str) -> bool:
    """known_hosts' host list: comma-separated patterns, a ``!`` negation wins over any match."""
    matched = False
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            if _matches_pattern(pattern[1:], name):
                return False
        elif _matches_pattern(pattern, name):
            matched = True
    return matched


@dataclass(frozen=True)
class KnownKeys:
    """What known_hosts says of one host: the keys it trusts, and keys it marks revoked."""

    trusted: tuple[PublicKey, ...]
    revoked: tuple[PublicKey, ...]


def known_keys(known_hosts: str, host: str, port: int | None = None) -> KnownKeys:
    name = known_host_name(host, port)
    trusted: list[PublicKey] = []
    revoked: list[PublicKey] = []
    for raw in known_hosts.splitlines():
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if len(fields) < 3 or fields[1] not in KEY_TYPES or marker == "@cert-authority":
            continue  # a CA signs host certificates; Nix's host key field cannot carry one
        if not _matches(fields[0], name):
            continue
        key = PublicKey(fields[1], fields[2])
        (revoked if marker == "@revoked" else trusted).append(key)
    revoked_blobs = {k.blob for k in revoked}
    return KnownKeys(tuple(k for k in trusted if k.blob not in revoked_blobs), tuple(revoked))


def preferred(keys: tuple[PublicKey, ...] | list[PublicKey]) -> PublicKey | None:
    """The key to pin when there are several: the strongest type OpenSSH negotiates first."""
    ranked = sorted(keys, key=lambda k: KEY_TYPES.index(k.type) if k.type in KEY_TYPES else len(KEY_TYPES))
    return ranked[0] if ranked else None


def scanned_keys(keyscan_output: str) -> list[PublicKey]:
    """``ssh-keyscan``'s lines (``host TYPE BASE64``; comments on stderr) as keys."""
    keys = []
    for line in keyscan_output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not fields[0].startswith("#") and fields[1] in KEY_TYPES:
            keys.append(PublicKey(fields[1], fields[2]))
    return keys


def private_key_problem(text: str) -> str | None:
    """Why a private key file cannot be used by a Nix that runs unattended (None when it can)."""
    body = "".join(line.strip() for line in text.splitlines() if line and not line.startswith("-----"))
    if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
        return "it is not a private key (a .pub file?)"
    if "ENCRYPTED" in text:
        return "it is protected by a passphrase, which nobody can type in the builder"
    if "BEGIN OPENSSH PRIVATE KEY" in text:
        try:
            raw = base64.b64decode(body)
        except (binascii.Error, ValueError):
            return "it is damaged (not base64)"
        magic = b"openssh-key-v1\x00"
        if not raw.startswith(magic):
            return "it is damaged (not an OpenSSH key)"
        size = int.from_bytes(raw[len(magic) : len(magic) + 4], "big")
        cipher = raw[len(magic) + 4 : len(magic) + 4 + size]
        if cipher != b"none":
            return "it is protected by a passphrase, which nobody can type in the builder"
    return None
