"""``devnix.present``: the text the CLI prints for each command's result, and what start-up imports."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from rich.console import Console

from devnix import doctor as doctor_core
from devnix import manifest as manifest_core
from devnix.bootstrap import NixBuildError
from devnix.commands.bootstrap import BootstrapResult, Event, StepTime
from devnix.commands.doctor import DoctorResult
from devnix.commands.manifest import InspectEntry, InspectResult
from devnix.images import parse_ref
from devnix.present import bootstrap as bootstrap_text
from devnix.present import doctor as doctor_text
from devnix.present import manifest as manifest_text

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def bootstrap_result(**changes: object) -> BootstrapResult:
    fields: dict[str, object] = {
        "tag": "devnix/nix:aarch64-linux",
        "image_id": D1,
        "system": "aarch64-linux",
        "platform": "linux/arm64",
        "flake": "path:./f#x",
        "shape": "archive",
        "out_path": "/nix/store/x",
        "builder": "docker.io/nixos/nix:latest",
        "builder_id": D2,
        "builder_platform": "linux/amd64",
        "builder_emulated": True,
        "nix_settings": {"filter-syscalls": "false", "extra-platforms": "aarch64-linux"},
        "nix_options": (),
        "volume": "devnix-nix-x",
        "volume_created": True,
        "built": True,
        "loaded": True,
        "bytes_streamed": 5,
        "pushed_digest": None,
        "steps": (
            StepTime("builder", "Builder image", 1.5, "nixos/nix (linux/amd64, native)"),
            StepTime("load", "Load", 0.0, "loaded already", skipped=True),
            StepTime("verify", "Verify the image", 12.25, "ok"),
        ),
        "seconds": 99.94,
    }
    fields.update(changes)
    return BootstrapResult(**fields)  # type: ignore[arg-type]


# --- bootstrap --------------------------------------------------------------------------------------


def test_bootstrap_summary_aligns_the_steps_and_ends_with_the_push_and_notes() -> None:
    text = bootstrap_text.describe(
        bootstrap_result(pushed_digest="sha256:" + "c" * 64, notes=("volume x is old",))
    )
    assert text.splitlines() == [
        "devnix/nix:aarch64-linux: linux/arm64 image sha256:aaaaaaaaaaaa from path:./f#x",
        "builder: docker.io/nixos/nix:latest (linux/amd64, emulated); store volume devnix-nix-x",
        "nix:     filter-syscalls = false; extra-platforms = aarch64-linux",
        "  Builder image        1.5 s  nixos/nix (linux/amd64, native)",
        "  Load               skipped  loaded already",
        "  Verify the image    12.2 s  ok",
        "total:   99.9 s",
        f"pushed:  devnix/nix:aarch64-linux@sha256:{'c' * 64}",
        "note:    volume x is old",
    ]


def test_plain_lines_show_log_and_step_ends_but_not_starts_or_progress() -> None:
    lines = [
        bootstrap_text.event_line(event)
        for event in (
            Event("start", "build", "Build"),
            Event("progress", "build", "Build", "", 5, 10),
            Event("log", "build", "Build", "building '/nix/store/x.drv'..."),
            Event("done", "build", "Build", "/nix/store/y", seconds=12.345),
            Event("skip", "load", "Load", "already loaded", seconds=0.0),
            Event("fail", "push", "Push", seconds=3.21),
        )
    ]
    assert lines == [
        None,
        None,
        "  | building '/nix/store/x.drv'...",
        "[Build] done in 12.3 s: /nix/store/y",
        "[Load] skipped: already loaded",
        "[Push] failed after 3.2 s",
    ]


def test_a_failed_build_quotes_nix_line_by_line() -> None:
    error = NixBuildError("nix build failed", ["error: builder failed", "exit 1"])
    assert bootstrap_text.build_log(error) == "  | error: builder failed\n  | exit 1"


def test_progress_bars_show_sizes_and_notes_with_brackets_as_text() -> None:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    with bootstrap_text.progress_bars(console) as show:
        show(Event("start", "copy", "Copy the flake"))
        show(Event("progress", "copy", "Copy the flake", "", 1_500_000, 3_000_000))
        show(Event("start", "build", "Build"))
        show(Event("log", "build", "Build", "make[1]: Entering [/]"))
        show(Event("done", "build", "Build", "/nix/store/x-[old] (archive)", seconds=1.0))
        show(Event("skip", "load", "Load", "loaded already as [sha]"))
        show(Event("start", "push", "Push"))
        show(Event("fail", "push", "Push", seconds=0.5))
    rows = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    copy = next(row for row in rows if "Copy the flake" in row)
    assert "1.5/3.0 MB" in copy
    assert any("Build" in row and "/nix/store/x-[old] (archive)" in row for row in rows)
    assert any("Load" in row and "skipped: loaded already as [sha]" in row for row in rows)
    assert any("Push" in row and "failed" in row for row in rows)


# --- doctor -----------------------------------------------------------------------------------------


def test_doctor_table_fits_the_width_and_prints_brackets_in_findings() -> None:
    engine = doctor_core.EngineSummary(
        "linux", "amd64", doctor_core.Kind.DOCKERD, "27.0", "default", "unix:///var/run/docker.sock"
    )
    checks = (
        doctor_core.Check("mount", doctor_core.Status.FAIL, "a file in /src/app[old] is not visible [/]"),
        doctor_core.Check("disk", doctor_core.Status.WARN, "low " * 30, "free space: docker system prune"),
    )
    report = doctor_core.Report(engine, "linux", "amd64", {}, checks)
    text = ANSI.sub("", doctor_text.describe(DoctorResult(report, 1.25), width=80))
    lines = text.splitlines()
    assert " ".join(" ".join(lines[:2]).split()) == (
        "engine: dockerd 27.0 linux/amd64 at unix:///var/run/docker.sock (context default); "
        "host: linux/amd64"
    )  # wrapped at the width, like every row
    assert all(len(line) <= 80 for line in lines)
    assert "/src/app[old]" in text and "visible [/]" in text
    assert lines[-1] == "2 checks: 1 failed, 1 warnings (1.2 s)"


# --- manifest ---------------------------------------------------------------------------------------


def test_manifest_inspect_lists_each_platform_with_its_image_size() -> None:
    amd64 = manifest_core.Entry(
        "application/vnd.oci.image.manifest.v1+json", D1, 1234, {"os": "linux", "architecture": "amd64"}, "a"
    )
    arm64 = manifest_core.Entry(
        "application/vnd.docker.distribution.manifest.v2+json",
        D2,
        99,
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
        "b",
    )
    summary = manifest_core.ImageSummary(D1, 300, ((D1, 1000), (D2, 2_000_000)))
    result = InspectResult(
        parse_ref("localhost:5000/a:multi"),
        "application/vnd.oci.image.index.v1+json",
        D1,
        777,
        (InspectEntry(amd64, summary), InspectEntry(arm64, None)),
        3,
    )
    assert manifest_text.describe_inspect(result).splitlines() == [
        "localhost:5000/a:multi",
        "  media type: application/vnd.oci.image.index.v1+json (OCI image index)",
        f"  digest:     {D1}",
        "  size:       777 B",
        "  platforms:",
        f"    linux/amd64  {D1}  manifest 1.2 KB, image 2.0 MB in 2 layers  (OCI image manifest)",
        f"    linux/arm64  {D2}  manifest 99 B  (Docker v2 manifest)",
    ]


# --- start-up ---------------------------------------------------------------------------------------


def test_version_imports_no_command_presentation_or_heavy_library() -> None:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "devnix", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.startswith("devnix ")
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if "|" in line}
    assert "devnix.cli" in imported  # the measurement saw devnix's own imports
    heavy = {name for name in imported if name.split(".")[0] in {"rich", "jinja2", "docker", "jsonschema_rs"}}
    ours = {name for name in imported if name.startswith(("devnix.commands", "devnix.present"))}
    assert heavy == set() and ours == set()
