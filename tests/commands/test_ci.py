"""``devnix ci github`` through the CLI: what it writes, what it refuses, and how it says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devnix import __version__
from devnix.cli import app
from devnix.commands.ci import requirement
from devnix.errors import UsageError
from devnix.workflows import IMAGE_WORKFLOW, PUBLISH_WORKFLOW

runner = CliRunner()
REPO = "https://github.com/acme/devnix"


def ci(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["ci", "github", *args])
    return result.exit_code, result.stdout, result.stderr


def test_it_writes_the_image_workflow_and_says_where_each_system_builds(tmp_path: Path) -> None:
    code, out, err = ci(str(tmp_path), "--devnix-repo", REPO, "--schedule", "0 4 * * 1")
    assert code == 0, err
    text = (tmp_path / IMAGE_WORKFLOW).read_text()
    assert f'DEVNIX_REQUIREMENT: "devnix @ git+{REPO}@v{__version__}"' in text
    assert 'cron: "0 4 * * 1"' in text
    assert "x86_64-linux on ubuntu-24.04, aarch64-linux on ubuntu-24.04-arm (native)" in out
    assert "on schedule (0 4 * * 1, UTC)" in out
    assert f"wrote:    {tmp_path / IMAGE_WORKFLOW}" in out
    assert not (tmp_path / PUBLISH_WORKFLOW).exists()


def test_an_existing_workflow_is_kept_without_force(tmp_path: Path) -> None:
    assert ci(str(tmp_path), "--devnix-repo", REPO)[0] == 0
    target = tmp_path / IMAGE_WORKFLOW
    target.write_text("# mine\n")
    code, _, err = ci(str(tmp_path), "--devnix-repo", REPO, "--tag", "2.24")
    assert code == 3
    assert err.splitlines()[0] == f"devnix: error: {target} already exists"
    assert err.splitlines()[1].startswith("hint: pass --force")
    assert target.read_text() == "# mine\n"
    assert ci(str(tmp_path), "--devnix-repo", REPO, "--tag", "2.24", "--force")[0] == 0
    assert 'TAG: "2.24"' in target.read_text()


def test_dry_run_writes_nothing_and_json_carries_the_text(tmp_path: Path) -> None:
    (tmp_path / "features" / "src" / "nix").mkdir(parents=True)
    code, out, err = ci(str(tmp_path), "--devnix-repo", REPO, "--features", "--dry-run", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["files"] == [IMAGE_WORKFLOW, PUBLISH_WORKFLOW]
    assert data["runners"] == [
        {"system": "x86_64-linux", "runner": "ubuntu-24.04", "arch": "amd64"},
        {"system": "aarch64-linux", "runner": "ubuntu-24.04-arm", "arch": "arm64"},
    ]
    assert data["registry"] == "ghcr.io/${{ github.repository_owner }}"
    assert "devnix publish features features/src" in data["contents"][PUBLISH_WORKFLOW]
    assert "templates/src" not in data["contents"][PUBLISH_WORKFLOW]
    assert not (tmp_path / ".github").exists()
    code, out, _ = ci(str(tmp_path), "--devnix-repo", REPO, "--dry-run", "--system", "aarch64-linux")
    assert code == 0 and f"would write:    {tmp_path / IMAGE_WORKFLOW}" in out
    assert '    |           devnix manifest create "$image:$TAG" "$image:$TAG-arm64" --push' in out


def test_systems_and_nix_options_come_from_the_command_line(tmp_path: Path) -> None:
    code, _, err = ci(
        str(tmp_path), "--devnix-repo", REPO, "--system", "aarch64-linux,x86_64-linux",
        "--nix-option", "substituters=", "--builder-image", "docker.io/nixos/nix:2.24.9",
    )  # fmt: skip
    assert code == 0, err
    text = (tmp_path / IMAGE_WORKFLOW).read_text()
    assert text.index("system: aarch64-linux") < text.index("system: x86_64-linux")
    assert "--push --option substituters ''" in text
    assert 'BUILDER_IMAGE: "docker.io/nixos/nix:2.24.9"' in text


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        ((), 2, "PyPI's 'devnix' is another project"),
        (("--devnix-repo", "github.com/acme/devnix"), 2, "is not an https:// or ssh:// git URL"),
        (("--devnix-repo", REPO, "--features"), 2, "has neither features/src nor templates/src"),
        (("--devnix-repo", REPO, "--nix-option", "substituters"), 2, "has no '='"),
        (("--devnix-repo", REPO, "--system", "i686-linux"), 2, "no GitHub-hosted runner builds"),
        (("--devnix-repo", REPO, "--registry", "ghcr.io"), 2, "has no namespace"),
    ],
)
def test_bad_input_is_one_line_and_a_hint(
    tmp_path: Path, args: tuple[str, ...], code: int, words: str
) -> None:
    got, out, err = ci(str(tmp_path), *args)
    assert got == code, err
    lines = err.splitlines()
    assert len(lines) == 2 and words in lines[0] and lines[1].startswith("hint: "), err
    assert out == "" and not (tmp_path / ".github").exists()


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    code, _, err = ci(str(tmp_path / "nope"), "--devnix-repo", REPO)
    assert code == 6 and "is not a folder" in err


def test_a_devnix_installed_from_git_pins_that_commit() -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert requirement(None, (REPO, commit)) == f"devnix @ git+{REPO}@{commit}"
    assert requirement(f"git+{REPO}", (REPO, commit)) == f"devnix @ git+{REPO}@v{__version__}"
    with pytest.raises(UsageError):
        requirement(f"{REPO}@main", None)
