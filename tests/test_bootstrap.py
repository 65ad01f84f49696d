"""Pure parts of ``devnix bootstrap``: flake references, the builder's Nix settings, steps, parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devnix import bootstrap as core
from devnix import engine
from devnix.cli import app
from devnix.errors import DevnixError, UsageError
from devnix.platforms import Platform

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")


# --- flake references ---------------------------------------------------------------------------------


def test_default_flake_is_docker_nixpkgs_for_the_system() -> None:
    ref = core.parse_flake_ref(None, "aarch64-linux")
    assert ref.url == "github:lucernae/docker-nixpkgs/flake"
    assert ref.attribute == 'docker-nixpkgs.aarch64-linux."nixos-unstable".nix'
    assert (
        ref.installable
        == 'github:lucernae/docker-nixpkgs/flake#docker-nixpkgs.aarch64-linux."nixos-unstable".nix'
    )
    assert ref.local_dir is None
    assert core.default_flake("x86_64-linux").endswith('docker-nixpkgs.x86_64-linux."nixos-unstable".nix')


@pytest.mark.parametrize(
    ("text", "local_dir", "attribute"),
    [
        ("./img#image", "./img", "packages.aarch64-linux.image"),
        ("/abs/flake#image", "/abs/flake", "packages.aarch64-linux.image"),
        ("path:/abs/flake#image", "/abs/flake", "packages.aarch64-linux.image"),
        (".", ".", "packages.aarch64-linux.default"),
        ("~/src/f#packages.aarch64-linux.x", "~/src/f", "packages.aarch64-linux.x"),
        ("./f#packages.image", "./f", "packages.aarch64-linux.image"),
        ("./f#legacyPackages.image", "./f", "legacyPackages.aarch64-linux.image"),
        ("./f#images.arm", "./f", "images.arm"),
    ],
)
def test_local_flakes_are_copied_and_short_names_expanded_for_the_target(
    text: str, local_dir: str, attribute: str
) -> None:
    ref = core.parse_flake_ref(text, "aarch64-linux")
    assert ref.local_dir == local_dir
    assert ref.url == f"path:{core.CONTAINER_FLAKE_DIR}"
    assert ref.attribute == attribute
    assert ref.shown == f"path:{local_dir}#{attribute}"


def test_remote_flakes_pass_through() -> None:
    ref = core.parse_flake_ref(
        'github:o/r/branch#docker-nixpkgs.aarch64-linux."nixos-23.05".nix', "aarch64-linux"
    )
    assert ref.local_dir is None
    assert ref.url == "github:o/r/branch"
    assert ref.attribute == 'docker-nixpkgs.aarch64-linux."nixos-23.05".nix'


def test_a_registry_name_is_not_a_local_folder() -> None:
    # "nixpkgs" without ./ is a flake registry id for Nix, not a folder.
    assert core.parse_flake_ref("nixpkgs#hello", "x86_64-linux").local_dir is None


@pytest.mark.parametrize(
    "text", ["git+file:///src/f#x", "file:///tmp/x.tar.gz#x", "#image", "path:/f?dir=sub#x"]
)
def test_references_the_builder_cannot_see_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        core.parse_flake_ref(text, "aarch64-linux")


def test_an_attribute_for_another_system_is_refused_with_a_hint() -> None:
    with pytest.raises(UsageError) as caught:
        core.parse_flake_ref("./f#packages.x86_64-linux.image", "aarch64-linux")
    assert caught.value.hint is not None and "--system x86_64-linux" in caught.value.hint


def test_attribute_paths_split_like_nix() -> None:
    assert core.split_attribute('a."b.c".d') == ["a", "b.c", "d"]
    assert core.system_in_attribute('docker-nixpkgs.aarch64-linux."nixos-unstable".nix') == "aarch64-linux"
    assert core.system_in_attribute("packages.image") is None
    with pytest.raises(UsageError):
        core.split_attribute('a."b')
    with pytest.raises(UsageError):
        core.split_attribute("a..b")


def test_odd_short_names_are_quoted() -> None:
    assert core.expand_attribute('"nix-2.8"', "aarch64-linux") == 'packages.aarch64-linux."nix-2.8"'


# --- the builder's Nix ------------------------------------------------------------------------------


def test_native_builder_for_another_system_gets_extra_platforms_and_keeps_the_syscall_filter() -> None:
    nix = core.builder_nix(AMD64, AMD64, "aarch64-linux")
    values = nix.as_dict()
    assert not nix.emulated and nix.cross
    assert values["extra-platforms"] == "aarch64-linux"
    assert "filter-syscalls" not in values
    assert values["experimental-features"] == "nix-command flakes"
    assert values["sandbox"] == "false"
    assert values["build-users-group"] == ""


def test_emulated_builder_on_apple_silicon_turns_the_syscall_filter_off() -> None:
    # The seed's situation: an arm64 engine running the x86_64 Nix image to build for aarch64.
    nix = core.builder_nix(AMD64, ARM64, "aarch64-linux")
    values = nix.as_dict()
    assert nix.emulated
    assert values["filter-syscalls"] == "false"
    assert values["extra-platforms"] == "aarch64-linux"
    assert "filter-syscalls = false\n" in nix.text


def test_native_build_for_its_own_system_needs_no_extra_platform() -> None:
    values = core.builder_nix(ARM64, ARM64, "aarch64-linux").as_dict()
    assert "extra-platforms" not in values and "filter-syscalls" not in values


def test_nix_build_command_passes_options_through() -> None:
    command = core.nix_build_command("path:/f#x", [("substituters", ""), ("max-jobs", "2")])
    assert command[:3] == ["nix", "build", "path:/f#x"]
    assert "--json" in command and "--no-link" in command
    assert command[-6:] == ["--option", "substituters", "", "--option", "max-jobs", "2"]


def test_pass_through_options_are_read_from_extra_arguments() -> None:
    assert core.parse_nix_options(["--option", "substituters", "", "--option", "cores", "2"]) == (
        ("substituters", ""),
        ("cores", "2"),
    )
    for bad in (["--option", "substituters"], ["--frobnicate"], ["--option", "Bad Name", "x"]):
        with pytest.raises(UsageError):
            core.parse_nix_options(bad)


# --- Nix's and the engine's answers -------------------------------------------------------------------


def test_build_output_is_read_from_nix_json() -> None:
    stdout = json.dumps([{"drvPath": "/nix/store/a.drv", "outputs": {"out": "/nix/store/b-image.tar.gz"}}])
    assert core.parse_build_output(stdout) == "/nix/store/b-image.tar.gz"
    with pytest.raises(DevnixError):
        core.parse_build_output("not json")
    with pytest.raises(DevnixError):
        core.parse_build_output(json.dumps([{"outputs": {"out": "/tmp/x"}}]))


def test_the_failure_line_is_nix_own_error_line() -> None:
    tail = [
        "building '/nix/store/x.drv'...",
        "error: builder for '/nix/store/x.drv' failed with exit code 1",
        "",
    ]
    assert core.build_failure_line(tail) == "builder for '/nix/store/x.drv' failed with exit code 1"
    assert core.build_failure_line(["nothing useful"]) is None


def test_result_shapes() -> None:
    assert core.result_shape("file", "/nix/store/x.tar.gz") == core.ARCHIVE
    assert core.result_shape("exec", "/nix/store/stream-x") == core.STREAM
    with pytest.raises(UsageError):
        core.result_shape("dir", "/nix/store/x")
    assert core.stream_command(core.STREAM, "/nix/store/s") == ["/nix/store/s"]
    assert core.stream_command(core.ARCHIVE, "/nix/store/a.tar") == ["cat", "/nix/store/a.tar"]


def test_load_events_name_the_image_and_the_names_it_took() -> None:
    old = "sha256:" + "1" * 64
    new = "sha256:" + "2" * 64
    events: list[dict[str, Any]] = [
        {"stream": f"The image nix:abc already exists, renaming the old one with ID {old} to empty string\n"},
        {"stream": "Loaded image: nix:abc\n"},
        {"stream": f"Loaded image ID: {new}\n"},
    ]
    outcome = core.parse_load_events(events)
    assert outcome.tags == ("nix:abc",)
    assert outcome.image_id == new
    assert outcome.displaced == {"nix:abc": old}


def test_podman_load_answers_name_the_image_too() -> None:
    """Podman 4.3's words (measured): one line for all names, full names, an id for an unnamed archive."""
    image = "sha256:" + "3" * 64
    named = core.parse_load_events([{"stream": "Loaded image: localhost/nix:abc,localhost/nix:def"}])
    assert named.tags == ("localhost/nix:abc", "localhost/nix:def") and named.image_id is None
    unnamed = core.parse_load_events([{"stream": f"Loaded image: {image}"}])
    assert unnamed.tags == () and unnamed.image_id == image


def test_names_a_load_moved_silently_are_found_from_the_names_before() -> None:
    old, new, other = ("sha256:" + c * 64 for c in "456")
    outcome = core.LoadOutcome(new, ("localhost/nix:abc", "localhost/nix:new", "localhost/nix:same"))
    before = {"localhost/nix:abc": old, "localhost/nix:same": new, "localhost/unrelated:x": other}
    moved = core.with_moved_names(outcome, before, new)
    assert moved.displaced == {"localhost/nix:abc": old}
    assert moved.tags == outcome.tags and moved.image_id == new
    # What Docker said itself stands.
    said = core.LoadOutcome(new, ("nix:abc",), {"nix:abc": old})
    assert core.with_moved_names(said, {"nix:abc": other}, new).displaced == {"nix:abc": old}


def test_stream_errors_are_found_inside_engine_events() -> None:
    assert engine.stream_error({"errorDetail": {"message": "unauthorized"}, "error": "x"}) == "unauthorized"
    assert engine.stream_error({"error": "dial tcp: connection refused"}) == "dial tcp: connection refused"
    assert engine.stream_error({"status": "Pushing", "progressDetail": {}}) is None


def test_store_volume_is_keyed_to_the_builder_image() -> None:
    a = core.store_volume_name("sha256:" + "a" * 64)
    assert a.startswith(core.STORE_VOLUME_PREFIX)
    assert a == core.store_volume_name("sha256:" + "a" * 64)
    assert a != core.store_volume_name("sha256:" + "b" * 64)


def test_steps() -> None:
    keys = [s.key for s in core.plan_steps(local_flake=True, push=True)]
    assert keys == ["builder", "store", "start", "copy", "build", "load", "verify", "tag", "push"]
    keys = [s.key for s in core.plan_steps(local_flake=False, push=False)]
    assert "copy" not in keys and "push" not in keys
    assert keys.index("verify") < keys.index("tag")


def test_copy_leaves_out_vcs_and_result_links() -> None:
    assert core.skip_in_copy(".git", False)
    assert core.skip_in_copy("result", True) and core.skip_in_copy("result-1", True)
    assert not core.skip_in_copy("result", False)
    assert not core.skip_in_copy("flake.nix", False)


# --- the command line ---------------------------------------------------------------------------------


def test_cli_refuses_unknown_pass_through_before_touching_the_engine() -> None:
    result = CliRunner().invoke(app, ["bootstrap", "--frobnicate"])
    assert result.exit_code == UsageError.exit_code
    assert "--option NAME VALUE" in result.output


def test_cli_help_names_the_pass_through() -> None:
    result = CliRunner().invoke(app, ["bootstrap", "--help"])
    assert result.exit_code == 0
    assert "--option" in result.output and "--builder-image" in result.output


# --- the transaction --------------------------------------------------------------------------------


def test_undo_runs_failure_actions_newest_first_then_the_always_ones() -> None:
    from devnix.commands.bootstrap.steps import Undo

    done: list[str] = []
    undo = Undo()
    undo.always(lambda: done.append("remove builder"))
    undo.on_failure(lambda: done.append("drop loaded image"))
    undo.on_failure(lambda: done.append("restore tag"))
    assert undo.run(failed=True) == []
    assert done == ["restore tag", "drop loaded image", "remove builder"]


def test_undo_after_success_only_removes_the_builder_and_reports_problems() -> None:
    from devnix.commands.bootstrap.steps import Undo

    done: list[str] = []

    def broken() -> None:
        raise UsageError("engine went away")

    undo = Undo()
    undo.on_failure(lambda: done.append("restore tag"))
    undo.always(broken)
    undo.always(lambda: done.append("close attachment"))
    assert undo.run(failed=False) == ["engine went away"]
    assert done == ["close attachment"]  # the later clean-up still ran after the failing one


# --- copying a local flake, and reading a failed build ---------------------------------------------


def test_the_flake_folder_streams_as_a_tar_without_vcs_or_result_links(tmp_path: Path) -> None:
    import io
    import tarfile

    from devnix.commands.bootstrap.flakecopy import tar_stream, walk

    flake = tmp_path / "flake"
    (flake / "sub").mkdir(parents=True)
    (flake / "flake.nix").write_text("{ outputs = _: { }; }\n")
    (flake / "sub" / "big.bin").write_bytes(b"x" * (3 << 20))  # several chunks
    (flake / ".git").mkdir()
    (flake / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (flake / "result").symlink_to("/nix/store/none")
    (flake / "link").symlink_to("flake.nix")

    entries = list(walk(flake))
    chunks = list(tar_stream(flake, entries, "devnix-flake"))
    assert max(len(c) for c in chunks) <= 1 << 20
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert set(members) == {
        "devnix-flake",
        "devnix-flake/flake.nix",
        "devnix-flake/link",
        "devnix-flake/sub",
        "devnix-flake/sub/big.bin",
    }
    assert members["devnix-flake/sub/big.bin"].size == 3 << 20
    assert members["devnix-flake/link"].issym()
    assert all(m.uid == 0 and m.uname == "root" for m in members.values())


def test_build_hints_name_the_system_nix_asked_for() -> None:
    from devnix.commands.bootstrap.build import build_hint

    nix = core.builder_nix(AMD64, ARM64, "aarch64-linux")
    refused = [
        "error: a 'aarch64-linux' with features {} is required to build '/nix/store/x.drv', "
        "but I am a 'x86_64-linux' with features {benchmark}"
    ]
    assert "cannot build for aarch64-linux" in (build_hint(refused, nix) or "")
    own = core.builder_nix(AMD64, AMD64, "x86_64-linux")
    assert "--option extra-platforms aarch64-linux" in (build_hint(refused, own) or "")
    missing = ["error: flake 'path:/tmp/devnix-flake' does not provide attribute 'packages.x.y'"]
    assert "nix flake show" in (build_hint(missing, nix) or "")
    seccomp = ["error: unable to load seccomp BPF program: Invalid argument"]
    assert "--option filter-syscalls false" in (build_hint(seccomp, own) or "")
    assert build_hint(["error: something else"], nix) is None
