from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devnix.cli import app
from tests.replay_engine import recorded, replay_engine

# A closed loopback port: the registry cannot be reached, at once, on any machine.
UNREACHABLE = "localhost:9/devnix/nix:test"

runner = CliRunner()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # Unix socket paths must stay under ~100 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="dvx", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def amd64_engine(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    answers = {"/version": recorded("dockerd-amd64.version.json")}
    with replay_engine(short_tmp / "docker.sock", answers) as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        yield


@pytest.fixture
def apple_silicon_engine(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    answers = {"/version": recorded("docker-desktop-apple-silicon.version.json")}
    with replay_engine(short_tmp / "docker.sock", answers) as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        yield


@pytest.fixture
def no_engine(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{short_tmp}/missing.sock")


def init_json(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["init", *args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_writes_config_with_the_engine_platform(amd64_engine: None, tmp_path: Path) -> None:
    data = init_json(str(tmp_path), "--image", UNREACHABLE, "--platform", "linux/amd64")
    assert data["platform"] == "linux/amd64"
    assert data["emulated"] is False
    assert data["engine_platform"] == "linux/amd64"
    assert data["engine_source"] == "engine"
    assert data["source"] == "assumed"
    # Nothing could tell the image's layout: the FHS loader step goes in (a no-op in FHS images).
    assert (data["filesystem"], data["filesystem_source"], data["fhs_loader"]) == ("unknown", "assumed", True)
    assert data["files"] == [
        ".devcontainer/Dockerfile",
        ".devcontainer/devcontainer.json",
        ".devcontainer/fhs-loader.sh",
        ".devcontainer/nix.conf",
    ]
    assert (tmp_path / ".devcontainer" / "devcontainer.json").is_file()
    assert os.access(tmp_path / ".devcontainer" / "fhs-loader.sh", os.X_OK)
    assert "filter-syscalls" not in (tmp_path / ".devcontainer" / "nix.conf").read_text()


def test_no_fhs_loader_keeps_an_image_config(amd64_engine: None, tmp_path: Path) -> None:
    data = init_json(str(tmp_path), "--image", UNREACHABLE, "--platform", "linux/amd64", "--no-fhs-loader")
    assert data["fhs_loader"] is False
    assert data["files"] == [".devcontainer/devcontainer.json", ".devcontainer/nix.conf"]
    config = (tmp_path / ".devcontainer" / "devcontainer.json").read_text()
    assert f'"image": "{UNREACHABLE}"' in config


def test_the_catalog_knows_nixos_nix_is_store_only(
    amd64_engine: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devnix import registry
    from devnix.errors import RegistryError

    def offline(*_args: object, **_kwargs: object) -> None:
        raise RegistryError("registry-1.docker.io cannot be reached (this test is offline by design)")

    monkeypatch.setattr(registry, "image_platforms", offline)
    result = runner.invoke(app, ["init", str(tmp_path), "--platform", "linux/amd64"])
    assert result.exit_code == 0, result.output
    assert "store-only (from devnix's catalog)" in result.stdout
    dockerfile = (tmp_path / ".devcontainer" / "Dockerfile").read_text()
    assert "RUN sh /tmp/devnix-fhs-loader.sh" in dockerfile


def test_apple_silicon_engine_with_foreign_platform_runs_emulated(
    apple_silicon_engine: None, tmp_path: Path
) -> None:
    data = init_json(str(tmp_path), "--image", UNREACHABLE, "--platform", "linux/amd64")
    assert data["engine_platform"] == "linux/arm64"
    assert data["platform"] == "linux/amd64"
    assert data["emulated"] is True
    assert data["nix_settings"]["filter-syscalls"] == "false"  # type: ignore[index]
    config = (tmp_path / ".devcontainer" / "devcontainer.json").read_text()
    assert '"runArgs": ["--platform=linux/amd64"]' in config


def test_without_an_engine_the_host_platform_is_used_and_said(no_engine: None, tmp_path: Path) -> None:
    data = init_json(str(tmp_path), "--image", UNREACHABLE, "--platform", "linux/amd64")
    assert data["engine_source"] == "host"
    assert any("no Docker engine answered" in str(note) for note in data["notes"])  # type: ignore[attr-defined]


def test_unreachable_registry_without_fallback_is_one_clean_line(amd64_engine: None, tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--image", UNREACHABLE])
    assert result.exit_code == 4
    assert "cannot learn the platforms" in result.stderr
    assert isinstance(result.exception, SystemExit)  # handled: an exit code, not an uncaught error
    assert not (tmp_path / ".devcontainer").exists()


def test_existing_config_is_kept_unless_forced(amd64_engine: None, tmp_path: Path) -> None:
    config = tmp_path / ".devcontainer" / "devcontainer.json"
    config.parent.mkdir()
    config.write_text("// mine\n{}\n")
    args = ["init", str(tmp_path), "--image", UNREACHABLE, "--platform", "linux/amd64"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 3
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert config.read_text() == "// mine\n{}\n"
    assert not (tmp_path / ".devcontainer" / "nix.conf").exists()
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "Written by devnix" in config.read_text()


def test_dry_run_writes_nothing_and_shows_the_files(amd64_engine: None, tmp_path: Path) -> None:
    data = init_json(str(tmp_path), "--image", UNREACHABLE, "--platform", "linux/arm64", "--dry-run")
    assert data["dry_run"] is True
    assert "filter-syscalls = false" in data["contents"][".devcontainer/nix.conf"]  # type: ignore[index]
    assert list(tmp_path.iterdir()) == []
    text = runner.invoke(
        app, ["init", str(tmp_path), "--image", UNREACHABLE, "--platform", "arm64", "--dry-run"]
    )
    assert text.exit_code == 0
    assert "would write" in text.stdout and "| filter-syscalls = false" in text.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--platform", "linux/s390x"], 2, "unsupported platform"),
        (["--platform", "linux//"], 2, "malformed platform"),
        (["--image", "Not A Ref"], 2, "malformed image reference"),
        (["--image", "nixos/nix:bad:tag"], 2, "malformed"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    amd64_engine: None, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), *args])
    assert result.exit_code == code
    assert message in result.stderr
    assert result.stderr.startswith("devnix: error: ")
    assert isinstance(result.exception, SystemExit)  # handled: an exit code, not an uncaught error


def test_missing_folder_is_refused(amd64_engine: None, tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "nope"), "--platform", "linux/amd64"])
    assert result.exit_code == 6
    assert "is not a folder" in result.stderr


def test_flake_scaffold_is_written_only_when_missing(amd64_engine: None, tmp_path: Path) -> None:
    base = ["init", "--image", UNREACHABLE, "--platform", "linux/amd64", "--flake", "--json"]
    fresh = json.loads(runner.invoke(app, [base[0], str(tmp_path), *base[1:]]).stdout)
    assert "flake.nix" in fresh["files"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "flake.nix").write_text("{ }\n")
    kept = json.loads(runner.invoke(app, [base[0], str(other), *base[1:]]).stdout)
    assert "flake.nix" not in kept["files"]
    assert (other / "flake.nix").read_text() == "{ }\n"


def test_version_and_help_as_a_real_process() -> None:
    env = {**os.environ}
    version = subprocess.run(
        [sys.executable, "-m", "devnix", "--version"], capture_output=True, text=True, env=env, check=False
    )
    assert version.returncode == 0
    assert version.stdout.startswith("devnix ")
    helped = subprocess.run(
        [sys.executable, "-m", "devnix", "init", "--help"], capture_output=True, text=True, check=False
    )
    assert helped.returncode == 0
    for option in ("--image", "--platform", "--dockerfile", "--flake", "--direnv", "--force", "--dry-run"):
        assert option in helped.stdout


def test_init_as_a_real_process_without_engine(tmp_path: Path, short_tmp: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{short_tmp}/missing.sock"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devnix",
            "init",
            str(tmp_path),
            "--image",
            UNREACHABLE,
            "--platform",
            "linux/arm64",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "platform: linux/arm64" in done.stdout
    assert (tmp_path / ".devcontainer" / "nix.conf").is_file()


MINE = '// mine\n{\n  "name": "mine", // keep me\n  "image": "old/image:1",\n  "forwardPorts": [3000],\n}\n'


def test_merge_edits_in_place_and_a_second_merge_changes_nothing(amd64_engine: None, tmp_path: Path) -> None:
    config = tmp_path / ".devcontainer" / "devcontainer.json"
    config.parent.mkdir()
    config.write_text(MINE)
    args = ["init", str(tmp_path), "--merge", "--image", UNREACHABLE, "--platform", "linux/amd64"]
    args.append("--no-fhs-loader")  # an image known to have an FHS loader keeps its image config
    preview = runner.invoke(app, [*args, "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert '-  "image": "old/image:1",' in preview.stdout
    assert f'+  "image": "{UNREACHABLE}",' in preview.stdout
    assert config.read_text() == MINE
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    merged = config.read_text()
    assert "// keep me" in merged and '"forwardPorts": [3000],' in merged
    assert (tmp_path / ".devcontainer" / "nix.conf").is_file()
    second = runner.invoke(app, [*args, "--json"])
    assert second.exit_code == 0
    assert json.loads(second.stdout)["files"] == []
    assert config.read_text() == merged


def test_merge_of_a_store_only_image_refuses_to_build_someone_elses_dockerfile(
    amd64_engine: None, tmp_path: Path
) -> None:
    folder = tmp_path / ".devcontainer"
    folder.mkdir()
    (folder / "devcontainer.json").write_text(MINE)
    (folder / "Dockerfile").write_text("FROM debian\n")
    args = ["init", str(tmp_path), "--merge", "--image", UNREACHABLE, "--platform", "linux/amd64"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2, refused.output
    assert "Dockerfile exists and is not devnix's" in refused.stderr
    assert (folder / "devcontainer.json").read_text() == MINE
    assert (folder / "Dockerfile").read_text() == "FROM debian\n"
    forced = runner.invoke(app, [*args, "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    assert "RUN sh /tmp/devnix-fhs-loader.sh" in (folder / "Dockerfile").read_text()
    assert '"build": {' in (folder / "devcontainer.json").read_text()


def test_merge_refuses_compose_configs_and_leaves_them_alone(amd64_engine: None, tmp_path: Path) -> None:
    config = tmp_path / ".devcontainer.json"
    text = '{"dockerComposeFile": "compose.yml", "service": "app"}\n'
    config.write_text(text)
    result = runner.invoke(app, ["init", str(tmp_path), "--merge", "--platform", "linux/amd64"])
    assert result.exit_code == 2
    assert "compose file" in result.stderr and result.stderr.count("\n") == 2  # one line and its hint
    assert config.read_text() == text
    assert not (tmp_path / ".devcontainer").exists()


def test_merge_without_a_config_says_what_to_do(amd64_engine: None, tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--merge"])
    assert result.exit_code == 2
    assert "no devcontainer.json to merge into" in result.stderr


def test_merge_keeps_an_edited_nix_conf_unless_forced(amd64_engine: None, tmp_path: Path) -> None:
    folder = tmp_path / ".devcontainer"
    folder.mkdir()
    (folder / "devcontainer.json").write_text("{}\n")
    (folder / "nix.conf").write_text("max-jobs = 4\n")
    args = ["init", str(tmp_path), "--merge", "--image", UNREACHABLE, "--platform", "linux/amd64", "--json"]
    kept = json.loads(runner.invoke(app, args).stdout)
    assert (folder / "nix.conf").read_text() == "max-jobs = 4\n"
    assert any("nix.conf exists" in note for note in kept["notes"])
    runner.invoke(app, [*args, "--force"])
    assert "experimental-features" in (folder / "nix.conf").read_text()


def test_top_level_help_lists_every_command_without_building_them() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("init", "validate", "doctor", "manifest", "bootstrap", "publish", "templates"):
        assert f"  {name} " in result.stdout
    unknown = runner.invoke(app, ["frobnicate"])
    assert unknown.exit_code == 2
    assert "No such command" in unknown.output


def test_merge_refuses_a_nix_conf_that_is_a_folder_and_a_config_outside_the_project(
    amd64_engine: None, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    folder = project / ".devcontainer"
    folder.mkdir(parents=True)
    (folder / "devcontainer.json").write_text(MINE)
    (folder / "nix.conf").mkdir()
    args = ["init", str(project), "--merge", "--image", UNREACHABLE, "--platform", "linux/amd64"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 6, refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    assert "is a folder" in refused.stderr
    assert (folder / "devcontainer.json").read_text() == MINE
    outside = tmp_path / "elsewhere.json"
    outside.write_text(MINE)
    escaped = runner.invoke(app, [*args[:3], "--merge", "--config", "../elsewhere.json"])
    assert escaped.exit_code == 2, escaped.output
    assert "outside the project" in escaped.stderr
    assert outside.read_text() == MINE


def test_merge_without_image_keeps_the_configs_own_image(amd64_engine: None, tmp_path: Path) -> None:
    folder = tmp_path / ".devcontainer"
    folder.mkdir()
    (folder / "devcontainer.json").write_text('{\n  // ours\n  "image": "' + UNREACHABLE + '"\n}\n')
    result = runner.invoke(app, ["init", str(tmp_path), "--merge", "--platform", "linux/amd64", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["image"] == UNREACHABLE
    # Nothing could tell its layout, so it is built with the loader step, FROM the same image.
    assert (folder / "Dockerfile").read_text().splitlines()[1] == f"FROM {UNREACHABLE}"
    assert "// ours" in (folder / "devcontainer.json").read_text()
