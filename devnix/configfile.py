"""A project's devcontainer.json and its companions, read from disk for ``devnix init --merge``.

The edge of the merge: this module finds and reads the config, its compose files and its Dockerfile
(never writes); :mod:`devnix.merge` decides the edits from what it read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from devnix import devconfig, jsonc
from devnix.devconfig import DevConfig
from devnix.errors import UsageError
from devnix.jsonc import JsonPath

CONFIG_CANDIDATES = (".devcontainer/devcontainer.json", ".devcontainer.json")


class MergeRefused(UsageError):
    """A config devnix cannot merge into safely; the file is left untouched."""


@dataclass(frozen=True)
class ConfigFile:
    """An existing devcontainer.json: where it is, its text, and the folder its companions go to."""

    path: Path
    text: str
    companion_dir: PurePosixPath  # relative to the project, e.g. .devcontainer or .devcontainer/nix
    root: Path | None = None  # the project folder (compose files must be inside it); default: path's folder

    @property
    def value(self) -> dict[str, Any]:
        try:
            value = jsonc.parse(self.text).value
        except jsonc.JsoncSyntaxError as error:
            raise error.at(str(self.path)) from None
        if not isinstance(value, dict):
            raise MergeRefused(f"{self.path} is not a JSON object", hint="fix it or write a new one")
        return value

    @cached_property
    def model(self) -> DevConfig:
        """The config's model (:mod:`devnix.devconfig`), read once."""
        return devconfig.read(self.value)

    def refuse_wrong(self, path: JsonPath) -> None:
        """Refuse to edit a key whose value has the wrong shape: the edit would lose or break it."""
        note = self.model.problem(path)
        if note is not None:
            raise MergeRefused(f"{self.path}: {note}", hint="fix it first")

    @property
    def is_build(self) -> bool:
        if self.compose is not None:
            return self.compose.build
        return self.model.build is not None

    @cached_property
    def dockerfile_text(self) -> str | None:
        """The text of the Dockerfile a ``build`` config names (None: no Dockerfile, or unreadable)."""
        where = self.model.dockerfile
        if where is None:
            return None
        try:
            return (self.path.parent / where[1]).read_text("utf-8", errors="replace")
        except OSError:
            return None

    @cached_property
    def compose(self) -> ComposeService | None:
        """The compose service this config runs, read once (None for image and Dockerfile configs)."""
        if not self.model.is_compose and self.model.problem(("dockerComposeFile",)) is None:
            return None
        return find_compose_service(self)


@dataclass(frozen=True)
class ComposeService:
    """The compose file devnix edits for a ``dockerComposeFile`` config, and how it defines the service."""

    path: Path  # the last file that defines the service's image or build
    text: str
    service: str
    build: bool  # built from a Dockerfile (in any of the files): its image stays the build's


def find_compose_service(config: ConfigFile) -> ComposeService:
    """Read the config's compose files; refuse what devnix cannot edit safely, with what to do."""
    from devnix import compose

    names, service = config.model.compose_files, config.model.service
    if not names:
        raise MergeRefused(
            f"{config.path}: dockerComposeFile is not a path or a list of paths", hint="fix it"
        )
    if not service:
        raise MergeRefused(f"{config.path}: a dockerComposeFile config needs a service", hint="fix it")
    root = (config.root or config.path.parent).resolve()
    chosen: tuple[Path, str] | None = None
    build = mentioned = False
    for name in names:
        # Relative to the devcontainer.json's folder, as the reference CLI reads them.
        path = Path(os.path.normpath(config.path.parent / name))
        if not path.resolve().is_relative_to(root):
            raise MergeRefused(
                f"{config.path}: compose file {name} is outside the project {root}; devnix edits only "
                "files in the project",
                hint="move the service into a compose file in the project, or edit it by hand",
            )
        if not path.is_file():
            raise MergeRefused(
                f"{config.path}: compose file {name} is missing; devnix edits the service {service!r} there",
                hint="create it (or fix dockerComposeFile), then merge again",
            )
        text = _read_compose(path)
        facts = compose.service_facts(text, service, str(path))
        if facts is None:
            continue
        mentioned = True
        build = build or facts.build
        if facts.image or facts.build:
            chosen = (path, text)
    if chosen is None:
        which = "defines it without an image or a build (extends?)" if mentioned else "defines it"
        raise MergeRefused(
            f"{config.path}: no compose file in {', '.join(names)} {which}: service {service!r}",
            hint="give the service an image or a build in a compose file of the project, or check `service`",
        )
    return ComposeService(chosen[0], chosen[1], service, build)


def _read_compose(path: Path) -> str:
    """A compose file's text as it is (line endings too); undecodable bytes are refused, not replaced."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError:
        raise MergeRefused(f"{path} is not UTF-8 text", hint="fix it first") from None
    except OSError as error:
        raise MergeRefused(f"cannot read {path}: {error.strerror or error}", hint="check it") from None


def find_config(directory: Path, name: str | None = None) -> ConfigFile:
    """The project's devcontainer.json: ``--config NAME`` or a path, else the two usual places."""
    if name is not None:
        candidates = [f".devcontainer/{name}/devcontainer.json", name]
    else:
        candidates = list(CONFIG_CANDIDATES)
    for candidate in candidates:
        path = directory / candidate
        if not path.resolve().is_relative_to(directory.resolve()):
            raise UsageError(
                f"--config {name} is outside the project {directory}; devnix edits only files in the project",
                hint="name a config under .devcontainer/, or run devnix in the folder that holds it",
            )
        if path.is_file():
            relative = path.relative_to(directory)
            parent = PurePosixPath(relative.parent.as_posix())
            companion = (
                parent
                if parent.parts and parent.parts[0] == ".devcontainer"
                else PurePosixPath(".devcontainer")
            )
            return ConfigFile(path, jsonc.read_file(path), companion, directory)
    raise UsageError(
        f"no devcontainer.json to merge into under {directory} (looked at {', '.join(candidates)})",
        hint="run `devnix init` without --merge to write a new one, or name it with --config",
    )


def read_companions(config: ConfigFile) -> None:
    """Read what the merge will look at besides the config (its compose files, its Dockerfile), so that
    :mod:`devnix.merge` only computes. Configs devnix cannot merge into safely are refused here, with
    what to do (a compose file that is missing, outside the project, or lacks the service)."""
    _ = config.compose
    _ = config.dockerfile_text
