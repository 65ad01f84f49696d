"""The test environment itself works: registry, stand-in images, QEMU, the reference devcontainer CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from standins import (
    DEVCONTAINER_CLI_VERSION,
    MEDIA_DOCKER_LIST,
    MEDIA_OCI_INDEX,
    DevcontainerCLI,
    NixImages,
    PushedImage,
    Registry,
    iter_platforms,
    last_json_line,
    remove_devcontainer_leftovers,
)


def docker(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The docker CLI with the test's own environment (its private DOCKER_CONFIG)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_multi_index_lists_amd64_and_arm64(nix_images: NixImages) -> None:
    resp = nix_images.registry.get_manifest(nix_images.repository, "multi")
    assert resp.status == 200, resp.body
    index = resp.json()
    assert index["mediaType"] in (MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX)
    platforms = {p.split("/v")[0] for p in iter_platforms(index)}
    assert platforms == {"linux/amd64", "linux/arm64"}
    for entry in index["manifests"]:
        child = nix_images.registry.get_manifest(nix_images.repository, entry["digest"])
        assert child.status == 200
        assert len(child.body) == entry["size"]


def test_engine_pulls_the_index_per_platform(nix_images: NixImages) -> None:
    proc = docker("pull", "--platform", "linux/arm64", nix_images.multi)
    assert proc.returncode == 0, proc.stderr
    try:
        arch = docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", nix_images.multi)
        assert arch.stdout.strip() == "linux/arm64"
    finally:
        docker("image", "rm", nix_images.multi)


def test_arm64_image_runs_under_emulation(nix_images: NixImages) -> None:
    proc = docker(
        "run", "--rm", "--pull", "always", "--platform", "linux/arm64", nix_images.arm64, "uname", "-m"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "aarch64"
    docker("image", "rm", nix_images.arm64)


def test_nix_runs_in_the_amd64_image(nix_images: NixImages) -> None:
    proc = docker("run", "--rm", "--platform", "linux/amd64", nix_images.amd64, "nix", "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("nix (Nix) 2."), proc.stdout
    docker("image", "rm", nix_images.amd64)


def test_nix_sees_aarch64_linux_in_the_arm64_image(nix_images: NixImages) -> None:
    proc = docker(
        "run", "--rm", "--platform", "linux/arm64", nix_images.arm64,
        "nix", "eval", "--impure", "--expr", "builtins.currentSystem",
        "--option", "substituters", "",
        "--extra-experimental-features", "nix-command",
    )  # fmt: skip
    docker("image", "rm", nix_images.arm64)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '"aarch64-linux"'


def test_debian_image_has_no_nix(debian_image: PushedImage) -> None:
    proc = docker(
        "run", "--rm", debian_image.ref, "sh", "-c", "cat /etc/debian_version; command -v nix || true"
    )
    docker("image", "rm", debian_image.ref)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("12.")
    assert "nix" not in proc.stdout


def test_auth_registry_wants_credentials(auth_registry: Registry, docker_client: Any) -> None:
    assert auth_registry.request("GET", "/v2/", auth=False).status == 401
    assert auth_registry.request("GET", "/v2/").status == 200
    assert auth_registry.password is not None
    login = subprocess.run(
        [
            "docker",
            "login",
            "--username",
            str(auth_registry.username),
            "--password-stdin",
            auth_registry.host,
        ],
        input=auth_registry.password,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert login.returncode == 0, login.stderr


def test_devcontainer_cli_is_the_pinned_one(devcontainer_cli: Path) -> None:
    proc = subprocess.run(
        [str(devcontainer_cli), "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.stdout.strip() == DEVCONTAINER_CLI_VERSION


def test_devcontainer_cli_publishes_a_feature_to_the_registry(
    devcontainer: DevcontainerCLI, registry: Registry, tmp_path: Path
) -> None:
    src = tmp_path / "src" / "hello"
    src.mkdir(parents=True)
    (src / "devcontainer-feature.json").write_text(
        json.dumps({"id": "hello", "version": "1.0.0", "name": "Hello"})
    )
    (src / "install.sh").write_text("#!/bin/sh\necho hello > /etc/hello\n")
    proc = devcontainer.run(
        "features", "publish", "--registry", registry.host, "--namespace", "devnix-test/features",
        str(tmp_path / "src"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tags = registry.request("GET", "/v2/devnix-test/features/hello/tags/list").json()
    assert "1.0.0" in tags["tags"]


def test_devcontainer_up_and_exec_then_clean_up(
    devcontainer: DevcontainerCLI, debian_image: PushedImage, docker_client: Any, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    (workspace / ".devcontainer").mkdir(parents=True)
    (workspace / ".devcontainer" / "devcontainer.json").write_text(
        json.dumps({"image": debian_image.ref, "remoteUser": "root"})
    )
    up = devcontainer.up(workspace)
    assert up.returncode == 0, up.stdout + up.stderr
    result = last_json_line(up.stdout)
    assert result["outcome"] == "success"
    ran = devcontainer.exec(workspace, "cat", "/etc/debian_version")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().startswith("12.")

    removed = remove_devcontainer_leftovers(docker_client, [workspace.resolve()])
    assert any(item.startswith("container ") for item in removed)
    label = f"devcontainer.local_folder={workspace.resolve()}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
