"""devnix.jsonc on the real-world corpus, on crafted edits, and on hostile input."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from devnix import jsonc
from devnix.errors import FileSystemError
from tests.support import CORPUS_FILES, corpus_params


def corpus_ids() -> list[Any]:
    return corpus_params(CORPUS_FILES)


def comments_outside(document: jsonc.Document, start: int, end: int) -> Counter[str]:
    return Counter(c.text for c in document.comments if not start <= c.start < end)


# --- the corpus ------------------------------------------------------------------------------------


@pytest.mark.shared
def test_corpus_is_all_there() -> None:
    assert len(CORPUS_FILES) == 78


@pytest.mark.parametrize("path", corpus_ids())
def test_corpus_round_trip_is_byte_identical(path: Path) -> None:
    text = jsonc.read_file(path)
    document = jsonc.parse(text)
    assert document.dumps().encode("utf-8") == path.read_bytes()
    # Every value has a node whose text parses back to the value.
    for node_path, node in document.nodes.items():
        expected = document.value
        for key in node_path:
            expected = expected[key]
        assert jsonc.parse(text[node.start : node.end]).value == expected


@pytest.mark.parametrize("path", corpus_ids())
def test_corpus_edits_keep_comments_and_foreign_values(path: Path) -> None:
    text = jsonc.read_file(path)
    before = jsonc.parse(text)
    if not isinstance(before.value, dict):
        pytest.skip("not an object")
    # Add an extension without duplicating it, twice.
    added = jsonc.append_unique(text, ("customizations", "vscode", "extensions"), "mkhl.direnv")
    assert jsonc.append_unique(added, ("customizations", "vscode", "extensions"), "mkhl.direnv") == added
    after = jsonc.parse(added)
    assert Counter(c.text for c in after.comments) == Counter(c.text for c in before.comments)
    assert after.value["customizations"]["vscode"]["extensions"].count("mkhl.direnv") == 1
    expected = {k: v for k, v in before.value.items() if k != "customizations"}
    assert {k: v for k, v in after.value.items() if k != "customizations"} == expected
    # Replace and remove each top-level member in turn.
    for key in before.value:
        node = before.nodes[(key,)]
        outside = comments_outside(before, node.member_start, node.end)
        replaced = jsonc.parse(jsonc.set_value(text, (key,), {"replaced": [1, "two"]}))
        assert replaced.value == {**before.value, key: {"replaced": [1, "two"]}}
        assert comments_outside(replaced, -1, -1) == outside
        removed = jsonc.parse(jsonc.remove(text, (key,)))
        assert removed.value == {k: v for k, v in before.value.items() if k != key}
        assert Counter(c.text for c in removed.comments) == outside


# --- reading ---------------------------------------------------------------------------------------


def test_value_comments_and_positions() -> None:
    text = (
        '\ufeff// top\n{\n\t"a": 1, // about a\n\t"b": [true, null,],\n'
        '\t/* c */ "c": {"d": "x/*y*/"},\n}\n'
    )
    document = jsonc.parse(text)
    assert document.bom
    assert document.value == {"a": 1, "b": [True, None], "c": {"d": "x/*y*/"}}
    assert [(c.text, c.line, c.column) for c in document.comments] == [
        ("// top", 1, 2),
        ("// about a", 3, 10),
        ("/* c */", 5, 2),
    ]
    assert document.locate(("a",)) == (3, 2)
    assert document.locate(("b", 1)) == (4, 14)
    assert document.locate(("c", "d")) == (5, 16)
    assert document.locate(("c", "missing")) == (5, 10)  # the nearest ancestor
    node = document.node(("b",))
    assert node is not None and node.kind == "array" and text[node.start : node.end] == "[true, null,]"


def test_plain_json_gets_positions_on_demand() -> None:
    document = jsonc.parse('{"a": {"b": [1, 2]}}')
    assert document.comments == []
    assert document.locate(("a", "b", 1)) == (1, 17)


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ('{"a": 1,,}', "expected a property name in double quotes or '}', found ','", 1, 9),
        ('{"a" 1}', "expected ':' after the property name, found '1'", 1, 6),
        ("[1 2]", "expected ',' or ']', found '2'", 1, 4),
        ('{\n  "a": "x', "unterminated string", 2, 8),
        ('{"a": "x\ny"}', "unterminated string", 1, 7),
        ("{} /* x", "unterminated /* comment", 1, 4),
        ("", "expected a value, found the end of the text", 1, 1),
        ("  // only a comment\n", "expected a value, found the end of the text", 2, 1),
        ("{'a': 1}", "strings must use double quotes", 1, 2),
        ('{"a": 1} x', "unexpected 'x' after the end of the value", 1, 10),
        ('{"a": "\\q"}', "invalid escape '\\\\q' in string", 1, 8),
        ('{"a": "b\tc"}', "control character U+0009 in string (escape it)", 1, 9),
        ('{"a": NaN}', "expected a value, found 'N'", 1, 7),
        ("[,]", "expected a value or ']', found ','", 1, 2),
        ("{,}", "expected a property name in double quotes or '}', found ','", 1, 2),
        ("[1,]]", "unexpected ']' after the end of the value", 1, 5),
        ("1" * 5000, "number too long", 1, 1),
        ("\ufeff\ufeff{}", "expected a value, found U+FEFF", 1, 2),
    ],
)
def test_syntax_errors_say_where(text: str, message: str, line: int, column: int) -> None:
    with pytest.raises(jsonc.JsoncSyntaxError) as caught:
        jsonc.parse(text)
    assert (caught.value.reason, caught.value.line, caught.value.column) == (message, line, column)
    assert caught.value.exit_code == 2
    assert caught.value.located("f.json") == f"f.json:{line}:{column}: {message}"


# --- hostile input ---------------------------------------------------------------------------------


def test_deep_nesting_is_a_clean_error_not_a_recursion_error() -> None:
    for text in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000, "[" * 10_000):
        with pytest.raises(jsonc.JsoncSyntaxError, match="nesting deeper than 128 levels"):
            jsonc.parse(text)
    assert jsonc.parse("[" * 128 + "]" * 128).value is not None  # the limit itself is fine


def test_invalid_utf8_and_binary_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{\n  "a": "caf\xe9"\n}')
    with pytest.raises(jsonc.JsoncSyntaxError) as caught:
        jsonc.read_file(bad)
    assert (caught.value.reason, caught.value.line, caught.value.column) == (
        "invalid UTF-8 (byte 0xe9)",
        2,
        12,
    )
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(jsonc.JsoncSyntaxError, match="NUL byte: this is not a text file"):
        jsonc.read_file(binary)
    utf16 = tmp_path / "utf16.json"
    utf16.write_bytes("{}".encode("utf-16"))
    with pytest.raises(jsonc.JsoncSyntaxError, match="UTF-16"):
        jsonc.read_file(utf16)
    with pytest.raises(FileSystemError, match="cannot read"):
        jsonc.read_file(tmp_path / "missing.json")


def test_bom_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n')
    text = jsonc.read_file(path)
    assert jsonc.parse(text).value == {"a": 1}
    assert jsonc.set_value(text, ("b",), 2) == '\ufeff{"a": 1, "b": 2}\r\n'


def _timed_parse(text: str) -> float:
    start = time.perf_counter()
    jsonc.parse(text)
    return time.perf_counter() - start


def test_ten_megabytes_parse_in_seconds() -> None:
    item = '{"name": "item", "image": "mcr.microsoft.com/devcontainers/base:1", "n": 12, "ok": true},\n'
    plain = "[" + item * (10_000_000 // len(item) + 1) + "{}]"
    assert len(plain) >= 10_000_000
    assert _timed_parse(plain) < 3  # the C decoder: ~0.3 s here
    commented = '{\n\t// a comment\n\t"runArgs": [' + '"--an-argument-of-some-length",\n' * 320_000 + "],\n}"
    assert len(commented) >= 10_000_000
    assert _timed_parse(commented) < 10  # the scanner: ~1 µs a token
    big_string = '{"a": "' + "x" * 10_000_000 + '", /* ' + "y" * 1_000_000 + " */}"
    assert _timed_parse(big_string) < 3


def test_unterminated_string_or_comment_in_a_large_file_is_fast() -> None:
    # A guard against quadratic scanning (which would take hours at this size), not a benchmark: the
    # sizes leave the linear scan ~30x headroom under the 10 s, even on a loaded 2-core CI machine.
    for text in ('{"a": "' + "x" * 1_000_000, "{} /* " + "x" * 1_000_000, "[" + "1," * 300_000):
        start = time.perf_counter()
        with pytest.raises(jsonc.JsoncSyntaxError):
            jsonc.parse(text)
        assert time.perf_counter() - start < 10


# --- edits -----------------------------------------------------------------------------------------

TABS = '{\n\t// keep me\n\t"name": "x", // and me\n\t"runArgs": ["--init"]\n}\n'
SPACES_CRLF = '{\r\n  "name": "x",\r\n  "features": {\r\n    "a": {},\r\n  },\r\n}\r\n'


def test_set_replaces_a_value_in_place() -> None:
    assert jsonc.set_value(TABS, ("name",), "y") == TABS.replace('"x"', '"y"')
    assert jsonc.set_value(TABS, ("name",), "x") == TABS  # no change, no diff
    assert jsonc.set_value(TABS, ("runArgs", 0), "--privileged") == TABS.replace("--init", "--privileged")


def test_set_adds_a_member_in_the_file_style() -> None:
    assert jsonc.set_value(TABS, ("remoteUser",), "root") == (
        '{\n\t// keep me\n\t"name": "x", // and me\n\t"runArgs": ["--init"],\n\t"remoteUser": "root"\n}\n'
    )
    # Two spaces, CRLF, trailing commas.
    assert jsonc.set_value(SPACES_CRLF, ("containerEnv", "NIX_PATH"), "nixpkgs=channel:x") == (
        '{\r\n  "name": "x",\r\n  "features": {\r\n    "a": {},\r\n  },\r\n'
        '  "containerEnv": {\r\n    "NIX_PATH": "nixpkgs=channel:x"\r\n  },\r\n}\r\n'
    )
    assert jsonc.set_value(SPACES_CRLF, ("features", "a", "version"), "1") == SPACES_CRLF.replace(
        '"a": {}', '"a": {\r\n      "version": "1",\r\n    }'
    )


def test_set_in_one_line_containers_stays_on_one_line() -> None:
    assert jsonc.set_value('{"a": 1}', ("b",), [1, 2]) == '{"a": 1, "b": [1, 2]}'
    assert jsonc.set_value('{"a": 1,}', ("b",), 2) == '{"a": 1, "b": 2,}'
    assert jsonc.set_value("{}", ("b",), 2) == '{\n\t"b": 2\n}'
    assert jsonc.set_value('{"a": [1]}', ("a", 1), 2) == '{"a": [1, 2]}'


def test_set_refuses_paths_through_scalars() -> None:
    with pytest.raises(jsonc.JsoncEditError, match=r"cannot set \$.name.x: \$.name is a string"):
        jsonc.set_value(TABS, ("name", "x"), 1)
    with pytest.raises(jsonc.JsoncEditError, match="array of 5 items"):
        jsonc.set_value(TABS, ("runArgs", 5), 1)


def test_remove_keeps_comments_and_commas_right() -> None:
    assert jsonc.remove(TABS, ("name",)) == '{\n\t// keep me\n\t// and me\n\t"runArgs": ["--init"]\n}\n'
    assert jsonc.remove(TABS, ("runArgs",)) == '{\n\t// keep me\n\t"name": "x" // and me\n}\n'
    assert jsonc.remove(TABS, ("missing",)) == TABS
    assert jsonc.remove('{"a": 1, "b": 2}', ("a",)) == '{"b": 2}'
    assert jsonc.remove('{"a": 1, "b": 2}', ("b",)) == '{"a": 1}'
    assert jsonc.remove(SPACES_CRLF, ("features", "a")) == SPACES_CRLF.replace('    "a": {},\r\n', "")
    assert jsonc.remove("[1, /* x */ 2]", (1,)) == "[1 /* x */]"
    assert jsonc.remove('{\n\t"a": 1,\n\t/* c */ "b": 2\n}', ("b",)) == '{\n\t"a": 1\n\t/* c */\n}'


def test_append_unique() -> None:
    text = '{\n\t"customizations": {\n\t\t"vscode": {\n\t\t\t"extensions": ["a"]\n\t\t}\n\t}\n}'
    once = jsonc.append_unique(text, ("customizations", "vscode", "extensions"), "b")
    assert once == text.replace('["a"]', '["a", "b"]')
    assert jsonc.append_unique(once, ("customizations", "vscode", "extensions"), "b") == once
    with pytest.raises(jsonc.JsoncEditError, match="not an array"):
        jsonc.append_unique(text, ("customizations",), "b")


def test_format_path() -> None:
    assert jsonc.format_path(()) == "$"
    assert jsonc.format_path(("runArgs", 2)) == "$.runArgs[2]"
    assert jsonc.format_path(("features", "ghcr.io/x/nix:1")) == '$.features["ghcr.io/x/nix:1"]'


def test_merge_adds_without_deleting() -> None:
    text = (
        "{\n\t// mine\n\t\"name\": \"x\",\n\t\"runArgs\": [\"--init\"],\n"
        "\t\"containerEnv\": {\"A\": \"1\"} // env\n}\n"
    )
    merged = jsonc.merge(
        text,
        {
            "runArgs": ["--init", "--platform=linux/arm64"],
            "containerEnv": {"NIX_PATH": "nixpkgs=channel:nixos-unstable"},
            "customizations": {"vscode": {"extensions": ["jnoortheen.nix-ide"]}},
            "name": "x",
        },
    )
    assert merged == (
        "{\n\t// mine\n\t\"name\": \"x\",\n\t\"runArgs\": [\"--init\", \"--platform=linux/arm64\"],\n"
        "\t\"containerEnv\": {\"A\": \"1\", \"NIX_PATH\": \"nixpkgs=channel:nixos-unstable\"}, // env\n"
        "\t\"customizations\": {\n\t\t\"vscode\": {\n\t\t\t\"extensions\": [\n"
        "\t\t\t\t\"jnoortheen.nix-ide\"\n\t\t\t]\n\t\t}\n\t}\n}\n"
    )
    assert jsonc.merge(merged, {"runArgs": ["--init"], "containerEnv": {"A": "1"}}) == merged


def test_replace_member_keeps_its_place_comments_and_comma() -> None:
    text = '{\n  // the image\n  "image": "a", /* after */\n  "x": 1\n}\n'
    out = jsonc.replace_member(text, ("image",), "build", {"dockerfile": "Dockerfile"})
    wanted = '{\n  // the image\n  "build": {\n    "dockerfile": "Dockerfile"\n  }, /* after */\n'
    wanted += '  "x": 1\n}\n'
    assert out == wanted
    with pytest.raises(jsonc.JsoncEditError):
        jsonc.replace_member(text, ("missing",), "build", 1)


def test_a_fifo_is_refused_at_once_instead_of_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "devcontainer.json"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(FileSystemError, match="not a regular file"):
        jsonc.read_file(fifo)
    assert time.monotonic() - started < 5
