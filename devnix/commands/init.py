"""``devnix init``: gather the facts (engine, registry), decide (plan), render, write."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnix import engine, images, platforms, registry
from devnix.errors import EngineError, FileSystemError, RegistryError
from devnix.fs import write_all
from devnix.images import ImageRef
from devnix.nixconf import NixOptions
from devnix.plan import Facts, Known, Plan, Source, decide
from devnix.platforms import Platform
from devnix.render import Layout, render

_SOURCE_WORDS = {
    Source.FLAG: "from --platform",
    Source.ENGINE: "the Docker engine's",
    Source.HOST: "this host's (no Docker engine answered)",
    Source.REGISTRY: "from the registry",
    Source.LOCAL: "from the engine's local copy (the registry could not be reached)",
    Source.CATALOG: "from devnix's catalog (neither the registry nor the engine could tell)",
    Source.ASSUMED: "assumed from --platform (nothing could tell)",
}


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
    extra_platforms: tuple[str, ...] = ()
    trusted_users: tuple[str, ...] = ()
    substituters: tuple[str, ...] = ()
    trusted_public_keys: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    registry_timeout: float = 5.0


@dataclass(frozen=True)
class InitResult:
    directory: Path
    plan: Plan
    files: dict[str, str]
    dry_run: bool
    notes: tuple[str, ...] = field(default=())

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
            "directory": str(self.directory),
            "files": sorted(self.files),
            "dry_run": self.dry_run,
            "notes": list(self.notes),
        }
        if self.dry_run:
            data["contents"] = dict(sorted(self.files.items()))
        return data


def run(options: InitOptions) -> InitResult:
    directory = options.directory
    if not directory.is_dir():
        raise FileSystemError(
            f"{directory} is not a folder",
            hint="create it first, or pass an existing project folder",
        )
    requested = platforms.parse_supported(options.platform) if options.platform else None
    ref = images.parse_ref(options.image) if options.image else images.default_image().ref

    notes: list[str] = []
    engine_platform, engine_source, known = _gather(ref, requested, options.registry_timeout, notes)
    plan = decide(
        Facts(
            image=ref,
            image_platforms=known,
            engine_platform=engine_platform,
            engine_source=engine_source,
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
        )
    )
    notes.extend(plan.notes)
    layout = Layout(
        name=directory.resolve().name or "project",
        dockerfile=options.dockerfile,
        flake=options.flake,
        direnv=options.direnv,
        write_flake_nix=options.flake and not (directory / "flake.nix").exists(),
    )
    files = render(plan, layout)
    if not options.dry_run:
        write_all(directory, files, force=options.force, executable=(".devcontainer/post-create.sh",))
    return InitResult(directory, plan, files, options.dry_run, tuple(notes))


def _gather(
    ref: ImageRef, requested: Platform | None, timeout: float, notes: list[str]
) -> tuple[Platform, Source, Known]:
    """Ask the engine and the registry at the same time; fall back as the issue says, and say so."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        engine_future = pool.submit(engine.version)
        registry_future = pool.submit(registry.image_platforms, ref, timeout=timeout)
        engine_error: EngineError | None = None
        try:
            engine_platform, engine_source = engine_future.result().platform, Source.ENGINE
        except EngineError as error:
            engine_error = error
            engine_platform, engine_source = platforms.host(), Source.HOST
            notes.append(f"no Docker engine answered ({error.message}); using this host's platform")
        try:
            remote = registry_future.result()
            return (
                engine_platform,
                engine_source,
                Known(remote.platforms, Source.REGISTRY, remote.digest),
            )
        except RegistryError as error:
            registry_error = error

    if engine_error is None:
        local = _local_copy(ref)
        if local is not None:
            notes.append(f"{registry_error.message}; used the engine's local copy of {ref.familiar}")
            return engine_platform, engine_source, local
    entry = images.lookup(ref)
    if entry is not None:
        notes.append(f"{registry_error.message}; used devnix's catalog entry for {entry.name}")
        return engine_platform, engine_source, Known(entry.platforms, Source.CATALOG)
    if requested is not None:
        notes.append(f"{registry_error.message}; trusting --platform {requested}")
        return engine_platform, engine_source, Known((requested,), Source.ASSUMED)
    raise RegistryError(
        f"cannot learn the platforms of {ref.familiar}: {registry_error.message}",
        hint="pull the image once (docker pull), or pass --platform to say which one it has",
    )


def _local_copy(ref: ImageRef) -> Known | None:
    try:
        local = engine.local_image(ref.familiar) or engine.local_image(str(ref))
    except EngineError:
        return None
    if local is None:
        return None
    prefix = f"{ref.familiar.split(':')[0].split('@')[0]}@"
    digest = next((d.split("@", 1)[1] for d in local.repo_digests if d.startswith(prefix)), None)
    return Known((local.platform,), Source.LOCAL, digest)


def describe(result: InitResult) -> str:
    """The text the CLI prints."""
    plan = result.plan
    how = "emulated" if plan.emulated else "native"
    lines = [
        f"platform: {plan.platform} ({how}; target {_SOURCE_WORDS[plan.target_source]}"
        + (f", engine {plan.engine_platform}" if plan.target_source is Source.FLAG else "")
        + ")",
        f"image:    {plan.image.familiar} ({', '.join(str(p) for p in plan.image_platforms.platforms)} "
        f"{_SOURCE_WORDS[plan.image_platforms.source]})",
    ]
    if plan.emulated:
        lines.append("nix:      filter-syscalls = false (emulation cannot load Nix's seccomp filter)")
    lines.extend(f"note:     {note}" for note in result.notes)
    verb = "would write" if result.dry_run else "wrote"
    for path, text in sorted(result.files.items()):
        lines.append(f"{verb}:    {result.directory / path}")
        if result.dry_run:
            lines.extend(f"    | {line}" for line in text.splitlines())
    return "\n".join(lines)
