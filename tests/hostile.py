"""A catalog of hostile inputs, each with the exit code devnix must answer it with.

Every case runs the real CLI (typer's CliRunner) in a fresh folder and must end in exactly one
``devnix: error:`` line followed by a ``hint:`` line, the documented exit code (devnix/errors.py), no
traceback and no user file changed. Registry cases talk to a real HTTP server on loopback that answers
as a broken or malicious registry would.

tests/test_hostile_catalog.py runs the catalog; ``python tests/hostile.py`` prints it as a table with the
exit codes seen (the list a closing note quotes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from typer.testing import CliRunner, Result

from tests.support import SCHEMAS

USAGE, EXISTS, REGISTRY, ENGINE, FILES = 2, 3, 4, 5, 6
REPORT_LINE = re.compile(r"^\S+:\d+:\d+: ")


@dataclass(frozen=True)
class Where:
    """What a case's arguments may refer to: its folder and the hostile registry's host:port."""

    folder: Path
    registry: str


@dataclass(frozen=True)
class Case:
    category: str
    what: str
    argv: Callable[[Where], list[str]]
    exit_code: int
    setup: Callable[[Path], None] = lambda folder: None
    env: Callable[[Where], dict[str, str]] = lambda where: {}
    says: str = ""  # a fragment the error line must contain
    # validate answers a broken file with a report (``path:line:column: message`` lines), not an error.
    report: bool = False

    @property
    def id(self) -> str:
        return f"{self.category}: {self.what}"


# --- helpers for the cases ----------------------------------------------------------------------------


def config(text: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        (folder / ".devcontainer").mkdir(parents=True, exist_ok=True)
        (folder / ".devcontainer" / "devcontainer.json").write_text(text)

    return write


def docker_config(text: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        config('{"image": "debian:bookworm"}\n')(folder)
        (folder / "docker-config").mkdir()
        (folder / "docker-config" / "config.json").write_text(text)

    return write


def both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def run(folder: Path) -> None:
        for step in steps:
            step(folder)

    return run


def in_devcontainer(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    def run(folder: Path) -> None:
        (folder / ".devcontainer").mkdir(parents=True, exist_ok=True)
        make(folder / ".devcontainer" / name)

    return run


def dead_engine(where: Where) -> dict[str, str]:
    # A closed loopback port: the engine "is not running".
    return {"DOCKER_HOST": f"tcp://127.0.0.1:{_closed_port()}"}


def with_docker_config(where: Where) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(where.folder / "docker-config"), "DOCKER_HOST": ""}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DRY = ["--dry-run", "--platform", "linux/amd64"]
PLAIN = '{"image": "debian:bookworm"}\n'


def init(*extra: str) -> Callable[[Where], list[str]]:
    return lambda where: ["init", str(where.folder), *extra]


def validate(*extra: str) -> Callable[[Where], list[str]]:
    return lambda where: ["validate", str(where.folder), "--platform", "linux/amd64", *extra]


def reg(command: str, repository: str, *extra: str) -> Callable[[Where], list[str]]:
    return lambda where: ["manifest", command, f"{where.registry}/{repository}:v1", *extra]


def init_image(repository: str) -> Callable[[Where], list[str]]:
    return lambda where: [
        "init",
        str(where.folder),
        "--dry-run",
        "--image",
        f"{where.registry}/{repository}:v1",
    ]


CASES: tuple[Case, ...] = (
    # --- the command line ------------------------------------------------------------------------
    Case("command line", "--platform linux/s390x", init("--platform", "linux/s390x", "--dry-run"), USAGE),
    Case(
        "command line", "--platform not/a/platform/at/all", init("--platform", "x/y/z/w", "--dry-run"), USAGE
    ),
    Case("command line", "--image with upper case", init("--image", "Nix/NIX:Latest", *DRY), USAGE),
    Case("command line", "--image ''", init("--image", "", *DRY), USAGE),
    Case("command line", "--image with a space", init("--image", "nixos/nix latest", *DRY), USAGE),
    Case("command line", "--image with a bad digest", init("--image", "nixos/nix@sha256:xyz", *DRY), USAGE),
    Case(
        "command line",
        "--trusted-user 'root\\nsandbox = true' (a second nix.conf setting)",
        init("--trusted-user", "root\nsandbox = true", "--image", "nixos/nix", *DRY),
        USAGE,
        says="cannot go into nix.conf",
    ),
    Case(
        "command line",
        "--extra-platform 'not a system'",
        init("--extra-platform", "not a system", "--image", "nixos/nix", *DRY),
        USAGE,
    ),
    Case(
        "command line",
        "--extra-platform aarch64 (no OS)",
        init("--extra-platform", "aarch64", "--image", "nixos/nix", *DRY),
        USAGE,
        says="not a Nix system",
    ),
    Case(
        "command line",
        "--substituter with '#' (a comment in nix.conf)",
        init("--substituter", "https://cache.example#x", "--image", "nixos/nix", *DRY),
        USAGE,
    ),
    Case(
        "command line",
        "--config outside the project",
        init("--merge", "--config", "../elsewhere.json", "--image", "nixos/nix", *DRY),
        USAGE,
        setup=config(PLAIN),
    ),
    Case("command line", "--template that does not exist", init("--template", "nope", *DRY), USAGE),
    Case(
        "command line", "bootstrap --system not-a-system", lambda w: ["bootstrap", "--system", "nope"], USAGE
    ),
    Case(
        "command line",
        "manifest create with a malformed target",
        lambda w: ["manifest", "create", "UPPER/x:1", "a/b:1"],
        USAGE,
    ),
    Case("command line", "manifest inspect ''", lambda w: ["manifest", "inspect", ""], USAGE),
    Case(
        "command line",
        "bootstrap --remote-builder that is not ssh",
        lambda w: ["bootstrap", "--remote-builder", "http://builder"],
        USAGE,
    ),
    Case(
        "command line",
        "bootstrap --remote-host-key that is no key",
        lambda w: ["bootstrap", "--remote-builder", "ssh-ng://root@b", "--remote-host-key", "not a key"],
        USAGE,
    ),
    Case(
        "command line",
        "ci github --schedule that is not cron",
        lambda w: ["ci", "github", str(w.folder), "--schedule", "every day", "--devnix-repo", "https://x/y"],
        USAGE,
    ),
    Case(
        "command line",
        "publish a kind that is not features or templates",
        lambda w: ["publish", "widgets", str(w.folder), "--namespace", "o/r"],
        USAGE,
    ),
    # --- the user's files -------------------------------------------------------------------------
    Case(
        "files",
        "devcontainer.json exists, no --force",
        init("--image", "nixos/nix", "--platform", "linux/amd64"),
        EXISTS,
        config(PLAIN),
    ),
    Case(
        "files",
        "devcontainer.json is a dangling symlink",
        init("--image", "nixos/nix", "--platform", "linux/amd64"),
        EXISTS,
        in_devcontainer("devcontainer.json", lambda p: p.symlink_to(p.parent / "gone.json")),
    ),
    Case(
        "files",
        "devcontainer.json is a folder (--force)",
        init("--image", "nixos/nix", "--platform", "linux/amd64", "--force"),
        FILES,
        in_devcontainer("devcontainer.json", lambda p: p.mkdir()),
    ),
    Case(
        "files",
        "devcontainer.json is a FIFO (validate must not hang)",
        lambda w: [
            "validate",
            str(w.folder / ".devcontainer" / "devcontainer.json"),
            "--platform",
            "linux/amd64",
        ],
        FILES,
        in_devcontainer("devcontainer.json", lambda p: os.mkfifo(p)),
    ),
    Case(
        "files",
        "--merge when nix.conf is a folder",
        init("--merge", "--image", "nixos/nix", "--platform", "linux/amd64"),
        FILES,
        both(config(PLAIN), in_devcontainer("nix.conf", lambda p: p.mkdir())),
    ),
    Case(
        "files",
        "--merge into a config that is not JSONC",
        init("--merge", "--image", "nixos/nix", *DRY),
        USAGE,
        config('{"image": "debian", oops}\n'),
    ),
    Case(
        "files",
        "--merge into a config whose top level is a list",
        init("--merge", "--image", "nixos/nix", *DRY),
        USAGE,
        config('["image"]\n'),
    ),
    Case(
        "files",
        "--merge when .devcontainer/Dockerfile is someone else's",
        init("--merge", "--image", "nixos/nix", "--platform", "linux/amd64"),
        USAGE,
        both(config(PLAIN), in_devcontainer("Dockerfile", lambda p: p.write_text("FROM debian\nRUN true\n"))),
    ),
    Case(
        "files",
        "--merge into a file that is not UTF-8",
        init("--merge", "--image", "nixos/nix", *DRY),
        USAGE,
        in_devcontainer("devcontainer.json", lambda p: p.write_bytes(b'{"image": "\xff\xfe"}')),
    ),
    Case(
        "files",
        "--merge into 100000 nested brackets",
        init("--merge", "--image", "nixos/nix", *DRY),
        USAGE,
        config("[" * 100_000),
    ),
    Case(
        "files",
        "validate a path that does not exist",
        lambda w: ["validate", str(w.folder / "nowhere" / "devcontainer.json"), "--platform", "linux/amd64"],
        FILES,
    ),
    Case(
        "files",
        "bootstrap --flake pointing at a folder without flake.nix",
        lambda w: ["bootstrap", "--flake", f"{w.folder}#image", "--system", "aarch64-linux"],
        FILES,
    ),
    Case(
        "files",
        "validate a file that is not UTF-8",
        validate(),
        USAGE,
        in_devcontainer("devcontainer.json", lambda p: p.write_bytes(b'{"image": "\xff\xfe"}')),
        report=True,
    ),
    Case("files", "validate 100000 nested brackets", validate(), USAGE, config("[" * 100_000), report=True),
    Case("files", "validate an empty file", validate(), USAGE, config(""), report=True),
    Case("files", "validate two top-level values", validate(), USAGE, config("{} {}\n"), report=True),
    Case(
        "files",
        'validate "runArgs": 5 (against the schema)',
        validate("--schema-dir", str(SCHEMAS)),
        1,
        config('{"image": "nixos/nix", "runArgs": 5}\n'),
        report=True,
    ),
    # --- the environment: Docker engine and Docker config -------------------------------------------
    Case(
        "environment",
        "DOCKER_HOST='tcp://[::1' (doctor)",
        lambda w: ["doctor", str(w.folder)],
        ENGINE,
        config(PLAIN),
        lambda w: {"DOCKER_HOST": "tcp://[::1"},
    ),
    Case(
        "environment",
        "DOCKER_HOST='ftp://host' (doctor)",
        lambda w: ["doctor", str(w.folder)],
        ENGINE,
        config(PLAIN),
        lambda w: {"DOCKER_HOST": "ftp://host"},
    ),
    Case(
        "environment",
        "DOCKER_HOST port 99999999 (doctor)",
        lambda w: ["doctor", str(w.folder)],
        ENGINE,
        config(PLAIN),
        lambda w: {"DOCKER_HOST": "tcp://[::1]:99999999"},
    ),
    Case(
        "environment",
        "no engine listening (doctor)",
        lambda w: ["doctor", str(w.folder)],
        ENGINE,
        config(PLAIN),
        dead_engine,
    ),
    Case(
        "environment",
        "no engine listening (bootstrap)",
        lambda w: ["bootstrap", "--system", "aarch64-linux"],
        ENGINE,
        env=dead_engine,
    ),
    Case(
        "environment",
        'config.json "currentContext": 5 (doctor)',
        lambda w: ["doctor", str(w.folder)],
        ENGINE,
        docker_config('{"currentContext": 5}'),
        with_docker_config,
    ),
    Case(
        "environment",
        "config.json names a context that does not exist (doctor)",
        lambda w: ["doctor", str(w.folder)],
        ENGINE,
        docker_config('{"currentContext": "ghost"}'),
        with_docker_config,
    ),
    Case(
        "environment",
        "config.json is not JSON (doctor)",
        lambda w: ["doctor", str(w.folder)],
        ENGINE,
        docker_config("{not json"),
        with_docker_config,
    ),
    Case(
        "environment",
        "DOCKER_CONTEXT names a context that does not exist (doctor)",
        lambda w: ["doctor", str(w.folder)],
        ENGINE,
        config(PLAIN),
        lambda w: {"DOCKER_CONTEXT": "ghost", "DOCKER_HOST": ""},
    ),
    # --- registry answers ---------------------------------------------------------------------------
    Case("registry", "200 with a body that is not JSON", reg("inspect", "notjson"), REGISTRY),
    Case("registry", "an index whose manifests are not objects", reg("inspect", "badindex"), REGISTRY),
    Case(
        "registry",
        "a manifest that does not match the digest asked for",
        lambda w: ["manifest", "inspect", f"{w.registry}/wrongdigest@sha256:{'0' * 64}"],
        REGISTRY,
    ),
    Case("registry", "HTTP 500 on every request", reg("inspect", "error500"), REGISTRY),
    Case("registry", "401 without a WWW-Authenticate challenge", reg("inspect", "nochallenge"), REGISTRY),
    Case("registry", "a token endpoint answering HTML", reg("inspect", "badtoken"), REGISTRY),
    Case("registry", "a redirect loop", reg("inspect", "loop"), REGISTRY),
    Case("registry", "404 for the tag", reg("inspect", "missing"), REGISTRY),
    Case("registry", "init --image from a registry answering garbage", init_image("notjson"), REGISTRY),
    Case(
        "registry",
        "manifest create from a source whose index is malformed",
        lambda w: ["manifest", "create", f"{w.registry}/out:v1", f"{w.registry}/badindex:v1"],
        REGISTRY,
    ),
)


# --- the hostile registry -----------------------------------------------------------------------------


class _Registry(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["v2"] or parts == ["v2", ""]:
            return self._send(200, b"{}")
        if parts[0] == "token":
            return self._send(200, b"<html>sign in</html>", {"Content-Type": "text/html"})
        repository = parts[1] if len(parts) > 1 else ""
        index = "application/vnd.oci.image.index.v1+json"
        if repository == "notjson":
            return self._send(200, b"<html>not a manifest</html>", {"Content-Type": index})
        if repository == "badindex":
            body = json.dumps({"schemaVersion": 2, "mediaType": index, "manifests": [5, "x", None]}).encode()
            return self._send(200, body, {"Content-Type": index, "Docker-Content-Digest": _digest(body)})
        if repository == "wrongdigest":
            body = json.dumps({"schemaVersion": 2, "mediaType": index, "manifests": []}).encode()
            return self._send(200, body, {"Content-Type": index})
        if repository == "error500":
            return self._send(500, b"internal error")
        if repository == "nochallenge":
            return self._send(401, b"")
        if repository == "badtoken":
            host = self.headers.get("Host", "")
            challenge = f'Bearer realm="http://{host}/token",service="hostile"'
            return self._send(401, b"", {"WWW-Authenticate": challenge})
        if repository == "loop":
            return self._send(307, b"", {"Location": self.path})
        return self._send(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}')


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


@contextmanager
def hostile_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- running a case -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    result: Result
    changed: list[str] = field(default_factory=list)


def snapshot(folder: Path) -> dict[str, str]:
    seen: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            seen[key] = "-> " + os.readlink(path)
        elif path.is_file():
            seen[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            seen[key] = "folder" if path.is_dir() else "special"
    return seen


def run(case: Case, folder: Path, registry: str) -> Outcome:
    from devnix.cli import app

    folder.mkdir(parents=True, exist_ok=True)
    case.setup(folder)
    where = Where(folder, registry)
    before = snapshot(folder)
    env = {"DOCKER_CONFIG": str(folder.parent / "empty-docker-config"), **case.env(where)}
    result = CliRunner().invoke(app, case.argv(where), env=env)
    after = snapshot(folder)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return Outcome(result, changed)


def problems(case: Case, outcome: Outcome) -> list[str]:
    """Everything wrong with how devnix answered ``case`` (empty: it answered as it must)."""
    result = outcome.result
    found: list[str] = []
    if case.report:
        if not REPORT_LINE.match(result.stdout):
            found.append(f"no path:line:column report line: {result.stdout[:300]!r}")
        if result.stderr.strip():
            found.append(f"stderr is not empty: {result.stderr[:300]!r}")
        return found + _common(case, outcome)
    lines = result.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("devnix: error: ")]
    if len(errors) != 1:
        found.append(f"{len(errors)} 'devnix: error:' lines in stderr: {result.stderr[-400:]!r}")
    elif errors[0] + 1 >= len(lines) or not lines[errors[0] + 1].startswith("hint: "):
        found.append(f"no hint after the error line: {result.stderr[-400:]!r}")
    elif case.says and case.says not in lines[errors[0]]:
        found.append(f"the error line does not say {case.says!r}: {lines[errors[0]]!r}")
    return found + _common(case, outcome)


def _common(case: Case, outcome: Outcome) -> list[str]:
    result, found = outcome.result, []
    if not isinstance(result.exception, SystemExit):
        found.append(f"raised {type(result.exception).__name__}: {result.exception}")
    if result.exit_code != case.exit_code:
        found.append(f"exit {result.exit_code}, wanted {case.exit_code}")
    if "Traceback" in result.stderr or "Traceback" in result.stdout:
        found.append("a traceback was printed")
    if outcome.changed:
        found.append(f"files changed: {outcome.changed}")
    return found


def main() -> int:
    """Print the catalog as a Markdown table, with the exit code and error line each case got."""
    failures = 0
    print("| category | hostile input | exit | devnix says |")
    print("|---|---|---|---|")
    with hostile_registry() as registry, tempfile.TemporaryDirectory() as tmp:
        for number, case in enumerate(CASES):
            outcome = run(case, Path(tmp) / f"case{number}", registry)
            wrong = problems(case, outcome)
            failures += bool(wrong)
            result = outcome.result
            if case.report:
                line = result.stdout.splitlines()[0].split(": ", 1)[-1] if result.stdout else ""
            else:
                line = next((x for x in result.stderr.splitlines() if x.startswith("devnix: error: ")), "")
            said = line.removeprefix("devnix: error: ").replace("|", "\\|")[:110]
            mark = "" if not wrong else f" **WRONG: {'; '.join(wrong)}**"
            what = case.what.replace("|", "/")
            print(f"| {case.category} | {what} | {outcome.result.exit_code} | {said}{mark} |")
    print(f"\n{len(CASES)} hostile inputs, {failures} answered wrongly", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
