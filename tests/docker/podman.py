"""Podman next to dockerd: the API sockets scripts/test starts, the stand-ins copied into Podman's stores,
and the reference devcontainer CLI run with ``--docker-path podman``.

Two engines: rootful (root, ``/run/podman/podman.sock``, store in /var/lib/containers) and rootless (the
test user ``devnix-rootless``, ``/run/user/<uid>/podman/podman.sock``, store in its home). A rootless
engine is only real when its commands run as that user, so every command here goes through
``Podman.argv``, which wraps it in ``setpriv`` for the rootless one.

Podman has its own image stores, so a stand-in built in dockerd is copied across with
``docker save | podman load``. The image keeps its ID there, which is how a copy made by an earlier
session is recognised; the copies stay in Podman's stores on purpose, like the cached stand-ins in
dockerd, and an older copy of the same stand-in goes when a newer one arrives.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capture_engine import ask
from standins import (
    BASE_ENV,
    DevcontainerCLI,
    EnvironmentMissing,
    remove_devcontainer_leftovers,
    run,
    seed_base,
)

ROOTFUL_SOCKET = Path("/run/podman/podman.sock")
ROOTLESS_USER = "devnix-rootless"  # made by scripts/test, with subuid/subgid ranges
PODMAN_COMPONENT = "Podman Engine"  # the /version component that only Podman lists
# Podman names an image loaded without a registry host after a registry of its own.
LOCAL_PREFIX = "localhost/"
# The reference CLI names a workspace's images vsc-<folder>-<sha256 of its path>[-features][-uid], and
# the Features build's content image this, whatever the workspace.
FEATURE_CONTENT_IMAGE = "dev_container_feature_content_temp"
# `podman build` keeps every step as an unnamed image (its layer cache) that no name ties to the test
# that built it; without layers the CLI's builds leave only the named images, which the clean-up knows.
BUILD_ENV = {"BUILDAH_LAYERS": "false"}


@dataclass
class Podman:
    """One Podman engine: its API socket and the user its CLI runs as."""

    mode: str  # "rootful" or "rootless"
    socket: Path
    uid: int
    gid: int
    # Set for the CLIs on top of the caller's environment (rootful), or instead of it (rootless: a
    # root's HOME or per-test XDG folders would not be the user's). DOCKER_HOST points at the socket.
    env: dict[str, str]
    scratch: Path  # folders the engine's user may write: workspaces for the devcontainer CLI
    _copies: dict[str, str] = field(default_factory=dict)  # dockerd ref -> ID known to be in the store

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def rootless(self) -> bool:
        return self.mode == "rootless"

    def argv(self, *args: str) -> list[str]:
        """``args`` as a command line that runs as the engine's user."""
        if not self.rootless:
            return list(args)
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", *args]

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        merged = {**({} if self.rootless else os.environ), **self.env, **(extra or {})}
        # Podman 4.3 reads $DOCKER_CONFIG/config.json for credentials, and fails every command, a local
        # `podman run` too, when the folder has none: "Error: stat <dir>/config.json: no such file or
        # directory" (tests/conftest.py gives each test such an empty folder).
        folder = merged.get("DOCKER_CONFIG")
        if folder is not None and not (Path(folder) / "config.json").is_file():
            del merged["DOCKER_CONFIG"]
        return merged

    def podman(
        self, *args: str, check: bool = True, timeout: float = 600, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The podman CLI as the engine's user (it works on the store that the socket serves)."""
        return run(self.argv("podman", *args), env=self.environ(env), check=check, timeout=timeout)

    def api(self, path: str) -> Any:
        """A GET on the Docker-compatible API, parsed."""
        return ask(self.url, path)

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """A Docker SDK client on the socket, as devnix would talk to this engine."""
        import docker

        client = docker.DockerClient(base_url=self.url, timeout=600)
        try:
            yield client
        finally:
            client.close()

    def workspace(self, name: str) -> Path:
        """A new empty folder, owned by the engine's user, for a devcontainer workspace."""
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.scratch))
        os.chown(path, self.uid, self.gid)
        path.chmod(0o755)
        return path

    def close(self) -> None:
        """Remove the scratch folder (root may: files rootless containers wrote belong to sub-ids)."""
        shutil.rmtree(self.scratch, ignore_errors=True)

    def own(self, path: Path) -> None:
        """Give files a test wrote as root (a devcontainer.json) to the engine's user."""
        for item in [path, *path.rglob("*")]:
            os.chown(item, self.uid, self.gid)

    def load(self, ref: str) -> str:
        """Copy an image from dockerd into this engine's store, unless there already; return its name here.

        ``ref`` is a name dockerd knows without a registry host (the cached stand-ins,
        ``devnix-test-cache/<name>:<tag>``); Podman files it under ``localhost/``.
        """
        first, slash, _ = ref.partition("/")
        if slash and (first == "localhost" or "." in first or ":" in first):
            raise ValueError(f"{ref}: give a dockerd name without a registry host")
        name = LOCAL_PREFIX + ref
        wanted = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], env=BASE_ENV, timeout=60)
        image_id = wanted.stdout.strip().removeprefix("sha256:")
        if self._copies.get(ref) == image_id:
            return name
        with _lock(f"podman-{self.mode}-load"):
            if self._image_id(name) != image_id:
                self._copy(ref)
                if self._image_id(name) != image_id:
                    raise RuntimeError(f"{name} in Podman ({self.mode}) is not dockerd's {ref} ({image_id})")
                self._remove_older_copies(name)
        self._copies[ref] = image_id
        return name

    def names(self) -> list[str]:
        """Every image name in this engine's store (tags, and the digest names of pulls by digest)."""
        listed = self.podman("image", "ls", "--format", "json", timeout=120)
        return [str(name) for image in json.loads(listed.stdout or "[]") for name in image.get("Names") or []]

    def untag_registry(self, port: int) -> list[str]:
        """Remove the names that pulls from the loopback registry on ``port`` left in this store.

        The engine's copy of a stand-in keeps its layers (and its own name, when ``load`` made one);
        an image that had only the registry's name goes. Returns the names removed.
        """
        prefixes = (f"localhost:{port}/", f"127.0.0.1:{port}/")
        removed = []
        for name in self.names():
            if name.startswith(prefixes) and self.podman("image", "rm", name, check=False).returncode == 0:
                removed.append(name)
        return removed

    def devnix(self, *args: str) -> list[str]:
        """``devnix ARGS`` as a command line that runs as the engine's user (with :meth:`devnix_env`).

        Root runs this checkout's virtualenv. The test user cannot enter /root, where the virtualenv's
        Python lives, so it runs the system's Python of the same version on this checkout and the
        virtualenv's packages (PYTHONPATH): the same code and the same libraries.
        """
        if not self.rootless:
            return [sys.executable, "-m", "devnix", *args]
        return self.argv(SYSTEM_PYTHON, "-m", "devnix", *args)

    def devnix_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for :meth:`devnix`: DOCKER_HOST on this engine's socket, no engine choice."""
        if self.rootless:
            merged = self.environ({"PYTHONPATH": _devnix_path(), **(extra or {})})
        else:
            # The caller's environment: a test's private DOCKER_CONFIG and XDG folders stay in force.
            merged = {**os.environ, "DOCKER_HOST": self.url, **(extra or {})}
        merged.pop("DEVNIX_ENGINE", None)  # DOCKER_HOST alone says which engine
        return merged

    def _image_id(self, name: str) -> str | None:
        found = self.podman("image", "inspect", "--format", "{{.Id}}", name, check=False, timeout=60)
        return found.stdout.strip() if found.returncode == 0 else None

    def _copy(self, ref: str) -> None:
        with tempfile.TemporaryFile() as errors:
            save = subprocess.Popen(
                ["docker", "save", ref], env=BASE_ENV, stdout=subprocess.PIPE, stderr=errors
            )
            try:
                loaded = subprocess.run(
                    self.argv("podman", "load", "--quiet"),
                    env=self.environ(),
                    stdin=save.stdout,
                    capture_output=True,
                    text=True,
                    timeout=900,
                    check=False,
                )
            finally:
                assert save.stdout is not None
                save.stdout.close()
                saved = save.wait(timeout=60)
            errors.seek(0)
            if saved != 0 or loaded.returncode != 0:
                raise RuntimeError(
                    f"docker save {ref} | podman load ({self.mode}) failed: docker save exited {saved} "
                    f"({errors.read().decode(errors='replace')[-1000:]}); podman load exited "
                    f"{loaded.returncode} ({loaded.stderr[-2000:]})"
                )

    def _remove_older_copies(self, name: str) -> None:
        """Drop copies of the same stand-in from an older recipe (same tag up to the recipe hash)."""
        repository, _, tag = name.rpartition(":")
        family = tag.rpartition("-")[0] + "-"
        listed = self.podman("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository, check=False)
        for other in listed.stdout.split():
            if other != name and other.startswith(f"{repository}:{family}"):
                self.podman("image", "rm", other, check=False, timeout=120)


SYSTEM_PYTHON = "/usr/bin/python3"


def _devnix_path() -> str:
    """PYTHONPATH for the system's Python: this checkout, then the virtualenv's packages (compiled ones
    included, so the versions must match)."""
    checkout = Path(__file__).resolve().parents[2]
    found = run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"], check=False, timeout=30)
    if found.returncode != 0 or found.stdout.strip() != str(sys.version_info[:2]):
        raise EnvironmentMissing(
            f"{SYSTEM_PYTHON} ({found.stdout.strip() or found.stderr.strip()}) is not Python "
            f"{sys.version_info[0]}.{sys.version_info[1]}, whose packages the virtualenv holds"
        )
    return f"{checkout}{os.pathsep}{sysconfig.get_paths()['purelib']}"


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """One loader at a time on this machine: concurrent sessions wait, then find the copy made."""
    path = seed_base().parent / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _answering(socket: Path, started_by: str) -> None:
    """Raise EnvironmentMissing unless a Podman answers on the socket."""
    try:
        version = ask(f"unix://{socket}", "/version")
    except (OSError, RuntimeError, ValueError) as err:
        raise EnvironmentMissing(f"no Podman answers on unix://{socket} ({err}): {started_by}") from err
    names = [str(c.get("Name")) for c in version.get("Components") or [] if isinstance(c, dict)]
    if PODMAN_COMPONENT not in names:
        raise EnvironmentMissing(
            f"unix://{socket} answers, but /version lists no {PODMAN_COMPONENT}: {names}"
        )


def _podman_installed() -> None:
    if shutil.which("podman", path=BASE_ENV.get("PATH")) is None:
        raise EnvironmentMissing("podman is not installed (scripts/test installs it)")


def rootful(scratch: Path) -> Podman:
    """The root Podman that scripts/test starts; raise EnvironmentMissing when it does not answer."""
    _podman_installed()
    _answering(ROOTFUL_SOCKET, "scripts/test starts `podman system service` there")
    return Podman("rootful", ROOTFUL_SOCKET, 0, 0, {"DOCKER_HOST": f"unix://{ROOTFUL_SOCKET}"}, scratch)


def rootless() -> Podman:
    """The test user's Podman; its scratch folder (under /tmp, which the user can reach) is made here."""
    _podman_installed()
    try:
        user = pwd.getpwnam(ROOTLESS_USER)
    except KeyError as err:
        raise EnvironmentMissing(f"no user {ROOTLESS_USER} (scripts/test creates it)") from err
    runtime = Path(f"/run/user/{user.pw_uid}")
    socket = runtime / "podman" / "podman.sock"
    _answering(socket, f"scripts/test starts `podman system service` there as {ROOTLESS_USER}")
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": user.pw_dir,
        "USER": ROOTLESS_USER,
        "LOGNAME": ROOTLESS_USER,
        "XDG_RUNTIME_DIR": str(runtime),
        "DOCKER_HOST": f"unix://{socket}",
    }
    scratch = Path(tempfile.mkdtemp(prefix="devnix-podman-rootless-"))
    scratch.chmod(0o755)
    return Podman("rootless", socket, user.pw_uid, user.pw_gid, env, scratch)


@dataclass(kw_only=True)
class PodmanDevcontainerCLI(DevcontainerCLI):
    """The reference CLI with ``--docker-path podman``, run as the engine's user."""

    engine: Podman

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 900,
        check: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        # After the subcommand: past it, `exec` hands every argument to the command it runs.
        argv = [str(self.path), *args[:1], "--docker-path", "podman", *args[1:]]
        merged = self.engine.environ({**BUILD_ENV, **self.env, **(env or {})})
        return run(self.engine.argv(*argv), env=merged, timeout=timeout, check=check, cwd=cwd)

    def remove_leftovers(self) -> list[str]:
        """What ``remove_devcontainer_leftovers`` removes, through the socket, and the CLI's images,
        which Podman names ``localhost/vsc-...`` (the shared helper knows only ``vsc-...``)."""
        with self.engine.client() as client:
            images: set[str] = set()
            for workspace in self.workspaces:
                for container in client.containers.list(
                    all=True, filters={"label": f"devcontainer.local_folder={workspace}"}
                ):
                    image = (container.attrs.get("Config") or {}).get("Image") or ""
                    if image.startswith(f"{LOCAL_PREFIX}vsc-"):
                        images.add(image)
            removed = remove_devcontainer_leftovers(client, self.workspaces)
        # Also the images of a build whose container never ran, and the Features build's content
        # image (one name per engine). Children (``-uid``, ``-features``) sort after their base: the
        # reverse order removes them first.
        marks = [f"-{hashlib.sha256(str(workspace).encode()).hexdigest()}" for workspace in self.workspaces]
        built = [
            name
            for name in self.engine.names()
            if name.startswith(f"{LOCAL_PREFIX}vsc-") and any(mark in name for mark in marks)
        ]
        if self.workspaces:
            built.append(f"{LOCAL_PREFIX}{FEATURE_CONTENT_IMAGE}")
        for image in sorted(images | set(built), reverse=True):
            if self.engine.podman("image", "rm", image, check=False, timeout=120).returncode == 0:
                removed.append(f"image {image}")
        return removed


# What the podman_devcontainer fixture gives: the CLI for one engine.
PodmanDevcontainer = Callable[[Podman], PodmanDevcontainerCLI]
