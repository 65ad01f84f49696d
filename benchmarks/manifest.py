"""Benchmark: ``devnix manifest create`` of a two-platform index against a local docker-registry.

Target (issue 5): under 1 s, and no blob downloaded. Starts its own ``docker-registry`` on a free
loopback port (access log on, so downloads are counted by the server, not only by devnix), pushes an
amd64 and an arm64 image through the API with one large layer each, then times, per run:

- ``same repo``: the index written next to its sources (reads 2 manifests + 2 configs, 1 PUT);
- ``cross repo``: the index written to a fresh repository (each blob mounted, manifests copied);
- ``cli``: the cross-repository case through the real ``devnix`` command (interpreter start included).

Usage: ``.venv/bin/python benchmarks/manifest.py [--runs 15] [--layer-mb 64]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from devnix.commands import manifest as manifest_command

TARGET_SECONDS = 1.0
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_ACCESS_RE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_registry(workdir: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    exe = shutil.which("docker-registry")
    if exe is None:
        sys.exit("docker-registry is not installed (apt-get install docker-registry)")
    port = _free_port()
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = workdir / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [exe, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                return process, port, log
        except OSError:
            time.sleep(0.05)
    process.terminate()
    sys.exit(f"docker-registry did not start; its log:\n{log.read_text(errors='replace')[-2000:]}")


def _request(port: int, method: str, path: str, data: bytes | None = None, ctype: str | None = None) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if ctype:
        request.add_header("Content-Type", ctype)
    with urllib.request.urlopen(request, timeout=120) as response:
        return str(response.headers.get("Location") or "")


def _push_blob(port: int, repository: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = _request(port, "POST", f"/v2/{repository}/blobs/uploads/", b"")
    path = location.split(f"127.0.0.1:{port}", 1)[-1]
    separator = "&" if "?" in path else "?"
    _request(port, "PUT", f"{path}{separator}digest={digest}", data, "application/octet-stream")
    return digest


def _push_image(port: int, repository: str, arch: str, layer_mb: int) -> str:
    """A Docker v2 image whose layer is ``layer_mb`` MB of random bytes (the registry never unpacks it)."""
    layer = os.urandom(layer_mb * 1_000_000)
    config = json.dumps(
        {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": _push_blob(port, repository, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": _push_blob(port, repository, layer),
                "size": len(layer),
            }
        ],
    }
    _request(
        port, "PUT", f"/v2/{repository}/manifests/{arch}", json.dumps(manifest).encode(), DOCKER_MANIFEST
    )
    return f"localhost:{port}/{repository}:{arch}"


def _log_mark(log: Path) -> int:
    return log.stat().st_size


def _blob_downloads(log: Path, since: int) -> int:
    """GETs of blobs other than configs, as the registry's own access log saw them."""
    with log.open("rb") as handle:
        handle.seek(since)
        text = handle.read().decode(errors="replace")
    return sum(
        1 for method, path, _ in _ACCESS_RE.findall(text) if method == "GET" and "/blobs/sha256:" in path
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--layer-mb", type=int, default=64)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="devnix-bench-manifest-"))
    process, port, log = _start_registry(workdir)
    try:
        started = time.perf_counter()
        sources = tuple(_push_image(port, "bench/src", arch, args.layer_mb) for arch in ("amd64", "arm64"))
        setup = time.perf_counter() - started
        print(f"setup: pushed 2 images with a {args.layer_mb} MB layer each in {setup:.1f} s")

        cases: dict[str, list[float]] = {"same repo": [], "cross repo": [], "cli (cross repo)": []}
        requests: dict[str, int] = {}
        blob_gets: dict[str, int] = {}
        for run in range(args.runs):
            for case in cases:
                repository = "bench/src" if case == "same repo" else f"bench/{case.split()[0]}-{run}"
                target = f"localhost:{port}/{repository}:multi"
                mark = _log_mark(log)
                begin = time.perf_counter()
                if case.startswith("cli"):
                    done = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "devnix",
                            "manifest",
                            "create",
                            target,
                            *sources,
                            "--push",
                            "--json",
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    count = int(json.loads(done.stdout)["requests"])
                else:
                    options = manifest_command.CreateOptions(target, sources, push=True)
                    count = manifest_command.create(options).requests
                cases[case].append(time.perf_counter() - begin)
                time.sleep(0.02)  # let the registry flush its access log line
                requests[case] = count
                # The two config blobs are read on purpose (they name the platform); anything beyond
                # them would be a layer download.
                blob_gets[case] = _blob_downloads(log, mark) - 2

        print(f"manifest create, two-platform index, {args.runs} runs, local docker-registry:")
        worst = 0.0
        for case, times in cases.items():
            median = statistics.median(times)
            worst = max(worst, median)
            print(
                f"  {case:<17} median {median * 1000:7.1f} ms  (min {min(times) * 1000:6.1f}, "
                f"max {max(times) * 1000:6.1f})  requests {requests[case]:2d}  "
                f"layer downloads {blob_gets[case]}"
            )
        ok = worst < TARGET_SECONDS and all(n == 0 for n in blob_gets.values())
        print(f"target: < {TARGET_SECONDS:.0f} s and no layer downloaded -> {'met' if ok else 'NOT MET'}")
        if not ok:
            sys.exit(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
