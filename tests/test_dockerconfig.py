"""devnix.dockerconfig: the Docker config, contexts and credentials that engine, registry and doctor use."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devnix import dockerconfig, engine
from devnix.commands import doctor as doctor_command
from devnix.dockerconfig import Credentials, DockerConfigError, credentials_for
from devnix.engine.api import LocalSockets
from devnix.errors import EngineError, EngineUnreachableError, UsageError
from devnix.registry import Client
from tests.http_fixtures import Seen, serving


@pytest.fixture
def docker_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    return dockerconfig.config_dir()  # a fresh folder per test (tests/conftest.py)


def write_config(folder: Path, config: Any) -> None:
    (folder / "config.json").write_text(json.dumps(config))


def write_context(folder: Path, name: str, meta: Any) -> Path:
    # The Docker CLI's layout, spelled out here rather than taken from the code under test.
    where = folder / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    where.mkdir(parents=True)
    (where / "meta.json").write_text(json.dumps(meta))
    return where


def context_meta(host: str, name: str = "colima") -> dict[str, Any]:
    return {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}


@pytest.fixture
def sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalSockets]:
    """The well-known socket places, in a fresh folder (short: a unix socket path has at most 107 bytes);
    nothing is bound there until a test binds it. A user's view (rootless Podman first)."""
    monkeypatch.setenv("DEVNIX_ENGINE", "")  # restored afterwards, whatever a test sets
    folder = Path(tempfile.mkdtemp(prefix="dnx", dir="/tmp"))
    (folder / "run-user" / "podman").mkdir(parents=True)
    (folder / "run-podman").mkdir()
    yield LocalSockets(
        docker=str(folder / "docker.sock"),
        podman_rootful=str(folder / "run-podman" / "podman.sock"),
        podman_rootless=str(folder / "run-user" / "podman" / "podman.sock"),
        root=False,
    )
    shutil.rmtree(folder, ignore_errors=True)


def bind(path: str) -> None:
    """A real unix socket file at ``path`` (bound, not listening: discovery never connects)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)


# --- contexts -------------------------------------------------------------------------------------------


def test_the_current_context_gives_the_engine_endpoint(docker_dir: Path) -> None:
    write_config(docker_dir, {"currentContext": "colima"})
    write_context(docker_dir, "colima", context_meta("unix:///home/me/.colima/docker.sock"))
    assert engine.endpoint() == engine.Endpoint("unix:///home/me/.colima/docker.sock", "colima", "context")


def test_docker_context_wins_over_the_config_and_docker_host_over_both(
    docker_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(docker_dir, {"currentContext": "colima"})
    write_context(docker_dir, "colima", context_meta("unix:///colima.sock"))
    write_context(docker_dir, "orbstack", context_meta("unix:///orbstack.sock", "orbstack"))
    monkeypatch.setenv("DOCKER_CONTEXT", "orbstack")
    assert engine.endpoint() == engine.Endpoint("unix:///orbstack.sock", "orbstack", "context")
    assert dockerconfig.selected_context() == dockerconfig.SelectedContext("orbstack", "DOCKER_CONTEXT")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert engine.endpoint() == engine.Endpoint("tcp://127.0.0.1:2375", "orbstack", "DOCKER_HOST")


def test_the_default_context_is_the_default_socket(docker_dir: Path, sockets: LocalSockets) -> None:
    write_config(docker_dir, {"currentContext": "default"})
    bind(sockets.docker)
    assert engine.endpoint(sockets) == engine.Endpoint(f"unix://{sockets.docker}", "default", "default")


@pytest.mark.parametrize(
    "meta",
    [
        None,
        [],
        {"Endpoints": []},
        {"Endpoints": {"docker": "unix:///x"}},
        {"Endpoints": {"docker": {"Host": 5}}},
        {"Endpoints": {"docker": {"Host": ""}}},
    ],
)
def test_a_selected_context_without_a_readable_endpoint_is_one_line(docker_dir: Path, meta: Any) -> None:
    write_config(docker_dir, {"currentContext": "colima"})
    if meta is not None:
        write_context(docker_dir, "colima", meta)
    with pytest.raises(DockerConfigError) as caught:
        engine.endpoint()
    assert isinstance(caught.value, EngineError) and caught.value.exit_code == 5
    assert caught.value.message == "the Docker context 'colima' is selected but has no readable endpoint"
    assert caught.value.hint == "run `docker context use default` or `docker context ls`"


@pytest.mark.parametrize("value", [5, ["a"], {"name": "x"}, True])
def test_a_current_context_that_is_not_a_name_is_one_line(docker_dir: Path, value: Any) -> None:
    write_config(docker_dir, {"currentContext": value})
    with pytest.raises(DockerConfigError) as caught:
        dockerconfig.selected_context()
    assert "currentContext is" in caught.value.message and "not a context name" in caught.value.message


@pytest.mark.parametrize(
    ("text", "problem"),
    [("{not json", "is not JSON"), ("[]", "is not a JSON object"), ('"text"', "is not a JSON object")],
)
def test_a_config_the_cli_could_not_read_gives_no_credentials_and_no_engine_guess(
    docker_dir: Path, text: str, problem: str
) -> None:
    (docker_dir / "config.json").write_text(text)
    assert dockerconfig.load() == {} and credentials_for("reg.example") is None  # anonymous still works
    with pytest.raises(DockerConfigError) as caught:
        engine.endpoint()
    assert caught.value.message.startswith(f"{docker_dir / 'config.json'} {problem}")
    assert caught.value.message.endswith("so devnix cannot tell which Docker context it selects")
    assert caught.value.hint is not None and "DOCKER_HOST" in caught.value.hint


def test_docker_context_needs_no_config(docker_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (docker_dir / "config.json").write_text("{not json")
    write_context(docker_dir, "colima", context_meta("unix:///colima.sock"))
    monkeypatch.setenv("DOCKER_CONTEXT", "colima")
    assert engine.endpoint().host == "unix:///colima.sock"


@pytest.mark.parametrize("kind", ["fifo", "folder", "dangling link"])
def test_a_config_that_is_not_a_file_never_blocks(docker_dir: Path, kind: str) -> None:
    path = docker_dir / "config.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(docker_dir / "nowhere.json")
    answers: list[Any] = []

    def read() -> None:
        try:
            dockerconfig.selected_context()
        except DockerConfigError as error:
            answers.append((dockerconfig.load(), credentials_for("r"), error.message))

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(timeout=5)
    refusal = f"{path} is not a file, so devnix cannot tell which Docker context it selects"
    assert answers == [({}, None, refusal)]


def test_doctor_names_the_context_that_docker_host_overrides(
    docker_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(docker_dir, {"currentContext": "colima"})
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert doctor_command._endpoint().context_also == "colima"
    write_config(docker_dir, {"currentContext": 5})  # DOCKER_HOST decides: no error, nothing to name
    facts = doctor_command._endpoint()
    assert facts.context_also is None and facts.error is None


# --- engine discovery: Docker's rules, then Podman's sockets ----------------------------------------------


def unix(path: str) -> str:
    return f"unix://{path}"


def test_discovery_order_docker_host_context_default_socket_then_podman(
    docker_dir: Path, sockets: LocalSockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = engine.endpoint(sockets)
    # Nothing anywhere: the default socket all the same, so that the error names Docker's usual place.
    assert found == engine.Endpoint(unix(sockets.docker), "default", "default")
    bind(sockets.podman_rootful)
    rootful = engine.Endpoint(unix(sockets.podman_rootful), "default", "podman-rootful")
    assert engine.endpoint(sockets) == rootful
    bind(sockets.podman_rootless)
    assert engine.endpoint(sockets).source == "podman-rootless"  # a user's own Podman before root's
    bind(sockets.docker)
    assert engine.endpoint(sockets) == engine.Endpoint(unix(sockets.docker), "default", "default")
    write_config(docker_dir, {"currentContext": "colima"})
    write_context(docker_dir, "colima", context_meta("unix:///colima.sock"))
    assert engine.endpoint(sockets) == engine.Endpoint("unix:///colima.sock", "colima", "context")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert engine.endpoint(sockets).source == "DOCKER_HOST"


def test_root_takes_roots_podman_and_never_a_users(sockets: LocalSockets, docker_dir: Path) -> None:
    as_root = LocalSockets(sockets.docker, sockets.podman_rootful, sockets.podman_rootless, root=True)
    bind(sockets.podman_rootless)
    assert engine.endpoint(as_root).source == "default"
    bind(sockets.podman_rootful)
    rootful = engine.Endpoint(unix(sockets.podman_rootful), "default", "podman-rootful")
    assert engine.endpoint(as_root) == rootful


@pytest.mark.parametrize("what", ["file", "folder"])
def test_only_a_socket_counts_as_an_engine(sockets: LocalSockets, docker_dir: Path, what: str) -> None:
    if what == "file":
        Path(sockets.docker).write_text("")
    else:
        Path(sockets.docker).mkdir()
    bind(sockets.podman_rootless)
    assert engine.endpoint(sockets).source == "podman-rootless"


def test_engine_podman_follows_podmans_own_container_host(
    docker_dir: Path, sockets: LocalSockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `podman machine` users point CONTAINER_HOST at the VM's socket; DOCKER_HOST may name Docker.
    bind(sockets.docker)
    bind(sockets.podman_rootless)
    machine = docker_dir / "machine.sock"
    monkeypatch.setenv("DOCKER_HOST", unix(sockets.docker))
    monkeypatch.setenv("CONTAINER_HOST", unix(str(machine)))
    assert engine.endpoint(sockets).source == "DOCKER_HOST"  # no choice made: the Docker CLI's rule
    monkeypatch.setenv("DEVNIX_ENGINE", "podman")
    assert engine.endpoint(sockets) == engine.Endpoint(unix(str(machine)), "default", "CONTAINER_HOST")
    monkeypatch.setenv("CONTAINER_HOST", "ftp://machine")
    with pytest.raises(EngineError) as caught:
        engine.endpoint(sockets)
    assert caught.value.message.startswith("CONTAINER_HOST is 'ftp://machine': devnix knows unix://")


def test_the_rootless_socket_is_in_xdg_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1001")
    assert LocalSockets.here().podman_rootless == "/run/user/1001/podman/podman.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert LocalSockets.here().podman_rootless == f"/run/user/{os.getuid()}/podman/podman.sock"
    assert LocalSockets.here().podman_rootful == "/run/podman/podman.sock"


def test_engine_podman_takes_podmans_sockets_only(
    docker_dir: Path, sockets: LocalSockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    bind(sockets.docker)
    monkeypatch.setenv("DOCKER_HOST", unix(sockets.docker))
    monkeypatch.setenv("DEVNIX_ENGINE", "podman")
    # No Podman socket yet: the one podman itself would use, so that the error is about Podman.
    assert engine.endpoint(sockets) == engine.Endpoint(
        unix(sockets.podman_rootless), "default", "podman-rootless"
    )
    as_root = LocalSockets(sockets.docker, sockets.podman_rootful, sockets.podman_rootless, root=True)
    assert engine.endpoint(as_root).source == "podman-rootful"
    bind(sockets.podman_rootful)
    assert engine.endpoint(sockets).source == "podman-rootful"  # the only one there
    bind(sockets.podman_rootless)
    assert engine.endpoint(sockets).source == "podman-rootless"


def test_engine_docker_never_falls_back_on_podman(
    docker_dir: Path, sockets: LocalSockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    bind(sockets.podman_rootless)
    monkeypatch.setenv("DEVNIX_ENGINE", "Docker")
    assert engine.endpoint(sockets) == engine.Endpoint(unix(sockets.docker), "default", "default")
    write_config(docker_dir, {"currentContext": "colima"})
    write_context(docker_dir, "colima", context_meta("unix:///colima.sock"))
    assert engine.endpoint(sockets).source == "context"


def test_an_unknown_engine_name_is_one_line(sockets: LocalSockets, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVNIX_ENGINE", "containerd")
    with pytest.raises(UsageError) as caught:
        engine.endpoint(sockets)
    assert caught.value.message == "DEVNIX_ENGINE is 'containerd': devnix knows the engines docker and podman"
    assert caught.value.hint is not None and "unset it" in caught.value.hint


def test_a_podman_that_refuses_says_how_to_start_it(
    sockets: LocalSockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A socket file that nothing listens on: what a stopped `podman system service` leaves behind.
    bind(sockets.podman_rootless)
    monkeypatch.setenv("DOCKER_HOST", unix(sockets.podman_rootless))
    with pytest.raises(EngineUnreachableError) as caught:
        engine.version()
    assert caught.value.exit_code == 5
    assert caught.value.message == (
        f"the Podman engine at {unix(sockets.podman_rootless)} (from DOCKER_HOST) does not answer: "
        "Connection refused"
    )
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("start your Podman API: `systemctl --user start podman.socket`")
    assert caught.value.hint.endswith("; or fix DOCKER_HOST")


# --- credentials ----------------------------------------------------------------------------------------


def auth(user: str, secret: str) -> str:
    return base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("reg.example:5000", "reg.example:5000"),
        ("https://reg.example:5000", "reg.example:5000"),
        ("https://reg.example:5000/v1/", "reg.example:5000"),  # what old `docker login` wrote
        ("https://index.docker.io/v1/", "docker.io"),
        ("docker.io", "docker.io"),
    ],
)
def test_auths_entries_match_as_the_docker_cli_does(docker_dir: Path, key: str, registry: str) -> None:
    write_config(docker_dir, {"auths": {key: {"auth": auth("me", "pa:ss")}}})
    assert credentials_for(registry) == Credentials("me", "pa:ss")
    assert credentials_for("other.example") is None


def test_an_exact_key_wins_over_a_host_name_match(docker_dir: Path) -> None:
    auths = {"https://reg.example/v1/": {"auth": auth("old", "x")}, "reg.example": {"auth": auth("new", "y")}}
    write_config(docker_dir, {"auths": auths})
    assert credentials_for("reg.example") == Credentials("new", "y")


def test_username_and_password_entries_are_read(docker_dir: Path) -> None:
    write_config(docker_dir, {"auths": {"reg.example": {"username": "me", "password": "pw"}}})
    assert credentials_for("reg.example") == Credentials("me", "pw")


def helper(folder: Path, name: str, script: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real credential helper on PATH; it records its argv and stdin beside itself."""
    folder.mkdir(exist_ok=True)
    program = folder / f"docker-credential-{name}"
    record = f'echo "$@" > "{folder}/{name}.argv"\ncat > "{folder}/{name}.stdin"'
    program.write_text(f"#!/bin/sh\n{record}\n{script}\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def test_a_cred_helper_is_asked_with_the_server_on_stdin(
    docker_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = '{"ServerURL": "reg.example", "Username": "me", "Secret": "from-helper"}'
    bin_dir = helper(tmp_path / "bin", "devnixtest", f"echo '{answer}'", monkeypatch)
    write_config(docker_dir, {"credHelpers": {"reg.example": "devnixtest"}, "auths": {"reg.example": {}}})
    assert credentials_for("reg.example") == Credentials("me", "from-helper")
    assert (bin_dir / "devnixtest.argv").read_text() == "get\n"
    assert (bin_dir / "devnixtest.stdin").read_text() == "reg.example"


def test_the_creds_store_comes_before_auths_and_auths_answer_when_it_knows_nothing(
    docker_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helper(tmp_path / "bin", "store", 'echo \'{"Username": "me", "Secret": "stored"}\'', monkeypatch)
    write_config(docker_dir, {"credsStore": "store", "auths": {"reg.example": {"auth": auth("me", "file")}}})
    assert credentials_for("reg.example") == Credentials("me", "stored")
    helper(tmp_path / "bin", "store", "echo 'credentials not found in native keychain'; exit 1", monkeypatch)
    assert credentials_for("reg.example") == Credentials("me", "file")


def test_docker_hub_is_asked_of_a_helper_by_the_name_docker_login_wrote(
    docker_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = helper(tmp_path / "bin", "hub", 'echo \'{"Username": "me", "Secret": "s"}\'', monkeypatch)
    write_config(docker_dir, {"credsStore": "hub"})
    assert credentials_for("docker.io") == Credentials("me", "s")
    assert (bin_dir / "hub.stdin").read_text() == "https://index.docker.io/v1/"


@pytest.mark.parametrize("output", ["not json", "[]", '{"Username": 5, "Secret": "s"}', '{"Username": "me"}'])
def test_a_helper_answer_of_the_wrong_shape_is_no_credentials(
    docker_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    helper(tmp_path / "bin", "odd", f"echo '{output}'", monkeypatch)
    write_config(docker_dir, {"credHelpers": {"reg.example": "odd"}})
    assert credentials_for("reg.example") is None


def test_a_helper_name_is_never_a_path(
    docker_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `docker-credential-../evil` would be found relative to the working folder by a PATH lookup.
    evil = tmp_path / "docker-credential-.." / "evil"
    evil.parent.mkdir()
    evil.write_text(f"#!/bin/sh\ntouch {tmp_path}/ran\n")
    evil.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    write_config(docker_dir, {"credsStore": "../evil", "credHelpers": {"reg.example": "../evil"}})
    assert credentials_for("reg.example") is None
    assert not (tmp_path / "ran").exists()


def test_the_registry_client_logs_in_with_the_docker_configs_credentials(docker_dir: Path) -> None:
    basic = "Basic " + auth("me", "s3cret")

    def respond(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.headers.get("authorization") != basic:
            return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""
        return 404, {}, b""

    with serving(respond) as server:
        write_config(docker_dir, {"auths": {f"127.0.0.1:{server.port}": {"auth": auth("me", "s3cret")}}})
        assert Client(f"127.0.0.1:{server.port}").find_manifest("r", "v1") is None
    assert [seen.headers.get("authorization") for seen in server.seen] == [None, basic]
