"""The FHS loader step: one script, found in Dockerfiles however they spell the step."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnix.fhsloader import FHS_LOADERS, LIB_DIR, dockerfile_adds_loader, script_text

ROOT = Path(__file__).resolve().parents[1]


def test_the_script_is_posix_sh_and_names_the_paths_devnix_reports() -> None:
    text = script_text()
    assert text.startswith("#!/bin/sh\n")
    assert f"LIB_DIR={LIB_DIR}\n" in text
    for loader in FHS_LOADERS.values():
        assert loader in text
    # nixos/nix has neither sed nor awk: the script must not call them.
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for tool in ("sed ", "awk ", "perl ", "python"):
        assert tool not in code, tool


@pytest.mark.parametrize(
    ("dockerfile", "adds"),
    [
        (
            "FROM nixos/nix\nCOPY fhs-loader.sh /tmp/x.sh\nRUN sh /tmp/devnix-fhs-loader.sh\n",
            True,
        ),
        ("FROM x\nrun bash ./fhs-loader.sh && echo done\n", True),
        ("FROM x\nCOPY fhs-loader.sh /tmp/\n", False),  # copied, never run
        ("FROM x\n# RUN sh fhs-loader.sh\n", False),
        ("FROM x\nRUN echo hi\n", False),
    ],
)
def test_a_dockerfile_adds_the_loader_only_when_it_runs_the_script(dockerfile: str, adds: bool) -> None:
    assert dockerfile_adds_loader(dockerfile) is adds


def test_every_template_ships_the_script_as_the_package_has_it() -> None:
    copies = sorted((ROOT / "templates" / "src").glob("*/.devcontainer/fhs-loader.sh"))
    assert [p.parts[-3] for p in copies] == ["nix", "nix-dockerfile", "nix-flake"]
    for copy in copies:
        assert copy.read_text("utf-8") == script_text(), f"{copy}: run `devnix templates render`"
