"""The built image: streamed from the builder into the engine, verified, named, and pushed.

Every change to the engine's names is paired with its undo: a failed run gives moved names back and
removes the names (and the image) it added. An output loaded once is noted in the store volume, so a
second run of an unchanged flake loads nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from devnix import bootstrap as core
from devnix import engine, platforms
from devnix.bootstrap import VerifyError
from devnix.commands.bootstrap.steps import Handle, Undo
from devnix.errors import DevnixError, EngineError, RegistryError, UsageError
from devnix.images import ImageRef, parse_ref
from devnix.platforms import Platform


def platform_of(details: dict[str, Any]) -> Platform:
    return platforms.from_engine(str(details.get("Os") or "linux"), str(details.get("Architecture") or ""))


def layer_progress(step: Handle) -> Callable[[dict[str, Any]], None]:
    """An engine pull or push event handler that reports the bytes of all layers as the step's progress."""
    layers: dict[str, tuple[int, int]] = {}

    def on_event(event: dict[str, Any]) -> None:
        detail = event.get("progressDetail") or {}
        if event.get("id") and isinstance(detail, dict) and detail.get("total"):
            layers[str(event["id"])] = (int(detail.get("current") or 0), int(detail["total"]))
            step.progress(sum(c for c, _ in layers.values()), sum(t for _, t in layers.values()))

    return on_event


# --- load -------------------------------------------------------------------------------------------


def already_loaded(container: str, out_path: str) -> str | None:
    """The image id this output was loaded as by an earlier run, if the engine still has it."""
    code, out, _ = engine.exec_output(container, ["cat", core.loaded_note_path(out_path)])
    recorded = out.decode().strip()
    if code != 0 or not recorded.startswith("sha256:"):
        return None
    return recorded if engine.image_details(recorded) is not None else None


def note_loaded(container: str, out_path: str, image_id: str) -> None:
    note = core.loaded_note_path(out_path)
    script = 'mkdir -p "${1%/*}" && printf "%s\\n" "$2" > "$1.tmp" && mv "$1.tmp" "$1"'
    code, _, err = engine.exec_output(container, ["sh", "-c", script, "sh", note, image_id])
    if code != 0:
        raise EngineError(
            f"could not note the loaded image in the store volume: {err.decode(errors='replace')}"
        )


def load(container: str, shape: str, out_path: str, step: Handle) -> tuple[core.LoadOutcome, int]:
    """Stream the output from the builder straight into ``docker load``; the bytes sent."""
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


def id_of(tags: tuple[str, ...]) -> str:
    for name in tags:
        details = engine.image_details(name)
        if details is not None:
            return str(details["Id"])
    raise EngineError("the engine loaded the archive but named no image")


def undo_load(undo: Undo, outcome: core.LoadOutcome, image_id: str, new: bool) -> None:
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


def drop_archive_names(outcome: core.LoadOutcome, tag: ImageRef) -> None:
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


def verify(image_id: str, target: Platform, nix: core.BuilderNix) -> str:
    """Check the image is for the target and that its Nix runs and says so; the step's detail."""
    details = engine.image_details(image_id)
    if details is None:
        raise VerifyError(f"the engine lost the loaded image {image_id[:19]}")
    platform = platform_of(details)
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


def apply_tag(undo: Undo, image_id: str, tag: ImageRef) -> None:
    """Name the image; on failure the name goes back to the image it had, or away."""
    previous = engine.image_details(tag.familiar)
    previous_id = str(previous["Id"]) if previous else None
    engine.tag_image(image_id, tag.familiar)

    def restore() -> None:
        if previous_id and previous_id != image_id:
            engine.tag_image(previous_id, tag.familiar)
        elif previous_id is None:
            engine.remove_image(tag.familiar)

    undo.on_failure(restore)


def push(tag: ImageRef, step: Handle) -> str | None:
    """Push the tag; the digest the registry stored, when the engine says it."""
    try:
        return engine.push_image(tag.familiar, on_event=layer_progress(step))
    except EngineError as error:
        raise RegistryError(
            error.message, hint=f"check the registry, then `docker login {tag.registry}`"
        ) from None
