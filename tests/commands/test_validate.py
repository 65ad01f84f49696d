"""``devnix validate`` through the CLI: exit codes 0/1/2, compiler-style lines, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devnix import schema
from devnix.cli import app
from devnix.commands import validate as validate_command

SCHEMAS = Path(__file__).resolve().parents[2] / ".." / "shared" / "schemas"
pytestmark = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"no {SCHEMAS}")

# A Debian-based image (not store-only), so that only the finding a test is about shows up.
GOOD = '{\n\t// Nix\n\t"image": "debian:bookworm",\n\t"remoteUser": "root",\n}\n'
UNKNOWN = '{\n\t"image": "debian:bookworm",\n\t"remoteUsr": "root"\n}\n'
NESTED = '{\n\t"build": {\n\t\t"dockerfile": 1\n\t}\n}\n'
BROKEN = '{\n\t"image": "debian:bookworm"\n\t"remoteUser": "root"\n}\n'
FLAKES = '{\n\t"image": "debian:bookworm",\n\t"postCreateCommand": "nix develop -c true"\n}\n'


@pytest.fixture(autouse=True)
def fresh_engine_answer() -> None:
    # validate asks the engine once per process; each test may point DOCKER_HOST elsewhere.
    validate_command._engine_platform.cache_clear()


def project(tmp_path: Path, text: str, name: str = ".devcontainer/devcontainer.json") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", "--schema-dir", str(SCHEMAS), *args])
    return result.exit_code, result.output


def test_clean_file_exits_0(tmp_path: Path) -> None:
    path = project(tmp_path, GOOD)
    assert run(str(tmp_path)) == (0, f"{path}: ok\n")


def test_finds_dot_devcontainer_json_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path, GOOD, ".devcontainer.json")
    monkeypatch.chdir(tmp_path)
    assert run() == (0, ".devcontainer.json: ok\n")


def test_schema_findings_exit_1_with_line_and_column(tmp_path: Path) -> None:
    path = project(tmp_path, UNKNOWN)
    assert run(str(path)) == (1, f"{path}:3:2: $.remoteUsr: unknown property 'remoteUsr'\n")
    path = project(tmp_path, NESTED)
    assert run(str(path)) == (1, f'{path}:3:3: $.build.dockerfile: 1 is not of type "string"\n')


def test_syntax_error_exits_2(tmp_path: Path) -> None:
    path = project(tmp_path, BROKEN)
    assert run(str(path)) == (2, f"{path}:3:2: expected ',' or '}}', found '\"'\n")
    path.write_bytes(b'{"image": "\xff"}')
    assert run(str(path)) == (2, f"{path}:1:12: invalid UTF-8 (byte 0xff)\n")


def test_nix_findings_carry_their_id_and_hint(tmp_path: Path) -> None:
    path = project(tmp_path, FLAKES)
    code, output = run(str(path))
    assert code == 0  # warnings alone do not fail
    assert output.splitlines() == [
        f"{path}:3:2: $.postCreateCommand: warning: this command uses flakes (nix develop) "
        "but they are not enabled [flakes-not-enabled]",
        '    hint: add "experimental-features = nix-command flakes" to nix.conf or NIX_CONFIG',
    ]
    (path.parent / "nix.conf").write_text("experimental-features = nix-command flakes\n")
    assert run(str(path))[0] == 0


def test_nix_conf_findings_point_into_nix_conf(tmp_path: Path) -> None:
    path = project(tmp_path, GOOD)
    (path.parent / "nix.conf").write_text("sandbox = false\nfilter-syscalls = false\n")
    code, output = run(str(path), "--platform", "linux/amd64")
    assert code == 0
    assert output.startswith(f"{path.parent / 'nix.conf'}:2:1: $: warning: filter-syscalls = false")


def test_json_output(tmp_path: Path) -> None:
    path = project(tmp_path, UNKNOWN)
    code, output = run(str(path), "--json")
    assert code == 1
    report = json.loads(output)
    assert report["valid"] is False and report["exit_code"] == 1
    assert report["findings"] == [
        {
            "file": str(path),
            "line": 3,
            "column": 2,
            "kind": "schema",
            "severity": "error",
            "rule": None,
            "path": "$.remoteUsr",
            "message": "unknown property 'remoteUsr'",
            "hint": None,
        }
    ]
    code, output = run(str(project(tmp_path, BROKEN)), "--json")
    assert code == 2 and json.loads(output)["findings"][0]["kind"] == "syntax"


def test_missing_file_and_unreachable_schema_are_clean_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 6
    assert "no .devcontainer/devcontainer.json or .devcontainer.json" in result.output
    path = project(tmp_path, GOOD)
    real_locate = schema.locate  # no --schema-dir, an empty cache, and no network:
    monkeypatch.setattr(schema, "locate", lambda d=None: real_locate(d, base_url="http://127.0.0.1:9/"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0  # nothing else is wrong; the skipped step is said on its own line
    assert "schema check skipped: cannot download the devcontainer schema" in result.output
    assert "pass --schema-dir DIR" in result.output


def test_the_engine_is_asked_when_no_platform_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import tempfile

    from tests.replay_engine import recorded, replay_engine

    # An amd64-only image (devnix's catalog knows it): native on an amd64 engine, emulated on a Mac.
    project(tmp_path, '{"image": "ghcr.io/xtruder/nix-devcontainer:v1"}\n')
    (tmp_path / ".devcontainer" / "nix.conf").write_text("filter-syscalls = false\n")
    rules = {}
    folder = Path(tempfile.mkdtemp(prefix="dvx", dir="/tmp"))
    try:
        for answer in ("dockerd-amd64.version.json", "docker-desktop-apple-silicon.version.json"):
            with replay_engine(folder / "docker.sock", {"/version": recorded(answer)}) as host:
                monkeypatch.setenv("DOCKER_HOST", host)
                validate_command._engine_platform.cache_clear()  # asked once per process
                _code, output = run(str(tmp_path), "--json")
            rules[answer] = {f["rule"] for f in json.loads(output)["findings"]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert "filter-syscalls-native" in rules["dockerd-amd64.version.json"]
    assert "filter-syscalls-native" not in rules["docker-desktop-apple-silicon.version.json"]


def test_a_store_only_image_without_the_loader_step_is_a_warning(tmp_path: Path) -> None:
    path = project(tmp_path, '{\n\t"image": "nixos/nix:latest"\n}\n')
    code, output = run(str(path))
    assert code == 0  # a warning: the config is valid, VS Code just cannot attach to it
    assert "[store-only-image]" in output and "VS Code's server cannot start" in output


def test_without_the_schema_the_nix_checks_still_run_and_the_skip_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_locate = schema.locate  # an empty cache and a schema server that refuses at once
    monkeypatch.setattr(schema, "locate", lambda d=None: real_locate(d, base_url="http://127.0.0.1:9/"))
    path = project(tmp_path, FLAKES)
    result = CliRunner().invoke(app, ["validate", str(path), "--json"])
    data = json.loads(result.stdout)
    assert data["schema_skipped"].startswith("cannot download the devcontainer schema")
    assert data["schema_dir"] is None
    assert [f["rule"] for f in data["findings"]] == ["flakes-not-enabled"]


# --- many paths in one process (pre-commit passes every matched file at once) -------------------------


def test_many_paths_are_each_reported_in_order_and_the_worst_exit_wins(tmp_path: Path) -> None:
    good = project(tmp_path / "good", GOOD)
    unknown = project(tmp_path, UNKNOWN, "unknown.json")
    broken = project(tmp_path, BROKEN, "broken.json")
    assert run(str(tmp_path / "good"), str(unknown)) == (
        1,
        f"{good}: ok\n{unknown}:3:2: $.remoteUsr: unknown property 'remoteUsr'\n",
    )
    code, output = run(str(broken), str(unknown), str(tmp_path / "good"))
    assert code == 2  # not JSONC (2) beats a schema finding (1) and a clean file (0)
    assert output.splitlines() == [
        f"{broken}:3:2: expected ',' or '}}', found '\"'",
        f"{unknown}:3:2: $.remoteUsr: unknown property 'remoteUsr'",
        f"{good}: ok",
    ]


def test_a_path_that_cannot_be_read_is_its_error_and_the_others_are_still_checked(tmp_path: Path) -> None:
    good = project(tmp_path, GOOD)
    unknown = project(tmp_path, UNKNOWN, "unknown.json")
    missing, empty = tmp_path / "gone.json", tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(
        app, ["validate", "--schema-dir", str(SCHEMAS), str(missing), str(good), str(empty), str(unknown)]
    )
    assert result.exit_code == 6  # the file-system error's own code: a path not checked is the worst
    assert result.stdout.splitlines() == [
        f"{good}: ok",
        f"{unknown}:3:2: $.remoteUsr: unknown property 'remoteUsr'",
    ]
    assert result.stderr.splitlines() == [
        f"devnix: error: {missing} does not exist",
        "hint: pass the path of a devcontainer.json",
        f"devnix: error: no .devcontainer/devcontainer.json or .devcontainer.json in {empty}",
        "hint: pass the path of the devcontainer.json to check",
    ]


def test_json_for_many_paths_lists_each_in_the_single_path_shape(tmp_path: Path) -> None:
    good = project(tmp_path, GOOD)
    unknown = project(tmp_path, UNKNOWN, "unknown.json")
    missing = tmp_path / "gone.json"
    code, output = run(str(good), str(unknown), str(missing), "--json")
    report = json.loads(output)
    assert code == 6 and report["exit_code"] == 6 and report["valid"] is False
    assert [entry["file"] for entry in report["files"]] == [str(good), str(unknown), str(missing)]
    # Each entry is exactly what `validate --json` prints for that path alone.
    assert report["files"][:2] == [json.loads(run(str(path), "--json")[1]) for path in (good, unknown)]
    assert report["files"][2]["exit_code"] == 6 and report["files"][2]["findings"] == []
    assert report["files"][2]["error"] == {
        "message": f"{missing} does not exist",
        "hint": "pass the path of a devcontainer.json",
    }
    code, output = run(str(good), str(good), "--json")
    assert code == 0 and json.loads(output)["valid"] is True


def test_the_schema_is_looked_for_once_however_many_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_locate = schema.locate  # offline: each look would wait out a download's timeout
    calls = []

    def offline(directory: Path | None = None) -> Path:
        calls.append(directory)
        return real_locate(directory, base_url="http://127.0.0.1:9/")

    monkeypatch.setattr(schema, "locate", offline)
    paths = [str(project(tmp_path, GOOD, f"{name}.json")) for name in ("a", "b", "c")]
    result = CliRunner().invoke(app, ["validate", *paths])
    assert result.exit_code == 0
    assert calls == [None]
    assert result.stdout.count("schema check skipped: cannot download the devcontainer schema") == 3


def test_a_schema_dir_without_the_schema_stops_the_run_once(tmp_path: Path) -> None:
    paths = [str(project(tmp_path, GOOD, f"{name}.json")) for name in ("a", "b")]
    result = CliRunner().invoke(app, ["validate", "--schema-dir", str(tmp_path), *paths])
    assert result.exit_code == 6
    assert result.stdout == ""
    assert (
        result.stderr.count("devnix: error:") == 1 and "has no devContainer.base.schema.json" in result.stderr
    )
