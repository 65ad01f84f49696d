"""Edge: the remote builders this host's Nix is configured with, tried over ssh as Nix would (for doctor).

Where Nix reads them: the system ``nix.conf`` (``$NIX_CONF_DIR``, else ``/etc/nix``), then the user's
(``$NIX_USER_CONF_FILES``, else ``nix/nix.conf`` under ``$XDG_CONFIG_DIRS`` and ``$XDG_CONFIG_HOME``),
later settings winning; ``builders`` defaults to ``@/etc/nix/machines``, where nix-darwin's
``linux-builder`` puts its line. Parsing is :mod:`devnix.builders`' (the same rules bootstrap writes by).

Each builder is tried with the ssh client Nix itself runs: ``BatchMode`` (no prompt), the machines line's
key, its pinned host key when it has one (else the user's known_hosts, never "accept any"), and
``nix-store --version`` on the remote, so that "answers" means a Nix that Nix could build on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from devnix import builders
from devnix.doctor import RemoteBuilder
from devnix.errors import DevnixError

PROBE_COMMAND = "nix-store --version"
MAX_PROBED = 8  # a build farm's machines file can be long; doctor tries the first ones


def nix_conf_files() -> list[Path]:
    """The nix.conf files Nix reads on this host, system first, in the order later ones override."""
    system = Path(os.environ.get("NIX_CONF_DIR") or "/etc/nix") / "nix.conf"
    user_files = os.environ.get("NIX_USER_CONF_FILES")
    if user_files:
        users = [Path(p) for p in user_files.split(":") if p]
    else:
        config_dirs = (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
        config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        users = [Path(d) / "nix" / "nix.conf" for d in reversed(config_dirs) if d]
        users.append(Path(config_home) / "nix" / "nix.conf")
    return [p for p in (system, *users) if p.is_file()]


def host_builders(timeout: float = 8.0) -> tuple[RemoteBuilder, ...] | None:
    """The configured remote builders and whether each answered; None when this host has no nix.conf
    (no Nix to build with here), an empty tuple when Nix has no remote builder."""
    files = nix_conf_files()
    if not files:
        return None
    conf_text = "\n".join(_read(p) for p in files)
    # Which file sets builders (for the report): the last one that names them.
    setting = next((str(p) for p in reversed(files) if "builders" in _read(p)), str(files[0]))
    sources: list[tuple[str, str]] = []  # (entry, the file it came from), in Nix's order
    for entry in builders.builder_entries(conf_text):
        if not entry.startswith("@"):
            sources.append((entry, setting))
        elif Path(entry[1:].strip()).is_file():
            machines_file = entry[1:].strip()
            listed = builders.entries(_read(Path(machines_file)))
            sources.extend((line, machines_file) for line in listed if not line.startswith("@"))
    try:
        machines = [(builders.parse_machine(entry), source) for entry, source in sources]
    except DevnixError as error:
        return (RemoteBuilder("?", (), setting, None, error.message),)
    if not machines:
        return ()
    ssh = shutil.which("ssh")
    with ThreadPoolExecutor(max_workers=min(len(machines), MAX_PROBED)) as pool:
        tried = list(pool.map(lambda pair: _try(pair[0], pair[1], ssh, timeout), machines[:MAX_PROBED]))
    return tuple(tried)


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8", errors="replace")
    except OSError:
        return ""


def _try(machine: builders.Machine, source: str, ssh: str | None, timeout: float) -> RemoteBuilder:
    uri = machine.uri if "://" in machine.uri else f"ssh://{machine.uri}"  # Nix's default scheme
    found = RemoteBuilder(machine.uri, machine.systems, source, None, "")
    try:
        remote = builders.parse_uri(uri)
    except DevnixError as error:
        return replace(found, detail=error.message.replace("--remote-builder ", ""))
    if ssh is None:
        return replace(found, detail="no ssh client on this host to try it with")
    with tempfile.TemporaryDirectory(prefix="devnix-ssh-") as scratch:
        argv = [ssh, "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, int(timeout))}"]
        if machine.ssh_key:
            argv += ["-i", machine.ssh_key, "-o", "IdentitiesOnly=yes"]
        if remote.port is not None:
            argv += ["-p", str(remote.port)]
        host_key = machine.host_key_text
        if host_key:
            # The pinned key alone, under an alias, as Nix hands ssh a known_hosts file of its own.
            known = Path(scratch) / "known_hosts"
            known.write_text(f"devnix-builder {host_key}\n")
            argv += ["-o", f"UserKnownHostsFile={known}", "-o", "HostKeyAlias=devnix-builder"]
        argv += ["-o", "StrictHostKeyChecking=yes"]
        argv += [f"{remote.user}@{remote.bare_host}" if remote.user else remote.bare_host, PROBE_COMMAND]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, errors="replace", timeout=timeout + 5, check=False
            )
        except subprocess.TimeoutExpired:
            return replace(found, answered=False, detail="no answer in time", problem="unreachable")
    if done.returncode == 0:
        version = done.stdout.strip().splitlines()
        return replace(found, answered=True, detail=version[0] if version else "ok")
    said = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    problem = "no-nix" if done.returncode == 127 else builders.connection_problem(done.stderr + done.stdout)
    detail = said[-1] if said else f"ssh exited with {done.returncode}"
    return replace(found, answered=False, detail=detail, problem=problem)
