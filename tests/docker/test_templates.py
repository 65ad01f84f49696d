"""devnix's Templates, published by devnix, applied and started by the reference CLI (as VS Code does)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from standins import DevcontainerCLI, NixImages, Registry, last_json_line
from typer.testing import CliRunner

from devnix.cli import app

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "devnix/templates"


@pytest.fixture(scope="module")
def published(registry: Registry) -> str:
    result = CliRunner().invoke(
        app,
        [
            "publish",
            "templates",
            str(ROOT / "templates" / "src"),
            "--registry",
            registry.host,
            "--namespace",
            NAMESPACE,
        ],
    )
    assert result.exit_code == 0, result.output
    return f"{registry.host}/{NAMESPACE}"


def apply(devcontainer: DevcontainerCLI, workspace: Path, template: str, image: str) -> None:
    options = json.dumps({"image": image})
    done = devcontainer.run(
        "templates",
        "apply",
        "--workspace-folder",
        str(workspace),
        "--template-id",
        template,
        "--template-args",
        options,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("template_id", ["nix", "nix-dockerfile"])
def test_template_applies_starts_and_passes_its_checks(
    template_id: str,
    published: str,
    nix_images: NixImages,
    devcontainer: DevcontainerCLI,
    tmp_path: Path,
) -> None:
    apply(devcontainer, tmp_path, f"{published}/{template_id}:1", nix_images.multi)
    config = (tmp_path / ".devcontainer" / "devcontainer.json").read_text()
    assert "${templateOption" not in config
    up = devcontainer.up(tmp_path)
    assert up.returncode == 0, up.stderr[-3000:]
    assert last_json_line(up.stdout)["outcome"] == "success"
    script = (ROOT / "templates" / "test" / template_id / "test.sh").read_text()
    checks = devcontainer.exec(tmp_path, "sh", "-c", script)
    assert checks.returncode == 0, checks.stdout + checks.stderr
    assert checks.stdout.count("ok: ") == 5


def test_flake_template_applies_starts_and_passes_its_checks(
    published: str, nix_images: NixImages, devcontainer: DevcontainerCLI, tmp_path: Path
) -> None:
    apply(devcontainer, tmp_path, f"{published}/nix-flake:1", nix_images.multi)
    assert (tmp_path / "flake.nix").is_file()
    assert "use flake" in (tmp_path / ".envrc").read_text()
    done = devcontainer.read_configuration(tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    configuration = last_json_line(done.stdout)["configuration"]
    # Built, for the FHS loader step (the image option may be a store-only image such as nixos/nix).
    assert configuration["build"]["dockerfile"] == "Dockerfile"
    dockerfile = (tmp_path / ".devcontainer" / "Dockerfile").read_text()
    assert f"FROM {nix_images.multi}\n" in dockerfile
    assert "mkhl.direnv" in configuration["customizations"]["vscode"]["extensions"]
    assert configuration["postCreateCommand"] == "bash .devcontainer/post-create.sh"
    # Its post-create step fetches direnv and the flake's inputs from the network, which this machine
    # lacks: start the container without the lifecycle commands, then check Nix itself.
    up = devcontainer.up(tmp_path, "--skip-post-create")
    assert up.returncode == 0, up.stderr[-3000:]
    script = (ROOT / "templates" / "test" / "nix-flake" / "test.sh").read_text()
    checks = devcontainer.exec(tmp_path, "sh", "-c", script)
    assert checks.returncode == 0, checks.stdout + checks.stderr
    syntax = devcontainer.exec(tmp_path, "bash", "-n", ".devcontainer/post-create.sh")
    assert syntax.returncode == 0, syntax.stderr
