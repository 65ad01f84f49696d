"""``devnix publish`` against a real docker-registry, checked by the reference devcontainer CLI.

What devnix pushes must be what the reference CLI consumes (``devcontainer up`` installs a Feature from
it, ``devcontainer templates apply`` applies a Template from it) and look like what the reference CLI's
own ``features publish`` / ``templates publish`` push for the same source. The policy tests (no-op,
lower version, changed content, credentials) need only the registry and take milliseconds.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from standins import (
    BASE_ENV,
    REPO_ROOT,
    DevcontainerCLI,
    PushedImage,
    Registry,
    install_docker_shim,
    last_json_line,
    offline_feature_copy,
    publish_stub_common_utils,
)
from typer.testing import CliRunner

from devnix import publish as core
from devnix import transport
from devnix.cli import app

RegistryFactory = Callable[..., Registry]
runner = CliRunner()


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.stdout)
        assert isinstance(value, dict)
        return value


def devnix(*args: str) -> Run:
    result = runner.invoke(app, ["publish", *args])
    return Run(result.exit_code, result.stdout, result.stderr)


def namespace(prefix: str) -> str:
    """A namespace of its own per test: the session registry is shared."""
    return f"devnix-publish/{prefix}-{secrets.token_hex(3)}"


def feature_collection(root: Path, version: str = "1.0.0", greeting: str = "hi") -> Path:
    src = root / "src"
    folder = src / "hello"
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {
        "id": "hello",
        "version": version,
        "name": "Hello",
        "description": "Writes a greeting to /usr/local/share/hello.txt",
        "options": {"greeting": {"type": "string", "default": greeting, "description": "What to write"}},
    }
    (folder / "devcontainer-feature.json").write_text(json.dumps(metadata, indent=4))
    (folder / "install.sh").write_text(
        "#!/bin/sh\nset -e\nmkdir -p /usr/local/share\n"
        'printf "%s\\n" "$GREETING" > /usr/local/share/hello.txt\n'
    )
    (folder / "install.sh").chmod(0o755)
    (folder / "NOTES.md").write_text("A Feature that says hello.\n")
    return src


def template_collection(root: Path) -> Path:
    src = root / "src"
    folder = src / "greet"
    (folder / ".devcontainer").mkdir(parents=True, exist_ok=True)
    metadata = {
        "id": "greet",
        "version": "1.2.0",
        "name": "Greet",
        "description": "A container that greets",
        "options": {
            "image": {"type": "string", "default": "debian:bookworm", "description": "Base image"},
            "message": {"type": "string", "default": "hello", "description": "The greeting"},
        },
        "optionalPaths": ["extras/*"],
    }
    (folder / "devcontainer-template.json").write_text(json.dumps(metadata, indent=4))
    config = {"name": "Greet ${templateOption:message}", "image": "${templateOption:image}"}
    (folder / ".devcontainer" / "devcontainer.json").write_text(json.dumps(config, indent=4))
    (folder / "GREETING.txt").write_text("${templateOption:message}\n")
    (folder / "extras").mkdir()
    (folder / "extras" / "more.txt").write_text("more\n")
    return src


def tags_of(reg: Registry, repository: str) -> set[str]:
    response = reg.request("GET", f"/v2/{repository}/tags/list")
    assert response.status == 200, response.body
    return set(response.json()["tags"])


def manifest_of(reg: Registry, repository: str, tag: str) -> tuple[bytes, dict[str, Any], str]:
    response = reg.get_manifest(repository, tag)
    assert response.status == 200, response.body
    return response.body, json.loads(response.body), response.headers["Docker-Content-Digest"]


def layer_files(
    reg: Registry, repository: str, manifest: dict[str, Any]
) -> dict[str, tuple[str, int, bytes]]:
    """The layer's entries: name -> (type, mode, content)."""
    layer = reg.get_blob(repository, manifest["layers"][0]["digest"])
    found = {}
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info) if info.isfile() else None
            kind = "file" if info.isfile() else "dir" if info.isdir() else "other"
            found[info.name] = (kind, info.mode & 0o111, handle.read() if handle else b"")
    return found


def normalized(metadata: dict[str, Any]) -> dict[str, Any]:
    """Template metadata with ``files`` sorted: the reference CLI lists them in readdir order."""
    copy = dict(metadata)
    if isinstance(copy.get("files"), list):
        copy["files"] = sorted(copy["files"])
    return copy


# ------------------------------------------------------------------------------------------------
# Consumed by the reference CLI


@pytest.fixture
def without_buildx(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for the CLI with the docker shim first on PATH (see standins.install_docker_shim)."""
    env, content_image = install_docker_shim(tmp_path / "docker-shim")
    yield env
    subprocess.run(["docker", "rmi", "-f", content_image], capture_output=True, check=False, env=BASE_ENV)


def test_feature_installs_with_the_reference_cli(
    registry: Registry,
    debian_image: PushedImage,
    devcontainer: DevcontainerCLI,
    without_buildx: dict[str, str],
    tmp_path: Path,
) -> None:
    ns = namespace("feature")
    run = devnix(
        "features", str(feature_collection(tmp_path / "src")), "--registry", registry.host, "--namespace", ns
    )
    assert run.exit_code == 0, run.stderr

    workspace = tmp_path / "ws"
    (workspace / ".devcontainer").mkdir(parents=True)
    config = {
        "image": debian_image.ref,
        "features": {f"{registry.host}/{ns}/hello:1": {"greeting": "bonjour"}},
    }
    (workspace / ".devcontainer" / "devcontainer.json").write_text(json.dumps(config))
    up = devcontainer.up(workspace, env=without_buildx)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert last_json_line(up.stdout)["outcome"] == "success"
    written = devcontainer.exec(workspace, "cat", "/usr/local/share/hello.txt")
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == "bonjour"


def test_the_nix_feature_published_by_devnix_gives_nix_after_up(
    registry: Registry,
    debian_image: PushedImage,
    devcontainer: DevcontainerCLI,
    devcontainer_cli: Path,
    without_buildx: dict[str, str],
    tmp_path: Path,
) -> None:
    # The acceptance: devnix publishes features/src/nix, and a devcontainer.json on a plain
    # Debian image with `"features": {"REG/NS/nix:1": {}}` has a working Nix after `devcontainer up`.
    stub = publish_stub_common_utils(devcontainer_cli, registry, tmp_path, {**BASE_ENV, **without_buildx})
    source = offline_feature_copy(REPO_ROOT / "features" / "src" / "nix", tmp_path / "src" / "nix", stub)
    ns = namespace("nix")
    run = devnix("features", str(source.parent), "--registry", registry.host, "--namespace", ns)
    assert run.exit_code == 0, run.stderr

    workspace = tmp_path / "ws"
    (workspace / ".devcontainer").mkdir(parents=True)
    config = {"image": debian_image.ref, "features": {f"{registry.host}/{ns}/nix:1": {}}}
    (workspace / ".devcontainer" / "devcontainer.json").write_text(json.dumps(config))
    up = devcontainer.up(workspace, env=without_buildx)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert last_json_line(up.stdout)["outcome"] == "success"
    checks = devcontainer.exec(
        workspace,
        "bash",
        "-lc",
        "nix --version && nix show-config | grep -E '^(experimental-features|filter-syscalls) =' "
        '&& echo "NIX_PATH=$NIX_PATH"',
    )
    assert checks.returncode == 0, checks.stdout + checks.stderr
    assert "nix (Nix)" in checks.stdout
    assert "filter-syscalls = true" in checks.stdout  # native here: the probe keeps the filter on
    assert "flakes" in checks.stdout
    assert "NIX_PATH=nixpkgs=channel:nixos-unstable" in checks.stdout


def test_template_applies_with_the_reference_cli(
    registry: Registry, debian_image: PushedImage, devcontainer: DevcontainerCLI, tmp_path: Path
) -> None:
    ns = namespace("template")
    run = devnix(
        "templates",
        str(template_collection(tmp_path / "src")),
        "--registry",
        registry.host,
        "--namespace",
        ns,
    )
    assert run.exit_code == 0, run.stderr

    workspace = tmp_path / "ws"
    workspace.mkdir()
    args = json.dumps({"image": debian_image.ref, "message": "salut"})
    applied = devcontainer.run(
        "templates",
        "apply",
        "--workspace-folder",
        str(workspace),
        "-t",
        f"{registry.host}/{ns}/greet:1",
        "-a",
        args,
        "--omit-paths",
        '["extras/*"]',
    )
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    config = json.loads((workspace / ".devcontainer" / "devcontainer.json").read_text())
    assert config == {"name": "Greet salut", "image": debian_image.ref}
    assert (workspace / "GREETING.txt").read_text() == "salut\n"
    assert not (workspace / "extras").exists()

    up = devcontainer.up(workspace)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    greeting = devcontainer.exec(workspace, "cat", "GREETING.txt")
    assert greeting.stdout.strip() == "salut", greeting.stderr


# ------------------------------------------------------------------------------------------------
# Compared with the reference CLI's own publish


@pytest.mark.parametrize("kind", ["feature", "template"])
def test_artifacts_match_the_reference_cli(
    registry: Registry, devcontainer: DevcontainerCLI, tmp_path: Path, kind: str
) -> None:
    make = feature_collection if kind == "feature" else template_collection
    src = make(tmp_path / "src")
    ours, theirs = namespace(f"devnix-{kind}"), namespace(f"reference-{kind}")
    reference = devcontainer.run(
        f"{kind}s", "publish", str(src), "--registry", registry.host, "--namespace", theirs
    )
    assert reference.returncode == 0, reference.stderr[-3000:]
    run = devnix(f"{kind}s", str(src), "--registry", registry.host, "--namespace", ours)
    assert run.exit_code == 0, run.stderr

    item_id = "hello" if kind == "feature" else "greet"
    mine_repo, ref_repo = f"{ours}/{item_id}", f"{theirs}/{item_id}"
    assert tags_of(registry, mine_repo) == tags_of(registry, ref_repo)
    version = "1.0.0" if kind == "feature" else "1.2.0"
    mine_bytes, mine, _ = manifest_of(registry, mine_repo, version)
    ref_bytes, ref, _ = manifest_of(registry, ref_repo, version)

    assert mine["mediaType"] == ref["mediaType"] == core.OCI_MANIFEST
    assert mine["config"] == ref["config"]  # the same two-byte {} config
    for key in ("mediaType", "annotations"):
        assert mine["layers"][0][key] == ref["layers"][0][key]
    assert set(mine["annotations"]) == set(ref["annotations"]) == {core.METADATA_ANNOTATION}
    mine_meta = json.loads(mine["annotations"][core.METADATA_ANNOTATION])
    ref_meta = json.loads(ref["annotations"][core.METADATA_ANNOTATION])
    assert normalized(mine_meta) == normalized(ref_meta)
    if kind == "feature":
        # Byte for byte the same manifest but for the layer (node-tar's headers differ from ours).
        swapped = dict(
            mine,
            layers=[
                dict(mine["layers"][0], digest=ref["layers"][0]["digest"], size=ref["layers"][0]["size"])
            ],
        )
        assert core.compact_json(swapped).encode() == ref_bytes
    assert mine_bytes != ref_bytes  # the layers differ (timestamps, owners), so the test is not vacuous

    # The archives hold the same files with the same content and executable bits.
    mine_files = layer_files(registry, mine_repo, mine)
    ref_files = layer_files(registry, ref_repo, ref)
    assert set(mine_files) == set(ref_files)
    for name, (entry_kind, executable, data) in ref_files.items():
        assert mine_files[name][:2] == (entry_kind, executable), name
        if name.endswith("devcontainer-template.json"):
            assert normalized(json.loads(mine_files[name][2])) == normalized(json.loads(data))
        else:
            assert mine_files[name][2] == data, name

    # The collection metadata at NS:latest: same shape, same items.
    _, mine_collection, _ = manifest_of(registry, ours, "latest")
    _, ref_collection, _ = manifest_of(registry, theirs, "latest")
    assert mine_collection["config"] == ref_collection["config"]
    assert [layer["mediaType"] for layer in mine_collection["layers"]] == [core.COLLECTION_MEDIA_TYPE]
    assert mine_collection["layers"][0]["annotations"] == ref_collection["layers"][0]["annotations"]
    mine_doc = json.loads(registry.get_blob(ours, mine_collection["layers"][0]["digest"]))
    ref_doc = json.loads(registry.get_blob(theirs, ref_collection["layers"][0]["digest"]))
    assert list(mine_doc) == list(ref_doc) == ["sourceInformation", f"{kind}s"]
    assert set(mine_doc["sourceInformation"]) == set(ref_doc["sourceInformation"]) == {"source"}
    assert [normalized(m) for m in mine_doc[f"{kind}s"]] == [normalized(m) for m in ref_doc[f"{kind}s"]]


# ------------------------------------------------------------------------------------------------
# Policy: no-op, lower versions, changed content


@pytest.fixture
def http_methods(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every HTTP method the registry client sends, to prove a no-op wrote nothing."""
    seen: list[str] = []
    exchange = transport.Transport._exchange

    def recording(self: transport.Transport, method: str, *args: Any) -> Any:
        seen.append(method)
        return exchange(self, method, *args)

    monkeypatch.setattr(transport.Transport, "_exchange", recording)
    yield seen


def test_second_publish_is_a_no_op(registry: Registry, tmp_path: Path, http_methods: list[str]) -> None:
    ns = namespace("noop")
    src = feature_collection(tmp_path / "a")
    first = devnix("features", str(src), "--registry", registry.host, "--namespace", ns, "--json")
    assert first.exit_code == 0, first.stderr
    assert first.json["features"][0]["action"] == "pushed"
    assert set(first.json["features"][0]["tags"]) == {"1", "1.0", "1.0.0", "latest"}
    _, _, digest = manifest_of(registry, f"{ns}/hello", "1.0.0")
    assert digest == first.json["features"][0]["digest"]

    # Another checkout of the same source (other mtimes): the same digest, so nothing to push.
    http_methods.clear()
    copy = feature_collection(tmp_path / "b")
    second = devnix("features", str(copy), "--registry", registry.host, "--namespace", ns)
    assert second.exit_code == 0, second.stderr
    assert (
        f"hello 1.0.0: unchanged at {registry.host}/{ns}/hello:1.0.0 ({digest}); nothing pushed"
        in second.stdout
    )
    assert "devcontainer-collection.json: unchanged" in second.stdout
    assert set(http_methods) == {"GET"}
    assert manifest_of(registry, f"{ns}/hello", "latest")[2] == digest


def test_lower_version_is_refused_unless_forced(registry: Registry, tmp_path: Path) -> None:
    ns = namespace("lower")
    repo = f"{ns}/hello"
    assert (
        devnix(
            "features",
            str(feature_collection(tmp_path / "v11", "1.1.0")),
            "--registry",
            registry.host,
            "--namespace",
            ns,
        ).exit_code
        == 0
    )
    _, _, v11 = manifest_of(registry, repo, "1.1.0")

    older = feature_collection(tmp_path / "v105", "1.0.5", greeting="old")
    refused = devnix("features", str(older), "--registry", registry.host, "--namespace", ns)
    assert refused.exit_code == 3
    assert refused.stderr.splitlines()[0] == (
        f"devnix: error: hello 1.0.5 is lower than the published 1.1.0 at {registry.host}/{repo}"
    )
    assert "--force" in refused.stderr
    assert tags_of(registry, repo) == {"1", "1.1", "1.1.0", "latest"}

    forced = devnix(
        "features", str(older), "--registry", registry.host, "--namespace", ns, "--force", "--json"
    )
    assert forced.exit_code == 0, forced.stderr
    item = forced.json["features"][0]
    assert (item["tags"], item["kept_tags"], item["forced"]) == (["1.0.5", "1.0"], ["1", "latest"], True)
    assert tags_of(registry, repo) == {"1", "1.0", "1.0.5", "1.1", "1.1.0", "latest"}
    for tag in ("1", "latest"):  # still the higher version
        assert manifest_of(registry, repo, tag)[2] == v11


def test_templates_over_a_features_collection_are_refused_unless_forced(
    registry: Registry, tmp_path: Path
) -> None:
    # One namespace for both kinds: the templates' collection would replace the features' at NS:latest.
    ns = namespace("kinds")
    target = ("--registry", registry.host, "--namespace", ns)
    assert devnix("features", str(feature_collection(tmp_path / "f")), *target).exit_code == 0
    _, _, features_latest = manifest_of(registry, ns, "latest")

    templates = str(template_collection(tmp_path / "t"))
    refused = devnix("templates", templates, *target)
    assert refused.exit_code == 3
    assert refused.stderr.splitlines() == [
        f"devnix: error: {registry.host}/{ns}:latest is a features collection; publishing templates there "
        "would replace it",
        f"hint: publish each kind in its own namespace (e.g. --namespace {ns}/templates), or pass --force",
    ]
    assert manifest_of(registry, ns, "latest")[2] == features_latest
    assert registry.request("GET", f"/v2/{ns}/greet/tags/list").status == 404  # nothing was pushed

    apart = devnix("templates", templates, *target[:3], f"{ns}/templates")
    assert apart.exit_code == 0, apart.stderr
    forced = devnix("templates", templates, *target, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert manifest_of(registry, ns, "latest")[2] != features_latest


def test_changed_content_at_a_published_version_is_refused(registry: Registry, tmp_path: Path) -> None:
    ns = namespace("changed")
    repo = f"{ns}/hello"
    assert (
        devnix(
            "features",
            str(feature_collection(tmp_path / "a")),
            "--registry",
            registry.host,
            "--namespace",
            ns,
        ).exit_code
        == 0
    )
    _, _, before = manifest_of(registry, repo, "1.0.0")

    changed = feature_collection(tmp_path / "b", greeting="changed")
    refused = devnix("features", str(changed), "--registry", registry.host, "--namespace", ns)
    assert refused.exit_code == 3
    assert f"{registry.host}/{repo}:1.0.0 already holds other content ({before})" in refused.stderr
    assert manifest_of(registry, repo, "1.0.0")[2] == before

    forced = devnix(
        "features", str(changed), "--registry", registry.host, "--namespace", ns, "--force", "--json"
    )
    assert forced.exit_code == 0, forced.stderr
    item = forced.json["features"][0]
    assert item["replaced"] == before
    for tag in ("1", "1.0", "1.0.0", "latest"):
        assert manifest_of(registry, repo, tag)[2] == item["digest"] != before


def test_dry_run_pushes_nothing(registry: Registry, tmp_path: Path, http_methods: list[str]) -> None:
    ns = namespace("dry")
    run = devnix(
        "features",
        str(feature_collection(tmp_path)),
        "--registry",
        registry.host,
        "--namespace",
        ns,
        "--dry-run",
        "--json",
    )
    assert run.exit_code == 0, run.stderr
    assert run.json["features"][0]["action"] == "would push"
    assert set(http_methods) == {"GET"}
    assert registry.request("GET", f"/v2/{ns}/hello/tags/list").status == 404


# ------------------------------------------------------------------------------------------------
# Credentials


def write_docker_config(config: dict[str, Any]) -> Path:
    import os

    path = Path(os.environ["DOCKER_CONFIG"]) / "config.json"  # the per-test folder of tests/conftest.py
    path.write_text(json.dumps(config))
    return path


def test_wrong_password_is_a_clean_error_without_the_secret(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    reg = registry_factory(auth=True)
    assert reg.username is not None and reg.password is not None
    wrong = "wrong-" + secrets.token_urlsafe(9)
    token = base64.b64encode(f"{reg.username}:{wrong}".encode()).decode()
    write_docker_config({"auths": {reg.host: {"auth": token}}})
    run = devnix(
        "features", str(feature_collection(tmp_path)), "--registry", reg.host, "--namespace", "team/x"
    )
    assert run.exit_code == 4
    assert run.stderr.startswith(
        f"devnix: error: registry {reg.host} refused the credentials from the Docker config"
    )
    assert f"docker login {reg.host}" in run.stderr
    for secret in (wrong, token, reg.password):
        assert secret not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr


def test_credential_helper_is_used(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = registry_factory(auth=True)
    helper_dir = tmp_path / "bin"
    helper_dir.mkdir()
    helper = helper_dir / "docker-credential-devnixtest"
    # Answers only for this registry, as `docker-credential-* get` does with the server on stdin.
    helper.write_text(
        "#!/bin/sh\nread server\n"
        f'[ "$server" = "{reg.host}" ] || exit 1\n'
        f"printf '%s' '{json.dumps({'Username': reg.username, 'Secret': reg.password})}'\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper_dir}:{__import__('os').environ['PATH']}")
    write_docker_config({"credHelpers": {reg.host: "devnixtest"}})
    run = devnix(
        "features",
        str(feature_collection(tmp_path / "src")),
        "--registry",
        reg.host,
        "--namespace",
        "team/x",
        "--json",
    )
    assert run.exit_code == 0, run.stderr
    assert run.json["features"][0]["action"] == "pushed"
    assert reg.password is not None and reg.password not in run.stdout + run.stderr
    assert tags_of(reg, "team/x/hello") == {"1", "1.0", "1.0.0", "latest"}
