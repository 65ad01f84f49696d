"""Pure: the checks of the project's devcontainer.json (platform, local copy, nix.conf, VS Code's server,
the user Podman's keep-id is for).
"""

from __future__ import annotations

from collections.abc import Mapping

from devnix.devconfig import DevConfig
from devnix.doctor.model import STORE_VOLUME_PREFIX, Check, Devcontainer, Status
from devnix.doctor.server import SERVER_LIBRARIES
from devnix.fhsloader import SCRIPT_NAME
from devnix.images import Filesystem
from devnix.plan import pull_command, stale_copy
from devnix.platforms import SUPPORTED, Platform


def devcontainer_from_config(path: str, config: DevConfig) -> Devcontainer:
    """The parts of a devcontainer.json's model doctor checks."""
    if not config.is_object:
        return Devcontainer(path, error=str(config.notes[0]))
    store_volume = next(
        (m.source for m in config.mounts if m.is_nix_volume and m.source.startswith(STORE_VOLUME_PREFIX)),
        None,
    )
    return Devcontainer(
        path,
        image=config.image,
        built=config.built,
        pinned=config.pinned,
        store_volume=store_volume,
        notes=tuple(note.message for note in config.notes),
        keep_id_user=config.podman_keep_id_user,
    )


def devcontainer_checks(
    dev: Devcontainer, engine: Platform, emulation: Mapping[str, bool | None], cli: str = "docker"
) -> list[Check]:
    if dev.error is not None:
        return [
            Check(
                "devcontainer",
                Status.FAIL,
                f"cannot read {dev.path}: {dev.error}",
                "fix the file (`devnix init --force` writes a fresh one)",
            )
        ]
    target, platform_check = _devcontainer_platform(dev, engine, emulation)
    checks = [platform_check]
    if dev.notes:
        checks.append(
            Check(
                "devcontainer.config",
                Status.WARN,
                f"{dev.path}: " + "; ".join(dev.notes) + " (left out of these checks)",
                "fix the values (`devnix validate` shows each at its line)",
            )
        )
    local = _local_copy_check(dev, target, engine, cli)
    if local is not None:
        checks.append(local)
    if target is not None:
        checks.append(_nixconf_check(dev, target, engine))
    server = _vscode_server_check(dev, cli)
    if server is not None:
        checks.append(server)
    for rule, severity, message, hint in dev.lint:
        status = Status.FAIL if severity == "error" else Status.WARN
        checks.append(Check(f"devcontainer.{rule}", status, message, hint))
    return checks


def rootful_keep_id_check(user: str) -> Check:
    # devcontainers/cli adds keep-id for any non-root user whatever the Podman (devcontainers/cli#1004),
    # and appends runArgs after it: an empty --userns there takes it back, and dockerd accepts that too.
    return Check(
        "devcontainer.podman-userns",
        Status.FAIL,
        f"the container's user is {user!r}, so VS Code and the devcontainer CLI add --userns=keep-id, "
        'which rootful Podman refuses ("keep-id is only supported in rootless mode")',
        'add "--userns=" to runArgs (Docker accepts it too; rootless Podman needs keep-id, so leave it '
        "out there), or use rootless Podman",
    )


def _devcontainer_platform(
    dev: Devcontainer, engine: Platform, emulation: Mapping[str, bool | None]
) -> tuple[Platform | None, Check]:
    """The platform the dev container will run as (None when unknown) and the verdict about it."""
    check_id = "devcontainer.platform"
    if dev.image is None:
        what = "is built from a Dockerfile or compose file" if dev.built else "names no image"
        target = dev.pinned or engine
        return target, Check(
            check_id, Status.OK, f"{dev.path} {what}; it runs as {target} (its base image is not checked)"
        )
    if dev.pinned is not None:
        target = dev.pinned
        if dev.image_platforms is not None and not any(target.same_machine(p) for p in dev.image_platforms):
            return target, Check(
                check_id,
                Status.FAIL,
                f"{dev.image} has no {target} variant ({_platforms(dev.image_platforms)}) but runArgs pin it",
                "drop the --platform pin or use an image that has that platform (`devnix init` picks one)",
            )
        why = f"pinned with --platform; {dev.image}: {_platforms(dev.image_platforms)}"
    elif dev.image_platforms is None:
        return None, Check(
            check_id,
            Status.WARN,
            f"the platforms of {dev.image} are unknown: {dev.platforms_detail}",
            "pull the image once (`docker pull`), or check it offers the engine's platform",
        )
    elif any(engine.same_machine(p) for p in dev.image_platforms):
        target, why = engine, f"{dev.image} has {_platforms(dev.image_platforms)} ({dev.platforms_detail})"
    else:
        runnable = [p for p in dev.image_platforms if str(p) in SUPPORTED]
        if not runnable:
            return None, Check(
                check_id,
                Status.FAIL,
                f"{dev.image} offers only {_platforms(dev.image_platforms)}: none this engine runs",
                "use a linux/amd64 or linux/arm64 image (`devnix init` picks one)",
            )
        target = runnable[0]
        why = f"{dev.image} has only {_platforms(dev.image_platforms)} ({dev.platforms_detail})"
    if target.same_machine(engine):
        return target, Check(check_id, Status.OK, f"runs natively as {target}: {why}")
    works = emulation.get(str(target))
    if works is False:
        return target, Check(
            check_id,
            Status.FAIL,
            f"would run emulated as {target}, which this engine cannot run: {why}",
            f"use an image with {engine} (multi-arch), or enable emulation (see emulation.{target})",
        )
    status = Status.WARN
    tail = "" if works else " (emulation not proven)"
    return target, Check(
        check_id,
        status,
        f"runs emulated as {target}{tail}, several times slower than native: {why}",
        f"use an image with a {engine} variant to run natively (`devnix init` picks one)",
    )


def _local_copy_check(
    dev: Devcontainer, target: Platform | None, engine: Platform, cli: str = "docker"
) -> Check | None:
    """Whether the engine's copy under the image's tag is the variant the config should start
    (:func:`devnix.plan.stale_copy`, the rule ``devnix init`` applies when it writes a config)."""
    local, image = dev.local_platform, dev.image
    if local is None or image is None:
        return None  # nothing pulled yet: the engine pulls the variant the config asks for
    check_id = "devcontainer.local-copy"
    wanted = stale_copy(local, dev.image_platforms or (), engine, dev.pinned)
    if wanted is None:
        if target is None or not local.same_machine(target):
            return None  # the platform check says what is wrong
        message = f"the engine's copy of {image} is {local}, the variant the config runs"
        return Check(check_id, Status.OK, message)
    if dev.pinned is not None:
        message = (
            f"the engine holds the {local} copy of {image}, but the config pins {wanted}: starting the "
            f"container pulls the {wanted} variant over that copy, and fails without the registry"
        )
    else:
        message = (
            f"the engine holds the {local} copy of {image} and the config pins no platform: the container "
            f"starts that copy, emulated, instead of the tag's native {wanted} variant"
        )
    return Check(
        check_id,
        Status.WARN,
        message,
        f"`{pull_command(wanted, image, cli)}` puts the {wanted} variant under the tag",
    )


def _platforms(platforms: tuple[Platform, ...] | None) -> str:
    return ", ".join(str(p) for p in platforms) if platforms else "no platforms known"


def _nixconf_check(dev: Devcontainer, target: Platform, engine: Platform) -> Check:
    check_id = "devcontainer.nix-conf"
    emulated = not target.same_machine(engine)
    if dev.nix_conf is None:
        if emulated:
            return Check(
                check_id,
                Status.WARN,
                f"no .devcontainer/nix.conf, and Nix runs emulated ({target} on {engine})",
                "make sure the image's nix.conf has filter-syscalls = false (`devnix init` writes one)",
            )
        return Check(check_id, Status.OK, "no .devcontainer/nix.conf; Nix runs natively with its defaults")
    off = dev.nix_conf.get("filter-syscalls", "").lower() in ("false", "0", "no")
    if emulated and not off:
        # The seccomp failure is documented for x86_64 guests (QEMU, Rosetta); aarch64 guests under QEMU
        # 7.2 built fine here, so for them it is a warning.
        status = Status.FAIL if target.architecture == "amd64" else Status.WARN
        return Check(
            check_id,
            status,
            f"Nix runs emulated ({target} on {engine}) with its seccomp filter on: builds fail with "
            "'unable to load seccomp BPF program'",
            "add `filter-syscalls = false` to .devcontainer/nix.conf",
        )
    if not emulated and off:
        return Check(
            check_id,
            Status.WARN,
            f"filter-syscalls = false, but Nix runs natively ({target}): the filter is off for nothing",
            "remove `filter-syscalls = false` from .devcontainer/nix.conf",
        )
    state = "off, as emulation needs" if emulated else "on, as it should be natively"
    return Check(check_id, Status.OK, f"filter-syscalls is {state} ({target} on {engine})")


def loader_hint(dev: Devcontainer) -> str:
    """How to give the image devnix's FHS loader: ``init --merge`` turns an image config into a build of a
    Dockerfile with the step; a Dockerfile of the user's own gets the two lines."""
    if dev.dockerfile is not None:
        return (
            f"add `COPY {SCRIPT_NAME} /tmp/devnix-fhs-loader.sh` and `RUN sh /tmp/devnix-fhs-loader.sh` "
            f"after the FROM of {dev.dockerfile}, with devnix's {SCRIPT_NAME} beside it "
            "(`devnix init --dry-run --template nix-dockerfile` shows it)"
        )
    return (
        "`devnix init --merge`: the config then builds a Dockerfile that adds devnix's FHS loader step "
        f"({SCRIPT_NAME}), or add devnix's nix Feature"
    )


def _vscode_server_check(dev: Devcontainer, cli: str = "docker") -> Check | None:
    """Whether VS Code's server (a glibc `node`) can start in the image: VS Code and Codespaces attach."""
    check_id = "devcontainer.vscode-server"
    probe = dev.server
    image = dev.probe_image
    if image is None:
        return None  # a compose config, or a Dockerfile whose FROM cannot be told offline
    where = image if dev.image is not None else f"{image} ({dev.dockerfile}'s FROM)"
    step = f"; {dev.loader_step} adds devnix's FHS loader at build time" if dev.loader_step else ""
    if probe is None or not probe.ran:
        detail = probe.detail if probe else "not tried"
        if dev.filesystem is Filesystem.STORE_ONLY and not dev.loader_step:
            return Check(
                check_id,
                Status.WARN,
                f"{where} is a store-only Nix image ({dev.filesystem_detail}): VS Code's server cannot "
                f"start in it without an FHS loader (not probed: {detail})",
                loader_hint(dev),
            )
        if dev.loader_step:
            # The step gives a store-only image its loader and does nothing where one exists.
            return Check(check_id, Status.OK, f"{where} not probed ({detail}){step}")
        return Check(
            check_id,
            Status.WARN,
            f"unknown whether VS Code's server can start in {where}: {detail}",
            f"`{cli} pull {image}` (or `devnix doctor --pull`) and run `devnix doctor` again",
        )
    loader = probe.loader or "an FHS loader"
    missing = [name for name in SERVER_LIBRARIES if name not in probe.libraries]
    if probe.loader_found and not missing:
        folders = {path.rsplit("/", 1)[0] for path in probe.libraries.values()}
        if len(folders) == 1:
            found = f"{' and '.join(probe.libraries)} in {folders.pop()}"
        else:
            found = ", ".join(f"{name} in {path.rsplit('/', 1)[0]}" for name, path in probe.libraries.items())
        whose = " (devnix's FHS loader)" if probe.devnix_loader else ""
        return Check(
            check_id, Status.OK, f"VS Code's server can start in {where}: {loader}{whose} finds {found}"
        )
    if dev.loader_step and probe.nix_store:
        return Check(
            check_id,
            Status.OK,
            f"{where} is store-only (no {loader}, as the probe found){step}, so VS Code's server can start",
        )
    if not probe.loader_found and probe.nix_store:
        return Check(
            check_id,
            Status.FAIL,
            f"VS Code's server cannot start in {where}: no {loader} (a store-only Nix image, "
            "as the probe found), so VS Code and Codespaces cannot attach",
            loader_hint(dev),
        )
    if not probe.loader_found:
        return Check(
            check_id,
            Status.WARN,
            f"{where} has no glibc loader {loader} and no Nix store: VS Code's server needs glibc "
            "(only on Alpine does VS Code bring a musl build)",
            "use a glibc-based image (Debian, Ubuntu) or a Nix image with devnix's FHS loader step",
        )
    searched = ", ".join(probe.search) or "no folders"
    if probe.cache:
        searched += f" and {probe.cache}"
    return Check(
        check_id,
        Status.FAIL,
        f"{loader} in {where} finds no {' or '.join(missing)} (it searches {searched}): "
        "VS Code's server cannot start",
        "install libstdc++ and libgcc_s in the image (Debian, Ubuntu: `libstdc++6`)",
    )
