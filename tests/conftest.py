"""Fixtures every test gets: a private HOME-like world so no test reads or writes the user's files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# CI sets this so that a machine without a Docker engine fails the Docker tests instead of skipping them.
REQUIRE_DOCKER_VAR = "DEVNIX_REQUIRE_DOCKER"


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs something this machine lacks, or fail when CI demands it."""
    if os.environ.get(REQUIRE_DOCKER_VAR, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_DOCKER_VAR} is set, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point Docker's config, the XDG dirs and Nix's config dir at fresh folders."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("DOCKER_CONFIG", ".docker"),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("NIX_CONF_DIR", "nix-conf"),
    ):
        path = home / sub
        path.mkdir(parents=True)
        monkeypatch.setenv(var, str(path))
    monkeypatch.delenv("NIX_USER_CONF_FILES", raising=False)
    return home
