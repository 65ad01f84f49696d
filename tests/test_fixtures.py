"""The engine fixtures say what they are: captured from a real engine here, or assembled by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ALL = sorted(FIXTURES.glob("*/*.json"))


def test_there_are_fixtures_of_both_kinds() -> None:
    kinds = {json.loads(path.read_text()).get("_provenance") for path in ALL}
    assert kinds == {"captured", "assembled"}


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_fixture_says_where_it_comes_from(path: Path) -> None:
    data = json.loads(path.read_text())
    provenance, source = data.get("_provenance"), data.get("_source", "")
    assert provenance in ("captured", "assembled"), f"{path}: _provenance must be captured or assembled"
    # The prose must not contradict the marker: an assembled fixture names its public sources and says
    # it was not captured; a captured one says from which engine and when.
    if provenance == "assembled":
        assert "not captured" in source or "public issue reports" in source, source
    else:
        assert "not captured" not in source and "2026-" in source, source
