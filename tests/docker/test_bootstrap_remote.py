"""``devnix bootstrap --remote-builder`` on the real engine: the build runs on a remote Nix over SSH.

The remote is the stand-in of ``remote_standin`` (arm64 Debian with Nix and sshd, under QEMU here: the
protocol is the one a native arm64 server or nix-darwin's linux-builder speaks) on a user-defined Docker
network; the builder is the amd64 Nix stand-in, joined to that network with ``--builder-network``. The
key and the host key come from a ``$HOME`` of the test's own, as from a user's ``~/.ssh``.

Evidence that the build ran there: Nix announces each derivation "on 'ssh-ng://…'", the output is valid
in the remote's store, and nothing was built in the builder (``max-jobs = 0``). Then the loaded image is
checked as the local bootstrap's is: arm64, and its Nix says aarch64-linux.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import bootstrap_flake
import pytest
import remote_standin
from remote_standin import REMOTE_ARM64, KeyPair, Remote
from standins import BASE_ENV, NIX_ARM64, EnvironmentMissing, ensure_standins, run
from test_bootstrap import BUILDER, LABEL, OFFLINE, Run
from test_bootstrap import bootstrap as run_bootstrap

from devnix import engine
from tests.support import skip_or_fail


def bootstrap(*args: str, home: Path, timeout: float = 2400) -> Run:
    env = dict(BASE_ENV)
    env["HOME"] = str(home)
    env.pop("SSH_AUTH_SOCK", None)  # the key comes from $HOME/.ssh, not from whoever runs the tests
    return run_bootstrap(*args, env=env, timeout=timeout)


def user_home(folder: Path, known_hosts: str, key: KeyPair | None) -> Path:
    """A ``$HOME`` whose ``~/.ssh`` holds this known_hosts text and, as ``id_ed25519``, this key."""
    ssh = folder / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "known_hosts").write_text(known_hosts)
    if key is not None:
        (ssh / "id_ed25519").write_bytes(key.private.read_bytes())
        (ssh / "id_ed25519").chmod(0o600)
    return folder


def leftovers(tag: str, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = engine.containers_with_label(f"{LABEL}={tag}") + engine.containers_with_label(
            f"{LABEL}=verify"
        )
        if not found or time.monotonic() > deadline:
            return [str(c.get("Id"))[:12] for c in found]
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def remote_image(standin_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The remote stand-in in the engine (built once per recipe, ~7 min of mmdebstrap under QEMU)."""
    workdir = tmp_path_factory.mktemp("remote-standin")
    try:
        ensure_standins([REMOTE_ARM64], workdir, BASE_ENV)
    except EnvironmentMissing as err:
        skip_or_fail(f"cannot build the remote builder stand-in: {err}")
    return REMOTE_ARM64.cache_ref


@pytest.fixture(scope="session")
def network(remote_image: str) -> Iterator[str]:
    name = remote_standin.create_network(BASE_ENV)
    yield name
    remote_standin.remove_network(name, BASE_ENV)


@pytest.fixture(scope="session")
def remote(network: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    started = remote_standin.start_remote(network, tmp_path_factory.mktemp("remote-keys"), BASE_ENV)
    yield started
    remote_standin.stop_remote(started.container, BASE_ENV)


@pytest.fixture(scope="session")
def store_volume() -> Iterator[str]:
    name = f"devnix-test-store-{secrets.token_hex(4)}"
    yield name
    run(["docker", "volume", "rm", "-f", name], env=BASE_ENV, check=False)


@pytest.fixture(scope="session")
def image_flake(standin_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return bootstrap_flake.make_flake(tmp_path_factory.mktemp("flakes") / "image", BASE_ENV)
    except EnvironmentMissing as err:
        skip_or_fail(str(err))
        raise


@pytest.fixture(scope="session")
def small_flake(standin_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return bootstrap_flake.make_small_flake(tmp_path_factory.mktemp("flakes") / "small", BASE_ENV)
    except EnvironmentMissing as err:
        skip_or_fail(str(err))
        raise


def _base(flake: str, tag: str, network: str, store_volume: str) -> list[str]:
    return [
        "--flake", flake,
        "--system", "aarch64-linux",
        "--builder-image", BUILDER,
        "--builder-network", network,
        "--tag", tag,
        "--store-volume", store_volume,
        *OFFLINE,
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------------
# The build runs on the remote


def test_bootstrap_builds_on_the_remote_builder(
    remote: Remote, network: str, image_flake: Path, store_volume: str, tmp_path: Path
) -> None:
    home = user_home(tmp_path / "home", f"{remote.name} {remote.host_key.public_key}\n", remote.client_key)
    tag = "devnix-test-bootstrap/remote:arm64"
    try:
        result = bootstrap(
            *_base(f"{image_flake}#image", tag, network, store_volume),
            "--remote-builder", remote.uri,
            "--remote-system", "aarch64-linux",
            "--json",
            home=home,
        )  # fmt: skip
        assert result.code == 0, result.stderr
        data = result.json()
        assert data["built"] is True and data["loaded"] is True
        assert data["built_on"] == [remote.uri]
        assert data["builder"]["network"] == network
        assert data["builder"]["nix_settings"]["max-jobs"] == "0"
        [described] = data["remote_builders"]
        assert described["uri"] == remote.uri and described["systems"] == ["aarch64-linux"]
        assert (
            described["host_key"] == remote.host_key.fingerprint
            and described["host_key_from"] == "known_hosts"
        )
        assert described["key"] == "file"
        assert [s["step"] for s in data["steps"]][:5] == ["builder", "store", "start", "remote", "copy"]

        # Nix handed every derivation to the remote: each one it announces, it announces "on" it (the
        # remote's own log, relayed over ssh-ng, names the same derivations without "on").
        announced = re.findall(r"building '(/nix/store/[^']+\.drv)'( on '[^']+')?", result.stderr)
        remote_drvs = {drv for drv, on in announced if on == f" on '{remote.uri}'"}
        assert any(d.endswith("-nix-image-layer.drv") for d in remote_drvs), result.stderr
        assert any(d.endswith("-docker-image-nix.tar.gz.drv") for d in remote_drvs), result.stderr
        assert {drv for drv, _ in announced} == remote_drvs, "something was built in the builder itself"
        # The output is valid in the remote's own store: it was built there.
        valid = remote.exec("nix-store", "--check-validity", data["out_path"], env=BASE_ENV)
        assert valid.returncode == 0, valid.stderr

        # The key went into the builder's /root/.ssh, never into what devnix printed.
        secret = remote.client_key.private.read_text().splitlines()[1]
        assert secret not in result.stdout + result.stderr

        # The image is the one the local bootstrap makes: arm64, and its Nix runs as aarch64-linux.
        details = engine.image_details(tag)
        assert details is not None and details["Architecture"] == "arm64"
        said = run(
            ["docker", "run", "--rm", tag, "nix", "--extra-experimental-features", "nix-command",
             "eval", "--impure", "--raw", "--expr", "builtins.currentSystem"],
            env=BASE_ENV,
        )  # fmt: skip
        assert said.stdout.strip() == "aarch64-linux"
        assert leftovers(tag) == []
    finally:
        run(["docker", "image", "rm", tag], env=BASE_ENV, check=False)


# ------------------------------------------------------------------------------------------------
# Failures: one line, a hint, nothing left behind


def _fails(result: Run, tag: str, said: str) -> None:
    assert result.code == 9, result.stderr
    assert len(result.errors) == 1 and said in result.errors[0], result.stderr
    assert "hint:" in result.stderr
    assert "[nix build]" not in result.stderr  # it ended before the build
    assert leftovers(tag) == []
    assert engine.image_details(tag) is None


def test_a_wrong_host_key_in_known_hosts_is_refused(
    remote: Remote, network: str, small_flake: Path, store_volume: str, tmp_path: Path
) -> None:
    impostor = remote_standin.keypair(tmp_path / "keys", "impostor")
    home = user_home(tmp_path / "home", f"{remote.name} {impostor.public_key}\n", remote.client_key)
    tag = "devnix-test-bootstrap/remote-host-key:x"
    result = bootstrap(
        *_base(f"{small_flake}#hello", tag, network, store_volume), "--remote-builder", remote.uri, home=home
    )
    _fails(result, tag, f"its host key is not the one pinned ({impostor.fingerprint}, from known_hosts)")


def test_a_fingerprint_that_does_not_match_is_refused(
    remote: Remote, network: str, small_flake: Path, store_volume: str, tmp_path: Path
) -> None:
    impostor = remote_standin.keypair(tmp_path / "keys", "impostor")
    home = user_home(tmp_path / "home", "", remote.client_key)
    tag = "devnix-test-bootstrap/remote-fingerprint:x"
    result = bootstrap(
        *_base(f"{small_flake}#hello", tag, network, store_volume),
        "--remote-builder", remote.uri,
        "--remote-host-key", impostor.fingerprint,
        home=home,
    )  # fmt: skip
    _fails(result, tag, f"is not {impostor.fingerprint} (it offers {remote.host_key.fingerprint})")


def test_an_unreachable_host_is_one_line(
    remote: Remote, network: str, small_flake: Path, store_volume: str, tmp_path: Path
) -> None:
    home = user_home(
        tmp_path / "home", f"devnix-test-nowhere {remote.host_key.public_key}\n", remote.client_key
    )
    tag = "devnix-test-bootstrap/remote-unreachable:x"
    result = bootstrap(
        *_base(f"{small_flake}#hello", tag, network, store_volume),
        "--remote-builder", "ssh-ng://root@devnix-test-nowhere",
        home=home,
    )  # fmt: skip
    _fails(result, tag, "ssh-ng://root@devnix-test-nowhere: the host cannot be reached")
    assert "--builder-network" in result.stderr


def test_a_refused_key_is_one_line(
    remote: Remote, network: str, small_flake: Path, store_volume: str, tmp_path: Path
) -> None:
    stranger = remote_standin.keypair(tmp_path / "keys", "stranger")
    home = user_home(tmp_path / "home", f"{remote.name} {remote.host_key.public_key}\n", None)
    tag = "devnix-test-bootstrap/remote-refused:x"
    result = bootstrap(
        *_base(f"{small_flake}#hello", tag, network, store_volume),
        "--remote-builder", remote.uri,
        "--remote-key", str(stranger.private),
        home=home,
    )  # fmt: skip
    _fails(result, tag, f"it refused the SSH key ({stranger.private})")
    assert stranger.private.read_text().splitlines()[1] not in result.stdout + result.stderr


def test_a_remote_without_nix_is_one_line(
    network: str, small_flake: Path, store_volume: str, tmp_path: Path
) -> None:
    """Also the fingerprint path: the host key is pinned from what the remote offers, by its print."""
    bare = remote_standin.start_remote(network, tmp_path / "keys", BASE_ENV, without_nix=True)
    try:
        home = user_home(tmp_path / "home", "", bare.client_key)
        tag = "devnix-test-bootstrap/remote-no-nix:x"
        result = bootstrap(
            *_base(f"{small_flake}#hello", tag, network, store_volume),
            "--remote-builder", bare.uri,
            "--remote-host-key", bare.host_key.fingerprint,
            home=home,
        )  # fmt: skip
        _fails(result, tag, f"cannot build on {bare.uri}: it answers SSH but has no Nix")
    finally:
        remote_standin.stop_remote(bare.container, BASE_ENV)


def test_a_builder_image_without_an_ssh_client_is_one_line(
    remote: Remote, network: str, small_flake: Path, tmp_path: Path
) -> None:
    """The arm64 Nix stand-in has no SSH client (only the amd64 builder stand-in got one)."""
    home = user_home(tmp_path / "home", f"{remote.name} {remote.host_key.public_key}\n", remote.client_key)
    tag = "devnix-test-bootstrap/remote-no-ssh:x"
    volume = f"devnix-test-store-{secrets.token_hex(4)}"
    args = _base(f"{small_flake}#hello", tag, network, volume)
    args[args.index(BUILDER)] = NIX_ARM64.cache_ref
    try:
        result = bootstrap(
            *args, "--builder-platform", "linux/arm64", "--remote-builder", remote.uri, home=home
        )
        _fails(result, tag, f"the builder image {NIX_ARM64.cache_ref} has no SSH client")
    finally:
        run(["docker", "volume", "rm", "-f", volume], env=BASE_ENV, check=False)


def test_the_users_ssh_agent_is_used_when_there_is_no_key_file(
    remote: Remote, network: str, small_flake: Path, store_volume: str, tmp_path: Path
) -> None:
    """No --remote-key and no ~/.ssh/id_*: the agent holds the key, and its socket (never the key) goes
    into the builder. The build of a plain output runs on the remote; it then fails as not an image."""
    home = user_home(tmp_path / "home", f"{remote.name} {remote.host_key.public_key}\n", None)
    socket = tmp_path / "agent.sock"
    started = run(["ssh-agent", "-a", str(socket), "-s"], env=BASE_ENV, timeout=30).stdout
    agent_pid = re.search(r"SSH_AGENT_PID=(\d+)", started)
    assert agent_pid is not None, started
    try:
        agent_env = {**BASE_ENV, "SSH_AUTH_SOCK": str(socket), "HOME": str(home)}
        run(["ssh-add", str(remote.client_key.private)], env=agent_env, timeout=30)
        tag = "devnix-test-bootstrap/remote-agent:x"
        result = run_bootstrap(
            *_base(f"{small_flake}#hello", tag, network, store_volume), "--remote-builder", remote.uri,
            env=agent_env,
        )  # fmt: skip
        assert f"-hello.drv' on '{remote.uri}'" in result.stderr, result.stderr[-3000:]
        assert result.code not in (0, 9), result.stderr[-3000:]  # past the remote check, then not an image
        assert leftovers(tag) == [] and engine.image_details(tag) is None
    finally:
        run(["kill", agent_pid.group(1)], env=BASE_ENV, check=False)


# ------------------------------------------------------------------------------------------------
# doctor: the host's configured remote builders


def test_doctor_tries_the_hosts_remote_builders_as_nix_would(
    remote: Remote, tmp_path: Path, isolated_user_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A nix-darwin-style machines file on this host names the remote (by its address on the docker
    network, which the host reaches) with its key and pinned host key: doctor's ssh gets Nix's answer;
    with another host key pinned, ssh refuses and doctor says why."""
    from typer.testing import CliRunner

    from devnix.builders import host_key_field
    from devnix.cli import app

    each_address = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    address = run(
        ["docker", "inspect", "-f", each_address, remote.container], env=BASE_ENV, timeout=60
    ).stdout.strip()
    conf = isolated_user_dirs / "nix-conf"  # NIX_CONF_DIR (tests/conftest.py)
    machines = conf / "machines"
    (conf / "nix.conf").write_text(f"builders = @{machines}\n")
    project = tmp_path / "project"
    project.mkdir()

    def builders_of(host_key: str) -> tuple[dict[str, object], dict[str, object]]:
        machines.write_text(
            f"ssh-ng://root@{address} aarch64-linux {remote.client_key.private} 2 1 - - "
            f"{host_key_field(host_key)}\n"
        )
        result = CliRunner().invoke(app, ["doctor", str(project), "--json"])
        report = json.loads(result.stdout)
        (found,) = report["builders"]
        check = next(c for c in report["checks"] if c["id"] == "nix.builders")
        return found, check

    found, check = builders_of(remote.host_key.public_key)
    assert found["answered"] is True and found["detail"] == "nix-store (Nix) 2.8.0", found
    assert (found["source"], found["systems"]) == (str(machines), ["aarch64-linux"])
    assert check["status"] == "ok", check

    found, check = builders_of(remote.client_key.public_key)  # not the host's key
    assert found["answered"] is False and found["problem"] == "host-key", found
    assert check["status"] == "warn" and check["hint"].startswith("its host key is not the one"), check
