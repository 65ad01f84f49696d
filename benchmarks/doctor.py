"""Benchmark: wall time of ``devnix doctor --json`` on this machine with a warm engine.

Target (issue 6): under 3 s. Each run is a fresh ``python -m devnix doctor --json`` subprocess (interpreter
start, imports, the engine's answers, both probe containers, ``/system/df``), timed from outside. One
unmeasured run first warms the engine (page cache, the probe images' layers). The figures printed are the
median, min and max over the runs, and which probes ran, so a fast run that skipped its probes (no local
image of a platform) is visible as such.

Usage: ``.venv/bin/python benchmarks/doctor.py [--runs 7] [DIR]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 3.0


def run_once(directory: Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "devnix", "doctor", str(directory), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # 1: a check failed, still a full run worth timing
        sys.exit(f"devnix doctor exited {proc.returncode}: {proc.stderr.strip()}")
    report: dict[str, Any] = json.loads(proc.stdout)
    return elapsed, report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", nargs="?", type=Path, default=Path("."))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5 for a meaningful median")

    _, report = run_once(args.directory)  # warm-up, not measured
    times = [run_once(args.directory)[0] for _ in range(args.runs)]
    checks = {c["id"]: c for c in report["checks"]}
    probed = [
        name
        for name in ("mount", "emulation.linux/arm64", "emulation.linux/amd64")
        if name in checks and checks[name]["status"] == "ok"
    ]
    median = statistics.median(times)
    spread = f"min {min(times):.2f}, max {max(times):.2f}"
    print(f"devnix doctor --json: median {median:.2f} s over {args.runs} runs ({spread})")
    print(f"probes that ran and passed: {', '.join(probed) or 'none'}")
    print(f"target < {TARGET_SECONDS:.0f} s: {'met' if median < TARGET_SECONDS else 'MISSED'}")


if __name__ == "__main__":
    main()
