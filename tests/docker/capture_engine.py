"""Capture an engine's ``/info`` and ``/version`` answers as a fixture for tests/fixtures/engines/.

Fixtures say what they are in ``_provenance``: ``captured`` (taken from a real engine by this script, on
this machine) or ``assembled`` (put together by hand from public reports, for engines that cannot run
here: Docker Desktop, Colima, OrbStack… on a Mac). A captured fixture keeps only the keys devnix reads and
a few neighbours, so it is trimmed to the keys of the fixture it replaces.

    python tests/docker/capture_engine.py dockerd-debian [--host unix:///var/run/docker.sock]

rewrites tests/fixtures/engines/dockerd-debian.json from the live engine, keeping that file's keys.
tests/docker/test_captured_fixtures.py checks that the captured fixtures still match the live engine.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "engines"
PROVENANCE = ("captured", "assembled")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self._path)


def ask(host: str, path: str) -> Any:
    """One GET against the engine at ``host`` (unix:// or tcp://), parsed."""
    parts = urlsplit(host)
    if parts.scheme == "unix":
        connection: http.client.HTTPConnection = _UnixConnection(parts.path)
    else:
        connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
        return json.loads(body)
    finally:
        connection.close()


def trimmed(live: Any, shape: Any) -> Any:
    """``live`` cut down to the keys ``shape`` has (recursively, lists by their first element)."""
    if isinstance(shape, dict) and isinstance(live, dict):
        return {key: trimmed(live[key], value) for key, value in shape.items() if key in live}
    if isinstance(shape, list) and shape and isinstance(live, list):
        return [trimmed(item, shape[0]) if isinstance(shape[0], dict) else item for item in live]
    return live


def capture(name: str, host: str) -> dict[str, Any]:
    path = FIXTURES / f"{name}.json"
    old: dict[str, Any] = json.loads(path.read_text())
    if old.get("_provenance") != "captured":
        kind = old.get("_provenance")
        raise SystemExit(f"{path} is {kind!r}, not a captured fixture: refusing to overwrite it")
    info, version = ask(host, "/info"), ask(host, "/version")
    today = datetime.date.today().isoformat()
    return {
        "_provenance": "captured",
        "_source": old["_source"].split(" [recaptured")[0] + f" [recaptured {today} from {host}]",
        "endpoint": old["endpoint"],
        "host": old["host"],
        "info": trimmed(info, old["info"]),
        "version": trimmed(version, old["version"]),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the fixture's file name without .json")
    parser.add_argument("--host", default="unix:///var/run/docker.sock")
    args = parser.parse_args(argv)
    fixture = capture(args.name, args.host)
    (FIXTURES / f"{args.name}.json").write_text(json.dumps(fixture, indent=2) + "\n")
    print(f"wrote {FIXTURES / args.name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
