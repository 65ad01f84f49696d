"""``devnix ci``: the command line of the CI workflows devnix writes (registered by :mod:`devnix.cli`).

Kept apart from ``cli.py`` so that the command's many options live beside nothing else; like every
command it parses, calls :mod:`devnix.commands.ci` and prints through ``devnix.cli``'s ``emit``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

ci_app = typer.Typer(
    help="Write CI workflows: each architecture's Nix image built natively, then joined into one tag.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@ci_app.command("github")
def github(
    directory: Annotated[Path, typer.Argument(help="The repository's root folder.")] = Path("."),
    image: Annotated[str, typer.Option("--image", help="Image name under the registry.")] = "nix",
    registry: Annotated[
        Optional[str],  # noqa: UP045 - typer 0.28 needs Optional on Python 3.10
        typer.Option(
            "--registry",
            help="host/namespace to push to (default: ghcr.io/<the repository's owner>, with the "
            "workflow's GITHUB_TOKEN; another registry reads the secrets REGISTRY_USERNAME and "
            "REGISTRY_PASSWORD).",
            show_default=False,
        ),
    ] = None,
    tag: Annotated[
        str, typer.Option("--tag", help="The multi-platform tag; each architecture pushes TAG-<arch>.")
    ] = "latest",
    flake: Annotated[
        str,
        typer.Option("--flake", help="Flake output that is a Docker image, relative to the repository."),
    ] = ".",
    systems: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--system",
            help="Nix systems to build, each on its native runner (repeatable or comma-separated; "
            "default: x86_64-linux,aarch64-linux).",
            show_default=False,
        ),
    ] = None,
    schedule: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--schedule", help="Also rebuild on this cron schedule (UTC), e.g. '0 4 * * 1'."),
    ] = None,
    branch: Annotated[str, typer.Option("--branch", help="The branch whose pushes rebuild.")] = "main",
    builder_image: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--builder-image",
            help="Nix image that runs each build on the runner (default: bootstrap's, nixos/nix:latest).",
            show_default=False,
        ),
    ] = None,
    nix_options: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--nix-option", help="NAME=VALUE, passed to bootstrap as --option (repeatable)."),
    ] = None,
    devnix_repo: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--devnix-repo",
            help="devnix's git repository, installed on the runner at v<version> (default: the "
            "repository and commit this devnix was installed from).",
            show_default=False,
        ),
    ] = None,
    features: Annotated[
        bool,
        typer.Option(
            "--features",
            help="Also write devnix-publish.yml: test and publish features/src and templates/src.",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite workflows that exist.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be written.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")] = False,
) -> None:
    """Write .github/workflows/devnix-image.yml: build the Nix image per architecture, natively."""
    from devnix.cli import emit, handle_errors

    with handle_errors():
        from devnix.commands import ci as ci_command
        from devnix.errors import UsageError
        from devnix.present.ci import describe

        options: list[tuple[str, str]] = []
        for given in nix_options or ():
            name, equals, value = given.partition("=")
            if not equals:
                raise UsageError(f"--nix-option {given!r} has no '='", hint="NAME=VALUE, e.g. substituters=")
            options.append((name.strip(), value))
        chosen = tuple(s.strip() for given in systems or () for s in given.split(",") if s.strip())
        result = ci_command.run(
            ci_command.GithubOptions(
                directory=directory,
                image=image,
                registry=registry,
                tag=tag,
                flake=flake,
                systems=chosen,
                schedule=schedule,
                branch=branch,
                builder_image=builder_image,
                nix_options=tuple(options),
                devnix_repo=devnix_repo,
                features=features,
                force=force,
                dry_run=dry_run,
            )
        )
        emit(result, as_json, describe)
