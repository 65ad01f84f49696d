"""Pure index building and merging (devnix.manifest): media types, duplicates, --amend, bytes."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devnix import manifest as core
from devnix import registry
from devnix.errors import RegistryError, UsageError
from devnix.manifest import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Entry
from devnix.platforms import Platform


def entry(
    arch: str,
    n: int = 0,
    media_type: str = DOCKER_MANIFEST,
    source: str = "src",
    variant: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Entry:
    platform: dict[str, Any] | None = {"architecture": arch, "os": "linux"}
    if variant and platform is not None:
        platform["variant"] = variant
    if arch == "unknown":
        platform = {"architecture": "unknown", "os": "unknown"}
    digest = "sha256:" + hashlib.sha256(f"{arch}{n}{variant}".encode()).hexdigest()
    return Entry(media_type, digest, 500 + n, platform, source, annotations or {})


def attestation(of: Entry) -> Entry:
    return entry("unknown", 9, OCI_MANIFEST, annotations={core.ATTESTATION_REFERENCE: of.digest})


def test_all_docker_v2_manifests_make_a_docker_manifest_list() -> None:
    assert core.choose_media_type([entry("amd64"), entry("arm64")]) == DOCKER_LIST


def test_one_oci_manifest_makes_an_oci_index() -> None:
    assert core.choose_media_type([entry("amd64"), entry("arm64", media_type=OCI_MANIFEST)]) == OCI_INDEX


def test_an_existing_oci_index_stays_oci_when_amended_with_docker_manifests() -> None:
    assert core.choose_media_type([entry("amd64")], existing_type=OCI_INDEX) == OCI_INDEX


def test_an_existing_docker_list_becomes_oci_when_an_oci_manifest_joins() -> None:
    children = [entry("amd64"), entry("arm64", media_type=OCI_MANIFEST)]
    assert core.choose_media_type(children, existing_type=DOCKER_LIST) == OCI_INDEX
    assert core.choose_media_type([entry("amd64")], existing_type=DOCKER_LIST) == DOCKER_LIST


# --- building ---------------------------------------------------------------------------------------


def test_build_index_writes_descriptors_in_order_and_digests_its_bytes() -> None:
    amd, arm = entry("amd64"), entry("arm64", variant="v8")
    index = core.build_index([amd, arm])

    assert index.media_type == DOCKER_LIST
    assert index.digest == "sha256:" + hashlib.sha256(index.body).hexdigest()
    assert index.size == len(index.body)
    assert json.loads(index.body) == {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": amd.digest,
                "size": amd.size,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": arm.digest,
                "size": arm.size,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
        ],
    }


def test_build_index_is_deterministic() -> None:
    children = [entry("amd64"), entry("arm64")]
    assert core.build_index(children).body == core.build_index(list(children)).body


def test_annotations_are_kept_on_oci_only() -> None:
    child = entry("amd64", media_type=OCI_MANIFEST, annotations={"org.example": "yes"})
    oci = core.build_index([child], annotations={"org.opencontainers.image.source": "x"}).json
    assert oci["annotations"] == {"org.opencontainers.image.source": "x"}
    assert oci["manifests"][0]["annotations"] == {"org.example": "yes"}

    docker = core.build_index([entry("amd64")], annotations={"ignored": "x"}).json
    assert "annotations" not in docker


def test_an_index_of_attestations_only_is_refused() -> None:
    with pytest.raises(UsageError, match="no runnable image"):
        core.build_index([attestation(entry("amd64"))])


# --- duplicates -------------------------------------------------------------------------------------


def test_two_sources_with_the_same_platform_are_refused_by_name() -> None:
    with pytest.raises(UsageError) as caught:
        core.check_unique([entry("amd64", source="a:1"), entry("amd64", 1, source="b:2")])
    assert caught.value.message == "a:1 and b:2 both give linux/amd64"


def test_arm64_and_arm64_v8_are_the_same_platform() -> None:
    with pytest.raises(UsageError, match=r"both give linux/arm64$"):
        core.check_unique([entry("arm64", source="a"), entry("arm64", 1, source="b", variant="v8")])


def test_arm_variants_are_different_platforms() -> None:
    v7, v6 = entry("arm", variant="v7"), entry("arm", 1, variant="v6")
    core.check_unique([v7, v6])  # raises on a duplicate
    assert [str(e.platform_key) for e in core.merge([], [v7, v6]).entries] == ["linux/arm/v7", "linux/arm/v6"]


def test_attestations_never_count_as_duplicates() -> None:
    amd, arm = entry("amd64"), entry("arm64")
    children = [amd, arm, attestation(amd), attestation(arm)]
    core.check_unique(children)  # raises on a duplicate
    assert core.build_index(children).media_type == OCI_INDEX  # attestations are OCI manifests


# --- merging (--amend) ------------------------------------------------------------------------------


def test_merge_replaces_the_same_platform_in_place_and_appends_new_ones() -> None:
    old_amd, old_arm = entry("amd64", source="old"), entry("arm64", source="old")
    new_arm, new_riscv = entry("arm64", 1, source="new"), entry("riscv64", source="new")

    merged = core.merge([old_amd, old_arm], [new_arm, new_riscv])

    assert merged.entries == (old_amd, new_arm, new_riscv)
    assert merged.replaced == ("linux/arm64",)
    assert merged.kept == ("linux/amd64",)


def test_merge_with_the_same_manifest_again_replaces_nothing() -> None:
    amd, arm = entry("amd64"), entry("arm64")
    merged = core.merge([amd, arm], [arm])
    assert merged.entries == (amd, arm)
    assert merged.replaced == ()


def test_merge_drops_the_attestation_of_a_replaced_image_and_keeps_the_others() -> None:
    amd, arm = entry("amd64"), entry("arm64")
    amd_att, arm_att = attestation(amd), attestation(arm)
    new_arm = entry("arm64", 1)

    merged = core.merge([amd, arm, amd_att, arm_att], [new_arm])

    assert merged.entries == (amd, new_arm, amd_att)


def test_merge_into_nothing_is_the_new_entries() -> None:
    new = [entry("amd64"), entry("arm64")]
    assert core.merge([], new).entries == tuple(new)


def test_merge_refuses_duplicate_new_platforms() -> None:
    with pytest.raises(UsageError):
        core.merge([entry("amd64")], [entry("arm64"), entry("arm64", 1)])


ARCHES = st.sampled_from(["amd64", "arm64", "riscv64", "ppc64le", "s390x"])


@given(
    old=st.lists(st.tuples(ARCHES, st.integers(0, 3)), unique_by=lambda t: t[0], max_size=5),
    new=st.lists(st.tuples(ARCHES, st.integers(0, 3)), unique_by=lambda t: t[0], min_size=1, max_size=5),
)
def test_merge_gives_each_platform_once_and_new_entries_win(
    old: list[tuple[str, int]], new: list[tuple[str, int]]
) -> None:
    old_entries = [entry(arch, n, source="old") for arch, n in old]
    new_entries = [entry(arch, n + 10, source="new") for arch, n in new]

    merged = core.merge(old_entries, new_entries)

    platforms = [e.platform_key for e in merged.entries]
    assert len(platforms) == len(set(platforms))
    assert set(platforms) == {Platform("linux", a) for a, _ in old + new}
    assert all(e in merged.entries for e in new_entries)
    kept = [e for e in merged.entries if e.source == "old"]
    assert [e.platform_key for e in kept] == [
        e.platform_key for e in old_entries if e.platform_key not in {n.platform_key for n in new_entries}
    ]


# --- reading ----------------------------------------------------------------------------------------


def test_entries_of_index_reads_descriptors_and_annotations() -> None:
    amd = entry("amd64", media_type=OCI_MANIFEST)
    att = attestation(amd)
    index = core.build_index([amd, att]).json

    read = core.entries_of_index(index, "reg/x:multi")

    assert [e.digest for e in read] == [amd.digest, att.digest]
    assert read[1].attests == amd.digest
    assert read[1].platform_key is None
    assert read[1].platform_text == "attestation"
    assert read[0].source == "reg/x:multi"


def test_entries_of_index_refuses_a_descriptor_without_a_size() -> None:
    with pytest.raises(RegistryError, match="without mediaType, digest and size"):
        core.entries_of_index({"manifests": [{"mediaType": DOCKER_MANIFEST, "digest": "sha256:ab"}]}, "x")


def test_platform_from_config_keeps_variant_and_os_version() -> None:
    config = {"architecture": "arm", "os": "linux", "variant": "v7", "os.version": "", "rootfs": {}}
    assert core.platform_from_config(config) == {"architecture": "arm", "os": "linux", "variant": "v7"}


def test_platform_from_config_without_architecture_is_refused() -> None:
    with pytest.raises(UsageError, match="no os/architecture"):
        core.platform_from_config({"os": "linux"})


def test_summarize_manifest_lists_config_then_layers() -> None:
    summary = core.summarize_manifest(
        {
            "config": {"digest": "sha256:c", "size": 10},
            "layers": [{"digest": "sha256:l1", "size": 100}, {"digest": "sha256:l2", "size": 200}],
        },
        "x",
    )
    assert summary.blobs == (("sha256:c", 10), ("sha256:l1", 100), ("sha256:l2", 200))
    assert summary.layers_size == 300


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (999, "999 B"), (1500, "1.5 KB"), (250_000_000, "250.0 MB"), (3 * 10**12, "3000.0 GB")],
)
def test_human_size(size: int, text: str) -> None:
    assert core.human_size(size) == text


# --- the command's client choice ----------------------------------------------------------------------


def test_insecure_means_plain_http_and_loopback_is_plain_http_anyway() -> None:
    from devnix.commands.manifest import _Clients
    from devnix.images import parse_ref

    secure, insecure = _Clients(insecure=False, timeout=1), _Clients(insecure=True, timeout=1)
    assert secure.get(parse_ref("registry.example:5000/a:b")).scheme == "https"
    assert secure.get(parse_ref("localhost:5000/a:b")).scheme == "http"
    assert insecure.get(parse_ref("registry.example:5000/a:b")).scheme == "http"
    # One client per registry, so tokens and the connection are shared by all its repositories.
    assert secure.get(parse_ref("localhost:5000/c:d")) is secure.get(parse_ref("localhost:5000/a:b"))


# --- the registry client's write calls against a scripted Bearer-token registry -----------------------


class _TokenRegistry:
    """A tiny HTTP server that acts as a registry behind a token service (as Docker Hub and ghcr.io do).

    docker-registry's own token mode needs a signing CA and a token server; what matters here is the
    exchange itself: the challenge, the token request's scopes and Basic credentials, the retried call.
    """

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        self.token_requests: list[dict[str, list[str]]] = []
        self.token_auth: list[str | None] = []
        self.calls: list[tuple[str, str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if parts.path == "/token":
                    query = parse_qs(parts.query)
                    owner.token_requests.append(query)
                    owner.token_auth.append(self.headers.get("Authorization"))
                    token = base64.urlsafe_b64encode(" ".join(query.get("scope", [])).encode()).decode()
                    self._answer(200, json.dumps({"token": token}).encode())
                    return
                auth = self.headers.get("Authorization")
                owner.calls.append((self.command, self.path, auth))
                if not auth or not auth.startswith("Bearer "):
                    realm = f"http://{self.headers['Host']}/token"
                    challenge = f'Bearer realm="{realm}",service="scripted"'
                    self._answer(401, b"{}", {"WWW-Authenticate": challenge})
                    return
                granted = base64.urlsafe_b64decode(auth.split(" ", 1)[1]).decode().split()
                if self.command == "POST" and "mount=" in parts.query:
                    source = parse_qs(parts.query)["from"][0]
                    ok = f"repository:{source}:pull" in granted
                    self._answer(201 if ok else 202, b"", {"Location": "/v2/t/blobs/uploads/u1"})
                    return
                if self.command == "PUT" and "/manifests/" in parts.path:
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                    self._answer(201, b"", {"Docker-Content-Digest": digest})
                    return
                self._answer(404, b'{"errors":[{"code":"NOT_FOUND","message":"nothing here"}]}')

            do_GET = do_POST = do_PUT = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_registry() -> Any:
    server = _TokenRegistry()
    yield server
    server.close()


def test_a_mount_asks_the_token_service_for_both_repositories(token_registry: Any) -> None:
    client = registry.Client(token_registry.host, credentials=registry.Credentials("me", "s3cret"))
    try:
        assert client.mount_blob("t", "sha256:" + "a" * 64, "src") is None  # 201: mounted
        digest = client.put_manifest("t", "v1", b"{}", DOCKER_LIST)
    finally:
        client.close()

    assert digest == "sha256:" + hashlib.sha256(b"{}").hexdigest()
    assert token_registry.token_requests[0]["scope"] == ["repository:t:pull,push", "repository:src:pull"]
    assert token_registry.token_requests[0]["service"] == ["scripted"]
    # Credentials go to the token service only, as Basic; the registry itself sees only tokens.
    assert token_registry.token_auth[0] == "Basic " + base64.b64encode(b"me:s3cret").decode()
    assert all(auth is None or auth.startswith("Bearer ") for _, _, auth in token_registry.calls)
    assert [(method, path.split("?")[0]) for method, path, auth in token_registry.calls if auth] == [
        ("POST", "/v2/t/blobs/uploads/"),
        ("PUT", "/v2/t/manifests/v1"),
    ]
