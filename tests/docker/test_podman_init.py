"""``devnix init`` -> ``devcontainer up --docker-path podman`` -> ``devcontainer exec`` on a real Podman,
rootful and rootless (issue #10, item 3): the same three cases as test_init_devcontainer.py under Docker.

devnix finds the engine as a user would today, through ``DOCKER_HOST`` pointed at Podman's socket; the
image comes from the session registry, which Podman pulls as plain HTTP (scripts/test's
registries.conf.d drop-in).

Rootless, and why devnix's config names no user and no user namespace: the reference CLI itself adds
``--userns=keep-id`` to ``podman run`` when the container's user is not root (devcontainers/cli#1004;
0.89.0 skips it for root), and ``updateRemoteUserUID`` does nothing for root. devnix's configs run as
the image's root (the Nix images have no other user), which rootless Podman maps to the engine's user:
the workspace stays writable and what the container writes there (a ``result`` link, an edited
nix.conf) belongs to that user on the host, with no setting at all. The settings people add for
rootless Podman would each break something (test_keep_id_in_the_config_would_break_nix_or_the_engine):
``runArgs: ["--userns=keep-id"]`` is refused by dockerd (``--userns: invalid USER mode``) and by rootful
Podman (``keep-id is only supported in rootless mode``), and under rootless Podman it runs the container
as the host user's uid, for whom single-user Nix cannot write /nix; a non-root ``remoteUser`` or
``containerUser`` needs a user the image does not have.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from podman import Podman, PodmanDevcontainer, PodmanDevcontainerCLI
from standins import BASE_ENV, NixImages, last_json_line, run
from test_init_devcontainer import TRIVIAL, show_config
from typer.testing import CliRunner

from devnix.cli import app


@pytest.fixture
def engine(podman_engine: Podman) -> Podman:
    return podman_engine  # rootful, then rootless (tests/docker/conftest.py)


@pytest.fixture
def cli(
    engine: Podman, podman_devcontainer: PodmanDevcontainer, nix_images: NixImages
) -> Iterator[PodmanDevcontainerCLI]:
    """The reference CLI on this engine; afterwards its containers go, then the session registry's
    images that it pulled into Podman's store (the port is new every session: they would pile up)."""
    made = podman_devcontainer(engine)
    yield made
    made.remove_leftovers()
    engine.untag_registry(nix_images.registry.port)


def init(engine: Podman, workspace: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    """``devnix init --json`` with DOCKER_HOST on the engine's socket; the files go to its user."""
    monkeypatch.setenv("DOCKER_HOST", engine.url)
    monkeypatch.delenv("DEVNIX_ENGINE", raising=False)  # DOCKER_HOST alone says which engine
    result = CliRunner().invoke(app, ["init", str(workspace), "--json", *args])
    monkeypatch.delenv("DOCKER_HOST")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    # The engine's platform came from Podman's API (not from this host: both are amd64 here, so the
    # source is what tells them apart).
    assert data["engine_platform"] == "linux/amd64"
    assert data["engine_source"] == "engine"
    engine.own(workspace)
    return data


def check_nix_in_container(
    engine: Podman, cli: PodmanDevcontainerCLI, workspace: Path, machine: str, filter_on: bool
) -> None:
    up = cli.up(workspace)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    result = last_json_line(up.stdout)
    assert result["outcome"] == "success"
    remote = result["remoteWorkspaceFolder"]

    uname = cli.exec(workspace, "uname", "-m")
    assert uname.stdout.strip() == machine, uname.stderr[-2000:]

    config = show_config(cli, workspace)
    assert config["filter-syscalls"] == ("true" if filter_on else "false")
    assert "flakes" in config["experimental-features"].split()
    assert config["sandbox"] == "false"

    nix_path = cli.exec(workspace, "sh", "-c", 'printf %s "$NIX_PATH"')
    assert nix_path.stdout == "nixpkgs=channel:nixos-unstable", nix_path.stderr[-2000:]

    # The offline build, with its out-link in the workspace as a project's `result` would be: the
    # container writes into the bind mount, and the link belongs to the engine's user on the host.
    build = cli.exec(
        workspace,
        "sh",
        "-c",
        f"cd {remote} && nix-build --option substituters '' -E '{TRIVIAL}' >/dev/null && cat result",
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert build.stdout.strip() == f"built-on-{machine}"
    link = workspace / "result"
    assert link.is_symlink()
    assert link.lstat().st_uid == engine.uid, f"result belongs to uid {link.lstat().st_uid}"
    # And the other way: a file the engine's user made on the host is the container's to edit.
    edited = cli.exec(workspace, "sh", "-c", f"echo '# edited' >> {remote}/.devcontainer/nix.conf")
    assert edited.returncode == 0, edited.stderr[-2000:]
    nix_conf = workspace / ".devcontainer" / "nix.conf"
    assert nix_conf.read_text().endswith("# edited\n")
    assert nix_conf.stat().st_uid == engine.uid


def test_two_platform_image_runs_natively(
    engine: Podman, cli: PodmanDevcontainerCLI, nix_images: NixImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = engine.workspace("native")
    data = init(engine, workspace, monkeypatch, "--image", nix_images.multi)
    assert data["platform"] == "linux/amd64"
    assert data["emulated"] is False
    assert data["source"] == "registry"
    assert data["image_platforms"] == ["linux/amd64", "linux/arm64"]
    check_nix_in_container(engine, cli, workspace, "x86_64", filter_on=True)


def test_arm64_only_image_runs_emulated_with_the_filter_off(
    engine: Podman, cli: PodmanDevcontainerCLI, nix_images: NixImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = engine.workspace("arm64-only")
    data = init(engine, workspace, monkeypatch, "--image", nix_images.arm64)
    assert data["platform"] == "linux/arm64"
    assert data["emulated"] is True
    assert any("devnix bootstrap" in str(n) for n in data["notes"])
    check_nix_in_container(engine, cli, workspace, "aarch64", filter_on=False)


def test_requested_arm64_platform_of_a_two_platform_image_runs_emulated(
    engine: Podman, cli: PodmanDevcontainerCLI, nix_images: NixImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = engine.workspace("requested-arm64")
    data = init(engine, workspace, monkeypatch, "--image", nix_images.multi, "--platform", "linux/arm64")
    assert data["platform"] == "linux/arm64" and data["emulated"] is True
    check_nix_in_container(engine, cli, workspace, "aarch64", filter_on=False)


def test_keep_id_in_the_config_would_break_nix_or_the_engine(
    engine: Podman, standin_images: dict[str, str]
) -> None:
    """The evidence for leaving ``--userns=keep-id`` out of devnix's runArgs (see the module's docstring)."""
    docker = run(
        ["docker", "run", "--rm", "--userns=keep-id", standin_images["nix/amd64"], "true"],
        env=BASE_ENV, check=False, timeout=120,
    )  # fmt: skip
    assert docker.returncode != 0 and "invalid USER mode" in docker.stderr, docker.stderr

    image = engine.load(standin_images["nix/amd64"])
    build = ["nix-build", "--no-out-link", "--option", "substituters", "", "--option", "sandbox", "false",
             "--option", "build-users-group", "", "-E", TRIVIAL]  # fmt: skip
    kept = engine.podman("run", "--rm", "--userns=keep-id", image, *build, check=False, timeout=300)
    if engine.rootless:
        assert kept.returncode != 0 and "creating directory '/nix': Permission denied" in kept.stderr, (
            kept.stderr
        )
        # As the image's root, the same build works.
        plain = engine.podman("run", "--rm", image, *build, check=False, timeout=300)
        assert plain.returncode == 0, plain.stderr[-2000:]
    else:
        assert kept.returncode != 0 and "keep-id is only supported in rootless mode" in kept.stderr, (
            kept.stderr
        )


def test_a_stale_other_platform_copy_is_reported_then_replaced(
    engine: Podman, nix_images: NixImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Podman keeps an emulated run's arm64 copy under a two-platform tag exactly as Docker does
    (test_init_devcontainer.py and test_doctor.py there): doctor warns with the command that fixes it,
    named for Podman; init pulls the native variant in its place; doctor is then satisfied."""
    tag = nix_images.multi
    engine.podman("pull", "--platform", "linux/arm64", tag, timeout=600)
    workspace = engine.workspace("stale-copy")
    monkeypatch.setenv("DOCKER_HOST", engine.url)
    monkeypatch.delenv("DEVNIX_ENGINE", raising=False)
    try:
        folder = workspace / ".devcontainer"
        folder.mkdir()
        (folder / "devcontainer.json").write_text(json.dumps({"image": tag}))
        (folder / "nix.conf").write_text("sandbox = false\n")
        local = doctor_check(workspace, "devcontainer.local-copy")
        assert local["status"] == "warn", local
        assert local["message"].startswith(f"the engine holds the linux/arm64 copy of {tag}"), local
        assert local["hint"].startswith(f"`podman pull --platform linux/amd64 {tag}`"), local

        preview = CliRunner().invoke(app, ["init", str(workspace), "--json", "--image", tag, "--dry-run"])
        assert preview.exit_code == 0, preview.output
        notes = json.loads(preview.stdout)["notes"]
        assert any(f"would pull its linux/amd64 variant (`podman pull --platform linux/amd64 {tag}`)" in n
                   for n in notes), notes  # fmt: skip
        assert engine.api(f"/images/{tag}/json")["Architecture"] == "arm64"  # a dry run changes nothing

        done = CliRunner().invoke(app, ["init", str(workspace), "--json", "--image", tag, "--force"])
        assert done.exit_code == 0, done.output
        assert any("pulled its linux/amd64 variant" in n for n in json.loads(done.stdout)["notes"])
        assert engine.api(f"/images/{tag}/json")["Architecture"] == "amd64"
        assert doctor_check(workspace, "devcontainer.local-copy") == {
            "id": "devcontainer.local-copy",
            "status": "ok",
            "message": f"the engine's copy of {tag} is linux/amd64, the variant the config runs",
            "hint": None,
        }
    finally:
        engine.untag_registry(nix_images.registry.port)


def doctor_check(workspace: Path, check_id: str) -> dict[str, Any]:
    """One check of ``devnix doctor --json`` on the project, on the engine DOCKER_HOST names."""
    result = CliRunner().invoke(app, ["doctor", str(workspace), "--json"])
    assert result.exit_code in (0, 1), result.output
    checks = {check["id"]: check for check in json.loads(result.stdout)["checks"]}
    found: dict[str, Any] = checks[check_id]
    return found
