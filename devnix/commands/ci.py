"""``devnix ci github``: write the GitHub Actions workflows that build the project's Nix image natively per
architecture (and, on request, test and publish its Features and Templates).

The decisions and the text are :mod:`devnix.workflows`'s; this module finds what they need on disk (the
project's collections, where this devnix was installed from) and writes the files the way ``init`` does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnix import __version__, workflows
from devnix.bootstrap import DEFAULT_BUILDER_IMAGE
from devnix.errors import FileSystemError, UsageError
from devnix.fs import write_all
from devnix.workflows import Collection, WorkflowOptions

# PyPI's "devnix" is another project: the runner installs this one from its git repository.
PYPI_HINT = "pass --devnix-repo with devnix's git repository, e.g. https://github.com/OWNER/devnix"
COLLECTIONS = (("features", "features/src"), ("templates", "templates/src"))


@dataclass(frozen=True)
class GithubOptions:
    directory: Path
    image: str = "nix"
    registry: str | None = None
    tag: str = "latest"
    flake: str = "."
    systems: tuple[str, ...] = ()  # none: workflows.DEFAULT_SYSTEMS
    schedule: str | None = None
    branch: str = "main"
    builder_image: str | None = None  # None: bootstrap's default
    nix_options: tuple[tuple[str, str], ...] = ()
    devnix_repo: str | None = None  # None: the git repository this devnix was installed from
    features: bool = False
    force: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class GithubResult:
    directory: Path
    files: dict[str, str]
    dry_run: bool
    devnix_requirement: str
    registry: str
    runners: tuple[workflows.Runner, ...]
    watched: tuple[str, ...]
    schedule: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "directory": str(self.directory),
            "files": sorted(self.files),
            "dry_run": self.dry_run,
            "registry": self.registry,
            "runners": [{"system": r.system, "runner": r.label, "arch": r.arch} for r in self.runners],
            "watched_paths": list(self.watched),
            "schedule": self.schedule,
            "devnix_requirement": self.devnix_requirement,
            "notes": list(self.notes),
        }
        if self.dry_run:
            data["contents"] = dict(sorted(self.files.items()))
        return data


def run(options: GithubOptions) -> GithubResult:
    directory = options.directory
    if not directory.is_dir():
        raise FileSystemError(
            f"{directory} is not a folder", hint="pass the repository's root folder (default: .)"
        )
    collections = _collections(directory) if options.features else ()
    decided = workflows.spec(
        WorkflowOptions(
            devnix_requirement=requirement(options.devnix_repo, _installed_from()),
            image=options.image,
            registry=options.registry,
            tag=options.tag,
            flake=options.flake,
            systems=options.systems or workflows.DEFAULT_SYSTEMS,
            schedule=options.schedule,
            branch=options.branch,
            builder_image=options.builder_image or DEFAULT_BUILDER_IMAGE,
            nix_options=options.nix_options,
            collections=collections,
        )
    )
    files = workflows.render(decided)
    if not options.dry_run:
        write_all(directory, files, force=options.force)
    return GithubResult(
        directory=directory,
        files=files,
        dry_run=options.dry_run,
        devnix_requirement=decided.options.devnix_requirement,
        registry=f"{decided.registry_host}/{decided.registry_path}",
        runners=decided.runners,
        watched=decided.watched,
        schedule=options.schedule,
        notes=decided.notes,
    )


def requirement(repo: str | None, installed: tuple[str, str] | None) -> str:
    """The pip requirement the runner installs: devnix from its git repository, pinned.

    ``installed`` is (url, commit) when this devnix was installed from a remote git repository (pip
    records it, PEP 610): then the workflow installs that very commit. A repository given with
    ``--devnix-repo`` is pinned to this version's tag, ``v<version>``; the workflow checks the version.
    """
    if repo is not None:
        url = repo.strip().removeprefix("git+")
        if not re.fullmatch(r"(https|ssh)://(git@)?[^\s@#?]+", url):
            raise UsageError(f"--devnix-repo {repo!r} is not an https:// or ssh:// git URL", hint=PYPI_HINT)
        return f"devnix @ git+{url}@v{__version__}"
    if installed is not None:
        url, commit = installed
        return f"devnix @ git+{url}@{commit}"
    raise UsageError(
        "devnix does not know its own git repository (it was not installed from one), and PyPI's "
        "'devnix' is another project",
        hint=PYPI_HINT,
    )


def _installed_from() -> tuple[str, str] | None:
    """(url, commit) of the remote git repository pip installed devnix from, if it was."""
    import importlib.metadata

    try:
        text = importlib.metadata.distribution("devnix").read_text("direct_url.json")
        data = json.loads(text) if text else None
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    url, vcs = data.get("url"), data.get("vcs_info")
    if not isinstance(url, str) or not isinstance(vcs, dict) or vcs.get("vcs") != "git":
        return None
    commit = vcs.get("commit_id")
    if not url.startswith(("https://", "ssh://")) or not isinstance(commit, str):
        return None  # a local clone (file://) is not something a runner can reach
    return url, commit


def _collections(directory: Path) -> tuple[Collection, ...]:
    found = tuple(Collection(kind, source) for kind, source in COLLECTIONS if (directory / source).is_dir())
    if not found:
        raise UsageError(
            f"--features: {directory} has neither features/src nor templates/src",
            hint="lay the collections out as the devcontainer spec does (src/<id>/...), or drop --features",
        )
    return found
