"""--merge on real-world files: only devnix's keys change, every comment and foreign key stays."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from devnix import jsonc
from devnix.configfile import ConfigFile, MergeRefused, find_config
from devnix.errors import UsageError
from devnix.images import Filesystem, parse_ref
from devnix.merge import merge_config
from devnix.plan import Facts, Known, Plan, Source, decide
from devnix.platforms import Platform
from devnix.render import Layout
from tests.support import CORPUS, CORPUS_FILES, corpus_params

OWNED_TOP = {"image", "runArgs", "containerEnv", "mounts", "customizations", "postCreateCommand", "build"}

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")


def plan(emulated: bool = False, store: bool = False, filesystem: Filesystem = Filesystem.FHS) -> Plan:
    return decide(
        Facts(
            image=parse_ref("localhost:5000/devnix-test/nix:multi"),
            image_platforms=Known((AMD64, ARM64), Source.REGISTRY, "sha256:" + "b" * 64),
            engine_platform=AMD64,
            engine_source=Source.ENGINE,
            requested_platform=ARM64 if emulated else None,
            nix_path="nixpkgs=channel:nixos-unstable",
            store_volume=store,
            filesystem=filesystem,
            filesystem_source=Source.REGISTRY,
        )
    )


def config(text: str) -> ConfigFile:
    from pathlib import PurePosixPath

    return ConfigFile(Path("devcontainer.json"), text, PurePosixPath(".devcontainer"))


def comment_texts(text: str) -> list[str]:
    return [comment.text for comment in jsonc.parse(text).comments]


def expected_run_args(old: list[Any], emulated: bool) -> list[Any]:
    kept: list[Any] = []
    skip_next = False
    for item in old:
        if skip_next:
            skip_next = False
        elif item == "--platform":
            skip_next = True
        elif not str(item).startswith("--platform="):
            kept.append(item)
    return [*kept, "--platform=linux/arm64"] if emulated else kept


@pytest.mark.shared
def test_the_corpus_is_there() -> None:
    assert len(CORPUS_FILES) == 78, f"expected the 78 corpus files under {CORPUS}"


@pytest.mark.parametrize("path", corpus_params(CORPUS_FILES, 70))
def test_merge_keeps_comments_and_foreign_keys(path: Path) -> None:
    original = jsonc.read_file(path)
    before = jsonc.parse(original).value
    if "dockerComposeFile" in before:
        with pytest.raises(MergeRefused, match="compose file"):
            merge_config(config(original), plan(), Layout(name="x"))
        return
    for emulated in (False, True):
        merged, _notes = merge_config(config(original), plan(emulated), Layout(name="x", direnv=True))
        after = jsonc.parse(merged).value
        assert comment_texts(merged) == comment_texts(original)
        for key, value in before.items():
            if key not in OWNED_TOP:
                assert after[key] == value, key
        # Inside the keys devnix touches, what was not devnix's is kept too.
        for key, value in (before.get("containerEnv") or {}).items():
            if key not in ("NIX_PATH", "NIX_USER_CONF_FILES"):
                assert after["containerEnv"][key] == value
        assert after.get("runArgs", []) == expected_run_args(before.get("runArgs", []), emulated)
        old_extensions = before.get("customizations", {}).get("vscode", {}).get("extensions", [])
        assert after["customizations"]["vscode"]["extensions"][: len(old_extensions)] == old_extensions
        assert after["containerEnv"]["NIX_PATH"] == "nixpkgs=channel:nixos-unstable"
        assert ("--platform=linux/arm64" in after.get("runArgs", [])) is emulated
        # A second identical merge is byte-identical.
        again, _ = merge_config(config(merged), plan(emulated), Layout(name="x", direnv=True))
        assert again == merged


STYLED = (
    '\ufeff// top\r\n{\r\n\t"name": "styled", // keep\r\n'
    '\t/* block */ "image": "old:1",\r\n\t"runArgs": ["--init"],\r\n}\r\n'
)


def test_style_is_kept_bom_crlf_tabs_trailing_commas() -> None:
    merged, _ = merge_config(config(STYLED), plan(emulated=True), Layout(name="x"))
    assert merged.startswith("\ufeff// top\r\n")
    assert "\n" not in merged.replace("\r\n", "")
    assert '\t"containerEnv": {\r\n\t\t"NIX_PATH"' in merged
    assert '"name": "styled", // keep' in merged
    assert '/* block */ "image": "localhost:5000/devnix-test/nix:multi",' in merged
    assert jsonc.parse(merged).value["runArgs"] == ["--init", "--platform=linux/arm64"]
    assert merged.rstrip().endswith("},\r\n}")


def test_platform_pin_is_replaced_not_duplicated_and_removed_when_native() -> None:
    text = '{"image": "x", "runArgs": ["--platform", "linux/amd64", "--init", "--platform=linux/arm64"]}'
    emulated, _ = merge_config(config(text), plan(emulated=True), Layout(name="x"))
    assert jsonc.parse(emulated).value["runArgs"] == ["--init", "--platform=linux/arm64"]
    native, _ = merge_config(config(emulated), plan(emulated=False), Layout(name="x"))
    assert jsonc.parse(native).value["runArgs"] == ["--init"]


def test_build_configs_keep_their_dockerfile_and_get_the_pin_in_build_options() -> None:
    text = '{\n  "build": {"dockerfile": "Dockerfile", "options": ["--pull"]}\n}\n'
    merged, _ = merge_config(config(text), plan(emulated=True), Layout(name="x"))
    value = jsonc.parse(merged).value
    assert "image" not in value
    assert value["build"] == {"dockerfile": "Dockerfile", "options": ["--pull", "--platform=linux/arm64"]}


def test_store_volume_of_an_older_image_is_replaced() -> None:
    old = "source=devnix-nix-sha256-aaaaaaaaaaaaaaaa-${devcontainerId},target=/nix,type=volume"
    text = '{"image": "x", "mounts": ["source=cache,target=/cache,type=volume", "' + old + '"]}'
    merged, _ = merge_config(config(text), plan(store=True), Layout(name="x"))
    mounts = jsonc.parse(merged).value["mounts"]
    assert mounts[0] == "source=cache,target=/cache,type=volume"
    assert len(mounts) == 2 and "bbbbbbbbbbbbbbbb" in mounts[1]


def test_an_object_form_store_volume_is_replaced_and_a_second_merge_changes_nothing() -> None:
    old = '{"source": "devnix-nix-sha256-aaaaaaaaaaaaaaaa", "target": "/nix", "type": "volume"}'
    text = '{"image": "x", "mounts": [' + old + ', {"source": "/h", "target": "/h", "type": "bind"}]}'
    merged, _ = merge_config(config(text), plan(store=True), Layout(name="x"))
    mounts = jsonc.parse(merged).value["mounts"]
    assert mounts[0] == {"source": "/h", "target": "/h", "type": "bind"}
    assert len(mounts) == 2 and "bbbbbbbbbbbbbbbb" in mounts[1]
    again, _ = merge_config(config(merged), plan(store=True), Layout(name="x"))
    assert again == merged


def test_arguments_that_are_not_strings_keep_their_place() -> None:
    text = '{"image": "x", "runArgs": ["--init", 5, "--platform", "linux/amd64", true]}'
    merged, _ = merge_config(config(text), plan(emulated=True), Layout(name="x"))
    assert jsonc.parse(merged).value["runArgs"] == ["--init", 5, True, "--platform=linux/arm64"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"image": "x", "runArgs": "--init"}', "runArgs is a string, not an array of strings"),
        (
            '{"build": {"dockerfile": "D", "options": 1}}',
            "build.options is a number, not an array of strings",
        ),
        ('{"image": "x", "containerEnv": ["A=1"]}', "containerEnv is an array, not an object"),
        ('{"image": "x", "mounts": {"source": "x"}}', "mounts is an object, not an array"),
        ('{"dockerComposeFile": 3, "service": "dev"}', "dockerComposeFile is not a path or a list of paths"),
    ],
)
def test_keys_devnix_edits_with_the_wrong_shape_are_refused(text: str, says: str) -> None:
    with pytest.raises(MergeRefused, match=re.escape(says)) as refused:
        merge_config(config(text), plan(emulated=True, store=True), Layout(name="x"))
    assert (refused.value.hint or "").startswith("fix it")


def test_existing_post_create_command_is_kept_with_a_note() -> None:
    text = '{"image": "x", "postCreateCommand": "make setup"}'
    merged, notes = merge_config(config(text), plan(), Layout(name="x", flake=True))
    assert jsonc.parse(merged).value["postCreateCommand"] == "make setup"
    assert any("postCreateCommand" in note for note in notes)


def test_find_config_looks_in_the_usual_places_and_by_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no devcontainer\.json"):
        find_config(tmp_path)
    (tmp_path / ".devcontainer.json").write_text("{}")
    assert str(find_config(tmp_path).companion_dir) == ".devcontainer"
    named = tmp_path / ".devcontainer" / "nix" / "devcontainer.json"
    named.parent.mkdir(parents=True)
    named.write_text("{}")
    found = find_config(tmp_path, "nix")
    assert found.path == named
    assert str(found.companion_dir) == ".devcontainer/nix"


def test_a_store_only_image_turns_the_image_into_a_build_where_it_was() -> None:
    merged, notes = merge_config(
        config(STYLED), plan(emulated=True, filesystem=Filesystem.STORE_ONLY), Layout(name="x")
    )
    assert merged.startswith("\ufeff// top\r\n")
    assert "\n" not in merged.replace("\r\n", "")
    # Same place, same comment before it; the Dockerfile names the image (and is pinned like the run).
    assert '\t/* block */ "build": {\r\n\t\t"dockerfile": "Dockerfile",\r\n\t\t"options": [' in merged
    value = jsonc.parse(merged).value
    assert "image" not in value
    assert value["build"] == {"dockerfile": "Dockerfile", "options": ["--platform=linux/arm64"]}
    assert value["runArgs"] == ["--init", "--platform=linux/arm64"]
    assert any("FHS loader" in note for note in notes)
    again, _ = merge_config(
        config(merged), plan(emulated=True, filesystem=Filesystem.STORE_ONLY), Layout(name="x")
    )
    assert again == merged


def test_a_build_config_is_told_how_to_add_the_loader_step(tmp_path: Path) -> None:
    from pathlib import PurePosixPath

    folder = tmp_path / ".devcontainer"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM nixos/nix\n")
    text = '{"build": {"dockerfile": "Dockerfile"}}\n'
    mine = ConfigFile(folder / "devcontainer.json", text, PurePosixPath(".devcontainer"))
    _, notes = merge_config(mine, plan(filesystem=Filesystem.UNKNOWN), Layout(name="x"))
    assert any("RUN sh /tmp/fhs-loader.sh" in note for note in notes)
    (folder / "Dockerfile").write_text(
        "FROM nixos/nix\nCOPY fhs-loader.sh /tmp/\nRUN sh /tmp/fhs-loader.sh\n"
    )
    # A ConfigFile is what was read at one moment: read the project again.
    mine = ConfigFile(folder / "devcontainer.json", text, PurePosixPath(".devcontainer"))
    _, notes = merge_config(mine, plan(filesystem=Filesystem.UNKNOWN), Layout(name="x"))
    assert not any("fhs-loader" in note for note in notes)


def _is_image_config(path: Path) -> bool:
    value = jsonc.parse(jsonc.read_file(path)).value
    return isinstance(value, dict) and "image" in value and "build" not in value


IMAGE_CONFIGS = [path for path in CORPUS_FILES if _is_image_config(path)]


@pytest.mark.shared
def test_the_corpus_has_image_configs() -> None:
    assert len(IMAGE_CONFIGS) >= 20, CORPUS


@pytest.mark.parametrize("path", corpus_params(IMAGE_CONFIGS))
def test_corpus_image_configs_become_build_configs_for_store_only_images(path: Path) -> None:
    text = jsonc.read_file(path)
    original = jsonc.parse(text).value
    merged, _ = merge_config(config(text), plan(filesystem=Filesystem.STORE_ONLY), Layout(name="x"))
    value = jsonc.parse(merged).value
    assert "image" not in value and value["build"] == {"dockerfile": "Dockerfile"}
    assert comment_texts(merged) == comment_texts(text)
    for key, old in original.items():
        if key not in OWNED_TOP:
            assert value[key] == old, key
