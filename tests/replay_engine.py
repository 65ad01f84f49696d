"""A stand-in Docker engine on a unix socket that replays recorded API answers.

For engines that cannot run here (Docker Desktop on an Apple Silicon Mac): the code under test talks to
it through the same socket path it would use for the real engine.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).parent / "fixtures" / "recorded"


def recorded(name: str) -> dict[str, Any]:
    answer = json.loads((RECORDED / name).read_text())
    # "_provenance" (captured or assembled) and "_source" describe the fixture; the engine never says them.
    return {key: value for key, value in answer.items() if not key.startswith("_")}


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    answers: dict[str, Any]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def address_string(self) -> str:  # unix sockets have no client address
        return "replay"

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        for prefix in ("/v1.41", "/v1.43"):
            path = path.removeprefix(prefix)
        if path in self.server.answers:
            body = json.dumps(self.server.answers[path]).encode()
            self.send_response(200)
        else:
            body = json.dumps({"message": f"No such object: {path}"}).encode()
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def replay_engine(socket_path: Path, answers: dict[str, Any]) -> Iterator[str]:
    """Serve ``answers`` ({api path: JSON}) on ``socket_path``; yields the DOCKER_HOST value."""
    server = _Server(str(socket_path), _Handler)
    server.answers = answers
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"unix://{socket_path}"
    finally:
        server.shutdown()
        server.server_close()
        socket_path.unlink(missing_ok=True)
