"""``devnix init --merge`` on a compose config -> ``devcontainer up`` -> ``exec``, on the real engine."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from standins import DevcontainerCLI, NixImages, last_json_line
from typer.testing import CliRunner

from devnix.cli import app

runner = CliRunner()

CONFIG = """\
// A compose config as the templates write them: the service mounts the project itself.
{
  "name": "compose",
  "dockerComposeFile": ["docker-compose.yml"],
  "service": "dev",
  "workspaceFolder": "/workspace",
  "shutdownAction": "stopCompose"
}
"""

COMPOSE = """\
# The dev service; devnix sets its image, platform and Nix environment.
services:
  dev:
    image: debian:bookworm   # replaced by devnix
    volumes:
      - ..:/workspace:cached   # the project, where nix.conf is
    environment:
      KEEP: "yes"
    # compose configs do not override the command: keep the container up
    command: ["sleep", "infinity"]
"""


def merge(workspace: Path, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["init", str(workspace), "--merge", "--json", *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def show_config(devcontainer: DevcontainerCLI, workspace: Path) -> dict[str, str]:
    done = devcontainer.exec(workspace, "nix", "show-config")
    assert done.returncode == 0, done.stderr[-2000:]
    pairs = (line.partition(" = ") for line in done.stdout.splitlines())
    return {key.strip(): value.strip() for key, sep, value in pairs if sep}


def up_and_check(
    devcontainer: DevcontainerCLI, workspace: Path, machine: str, filter_on: bool, *extra: str
) -> None:
    up = devcontainer.up(workspace, *extra)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert last_json_line(up.stdout)["outcome"] == "success"
    uname = devcontainer.exec(workspace, "uname", "-m")
    assert uname.stdout.strip() == machine, uname.stderr
    config = show_config(devcontainer, workspace)
    assert config["filter-syscalls"] == ("true" if filter_on else "false")
    env = devcontainer.exec(workspace, "sh", "-c", 'printf "%s|%s" "$NIX_PATH" "$KEEP"')
    assert env.stdout == "nixpkgs=channel:nixos-unstable|yes", env.stderr


def test_compose_service_runs_emulated_then_natively(
    nix_images: NixImages, devcontainer: DevcontainerCLI, docker_client: Any, tmp_path: Path
) -> None:
    workspace = tmp_path / "composed"
    (workspace / ".devcontainer").mkdir(parents=True)
    (workspace / ".devcontainer" / "devcontainer.json").write_text(CONFIG)
    compose = workspace / ".devcontainer" / "docker-compose.yml"
    compose.write_text(COMPOSE)

    data = merge(workspace, "--image", nix_images.multi, "--platform", "linux/arm64")
    assert data["emulated"] is True
    text = compose.read_text()
    assert f"    image: {nix_images.multi}   # replaced by devnix\n" in text
    assert "    platform: linux/arm64\n" in text
    assert "NIX_USER_CONF_FILES: /workspace/.devcontainer/nix.conf" in text
    up_and_check(devcontainer, workspace, "aarch64", False)

    # Natively: devnix's platform line goes (nix.conf is rewritten with --force: the filter is on again).
    data = merge(workspace, "--image", nix_images.multi, "--force")
    assert data["emulated"] is False
    assert "platform:" not in compose.read_text()
    assert any("docker compose pull" in str(note) for note in data["notes"])  # type: ignore[attr-defined]
    # As that note says: the engine holds the tag as the arm64 variant it pulled, and compose runs a
    # local tag as it is when no platform is asked for. Untag it (the image stays) so it is pulled again.
    with contextlib.suppress(Exception):
        docker_client.images.remove(nix_images.multi, force=True)
    up_and_check(devcontainer, workspace, "x86_64", True, "--remove-existing-container")
