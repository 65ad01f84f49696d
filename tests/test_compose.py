"""--merge on dockerComposeFile configs: the service is edited in its compose file, comments and all."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from devnix import jsonc
from devnix.cli import app
from devnix.compose import ComposeRefused, edit_service
from devnix.configfile import MergeRefused, find_config
from devnix.errors import UsageError
from devnix.images import Filesystem, parse_ref
from devnix.merge import merge_all
from devnix.plan import Facts, Known, Plan, Source, decide
from devnix.platforms import Platform
from devnix.render import Layout
from tests.support import CORPUS, CORPUS_FILES, corpus_params

COMPOSE_CORPUS = [p for p in CORPUS_FILES if "dockerComposeFile" in jsonc.parse(jsonc.read_file(p)).value]
AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
IMAGE = "localhost:5000/devnix-test/nix:multi"
NIX_PATH = "nixpkgs=channel:nixos-unstable"
CONF = "/workspace/.devcontainer/nix.conf"
ENV = {"NIX_PATH": NIX_PATH, "NIX_USER_CONF_FILES": CONF}


def plan(emulated: bool = False, store: bool = False, filesystem: Filesystem = Filesystem.FHS) -> Plan:
    return decide(
        Facts(
            image=parse_ref(IMAGE),
            image_platforms=Known((AMD64, ARM64), Source.REGISTRY, "sha256:" + "b" * 64),
            engine_platform=AMD64,
            engine_source=Source.ENGINE,
            requested_platform=ARM64 if emulated else None,
            nix_path=NIX_PATH,
            store_volume=store,
            filesystem=filesystem,
            filesystem_source=Source.REGISTRY,
        )
    )


def edit(
    text: str, *, image: str | None = IMAGE, pin: bool = False, env: dict[str, str] | None = None
) -> str:
    platform = "linux/arm64" if pin else "linux/amd64"
    return edit_service(
        text, "app", where="compose.yml", image=image, platform=platform, pin=pin, environment=env or ENV
    )


def load(text: str) -> Any:
    return YAML(typ="safe").load(text.removeprefix("\ufeff"))


def comments(text: str) -> list[str]:
    """Every comment's text, in order (good enough for these files: no '#' inside values)."""
    return [line.split("#", 1)[1].rstrip("\r") for line in text.splitlines() if "#" in line]


MAPPING = """\
# the dev stack
version: '3.8'

services:
  app:   # the dev container
    image: "mcr.microsoft.com/devcontainers/base:bookworm"   # base image
    volumes:
      - ..:/workspace:cached
    environment:
      FOO: "bar"    # keep me
      EMPTY:
    command: sleep infinity

  db:
    image: postgres:16
    environment:
    - POSTGRES_PASSWORD=postgres
"""


def test_mapping_environment_image_and_platform_with_comments_kept() -> None:
    merged = edit(MAPPING, pin=True)
    assert comments(merged) == comments(MAPPING)
    assert '    image: "localhost:5000/devnix-test/nix:multi"   # base image\n' in merged
    assert (
        '      FOO: "bar"    # keep me\n      EMPTY:\n'
        "      NIX_PATH: nixpkgs=channel:nixos-unstable\n"
        "      NIX_USER_CONF_FILES: /workspace/.devcontainer/nix.conf\n"
        "    command: sleep infinity\n    platform: linux/arm64\n\n  db:\n"
    ) in merged
    # Nothing outside the service changed, byte for byte.
    assert merged.split("  db:")[1] == MAPPING.split("  db:")[1]
    assert merged.startswith("# the dev stack\nversion: '3.8'\n\nservices:\n  app:   # the dev container\n")
    assert edit(merged, pin=True) == merged  # a second identical edit changes nothing


def test_native_plan_removes_the_platform_devnix_pinned_and_keeps_a_native_one() -> None:
    pinned = edit(MAPPING, pin=True)
    native = edit(pinned)
    assert "platform" not in native
    assert native == edit(MAPPING)
    own = MAPPING.replace("    command:", "    platform: linux/amd64  # mine\n    command:")
    assert edit(own) == edit(MAPPING).replace(
        "    command:", "    platform: linux/amd64  # mine\n    command:"
    )
    assert "platform: linux/arm64  # mine" in edit(own, pin=True)


LIST = """\
services:
    app:
        image: old
        environment:
            - FOO=1   # first
            - 'NIX_PATH=nixpkgs=/old'
            - BAR
"""


def test_list_environment_keeps_its_form_quoting_and_dash_indentation() -> None:
    merged = edit(LIST)
    assert merged == (
        "services:\n    app:\n        image: localhost:5000/devnix-test/nix:multi\n        environment:\n"
        "            - FOO=1   # first\n            - 'NIX_PATH=nixpkgs=channel:nixos-unstable'\n"
        "            - BAR\n            - NIX_USER_CONF_FILES=/workspace/.devcontainer/nix.conf\n"
    )
    assert edit(merged) == merged


def test_missing_or_empty_environment_is_created_in_the_files_indentation() -> None:
    four = "services:\n    app:\n        image: x\n        volumes:\n            - a:/b\n"
    merged = edit(four)
    assert merged.endswith(
        "            - a:/b\n        environment:\n            NIX_PATH: nixpkgs=channel:nixos-unstable\n"
        "            NIX_USER_CONF_FILES: /workspace/.devcontainer/nix.conf\n"
    )
    empty = "services:\n  app:\n    environment:   # later\n    image: x\n"
    merged = edit(empty)
    assert merged.startswith(
        "services:\n  app:\n    environment:   # later\n      NIX_PATH: nixpkgs=channel:nixos-unstable\n"
    )
    assert load(merged)["services"]["app"]["environment"] == ENV
    assert edit(merged) == merged


def test_values_are_quoted_when_plain_would_not_read_back_and_dollars_escaped() -> None:
    merged = edit("services:\n  app:\n    image: x\n", env={"A": "true", "B": "x: y", "C": "$HOME/c"})
    environment = load(merged)["services"]["app"]["environment"]
    assert environment == {"A": "true", "B": "x: y", "C": "$$HOME/c"}  # compose reads $$ as $


def test_build_service_keeps_its_build_and_has_no_image_set() -> None:
    text = "services:\n  app:\n    build:\n      context: ..\n      dockerfile: Dockerfile\n"
    merged = edit(text, image=None, pin=True)
    service = load(merged)["services"]["app"]
    assert "image" not in service
    assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert service["platform"] == "linux/arm64"


def test_crlf_and_bom_are_kept() -> None:
    text = "\ufeff# top\r\nservices:\r\n  app:\r\n    image: x # img\r\n    environment:\r\n      A: 1\r\n"
    merged = edit(text, pin=True)
    assert merged.startswith("\ufeff# top\r\n")
    assert "\n" not in merged.replace("\r\n", "")
    assert "    image: localhost:5000/devnix-test/nix:multi # img\r\n" in merged
    assert merged == (
        "\ufeff# top\r\nservices:\r\n  app:\r\n    image: localhost:5000/devnix-test/nix:multi # img\r\n"
        "    environment:\r\n      A: 1\r\n      NIX_PATH: nixpkgs=channel:nixos-unstable\r\n"
        "      NIX_USER_CONF_FILES: /workspace/.devcontainer/nix.conf\r\n    platform: linux/arm64\r\n"
    )
    assert load(merged)["services"]["app"]["environment"] == {"A": 1, **ENV}
    assert edit(merged, pin=True) == merged


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services:\n  db:\n    image: x\n", "has no service 'app'"),
        ("x: &base\n  image: x\nservices:\n  app: *base\n", "anchor &base"),
        ("x: &base\n  image: x\nservices:\n  app:\n    <<: *base\n    tty: true\n", "merge key"),
        ("x: &e\n  A: 1\nservices:\n  app:\n    image: y\n    environment: *e\n", "anchor &e"),
        ("services:\n  app: {image: x}\n", "flow style"),
        ("services:\n  app:\n    image: x\n    environment: [A=1]\n", "flow style"),
        ("services:\n  app:\n    image: [x\n", "not valid YAML"),
    ],
)
def test_what_cannot_be_edited_safely_is_refused(text: str, message: str) -> None:
    with pytest.raises(ComposeRefused, match=re.escape(message)):
        edit(text)


# ------------------------------------------------------------------------------------------------
# Through devcontainer.json: finding the compose files, what goes where.


def project(
    tmp_path: Path, config: dict[str, Any], composes: dict[str, str], *, comment: str = "// mine\n"
) -> Path:
    (tmp_path / ".devcontainer").mkdir(parents=True, exist_ok=True)
    (tmp_path / ".devcontainer" / "devcontainer.json").write_text(comment + json.dumps(config, indent=2))
    for name, text in composes.items():
        path = tmp_path / ".devcontainer" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def merge(root: Path, emulated: bool = False, **layout: Any) -> tuple[str, list[str], dict[str, str]]:
    text, notes, others = merge_all(find_config(root), plan(emulated), Layout(name="x", **layout))
    return text, notes, {path.relative_to(root).as_posix(): new for path, (_old, new) in others.items()}


COMPOSE_CONFIG = {
    "dockerComposeFile": "docker-compose.yml",
    "service": "app",
    "workspaceFolder": "/workspace",
}


def test_devcontainer_json_gets_extensions_never_image_or_run_args(tmp_path: Path) -> None:
    root = project(tmp_path, COMPOSE_CONFIG, {"docker-compose.yml": MAPPING})
    text, notes, others = merge(root, emulated=True, direnv=True)
    value = jsonc.parse(text).value
    assert text.startswith("// mine\n")
    assert value["customizations"]["vscode"]["extensions"] == ["jnoortheen.nix-ide", "mkhl.direnv"]
    assert value["postCreateCommand"] == "bash .devcontainer/post-create.sh"
    assert not {"image", "runArgs", "containerEnv", "remoteEnv", "mounts"} & set(value)
    service = load(others[".devcontainer/docker-compose.yml"])["services"]["app"]
    assert service["image"] == IMAGE and service["platform"] == "linux/arm64"
    assert service["environment"]["NIX_USER_CONF_FILES"] == CONF
    assert notes == []


def test_without_a_literal_workspace_folder_the_conf_path_goes_to_remote_env(tmp_path: Path) -> None:
    for workspace in (None, "/workspaces/${localWorkspaceFolderBasename}"):
        config = {"dockerComposeFile": "docker-compose.yml", "service": "app"}
        if workspace:
            config["workspaceFolder"] = workspace
        root = project(tmp_path, config, {"docker-compose.yml": MAPPING})
        text, notes, others = merge(root)
        assert jsonc.parse(text).value["remoteEnv"] == {
            "NIX_USER_CONF_FILES": "${containerWorkspaceFolder}/.devcontainer/nix.conf"
        }
        environment = load(others[".devcontainer/docker-compose.yml"])["services"]["app"]["environment"]
        assert environment == {"FOO": "bar", "EMPTY": None, "NIX_PATH": NIX_PATH}
        assert any("remoteEnv" in note for note in notes)


def test_several_compose_files_the_last_defining_image_or_build_is_edited(tmp_path: Path) -> None:
    base = "# base\nservices:\n  app:\n    image: old\n  db:\n    image: pg\n"
    override = "# override\nservices:\n  app:\n    volumes:\n      - ..:/workspace\n"
    config = {**COMPOSE_CONFIG, "dockerComposeFile": ["../docker-compose.yml", "docker-compose.yml"]}
    root = project(tmp_path, config, {"../docker-compose.yml": base, "docker-compose.yml": override})
    _text, _notes, others = merge(root)
    assert list(others) == ["docker-compose.yml"]
    assert load(others["docker-compose.yml"])["services"]["app"]["image"] == IMAGE
    later = "services:\n  app:\n    build: .\n"
    root = project(tmp_path, config, {"../docker-compose.yml": base, "docker-compose.yml": later})
    assert find_config(root).is_build
    _text, _notes, others = merge(root)
    assert list(others) == [".devcontainer/docker-compose.yml"]
    assert "image" not in load(others[".devcontainer/docker-compose.yml"])["services"]["app"]


@pytest.mark.parametrize(
    ("config", "composes", "message"),
    [
        (COMPOSE_CONFIG, {}, "compose file docker-compose.yml is missing"),
        ({**COMPOSE_CONFIG, "dockerComposeFile": "../../elsewhere.yml"}, {}, "outside the project"),
        (COMPOSE_CONFIG, {"docker-compose.yml": "services:\n  db:\n    image: x\n"}, "defines it: service"),
        (
            COMPOSE_CONFIG,
            {"docker-compose.yml": "services:\n  app:\n    extends: {file: x.yml, service: y}\n"},
            "without an image or a build",
        ),
        ({**COMPOSE_CONFIG, "service": 3}, {}, "needs a service"),
    ],
)
def test_compose_configs_devnix_cannot_edit_are_refused(
    tmp_path: Path, config: dict[str, Any], composes: dict[str, str], message: str
) -> None:
    root = project(tmp_path / "p", config, composes)
    with pytest.raises(MergeRefused, match=re.escape(message)):
        merge(root)


# ------------------------------------------------------------------------------------------------
# The corpus: every compose config, with a plausible compose file written beside it.


def plausible_compose(service: str, *, image: bool = True) -> str:
    definition = (
        "    image: mcr.microsoft.com/devcontainers/base:bookworm  # the dev image\n" if image else ""
    )
    return (
        "# Written by the test: a compose file such a config comes with.\n"
        f"services:\n  {service}:\n{definition}"
        "    volumes:\n      - ../..:/workspaces:cached  # the project\n"
        "    command: sleep infinity\n\n"
        "  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: postgres\n"
    )


@pytest.mark.shared
def test_the_corpus_has_its_compose_configs() -> None:
    assert len(COMPOSE_CORPUS) == 22, f"expected 22 compose configs under {CORPUS}"


@pytest.mark.parametrize("source", corpus_params(COMPOSE_CORPUS, 70))
def test_corpus_compose_configs_merge_into_both_files(source: Path, tmp_path: Path) -> None:
    original = jsonc.read_file(source)
    before = jsonc.parse(original).value
    names = before["dockerComposeFile"]
    names = [names] if isinstance(names, str) else names
    # Only the last file defines the image; earlier ones define the service partly (an override).
    composes = {
        name: plausible_compose(before["service"], image=i == len(names) - 1) for i, name in enumerate(names)
    }
    (tmp_path / ".devcontainer").mkdir()
    (tmp_path / ".devcontainer" / "devcontainer.json").write_text(original)
    for name, text in composes.items():
        (tmp_path / ".devcontainer" / name).write_text(text)
    for emulated in (True, False):
        text, _notes, others = merge(tmp_path, emulated=emulated, direnv=True)
        after = jsonc.parse(text).value
        assert [c.text for c in jsonc.parse(text).comments] == [
            c.text for c in jsonc.parse(original).comments
        ]
        for key, value in before.items():
            if key not in ("customizations", "postCreateCommand", "remoteEnv"):
                assert after[key] == value, key
        assert not {"image", "runArgs", "containerEnv"} & (set(after) - set(before))
        assert after["customizations"]["vscode"]["extensions"][-1] == "mkhl.direnv"
        [(path, compose_text)] = others.items()
        old_compose = composes[names[-1]]
        assert path == Path(".devcontainer", names[-1]).as_posix().replace(".devcontainer/../", "")
        assert comments(compose_text) == comments(old_compose)
        new, old = load(compose_text), load(old_compose)
        assert new["services"]["db"] == old["services"]["db"]
        service = new["services"][before["service"]]
        assert service["image"] == IMAGE
        assert service.get("platform") == ("linux/arm64" if emulated else None)
        assert service["environment"]["NIX_PATH"] == NIX_PATH
        workspace = before.get("workspaceFolder")
        if workspace and "${" not in workspace:
            assert (
                service["environment"]["NIX_USER_CONF_FILES"]
                == f"{workspace.rstrip('/')}/.devcontainer/nix.conf"
            )
        else:
            assert after["remoteEnv"]["NIX_USER_CONF_FILES"].startswith("${containerWorkspaceFolder}/")
        # Written out and merged again: byte-identical.
        (tmp_path / ".devcontainer" / "devcontainer.json").write_text(text)
        (tmp_path / path).write_text(compose_text)
        again, _, others_again = merge(tmp_path, emulated=emulated, direnv=True)
        assert again == text and others_again == {}
        (tmp_path / ".devcontainer" / "devcontainer.json").write_text(original)
        (tmp_path / path).write_text(old_compose)


# ------------------------------------------------------------------------------------------------
# The command


def test_init_merge_dry_run_diffs_both_files_then_writes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")  # no engine: the host's platform
    root = project(tmp_path / "p", COMPOSE_CONFIG, {"docker-compose.yml": MAPPING})
    compose = root / ".devcontainer" / "docker-compose.yml"
    args = ["init", str(root), "--merge", "--image", "localhost:9/nix:x", "--platform", "linux/arm64"]
    runner = CliRunner()
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "+++ b/.devcontainer/docker-compose.yml" in dry.stdout
    assert "+++ b/.devcontainer/devcontainer.json" in dry.stdout
    assert "+      NIX_PATH: nixpkgs=channel:nixos-unstable" in dry.stdout
    assert compose.read_text() == MAPPING
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    written = compose.read_text()
    assert 'image: "localhost:9/nix:x"   # base image' in written
    config = (root / ".devcontainer" / "devcontainer.json").read_text()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "unchanged" in again.stdout
    assert compose.read_text() == written
    assert (root / ".devcontainer" / "devcontainer.json").read_text() == config


def test_init_merge_refusal_is_one_line_and_touches_nothing(tmp_path: Path) -> None:
    root = project(tmp_path / "p", COMPOSE_CONFIG, {})
    before = (root / ".devcontainer" / "devcontainer.json").read_text()
    result = CliRunner().invoke(app, ["init", str(root), "--merge", "--image", "localhost:9/nix:x"])
    assert result.exit_code == UsageError.exit_code
    assert "compose file docker-compose.yml is missing" in result.stderr
    assert isinstance(result.exception, SystemExit)  # handled: an exit code, not an uncaught error
    assert sorted(p.name for p in (root / ".devcontainer").iterdir()) == ["devcontainer.json"]
    assert (root / ".devcontainer" / "devcontainer.json").read_text() == before


def test_a_store_only_image_in_a_compose_service_is_named_with_what_to_do(tmp_path: Path) -> None:
    root = project(tmp_path, COMPOSE_CONFIG, {"docker-compose.yml": MAPPING})
    config = find_config(root)
    _text, notes, _others = merge_all(config, plan(filesystem=Filesystem.STORE_ONLY), Layout(name="x"))
    assert any("VS Code's server cannot start in 'app'" in note for note in notes)
