"""``devnix validate``'s store-only-image finding from the files beside devcontainer.json: the Dockerfile
it builds, local Features, and the engine's local copy of an image devnix's catalog does not know."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnix import engine
from devnix.commands import validate as validate_command
from devnix.engine import lookups as engine_lookups
from devnix.platforms import Platform
from tests.support import SCHEMAS

pytestmark = pytest.mark.shared
AMD64 = Platform("linux", "amd64")


@pytest.fixture(autouse=True)
def fresh_answers() -> None:
    validate_command._engine_platform.cache_clear()
    validate_command._local_env.cache_clear()


def rules(
    folder: Path, text: str, ask_engine: bool = True, engine_platform: str | None = None
) -> list[tuple[str | None, int]]:
    (folder / ".devcontainer").mkdir(exist_ok=True)
    (folder / ".devcontainer" / "devcontainer.json").write_text(text)
    options = validate_command.ValidateOptions(
        folder, schema_dir=SCHEMAS, engine_platform=engine_platform, ask_engine=ask_engine
    )
    result = validate_command.run(options)
    return [(f.rule, f.line) for f in result.findings]


def test_a_dockerfile_without_the_step_is_read_and_flagged(tmp_path: Path) -> None:
    (tmp_path / ".devcontainer").mkdir()
    (tmp_path / ".devcontainer" / "Dockerfile").write_text("FROM nixos/nix:2.24\nRUN nix --version\n")
    config = '{\n  "build": {\n    "dockerfile": "Dockerfile"\n  }\n}\n'
    assert rules(tmp_path, config, ask_engine=False) == [("store-only-image", 3)]
    (tmp_path / ".devcontainer" / "fhs-loader.sh").write_text("# devnix's script\n")
    (tmp_path / ".devcontainer" / "Dockerfile").write_text(
        "FROM nixos/nix:2.24\n"
        "COPY fhs-loader.sh /tmp/devnix-fhs-loader.sh\n"
        "RUN sh /tmp/devnix-fhs-loader.sh\n"
    )
    assert rules(tmp_path, config, ask_engine=False) == []


def test_a_local_nix_feature_with_the_script_fixes_it(tmp_path: Path) -> None:
    feature = tmp_path / ".devcontainer" / "nix"
    feature.mkdir(parents=True)
    config = '{\n  "image": "nixos/nix",\n  "features": {"./nix": {}}\n}\n'
    assert rules(tmp_path, config, ask_engine=False) == [("store-only-image", 2)]
    (feature / "fhs-loader.sh").write_text("# devnix's script\n")
    assert rules(tmp_path, config, ask_engine=False) == []


def test_the_engines_local_copy_tells_an_image_the_catalog_does_not_know(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def local_image(reference: str, *, timeout: float) -> engine.LocalImage:
        # Assembled, not recorded: the Env of nixos/nix's image config (PATH of Nix profiles only).
        asked.append(reference)
        path = (
            "PATH=/root/.nix-profile/bin:/nix/var/nix/profiles/default/bin:/nix/var/nix/profiles/default/sbin"
        )
        return engine.LocalImage(AMD64, (), (path,))

    monkeypatch.setattr(engine_lookups, "local_image", local_image)  # where local_image_of looks it up
    config = '{"image": "registry.example/team/nix:1"}\n'
    assert rules(tmp_path, config, engine_platform="linux/amd64") == [("store-only-image", 1)]
    assert rules(tmp_path, config, engine_platform="linux/amd64") == [("store-only-image", 1)]
    assert asked == ["registry.example/team/nix:1"], "one question per image per process"
    # Without the engine, nothing is known about that image: no finding, no question.
    validate_command._local_env.cache_clear()
    assert rules(tmp_path, config, ask_engine=False) == []
    assert len(asked) == 1
