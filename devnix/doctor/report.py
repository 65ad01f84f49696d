"""Pure: the report, from the facts: the engine's checks in table order, then the project's."""

from __future__ import annotations

from devnix import podman
from devnix.dockerconfig import endpoint_origin
from devnix.doctor.engines import (
    detect_kind,
    disk_hint,
    emulation_hint,
    kind_from_endpoint,
    rootless_of,
    shared_folders_hint,
    start_hint,
    urlpath,
)
from devnix.doctor.model import (
    FAIL_FREE,
    STORE_VOLUME_PREFIX,
    WARN_FREE,
    Check,
    EndpointFacts,
    EngineSummary,
    Facts,
    Kind,
    Probe,
    RemoteBuilder,
    Report,
    Status,
    VSCodeSettings,
)
from devnix.doctor.project import devcontainer_checks, rootful_keep_id_check
from devnix.platforms import SUPPORTED, Platform, normalize_arch

# --- the report -------------------------------------------------------------------------------------------


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "kB") else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover - the loop always returns


def _remote(endpoint: EndpointFacts) -> bool:
    return not endpoint.host.startswith(("unix://", "npipe://")) and not any(
        local in endpoint.host for local in ("://localhost", "://127.", "://[::1]")
    )


def report(facts: Facts) -> Report:
    """All verdicts, in the order the table shows them."""
    endpoint = facts.endpoint
    if facts.info is None or facts.version is None:
        return _unreachable_report(facts)
    info, version = facts.info, facts.version
    kind, evidence = detect_kind(info, version, endpoint)
    engine_platform = Platform(
        str(version.get("Os") or info.get("OSType") or "linux").lower(),
        normalize_arch(str(version.get("Arch") or info.get("Architecture") or "")),
    )
    engine_version = str(version.get("Version") or info.get("ServerVersion") or "")
    rootless, rootless_evidence = rootless_of(info)
    summary = EngineSummary(
        os=engine_platform.os,
        arch=engine_platform.architecture,
        kind=kind,
        version=engine_version,
        context=endpoint.context,
        endpoint=endpoint.host,
        evidence=evidence,
        rootless=rootless,
    )
    emulation: dict[str, bool | None] = {}
    for name in SUPPORTED:
        if name == str(engine_platform):
            emulation[name] = True
        else:
            probe = facts.emulation.get(name)
            emulation[name] = probe.result if probe else None

    checks: list[Check] = [
        _endpoint_check(facts, summary),
        _engine_check(kind, engine_version, evidence, rootless, rootless_evidence),
        _platform_check(facts, kind, engine_platform),
    ]
    for name in SUPPORTED:
        if name != str(engine_platform):
            checks.append(_emulation_check(name, facts.emulation.get(name), kind, facts.host_os))
    checks.append(_mount_check(facts, kind))
    if facts.devcontainer is not None:
        checks.extend(devcontainer_checks(facts.devcontainer, engine_platform, emulation, kind.cli))
        if kind is Kind.PODMAN and rootless is False and facts.devcontainer.keep_id_user:
            checks.append(rootful_keep_id_check(facts.devcontainer.keep_id_user))
    checks.append(_disk_check(facts, kind, str(info.get("DockerRootDir", ""))))
    if facts.builders:
        checks.append(_builders_check(facts.builders))
    checks.append(_store_check(facts))
    if kind is Kind.PODMAN:
        checks.append(_docker_path_check(facts.vscode))
    return Report(summary, facts.host_os, facts.host_arch, emulation, tuple(checks), facts.builders or ())


def _engine_check(kind: Kind, version: str, evidence: str, rootless: bool, rootless_evidence: str) -> Check:
    """The engine's kind and version; for Podman (where both modes are common) and a rootless dockerd,
    whether it runs as root: a rootless engine's containers are the user's processes, and what their root
    writes in a bind mount belongs to the user outside."""
    if kind is Kind.PODMAN or rootless:
        mode = "rootless" if rootless else "rootful"
        message = f"{kind.display_name} {version}, {mode} ({evidence}; {rootless_evidence})"
        return Check("engine", Status.OK, message)
    return Check("engine", Status.OK, f"{kind.display_name} {version} ({evidence})")


# What to do about a remote builder that did not answer, by what ssh or Nix said.
_BUILDER_HINTS = {
    "host-key": "its host key is not the one the machines line pins (last field) or your known_hosts has: "
    "compare with `ssh-keyscan HOST`",
    "refused-key": "it refused the key: add the key's .pub to the remote's authorized_keys (nix-daemon "
    "connects with root's keys, so root must be able to read the key file too)",
    "unreachable": "nothing answers at that address: start the builder (nix-darwin's linux-builder: "
    "`sudo launchctl kickstart -k system/org.nixos.linux-builder`) or fix the address",
    "no-nix": "the remote has no nix-store on the PATH of a non-interactive ssh session: install Nix there",
}


def _builders_check(found: tuple[RemoteBuilder, ...]) -> Check:
    """Whether each configured remote builder answers; a builder that does not is a warning (bootstrap
    and Nix builds fall back on the local machine, or fail when ``max-jobs = 0``)."""

    def name(builder: RemoteBuilder) -> str:
        systems = ", ".join(builder.systems) or "any system"
        return f"{builder.uri} ({systems}; {builder.source})"

    silent = [b for b in found if not b.answered]
    if not silent:
        answers = "; ".join(f"{name(b)}: {b.detail}" for b in found)
        return Check("nix.builders", Status.OK, f"remote builders answer: {answers}")
    message = "; ".join(f"{name(b)} " + ("does not answer: " if b.answered is False else "not tried: ")
                        + b.detail for b in silent)  # fmt: skip
    first = next((b.problem for b in silent if b.problem in _BUILDER_HINTS), None)
    hint = _BUILDER_HINTS[first] if first else "try it as Nix does: `nix store ping --store URI`"
    return Check("nix.builders", Status.WARN, message, hint)


def _docker_path_check(vscode: VSCodeSettings | None) -> Check:
    """Whether VS Code's Dev Containers will drive Podman: they run the CLI ``dev.containers.dockerPath``
    names (``docker`` unless set), and the reference CLI the one ``--docker-path`` names."""
    check_id = "vscode.docker-path"
    line = f"`{podman.DOCKER_PATH_SETTING}`"
    cli = f"for the reference CLI: `devcontainer up {podman.CLI_FLAG}`"
    if vscode is None or vscode.error is not None:
        detail = vscode.error if vscode is not None and vscode.error else "its settings.json was not read"
        return Check(
            check_id,
            Status.WARN,
            f"unknown whether VS Code runs podman: {detail}",
            f"make sure VS Code's settings.json has {line}; {cli}",
        )
    setting, where = vscode.docker_path, vscode.settings_file or "VS Code's settings.json"
    if setting is not None and podman.is_podman_cli(setting):
        if vscode.podman_cli is None:
            return Check(
                check_id,
                Status.WARN,
                f"{where} sets {podman.DOCKER_PATH_KEY} to {setting!r}, but no podman CLI is on PATH here",
                "install podman (the CLI VS Code runs), or give its full path in the setting",
            )
        return Check(
            check_id,
            Status.OK,
            f"{where} sets {podman.DOCKER_PATH_KEY} to {setting!r}: VS Code's Dev Containers drive Podman; "
            f"{cli}",
        )
    if setting is not None:
        message = f"{where} sets {podman.DOCKER_PATH_KEY} to {setting!r}: VS Code runs that, not podman"
    else:
        message = (
            "the engine is Podman, and VS Code's Dev Containers run `docker` unless settings.json says "
            f"otherwise ({podman.DOCKER_PATH_KEY} is not set)"
        )
    return Check(check_id, Status.WARN, message, f"add {line} to VS Code's settings.json; {cli}")


def _unreachable_report(facts: Facts) -> Report:
    endpoint = facts.endpoint
    kind, _ = kind_from_endpoint(endpoint.resolved or endpoint.host, endpoint.context)
    reason = facts.unreachable or endpoint.error or "no answer"
    origin = _origin(endpoint)
    message = (
        f"{endpoint.error}"
        if endpoint.error
        else f"the engine at {endpoint.host} ({origin}) does not answer: {reason}"
    )
    if kind is not None:
        message += f" (it looks like {kind.display_name})"
    # A configuration that names no usable engine has its own remedy; starting an engine is not it.
    hint = endpoint.error_hint or start_hint(kind, endpoint, facts.host_os, reason)
    check = Check("endpoint", Status.FAIL, message, hint)
    summary = EngineSummary(None, None, kind, None, endpoint.context, endpoint.host)
    return Report(summary, facts.host_os, facts.host_arch, dict.fromkeys(SUPPORTED), (check,))


def _origin(endpoint: EndpointFacts) -> str:
    return endpoint_origin(endpoint.source, endpoint.context)


def _endpoint_check(facts: Facts, summary: EngineSummary) -> Check:
    endpoint = facts.endpoint
    message = f"{endpoint.host} ({_origin(endpoint)}) answers"
    if endpoint.resolved and _same_place(endpoint.resolved) != _same_place(urlpath(endpoint.host)):
        message += f"; the socket is a link to {endpoint.resolved}"
    if endpoint.context_also:
        return Check(
            "endpoint",
            Status.WARN,
            f"{message}; DOCKER_HOST overrides the selected context {endpoint.context_also!r}",
            "unset DOCKER_HOST so that devnix, the docker CLI and your editor agree on one engine",
        )
    return Check("endpoint", Status.OK, message)


def _same_place(path: str) -> str:
    # /var/run is a link to /run on most Linux systems: not worth a word. A link into ~/.colima is.
    return "/run/" + path[len("/var/run/") :] if path.startswith("/var/run/") else path


def _platform_check(facts: Facts, kind: Kind, engine: Platform) -> Check:
    host = f"{facts.host_os}/{facts.host_arch}"
    other = next((p for p in SUPPORTED if p != str(engine)), None)
    in_vm = kind.in_vm_on(facts.host_os)
    if facts.host_os != "linux" or in_vm:
        where = f"in {kind.display_name}'s Linux VM" if in_vm else "in a Linux VM"
        message = f"engine {engine} runs {where} on this {host} host"
    elif _remote(facts.endpoint):
        message = f"engine {engine} on another machine ({facts.endpoint.host}); this host is {host}"
    else:
        message = f"engine {engine} runs on this {host} host itself"
    if str(engine) in SUPPORTED:
        message += f": {engine} images run natively" + (f", {other} ones emulated" if other else "")
    if engine.architecture != facts.host_arch:
        return Check(
            "platform",
            Status.WARN,
            message + f"; its architecture differs from this host's ({facts.host_arch})",
            f"images you build here for {facts.host_os}/{facts.host_arch} run emulated on that engine; "
            "pick the engine's platform (`devnix init` does)",
        )
    return Check("platform", Status.OK, message)


def _emulation_check(platform: str, probe: Probe | None, kind: Kind, host_os: str) -> Check:
    check_id = f"emulation.{platform}"
    if probe is None or probe.result is None:
        detail = probe.detail if probe else "not tried"
        return Check(
            check_id,
            Status.WARN,
            f"unknown whether {platform} containers run: {detail}",
            f"make a {platform} image available (`{kind.cli} pull --platform {platform} busybox`) and run "
            "`devnix doctor` again",
        )
    if probe.result:
        message = f"{platform} containers run emulated ({probe.detail})"
        if platform == "linux/amd64":
            # The documented seccomp failure is for x86_64 guests (NixOS/nix#5258).
            message += "; Nix in them needs filter-syscalls = false"
        return Check(check_id, Status.OK, message)
    return Check(
        check_id,
        Status.WARN,
        f"{platform} containers do not run: {probe.detail}",
        emulation_hint(kind, platform, host_os),
    )


def _mount_check(facts: Facts, kind: Kind) -> Check:
    probe = facts.mount
    if probe is None or probe.result is None:
        detail = probe.detail if probe else "not tried"
        return Check(
            "mount",
            Status.WARN,
            f"unknown whether bind mounts of {facts.directory} work: {detail}",
            f"make a small image available (`{kind.cli} pull busybox`) and run `devnix doctor` again",
        )
    if probe.result:
        return Check("mount", Status.OK, f"a file written in {facts.directory} is visible in a container")
    return Check(
        "mount",
        Status.FAIL,
        f"a file written in {facts.directory} is missing in a container's bind mount ({probe.detail})",
        shared_folders_hint(kind, facts.directory, _remote(facts.endpoint), facts.host_os),
    )


def _disk_check(facts: Facts, kind: Kind, root: str) -> Check:
    disk = facts.disk
    if disk is None:
        return Check("disk", Status.WARN, "disk space unknown: the engine did not say in time", None)
    used = ", ".join(f"{name} {_size(size)}" for name, size in disk.usage.items())
    if disk.free is None:
        message = f"free space unknown ({disk.detail})" + (f"; used: {used}" if used else "")
        return Check("disk", Status.OK if used else Status.WARN, message, None)
    message = f"{_size(disk.free)} free" + (f" of {_size(disk.total)}" if disk.total else "")
    message += f" where the engine keeps images; used: {used}" if used else " where the engine keeps images"
    if disk.free < FAIL_FREE:
        return Check("disk", Status.FAIL, message, disk_hint(kind, root, facts.host_os))
    if disk.free < WARN_FREE:
        message += "; a Nix store needs several GB"
        return Check("disk", Status.WARN, message, disk_hint(kind, root, facts.host_os))
    return Check("disk", Status.OK, message)


def _store_check(facts: Facts) -> Check:
    wanted = facts.devcontainer.store_volume if facts.devcontainer else None
    if facts.store_volumes is None:
        return Check("store-volume", Status.WARN, f"volumes unknown: {facts.store_volumes_detail}", None)
    volumes = facts.store_volumes
    if not volumes:
        if wanted:
            return Check(
                "store-volume",
                Status.OK,
                f"no {STORE_VOLUME_PREFIX}* volume yet; the dev container makes {wanted} on its first start",
            )
        return Check(
            "store-volume", Status.OK, f"no /nix store volume ({STORE_VOLUME_PREFIX}*) on this engine"
        )
    listed = ", ".join(
        f"{name} ({_size(size) if size is not None and size >= 0 else 'size unknown'})"
        for name, size in sorted(volumes.items())
    )
    return Check("store-volume", Status.OK, f"/nix store volumes: {listed}")
