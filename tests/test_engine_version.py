"""``engine.version()`` through a socket that replays captured ``/version`` answers: the platform, and
whether the engine is Podman (what the hints name as the engine's tool), from one request."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devnix import engine
from devnix.plan import pull_command
from devnix.platforms import Platform
from tests.replay_engine import replay_engine

ENGINES = Path(__file__).parent / "fixtures" / "engines"


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # Short, under /tmp: a unix socket path must fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="dnx", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def captured_version(name: str) -> dict[str, Any]:
    data = json.loads((ENGINES / f"{name}.json").read_text())
    assert data["_provenance"] == "captured", name
    version: dict[str, Any] = data["version"]
    return version


@pytest.mark.parametrize(
    ("fixture", "cli"),
    [("dockerd-debian", "docker"), ("podman-rootful-debian", "podman"), ("podman-rootless-debian", "podman")],
)
def test_the_engines_tool_comes_with_its_version(
    socket_dir: Path, monkeypatch: pytest.MonkeyPatch, fixture: str, cli: str
) -> None:
    with replay_engine(socket_dir / "engine.sock", {"/version": captured_version(fixture)}) as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        answer = engine.version()
        assert engine.is_podman() is (cli == "podman")
    assert answer.cli == cli
    assert answer.podman is (cli == "podman")
    assert answer.platform == Platform("linux", "amd64")
    assert pull_command(Platform("linux", "arm64"), "nixos/nix", answer.cli) == (
        f"{cli} pull --platform linux/arm64 nixos/nix"
    )
