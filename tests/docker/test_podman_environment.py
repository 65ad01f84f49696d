"""The Podman that scripts/test sets up next to dockerd (issue #10), rootful and rootless, proven for real:
its Docker-compatible API, native and emulated containers, a loopback registry, and the reference
devcontainer CLI with ``--docker-path podman``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from podman import PODMAN_COMPONENT, Podman, PodmanDevcontainer
from standins import Registry, last_json_line

ENGINES = ("podman_rootful", "podman_rootless")
# Stand-ins (dockerd cache refs, by standin_images key) and the machine each one reports.
UNAMES = {"debian/amd64": "x86_64", "nix/arm64": "aarch64"}


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Podman:
    # Looked up lazily, so that a rootless engine that cannot run does not take the rootful tests along.
    found: Podman = request.getfixturevalue(request.param)
    return found


def component_names(version: dict[str, Any]) -> list[str]:
    return [str(c["Name"]) for c in version["Components"]]


def test_the_api_answers_as_podman(engine: Podman) -> None:
    version = engine.api("/version")
    assert PODMAN_COMPONENT in component_names(version)
    cli = engine.podman("version", "--format", "{{.Client.Version}}").stdout.strip()
    assert version["Version"] == cli
    info = engine.api("/info")
    # What tells rootless from rootful through the Docker-compatible API (Podman 4.3 puts no
    # "name=rootless" in SecurityOptions), and each one's own store, apart from dockerd's.
    assert info["Rootless"] is engine.rootless
    store = f"{engine.env['HOME']}/.local/share/containers" if engine.rootless else "/var/lib/containers"
    assert info["DockerRootDir"] == f"{store}/storage"


def test_dockerd_still_answers_as_itself(docker_client: Any, podman_rootful: Podman) -> None:
    # Both engines on one machine: installing and starting Podman must leave dockerd alone.
    assert docker_client.ping()
    names = component_names(docker_client.version())
    assert "Engine" in names
    assert PODMAN_COMPONENT not in names


@pytest.mark.parametrize("key", sorted(UNAMES))
def test_native_and_emulated_containers_run(engine: Podman, standin_images: dict[str, str], key: str) -> None:
    image = engine.load(standin_images[key])
    arch = key.partition("/")[2]
    assert engine.api(f"/images/{image}/json")["Architecture"] == arch
    ran = engine.podman("run", "--rm", image, "uname", "-m")
    assert ran.stdout.strip() == UNAMES[key], ran.stderr


def test_a_loopback_registry_works_both_ways(
    engine: Podman, registry: Registry, standin_images: dict[str, str]
) -> None:
    """Push and pull over plain HTTP, by either loopback name, with the CLI and through the API."""
    base = engine.load(standin_images["debian/amd64"])
    token = secrets.token_hex(6)
    container = f"devnix-podman-probe-{token}"
    repository = "devnix-test/podman-probe"
    by_name = f"{registry.host}/{repository}:{token}"
    by_address = f"127.0.0.1:{registry.port}/{repository}:{token}"
    through_api = f"{registry.host}/{repository}"  # tag {token}-api
    try:
        engine.podman("run", "--name", container, base, "sh", "-c", f"echo {token} > /probe")
        engine.podman("commit", container, by_name)
        engine.podman("push", by_name)
        engine.podman("image", "rm", by_name)
        engine.podman("pull", by_address)
        ran = engine.podman("run", "--rm", by_address, "cat", "/probe")
        assert ran.stdout.strip() == token

        # devnix pushes through the API (bootstrap); push errors arrive inside the stream.
        with engine.client() as client:
            client.images.get(by_address).tag(through_api, f"{token}-api")
            stream = list(client.api.push(through_api, f"{token}-api", stream=True, decode=True))
        assert not [line for line in stream if "error" in line], stream
        assert registry.get_manifest(repository, f"{token}-api").status == 200
    finally:
        engine.podman("rm", "--force", container, check=False)
        for name in (by_name, by_address, f"{through_api}:{token}-api"):
            engine.podman("image", "rm", name, check=False)


def test_the_reference_cli_starts_a_config_with_docker_path_podman(
    engine: Podman, podman_devcontainer: PodmanDevcontainer, standin_images: dict[str, str]
) -> None:
    image = engine.load(standin_images["debian/amd64"])
    workspace = engine.workspace("trivial")
    (workspace / ".devcontainer").mkdir()
    (workspace / ".devcontainer" / "devcontainer.json").write_text(json.dumps({"image": image}))
    engine.own(workspace)
    cli = podman_devcontainer(engine)

    up = cli.up(workspace)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    result = last_json_line(up.stdout)
    assert result["outcome"] == "success"

    uname = cli.exec(workspace, "uname", "-m")
    assert uname.stdout.strip() == "x86_64", uname.stderr[-2000:]
    # Root in a rootless container is the engine's user outside: what it writes in the workspace is
    # the user's (under rootful Podman, root's).
    touched = cli.exec(workspace, "touch", f"{result['remoteWorkspaceFolder']}/made-inside")
    assert touched.returncode == 0, touched.stderr[-2000:]
    assert (workspace / "made-inside").stat().st_uid == engine.uid

    # The CLI drove the podman binary; the API (what devnix talks to) serves the same store.
    with engine.client() as client:
        found = client.containers.list(filters={"label": f"devcontainer.local_folder={workspace}"})
    assert [c.id for c in found] == [result["containerId"]]
