"""``devnix bootstrap`` with DOCKER_HOST on Podman's socket (issue #10, item 4): the same run as
test_bootstrap.py (the offline test flake, the amd64 Nix stand-in as builder, an aarch64 target whose
derivations run under QEMU), but the builder runs in Podman, the image is streamed into Podman's store,
verified there, tagged and pushed from there. Failures and a Ctrl-C leave nothing in Podman.

Podman differs from dockerd where bootstrap touches it: Debian's Podman 4.3 cannot load a gzipped
archive (devnix unpacks it on the way), names an archive's images ``localhost/…`` and says nothing about
a name it moves. Checks on Podman go through its own CLI and API, never through devnix, and dockerd is
checked to have seen nothing.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import bootstrap_flake
import pytest
from podman import Podman
from standins import BASE_ENV, NIX_AMD64, EnvironmentMissing, Registry
from test_bootstrap import Run

from devnix import engine
from tests.support import skip_or_fail

LABEL = engine.BOOTSTRAP_LABEL
OFFLINE = ("--option", "substituters", "")
# Podman files the names of a loaded archive under its own registry.
ARCHIVE_NAME = f"localhost/{bootstrap_flake.ARCHIVE_NAME}"
MISLABELLED_NAME = f"localhost/{bootstrap_flake.MISLABELLED_NAME}"
FLAKE_IMAGE_CREATED = 1  # bootstrap_flake.CONFIG's "created", in seconds

FAILING_FLAKE_NIX = r"""{
  description = "devnix tests: a build that fails, offline";
  outputs = { self }: {
    packages.aarch64-linux.broken = derivation {
      name = "broken";
      system = "aarch64-linux";
      builder = "${self}/tools/busybox";
      args = [ "sh" "-c" "echo devnix-test-breaking-now; exit 3" ];
    };
  };
}
"""


def bootstrap(podman: Podman, *args: str, timeout: float = 1800) -> Run:
    started = time.monotonic()
    proc = subprocess.run(
        podman.devnix("bootstrap", *args),
        capture_output=True,
        text=True,
        env=podman.devnix_env(),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


@dataclass(frozen=True)
class Traces:
    """What a bootstrap run can leave in Podman, apart from what other tests (running at the same time on
    the same engine) make: containers with devnix's bootstrap label (the builder, the verify probe),
    volumes with its labels (store volumes), the test flake's images (their config is dated 1970-01-01
    00:00:01, so their listing says ``Created: 1``) and the names on them."""

    containers: frozenset[str]
    volumes: frozenset[str]
    images: frozenset[str]
    names: frozenset[str]

    @classmethod
    def of(cls, podman: Podman) -> Traces:
        containers = podman.api(f"/containers/json?all=1&filters={_label_filter(LABEL)}")
        volumes = podman.api("/volumes").get("Volumes") or []
        images = [i for i in podman.api("/images/json?all=1") if i.get("Created") == FLAKE_IMAGE_CREATED]
        return cls(
            frozenset(str(c["Id"]) for c in containers),
            frozenset(
                str(v["Name"]) for v in volumes if any(k.startswith(LABEL) for k in v.get("Labels") or {})
            ),
            frozenset(str(i["Id"]) for i in images),
            frozenset(str(name) for i in images for name in i.get("RepoTags") or []),
        )


def settled(podman: Podman, containers: frozenset[str], timeout: float = 15) -> Traces:
    """Podman's traces once its labelled containers are ``containers`` again (or after ``timeout``): an
    auto-removed builder goes a moment after devnix has exited."""
    deadline = time.monotonic() + timeout
    while (now := Traces.of(podman)).containers != containers and time.monotonic() < deadline:
        time.sleep(0.3)
    return now


def _label_filter(label: str) -> str:
    return quote(json.dumps({"label": [label]}), safe="")


def labelled(podman: Podman, value: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = podman.api(
        f"/containers/json?all=1&filters={_label_filter(f'{LABEL}={value}')}"
    )
    return found


def image_in(podman: Podman, name: str) -> dict[str, Any] | None:
    inspected = podman.podman("image", "inspect", name, check=False, timeout=60)
    if inspected.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(inspected.stdout)[0]
    return found


def report(request: pytest.FixtureRequest, line: str) -> None:
    """A line in pytest's output past capture (the timings the issue asks for), as conftest's _report."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capman is not None:
        with capman.global_and_fixture_disabled():
            reporter.write_line(f"[tests/docker] {line}")


def remove_from(podman: Podman, *names: str) -> None:
    for name in names:
        podman.podman("image", "rm", name, check=False, timeout=120)


# ------------------------------------------------------------------------------------------------
# Fixtures


@dataclass(frozen=True)
class Setup:
    """One Podman engine ready for bootstrap: the builder in its store, a store volume name of this
    session's own (devnix creates the volume on first use), and the image flake where its user reads it."""

    podman: Podman
    builder: str
    store: str
    image_flake: Path


def _setup(podman: Podman, standin_images: dict[str, str]) -> Iterator[Setup]:
    store = f"devnix-test-podman-store-{secrets.token_hex(4)}"
    # A folder the engine's user can enter (the rootless user cannot enter pytest's temporary folders).
    flake = _flake(bootstrap_flake.make_flake, podman.workspace("image-flake") / "f")
    yield Setup(podman, podman.load(standin_images[NIX_AMD64.key]), store, flake)
    podman.podman("volume", "rm", "--force", store, check=False, timeout=120)


def _flake(make: Any, dest: Path) -> Path:
    """A test flake (its files readable by everyone: the big inputs are hard links to a cache, which must
    keep its owner)."""
    try:
        made: Path = make(dest, BASE_ENV)
    except EnvironmentMissing as err:
        skip_or_fail(str(err))
    return made


@pytest.fixture(scope="session")
def rootful(podman_rootful: Podman, standin_images: dict[str, str]) -> Iterator[Setup]:
    yield from _setup(podman_rootful, standin_images)


@pytest.fixture(scope="session")
def rootless(podman_rootless: Podman, standin_images: dict[str, str]) -> Iterator[Setup]:
    yield from _setup(podman_rootless, standin_images)


@pytest.fixture(scope="session")
def small_flake(rootful: Setup) -> Path:
    return _flake(bootstrap_flake.make_small_flake, rootful.podman.workspace("small-flake") / "f")


@pytest.fixture(scope="session")
def failing_flake(small_flake: Path) -> Path:
    """The small flake with a derivation whose builder exits 3 (it shares the small flake's busybox)."""
    flake = small_flake.parent.parent / "failing"
    (flake / "tools").mkdir(parents=True)
    (flake / "flake.nix").write_text(FAILING_FLAKE_NIX)
    (flake / "flake.lock").write_text(bootstrap_flake.FLAKE_LOCK)
    (flake / "tools" / "busybox").hardlink_to(small_flake / "tools" / "busybox")
    return flake


@dataclass(frozen=True)
class Built:
    setup: Setup
    tag: str
    run: Run
    before: Traces

    @property
    def result(self) -> dict[str, Any]:
        return self.run.json()


def _built(setup: Setup, registry: Registry) -> Iterator[Built]:
    """The one full bootstrap of the gzipped archive under an engine, pushed to the session registry."""
    tag = f"{registry.host}/devnix-test/podman-bootstrap:{setup.podman.mode}"
    before = Traces.of(setup.podman)
    result = bootstrap(
        setup.podman,
        "--flake", f"{setup.image_flake}#image",
        "--system", "aarch64-linux",
        "--builder-image", setup.builder,
        "--tag", tag,
        "--push",
        "--store-volume", setup.store,
        "--json",
        *OFFLINE,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    yield Built(setup, tag, result, before)
    remove_from(setup.podman, tag)


@pytest.fixture(scope="session")
def built(rootful: Setup, registry: Registry) -> Iterator[Built]:
    yield from _built(rootful, registry)


@pytest.fixture(scope="session")
def built_rootless(rootless: Setup, registry: Registry) -> Iterator[Built]:
    yield from _built(rootless, registry)


# ------------------------------------------------------------------------------------------------
# The happy path


@pytest.mark.parametrize("which", ["built", "built_rootless"], ids=["rootful", "rootless"])
def test_bootstrap_under_podman_builds_loads_verifies_tags_and_pushes(
    which: str, registry: Registry, request: pytest.FixtureRequest
) -> None:
    # Looked up lazily, so that a rootless engine that cannot run does not take the rootful test along.
    built: Built = request.getfixturevalue(which)
    podman = built.setup.podman
    result = built.result
    assert result["system"] == "aarch64-linux" and result["platform"] == "linux/arm64"
    assert result["shape"] == "archive" and result["out_path"].endswith("docker-image-nix.tar.gz")
    assert result["built"] is True and result["loaded"] is True
    assert result["builder"]["emulated"] is False
    assert result["builder"]["nix_settings"]["extra-platforms"] == "aarch64-linux"
    assert result["store_volume"] == {"name": built.setup.store, "created": True}
    assert [s["step"] for s in result["steps"]] == [
        "builder", "store", "start", "copy", "build", "load", "verify", "tag", "push",
    ]  # fmt: skip
    assert result["pushed"] is True and result["digest"].startswith("sha256:")

    # The image is in this Podman's store, arm64, under the tag; the archive's own name is gone again.
    details = image_in(podman, built.tag)
    assert details is not None and f"sha256:{details['Id']}" == result["image_id"]
    assert details["Architecture"] == "arm64" and details["Os"] == "linux"
    assert image_in(podman, ARCHIVE_NAME) is None
    # Run by Podman itself (QEMU), the image's Nix is aarch64.
    said = podman.podman(
        "run", "--rm", built.tag, "nix", "--extra-experimental-features", "nix-command",
        "eval", "--impure", "--raw", "--expr", "builtins.currentSystem",
    )  # fmt: skip
    assert said.stdout.strip() == "aarch64-linux", said.stderr
    version = podman.podman("run", "--rm", built.tag, "nix", "--version")
    assert version.stdout.startswith("nix (Nix) "), version.stderr

    # Podman pushed it: the registry has the tag, under the digest devnix reported.
    repository, _, reference = built.tag.split("/", 1)[1].rpartition(":")
    pushed = registry.get_manifest(repository, reference)
    assert pushed.status == 200
    assert pushed.headers.get("Docker-Content-Digest") == result["digest"]

    # Nothing else is left: the builder and the verify container are gone; the store volume, the image
    # and its tag are all that is new.
    after = settled(podman, built.before.containers)
    assert after.containers == built.before.containers
    assert after.volumes - built.before.volumes == {built.setup.store}
    assert after.names - built.before.names == {built.tag}
    # dockerd saw none of it.
    assert engine.image_details(built.tag) is None
    assert engine.volume_details(built.setup.store) is None

    steps = ", ".join(f"{s['step']} {s['seconds']:.1f}" for s in result["steps"])
    report(request, f"bootstrap under {podman.mode} Podman: {built.run.seconds:.1f} s ({steps})")


def test_a_second_run_under_podman_builds_and_loads_nothing(built: Built, rootful: Setup) -> None:
    """The load note in the store volume names an image Podman still has: no build, no load."""
    before = Traces.of(rootful.podman)
    again = bootstrap(
        rootful.podman,
        "--flake", f"{rootful.image_flake}#image",
        "--system", "aarch64-linux",
        "--builder-image", rootful.builder,
        "--tag", built.tag,
        "--store-volume", rootful.store,
        "--json",
        *OFFLINE,
    )  # fmt: skip
    assert again.code == 0, again.stderr
    result = again.json()
    assert result["built"] is False and result["loaded"] is False
    assert result["image_id"] == built.result["image_id"]
    assert settled(rootful.podman, before.containers) == before


def test_an_unnamed_stream_output_is_loaded_into_podman_and_named(built: Built, rootful: Setup) -> None:
    """A stream script's archive names no image: Podman answers ``Loaded image: sha256:…``, an id that
    devnix must not take for a name (removing that "name" would delete the image it has just tagged)."""
    tag = "devnix-test-podman-bootstrap/stream:arm64"
    before = Traces.of(rootful.podman)
    try:
        result = bootstrap(
            rootful.podman,
            "--flake", f"path:{rootful.image_flake}#stream",
            "--system", "aarch64-linux",
            "--builder-image", rootful.builder,
            "--tag", tag,
            "--store-volume", rootful.store,
            "--json",
            *OFFLINE,
        )  # fmt: skip
        assert result.code == 0, result.stderr
        data = result.json()
        assert data["shape"] == "stream" and data["loaded"] is True
        details = image_in(rootful.podman, tag)
        assert details is not None and f"sha256:{details['Id']}" == data["image_id"]
        assert details["Architecture"] == "arm64"
        assert settled(rootful.podman, before.containers).containers == before.containers
    finally:
        remove_from(rootful.podman, tag)


# ------------------------------------------------------------------------------------------------
# Failures end cleanly


def test_a_failing_build_under_podman_leaves_nothing_behind(rootful: Setup, failing_flake: Path) -> None:
    tag = "devnix-test-podman-bootstrap/broken:arm64"
    before = Traces.of(rootful.podman)
    result = bootstrap(
        rootful.podman,
        "--flake", f"{failing_flake}#broken",
        "--system", "aarch64-linux",
        "--builder-image", rootful.builder,
        "--tag", tag,
        "--store-volume", rootful.store,
        *OFFLINE,
    )  # fmt: skip
    assert result.code == 7, result.stderr
    lines = result.stderr.strip().splitlines()
    assert any("devnix-test-breaking-now" in line for line in lines if line.startswith("  | "))
    failure = [line for line in lines if line.startswith("devnix: error:")]
    assert (
        len(failure) == 1 and f"nix build of path:{failing_flake}#packages.aarch64-linux.broken" in failure[0]
    )
    # The store volume is a cache and stays (it exists when the session's first bootstrap ran first).
    after = settled(rootful.podman, before.containers)
    assert after.containers == before.containers
    assert after.volumes - before.volumes <= {rootful.store}
    assert after.images == before.images and after.names == before.names


def test_an_image_that_fails_verification_under_podman_goes_and_gives_its_names_back(
    built: Built, rootful: Setup
) -> None:
    """Loaded into Podman, then refused (its config says amd64, its Nix answers aarch64-linux): the image
    goes, and the name the archive carries (``localhost/…`` in Podman), which Podman moved onto it without
    a word, is back on the image it named before."""
    tag = "devnix-test-podman-bootstrap/mislabelled:amd64"
    podman = rootful.podman
    podman.podman("tag", rootful.builder, MISLABELLED_NAME)
    try:
        before = Traces.of(podman)
        result = bootstrap(
            podman,
            "--flake", f"{rootful.image_flake}#images.mislabelled",
            "--system", "x86_64-linux",
            "--builder-image", rootful.builder,
            "--tag", tag,
            "--store-volume", rootful.store,
            *OFFLINE,
            "--option", "extra-platforms", "aarch64-linux",
        )  # fmt: skip
        assert result.code == 8, result.stderr
        assert "[stream into engine] done" in result.stderr
        failure = [line for line in result.stderr.splitlines() if line.startswith("devnix: error:")]
        assert len(failure) == 1 and "says 'aarch64-linux'" in failure[0], result.stderr
        assert settled(podman, before.containers) == before
        named = image_in(podman, MISLABELLED_NAME)
        builder = image_in(podman, rootful.builder)
        assert named is not None and builder is not None and named["Id"] == builder["Id"]
        assert image_in(podman, tag) is None
        assert image_in(podman, built.tag) is not None  # shares the layer; untouched
    finally:
        podman.podman("untag", rootful.builder, MISLABELLED_NAME, check=False)


@pytest.mark.parametrize(
    ("signal_number", "exit_code"),
    [(signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["ctrl-c", "kill"],
)
def test_stopping_devnix_under_podman_returns_promptly_and_leaves_nothing(
    rootful: Setup, small_flake: Path, signal_number: int, exit_code: int, request: pytest.FixtureRequest
) -> None:
    """Ctrl-C: devnix removes the builder and returns. ``kill -9``: devnix cleans nothing up, and the
    builder ends by itself, as under Docker: Podman closes its stdin with devnix's attachment, its ``cat``
    ends, and the container is auto-removed."""
    name = signal.Signals(signal_number).name
    tag = f"devnix-test-podman-bootstrap/interrupted:{name.lower()}"
    before = Traces.of(rootful.podman)
    proc = subprocess.Popen(
        rootful.podman.devnix(
            "bootstrap",
            "--flake", f"{small_flake}#slow",
            "--system", "aarch64-linux",
            "--builder-image", rootful.builder,
            "--tag", tag,
            "--store-volume", rootful.store,
            *OFFLINE,
        ),
        env=rootful.podman.devnix_env(),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # As from a terminal (see test_bootstrap.py): a SIGINT ignored by whoever started pytest in the
        # background would stay ignored in devnix, and the Ctrl-C under test would never arrive.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("[copy flake] done"):
                break
        # The build is under way once the builder runs the derivation's `sleep` (through QEMU).
        deadline = time.monotonic() + 120
        mounts: set[str] = set()
        while time.monotonic() < deadline:
            found = labelled(rootful.podman, tag)
            if found:
                mounts = {str(m.get("Name")) for m in found[0].get("Mounts") or [] if m.get("Name")}
                top = rootful.podman.podman("top", str(found[0]["Id"]), check=False).stdout
                if "sleep 600" in top:
                    break
            time.sleep(0.3)
        else:
            pytest.fail(f"the slow build never started:\n{''.join(seen)}")
        proc.send_signal(signal_number)
        sent = time.monotonic()
        _, rest = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == exit_code, rest
    assert took < 10, f"devnix took {took:.1f} s to return after {name}"
    if signal_number == signal.SIGINT:
        assert "[nix build] failed" in rest and "devnix: interrupted" in rest
        report(request, f"Ctrl-C under Podman: devnix returned {took:.1f} s after SIGINT")
    after = settled(rootful.podman, before.containers)
    assert after.containers == before.containers
    assert after.volumes - before.volumes <= {rootful.store}
    assert after.images == before.images and after.names == before.names
    # The builder's volumes: the store stays (a cache), any other (anonymous) one went with it.
    assert rootful.store in mounts
    present = {str(v["Name"]) for v in rootful.podman.api("/volumes").get("Volumes") or []}
    assert mounts & present == {rootful.store}
