"""templates/ is generated from the scaffolds `devnix init` uses: the two cannot drift."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from devnix.cli import app
from devnix.images import parse_ref
from devnix.plan import Facts, Known, Source, decide
from devnix.platforms import Platform
from devnix.render import render
from devnix.templates import IMAGE_OPTION, NIX_PATH_OPTION, TEMPLATES, render_template

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_committed_templates_match_the_scaffolds() -> None:
    result = runner.invoke(app, ["templates", "render", str(ROOT / "templates"), "--check"])
    assert result.exit_code == 0, result.output


def test_check_fails_on_drift_and_render_repairs_it(tmp_path: Path) -> None:
    copy = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", copy)
    (copy / "src" / "nix" / ".devcontainer" / "nix.conf").write_text("# edited by hand\n")
    (copy / "src" / "nix" / "stray.txt").write_text("x")
    drift = runner.invoke(app, ["templates", "render", str(copy), "--check", "--json"])
    assert drift.exit_code == 1
    assert json.loads(drift.stdout)["drifted"] == ["src/nix/.devcontainer/nix.conf", "src/nix/stray.txt"]
    assert runner.invoke(app, ["templates", "render", str(copy)]).exit_code == 0
    assert runner.invoke(app, ["templates", "render", str(copy), "--check"]).exit_code == 0


def test_metadata_follows_the_spec() -> None:
    for template in TEMPLATES:
        metadata = json.loads(render_template(template)["devcontainer-template.json"])
        assert metadata["id"] == template.id
        assert metadata["version"].count(".") == 2
        for option in metadata["options"].values():
            assert option["type"] in ("string", "boolean")  # the only types Templates have
            assert isinstance(option["default"], str)
        assert {"image", "nixPath"} <= set(metadata["options"])


def test_a_template_with_its_options_filled_in_is_what_init_writes() -> None:
    amd64 = Platform("linux", "amd64")
    image, nix_path = "registry.example/nix:1", "nixpkgs=channel:nixos-24.05"
    plan = decide(
        Facts(
            image=parse_ref(image),
            image_platforms=Known((amd64,), Source.REGISTRY),
            engine_platform=amd64,
            engine_source=Source.ENGINE,
            nix_path=nix_path,
        )
    )
    for template in TEMPLATES:
        from_init = render(plan, template.layout)
        from_template = render_template(template)
        for path, text in from_init.items():
            filled = from_template[path].replace(IMAGE_OPTION, image).replace(NIX_PATH_OPTION, nix_path)
            filled = filled.replace("the Docker engine's platform", "linux/amd64")
            assert filled == text, f"{template.id}: {path}"
