from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devnix.fhsloader import script_text
from devnix.images import Filesystem, parse_ref
from devnix.nixconf import parse as parse_nixconf
from devnix.plan import Facts, Known, Plan, Source, decide
from devnix.platforms import Platform
from devnix.render import DIRENV_EXTENSION, NIX_EXTENSION, Layout, render

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")


def strip_comments(text: str) -> str:
    # The scaffolds only put comments on lines of their own.
    return "\n".join(line for line in text.splitlines() if not re.match(r"\s*//", line))


def plan_for(
    engine: Platform,
    image: tuple[Platform, ...],
    store: bool = False,
    filesystem: Filesystem = Filesystem.FHS,
) -> Plan:
    return decide(
        Facts(
            image=parse_ref("localhost:5000/nix:multi"),
            image_platforms=Known(image, Source.REGISTRY, "sha256:" + "a" * 64),
            engine_platform=engine,
            engine_source=Source.ENGINE,
            nix_path="nixpkgs=channel:nixos-unstable",
            store_volume=store,
            filesystem=filesystem,
            filesystem_source=Source.REGISTRY,
        )
    )


def test_native_config_has_no_platform_pin_and_keeps_the_filter() -> None:
    files = render(plan_for(AMD64, (AMD64, ARM64)), Layout(name="demo"))
    config = json.loads(strip_comments(files[".devcontainer/devcontainer.json"]))
    assert config["image"] == "localhost:5000/nix:multi"
    assert "runArgs" not in config
    assert config["containerEnv"]["NIX_PATH"] == "nixpkgs=channel:nixos-unstable"
    assert config["containerEnv"]["NIX_USER_CONF_FILES"].endswith("/.devcontainer/nix.conf")
    assert config["customizations"]["vscode"]["extensions"] == [NIX_EXTENSION]
    nixconf = parse_nixconf(files[".devcontainer/nix.conf"])
    assert "filter-syscalls" not in nixconf
    assert nixconf["experimental-features"] == "nix-command flakes"


def test_emulated_config_pins_the_platform_and_turns_the_filter_off() -> None:
    files = render(plan_for(AMD64, (ARM64,)), Layout(name="demo", dockerfile=True))
    config = json.loads(strip_comments(files[".devcontainer/devcontainer.json"]))
    assert config["runArgs"] == ["--platform=linux/arm64"]
    assert config["build"] == {"dockerfile": "Dockerfile", "options": ["--platform=linux/arm64"]}
    assert "image" not in config
    assert "FROM --platform=linux/arm64 localhost:5000/nix:multi" in files[".devcontainer/Dockerfile"]
    assert parse_nixconf(files[".devcontainer/nix.conf"])["filter-syscalls"] == "false"


def test_store_volume_pins_the_image_digest_it_is_keyed_to() -> None:
    files = render(plan_for(AMD64, (AMD64,), store=True), Layout(name="demo"))
    config = json.loads(strip_comments(files[".devcontainer/devcontainer.json"]))
    assert config["image"].endswith("@sha256:" + "a" * 64)
    (mount,) = config["mounts"]
    assert "target=/nix" in mount and "aaaaaaaaaaaaaaaa" in mount and "${devcontainerId}" in mount


def test_flake_and_direnv_add_their_files_and_extension() -> None:
    files = render(
        plan_for(AMD64, (AMD64,)), Layout(name="demo", flake=True, direnv=True, write_flake_nix=True)
    )
    assert set(files) >= {".envrc", "flake.nix", ".devcontainer/post-create.sh"}
    assert "use flake" in files[".envrc"]
    assert "nix develop --command true" in files[".devcontainer/post-create.sh"]
    config = json.loads(strip_comments(files[".devcontainer/devcontainer.json"]))
    assert DIRENV_EXTENSION in config["customizations"]["vscode"]["extensions"]
    assert config["postCreateCommand"] == "bash .devcontainer/post-create.sh"


def test_flake_without_direnv_opens_terminals_in_the_dev_shell() -> None:
    files = render(plan_for(AMD64, (AMD64,)), Layout(name="demo", flake=True))
    config = json.loads(strip_comments(files[".devcontainer/devcontainer.json"]))
    settings = config["customizations"]["vscode"]["settings"]
    assert settings["terminal.integrated.defaultProfile.linux"] == "nix develop"
    assert "flake.nix" not in files


def test_names_with_quotes_stay_valid_json() -> None:
    files = render(plan_for(AMD64, (AMD64,)), Layout(name='we"ird\\name'))
    config = json.loads(strip_comments(files[".devcontainer/devcontainer.json"]))
    assert config["name"] == 'we"ird\\name'


def test_compiled_scaffolds_are_cached_and_a_broken_cache_is_harmless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devnix import render as render_module

    plan = plan_for(AMD64, (AMD64,))
    render_module.environment.cache_clear()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = render(plan, Layout(name="demo"))
    assert list((tmp_path / "cache" / "devnix").glob("jinja2-*/__jinja2_*.cache"))
    render_module.environment.cache_clear()
    assert render(plan, Layout(name="demo")) == first
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    render_module.environment.cache_clear()
    assert render(plan, Layout(name="demo")) == first
    render_module.environment.cache_clear()


def test_a_store_only_image_is_built_with_the_fhs_loader_step() -> None:
    files = render(plan_for(AMD64, (AMD64, ARM64), filesystem=Filesystem.STORE_ONLY), Layout(name="demo"))
    config = json.loads(strip_comments(files[".devcontainer/devcontainer.json"]))
    assert "image" not in config
    assert config["build"] == {"dockerfile": "Dockerfile"}
    # nix.conf is still read at run time (not baked in: that is --dockerfile's job).
    assert config["containerEnv"]["NIX_USER_CONF_FILES"].endswith("/.devcontainer/nix.conf")
    assert "keeps glibc only in /nix/store" in files[".devcontainer/devcontainer.json"]
    dockerfile = files[".devcontainer/Dockerfile"]
    assert dockerfile.splitlines()[1] == "FROM localhost:5000/nix:multi"
    assert "COPY fhs-loader.sh /tmp/devnix-fhs-loader.sh" in dockerfile
    assert "RUN sh /tmp/devnix-fhs-loader.sh && rm /tmp/devnix-fhs-loader.sh" in dockerfile
    assert "nix.conf" not in dockerfile
    assert files[".devcontainer/fhs-loader.sh"] == script_text()


def test_dockerfile_and_store_only_bake_nix_conf_after_the_loader_step() -> None:
    emulated = plan_for(AMD64, (ARM64,), filesystem=Filesystem.STORE_ONLY)
    files = render(emulated, Layout(name="demo", dockerfile=True))
    dockerfile = files[".devcontainer/Dockerfile"]
    assert dockerfile.index("FROM --platform=linux/arm64") < dockerfile.index("fhs-loader.sh")
    assert dockerfile.index("fhs-loader.sh") < dockerfile.index("COPY nix.conf")
    config = json.loads(strip_comments(files[".devcontainer/devcontainer.json"]))
    assert config["build"] == {"dockerfile": "Dockerfile", "options": ["--platform=linux/arm64"]}
    assert "NIX_USER_CONF_FILES" not in config["containerEnv"]


def test_an_fhs_image_gets_no_loader_step() -> None:
    files = render(plan_for(AMD64, (AMD64,)), Layout(name="demo", dockerfile=True))
    assert ".devcontainer/fhs-loader.sh" not in files
    assert "fhs-loader" not in files[".devcontainer/Dockerfile"]
