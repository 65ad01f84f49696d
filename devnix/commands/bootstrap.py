"""``devnix bootstrap``: build a Nix image for the target system in a builder container, load it, tag it.

The seed's recipe as one command: run a Nix image the engine has (an x86_64 one, emulated on Apple
Silicon) with the settings the situation needs, build a flake output that is a Docker image for the
target system, stream it straight from the builder into the engine, check it, and only then name it.

Everything is a transaction: whatever fails, or a Ctrl-C, removes the builder container and every name
this run set or moved; the builder container also ends by itself when devnix dies without cleaning up
(its main process reads the stdin devnix holds open). The store volume is a cache and stays: it keeps
/nix between runs, so a second run of an unchanged flake builds nothing and loads nothing.

Progress is reported through ``on_event`` (this module prints nothing).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnix import bootstrap as core
from devnix import engine, platforms, registry
from devnix.bootstrap import FlakeRef, NixBuildError, VerifyError
from devnix.errors import DevnixError, EngineError, FileSystemError, RegistryError, UsageError
from devnix.images import DOCKER_HUB, ImageRef, parse_ref
from devnix.platforms import Platform

CHUNK = 1 << 20  # bytes per read from the tar pipe; the exec stream comes in the engine's own frames
PROGRESS_EVERY = 0.1  # seconds between progress events of one step


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
    verify_timeout: float = 300.0


@dataclass(frozen=True)
class Event:
    """Progress for the CLI. ``kind``: start, progress, log, done, skip, fail."""

    kind: str
    step: str
    title: str = ""
    text: str = ""
    completed: int | None = None
    total: int | None = None
    seconds: float | None = None


EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class StepTime:
    key: str
    title: str
    seconds: float
    detail: str
    skipped: bool = False


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
            },
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


# --- steps and their events -------------------------------------------------------------------------


class _Handle:
    """What a running step may report: progress (throttled) and log lines."""

    def __init__(self, key: str, title: str, sink: EventSink) -> None:
        self.key, self.title, self.sink = key, title, sink
        self.detail = ""
        self._last = 0.0

    def progress(self, completed: int, total: int | None = None, text: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_EVERY:
            self._last = now
            self.sink(Event("progress", self.key, self.title, text, completed, total))

    def log(self, line: str) -> None:
        self.sink(Event("log", self.key, self.title, line))


class _Steps:
    def __init__(self, steps: tuple[core.Step, ...], sink: EventSink) -> None:
        self.titles = {s.key: s.title for s in steps}
        self.sink = sink
        self.done: list[StepTime] = []

    @contextlib.contextmanager
    def step(self, key: str) -> Iterator[_Handle]:
        title = self.titles[key]
        handle = _Handle(key, title, self.sink)
        started = time.monotonic()
        self.sink(Event("start", key, title))
        try:
            yield handle
        except BaseException:
            self.sink(Event("fail", key, title, seconds=time.monotonic() - started))
            raise
        seconds = time.monotonic() - started
        self.done.append(StepTime(key, title, seconds, handle.detail))
        self.sink(Event("done", key, title, handle.detail, seconds=seconds))

    def skip(self, key: str, reason: str) -> None:
        title = self.titles[key]
        self.done.append(StepTime(key, title, 0.0, reason, skipped=True))
        self.sink(Event("skip", key, title, reason, seconds=0.0))


# --- the transaction: undo what this run did, whatever stops it -------------------------------------


class _Undo:
    """Undo actions, newest first; ``commit`` forgets the ones that only apply to a failed run."""

    def __init__(self) -> None:
        self._on_failure: list[Callable[[], None]] = []
        self._always: list[Callable[[], None]] = []

    def on_failure(self, action: Callable[[], None]) -> None:
        self._on_failure.append(action)

    def always(self, action: Callable[[], None]) -> None:
        self._always.append(action)

    def run(self, failed: bool) -> list[str]:
        """Run the actions; a second Ctrl-C must not leave half the clean-up undone, so signals are held."""
        problems: list[str] = []
        with _signals_held():
            actions = (self._on_failure[::-1] if failed else []) + self._always[::-1]
            for action in actions:
                try:
                    action()
                except DevnixError as error:
                    problems.append(error.message)
                except Exception as error:  # clean-up goes on; the first failure is what the user sees
                    problems.append(f"{type(error).__name__}: {error}")
        self._on_failure.clear()
        self._always.clear()
        return problems


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in _STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM (``timeout``, a cancelled CI job, ``docker stop`` of a dev container running devnix) would
    end Python on the spot; raised as an error instead, it runs the same clean-up as a Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(number: int, frame: object) -> None:
        raise core.Terminated("terminated by SIGTERM; the builder and any new names were removed")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- run ----------------------------------------------------------------------------------------------


def run(options: BootstrapOptions, on_event: EventSink | None = None) -> BootstrapResult:
    sink: EventSink = on_event or (lambda event: None)
    started = time.monotonic()
    engine_platform = engine.version().platform
    flake, target = _target(options, engine_platform)
    tag = _target_tag(options, target)
    if flake.local_dir is not None:
        _check_local_flake(Path(flake.local_dir).expanduser())
    if options.push:
        _preflight_push(tag)

    steps = _Steps(core.plan_steps(flake.local_dir is not None, options.push), sink)
    undo = _Undo()
    failed = True
    try:
        with _sigterm_stops():
            result = _run(options, flake, target, tag, engine_platform, steps, undo, sink, started)
        failed = False
        return result
    finally:
        problems = undo.run(failed)
        if problems and not failed:
            # The image is built and named; only the builder's removal went wrong.
            raise EngineError(
                "the image is ready, but cleaning up failed: " + "; ".join(problems),
                hint="remove leftovers with: docker rm -f "
                f"$(docker ps -aq --filter label={engine.BOOTSTRAP_LABEL})",
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
    steps: _Steps,
    undo: _Undo,
    sink: EventSink,
    started: float,
) -> BootstrapResult:
    system = target.nix_system
    notes: list[str] = []

    with steps.step("builder") as step:
        builder_id, builder_platform = _ensure_builder(options, step)
        nix = core.builder_nix(builder_platform, engine_platform, system)
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
            notes.extend(_stale_volumes(options.builder_image, builder_id))

    with steps.step("start") as step:
        container = engine.create_container(
            builder_id,
            ["cat"],
            env={"NIX_CONFIG": nix.text},
            labels={engine.BOOTSTRAP_LABEL: tag.familiar, f"{engine.BOOTSTRAP_LABEL}.pid": str(os.getpid())},
            volumes={volume: "/nix"},
            platform=str(builder_platform),
            stdin_once=True,
            auto_remove=True,
        )
        undo.always(lambda: engine.remove_container_promptly(container))
        attachment = engine.attach_stdin(container)
        undo.always(lambda: _close(attachment))
        engine.start_container(container)
        step.detail = container[:12]

    if flake.local_dir is not None:
        with steps.step("copy") as step:
            sent = _copy_flake(container, Path(flake.local_dir).expanduser(), step)
            step.detail = f"{_mb(sent)} into {core.CONTAINER_FLAKE_DIR}"

    with steps.step("build") as step:
        out_path, built = _build(container, flake, system, options.nix_options, nix, step)
        shape = _shape(container, out_path)
        step.detail = f"{out_path} ({shape}{'' if built else ', already built'})"

    loaded = False
    streamed = 0
    outcome = core.LoadOutcome(None, ())
    image_id = _already_loaded(container, out_path)
    if image_id is not None:
        steps.skip("load", f"{out_path} is loaded already as {image_id[:19]}")
    else:
        with steps.step("load") as step:
            before = engine.image_ids()
            outcome, streamed = _load(container, shape, out_path, step)
            image_id = outcome.image_id or _id_of(outcome.tags)
            _undo_load(undo, outcome, image_id, image_id not in before)
            loaded = True
            step.detail = f"{_mb(streamed)} as {image_id[:19]}"

    with steps.step("verify") as step:
        step.detail = _verify(image_id, target, nix)
        if loaded:
            _note_loaded(container, out_path, image_id)

    with steps.step("tag") as step:
        _tag(undo, image_id, tag)
        _drop_archive_names(outcome, tag)
        step.detail = tag.familiar

    digest: str | None = None
    if options.push:
        with steps.step("push") as step:
            digest = _push(tag, step)
            step.detail = f"{tag.familiar}@{digest}" if digest else tag.familiar

    return BootstrapResult(
        tag=tag.familiar,
        image_id=image_id,
        system=system,
        platform=str(target),
        flake=flake.shown,
        shape=shape,
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
    )


def _stale_volumes(builder_image: str, builder_id: str) -> list[str]:
    """Store volumes seeded from an earlier image of the same name: never reused (their Nix may differ
    from the new builder's), so say how to free their space rather than deleting a user's cache."""
    notes = []
    for found in engine.volumes(core.STORE_VOLUME_PREFIX):
        labels = found.get("Labels") or {}
        if (
            labels.get(f"{engine.BOOTSTRAP_LABEL}.builder-image") == builder_image
            and labels.get(f"{engine.BOOTSTRAP_LABEL}.builder-id") != builder_id
        ):
            name = found.get("Name")
            notes.append(
                f"store volume {name} is from an older {builder_image}; `docker volume rm {name}` frees it"
            )
    return notes


def _close(attachment: Any) -> None:
    with contextlib.suppress(OSError):
        attachment.close()
    raw = getattr(attachment, "_sock", None)
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.close()


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


# --- builder --------------------------------------------------------------------------------------


def _ensure_builder(options: BootstrapOptions, step: _Handle) -> tuple[str, Platform]:
    """The builder image's id and platform; pulled (for its own platform) when the engine lacks it."""
    ref = parse_ref(options.builder_image)
    wanted = platforms.parse(options.builder_platform) if options.builder_platform else None
    details = engine.image_details(ref.familiar) or engine.image_details(str(ref))
    if details is not None and (wanted is None or _platform_of(details).same_machine(wanted)):
        return str(details["Id"]), _platform_of(details)
    pull_platform = wanted or platforms.parse(core.DEFAULT_BUILDER_PLATFORM)
    layers: dict[str, tuple[int, int]] = {}

    def on_event(event: dict[str, Any]) -> None:
        detail = event.get("progressDetail") or {}
        if event.get("id") and isinstance(detail, dict) and detail.get("total"):
            layers[str(event["id"])] = (int(detail.get("current") or 0), int(detail["total"]))
            step.progress(sum(c for c, _ in layers.values()), sum(t for _, t in layers.values()))

    engine.pull_with_progress(str(ref), platform=str(pull_platform), on_event=on_event)
    details = engine.image_details(str(ref)) or engine.image_details(ref.familiar)
    if details is None:
        raise EngineError(f"pulled {ref.familiar}, but the engine does not show it")
    return str(details["Id"]), _platform_of(details)


def _platform_of(details: dict[str, Any]) -> Platform:
    return platforms.from_engine(str(details.get("Os") or "linux"), str(details.get("Architecture") or ""))


# --- copy -------------------------------------------------------------------------------------------


def _copy_flake(container: str, directory: Path, step: _Handle) -> int:
    """Send the flake folder as a tar stream made on the fly (no copy on disk, nothing big in memory)."""
    entries = list(_walk(directory))
    total = sum(size for _, _, size in entries)
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for chunk in _tar_stream(directory, entries, Path(core.CONTAINER_FLAKE_DIR).name):
            sent += len(chunk)
            step.progress(sent, total)
            yield chunk

    engine.put_archive(container, str(Path(core.CONTAINER_FLAKE_DIR).parent), chunks())
    step.progress(sent, total, force=True)
    return sent


def _walk(root: Path) -> Iterator[tuple[Path, str, int]]:
    """(path, name in the archive, size) of what to copy; VCS folders and result links are left out."""
    yield root, "", 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not core.skip_in_copy(d, (here / d).is_symlink()))
        for name in sorted(dirnames) + sorted(filenames):
            path = here / name
            if core.skip_in_copy(name, path.is_symlink()):
                continue
            size = path.lstat().st_size if path.is_file() and not path.is_symlink() else 0
            yield path, str(path.relative_to(root)), size


def _tar_stream(root: Path, entries: list[tuple[Path, str, int]], top: str) -> Iterator[bytes]:
    """Tar written by a thread into a pipe, read here in chunks: memory stays at one chunk."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    def write() -> None:
        try:
            with (
                os.fdopen(write_fd, "wb", buffering=CHUNK) as pipe,
                tarfile.open(fileobj=pipe, mode="w|", format=tarfile.PAX_FORMAT) as archive,
            ):
                for path, name, _size in entries:
                    arcname = f"{top}/{name}" if name else top
                    archive.add(str(path), arcname=arcname, recursive=False, filter=as_root)
        except BaseException as error:  # reported by the reader; a closed pipe after Ctrl-C is expected
            failure.append(error)

    writer = threading.Thread(target=write, name="devnix-tar", daemon=True)
    writer.start()
    try:
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(CHUNK):
                yield chunk
    finally:
        writer.join(timeout=5)
    if failure:
        error = failure[0]
        raise FileSystemError(f"could not read the flake folder {root}: {error}") from None


# --- build ------------------------------------------------------------------------------------------


def _build(
    container: str,
    flake: FlakeRef,
    system: str,
    nix_options: tuple[tuple[str, str], ...],
    nix: core.BuilderNix,
    step: _Handle,
) -> tuple[str, bool]:
    command = core.nix_build_command(flake.installable, nix_options)
    run = engine.exec_stream(container, command)
    out = bytearray()
    tail: deque[str] = deque(maxlen=core.LOG_TAIL_LINES)
    pending = b""
    built = False
    for stdout, stderr in run:
        if stdout:
            out += stdout
        if stderr:
            pending += stderr
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                built = built or _is_build_line(line)
                tail.append(line)
                step.log(line)
    if pending:
        tail.append(pending.decode("utf-8", "replace"))
    code = run.exit_code
    if code != 0:
        reason = core.build_failure_line(list(tail)) or f"nix exited with {code}"
        if flake.local_dir is not None:
            # Nix names the builder's copy; the user knows the folder on this machine.
            reason = reason.replace(flake.url, f"path:{flake.local_dir}")
        raise NixBuildError(
            f"nix build of {flake.shown} for {system} failed: {reason}",
            list(tail),
            hint=_build_hint(list(tail), nix),
        )
    return core.parse_build_output(out.decode("utf-8", "replace")), built


def _is_build_line(line: str) -> bool:
    # Nix announces each derivation it builds (and the paths it fetches) on stderr; a no-op build
    # prints none of these.
    return line.startswith(("building '", "copying path ")) or " will be built:" in line


def _build_hint(tail: list[str], nix: core.BuilderNix) -> str | None:
    text = "\n".join(tail)
    wanted = re.search(r"a '([^']+)' with features \{[^}]*\} is required to build", text)
    if wanted and "but I am a" in text:
        system = wanted.group(1)
        if system == nix.target_system or system == nix.builder_system:
            return (
                f"the builder ({nix.builder_system}) cannot build for {system}: check that the engine runs "
                "that platform's binaries (binfmt/QEMU, Rosetta)"
            )
        return (
            f"the flake builds derivations for {system}, neither the builder's {nix.builder_system} nor the "
            f"target {nix.target_system}: pass --option extra-platforms {system} if the engine runs it"
        )
    if "does not provide attribute" in text:
        return "check the attribute after '#': `nix flake show` lists what the flake provides"
    if "unable to load seccomp BPF program" in text:
        # devnix turns the filter off when it sees emulation; an engine that hides it (some VMs) needs a push.
        return "the builder runs emulated without devnix seeing it: pass --option filter-syscalls false"
    if "substituter" in text or "cache.nixos.org" in text:
        return "offline? pass --option substituters ''"
    return None


def _shape(container: str, out_path: str) -> str:
    code, out, err = engine.exec_output(container, ["sh", "-c", core.CLASSIFY_SCRIPT, "sh", out_path])
    if code != 0:
        raise EngineError(f"could not look at {out_path} in the builder: {err.decode(errors='replace')}")
    return core.result_shape(out.decode().strip(), out_path)


# --- load -------------------------------------------------------------------------------------------


def _already_loaded(container: str, out_path: str) -> str | None:
    """The image id this output was loaded as by an earlier run, if the engine still has it."""
    code, out, _ = engine.exec_output(container, ["cat", core.loaded_note_path(out_path)])
    recorded = out.decode().strip()
    if code != 0 or not recorded.startswith("sha256:"):
        return None
    return recorded if engine.image_details(recorded) is not None else None


def _note_loaded(container: str, out_path: str, image_id: str) -> None:
    note = core.loaded_note_path(out_path)
    script = 'mkdir -p "${1%/*}" && printf "%s\\n" "$2" > "$1.tmp" && mv "$1.tmp" "$1"'
    code, _, err = engine.exec_output(container, ["sh", "-c", script, "sh", note, image_id])
    if code != 0:
        raise EngineError(
            f"could not note the loaded image in the store volume: {err.decode(errors='replace')}"
        )


def _load(container: str, shape: str, out_path: str, step: _Handle) -> tuple[core.LoadOutcome, int]:
    run = engine.exec_stream(container, core.stream_command(shape, out_path))
    tail: deque[str] = deque(maxlen=core.LOG_TAIL_LINES)
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for stdout, stderr in run:
            if stderr:
                tail.extend(stderr.decode("utf-8", "replace").splitlines())
            if stdout:
                sent += len(stdout)
                step.progress(sent)
                yield stdout

    try:
        events = engine.load_image(chunks())
    except EngineError as error:
        detail = f" ({tail[-1]})" if tail else ""
        raise EngineError(
            f"{error.message}{detail}",
            hint=f"is {out_path} a docker-archive (dockerTools.buildImage) or a script that writes one "
            "(dockerTools.streamLayeredImage)?",
        ) from None
    code = run.exit_code
    if code not in (0, None):
        what = "the stream script" if shape == core.STREAM else "cat"
        raise DevnixError(f"{what} for {out_path} exited with {code}: {' | '.join(list(tail)[-3:])}")
    step.progress(sent, sent, force=True)
    return core.parse_load_events(events), sent


def _id_of(tags: tuple[str, ...]) -> str:
    for name in tags:
        details = engine.image_details(name)
        if details is not None:
            return str(details["Id"])
    raise EngineError("the engine loaded the archive but named no image")


def _undo_load(undo: _Undo, outcome: core.LoadOutcome, image_id: str, new: bool) -> None:
    """On failure: give moved names back, drop names the archive set, and the image if it is new."""

    def restore() -> None:
        for name in outcome.tags:
            if name in outcome.displaced:
                engine.tag_image(outcome.displaced[name], name)
            else:
                engine.remove_image(name)
        if new:
            engine.remove_image(image_id)

    undo.on_failure(restore)


def _drop_archive_names(outcome: core.LoadOutcome, tag: ImageRef) -> None:
    """The archive's own name (buildImage writes one) is not what was asked for: put things back."""
    for name in outcome.tags:
        if _same_name(name, tag):
            continue
        if name in outcome.displaced:
            engine.tag_image(outcome.displaced[name], name)
        else:
            engine.remove_image(name)  # only a name: the image keeps the tag set just before


def _same_name(name: str, tag: ImageRef) -> bool:
    try:
        return parse_ref(name) == tag
    except UsageError:
        return False


# --- verify, tag, push ----------------------------------------------------------------------------


def _verify(image_id: str, target: Platform, nix: core.BuilderNix) -> str:
    details = engine.image_details(image_id)
    if details is None:
        raise VerifyError(f"the engine lost the loaded image {image_id[:19]}")
    platform = _platform_of(details)
    if not platform.same_machine(target):
        raise VerifyError(
            f"the built image {_short(image_id)} is {platform}, not {target}", hint="check the flake output"
        )
    command = [
        "nix",
        "--extra-experimental-features",
        "nix-command",
        "eval",
        "--impure",
        "--raw",
        "--expr",
        "builtins.currentSystem",
    ]
    try:
        probe = engine.run_probe(
            image_id,
            command,
            labels={engine.BOOTSTRAP_LABEL: "verify"},
            timeout=nix_timeout(target, nix),
        )
    except EngineError as error:
        raise VerifyError(f"nix does not run in the built image: {error.message}") from None
    if probe.exit_code is None:
        raise VerifyError("nix in the built image did not answer in time")
    lines = [line.strip() for line in probe.output.splitlines() if line.strip()]
    if probe.exit_code != 0 or target.nix_system not in lines:
        said = lines[-1] if lines else "nothing"
        raise VerifyError(
            f"nix in the built image {_short(image_id)} says {said!r} (exit {probe.exit_code}), "
            f"not {target.nix_system}"
        )
    return f"{platform}; nix says {target.nix_system}"


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def nix_timeout(target: Platform, nix: core.BuilderNix) -> float:
    # An emulated Nix starts in about a second here, but slow machines under QEMU take far longer.
    return 300.0 if not target.same_machine(nix.engine_platform) else 120.0


def _tag(undo: _Undo, image_id: str, tag: ImageRef) -> None:
    previous = engine.image_details(tag.familiar)
    previous_id = str(previous["Id"]) if previous else None
    engine.tag_image(image_id, tag.familiar)

    def restore() -> None:
        if previous_id and previous_id != image_id:
            engine.tag_image(previous_id, tag.familiar)
        elif previous_id is None:
            engine.remove_image(tag.familiar)

    undo.on_failure(restore)


def _push(tag: ImageRef, step: _Handle) -> str | None:
    layers: dict[str, tuple[int, int]] = {}

    def on_event(event: dict[str, Any]) -> None:
        detail = event.get("progressDetail") or {}
        if event.get("id") and isinstance(detail, dict) and detail.get("total"):
            layers[str(event["id"])] = (int(detail.get("current") or 0), int(detail["total"]))
            step.progress(sum(c for c, _ in layers.values()), sum(t for _, t in layers.values()))

    try:
        return engine.push_image(tag.familiar, on_event=on_event)
    except EngineError as error:
        raise RegistryError(
            error.message, hint=f"check the registry, then `docker login {tag.registry}`"
        ) from None


# --- text -------------------------------------------------------------------------------------------


def describe(result: BootstrapResult) -> str:
    lines = [
        f"{result.tag}: {result.platform} image {result.image_id[:19]} from {result.flake}",
        f"builder: {result.builder} ({result.builder_platform}, "
        f"{'emulated' if result.builder_emulated else 'native'}); store volume {result.volume}",
        "nix:     " + "; ".join(f"{k} = {v}" for k, v in result.nix_settings.items()),
    ]
    width = max((len(s.title) for s in result.steps), default=0)
    for step in result.steps:
        when = "skipped" if step.skipped else f"{step.seconds:6.1f} s"
        lines.append(f"  {step.title:<{width}}  {when:>8}  {step.detail}")
    lines.append(f"total:   {result.seconds:.1f} s")
    if result.pushed_digest:
        lines.append(f"pushed:  {result.tag}@{result.pushed_digest}")
    lines.extend(f"note:    {note}" for note in result.notes)
    return "\n".join(lines)


__all__ = [
    "BootstrapOptions",
    "BootstrapResult",
    "Event",
    "NixBuildError",
    "StepTime",
    "VerifyError",
    "describe",
    "run",
]
