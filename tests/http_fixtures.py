"""Real HTTP servers for the edge's tests: a scripted origin server, a forward proxy, a TLS certificate.

Each runs in a thread of the test on loopback; nothing in devnix is replaced. The servers record what
reached them (request lines, headers, times), which is what the tests assert on.
"""

from __future__ import annotations

import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    """One request as it reached a server."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float = field(default_factory=time.monotonic)


class Server:
    """A threaded HTTP/1.1 server whose answers come from ``respond`` (keep-alive, as registries do)."""

    def __init__(
        self,
        respond: Callable[[Seen], Answer],
        *,
        tls: ssl.SSLContext | None = None,
        bind: str = "127.0.0.1",
    ) -> None:
        self.respond = respond
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                owner.seen.append(seen)
                status, headers, answer = owner.respond(seen)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer((bind, 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def serving(respond: Callable[[Seen], Answer], **kwargs: Any) -> Iterator[Server]:
    server = Server(respond, **kwargs)
    try:
        yield server
    finally:
        server.close()


class ForwardProxy:
    """A small forward proxy: ``CONNECT`` tunnels and absolute-form requests, every request line recorded.

    Any host it is asked for is reached at ``upstream`` (a port on loopback), so names that resolve
    nowhere (``registry.invalid``) prove the request went through here. ``refuse`` makes it answer
    ``CONNECT`` with that status instead.
    """

    def __init__(self, upstream: dict[str, int], *, refuse: int | None = None) -> None:
        self.upstream = upstream  # "host:port" asked for -> loopback port
        self.refuse = refuse
        self.lines: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            first, *header_lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
            self.lines.append(first)
            self.headers.append(headers)
            method, target, _version = first.split(" ", 2)
            if method == "CONNECT":
                if self.refuse is not None:
                    client.sendall(f"HTTP/1.1 {self.refuse} Refused\r\nContent-Length: 0\r\n\r\n".encode())
                    return
                upstream = socket.create_connection(("127.0.0.1", self.upstream[target]))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                forward = rest
            else:
                # Absolute form: http://host:port/path -> origin form on a connection to the upstream.
                authority = target.split("://", 1)[1].split("/", 1)[0]
                path = "/" + target.split("://", 1)[1].partition("/")[2]
                upstream = socket.create_connection(("127.0.0.1", self.upstream[authority]))
                kept = [h for h in header_lines if not h.lower().startswith("proxy-authorization:")]
                forward = "\r\n".join([f"{method} {path} {_version}", *kept]).encode("latin-1")
                forward += b"\r\n\r\n" + rest
            with upstream:
                if forward:
                    upstream.sendall(forward)
                _pipe(client, upstream)

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=2)
        self.sock.close()


def _pipe(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [one, other]
    while True:
        readable, _, _ = select.select(sockets, [], [], 5)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (other if sock is one else one).sendall(data)


@contextmanager
def proxy(upstream: dict[str, int], **kwargs: Any) -> Iterator[ForwardProxy]:
    running = ForwardProxy(upstream, **kwargs)
    try:
        yield running
    finally:
        running.close()


def self_signed(folder: Path, name: str) -> tuple[Path, ssl.SSLContext]:
    """A certificate for ``name`` (made by the openssl CLI) and a server context that presents it."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl CLI makes the test certificate (Debian: apt-get install openssl)"
    cert, key = folder / "cert.pem", folder / "key.pem"
    key_type = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    names = ["-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"]
    subprocess.run([openssl, "req", "-x509", *key_type, *files, *names], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return cert, context


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RawServer:
    """A TCP server that runs ``serve(conn, index)`` for each connection: for answers no HTTP server
    would send (a reset, silence, garbage)."""

    def __init__(self, serve: Callable[[socket.socket, int], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._serve = serve
        self._stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            index = self.connections
            self.connections += 1
            threading.Thread(target=self._run, args=(conn, index), daemon=True).start()

    def _run(self, conn: socket.socket, index: int) -> None:
        with conn:
            self._serve(conn, index)

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=2)
        self.sock.close()
