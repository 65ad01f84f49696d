"""devnix's decisions written into a devcontainer.json someone already has.

Pure: :mod:`devnix.configfile` reads the config and its companions, this module computes the edits,
and the command writes them.

Only the keys devnix owns change, through minimal text edits (:mod:`devnix.jsonc`): comments, foreign
keys, their text, indentation, line endings, a BOM and trailing commas all stay as they were, and a
second identical merge changes nothing. What devnix owns:

- ``image`` (image-based configs; a ``build`` config keeps its Dockerfile and base image),
- the ``--platform`` entries of ``runArgs`` and ``build.options``,
- ``containerEnv.NIX_PATH`` and ``containerEnv.NIX_USER_CONF_FILES``,
- a ``mounts`` entry for devnix's own /nix store volume (``devnix-nix-*``),
- the Nix (and direnv) extension in ``customizations.vscode.extensions``,
- ``postCreateCommand`` only when the config has none.

A ``dockerComposeFile`` config keeps its image in a compose file: there devnix edits the service
(:mod:`devnix.compose`: image, platform, environment) and devcontainer.json only gets the extensions, the
``postCreateCommand`` and, when the container's workspace path is unknown, ``remoteEnv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devnix import jsonc
from devnix.configfile import ComposeService, ConfigFile, read_companions
from devnix.images import Filesystem
from devnix.jsonc import JsonPath
from devnix.plan import Plan
from devnix.render import Layout, context


def merge_config(config: ConfigFile, plan: Plan, layout: Layout) -> tuple[str, list[str]]:
    """The new text of ``config`` with devnix's decisions, and notes on what was left alone."""
    text, notes, _others = merge_all(config, plan, layout)
    return text, notes


def merge_all(
    config: ConfigFile, plan: Plan, layout: Layout
) -> tuple[str, list[str], dict[Path, tuple[str, str]]]:
    """:func:`merge_config`, plus the other files it edits (a compose file) as ``{path: (old, new)}``."""
    read_companions(config)
    if config.compose is not None:
        return _merge_compose(config, config.compose, plan, layout)
    values = context(plan, layout)
    text = config.text
    notes: list[str] = []
    model = config.model
    pin = f"--platform={plan.platform}" if plan.pin_platform else None

    if config.is_build:
        text = _set_platform_args(text, config, ("build", "options"), pin)
        notes.extend(_loader_notes(config))
    elif plan.fhs_loader:
        text = _image_to_build(text, pin)
        notes.append(
            f"{plan.image.familiar} is {plan.filesystem.value}: the config now builds "
            f"{config.companion_dir}/Dockerfile, which adds the FHS loader VS Code's server needs"
        )
    else:
        text = _set_if_different(text, ("image",), model.image, values["image"])
    text = _set_platform_args(text, config, ("runArgs",), pin)

    conf_path = f"${{containerWorkspaceFolder}}/{config.companion_dir}/nix.conf"
    config.refuse_wrong(("containerEnv",))
    environment = model.container_env
    text = _set_if_different(text, ("containerEnv", "NIX_PATH"), environment.get("NIX_PATH"), plan.nix_path)
    text = _set_if_different(
        text, ("containerEnv", "NIX_USER_CONF_FILES"), environment.get("NIX_USER_CONF_FILES"), conf_path
    )

    if plan.store_volume:
        text = _set_store_volume(
            text, config, f"source={plan.store_volume}-${{devcontainerId}},target=/nix,type=volume"
        )

    return _extensions_and_post_create(text, config, values, notes), notes, {}


def _image_to_build(text: str, pin: str | None) -> str:
    """Put ``"build": {"dockerfile": "Dockerfile"}`` where ``"image"`` was (the Dockerfile has the image)."""
    build: dict[str, Any] = {"dockerfile": "Dockerfile"}
    if pin:
        build["options"] = [pin]
    if jsonc.parse(text).node(("image",)) is None:
        return jsonc.set_value(text, ("build",), build)
    return jsonc.replace_member(text, ("image",), "build", build)


def _loader_notes(config: ConfigFile) -> list[str]:
    """A Dockerfile config keeps its Dockerfile: say how to add the FHS loader step when it lacks it."""
    from devnix.fhsloader import SCRIPT_NAME, dockerfile_adds_loader

    where = config.model.dockerfile
    if where is None:
        return []
    name = where[1]
    dockerfile = config.dockerfile_text
    if dockerfile is None or dockerfile_adds_loader(dockerfile):
        return []
    return [
        f"if {name}'s base image is store-only (nixos/nix is), VS Code's server cannot start in it: "
        f"add `COPY {SCRIPT_NAME} /tmp/` and `RUN sh /tmp/{SCRIPT_NAME}` after its FROM "
        f"(`devnix init --dry-run --template nix-dockerfile` shows the script)"
    ]


def _extensions_and_post_create(
    text: str, config: ConfigFile, values: dict[str, Any], notes: list[str]
) -> str:
    current = config.value
    for extension in values["extensions"]:
        text = jsonc.append_unique(text, ("customizations", "vscode", "extensions"), extension)

    if values["post_create"]:
        wanted = f"bash {config.companion_dir}/post-create.sh"
        existing = current.get("postCreateCommand")
        if existing is None:
            text = jsonc.set_value(text, ("postCreateCommand",), wanted)
        elif existing != wanted:
            notes.append(f"postCreateCommand is yours and was kept; add `{wanted}` to it for the dev shell")
    return text


def _merge_compose(
    config: ConfigFile, service: ComposeService, plan: Plan, layout: Layout
) -> tuple[str, list[str], dict[Path, tuple[str, str]]]:
    """The service's image, platform and environment go to its compose file; the rest to the config."""
    from devnix import compose

    values = context(plan, layout)
    notes: list[str] = []
    text = config.text
    environment = {"NIX_PATH": plan.nix_path}
    workspace = config.model.workspace_folder
    conf = f"{config.companion_dir}/nix.conf"
    if workspace is not None and workspace.startswith("/") and "${" not in workspace:
        # Compose files get no ${containerWorkspaceFolder}: the path the service mounts the project at
        # is the config's workspaceFolder, written out.
        environment["NIX_USER_CONF_FILES"] = f"{workspace.rstrip('/')}/{conf}"
    else:
        config.refuse_wrong(("remoteEnv",))
        wanted = f"${{containerWorkspaceFolder}}/{conf}"
        current = config.model.remote_env.get("NIX_USER_CONF_FILES")
        text = _set_if_different(text, ("remoteEnv", "NIX_USER_CONF_FILES"), current, wanted)
        why = "has no workspaceFolder" if workspace is None else "has a workspaceFolder with variables"
        notes.append(
            f"{config.path.name} {why}, which a compose file cannot spell; NIX_USER_CONF_FILES went to "
            "remoteEnv (set for the tools' processes, not the container's own)"
        )
    if plan.store_volume:
        notes.append(
            "--store-volume is not applied to compose configs; add a volume over /nix to the service"
        )
    new_compose = compose.edit_service(
        service.text,
        service.service,
        where=str(service.path),
        image=None if service.build else values["image"],
        platform=str(plan.platform),
        pin=plan.pin_platform,
        environment=environment,
    )
    before = compose.service_facts(service.text, service.service, str(service.path))
    if before and before.platform and new_compose != service.text:
        after = compose.service_facts(new_compose, service.service, str(service.path))
        if after and after.platform is None:
            notes.append(
                f"removed platform {before.platform} from {service.service!r}: the engine may still hold "
                "that variant under the image's tag, which compose would run; `docker compose pull` "
                "fetches the native one"
            )
    if plan.fhs_loader and not service.build:
        what = "is store-only:" if plan.filesystem is Filesystem.STORE_ONLY else "may be store-only; if so,"
        notes.append(
            f"{plan.image.familiar} {what} VS Code's server cannot start in {service.service!r}; build the "
            "service from a Dockerfile that runs devnix's fhs-loader.sh (`devnix init --dry-run --template "
            "nix` shows both)"
        )
    text = _extensions_and_post_create(text, config, values, notes)
    others = {service.path: (service.text, new_compose)} if new_compose != service.text else {}
    return text, notes, others


def _set_if_different(text: str, path: tuple[str, ...], current: Any, wanted: Any) -> str:
    return text if current == wanted else jsonc.set_value(text, path, wanted)


def _set_platform_args(text: str, config: ConfigFile, path: JsonPath, pin: str | None) -> str:
    """Keep every argument but the ``--platform`` ones, then add devnix's pin when it needs one."""
    config.refuse_wrong(path)
    model = config.model
    args = model.run_args if path == ("runArgs",) else model.build.options if model.build else None
    if args is None:
        return text if pin is None else jsonc.set_value(text, path, [pin])
    doomed = args.platform_positions()
    kept = [item for index, item in enumerate(args.items) if index not in doomed]
    if kept + ([pin] if pin else []) == list(args.items):
        return text
    for index in reversed(doomed):
        text = jsonc.remove(text, (*path, index))
    if pin:
        text = jsonc.set_value(text, (*path, len(kept)), pin)
    return text


def _set_store_volume(text: str, config: ConfigFile, mount: str) -> str:
    """Replace devnix's earlier store volume (an older image's) with the one for this image."""
    config.refuse_wrong(("mounts",))
    listed = [m for m in config.model.mounts if m.path[0] == "mounts"]
    if any(m.text == mount for m in listed):
        return text
    stale = [m.path for m in listed if m.is_nix_volume and m.source.startswith("devnix-nix-")]
    for where in reversed(stale):
        text = jsonc.remove(text, where)
    return jsonc.append_unique(text, ("mounts",), mount)
