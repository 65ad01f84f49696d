"""Every case of tests/hostile.py: one error line, a hint, its exit code, no traceback, no file changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile import CASES, Case, hostile_registry, problems, run


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    with hostile_registry() as host:
        yield host


def test_the_catalog_is_large_and_covers_every_category() -> None:
    assert len(CASES) >= 40
    assert {case.category for case in CASES} == {"command line", "files", "environment", "registry"}
    assert len({case.id for case in CASES}) == len(CASES), "two cases share a description"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id[:90])
def test_hostile_input_gets_one_line_a_hint_and_its_exit_code(
    case: Case, registry: str, tmp_path: Path
) -> None:
    outcome = run(case, tmp_path / "project", registry)
    assert problems(case, outcome) == [], outcome.result.output
