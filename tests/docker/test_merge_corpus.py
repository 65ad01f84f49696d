"""Every corpus file merged by `devnix init --merge` is still read by the reference CLI."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from standins import DevcontainerCLI, last_json_line
from typer.testing import CliRunner

from devnix import jsonc
from devnix.cli import app
from tests.support import CORPUS


@pytest.mark.shared
def test_reference_cli_reads_every_merged_corpus_file(devcontainer: DevcontainerCLI, tmp_path: Path) -> None:
    files = sorted(CORPUS.glob("*.json"))
    assert len(files) == 78
    runner = CliRunner()
    merged: list[Path] = []
    refused: dict[str, str] = {}
    for index, source in enumerate(files):
        workspace = tmp_path / f"w{index}"
        (workspace / ".devcontainer").mkdir(parents=True)
        shutil.copy(source, workspace / ".devcontainer" / "devcontainer.json")
        result = runner.invoke(
            app,
            ["init", str(workspace), "--merge", "--image", "localhost:9/nix:x", "--platform", "linux/arm64"],
        )
        if result.exit_code == 2 and "compose file" in result.stderr:
            # The corpus has no compose files: their configs are refused for that, and say so.
            # (tests/test_compose.py merges each of them with a compose file written beside it.)
            assert "compose file" in result.stderr and "is missing" in result.stderr, result.stderr
            refused[source.name] = result.stderr.splitlines()[0]
            continue
        assert result.exit_code == 0, f"{source.name}: {result.output}"
        merged.append(workspace)
    # Only the compose configs are refused (their compose file is missing), and those are all of them.
    compose = {p.name for p in files if "dockerComposeFile" in jsonc.parse(jsonc.read_file(p)).value}
    assert set(refused) == compose

    def read(workspace: Path) -> tuple[Path, int, str, str]:
        done = devcontainer.read_configuration(workspace)
        return workspace, done.returncode, done.stdout, done.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        for workspace, code, stdout, stderr in pool.map(read, merged):
            assert code == 0, f"{workspace}: {stderr[-1500:]}"
            configuration = last_json_line(stdout)["configuration"]
            assert configuration["containerEnv"]["NIX_PATH"] == "nixpkgs=channel:nixos-unstable"
            assert "--platform=linux/arm64" in json.dumps(configuration)
