"""devnix.transport against real servers on loopback: retries, redirects, proxies, TLS, typed errors."""

from __future__ import annotations

import socket
import threading
import time
from email.utils import formatdate
from itertools import pairwise
from pathlib import Path

import pytest

from devnix import transport
from devnix.errors import RegistryError
from devnix.transport import (
    ConnectFailedError,
    HTTPStatusError,
    NotFoundError,
    Origin,
    ProtocolError,
    ProxyError,
    RequestTimeoutError,
    TLSError,
    Transport,
)
from tests.http_fixtures import RawServer, Seen, closed_port, proxy, self_signed, serving

OK: tuple[int, dict[str, str], bytes] = (200, {}, b"ok")


def scripted(*answers: tuple[int, dict[str, str], bytes]):  # type: ignore[no-untyped-def]
    """Answers in order; the last one repeats."""
    queue = list(answers)

    def respond(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def gaps(seen: list[Seen]) -> list[float]:
    return [later.at - earlier.at for earlier, later in pairwise(seen)]


# --- retries ------------------------------------------------------------------------------------------


def test_a_503_is_retried_with_growing_waits_until_a_200() -> None:
    with serving(scripted((503, {}, b""), (503, {}, b""), OK)) as server, Transport(backoff=0.1) as client:
        response = client.request("GET", server.url("/v2/"))
    assert (response.status, response.body, response.attempts) == (200, b"ok", 3)
    assert [seen.method for seen in server.seen] == ["GET"] * 3
    first, second = gaps(server.seen)
    assert 0.1 <= first < 0.6 and 0.2 <= second < 0.8  # 0.1 s, then doubled


def test_a_429_waits_as_long_as_retry_after_says() -> None:
    with serving(scripted((429, {"Retry-After": "1"}, b""), OK)) as server, Transport(backoff=0.01) as client:
        response = client.request("GET", server.url("/v2/x/manifests/latest"))
    assert response.status == 200 and len(server.seen) == 2
    (waited,) = gaps(server.seen)
    assert 1.0 <= waited < 2.0  # honoured (not the 0.01 s backoff), and no longer than asked


def test_a_retry_after_as_an_http_date_is_honoured() -> None:
    when = formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1 to 2 s from now
    with serving(scripted((503, {"Retry-After": when}, b""), OK)) as server:
        assert Transport(backoff=0.01).request("GET", server.url()).status == 200
    (waited,) = gaps(server.seen)
    assert 0.5 <= waited < 3.0


def test_a_retry_after_beyond_the_cap_is_not_waited_for() -> None:
    answers: list[transport.Response] = []
    with serving(scripted((429, {"Retry-After": "3600"}, b""), OK)) as server:
        asking = threading.Thread(
            target=lambda: answers.append(Transport(max_wait=0.5).request("GET", server.url())), daemon=True
        )
        asking.start()
        asking.join(timeout=1.0)  # a client that waited would still be asleep
    assert len(answers) == 1, "the client waited for the hour the server asked"
    (response,) = answers
    assert response.status == 429 and len(server.seen) == 1
    with pytest.raises(HTTPStatusError) as caught:
        transport.raise_for_status(response, "reading the manifest")
    assert caught.value.status == 429
    assert "asks to wait 3600 s" in caught.value.message


def test_a_404_is_not_retried() -> None:
    with serving(scripted((404, {}, b"{}"))) as server, Transport(backoff=0.01) as client:
        response = client.request("GET", server.url())
    assert response.status == 404 and len(server.seen) == 1
    with pytest.raises(NotFoundError):
        transport.raise_for_status(response, "x")


def test_it_gives_up_after_the_retries_with_a_clear_error() -> None:
    with serving(scripted((503, {}, b""))) as server, Transport(retries=3, backoff=0.01) as client:
        response = client.request("GET", server.url())
    assert len(server.seen) == 4 and response.attempts == 4
    with pytest.raises(HTTPStatusError) as caught:
        transport.raise_for_status(response, "reading the manifest of r/x:1")
    assert caught.value.message == (
        "reading the manifest of r/x:1 failed with HTTP 503 (gave up after 4 attempts)"
    )
    assert isinstance(caught.value, RegistryError) and caught.value.exit_code == 4


def test_a_post_is_not_repeated_on_a_503() -> None:
    with serving(scripted((503, {}, b""), OK)) as server, Transport(backoff=0.01) as client:
        response = client.request("POST", server.url("/v2/x/blobs/uploads/"), body=b"")
    assert response.status == 503 and len(server.seen) == 1


def test_a_501_is_not_retried() -> None:
    with serving(scripted((501, {}, b""), OK)) as server, Transport(backoff=0.01) as client:
        assert client.request("GET", server.url()).status == 501
    assert len(server.seen) == 1


def _reset_first(times: int) -> RawServer:
    """Drops the first ``times`` connections after reading the request, then answers 200."""

    def serve(conn: socket.socket, index: int) -> None:
        conn.recv(65536)
        if index < times:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return  # closed with RST: "connection reset by peer"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    return RawServer(serve)


def test_a_dropped_connection_is_retried_for_a_get() -> None:
    server = _reset_first(2)
    try:
        with Transport(backoff=0.01) as client:
            response = client.request("GET", f"http://127.0.0.1:{server.port}/")
    finally:
        server.close()
    assert response.body == b"ok" and response.attempts == 3 and server.connections == 3


def test_a_dropped_connection_is_not_retried_for_a_post_that_may_have_arrived() -> None:
    server = _reset_first(1)
    try:
        with Transport(backoff=0.01) as client, pytest.raises(ConnectFailedError):
            client.request("POST", f"http://127.0.0.1:{server.port}/", body=b"x")
    finally:
        server.close()
    assert server.connections == 1


def test_a_kept_alive_connection_the_server_closed_is_replaced_without_counting_a_retry() -> None:
    def serve(conn: socket.socket, index: int) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # keep-alive, then gone

    server = RawServer(serve)
    try:
        with Transport(retries=0) as client:
            first = client.request("GET", f"http://127.0.0.1:{server.port}/")
            time.sleep(0.1)  # the server has closed the idle connection by now
            second = client.request("POST", f"http://127.0.0.1:{server.port}/", body=b"x")
    finally:
        server.close()
    assert (first.body, second.body, second.attempts) == (b"ok", b"ok", 1)
    assert server.connections == 2


def test_a_refused_connection_is_retried_then_a_typed_error_names_the_attempts() -> None:
    port = closed_port()
    client = Transport(label="registry example", hint="the hint", backoff=0.05, retries=2)
    started = time.monotonic()
    with pytest.raises(ConnectFailedError) as caught:
        client.request("POST", f"http://127.0.0.1:{port}/v2/", body=b"")  # never sent: safe to repeat
    assert time.monotonic() - started >= 0.15  # 0.05 + 0.1 of backoff
    assert caught.value.message.startswith(f"cannot reach registry example (http://127.0.0.1:{port}): ")
    assert caught.value.message.endswith("(after 3 attempts)")
    assert caught.value.hint == "the hint"


def test_a_name_that_does_not_resolve_is_not_retried() -> None:
    started = time.monotonic()
    with pytest.raises(ConnectFailedError) as caught:
        Transport(backoff=1.0).request("GET", "http://registry.invalid/v2/")
    assert time.monotonic() - started < 1.0
    assert "cannot resolve registry.invalid" in caught.value.message


def test_a_server_that_never_answers_times_out_once() -> None:
    server = RawServer(lambda conn, index: time.sleep(2))
    try:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            Transport(timeout=0.3, backoff=0.01).request("GET", f"http://127.0.0.1:{server.port}/")
        assert time.monotonic() - started < 1.0
    finally:
        server.close()
    assert server.connections == 1


def test_an_answer_that_is_not_http_is_a_protocol_error() -> None:
    server = RawServer(lambda conn, index: (conn.recv(65536), conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")))
    try:
        with pytest.raises(ProtocolError) as caught:
            Transport(backoff=0.01).request("GET", f"http://127.0.0.1:{server.port}/")
    finally:
        server.close()
    assert "\n" not in caught.value.message


def test_an_answer_larger_than_the_limit_is_refused() -> None:
    with serving(scripted((200, {}, b"x" * 5000))) as server, pytest.raises(ProtocolError) as caught:
        Transport().request("GET", server.url(), limit=4096)
    assert "larger than 4096 bytes" in caught.value.message


def test_a_kept_alive_connection_is_reused() -> None:
    with serving(scripted(OK)) as server, Transport() as client:
        client.request("GET", server.url("/a"))
        client.request("GET", server.url("/b"))
        ports = {seen.headers.get("host") for seen in server.seen}
    assert len(server.seen) == 2 and ports == {f"127.0.0.1:{server.port}"}
    assert len(client._idle) == 0  # closed with the client


# --- redirects and where Authorization goes -------------------------------------------------------------

AUTH = {"Authorization": "Bearer secret-token"}


def test_a_redirect_to_another_host_drops_authorization() -> None:
    # 127.0.0.1 and localhost are different hosts for RFC 6454, even though one resolves to the other.
    with serving(scripted((200, {}, b"blob"))) as storage:
        moved = (307, {"Location": storage.url("/blob", host="localhost")}, b"")
        with serving(scripted(moved)) as registry, Transport() as client:
            response = client.request("GET", registry.url("/v2/x/blobs/sha256:1"), headers=AUTH)
    assert response.body == b"blob" and response.url == storage.url("/blob", host="localhost")
    assert registry.seen[0].headers["authorization"] == "Bearer secret-token"
    assert "authorization" not in storage.seen[0].headers


def test_a_redirect_to_another_port_of_the_same_host_drops_authorization() -> None:
    with (
        serving(scripted((200, {}, b"blob"))) as storage,
        serving(scripted((302, {"Location": storage.url("/blob")}, b""))) as registry,
    ):
        Transport().request("GET", registry.url("/v2/"), headers=AUTH)
    assert "authorization" not in storage.seen[0].headers


def test_a_redirect_within_the_origin_keeps_authorization() -> None:
    def respond(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        return (301, {"Location": "/v2/moved"}, b"") if seen.path == "/v2/old" else OK

    with serving(respond) as registry, Transport() as client:
        assert client.request("GET", registry.url("/v2/old"), headers=AUTH).body == b"ok"
    assert [seen.path for seen in registry.seen] == ["/v2/old", "/v2/moved"]
    assert all(seen.headers["authorization"] == "Bearer secret-token" for seen in registry.seen)


def test_authorization_once_dropped_stays_dropped_when_a_redirect_comes_back() -> None:
    with serving(scripted(OK)) as registry:
        back = registry.url("/v2/back")
        with serving(scripted((307, {"Location": back}, b""))) as other:

            def respond(seen: Seen) -> tuple[int, dict[str, str], bytes]:
                return OK if seen.path == "/v2/back" else (307, {"Location": other.url("/x")}, b"")

            registry.respond = respond
            with Transport() as client:
                assert client.request("GET", registry.url("/v2/start"), headers=AUTH).body == b"ok"
    assert [seen.path for seen in registry.seen] == ["/v2/start", "/v2/back"]
    assert "authorization" not in registry.seen[1].headers


def test_a_303_turns_a_put_into_a_get_without_its_body() -> None:
    def respond(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        return (303, {"Location": "/done"}, b"") if seen.path == "/upload" else OK

    with serving(respond) as server, Transport() as client:
        headers = {"Content-Type": "application/octet-stream"}
        client.request("PUT", server.url("/upload"), headers=headers, body=b"data")
    sent = [(s.method, s.path, s.body) for s in server.seen]
    assert sent == [("PUT", "/upload", b"data"), ("GET", "/done", b"")]
    assert "content-type" not in server.seen[1].headers


def test_a_redirect_is_not_followed_when_asked_not_to() -> None:
    with serving(scripted((307, {"Location": "/elsewhere"}, b""))) as server, Transport() as client:
        response = client.request("HEAD", server.url("/v2/x/blobs/sha256:1"), follow=False)
    assert response.status == 307 and len(server.seen) == 1


def test_redirects_that_loop_end_in_a_typed_error() -> None:
    loop = scripted((302, {"Location": "/again"}, b""))
    with serving(loop) as server, pytest.raises(ProtocolError) as caught:
        Transport().request("GET", server.url())
    assert "redirects more than 5 times" in caught.value.message
    assert len(server.seen) == 6


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://example.org/x", "http://[::1/x", "http://h:port/", "//", "/é"]
)
def test_a_redirect_to_something_that_is_not_http_is_refused(location: str) -> None:
    with serving(scripted((302, {"Location": location}, b""))) as server, pytest.raises(ProtocolError):
        Transport().request("GET", server.url())


def test_origins_follow_rfc_6454() -> None:
    assert Origin.of("https://Registry.Example/v2/") == Origin.of("https://registry.example:443/x")
    assert Origin.of("http://registry.example/") != Origin.of("https://registry.example/")
    assert Origin.of("http://127.0.0.1:5000/") != Origin.of("http://localhost:5000/")
    assert Origin.of("http://[::1]:5000/").netloc == "[::1]:5000"


# --- proxies ------------------------------------------------------------------------------------------


def test_http_proxy_carries_a_plain_http_request_in_absolute_form(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(scripted(OK)) as origin, proxy({f"registry.invalid:{origin.port}": origin.port}) as forward:
        monkeypatch.setenv("HTTP_PROXY", forward.url)
        with Transport() as client:
            response = client.request("GET", f"http://registry.invalid:{origin.port}/v2/", headers=AUTH)
    assert response.body == b"ok"
    assert forward.lines == [f"GET http://registry.invalid:{origin.port}/v2/ HTTP/1.1"]
    assert origin.seen[0].headers["host"] == f"registry.invalid:{origin.port}"


def test_https_proxy_tunnels_with_connect_and_tls_is_checked_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, tls = self_signed(tmp_path, "registry.invalid")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with serving(scripted(OK), tls=tls) as origin, proxy({"registry.invalid:443": origin.port}) as forward:
        monkeypatch.setenv("https_proxy", f"http://user:p%40ss@127.0.0.1:{forward.port}")
        with Transport() as client:
            response = client.request("GET", "https://registry.invalid/v2/", headers=AUTH)
    assert response.body == b"ok"
    assert forward.lines == ["CONNECT registry.invalid:443 HTTP/1.1"]
    assert forward.headers[0]["proxy-authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss
    # Inside the tunnel the origin gets the request, its credentials, and no proxy credentials.
    assert origin.seen[0].headers["authorization"] == "Bearer secret-token"
    assert "proxy-authorization" not in origin.seen[0].headers


def test_no_proxy_bypasses_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with proxy({"registry.invalid:443": closed_port()}) as forward:
        monkeypatch.setenv("HTTPS_PROXY", forward.url)
        monkeypatch.setenv("NO_PROXY", "example.org,.invalid")
        with pytest.raises(ConnectFailedError) as caught:
            Transport().request("GET", "https://registry.invalid/v2/")
    assert forward.lines == []  # went straight to the name, which resolves nowhere
    assert "cannot resolve registry.invalid" in caught.value.message


def test_loopback_never_goes_through_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(scripted(OK)) as origin, proxy({}) as forward:
        monkeypatch.setenv("HTTP_PROXY", forward.url)
        assert Transport().request("GET", origin.url()).body == b"ok"
        assert Transport().request("GET", origin.url(host="localhost")).body == b"ok"
    assert forward.lines == []


def test_a_proxy_that_refuses_the_tunnel_is_a_proxy_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with proxy({}, refuse=407) as forward:
        monkeypatch.setenv("HTTPS_PROXY", forward.url)
        with pytest.raises(ProxyError) as caught:
            Transport(backoff=0.01).request("GET", "https://registry.invalid/v2/")
    assert len(forward.lines) == 1  # a refusal is not retried
    assert "refused a tunnel to https://registry.invalid" in caught.value.message
    assert "HTTP 407" in caught.value.message
    assert caught.value.hint is not None and "HTTPS_PROXY" in caught.value.hint


def test_a_proxy_that_is_not_there_is_a_proxy_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{closed_port()}")  # no scheme: http:// as urllib reads it
    with pytest.raises(ProxyError) as caught:
        Transport(backoff=0.01).request("GET", "https://registry.invalid/v2/")
    assert "through the proxy http://127.0.0.1:" in caught.value.message
    assert "(after 3 attempts)" in caught.value.message  # refused before anything was sent: retried


def test_a_socks_proxy_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:hunter2@proxy.example:1080")
    with pytest.raises(ProxyError) as caught:
        Transport().request("GET", "https://registry.invalid/v2/")
    assert "hunter2" not in caught.value.message
    assert caught.value.message == (
        "HTTPS_PROXY is 'socks5://user:***@proxy.example:1080': devnix speaks to http:// proxies only"
    )


# --- TLS ------------------------------------------------------------------------------------------------


def test_an_untrusted_certificate_is_a_tls_error_and_insecure_skips_the_check(tmp_path: Path) -> None:
    _, tls = self_signed(tmp_path, "registry.invalid")
    with serving(scripted(OK), tls=tls) as origin:
        with pytest.raises(TLSError) as caught:
            Transport(backoff=0.01).request("GET", origin.url())
        assert "SSL_CERT_FILE" in (caught.value.hint or "")
        insecure = frozenset({Origin.of(origin.url())})
        assert Transport(insecure=insecure).request("GET", origin.url()).body == b"ok"


def test_retry_after_values() -> None:
    assert transport.retry_after("120") == 120.0
    assert transport.retry_after(" 0 ") == 0.0
    assert transport.retry_after("-5") == 0.0
    assert transport.retry_after(formatdate(0, usegmt=True)) == 0.0  # a date in the past: now
    for bad in (None, "", "soon", "inf", "nan", "Wed, 99 Foo 2015"):
        assert transport.retry_after(bad) is None
