"""Pure: devnix's decisions written into a devcontainer.json someone already has.

Only the keys devnix owns change, through minimal text edits (:mod:`devnix.jsonc`): comments, foreign
keys, their text, indentation, line endings, a BOM and trailing commas all stay as they were, and a
second identical merge changes nothing. What devnix owns:

- ``image`` (image-based configs; a ``build`` config keeps its Dockerfile and base image),
- the ``--platform`` entries of ``runArgs`` and ``build.options``,
- ``containerEnv.NIX_PATH`` and ``containerEnv.NIX_USER_CONF_FILES``,
- a ``mounts`` entry for devnix's own /nix store volume (``devnix-nix-*``),
- the Nix (and direnv) extension in ``customizations.vscode.extensions``,
- ``postCreateCommand`` only when the config has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from devnix import jsonc
from devnix.errors import UsageError
from devnix.plan import Plan
from devnix.render import Layout, context

CONFIG_CANDIDATES = (".devcontainer/devcontainer.json", ".devcontainer.json")


class MergeRefused(UsageError):
    """A config devnix cannot merge into safely; the file is left untouched."""


@dataclass(frozen=True)
class ConfigFile:
    """An existing devcontainer.json: where it is, its text, and the folder its companions go to."""

    path: Path
    text: str
    companion_dir: PurePosixPath  # relative to the project, e.g. .devcontainer or .devcontainer/nix

    @property
    def value(self) -> dict[str, Any]:
        value = jsonc.parse(self.text).value
        if not isinstance(value, dict):
            raise MergeRefused(f"{self.path} is not a JSON object", hint="fix it or write a new one")
        return value

    @property
    def is_build(self) -> bool:
        return isinstance(self.value.get("build"), dict) or "dockerFile" in self.value


def find_config(directory: Path, name: str | None = None) -> ConfigFile:
    """The project's devcontainer.json: ``--config NAME`` or a path, else the two usual places."""
    if name is not None:
        candidates = [f".devcontainer/{name}/devcontainer.json", name]
    else:
        candidates = list(CONFIG_CANDIDATES)
    for candidate in candidates:
        path = directory / candidate
        if path.is_file():
            relative = path.relative_to(directory)
            parent = PurePosixPath(relative.parent.as_posix())
            companion = (
                parent
                if parent.parts and parent.parts[0] == ".devcontainer"
                else PurePosixPath(".devcontainer")
            )
            return ConfigFile(path, jsonc.read_file(path), companion)
    raise UsageError(
        f"no devcontainer.json to merge into under {directory} (looked at {', '.join(candidates)})",
        hint="run `devnix init` without --merge to write a new one, or name it with --config",
    )


def refuse_unsafe(config: ConfigFile) -> None:
    """Configs whose image devnix cannot change from devcontainer.json are refused with what to do."""
    value = config.value
    if "dockerComposeFile" in value:
        service = value.get("service", "the service")
        raise MergeRefused(
            f"{config.path} runs {service!r} from a compose file, where its image lives; devnix would "
            "have to edit that file",
            hint="set the service's image and the NIX_PATH and NIX_USER_CONF_FILES environment in the "
            "compose file, or run `devnix init` in a fresh folder and copy what you need",
        )


def merge_config(config: ConfigFile, plan: Plan, layout: Layout) -> tuple[str, list[str]]:
    """The new text of ``config`` with devnix's decisions, and notes on what was left alone."""
    refuse_unsafe(config)
    values = context(plan, layout)
    text = config.text
    notes: list[str] = []
    current = config.value
    pin = f"--platform={plan.platform}" if plan.pin_platform else None

    if config.is_build:
        text = _set_platform_args(text, ("build", "options"), current, pin)
    else:
        text = _set_if_different(text, ("image",), current.get("image"), values["image"])
    text = _set_platform_args(text, ("runArgs",), current, pin)

    conf_path = f"${{containerWorkspaceFolder}}/{config.companion_dir}/nix.conf"
    environment = current.get("containerEnv")
    if environment is not None and not isinstance(environment, dict):
        raise MergeRefused(f"{config.path}: containerEnv is not an object", hint="fix it first")
    environment = environment or {}
    text = _set_if_different(text, ("containerEnv", "NIX_PATH"), environment.get("NIX_PATH"), plan.nix_path)
    text = _set_if_different(
        text, ("containerEnv", "NIX_USER_CONF_FILES"), environment.get("NIX_USER_CONF_FILES"), conf_path
    )

    if plan.store_volume:
        text = _set_store_volume(
            text, current, f"source={plan.store_volume}-${{devcontainerId}},target=/nix,type=volume"
        )

    for extension in values["extensions"]:
        text = jsonc.append_unique(text, ("customizations", "vscode", "extensions"), extension)

    if values["post_create"]:
        wanted = f"bash {config.companion_dir}/post-create.sh"
        existing = current.get("postCreateCommand")
        if existing is None:
            text = jsonc.set_value(text, ("postCreateCommand",), wanted)
        elif existing != wanted:
            notes.append(f"postCreateCommand is yours and was kept; add `{wanted}` to it for the dev shell")
    return text, notes


def _set_if_different(text: str, path: tuple[str, ...], current: Any, wanted: Any) -> str:
    return text if current == wanted else jsonc.set_value(text, path, wanted)


def _is_platform_arg(item: Any) -> bool:
    return isinstance(item, str) and (item == "--platform" or item.startswith("--platform="))


def _set_platform_args(text: str, path: tuple[str, ...], current: dict[str, Any], pin: str | None) -> str:
    """Keep every argument but the ``--platform`` ones, then add devnix's pin when it needs one."""
    items: Any = current
    for key in path:
        items = items.get(key) if isinstance(items, dict) else None
    if items is None:
        return text if pin is None else jsonc.set_value(text, path, [pin])
    if not isinstance(items, list):
        raise MergeRefused(f"{'.'.join(path)} is not an array", hint="fix it first")
    doomed: list[int] = []
    for index, item in enumerate(items):
        if _is_platform_arg(item):
            doomed.append(index)
            if item == "--platform" and index + 1 < len(items):
                doomed.append(index + 1)  # the value of the two-word form
    kept = [item for index, item in enumerate(items) if index not in doomed]
    if kept + ([pin] if pin else []) == items:
        return text
    for index in sorted(set(doomed), reverse=True):
        text = jsonc.remove(text, (*path, index))
    if pin:
        text = jsonc.set_value(text, (*path, len(kept)), pin)
    return text


def _set_store_volume(text: str, current: dict[str, Any], mount: str) -> str:
    """Replace devnix's earlier store volume (an older image's) with the one for this image."""
    mounts = current.get("mounts")
    if mounts is None:
        return jsonc.set_value(text, ("mounts",), [mount])
    if not isinstance(mounts, list):
        raise MergeRefused("mounts is not an array", hint="fix it first")
    if mount in mounts:
        return text
    stale = [
        index
        for index, item in enumerate(mounts)
        if isinstance(item, str) and "source=devnix-nix-" in item and "target=/nix" in item
    ]
    for index in reversed(stale):
        text = jsonc.remove(text, ("mounts", index))
    return jsonc.set_value(text, ("mounts", len(mounts) - len(stale)), mount)
