"""The fixtures captured from this machine's dockerd and Podman still have the real engines' shape.

tests/docker/capture_engine.py takes them; unit tests (doctor's verdicts, init's engine platform) replay
them. If the live engine answers with other keys or types, or devnix would classify it differently, the
fixtures have gone stale and are recaptured with that script.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from capture_engine import FIXTURES, ask, trimmed
from standins import BASE_ENV

from devnix import doctor
from devnix.doctor import EndpointFacts

pytestmark = pytest.mark.docker

RECORDED = FIXTURES.parent / "recorded"
# Fixture → what it must match. Only fixtures of engines that run here can be checked.
CAPTURED_FROM_DOCKERD = ("engines/dockerd-debian.json", "recorded/dockerd-amd64.version.json")
# Fixture → the fixture (tests/docker/conftest.py) of the Podman it was captured from.
CAPTURED_FROM_PODMAN = {
    "podman-rootful-debian": "podman_rootful",
    "podman-rootless-debian": "podman_rootless",
}


def shape(value: Any) -> Any:
    """Keys and JSON types, not values (IDs, kernels and counters change from run to run)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture(scope="module")
def live(docker_client: Any) -> dict[str, Any]:
    host = BASE_ENV.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return {"host": host, "info": ask(host, "/info"), "version": ask(host, "/version")}


@pytest.mark.parametrize("name", CAPTURED_FROM_DOCKERD)
def test_captured_fixture_has_the_live_engines_shape(name: str, live: dict[str, Any]) -> None:
    fixture = json.loads((FIXTURES.parent / name).read_text())
    assert fixture["_provenance"] == "captured"
    if "info" in fixture:
        pairs = [(fixture["info"], live["info"]), (fixture["version"], live["version"])]
    else:  # a bare /version answer
        pairs = [({k: v for k, v in fixture.items() if not k.startswith("_")}, live["version"])]
    for recorded, answer in pairs:
        assert shape(recorded) == shape(trimmed(answer, recorded))


def test_doctor_reads_the_fixture_as_it_reads_the_live_engine(live: dict[str, Any]) -> None:
    fixture = json.loads((FIXTURES / "dockerd-debian.json").read_text())
    endpoint = EndpointFacts(live["host"], "default", "default")
    assert doctor.detect_kind(fixture["info"], fixture["version"], endpoint) == doctor.detect_kind(
        live["info"], live["version"], endpoint
    )


@pytest.mark.parametrize("name", sorted(CAPTURED_FROM_PODMAN))
def test_captured_podman_fixture_matches_the_live_podman(name: str, request: pytest.FixtureRequest) -> None:
    engine = request.getfixturevalue(CAPTURED_FROM_PODMAN[name])
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    assert fixture["_provenance"] == "captured"
    info, version = engine.api("/info"), engine.api("/version")
    assert shape(fixture["info"]) == shape(trimmed(info, fixture["info"]))
    assert shape(fixture["version"]) == shape(trimmed(version, fixture["version"]))
    # Rootful or rootless is the one fact that tells the two fixtures apart.
    assert fixture["info"]["Rootless"] is info["Rootless"] is engine.rootless
    endpoint = EndpointFacts(engine.url, "default", "DOCKER_HOST")
    assert doctor.detect_kind(fixture["info"], fixture["version"], endpoint) == doctor.detect_kind(
        info, version, endpoint
    )
