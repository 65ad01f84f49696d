"""devnix.schema: where the schema comes from, and findings drilled down to their cause."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from devnix import jsonc, schema
from devnix.errors import FileSystemError
from tests.support import CORPUS, SCHEMAS

pytestmark = pytest.mark.shared


def check(value: Any) -> list[tuple[str, str]]:
    return [(jsonc.format_path(f.path), f.message) for f in schema.check(value, SCHEMAS)]


@pytest.mark.parametrize(
    "name",
    [
        "devcontainers__templates__src__python__.devcontainer__devcontainer.json",
        "devcontainers__templates__src__docker-existing-docker-compose__.devcontainer__devcontainer.json",
        "devcontainers__templates__src__docker-existing-dockerfile__.devcontainer__devcontainer.json",
        "lucernae__devcontainer-nix__.devcontainer__devcontainer.json",
        "cachix__devenv__.devcontainer__devcontainer.json",
    ],
)
def test_real_files_are_valid(name: str) -> None:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"no {path}")
    assert check(jsonc.parse(jsonc.read_file(path)).value) == []


def test_legacy_top_level_vscode_keys_are_unknown_properties() -> None:
    path = CORPUS / "xtruder__nix-devcontainer__.devcontainer__devcontainer.json"
    if not path.is_file():
        pytest.skip(f"no {path}")
    assert check(jsonc.parse(jsonc.read_file(path)).value) == [
        ("$.extensions", "unknown property 'extensions' (it moved to customizations.vscode.extensions)")
    ]


@pytest.mark.parametrize(
    ("value", "findings"),
    [
        ({"image": "x", "imagee": 1}, [("$.imagee", "unknown property 'imagee'")]),
        ({"build": {"dockerfile": 1}}, [("$.build.dockerfile", '1 is not of type "string"')]),
        ({"build": {"dockerfile": "D", "foo": 1}}, [("$.build.foo", "unknown property 'foo'")]),
        ({"image": 5}, [("$.image", '5 is not of type "string"')]),
        (
            {"image": "x", "forwardPorts": [True], "bar": 1},
            [
                ("$.forwardPorts[0]", "true is not of type integer or string"),
                ("$.bar", "unknown property 'bar'"),
            ],
        ),
        (
            {"image": "x", "mounts": [{"source": "a"}]},
            [
                ("$.mounts[0]", '"type" is a required property'),
                ("$.mounts[0]", '"target" is a required property'),
            ],
        ),
        (
            {"image": "x", "build": {"dockerfile": "D"}},
            [("$", 'use only one of "image", "build" and "dockerComposeFile"')],
        ),
        ([], [("$", '[] is not of type "object"')]),
    ],
)
def test_findings_name_the_real_cause(value: Any, findings: list[tuple[str, str]]) -> None:
    assert check(value) == findings


def test_the_validator_is_compiled_once() -> None:
    assert schema.validator(SCHEMAS) is schema.validator(SCHEMAS)


# --- where the schema comes from -------------------------------------------------------------------


def test_schema_dir_then_environment_then_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert schema.locate(SCHEMAS) == SCHEMAS
    monkeypatch.setenv(schema.SCHEMA_DIR_ENV, str(SCHEMAS))
    assert schema.locate() == SCHEMAS
    with pytest.raises(FileSystemError, match=r"has no devContainer\.base\.schema\.json") as caught:
        schema.locate(tmp_path)
    assert caught.value.hint and "--schema-dir" in caught.value.hint
    monkeypatch.delenv(schema.SCHEMA_DIR_ENV)
    cached = schema.cache_dir()
    assert cached.parts[-3:] == ("devnix", "schemas", schema.SPEC_COMMIT)
    cached.mkdir(parents=True)
    for name in schema.SCHEMA_FILES:
        (cached / name).write_bytes((SCHEMAS / name).read_bytes())
    assert schema.locate(base_url="http://127.0.0.1:9/never/") == cached  # offline reuse


@pytest.fixture
def schema_server() -> Iterator[str]:
    """A local HTTP server standing in for raw.githubusercontent.com."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(SCHEMAS))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_first_use_downloads_into_the_cache(schema_server: str) -> None:
    located = schema.locate(base_url=schema_server)
    assert located == schema.cache_dir()
    for name in schema.SCHEMA_FILES:
        assert (located / name).read_bytes() == (SCHEMAS / name).read_bytes()
    assert not list(located.glob(".*.partial"))


def test_no_network_is_a_clean_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(schema.SchemaUnavailableError) as caught:
        schema.locate(base_url="http://127.0.0.1:9/", timeout=2)
    assert caught.value.exit_code == 4
    assert "cannot download the devcontainer schema" in caught.value.message
    assert caught.value.hint and "--schema-dir" in caught.value.hint
    assert not schema.cache_dir().exists() or not any(schema.cache_dir().iterdir())


def test_a_download_that_is_not_json_is_refused(schema_server: str) -> None:
    with pytest.raises(schema.SchemaUnavailableError):
        schema.locate(base_url=schema_server + "SOURCE#")
