"""Benchmark: `devnix validate` on the 78 real-world devcontainer.json files of the shared corpus.

    .venv/bin/python benchmarks/validate.py [--runs N]

Each run is a fresh process that imports devnix, compiles the schema (from ../shared/schemas, no
network) and validates every corpus file (JSONC read, schema, Nix checks, line:col for each finding),
so the total includes everything a cold `devnix validate` pays except the interpreter's own start.
Printed: the median total over the runs, and the median time of one file once the schema is compiled.
Target (issue 3): under 1 s for all 78 files, schema compile included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"

CHILD = r"""
import json, sys, time
from pathlib import Path
from typing import Any
start = time.perf_counter()
from devnix.commands import validate
schemas, files = Path(sys.argv[1]), sorted(Path(sys.argv[2]).glob("*.json"))
per_file, findings = [], 0
for path in files:
    began = time.perf_counter()
    result = validate.run(validate.ValidateOptions(path=path, schema_dir=schemas))
    per_file.append(time.perf_counter() - began)
    findings += len(result.findings)
total = time.perf_counter() - start
print(json.dumps({"total": total, "per_file": per_file[1:], "files": len(files), "findings": findings}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    corpus = SHARED / "corpus" / "devcontainer-json"
    schemas = SHARED / "schemas"
    if not corpus.is_dir() or not schemas.is_dir():
        sys.exit(f"benchmarks/validate.py: needs {corpus} and {schemas}")
    totals: list[float] = []
    per_file: list[float] = []
    report: dict[str, Any] = {}
    for _ in range(args.runs):
        output = subprocess.run(
            [sys.executable, "-c", CHILD, str(schemas), str(corpus)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
        report = json.loads(output)
        totals.append(report["total"])
        per_file += report["per_file"]
    print(f"files: {report['files']}, findings: {report['findings']}, runs: {args.runs}")
    print(f"validate all files, one process (import + schema compile included): "
          f"median {statistics.median(totals) * 1000:.1f} ms (target < 1000 ms)")
    print(f"one file, schema compiled: median {statistics.median(per_file) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
