"""``devnix init``: gather the facts (engine, registry), decide (plan), render, write (or merge)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnix import engine, imagefacts, images, platforms
from devnix.errors import EngineError, FileSystemError, RegistryError, UsageError
from devnix.fhsloader import SCRIPT_NAME
from devnix.fs import target_of, write_all
from devnix.images import Filesystem, ImageRef
from devnix.nixconf import NixOptions
from devnix.plan import Facts, Known, Plan, Source, decide, pull_command, stale_copy
from devnix.platforms import Platform
from devnix.render import Layout, render


@dataclass(frozen=True)
class InitOptions:
    directory: Path
    image: str | None = None
    platform: str | None = None
    dockerfile: bool = False
    flake: bool = False
    direnv: bool = False
    flakes: bool = True
    nix_path: str = "nixpkgs=channel:nixos-unstable"
    store_volume: bool = False
    fhs_loader: bool | None = None  # None: decided by the image's layout
    extra_platforms: tuple[str, ...] = ()
    trusted_users: tuple[str, ...] = ()
    substituters: tuple[str, ...] = ()
    trusted_public_keys: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    merge: bool = False
    config: str | None = None
    template: str | None = None  # a Template of templates/: its layout, with what init detects
    registry_timeout: float = 5.0


@dataclass(frozen=True)
class InitResult:
    directory: Path
    plan: Plan
    files: dict[str, str]
    dry_run: bool
    notes: tuple[str, ...] = field(default=())
    merged: str | None = None  # the merged config's path, relative to the project
    diff: str = ""  # with --merge: a unified diff of every file that changes

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        data: dict[str, Any] = {
            "platform": str(plan.platform),
            "emulated": plan.emulated,
            "image": str(plan.image),
            "engine_platform": str(plan.engine_platform),
            "engine_source": plan.engine_source.value,
            "target_source": plan.target_source.value,
            "source": plan.image_platforms.source.value,
            "image_platforms": [str(p) for p in plan.image_platforms.platforms],
            "image_digest": plan.image_platforms.digest,
            "nix_settings": {s.key: s.value for s in plan.settings},
            "nix_path": plan.nix_path,
            "store_volume": plan.store_volume,
            "filesystem": plan.filesystem.value,
            "filesystem_source": plan.filesystem_source.value,
            "fhs_loader": plan.fhs_loader,
            "directory": str(self.directory),
            "files": sorted(self.files),
            "dry_run": self.dry_run,
            "merged": self.merged,
            "notes": list(self.notes),
        }
        if self.dry_run:
            data["contents"] = dict(sorted(self.files.items()))
            if self.merged:
                data["diff"] = self.diff
        return data


def run(options: InitOptions) -> InitResult:
    directory = options.directory
    if not directory.is_dir():
        raise FileSystemError(
            f"{directory} is not a folder", hint="create it first, or pass an existing project folder"
        )
    requested = platforms.parse_supported(options.platform) if options.platform else None
    ref = images.parse_ref(options.image) if options.image is not None else images.default_image().ref

    existing = None
    if options.merge:
        from devnix.configfile import find_config, read_companions

        if options.dockerfile:
            raise UsageError(
                "--dockerfile cannot be merged into an existing config",
                hint="merge without --dockerfile (the config then reads nix.conf at run time)",
            )
        existing = find_config(directory, options.config)
        read_companions(existing)  # before any network: a refused config costs nothing

    notes: list[str] = []
    if existing is not None and options.image is None and existing.compose is None and not existing.is_build:
        ref = _image_of(existing.value, ref, notes)
    # A Dockerfile config keeps its own base image: nothing can tell its platforms but the user.
    keeps_base_image = existing is not None and existing.is_build and options.image is None
    gathered = _gather(ref, requested, options.registry_timeout, notes, skip_registry=keeps_base_image)
    plan = decide(
        Facts(
            image=ref,
            image_platforms=gathered.known,
            engine_platform=gathered.engine_platform,
            engine_source=gathered.engine_source,
            filesystem=gathered.filesystem,
            filesystem_source=gathered.filesystem_source,
            requested_platform=requested,
            nix=NixOptions(
                flakes=options.flakes,
                extra_platforms=options.extra_platforms,
                trusted_users=options.trusted_users,
                substituters=options.substituters,
                trusted_public_keys=options.trusted_public_keys,
            ),
            nix_path=options.nix_path,
            store_volume=options.store_volume,
            fhs_loader=options.fhs_loader,
        )
    )
    notes.extend(plan.notes)
    if gathered.local is not None and not keeps_base_image:
        notes.extend(_native_local_copy(plan, gathered.local, gathered.engine_cli, dry_run=options.dry_run))
    layout = _layout(options)
    files = render(plan, layout)
    if existing is not None:
        return _merge(options, existing, plan, layout, files, notes)
    if not options.dry_run:
        scripts = (".devcontainer/post-create.sh", f".devcontainer/{SCRIPT_NAME}")
        write_all(directory, files, force=options.force, executable=scripts)
    return InitResult(directory, plan, files, options.dry_run, tuple(notes))


def _layout(options: InitOptions) -> Layout:
    dockerfile, flake, direnv = options.dockerfile, options.flake, options.direnv
    if options.template:
        from devnix.templates import spec

        chosen = spec(options.template).layout
        dockerfile, flake, direnv = (
            dockerfile or chosen.dockerfile,
            flake or chosen.flake,
            direnv or chosen.direnv,
        )
    return Layout(
        name=options.directory.resolve().name or "project",
        dockerfile=dockerfile,
        flake=flake,
        direnv=direnv,
        write_flake_nix=flake and not (options.directory / "flake.nix").exists(),
    )


def _merge(
    options: InitOptions,
    existing: Any,
    plan: Plan,
    layout: Layout,
    rendered: dict[str, str],
    notes: list[str],
) -> InitResult:
    """Edit the existing config in place (and its compose file); add the companion files that are missing."""
    import difflib

    from devnix.merge import merge_all

    directory = options.directory
    config_path = existing.path.relative_to(directory).as_posix()
    merged_text, merge_notes, others = merge_all(existing, plan, layout)
    notes.extend(merge_notes)
    companion_dir = str(existing.companion_dir)
    wanted: dict[str, str] = {}
    for path, text in rendered.items():
        if path == ".devcontainer/devcontainer.json":
            continue
        if (existing.is_build or existing.compose is not None) and path in (
            ".devcontainer/Dockerfile",
            f".devcontainer/{SCRIPT_NAME}",
        ):
            continue  # their own Dockerfile or compose file runs the image (merge says how to add the step)
        if path.startswith(".devcontainer/"):
            path = f"{companion_dir}/{path.removeprefix('.devcontainer/')}"
        wanted[path] = text
    changes: dict[str, str] = {}
    if merged_text != existing.text:
        changes[config_path] = merged_text
    old_texts = {config_path: existing.text}
    for other, (old, new) in others.items():
        relative = Path(os.path.relpath(other, directory)).as_posix()
        changes[relative], old_texts[relative] = new, old
    for path, text in wanted.items():
        target = target_of(directory / path)  # refuses a folder or a FIFO there, follows a symlink
        if not target.exists():
            changes[path] = text
            continue
        try:
            current = target.read_text("utf-8", errors="replace")
        except OSError as error:
            raise FileSystemError(
                f"cannot read {directory / path}: {error.strerror or error}", hint="check its permissions"
            ) from None
        old_texts[path] = current
        if current == text:
            continue
        if options.force:
            changes[path] = text
        elif path.endswith("/Dockerfile") and plan.fhs_loader and not existing.is_build:
            raise UsageError(
                f"{path} exists and is not devnix's, and {plan.image.familiar} needs devnix's Dockerfile "
                "(it adds the FHS loader VS Code's server needs); nothing was changed",
                hint="pass --force to replace it, or move it away and merge again",
            )
        else:
            notes.append(f"{path} exists and differs from devnix's; kept it (--force rewrites it)")
    diff = "".join(
        "".join(
            difflib.unified_diff(
                old_texts.get(path, "").splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"a/{path}" if path in old_texts else "/dev/null",
                tofile=f"b/{path}",
            )
        )
        for path, text in sorted(changes.items())
    )
    if not options.dry_run and changes:
        post_create = f"{companion_dir}/post-create.sh"
        loader_script = f"{companion_dir}/{SCRIPT_NAME}"
        write_all(directory, changes, force=True, executable=(post_create, loader_script))
    return InitResult(directory, plan, changes, options.dry_run, tuple(notes), config_path, diff)


def _image_of(config: dict[str, Any], default: ImageRef, notes: list[str]) -> ImageRef:
    """The image an image config runs: merging without --image keeps it (and fixes what it needs)."""
    image = config.get("image")
    if not isinstance(image, str):
        return default
    try:
        return images.parse_ref(image)
    except UsageError:
        notes.append(f"the config's image {image!r} is not a plain reference; using {default.familiar}")
        return default


def _native_local_copy(plan: Plan, local: engine.LocalImage, cli: str, *, dry_run: bool) -> list[str]:
    """Make sure an unpinned config starts the variant devnix chose, not a stale local copy
    (:func:`devnix.plan.stale_copy` says when; pulling the right variant replaces the copy)."""
    if plan.pin_platform:
        return []  # a pinned config names its platform
    wanted = stale_copy(local.platform, plan.image_platforms.platforms, plan.engine_platform, None)
    if wanted is None:
        return []
    command = pull_command(wanted, plan.image.familiar, cli)
    held = f"the engine holds the {local.platform} copy of {plan.image.familiar}, which the config would run"
    if dry_run:
        return [f"{held}; init would pull its {wanted} variant (`{command}`)"]
    try:
        engine.pull_with_progress(str(plan.image), platform=str(wanted))
    except EngineError as error:
        return [f"{held}: {error.message}; run `{command}` before starting the container"]
    return [f"{held}; pulled its {wanted} variant in its place"]


def _engine_platform(notes: list[str]) -> tuple[Platform, Source, str]:
    """The platform containers run as natively, where that came from, and the engine's own tool (the
    command hints name: docker, or podman when Podman answers)."""
    try:
        answer = engine.version()
    except EngineError as error:
        notes.append(f"no Docker engine answered ({error.message}); using this host's platform")
        return platforms.host(), Source.HOST, "docker"
    return answer.platform, Source.ENGINE, answer.cli


@dataclass(frozen=True)
class Gathered:
    """The facts init asks the world for."""

    engine_platform: Platform
    engine_source: Source
    known: Known
    filesystem: Filesystem = Filesystem.UNKNOWN
    filesystem_source: Source = Source.ASSUMED
    local: engine.LocalImage | None = None  # the engine's copy of the tag, asked beside the registry
    engine_cli: str = "docker"


def _gather(
    ref: ImageRef,
    requested: Platform | None,
    timeout: float,
    notes: list[str],
    *,
    skip_registry: bool = False,
) -> Gathered:
    """Ask the engine, the registry and the engine's copy at the same time; fall back as
    :func:`devnix.imagefacts.learn` does, and say so."""
    if skip_registry:
        engine_platform, engine_source, cli = _engine_platform(notes)
        target = requested or engine_platform
        notes.append(f"the Dockerfile's base image is kept; assuming it has {target}")
        return Gathered(engine_platform, engine_source, Known((target,), Source.ASSUMED), engine_cli=cli)
    with ThreadPoolExecutor(max_workers=1) as pool:
        engine_future = pool.submit(_engine_platform, notes)
        # One platform's config is enough for the layout: a tag's variants are built alike.
        found = imagefacts.learn(ref, timeout=timeout, config_for=requested or platforms.host())
        engine_platform, engine_source, cli = engine_future.result()
    if found.known is not None:
        if found.known.source is Source.LOCAL:
            notes.append(f"{found.registry_error}; used the engine's local copy of {ref.familiar}")
        elif found.known.source is Source.CATALOG:
            notes.append(f"{found.registry_error}; used devnix's catalog entry for {found.catalog_name}")
        return Gathered(
            engine_platform,
            engine_source,
            found.known,
            found.filesystem,
            found.filesystem_source,
            local=found.local if engine_source is Source.ENGINE else None,
            engine_cli=cli,
        )
    if requested is not None:
        notes.append(f"{found.registry_error}; trusting --platform {requested}")
        return Gathered(engine_platform, engine_source, Known((requested,), Source.ASSUMED))
    raise RegistryError(
        f"cannot learn the platforms of {ref.familiar}: {found.registry_error}",
        hint="pull the image once (docker pull), or pass --platform to say which one it has",
    )
