"""What the test modules share outside fixtures: the skip-or-fail rule and where ../shared's data is.

A plain module (``from tests.support import …``), because the two conftests are both top-level modules
called ``conftest`` and cannot import each other by name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import pytest

# CI sets this so that a machine without a Docker engine (or without ../shared) fails the tests that
# need them instead of skipping them.
REQUIRE_VAR = "DEVNIX_REQUIRE_DOCKER"


def required() -> bool:
    return os.environ.get(REQUIRE_VAR, "") not in ("", "0")


def examples(thorough: int) -> int:
    """How many examples a property test generates: all of them in CI (and with DEVNIX_THOROUGH=1), a
    tenth on a developer's run, so that the unit tests stay a matter of seconds while CI keeps the depth."""
    if required() or os.environ.get("DEVNIX_THOROUGH", "") not in ("", "0"):
        return thorough
    return max(thorough // 10, 25)


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a test that needs something this machine lacks, or fail when CI demands it."""
    if required():
        pytest.fail(f"{reason} ({REQUIRE_VAR} is set, so this is a failure, not a skip)")
    pytest.skip(reason)


# The brief's test data lives beside the checkout, not in it: the official schemas and 78 real-world
# devcontainer.json files. Tests marked `shared` skip without it, or fail under DEVNIX_REQUIRE_DOCKER.
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus" / "devcontainer-json"
SCHEMAS = SHARED / "schemas"
CORPUS_FILES = sorted(CORPUS.glob("*.json")) if CORPUS.is_dir() else []


def corpus_params(files: list[Path], id_length: int = 80) -> list[Any]:
    """One param per corpus file. Without the corpus, one placeholder that the `shared` marker turns
    into a skip or a failure (an empty list would be a silent skip, even in CI)."""
    return [pytest.param(path, id=path.name[:id_length]) for path in files] or [
        pytest.param(None, id="no-corpus", marks=pytest.mark.shared)
    ]


def missing_shared_data() -> str | None:
    for path in (CORPUS, SCHEMAS):
        if not path.is_dir():
            return f"no test data at {path} (../shared beside the checkout holds it)"
    return None
