"""``devnix bootstrap`` on the real engine: an amd64 Nix builder builds an arm64 Nix image from a flake.

The seed's recipe, turned around to fit this amd64 machine: the amd64 Nix stand-in builds the offline
flake of ``bootstrap_flake`` (every derivation is ``aarch64-linux``, run through binfmt), so the build
needs ``extra-platforms = aarch64-linux`` exactly as the seed's Apple Silicon build needed it the other
way round. Full builds are few: one of the gzipped archive (shared by the tests through a session
fixture, and pushed), one small one of the stream script (its layer is already in the store volume);
the failure tests use a flake of a few MB whose build never gets far.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bootstrap_flake
import pytest
from standins import (
    BASE_ENV,
    NIX_AMD64,
    EnvironmentMissing,
    NixImages,
    Registry,
    free_port,
    run,
)

from devnix import engine
from devnix.errors import EngineError
from tests.support import skip_or_fail

BUILDER = NIX_AMD64.cache_ref
LABEL = engine.BOOTSTRAP_LABEL
OFFLINE = ("--option", "substituters", "")


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> dict[str, Any]:
        value = json.loads(self.stdout)
        assert isinstance(value, dict)
        return value

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("devnix: error:")]


def bootstrap(*args: str, env: Mapping[str, str] | None = None, timeout: float = 1800) -> Run:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "devnix", "bootstrap", *args],
        capture_output=True,
        text=True,
        env=dict(env if env is not None else os.environ),
        timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def leftovers(tag: str) -> list[str]:
    """Builder containers of a run for ``tag``, and verify containers (which carry ``=verify``)."""
    found = engine.containers_with_label(f"{LABEL}={tag}") + engine.containers_with_label(f"{LABEL}=verify")
    return [str(c.get("Id"))[:12] for c in found]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_no_leftovers(tag: str, timeout: float = 15) -> list[str]:
    # A force-removal returns before the engine has forgotten the container; poll briefly.
    deadline = time.monotonic() + timeout
    while (found := leftovers(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def _retry(args: list[str], gone: str, timeout: float = 30) -> None:
    """Run a docker removal until it succeeds or the thing is gone: right after a test, an auto-removed
    builder may still hold the volume, and another session's probe may briefly run an image."""
    deadline = time.monotonic() + timeout
    while True:
        done = run(args, env=BASE_ENV, check=False)
        if done.returncode == 0 or gone in done.stderr or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def remove_tag(ref: str) -> None:
    _retry(["docker", "image", "rm", ref], gone="No such image")


# ------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def store_volume(docker_client: Any) -> Iterator[str]:
    """A store volume of this session's own, so runs elsewhere (the benchmark, a user) do not warm it."""
    name = f"devnix-test-store-{secrets.token_hex(4)}"
    yield name
    _retry(["docker", "volume", "rm", name], gone="no such volume")


@pytest.fixture(scope="session")
def image_flake(
    standin_images: dict[str, str],
    docker_session_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    try:
        return bootstrap_flake.make_flake(tmp_path_factory.mktemp("flakes") / "image", docker_session_env)
    except EnvironmentMissing as err:
        skip_or_fail(str(err))
        raise


@pytest.fixture(scope="session")
def small_flake(
    standin_images: dict[str, str],
    docker_session_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    try:
        return bootstrap_flake.make_small_flake(
            tmp_path_factory.mktemp("flakes") / "small", docker_session_env
        )
    except EnvironmentMissing as err:
        skip_or_fail(str(err))
        raise


@dataclass(frozen=True)
class Built:
    tag: str
    run: Run

    @property
    def result(self) -> dict[str, Any]:
        return self.run.json()


@pytest.fixture(scope="session")
def built(image_flake: Path, store_volume: str, registry: Registry) -> Iterator[Built]:
    """The one full build of the gzipped archive, pushed to the session registry."""
    tag = f"{registry.host}/devnix-test/bootstrap:arm64"
    # The archive's own name must not be in the engine beforehand (devnix gives an existing holder its
    # name back, and the test checks that it drops a name it made): an interrupted run may have left it.
    remove_tag(bootstrap_flake.ARCHIVE_NAME)
    result = bootstrap(
        "--flake", f"{image_flake}#image",
        "--system", "aarch64-linux",
        "--builder-image", BUILDER,
        "--tag", tag,
        "--push",
        "--store-volume", store_volume,
        "--json",
        *OFFLINE,
        env=BASE_ENV,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    yield Built(tag, result)
    remove_tag(tag)


# ------------------------------------------------------------------------------------------------
# The seed's cross-build error


def test_cross_build_needs_extra_platforms_as_in_the_seed(small_flake: Path, docker_client: Any) -> None:
    """Without extra-platforms the amd64 Nix refuses aarch64 derivations; with it, binfmt runs them."""
    base = ["docker", "run", "--rm", "-v", f"{small_flake}:/f:ro", "-e"]
    config = "NIX_CONFIG=experimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false"
    build = ["nix", "build", "--no-link", "path:/f#packages.aarch64-linux.hello", *OFFLINE]
    refused = run([*base, config, BUILDER, *build], env=BASE_ENV, check=False, timeout=300)
    assert refused.returncode != 0
    assert "a 'aarch64-linux' with features {} is required to build" in refused.stderr
    assert "but I am a 'x86_64-linux'" in refused.stderr
    allowed = run(
        [*base, config + "\nextra-platforms = aarch64-linux", BUILDER, *build], env=BASE_ENV, check=False
    )
    assert allowed.returncode == 0, allowed.stderr


# ------------------------------------------------------------------------------------------------
# The happy path


def test_bootstrap_builds_verifies_tags_and_pushes_an_arm64_nix_image(
    built: Built, registry: Registry
) -> None:
    result = built.result
    assert result["system"] == "aarch64-linux" and result["platform"] == "linux/arm64"
    assert result["shape"] == "archive" and result["out_path"].endswith("docker-image-nix.tar.gz")
    assert result["built"] is True and result["loaded"] is True
    assert result["builder"]["emulated"] is False  # amd64 builder on this amd64 engine
    settings = result["builder"]["nix_settings"]
    assert settings["extra-platforms"] == "aarch64-linux"
    assert "filter-syscalls" not in settings  # only an emulated builder turns the filter off
    assert result["builder"]["nix_options"] == [["substituters", ""]]
    assert [s["step"] for s in result["steps"]] == [
        "builder", "store", "start", "copy", "build", "load", "verify", "tag", "push",
    ]  # fmt: skip
    assert all(s["seconds"] >= 0 for s in result["steps"])
    assert result["pushed"] is True and result["digest"].startswith("sha256:")
    # Progress (plain lines when stderr is not a terminal) went to stderr, the JSON alone to stdout.
    assert "[nix build] done in" in built.run.stderr

    details = engine.image_details(built.tag)
    assert details is not None and details["Id"] == result["image_id"]
    assert details["Architecture"] == "arm64" and details["Os"] == "linux"
    # Checked again here, independently of devnix: the image's own Nix, under QEMU, is aarch64.
    said = run(
        ["docker", "run", "--rm", built.tag, "nix", "--extra-experimental-features", "nix-command",
         "eval", "--impure", "--raw", "--expr", "builtins.currentSystem"],
        env=BASE_ENV,
    )  # fmt: skip
    assert said.stdout.strip() == "aarch64-linux"

    repository = built.tag.split("/", 1)[1].rsplit(":", 1)[0]
    pushed = registry.get_manifest(repository, "arm64")
    assert pushed.status == 200
    assert pushed.headers.get("Docker-Content-Digest") == result["digest"]

    # Nothing else is left: no builder or verify container, and not the archive's own name.
    assert wait_for_no_leftovers(built.tag) == []
    assert engine.image_details(bootstrap_flake.ARCHIVE_NAME) is None


def test_manifest_joins_the_bootstrapped_image_with_the_amd64_standin(
    built: Built, nix_images: NixImages, registry: Registry
) -> None:
    multi = f"{registry.host}/devnix-test/bootstrap:multi"
    created = subprocess.run(
        [sys.executable, "-m", "devnix", "manifest", "create", multi, nix_images.amd64, built.tag,
         "--push", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    platforms = sorted(m["platform"] for m in json.loads(created.stdout)["manifests"])
    assert platforms == ["linux/amd64", "linux/arm64"]
    try:
        for platform, arch in (("linux/arm64", "arm64"), ("linux/amd64", "amd64")):
            run(["docker", "pull", "--platform", platform, multi], env=BASE_ENV, timeout=600)
            details = engine.image_details(multi)
            assert details is not None and details["Architecture"] == arch
            if arch == "arm64":
                # The very image bootstrap loaded: ids are config digests, unchanged by push and pull.
                assert details["Id"] == built.result["image_id"]
    finally:
        remove_tag(multi)


def test_second_run_of_the_unchanged_flake_builds_and_loads_nothing(
    built: Built, image_flake: Path, store_volume: str
) -> None:
    again = bootstrap(
        "--flake", f"{image_flake}#image",
        "--system", "aarch64-linux",
        "--builder-image", BUILDER,
        "--tag", built.tag,
        "--store-volume", store_volume,
        "--json",
        *OFFLINE,
    )  # fmt: skip
    assert again.code == 0, again.stderr
    result = again.json()
    assert result["built"] is False and result["loaded"] is False
    assert result["store_volume"] == {"name": store_volume, "created": False}
    assert result["image_id"] == built.result["image_id"]
    load = next(s for s in result["steps"] if s["step"] == "load")
    assert load.get("skipped") is True
    # The benchmark holds the 0.25x target; here only a margin that a busy CI machine keeps.
    assert again.seconds < 0.6 * built.run.seconds, (again.seconds, built.run.seconds)
    assert wait_for_no_leftovers(built.tag) == []


def test_a_stream_script_output_is_streamed_into_the_engine(
    built: Built, image_flake: Path, store_volume: str
) -> None:
    tag = "devnix-test-bootstrap/stream:arm64"
    try:
        result = bootstrap(
            "--flake", f"path:{image_flake}#stream",
            "--system", "aarch64-linux",
            "--builder-image", BUILDER,
            "--tag", tag,
            "--store-volume", store_volume,
            "--json",
            *OFFLINE,
        )  # fmt: skip
        assert result.code == 0, result.stderr
        data = result.json()
        assert data["shape"] == "stream" and data["loaded"] is True
        # The uncompressed archive (its layer alone ~250-320 MB) went through devnix's process, whole.
        assert data["bytes_streamed"] > (image_flake / "rootfs.tar").stat().st_size
        details = engine.image_details(tag)
        assert details is not None and details["Architecture"] == "arm64"
        assert wait_for_no_leftovers(tag) == []
    finally:
        remove_tag(tag)


# ------------------------------------------------------------------------------------------------
# Failures end cleanly


def test_a_missing_flake_attribute_ends_with_nix_log_and_one_line(
    small_flake: Path, nix_images: NixImages, store_volume: str
) -> None:
    """Also the pull path: the builder is named by its registry reference, which the engine lacks."""
    tag = "devnix-test-bootstrap/missing:arm64"
    had_builder = engine.image_details(nix_images.amd64) is not None
    try:
        result = bootstrap(
            "--flake", f"{small_flake}#nope",
            "--system", "aarch64-linux",
            "--builder-image", nix_images.amd64,
            "--tag", tag,
            "--store-volume", store_volume,
            *OFFLINE,
        )  # fmt: skip
        assert result.code == 7, result.stderr
        lines = result.stderr.strip().splitlines()
        assert any(line.startswith("  | error:") and "does not provide attribute" in line for line in lines)
        failure = [line for line in lines if line.startswith("devnix: error:")]
        assert len(failure) == 1
        assert f"nix build of path:{small_flake}#packages.aarch64-linux.nope" in failure[0]
        assert "[builder image] done" in result.stderr
        assert wait_for_no_leftovers(tag) == []
        assert engine.image_details(tag) is None
    finally:
        if not had_builder:
            remove_tag(nix_images.amd64)


def test_an_image_that_fails_verification_is_removed_with_its_names(
    built: Built, image_flake: Path, store_volume: str
) -> None:
    """Its config says amd64, its file system is arm64: the architecture check passes for an amd64
    target, Nix in it answers aarch64-linux, and everything the load made must go again."""
    tag = "devnix-test-bootstrap/mislabelled:amd64"
    result = bootstrap(
        "--flake", f"{image_flake}#images.mislabelled",
        "--system", "x86_64-linux",
        "--builder-image", BUILDER,
        "--tag", tag,
        "--store-volume", store_volume,
        *OFFLINE,
        # The target is the builder's own system, so devnix adds no extra platform; the flake's
        # derivations are aarch64 all the same: a pass-through option lets the builder run them.
        "--option", "extra-platforms", "aarch64-linux",
    )  # fmt: skip
    assert result.code == 8, result.stderr
    failure = [line for line in result.stderr.splitlines() if line.startswith("devnix: error:")]
    assert len(failure) == 1 and "says 'aarch64-linux'" in failure[0] and "not x86_64-linux" in failure[0]
    short_id = failure[0].split("built image ", 1)[1].split()[0]
    assert "[stream into engine] done" in result.stderr
    assert engine.image_details(short_id) is None  # the loaded image itself is gone
    assert engine.image_details(bootstrap_flake.MISLABELLED_NAME) is None
    assert engine.image_details(tag) is None
    assert wait_for_no_leftovers(tag) == []
    # The image bootstrap made before, which shares the layer, is untouched.
    assert engine.image_details(built.tag) is not None


def test_an_unreachable_registry_ends_before_building(small_flake: Path, store_volume: str) -> None:
    tag = f"localhost:{free_port()}/devnix-test/nowhere:arm64"
    result = bootstrap(
        "--flake", f"{small_flake}#hello",
        "--system", "aarch64-linux",
        "--builder-image", BUILDER,
        "--tag", tag,
        "--push",
        "--store-volume", store_volume,
        *OFFLINE,
    )  # fmt: skip
    assert result.code == 4, result.stderr
    assert f"cannot push to {tag.split('/')[0]}" in result.stderr
    assert "[nix build]" not in result.stderr
    assert wait_for_no_leftovers(tag) == []
    assert engine.image_details(tag) is None


def _docker_config_with(tmp_path: Path, host: str, username: str, password: str) -> None:
    config = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    config.write_text(json.dumps({"auths": {host: {"auth": token}}}))


def test_a_wrong_password_ends_cleanly_without_showing_it(
    small_flake: Path, store_volume: str, auth_registry: Registry, tmp_path: Path
) -> None:
    wrong = "not-" + (auth_registry.password or "")
    _docker_config_with(tmp_path, auth_registry.host, auth_registry.username or "", wrong)
    tag = f"{auth_registry.host}/devnix-test/private:arm64"
    result = bootstrap(
        "--flake", f"{small_flake}#hello",
        "--system", "aarch64-linux",
        "--builder-image", BUILDER,
        "--tag", tag,
        "--push",
        "--store-volume", store_volume,
        *OFFLINE,
    )  # fmt: skip
    assert result.code == 4, result.stderr
    assert "refused" in result.stderr
    assert wrong not in result.stderr + result.stdout
    assert wait_for_no_leftovers(tag) == []
    assert engine.image_details(tag) is None


def test_push_errors_inside_the_engine_stream_are_detected(
    auth_registry: Registry, standin_images: dict[str, str], tmp_path: Path
) -> None:
    """The engine answers a failed push with HTTP 200 and an error event; push_image must raise."""
    source = standin_images["debian/amd64"]
    _docker_config_with(tmp_path, auth_registry.host, auth_registry.username or "", "wrong-password")
    targets = {
        f"{auth_registry.host}/devnix-test/refused:x": "",
        f"localhost:{free_port()}/devnix-test/unreachable:x": "",
    }
    try:
        for target in targets:
            run(["docker", "tag", source, target], env=BASE_ENV)
            with pytest.raises(EngineError) as caught:
                engine.push_image(target)
            targets[target] = caught.value.message
    finally:
        for target in targets:
            remove_tag(target)
    refused, unreachable = targets.values()
    assert "pushing" in refused and ("unauthorized" in refused or "authentication" in refused), refused
    assert "connection refused" in unreachable or "dial tcp" in unreachable, unreachable


@pytest.mark.parametrize(
    ("signal_number", "exit_code", "said"),
    [(signal.SIGINT, 130, "devnix: interrupted"), (signal.SIGTERM, 143, "terminated by SIGTERM")],
    ids=["ctrl-c", "sigterm"],
)
def test_stopping_the_build_leaves_nothing_behind(
    small_flake: Path, store_volume: str, signal_number: int, exit_code: int, said: str
) -> None:
    tag = f"devnix-test-bootstrap/interrupted:{signal.Signals(signal_number).name.lower()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devnix", "bootstrap",
         "--flake", f"{small_flake}#slow",
         "--system", "aarch64-linux",
         "--builder-image", BUILDER,
         "--tag", tag,
         "--store-volume", store_volume,
         *OFFLINE],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # As from a terminal: a test run started in the background of a script (`cmd &` without job
        # control) ignores SIGINT, an ignored signal stays ignored across exec, and Python then installs
        # no KeyboardInterrupt handler: the Ctrl-C under test would never arrive.
        preexec_fn=_default_sigint,
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
        builder = ""
        while time.monotonic() < deadline:
            found = engine.containers_with_label(f"{LABEL}={tag}")
            if found:
                builder = str(found[0]["Id"])
                top = run(["docker", "top", builder], env=BASE_ENV, check=False).stdout
                if "sleep 600" in top:
                    break
            time.sleep(0.3)
        else:
            pytest.fail(f"the slow build never started:\n{''.join(seen)}")
        proc.send_signal(signal_number)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == exit_code, rest
    assert "[nix build] failed" in rest and said in rest
    assert wait_for_no_leftovers(tag) == []
    assert engine.image_details(tag) is None


def test_the_reaper_removes_a_running_builder_after_devnix_exits(standin_images: dict[str, str]) -> None:
    created = run(
        ["docker", "run", "-d", "--label", f"{LABEL}=devnix-test-reaper", BUILDER, "sleep", "600"],
        env=BASE_ENV,
    )
    container = created.stdout.strip()
    done = subprocess.run(
        [sys.executable, "-m", "devnix.reaper", container], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert engine.containers_with_label(f"{LABEL}=devnix-test-reaper") == []
