"""devnix's Templates and the ``nix`` Feature started by the reference CLI with ``--docker-path podman``,
rootful and rootless (issue #10, item 5), as test_templates.py and test_features.py do under Docker.

The Templates are published to the session registry by devnix and applied with ``devcontainer
templates apply`` (that command needs no engine); the Feature is a local one (``./nix`` beside the
workspace's devcontainer.json, as a project vendors it), whose ``installsAfter`` points at a stand-in
``common-utils`` in the session registry (standins.offline_feature_copy). Its checks are the Feature's
own scenario scripts (features/test/nix), run in the container with a stand-in for the test library that
only ``devcontainer features test`` installs, and that command has no ``--docker-path``.

What rootless Podman does with the container's user, and so with the workspace, is the CLI's doing:
with ``--docker-path podman`` it adds ``--userns=keep-id`` to ``podman run`` when the user is not root
(devcontainers/cli#1004), and ``updateRemoteUserUID`` then gives that user the host user's uid. As root
(the Templates, and the Feature on an image without a user of its own) the container's root is the
engine's user on the host, the workspace stays writable and what the container writes there is that
user's. A non-root user is tested too: rootless, the Feature hands its store to the uid the CLI gave
that user; rootful, the CLI's keep-id is refused, doctor says so and its hint starts the container (see
test_feature_for_a_non_root_user).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from podman import Podman, PodmanDevcontainer, PodmanDevcontainerCLI
from standins import (
    BASE_ENV,
    REPO_ROOT,
    NixImages,
    Registry,
    last_json_line,
    offline_feature_copy,
    publish_stub_common_utils,
    run,
)
from typer.testing import CliRunner

from devnix.cli import app

NAMESPACE = "devnix/podman-templates"
FEATURE_TESTS = REPO_ROOT / "features" / "test" / "nix"

# What the Feature's scenario scripts need of dev-container-features-test-lib: check LABEL COMMAND...
# and reportResults (non-zero exit when a check failed).
TEST_LIB = """\
failed_checks=()
check() {
    local label=$1
    shift
    if "$@"; then echo "ok: $label"; else echo "FAILED: $label"; failed_checks+=("$label"); fi
}
reportResults() {
    [ ${#failed_checks[@]} -eq 0 ] || { echo "failed: ${failed_checks[*]}"; exit 1; }
}
"""


@pytest.fixture
def engine(podman_engine: Podman) -> Podman:
    return podman_engine  # rootful, then rootless (tests/docker/conftest.py)


@pytest.fixture
def cli(
    engine: Podman, podman_devcontainer: PodmanDevcontainer, registry: Registry
) -> Iterator[PodmanDevcontainerCLI]:
    """The reference CLI on this engine; afterwards its containers and images go, then the session
    registry's images that its builds pulled into Podman's store."""
    made = podman_devcontainer(engine)
    yield made
    made.remove_leftovers()
    engine.untag_registry(registry.port)


@pytest.fixture(scope="module")
def published(registry: Registry) -> str:
    result = CliRunner().invoke(
        app,
        ["publish", "templates", str(REPO_ROOT / "templates" / "src"),
         "--registry", registry.host, "--namespace", NAMESPACE],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return f"{registry.host}/{NAMESPACE}"


@pytest.fixture(scope="module")
def stub_common_utils(
    devcontainer_cli: Path, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> str:
    workdir = tmp_path_factory.mktemp("podman-feature-stub")
    env = {**BASE_ENV, "DOCKER_CONFIG": str(tmp_path_factory.mktemp("podman-feature-docker-config"))}
    return publish_stub_common_utils(devcontainer_cli, registry, workdir, env)


def up(cli: PodmanDevcontainerCLI, workspace: Path, *extra: str) -> str:
    """``devcontainer up``; the workspace's folder in the container."""
    done = cli.up(workspace, *extra)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = last_json_line(done.stdout)
    assert result["outcome"] == "success"
    return str(result["remoteWorkspaceFolder"])


def check_workspace_is_the_users(
    engine: Podman, cli: PodmanDevcontainerCLI, workspace: Path, remote: str
) -> None:
    """The container's user writes into the workspace, and the file is the engine's user's on the host."""
    touched = cli.exec(workspace, "touch", f"{remote}/made-inside")
    assert touched.returncode == 0, touched.stderr[-2000:]
    owner = (workspace / "made-inside").stat().st_uid
    assert owner == engine.uid, f"made-inside belongs to uid {owner}, not the engine's user ({engine.uid})"


# ------------------------------------------------------------------------------------------------
# Templates


def apply(devcontainer_cli: Path, engine: Podman, workspace: Path, template: str, image: str) -> None:
    done = run(
        [str(devcontainer_cli), "templates", "apply", "--workspace-folder", str(workspace),
         "--template-id", template, "--template-args", json.dumps({"image": image})],
        env=BASE_ENV, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "${templateOption" not in (workspace / ".devcontainer" / "devcontainer.json").read_text()
    engine.own(workspace)


def run_template_checks(cli: PodmanDevcontainerCLI, workspace: Path, template_id: str) -> None:
    script = (REPO_ROOT / "templates" / "test" / template_id / "test.sh").read_text()
    checks = cli.exec(workspace, "sh", "-c", script)
    assert checks.returncode == 0, checks.stdout + checks.stderr[-2000:]
    assert checks.stdout.count("ok: ") == 5, checks.stdout


@pytest.mark.parametrize("template_id", ["nix", "nix-dockerfile"])
def test_template_applies_starts_and_passes_its_checks(
    template_id: str,
    engine: Podman,
    cli: PodmanDevcontainerCLI,
    published: str,
    nix_images: NixImages,
    devcontainer_cli: Path,
) -> None:
    workspace = engine.workspace(template_id)
    apply(devcontainer_cli, engine, workspace, f"{published}/{template_id}:1", nix_images.multi)
    remote = up(cli, workspace)
    run_template_checks(cli, workspace, template_id)
    check_workspace_is_the_users(engine, cli, workspace, remote)


def test_flake_template_applies_starts_and_passes_its_checks(
    engine: Podman,
    cli: PodmanDevcontainerCLI,
    published: str,
    nix_images: NixImages,
    devcontainer_cli: Path,
) -> None:
    workspace = engine.workspace("nix-flake")
    apply(devcontainer_cli, engine, workspace, f"{published}/nix-flake:1", nix_images.multi)
    assert (workspace / "flake.nix").is_file()
    # Its post-create step fetches direnv and the flake's inputs from the network, which this machine
    # lacks: start the container without the lifecycle commands, then check Nix itself.
    remote = up(cli, workspace, "--skip-post-create")
    run_template_checks(cli, workspace, "nix-flake")
    syntax = cli.exec(workspace, "bash", "-n", ".devcontainer/post-create.sh")
    assert syntax.returncode == 0, syntax.stderr
    check_workspace_is_the_users(engine, cli, workspace, remote)


# ------------------------------------------------------------------------------------------------
# The nix Feature


def feature_workspace(engine: Podman, name: str, stub: str, config: dict[str, object]) -> Path:
    """A workspace whose devcontainer.json uses the Feature from ``.devcontainer/nix``, with the
    Feature's scenario scripts in ``.devcontainer/checks``."""
    workspace = engine.workspace(name)
    folder = workspace / ".devcontainer"
    folder.mkdir()
    offline_feature_copy(REPO_ROOT / "features" / "src" / "nix", folder / "nix", stub)
    checks = folder / "checks"
    checks.mkdir()
    for script in (f"{name}.sh", "nix-checks.sh"):
        shutil.copy(FEATURE_TESTS / script, checks / script)
    (checks / "dev-container-features-test-lib").write_text(TEST_LIB)
    (folder / "devcontainer.json").write_text(json.dumps({**config, "features": {"./nix": {}}}, indent=2))
    engine.own(workspace)
    return workspace


def run_scenario(cli: PodmanDevcontainerCLI, workspace: Path, remote: str, name: str) -> tuple[int, str]:
    """The scenario script in the container, as its user, from the folder that holds its libraries
    (bash's ``source`` looks there); its exit code and output. Exit 0 means every check ran and passed."""
    done = cli.exec(workspace, "bash", "-c", f"cd {remote}/.devcontainer/checks && bash {name}.sh")
    output = done.stdout + done.stderr[-3000:]
    if done.returncode == 0:
        checks = (FEATURE_TESTS / f"{name}.sh").read_text().count("\ncheck ")
        assert done.stdout.count("ok: ") == checks, output
    return done.returncode, output


def test_feature_configures_the_images_nix_for_root(
    engine: Podman, cli: PodmanDevcontainerCLI, nix_images: NixImages, stub_common_utils: str
) -> None:
    """features/test/nix/existing_nix_root.sh: an image with Debian's Nix, as root."""
    workspace = feature_workspace(
        engine, "existing_nix_root", stub_common_utils, {"image": nix_images.multi, "remoteUser": "root"}
    )
    remote = up(cli, workspace)
    code, output = run_scenario(cli, workspace, remote, "existing_nix_root")
    assert code == 0, output
    check_workspace_is_the_users(engine, cli, workspace, remote)


def test_feature_for_a_non_root_user(
    engine: Podman,
    cli: PodmanDevcontainerCLI,
    nix_images: NixImages,
    stub_common_utils: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """features/test/nix/existing_nix_vscode.sh: the same image with a ``vscode`` user (uid 1000).

    Rootless: keep-id plus ``updateRemoteUserUID`` give ``vscode`` the host user's uid in a layer built
    after the Feature gave the single-user store to uid 1000; the Feature's entrypoint hands the store
    to the new uid when the container starts.

    Rootful: the reference CLI (0.89.0) adds ``--userns=keep-id`` for a non-root user whatever the
    Podman, and rootful Podman refuses it. doctor says so before anyone starts the container, and the
    runArgs line its hint gives (an empty ``--userns``, after the CLI's) starts it.
    """
    config: dict[str, object] = {"build": {"dockerfile": "Dockerfile"}, "remoteUser": "vscode"}
    workspace = feature_workspace(engine, "existing_nix_vscode", stub_common_utils, config)
    (workspace / ".devcontainer" / "Dockerfile").write_text(
        f"FROM {nix_images.multi}\nRUN useradd --create-home --shell /bin/bash --uid 1000 vscode\n"
    )
    engine.own(workspace)
    started = cli.up(workspace)
    if not engine.rootless:
        refused = "Error: keep-id is only supported in rootless mode"
        assert started.returncode != 0 and refused in started.stdout + started.stderr, started.stderr[-3000:]
        monkeypatch.setenv("DOCKER_HOST", engine.url)
        monkeypatch.delenv("DEVNIX_ENGINE", raising=False)
        doctor = CliRunner().invoke(app, ["doctor", str(workspace), "--json"])
        checks = {check["id"]: check for check in json.loads(doctor.stdout)["checks"]}
        verdict = checks["devcontainer.podman-userns"]
        assert verdict["status"] == "fail" and "'vscode'" in verdict["message"], verdict
        assert doctor.exit_code == 1, doctor.output
        config_file = workspace / ".devcontainer" / "devcontainer.json"
        config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "runArgs": ["--userns="]}))
        started = cli.up(workspace)
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    remote = str(last_json_line(started.stdout)["remoteWorkspaceFolder"])
    if engine.rootless:
        # Rootful here runs as root on the host: vscode (uid 1000) may not write root's workspace, as
        # under a rootful dockerd.
        check_workspace_is_the_users(engine, cli, workspace, remote)

    code, output = run_scenario(cli, workspace, remote, "existing_nix_vscode")
    assert code == 0, output
    if engine.rootless:
        # keep-id and updateRemoteUserUID gave vscode the host user's uid after the Feature gave the
        # store to uid 1000: the Feature's entrypoint handed it over at start (the scenario's
        # "vscode owns /nix/store" and offline builds above prove the result).
        uid = cli.exec(workspace, "id", "-u").stdout.strip()
        assert uid == str(engine.uid) != "1000", uid
