"""A remote Nix builder for ``devnix bootstrap --remote-builder`` tests: sshd beside Nix, arm64.

What an arm64 build server (or nix-darwin's ``linux-builder``) is to the issue, built the way the other
stand-ins are: Debian bookworm's ``nix-bin`` (Nix 2.8) and ``openssh-server`` made by mmdebstrap for
arm64 (QEMU binfmt here), cached in the engine by recipe hash. At start (not in the image, so that every
test gets keys of its own) a container gets:

- a host key generated for it, and one authorized client key, both made with ``ssh-keygen`` here;
- Nix for root, single-user: ``filter-syscalls = false`` (it runs under QEMU, which cannot load Nix's
  seccomp filter), no sandbox and no build users (an unprivileged container);
- a name on a user-defined Docker network, where the builder container reaches it by that name.

``without_nix=True`` removes Nix's programs from the container: a host that answers SSH but has no Nix.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from standins import StandinRecipe, run

REMOTE_ARM64 = StandinRecipe(
    "nix-remote", "arm64", ("nix-bin", "openssh-server", "ca-certificates"), registry_tag="arm64"
)

NIX_CONF = (
    "experimental-features = nix-command\nfilter-syscalls = false\nsandbox = false\nbuild-users-group =\n"
    "substituters =\n"  # offline, as every test machine here
)

# Runs as the container's main process: Nix's settings, sshd's state folder, then sshd in the
# foreground, logging to stderr (`docker logs` shows refused keys and the like).
START = r"""
set -e
mkdir -p /etc/nix /run/sshd /root/.ssh
printf '%s' "$NIX_CONF" > /etc/nix/nix.conf
chmod 700 /root/.ssh && chmod 600 /root/.ssh/authorized_keys /etc/ssh/devnix_host_ed25519_key
if [ "$WITHOUT_NIX" = 1 ]; then rm -f /usr/bin/nix /usr/bin/nix-*; fi
exec /usr/sbin/sshd -D -e -h /etc/ssh/devnix_host_ed25519_key -o PasswordAuthentication=no
"""


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public_line: str  # "ssh-ed25519 AAAA... comment"

    @property
    def public_key(self) -> str:
        """The key without its comment: "ssh-ed25519 AAAA..."."""
        return " ".join(self.public_line.split()[:2])

    @property
    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint, as ``ssh-keygen -lf`` prints it."""
        blob = base64.b64decode(self.public_line.split()[1])
        return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def keypair(folder: Path, name: str) -> KeyPair:
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / name
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"devnix-test-{name}", "-f", str(private)])
    return KeyPair(private, (folder / f"{name}.pub").read_text().strip())


@dataclass(frozen=True)
class Remote:
    container: str
    name: str  # its name on the network (what goes into ssh-ng://root@NAME)
    network: str
    host_key: KeyPair
    client_key: KeyPair  # the one key root's authorized_keys holds

    @property
    def uri(self) -> str:
        return f"ssh-ng://root@{self.name}"

    def exec(
        self, *command: str, env: Mapping[str, str], check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return run(["docker", "exec", self.container, *command], env=env, check=check, timeout=300)


def create_network(env: Mapping[str, str]) -> str:
    name = f"devnix-test-remote-{secrets.token_hex(4)}"
    run(["docker", "network", "create", "--label", "org.devnix.test=remote", name], env=env, timeout=60)
    return name


def remove_network(name: str, env: Mapping[str, str]) -> None:
    run(["docker", "network", "rm", name], env=env, check=False, timeout=60)


def start_remote(
    network: str, keys: Path, env: Mapping[str, str], *, name: str | None = None, without_nix: bool = False
) -> Remote:
    """Start a remote builder on ``network`` (created by :func:`create_network`); wait for its sshd."""
    name = name or f"devnix-test-remote-{secrets.token_hex(3)}"
    host_key = keypair(keys / name, "host_ed25519")
    client_key = keypair(keys / name, "client_ed25519")
    container = run(
        ["docker", "create", "--platform", REMOTE_ARM64.platform, "--name", name,
         "--network", network, "--network-alias", name, "--label", "org.devnix.test=remote",
         "-e", f"NIX_CONF={NIX_CONF}", "-e", f"WITHOUT_NIX={int(without_nix)}",
         REMOTE_ARM64.cache_ref, "sh", "-c", START],
        env=env,
        timeout=120,
    ).stdout.strip()  # fmt: skip
    try:
        dot_ssh = keys / name / "dot-ssh"  # becomes /root/.ssh (docker cp makes a missing folder)
        dot_ssh.mkdir()
        (dot_ssh / "authorized_keys").write_text(client_key.public_line + "\n")
        for source, target in (
            (host_key.private, "/etc/ssh/devnix_host_ed25519_key"),
            (dot_ssh, "/root/.ssh"),
        ):
            run(["docker", "cp", str(source), f"{container}:{target}"], env=env, timeout=120)
        run(["docker", "start", container], env=env, timeout=120)
        remote = Remote(container, name, network, host_key, client_key)
        _wait_for_sshd(remote, env)
    except BaseException:
        stop_remote(container, env)
        raise
    return remote


_SSHD_LISTENING = ":0016 00000000:0000 0A"


def _wait_for_sshd(remote: Remote, env: Mapping[str, str], attempts: int = 120) -> None:
    # sshd under QEMU takes a moment; it is up once something listens on port 22 (ss is not in the
    # image: /proc/net/tcp lists listening sockets as state 0A, port 22 as :0016).
    import time

    for _ in range(attempts):
        listening = remote.exec("sh", "-c", f"grep -q '{_SSHD_LISTENING}' /proc/net/tcp*", env=env)
        if listening.returncode == 0:
            return
        time.sleep(0.5)
    logs = run(["docker", "logs", remote.container], env=env, check=False).stderr
    raise RuntimeError(f"sshd in {remote.name} did not start:\n{logs[-2000:]}")


def stop_remote(container: str, env: Mapping[str, str]) -> None:
    run(["docker", "rm", "-f", container], env=env, check=False, timeout=120)
