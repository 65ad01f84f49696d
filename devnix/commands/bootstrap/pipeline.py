"""``devnix bootstrap``, the run: check the request, then the steps in order, as one transaction.

Each step is a ``with steps.step(KEY)`` block (its time and events for the CLI); what a step changes in
the engine registers its undo as it goes. The jobs themselves live beside this module: the builder,
the flake copy, the build, and the result image (load, verify, tag, push).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnix import bootstrap as core
from devnix import engine, platforms, registry
from devnix.bootstrap import FlakeRef
from devnix.commands.bootstrap import builder, image, remote
from devnix.commands.bootstrap.build import build, shape
from devnix.commands.bootstrap.flakecopy import copy_flake
from devnix.commands.bootstrap.steps import EventSink, Steps, StepTime, Undo, sigterm_stops
from devnix.errors import EngineError, FileSystemError, RegistryError, UsageError
from devnix.images import DOCKER_HUB, ImageRef, parse_ref
from devnix.platforms import Platform


@dataclass(frozen=True)
class BootstrapOptions:
    flake: str | None = None
    system: str | None = None
    builder_image: str = core.DEFAULT_BUILDER_IMAGE
    builder_platform: str | None = None
    tag: str | None = None
    push: bool = False
    nix_options: tuple[tuple[str, str], ...] = ()
    store_volume: str | None = None  # default: one per builder image id
    remote_builders: tuple[str, ...] = ()  # ssh:// or ssh-ng:// URIs; Nix builds there, never here
    remote_system: str | None = None  # what they build (default: the target system)
    remote_features: str | None = None  # the system features they support (kvm, big-parallel, ...)
    remote_key: str | None = None  # default: the agent, else ~/.ssh/id_*
    remote_host_keys: tuple[str, ...] = ()  # one per remote, in order; default: ~/.ssh/known_hosts
    builder_network: str | None = None  # the Docker network the builder joins


@dataclass(frozen=True)
class BootstrapResult:
    tag: str
    image_id: str
    system: str
    platform: str
    flake: str
    shape: str
    out_path: str
    builder: str
    builder_id: str
    builder_platform: str
    builder_emulated: bool
    nix_settings: dict[str, str]
    nix_options: tuple[tuple[str, str], ...]
    volume: str
    volume_created: bool
    built: bool
    loaded: bool
    bytes_streamed: int
    pushed_digest: str | None
    steps: tuple[StepTime, ...]
    seconds: float
    notes: tuple[str, ...] = ()
    remote_builders: tuple[dict[str, Any], ...] = ()
    built_on: tuple[str, ...] = ()  # where Nix says it built (remote URIs; "local" for the builder)
    network: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "image_id": self.image_id,
            "system": self.system,
            "platform": self.platform,
            "flake": self.flake,
            "shape": self.shape,
            "out_path": self.out_path,
            "builder": {
                "image": self.builder,
                "id": self.builder_id,
                "platform": self.builder_platform,
                "emulated": self.builder_emulated,
                "nix_settings": dict(self.nix_settings),
                "nix_options": [list(pair) for pair in self.nix_options],
                "network": self.network,
            },
            "remote_builders": [dict(r) for r in self.remote_builders],
            "built_on": list(self.built_on),
            "store_volume": {"name": self.volume, "created": self.volume_created},
            "built": self.built,
            "loaded": self.loaded,
            "bytes_streamed": self.bytes_streamed,
            "pushed": self.pushed_digest is not None,
            "digest": self.pushed_digest,
            "steps": [
                {"step": s.key, "title": s.title, "seconds": round(s.seconds, 3), "detail": s.detail}
                | ({"skipped": True} if s.skipped else {})
                for s in self.steps
            ],
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }


def run(options: BootstrapOptions, on_event: EventSink | None = None) -> BootstrapResult:
    sink: EventSink = on_event or (lambda event: None)
    started = time.monotonic()
    _check_remote_flags(options)
    answer = engine.version()
    engine_platform, cli = answer.platform, answer.cli  # cli: the command the hints name
    flake, target = _target(options, engine_platform)
    tag = _target_tag(options, target)
    if flake.local_dir is not None:
        _check_local_flake(Path(flake.local_dir).expanduser())
    remotes = _remote_plan(options, target)
    if options.push:
        _preflight_push(tag)

    steps = Steps(core.plan_steps(flake.local_dir is not None, options.push, remotes is not None), sink)
    undo = Undo()
    failed = True
    try:
        with sigterm_stops():
            result = _run(
                options, flake, target, tag, engine_platform, steps, undo, started, cli=cli, remotes=remotes
            )
        failed = False
        return result
    finally:
        problems = undo.run(failed)
        if problems and not failed:
            # The image is built and named; only the builder's removal went wrong.
            raise EngineError(
                "the image is ready, but cleaning up failed: " + "; ".join(problems),
                hint=f"remove leftovers with: {cli} rm -f "
                f"$({cli} ps -aq --filter label={engine.BOOTSTRAP_LABEL})",
            )


def _target(options: BootstrapOptions, engine_platform: Platform) -> tuple[FlakeRef, Platform]:
    if options.system:
        target = platforms.parse(options.system)
    else:
        attribute = (options.flake or "").partition("#")[2]
        named = core.system_in_attribute(attribute) if attribute else None
        target = platforms.from_nix_system(named) if named else engine_platform
    system = target.nix_system
    if str(Platform(target.os, target.architecture)) not in platforms.SUPPORTED:
        raise UsageError(f"devnix cannot bootstrap for {system}", hint="use aarch64-linux or x86_64-linux")
    return core.parse_flake_ref(options.flake, system), Platform(target.os, target.architecture)


def _target_tag(options: BootstrapOptions, target: Platform) -> ImageRef:
    text = options.tag or core.default_tag(target.nix_system)
    tag = parse_ref(text)
    if tag.digest:
        raise UsageError(
            f"--tag {text} names a digest", hint="give a name and tag, e.g. ghcr.io/me/nix:arm64"
        )
    if options.push and options.tag is None:
        raise UsageError("--push needs --tag", hint="e.g. --tag ghcr.io/me/nix:aarch64-linux --push")
    if options.push and tag.registry == DOCKER_HUB and "/" not in tag.familiar.split(":")[0]:
        raise UsageError(f"--tag {text} has no account to push to", hint="e.g. --tag me/nix:arm64")
    return tag


def _check_remote_flags(options: BootstrapOptions) -> None:
    if options.remote_builders:
        return
    given = [
        flag
        for flag, value in (
            ("--remote-system", options.remote_system),
            ("--remote-features", options.remote_features),
            ("--remote-key", options.remote_key),
            ("--remote-host-key", options.remote_host_keys),
        )
        if value
    ]
    if given:
        raise UsageError(
            f"{given[0]} without --remote-builder", hint="add --remote-builder ssh-ng://USER@HOST"
        )


def _remote_plan(options: BootstrapOptions, target: Platform) -> remote.RemotePlan | None:
    if not options.remote_builders:
        return None
    return remote.prepare(
        options.remote_builders,
        target.nix_system,
        system=options.remote_system,
        features=options.remote_features,
        key=options.remote_key,
        host_keys=options.remote_host_keys,
        network=options.builder_network,
    )


def _check_local_flake(directory: Path) -> None:
    if not directory.is_dir():
        raise FileSystemError(f"the flake folder {directory} does not exist")
    if not (directory / "flake.nix").is_file():
        raise FileSystemError(f"{directory} has no flake.nix", hint="point --flake at the folder of a flake")


def _preflight_push(tag: ImageRef) -> None:
    """Fail before a long build when the registry cannot be reached or refuses the credentials.

    The push itself still checks its stream: a registry can refuse writes it allowed reads for.
    """
    client = registry.Client.for_ref(tag)
    try:
        client.request("GET", f"/v2/{tag.repository}/tags/list", scope=registry.push_scope(tag.repository))
    except RegistryError as error:
        raise RegistryError(
            f"cannot push to {tag.registry}: {error.message}",
            hint=error.hint or f"check the registry address, then `docker login {tag.registry}`",
        ) from None
    finally:
        client.close()


def _run(
    options: BootstrapOptions,
    flake: FlakeRef,
    target: Platform,
    tag: ImageRef,
    engine_platform: Platform,
    steps: Steps,
    undo: Undo,
    started: float,
    *,
    cli: str,
    remotes: remote.RemotePlan | None = None,
) -> BootstrapResult:
    system = target.nix_system
    notes: list[str] = []

    with steps.step("builder") as step:
        builder_id, builder_platform = builder.ensure_image(
            options.builder_image, options.builder_platform, step
        )
        nix = core.builder_nix(builder_platform, engine_platform, system, remote=remotes is not None)
        how = "emulated" if nix.emulated else "native"
        step.detail = f"{options.builder_image} ({builder_platform}, {how})"

    with steps.step("store") as step:
        volume = options.store_volume or core.store_volume_name(builder_id)
        volume_created = engine.volume_details(volume) is None
        if volume_created:
            engine.create_volume(
                volume,
                {
                    f"{engine.BOOTSTRAP_LABEL}.store": "1",
                    f"{engine.BOOTSTRAP_LABEL}.builder-image": options.builder_image,
                    f"{engine.BOOTSTRAP_LABEL}.builder-id": builder_id,
                },
            )
        step.detail = f"{volume} ({'new, seeded from the builder' if volume_created else 'warm'})"
        if options.store_volume is None:
            notes.extend(builder.stale_volumes(options.builder_image, builder_id, cli))

    with steps.step("start") as step:
        container = builder.create(
            builder_id,
            env={"NIX_CONFIG": nix.text},
            labels={engine.BOOTSTRAP_LABEL: tag.familiar, f"{engine.BOOTSTRAP_LABEL}.pid": str(os.getpid())},
            volume=volume,
            platform=str(builder_platform),
            network=options.builder_network,
            binds=remotes.binds if remotes else None,
        )
        undo.always(lambda: engine.remove_container_promptly(container))
        attachment = engine.attach_stdin(container)
        undo.always(lambda: builder.close(attachment))
        if remotes is not None:
            # Before start: the key is in place before anything in the container runs.
            remote.install(container, remotes)
        engine.start_container(container)
        step.detail = container[:12] + (f" on {options.builder_network}" if options.builder_network else "")

    if remotes is not None:
        with steps.step("remote") as step:
            remotes = remote.check(container, remotes, options.builder_image, step)
            step.detail = ", ".join(f"{r.given} ({r.fingerprint[:19]}…)" for r in remotes.remotes)

    if flake.local_dir is not None:
        with steps.step("copy") as step:
            sent = copy_flake(container, Path(flake.local_dir).expanduser(), step)
            step.detail = f"{_mb(sent)} into {core.CONTAINER_FLAKE_DIR}"

    with steps.step("build") as step:
        env = remotes.env if remotes else None
        ran = build(container, flake, system, options.nix_options, nix, step, env=env)
        out_path, built = ran.out_path, ran.built
        built_on = tuple(
            dict.fromkeys(
                [remotes.shown(uri) if remotes else uri for uri in ran.remote.values()]
                + (["local"] if ran.local else [])
            )
        )
        kind = shape(container, out_path)
        where = f" on {', '.join(built_on)}" if remotes and built_on else ""
        step.detail = f"{out_path} ({kind}{where}{'' if built else ', already built'})"

    loaded = False
    streamed = 0
    outcome = core.LoadOutcome(None, ())
    image_id = image.already_loaded(container, out_path)
    if image_id is not None:
        steps.skip("load", f"{out_path} is loaded already as {image_id[:19]}")
    else:
        with steps.step("load") as step:
            before = engine.image_ids()
            names_before = engine.image_names()
            outcome, streamed = image.load(container, kind, out_path, step)
            image_id = outcome.image_id or image.id_of(outcome.tags)
            outcome = core.with_moved_names(outcome, names_before, image_id)
            image.undo_load(undo, outcome, image_id, image_id not in before)
            loaded = True
            step.detail = f"{_mb(streamed)} as {image_id[:19]}"

    with steps.step("verify") as step:
        step.detail = image.verify(image_id, target, nix)
        if loaded:
            image.note_loaded(container, out_path, image_id)

    with steps.step("tag") as step:
        image.apply_tag(undo, image_id, tag)
        image.drop_archive_names(outcome, tag)
        step.detail = tag.familiar

    digest: str | None = None
    if options.push:
        with steps.step("push") as step:
            digest = image.push(tag, step)
            step.detail = f"{tag.familiar}@{digest}" if digest else tag.familiar

    return BootstrapResult(
        tag=tag.familiar,
        image_id=image_id,
        system=system,
        platform=str(target),
        flake=flake.shown,
        shape=kind,
        out_path=out_path,
        builder=options.builder_image,
        builder_id=builder_id,
        builder_platform=str(builder_platform),
        builder_emulated=nix.emulated,
        nix_settings=nix.as_dict(),
        nix_options=options.nix_options,
        volume=volume,
        volume_created=volume_created,
        built=built,
        loaded=loaded,
        bytes_streamed=streamed,
        pushed_digest=digest,
        steps=tuple(steps.done),
        seconds=time.monotonic() - started,
        notes=tuple(notes),
        remote_builders=remote.described(remotes) if remotes else (),
        built_on=built_on,
        network=options.builder_network,
    )


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
