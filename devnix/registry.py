"""Edge: the OCI distribution API (manifests, indexes, blobs, tags) with the auth flows registries use.

- HTTP (proxies, retries, redirects, where credentials may go) is :mod:`devnix.transport`'s; the
  credentials come from :mod:`devnix.dockerconfig`. This module is the API on top of them.
- A 401 names the scheme: ``Bearer`` means a token from the realm (anonymous when there are no
  credentials, as Docker Hub and ghcr.io allow for public images); ``Basic`` means the credentials
  themselves.
- Loopback registries speak plain HTTP, as the Docker engine assumes for them; others HTTPS unless
  ``insecure`` is asked for.
- Nothing a registry sends is trusted before it is checked, in one place each: every digest it names
  (:func:`checked_digest`, before it goes into a URL), every body fetched by digest (:func:`verify`,
  a streamed blob as it ends), every JSON answer (:func:`json_object`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from devnix import dockerconfig, transport
from devnix.dockerconfig import Credentials
from devnix.errors import RegistryError
from devnix.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageRef,
)
from devnix.platforms import Platform
from devnix.transport import NotFoundError, Origin, Response

_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
DEFAULT_TIMEOUT = transport.DEFAULT_TIMEOUT
MAX_MANIFEST = 4 << 20  # the distribution spec's limit a registry must accept; clients may refuse more
_MAX_SMALL = 1 << 20  # a token or a tag list page
_UNREACHABLE_HINT = "check the network, or use an image the Docker engine already has"


class DigestMismatchError(RegistryError):
    """Content fetched by digest does not hash to that digest."""


class MalformedAnswerError(RegistryError):
    """The registry answered with something of the wrong shape (not JSON, a field of the wrong type)."""


class AuthError(RegistryError):
    """The registry (or its token service) refused the credentials, or anonymous access."""


# --- the shapes of answers, checked in one place ------------------------------------------------------

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def checked_digest(value: Any, what: str) -> str:
    """``value`` if it is a digest devnix can verify (sha256 or sha512), else one clear error.

    Every digest goes through here before it is put in a URL: one from a hostile index could
    otherwise carry ``../`` or a query into the path.
    """
    if isinstance(value, str) and _DIGEST_RE.fullmatch(value):
        return value
    shown = json.dumps(value)[:80] if not isinstance(value, str) else repr(value[:80])
    raise MalformedAnswerError(
        f"{what} names the digest {shown}, which is not a sha256 or sha512 digest",
        hint="the registry's answer (or the reference) is malformed",
    )


def verify(data: bytes, digest: str, what: str) -> None:
    """Content addressing is the point of a digest: bytes that do not hash to it are not that content,
    whatever the registry (or a proxy on the way) says."""
    algorithm, _, expected = digest.partition(":")
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise DigestMismatchError(
            f"{what} came back with content whose digest is {algorithm}:{actual}, not {digest}",
            hint="the registry or a proxy altered it; try again, or report it to the registry",
        )


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """A JSON object, or one line saying that ``what`` is not one."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedAnswerError(f"{what} is not JSON", hint=_SHAPE_HINT) from None
    if not isinstance(value, dict):
        raise MalformedAnswerError(f"{what} is not a JSON object", hint=_SHAPE_HINT)
    return value


_SHAPE_HINT = "the registry does not answer as the OCI distribution API says; check its address"


def _check(response: Response, what: str, registry: str) -> None:
    """Raise a typed error for a status that is not 2xx, with the registry's own words when it gave any."""
    if 200 <= response.status < 300:
        return
    detail = ""
    try:
        errors = json.loads(response.body).get("errors")
    except (ValueError, AttributeError, RecursionError):
        errors = None
    if isinstance(errors, list):
        words = [
            str(e.get("message") or e.get("code") or "") if isinstance(e, dict) else str(e) for e in errors
        ]
        text = " ".join("; ".join(w for w in words if w).split())[:200]  # one line, whatever was sent
        detail = f": {text}" if text else ""
    hint = None
    if response.status in (401, 403):
        hint = f"run `docker login {registry}` with an account that may do this"
    transport.raise_for_status(response, what, detail, hint=hint)


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as the registry returned it (bytes kept: the digest is of these bytes)."""

    media_type: str
    digest: str
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json_object(self.body, "the registry's manifest")

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass(frozen=True)
class RemoteImage:
    """What a registry says about a tag: its digest and the platforms it can run as."""

    ref: ImageRef
    digest: str
    media_type: str
    platforms: tuple[Platform, ...]
    # The image config's ``Env`` of one platform, when asked for (it tells a store-only Nix image).
    env: tuple[str, ...] | None = None


# --- the client -------------------------------------------------------------------------------------

_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')
_TOKEN_RE = re.compile(r"[\x21-\x7e]{1,8192}")  # visible ASCII: it goes into a header


class Client:
    """One registry's API. Keeps its connections and the tokens it was given, per scope."""

    def __init__(
        self,
        registry: str,
        *,
        api_host: str | None = None,
        insecure: bool = False,
        plain_http: bool | None = None,
        credentials: Credentials | None = None,
        use_docker_config: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.registry = registry
        probe = ImageRef(registry, "x")
        self.api_host = api_host or probe.api_host
        self.plain_http = probe.is_loopback if plain_http is None else plain_http
        self.insecure = insecure
        self.timeout = timeout
        self.origin = Origin.of(f"{self.scheme}://{self.api_host}")
        self._credentials = credentials
        self._use_docker_config = use_docker_config and credentials is None
        self._looked_up = False
        self._tokens: dict[str, str] = {}
        self._basic = False
        self.transport = transport.Transport(
            label=f"registry {registry}",
            hint=_UNREACHABLE_HINT,
            timeout=timeout,
            insecure=frozenset({self.origin}) if insecure else frozenset(),
        )

    @classmethod
    def for_ref(cls, ref: ImageRef, **kwargs: Any) -> Client:
        return cls(ref.registry, api_host=ref.api_host, **kwargs)

    @property
    def scheme(self) -> str:
        return "http" if self.plain_http else "https"

    @property
    def requests(self) -> int:
        """HTTP exchanges so far (retries, redirects and token requests included)."""
        return self.transport.requests

    def credentials(self) -> Credentials | None:
        if not self._looked_up and self._use_docker_config:
            self._credentials = dockerconfig.credentials_for(self.registry)
        self._looked_up = True
        return self._credentials

    def close(self) -> None:
        self.transport.close()

    def url(self, path: str) -> str:
        """An absolute URL for a path of this registry's API (an absolute URL stays as it is)."""
        return path if urlsplit(path).scheme else f"{self.scheme}://{self.api_host}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        follow: bool = True,
        limit: int = transport.MAX_BODY,
    ) -> Response:
        """A request to ``/v2/...`` (or an absolute URL) that answers the registry's auth challenge.

        Credentials go only to this registry's origin; the transport follows redirects and drops them
        when a redirect leaves it.
        """
        url = self.url(path)
        ours = Origin.of(url) == self.origin
        merged = dict(headers or {})
        auth = self._authorization(scope) if ours else None
        if auth:
            merged["Authorization"] = auth
        response = self.transport.request(method, url, headers=merged, body=body, follow=follow, limit=limit)
        if response.status == 401 and ours and Origin.of(response.url or url) == self.origin:
            self._answer(response.header("www-authenticate") or "", scope)
            auth = self._authorization(scope)
            if auth:
                merged["Authorization"] = auth
                response = self.transport.request(
                    method, url, headers=merged, body=body, follow=follow, limit=limit
                )
            if response.status == 401:
                who = "the credentials from the Docker config" if self.credentials() else "anonymous access"
                raise AuthError(
                    f"registry {self.registry} refused {who} for {scope}",
                    hint=f"run `docker login {self.registry}` with an account that can read it",
                )
        return response

    def _authorization(self, scope: str) -> str | None:
        if scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        if self._basic:
            credentials = self.credentials()
            if credentials:
                return _basic(credentials)
        return None

    def _answer(self, challenge: str, scope: str) -> None:
        scheme, _, params_text = challenge.strip().partition(" ")
        params = dict(_CHALLENGE_RE.findall(params_text))
        if scheme.lower() == "basic":
            if self.credentials() is None:
                raise AuthError(
                    f"registry {self.registry} needs a login", hint=f"run `docker login {self.registry}`"
                )
            self._basic = True
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            shown = " ".join(scheme.split())[:40]
            raise AuthError(
                f"registry {self.registry} asked for an unknown auth scheme {shown!r}",
                hint="devnix speaks the Bearer and Basic flows of the distribution spec",
            )
        realm = params["realm"]
        try:
            Origin.of(realm)
        except transport.ProtocolError:
            raise MalformedAnswerError(
                f"registry {self.registry} named a token service that is not an http(s) address: "
                f"{realm[:80]!r}",
                hint=_SHAPE_HINT,
            ) from None
        # Several scopes (a cross-repository mount needs push here and pull there) go as repeated
        # ``scope`` parameters, as the distribution token spec has it.
        query = [("service", params.get("service", ""))] + [("scope", s) for s in scope.split()]
        headers = {}
        credentials = self.credentials()
        if credentials:
            headers["Authorization"] = _basic(credentials)
        separator = "&" if "?" in realm else "?"
        response = self.transport.request(
            "GET", f"{realm}{separator}{urlencode(query)}", headers=headers, limit=_MAX_SMALL
        )
        if response.status == 401:
            raise AuthError(
                f"registry {self.registry} refused the credentials from the Docker config",
                hint=f"run `docker login {self.registry}` again",
            )
        _check(response, f"asking the token service of {self.registry} for a token", self.registry)
        answer = json_object(response.body, f"the token service of {self.registry}'s answer")
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            raise MalformedAnswerError(f"token service of {self.registry} sent no token", hint=_SHAPE_HINT)
        self._tokens[scope] = token

    # -- reading --

    def find_manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest or index at a tag or digest, or ``None`` when there is none (HTTP 404)."""
        by_digest = ":" in reference  # a tag never holds a colon
        where = f"{self.registry}/{repository}{'@' if by_digest else ':'}{reference}"
        if by_digest:
            checked_digest(reference, where)
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": _ACCEPT},
            limit=MAX_MANIFEST,
        )
        if response.status == 404:
            return None
        _check(response, f"reading the manifest of {where}", self.registry)
        media_type = (response.header("content-type") or "").split(";")[0].strip()
        if media_type not in INDEX_TYPES + MANIFEST_TYPES:
            media_type = _sniff_media_type(response.body) or media_type
        digest = sha256_digest(response.body)
        claimed = response.header("docker-content-digest")
        if by_digest:
            verify(response.body, reference, where)
            digest = reference
        elif claimed and _DIGEST_RE.fullmatch(claimed.strip()):
            # What init pins a config to: it must be the digest of these very bytes.
            verify(response.body, claimed.strip(), where)
            digest = claimed.strip()
        return Manifest(media_type, digest, response.body)

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        found = self.find_manifest(repository, reference)
        if found is None:
            raise NotFoundError(
                f"{self.registry}/{repository}:{reference} not found",
                status=404,
                hint="check the image name and tag",
            )
        return found

    def get_blob(self, repository: str, digest: str) -> bytes:
        """A (small) blob read whole, checked against its digest."""
        where = f"blob {digest} of {self.registry}/{repository}"
        checked_digest(digest, where)
        response = self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull"
        )
        _check(response, f"reading {where}", self.registry)
        verify(response.body, digest, where)
        return response.body

    def has_blob(self, repository: str, digest: str) -> bool:
        """HEAD a blob. Redirects are not followed: a redirect to storage already means "present",
        and following it would turn the HEAD into a GET of the whole blob."""
        checked_digest(digest, f"blob {digest} of {self.registry}/{repository}")
        response = self.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            scope=f"repository:{repository}:pull",
            follow=False,
        )
        if response.status == 404:
            return False
        if response.status in transport.REDIRECT_STATUSES:
            return True
        _check(response, f"looking for blob {digest} in {self.registry}/{repository}", self.registry)
        return True

    def open_blob(self, repository: str, digest: str) -> BlobStream:
        """A blob's body as a stream (never read whole into memory), redirects to storage followed;
        checked against its digest as it ends."""
        scope = f"repository:{repository}:pull"
        # A HEAD first answers the auth challenge (a streamed GET cannot be retried after a 401) and
        # makes a missing blob a clear error.
        if not self.has_blob(repository, digest):
            raise NotFoundError(f"blob {digest} is missing from {self.registry}/{repository}", status=404)
        headers: dict[str, str] = {}
        auth = self._authorization(scope)
        if auth:
            headers["Authorization"] = auth
        stream = self.transport.open("GET", self.url(f"/v2/{repository}/blobs/{digest}"), headers=headers)
        if stream.status != 200:
            with stream:
                body = stream.read(4096)
            answer = Response(stream.status, stream.headers, body, stream.url)
            _check(answer, f"reading blob {digest}", self.registry)
        return BlobStream(stream, digest, f"blob {digest} of {self.registry}/{repository}")

    # -- writing (devnix manifest create, devnix publish) --

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest or index under a tag or its digest; its digest (of the bytes sent)."""
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=push_scope(repository),
            headers={"Content-Type": media_type},
            body=body,
        )
        _check(response, f"writing the manifest {self.registry}/{repository}:{reference}", self.registry)
        claimed = (response.header("docker-content-digest") or "").strip()
        if _DIGEST_RE.fullmatch(claimed):
            verify(body, claimed, f"the manifest written to {self.registry}/{repository}:{reference}")
        return sha256_digest(body)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> Upload | None:
        """Ask the registry to link a blob from another of its repositories: ``None`` when it did.

        A registry that cannot mount (the blob is not readable there, or mounting is off) opens an
        ordinary upload session instead (HTTP 202); that session is returned for a streamed copy.
        """
        checked_digest(digest, f"blob {digest} of {self.registry}/{from_repository}")
        scope = f"{push_scope(repository)} repository:{from_repository}:pull"
        query = urlencode({"mount": digest, "from": from_repository})
        response = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/?{query}", scope=scope, body=b"", follow=False
        )
        if response.status == 201:
            return None
        return self._upload_session(response, repository, scope)

    def start_upload(self, repository: str) -> Upload:
        scope = push_scope(repository)
        response = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/", scope=scope, body=b"", follow=False
        )
        return self._upload_session(response, repository, scope)

    def _upload_session(self, response: Response, repository: str, scope: str) -> Upload:
        _check(response, f"starting a blob upload to {self.registry}/{repository}", self.registry)
        location = response.header("location")
        if response.status != 202 or not location:
            raise MalformedAnswerError(
                f"registry {self.registry} opened no upload session for {repository} "
                f"(HTTP {response.status})",
                hint=_SHAPE_HINT,
            )
        try:
            url = urljoin(f"{self.scheme}://{self.api_host}/", location.strip())
            Origin.of(url)
        except (ValueError, transport.ProtocolError):
            raise MalformedAnswerError(
                f"registry {self.registry} opened an upload session at {location[:80]!r}, not an address",
                hint=_SHAPE_HINT,
            ) from None
        return Upload(repository, url, scope)

    def upload_url(self, upload: Upload, digest: str) -> str:
        separator = "&" if "?" in upload.location else "?"
        return f"{upload.location}{separator}{urlencode({'digest': checked_digest(digest, 'the upload')})}"

    def finish_upload(self, upload: Upload, digest: str, size: int, stream: BlobStream) -> None:
        """Send a whole blob in one PUT to an upload session, straight from ``stream``."""
        url = self.upload_url(upload, digest)
        stream.expect(size)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        auth = self._authorization(upload.scope) if Origin.of(url) == self.origin else None
        if auth:
            headers["Authorization"] = auth
        # A streamed body goes once: no retry, no redirect with it, no answer to a 401 challenge.
        with self.transport.open("PUT", url, headers=headers, body=stream, follow=False) as answer:
            body = answer.read(64 << 10)
            status, answer_headers, final = answer.status, answer.headers, answer.url
        what = f"uploading blob {digest} to {upload.repository}"
        _check(Response(status, answer_headers, body, final), what, self.registry)


def _basic(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _sniff_media_type(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("mediaType"), str):
        return str(value["mediaType"])
    return OCI_INDEX if "manifests" in value else OCI_MANIFEST if "config" in value else None


# --- what a tag is: platforms, and the image config's Env -------------------------------------------


def image_platforms(
    ref: ImageRef, *, timeout: float = DEFAULT_TIMEOUT, config_for: Platform | None = None
) -> RemoteImage:
    """Ask the image's registry which platforms its tag has (one config read for a single manifest).

    With ``config_for``, also read the ``Env`` of that platform's config (the first platform's when the
    tag lacks it): two more requests on the same connection and token.
    """
    client = Client.for_ref(ref, timeout=timeout)
    try:
        return remote_image(client, ref, config_for=config_for)
    finally:
        client.close()


def remote_image(client: Client, ref: ImageRef, *, config_for: Platform | None = None) -> RemoteImage:
    """:func:`image_platforms` on a client of the ref's registry."""
    env: tuple[str, ...] | None = None
    manifest = client.get_manifest(ref.repository, ref.reference)
    if manifest.is_index:
        index = manifest.json
        platforms = platforms_of_index(index)
        if config_for is not None and platforms:
            child = _child_digest(index, config_for) or _child_digest(index, platforms[0])
            if child is not None:
                env = _env_of(_config_of(client, ref, client.get_manifest(ref.repository, child)))
    else:
        config = _config_of(client, ref, manifest)
        platforms = (platform_of_config(config, str(ref)),)
        env = _env_of(config) if config_for is not None else None
    return RemoteImage(ref, manifest.digest, manifest.media_type, platforms, env)


def _child_digest(index: Mapping[str, Any], wanted: Platform) -> str | None:
    """The digest of the index entry that runs as ``wanted``."""
    manifests = index.get("manifests")
    for entry in manifests if isinstance(manifests, list) else ():
        if not isinstance(entry, dict):
            continue
        found = platforms_of_index({"manifests": [entry]})
        if found and found[0].same_machine(wanted):
            return checked_digest(entry.get("digest"), f"the index entry for {found[0]}")
    return None


def _env_of(config: Mapping[str, Any]) -> tuple[str, ...]:
    inner = config.get("config")
    env = inner.get("Env") if isinstance(inner, dict) else None
    return tuple(item for item in env if isinstance(item, str)) if isinstance(env, list) else ()


def platforms_of_index(index: Mapping[str, Any]) -> tuple[Platform, ...]:
    """The runnable platforms of an index (attestation entries, ``unknown/unknown``, are skipped)."""
    found: list[Platform] = []
    manifests = index.get("manifests")
    for entry in manifests if isinstance(manifests, list) else ():
        platform = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(platform, dict):
            continue
        os_name, arch = platform.get("os", ""), platform.get("architecture", "")
        if not isinstance(os_name, str) or not isinstance(arch, str):
            continue
        if not os_name or not arch or "unknown" in (os_name, arch):
            continue
        variant = platform.get("variant")
        candidate = Platform(os_name, arch, variant if isinstance(variant, str) and variant else None)
        if arch == "arm64" and candidate.variant == "v8":
            candidate = Platform(os_name, arch)
        if candidate not in found:
            found.append(candidate)
    return tuple(found)


def platform_of_config(config: Mapping[str, Any], what: str = "the image") -> Platform:
    """The platform an image config says it runs as."""
    os_name, arch, variant = config.get("os", "linux"), config.get("architecture"), config.get("variant")
    if not isinstance(os_name, str) or not os_name or not isinstance(arch, str) or not arch:
        raise MalformedAnswerError(f"{what}'s image config names no os and architecture", hint=_SHAPE_HINT)
    variant = variant if isinstance(variant, str) and variant else None
    if arch == "arm64" and variant == "v8":
        variant = None
    return Platform(os_name, arch, variant)


def _config_of(client: Client, ref: ImageRef, manifest: Manifest) -> dict[str, Any]:
    config = manifest.json.get("config")
    if not isinstance(config, dict):
        raise MalformedAnswerError(f"{ref} has a manifest without a config", hint=_SHAPE_HINT)
    digest = checked_digest(config.get("digest"), f"{ref}'s manifest")
    return json_object(client.get_blob(ref.repository, digest), f"{ref}'s image config")


# --- writing: blobs across repositories (devnix manifest create) -----------------------------------


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


@dataclass(frozen=True)
class Upload:
    """An open blob upload session: where to PUT, and the auth scope that opened it."""

    repository: str
    location: str
    scope: str


class BlobStream:
    """A blob's body being received, hashed as it passes; a file-like object http.client can send on
    as a request body.

    The bytes are checked against the digest when they end, or, once the size is known
    (:meth:`expect`), when the last of them arrives and before it is handed on: a PUT fed from here
    then stops one block short instead of completing with the wrong blob.
    """

    def __init__(self, stream: transport.Stream, digest: str, what: str) -> None:
        self._stream = stream
        self.digest = digest
        self._what = what
        self._hash = hashlib.new(digest.partition(":")[0])
        self._received = 0
        self._size: int | None = None
        self._checked = False

    def expect(self, size: int) -> None:
        self._size = size

    def read(self, amount: int = -1) -> bytes:
        data = self._stream.read(amount)
        self._hash.update(data)
        self._received += len(data)
        if self._size is not None and self._received > self._size:
            raise DigestMismatchError(
                f"{self._what} is longer than its {self._size} bytes",
                hint="the registry or a proxy altered it; try again, or report it to the registry",
            )
        if not self._checked and (not data or self._received == self._size):
            self._checked = True
            actual = f"{self.digest.partition(':')[0]}:{self._hash.hexdigest()}"
            if actual != self.digest:
                raise DigestMismatchError(
                    f"{self._what} came back with content whose digest is {actual}, not {self.digest}",
                    hint="the registry or a proxy altered it; try again, or report it to the registry",
                )
        return data

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def transfer_blob(
    source: Client, source_repository: str, target: Client, target_repository: str, digest: str, size: int
) -> str:
    """Make a blob present in the target repository: ``present``, ``mounted`` or ``copied``.

    Within one registry a cross-repository mount links the blob without moving a byte; only when the
    registry refuses does the blob stream through here (never whole in memory). Between registries
    there is nothing to mount from, so a blob the target lacks is always streamed.
    """
    if source is target:
        if source_repository == target_repository:
            return "present"
        upload = target.mount_blob(target_repository, digest, source_repository)
        if upload is None:
            return "mounted"
    else:
        if target.has_blob(target_repository, digest):
            return "present"
        upload = target.start_upload(target_repository)
    with source.open_blob(source_repository, digest) as stream:
        target.finish_upload(upload, digest, size, stream)
    return "copied"


# --- publishing small artifacts (devnix publish) ----------------------------------------------------


def list_tags(client: Client, repository: str) -> list[str]:
    """Every tag of ``repository`` (``[]`` when it does not exist yet), following ``Link`` pages."""
    tags: list[str] = []
    path: str | None = f"/v2/{repository}/tags/list"
    pages = 0
    while path is not None and pages < 100:
        pages += 1
        response = client.request(
            "GET",
            path,
            scope=f"repository:{repository}:pull",
            headers={"Accept": "application/json"},
            limit=_MAX_SMALL * 8,
        )
        if response.status == 404:
            return tags  # a repository nobody pushed to yet
        _check(response, f"listing the tags of {client.registry}/{repository}", client.registry)
        page = json_object(response.body, f"the tag list of {client.registry}/{repository}")
        found = page.get("tags") or []
        if not isinstance(found, list) or not all(isinstance(tag, str) for tag in found):
            raise MalformedAnswerError(
                f"the tag list of {client.registry}/{repository} is not a list of names", hint=_SHAPE_HINT
            )
        tags.extend(found)
        path = _next_page(response.header("link"))
    return tags


def _next_page(link: str | None) -> str | None:
    """The ``rel="next"`` target of a Link header (distribution's tag-list pagination): its path and
    query only, so a hostile header cannot send the next request (and its token) elsewhere."""
    for part in (link or "").split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", ""):
            try:
                url = urlsplit(target.strip().strip("<>"))
            except ValueError:
                return None
            if not url.path:
                return None
            return url.path + (f"?{url.query}" if url.query else "")
    return None


def find_manifest(client: Client, repository: str, reference: str) -> Manifest | None:
    """The manifest at a tag or digest, or ``None`` when there is none (HTTP 404)."""
    return client.find_manifest(repository, reference)


def push_blob(client: Client, repository: str, digest: str, data: bytes) -> bool:
    """Make a small blob present in ``repository`` with one POST and one PUT; ``False`` if it was."""
    verify(data, checked_digest(digest, "the blob to push"), "the blob to push")
    if client.has_blob(repository, digest):
        return False
    upload = client.start_upload(repository)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    # An upload session on another host (storage behind the registry) gets no credentials.
    response = client.request(
        "PUT", client.upload_url(upload, digest), scope=upload.scope, headers=headers, body=data, follow=False
    )
    _check(response, f"uploading blob {digest} to {client.registry}/{repository}", client.registry)
    return True
