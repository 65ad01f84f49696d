"""Real-engine fixtures: a Docker client, a local OCI registry, stand-in Nix images, the devcontainer CLI.

Every test under tests/docker is marked ``docker``. When something is missing (no engine, no
docker-registry, no QEMU, no CLI) the fixtures skip, or fail when DEVNIX_REQUIRE_DOCKER is set (CI):
``./scripts/test`` installs and starts all of it on a Debian machine as root.

Session fixtures use the environment pytest started with (``standins.BASE_ENV``) and folders from
tmp_path_factory, never the per-test DOCKER_CONFIG/XDG dirs of tests/conftest.py's autouse fixture.
Everything they create (registry processes and data, containers, volumes, tags, build dirs) is removed
at the end, except two caches kept on purpose so that a second run builds and pushes nothing:
- the stand-in images in the engine, ``devnix-test-cache/<name>:<suite>-<arch>-<recipe hash>``, each
  with an empty child image ``devnix-test-cache/guard:...`` that stops a forced removal by id;
- the registry seed in ``~/.cache/devnix-test/registry-seeds`` (or $DEVNIX_TEST_CACHE): the pushed
  stand-ins, copied (blobs hard-linked) into each new session registry.
Bump ``standins.RECIPE_VERSION`` to rebuild them.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import podman
import pytest

# tests/docker is not a package (an __init__.py here would make it the top-level package `docker`,
# hiding the Docker SDK), so pytest's rootdir-relative import puts this folder on sys.path.
from standins import (
    ALL_RECIPES,
    BASE_ENV,
    DEBIAN_AMD64,
    MULTI_TAG,
    NIX_AMD64,
    NIX_ARM64,
    NIXOS_AMD64,
    NIXOS_ARM64,
    DevcontainerCLI,
    EnvironmentMissing,
    NixImages,
    Published,
    PushedImage,
    Registry,
    docker_env,
    ensure_standins,
    find_devcontainer_cli,
    find_seed,
    publish_standins,
    remove_devcontainer_leftovers,
    start_registry,
)
from vscode_server import NodeUnavailable, VSCodeServer

from tests.support import skip_or_fail

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.docker)


def _report(request: pytest.FixtureRequest, line: str) -> None:
    """A line in pytest's terminal output, past capture (setup timings are worth seeing in a CI log)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:  # pragma: no cover
        print(f"[tests/docker] {line}", file=sys.stderr)
        return
    with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
        reporter.write_line(f"[tests/docker] {line}")


# ------------------------------------------------------------------------------------------------
# Engine


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A ``docker.DockerClient`` on DOCKER_HOST or the default socket that answers ping."""
    import docker

    where = BASE_ENV.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(environment=BASE_ENV, timeout=600)
        client.ping()
    except Exception as err:
        skip_or_fail(f"no Docker engine answers at {where}: {err}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_session_env(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for docker CLI calls made by session fixtures: its own empty DOCKER_CONFIG."""
    return docker_env(tmp_path_factory.mktemp("session-docker-config"))


# ------------------------------------------------------------------------------------------------
# Registry


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A docker-registry on 127.0.0.1:<free port> for the whole session, no auth.

    ``registry.host`` is ``localhost:<port>``: the engine pushes and pulls it as plain HTTP (loopback
    registries are insecure-allowed by default) and the devcontainer CLI speaks HTTP to it as well.
    """
    workdir = tmp_path_factory.mktemp("registry")
    try:
        reg = start_registry(workdir, seed=find_seed(ALL_RECIPES))
    except EnvironmentMissing as err:
        skip_or_fail(str(err))
    yield reg
    reg.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    untag_registry_images(reg.host)


def untag_registry_images(host: str) -> None:
    """Remove the tags the engine got from this session's registry (pulls by `devcontainer up`...).

    Only names go: the layers stay with the cached stand-ins. The port is new every session, so
    these tags would otherwise pile up.
    """
    import docker

    try:
        client = docker.from_env()
    except docker.errors.DockerException:
        return
    try:
        # The low-level list: images.list() inspects each image after listing, and another session may
        # remove one in between (ImageNotFound).
        for image in client.api.images():
            # Pulls by digest leave a digest-only reference (listed as ``repo:<none>``), not a tag.
            for name in [*(image.get("RepoTags") or []), *(image.get("RepoDigests") or [])]:
                if name.startswith(f"{host}/"):
                    with contextlib.suppress(docker.errors.APIError):
                        client.images.remove(name)
    finally:
        client.close()


RegistryFactory = Callable[..., Registry]


@pytest.fixture
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryFactory]:
    """Start extra registries for one test; by default with htpasswd basic auth.

    ``registry_factory(auth=True, username="devnix", password=None)`` returns a running
    ``Registry`` whose ``username``/``password`` are set (a random password unless given). Every
    registry it started is stopped, and its data removed, when the test ends.
    """
    started: list[tuple[Registry, Path]] = []

    def make(auth: bool = True, username: str = "devnix", password: str | None = None) -> Registry:
        workdir = tmp_path_factory.mktemp("auth-registry" if auth else "registry")
        try:
            if auth:
                reg = start_registry(
                    workdir, username=username, password=password or secrets.token_urlsafe(12)
                )
            else:
                reg = start_registry(workdir)
        except EnvironmentMissing as err:
            skip_or_fail(str(err))
        started.append((reg, workdir))
        return reg

    yield make
    for reg, workdir in started:
        reg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def auth_registry(registry_factory: RegistryFactory) -> Registry:
    """A registry with basic auth for one test: ``.username``, ``.password``, ``.host``."""
    return registry_factory(auth=True)


# ------------------------------------------------------------------------------------------------
# Stand-in images


@pytest.fixture(scope="session")
def standin_images(
    request: pytest.FixtureRequest,
    registry: Registry,
    docker_session_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """Every stand-in image present in the engine: {"nix/amd64": cached ref, "nix/arm64": ...,
    "debian/amd64": ..., "nixos/amd64": ..., "nixos/arm64": ...}.

    A warm machine finds them by their recipe-hash tags. A missing one is pulled back from the
    registry when the registry seed has it (seconds), else built: all at once, arm64 under QEMU
    being the long pole (~2 min for nix, ~5 min for nixos; one builder per recipe on the machine,
    other sessions wait for it). The built images stay cached in the engine on purpose; the rootfs
    build dirs are deleted.
    """
    workdir = tmp_path_factory.mktemp("standin-build")
    started = time.monotonic()
    try:
        done = ensure_standins(ALL_RECIPES, workdir, docker_session_env, registry)
    except EnvironmentMissing as err:
        skip_or_fail(f"cannot build the stand-in images: {err}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if done:
        detail = ", ".join(f"{r.key} {how} in {s:.0f} s" for r, (how, s) in done.items())
        _report(request, f"stand-in images ready in {time.monotonic() - started:.0f} s ({detail})")
    return {r.key: r.cache_ref for r in ALL_RECIPES}


@pytest.fixture(scope="session")
def published_standins(
    request: pytest.FixtureRequest,
    registry: Registry,
    standin_images: dict[str, str],
    docker_session_env: dict[str, str],
) -> Published:
    """All stand-ins in the session registry (from the registry seed when it matches the engine's
    images, else pushed now and saved as the next seed)."""
    started = time.monotonic()
    published = publish_standins(registry, docker_session_env)
    if published.how == "pushed":
        _report(request, f"pushed the stand-ins to {registry.host} in {time.monotonic() - started:.1f} s")
    return published


def _images(registry: Registry, published: Published, amd64_key: str, arm64_key: str) -> NixImages:
    amd64 = published.pushed[amd64_key]
    arm64 = published.pushed[arm64_key]
    return NixImages(
        amd64=amd64.ref,
        arm64=arm64.ref,
        multi=f"{registry.host}/{amd64.repository}:{MULTI_TAG}",
        multi_digest=published.multi_digests[amd64.repository],
        repository=amd64.repository,
        pushed={"amd64": amd64, "arm64": arm64},
        registry=registry,
    )


@pytest.fixture(scope="session")
def nix_images(registry: Registry, published_standins: Published) -> NixImages:
    """The Nix stand-ins in the session registry: ``<host>/devnix-test/nix:amd64``, ``:arm64`` and
    ``:multi``, a two-platform manifest list over the first two written with a raw PUT.

    The registry names are not left tagged in the engine (it keeps the images under their cache refs),
    so running one pulls it from the registry.
    """
    return _images(registry, published_standins, NIX_AMD64.key, NIX_ARM64.key)


@pytest.fixture(scope="session")
def nixos_images(registry: Registry, published_standins: Published) -> NixImages:
    """Stand-ins for the official ``nixos/nix`` (store-only: no FHS loader, glibc only in /nix/store;
    see storeonly.py): ``<host>/devnix-test/nixos:amd64``, ``:arm64`` and ``:multi``, as nix_images.

    Debian trixie's Nix 2.26; PATH, USER, NIX_SSL_CERT_FILE, nix.conf and the nixbld users as in
    nixos/nix. A glibc program that is not from the store (VS Code's server ``node``) cannot start.
    """
    return _images(registry, published_standins, NIXOS_AMD64.key, NIXOS_ARM64.key)


@pytest.fixture(scope="session")
def debian_image(published_standins: Published) -> PushedImage:
    """A plain Debian bookworm stand-in (no Nix, amd64): ``<host>/devnix-test/debian:bookworm``."""
    return published_standins.pushed[DEBIAN_AMD64.key]


# ------------------------------------------------------------------------------------------------
# VS Code's server, stand-in


@pytest.fixture(scope="session")
def vscode_server(docker_client: Any) -> VSCodeServer:
    """Installs the VS Code server stand-in (official Node.js 22, pinned, from npm; vscode_server.py)
    into a running container as VS Code does: ``.install(container_id, user=None) -> path of node``.

    The x64 tarball is fetched (once per machine, cached) here, the arm64 one on first use.
    """
    server = VSCodeServer(env=dict(BASE_ENV))
    if shutil.which("npm", path=BASE_ENV.get("PATH")) is None:
        skip_or_fail("npm is missing: cannot fetch the Node.js stand-in for VS Code's server")
    try:
        server.tarball("x86_64")
    except NodeUnavailable as err:
        skip_or_fail(str(err))
    return server


# ------------------------------------------------------------------------------------------------
# devcontainer CLI


@pytest.fixture(scope="session")
def devcontainer_cli() -> Path:
    """Path of the pinned reference devcontainer CLI (@devcontainers/cli 0.89.0)."""
    try:
        return find_devcontainer_cli()
    except EnvironmentMissing as err:
        skip_or_fail(str(err))


@pytest.fixture
def devcontainer(devcontainer_cli: Path, docker_client: Any) -> Iterator[DevcontainerCLI]:
    """Run the CLI: ``.up(ws, *args)``, ``.exec(ws, *cmd)``, ``.read_configuration(ws)``, ``.run(*args)``.

    Each returns a CompletedProcess (text, not checked). At the end of the test every container the
    CLI made for a workspace used here (label ``devcontainer.local_folder=<ws>``) is removed, with its
    volumes, compose networks and the ``vsc-*`` images the CLI built.
    """
    cli = DevcontainerCLI(devcontainer_cli)
    yield cli
    remove_devcontainer_leftovers(docker_client, cli.workspaces)


# ------------------------------------------------------------------------------------------------
# Podman (tests/docker/podman.py): scripts/test starts both engines next to dockerd.


@pytest.fixture(scope="session")
def podman_rootful(tmp_path_factory: pytest.TempPathFactory) -> Iterator[podman.Podman]:
    """Root's Podman on ``unix:///run/podman/podman.sock``: ``.url``, ``.env`` (for the podman and
    devcontainer CLIs; DOCKER_HOST is the socket), ``.podman(*args)``, ``.api(path)``, ``.client()``,
    ``.load(dockerd_ref) -> name in Podman`` (a stand-in copied once, recognised by its image ID)."""
    try:
        engine = podman.rootful(tmp_path_factory.mktemp("podman-rootful"))
    except EnvironmentMissing as err:
        skip_or_fail(str(err))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def podman_rootless() -> Iterator[podman.Podman]:
    """The test user's (``devnix-rootless``) Podman on ``/run/user/<uid>/podman/podman.sock``, as
    podman_rootful; its commands run as that user, workspaces come from ``.workspace(name)``."""
    try:
        engine = podman.rootless()
    except EnvironmentMissing as err:
        skip_or_fail(str(err))
    yield engine
    engine.close()


@pytest.fixture(params=("podman_rootful", "podman_rootless"))
def podman_engine(request: pytest.FixtureRequest) -> podman.Podman:
    """Each Podman in turn, for tests that run alike on both. Looked up lazily, so that a rootless engine
    that cannot run does not take the rootful tests along."""
    found: podman.Podman = request.getfixturevalue(request.param)
    return found


@pytest.fixture
def podman_devcontainer(devcontainer_cli: Path) -> Iterator[podman.PodmanDevcontainer]:
    """``podman_devcontainer(engine)``: the reference CLI with ``--docker-path podman`` as the engine's
    user, like the ``devcontainer`` fixture; what it made for its workspaces is removed at the end."""
    made: list[podman.PodmanDevcontainerCLI] = []

    def make(engine: podman.Podman) -> podman.PodmanDevcontainerCLI:
        cli = podman.PodmanDevcontainerCLI(devcontainer_cli, engine=engine)
        made.append(cli)
        return cli

    yield make
    for cli in made:
        cli.remove_leftovers()
