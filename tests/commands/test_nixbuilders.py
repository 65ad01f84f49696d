"""The host's remote builders as doctor finds and tries them: real nix.conf and machines files in a
private NIX_CONF_DIR, and the real ssh client against loopback ports (a closed one, and a server that
is not ssh). The answering builder (sshd and Nix in an arm64 container) is tests/docker's."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnix import builders, doctor
from devnix.commands import nixbuilders
from devnix.commands.nixbuilders import host_builders, nix_conf_files
from devnix.doctor import RemoteBuilder, Status

pytestmark = pytest.mark.skipif(nixbuilders.shutil.which("ssh") is None, reason="no ssh client here")

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.fixture
def conf_dir(isolated_user_dirs: Path) -> Path:
    return isolated_user_dirs / "nix-conf"  # NIX_CONF_DIR (tests/conftest.py)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def not_ssh() -> Iterator[int]:
    """A loopback server that greets like a web server: ssh gives up on its banner."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            with client:
                client.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield int(server.getsockname()[1])
    server.close()


def test_no_nix_conf_means_no_nix_here(conf_dir: Path) -> None:
    assert nix_conf_files() == []
    assert host_builders() is None


def test_nix_without_remote_builders_has_none(conf_dir: Path) -> None:
    (conf_dir / "nix.conf").write_text(f"builders = @{conf_dir / 'machines'}\n")
    assert host_builders() == ()


def test_the_users_nix_conf_comes_after_the_systems(conf_dir: Path, isolated_user_dirs: Path) -> None:
    (conf_dir / "nix.conf").write_text("builders =\n")
    user = isolated_user_dirs / ".config" / "nix" / "nix.conf"
    user.parent.mkdir(parents=True)
    user.write_text("max-jobs = 0\n")
    assert nix_conf_files() == [conf_dir / "nix.conf", user]


def test_each_builder_is_tried_over_ssh_and_says_why_it_does_not_answer(conf_dir: Path, not_ssh: int) -> None:
    closed = closed_port()
    machines = conf_dir / "machines"
    machines.write_text(
        "# nix-darwin writes lines like these\n"
        f"ssh-ng://builder@127.0.0.1:{closed} aarch64-linux /nonexistent/key 4 1 kvm - "
        f"{builders.host_key_field(HOST_KEY)}\n"
    )
    (conf_dir / "nix.conf").write_text(
        f"builders = @{machines}\nextra-builders = ssh://nobody@127.0.0.1:{not_ssh} x86_64-linux\n"
    )
    found = host_builders(timeout=3)
    assert found is not None and len(found) == 2
    closed_one, http_one = found
    assert closed_one.uri == f"ssh-ng://builder@127.0.0.1:{closed}"
    assert (closed_one.systems, closed_one.source) == (("aarch64-linux",), str(machines))
    assert closed_one.answered is False and closed_one.problem == "unreachable", closed_one
    assert "Connection refused" in closed_one.detail
    assert http_one.source == str(conf_dir / "nix.conf")
    assert http_one.answered is False and http_one.problem == "other", http_one

    report = doctor.report(_facts(found))
    check = next(c for c in report.checks if c.id == "nix.builders")
    assert check.status is Status.WARN
    assert check.message.startswith(
        f"ssh-ng://builder@127.0.0.1:{closed} (aarch64-linux; {machines}) does not"
    )
    assert check.hint is not None and check.hint.startswith("nothing answers at that address")
    assert [b["uri"] for b in report.to_json()["builders"]] == [b.uri for b in found]


def test_an_entry_devnix_cannot_read_is_reported_not_raised(conf_dir: Path) -> None:
    (conf_dir / "nix.conf").write_text("builders = ssh://host x86_64-linux - many\n")
    found = host_builders(timeout=1)
    assert found is not None and len(found) == 1
    assert found[0].answered is None
    assert "bad max-jobs 'many'" in found[0].detail


def test_all_answering_is_ok_and_says_each_nix() -> None:
    answering = (
        RemoteBuilder(
            "ssh-ng://b@arm", ("aarch64-linux",), "/etc/nix/machines", True, "nix-store (Nix) 2.8.0"
        ),
    )
    check = next(c for c in doctor.report(_facts(answering)).checks if c.id == "nix.builders")
    assert (check.status, check.hint) == (Status.OK, None)
    assert check.message == (
        "remote builders answer: ssh-ng://b@arm (aarch64-linux; /etc/nix/machines): nix-store (Nix) 2.8.0"
    )


def _facts(found: tuple[RemoteBuilder, ...]) -> doctor.Facts:
    from tests.test_doctor import facts_of

    return facts_of("dockerd-debian", builders=found)
