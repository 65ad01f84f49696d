"""Hostile environments and configs end in one line, a hint and a documented exit code, never a traceback.

CliRunner keeps an uncaught exception in ``result.exception`` (never in the output): a handled error is a
``SystemExit`` with the command's exit code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devnix.cli import app
from devnix.dockerconfig import credentials_for

runner = CliRunner()
IMAGE = "localhost:9/devnix/nix:test"  # a closed loopback port: refuses at once
DRY_INIT = ["--dry-run", "--image", IMAGE, "--platform", "linux/amd64"]


def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / ".devcontainer").mkdir(parents=True)
    (folder / ".devcontainer" / "devcontainer.json").write_text('{"image": "debian:bookworm"}\n')
    return folder


BAD_HOSTS = ["tcp://[::1", "tcp://host:notaport", "ftp://host", "tcp://[::1]:99999999"]


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_malformed_docker_host(host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", host)
    folder = project(tmp_path)
    # init goes on without the engine (and says so); doctor and validate name the problem.
    init = runner.invoke(app, ["init", str(folder), *DRY_INIT])
    assert init.exit_code == 0, init.output
    assert "no Docker engine answered (DOCKER_HOST is" in init.stdout
    doctor = runner.invoke(app, ["doctor", str(folder)])
    assert doctor.exit_code == 5 and isinstance(doctor.exception, SystemExit), doctor.output
    assert doctor.stderr.startswith(f"devnix: error: DOCKER_HOST is {host!r}")
    assert "hint: it looks like unix://" in doctor.stderr
    validate = runner.invoke(app, ["validate", str(folder), "--schema-dir", str(tmp_path / "none")])
    assert isinstance(validate.exception, SystemExit) or validate.exception is None, validate.output


@pytest.mark.parametrize(
    "config",
    [
        {"currentContext": 5},
        {"currentContext": ["a"]},
        {"currentContext": {"name": "x"}},
    ],
)
def test_a_docker_config_with_a_context_that_is_not_a_name(
    config: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    docker_config = Path(str(tmp_path / "docker"))
    docker_config.mkdir()
    (docker_config / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    folder = project(tmp_path)
    doctor = runner.invoke(app, ["doctor", str(folder)])
    assert doctor.exit_code == 5 and isinstance(doctor.exception, SystemExit), doctor.output
    assert "currentContext is" in doctor.stderr and "not a context name" in doctor.stderr
    init = runner.invoke(app, ["init", str(folder), *DRY_INIT])
    assert init.exit_code == 0, init.output


@pytest.mark.parametrize(
    "config",
    [
        {"auths": {"localhost:9": {"auth": 5}}},
        {"auths": {"localhost:9": {"auth": "!!not base64!!"}}},
        {"auths": {"localhost:9": {"auth": "/w=="}}},  # decodes to bytes that are not UTF-8
        {"auths": ["localhost:9"]},
        {"auths": {"localhost:9": "user:pass"}},
        {"credHelpers": ["localhost:9"]},
        {"credHelpers": {"localhost:9": 5}},
        {"credsStore": 5},
        [],
        "text",
    ],
)
def test_credentials_from_a_broken_docker_config_are_none(
    config: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert credentials_for("localhost:9") is None


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--trusted-user", "root\nsandbox = true"),
        ("--extra-platform", "not a system"),
        ("--substituter", "https://cache.example/ #comment"),
    ],
)
def test_values_that_would_break_nix_conf_are_refused_by_init(flag: str, value: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["init", str(tmp_path), "--image", IMAGE, "--platform", "linux/amd64", flag, value]
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "cannot go into nix.conf" in result.stderr or "is not a Nix system" in result.stderr
    assert not (tmp_path / ".devcontainer").exists()


def test_a_slow_engine_hands_the_builders_removal_to_a_detached_reaper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import subprocess

    from devnix import engine
    from devnix.engine import containers as engine_containers
    from devnix.errors import EngineError, EngineUnreachableError

    def slow(container: str, *, timeout: float = 60.0) -> None:
        assert timeout <= 10  # the prompt comes back within seconds of a Ctrl-C
        raise EngineUnreachableError("the engine at unix:///x does not answer: timed out", timed_out=True)

    started: list[list[str]] = []

    class Recorder:
        def __init__(self, args: list[str], **kwargs: object) -> None:
            assert kwargs["start_new_session"] is True  # no Ctrl-C of the terminal reaches it
            started.append(args)

    monkeypatch.setattr(engine_containers, "remove_container", slow)
    monkeypatch.setattr(subprocess, "Popen", Recorder)
    engine.remove_container_promptly("abc123")
    assert started and started[0][1:] == ["-m", "devnix.reaper", "abc123"]

    def refused(container: str, *, timeout: float = 60.0) -> None:
        raise EngineError("could not remove container abc123: permission denied")

    monkeypatch.setattr(engine_containers, "remove_container", refused)
    with pytest.raises(EngineError, match="permission denied"):
        engine.remove_container_promptly("abc123")  # a refusal is not slowness: said, not hidden
