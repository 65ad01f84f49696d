"""devnix.registry against scripted registries on loopback: digests, answer shapes, where credentials go."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from devnix import registry
from devnix.dockerconfig import Credentials
from devnix.images import DOCKER_MANIFEST, OCI_INDEX, parse_ref
from devnix.platforms import Platform
from devnix.registry import Client, DigestMismatchError, MalformedAnswerError
from devnix.transport import HTTPStatusError, NotFoundError
from tests.http_fixtures import Seen, serving

Answer = tuple[int, dict[str, str], bytes]


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def routes(table: dict[str, Answer]) -> Any:
    """Answer by path (query ignored); 404 for anything else."""

    def respond(seen: Seen) -> Answer:
        return table.get(seen.path.split("?")[0], (404, {}, b'{"errors":[{"code":"NOT_FOUND"}]}'))

    return respond


def json_answer(value: Any, media_type: str = "application/json") -> Answer:
    return 200, {"Content-Type": media_type}, json.dumps(value).encode()


CONFIG = json.dumps({"os": "linux", "architecture": "arm64", "config": {"Env": ["PATH=/bin"]}}).encode()
IMAGE = json.dumps(
    {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": {"digest": digest(CONFIG), "size": 9}}
).encode()


# --- digests ------------------------------------------------------------------------------------------


def test_a_manifest_fetched_by_digest_must_hash_to_it() -> None:
    asked = digest(b"the manifest that was pushed")
    with serving(routes({f"/v2/r/manifests/{asked}": (200, {}, IMAGE)})) as server:
        client = Client(f"127.0.0.1:{server.port}")
        with pytest.raises(DigestMismatchError) as caught:
            client.find_manifest("r", asked)
    assert caught.value.message.startswith(f"127.0.0.1:{server.port}/r@{asked} came back with content whose")
    assert digest(IMAGE) in caught.value.message


def test_a_manifest_fetched_by_sha512_is_checked_with_sha512() -> None:
    asked = "sha512:" + hashlib.sha512(IMAGE).hexdigest()
    with serving(routes({f"/v2/r/manifests/{asked}": (200, {}, IMAGE)})) as server:
        found = Client(f"127.0.0.1:{server.port}").get_manifest("r", asked)
    assert found.digest == asked and found.media_type == DOCKER_MANIFEST  # sniffed from the body


def test_a_tag_whose_claimed_digest_is_not_its_content_is_refused() -> None:
    claimed = {"Docker-Content-Digest": digest(b"something else"), "Content-Type": DOCKER_MANIFEST}
    with (
        serving(routes({"/v2/r/manifests/v1": (200, claimed, IMAGE)})) as server,
        pytest.raises(DigestMismatchError),
    ):
        Client(f"127.0.0.1:{server.port}").get_manifest("r", "v1")


def test_a_tag_is_known_by_the_digest_of_its_bytes() -> None:
    headers = {"Docker-Content-Digest": digest(IMAGE), "Content-Type": DOCKER_MANIFEST}
    with serving(routes({"/v2/r/manifests/v1": (200, headers, IMAGE)})) as server:
        assert Client(f"127.0.0.1:{server.port}").get_manifest("r", "v1").digest == digest(IMAGE)


def test_a_blob_must_hash_to_its_digest() -> None:
    asked = digest(CONFIG)
    with (
        serving(routes({f"/v2/r/blobs/{asked}": (200, {}, CONFIG + b" ")})) as server,
        pytest.raises(DigestMismatchError),
    ):
        Client(f"127.0.0.1:{server.port}").get_blob("r", asked)


def test_a_streamed_blob_that_does_not_match_fails_as_it_ends_and_the_copy_fails() -> None:
    layer = b"layer bytes" * 1000
    asked = digest(layer)
    path = f"/v2/src/blobs/{asked}"
    source_table = {path: (200, {}, layer[:-1] + b"X")}
    target_table: dict[str, Answer] = {
        "/v2/dst/blobs/uploads/": (202, {"Location": "/v2/dst/blobs/uploads/u1"}, b""),
        "/v2/dst/blobs/uploads/u1": (201, {}, b""),
    }
    with serving(routes(source_table)) as source_server, serving(routes(target_table)) as target_server:
        source, target = Client(f"127.0.0.1:{source_server.port}"), Client(f"127.0.0.1:{target_server.port}")
        with pytest.raises(DigestMismatchError), source.open_blob("src", asked) as stream:
            while stream.read(4096):
                pass
        with pytest.raises(DigestMismatchError):
            registry.transfer_blob(source, "src", target, "dst", asked, len(layer))
    # The PUT stopped short of the last bytes: the target never received a whole (wrong) blob.
    assert all(len(seen.body) < len(layer) for seen in target_server.seen if seen.method == "PUT")


def test_a_streamed_blob_that_matches_is_copied() -> None:
    layer = b"layer bytes" * 1000
    asked = digest(layer)
    target_table: dict[str, Answer] = {
        "/v2/dst/blobs/uploads/": (202, {"Location": "/v2/dst/blobs/uploads/u1"}, b""),
        "/v2/dst/blobs/uploads/u1": (201, {}, b""),
    }
    with (
        serving(routes({f"/v2/src/blobs/{asked}": (200, {}, layer)})) as source_server,
        serving(routes(target_table)) as target_server,
    ):
        source, target = Client(f"127.0.0.1:{source_server.port}"), Client(f"127.0.0.1:{target_server.port}")
        assert registry.transfer_blob(source, "src", target, "dst", asked, len(layer)) == "copied"
    (put,) = [s for s in target_server.seen if s.method == "PUT"]
    assert put.body == layer and put.path == f"/v2/dst/blobs/uploads/u1?digest={asked.replace(':', '%3A')}"


def test_a_digest_from_an_index_is_checked_before_it_goes_into_a_url() -> None:
    index = {
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "digest": "sha256:../../../v2/other/manifests/x",
                "platform": {"os": "linux", "architecture": "arm64"},
            }
        ],
    }
    with serving(routes({"/v2/r/manifests/v1": json_answer(index, OCI_INDEX)})) as server:
        ref = parse_ref(f"127.0.0.1:{server.port}/r:v1")
        with pytest.raises(MalformedAnswerError) as caught:
            registry.image_platforms(ref, config_for=Platform("linux", "arm64"))
    assert "is not a sha256 or sha512 digest" in caught.value.message
    assert [seen.path for seen in server.seen] == ["/v2/r/manifests/v1"]


def test_image_platforms_reads_a_single_manifest_and_its_config() -> None:
    table = {
        "/v2/r/manifests/v1": (200, {"Content-Type": DOCKER_MANIFEST}, IMAGE),
        f"/v2/r/blobs/{digest(CONFIG)}": (200, {}, CONFIG),
    }
    with serving(routes(table)) as server:
        ref = parse_ref(f"127.0.0.1:{server.port}/r:v1")
        found = registry.image_platforms(ref, config_for=Platform("linux", "arm64"))
    assert found.platforms == (Platform("linux", "arm64"),)
    assert found.env == ("PATH=/bin",) and found.digest == digest(IMAGE)


# --- where credentials go ---------------------------------------------------------------------------

BASIC = "Basic " + base64.b64encode(b"me:s3cret").decode()


def test_a_blob_redirected_to_storage_gets_no_credentials() -> None:
    """Registries send blob GETs to S3 or a CDN: the registry's credentials must not follow."""
    asked = digest(CONFIG)
    with serving(routes({"/storage/blob": (200, {}, CONFIG)})) as storage:

        def respond(seen: Seen) -> Answer:
            if seen.headers.get("authorization") != BASIC:
                return 401, {"WWW-Authenticate": 'Basic realm="registry"'}, b""
            return 307, {"Location": storage.url("/storage/blob", host="localhost")}, b""

        with serving(respond) as server:
            client = Client(f"127.0.0.1:{server.port}", credentials=Credentials("me", "s3cret"))
            assert client.get_blob("r", asked) == CONFIG
            with client.open_blob("r", asked) as stream:
                assert stream.read() == CONFIG
                assert stream.read() == b""  # the end: checked against the digest
    assert [seen.headers.get("authorization") for seen in server.seen] == [None, BASIC, BASIC, BASIC]
    assert len(storage.seen) == 2
    assert all("authorization" not in seen.headers for seen in storage.seen)


def _bearer_registry(token_answer: Answer, realm: str | None = None) -> Any:
    def respond(seen: Seen) -> Answer:
        if seen.path.startswith("/token"):
            return token_answer
        if seen.headers.get("authorization", "").startswith("Bearer "):
            return 200, {"Content-Type": DOCKER_MANIFEST}, IMAGE
        where = realm or f"http://{seen.headers['host']}/token"
        return 401, {"WWW-Authenticate": f'Bearer realm="{where}",service="s"'}, b""

    return respond


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"token": 5}', b'{"token": ""}', b'{"token": "a\\r\\nX-Injected: 1"}', b"{}"],
)
def test_a_token_answer_of_the_wrong_shape_is_one_clear_error(body: bytes) -> None:
    with serving(_bearer_registry((200, {}, body))) as server, pytest.raises(MalformedAnswerError) as caught:
        Client(f"127.0.0.1:{server.port}").get_manifest("r", "v1")
    assert "\n" not in caught.value.message and caught.value.hint


def test_a_token_realm_that_is_not_http_is_refused() -> None:
    with (
        serving(_bearer_registry((200, {}, b'{"token": "t"}'), realm="file:///etc/passwd")) as server,
        pytest.raises(MalformedAnswerError) as caught,
    ):
        Client(f"127.0.0.1:{server.port}").get_manifest("r", "v1")
    assert "not an http(s) address" in caught.value.message


def test_a_good_token_answer_is_used() -> None:
    with serving(_bearer_registry((200, {}, b'{"access_token": "t0k"}'))) as server:
        client = Client(f"127.0.0.1:{server.port}")
        assert client.get_manifest("r", "v1").body == IMAGE
    assert server.seen[-1].headers["authorization"] == "Bearer t0k"
    assert client.requests == 3  # challenge, token, retried GET


# --- answers of the wrong shape ---------------------------------------------------------------------


def test_a_registry_error_body_becomes_one_line() -> None:
    errors = {"errors": [{"code": "DENIED", "message": "line one\nline two\r\n" + "x" * 500}]}
    with (
        serving(routes({"/v2/r/manifests/v1": (403, {}, json.dumps(errors).encode())})) as server,
        pytest.raises(HTTPStatusError) as caught,
    ):
        Client(f"127.0.0.1:{server.port}").get_manifest("r", "v1")
    assert "\n" not in caught.value.message and caught.value.status == 403
    assert "line one line two" in caught.value.message and len(caught.value.message) < 320


def test_a_missing_manifest_is_a_typed_not_found() -> None:
    with serving(routes({})) as server:
        client = Client(f"127.0.0.1:{server.port}")
        assert client.find_manifest("r", "v1") is None
        with pytest.raises(NotFoundError):
            client.get_manifest("r", "v1")


def test_a_503_from_the_registry_is_retried() -> None:
    answers = [(503, {}, b""), (200, {"Content-Type": DOCKER_MANIFEST}, IMAGE)]
    with serving(lambda seen: answers.pop(0)) as server:
        client = Client(f"127.0.0.1:{server.port}")
        client.transport.backoff = 0.01
        assert client.get_manifest("r", "v1").body == IMAGE
    assert len(server.seen) == 2


@pytest.mark.parametrize("tags", [{"tags": [1, 2]}, {"tags": "v1"}, [], {"tags": [None]}])
def test_a_tag_list_of_the_wrong_shape_is_refused(tags: Any) -> None:
    with (
        serving(routes({"/v2/r/tags/list": json_answer(tags)})) as server,
        pytest.raises(MalformedAnswerError),
    ):
        registry.list_tags(Client(f"127.0.0.1:{server.port}"), "r")


def test_a_next_page_link_never_leaves_the_registry() -> None:
    def respond(seen: Seen) -> Answer:
        if "last=a" in seen.path:
            return json_answer({"tags": ["b"]})
        link = '<http://elsewhere.invalid/v2/r/tags/list?last=a>; rel="next"'
        return 200, {"Link": link, "Content-Type": "application/json"}, json.dumps({"tags": ["a"]}).encode()

    with serving(respond) as server:
        assert registry.list_tags(Client(f"127.0.0.1:{server.port}"), "r") == ["a", "b"]


@pytest.mark.parametrize(
    "config", [{}, {"architecture": 5}, {"os": ["linux"], "architecture": "amd64"}, {"architecture": ""}]
)
def test_an_image_config_without_a_platform_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(MalformedAnswerError):
        registry.platform_of_config(config)


def test_an_upload_session_on_another_host_gets_no_credentials() -> None:
    """A registry may hand uploads to storage elsewhere: the PUT there goes without its credentials."""
    data = b"small blob"
    with serving(routes({"/upload/u1": (201, {}, b"")})) as storage:

        def respond(seen: Seen) -> Answer:
            if seen.headers.get("authorization") != BASIC:
                return 401, {"WWW-Authenticate": 'Basic realm="registry"'}, b""
            if seen.method == "POST":
                return 202, {"Location": storage.url("/upload/u1", host="localhost")}, b""
            return 404, {}, b""

        with serving(respond) as server:
            client = Client(f"127.0.0.1:{server.port}", credentials=Credentials("me", "s3cret"))
            assert registry.push_blob(client, "r", digest(data), data)
    (put,) = storage.seen
    assert put.method == "PUT" and put.body == data and "authorization" not in put.headers
    assert all(seen.headers.get("authorization") in (None, BASIC) for seen in server.seen)


def test_a_streamed_blob_longer_than_its_size_stops_before_the_extra_bytes_go() -> None:
    layer = b"layer bytes" * 100
    asked = digest(layer)
    target_table: dict[str, Answer] = {
        "/v2/dst/blobs/uploads/": (202, {"Location": "/v2/dst/blobs/uploads/u1"}, b""),
        "/v2/dst/blobs/uploads/u1": (201, {}, b""),
    }
    with (
        serving(routes({f"/v2/src/blobs/{asked}": (200, {}, layer + b"extra")})) as source_server,
        serving(routes(target_table)) as target_server,
        pytest.raises(DigestMismatchError) as caught,
    ):
        source, target = Client(f"127.0.0.1:{source_server.port}"), Client(f"127.0.0.1:{target_server.port}")
        registry.transfer_blob(source, "src", target, "dst", asked, len(layer))
    assert caught.value.message.endswith(f"is longer than its {len(layer)} bytes")
