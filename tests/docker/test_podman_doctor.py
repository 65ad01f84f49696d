"""``devnix doctor`` on the real Podman 4.3 that scripts/test runs next to dockerd (issue #10): rootful (root,
``/run/podman/podman.sock``) and rootless (the test user ``devnix-rootless``), each through a fresh
interpreter and through CliRunner, found by devnix itself (``--engine podman``, or no Docker socket the
user may use); and a Podman that is not running.

The probes need images in Podman's own store (it is not dockerd's): the stand-ins are copied in with the
fixture's ``load()``, a native one (the mount probe) and an arm64 one (emulation, under QEMU).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from podman import Podman
from typer.testing import CliRunner

from devnix.cli import app
from devnix.engine import PROBE_LABEL
from devnix.errors import EngineError
from tests.support import skip_or_fail

REPO = Path(__file__).resolve().parents[2]
SETTING = '"dev.containers.dockerPath": "podman"'
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(params=("podman_rootful", "podman_rootless"))
def engine(request: pytest.FixtureRequest, standin_images: dict[str, str]) -> Podman:
    found: Podman = request.getfixturevalue(request.param)
    for key in ("debian/amd64", "nix/arm64"):
        found.load(standin_images[key])
    return found


@pytest.fixture(autouse=True)
def no_engine_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    # --engine sets DEVNIX_ENGINE for the process (CliRunner runs in this one): restored after each test.
    monkeypatch.setenv("DEVNIX_ENGINE", "")


def project(engine: Podman) -> Path:
    """An empty project folder the engine's user owns (a rootless engine's user must reach it)."""
    return engine.workspace("doctor")


def vscode_config(engine: Podman, with_setting: bool) -> Path:
    """An XDG_CONFIG_HOME for the engine's user, with VS Code's settings.json (the line doctor asks for) or
    without any."""
    folder = engine.workspace("config")
    if with_setting:
        settings = folder / "Code" / "User" / "settings.json"
        settings.parent.mkdir(parents=True)
        settings.write_text("{\n  // Podman, not Docker\n  " + SETTING + ",\n}\n")
        engine.own(folder)
    return folder


def devnix(
    engine: Podman, *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``devnix`` as the engine's user runs it, in a fresh interpreter, with no DOCKER_HOST: devnix finds
    the engine itself. Root runs the venv's interpreter; the rootless user cannot enter /root, where that
    interpreter lives, so it runs Debian's python3 (the same 3.11) on the venv's packages."""
    if not engine.rootless:
        command = [sys.executable, "-m", "devnix", *args]
        merged = {**os.environ, **env}
    else:
        found = subprocess.run(
            [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.stdout.strip() != str(sys.version_info[:2]):
            skip_or_fail(
                f"{SYSTEM_PYTHON} is not Python {sys.version_info[:2]}: {found.stdout or found.stderr}"
            )
        command = engine.argv(SYSTEM_PYTHON, "-m", "devnix", *args)
        site = sysconfig.get_paths()["purelib"]
        merged = {**engine.environ(), "PYTHONPATH": f"{REPO}:{site}", "PYTHONDONTWRITEBYTECODE": "1", **env}
    merged.pop("DOCKER_HOST", None)
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO if not engine.rootless else "/",
        env=merged,
    )


def probe_containers(engine: Podman) -> list[str]:
    listed = engine.podman("ps", "-a", "--filter", f"label={PROBE_LABEL}", "--format", "{{.ID}}")
    return listed.stdout.split()


def checks_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}


def assert_podman_report(report: dict[str, Any], engine: Podman, version: str) -> dict[str, dict[str, Any]]:
    """What doctor must say of this machine's Podman, rootful or rootless."""
    assert report["engine"]["kind"] == "podman"
    assert report["engine"]["version"] == version
    assert report["engine"]["rootless"] is engine.rootless
    assert (report["engine"]["os"], report["engine"]["arch"]) == ("linux", "amd64")
    assert report["host"] == {"os": "linux", "arch": "amd64"}
    # Proven by running containers: arm64 through this host's QEMU binfmt, which Podman shares.
    assert report["emulation"] == {"linux/amd64": True, "linux/arm64": True}
    checks = checks_of(report)
    mode = "rootless" if engine.rootless else "rootful"
    assert checks["engine"]["message"] == (
        f"Podman {version}, {mode} (/version lists a Podman Engine component; "
        f"/info Rootless {str(engine.rootless).lower()})"
    )
    assert "runs on this linux/amd64 host itself" in checks["platform"]["message"]  # no VM on Linux
    assert checks["emulation.linux/arm64"]["status"] == "ok", checks["emulation.linux/arm64"]
    assert "`uname -m` printed aarch64" in checks["emulation.linux/arm64"]["message"]
    assert checks["mount"]["status"] == "ok", checks["mount"]
    assert not [c for c in report["checks"] if c["status"] == "fail"], report["checks"]
    return checks


def test_json_through_a_fresh_interpreter(engine: Podman) -> None:
    folder = project(engine)
    version = engine.api("/version")["Version"]
    # Root: --engine podman, since root's default Docker socket is dockerd's. The test user may not use
    # dockerd's socket, so devnix passes it by and finds the user's own Podman without being told.
    args = ("--engine", "podman") if not engine.rootless else ()
    done = devnix(
        engine,
        "doctor",
        str(folder),
        "--json",
        *args,
        env={"XDG_CONFIG_HOME": str(vscode_config(engine, True))},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    checks = assert_podman_report(report, engine, version)
    assert report["engine"]["endpoint"] == engine.url
    mode = "rootless" if engine.rootless else "rootful"
    assert checks["endpoint"]["message"] == f"{engine.url} (Podman's {mode} socket) answers"
    docker_path = checks["vscode.docker-path"]
    assert docker_path["status"] == "ok", docker_path
    assert "sets dev.containers.dockerPath to 'podman'" in docker_path["message"]
    assert docker_path["message"].endswith("`devcontainer up --docker-path podman`")
    # Nothing left behind: no probe folder in DIR, no probe container in Podman.
    assert not list(folder.iterdir())
    assert probe_containers(engine) == []


def test_json_through_cli_runner(engine: Podman, monkeypatch: pytest.MonkeyPatch) -> None:
    # In this (root's) process: rootful through --engine, rootless through DOCKER_HOST, as a root that
    # checks a user's engine would. The probe folder must then be readable by the user's containers.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(vscode_config(engine, False)))
    if engine.rootless:
        monkeypatch.setenv("DOCKER_HOST", engine.url)
        args = ["doctor", str(project(engine)), "--json"]
    else:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
        args = ["doctor", str(project(engine)), "--engine", "podman", "--json"]
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    checks = assert_podman_report(report, engine, engine.api("/version")["Version"])
    # No settings.json: the check says what VS Code runs instead, and gives the exact line to add.
    docker_path = checks["vscode.docker-path"]
    assert docker_path["status"] == "warn"
    assert "run `docker` unless settings.json says otherwise" in docker_path["message"]
    assert (
        f"`{SETTING}`" in docker_path["hint"]
        and "`devcontainer up --docker-path podman`" in docker_path["hint"]
    )


def test_the_table_for_the_closing_note(engine: Podman) -> None:
    args = ("--engine", "podman") if not engine.rootless else ()
    done = devnix(
        engine,
        "doctor",
        str(project(engine)),
        *args,
        env={"COLUMNS": "200", "XDG_CONFIG_HOME": str(vscode_config(engine, False))},
    )
    print(done.stdout)  # pytest -s shows it
    assert done.returncode == 0, done.stderr
    mode = "rootless" if engine.rootless else "rootful"
    # (the table wraps long findings: words, not whole sentences)
    for words in (
        "engine: Podman",
        f"Podman's {mode} socket",
        f", {mode} (",
        "vscode.docker-path",
        "dockerPath",
    ):
        assert words in done.stdout


@pytest.fixture
def short_folder() -> Iterator[Path]:
    # A unix socket path has at most 107 bytes: pytest's tmp_path can be longer.
    folder = Path(tempfile.mkdtemp(prefix="dnx", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_podman_that_refuses_is_one_line_and_a_hint(short_folder: Path) -> None:
    # What a stopped `podman system service` leaves: its socket file, with nothing listening.
    path = short_folder / "podman" / "podman.sock"
    path.parent.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "devnix", "doctor", str(short_folder)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=REPO,
        env={**os.environ, "DOCKER_HOST": f"unix://{path}"},
    )
    assert time.monotonic() - started < 5
    assert done.returncode == EngineError.exit_code and done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"devnix: error: the engine at unix://{path} (from DOCKER_HOST) does not answer: Connection refused "
        "(it looks like Podman)",
        "hint: start your Podman API: `systemctl --user start podman.socket` (or `podman system service "
        "--time=0 &`); or unset DOCKER_HOST to use the Docker CLI's current context",
    ]


def test_a_users_podman_that_is_not_running_is_one_line_and_a_hint(
    podman_rootless: Podman, short_folder: Path
) -> None:
    # The test user, --engine podman, and a runtime folder where no `podman system service` runs.
    os.chown(short_folder, podman_rootless.uid, podman_rootless.gid)
    done = devnix(
        podman_rootless,
        "doctor",
        "--engine",
        "podman",
        "/tmp",
        env={"XDG_RUNTIME_DIR": str(short_folder)},
        timeout=30,
    )
    assert done.returncode == EngineError.exit_code, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"devnix: error: the engine at unix://{short_folder}/podman/podman.sock (Podman's rootless socket) "
        "does not answer: No such file or directory (it looks like Podman)",
        "hint: start your Podman API: `systemctl --user start podman.socket` (or `podman system service "
        "--time=0 &`)",
    ]
