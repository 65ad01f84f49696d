"""The ``devnix`` command line: parse, call one command, print its result.

Commands in :mod:`devnix.commands` return result objects and never print; this module writes them to
the terminal, as the text :mod:`devnix.present` makes of them or as ``--json``, the same way for every
command (bootstrap's live progress bars, drawn by :mod:`devnix.present.bootstrap`, are the exception).
Errors a user can cause are :class:`~devnix.errors.DevnixError`: they become one line (and a hint) on
stderr and their exit code. Heavy modules (docker, jinja2, rich, registry code) are imported inside the
commands so that ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from devnix import __version__
from devnix.errors import DevnixError

# Each command lives in a Typer of its own and is turned into a click command only when it is the
# one being run: building every command's parameters costs ~1 ms each, on every start.
_COMMANDS: dict[str, typer.Typer] = {}
_GROUPS: set[str] = set()  # commands with subcommands (manifest, templates), even with just one


class _LazyGroup(TyperGroup):
    """The top-level group: commands are built on demand, and the help lists them from docstrings."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        sub = _COMMANDS.get(cmd_name)
        if sub is None:
            return None
        return typer.main.get_group(sub) if cmd_name in _GROUPS else typer.main.get_command(sub)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, _summary(sub)) for name, sub in _COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _summary(sub: typer.Typer) -> str:
    if isinstance(sub.info.help, str):
        doc = sub.info.help
    else:
        callback = sub.registered_commands[0].callback
        doc = (callback.__doc__ or "") if callback else ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _group(name: str, sub: typer.Typer) -> None:
    """Register a top-level command that has subcommands."""
    _COMMANDS[name] = sub
    _GROUPS.add(name)


def _command(name: str, **settings: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a top-level command, built lazily (see :class:`_LazyGroup`)."""
    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    _COMMANDS[name] = sub
    return sub.command(name, **settings)


app = typer.Typer(
    cls=_LazyGroup,
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


def say_error(error: DevnixError) -> None:
    """The error's line and its hint, on stderr: what every failure looks like."""
    typer.echo(f"devnix: error: {error.message}", err=True)
    if error.hint:
        typer.echo(f"hint: {error.hint}", err=True)


@contextmanager
def handle_errors() -> Iterator[None]:
    """The one map from errors to exit codes: a line, a hint, the error's code; no traceback."""
    try:
        yield
    except DevnixError as error:
        say_error(error)
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


class EngineName(str, Enum):
    docker = "docker"
    podman = "podman"


def _choose_engine(value: EngineName | None) -> EngineName | None:
    # Through the environment, which devnix.engine reads when it looks for the engine: the commands need
    # no parameter for it, and the processes devnix starts (the reaper) find the same engine.
    if value is not None:
        os.environ["DEVNIX_ENGINE"] = value.value
    return value


EngineOption = Annotated[
    Optional[EngineName],  # noqa: UP045
    typer.Option(
        "--engine",
        envvar="DEVNIX_ENGINE",
        callback=_choose_engine,
        case_sensitive=False,
        help="docker (DOCKER_HOST, the Docker context, the default socket) or podman (its rootless "
        "socket, root's for root). Default: the Docker CLI's engine, else Podman's socket.",
    ),
]


# --- devnix init ------------------------------------------------------------------------------------


@_command("init")
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
    fhs_loader: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option(
            "--fhs-loader/--no-fhs-loader",
            help="Add (or leave out) the step that lets VS Code's server start in a store-only Nix image. "
            "Default: added unless the image is known to have an FHS loader.",
            show_default=False,
        ),
    ] = None,
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
        bool, typer.Option("--dry-run", help="Print what would be written (a diff with --merge).")
    ] = False,
    merge: Annotated[
        bool,
        typer.Option("--merge", help="Add Nix to the existing devcontainer.json, keeping every comment."),
    ] = False,
    config: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--config", help="With --merge: .devcontainer/NAME/devcontainer.json, or a path."),
    ] = None,
    template: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--template", help="Apply a Template of devnix's collection (nix, nix-flake, ...)."),
    ] = None,
    engine: EngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write .devcontainer/ for Nix, picking the image variant for the Docker engine's architecture."""
    with handle_errors():
        from devnix.commands import init as init_command
        from devnix.present.init import describe

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
            fhs_loader=fhs_loader,
            extra_platforms=tuple(extra_platforms or ()),
            trusted_users=tuple(trusted_users or ()),
            substituters=tuple(substituters or ()),
            trusted_public_keys=tuple(trusted_keys or ()),
            force=force,
            dry_run=dry_run,
            merge=merge,
            config=config,
            template=template,
        )
        result = init_command.run(options)
        emit(result, as_json, describe)


# --- devnix validate --------------------------------------------------------------------------------


@_command("validate")
def validate(
    paths: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Argument(
            help="devcontainer.json files, or folders with .devcontainer/ (default: .); each is checked "
            "and the exit code is the worst.",
            metavar="PATH...",
            show_default=False,
        ),
    ] = None,
    schema_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--schema-dir",
            help="Folder with the spec's devContainer*.schema.json (default: $DEVNIX_SCHEMA_DIR, "
            "else downloaded once into the cache).",
        ),
    ] = None,
    platform: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--platform", help="The Docker engine's platform, for the Nix checks."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check devcontainer.json files: JSONC syntax, the official schema, and Nix pitfalls."""
    with handle_errors():
        from devnix.commands import validate as validate_command
        from devnix.present.validate import describe

        options = validate_command.ValidateOptions(schema_dir=schema_dir, engine_platform=platform)
        report = validate_command.run_all(paths or [Path(".")], options)
        if len(report.results) == 1:
            # One path: today's output, --json shape and exit codes (a missing path is the usual error).
            only = report.results[0]
            if only.error is not None:
                raise only.error
            emit(only, as_json, describe)
        elif as_json:
            emit(report, as_json, describe)
        else:
            for result in report.results:
                if result.error is not None:  # said as any error is, then the next path
                    say_error(result.error)
                else:
                    emit(result, as_json, describe)
        if report.exit_code:
            raise typer.Exit(report.exit_code)


# --- devnix manifest ---------------------------------------------------------------------------------

manifest_app = typer.Typer(
    help="Join per-architecture tags into one multi-platform tag, and inspect tags, via the registry API.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
_group("manifest", manifest_app)

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
        from devnix.present.manifest import describe_create

        options = manifest_command.CreateOptions(
            target=target, sources=tuple(sources), push=push, amend=amend, insecure=insecure
        )
        result = manifest_command.create(options)
        emit(result, as_json, describe_create)


@manifest_app.command("inspect")
def manifest_inspect(
    ref: Annotated[str, typer.Argument(help="An image tag or digest reference.")],
    insecure: InsecureOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show a tag's media type, digest, size, and each platform's manifest digest and size."""
    with handle_errors():
        from devnix.commands import manifest as manifest_command
        from devnix.present.manifest import describe_inspect

        result = manifest_command.inspect(manifest_command.InspectOptions(ref=ref, insecure=insecure))
        emit(result, as_json, describe_inspect)


# --- devnix doctor ----------------------------------------------------------------------------------


@_command("doctor")
def doctor(
    directory: Annotated[
        Path, typer.Argument(help="Project folder to check (bind mounts, .devcontainer/).")
    ] = Path("."),
    pull: Annotated[
        bool,
        typer.Option("--pull", help="Pull busybox for a probe when no image of a platform is local."),
    ] = False,
    engine: EngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Explain the Docker setup (engine, VM, emulation, mounts, disk) and what to do about it."""
    with handle_errors():
        from devnix.commands import doctor as doctor_command
        from devnix.errors import EngineError
        from devnix.present.doctor import describe

        result = doctor_command.run(doctor_command.DoctorOptions(directory=directory, pull=pull))
        if not result.report.reachable and not as_json:
            # No engine, no table: one line and a hint, like every other error.
            check = result.report.checks[0]
            raise EngineError(check.message, hint=check.hint)
        emit(result, as_json, describe)
    if not result.report.reachable:
        raise typer.Exit(EngineError.exit_code)
    if result.failed:
        raise typer.Exit(1)


# --- devnix publish ---------------------------------------------------------------------------------


@_command("publish")
def publish(
    kind: Annotated[str, typer.Argument(metavar="KIND", help="features or templates.")],
    source: Annotated[
        Path,
        typer.Argument(
            metavar="SRC", help="The collection's src/ folder (src/<id>/...), or one item's folder."
        ),
    ],
    namespace: Annotated[
        str, typer.Option("--namespace", help="Collection namespace in the registry, e.g. owner/repo.")
    ],
    registry: Annotated[
        str, typer.Option("--registry", help="Registry host[:port] (credentials from the Docker config).")
    ] = "ghcr.io",
    force: Annotated[
        bool,
        typer.Option("--force", help="Publish a version below the published one, or replace a changed one."),
    ] = False,
    insecure: InsecureOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read the registry and say what would be pushed; push nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Push a devcontainer Feature or Template collection to an OCI registry (semver tags, metadata)."""
    with handle_errors():
        from devnix.commands import publish as publish_command
        from devnix.present.publish import describe

        options = publish_command.PublishOptions(
            kind=kind,
            source=source,
            registry=registry,
            namespace=namespace,
            force=force,
            insecure=insecure,
            dry_run=dry_run,
        )
        result = publish_command.run(options)
        emit(result, as_json, describe)


# --- devnix bootstrap --------------------------------------------------------------------------------


@_command("bootstrap", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bootstrap(
    ctx: typer.Context,
    flake: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--flake",
            help="Flake output that is a Docker image: DIR#ATTR, path:DIR#ATTR or any flake ref "
            "(default: lucernae/docker-nixpkgs' nix image for the system).",
        ),
    ] = None,
    system: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--system", help="Nix system to build for (default: the Docker engine's)."),
    ] = None,
    builder_image: Annotated[
        str, typer.Option("--builder-image", help="Nix image that runs the build.")
    ] = "docker.io/nixos/nix:latest",
    builder_platform: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--builder-platform",
            help="Platform of the builder image (default: the local copy's; linux/amd64 when pulling).",
        ),
    ] = None,
    tag: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--tag", help="Name for the image (default: devnix/nix:<system>)."),
    ] = None,
    push: Annotated[bool, typer.Option("--push", help="Push the tag after verifying it.")] = False,
    store_volume: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--store-volume", help="Volume for the builder's /nix (default: one per builder)."),
    ] = None,
    remote_builder: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--remote-builder",
            help="Nix machine to build on instead of the builder (repeatable): ssh-ng://USER@HOST[:PORT] "
            "or ssh://…; the builder itself then builds nothing (max-jobs = 0).",
        ),
    ] = None,
    remote_system: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--remote-system", help="Systems the remote builders build (default: --system's)."),
    ] = None,
    remote_features: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--remote-features",
            help="System features the remote builders support, e.g. kvm,big-parallel (a derivation that "
            "requires one is built only where it is listed).",
        ),
    ] = None,
    remote_key: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--remote-key",
            help="SSH private key for the remote builders (default: the ssh agent, else ~/.ssh/id_*).",
        ),
    ] = None,
    remote_host_key: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--remote-host-key",
            help="A remote builder's host key, 'ssh-ed25519 AAAA…' or SHA256:… (one per --remote-builder, "
            "in order; default: ~/.ssh/known_hosts).",
        ),
    ] = None,
    builder_network: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--builder-network", help="Docker network for the builder (where the remotes are)."),
    ] = None,
    engine: EngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build a Nix image for the engine's platform from a flake in a (possibly emulated) builder.

    Nix settings pass through to `nix build` as --option NAME VALUE (e.g. --option substituters '').
    """
    with handle_errors():
        from devnix.bootstrap import NixBuildError, parse_nix_options
        from devnix.commands import bootstrap as bootstrap_command
        from devnix.present import bootstrap as present

        options = bootstrap_command.BootstrapOptions(
            flake=flake,
            system=system,
            builder_image=builder_image,
            builder_platform=builder_platform,
            tag=tag,
            push=push,
            nix_options=parse_nix_options(list(ctx.args)),
            store_volume=store_volume,
            remote_builders=tuple(remote_builder or ()),
            remote_system=remote_system,
            remote_features=remote_features,
            remote_key=remote_key,
            remote_host_keys=tuple(remote_host_key or ()),
            builder_network=builder_network,
        )
        from rich.console import Console

        # On a terminal: progress bars, and Nix's last line beside its step. Elsewhere (CI logs): plain
        # lines, Nix's log included as it comes, so a long build shows that it is alive.
        terminal = Console(stderr=True).is_terminal
        try:
            with present.progress_bars() if terminal else _event_lines(present.event_line) as on_event:
                result = bootstrap_command.run(options, on_event)
        except NixBuildError as error:
            if terminal and error.log_tail:
                # Nix's own words first, then the one line (from handle_errors) saying what failed.
                typer.echo(present.build_log(error), err=True)
            raise
        emit(result, as_json, present.describe)


@contextmanager
def _event_lines(line_of: Callable[[Any], str | None]) -> Iterator[Callable[[Any], None]]:
    """Progress events as plain lines on stderr, for the events ``line_of`` has a line for."""

    def echo(event: Any) -> None:
        line = line_of(event)
        if line is not None:
            typer.echo(line, err=True)

    yield echo


# --- devnix templates -------------------------------------------------------------------------------

templates_app = typer.Typer(
    help="The devcontainer Templates collection (templates/), generated from devnix's scaffolds.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
_group("templates", templates_app)


@templates_app.command("render")
def templates_render(
    destination: Annotated[Path, typer.Argument(help="The collection's folder.")] = Path("templates"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when the folder has drifted.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Render templates/ from the scaffolds `devnix init` uses, so the two never drift."""
    with handle_errors():
        from devnix.commands import templates as templates_command
        from devnix.present.templates import describe

        result = templates_command.run(destination, check=check)
        emit(result, as_json, describe)
    raise typer.Exit(result.exit_code)


# --- devnix ci (the command lives in devnix/cli_ci.py) ------------------------------------------------

from devnix.cli_ci import ci_app  # noqa: E402 - registered here, beside the other commands

_group("ci", ci_app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="devnix")


if __name__ == "__main__":  # pragma: no cover
    main()
