"""Benchmark: a cold ``devnix bootstrap`` through a remote builder beside the local (emulated) one.

Issue 12 asks for the time of a bootstrap through ``--remote-builder`` next to today's, where the
builder runs the aarch64 build itself. Both are emulated on this amd64 machine, differently:

- local: the amd64 Nix stand-in builds the aarch64 derivations itself (``extra-platforms``), each
  derivation's programs under QEMU binfmt; Nix itself runs natively;
- remote: the amd64 builder builds nothing (``max-jobs = 0``); it copies the inputs over SSH
  (``ssh-ng``) to the arm64 remote stand-in, whose whole Nix (daemon, hashing, store) runs under QEMU,
  and copies the outputs back.

So the ratio here measures what the remote path costs (SSH, the copies both ways, an emulated daemon),
not what a native arm64 machine gains: there, the remote's Nix and builds run at native speed.

Each run is cold on both sides: a fresh store volume for the builder and a fresh remote container.
The flake is ``tests/docker/bootstrap_flake.py``'s offline arm64 image (~300 MB root file system).
Usage: ``.venv/bin/python benchmarks/remote_builder.py [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "docker"))

import bootstrap_flake  # noqa: E402 - lives with the Docker tests, which share it
import remote_standin  # noqa: E402
from standins import NIX_AMD64, NIX_ARM64, image_exists, run  # noqa: E402


def _bootstrap(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "devnix", "bootstrap", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"devnix bootstrap {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, json.loads(proc.stdout)


def _step(result: dict[str, Any], key: str) -> float:
    return float(next((s["seconds"] for s in result["steps"] if s["step"] == key), 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="cold runs of each (the median is reported)")
    options = parser.parse_args()

    env = dict(os.environ)
    env.pop("SSH_AUTH_SOCK", None)
    for recipe in (NIX_AMD64, NIX_ARM64, remote_standin.REMOTE_ARM64):
        if not image_exists(recipe.cache_ref, env):
            sys.exit(
                f"{recipe.cache_ref} is missing: run `pytest tests/docker/test_bootstrap_remote.py` first"
            )
    workdir = Path(tempfile.mkdtemp(prefix="devnix-bench-remote-"))
    network = remote_standin.create_network(env)
    tag = f"devnix-bench/remote:{secrets.token_hex(4)}"
    timings: dict[str, list[float]] = {"local": [], "remote": []}
    builds: dict[str, list[float]] = {"local": [], "remote": []}
    try:
        flake = bootstrap_flake.make_flake(workdir / "flake", env)
        base = [
            "--flake", f"{flake}#image",
            "--system", "aarch64-linux",
            "--builder-image", NIX_AMD64.cache_ref,
            "--tag", tag,
            "--option", "substituters", "",
        ]  # fmt: skip
        for index in range(options.runs):
            for kind in ("local", "remote"):
                volume = f"devnix-bench-store-{secrets.token_hex(4)}"
                args = [*base, "--store-volume", volume]
                remote = None
                if kind == "remote":
                    remote = remote_standin.start_remote(network, workdir / "keys" / str(index), env)
                    args += [
                        "--builder-network", network,
                        "--remote-builder", remote.uri,
                        "--remote-key", str(remote.client_key.private),
                        "--remote-host-key", remote.host_key.public_key,
                    ]  # fmt: skip
                try:
                    seconds, result = _bootstrap(args, env)
                finally:
                    if remote is not None:
                        remote_standin.stop_remote(remote.container, env)
                    run(["docker", "volume", "rm", "-f", volume], env=env, check=False)
                    run(["docker", "image", "rm", tag], env=env, check=False)
                if kind == "remote" and result["built_on"] != [remote.uri if remote else ""]:
                    sys.exit(f"the remote run built on {result['built_on']}, not on the remote")
                timings[kind].append(seconds)
                builds[kind].append(_step(result, "build") + _step(result, "remote"))
                print(
                    f"run {index + 1} {kind:<6} {seconds:7.1f} s (nix build {_step(result, 'build'):.1f} s)"
                )
    finally:
        remote_standin.remove_network(network, env)
        shutil.rmtree(workdir, ignore_errors=True)

    local, remote_total = statistics.median(timings["local"]), statistics.median(timings["remote"])
    local_build, remote_build = statistics.median(builds["local"]), statistics.median(builds["remote"])
    print()
    print(f"cold bootstrap, median of {options.runs}:")
    print(f"  local builder (aarch64 builds under binfmt):   {local:7.1f} s  (nix build {local_build:.1f} s)")
    print(
        f"  remote builder (arm64 Nix, QEMU, ssh-ng):     {remote_total:7.1f} s  "
        f"(nix build and the remote check {remote_build:.1f} s)"
    )
    print(f"  remote / local: {remote_total / local:.2f}x")
    print("  both emulated here: the ratio is the remote path's overhead, not a native machine's gain")


if __name__ == "__main__":
    main()
