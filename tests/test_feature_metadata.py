"""The `nix` Feature's metadata and install-time logic, without Docker (fast).

- ``features/src/nix/devcontainer-feature.json`` validates against the devcontainer Feature schema
  (``../shared/schemas/devContainerFeature.schema.json``), and every option is documented and typed.
- The shell logic of ``features/src/nix/lib.sh`` (sourced by install.sh) runs here in a subprocess,
  under every POSIX shell found (dash and bash): the seccomp probe with stand-ins for ``nix-build``
  that fail the way Nix does under emulation, succeed, or fail otherwise, and the nix.conf it then
  writes, which must follow devnix's own rules (``devnix.nixconf``).

The real Feature runs in containers in tests/docker/test_features.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from devnix import nixconf
from tests.support import SCHEMAS, skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[1]
FEATURE_DIR = REPO_ROOT / "features" / "src" / "nix"
FEATURE_TEST_DIR = REPO_ROOT / "features" / "test" / "nix"
METADATA = FEATURE_DIR / "devcontainer-feature.json"
LIB = FEATURE_DIR / "lib.sh"
INSTALL = FEATURE_DIR / "install.sh"
ENTRYPOINT = FEATURE_DIR / "entrypoint.sh"
SCHEMA = SCHEMAS / "devContainerFeature.schema.json"
# The stand-in the seccomp scenario bakes into its image (one stand-in for both test levels).
SECCOMP_FAILING_STANDIN = FEATURE_TEST_DIR / "seccomp_probe_fails" / "seccomp-failing-nix-build"

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")

SHELLS = [name for name in ("dash", "bash") if shutil.which(name)] or ["sh"]


def load_metadata() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(METADATA.read_text())
    return data


def option_items() -> list[tuple[str, dict[str, Any]]]:
    return sorted(load_metadata()["options"].items())


# ------------------------------------------------------------------------------------------------
# Metadata


def schema_errors(schema: dict[str, Any], instance: dict[str, Any]) -> list[str]:
    """Validation errors from jsonschema-rs, or jsonschema when that is what is installed."""
    try:
        import jsonschema_rs
    except ImportError:
        pass
    else:
        validator = jsonschema_rs.validator_for(schema)
        return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(instance)]
    try:
        import jsonschema  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        skip_or_fail("neither jsonschema-rs nor jsonschema is installed")
    validator_cls = jsonschema.validators.validator_for(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator_cls(schema).iter_errors(instance)]


@pytest.mark.shared
def test_metadata_validates_against_the_feature_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema_errors(schema, load_metadata()) == []


@pytest.mark.shared
def test_the_schema_check_catches_a_bad_option() -> None:
    """The validator really applies the schema (an option without a default must fail it)."""
    schema = json.loads(SCHEMA.read_text())
    bad = load_metadata()
    bad["options"]["flakes"] = {"type": "boolean", "description": "no default"}
    assert schema_errors(schema, bad)


def test_id_matches_the_folder_and_version_is_semver() -> None:
    data = load_metadata()
    assert data["id"] == FEATURE_DIR.name == "nix"
    assert SEMVER.match(data["version"]), data["version"]
    assert data["name"] and data["description"]


def test_installs_after_common_utils() -> None:
    assert "ghcr.io/devcontainers/features/common-utils" in load_metadata()["installsAfter"]


def test_the_options_the_issue_asks_for_are_there() -> None:
    options = load_metadata()["options"]
    for name in ("installMethod", "multiUser", "flakes", "extraNixConfig", "nixPath", "trustedUsers"):
        assert name in options, name
    assert "packages" in options or "flakeUri" in options
    assert set(options["installMethod"]["enum"]) == {"auto", "distro", "official"}
    assert options["installMethod"]["default"] == "auto"
    assert options["multiUser"]["type"] == options["flakes"]["type"] == "boolean"


@pytest.mark.parametrize(("name", "option"), option_items(), ids=[n for n, _ in option_items()])
def test_every_option_is_described_with_a_default_of_its_type(name: str, option: dict[str, Any]) -> None:
    assert option.get("description", "").strip(), f"{name} has no description"
    assert "default" in option, f"{name} has no default"
    expected = {"boolean": bool, "string": str}[option["type"]]
    assert isinstance(option["default"], expected), f"{name}: default {option['default']!r} is not {expected}"
    if "enum" in option:
        assert option["default"] in option["enum"]
    for proposal in option.get("proposals", []):
        assert isinstance(proposal, str)


def test_nix_path_default_is_devnix_default() -> None:
    assert load_metadata()["options"]["nixPath"]["default"] == nixconf.DEFAULT_NIX_PATH


def test_install_sh_reads_exactly_the_declared_options() -> None:
    """Each option reaches install.sh as its upper-cased id (the devcontainer CLI's convention)."""
    read = set(re.findall(r"^OPT_\w+=\$\{([A-Z0-9_]+)[:-]", INSTALL.read_text(), flags=re.M))
    declared = {re.sub(r"[^A-Za-z0-9_]", "_", name).upper() for name in load_metadata()["options"]}
    assert read == declared


def test_defaults_in_install_sh_match_the_metadata() -> None:
    """install.sh falls back to the same defaults when run outside the CLI."""
    text = INSTALL.read_text()
    for name, option in load_metadata()["options"].items():
        match = re.search(rf"^OPT_\w+=\$\{{{name.upper()}:?-([^}}]*)\}}$", text, flags=re.M)
        assert match, name
        default = option["default"]
        expected = ("true" if default else "false") if isinstance(default, bool) else default
        assert match.group(1) == expected, name


def test_the_entrypoint_is_where_install_sh_puts_it() -> None:
    data = load_metadata()
    assert data["entrypoint"] == "/usr/local/share/devnix/nix/entrypoint.sh"
    assert "DEVNIX_NIX_SHARE=${DEVNIX_NIX_SHARE:-/usr/local/share/devnix/nix}" in LIB.read_text()
    assert os.access(ENTRYPOINT, os.X_OK) and os.access(INSTALL, os.X_OK)


def test_no_nix_volume() -> None:
    """A /nix volume hides a rebuilt image's store (devcontainers/features#1505): none here."""
    assert "mounts" not in load_metadata()


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("script", [INSTALL, LIB, ENTRYPOINT], ids=lambda p: p.name)
def test_scripts_parse_as_posix_sh(shell: str, script: Path) -> None:
    proc = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------------
# lib.sh in a subprocess


def run_lib(
    shell: str, script: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Source lib.sh in SHELL and run SCRIPT; only PATH and HOME come from this process."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    base["DEVNIX_SHELL_RC_FILES"] = ""  # never touch this machine's shell rc files
    full = {**base, **(env or {})}
    return subprocess.run(
        [shell, "-c", f'set -eu; . "$0"; {script}', str(LIB)],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def write_standin(path: Path, body: str) -> Path:
    """A stand-in nix-build that records its arguments next to itself, then runs BODY."""
    path.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "{path}.args"\n{body}\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def standins(tmp_path: Path) -> dict[str, Path]:
    copied = tmp_path / "seccomp-failing-nix-build"
    shutil.copy(SECCOMP_FAILING_STANDIN, copied)
    copied.chmod(0o755)
    return {
        # The scenario's own stand-in: prints Nix's message, exits 1.
        "seccomp": copied,
        "loads": write_standin(tmp_path / "ok-nix-build", "echo /nix/store/0000-devnix-seccomp-probe"),
        "other": write_standin(
            tmp_path / "other-nix-build",
            "echo \"error: the group 'nixbld' specified in 'build-users-group' does not exist\" >&2; exit 1",
        ),
        "seccomp-recorded": write_standin(
            tmp_path / "recorded-seccomp-nix-build",
            'echo "error: unable to load seccomp BPF program: Invalid argument" >&2; exit 1',
        ),
    }


def test_the_failing_standin_fails_like_nix() -> None:
    proc = subprocess.run([str(SECCOMP_FAILING_STANDIN)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "error: unable to load seccomp BPF program: Invalid argument" in proc.stderr


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("standin", "verdict"),
    [
        ("seccomp", "unsupported"),
        ("seccomp-recorded", "unsupported"),
        ("loads", "loads"),
        ("other", "unknown"),
    ],
)
def test_probe_verdict(shell: str, standins: dict[str, Path], standin: str, verdict: str) -> None:
    proc = run_lib(shell, "probe_syscall_filter", {"DEVNIX_PROBE_NIX_BUILD": str(standins[standin])})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == verdict
    if verdict == "unknown":
        assert "build-users-group" in proc.stderr  # the unrelated failure is shown


def test_probe_builds_a_fresh_trivial_derivation_offline_with_the_filter_on(
    standins: dict[str, Path],
) -> None:
    proc = run_lib(SHELLS[0], "probe_syscall_filter", {"DEVNIX_PROBE_NIX_BUILD": str(standins["loads"])})
    assert proc.stdout.strip() == "loads"
    args = Path(f"{standins['loads']}.args").read_text().splitlines()
    pairs = {(args[i + 1], args[i + 2]) for i, a in enumerate(args[:-2]) if a == "--option"}
    assert ("filter-syscalls", "true") in pairs
    assert ("substituters", "") in pairs  # offline: never asks a binary cache
    assert ("sandbox", "false") in pairs
    assert "--no-out-link" in args
    expr = args[args.index("-E") + 1]
    assert expr.startswith("derivation {") and 'builder = "/bin/sh"' in expr
    assert "builtins.currentSystem" in expr and "nonce" in expr


def decide_and_write(
    shell: str, conf: Path, standin: Path, **options: str
) -> subprocess.CompletedProcess[str]:
    env = {"DEVNIX_PROBE_NIX_BUILD": str(standin), **options}
    return run_lib(shell, f'decide_filter_syscalls; write_nix_conf "{conf}"', env)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("standin", "filter_off"), [("seccomp", True), ("loads", False), ("other", False)])
def test_filter_syscalls_false_is_written_only_when_the_filter_cannot_load(
    shell: str, tmp_path: Path, standins: dict[str, Path], standin: str, filter_off: bool
) -> None:
    conf = tmp_path / "etc-nix" / "nix.conf"
    proc = decide_and_write(shell, conf, standins[standin])
    assert proc.returncode == 0, proc.stderr
    text = conf.read_text()
    values = nixconf.parse(text)
    assert nixconf.filter_syscalls_off(values) is filter_off
    assert ("filter-syscalls" in values) is filter_off
    if filter_off:
        assert "writing filter-syscalls = false" in proc.stdout
    # The rest follows devnix's rules either way: flakes, no sandbox, no build users (single-user).
    assert nixconf.flakes_enabled(values)
    assert values["sandbox"] == "false"
    assert values["build-users-group"] == ""


@pytest.mark.parametrize("emulated", [False, True])
def test_nix_conf_agrees_with_devnix_rules(tmp_path: Path, standins: dict[str, Path], emulated: bool) -> None:
    """Every setting devnix.nixconf wants for single-user Nix is in the Feature's nix.conf."""
    conf = tmp_path / "nix.conf"
    standin = standins["seccomp" if emulated else "loads"]
    proc = decide_and_write(SHELLS[0], conf, standin, OPT_TRUSTEDUSERS="vscode")
    assert proc.returncode == 0, proc.stderr
    values = nixconf.parse(conf.read_text())
    wanted = nixconf.settings(
        nixconf.NixOptions(flakes=True, trusted_users=("root", "vscode")), emulated=emulated
    )
    for setting in wanted:
        assert values.get(setting.key) == setting.value, setting


def test_daemon_mode_uses_build_users(tmp_path: Path, standins: dict[str, Path]) -> None:
    conf = tmp_path / "nix.conf"
    proc = decide_and_write(SHELLS[0], conf, standins["loads"], OPT_MULTIUSER="true")
    assert proc.returncode == 0, proc.stderr
    assert nixconf.parse(conf.read_text())["build-users-group"] == "nixbld"


def test_flakes_off_writes_no_experimental_features(tmp_path: Path, standins: dict[str, Path]) -> None:
    conf = tmp_path / "nix.conf"
    proc = decide_and_write(SHELLS[0], conf, standins["loads"], OPT_FLAKES="false")
    assert proc.returncode == 0, proc.stderr
    values = nixconf.parse(conf.read_text())
    assert "experimental-features" not in values
    assert not nixconf.flakes_enabled(values)


def test_rewriting_replaces_the_block_and_keeps_the_rest(tmp_path: Path, standins: dict[str, Path]) -> None:
    conf = tmp_path / "nix.conf"
    conf.write_text("# the image's own settings\nkeep-going = true\n")
    extra = "max-jobs = 3\nkeep-outputs = true, connect-timeout = 7\nextra-sandbox-paths = /a=/b,/c"
    for standin in ("seccomp", "loads"):  # emulated first, then native: the second run decides
        proc = decide_and_write(SHELLS[0], conf, standins[standin], OPT_EXTRANIXCONFIG=extra)
        assert proc.returncode == 0, proc.stderr
    text = conf.read_text()
    assert text.count("# >>> devnix nix Feature >>>") == 1
    assert text.count("# <<< devnix nix Feature <<<") == 1
    assert text.startswith("# the image's own settings\nkeep-going = true\n")
    values = nixconf.parse(text)
    assert "filter-syscalls" not in values  # the native run's verdict replaced the emulated one
    assert values["keep-going"] == "true"
    assert values["max-jobs"] == "3"
    assert values["connect-timeout"] == "7"
    assert values["extra-sandbox-paths"] == "/a=/b,/c"
    settings = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert settings[-1] == "extra-sandbox-paths = /a=/b,/c"  # extraNixConfig comes last


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", None),
        ("vscode", "root vscode"),
        ("vscode, alice bob", "root vscode alice bob"),
        ("alice,root", "alice root"),
    ],
)
def test_trusted_users(tmp_path: Path, standins: dict[str, Path], given: str, expected: str | None) -> None:
    conf = tmp_path / "nix.conf"
    proc = decide_and_write(SHELLS[0], conf, standins["loads"], OPT_TRUSTEDUSERS=given)
    assert proc.returncode == 0, proc.stderr
    assert nixconf.parse(conf.read_text()).get("trusted-users") == expected


@pytest.mark.parametrize("shell", SHELLS)
def test_split_helpers(shell: str) -> None:
    proc = run_lib(
        shell,
        'split_nix_config "$EXTRA"; echo ---; split_list "$LIST"',
        {"EXTRA": "a = 1\n  b = 2, c = 3\n\nd = /x,/y\n", "LIST": " hello,ripgrep  nixpkgs.jq ,"},
    )
    assert proc.returncode == 0, proc.stderr
    config, items = proc.stdout.split("---\n")
    assert config.splitlines() == ["a = 1", "b = 2", "c = 3", "d = /x,/y"]
    assert items.splitlines() == ["hello", "ripgrep", "nixpkgs.jq"]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("mode", ["single-user", "daemon"])
def test_profile_script(shell: str, tmp_path: Path, mode: str) -> None:
    """NIX_PATH (quotes and all) unless already set; the profiles on PATH once; NIX_REMOTE for daemon."""
    profile = tmp_path / "profile.d" / "devnix-nix.sh"
    bashrc = tmp_path / "bash.bashrc"
    bashrc.write_text("# an image's bashrc\n")
    nix_path = "nixpkgs=/it's/here:devnix=/x"
    env = {
        "DEVNIX_PROFILE_SCRIPT": str(profile),
        "DEVNIX_SHELL_RC_FILES": str(bashrc),
        "OPT_NIXPATH": nix_path,
        "MODE": mode,
    }
    for _ in range(2):  # idempotent
        proc = run_lib(shell, "write_profile_script", env)
        assert proc.returncode == 0, proc.stderr
    assert bashrc.read_text().count(str(profile)) == 2  # one `if [ -r X ]; then . X; fi` line
    show = 'unset NIX_PATH; . "$P"; . "$P"; printf "%s\\n" "$NIX_PATH" "$PATH" "${NIX_REMOTE-unset}"'
    proc = subprocess.run(
        [shell, "-c", show],
        env={"P": str(profile), "PATH": "/usr/bin:/bin", "HOME": "/home/u"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got_nix_path, got_path, _ = proc.stdout.splitlines()
    assert got_nix_path == nix_path
    assert got_path.split(":").count("/home/u/.nix-profile/bin") == 1
    assert got_path.split(":").count("/nix/var/nix/profiles/default/bin") == 1
    assert ("NIX_REMOTE=daemon" in profile.read_text()) is (mode == "daemon")
    kept = subprocess.run(
        [shell, "-c", '. "$P"; printf "%s" "$NIX_PATH"'],
        env={"P": str(profile), "PATH": "/usr/bin:/bin", "NIX_PATH": "mine=/x"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert kept.stdout == "mine=/x"


@pytest.mark.parametrize("state", [None, "single-user"])
def test_entrypoint_without_daemon_only_runs_its_arguments(tmp_path: Path, state: str | None) -> None:
    if state:
        (tmp_path / "feature.env").write_text(f"DEVNIX_NIX_MODE={state}\nDEVNIX_NIX_DAEMON=/nonexistent\n")
    proc = subprocess.run(
        [str(ENTRYPOINT), "echo", "started"],
        env={"PATH": "/usr/bin:/bin", "DEVNIX_NIX_SHARE": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "started\n", "")


# ------------------------------------------------------------------------------------------------
# features/test/nix in the reference CLI's format

LOCAL_IMAGE_PREFIX = "devnix-features-test/"  # the local tags tests/docker/test_features.py makes
HELPERS = {"test.sh", "duplicate.sh", "nix-checks.sh"}


def scenarios() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads((FEATURE_TEST_DIR / "scenarios.json").read_text())
    return data


def test_every_scenario_has_its_script_and_every_script_a_scenario() -> None:
    names = set(scenarios())
    scripts = {p.name for p in FEATURE_TEST_DIR.glob("*.sh")} - HELPERS
    assert scripts == {f"{name}.sh" for name in names}
    for path in FEATURE_TEST_DIR.glob("*.sh"):
        assert os.access(path, os.X_OK), path
        if path.name != "nix-checks.sh":
            text = path.read_text()
            assert "source dev-container-features-test-lib" in text and "reportResults" in text, path


@pytest.mark.parametrize("name", sorted(scenarios()))
def test_scenario_images_are_local(name: str) -> None:
    """No scenario needs an internet registry: images are the local stand-in tags."""
    scenario = scenarios()[name]
    assert scenario["features"].keys() == {"nix"}
    if "image" in scenario:
        assert scenario["image"].startswith(LOCAL_IMAGE_PREFIX)
    else:
        dockerfile = FEATURE_TEST_DIR / name / scenario["build"]["dockerfile"]
        froms = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), flags=re.M)
        assert froms and all(f.startswith(LOCAL_IMAGE_PREFIX) for f in froms), froms
    for other in scenarios():
        assert other == name or name not in other, "--filter matches names by substring"


# ------------------------------------------------------------------------------------------------
# lib.sh without sed, awk or getent (store-only images such as nixos/nix have none of them)

# What a store-only Nix image (NixOS/nix docker.nix) has of the tools lib.sh may call: coreutils,
# grep and findutils. No sed, awk, getent, su, useradd.
STORE_ONLY_TOOLS = (
    *("basename", "cat", "chmod", "chown", "chroot", "cp", "cut", "date", "dd", "dirname", "env"),
    *("head", "id", "ln", "ls", "mkdir", "mktemp", "mv", "od", "printf", "readlink", "rm", "sleep"),
    *("sort", "stat", "tail", "tee", "touch", "tr", "uname", "wc"),
    *("grep", "find", "xargs"),
)
MISSING_IN_STORE_ONLY = ("sed", "awk", "gawk", "mawk", "getent", "su", "useradd", "groupadd")


def make_store_only_bin(bin_dir: Path) -> str:
    """BIN_DIR with symlinks to the store-only image's tools only (those this machine has)."""
    bin_dir.mkdir(exist_ok=True)
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    for tool in STORE_ONLY_TOOLS:
        found = shutil.which(tool, path=search)
        if found:
            (bin_dir / tool).symlink_to(found)
    for tool in ("cat", "cut", "tr", "grep", "mkdir", "mv", "chmod", "tail", "id"):
        assert (bin_dir / tool).exists(), f"{tool} is missing on this machine"
    for tool in MISSING_IN_STORE_ONLY:
        assert shutil.which(tool, path=str(bin_dir)) is None, tool
    return str(bin_dir)


@pytest.fixture
def store_only_path(tmp_path: Path) -> str:
    """A PATH that holds what a store-only image has of the tools lib.sh may call, and no more."""
    return make_store_only_bin(tmp_path / "store-only-bin")


def run_lib_store_only(
    shell: str, path: str, script: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # The shell itself by its full path: PATH has no shell (a store-only image's is /bin/sh).
    proc = run_lib(shutil.which(shell) or shell, script, {"PATH": path, **(env or {})})
    # A missing tool shows as "sed: not found" (dash) or "sed: command not found" (bash).
    assert "not found" not in proc.stderr, proc.stderr
    return proc


# The implementations lib.sh had before it dropped sed and awk: the new ones must agree with them.
REFERENCE_SPLIT_NIX_CONFIG = r"""printf '%s\n' "$1" | awk '
    {
        n = split($0, parts, ",")
        line = parts[1]
        for (i = 2; i <= n; i++) {
            if (parts[i] ~ /^[ \t]*[A-Za-z0-9_.-]+[ \t]*=/) {
                print line
                line = parts[i]
            } else {
                line = line "," parts[i]
            }
        }
        print line
    }' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d'"""
REFERENCE_SPLIT_LIST = r"""printf '%s\n' "$1" | tr ',\t' '  ' | tr -s ' ' '\n' | sed '/^$/d'"""

SPLIT_INPUTS = [
    "",
    "a = 1\n  b = 2, c = 3\n\nd = /x,/y\n",
    "max-jobs = 3\nkeep-outputs = true, connect-timeout = 7\nextra-sandbox-paths = /a=/b,/c",
    "substituters = https://a https://b,trusted-public-keys = k1 k2",
    "a = 1,",
    ",a = 1",
    "a = x, y=z",
    "a = x,, b = 2",
    "  spaced.key_1-x   =   v ,\tnext = w\t",
    "a = 1\r\nb = 2\r\n",
    "not a setting, still = value",
    'a = it\'s, "quoted", b = $HOME \\n',
    "hello,ripgrep  nixpkgs.jq ,",
    " , ,\t,",
]


def reference_output(script: str, value: str) -> str:
    if not (shutil.which("awk") and shutil.which("sed")):
        pytest.skip("the reference implementation needs awk and sed")
    proc = subprocess.run(["sh", "-c", script, "sh", value], capture_output=True, text=True, check=True)
    return proc.stdout


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("value", SPLIT_INPUTS, ids=range(len(SPLIT_INPUTS)))
def test_split_helpers_agree_with_the_awk_and_sed_versions(
    shell: str, store_only_path: str, value: str
) -> None:
    for function, reference in (
        ("split_nix_config", REFERENCE_SPLIT_NIX_CONFIG),
        ("split_list", REFERENCE_SPLIT_LIST),
    ):
        proc = run_lib_store_only(shell, store_only_path, f'{function} "$VALUE"', {"VALUE": value})
        assert proc.returncode == 0, proc.stderr
        expected = reference_output(reference, value)
        if function == "split_list":
            expected = expected.replace("\r", "")  # the new one also splits on CR
        assert proc.stdout == expected, (function, value)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("word", ["", "plain", "it's", "''", "a'b'c'", '$HOME `x` \\ "q"', " lead trail "])
def test_shell_quote_round_trips(shell: str, store_only_path: str, word: str) -> None:
    proc = run_lib_store_only(
        shell, store_only_path, 'eval "printf %s $(shell_quote "$WORD")"', {"WORD": word}
    )
    assert (proc.returncode, proc.stdout) == (0, word), proc.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_passwd_field_reads_etc_passwd_without_getent(shell: str, store_only_path: str) -> None:
    import pwd

    entry = pwd.getpwuid(0)
    proc = run_lib_store_only(
        shell,
        store_only_path,
        f"passwd_field {entry.pw_name} 6; passwd_field {entry.pw_name} 7; passwd_field no-such-user 6",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [entry.pw_dir, entry.pw_shell]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("standin", "filter_off"), [("seccomp", True), ("loads", False), ("other", False)])
def test_probe_and_nix_conf_without_sed_or_awk(
    shell: str,
    tmp_path: Path,
    standins: dict[str, Path],
    store_only_path: str,
    standin: str,
    filter_off: bool,
) -> None:
    """The whole configure path of a store-only image: the probe's verdict and its message, and a
    rewrite of the image's nix.conf (docker.nix's, whose last line has no newline here)."""
    conf = tmp_path / "nix.conf"
    conf.write_text("build-users-group = nixbld\nsandbox = false")
    extra = "max-jobs = 3\nkeep-outputs = true, connect-timeout = 7\nextra-sandbox-paths = /a=/b,/c"
    env = {
        "DEVNIX_PROBE_NIX_BUILD": str(standins[standin]),
        "OPT_TRUSTEDUSERS": "vscode, alice",
        "OPT_EXTRANIXCONFIG": extra,
    }
    for _ in range(2):  # the second run replaces the block
        proc = run_lib_store_only(
            shell, store_only_path, f'decide_filter_syscalls; write_nix_conf "{conf}"', env
        )
        assert proc.returncode == 0, proc.stderr
    if standin == "other":
        assert "[nix feature]   probe: error: the group 'nixbld'" in proc.stderr
    text = conf.read_text()
    assert text.startswith("build-users-group = nixbld\nsandbox = false\n# >>> devnix nix Feature >>>\n")
    assert text.count("# >>> devnix nix Feature >>>") == 1 and text.endswith("# <<< devnix nix Feature <<<\n")
    values = nixconf.parse(text)
    assert nixconf.filter_syscalls_off(values) is filter_off
    assert values["build-users-group"] == ""  # the block comes last, so it wins
    assert values["trusted-users"] == "root vscode alice"
    assert (values["max-jobs"], values["connect-timeout"], values["extra-sandbox-paths"]) == (
        "3",
        "7",
        "/a=/b,/c",
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_profile_script_without_sed_or_awk(shell: str, tmp_path: Path, store_only_path: str) -> None:
    profile = tmp_path / "devnix-nix.sh"
    env = {"DEVNIX_PROFILE_SCRIPT": str(profile), "OPT_NIXPATH": "nixpkgs=/it's/here", "MODE": "daemon"}
    proc = run_lib_store_only(shell, store_only_path, "write_profile_script", env)
    assert proc.returncode == 0, proc.stderr
    shown = subprocess.run(
        [shutil.which(shell) or shell, "-c", '. "$P"; printf "%s" "$NIX_PATH"'],
        env={"P": str(profile), "PATH": store_only_path},
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.stdout == "nixpkgs=/it's/here", shown.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")
@pytest.mark.parametrize("shell", SHELLS)
def test_run_as_changes_user_without_su(shell: str) -> None:
    """No su in a store-only image: coreutils' chroot --userspec into / does it."""
    # Outside pytest's root-only tmp folder: nobody must reach the tools.
    with tempfile.TemporaryDirectory(prefix="devnix-store-only-") as folder:
        Path(folder).chmod(0o755)
        path = make_store_only_bin(Path(folder) / "bin")
        script = """run_as nobody id -un; run_as nobody /bin/sh -c 'printf "%s\\n" "$0"' "a b'c\""""
        proc = run_lib_store_only(shell, path, script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["nobody", "a b'c"]


COMMAND_WORD = re.compile(r"(?:^|[|;&(`]|\$\(|\bthen|\bdo|\belse)\s*(sed|awk|getent|useradd|groupadd|su)\b")


@pytest.mark.parametrize("script", [INSTALL, LIB, ENTRYPOINT], ids=lambda p: p.name)
def test_scripts_call_sed_awk_getent_or_user_tools_only_where_they_exist(script: Path) -> None:
    """sed and awk are not called at all; getent, su, useradd and groupadd only on a line after a
    `command -v` check for them (store-only images lack them all)."""
    lines = script.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        code = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        for match in COMMAND_WORD.finditer(code):
            tool = match.group(1)
            assert tool not in ("sed", "awk"), f"{script.name}:{number}: {line.strip()}"
            guarded = any(f"command -v {tool}" in earlier for earlier in lines[max(0, number - 12) : number])
            assert guarded, f"{script.name}:{number}: {tool} without a `command -v {tool}` check"


# ------------------------------------------------------------------------------------------------
# The FHS loader script the Feature ships

FEATURE_FHS_LOADER = FEATURE_DIR / "fhs-loader.sh"
SCAFFOLD_FHS_LOADER = REPO_ROOT / "devnix" / "scaffolds" / "fhs-loader.sh"


def test_the_shipped_fhs_loader_is_devnix_scaffold() -> None:
    assert FEATURE_FHS_LOADER.read_bytes() == SCAFFOLD_FHS_LOADER.read_bytes(), (
        "features/src/nix/fhs-loader.sh differs from devnix/scaffolds/fhs-loader.sh; fix with:\n"
        "    cp devnix/scaffolds/fhs-loader.sh features/src/nix/fhs-loader.sh"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_fhs_loader_parses_as_posix_sh(shell: str) -> None:
    proc = subprocess.run([shell, "-n", str(FEATURE_FHS_LOADER)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_install_sh_runs_the_fhs_loader_and_fails_with_it() -> None:
    text = INSTALL.read_text()
    assert '/bin/sh "$FEATURE_DIR/fhs-loader.sh"' in text
    assert re.search(r"^ensure_fhs_loader$", text, flags=re.M), "install.sh never calls ensure_fhs_loader"
    assert 'die "fhs-loader.sh failed' in text
