"""``bootstrap --remote-builder`` without an engine: Nix's machines syntax, OpenSSH's keys and
known_hosts, and what devnix reads on the user's machine before anything starts."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devnix import bootstrap as core
from devnix import builders, sshkeys
from devnix.bootstrap import RemoteBuilderError
from devnix.cli import app
from devnix.commands.bootstrap import remote
from devnix.errors import FileSystemError, UsageError
from devnix.platforms import Platform

# Made with ssh-keygen for these tests (nothing trusts them); fingerprints as `ssh-keygen -lf` printed.
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG75zEyO07Eb7zHbhG1l730nsS8Elv6xrhC/JaDE+1pn"
ED25519_PRINT = "SHA256:PAMjDEPLVL7bHEddhxkY1xNzkURofNXvdhIwMNXPhD4"
ECDSA = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFtU+/pa/8vdb/2sj20vGhjMaDvJ"
    "WUSCkKd1JGqCLfEfLihproeqjuwTTf4aQ5GTRG1cJ3VOXVbeQI0vJqWjoz0="
)
ECDSA_PRINT = "SHA256:iXcu1d9fwawF8tIa27XIjIM/6I1GdFI9zKBVlOdulVU"
# `ssh-keygen -H` of "builder.example.org ED25519".
HASHED = "|1|F2wFD9Xg6Adn0zSID7dN8DsVS+8=|Y5gxKNBPe3XABrOunkbo2q4y6C8= " + ED25519
PRIVATE = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBu+cxMjtOxG+8x24RtZe99J7EvBJb+sa4QvyWgxPtaZwAAAIhd4U4tXeFO
LQAAAAtzc2gtZWQyNTUxOQAAACBu+cxMjtOxG+8x24RtZe99J7EvBJb+sa4QvyWgxPtaZw
AAAEANA1UQZ1YnEMHkQojdTA9UPiQR86jMar0woQLS7Vn1Om75zEyO07Eb7zHbhG1l730n
sS8Elv6xrhC/JaDE+1pnAAAABHRlc3QB
-----END OPENSSH PRIVATE KEY-----
"""
ENCRYPTED = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABDjT6fF2/
XbXVj4Ic8Aw1CvAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIEudRUH9I4NfrB3+
gOqeW2856A/xSlvSd8ormc0NPkx8AAAAkL6GcXSXTSK3ppgkhdp1pm2zdvlt4gcEuqGo3h
HkIpLtIR2HydN7sI/pI8spOSKIS40zG/iaDImZlnH2p00x9rl3tleUh4oCUlqkVxjHGE5X
LefoBYEVLGoNNAsFlJ2q841TfrZZ1KDd34cnoPs+MjiCciIiv1XsirRlgd20qZMVAPX3tf
nlrmOo3z9+yTtLRQ==
-----END OPENSSH PRIVATE KEY-----
"""
AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")


# --- Nix's builders syntax -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ssh-ng://root@builder", builders.RemoteUri("ssh-ng", "builder", "root")),
        ("ssh://builder.example.org", builders.RemoteUri("ssh", "builder.example.org")),
        ("ssh-ng://nix@10.0.0.5:2222", builders.RemoteUri("ssh-ng", "10.0.0.5", "nix", 2222)),
        ("ssh-ng://root@[fd00::5]:22", builders.RemoteUri("ssh-ng", "[fd00::5]", "root", 22)),
        (
            "ssh-ng://me@mac?remote-program=/nix/var/nix/profiles/default/bin/nix-daemon",
            builders.RemoteUri(
                "ssh-ng", "mac", "me", None, "remote-program=/nix/var/nix/profiles/default/bin/nix-daemon"
            ),
        ),
    ],
)
def test_remote_uris_nix_builds_over(text: str, expected: builders.RemoteUri) -> None:
    parsed = builders.parse_uri(text)
    assert parsed == expected
    assert str(parsed) == text


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("root@builder", "not an ssh:// or ssh-ng:// address"),
        ("http://builder", "not an ssh:// or ssh-ng:// address"),
        ("ssh-ng://root@builder:99999", "bad port"),
        ("ssh-ng://root@builder:ssh", "bad port"),
        ("ssh-ng://root@", "no usable host name"),
        ("ssh-ng://root@bui lder", "no usable host name"),
        ("ssh-ng://ro;ot@builder", "bad user name"),
        ("ssh-ng://root@builder?ssh-key=/k", "sets ssh-key itself"),
    ],
)
def test_bad_remote_uris_are_one_line(text: str, said: str) -> None:
    with pytest.raises(UsageError) as caught:
        builders.parse_uri(text)
    assert said in caught.value.message and caught.value.hint


def test_a_machine_line_has_nix_s_eight_fields_and_reads_back() -> None:
    machine = builders.Machine(
        uri="ssh-ng://root@builder",
        systems=("aarch64-linux",),
        ssh_key="/root/.ssh/devnix-remote-key",
        public_host_key=builders.host_key_field(ED25519),
    )
    fields = machine.line.split(" ")
    assert len(fields) == 8
    assert fields[:7] == [
        "ssh-ng://root@builder",
        "aarch64-linux",
        "/root/.ssh/devnix-remote-key",
        "1",
        "1",
        "-",
        "-",
    ]
    # The host key field is what `base64 -w0 ssh_host_ed25519_key.pub` gives: one word, no breaks.
    assert base64.b64decode(fields[7]).decode() == ED25519 + "\n"
    assert builders.parse_machine(machine.line) == machine
    assert machine.host_key_text == ED25519


def test_configured_builders_read_nix_conf_and_the_machines_file() -> None:
    machines = (
        "# the linux-builder\n"
        "ssh-ng://builder@linux-builder aarch64-linux /etc/nix/builder_ed25519 4 1 kvm - c3No\n"
    )
    # Unset: Nix's default is @/etc/nix/machines.
    assert [m.uri for m in builders.configured_builders("sandbox = true\n", machines)] == [
        "ssh-ng://builder@linux-builder"
    ]
    found = builders.configured_builders("sandbox = true\n", machines)[0]
    assert found.max_jobs == 4 and found.supported_features == ("kvm",) and found.public_host_key == "c3No"
    conf = "builders = ssh://a x86_64-linux ; @/etc/nix/machines\nextra-builders = ssh-ng://b aarch64-linux\n"
    assert [m.uri for m in builders.configured_builders(conf, machines)] == [
        "ssh://a",
        "ssh-ng://builder@linux-builder",
        "ssh-ng://b",
    ]
    assert builders.configured_builders("builders =\n", machines) == []
    assert builders.configured_builders("", None) == []
    assert builders.machines_files("builders = @/etc/nix/other ; ssh://a\n") == ["/etc/nix/other"]
    assert builders.machines_files("") == ["/etc/nix/machines"]
    with pytest.raises(UsageError):
        builders.configured_builders("builders = ssh://a x86_64-linux - many\n", None)


def test_where_nix_says_it_built() -> None:
    log = [
        "copying path '/nix/store/aaa-source' to 'ssh-ng://root@remote'...",
        "building '/nix/store/bbb-layer.drv' on 'ssh-ng://root@remote'...",
        "building '/nix/store/ccc-image.drv' on 'ssh://nix@other'...",
        "building '/nix/store/ddd-local.drv'...",
        # An ssh-ng remote's own log, relayed: the same derivation, built there.
        "building '/nix/store/bbb-layer.drv'...",
    ]
    assert builders.built_on(log) == {
        "/nix/store/bbb-layer.drv": "ssh-ng://root@remote",
        "/nix/store/ccc-image.drv": "ssh://nix@other",
    }
    assert builders.local_builds(log) == ["/nix/store/ddd-local.drv"]


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        ("Host key verification failed.\nerror: cannot connect to 'x'", "host-key"),
        ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@", "host-key"),
        ("root@remote: Permission denied (publickey).\nerror: cannot connect", "refused-key"),
        ("ssh: Could not resolve hostname nowhere: Name or service not known", "unreachable"),
        ("ssh: connect to host remote port 22: Connection refused", "unreachable"),
        ("ssh: connect to host 10.9.9.9 port 22: Connection timed out", "unreachable"),
        ("sh: 1: nix-daemon: not found\nerror: unexpected end-of-file", "no-nix"),
        ("bash: nix-store: command not found", "no-nix"),
        ("error: protocol mismatch", "other"),
    ],
)
def test_connection_failures_are_told_apart(output: str, kind: str) -> None:
    assert builders.connection_problem(output) == kind


# --- OpenSSH keys and known_hosts ----------------------------------------------------------------


def test_fingerprints_match_ssh_keygen() -> None:
    assert sshkeys.parse_public_key(ED25519 + " comment").fingerprint == ED25519_PRINT
    assert sshkeys.parse_public_key(ECDSA).fingerprint == ECDSA_PRINT
    assert sshkeys.parse_fingerprint(ED25519_PRINT + "=") == ED25519_PRINT


@pytest.mark.parametrize(
    "text",
    [
        "ssh-ed25519",
        "ssh-dss AAAAB3NzaC1kc3M=",
        "ssh-ed25519 not-base64!",
        ECDSA.replace("ecdsa-sha2-nistp256", "ssh-ed25519"),
    ],
)
def test_bad_public_keys_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        sshkeys.parse_public_key(text)


def test_known_hosts_lookup_follows_openssh() -> None:
    known = "\n".join(
        [
            "# comment",
            f"other.example.org {ECDSA}",
            f"*.example.org,!bad.example.org {ECDSA}",
            f"[builder.example.org]:2222 {ED25519}",
            HASHED,
            f"@cert-authority *.example.org {ED25519}",
        ]
    )
    on_22 = sshkeys.known_keys(known, "builder.example.org")
    assert {k.fingerprint for k in on_22.trusted} == {ECDSA_PRINT, ED25519_PRINT}  # wildcard + hashed
    assert sshkeys.preferred(list(on_22.trusted)) == sshkeys.parse_public_key(ED25519)
    on_2222 = sshkeys.known_keys(known, "builder.example.org", 2222)
    assert [k.fingerprint for k in on_2222.trusted] == [ED25519_PRINT]
    assert sshkeys.known_keys(known, "bad.example.org").trusted == ()  # negated
    assert sshkeys.known_keys(known, "elsewhere.net").trusted == ()
    revoked = sshkeys.known_keys(f"builder {ED25519}\n@revoked * {ED25519}\n", "builder")
    assert revoked.trusted == () and len(revoked.revoked) == 1


def test_keyscan_output_is_read() -> None:
    scan = f"# remote:22 SSH-2.0-OpenSSH_9.2p1\nremote {ED25519}\nremote {ECDSA}\n"
    assert [k.fingerprint for k in sshkeys.scanned_keys(scan)] == [ED25519_PRINT, ECDSA_PRINT]


def test_private_keys_nobody_can_unlock_are_refused() -> None:
    assert sshkeys.private_key_problem(PRIVATE) is None
    assert "passphrase" in (sshkeys.private_key_problem(ENCRYPTED) or "")
    assert "passphrase" in (
        sshkeys.private_key_problem("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n") or ""
    )
    assert "not a private key" in (sshkeys.private_key_problem(ED25519) or "")


# --- what bootstrap reads on the user's machine ---------------------------------------------------


def _home(tmp_path: Path, known_hosts: str = "", key: str | None = PRIVATE) -> Path:
    ssh = tmp_path / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "known_hosts").write_text(known_hosts)
    if key is not None:
        (ssh / "id_ed25519").write_text(key)
    return tmp_path


def test_the_host_key_comes_from_known_hosts_and_the_key_from_id_files(tmp_path: Path) -> None:
    home = _home(tmp_path, f"builder {ED25519}\n[builder]:2222 {ECDSA}\n")
    plan = remote.prepare(
        ("ssh-ng://root@builder", "ssh://root@builder:2222"), "aarch64-linux", home=home, environ={}
    )
    first, second = plan.remotes
    assert first.fingerprint == ED25519_PRINT and first.host_key_from == "known_hosts"
    assert first.nix_uri == "ssh-ng://root@builder" and first.systems == ("aarch64-linux",)
    # A port goes through an SSH alias: Nix's URIs have no port, and its host key file names the alias.
    assert second.fingerprint == ECDSA_PRINT and second.nix_uri == "ssh://root@devnix-remote-1"
    assert plan.key.kind == "file" and plan.key.path == str(home / ".ssh" / "id_ed25519")
    config = remote.ssh_config(plan)
    assert "Host devnix-remote-1\n  HostName builder\n  Port 2222\n  HostKeyAlias devnix-remote-1" in config
    assert "StrictHostKeyChecking yes" in config and "BatchMode yes" in config
    assert plan.shown("ssh://root@devnix-remote-1") == "ssh://root@builder:2222"
    lines = plan.machines_text().splitlines()
    assert lines[0].startswith("ssh-ng://root@builder aarch64-linux /root/.ssh/devnix-remote-key 1 1 - - ")
    featured = remote.prepare(
        ("ssh-ng://root@builder",), "aarch64-linux", features="kvm, big-parallel", home=home, environ={}
    )
    assert featured.machines_text().startswith(
        "ssh-ng://root@builder aarch64-linux /root/.ssh/devnix-remote-key 1 1 kvm,big-parallel - "
    )
    with pytest.raises(UsageError, match="--remote-features 'kvm big' is not a list of Nix system features"):
        remote.prepare(("ssh-ng://root@builder",), "aarch64-linux", features="kvm big", home=home, environ={})
    # The key's bytes are for the container, never for a line, a log or the result.
    assert PRIVATE.split("\n")[1] not in repr(plan) + plan.machines_text() + str(remote.described(plan))


def test_an_unknown_host_is_never_accepted(tmp_path: Path) -> None:
    home = _home(tmp_path, f"other {ED25519}\n")
    with pytest.raises(RemoteBuilderError) as caught:
        remote.prepare(("ssh-ng://root@builder",), "aarch64-linux", home=home, environ={})
    assert caught.value.kind == "host-key" and "--remote-host-key" in (caught.value.hint or "")
    assert "no host key for builder in ~/.ssh/known_hosts" in caught.value.message


def test_a_given_host_key_or_fingerprint_wins(tmp_path: Path) -> None:
    home = _home(tmp_path)
    plan = remote.prepare(
        ("ssh-ng://root@a", "ssh-ng://root@b"),
        "aarch64-linux",
        host_keys=(ECDSA + " root@a", ED25519_PRINT),
        system="aarch64-linux,x86_64-linux",
        home=home,
        environ={},
    )
    a, b = plan.remotes
    assert a.host_key is not None and a.fingerprint == ECDSA_PRINT and a.host_key_from == "--remote-host-key"
    assert b.host_key is None and b.fingerprint == ED25519_PRINT  # pinned after a scan in the builder
    assert a.systems == ("aarch64-linux", "x86_64-linux")
    with pytest.raises(UsageError, match="1 --remote-host-key for 2 --remote-builder"):
        remote.prepare(
            ("ssh-ng://a", "ssh-ng://b"), "aarch64-linux", host_keys=(ED25519,), home=home, environ={}
        )
    with pytest.raises(UsageError, match="neither an SSH public key nor a SHA256 fingerprint"):
        remote.prepare(("ssh-ng://a",), "aarch64-linux", host_keys=("SHA256:short",), home=home, environ={})


def test_the_key_is_the_given_file_then_the_agent_then_id_files(tmp_path: Path) -> None:
    home = _home(tmp_path, f"builder {ED25519}\n")
    agent_path = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX) as agent:
        agent.bind(str(agent_path))
        plan = remote.prepare(
            ("ssh-ng://root@builder",), "aarch64-linux", home=home, environ={"SSH_AUTH_SOCK": str(agent_path)}
        )
        assert plan.key.kind == "agent" and plan.binds == {str(agent_path): remote.AGENT_IN_CONTAINER}
        assert plan.env == {"SSH_AUTH_SOCK": remote.AGENT_IN_CONTAINER}
        assert plan.remotes[0].machine(plan.key).ssh_key is None
        given = tmp_path / "builder-key"
        given.write_text(PRIVATE)
        plan = remote.prepare(
            ("ssh-ng://root@builder",), "aarch64-linux", key=str(given), home=home,
            environ={"SSH_AUTH_SOCK": str(agent_path)},
        )  # fmt: skip
        assert plan.key.kind == "file" and plan.key.path == str(given) and plan.binds == {}


@pytest.mark.parametrize(
    ("key_text", "error", "said"),
    [
        (None, FileSystemError, "does not exist"),
        (ENCRYPTED, UsageError, "passphrase"),
        (ED25519, UsageError, "not a private key"),
    ],
)
def test_unusable_keys_are_one_line(tmp_path: Path, key_text: str | None, error: type, said: str) -> None:
    home = _home(tmp_path, f"builder {ED25519}\n", key=None)
    key = tmp_path / "key"
    if key_text is not None:
        key.write_text(key_text)
    with pytest.raises(error, match=said):
        remote.prepare(("ssh-ng://root@builder",), "aarch64-linux", key=str(key), home=home, environ={})


def test_no_key_at_all_says_what_to_do(tmp_path: Path) -> None:
    home = _home(tmp_path, f"builder {ED25519}\n", key=None)
    with pytest.raises(UsageError) as caught:
        remote.prepare(("ssh-ng://root@builder",), "aarch64-linux", home=home, environ={})
    assert "--remote-key" in (caught.value.hint or "")


def test_remote_builders_turn_local_builds_off() -> None:
    nix = core.builder_nix(AMD64, AMD64, "aarch64-linux", remote=True)
    assert nix.as_dict()["max-jobs"] == "0"
    assert nix.as_dict()["builders"] == f"@{core.MACHINES_FILE}"
    assert "max-jobs" not in core.builder_nix(AMD64, AMD64, "aarch64-linux").as_dict()
    keys = [s.key for s in core.plan_steps(local_flake=True, push=False, remote=True)]
    assert keys[:5] == ["builder", "store", "start", "remote", "copy"]


def test_remote_options_without_a_remote_builder_are_refused_before_the_engine() -> None:
    result = CliRunner().invoke(app, ["bootstrap", "--remote-key", "/k"])
    assert result.exit_code == UsageError.exit_code
    assert "--remote-key without --remote-builder" in result.output


def test_the_summary_says_where_the_build_ran() -> None:
    from devnix.present import bootstrap as present
    from tests.test_present import bootstrap_result

    described = {
        "uri": "ssh-ng://root@builder",
        "systems": ["aarch64-linux"],
        "host_key": ED25519_PRINT,
        "host_key_from": "known_hosts",
        "key": "agent",
        "machine": "ssh-ng://root@builder aarch64-linux - 1 1 - - c3No",
    }
    lines = present.describe(
        bootstrap_result(remote_builders=(described,), built_on=("ssh-ng://root@builder",))
    ).splitlines()
    assert (
        f"remote:  ssh-ng://root@builder (aarch64-linux; host key {ED25519_PRINT} from known_hosts; "
        "signed in with the SSH agent)"
    ) in lines
    assert "built on: ssh-ng://root@builder" in lines
    warm = present.describe(bootstrap_result(remote_builders=(described,), built=False)).splitlines()
    assert "built on: nothing to build (the store had it)" in warm
    assert not any(
        line.startswith(("remote:", "built on:"))
        for line in present.describe(bootstrap_result()).splitlines()
    )
    data = bootstrap_result(remote_builders=(described,), built_on=("ssh-ng://root@builder",)).to_json()
    assert data["built_on"] == ["ssh-ng://root@builder"] and data["remote_builders"] == [described]
