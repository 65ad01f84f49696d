"""Generated malformed registry answers and Docker configs: the edge raises DevnixError or copes."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devnix import manifest as core
from devnix.dockerconfig import credentials_for
from devnix.errors import DevnixError
from devnix.images import filesystem_from_env
from devnix.registry import Manifest, platforms_of_index
from tests.support import examples

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
# Shapes close to the real ones, with any field replaced by anything: where parsers actually break.
ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": JSON | st.just("application/vnd.oci.image.manifest.v1+json"),
        "digest": JSON | st.just("sha256:" + "a" * 64),
        "size": JSON | st.integers(0, 10**6),
        "platform": JSON
        | st.fixed_dictionaries(
            {}, optional={"os": JSON | st.just("linux"), "architecture": JSON, "variant": JSON}
        ),
        "annotations": JSON,
    },
)
INDEX = st.fixed_dictionaries({}, optional={"manifests": st.lists(ENTRY | JSON, max_size=4) | JSON})
MANIFEST = st.fixed_dictionaries(
    {}, optional={"config": ENTRY | JSON, "layers": st.lists(ENTRY | JSON, max_size=3) | JSON}
)


def survives(call: Any, *args: Any) -> None:
    with contextlib.suppress(DevnixError):
        call(*args)


@settings(max_examples=examples(300), deadline=None)
@given(INDEX)
def test_malformed_indexes(index: dict[str, Any]) -> None:
    survives(platforms_of_index, index)
    survives(core.entries_of_index, index, "reg/repo:tag")


@settings(max_examples=examples(300), deadline=None)
@given(MANIFEST)
def test_malformed_manifests(value: dict[str, Any]) -> None:
    survives(core.summarize_manifest, value, "reg/repo:tag")


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode()))
def test_manifest_bodies_that_are_not_objects(body: bytes) -> None:
    survives(lambda: Manifest("application/vnd.oci.image.index.v1+json", "sha256:x", body).json)


@settings(max_examples=examples(200), deadline=None)
@given(JSON)
def test_image_config_env_of_any_shape(env: Any) -> None:
    filesystem_from_env(env if isinstance(env, list) else None)


@settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    config=st.fixed_dictionaries(
        {},
        optional={
            "auths": JSON
            | st.dictionaries(st.just("localhost:9"), JSON | st.fixed_dictionaries({"auth": JSON})),
            "credHelpers": JSON,
            "credsStore": JSON,
            "currentContext": JSON,
        },
    )
    | JSON
)
def test_docker_configs_of_any_shape(config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("PATH", "/nonexistent")  # no credential helper runs
    survives(credentials_for, "localhost:9")
    from devnix import engine

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    survives(engine.endpoint)


# --- generated registry answers through the whole edge: a real server, the transport, the client ------

_DIGEST = "sha256:" + "a" * 64
# Header values as a server can send them: latin-1 without line breaks.
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
_MEDIA_TYPES = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/json",
    "text/html",
]
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(_MEDIA_TYPES) | _HEADER_TEXT,
        "Docker-Content-Digest": st.just(_DIGEST) | _HEADER_TEXT,
        "Location": st.sampled_from(
            [
                "/v2/r/blobs/uploads/u1",
                "http://127.0.0.1:1/x",
                "file:///etc/passwd",
                "//",
                "/é",
                "http://[::1",
            ]
        )
        | _HEADER_TEXT,
        "WWW-Authenticate": st.sampled_from(
            ['Bearer realm="/token",service="s"', 'Bearer realm="ftp://x"', 'Basic realm="r"', "Negotiate"]
        )
        | _HEADER_TEXT,
        "Retry-After": st.sampled_from(["0", "0.001", "99999", "soon", "-1", "inf"]),
        "Link": _HEADER_TEXT | st.just('</v2/r/tags/list?last=a>; rel="next"'),
    },
)
BODY = (
    st.binary(max_size=64)
    | (INDEX | MANIFEST).map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries({}, optional={"token": JSON, "access_token": JSON, "tags": JSON}).map(
        lambda v: json.dumps(v).encode()
    )
    | JSON.map(lambda v: json.dumps(v).encode())
)
# Weighted towards the answers that lead somewhere (success, redirects, challenges); any status now and then.
_STATUSES = [200] * 4 + [201, 202, 204] + [301, 302, 303, 307, 308] * 2 + [401] * 3 + [404, 429, 500, 503]
ANSWER = st.tuples(st.sampled_from(_STATUSES) | st.integers(200, 599), HEADERS, BODY)
OPERATIONS = st.sampled_from(
    ["manifest", "manifest by digest", "remote image", "blob", "stream", "tags", "push"]
)


@pytest.fixture(scope="module")
def scripted_registry() -> Any:
    from tests.http_fixtures import Server

    answers: list[tuple[int, dict[str, str], bytes]] = []

    def respond(seen: Any) -> tuple[int, dict[str, str], bytes]:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    server = Server(respond)
    yield server, answers
    server.close()


def _operate(client: Any, operation: str) -> None:
    from devnix import registry
    from devnix.images import parse_ref
    from devnix.platforms import Platform

    if operation == "manifest":
        client.find_manifest("r", "v1")
    elif operation == "manifest by digest":
        client.find_manifest("r", _DIGEST)
    elif operation == "remote image":
        ref = parse_ref(f"{client.registry}/r:v1")
        registry.remote_image(client, ref, config_for=Platform("linux", "arm64"))
    elif operation == "blob":
        client.get_blob("r", _DIGEST)
    elif operation == "stream":
        with client.open_blob("r", _DIGEST) as stream:
            while stream.read(1024):
                pass
    elif operation == "tags":
        registry.list_tags(client, "r")
    else:
        registry.push_blob(client, "r", "sha256:" + hashlib.sha256(b"x").hexdigest(), b"x")


@settings(
    max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answers=st.lists(ANSWER, min_size=1, max_size=5), operation=OPERATIONS)
def test_registry_answers_of_any_shape_end_in_a_devnix_error(
    scripted_registry: Any, answers: list[tuple[int, dict[str, str], bytes]], operation: str
) -> None:
    from devnix.dockerconfig import Credentials
    from devnix.registry import Client

    server, script = scripted_registry
    script[:] = answers
    client = Client(f"127.0.0.1:{server.port}", credentials=Credentials("me", "pw"), timeout=2)
    client.transport.backoff, client.transport.max_wait = 0.001, 0.01  # keep each example fast
    try:
        survives(_operate, client, operation)
    finally:
        client.close()


@settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    config=st.fixed_dictionaries({}, optional={"currentContext": JSON | st.just("ctx"), "credsStore": JSON})
    | JSON,
    meta=JSON
    | st.fixed_dictionaries(
        {},
        optional={
            "Endpoints": JSON
            | st.fixed_dictionaries({}, optional={"docker": JSON | st.fixed_dictionaries({"Host": JSON})})
        },
    ),
    selected=st.none() | st.just("ctx") | st.text(max_size=8),
)
def test_docker_contexts_of_any_shape(
    config: Any, meta: Any, selected: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devnix import dockerconfig, engine
    from devnix.commands import doctor as doctor_command

    folder = tmp_path / "docker"
    meta_path = folder / "contexts" / "meta" / hashlib.sha256(b"ctx").hexdigest() / "meta.json"
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta))
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    monkeypatch.setenv("PATH", "/nonexistent")  # no credential helper runs
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    if selected and "\x00" not in selected:
        monkeypatch.setenv("DOCKER_CONTEXT", selected)
    else:
        monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    survives(engine.endpoint)
    survives(dockerconfig.selected_context)
    survives(credentials_for, "localhost:9")
    doctor_command._current_context()  # never raises: DOCKER_HOST decides where it is asked
