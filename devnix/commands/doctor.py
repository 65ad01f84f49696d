"""``devnix doctor``: ask the engine, the host and the project; let :mod:`devnix.doctor` judge.

The engine is asked first (``/version`` and ``/info`` at once, with a short timeout, so that an engine
that is down fails in about two seconds). Then everything that needs it runs at the same time, each with
its own timeout: the local image list, a probe container of the other architecture (emulation), a probe
container with a bind mount of a fresh folder in DIR (mount visibility, and ``df`` for free space),
``/system/df``, the ``devnix-nix-*`` volumes, the registry of the project's devcontainer image, and a
probe container of that image (its Dockerfile's FROM for a build) that looks for what VS Code's server needs.
When the engine is Podman, VS Code's user settings are read too (which CLI its Dev Containers run).
"""

from __future__ import annotations

import os
import platform as stdlib_platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from devnix import dockerconfig, doctor, engine, images, nixconf, platforms, podman
from devnix.commands import nixbuilders
from devnix.devconfig import DevConfig
from devnix.doctor import Devcontainer, Disk, EndpointFacts, Facts, Probe, Report, Status
from devnix.errors import DevnixError, EngineError, FileSystemError
from devnix.images import Filesystem
from devnix.plan import Source

T = TypeVar("T")

PROBE_MOUNT = "/devnix-probe"
PROBE_FILE = "probe"


@dataclass(frozen=True)
class DoctorOptions:
    directory: Path
    pull: bool = False  # pull busybox for a probe when no image of the platform is local
    quick_timeout: float = 2.0  # one API answer (/version, /info, /system/df, inspect)
    probe_timeout: float = 10.0  # one probe container, from create to removal (emulated start-up is slow)
    registry_timeout: float = 3.0
    pull_timeout: float = 30.0
    builder_timeout: float = 8.0  # ssh to one remote builder, connection and `nix-store --version`


@dataclass(frozen=True)
class DoctorResult:
    report: Report
    seconds: float

    @property
    def failed(self) -> bool:
        return self.report.failed

    @property
    def unreachable(self) -> Status | None:
        return None if self.report.reachable else Status.FAIL

    def to_json(self) -> dict[str, Any]:
        return self.report.to_json()


def run(options: DoctorOptions) -> DoctorResult:
    started = time.monotonic()
    directory = options.directory
    if not directory.is_dir():
        raise FileSystemError(f"{directory} is not a folder", hint="pass a project folder (default: .)")
    directory = directory.resolve()
    host_os, host_arch = host()
    where = _endpoint()
    base = Facts(endpoint=where, host_os=host_os, host_arch=host_arch, directory=str(directory))
    if where.error is not None:
        return DoctorResult(doctor.report(base), time.monotonic() - started)

    with ThreadPoolExecutor(max_workers=8) as pool:
        version_future = pool.submit(engine.version_answer, timeout=options.quick_timeout)
        info_future = pool.submit(engine.info, timeout=options.quick_timeout)
        devcontainer = _read_devcontainer(directory)
        try:
            version = version_future.result()
            info = info_future.result()
        except EngineError as error:
            reason = error.message.rsplit("does not answer: ", 1)[-1]
            facts = Facts(**{**base.__dict__, "unreachable": reason})
            return DoctorResult(doctor.report(facts), time.monotonic() - started)

        engine_platform = platforms.from_engine(str(version.get("Os", "linux")), str(version.get("Arch", "")))
        others = [p for p in platforms.SUPPORTED if p != str(engine_platform)]
        # Everything below needs the engine and nothing else from each other, except the probes, which
        # wait for the image list inside their own task.
        images_future = pool.submit(engine.images_with_platforms, timeout=options.quick_timeout)
        tasks: dict[str, Future[Any]] = {
            "df": pool.submit(engine.system_df, timeout=options.quick_timeout),
            "volumes": pool.submit(engine.volumes, doctor.STORE_VOLUME_PREFIX, timeout=options.quick_timeout),
            "mount": pool.submit(_mount_probe, images_future, str(engine_platform), directory, options),
        }
        for other in others:
            tasks[f"emulation.{other}"] = pool.submit(_emulation_probe, images_future, other, options)
        if devcontainer is not None and devcontainer.image is not None and devcontainer.error is None:
            tasks["devcontainer"] = pool.submit(
                _image_platforms, devcontainer, options.registry_timeout, engine_platform
            )
        if devcontainer is not None and devcontainer.error is None and devcontainer.probe_image is not None:
            tasks["vscode-server"] = pool.submit(
                _server_probe, devcontainer.probe_image, devcontainer.pinned, options
            )
        pool.submit(_quietly, engine.remove_stale_probes)
        tasks["builders"] = pool.submit(nixbuilders.host_builders, options.builder_timeout)

        budget = {
            "df": options.quick_timeout + 1,
            "volumes": options.quick_timeout + 1,
            "devcontainer": options.registry_timeout * 2 + 1,
            "builders": options.builder_timeout + 6,
        }
        probe_limit = options.probe_timeout + options.quick_timeout * 2 + 1
        if options.pull:
            probe_limit += options.pull_timeout
        late = Probe(None, f"timed out: no outcome within {probe_limit:.0f} s")

        def outcome(name: str, fallback: T) -> T | Any:
            # Each task has its own timeouts inside; this is the backstop that keeps the report coming.
            limit = budget.get(name, probe_limit)
            try:
                return tasks[name].result(timeout=max(0.1, started + limit - time.monotonic()))
            except TimeoutError:
                return fallback
            except DevnixError as error:
                return error

        mount_outcome = outcome("mount", late)
        emulation = {}
        for other in others:
            value = outcome(f"emulation.{other}", late)
            emulation[other] = value if isinstance(value, Probe) else Probe(None, str(value))
        mount, disk_free = mount_outcome if isinstance(mount_outcome, tuple) else (mount_outcome, None)
        df_answer = outcome("df", None)
        volume_answer = outcome("volumes", None)
        if "devcontainer" in tasks and devcontainer is not None:
            devcontainer = outcome("devcontainer", devcontainer)
        if "vscode-server" in tasks and isinstance(devcontainer, Devcontainer):
            image = devcontainer.probe_image or ""
            server = outcome("vscode-server", doctor.ServerProbe(image, False, late.detail))
            if not isinstance(server, doctor.ServerProbe):
                server = doctor.ServerProbe(image, False, _message(server))
            devcontainer = replace(devcontainer, server=server)
        disk = _disk(df_answer, disk_free)
        store, store_detail = _store_volumes(volume_answer, df_answer)
        is_podman = doctor.detect_kind(info, version, where)[0] is doctor.Kind.PODMAN
        facts = Facts(
            endpoint=where,
            host_os=host_os,
            host_arch=host_arch,
            info=info,
            version=version,
            emulation=emulation,
            mount=mount if isinstance(mount, Probe) else Probe(None, str(mount)),
            directory=str(directory),
            disk=disk,
            store_volumes=store,
            store_volumes_detail=store_detail,
            devcontainer=devcontainer if isinstance(devcontainer, Devcontainer) else None,
            vscode=vscode_settings() if is_podman else None,
            builders=_builders(outcome("builders", TimeoutError(f"no answer in {budget['builders']:.0f} s"))),
        )
        # Leaving the with-block waits for the probes' own clean-up (forced removal) to finish.
    return DoctorResult(doctor.report(facts), time.monotonic() - started)


def _builders(outcome: Any) -> tuple[doctor.RemoteBuilder, ...] | None:
    if outcome is None or isinstance(outcome, tuple):
        return outcome
    # The task ran out of time or failed as a whole: say so rather than drop the check.
    return (doctor.RemoteBuilder("the remote builders", (), "nix.conf", None, _message(outcome)),)


# --- host and endpoint ----------------------------------------------------------------------------------


def host() -> tuple[str, str]:
    """This machine's OS (Go's names: darwin, linux, windows) and OCI architecture."""
    os_name = {"darwin": "darwin", "win32": "windows", "cygwin": "windows"}.get(sys.platform, "linux")
    return os_name, platforms.normalize_arch(stdlib_platform.machine())


def _endpoint() -> EndpointFacts:
    try:
        where = engine.endpoint()
    except EngineError as error:
        return EndpointFacts("", "?", "context", error=error.message, error_hint=error.hint)
    resolved = None
    parts = urlsplit(where.host)
    if parts.scheme == "unix":
        resolved = os.path.realpath(parts.path)
    context_also = None
    if where.source == "DOCKER_HOST":
        selected = _current_context()
        if selected and selected != "default":
            context_also = selected
    return EndpointFacts(where.host, where.context, where.source, resolved, context_also)


def _current_context() -> str | None:
    """The context the Docker CLI would select were DOCKER_HOST unset; ``None`` when the config's
    choice is unreadable (DOCKER_HOST decides here anyway)."""
    try:
        return dockerconfig.selected_context().name
    except DevnixError:
        return None


# --- probes -------------------------------------------------------------------------------------------


def _candidates(images: list[dict[str, Any]], platform: str) -> list[str]:
    """Local images of ``platform``, tagged ones first (smallest first, as the engine listed them)."""
    wanted = platforms.parse(platform)
    matching = [
        image
        for image in images
        if image.get("Os") == wanted.os and image.get("Architecture") == wanted.architecture
    ]

    def name(image: dict[str, Any]) -> str:
        tags = [t for t in image.get("RepoTags") or [] if t and t != "<none>:<none>"]
        return str(tags[0]) if tags else str(image.get("Id"))

    tagged = [name(i) for i in matching if any(t != "<none>:<none>" for t in i.get("RepoTags") or [])]
    untagged = [name(i) for i in matching if name(i) not in tagged]
    # The reference CLI's Feature content images are FROM scratch (no shell, no uname): never a probe.
    # Podman files them, like every image loaded or built without a registry, under localhost/.
    return [
        n for n in tagged + untagged if not n.removeprefix("localhost/").startswith(_CONTENT_IMAGE_PREFIX)
    ]


_CONTENT_IMAGE_PREFIX = "dev_container_feature_content"


def _probe_images(
    images_future: Future[list[dict[str, Any]]], platform: str, options: DoctorOptions
) -> list[str]:
    images = images_future.result(timeout=options.quick_timeout * 4)
    found = _candidates(images, platform)
    if found or not options.pull:
        return found
    engine.pull("busybox:latest", platform=platform, timeout=options.pull_timeout)
    return _candidates(engine.images_with_platforms(timeout=options.quick_timeout), platform)


# Why a candidate image cannot serve as a probe, so the next one is tried: it lacks the command, or it
# was removed between the listing and the run (another tool's clean-up).
_NOT_RUNNABLE = (
    "executable file not found",
    "no such file or directory",
    "not found in $path",
    "no such image",
)


def _run_first(
    candidates: list[str],
    command: list[str],
    platform: str,
    options: DoctorOptions,
    binds: tuple[str, ...] = (),
) -> tuple[str, engine.ProbeRun]:
    """Run ``command`` in the first candidate image that has it (up to four tries)."""
    last: EngineError | None = None
    for image in candidates[:4]:
        try:
            return image, engine.run_probe(
                image, command, platform=platform, binds=binds, timeout=options.probe_timeout
            )
        except EngineError as error:
            if "exec format error" in error.message.lower():
                raise
            if not any(marker in error.message.lower() for marker in _NOT_RUNNABLE):
                raise
            last = error
    raise last or EngineError("no image to run")


def _emulation_probe(
    images_future: Future[list[dict[str, Any]]], platform: str, options: DoctorOptions
) -> Probe:
    """Run ``uname -m`` in a local image of ``platform``: proof, not configuration reading."""
    try:
        candidates = _probe_images(images_future, platform, options)
    except (EngineError, TimeoutError) as error:
        return Probe(None, f"could not list or pull {platform} images: {_message(error)}")
    if not candidates:
        return Probe(None, f"no {platform} image is available locally to try")
    expected = platforms.parse(platform).uname_machine
    try:
        image, ran = _run_first(candidates, ["uname", "-m"], platform, options)
    except EngineError as error:
        if "exec format error" in error.message.lower():
            return Probe(False, f"exec format error starting {candidates[0]}")
        return Probe(None, error.message)
    output = ran.output.strip()
    image = _short(image)
    if ran.exit_code is None:
        return Probe(None, f"{image} did not finish `uname -m` within {options.probe_timeout:.0f} s")
    if "exec format error" in output.lower():
        return Probe(False, f"{image}: {output.splitlines()[-1]}")
    if ran.exit_code == 0 and output == expected:
        return Probe(True, f"`uname -m` printed {output} in {image}{_binfmt_note(expected)}")
    if ran.exit_code == 0:
        return Probe(None, f"{image} claims {platform} but `uname -m` printed {output or 'nothing'}")
    return Probe(None, f"`uname -m` in {image} exited {ran.exit_code}: {output[-200:]}")


def _mount_probe(
    images_future: Future[list[dict[str, Any]]], platform: str, directory: Path, options: DoctorOptions
) -> tuple[Probe, tuple[int, int] | str]:
    """Bind-mount a fresh folder of DIR's file system and look for a file in it; also ``df`` the engine.

    Returns the mount verdict and (free, total) bytes where the engine keeps images, or why not.
    """
    try:
        candidates = _probe_images(images_future, platform, options)
    except (EngineError, TimeoutError) as error:
        return Probe(None, f"could not list images: {_message(error)}"), "no probe ran"
    if not candidates:
        return Probe(None, f"no {platform} image is available locally to run a probe"), "no probe ran"
    try:
        folder = Path(tempfile.mkdtemp(prefix=".devnix-doctor-", dir=directory))
    except OSError as error:
        return Probe(None, f"cannot write in {directory}: {error.strerror or error}"), "no probe ran"
    token = secrets.token_hex(8)
    try:
        (folder / PROBE_FILE).write_text(token)
        # mkdtemp's 0700 would hide the folder from a container whose root is another user outside
        # (rootless Podman or Docker run by someone else, userns-remap): readable, as a project usually is.
        folder.chmod(0o755)
        (folder / PROBE_FILE).chmod(0o644)
        script = (
            f"f={PROBE_MOUNT}/{PROBE_FILE}; "
            'if [ -e "$f" ]; then cat "$f" || echo UNREADABLE; else echo MISSING; fi; echo; '
            "df -Pk / | tail -n 1"
        )
        image, ran = _run_first(
            candidates, ["sh", "-c", script], platform, options, binds=(f"{folder}:{PROBE_MOUNT}:ro",)
        )
    except EngineError as error:
        return Probe(None, error.message), "no probe ran"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    image = _short(image)
    if ran.exit_code is None:
        return Probe(
            None, f"the probe in {image} did not finish within {options.probe_timeout:.0f} s"
        ), "timed out"
    lines = ran.output.splitlines()
    first = lines[0].strip() if lines else ""
    if first == token:
        mount = Probe(True, f"read back through {image}")
    elif first == "MISSING":
        mount = Probe(False, f"{PROBE_MOUNT} was empty in {image}")
    elif first == "UNREADABLE":
        mount = Probe(False, f"the file was there but not readable in {image} (SELinux labels? add :z)")
    else:
        mount = Probe(None, f"the probe in {image} printed {ran.output.strip()[:200]!r}")
    return mount, _parse_df(lines[1:])


def _short(image: str) -> str:
    """An untagged image's ID as ``docker images`` shows it (12 hex digits), a tagged one's name as is."""
    return image[: len("sha256:") + 12] if image.startswith("sha256:") else image


def _binfmt_note(machine: str) -> str:
    """The mechanism, when visible: a QEMU binfmt handler of this host (the engine shares its kernel)."""
    if not sys.platform.startswith("linux") or not engine.endpoint().host.startswith("unix://"):
        return ""
    try:
        state = Path(f"/proc/sys/fs/binfmt_misc/qemu-{machine}").read_text().split("\n", 1)[0]
    except OSError:
        return ""
    return f", through QEMU binfmt (qemu-{machine})" if state == "enabled" else ""


def _parse_df(lines: list[str]) -> tuple[int, int] | str:
    for line in reversed(lines):
        fields = line.split()
        # POSIX df -P: filesystem, 1024-blocks, used, available, capacity, mounted on
        if len(fields) >= 6 and fields[1].isdigit() and fields[3].isdigit():
            return int(fields[3]) * 1024, int(fields[1]) * 1024
    return "the probe's df printed nothing usable"


def _disk(df_answer: Any, probe_df: Any) -> Disk:
    usage: dict[str, int] = {}
    if isinstance(df_answer, dict):
        # Podman 4.3 answers LayersSize 0 whatever it holds: its images' own sizes say more (shared
        # layers counted once per image, so an upper bound).
        usage["images"] = int(df_answer.get("LayersSize") or 0) or sum(
            int(i.get("Size") or 0) for i in df_answer.get("Images") or [] if isinstance(i, dict)
        )
        usage["containers"] = sum(int(c.get("SizeRw") or 0) for c in df_answer.get("Containers") or [])
        usage["volumes"] = sum(
            max(0, int((v.get("UsageData") or {}).get("Size") or 0)) for v in df_answer.get("Volumes") or []
        )
        usage["build cache"] = sum(int(b.get("Size") or 0) for b in df_answer.get("BuildCache") or [])
    if isinstance(probe_df, tuple):
        return Disk(free=probe_df[0], total=probe_df[1], usage=usage)
    detail = probe_df if isinstance(probe_df, str) else "no probe ran"
    return Disk(usage=usage, detail=detail)


def _store_volumes(volume_answer: Any, df_answer: Any) -> tuple[dict[str, int | None] | None, str]:
    if not isinstance(volume_answer, list):
        return None, _message(
            volume_answer
        ) if volume_answer is not None else "the engine did not say in time"
    sizes: dict[str, int] = {}
    if isinstance(df_answer, dict):
        for volume in df_answer.get("Volumes") or []:
            size = (volume.get("UsageData") or {}).get("Size")
            if isinstance(size, int) and size >= 0:
                sizes[str(volume.get("Name"))] = size
    return {str(v.get("Name")): sizes.get(str(v.get("Name"))) for v in volume_answer}, ""


def _message(error: Any) -> str:
    if isinstance(error, DevnixError):
        return error.message
    return str(error) or type(error).__name__


def _quietly(call: Callable[[], object]) -> None:
    # A sweep of old leftovers must never spoil the report.
    with suppress(DevnixError):
        call()


# --- VS Code's settings ---------------------------------------------------------------------------------

# VS Code and its builds keep user settings in <config folder>/<product>/User/settings.json.
_VSCODE_PRODUCTS = ("Code", "Code - Insiders", "VSCodium", "Code - OSS")


def vscode_settings_files() -> list[Path]:
    """Where VS Code's user settings.json would be on this host (Electron's appData folder per OS)."""
    home = Path.home()
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif sys.platform in ("win32", "cygwin"):
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [base / product / "User" / "settings.json" for product in _VSCODE_PRODUCTS]


def vscode_settings() -> doctor.VSCodeSettings:
    """``dev.containers.dockerPath`` from the first VS Code settings.json that sets it (the first one
    found otherwise), and the podman CLI on PATH."""
    from devnix import jsonc

    podman_cli = shutil.which("podman")
    found: Path | None = None
    error: str | None = None
    for path in vscode_settings_files():
        if not path.is_file():
            continue
        found = found or path
        try:
            value = jsonc.parse_file(path).value
        except DevnixError as failure:  # its message names the file (and the line)
            error = error or failure.message
            continue
        if not isinstance(value, dict):
            continue
        for key in (podman.DOCKER_PATH_KEY, podman.LEGACY_DOCKER_PATH_KEY):
            if isinstance(value.get(key), str) and value[key].strip():
                return doctor.VSCodeSettings(value[key].strip(), str(path), podman_cli=podman_cli)
    return doctor.VSCodeSettings(None, str(found) if found else None, error, podman_cli)


# --- the project's devcontainer ------------------------------------------------------------------------


def _read_devcontainer(directory: Path) -> Devcontainer | None:
    for relative in (".devcontainer/devcontainer.json", ".devcontainer.json"):
        path = directory / relative
        if path.is_file():
            break
    else:
        return None
    from devnix import devconfig, jsonc, lint

    try:
        config = devconfig.read(jsonc.parse(jsonc.read_file(path)).value)
    except DevnixError as error:
        return Devcontainer(relative, error=error.message)
    found = doctor.devcontainer_from_config(relative, config)
    if found.error is not None:
        return found
    nix_conf_path = directory / ".devcontainer" / "nix.conf"
    try:
        nix_conf_text = nix_conf_path.read_text("utf-8") if nix_conf_path.is_file() else None
    except (OSError, UnicodeDecodeError):
        nix_conf_text = None
    try:
        envrc = (directory / ".envrc").read_text("utf-8") if (directory / ".envrc").is_file() else None
    except (OSError, UnicodeDecodeError):
        envrc = None
    context = lint.LintContext(
        nix_conf=nix_conf_text, flake_nix=(directory / "flake.nix").is_file(), envrc=envrc
    )
    # Doctor judges the platform and the syscall filter itself, against the engine it asked, and the
    # store-only layout by running the image (the vscode-server check).
    covered = {"filter-syscalls-native", "image-platform-missing", "store-only-image"}
    findings = tuple(
        (hit.id, hit.severity, hit.message, hit.hint)
        for hit in lint.lint(config, context)
        if hit.id not in covered
    )
    nix_conf = nixconf.parse(nix_conf_text) if nix_conf_text is not None else None
    return replace(found, nix_conf=nix_conf, lint=findings, **_loader_facts(path.parent, config))


def _loader_facts(folder: Path, config: DevConfig) -> dict[str, Any]:
    """The config's Dockerfile and Features as far as devnix's FHS loader step goes (the same reading
    as `devnix validate`), and the image's layout as devnix's catalog knows it."""
    from devnix import fhsloader, lint
    from devnix.commands.validate import loader_files

    facts: dict[str, Any] = {}
    dockerfile, local_features = loader_files(folder, config)
    where = config.dockerfile
    image = config.image
    if where is not None and image is None:
        facts["dockerfile"] = where[1]
        if dockerfile is not None:
            args = config.build.args if config.build is not None else None
            facts["base_image"] = image = lint.dockerfile_base(dockerfile, args)
            if fhsloader.dockerfile_adds_loader(dockerfile):
                facts["loader_step"] = f"{where[1]}'s {fhsloader.SCRIPT_NAME} step"
    feature = lint.loader_feature(config, local_features)
    if feature is not None and "loader_step" not in facts:
        facts["loader_step"] = f"the Feature {feature}"
    if image is not None:
        layout = lint.layout_of(image)
        if layout is not Filesystem.UNKNOWN:
            facts["filesystem"], facts["filesystem_detail"] = layout, "devnix's catalog"
    return facts


# How doctor names where an image's platforms and its layout's PATH came from.
_PLATFORMS_FROM = {
    Source.REGISTRY: "from its registry",
    Source.LOCAL: "from the engine's local copy",
    Source.CATALOG: "from devnix's catalog",
}
_LAYOUT_FROM = {
    Source.CATALOG: "devnix's catalog",
    Source.REGISTRY: "PATH in its registry's image config",
    Source.LOCAL: "PATH in the engine's local copy",
}


def _image_platforms(
    dev: Devcontainer, timeout: float, engine_platform: platforms.Platform | None = None
) -> Devcontainer:
    """The image's platforms and layout as ``devnix init`` learns them (:func:`devnix.imagefacts.learn`:
    the registry, else the engine's local copy, else devnix's catalog), and the engine's copy under the
    tag, whose platform the local-copy check compares with what the config runs."""
    from devnix import imagefacts

    assert dev.image is not None
    try:
        ref = images.parse_ref(dev.image)
    except DevnixError as error:
        return replace(dev, platforms_detail=error.message)
    found = imagefacts.learn(
        ref, timeout=timeout, config_for=dev.pinned or engine_platform, local_timeout=timeout
    )
    if found.local is not None:
        dev = replace(dev, local_platform=found.local.platform)
    if found.known is None:
        return replace(dev, platforms_detail=f"the registry: {found.registry_error}")
    detail = _PLATFORMS_FROM[found.known.source]
    if found.registry_error is not None:
        detail += f"; the registry: {found.registry_error}"
    dev = replace(dev, image_platforms=found.known.platforms, platforms_detail=detail)
    if found.filesystem is Filesystem.UNKNOWN:
        return dev
    return replace(dev, filesystem=found.filesystem, filesystem_detail=_LAYOUT_FROM[found.filesystem_source])


def _server_probe(
    image: str, pinned: platforms.Platform | None, options: DoctorOptions
) -> doctor.ServerProbe:
    """Run :data:`devnix.doctor.SERVER_PROBE` in a throwaway container of ``image`` (as the config pins
    it, else as the engine picks), pulling it first only with ``--pull``."""
    platform = str(pinned) if pinned else None
    command = ["/bin/sh", "-c", doctor.SERVER_PROBE]
    try:
        try:
            ran = engine.run_probe(image, command, platform=platform, timeout=options.probe_timeout)
        except EngineError as error:
            if not isinstance(error, engine.ImageMissingError):
                raise
            if not options.pull:
                return doctor.ServerProbe(image, False, "the image is not in the engine yet")
            engine.pull(image, platform=platform, timeout=options.pull_timeout)
            ran = engine.run_probe(image, command, platform=platform, timeout=options.probe_timeout)
    except EngineError as error:
        return doctor.ServerProbe(image, False, error.message)
    if ran.exit_code is None:
        return doctor.ServerProbe(
            image, False, f"the probe did not finish within {options.probe_timeout:.0f} s"
        )
    return doctor.parse_server_probe(image, ran.output)
