"""VS Code's server starts in what devnix writes: store-only (nixos-shaped) and FHS (Debian-shaped) images.

Each case goes the way VS Code goes: ``devnix init`` (or a Template), ``devcontainer up``, the server
(the official Node.js binary VS Code ships, ``vscode_server.py``) unpacked into
``~/.vscode-server/bin/<id>/`` through ``docker exec … tar`` as the remote user, then started with
``devcontainer exec`` so that the config's ``remoteEnv`` and ``userEnvProbe`` apply. After it ran, Nix
must be untouched: ``nix --version`` and an offline ``nix-build``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from standins import DevcontainerCLI, NixImages, Registry, last_json_line
from typer.testing import CliRunner
from vscode_server import VSCodeServer, find_devcontainer_container

from devnix.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# Builds with no substituter and no nixpkgs, on whatever system Nix runs as.
TRIVIAL = (
    'derivation { name = "devnix-server-probe"; system = builtins.currentSystem; builder = "/bin/sh"; '
    'args = [ "-c" "echo built > $out" ]; }'
)
NODE_ARCH = {"x86_64": "x64", "aarch64": "arm64"}


@dataclass(frozen=True)
class Shape:
    name: str  # "store-only" (nixos-shaped) or "fhs" (Debian-shaped)
    images: NixImages


@pytest.fixture(params=["store-only", "fhs"])
def shape(request: pytest.FixtureRequest) -> Shape:
    fixture = "nixos_images" if request.param == "store-only" else "nix_images"
    return Shape(request.param, request.getfixturevalue(fixture))


def init(workspace: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["init", str(workspace), "--json", *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


@dataclass
class Attach:
    """What VS Code does after ``devcontainer up``: install its server, start it; then Nix must work."""

    devcontainer: DevcontainerCLI
    docker_client: Any
    vscode_server: VSCodeServer

    def up_and_start_the_server(self, workspace: Path, machine: str, *up_args: str) -> None:
        devcontainer = self.devcontainer
        up = devcontainer.up(workspace, *up_args)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert last_json_line(up.stdout)["outcome"] == "success"
        uname = devcontainer.exec(workspace, "uname", "-m")
        assert uname.stdout.strip() == machine, uname.stderr

        node = self.vscode_server.install(find_devcontainer_container(self.docker_client, workspace))
        started = devcontainer.exec(workspace, node, "-e", "console.log(process.version, process.arch)")
        assert started.returncode == 0, f"VS Code's server did not start: {started.stdout}{started.stderr}"
        version, arch = started.stdout.split()[-2:]
        assert version.startswith("v22.") and arch == NODE_ARCH[machine], started.stdout

        nix = devcontainer.exec(workspace, "nix", "--version")
        assert nix.returncode == 0 and nix.stdout.startswith("nix (Nix) 2."), nix.stderr
        build = devcontainer.exec(
            workspace, "sh", "-c", f"cat $(nix-build --no-out-link --option substituters '' -E '{TRIVIAL}')"
        )
        assert build.returncode == 0, build.stderr[-3000:]
        assert build.stdout.strip() == "built"


@pytest.fixture
def attach(devcontainer: DevcontainerCLI, docker_client: Any, vscode_server: VSCodeServer) -> Attach:
    return Attach(devcontainer, docker_client, vscode_server)


def test_native_two_platform_image(
    shape: Shape, attach: Attach, tmp_path: Path
) -> None:
    data = init(tmp_path, "--image", shape.images.multi)
    assert data["emulated"] is False
    if shape.name == "store-only":
        # Told by the image config's PATH, read from the registry.
        assert (data["filesystem"], data["filesystem_source"], data["fhs_loader"]) == (
            "store-only",
            "registry",
            True,
        )
    else:
        # Debian-shaped: its PATH names /usr/bin, so no loader step (the image has Debian's loader).
        assert (data["filesystem"], data["fhs_loader"]) == ("fhs", False)
    attach.up_and_start_the_server(tmp_path, "x86_64")


def test_emulated_arm64(
    shape: Shape, attach: Attach, tmp_path: Path
) -> None:
    data = init(tmp_path, "--image", shape.images.multi, "--platform", "linux/arm64")
    assert data["emulated"] is True
    attach.up_and_start_the_server(tmp_path, "aarch64")


def test_dockerfile(
    shape: Shape, attach: Attach, tmp_path: Path
) -> None:
    data = init(tmp_path, "--image", shape.images.multi, "--dockerfile")
    assert ".devcontainer/Dockerfile" in data["files"]
    attach.up_and_start_the_server(tmp_path, "x86_64")


COMMENTED = """// The team's config: devnix must keep every comment.
{
  "name": "team", // our name
  /* the image we had */
  "image": "debian:bookworm",
  "forwardPorts": [8080],
  "remoteEnv": { "TEAM": "yes" }, // for the server and its terminals
}
"""


def test_merge_into_a_commented_config(shape: Shape, attach: Attach, tmp_path: Path) -> None:
    config = tmp_path / ".devcontainer" / "devcontainer.json"
    config.parent.mkdir()
    config.write_text(COMMENTED)
    init(tmp_path, "--merge", "--image", shape.images.multi)
    merged = config.read_text()
    for comment in ("// The team's config", "// our name", "/* the image we had */", "// for the server"):
        assert comment in merged
    attach.up_and_start_the_server(tmp_path, "x86_64")
    team = attach.devcontainer.exec(tmp_path, "sh", "-c", 'printf %s "$TEAM"')
    assert team.stdout == "yes"


def test_without_the_step_the_store_only_image_fails_as_vs_code_does(
    nixos_images: NixImages, attach: Attach, tmp_path: Path
) -> None:
    # The control: the same stand-in, the loader step left out, reproduces the reported failure.
    init(tmp_path, "--image", nixos_images.multi, "--no-fhs-loader")
    up = attach.devcontainer.up(tmp_path)
    assert up.returncode == 0, up.stderr[-3000:]
    node = attach.vscode_server.install(find_devcontainer_container(attach.docker_client, tmp_path))
    started = attach.devcontainer.exec(tmp_path, node, "-e", "1")
    assert started.returncode != 0
    assert "no such file or directory" in (started.stdout + started.stderr).lower()


# --- the Templates --------------------------------------------------------------------------------

NAMESPACE = "devnix/templates-server"


@pytest.fixture(scope="module")
def published_templates(registry: Registry) -> str:
    result = CliRunner().invoke(
        app,
        ["publish", "templates", str(ROOT / "templates" / "src"), "--registry", registry.host,
         "--namespace", NAMESPACE],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return f"{registry.host}/{NAMESPACE}"


@pytest.mark.parametrize("template_id", ["nix", "nix-flake", "nix-dockerfile"])
def test_each_template(
    template_id: str,
    shape: Shape,
    published_templates: str,
    attach: Attach,
    tmp_path: Path,
) -> None:
    applied = attach.devcontainer.run(
        "templates", "apply", "--workspace-folder", str(tmp_path),
        "--template-id", f"{published_templates}/{template_id}:1",
        "--template-args", json.dumps({"image": shape.images.multi}),
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr[-2000:]
    # nix-flake's post-create fetches direnv from nixpkgs: no network here, so no lifecycle commands.
    extra = ("--skip-post-create",) if template_id == "nix-flake" else ()
    attach.up_and_start_the_server(tmp_path, "x86_64", *extra)
