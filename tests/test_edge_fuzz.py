"""Generated malformed registry answers and Docker configs: the edge raises DevnixError or copes."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devnix import manifest as core
from devnix.errors import DevnixError
from devnix.images import filesystem_from_env
from devnix.registry import Manifest, credentials_for, platforms_of_index

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


@settings(max_examples=300, deadline=None)
@given(INDEX)
def test_malformed_indexes(index: dict[str, Any]) -> None:
    survives(platforms_of_index, index)
    survives(core.entries_of_index, index, "reg/repo:tag")


@settings(max_examples=300, deadline=None)
@given(MANIFEST)
def test_malformed_manifests(value: dict[str, Any]) -> None:
    survives(core.summarize_manifest, value, "reg/repo:tag")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode()))
def test_manifest_bodies_that_are_not_objects(body: bytes) -> None:
    survives(lambda: Manifest("application/vnd.oci.image.index.v1+json", "sha256:x", body).json)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_image_config_env_of_any_shape(env: Any) -> None:
    filesystem_from_env(env if isinstance(env, list) else None)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
def test_docker_configs_of_any_shape(
    config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("PATH", "/nonexistent")  # no credential helper runs
    survives(credentials_for, "localhost:9")
    from devnix import engine

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    survives(engine.endpoint)
