"""Pure publishing logic (devnix.publish): semver tags, the reproducible layer, metadata checks, manifests."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from devnix import publish as core
from devnix import registry
from devnix.cli import app
from devnix.errors import UsageError

runner = CliRunner()


def write_feature(root: Path, item_id: str = "hello", version: str = "1.0.0", **extra: Any) -> Path:
    folder = root / item_id
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"id": item_id, "version": version, "name": "Hello", **extra}
    (folder / "devcontainer-feature.json").write_text(json.dumps(metadata))
    (folder / "install.sh").write_text('#!/bin/sh\necho "$GREETING" > /usr/local/share/hello.txt\n')
    (folder / "install.sh").chmod(0o755)
    return folder


def write_template(
    root: Path, item_id: str = "web", config: dict[str, Any] | None = None, **extra: Any
) -> Path:
    folder = root / item_id
    (folder / ".devcontainer").mkdir(parents=True, exist_ok=True)
    metadata = {"id": item_id, "version": "0.1.0", "name": "Web", **extra}
    (folder / "devcontainer-template.json").write_text(json.dumps(metadata))
    config = config if config is not None else {"image": "${templateOption:image}"}
    (folder / ".devcontainer" / "devcontainer.json").write_text(json.dumps(config))
    return folder


def members(layer: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return tar.getmembers()


def member_data(layer: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


# --- versions and tags ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("1.2.3", True),
        ("0.0.0", True),
        ("10.20.30-rc.1+build.5", True),
        ("1.0.0-alpha-a.b-c", True),
        ("1.2", False),
        ("v1.2.3", False),
        ("01.2.3", False),
        ("1.2.3-01", False),
        ("1.2.3 ", False),
        ("1.2.3-", False),
        ("\u0661.2.3", False),  # an Arabic-Indic one: \d would take it, semver does not
    ],
)
def test_parse_version(text: str, valid: bool) -> None:
    version = core.parse_version(text)
    assert (version is not None) == valid
    if version is not None:
        assert str(version) == text


def test_precedence_follows_semver_org() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    versions = [core.parse_version(text) for text in ordered]
    assert all(v is not None for v in versions)
    assert [str(v) for v in sorted(versions, key=lambda v: v.precedence if v else ())] == ordered
    first, second = core.parse_version("1.0.0+a"), core.parse_version("1.0.0+b")
    assert first is not None and second is not None
    assert not first < second and not second < first  # build metadata has no precedence


@pytest.mark.parametrize(
    ("version", "published", "write", "kept"),
    [
        ("1.2.3", [], ["1", "1.2", "1.2.3", "latest"], []),
        ("1.2.3", ["1.2.2", "1", "1.2", "latest"], ["1", "1.2", "1.2.3", "latest"], []),
        # A maintenance release of an older line moves only its own range's tags.
        ("1.2.3", ["2.0.0", "2", "2.0", "latest", "1.3.0", "1.3", "1"], ["1.2", "1.2.3"], ["1", "latest"]),
        ("1.0.5", ["1.1.0", "1", "1.1", "latest"], ["1.0", "1.0.5"], ["1", "latest"]),
        # Published prereleases are outside every range, as in node-semver.
        ("1.0.0", ["1.1.0-rc.1"], ["1", "1.0", "1.0.0", "latest"], []),
        # A forced re-publish of the highest version re-points its floating tags.
        ("1.2.3", ["1.2.3", "1.2.2", "1", "1.2", "latest"], ["1", "1.2", "1.2.3", "latest"], []),
        # A leading v is a version for node-semver, hence for the reference CLI and devnix.
        ("1.0.0", ["v1.1.0"], ["1.0", "1.0.0"], ["1", "latest"]),
        # A prerelease never moves a floating tag.
        ("2.0.0-beta.1", ["1.0.0"], ["2.0.0-beta.1"], ["2", "2.0", "latest"]),
    ],
)
def test_semantic_tags(version: str, published: list[str], write: list[str], kept: list[str]) -> None:
    parsed = core.parse_version(version)
    assert parsed is not None
    assert core.semantic_tags(parsed, published) == (write, kept)


stable_versions = st.builds(
    lambda a, b, c: f"{a}.{b}.{c}", st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)
)


@given(st.lists(stable_versions, max_size=8), stable_versions)
def test_floating_tags_follow_the_highest_of_their_range(published: list[str], new: str) -> None:
    version = core.parse_version(new)
    assert version is not None
    others = [v for v in (core.parse_version(t) for t in published) if v is not None and str(v) != new]
    write, kept = core.semantic_tags(version, published)
    assert sorted(write + kept) == sorted(
        [str(version.major), f"{version.major}.{version.minor}", new, "latest"]
    )
    assert ("latest" in write) == all(version > v for v in others)
    same_major = [v for v in others if v.major == version.major]
    assert (str(version.major) in write) == all(version > v for v in same_major)


def test_decide() -> None:
    version = core.parse_version("1.2.0")
    assert version is not None
    fresh = core.decide(version, "sha256:new", [], None, force=False)
    assert (fresh.action, fresh.tags) == ("push", ("1.2.0", "1", "1.2", "latest"))  # exact tag first

    same = core.decide(version, "sha256:a", ["1.2.0"], "sha256:a", force=False)
    assert same.action == "unchanged"
    assert core.decide(version, "sha256:a", ["1.2.0"], "sha256:a", force=True).action == "unchanged"

    changed = core.decide(version, "sha256:b", ["1.2.0"], "sha256:a", force=False)
    assert changed.refused and changed.action == "changed" and changed.replaces == "sha256:a"
    forced = core.decide(version, "sha256:b", ["1.2.0"], "sha256:a", force=True)
    assert (forced.action, forced.forced, forced.tags) == ("push", True, ("1.2.0", "1", "1.2", "latest"))

    lower = core.decide(version, "sha256:b", ["1.3.0", "1", "latest"], None, force=False)
    assert lower.refused and str(lower.highest) == "1.3.0"
    forced_lower = core.decide(version, "sha256:b", ["1.3.0", "1", "latest"], None, force=True)
    assert (forced_lower.action, forced_lower.tags, forced_lower.kept) == (
        "push",
        ("1.2.0", "1.2"),
        ("1", "latest"),
    )


# --- the layer -------------------------------------------------------------------------------------


def test_layer_is_reproducible(tmp_path: Path) -> None:
    folder = write_feature(tmp_path / "a")
    (folder / "lib").mkdir()
    (folder / "lib" / "util.sh").write_text("util\n")
    first = core.read_item(folder, "feature")

    # The same content under other mtimes and permission bits beyond the executable one.
    os.utime(folder / "install.sh", (1_700_000_000, 1_700_000_000))
    (folder / "devcontainer-feature.json").chmod(0o600)
    (folder / "install.sh").chmod(0o700)
    second = core.read_item(folder, "feature")
    assert second.layer == first.layer

    (folder / "install.sh").chmod(0o644)
    assert core.read_item(folder, "feature").layer_digest != first.layer_digest
    (folder / "install.sh").chmod(0o755)
    (folder / "lib" / "util.sh").write_text("util 2\n")
    assert core.read_item(folder, "feature").layer_digest != first.layer_digest


def test_layer_entries(tmp_path: Path) -> None:
    folder = write_feature(tmp_path)
    (folder / "b").mkdir()
    (folder / "b" / "z.txt").write_text("z")
    (folder / "a.txt").write_text("a")
    (folder / "link").symlink_to("install.sh")
    item = core.read_item(folder, "feature")
    infos = members(item.layer)
    # ./-prefixed like node-tar's: the reference CLI looks for exactly ./devcontainer-feature.json.
    assert [i.name for i in infos] == [
        ".",
        "./a.txt",
        "./b",
        "./b/z.txt",
        "./devcontainer-feature.json",
        "./install.sh",
        "./link",
    ]
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname) for i in infos} == {(0, 0, 0, "", "")}
    modes = {i.name: i.mode for i in infos}
    assert (modes["./install.sh"], modes["./a.txt"], modes["./b"]) == (0o755, 0o644, 0o755)
    assert infos[-1].issym() and infos[-1].linkname == "install.sh"
    assert len(item.layer) % 512 == 0 and len(item.layer) < 10240  # no 10 KiB record padding
    assert member_data(item.layer, "./b/z.txt") == b"z"


# --- metadata ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"version": "1.0.0"}, 'has no "id"'),
        ({"id": "Hello", "version": "1.0.0"}, "cannot be a registry path component"),
        ({"id": "other", "version": "1.0.0"}, "differs from its folder's name 'hello'"),
        ({"id": "hello"}, 'has no "version"'),
        ({"id": "hello", "version": "1.0"}, "'1.0' is not a semantic version"),
        ({"id": "hello", "version": "v1.0.0"}, "is not a semantic version"),
        ({"id": "hello", "version": 1}, 'has no "version"'),
        ({"id": "hello", "version": "1.0.0+git.abc"}, "has build metadata"),
        ({"id": "hello", "version": "1.0.0", "legacyIds": ["Old"]}, "legacyIds must be a list of ids"),
    ],
)
def test_metadata_errors(tmp_path: Path, metadata: dict[str, Any], message: str) -> None:
    folder = write_feature(tmp_path)
    (folder / "devcontainer-feature.json").write_text(json.dumps(metadata))
    with pytest.raises(UsageError) as caught:
        core.read_item(folder, "feature")
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_metadata_syntax_error_is_located(tmp_path: Path) -> None:
    folder = write_feature(tmp_path)
    (folder / "devcontainer-feature.json").write_text('{\n  "id": "hello",\n  "version": }\n')
    with pytest.raises(UsageError) as caught:
        core.read_item(folder, "feature")
    assert "hello/devcontainer-feature.json" in caught.value.message and ":3:" in caught.value.message
    (folder / "devcontainer-feature.json").write_text("[1]")
    with pytest.raises(UsageError, match="not a JSON object"):
        core.read_item(folder, "feature")


def test_jsonc_metadata_is_read_and_shipped_as_written(tmp_path: Path) -> None:
    folder = write_feature(tmp_path)
    text = '{\n  // the id\n  "id": "hello",\n  "version": "1.0.0",\n}\n'
    (folder / "devcontainer-feature.json").write_text(text)
    item = core.read_item(folder, "feature")
    assert item.metadata == {"id": "hello", "version": "1.0.0"}
    assert member_data(item.layer, "./devcontainer-feature.json") == text.encode()


def test_feature_needs_install_sh(tmp_path: Path) -> None:
    folder = write_feature(tmp_path)
    (folder / "install.sh").unlink()
    with pytest.raises(UsageError, match=r"has no install\.sh"):
        core.read_item(folder, "feature")


def test_legacy_ids_add_current_id(tmp_path: Path) -> None:
    folder = write_feature(tmp_path, legacyIds=["hi"])
    item = core.read_item(folder, "feature")
    assert item.legacy_ids == ("hi",)
    assert item.metadata["currentId"] == "hello"
    assert json.loads(member_data(item.layer, "./devcontainer-feature.json")) == item.metadata


def test_template_metadata_is_enriched(tmp_path: Path) -> None:
    config = {
        "image": "${templateOption:image}",
        "features": {
            "ghcr.io/devcontainers/features/common-utils:2": {},
            "GHCR.io/Owner/Features/Nix@sha256:" + "a" * 64: {},
            "./local-feature": {},
            "node": {},
        },
    }
    folder = write_template(tmp_path, config=config, optionalPaths=[".github/*", "docs/*"])
    (folder / ".github").mkdir()
    (folder / ".github" / "ci.yml").write_text("on: push\n")
    (folder / "docs").mkdir()
    (folder / "docs" / "a.md").write_text("a")
    (folder / "docs" / "b.md").write_text("b")
    item = core.read_item(folder, "template")
    meta = item.metadata
    assert meta["type"] == "image"
    assert meta["files"] == [
        ".devcontainer/devcontainer.json",
        ".github/ci.yml",
        "devcontainer-template.json",
        "docs/a.md",
        "docs/b.md",
    ]
    assert meta["fileCount"] == 5
    assert meta["featureIds"] == ["ghcr.io/devcontainers/features/common-utils", "ghcr.io/owner/features/nix"]
    assert meta["optionalPaths"] == [".github/ci.yml", "docs/*"]  # a lone file is named, a folder kept
    # The archive carries the metadata as published, as the reference CLI's packaging writes it.
    assert member_data(item.layer, "./devcontainer-template.json") == json.dumps(meta, indent=4).encode()


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        ({"build": {"dockerfile": "Dockerfile"}}, "dockerfile"),
        ({"dockerFile": "Dockerfile"}, "dockerfile"),
        ({"dockerComposeFile": "compose.yml", "service": "app"}, "dockerCompose"),
    ],
)
def test_template_type(tmp_path: Path, config: dict[str, Any], kind: str) -> None:
    assert core.read_item(write_template(tmp_path, config=config), "template").metadata["type"] == kind


def test_template_errors(tmp_path: Path) -> None:
    folder = write_template(tmp_path, config={"name": "no container"})
    with pytest.raises(UsageError, match=r"none of image, build\.dockerfile, dockerComposeFile"):
        core.read_item(folder, "template")
    (folder / ".devcontainer" / "devcontainer.json").unlink()
    with pytest.raises(UsageError, match=r"no \.devcontainer/devcontainer\.json"):
        core.read_item(folder, "template")


# --- collections ---------------------------------------------------------------------------------------


def test_scan_collection_layouts(tmp_path: Path) -> None:
    src = tmp_path / "features" / "src"
    write_feature(src, "b-feature")
    write_feature(src, "a-feature")
    (src / "notes").mkdir()  # no metadata: skipped, as the reference CLI skips it
    (src / ".hidden").mkdir()
    (src / "README.md").write_text("readme")
    collection = core.scan_collection(src, "feature")
    assert [i.id for i in collection.items] == ["a-feature", "b-feature"]
    assert collection.skipped == ("notes",)
    # The collection's root (with src/ and test/) and a single Feature's folder work too.
    assert core.scan_collection(tmp_path / "features", "feature").source == src
    single = core.scan_collection(src / "a-feature", "feature")
    assert [i.id for i in single.items] == ["a-feature"]
    with pytest.raises(UsageError, match="no templates in"):
        core.scan_collection(src, "template")
    with pytest.raises(UsageError, match="is not a folder"):
        core.scan_collection(tmp_path / "missing", "feature")


def test_manifest_and_collection_artifacts(tmp_path: Path) -> None:
    write_feature(tmp_path, "hello", options={"greeting": {"type": "string", "default": "héllo"}})
    collection = core.scan_collection(tmp_path, "feature")
    item = collection.items[0]
    artifact = core.item_artifact(item, "localhost:5000")
    manifest = json.loads(artifact.manifest)
    assert list(manifest) == ["schemaVersion", "mediaType", "config", "layers", "annotations"]
    assert manifest["mediaType"] == core.OCI_MANIFEST
    assert manifest["config"] == {
        "mediaType": "application/vnd.devcontainers",
        "digest": core.sha256_digest(b"{}"),
        "size": 2,
    }
    assert manifest["layers"] == [
        {
            "mediaType": "application/vnd.devcontainers.layer.v1+tar",
            "digest": item.layer_digest,
            "size": len(item.layer),
            "annotations": {"org.opencontainers.image.title": "devcontainer-feature-hello.tgz"},
        }
    ]
    assert list(manifest["annotations"]) == ["dev.containers.metadata"]
    assert json.loads(manifest["annotations"]["dev.containers.metadata"]) == item.metadata
    # JSON.stringify's spelling: compact, non-ASCII as is (the digest is of these exact bytes).
    assert b", " not in artifact.manifest and "héllo".encode() in artifact.manifest
    assert artifact.digest == core.sha256_digest(artifact.manifest)
    assert [digest for digest, _ in artifact.blobs] == [core.EMPTY_CONFIG_DIGEST, item.layer_digest]

    ghcr = json.loads(core.item_artifact(item, "ghcr.io").manifest)
    assert ghcr["annotations"]["com.github.package.type"] == "devcontainer_feature"

    meta = core.collection_artifact(collection, "localhost:5000")
    meta_manifest = json.loads(meta.manifest)
    assert "annotations" not in meta_manifest
    assert meta_manifest["layers"][0]["mediaType"] == "application/vnd.devcontainers.collection.layer.v1+json"
    assert meta_manifest["layers"][0]["annotations"] == {
        "org.opencontainers.image.title": "devcontainer-collection.json"
    }
    document = json.loads(meta.blobs[1][1])
    assert document == {"sourceInformation": {"source": "devnix"}, "features": [item.metadata]}


def test_same_source_same_digest(tmp_path: Path) -> None:
    """What makes a second publish a no-op: two checkouts of one source give one manifest digest."""
    one, two = write_feature(tmp_path / "one"), write_feature(tmp_path / "two")
    os.utime(two / "install.sh", (1_000_000, 1_000_000))
    first = core.item_artifact(core.read_item(one, "feature"), "ghcr.io")
    second = core.item_artifact(core.read_item(two, "feature"), "ghcr.io")
    assert first.digest == second.digest


def test_registry_next_page() -> None:
    link = '</v2/ns/hello/tags/list?last=1.0&n=2>; rel="next"'
    assert registry._next_page(link) == "/v2/ns/hello/tags/list?last=1.0&n=2"
    assert registry._next_page(None) is None
    assert registry._next_page('<https://r.example/v2/x/tags/list?n=1>; rel="prev"') is None


# --- the command line (nothing here reaches a registry) -------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["widgets", "SRC", "--namespace", "ns"], "unknown kind 'widgets'"),
        (["features", "SRC", "--namespace", "ns", "--registry", "https://ghcr.io"], "malformed registry"),
        (["features", "SRC", "--namespace", "Owner/Repo"], "malformed namespace 'Owner/Repo'"),
        (["features", "SRC", "--namespace", "ns"], "is not a folder"),
    ],
)
def test_cli_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(tmp_path / "nothing") if a == "SRC" else a for a in args]
    result = runner.invoke(app, ["publish", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.startswith("devnix: error: ")
    assert isinstance(result.exception, SystemExit)  # handled: an exit code, not an uncaught error


def test_cli_metadata_error_is_one_line(tmp_path: Path) -> None:
    write_feature(tmp_path, version="1.0")
    result = runner.invoke(app, ["publish", "features", str(tmp_path), "--namespace", "ns"])
    assert result.exit_code == 2
    first, *rest = result.stderr.splitlines()
    assert first == "devnix: error: hello/devcontainer-feature.json: version '1.0' is not a semantic version"
    assert [line.split(":")[0] for line in rest] == ["hint"]


# --- the whole command against a scripted registry behind a token service ---------------------------


class _OciRegistry:
    """An in-memory OCI registry behind a Bearer token service, as ghcr.io and Docker Hub are.

    docker-registry's token mode needs a signing CA and a token server, so the real-registry tests use
    htpasswd; this one checks the rest: the token exchange (credentials go to the token service only),
    push vs pull scopes, tag-list pagination (two tags a page), and upload locations with a query.
    """

    def __init__(self) -> None:
        import re
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.token_auth: list[str | None] = []
        self.calls: list[tuple[str, str, str | None]] = []
        owner = self
        route = re.compile(
            r"^/v2/(?P<repo>.+?)/(?P<what>tags/list|manifests/[^/]+|blobs/uploads/[^/]*|blobs/[^/]+)$"
        )

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if parts.path == "/token":
                    owner.token_auth.append(self.headers.get("Authorization"))
                    token = base64.urlsafe_b64encode(" ".join(query.get("scope", [])).encode()).decode()
                    self._answer(200, json.dumps({"token": token}).encode())
                    return
                auth = self.headers.get("Authorization")
                owner.calls.append((self.command, self.path, auth))
                match = route.match(parts.path)
                assert match, self.path
                repo, what = match["repo"], match["what"]
                granted = ""
                if auth and auth.startswith("Bearer "):
                    granted = base64.urlsafe_b64decode(auth.split(" ", 1)[1]).decode()
                action = "pull" if self.command in ("GET", "HEAD") else "push"
                scope = f"repository:{repo}:{'pull,push' if action == 'push' else 'pull'}"
                if f"repository:{repo}:" not in granted or (action == "push" and "push" not in granted):
                    realm = f"http://{self.headers['Host']}/token"
                    challenge = f'Bearer realm="{realm}",service="scripted",scope="{scope}"'
                    self._answer(401, b"{}", {"WWW-Authenticate": challenge})
                    return
                if what == "tags/list":
                    tags = sorted(
                        tag for (r, tag) in owner.manifests if r == repo and not tag.startswith("sha256:")
                    )
                    if not tags:
                        self._answer(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
                        return
                    last = query.get("last", [""])[0]
                    rest = [t for t in tags if t > last]
                    page, more = rest[:2], rest[2:]
                    headers = (
                        {"Link": f'</v2/{repo}/tags/list?n=2&last={page[-1]}>; rel="next"'} if more else {}
                    )
                    self._answer(200, json.dumps({"name": repo, "tags": page}).encode(), headers)
                elif what.startswith("manifests/"):
                    reference = what.split("/", 1)[1]
                    if self.command == "PUT":
                        digest = core.sha256_digest(body)
                        owner.manifests[(repo, reference)] = owner.manifests[(repo, digest)] = body
                        self._answer(201, b"", {"Docker-Content-Digest": digest})
                    elif (repo, reference) in owner.manifests:
                        stored = owner.manifests[(repo, reference)]
                        headers = {
                            "Content-Type": core.OCI_MANIFEST,
                            "Docker-Content-Digest": core.sha256_digest(stored),
                        }
                        self._answer(200, stored, headers)
                    else:
                        self._answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                elif what.startswith("blobs/uploads/"):
                    if self.command == "POST":
                        self._answer(202, b"", {"Location": f"/v2/{repo}/blobs/uploads/u1?state=opaque"})
                    else:
                        assert query["state"] == ["opaque"]  # the session's own query is kept
                        digest = query["digest"][0]
                        assert core.sha256_digest(body) == digest
                        owner.blobs[digest] = body
                        self._answer(201)
                else:
                    blob = owner.blobs.get(what.split("/", 1)[1])
                    if blob is None:
                        self._answer(404)
                    else:
                        self._answer(200, blob if self.command == "GET" else b"")

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
    server = _OciRegistry()
    yield server
    server.close()


def test_publish_through_a_token_service(token_registry: Any, tmp_path: Path) -> None:
    secret = "s3cret-" + os.urandom(6).hex()
    basic = base64.b64encode(f"me:{secret}".encode()).decode()
    (Path(os.environ["DOCKER_CONFIG"]) / "config.json").write_text(
        json.dumps({"auths": {token_registry.host: {"auth": basic}}})
    )
    write_feature(tmp_path / "src", "hello", "1.0.0")
    args = [
        "publish",
        "features",
        str(tmp_path / "src"),
        "--registry",
        token_registry.host,
        "--namespace",
        "o/f",
    ]
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["features"][0]["tags"] == ["1.0.0", "1", "1.0", "latest"]
    # Credentials go to the token service only, as Basic; the registry itself sees only tokens.
    assert set(token_registry.token_auth) == {f"Basic {basic}"}
    assert all(auth is None or auth.startswith("Bearer ") for _, _, auth in token_registry.calls)
    assert {tag for (repo, tag) in token_registry.manifests if repo == "o/f/hello" and "sha" not in tag} == {
        "1",
        "1.0",
        "1.0.0",
        "latest",
    }
    assert secret not in first.output

    # 1.0.0 is on the tag list's second page: only a followed Link header finds it, and with it the no-op.
    token_registry.calls.clear()
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "hello 1.0.0: unchanged" in second.stdout
    assert {method for method, _, _ in token_registry.calls} == {"GET"}
    assert any("last=1.0" in path for _, path, _ in token_registry.calls)

    write_feature(tmp_path / "old", "hello", "0.9.0")
    lower = runner.invoke(app, ["publish", "features", str(tmp_path / "old"), *args[3:]])
    assert lower.exit_code == 3
    assert "hello 0.9.0 is lower than the published 1.0.0" in lower.stderr


def test_collection_kind_reads_the_published_collection_json() -> None:
    def published(document: object) -> tuple[dict[str, Any], dict[str, bytes]]:
        data = json.dumps(document).encode()
        digest = core.sha256_digest(data)
        layer = {"mediaType": core.COLLECTION_MEDIA_TYPE, "digest": digest, "size": len(data)}
        return {"layers": [layer]}, {digest: data}

    for document, kind in (
        ({"sourceInformation": {}, "features": []}, "feature"),
        ({"templates": [{"id": "nix"}]}, "template"),
        ({"something": []}, None),
        ([1, 2], None),
    ):
        manifest, blobs = published(document)
        assert core.collection_kind(manifest, blobs.__getitem__) == kind, document
    assert core.collection_kind({"layers": [{"mediaType": "other", "digest": "x"}]}, {}.__getitem__) is None
    assert core.collection_kind({"layers": "nope"}, {}.__getitem__) is None
