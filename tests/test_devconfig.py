"""devnix.devconfig: one model of a devcontainer.json, shape-checked once, never an exception."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devnix import devconfig
from devnix.devconfig import Args, Mount
from devnix.images import parse_ref
from devnix.platforms import Platform
from tests.support import examples

AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64")


def notes(value: Any) -> list[str]:
    return [note.message for note in devconfig.read(value).notes]


def test_an_image_config() -> None:
    config = devconfig.read(
        {
            "image": "nixos/nix:2.24",
            "runArgs": ["--init", "--platform", "linux/arm64"],
            "containerEnv": {"NIX_PATH": "nixpkgs=channel:nixos-unstable"},
            "remoteEnv": {"NIX_CONFIG": "sandbox = false"},
            "features": {"ghcr.io/me/devnix/nix:1": {"extraNixConfig": "a = b"}, "./local": "latest"},
            "postCreateCommand": {"shell": ["nix", "develop"], "other": "true"},
            "onCreateCommand": "nix-shell -p hello",
        }
    )
    assert config.notes == ()
    assert config.image == "nixos/nix:2.24" and config.image_ref == parse_ref("nixos/nix:2.24")
    assert (config.pinned, config.pin_path) == (ARM64, ("runArgs", 1))
    assert config.run_args == Args(("runArgs",), ("--init", "--platform", "linux/arm64"))
    assert config.build is None and not config.built and not config.is_compose
    assert config.env("NIX_PATH") == ("containerEnv", "NIX_PATH")
    assert config.env("NIX_CONFIG") == ("remoteEnv", "NIX_CONFIG") and config.env("HOME") is None
    assert config.features == {"ghcr.io/me/devnix/nix:1": {"extraNixConfig": "a = b"}, "./local": {}}
    assert config.commands == (
        (("onCreateCommand",), "nix-shell -p hello"),
        (("postCreateCommand", "shell"), "nix develop"),
        (("postCreateCommand", "other"), "true"),
    )


def test_the_platform_pin_in_each_spelling_and_place() -> None:
    assert devconfig.read({"runArgs": ["--platform=linux/amd64"]}).pinned == AMD64
    # docker reads a repeated flag's last value; runArgs (the run) before build.options (the build).
    repeated = devconfig.read({"runArgs": ["--platform", "linux/amd64", "--platform=arm64"]})
    assert (repeated.pinned, repeated.pin_path) == (ARM64, ("runArgs", 2))
    built = devconfig.read({"build": {"dockerfile": "Dockerfile", "options": ["--platform=linux/arm64"]}})
    assert (built.pinned, built.pin_path) == (ARM64, ("build", "options", 0))
    both = devconfig.read(
        {"runArgs": ["--platform=linux/amd64"], "build": {"dockerfile": "D", "options": ["--platform=arm64"]}}
    )
    assert both.pinned == AMD64
    assert devconfig.read({"runArgs": ["--platform"]}).pinned is None
    assert notes({"runArgs": ["--platform"]}) == ["runArgs[0]: --platform without a platform"]
    assert notes({"runArgs": ["--platform=linux/"]}) == ["runArgs[0]: malformed platform 'linux/'"]


def test_platform_positions_are_what_merge_removes() -> None:
    args = Args(("runArgs",), ("--init", "--platform", "linux/arm64", None, "--platform=amd64", "--platform"))
    assert args.platform_positions() == (1, 2, 4, 5)


def test_the_user_podman_keep_id_is_added_for() -> None:
    # What devcontainers/cli 0.89.0 does with --docker-path podman (singleContainer.ts): keep-id for a
    # non-root user, unless runArgs carry --uidmap/--gidmap; runArgs come after it, so --userns wins.
    def user(value: dict[str, Any]) -> str | None:
        return devconfig.read({"image": "x", **value}).podman_keep_id_user

    assert user({}) is None
    assert user({"remoteUser": "root"}) is None
    assert user({"remoteUser": "vscode"}) == "vscode"
    assert user({"containerUser": "dev"}) == "dev"
    assert user({"runArgs": ["-u", "1000"]}) == "1000"
    assert user({"runArgs": ["--user=0:0"]}) is None
    assert user({"remoteUser": "vscode", "runArgs": ["--userns="]}) is None
    assert user({"remoteUser": "vscode", "runArgs": ["--userns", "host"]}) is None
    assert user({"remoteUser": "vscode", "runArgs": ["--uidmap=0:1:65536"]}) is None
    assert user({"remoteUser": "vscode", "runArgs": ["--gidmap", "0:1:65536"]}) is None
    assert Args(("runArgs",), ("-u", "a", "--user=b", None)).value_of("-u", "--user") == "b"
    assert Args(("runArgs",), ("--user",)).value_of("-u", "--user") is None


def test_a_dockerfile_config_and_the_legacy_spelling() -> None:
    config = devconfig.read(
        {"build": {"dockerfile": "Dockerfile", "context": "..", "args": {"TAG": "2.24"}, "options": ["-q"]}}
    )
    assert config.build is not None and config.built and config.image is None
    assert (config.build.context, config.build.args) == ("..", {"TAG": "2.24"})
    assert config.dockerfile == (("build", "dockerfile"), "Dockerfile")
    assert config.build.options == Args(("build", "options"), ("-q",))
    legacy = devconfig.read({"dockerFile": "nix.Dockerfile"})
    assert legacy.dockerfile == (("dockerFile",), "nix.Dockerfile") and legacy.built
    compose = devconfig.read({"dockerComposeFile": ["a.yml", "b.yml"], "service": "dev"})
    assert compose.compose_files == ("a.yml", "b.yml") and compose.service == "dev" and compose.built
    assert compose.dockerfile is None


def test_mounts_in_string_and_object_forms_and_in_run_args() -> None:
    config = devconfig.read(
        {
            "mounts": [
                "source=devnix-nix-sha256-ab,target=/nix,type=volume",
                {"source": "nix", "target": "/nix/", "type": "volume"},
                "type=bind,src=/home,dst=/home",
            ],
            "runArgs": [
                "-v",
                "store:/nix",
                "--volume",
                "/host:/nix:ro",
                "-v",
                "/nix",
                "--mount",
                "target=/nix",
            ],
        }
    )
    assert config.mounts == (
        Mount(
            ("mounts", 0),
            "devnix-nix-sha256-ab",
            "/nix",
            "volume",
            "source=devnix-nix-sha256-ab,target=/nix,type=volume",
        ),
        Mount(("mounts", 1), "nix", "/nix/", "volume"),
        Mount(("mounts", 2), "/home", "/home", "bind", "type=bind,src=/home,dst=/home"),
        Mount(("runArgs", 1), "store", "/nix", "volume", "store:/nix"),
        Mount(("runArgs", 3), "/host", "/nix", "bind", "/host:/nix:ro"),
        Mount(("runArgs", 5), "", "/nix", "volume", "/nix"),
        Mount(("runArgs", 7), "", "/nix", "volume", "target=/nix"),
    )
    assert [m.is_nix_volume for m in config.mounts] == [True, True, False, True, False, True, True]


def test_values_of_the_wrong_shape_are_notes() -> None:
    assert notes(
        {
            "image": 5,
            "runArgs": ["--init", 3],
            "build": "Dockerfile",
            "mounts": [None],
            "containerEnv": ["NIX_PATH=x"],
            "remoteEnv": {"A": 1},
            "features": {"x": 2},
            "postCreateCommand": 4,
            "dockerComposeFile": [],
        }
    ) == [
        "image is a number, not a string",
        "runArgs[1] is a number, not a string",
        "build is a string, not an object",
        "dockerComposeFile is an array, not a path or an array of paths",
        "mounts[0] is null, not a mount string or an object of strings",
        "containerEnv is an array, not an object",
        "remoteEnv.A is a number, not a string",
        "features.x is a number, not an object of options",
        "postCreateCommand is a number, not a command (a string or an array of strings)",
    ]
    config = devconfig.read({"runArgs": 5, "build": {"dockerfile": 1, "args": {"A": True}}})
    assert config.run_args is None and config.problem(("runArgs",)) is not None
    assert config.problem(("build", "dockerfile")) is not None and config.problem(("build",)) is None
    assert config.build is not None and config.build.dockerfile is None and config.build.args == {}
    assert str(config.problem(("build", "args", "A"))) == "build.args.A is true, not a string"


def test_a_value_that_is_not_an_object() -> None:
    for value, kind in ((None, "null"), ([], "an array"), ("x", "a string"), (3.5, "a number")):
        config = devconfig.read(value)
        assert not config.is_object
        assert [n.message for n in config.notes] == [f"it is {kind}, not a JSON object"]


def test_placeholders_are_not_references_and_not_a_note() -> None:
    config = devconfig.read({"image": "${localEnv:IMAGE}"})
    assert config.image == "${localEnv:IMAGE}" and config.image_ref is None and config.notes == ()


KEYS = st.sampled_from(
    [
        "image", "runArgs", "build", "mounts", "containerEnv", "remoteEnv", "features", "dockerFile",
        "dockerComposeFile", "service", "workspaceFolder", "postCreateCommand", "options", "dockerfile",
        "args", "context", "source", "target", "type", "-v", "--platform",
    ]
)  # fmt: skip
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8) | KEYS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=examples(300), deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=8) | VALUES)
def test_any_json_value_reads_without_an_exception(value: Any) -> None:
    config = devconfig.read(value)
    # Whatever was left out has a note at a path, and what was kept has the types the model promises.
    assert all(isinstance(note.message, str) and note.message for note in config.notes)
    assert all(isinstance(m.source, str) and isinstance(m.target, str) for m in config.mounts)
    assert all(isinstance(v, str) for v in (*config.container_env.values(), *config.remote_env.values()))
    assert config.image is None or isinstance(config.image, str)
