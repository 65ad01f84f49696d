"""Benchmark: ``devnix bootstrap`` memory while streaming an image, and the warm second run.

Targets (issue 5):

- peak memory of the devnix process while it moves a >= 250 MB image from the builder into the engine:
  at most 100 MB (the archive is streamed: never held in memory, no temporary copy on the host);
- a second bootstrap of the unchanged flake with the store volume warm: at most 0.25x the first run's
  wall time.

It uses the offline test flake of ``tests/docker/bootstrap_flake.py`` (an arm64 Nix image built by the
amd64 Nix stand-in through binfmt) and the stand-in images the Docker tests cache in the engine: run
``pytest tests/docker/test_bootstrap.py`` once first. Each run is a real ``devnix bootstrap`` process;
its peak resident memory (``ru_maxrss``, the kernel's VmHWM) comes from ``wait4``.

1. cold: ``#image`` (a gzipped archive) in a fresh store volume: the whole build, stream, load, verify;
2. warm: the same again, ``--runs`` times (median), which should build and load nothing;
3. stream: ``#stream`` (a script writing the uncompressed ~300 MB archive to stdout) in the same volume:
   the bytes pass through devnix, which is where its memory would grow if anything were buffered.

Usage: ``.venv/bin/python benchmarks/bootstrap.py [--runs 3] [--keep]``.
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
from standins import NIX_AMD64, NIX_ARM64, image_exists  # noqa: E402

TARGET_RSS_MB = 100.0
TARGET_RATIO = 0.25
MIN_MOVED_BYTES = 250_000_000


def _bootstrap(args: list[str]) -> tuple[float, float, dict[str, Any]]:
    """Run one ``devnix bootstrap --json``; return (wall seconds, peak RSS in MB, its JSON)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devnix", "bootstrap", *args, "--json"], stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"devnix bootstrap {' '.join(args)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, json.loads(stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="warm runs (the median is reported)")
    parser.add_argument("--keep", action="store_true", help="keep the store volume and tags afterwards")
    options = parser.parse_args()

    env = dict(os.environ)
    for recipe in (NIX_AMD64, NIX_ARM64):
        if not image_exists(recipe.cache_ref, env):
            sys.exit(f"{recipe.cache_ref} is missing: run `pytest tests/docker/test_bootstrap.py` once first")
    workdir = Path(tempfile.mkdtemp(prefix="devnix-bench-bootstrap-"))
    volume = f"devnix-bench-store-{secrets.token_hex(4)}"
    tags = {"image": "devnix-bench/bootstrap:image", "stream": "devnix-bench/bootstrap:stream"}
    try:
        # The stand-in's file system weighs ~250-320 MB depending on its recipe; padded to be sure.
        flake = bootstrap_flake.make_flake(
            workdir / "flake", env, min_rootfs_bytes=MIN_MOVED_BYTES + (8 << 20)
        )
        common = [
            "--system", "aarch64-linux",
            "--builder-image", NIX_AMD64.cache_ref,
            "--store-volume", volume,
            "--option", "substituters", "",
        ]  # fmt: skip

        def image_run() -> tuple[float, float, dict[str, Any]]:
            return _bootstrap(["--flake", f"{flake}#image", "--tag", tags["image"], *common])

        cold_s, cold_rss, cold = image_run()
        print(
            f"cold   #image : {cold_s:6.1f} s  peak RSS {cold_rss:5.1f} MB  "
            f"built={cold['built']} loaded={cold['loaded']} ({cold['bytes_streamed'] / 1e6:.0f} MB streamed)"
        )
        for step in cold["steps"]:
            print(f"         {step['title']:<20} {step['seconds']:6.1f} s")
        warm_times: list[float] = []
        warm_rss = 0.0
        for _ in range(options.runs):
            seconds, rss, warm = image_run()
            warm_times.append(seconds)
            warm_rss = max(warm_rss, rss)
            if warm["built"] or warm["loaded"]:
                sys.exit(f"the warm run built or loaded something: {json.dumps(warm['steps'])}")
        warm_s = statistics.median(warm_times)
        ratio = warm_s / cold_s
        print(
            f"warm   #image : {warm_s:6.1f} s  (median of {len(warm_times)}: "
            f"{', '.join(f'{t:.1f}' for t in warm_times)})  peak RSS {warm_rss:5.1f} MB"
        )
        stream_s, stream_rss, stream = _bootstrap(
            ["--flake", f"{flake}#stream", "--tag", tags["stream"], *common]
        )
        moved = stream["bytes_streamed"] / 1e6
        load = next(s for s in stream["steps"] if s["step"] == "load")
        print(
            f"stream #stream: {stream_s:6.1f} s  peak RSS {stream_rss:5.1f} MB while moving {moved:.0f} MB "
            f"({moved / max(load['seconds'], 1e-6):.0f} MB/s into the engine)"
        )
        print()
        peak = max(cold_rss, stream_rss)
        rss_ok = peak <= TARGET_RSS_MB and stream["bytes_streamed"] >= MIN_MOVED_BYTES
        ratio_ok = ratio <= TARGET_RATIO
        print(
            f"peak RSS moving {moved:.0f} MB: {peak:.1f} MB (target <= {TARGET_RSS_MB:.0f} MB): "
            f"{'ok' if rss_ok else 'MISSED'}"
        )
        print(f"warm / cold: {ratio:.3f} (target <= {TARGET_RATIO}): {'ok' if ratio_ok else 'MISSED'}")
        if not (rss_ok and ratio_ok):
            sys.exit(1)
    finally:
        if not options.keep:
            for tag in tags.values():
                subprocess.run(["docker", "image", "rm", tag], capture_output=True, check=False)
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
