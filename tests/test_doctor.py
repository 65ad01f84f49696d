"""``devnix doctor`` without Docker: verdicts from recorded engine answers, the command with a fake engine,
and the CLI through typer's CliRunner.

The fixtures in tests/fixtures/engines/ are ``/info`` and ``/version`` answers of engines that cannot run
on a Linux CI machine (each says in ``_source`` where its shape comes from), plus this machine's dockerd.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devnix import devconfig, doctor, engine, plan
from devnix.cli import app
from devnix.commands import doctor as doctor_command
from devnix.doctor import Devcontainer, Disk, EndpointFacts, Facts, Kind, Probe, Status
from devnix.doctor.project import devcontainer_checks
from devnix.engine import api as engine_api
from devnix.engine import probes as engine_probes
from devnix.errors import EngineError
from devnix.images import Filesystem
from devnix.platforms import Platform
from tests.replay_engine import replay_engine

FIXTURES = Path(__file__).parent / "fixtures" / "engines"
ALL_FIXTURES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def endpoint_of(data: dict[str, Any], resolved: str | None = None) -> EndpointFacts:
    where = data["endpoint"]
    return EndpointFacts(where["host"], where["context"], where["source"], resolved=resolved)


def facts_of(name: str, **overrides: Any) -> Facts:
    data = load(name)
    values: dict[str, Any] = {
        "endpoint": endpoint_of(data),
        "host_os": data["host"]["os"],
        "host_arch": data["host"]["arch"],
        "info": data["info"],
        "version": data["version"],
        "directory": "/Users/ada/src/project" if data["host"]["os"] == "darwin" else "/home/ada/project",
        "disk": Disk(free=50 * doctor.GIB, total=100 * doctor.GIB, usage={"images": 3_000_000_000}),
        "store_volumes": {},
        "mount": Probe(True, "read back"),
    }
    values.update(overrides)
    return Facts(**values)


def check(report: doctor.Report, check_id: str) -> doctor.Check:
    found = [c for c in report.checks if c.id == check_id]
    assert len(found) == 1, [c.id for c in report.checks]
    return found[0]


# --- the fixtures themselves -----------------------------------------------------------------------------


def test_every_engine_kind_has_a_recorded_fixture() -> None:
    kinds = {
        doctor.detect_kind(load(n)["info"], load(n)["version"], endpoint_of(load(n)))[0] for n in ALL_FIXTURES
    }
    assert kinds == set(Kind)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_says_where_it_came_from(name: str) -> None:
    data = load(name)
    assert len(data["_source"]) > 80, "say which documentation or issue reports the fixture follows"
    assert {"endpoint", "host", "info", "version"} <= data.keys()


# --- kind, architecture, VM -------------------------------------------------------------------------------

EXPECTED = {
    # fixture: (kind, engine arch, host os/arch, the engine runs in a VM of this host)
    "docker-desktop-apple-silicon": (Kind.DOCKER_DESKTOP, "arm64", "darwin/arm64", True),
    "colima": (Kind.COLIMA, "arm64", "darwin/arm64", True),
    "lima": (Kind.LIMA, "arm64", "darwin/arm64", True),
    "rancher-desktop": (Kind.RANCHER_DESKTOP, "arm64", "darwin/arm64", True),
    "orbstack": (Kind.ORBSTACK, "arm64", "darwin/arm64", True),
    "podman": (Kind.PODMAN, "arm64", "darwin/arm64", True),
    "dockerd-debian": (Kind.DOCKERD, "amd64", "linux/amd64", False),
    # Captured from Debian's Podman 4.3 here: on Linux, Podman is no VM.
    "podman-rootful-debian": (Kind.PODMAN, "amd64", "linux/amd64", False),
    "podman-rootless-debian": (Kind.PODMAN, "amd64", "linux/amd64", False),
}


def test_expectations_cover_every_fixture() -> None:
    assert sorted(EXPECTED) == ALL_FIXTURES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_kind_architecture_and_vm_from_recorded_answers(name: str) -> None:
    kind, arch, host, in_vm = EXPECTED[name]
    report = doctor.report(facts_of(name))
    data = report.to_json()
    assert data["engine"]["kind"] == kind.value
    assert (data["engine"]["os"], data["engine"]["arch"]) == ("linux", arch)
    assert f"{data['host']['os']}/{data['host']['arch']}" == host
    assert data["engine"]["context"] == load(name)["endpoint"]["context"]
    platform = check(report, "platform")
    assert platform.status is Status.OK
    assert ("VM" in platform.message) is in_vm, platform.message
    assert kind.display_name in check(report, "engine").message
    # The native platform is runnable by definition; the other one was not probed in these facts.
    native = f"linux/{arch}"
    other = "linux/amd64" if arch == "arm64" else "linux/arm64"
    assert data["emulation"] == {native: True, other: None}
    assert not report.failed


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_json_shape(name: str) -> None:
    data = doctor.report(facts_of(name)).to_json()
    assert set(data) == {"engine", "host", "emulation", "builders", "checks"}
    assert {"os", "arch", "kind", "version", "context", "rootless"} <= set(data["engine"])
    assert set(data["host"]) == {"os", "arch"}
    assert set(data["emulation"]) == {"linux/amd64", "linux/arm64"}
    for item in data["checks"]:
        assert set(item) == {"id", "status", "message", "hint"}
        assert item["status"] in ("ok", "warn", "fail")
    assert data["engine"]["arch"] in ("amd64", "arm64")  # OCI names, never aarch64/x86_64


def test_engine_answers_beat_the_socket_path() -> None:
    # /var/run/docker.sock on a Mac is a symlink to whichever engine installed it last.
    data = load("docker-desktop-apple-silicon")
    where = EndpointFacts(
        "unix:///var/run/docker.sock", "default", "default", "/Users/ada/.colima/default/docker.sock"
    )
    assert doctor.detect_kind(data["info"], data["version"], where)[0] is Kind.DOCKER_DESKTOP


def test_resolved_socket_decides_when_the_answers_are_plain() -> None:
    data = load("dockerd-debian")
    where = EndpointFacts(
        "unix:///var/run/docker.sock", "default", "default", "/Users/ada/.colima/default/docker.sock"
    )
    kind, evidence = doctor.detect_kind(data["info"], data["version"], where)
    assert kind is Kind.COLIMA
    assert ".colima" in evidence


def test_older_orbstack_that_called_itself_alpine_is_still_orbstack() -> None:
    data = load("orbstack")
    info = {
        **data["info"],
        "OperatingSystem": "Alpine Linux edge (containerized)",
        "KernelVersion": "6.1.23-orbstack-00113-g6614aaccb205-dirty",
    }
    plain = EndpointFacts("unix:///var/run/docker.sock", "default", "default")
    assert doctor.detect_kind(info, data["version"], plain)[0] is Kind.ORBSTACK


def test_a_remote_engine_of_another_architecture_is_a_warning() -> None:
    data = load("colima")
    facts = facts_of(
        "dockerd-debian",
        endpoint=EndpointFacts("ssh://ada@arm-box", "arm-box", "context"),
        info={**data["info"], "Name": "arm-box", "OperatingSystem": "Ubuntu 24.04 LTS"},
        version=data["version"],
    )
    result = check(doctor.report(facts), "platform")
    assert result.status is Status.WARN
    assert "another machine" in result.message and result.hint


def test_docker_host_overriding_a_context_is_a_warning() -> None:
    facts = facts_of(
        "dockerd-debian",
        endpoint=EndpointFacts(
            "unix:///var/run/docker.sock", "default", "DOCKER_HOST", context_also="colima"
        ),
    )
    result = check(doctor.report(facts), "endpoint")
    assert result.status is Status.WARN
    assert "colima" in result.message and "unset DOCKER_HOST" in (result.hint or "")


# --- an engine that does not answer -----------------------------------------------------------------------

START_HINTS = {
    "docker-desktop-apple-silicon": "start Docker Desktop",
    "colima": "colima start",
    "lima": "limactl start docker",
    "rancher-desktop": "start Rancher Desktop",
    "orbstack": "orb start",
    "podman": "podman machine start",
    "dockerd-debian": "systemctl start docker",
    "podman-rootful-debian": "`sudo systemctl start podman.socket`",
    "podman-rootless-debian": "`systemctl --user start podman.socket`",
}


@pytest.mark.parametrize("name", sorted(START_HINTS))
def test_unreachable_engine_gets_a_hint_for_its_kind(name: str) -> None:
    facts = facts_of(name, info=None, version=None, unreachable="Connection refused")
    report = doctor.report(facts)
    assert not report.reachable and report.failed
    assert [c.id for c in report.checks] == ["endpoint"]
    only = report.checks[0]
    assert only.status is Status.FAIL
    assert "Connection refused" in only.message
    assert START_HINTS[name] in (only.hint or "")
    assert report.to_json()["engine"]["os"] is None
    assert report.to_json()["emulation"] == {"linux/amd64": None, "linux/arm64": None}


def test_colima_profile_appears_in_the_start_hint() -> None:
    where = EndpointFacts("unix:///Users/ada/.colima/work/docker.sock", "colima-work", "context")
    report = doctor.report(Facts(endpoint=where, host_os="darwin", host_arch="arm64", unreachable="refused"))
    assert "colima start work" in (report.checks[0].hint or "")


def test_missing_default_socket_on_a_mac_lists_the_engines() -> None:
    where = EndpointFacts("unix:///var/run/docker.sock", "default", "default")
    report = doctor.report(
        Facts(endpoint=where, host_os="darwin", host_arch="arm64", unreachable="No such file")
    )
    hint = report.checks[0].hint or ""
    assert "docker context ls" in hint and "colima start" in hint


def test_permission_denied_on_linux_points_at_the_docker_group() -> None:
    where = EndpointFacts("unix:///var/run/docker.sock", "default", "default")
    facts = Facts(endpoint=where, host_os="linux", host_arch="amd64", unreachable="Permission denied")
    assert "docker group" in (doctor.report(facts).checks[0].hint or "")


def test_a_selected_context_without_endpoint_fails_cleanly() -> None:
    where = EndpointFacts(
        "", "?", "context", error="the Docker context 'gone' is selected but has no readable endpoint"
    )
    report = doctor.report(Facts(endpoint=where, host_os="linux", host_arch="amd64"))
    assert report.failed and "gone" in report.checks[0].message


# --- bind mounts ------------------------------------------------------------------------------------------

SHARED_FOLDER_HINTS = {
    "docker-desktop-apple-silicon": "File sharing",
    "colima": "colima.yaml",
    "lima": "lima.yaml",
    "rancher-desktop": "override.yaml",
    "orbstack": "whole Mac file system",
    "podman": "podman machine init -v",
    "dockerd-debian": "snap",
    "podman-rootful-debian": "readable by that user",
    "podman-rootless-debian": "SELinux",
}


@pytest.mark.parametrize("name", sorted(SHARED_FOLDER_HINTS))
def test_missing_mount_explains_the_vm_shared_folders(name: str) -> None:
    report = doctor.report(facts_of(name, mount=Probe(False, "/devnix-probe was empty")))
    result = check(report, "mount")
    assert result.status is Status.FAIL and report.failed
    assert SHARED_FOLDER_HINTS[name] in (result.hint or "")


def test_mount_on_a_remote_engine_says_it_sees_that_machines_files() -> None:
    facts = facts_of(
        "dockerd-debian",
        endpoint=EndpointFacts("tcp://10.0.0.5:2375", "default", "DOCKER_HOST"),
        mount=Probe(False, "empty"),
    )
    assert "another machine" in (check(doctor.report(facts), "mount").hint or "")


def test_unknown_mount_is_a_warning_with_the_reason() -> None:
    facts = facts_of("dockerd-debian", mount=Probe(None, "no linux/amd64 image is available locally"))
    result = check(doctor.report(facts), "mount")
    assert result.status is Status.WARN and "no linux/amd64 image" in result.message


# --- emulation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("docker-desktop-apple-silicon", "Use Rosetta"),
        ("colima", "--vz-rosetta"),
        ("lima", "--rosetta"),
        ("rancher-desktop", "Rosetta"),
        ("orbstack", "Rosetta"),
        ("podman", "podman machine ssh"),
        ("dockerd-debian", "qemu-user-static binfmt-support"),
        ("podman-rootless-debian", "this host's QEMU binfmt handlers"),
    ],
)
def test_emulation_that_fails_gets_the_kinds_remedy(name: str, hint: str) -> None:
    other = "linux/amd64" if EXPECTED[name][1] == "arm64" else "linux/arm64"
    facts = facts_of(name, emulation={other: Probe(False, "exec format error")})
    report = doctor.report(facts)
    result = check(report, f"emulation.{other}")
    assert result.status is Status.WARN
    assert hint in (result.hint or "")
    assert report.emulation[other] is False


def test_proven_amd64_emulation_mentions_the_syscall_filter() -> None:
    facts = facts_of("orbstack", emulation={"linux/amd64": Probe(True, "`uname -m` printed x86_64")})
    report = doctor.report(facts)
    result = check(report, "emulation.linux/amd64")
    assert result.status is Status.OK and "filter-syscalls" in result.message
    assert report.to_json()["emulation"] == {"linux/amd64": True, "linux/arm64": True}


def test_unknown_emulation_says_why_and_how_to_find_out() -> None:
    facts = facts_of(
        "dockerd-debian", emulation={"linux/arm64": Probe(None, "no linux/arm64 image is local")}
    )
    result = check(doctor.report(facts), "emulation.linux/arm64")
    assert result.status is Status.WARN
    assert "no linux/arm64 image is local" in result.message
    assert "docker pull --platform linux/arm64" in (result.hint or "")


# --- the project's devcontainer ---------------------------------------------------------------------------

ARM = Platform("linux", "arm64")
AMD = Platform("linux", "amd64")


def dev(**kwargs: Any) -> Devcontainer:
    values: dict[str, Any] = {"path": ".devcontainer/devcontainer.json", "image": "ghcr.io/acme/nix:1"}
    values.update(kwargs)
    return Devcontainer(**values)


def test_multi_arch_image_runs_natively() -> None:
    facts = facts_of(
        "colima", devcontainer=dev(image_platforms=(AMD, ARM), platforms_detail="from its registry")
    )
    report = doctor.report(facts)
    assert check(report, "devcontainer.platform").status is Status.OK
    assert "natively as linux/arm64" in check(report, "devcontainer.platform").message
    nix = check(report, "devcontainer.nix-conf")
    assert nix.status is Status.OK and "natively" in nix.message


def test_amd64_only_image_on_apple_silicon_warns_and_needs_filter_syscalls_off() -> None:
    facts = facts_of(
        "docker-desktop-apple-silicon",
        emulation={"linux/amd64": Probe(True, "ran")},
        devcontainer=dev(
            image_platforms=(AMD,), platforms_detail="from its registry", nix_conf={"sandbox": "false"}
        ),
    )
    report = doctor.report(facts)
    platform = check(report, "devcontainer.platform")
    assert platform.status is Status.WARN and "emulated as linux/amd64" in platform.message
    nix = check(report, "devcontainer.nix-conf")
    # The documented seccomp failure (NixOS/nix#5258) is for x86_64 guests: a failure, not a warning.
    assert nix.status is Status.FAIL and "filter-syscalls = false" in (nix.hint or "")
    assert report.failed


def test_filter_syscalls_off_under_emulation_is_right() -> None:
    facts = facts_of(
        "docker-desktop-apple-silicon",
        emulation={"linux/amd64": Probe(True, "ran")},
        devcontainer=dev(image_platforms=(AMD,), nix_conf={"filter-syscalls": "false"}),
    )
    assert check(doctor.report(facts), "devcontainer.nix-conf").status is Status.OK


def test_filter_syscalls_off_natively_is_a_warning() -> None:
    facts = facts_of(
        "dockerd-debian", devcontainer=dev(image_platforms=(AMD, ARM), nix_conf={"filter-syscalls": "false"})
    )
    result = check(doctor.report(facts), "devcontainer.nix-conf")
    assert result.status is Status.WARN and "remove" in (result.hint or "")


def test_arm64_guest_on_amd64_with_the_filter_on_is_only_a_warning() -> None:
    # Nix 2.8 built fine with the filter on under QEMU 7.2 (aarch64 guest on x86_64), see ENVIRONMENT.md.
    facts = facts_of(
        "dockerd-debian",
        emulation={"linux/arm64": Probe(True, "ran")},
        devcontainer=dev(pinned=ARM, image_platforms=(AMD, ARM), nix_conf={}),
    )
    report = doctor.report(facts)
    assert check(report, "devcontainer.platform").status is Status.WARN
    assert check(report, "devcontainer.nix-conf").status is Status.WARN


def test_image_of_a_platform_the_engine_cannot_emulate_fails() -> None:
    facts = facts_of(
        "dockerd-debian",
        emulation={"linux/arm64": Probe(False, "exec format error")},
        devcontainer=dev(image_platforms=(ARM,)),
    )
    result = check(doctor.report(facts), "devcontainer.platform")
    assert result.status is Status.FAIL and "cannot run" in result.message


def test_pinned_platform_the_image_lacks_fails() -> None:
    facts = facts_of("colima", devcontainer=dev(pinned=AMD, image_platforms=(ARM,)))
    assert check(doctor.report(facts), "devcontainer.platform").status is Status.FAIL


def test_unknown_image_platforms_warn_with_the_registry_reason() -> None:
    facts = facts_of("dockerd-debian", devcontainer=dev(platforms_detail="the registry: connection refused"))
    report = doctor.report(facts)
    result = check(report, "devcontainer.platform")
    assert result.status is Status.WARN and "connection refused" in result.message
    assert all(c.id != "devcontainer.nix-conf" for c in report.checks)


def test_unreadable_devcontainer_json_fails() -> None:
    facts = facts_of("dockerd-debian", devcontainer=dev(error="Expecting value: line 3 column 1"))
    result = check(doctor.report(facts), "devcontainer")
    assert result.status is Status.FAIL and "line 3" in result.message


def test_devcontainer_from_config_reads_pins_builds_and_store_volume() -> None:
    pinned = doctor.devcontainer_from_config(
        "p",
        devconfig.read(
            {
                "image": "x:1",
                "runArgs": ["--platform", "linux/arm64"],
                "mounts": [
                    "source=devnix-nix-sha256-0123456789abcdef-${devcontainerId},target=/nix,type=volume"
                ],
            }
        ),
    )
    assert pinned.pinned == ARM and pinned.image == "x:1" and pinned.notes == ()
    assert pinned.store_volume == "devnix-nix-sha256-0123456789abcdef-${devcontainerId}"
    built = doctor.devcontainer_from_config(
        "p", devconfig.read({"build": {"dockerfile": "Dockerfile", "options": ["--platform=linux/amd64"]}})
    )
    assert built.built and built.image is None and built.pinned == AMD
    assert (
        doctor.devcontainer_from_config("p", devconfig.read([])).error == "it is an array, not a JSON object"
    )


def test_values_of_the_wrong_shape_are_a_warning_not_a_crash(tmp_path: Path) -> None:
    from devnix.commands.doctor import _read_devcontainer

    (tmp_path / ".devcontainer").mkdir()
    (tmp_path / ".devcontainer" / "devcontainer.json").write_text(
        '{"image": "x:1", "runArgs": 5, "containerEnv": {"NIX_PATH": 3}, "mounts": [7]}'
    )
    found = _read_devcontainer(tmp_path)
    assert found is not None and found.error is None and found.pinned is None
    result = check(doctor.report(facts_of("dockerd-debian", devcontainer=found)), "devcontainer.config")
    assert result.status is Status.WARN
    assert result.message == (
        ".devcontainer/devcontainer.json: runArgs is a number, not an array of strings; mounts[0] is a "
        "number, not a mount string or an object of strings; containerEnv.NIX_PATH is a number, not a "
        "string (left out of these checks)"
    )
    assert "devnix validate" in (result.hint or "")


# --- the engine's copy under the image's tag: the variant the config runs? ------------------------------

STALE = "localhost:5000/devnix-test/nix:multi"


@pytest.mark.parametrize(
    ("pinned", "image_platforms", "local", "wanted"),
    [
        (None, (AMD, ARM), ARM, AMD),  # an emulated run pulled arm64 over the native variant
        (None, (AMD, ARM), AMD, None),
        (None, (ARM,), ARM, None),  # a single-platform tag has no other variant to pull
        (ARM, (AMD, ARM), AMD, ARM),  # pinned: the copy is not what the pin asks for
        (ARM, (AMD, ARM), ARM, None),
        (ARM, (AMD,), AMD, None),  # the tag lacks the pin: the platform check says so, no pull helps
        (None, (Platform("linux", "s390x"), Platform("linux", "ppc64le")), ARM, None),  # no native variant
    ],
)
def test_the_stale_copy_rule(
    pinned: Platform | None, image_platforms: tuple[Platform, ...], local: Platform, wanted: Platform | None
) -> None:
    assert plan.stale_copy(local, image_platforms, AMD, pinned) == wanted


def test_a_stale_local_copy_is_a_warning_with_the_command_that_fixes_it() -> None:
    stale = dev(image=STALE, image_platforms=(AMD, ARM), local_platform=ARM, nix_conf={})
    report = doctor.report(facts_of("dockerd-debian", devcontainer=stale))
    result = check(report, "devcontainer.local-copy")
    assert result.status is Status.WARN
    assert result.message == (
        f"the engine holds the linux/arm64 copy of {STALE} and the config pins no platform: the container "
        "starts that copy, emulated, instead of the tag's native linux/amd64 variant"
    )
    assert (
        result.hint
        == f"`docker pull --platform linux/amd64 {STALE}` puts the linux/amd64 variant under the tag"
    )
    # The platform check judges the config, which is fine: the copy is what is wrong.
    assert check(report, "devcontainer.platform").status is Status.OK
    pinned = dev(image=STALE, pinned=ARM, image_platforms=(AMD, ARM), local_platform=AMD)
    result = check(doctor.report(facts_of("dockerd-debian", devcontainer=pinned)), "devcontainer.local-copy")
    assert result.status is Status.WARN and "the config pins linux/arm64" in result.message
    assert (result.hint or "").startswith(f"`docker pull --platform linux/arm64 {STALE}`")


def test_the_right_local_copy_or_none_is_fine() -> None:
    right = dev(image=STALE, image_platforms=(AMD, ARM), local_platform=AMD)
    result = check(doctor.report(facts_of("dockerd-debian", devcontainer=right)), "devcontainer.local-copy")
    assert result.status is Status.OK
    assert result.message == f"the engine's copy of {STALE} is linux/amd64, the variant the config runs"
    none = dev(image=STALE, image_platforms=(AMD, ARM))
    assert all(
        c.id != "devcontainer.local-copy"
        for c in doctor.report(facts_of("dockerd-debian", devcontainer=none)).checks
    )


# --- disk and store volumes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("free_gib", "status"), [(1, Status.FAIL), (5, Status.WARN), (50, Status.OK)])
def test_disk_thresholds(free_gib: int, status: Status) -> None:
    facts = facts_of("colima", disk=Disk(free=free_gib * doctor.GIB, total=60 * doctor.GIB))
    result = check(doctor.report(facts), "disk")
    assert result.status is status
    if status is not Status.OK:
        assert "colima start --disk" in (result.hint or "")


def test_store_volumes_are_listed_with_sizes() -> None:
    facts = facts_of(
        "dockerd-debian", store_volumes={"devnix-nix-sha256-aa": 2_500_000_000, "devnix-nix-sha256-bb": None}
    )
    result = check(doctor.report(facts), "store-volume")
    assert "devnix-nix-sha256-aa (2.5 GB)" in result.message and "size unknown" in result.message


# --- the command, with a fake engine that answers as a recorded one --------------------------------------


def fake_endpoint(monkeypatch: pytest.MonkeyPatch, where: engine.Endpoint) -> None:
    """Point devnix at ``where``: in the package, which the commands ask, and in engine.api, which every
    API call asks (so a function FakeEngine does not replace fails against that endpoint, not this host's)."""
    monkeypatch.setattr(engine, "endpoint", lambda: where)
    monkeypatch.setattr(engine_api, "endpoint", lambda: where)


class FakeEngine:
    """Stands in for devnix.engine's functions with a recorded engine's answers."""

    def __init__(self, name: str, monkeypatch: pytest.MonkeyPatch, probe_delay: float = 0.0) -> None:
        self.data = load(name)
        self.probe_delay = probe_delay
        self.runs: list[tuple[str, list[str], str | None]] = []
        self.server_output: str | None = DEBIAN_SERVER_PROBE  # None: the image is not in the engine
        where = self.data["endpoint"]
        fake_endpoint(monkeypatch, engine.Endpoint(where["host"], where["context"], where["source"]))
        monkeypatch.setattr(engine, "version_answer", lambda timeout: self.data["version"])
        monkeypatch.setattr(engine, "info", lambda timeout: self.data["info"])
        monkeypatch.setattr(engine, "images_with_platforms", self.images)
        monkeypatch.setattr(engine, "run_probe", self.run_probe)
        monkeypatch.setattr(engine, "system_df", lambda timeout: {"LayersSize": 1_000_000, "Volumes": []})
        monkeypatch.setattr(engine, "volumes", lambda prefix, timeout: [])
        monkeypatch.setattr(engine, "remove_stale_probes", lambda: 0)
        monkeypatch.setattr(
            doctor_command, "host", lambda: (self.data["host"]["os"], self.data["host"]["arch"])
        )

    def images(self, timeout: float) -> list[dict[str, Any]]:
        return [
            {"Id": "sha256:aa", "RepoTags": ["busybox:latest"], "Os": "linux", "Architecture": "arm64"},
            {"Id": "sha256:bb", "RepoTags": ["<none>:<none>"], "Os": "linux", "Architecture": "amd64"},
        ]

    def run_probe(
        self,
        image: str,
        command: list[str],
        *,
        platform: str | None = None,
        binds: tuple[str, ...] = (),
        timeout: float = 10.0,
        **_: Any,
    ) -> engine.ProbeRun:
        self.runs.append((image, command, platform))
        time.sleep(self.probe_delay)
        if command[:2] == ["/bin/sh", "-c"]:  # the vscode-server probe of the project's image
            if self.server_output is None:
                raise engine.ImageMissingError(f"no probe container from {image}: No such image")
            return engine.ProbeRun(0, self.server_output)
        if command == ["uname", "-m"]:
            return engine.ProbeRun(0, "x86_64\n" if platform == "linux/amd64" else "aarch64\n")
        folder = binds[0].split(":")[0]
        token = (Path(folder) / "probe").read_text()
        return engine.ProbeRun(0, f"{token}\noverlay 61255492 9155092 52083016 15% /\n")


def test_command_with_a_recorded_colima(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEngine("colima", monkeypatch)
    result = doctor_command.run(doctor_command.DoctorOptions(directory=tmp_path))
    data = result.to_json()
    assert data["engine"]["kind"] == "colima"
    assert data["emulation"] == {"linux/amd64": True, "linux/arm64": True}
    assert check(result.report, "mount").status is Status.OK
    assert check(result.report, "disk").message.startswith("53.3 GB free")
    # The emulation probe ran the other architecture's image; the mount probe a native one.
    assert ("sha256:bb", ["uname", "-m"], "linux/amd64") in fake.runs
    assert any(run[0] == "busybox:latest" and run[1][0] == "sh" for run in fake.runs)
    assert not list(tmp_path.iterdir()), "the probe folder must be removed"


def test_command_reads_the_projects_devcontainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeEngine("docker-desktop-apple-silicon", monkeypatch)
    (tmp_path / ".devcontainer").mkdir()
    (tmp_path / ".devcontainer" / "devcontainer.json").write_text(
        '// devnix\n{ "image": "ghcr.io/acme/nix:1", /* amd64 only */\n'
        ' "runArgs": ["--platform=linux/amd64"], }\n'
    )
    (tmp_path / ".devcontainer" / "nix.conf").write_text("sandbox = false\n")

    def registry_down(dev: Devcontainer, timeout: float, engine_platform: Any = None) -> Devcontainer:
        return Devcontainer(**{**dev.__dict__, "platforms_detail": "the registry: unreachable"})

    monkeypatch.setattr(doctor_command, "_image_platforms", registry_down)
    result = doctor_command.run(doctor_command.DoctorOptions(directory=tmp_path))
    assert check(result.report, "devcontainer.platform").status is Status.WARN
    assert check(result.report, "devcontainer.nix-conf").status is Status.FAIL
    assert result.failed


def test_a_probe_that_hangs_is_reported_as_timed_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The backstop (probe timeout + 2 quick timeouts + 1 s = 1.5 s here) reports before the probe ends.
    FakeEngine("dockerd-debian", monkeypatch, probe_delay=2.5)
    started = time.monotonic()
    options = doctor_command.DoctorOptions(directory=tmp_path, quick_timeout=0.1, probe_timeout=0.3)
    result = doctor_command.run(options)
    assert time.monotonic() - started < 5
    assert check(result.report, "emulation.linux/arm64").status is Status.WARN
    assert "timed out" in check(result.report, "emulation.linux/arm64").message
    assert result.to_json()["emulation"]["linux/arm64"] is None


def test_command_when_the_engine_does_not_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_endpoint(
        monkeypatch, engine.Endpoint("unix:///Users/ada/.orbstack/run/docker.sock", "orbstack", "context")
    )

    def refuse(timeout: float) -> Any:
        raise EngineError(
            "the Docker engine at unix:///x (from Docker context 'orbstack') does not answer: "
            "Connection refused"
        )

    monkeypatch.setattr(engine, "version_answer", refuse)
    monkeypatch.setattr(engine, "info", refuse)
    result = doctor_command.run(doctor_command.DoctorOptions(directory=tmp_path))
    assert not result.report.reachable
    assert "orb start" in (result.report.checks[0].hint or "")
    assert result.report.checks[0].message.endswith("Connection refused (it looks like OrbStack)")


def test_candidates_prefer_tagged_images_of_the_platform() -> None:
    images = [
        {"Id": "sha256:1", "RepoTags": ["<none>:<none>"], "Os": "linux", "Architecture": "arm64"},
        {"Id": "sha256:2", "RepoTags": ["debian:12"], "Os": "linux", "Architecture": "arm64"},
        {"Id": "sha256:3", "RepoTags": ["alpine:3"], "Os": "linux", "Architecture": "amd64"},
    ]
    assert doctor_command._candidates(images, "linux/arm64") == ["debian:12", "sha256:1"]


def test_df_and_log_frames_are_parsed() -> None:
    assert doctor_command._parse_df(
        ["Filesystem 1024-blocks Used Available Capacity Mounted on", "overlay 100 40 60 40% /"]
    ) == (60 * 1024, 100 * 1024)
    assert isinstance(doctor_command._parse_df(["sh: df: not found"]), str)
    framed = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n\x02\x00\x00\x00\x00\x00\x00\x04err\n"
    assert engine_probes._demux(framed) == "hi\nerr\n"
    assert engine_probes._demux(b"plain") == "plain"


# --- the CLI ------------------------------------------------------------------------------------------------


def fake_run(facts: Facts) -> Any:
    def run(options: doctor_command.DoctorOptions) -> doctor_command.DoctorResult:
        return doctor_command.DoctorResult(doctor.report(facts), 0.4)

    return run


def test_cli_json_and_exit_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(doctor_command, "run", fake_run(facts_of("orbstack")))
    outcome = CliRunner().invoke(app, ["doctor", str(tmp_path), "--json"])
    assert outcome.exit_code == 0, outcome.output
    data = json.loads(outcome.stdout)
    assert data["engine"]["kind"] == "orbstack" and data["host"] == {"os": "darwin", "arch": "arm64"}


def test_cli_table_and_exit_one_when_a_check_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(doctor_command, "run", fake_run(facts_of("colima", mount=Probe(False, "empty"))))
    outcome = CliRunner().invoke(app, ["doctor", str(tmp_path)], terminal_width=200)
    assert outcome.exit_code == 1
    assert "\x1b[" not in outcome.stdout, "colours only on a terminal"
    for words in ("status", "check", "finding", "what to do", "mount", "fail", "colima.yaml", "Colima"):
        assert words in outcome.stdout


def test_cli_unreachable_is_one_line_and_a_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    facts = facts_of("colima", info=None, version=None, unreachable="Connection refused")
    monkeypatch.setattr(doctor_command, "run", fake_run(facts))
    outcome = CliRunner().invoke(app, ["doctor", str(tmp_path)])
    assert outcome.exit_code == EngineError.exit_code
    lines = outcome.stderr.strip().splitlines()
    assert lines[0].startswith("devnix: error: ") and "Connection refused" in lines[0]
    assert lines[1].startswith("hint: ") and "colima start" in lines[1]
    assert len(lines) == 2 and outcome.stdout == ""


def test_cli_unreachable_json_still_prints_the_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    facts = facts_of("colima", info=None, version=None, unreachable="Connection refused")
    monkeypatch.setattr(doctor_command, "run", fake_run(facts))
    outcome = CliRunner().invoke(app, ["doctor", str(tmp_path), "--json"])
    assert outcome.exit_code == EngineError.exit_code
    assert json.loads(outcome.stdout)["checks"][0]["status"] == "fail"


def test_cli_refuses_a_missing_folder(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["doctor", str(tmp_path / "nope")])
    assert outcome.exit_code == 6 and "is not a folder" in outcome.stderr


def test_probe_futures_are_not_waited_for_longer_than_the_image_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # A probe whose image list never arrives reports why instead of hanging.
    pending: Future[list[dict[str, Any]]] = Future()
    options = doctor_command.DoctorOptions(directory=Path("."), quick_timeout=0.05)
    probe = doctor_command._emulation_probe(pending, "linux/arm64", options)
    assert probe.result is None and "could not list" in probe.detail


def test_endpoint_mentions_a_socket_link_only_when_it_leads_elsewhere() -> None:
    debian = EndpointFacts("unix:///var/run/docker.sock", "default", "default", resolved="/run/docker.sock")
    assert "link" not in check(doctor.report(facts_of("dockerd-debian", endpoint=debian)), "endpoint").message
    colima = EndpointFacts(
        "unix:///var/run/docker.sock", "default", "default", resolved="/Users/ada/.colima/default/docker.sock"
    )
    message = check(doctor.report(facts_of("colima", endpoint=colima)), "endpoint").message
    assert "link to /Users/ada/.colima/default/docker.sock" in message


def test_cli_through_a_socket_that_replays_a_recorded_colima(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The whole path a user's run takes (endpoint, raw API calls over a unix socket, verdicts, JSON),
    # with the engine's answers replayed; it has no images, so no probe container is started.
    data = load("colima")
    answers = {
        "/version": data["version"],
        "/info": data["info"],
        "/images/json": [],
        "/containers/json": [],
        "/system/df": {"LayersSize": 4_000_000_000, "Volumes": [], "Containers": [], "BuildCache": []},
        "/volumes": {"Volumes": [], "Warnings": None},
    }
    socket_dir = Path(tempfile.mkdtemp(prefix="dnx", dir="/tmp"))  # unix socket paths max out at 108 bytes
    try:
        with replay_engine(socket_dir / "docker.sock", answers) as host:
            monkeypatch.setenv("DOCKER_HOST", host)
            started = time.monotonic()
            outcome = CliRunner().invoke(app, ["doctor", str(tmp_path), "--json"])
            elapsed = time.monotonic() - started
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    assert report["engine"]["kind"] == "colima" and report["engine"]["arch"] == "arm64"
    assert report["emulation"] == {"linux/amd64": None, "linux/arm64": True}
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["mount"]["status"] == "warn" and "no linux/arm64 image" in checks["mount"]["message"]
    assert "images 4.0 GB" in checks["disk"]["message"]
    assert elapsed < 3


def test_the_projects_config_gets_validates_nix_findings(tmp_path: Path) -> None:
    from devnix.commands.doctor import _read_devcontainer

    folder = tmp_path / ".devcontainer"
    folder.mkdir()
    (folder / "devcontainer.json").write_text(
        '// a stale-store trap\n{"image": "nixos/nix", "postCreateCommand": "nix develop",\n'
        ' "mounts": ["source=nix-store,target=/nix,type=volume"],}\n'
    )
    found = _read_devcontainer(tmp_path)
    assert found is not None and found.error is None
    rules = {rule for rule, _severity, _message, _hint in found.lint}
    assert {"nix-store-volume", "flakes-not-enabled"} <= rules
    checks = devcontainer_checks(found, Platform("linux", "amd64"), {})
    assert {c.id for c in checks} >= {"devcontainer.nix-store-volume", "devcontainer.flakes-not-enabled"}
    assert all(c.hint for c in checks if c.id.startswith("devcontainer.nix"))


# --- vscode-server: can VS Code's server (a glibc `node`) start in the project's image ---------------------

# Recorded: what doctor.SERVER_PROBE printed on this Debian bookworm machine (glibc 2.36, dash as /bin/sh).
DEBIAN_SERVER_PROBE = """machine x86_64
loader /lib64/ld-linux-x86-64.so.2
resolved /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
help
cache /etc/ld.so.cache
lib libstdc++.so.6 /lib/x86_64-linux-gnu/libstdc++.so.6
lib libgcc_s.so.1 /lib/x86_64-linux-gnu/libgcc_s.so.1
search /lib/x86_64-linux-gnu
lib libstdc++.so.6 /lib/x86_64-linux-gnu/libstdc++.so.6
lib libgcc_s.so.1 /lib/x86_64-linux-gnu/libgcc_s.so.1
search /usr/lib/x86_64-linux-gnu
lib libstdc++.so.6 /usr/lib/x86_64-linux-gnu/libstdc++.so.6
lib libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1
search /lib
search /usr/lib
"""
# Recorded: the probe in the nixos/nix-shaped stand-in (tests/docker/storeonly.py): the loader test fails
# right after the facts about the store.
STORE_ONLY_SERVER_PROBE = "machine x86_64\nnix-store\nloader /lib64/ld-linux-x86-64.so.2\n"
# Recorded: the same stand-in after devnix's fhs-loader.sh. Its copy of the store's loader searches the
# folder of symlinks, padded with slashes to the length of the store path it replaced; the stand-in's
# loader had its other system folders and its ld.so.cache path blanked the same way.
PATCHED_SERVER_PROBE = """machine x86_64
nix-store
devnix-loader
loader /lib64/ld-linux-x86-64.so.2
resolved /lib64/ld-linux-x86-64.so.2
help
cache /.no-ld.so.cache
search /usr/lib/devnix-fhs///////////////////////////////////////
lib libstdc++.so.6 /usr/lib/devnix-fhs////////////////////////////////////////libstdc++.so.6
lib libgcc_s.so.1 /usr/lib/devnix-fhs////////////////////////////////////////libgcc_s.so.1
search /
search /
search /
"""
# Assembled: a glibc image without libstdc++ (busybox:glibc's shape) whose loader predates glibc 2.33's
# search path listing, so the probe looked in the usual folders.
NO_LIBSTDCXX_SERVER_PROBE = """machine x86_64
loader /lib64/ld-linux-x86-64.so.2
resolved /lib/ld-linux-x86-64.so.2
cache /etc/ld.so.cache
search /lib/x86_64-linux-gnu
search /usr/lib/x86_64-linux-gnu
search /lib64
search /usr/lib64
search /lib
search /usr/lib
"""
BUILD = {"image": None, "dockerfile": "Dockerfile", "base_image": "nixos/nix:2.24"}


def server(output: str, image: str = "ghcr.io/acme/nix:1") -> doctor.ServerProbe:
    return doctor.parse_server_probe(image, output)


def test_the_server_probe_of_a_debian_image_finds_the_loader_and_libraries() -> None:
    probe = server(DEBIAN_SERVER_PROBE, "debian:bookworm")
    assert probe.ran and probe.help and probe.loader_found and not probe.nix_store
    assert probe.search == ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")
    # The first hit is what the loader takes: the cache, listed first by the loader itself.
    assert probe.libraries == {
        "libstdc++.so.6": "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "libgcc_s.so.1": "/lib/x86_64-linux-gnu/libgcc_s.so.1",
    }
    result = check(
        doctor.report(facts_of("dockerd-debian", devcontainer=dev(image="debian:bookworm", server=probe))),
        "devcontainer.vscode-server",
    )
    assert result.status is Status.OK and result.hint is None
    assert result.message == (
        "VS Code's server can start in debian:bookworm: /lib64/ld-linux-x86-64.so.2 finds "
        "libstdc++.so.6 and libgcc_s.so.1 in /lib/x86_64-linux-gnu"
    )


def test_store_only_image_without_the_step_fails_with_the_remedy() -> None:
    config = dev(image="nixos/nix:latest", server=server(STORE_ONLY_SERVER_PROBE, "nixos/nix:latest"))
    report = doctor.report(facts_of("dockerd-debian", devcontainer=config))
    result = check(report, "devcontainer.vscode-server")
    assert result.status is Status.FAIL and report.failed
    assert "no /lib64/ld-linux-x86-64.so.2 (a store-only Nix image" in result.message
    assert (result.hint or "").startswith("`devnix init --merge`")
    # A Dockerfile of the user's own gets the two lines instead.
    built = dev(**BUILD, server=server(STORE_ONLY_SERVER_PROBE, "nixos/nix:2.24"))
    result = check(
        doctor.report(facts_of("dockerd-debian", devcontainer=built)), "devcontainer.vscode-server"
    )
    assert result.status is Status.FAIL and "nixos/nix:2.24 (Dockerfile's FROM)" in result.message
    assert "`RUN sh /tmp/devnix-fhs-loader.sh` after the FROM of Dockerfile" in (result.hint or "")


def test_store_only_image_with_the_step_is_ok_with_a_note() -> None:
    for step in ("Dockerfile's fhs-loader.sh step", "the Feature ghcr.io/me/devnix/nix:1"):
        built = dev(**BUILD, loader_step=step, server=server(STORE_ONLY_SERVER_PROBE, "nixos/nix:2.24"))
        result = check(
            doctor.report(facts_of("dockerd-debian", devcontainer=built)), "devcontainer.vscode-server"
        )
        assert result.status is Status.OK
        assert (
            f"is store-only (no /lib64/ld-linux-x86-64.so.2, as the probe found); {step} adds"
            in result.message
        )


def test_an_image_the_step_already_ran_in_is_ok() -> None:
    probe = server(PATCHED_SERVER_PROBE)
    assert probe.devnix_loader and probe.loader_found and probe.search[0] == "/usr/lib/devnix-fhs/"
    assert probe.libraries["libgcc_s.so.1"] == "/usr/lib/devnix-fhs/libgcc_s.so.1"
    result = check(
        doctor.report(facts_of("dockerd-debian", devcontainer=dev(server=probe))),
        "devcontainer.vscode-server",
    )
    assert (
        result.status is Status.OK
        and "(devnix's FHS loader) finds libstdc++.so.6 and libgcc_s.so.1" in result.message
    )


def test_a_loader_without_libstdcxx_fails_and_says_where_it_looked() -> None:
    probe = server(NO_LIBSTDCXX_SERVER_PROBE)
    assert not probe.help and probe.cache == "/etc/ld.so.cache"
    result = check(
        doctor.report(facts_of("dockerd-debian", devcontainer=dev(server=probe))),
        "devcontainer.vscode-server",
    )
    assert result.status is Status.FAIL
    assert "finds no libstdc++.so.6 or libgcc_s.so.1 (it searches /lib/x86_64-linux-gnu," in result.message
    assert "libstdc++6" in (result.hint or "")


def test_no_glibc_loader_and_no_nix_store_is_a_warning() -> None:
    # Assembled: an Alpine image (musl), where VS Code downloads its musl build of the server.
    probe = server("machine aarch64\nloader /lib/ld-linux-aarch64.so.1\n", "alpine:3")
    result = check(
        doctor.report(facts_of("colima", devcontainer=dev(image="alpine:3", server=probe))),
        "devcontainer.vscode-server",
    )
    assert result.status is Status.WARN and "no glibc loader /lib/ld-linux-aarch64.so.1" in result.message


def test_an_unprobed_image_falls_back_on_what_its_layout_says() -> None:
    def verdict(**kwargs: Any) -> doctor.Check:
        probe = doctor.ServerProbe(
            kwargs.get("image", "ghcr.io/acme/nix:1"), False, "the image is not in the engine yet"
        )
        return check(
            doctor.report(facts_of("dockerd-debian", devcontainer=dev(server=probe, **kwargs))),
            "devcontainer.vscode-server",
        )

    known = verdict(image="nixos/nix", filesystem=Filesystem.STORE_ONLY, filesystem_detail="devnix's catalog")
    assert known.status is Status.WARN and (known.hint or "").startswith("`devnix init --merge`")
    assert "nixos/nix is a store-only Nix image (devnix's catalog)" in known.message
    unknown = verdict()
    assert unknown.status is Status.WARN and "not in the engine yet" in unknown.message
    assert "docker pull ghcr.io/acme/nix:1" in (unknown.hint or "")
    fixed = verdict(**BUILD, loader_step="Dockerfile's fhs-loader.sh step", filesystem=Filesystem.STORE_ONLY)
    assert fixed.status is Status.OK and "not probed" in fixed.message


def test_no_vscode_server_check_without_an_image_to_probe() -> None:
    config = dev(image=None, built=True)  # compose, or a FROM that cannot be told offline
    assert all(
        c.id != "devcontainer.vscode-server"
        for c in doctor.report(facts_of("colima", devcontainer=config)).checks
    )


def test_server_probe_output_that_makes_no_sense_is_not_a_verdict() -> None:
    probe = server("sh: 1: uname: not found\n")
    assert not probe.ran and "uname: not found" in probe.detail


def test_the_project_config_says_how_the_image_gets_its_loader(tmp_path: Path) -> None:
    from devnix.commands.doctor import _read_devcontainer

    folder = tmp_path / ".devcontainer"
    folder.mkdir()
    (folder / "devcontainer.json").write_text(
        '{"build": {"dockerfile": "Dockerfile", "args": {"T": "2.24"}}}'
    )
    (folder / "Dockerfile").write_text("ARG T=latest\nFROM nixos/nix:${T}\n")
    found = _read_devcontainer(tmp_path)
    assert found is not None
    assert (found.dockerfile, found.base_image, found.probe_image) == (
        "Dockerfile",
        "nixos/nix:2.24",
        "nixos/nix:2.24",
    )
    assert (found.loader_step, found.filesystem) == (None, Filesystem.STORE_ONLY)
    # Doctor proves the layout with its probe: validate's guess is not repeated as a finding.
    assert all(rule != "store-only-image" for rule, *_ in found.lint)
    (folder / "Dockerfile").write_text(
        "FROM nixos/nix\nCOPY fhs-loader.sh /tmp/devnix-fhs-loader.sh\nRUN sh /tmp/devnix-fhs-loader.sh\n"
    )
    found = _read_devcontainer(tmp_path)
    assert found is not None and found.loader_step == "Dockerfile's fhs-loader.sh step"
    (folder / "devcontainer.json").write_text(
        '{"image": "nixos/nix", "features": {"ghcr.io/me/devnix/nix:1": {}}}'
    )
    found = _read_devcontainer(tmp_path)
    assert found is not None and found.loader_step == "the Feature ghcr.io/me/devnix/nix:1"
    assert (found.probe_image, found.dockerfile) == ("nixos/nix", None)


def test_command_probes_the_projects_image_beside_the_other_probes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeEngine("dockerd-debian", monkeypatch, probe_delay=0.5)
    (tmp_path / ".devcontainer").mkdir()
    (tmp_path / ".devcontainer" / "devcontainer.json").write_text(
        '{"image": "nixos/nix", "runArgs": ["--platform=linux/amd64"]}'
    )

    def registry(dev: Devcontainer, timeout: float, engine_platform: Any = None) -> Devcontainer:
        return Devcontainer(
            **{**dev.__dict__, "image_platforms": (AMD, ARM), "platforms_detail": "from its registry"}
        )

    monkeypatch.setattr(doctor_command, "_image_platforms", registry)
    fake.server_output = STORE_ONLY_SERVER_PROBE
    started = time.monotonic()
    result = doctor_command.run(doctor_command.DoctorOptions(directory=tmp_path))
    # Three probes of 0.5 s each (mount, emulation, vscode-server) ran at once, not one after another.
    assert time.monotonic() - started < 1.4
    assert [(image, platform) for image, command, platform in fake.runs if command[0] == "/bin/sh"] == [
        ("nixos/nix", "linux/amd64")
    ]
    checks = {c["id"]: c for c in result.to_json()["checks"]}
    assert checks["devcontainer.vscode-server"]["status"] == "fail"
    assert checks["devcontainer.vscode-server"]["hint"].startswith("`devnix init --merge`")
    assert result.failed
    # An image that is not in the engine is not pulled without --pull: the catalog's word, as a warning.
    fake.server_output = None
    result = doctor_command.run(doctor_command.DoctorOptions(directory=tmp_path))
    vscode = check(result.report, "devcontainer.vscode-server")
    assert vscode.status is Status.WARN and "(devnix's catalog)" in vscode.message
    assert "not probed: the image is not in the engine yet" in vscode.message


def test_feature_content_images_are_never_probe_candidates() -> None:
    # The reference CLI leaves these FROM-scratch images behind when a run is killed; they have no shell.
    images = [
        {"Os": "linux", "Architecture": "amd64", "RepoTags": ["dev_container_feature_content_temp_1:x"]},
        # Podman's name for the same image (seen in the rootless store here)
        {
            "Os": "linux",
            "Architecture": "amd64",
            "RepoTags": ["localhost/dev_container_feature_content_temp:latest"],
        },
        {"Os": "linux", "Architecture": "amd64", "RepoTags": ["debian:12"]},
    ]
    assert doctor_command._candidates(images, "linux/amd64") == ["debian:12"]


# --- Podman: rootful or rootless, its sockets, its hints, VS Code's dockerPath ------------------------------

ROOTLESS = {
    # fixture: (rootless, the evidence the engine check names)
    "podman-rootful-debian": (False, "/info Rootless false"),
    "podman-rootless-debian": (True, "/info Rootless true"),
    "podman": (True, "/info SecurityOptions name=rootless"),  # Podman 5's machine: no Rootless field
    "dockerd-debian": (False, "no rootless sign in /info"),
}


@pytest.mark.parametrize("name", sorted(ROOTLESS))
def test_rootful_or_rootless_from_the_engines_answers(name: str) -> None:
    rootless, evidence = ROOTLESS[name]
    report = doctor.report(facts_of(name))
    assert report.to_json()["engine"]["rootless"] is rootless
    assert doctor.rootless_of(load(name)["info"]) == (rootless, evidence)
    message = check(report, "engine").message
    if report.engine.kind is Kind.PODMAN:
        mode = "rootless" if rootless else "rootful"
        kind = "/version lists a Podman Engine component"
        assert message == f"Podman {report.engine.version}, {mode} ({kind}; {evidence})"
    else:
        assert "root" not in message  # a rootful dockerd is the usual case: not worth a word


@pytest.mark.parametrize("name", sorted(ROOTLESS))
def test_a_non_root_user_fails_on_rootful_podman_only(name: str) -> None:
    report = doctor.report(facts_of(name, devcontainer=dev(image_platforms=(AMD,), keep_id_user="vscode")))
    found = [c for c in report.checks if c.id == "devcontainer.podman-userns"]
    rootful_podman = report.engine.kind is Kind.PODMAN and report.engine.rootless is False
    assert len(found) == (1 if rootful_podman else 0), name
    if found:
        assert found[0].status is Status.FAIL
        assert "keep-id is only supported in rootless mode" in found[0].message
        assert found[0].hint is not None and found[0].hint.startswith('add "--userns=" to runArgs')
    root = doctor.report(facts_of(name, devcontainer=dev(image_platforms=(AMD,))))
    assert not [c for c in root.checks if c.id == "devcontainer.podman-userns"]


def test_libpods_own_info_and_a_rootless_dockerd_are_read_too() -> None:
    assert doctor.rootless_of({"host": {"security": {"rootless": True}}}) == (
        True,
        "/info host.security.rootless true",
    )
    info = {
        **load("dockerd-debian")["info"],
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=rootless"],
    }
    report = doctor.report(facts_of("dockerd-debian", info=info))
    assert report.to_json()["engine"]["rootless"] is True
    assert ", rootless (" in check(report, "engine").message
    assert doctor.report(facts_of("colima", info=None, version=None)).to_json()["engine"]["rootless"] is None


def test_a_podman_socket_devnix_found_is_named_as_such() -> None:
    where = EndpointFacts("unix:///run/user/1001/podman/podman.sock", "default", "podman-rootless")
    down = Facts(endpoint=where, host_os="linux", host_arch="amd64", unreachable="No such file or directory")
    only = doctor.report(down).checks[0]
    assert only.message == (
        "the engine at unix:///run/user/1001/podman/podman.sock (Podman's rootless socket) does not answer: "
        "No such file or directory (it looks like Podman)"
    )
    assert only.hint == (
        "start your Podman API: `systemctl --user start podman.socket` "
        "(or `podman system service --time=0 &`)"
    )
    answering = doctor.report(facts_of("podman-rootless-debian", endpoint=where))
    assert check(answering, "endpoint").message == (
        "unix:///run/user/1001/podman/podman.sock (Podman's rootless socket) answers"
    )


def test_roots_podman_socket_refusing_a_user_says_whose_it_is() -> None:
    where = EndpointFacts("unix:///run/podman/podman.sock", "default", "podman-rootful")
    facts = Facts(endpoint=where, host_os="linux", host_arch="amd64", unreachable="Permission denied")
    assert "rootless Podman" in (doctor.report(facts).checks[0].hint or "")


def test_no_engine_anywhere_on_linux_names_both_engines() -> None:
    where = EndpointFacts("unix:///var/run/docker.sock", "default", "default")
    facts = Facts(endpoint=where, host_os="linux", host_arch="amd64", unreachable="No such file or directory")
    hint = doctor.report(facts).checks[0].hint or ""
    assert "systemctl start docker" in hint and "systemctl --user start podman.socket" in hint


def test_podman_on_linux_gets_hints_for_a_host_not_a_machine() -> None:
    facts = facts_of(
        "podman-rootful-debian",
        emulation={"linux/arm64": Probe(None, "no linux/arm64 image is available locally to try")},
        mount=Probe(None, "no probe image"),
        disk=Disk(free=5 * doctor.GIB, total=100 * doctor.GIB),
    )
    report = doctor.report(facts)
    hints = " ".join(c.hint or "" for c in report.checks)
    assert "podman machine" not in hints
    # Podman's image store is not dockerd's: a `docker pull` would not help it.
    assert "`podman pull --platform linux/arm64 busybox`" in (
        check(report, "emulation.linux/arm64").hint or ""
    )
    assert "`podman pull busybox`" in (check(report, "mount").hint or "")
    assert check(report, "disk").hint == (
        "free space on the file system of /var/lib/containers/storage, "
        "or `podman system prune` frees unused images"
    )


def test_podman_reports_images_by_their_sizes_when_layers_size_is_zero() -> None:
    # Podman 4.3's /system/df says LayersSize 0 whatever its store holds (seen here).
    answer = {"LayersSize": 0, "Images": [{"Size": 129_275_959}, {"Size": 252_782_732}], "Volumes": []}
    assert doctor_command._disk(answer, None).usage["images"] == 382_058_691
    assert doctor_command._disk({**answer, "LayersSize": 7}, None).usage["images"] == 7


LINE = '`"dev.containers.dockerPath": "podman"`'
SETTINGS = "/home/ada/.config/Code/User/settings.json"


@pytest.mark.parametrize(
    ("settings", "status", "words"),
    [
        (
            doctor.VSCodeSettings("podman", SETTINGS, podman_cli="/usr/bin/podman"),
            Status.OK,
            f"{SETTINGS} sets dev.containers.dockerPath to 'podman': VS Code's Dev Containers drive Podman",
        ),
        (
            doctor.VSCodeSettings(None, None, podman_cli="/usr/bin/podman"),
            Status.WARN,
            "VS Code's Dev Containers run `docker` unless settings.json says otherwise",
        ),
        (
            doctor.VSCodeSettings("docker", SETTINGS, podman_cli="/usr/bin/podman"),
            Status.WARN,
            "to 'docker': VS Code runs that, not podman",
        ),
        (doctor.VSCodeSettings("/opt/podman/bin/podman", SETTINGS), Status.WARN, "no podman CLI is on PATH"),
        (doctor.VSCodeSettings(None, SETTINGS, error=f"{SETTINGS}:3:1: bad"), Status.WARN, ":3:1: bad"),
        (None, Status.WARN, "unknown whether VS Code runs podman"),
    ],
)
def test_the_docker_path_check_says_what_vs_code_runs(
    settings: doctor.VSCodeSettings | None, status: Status, words: str
) -> None:
    result = check(doctor.report(facts_of("podman-rootless-debian", vscode=settings)), "vscode.docker-path")
    assert result.status is status
    assert words in result.message
    if status is Status.OK:
        assert result.message.endswith("for the reference CLI: `devcontainer up --docker-path podman`")
    elif "PATH" not in result.message:
        assert LINE in (result.hint or "") and "`devcontainer up --docker-path podman`" in (result.hint or "")


def test_the_docker_path_check_is_for_podman_only() -> None:
    settings = doctor.VSCodeSettings(None, None, podman_cli="/usr/bin/podman")
    report = doctor.report(facts_of("dockerd-debian", vscode=settings))
    assert "vscode.docker-path" not in [c.id for c in report.checks]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VS Code's Linux settings folder")
def test_vs_code_settings_are_read_where_vs_code_keeps_them(isolated_user_dirs: Path) -> None:
    user = isolated_user_dirs / ".config"
    assert doctor_command.vscode_settings().docker_path is None
    stable = user / "Code" / "User" / "settings.json"
    stable.parent.mkdir(parents=True)
    stable.write_text('{\n  // mine\n  "editor.fontSize": 13,\n}\n')
    assert doctor_command.vscode_settings() == doctor.VSCodeSettings(
        None, str(stable), None, shutil.which("podman")
    )
    insiders = user / "Code - Insiders" / "User" / "settings.json"
    insiders.parent.mkdir(parents=True)
    insiders.write_text('{"remote.containers.dockerPath": "/usr/bin/podman"}')  # the older key
    found = doctor_command.vscode_settings()
    assert (found.docker_path, found.settings_file) == ("/usr/bin/podman", str(insiders))
    stable.write_text('{\n  "dev.containers.dockerPath": "podman", /* Podman here */\n}\n')
    found = doctor_command.vscode_settings()
    assert (found.docker_path, found.settings_file) == ("podman", str(stable))
    insiders.unlink()
    stable.write_text('{"dev.containers.dockerPath": ')
    broken = doctor_command.vscode_settings()
    assert broken.docker_path is None and broken.error is not None and str(stable) in broken.error


def test_cli_engine_option_reaches_the_engine_lookup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEVNIX_ENGINE", "")  # restored after the test: --engine sets it for the process
    seen: list[str | None] = []

    def run(options: doctor_command.DoctorOptions) -> doctor_command.DoctorResult:
        seen.append(os.environ.get("DEVNIX_ENGINE"))
        return doctor_command.DoctorResult(doctor.report(facts_of("podman-rootful-debian")), 0.4)

    monkeypatch.setattr(doctor_command, "run", run)
    outcome = CliRunner().invoke(app, ["doctor", str(tmp_path), "--engine", "podman", "--json"])
    assert outcome.exit_code == 0, outcome.output
    assert seen == ["podman"]
    refused = CliRunner().invoke(app, ["doctor", str(tmp_path), "--engine", "containerd"])
    assert refused.exit_code == 2 and "'containerd' is not one of 'docker', 'podman'" in refused.output
    for command in ("init", "bootstrap"):
        assert "--engine" in CliRunner().invoke(app, [command, "--help"], terminal_width=200).stdout


def test_cli_through_a_socket_that_replays_a_recorded_rootless_podman(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated_user_dirs: Path
) -> None:
    # The captured rootless Podman 4.3 answers behind a real socket named as Podman names it, and a VS
    # Code settings.json with the line doctor asks for; a `podman` on PATH for VS Code to find.
    data = load("podman-rootless-debian")
    answers = {
        "/version": data["version"],
        "/info": data["info"],
        "/images/json": [],
        "/containers/json": [],
        "/system/df": {"LayersSize": 0, "Images": [], "Volumes": [], "Containers": [], "BuildCache": []},
        "/volumes": {"Volumes": [], "Warnings": None},
    }
    settings = isolated_user_dirs / ".config" / "Code" / "User" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{ "dev.containers.dockerPath": "podman" }')
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "podman").write_text("#!/bin/sh\n")
    (tools / "podman").chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    project = tmp_path / "project"
    project.mkdir()
    socket_dir = Path(tempfile.mkdtemp(prefix="dnx", dir="/tmp"))
    try:
        (socket_dir / "podman").mkdir()
        with replay_engine(socket_dir / "podman" / "podman.sock", answers) as host:
            monkeypatch.setenv("DOCKER_HOST", host)
            outcome = CliRunner().invoke(app, ["doctor", str(project), "--json"])
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    assert report["engine"]["kind"] == "podman" and report["engine"]["rootless"] is True
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["engine"]["message"].startswith("Podman 4.3.1, rootless (")
    assert checks["vscode.docker-path"]["status"] == "ok", checks["vscode.docker-path"]
    assert str(settings) in checks["vscode.docker-path"]["message"]
