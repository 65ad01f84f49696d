"""``devnix init`` -> ``devcontainer up`` -> ``devcontainer exec``, as VS Code does it, on the real engine."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from standins import DevcontainerCLI, NixImages, last_json_line
from typer.testing import CliRunner

from devnix.cli import app
from tests.replay_engine import recorded, replay_engine

runner = CliRunner()

# An offline derivation: builds with no substituter and no nixpkgs, on whatever system Nix runs as.
TRIVIAL = (
    'derivation { name = "devnix-probe"; system = builtins.currentSystem; builder = "/bin/sh"; '
    'args = [ "-c" "echo built-on-$(/bin/uname -m) > $out" ]; }'
)


def init(workspace: Path, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["init", str(workspace), "--json", *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def show_config(devcontainer: DevcontainerCLI, workspace: Path) -> dict[str, str]:
    done = devcontainer.exec(workspace, "nix", "show-config")
    assert done.returncode == 0, done.stderr
    values = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            values[key.strip()] = value.strip()
    return values


def check_nix_in_container(
    devcontainer: DevcontainerCLI, workspace: Path, machine: str, filter_on: bool
) -> None:
    up = devcontainer.up(workspace)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert last_json_line(up.stdout)["outcome"] == "success"

    uname = devcontainer.exec(workspace, "uname", "-m")
    assert uname.stdout.strip() == machine, uname.stderr

    config = show_config(devcontainer, workspace)
    assert config["filter-syscalls"] == ("true" if filter_on else "false")
    assert "flakes" in config["experimental-features"].split()
    assert config["sandbox"] == "false"

    nix_path = devcontainer.exec(workspace, "sh", "-c", 'printf %s "$NIX_PATH"')
    assert nix_path.stdout == "nixpkgs=channel:nixos-unstable"

    build = devcontainer.exec(
        workspace,
        "sh",
        "-c",
        f"cat $(nix-build --no-out-link --option substituters '' -E '{TRIVIAL}')",
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert build.stdout.strip() == f"built-on-{machine}"


def test_two_platform_image_runs_natively(
    nix_images: NixImages, devcontainer: DevcontainerCLI, tmp_path: Path
) -> None:
    data = init(tmp_path, "--image", nix_images.multi)
    assert data["platform"] == "linux/amd64"
    assert data["emulated"] is False
    assert data["source"] == "registry"
    assert data["image_platforms"] == ["linux/amd64", "linux/arm64"]
    check_nix_in_container(devcontainer, tmp_path, "x86_64", filter_on=True)


def test_arm64_only_image_runs_emulated_with_the_filter_off(
    nix_images: NixImages, devcontainer: DevcontainerCLI, tmp_path: Path
) -> None:
    data = init(tmp_path, "--image", nix_images.arm64)
    assert data["platform"] == "linux/arm64"
    assert data["emulated"] is True
    assert any("devnix bootstrap" in str(n) for n in data["notes"])  # type: ignore[attr-defined]
    check_nix_in_container(devcontainer, tmp_path, "aarch64", filter_on=False)


def test_requested_arm64_platform_of_a_two_platform_image_runs_emulated(
    nix_images: NixImages, devcontainer: DevcontainerCLI, tmp_path: Path
) -> None:
    data = init(tmp_path, "--image", nix_images.multi, "--platform", "linux/arm64")
    assert data["platform"] == "linux/arm64" and data["emulated"] is True
    check_nix_in_container(devcontainer, tmp_path, "aarch64", filter_on=False)


def test_dockerfile_bakes_the_configuration_in(
    nix_images: NixImages, devcontainer: DevcontainerCLI, tmp_path: Path
) -> None:
    data = init(tmp_path, "--image", nix_images.multi, "--dockerfile")
    assert ".devcontainer/Dockerfile" in data["files"]  # type: ignore[operator]
    check_nix_in_container(devcontainer, tmp_path, "x86_64", filter_on=True)


def test_reference_cli_reads_every_variant(
    nix_images: NixImages, devcontainer: DevcontainerCLI, tmp_path: Path
) -> None:
    variants = {
        "flake-direnv": ("--flake", "--direnv"),
        "store": ("--store-volume",),
        "emulated-dockerfile": ("--platform", "linux/arm64", "--dockerfile"),
    }
    for name, extra in variants.items():
        workspace = tmp_path / name
        workspace.mkdir()
        init(workspace, "--image", nix_images.multi, *extra)
        done = devcontainer.read_configuration(workspace)
        assert done.returncode == 0, f"{name}: {done.stderr[-2000:]}"
        configuration = last_json_line(done.stdout)["configuration"]
        assert "NIX_PATH" in configuration["containerEnv"], name


def test_store_volume_keeps_the_store_across_rebuilds_and_follows_the_image(
    nix_images: NixImages, devcontainer: DevcontainerCLI, tmp_path: Path
) -> None:
    data = init(tmp_path, "--image", nix_images.multi, "--store-volume")
    assert data["image_digest"] == nix_images.multi_digest
    assert str(data["image"]).endswith(":multi")
    up = devcontainer.up(tmp_path)
    assert up.returncode == 0, up.stderr[-3000:]
    marker = devcontainer.exec(tmp_path, "sh", "-c", "touch /nix/devnix-marker && ls /nix/store | head -1")
    assert marker.returncode == 0, marker.stderr
    rebuilt = devcontainer.up(tmp_path, "--remove-existing-container")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    kept = devcontainer.exec(tmp_path, "test", "-e", "/nix/devnix-marker")
    assert kept.returncode == 0, "the /nix volume did not survive a rebuild"


@pytest.fixture
def apple_silicon_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    folder = Path(tempfile.mkdtemp(prefix="dvx", dir="/tmp"))
    answers = {"/version": recorded("docker-desktop-apple-silicon.version.json")}
    with replay_engine(folder / "docker.sock", answers) as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        yield
    shutil.rmtree(folder, ignore_errors=True)


def test_apple_silicon_engine_with_amd64_only_image_is_emulated(
    nix_images: NixImages, apple_silicon_host: None, tmp_path: Path
) -> None:
    # The engine's answers are Docker Desktop's on an M-series Mac; the image's platforms come from
    # the real registry here.
    data = init(tmp_path, "--image", nix_images.amd64)
    assert data["engine_platform"] == "linux/arm64"
    assert data["platform"] == "linux/amd64"
    assert data["emulated"] is True
    assert data["nix_settings"]["filter-syscalls"] == "false"  # type: ignore[index]
    text = (tmp_path / ".devcontainer" / "devcontainer.json").read_text()
    assert '"runArgs": ["--platform=linux/amd64"]' in text
    native = init(tmp_path / "..", "--image", nix_images.multi, "--dry-run")
    assert native["platform"] == "linux/arm64" and native["emulated"] is False


def test_unreachable_registry_falls_back_to_the_engines_local_copy(
    standin_images: dict[str, str], docker_client: object, tmp_path: Path
) -> None:
    # A name whose registry refuses at once, but that the engine has: its copy tells the platform.
    local = "localhost:9/devnix-test/nix:local-only"
    docker_client.images.get(standin_images["nix/arm64"]).tag(local)  # type: ignore[attr-defined]
    try:
        data = init(tmp_path, "--image", local)
    finally:
        docker_client.images.remove(local)  # type: ignore[attr-defined]
    assert data["source"] == "local"
    assert data["image_platforms"] == ["linux/arm64"]
    assert data["platform"] == "linux/arm64" and data["emulated"] is True
    assert any("local copy" in str(note) for note in data["notes"])  # type: ignore[attr-defined]


def test_a_stale_other_platform_copy_is_replaced_by_the_native_variant(
    nix_images: NixImages, docker_client: object, tmp_path: Path
) -> None:
    # An emulated run once pulled the arm64 variant of the two-platform tag; `docker run` without
    # --platform would start that copy, emulated, under a config written for native Nix.
    import subprocess

    tag = nix_images.multi
    pulled = subprocess.run(
        ["docker", "pull", "--platform", "linux/arm64", tag], capture_output=True, text=True, check=False
    )
    assert pulled.returncode == 0, pulled.stderr
    try:
        preview = init(tmp_path, "--image", tag, "--dry-run")
        assert any("would pull its linux/amd64 variant" in str(n) for n in preview["notes"])  # type: ignore[attr-defined]
        data = init(tmp_path, "--image", tag)
        assert any("pulled its linux/amd64 variant" in str(n) for n in data["notes"])  # type: ignore[attr-defined]
        arch = docker_client.images.get(tag).attrs["Architecture"]  # type: ignore[attr-defined]
        assert arch == "amd64"
        again = init(tmp_path / "..", "--image", tag, "--dry-run")
        assert not any("copy of" in str(n) for n in again["notes"])  # type: ignore[attr-defined]
    finally:
        subprocess.run(["docker", "image", "rm", tag], capture_output=True, check=False)
