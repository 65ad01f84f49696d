"""Edge: devnix's one HTTP client (OCI registries, the devcontainer schema download).

- **Proxies** as :mod:`urllib.request` reads them (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``, lower
  case first): an ``https`` URL goes through a ``CONNECT`` tunnel (TLS stays end to end), an ``http``
  one is sent to the proxy in absolute form. As in Go, whose rules the Docker CLI and engine follow,
  loopback hosts never go through a proxy: a proxy cannot reach this machine's loopback registry.
- **Retries**, bounded, with exponential backoff: a connection that was refused, reset or dropped, and
  the answers 429, 500, 502, 503 and 504 (501 and 505 do not change on a retry). A method that is not
  idempotent is re-sent only when it never left (the connection was refused), and a streamed body,
  once read, never. ``Retry-After`` is honoured up to :data:`MAX_WAIT`; a longer one is given up at once
  (Docker Hub's pull limit asks for hours). A timeout or a name that does not resolve is not retried: the
  first already spent the caller's budget, the second is what an offline machine answers.
- **Redirects** are followed here, so that one rule decides where credentials go: ``Authorization``
  is dropped as soon as a redirect leaves the origin, and stays dropped. Origin is RFC 6454's (scheme,
  host, port), as the Fetch standard uses it for this very header and curl since CVE-2022-27774: a
  registry sending a blob GET to S3 or a CDN sends it without the registry's token. ``localhost`` and
  ``127.0.0.1`` are different hosts (no name is resolved to compare them), and so are two ports.
- **Typed errors** (:class:`TransportError` and its kinds): callers branch on the class, never on text.

Built on :mod:`http.client`, imported (with :mod:`ssl` and :mod:`urllib.request`) only when a request
is made: requests or httpx would cost ``devnix init`` more start-up time than its whole budget.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from devnix.errors import RegistryError

if TYPE_CHECKING:
    import http.client
    import ssl

DEFAULT_TIMEOUT = 10.0
RETRIES = 2  # after the first attempt: three attempts in all
BACKOFF = 0.2  # seconds before the first retry, doubled for each next one
MAX_BACKOFF = 2.0
MAX_WAIT = 10.0  # the longest Retry-After waited for
MAX_REDIRECTS = 5
MAX_BODY = 64 << 20  # an answer read into memory larger than this is refused
STREAM_BLOCK = 1 << 20  # 1 MiB reads when a streamed body is sent on
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}


# --- errors -------------------------------------------------------------------------------------------


class TransportError(RegistryError):
    """No usable HTTP answer came back. ``reason`` is the cause alone, for callers that reword it."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.reason = reason


class ConnectFailedError(TransportError):
    """The connection was refused, reset or dropped, or the host name does not resolve."""


class RequestTimeoutError(TransportError):
    """The server did not answer within the timeout."""


class TLSError(TransportError):
    """The TLS handshake failed (an untrusted or mismatched certificate, a server that is not TLS)."""


class ProxyError(TransportError):
    """The proxy could not be reached, refused the tunnel, or is of a kind devnix does not speak."""


class ProtocolError(TransportError):
    """The answer is not HTTP, is cut short, is larger than allowed, or redirects too often or nowhere."""


class HTTPStatusError(RegistryError):
    """The server answered, with a status the caller cannot use; ``status`` says which."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class NotFoundError(HTTPStatusError):
    """HTTP 404: nothing at that address."""


def raise_for_status(response: Response, what: str, detail: str = "", hint: str | None = None) -> None:
    """One line for a status that is not 2xx: what failed, the status, and how often it was tried."""
    if 200 <= response.status < 300:
        return
    tried = f" (gave up after {response.attempts} attempts)" if response.attempts > 1 else ""
    wait = response.retry_after
    if response.status in RETRY_STATUSES and wait is not None:
        tried += f" (it asks to wait {wait:.0f} s before trying again)"
    kind = NotFoundError if response.status == 404 else HTTPStatusError
    message = f"{what} failed with HTTP {response.status}{detail}{tried}"
    raise kind(message, status=response.status, hint=hint or status_hint(response.status))


def status_hint(status: int) -> str:
    """What a person can do about an HTTP status."""
    if status in (401, 403):
        return "check your access (`docker login`)"
    if status == 404:
        return "check the name and the tag"
    if status == 429:
        return "the server limits requests: wait a while (or log in for a higher limit)"
    if status >= 500:
        return "the server has a problem; try again later"
    return "the server refused the request; check the address"


# --- what comes back ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """A whole answer. ``url`` is where it came from after redirects; ``attempts`` counts retries."""

    status: int
    headers: Mapping[str, str]  # names in lower case; of a repeated header, the first
    body: bytes
    url: str = ""
    attempts: int = 1

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def retry_after(self) -> float | None:
        return retry_after(self.header("retry-after"))


class Stream:
    """An answer whose body is read as it arrives, on a connection of its own (closed with it).

    File-like: http.client can send it on as another request's body.
    """

    def __init__(
        self, connection: http.client.HTTPConnection, raw: http.client.HTTPResponse, url: str, label: str
    ) -> None:
        self._connection = connection
        self._raw = raw
        self.status = raw.status
        self.headers = _headers(raw)
        self.url = url
        self._label = label

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def read(self, amount: int = -1) -> bytes:
        import http.client

        try:
            return self._raw.read(None if amount is None or amount < 0 else amount)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise _failure(error, self._label, Origin.of(self.url), None, attempts=1) from None

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- where requests go --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """RFC 6454's origin: what "the same host" means for credentials and for connection reuse."""

    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int

    @classmethod
    def of(cls, url: str | SplitResult) -> Origin:
        try:
            parts = urlsplit(url) if isinstance(url, str) else url
            port = parts.port  # raises on a port that is not a number
            host = parts.hostname
        except ValueError:
            host = None
        if host is None or parts.scheme.lower() not in _DEFAULT_PORTS:
            shown = url if isinstance(url, str) else url.geturl()
            raise ProtocolError(
                f"{shown[:200]!r} is not an http:// or https:// address",
                reason="not an http(s) URL",
                hint="check the address (a registry, a token realm, a redirect)",
            )
        scheme = parts.scheme.lower()
        return cls(scheme, host.lower(), port or _DEFAULT_PORTS[scheme])

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost" or self.host.endswith(".localhost"):
            return True
        import ipaddress

        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class Proxy:
    origin: Origin  # always spoken to in plain TCP, as urllib does (CONNECT carries TLS through it)
    authorization: str | None = field(default=None, repr=False)
    variable: str = "HTTPS_PROXY"  # which setting named it, for the messages


def proxy_for(origin: Origin) -> Proxy | None:
    """The proxy a request to ``origin`` goes through, per the environment, or ``None``."""
    if origin.is_loopback or not _may_have_proxies():
        return None
    import urllib.request  # ~15 ms: only when a proxy may be set

    value = urllib.request.getproxies().get(origin.scheme)
    if not value or urllib.request.proxy_bypass(origin.netloc):
        return None
    variable = f"{origin.scheme.upper()}_PROXY"
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise ProxyError(
            f"{variable} is {_redacted(value)!r}: devnix speaks to http:// proxies only",
            reason="unsupported proxy",
            hint=f"set {variable} to http://HOST:PORT, or add the host to NO_PROXY",
        )
    try:
        where = Origin.of(parts._replace(scheme="http"))
    except ProtocolError:
        raise ProxyError(
            f"{variable} is {_redacted(value)!r}, which is not a proxy address",
            reason="bad proxy address",
            hint=f"set {variable} to http://HOST:PORT",
        ) from None
    authorization = None
    if parts.username is not None:
        import base64

        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode()
    return Proxy(where, authorization, variable)


def _may_have_proxies() -> bool:
    """False when urllib would find no proxy: on Linux it reads only ``*_proxy`` variables."""
    if sys.platform in ("darwin", "win32"):
        return True  # urllib also reads the system's proxy settings there
    return any(name.lower().endswith("_proxy") for name in os.environ)


def _redacted(value: str) -> str:
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.password is None:
        return value
    return value.replace(f":{parts.password}@", ":***@")


# --- the client ---------------------------------------------------------------------------------------


class Transport:
    """HTTP requests with proxies, retries and redirects; keeps one idle connection per origin.

    ``label`` names the other side in errors ("registry ghcr.io"); ``hint`` is the hint of a failed
    connection. ``insecure`` origins get TLS without certificate checks (``--insecure``).
    """

    def __init__(
        self,
        *,
        label: str = "",
        hint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
        max_wait: float = MAX_WAIT,
        insecure: frozenset[Origin] = frozenset(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.label = label
        self.hint = hint
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.insecure = insecure
        self.requests = 0  # every exchange, retries and redirects included
        self._sleep = sleep
        self._idle: dict[tuple[Origin, Proxy | None], http.client.HTTPConnection] = {}
        self._contexts: dict[bool, ssl.SSLContext] = {}

    def close(self) -> None:
        for connection in self._idle.values():
            connection.close()
        self._idle.clear()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        follow: bool = True,
        limit: int = MAX_BODY,
    ) -> Response:
        """One request read whole (at most ``limit`` bytes), retried and redirected as the module says."""
        answer, _, raw, final, attempts = self._run(method, url, headers, body, follow, limit)
        assert isinstance(answer, bytes)
        return Response(raw.status, _headers(raw), answer, final, attempts)

    def open(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        follow: bool = True,
    ) -> Stream:
        """A request whose answer is streamed; ``body`` may be a file-like object (sent once, never
        re-sent). The caller closes the stream."""
        _, connection, raw, final, _ = self._run(method, url, headers, body, follow, None)
        return Stream(connection, raw, final, self.label)

    # -- one request, all its attempts and hops --

    def _run(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        body: Any,
        follow: bool,
        limit: int | None,
    ) -> tuple[bytes | None, http.client.HTTPConnection, http.client.HTTPResponse, str, int]:
        current = dict(headers or {})
        for _hop in range(MAX_REDIRECTS + 1):
            answer, connection, raw, attempts = self._attempts(method, url, current, body, limit)
            location = raw.getheader("location")
            if not follow or raw.status not in REDIRECT_STATUSES or not location:
                return answer, connection, raw, url, attempts
            try:
                target = urljoin(url, location.strip())
            except ValueError:
                target = location  # Origin.of below says what is wrong with it
            if raw.status == 303 or (raw.status in (301, 302) and method == "POST"):
                method = "HEAD" if method == "HEAD" else "GET"
                body = None
                current = {k: v for k, v in current.items() if k.lower() not in _BODY_HEADERS}
            elif body is not None and not isinstance(body, bytes):
                return answer, connection, raw, url, attempts  # a streamed body cannot go again
            if answer is None:  # a stream's connection: read what is left of the redirect and let go
                _drain(raw)
                connection.close()
            if Origin.of(target) != Origin.of(url):
                # Credentials are for the origin that asked for them; once dropped they stay dropped.
                current = {k: v for k, v in current.items() if k.lower() != "authorization"}
            url = target
        raise ProtocolError(
            f"{self._who(Origin.of(url))} redirects more than {MAX_REDIRECTS} times",
            reason="too many redirects",
            hint="the server's redirects loop; report it to whoever runs it",
        )

    def _attempts(
        self, method: str, url: str, headers: Mapping[str, str], body: Any, limit: int | None
    ) -> tuple[bytes | None, http.client.HTTPConnection, http.client.HTTPResponse, int]:
        """Send until an answer to keep, a failure not worth retrying, or the retries are spent."""
        resendable = body is None or isinstance(body, bytes)
        may_repeat = method in IDEMPOTENT and resendable
        attempt = 0
        while True:
            attempt += 1
            try:
                answer, connection, raw = self._exchange(method, url, headers, body, limit)
            except _Failed as failed:
                retry = failed.retryable and (may_repeat or (failed.before_sending and resendable))
                if not retry or attempt > self.retries:
                    raise failed.error(attempt) from None
                self._sleep(self._backoff(attempt))
                continue
            if raw.status not in RETRY_STATUSES or not may_repeat or attempt > self.retries:
                return answer, connection, raw, attempt
            wait = retry_after(raw.getheader("retry-after"))
            if wait is not None and wait > self.max_wait:
                return answer, connection, raw, attempt  # not worth waiting for: the caller says why
            if answer is None:
                _drain(raw)
                connection.close()
            self._sleep(self._backoff(attempt) if wait is None else wait)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF))

    def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], body: Any, limit: int | None
    ) -> tuple[bytes | None, http.client.HTTPConnection, http.client.HTTPResponse]:
        """One HTTP exchange: connect (or reuse), send, read the answer (whole unless ``limit`` is None)."""
        import http.client

        parts = urlsplit(url)
        origin = Origin.of(parts)
        proxy = proxy_for(origin)
        key = (origin, proxy)
        target = _target(parts)
        sent = dict(headers)
        if proxy is not None and origin.scheme == "http":
            target = f"{origin}{target}"  # absolute form: the proxy forwards it
            if proxy.authorization:
                sent["Proxy-Authorization"] = proxy.authorization
        self.requests += 1
        connection = self._idle.pop(key, None)
        while True:
            reused = connection is not None
            if connection is None:
                connection = self._connect(origin, proxy)
            try:
                connection.request(method, target, body=body, headers=sent)
                raw = connection.getresponse()
                answer = None if limit is None else raw.read(limit + 1)
                break
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                if reused and isinstance(error, _STALE) and (body is None or isinstance(body, bytes)):
                    # A kept-alive connection the server had closed: not an attempt; go again, fresh.
                    connection = None
                    continue
                at_proxy = proxy is not None and origin.scheme == "http"  # the proxy is the other end
                raise _Failed(error, self, origin, proxy, before_sending=False, at_proxy=at_proxy) from None
            except ValueError as error:  # a URL or header http.client will not send (not ASCII, a newline)
                connection.close()
                raise ProtocolError(
                    f"cannot send a request to {self._who(origin)}: {_reason(error)}",
                    reason=_reason(error),
                    hint="the address (or a redirect to it) is malformed",
                ) from None
            except BaseException:
                connection.close()  # e.g. a streamed body that refused its bytes (a digest mismatch)
                raise
        if answer is not None and len(answer) > limit:  # type: ignore[operator]
            connection.close()
            raise ProtocolError(
                f"{self._who(origin)} sent an answer larger than {limit} bytes",
                reason="answer too large",
                hint="the server does not answer as expected; check the address",
            )
        if answer is not None:
            if raw.will_close:
                connection.close()
            else:
                self._idle[key] = connection
        return answer, connection, raw

    def _connect(self, origin: Origin, proxy: Proxy | None) -> http.client.HTTPConnection:
        """A connection made now, so that a failure here is known to have sent nothing.

        Through a proxy each step fails with its own error: reaching the proxy, its answer to
        ``CONNECT``, then TLS with the origin inside the tunnel.
        """
        try:
            return self._connect_to(origin, proxy)
        except ValueError as error:  # a host name that cannot be (idna: a label too long, a leading dot)
            raise ProtocolError(
                f"cannot connect to {self._who(origin)}: {_reason(error)}",
                reason=_reason(error),
                hint="the address (or a redirect to it) is malformed",
            ) from None

    def _connect_to(self, origin: Origin, proxy: Proxy | None) -> http.client.HTTPConnection:
        import http.client
        import socket

        connection: http.client.HTTPConnection
        if origin.scheme == "https":
            connection = http.client.HTTPSConnection(
                origin.host,
                origin.port,
                timeout=self.timeout,
                context=self._context(origin),
                blocksize=STREAM_BLOCK,
            )
        else:
            where = origin if proxy is None else proxy.origin
            connection = http.client.HTTPConnection(
                where.host, where.port, timeout=self.timeout, blocksize=STREAM_BLOCK
            )
        if proxy is None:
            try:
                connection.connect()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                raise _Failed(error, self, origin, None, before_sending=True) from None
            except BaseException:
                connection.close()
                raise
            return connection
        try:
            sock = socket.create_connection((proxy.origin.host, proxy.origin.port), self.timeout)
        except OSError as error:
            raise _Failed(error, self, origin, proxy, before_sending=True, at_proxy=True) from None
        try:
            if origin.scheme == "https":
                self._tunnel(sock, origin, proxy)
                try:
                    sock = self._context(origin).wrap_socket(sock, server_hostname=origin.host)
                except OSError as error:
                    raise _Failed(error, self, origin, proxy, before_sending=True) from None
        except BaseException:
            sock.close()
            raise
        connection.sock = sock
        return connection

    def _tunnel(self, sock: Any, origin: Origin, proxy: Proxy) -> None:
        """Ask the proxy for a tunnel to ``origin`` (RFC 9110's CONNECT)."""
        import http.client

        authority = f"[{origin.host}]:{origin.port}" if ":" in origin.host else f"{origin.host}:{origin.port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
            answer = http.client.HTTPResponse(sock, method="CONNECT")
            answer.begin()  # the status line and headers only: the tunnel's bytes stay on the socket
        except (OSError, http.client.HTTPException) as error:
            raise _Failed(error, self, origin, proxy, before_sending=True, at_proxy=True) from None
        if not 200 <= answer.status < 300:
            refusal = f"it answered CONNECT with HTTP {answer.status} {' '.join(answer.reason.split())}"
            raise ProxyError(
                f"the proxy {proxy.origin} ({proxy.variable}) refused a tunnel to {origin}: {refusal[:200]}",
                reason=refusal[:200],
                hint=f"check {proxy.variable} (and its user:password), or add {origin.host} to NO_PROXY",
            )

    def _context(self, origin: Origin) -> ssl.SSLContext:
        import ssl

        insecure = origin in self.insecure
        if insecure not in self._contexts:
            # The default context reads SSL_CERT_FILE / SSL_CERT_DIR, as OpenSSL-based tools do.
            context = ssl.create_default_context()
            if insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[insecure] = context
        return self._contexts[insecure]

    def _who(self, origin: Origin) -> str:
        return f"{self.label} ({origin})" if self.label else str(origin)


_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})


_STALE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)  # RemoteDisconnected too


class _Failed(Exception):
    """A failed exchange, classified; :meth:`error` makes the typed error once the retries are over."""

    def __init__(
        self,
        cause: BaseException,
        transport: Transport,
        origin: Origin,
        proxy: Proxy | None,
        *,
        before_sending: bool,
        at_proxy: bool = False,
    ) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.label = transport.label
        self.hint = transport.hint
        self.origin = origin
        self.proxy = proxy
        self.before_sending = before_sending
        self.at_proxy = at_proxy
        self.retryable = _is_retryable(cause)

    def error(self, attempts: int) -> TransportError:
        proxy = self.proxy if self.at_proxy else None
        return _failure(self.cause, self.label, self.origin, proxy, attempts=attempts, hint=self.hint)


def _is_retryable(error: BaseException) -> bool:
    """A connection refused, reset or cut short. Not a timeout (its budget is spent), an unknown
    host name (what an offline machine answers) or a TLS failure (the same handshake fails again)."""
    import http.client

    return isinstance(error, (ConnectionError, http.client.IncompleteRead))


def _failure(
    error: BaseException,
    label: str,
    origin: Origin,
    proxy: Proxy | None,
    *,
    attempts: int,
    hint: str | None = None,
) -> TransportError:
    """The typed error for an exchange that got no usable answer (``proxy``: failed at the proxy)."""
    import http.client
    import socket
    import ssl

    who = f"{label} ({origin})" if label else str(origin)
    tried = f" (after {attempts} attempts)" if attempts > 1 else ""
    reason = _reason(error)
    if isinstance(error, (ssl.SSLError, ssl.CertificateError)):
        return TLSError(
            f"TLS with {who} failed: {reason}",
            reason=reason,
            hint="if it uses a private CA, point SSL_CERT_FILE at that CA's certificate",
        )
    if proxy is not None:
        return ProxyError(
            f"cannot reach {who} through the proxy {proxy.origin} ({proxy.variable}): {reason}{tried}",
            reason=reason,
            hint=f"check {proxy.variable}, or add {origin.host} to NO_PROXY",
        )
    if isinstance(error, TimeoutError):
        return RequestTimeoutError(
            f"{who} did not answer in time: {reason}", reason=reason, hint=hint or "check the network"
        )
    if isinstance(error, http.client.HTTPException) and not isinstance(error, ConnectionError):
        return ProtocolError(
            f"{who} sent an answer that is not HTTP or is cut short: {reason}{tried}",
            reason=reason,
            hint="check that the address is the server's (and its scheme: http or https)",
        )
    if isinstance(error, socket.gaierror):
        reason = f"cannot resolve {origin.host} ({reason})"
    return ConnectFailedError(
        f"cannot reach {who}: {reason}{tried}", reason=reason, hint=hint or "check the network"
    )


def _reason(error: BaseException) -> str:
    text = (
        getattr(error, "verify_message", None)  # ssl: "self-signed certificate", not just a code
        or getattr(error, "reason", None)
        or getattr(error, "strerror", None)
        or str(error)
    )
    text = str(text) or type(error).__name__
    return " ".join(text.split())[:200]  # one line, whatever the other side sent


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` value (delay-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _drain(raw: http.client.HTTPResponse) -> None:
    """Read and forget a small unwanted answer (a redirect's or a retried error's body)."""
    import http.client

    with contextlib.suppress(OSError, http.client.HTTPException):
        raw.read(64 << 10)


def _headers(raw: http.client.HTTPResponse) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in raw.getheaders():
        found.setdefault(name.lower(), value)
    return found


def _target(parts: SplitResult) -> str:
    """The request target: path and query (a fragment never goes on the wire)."""
    path = parts.path or "/"
    return path + (f"?{parts.query}" if parts.query else "")


def url_target(url: str) -> str:
    """The path and query of ``url``: what a recording of requests shows."""
    return _target(urlsplit(url))
