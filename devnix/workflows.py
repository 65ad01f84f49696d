"""Pure (but for the scaffolds' compile cache, as in devnix.render): the GitHub Actions workflows
``devnix ci github`` writes, from validated options to their text.

The image workflow builds each architecture on a GitHub-hosted runner of that architecture with
``devnix bootstrap --push`` (native: Nix keeps its syscall filter and nothing runs under QEMU), then joins
the per-architecture tags with ``devnix manifest create --push``. The publish workflow checks the
project's Features and Templates with ``devnix publish --dry-run`` and pushes them with ``devnix publish``.

Every value a user gives goes into the workflow's ``env:`` (as a JSON string, which YAML reads as a
double-quoted scalar) and the scripts read it as ``"$VAR"``: no value is spliced into shell text, and
values holding ``${{`` are refused, since GitHub would evaluate them as expressions before the shell runs.
The text comes from the jinja2 scaffolds ``github-image.yml.j2`` and ``github-publish.yml.j2``.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from devnix import __version__, images
from devnix.bootstrap import DEFAULT_BUILDER_IMAGE, parse_flake_ref
from devnix.errors import UsageError

IMAGE_WORKFLOW = ".github/workflows/devnix-image.yml"
PUBLISH_WORKFLOW = ".github/workflows/devnix-publish.yml"
# The expressions of the default registry (ghcr.io, the repository's owner) and its credentials; the
# replay test's substitution table names each one the workflows may hold.
OWNER = "${{ github.repository_owner }}"
GHCR = "ghcr.io"
GHCR_USERNAME = "${{ github.actor }}"
GHCR_PASSWORD = "${{ secrets.GITHUB_TOKEN }}"
OTHER_USERNAME = "${{ secrets.REGISTRY_USERNAME }}"
OTHER_PASSWORD = "${{ secrets.REGISTRY_PASSWORD }}"
PYTHON_VERSION = "3.12"
DEFAULT_SYSTEMS = ("x86_64-linux", "aarch64-linux")


@dataclass(frozen=True)
class Runner:
    """A GitHub-hosted runner label that runs a Nix system natively, and the tag suffix it pushes."""

    system: str
    label: str
    arch: str


RUNNERS = {
    "x86_64-linux": Runner("x86_64-linux", "ubuntu-24.04", "amd64"),
    "aarch64-linux": Runner("aarch64-linux", "ubuntu-24.04-arm", "arm64"),
}


@dataclass(frozen=True)
class Collection:
    """A devcontainer collection of the project: ``features`` or ``templates`` and its ``src/`` folder."""

    kind: str
    source: str  # relative to the repository's root, POSIX


@dataclass(frozen=True)
class WorkflowOptions:
    """What ``devnix ci github`` was asked for, validated by :func:`spec`."""

    devnix_requirement: str  # what pip installs on the runner, e.g. devnix @ git+https://…@v0.1.0
    image: str = "nix"
    registry: str | None = None  # host[/path]; None: ghcr.io/<the repository's owner>
    tag: str = "latest"
    flake: str = "."
    systems: tuple[str, ...] = DEFAULT_SYSTEMS
    schedule: str | None = None  # cron, UTC
    branch: str = "main"
    builder_image: str = DEFAULT_BUILDER_IMAGE
    nix_options: tuple[tuple[str, str], ...] = ()
    collections: tuple[Collection, ...] = ()  # non-empty: also write the publish workflow


@dataclass(frozen=True)
class WorkflowSpec:
    """The decided workflows: what the scaffolds are rendered with."""

    options: WorkflowOptions
    runners: tuple[Runner, ...]
    repository: str  # registry/image, possibly with the owner expression
    registry_host: str
    registry_path: str  # the part after the host: the owner, or the path given with --registry
    username: str
    password: str
    watched: tuple[str, ...]  # the paths whose change re-runs the image workflow
    notes: tuple[str, ...] = field(default=())


def spec(options: WorkflowOptions) -> WorkflowSpec:
    """Validate the options (one :class:`UsageError` with a hint for the first bad one) and decide."""
    for name, value in _strings(options):
        if "${{" in value:
            raise UsageError(
                f"{name} {value!r} holds '${{{{', which GitHub would evaluate as an expression",
                hint="give a literal value; the workflow's own expressions are written by devnix",
            )
        if "\n" in value or "\r" in value:
            raise UsageError(f"{name} {value!r} spans lines", hint="give it on one line")
    runners = _runners(options.systems)
    if options.registry is None:
        host, path = GHCR, OWNER
    else:
        host, _, path = options.registry.strip().strip("/").partition("/")
        if not ("." in host or ":" in host or host == "localhost"):
            raise UsageError(
                f"--registry {options.registry!r} does not start with a registry host",
                hint="give host/namespace, e.g. ghcr.io/my-org or docker.io/me",
            )
        if not path:
            raise UsageError(
                f"--registry {options.registry!r} has no namespace",
                hint="give host/namespace, e.g. ghcr.io/my-org or docker.io/me",
            )
    repository = f"{host}/{path}/{options.image}"
    _check_tag(options.tag)
    # The tags pushed must parse as references (owner expression aside: GitHub names are valid).
    sample = repository.replace(OWNER, "owner")
    for runner in runners:
        _check_ref(f"{sample}:{options.tag}-{runner.arch}", "--registry/--image")
    _check_ref(options.builder_image, "--builder-image")
    if options.schedule is not None:
        _check_cron(options.schedule)
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", options.branch) or ".." in options.branch:
        raise UsageError(f"--branch {options.branch!r} is not a branch name", hint="e.g. main")
    for name, _ in options.nix_options:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
            raise UsageError(f"--nix-option {name!r} is not a Nix setting name", hint="e.g. substituters=")
    local_dir = None
    for runner in runners:  # the flake's attribute must exist for every system (parse says so early)
        local_dir = parse_flake_ref(options.flake, runner.system).local_dir
    watched: tuple[str, ...] = (IMAGE_WORKFLOW,)
    notes: list[str] = []
    if local_dir is not None:
        folder = _repository_folder(local_dir)
        watched = (*_flake_paths(folder), IMAGE_WORKFLOW)
    else:
        notes.append(
            f"the flake {options.flake} is not in the repository: no push re-runs the image workflow, "
            "only a manual run" + (" or the schedule" if options.schedule else "")
        )
    ghcr = host == GHCR
    if not ghcr:
        notes.append(
            f"{host}: the workflow logs in with the repository secrets REGISTRY_USERNAME and "
            "REGISTRY_PASSWORD (set them in the repository's settings)"
        )
    return WorkflowSpec(
        options=options,
        runners=runners,
        repository=repository,
        registry_host=host,
        registry_path=path,
        username=GHCR_USERNAME if ghcr else OTHER_USERNAME,
        password=GHCR_PASSWORD if ghcr else OTHER_PASSWORD,
        watched=watched,
        notes=tuple(notes),
    )


def render(decided: WorkflowSpec) -> dict[str, str]:
    """``{path relative to the repository: text}`` for every workflow to write."""
    from devnix.render import environment  # the scaffolds' one jinja2 environment (cache, filters)

    env = environment()
    values = context(decided)
    files = {IMAGE_WORKFLOW: env.get_template("github-image.yml.j2").render(values)}
    if decided.options.collections:
        files[PUBLISH_WORKFLOW] = env.get_template("github-publish.yml.j2").render(values)
    return {path: text if text.endswith("\n") else text + "\n" for path, text in files.items()}


def context(decided: WorkflowSpec) -> dict[str, Any]:
    """The values the workflow scaffolds see."""
    options = decided.options
    nix_options = "".join(f" --option {name} {shlex.quote(value)}" for name, value in options.nix_options)
    return {
        "version": __version__,
        "gh": expression,
        "options": options,
        "runners": decided.runners,
        "repository": decided.repository,
        "registry_host": decided.registry_host,
        "registry_path": decided.registry_path,
        "username": decided.username,
        "password": decided.password,
        "watched": decided.watched,
        # Features and Templates each have a collection (NAMESPACE:latest) and ids may repeat across the
        # two (devnix's own `nix`): published together, each kind takes a namespace of its own.
        "collections": [
            {
                "kind": c.kind,
                "source": c.source,
                "suffix": f"/{c.kind}" if len(options.collections) > 1 else "",
            }
            for c in options.collections
        ],
        "collection_paths": [f"{c.source}/**" for c in options.collections],
        "nix_options": nix_options,
        "python_version": PYTHON_VERSION,
        "image_workflow": IMAGE_WORKFLOW,
        "publish_workflow": PUBLISH_WORKFLOW,
    }


def expression(text: str) -> str:
    """A GitHub expression as the workflow spells it (the scaffolds cannot write ``${{`` themselves:
    it is jinja2's own delimiter)."""
    return "${{ " + text + " }}"


def _strings(options: WorkflowOptions) -> list[tuple[str, str]]:
    named: list[tuple[str, str | None]] = [
        ("--image", options.image),
        ("--registry", options.registry),
        ("--tag", options.tag),
        ("--flake", options.flake),
        ("--schedule", options.schedule),
        ("--branch", options.branch),
        ("--builder-image", options.builder_image),
        ("--devnix-repo", options.devnix_requirement),
        *(("--system", s) for s in options.systems),
        *(("--nix-option", f"{n}={v}") for n, v in options.nix_options),
    ]
    return [(name, value) for name, value in named if value is not None]


def _runners(systems: tuple[str, ...]) -> tuple[Runner, ...]:
    if not systems:
        raise UsageError("no system to build", hint=f"give --system, e.g. {','.join(DEFAULT_SYSTEMS)}")
    chosen: list[Runner] = []
    for system in systems:
        runner = RUNNERS.get(system.strip())
        if runner is None:
            raise UsageError(
                f"no GitHub-hosted runner builds {system!r} natively",
                hint=f"choose among {', '.join(RUNNERS)}",
            )
        if runner not in chosen:
            chosen.append(runner)
    return tuple(chosen)


def _check_tag(tag: str) -> None:
    # Room for the longest suffix ("-amd64"/"-arm64"): a tag is at most 128 characters.
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,121}", tag):
        raise UsageError(f"--tag {tag!r} is not a tag", hint="letters, digits, _ . - (e.g. latest or 2.24)")


def _check_ref(ref: str, option: str) -> None:
    try:
        images.parse_ref(ref)
    except UsageError as error:
        raise UsageError(f"{option}: {error.message}", hint=error.hint) from None


def _check_cron(cron: str) -> None:
    fields = cron.split()
    if len(fields) != 5 or not all(re.fullmatch(r"[0-9A-Za-z*/,-]+", f) for f in fields):
        raise UsageError(
            f"--schedule {cron!r} is not a cron expression of five fields",
            hint="minute hour day-of-month month day-of-week, in UTC, e.g. '0 4 * * 1' (Mondays 04:00)",
        )


def _repository_folder(local_dir: str) -> str:
    """The flake's folder relative to the repository's root, as GitHub's path filters name it."""
    if local_dir.startswith(("/", "~")):
        raise UsageError(
            f"the flake folder {local_dir!r} is not inside the repository the workflow checks out",
            hint="give it relative to the repository's root, e.g. . or ./images#nix",
        )
    folder = posixpath.normpath(local_dir)
    if folder == ".." or folder.startswith("../"):
        raise UsageError(
            f"the flake folder {local_dir!r} is outside the repository",
            hint="give it relative to the repository's root, e.g. . or ./images#nix",
        )
    return folder


def _flake_paths(folder: str) -> tuple[str, ...]:
    """The flake files: flake.nix, flake.lock and the Nix files beside them (what an image's recipe
    usually spans). A flake that reads other files there can add them to the workflow's paths."""
    base = "" if folder == "." else f"{folder}/"
    return (f"{base}flake.nix", f"{base}flake.lock", f"{base}**.nix")
