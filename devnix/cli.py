"""The ``devnix`` command line: parse, call one command, print its result.

Commands in :mod:`devnix.commands` return result objects and never print; this module is the only one
that writes to the terminal, so every command gets ``--json`` the same way. Errors a user can cause are
:class:`~devnix.errors.DevnixError`: they become one line (and a hint) on stderr and their exit code.
Heavy modules (docker, jinja2, registry code) are imported inside the commands so that ``--help`` and
``--version`` stay fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from devnix import __version__
from devnix.errors import DevnixError

app = typer.Typer(
    name="devnix",
    help="Nix in dev containers on any machine, Apple Silicon included.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"devnix {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Nix in dev containers on any machine, Apple Silicon included."""


@contextmanager
def handle_errors() -> Iterator[None]:
    """The one map from errors to exit codes: a line, a hint, the error's code; no traceback."""
    try:
        yield
    except DevnixError as error:
        typer.echo(f"devnix: error: {error.message}", err=True)
        if error.hint:
            typer.echo(f"hint: {error.hint}", err=True)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("devnix: interrupted", err=True)
        raise typer.Exit(130) from None


def emit(result: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print a command's result: its ``to_json()`` as one JSON object, or ``text(result)``."""
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, sort_keys=False))
    else:
        rendered = text(result)
        if rendered:
            typer.echo(rendered)


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]


# --- devnix init ------------------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Project folder to write .devcontainer/ into.")] = Path(
        "."
    ),
    image: Annotated[
        Optional[str],  # noqa: UP045 - typer 0.28 needs Optional on Python 3.10
        typer.Option("--image", help="Nix image to use (default: the catalog's multi-arch image)."),
    ] = None,
    platform: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--platform",
            help="linux/amd64 or linux/arm64 (default: the Docker engine's, else this host's).",
        ),
    ] = None,
    dockerfile: Annotated[
        bool, typer.Option("--dockerfile", help="Also write a Dockerfile that bakes nix.conf in.")
    ] = False,
    flake: Annotated[
        bool, typer.Option("--flake", help="Enter the project's flake dev shell on start.")
    ] = False,
    direnv: Annotated[bool, typer.Option("--direnv", help="Use direnv (and its VS Code extension).")] = False,
    flakes: Annotated[
        bool, typer.Option("--flakes/--no-flakes", help="Enable nix-command and flakes.")
    ] = True,
    nix_path: Annotated[
        str, typer.Option("--nix-path", help="NIX_PATH inside the container.")
    ] = "nixpkgs=channel:nixos-unstable",
    store_volume: Annotated[
        bool,
        typer.Option("--store-volume", help="Keep /nix in a volume tied to the image's digest."),
    ] = False,
    extra_platforms: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--extra-platform", help="Nix system Nix may build for (repeatable)."),
    ] = None,
    trusted_users: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--trusted-user", help="Nix trusted-users entry (repeatable)."),
    ] = None,
    substituters: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--substituter", help="Extra binary cache URL (repeatable)."),
    ] = None,
    trusted_keys: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--trusted-public-key", help="Key for an extra binary cache (repeatable)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files devnix would otherwise refuse to.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be written; write nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write .devcontainer/ for Nix, picking the image variant for the Docker engine's architecture."""
    with handle_errors():
        from devnix.commands import init as init_command

        options = init_command.InitOptions(
            directory=directory,
            image=image,
            platform=platform,
            dockerfile=dockerfile,
            flake=flake,
            direnv=direnv,
            flakes=flakes,
            nix_path=nix_path,
            store_volume=store_volume,
            extra_platforms=tuple(extra_platforms or ()),
            trusted_users=tuple(trusted_users or ()),
            substituters=tuple(substituters or ()),
            trusted_public_keys=tuple(trusted_keys or ()),
            force=force,
            dry_run=dry_run,
        )
        result = init_command.run(options)
        emit(result, as_json, init_command.describe)


# --- devnix manifest ---------------------------------------------------------------------------------

manifest_app = typer.Typer(
    help="Join per-architecture tags into one multi-platform tag, and inspect tags, via the registry API.",
    no_args_is_help=True,
)
app.add_typer(manifest_app, name="manifest")

InsecureOption = Annotated[
    bool,
    typer.Option("--insecure", help="Speak plain HTTP to the registries (loopback ones always do)."),
]


@manifest_app.command("create")
def manifest_create(
    target: Annotated[str, typer.Argument(help="The multi-platform tag to write, e.g. ghcr.io/me/nix:2.24.")],
    sources: Annotated[
        list[str], typer.Argument(help="Per-platform tags (or indexes, whose entries are taken).")
    ],
    push: Annotated[
        bool, typer.Option("--push", help="Write the index (default: print what would be written).")
    ] = False,
    amend: Annotated[
        bool,
        typer.Option(
            "--amend", help="Merge into the index at TARGET, replacing entries of the same platform."
        ),
    ] = False,
    insecure: InsecureOption = False,
    as_json: JsonOption = False,
) -> None:
    """Build an OCI image index (or Docker manifest list) from per-platform images; no pulls."""
    with handle_errors():
        from devnix.commands import manifest as manifest_command

        options = manifest_command.CreateOptions(
            target=target, sources=tuple(sources), push=push, amend=amend, insecure=insecure
        )
        result = manifest_command.create(options)
        emit(result, as_json, manifest_command.describe_create)


@manifest_app.command("inspect")
def manifest_inspect(
    ref: Annotated[str, typer.Argument(help="An image tag or digest reference.")],
    insecure: InsecureOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show a tag's media type, digest, size, and each platform's manifest digest and size."""
    with handle_errors():
        from devnix.commands import manifest as manifest_command

        result = manifest_command.inspect(manifest_command.InspectOptions(ref=ref, insecure=insecure))
        emit(result, as_json, manifest_command.describe_inspect)


# --- devnix doctor ----------------------------------------------------------------------------------


@app.command()
def doctor(
    directory: Annotated[
        Path, typer.Argument(help="Project folder to check (bind mounts, .devcontainer/).")
    ] = Path("."),
    pull: Annotated[
        bool,
        typer.Option("--pull", help="Pull busybox for a probe when no image of a platform is local."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Explain the Docker setup (engine, VM, emulation, mounts, disk) and what to do about it."""
    with handle_errors():
        from devnix.commands import doctor as doctor_command
        from devnix.errors import EngineError

        result = doctor_command.run(doctor_command.DoctorOptions(directory=directory, pull=pull))
        if not result.report.reachable and not as_json:
            # No engine, no table: one line and a hint, like every other error.
            check = result.report.checks[0]
            raise EngineError(check.message, hint=check.hint)
        emit(result, as_json, doctor_command.describe)
    if not result.report.reachable:
        raise typer.Exit(EngineError.exit_code)
    if result.failed:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="devnix")


if __name__ == "__main__":  # pragma: no cover
    main()
