"""Fixtures every test gets: a private HOME-like world so no test reads or writes the user's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import missing_shared_data, skip_or_fail


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("shared") is not None and (missing := missing_shared_data()):
        skip_or_fail(missing)


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
