"""``devnix doctor`` against the real engine on this machine (Engine 20.10, amd64, QEMU binfmt for arm64).

The arm64 stand-in image (``standin_images``) is what proves emulation: doctor finds it among the local
images and runs ``uname -m`` in it. The vscode-server check runs its probe in the Nix stand-ins: the
Debian-shaped one (``nix_images``, an FHS loader) and the nixos/nix-shaped one (``nixos_images``,
store-only). Nothing is pulled from the internet, only from the session's loopback registry.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from standins import BASE_ENV, NixImages

from devnix import engine
from devnix.errors import EngineError
from devnix.fhsloader import SCRIPT_NAME, script_text

REPO = Path(__file__).resolve().parents[2]


def devnix(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``devnix`` as a user runs it: a fresh interpreter, this test's environment (plus ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "devnix", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def probe_containers() -> list[dict[str, Any]]:
    """Containers doctor marked as its probes, whatever their state."""
    proc = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={engine.PROBE_LABEL}", "--format", "{{json .}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=BASE_ENV,
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in data["checks"]}


def test_json_on_this_machine(standin_images: dict[str, str], docker_client: Any, tmp_path: Path) -> None:
    proc = devnix("doctor", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["engine"]["os"] == "linux" and data["engine"]["arch"] == "amd64"
    assert data["engine"]["kind"] == "dockerd"
    assert data["engine"]["version"].startswith("20.10")
    assert data["host"] == {"os": "linux", "arch": "amd64"}
    assert data["emulation"] == {"linux/amd64": True, "linux/arm64": True}
    checks = by_id(data)
    assert checks["mount"]["status"] == "ok", checks["mount"]
    assert checks["emulation.linux/arm64"]["status"] == "ok"
    assert "aarch64" in checks["emulation.linux/arm64"]["message"]
    assert checks["endpoint"]["status"] == "ok" and checks["platform"]["status"] == "ok"
    assert "free" in checks["disk"]["message"]
    assert not [c for c in data["checks"] if c["status"] == "fail"]
    # Doctor leaves nothing behind: no probe folder in DIR, no probe container in the engine.
    assert not list(tmp_path.iterdir())
    assert probe_containers() == []


def test_text_table_on_this_machine(standin_images: dict[str, str], tmp_path: Path) -> None:
    proc = devnix("doctor", str(tmp_path), env={"COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout)  # the table as printed here, for the closing note (pytest -s shows it)
    for words in ("status", "check", "finding", "what to do", "emulation.linux/arm64", "mount", "dockerd"):
        assert words in proc.stdout
    assert "\x1b[" not in proc.stdout  # not a terminal: no colour codes


def test_missing_socket_fails_fast_and_cleanly(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = devnix("doctor", str(tmp_path), env={"DOCKER_HOST": "unix:///nonexistent.sock"}, timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"took {elapsed:.2f} s"
    assert proc.returncode == EngineError.exit_code
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("devnix: error: the engine at unix:///nonexistent.sock (from DOCKER_HOST)")
    assert len(lines) == 2 and lines[1].startswith("hint: ") and "unset DOCKER_HOST" in lines[1]


def test_missing_socket_json_is_still_a_report(tmp_path: Path) -> None:
    proc = devnix(
        "doctor", str(tmp_path), "--json", env={"DOCKER_HOST": "unix:///nonexistent.sock"}, timeout=30
    )
    assert proc.returncode == EngineError.exit_code
    data = json.loads(proc.stdout)
    assert data["engine"]["os"] is None and data["checks"][0]["status"] == "fail"


def test_devcontainer_with_a_multi_arch_image_in_the_local_registry(
    nix_images: NixImages, tmp_path: Path
) -> None:
    folder = tmp_path / ".devcontainer"
    folder.mkdir()
    (folder / "devcontainer.json").write_text(f'{{\n  // multi-arch\n  "image": "{nix_images.multi}",\n}}\n')
    (folder / "nix.conf").write_text("sandbox = false\n")
    proc = devnix("doctor", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = by_id(json.loads(proc.stdout))
    assert checks["devcontainer.platform"]["status"] == "ok", checks["devcontainer.platform"]
    assert "natively as linux/amd64" in checks["devcontainer.platform"]["message"]
    assert "from its registry" in checks["devcontainer.platform"]["message"]
    assert checks["devcontainer.nix-conf"]["status"] == "ok"


def test_devcontainer_pinned_to_arm64_wants_the_filter_off(nix_images: NixImages, tmp_path: Path) -> None:
    folder = tmp_path / ".devcontainer"
    folder.mkdir()
    (folder / "devcontainer.json").write_text(
        json.dumps({"image": nix_images.arm64, "runArgs": ["--platform=linux/arm64"]})
    )
    (folder / "nix.conf").write_text("filter-syscalls = false\n")
    proc = devnix("doctor", str(tmp_path), "--json")
    checks = by_id(json.loads(proc.stdout))
    assert checks["devcontainer.platform"]["status"] == "warn"
    assert "emulated as linux/arm64" in checks["devcontainer.platform"]["message"]
    assert checks["devcontainer.nix-conf"]["status"] == "ok"
    assert proc.returncode == 0


def test_a_stale_local_copy_is_reported_with_the_command_that_fixes_it(
    nix_images: NixImages, tmp_path: Path
) -> None:
    # An emulated run once pulled the arm64 variant of the two-platform tag; a config written for the
    # native variant (no pin) would start that copy, emulated. Doctor says so, and how to fix it.
    tag = nix_images.multi
    project(tmp_path, {"image": tag})
    (tmp_path / ".devcontainer" / "nix.conf").write_text("sandbox = false\n")
    docker = {"capture_output": True, "text": True, "timeout": 300, "check": False}
    pulled = subprocess.run(["docker", "pull", "--platform", "linux/arm64", tag], **docker)
    assert pulled.returncode == 0, pulled.stderr
    try:
        proc = devnix("doctor", str(tmp_path), "--json")
        local = by_id(json.loads(proc.stdout))["devcontainer.local-copy"]
        assert local["status"] == "warn", local
        assert local["message"].startswith(f"the engine holds the linux/arm64 copy of {tag}")
        command = re.match(r"`([^`]+)`", local["hint"])
        assert command is not None and command.group(1) == f"docker pull --platform linux/amd64 {tag}"
        fixed = subprocess.run(command.group(1).split(), **docker)
        assert fixed.returncode == 0, fixed.stderr
        proc = devnix("doctor", str(tmp_path), "--json")
        checks = by_id(json.loads(proc.stdout))
        assert checks["devcontainer.local-copy"] == {
            "id": "devcontainer.local-copy",
            "status": "ok",
            "message": f"the engine's copy of {tag} is linux/amd64, the variant the config runs",
            "hint": None,
        }
        assert checks["devcontainer.platform"]["status"] == "ok", checks["devcontainer.platform"]
    finally:
        subprocess.run(["docker", "image", "rm", tag], **docker)


def test_probe_that_outlives_its_timeout_is_removed(standin_images: dict[str, str]) -> None:
    started = time.monotonic()
    ran = engine.run_probe(standin_images["debian/amd64"], ["sleep", "60"], timeout=1.5)
    assert ran.exit_code is None
    assert time.monotonic() - started < 15
    assert probe_containers() == []


def test_probe_of_a_missing_executable_raises_and_is_removed(standin_images: dict[str, str]) -> None:
    with pytest.raises(EngineError, match=r"executable file not found|no such file"):
        engine.run_probe(standin_images["debian/amd64"], ["/no/such/tool"], timeout=10)
    assert probe_containers() == []


def test_pull_from_an_unreachable_registry_says_why(docker_client: Any) -> None:
    started = time.monotonic()
    with pytest.raises(EngineError, match=re.escape("pulling 127.0.0.1:9/devnix/none:latest failed")):
        engine.pull("127.0.0.1:9/devnix/none:latest", platform="linux/arm64", timeout=20)
    assert time.monotonic() - started < 20


# --- vscode-server: can VS Code's server start in the project's image -----------------------------------


def project(folder: Path, config: dict[str, Any], dockerfile: str | None = None) -> None:
    (folder / ".devcontainer").mkdir(exist_ok=True)
    (folder / ".devcontainer" / "devcontainer.json").write_text(json.dumps(config))
    if dockerfile is not None:
        (folder / ".devcontainer" / "Dockerfile").write_text(dockerfile)
        (folder / ".devcontainer" / SCRIPT_NAME).write_text(script_text())


DEVNIX_STEP = "COPY fhs-loader.sh /tmp/devnix-fhs-loader.sh\nRUN sh /tmp/devnix-fhs-loader.sh\n"


def test_vscode_server_can_start_in_the_debian_shaped_nix_image(
    nix_images: NixImages, tmp_path: Path
) -> None:
    project(tmp_path, {"image": nix_images.amd64})
    # --pull: the registry's names are not tagged in the engine (the session untags them at its end).
    proc = devnix("doctor", str(tmp_path), "--pull", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    vscode = by_id(json.loads(proc.stdout))["devcontainer.vscode-server"]
    assert vscode["status"] == "ok", vscode
    assert vscode["message"].startswith(f"VS Code's server can start in {nix_images.amd64}: ")
    assert "/lib64/ld-linux-x86-64.so.2 finds libstdc++.so.6 and libgcc_s.so.1 in /" in vscode["message"]
    assert vscode["hint"] is None
    text = devnix("doctor", str(tmp_path), env={"COLUMNS": "200"})
    print(text.stdout)  # the table as printed here, for the closing note (pytest -s shows it)
    assert "devcontainer.vscode-server" in text.stdout
    assert probe_containers() == []


def test_vscode_server_cannot_start_in_a_store_only_image_without_the_step(
    nixos_images: NixImages, tmp_path: Path
) -> None:
    project(tmp_path, {"image": nixos_images.amd64})
    proc = devnix("doctor", str(tmp_path), "--pull", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a failed check
    vscode = by_id(json.loads(proc.stdout))["devcontainer.vscode-server"]
    assert vscode["status"] == "fail", vscode
    assert "no /lib64/ld-linux-x86-64.so.2 (a store-only Nix image, as the probe found)" in vscode["message"]
    assert vscode["hint"].startswith("`devnix init --merge`")
    # The same image as the FROM of a Dockerfile with devnix's step: the step fixes it at build time.
    project(tmp_path, {"build": {"dockerfile": "Dockerfile"}}, f"FROM {nixos_images.amd64}\n{DEVNIX_STEP}")
    proc = devnix("doctor", str(tmp_path), "--json")
    vscode = by_id(json.loads(proc.stdout))["devcontainer.vscode-server"]
    assert vscode["status"] == "ok", vscode
    assert f"{nixos_images.amd64} (Dockerfile's FROM) is store-only" in vscode["message"]
    assert "Dockerfile's fhs-loader.sh step adds devnix's FHS loader at build time" in vscode["message"]
    assert proc.returncode == 0, proc.stdout
    assert probe_containers() == []


def test_vscode_server_can_start_once_the_step_ran(
    nixos_images: NixImages, docker_session_env: dict[str, str], tmp_path: Path
) -> None:
    # The probe against the real patched loader: its own search path (the padded folder of symlinks).
    context = tmp_path / "build"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {nixos_images.amd64}\n{DEVNIX_STEP}")
    (context / SCRIPT_NAME).write_text(script_text())
    tag = f"devnix-test-local/doctor-fhs:{tmp_path.name.lower()}"
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(context)],
        check=True,
        capture_output=True,
        timeout=300,
        # The classic builder takes FROM from the engine, which pulls from a loopback registry over HTTP.
        env={**docker_session_env, "DOCKER_BUILDKIT": "0"},
    )
    try:
        project(tmp_path, {"image": tag})
        proc = devnix("doctor", str(tmp_path), "--json")
        vscode = by_id(json.loads(proc.stdout))["devcontainer.vscode-server"]
        assert vscode["status"] == "ok", vscode
        loader = "/lib64/ld-linux-x86-64.so.2 (devnix's FHS loader)"
        assert f"{loader} finds libstdc++.so.6 and libgcc_s.so.1 in /usr/lib/devnix-fhs" in vscode["message"]
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=60, env=docker_session_env)
