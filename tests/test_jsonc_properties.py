"""Property tests: generated JSONC documents read back to their value, byte for byte, and edit cleanly.

Documents are rendered from generated values with comments in every legal position (before and after
every token), trailing commas, escaped and unescaped unicode, LF or CRLF, with or without a BOM.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devnix import jsonc
from tests.support import examples

TEXT = st.characters(codec="utf-8", exclude_categories=["Cs"])  # no lone surrogates
KEYS = st.text(TEXT, max_size=6) | st.sampled_from(
    ["image", "a/*b*/", "//", 'q"uote', "back\\slash", "tab\t", "é", "😀"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(TEXT, max_size=12)
    | st.sampled_from(["/* not a comment */", "// nor this", "a,]", "\\u0041", "\u2028"])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=10,
)
COMMENTS = [
    "// line comment é ,] }",
    "/* block */",
    "/**/",
    "/* multi\nline * / */",
    '/* "quoted" // */',
    "/***/",
]


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, Any, int]:
    """A JSONC text, the value it holds, and how many comments it has."""
    value = draw(VALUES)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    count = 0

    def gap() -> str:
        nonlocal count
        parts = []
        for piece in draw(st.lists(st.sampled_from([" ", "\t", "\n", *COMMENTS]), max_size=2)):
            if piece.startswith("/"):
                count += 1
            if piece.startswith("//"):
                piece += "\n"
            parts.append(piece.replace("\n", newline))
        return "".join(parts)

    def scalar(item: Any) -> str:
        return str(json.dumps(item, ensure_ascii=draw(st.booleans())))

    def render(item: Any) -> str:
        if isinstance(item, dict):
            members = [
                gap() + scalar(k) + gap() + ":" + gap() + render(v) + gap() for k, v in item.items()
            ]
            return "{" + _join(members, gap) + "}"
        if isinstance(item, list):
            return "[" + _join([gap() + render(v) + gap() for v in item], gap) + "]"
        return scalar(item)

    def _join(parts: list[str], gap_: Callable[[], str]) -> str:
        if not parts:
            return gap_()
        trailing = "," + gap_() if draw(st.booleans()) else ""
        return ",".join(parts) + trailing

    text = gap() + render(value) + gap()
    if draw(st.booleans()):
        text = jsonc.BOM + text
    return text, value, count


@settings(max_examples=examples(2000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_documents_read_back(case: tuple[str, Any, int]) -> None:
    text, value, count = case
    document = jsonc.parse(text)
    assert document.value == value
    assert document.dumps() == text
    assert len(document.comments) == count
    # The scanner (positions, errors) and the fast reader (values) both read it, the same way.
    body = text[1:] if text.startswith(jsonc.BOM) else text
    assert jsonc._fast_read(body) == value
    scanned, nodes, _ = jsonc._scan(text)
    assert scanned == value
    for path, node in nodes.items():
        expected = value
        for key in path:
            expected = expected[key]
        assert jsonc.parse(text[node.start : node.end]).value == expected
        if node.key_start >= 0:
            assert json.loads(jsonc._TOKEN.match(text, node.key_start).group(1)) == path[-1]  # type: ignore[union-attr]


def _comments(text: str) -> Counter[str]:
    return Counter(c.text for c in jsonc.parse(text).comments)


@settings(max_examples=examples(300), deadline=None)
@given(documents(), st.data())
def test_edits_change_only_their_target(case: tuple[str, Any, int], data: st.DataObject) -> None:
    text, value, _ = case
    document = jsonc.parse(text)
    paths = [path for path in document.nodes if path]
    if not paths:
        return
    path = data.draw(st.sampled_from(paths))
    node = document.nodes[path]
    everything = Counter(c.text for c in document.comments)
    outside_value = Counter(c.text for c in document.comments if not node.start <= c.start < node.end)
    outside = Counter(c.text for c in document.comments if not node.member_start <= c.start < node.end)
    parent_value = document.value
    for key in path[:-1]:
        parent_value = parent_value[key]

    new = data.draw(VALUES)
    replaced = jsonc.set_value(text, path, new)
    expected = json.loads(json.dumps(value))
    target = expected
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    assert jsonc.parse(replaced).value == expected
    # Every comment outside the old value is kept (those inside it go only if it changed).
    assert not outside_value - _comments(replaced)
    assert not _comments(replaced) - everything

    removed = jsonc.remove(text, path)
    expected = json.loads(json.dumps(value))
    target = expected
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    assert jsonc.parse(removed).value == expected
    assert _comments(removed) == outside

    if isinstance(parent_value, dict):
        added_key = data.draw(KEYS.filter(lambda k: k not in parent_value))
        added = jsonc.set_value(text, (*path[:-1], added_key), new)
        expected = json.loads(json.dumps(value))
        target = expected
        for key in path[:-1]:
            target = target[key]
        target[added_key] = new
        assert jsonc.parse(added).value == expected
        assert _comments(added) == _comments(text)


MUTATIONS = ["", ",", "/", "*", '"', "\n", "]", "}", "[", "{", ":", "\\", "0", "-", " ", "\t", "\x00", "'"]


@settings(max_examples=examples(1000), deadline=None)
@given(documents(), st.data())
def test_fast_reader_accepts_exactly_what_the_scanner_accepts(
    case: tuple[str, Any, int], data: st.DataObject
) -> None:
    """Break a valid document at random: both readers reject it, or both read the same value."""
    text, _, _ = case
    body = text[1:] if text.startswith(jsonc.BOM) else text
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(body)))
        cut = data.draw(st.integers(0, 2))
        body = body[:at] + data.draw(st.sampled_from(MUTATIONS)) + body[at + cut :]
    try:
        expected = jsonc._scan(body)[0]
    except jsonc.JsoncSyntaxError:
        with pytest.raises((ValueError, RecursionError)):
            jsonc._fast_read(body)  # the scanner refuses it: so must the fast reader
        return
    with contextlib.suppress(ValueError):  # declining is allowed: the scanner reads it then
        assert jsonc._fast_read(body) == expected
