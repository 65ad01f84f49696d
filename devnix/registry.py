"""Edge: the OCI distribution API (manifests, indexes, blobs) with the auth flows registries use.

- Credentials come from the Docker config (``$DOCKER_CONFIG/config.json``): ``auths`` entries, or a
  credential helper (``credHelpers`` / ``credsStore``) asked through ``docker-credential-<name> get`` with
  the server on stdin, so no secret ever reaches argv, a log or a file devnix writes.
- A 401 names the scheme: ``Bearer`` means a token from the realm (anonymous when there are no
  credentials, as Docker Hub and ghcr.io allow for public images); ``Basic`` means the credentials
  themselves.
- Loopback registries speak plain HTTP, as the Docker engine assumes for them; others HTTPS unless
  ``insecure`` is asked for.

Built on :mod:`http.client` rather than requests/httpx: it is all that a handful of GETs and PUTs need,
and it keeps ``devnix init`` well inside its start-up budget.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlencode, urljoin, urlsplit

from devnix.errors import RegistryError
from devnix.images import (
    DOCKER_HUB,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageRef,
)
from devnix.platforms import Platform

if TYPE_CHECKING:
    import http.client

_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
_DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str = field(repr=False)  # never shown, not even in a traceback's repr


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as the registry returned it (bytes kept: the digest is of these bytes)."""

    media_type: str
    digest: str
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except ValueError:
            raise RegistryError("the registry returned a manifest that is not JSON") from None
        if not isinstance(value, dict):
            raise RegistryError("the registry returned a manifest that is not a JSON object")
        return value

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


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- credentials ------------------------------------------------------------------------------------


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def credentials_for(registry: str) -> Credentials | None:
    """The Docker config's credentials for ``registry`` (helpers included), or ``None``."""
    try:
        config = json.loads(docker_config_path().read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    keys = _config_keys(registry)
    # A hand-edited config may hold anything: only the shapes the Docker CLI writes are used.
    helpers = config.get("credHelpers")
    helpers = helpers if isinstance(helpers, dict) else {}
    for key in keys:
        if isinstance(helpers.get(key), str):
            return _from_helper(helpers[key], key)
    auths = config.get("auths")
    auths = auths if isinstance(auths, dict) else {}
    for key in keys:
        entry = auths.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("auth"), str) and entry["auth"]:
            try:
                username, _, secret = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return Credentials(username, secret)
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        for key in keys:
            found = _from_helper(store, key)
            if found:
                return found
    return None


def _config_keys(registry: str) -> list[str]:
    if registry == DOCKER_HUB:
        return [_DOCKER_HUB_CONFIG_KEY, "docker.io", "index.docker.io", "registry-1.docker.io"]
    return [registry, f"https://{registry}", f"http://{registry}"]


def _from_helper(helper: str, server: str) -> Credentials | None:
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        return None
    try:
        done = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        answer = json.loads(done.stdout)
        return Credentials(str(answer["Username"]), str(answer["Secret"]))
    except (ValueError, KeyError, TypeError):
        return None


# --- the client -------------------------------------------------------------------------------------

_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


class Client:
    """One registry's API. Keeps one connection and the tokens it was given, per scope."""

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
        self._credentials = credentials
        self._use_docker_config = use_docker_config and credentials is None
        self._looked_up = False
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._connection: http.client.HTTPConnection | None = None
        self.requests = 0  # counted so tests can prove what was (not) downloaded

    @classmethod
    def for_ref(cls, ref: ImageRef, **kwargs: Any) -> Client:
        return cls(ref.registry, api_host=ref.api_host, **kwargs)

    @property
    def scheme(self) -> str:
        return "http" if self.plain_http else "https"

    def credentials(self) -> Credentials | None:
        if not self._looked_up and self._use_docker_config:
            self._credentials = credentials_for(self.registry)
        self._looked_up = True
        return self._credentials

    # -- plumbing --

    def _connect(self) -> http.client.HTTPConnection:
        import http.client

        if self._connection is None:
            if self.plain_http:
                self._connection = http.client.HTTPConnection(self.api_host, timeout=self.timeout)
            else:
                import ssl

                context = ssl.create_default_context()
                if self.insecure:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self._connection = http.client.HTTPSConnection(
                    self.api_host, timeout=self.timeout, context=context
                )
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response:
        """One request; absolute URLs to other hosts (blob redirects, token realms) get their own."""
        import http.client

        parts = urlsplit(url)
        self.requests += 1
        try:
            if parts.netloc and parts.netloc != self.api_host:
                conn_class = (
                    http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                )
                other = conn_class(parts.netloc, timeout=self.timeout)
                try:
                    other.request(method, _path(parts), body=body, headers=headers)
                    raw = other.getresponse()
                    return Response(raw.status, _headers(raw), raw.read())
                finally:
                    other.close()
            connection = self._connect()
            try:
                connection.request(method, _path(parts) if parts.netloc else url, body=body, headers=headers)
                raw = connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed: one fresh try.
                self.close()
                connection = self._connect()
                connection.request(method, _path(parts) if parts.netloc else url, body=body, headers=headers)
                raw = connection.getresponse()
            return Response(raw.status, _headers(raw), raw.read())
        except OSError as error:
            self.close()
            reason = getattr(error, "reason", None) or error.strerror or str(error) or type(error).__name__
            raise RegistryError(
                f"cannot reach registry {self.registry} ({self.scheme}://{self.api_host}): {reason}",
                hint="check the network, or use an image the Docker engine already has",
            ) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        follow: bool = True,
    ) -> Response:
        """A request to ``/v2/...`` that answers the registry's auth challenge and follows redirects."""
        merged = dict(headers or {})
        auth = self._authorization(scope)
        if auth:
            merged["Authorization"] = auth
        response = self._send(method, path, merged, body)
        if response.status == 401:
            challenge = response.header("www-authenticate") or ""
            self._answer(challenge, scope)
            auth = self._authorization(scope)
            if auth:
                merged["Authorization"] = auth
                response = self._send(method, path, merged, body)
            if response.status == 401:
                who = "the credentials from the Docker config" if self.credentials() else "anonymous access"
                raise RegistryError(
                    f"registry {self.registry} refused {who} for {scope}",
                    hint=f"run `docker login {self.registry}` with an account that can read it",
                )
        hops = 0
        while follow and response.status in (301, 302, 303, 307, 308) and hops < 5:
            location = response.header("location")
            if not location:
                break
            hops += 1
            target = urljoin(f"{self.scheme}://{self.api_host}{path}", location)
            same_host = urlsplit(target).netloc == self.api_host
            # Credentials stay with the registry; a storage redirect (S3, a CDN) gets none.
            hop_headers = merged if same_host else {k: v for k, v in merged.items() if k != "Authorization"}
            response = self._send(method if method in ("GET", "HEAD") else "GET", target, hop_headers, None)
        return response

    def _authorization(self, scope: str) -> str | None:
        if scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        if self._basic:
            credentials = self.credentials()
            if credentials:
                raw = f"{credentials.username}:{credentials.secret}".encode()
                return "Basic " + base64.b64encode(raw).decode()
        return None

    def _answer(self, challenge: str, scope: str) -> None:
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_RE.findall(params_text))
        if scheme.lower() == "basic":
            if self.credentials() is None:
                raise RegistryError(
                    f"registry {self.registry} needs a login",
                    hint=f"run `docker login {self.registry}`",
                )
            self._basic = True
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryError(f"registry {self.registry} asked for an unknown auth scheme {scheme!r}")
        # Several scopes (a cross-repository mount needs push here and pull there) go as repeated
        # ``scope`` parameters, as the distribution token spec has it.
        query = [("service", params.get("service", ""))] + [("scope", s) for s in scope.split()]
        headers = {}
        credentials = self.credentials()
        if credentials:
            raw = f"{credentials.username}:{credentials.secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        realm = params["realm"]
        separator = "&" if "?" in realm else "?"
        response = self._send("GET", f"{realm}{separator}{urlencode(query)}", headers, None)
        if response.status == 401:
            raise RegistryError(
                f"registry {self.registry} refused the credentials from the Docker config",
                hint=f"run `docker login {self.registry}` again",
            )
        if response.status != 200:
            raise RegistryError(f"token service of {self.registry} answered HTTP {response.status}")
        try:
            answer = json.loads(response.body)
            self._tokens[scope] = str(answer.get("token") or answer["access_token"])
        except (ValueError, KeyError, TypeError):
            raise RegistryError(f"token service of {self.registry} sent no token") from None

    # -- the API --

    def find_manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest or index at a tag or digest, or ``None`` when there is none (HTTP 404)."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": _ACCEPT},
        )
        if response.status == 404:
            return None
        _check(response, f"reading the manifest of {self.registry}/{repository}:{reference}")
        media_type = (response.header("content-type") or "").split(";")[0].strip()
        if media_type not in INDEX_TYPES + MANIFEST_TYPES:
            media_type = _sniff_media_type(response.body) or media_type
        digest = sha256_digest(response.body)
        if reference.startswith("sha256:") and digest != reference:
            # Content addressing is the whole point of a digest: bytes that do not hash to it are
            # not that manifest, whatever the registry (or a proxy on the way) says.
            raise RegistryError(
                f"{self.registry}/{repository}@{reference} came back with content whose digest is {digest}",
                hint="the registry or a proxy altered it; try again, or report it to the registry",
            )
        return Manifest(media_type, response.header("docker-content-digest") or digest, response.body)

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        found = self.find_manifest(repository, reference)
        if found is None:
            raise RegistryError(
                f"{self.registry}/{repository}:{reference} not found",
                hint="check the image name and tag",
            )
        return found

    def get_blob(self, repository: str, digest: str) -> bytes:
        response = self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull"
        )
        _check(response, f"reading blob {digest} of {self.registry}/{repository}")
        return response.body

    # -- writing (devnix manifest create) --

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest or index under a tag or its digest; the registry's digest of it."""
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=push_scope(repository),
            headers={"Content-Type": media_type},
            body=body,
        )
        _check(response, f"writing the manifest {self.registry}/{repository}:{reference}")
        return response.header("docker-content-digest") or sha256_digest(body)

    def has_blob(self, repository: str, digest: str) -> bool:
        """HEAD a blob. Redirects are not followed: a redirect to storage already means "present",
        and following it would turn the HEAD into a GET of the whole blob."""
        response = self.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            scope=f"repository:{repository}:pull",
            follow=False,
        )
        if response.status == 404:
            return False
        if response.status in (301, 302, 303, 307, 308):
            return True
        _check(response, f"looking for blob {digest} in {self.registry}/{repository}")
        return True

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> Upload | None:
        """Ask the registry to link a blob from another of its repositories: ``None`` when it did.

        A registry that cannot mount (the blob is not readable there, or mounting is off) opens an
        ordinary upload session instead (HTTP 202); that session is returned for a streamed copy.
        """
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
        _check(response, f"starting a blob upload to {self.registry}/{repository}")
        location = response.header("location")
        if response.status != 202 or not location:
            raise RegistryError(
                f"registry {self.registry} opened no upload session for {repository} (HTTP {response.status})"
            )
        return Upload(repository, urljoin(f"{self.scheme}://{self.api_host}/", location), scope)

    def open_blob(self, repository: str, digest: str) -> BlobStream:
        """A blob's body as a stream (never read whole into memory), redirects to storage followed."""
        scope = f"repository:{repository}:pull"
        # A HEAD first answers the auth challenge (a streamed GET cannot be retried after a 401) and
        # makes a missing blob a clear error.
        if not self.has_blob(repository, digest):
            raise RegistryError(f"blob {digest} is missing from {self.registry}/{repository}")
        url = f"{self.scheme}://{self.api_host}/v2/{repository}/blobs/{digest}"
        headers: dict[str, str] = {}
        auth = self._authorization(scope)
        if auth:
            headers["Authorization"] = auth
        for _hop in range(6):
            connection, raw = self._open("GET", url, headers)
            location = raw.getheader("location")
            if raw.status in (301, 302, 303, 307, 308) and location:
                raw.read()
                connection.close()
                url = urljoin(url, location)
                if urlsplit(url).netloc != self.api_host:
                    headers.pop("Authorization", None)  # storage (S3, a CDN) gets no credentials
                continue
            if raw.status != 200:
                body = raw.read(4096)
                connection.close()
                _check(Response(raw.status, _headers(raw), body), f"reading blob {digest}")
            return BlobStream(connection, raw)
        raise RegistryError(f"too many redirects reading blob {digest} of {self.registry}/{repository}")

    def finish_upload(self, upload: Upload, digest: str, size: int, stream: BlobStream) -> None:
        """Send a whole blob in one PUT to an upload session, straight from ``stream``."""
        separator = "&" if "?" in upload.location else "?"
        url = f"{upload.location}{separator}{urlencode({'digest': digest})}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        auth = self._authorization(upload.scope)
        if auth:
            headers["Authorization"] = auth
        connection, raw = self._open("PUT", url, headers, body=stream.response)
        try:
            body = raw.read()
        finally:
            connection.close()
        _check(Response(raw.status, _headers(raw), body), f"uploading blob {digest} to {upload.repository}")

    def _open(
        self, method: str, url: str, headers: Mapping[str, str], body: Any = None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """A request on a connection of its own, its response left unread (for streaming)."""
        import http.client

        parts = urlsplit(url)
        self.requests += 1
        if parts.scheme == "https":
            import ssl

            context = ssl.create_default_context()
            if self.insecure and parts.netloc == self.api_host:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.netloc, timeout=self.timeout, context=context, blocksize=_STREAM_BLOCK
            )
        else:
            connection = http.client.HTTPConnection(
                parts.netloc, timeout=self.timeout, blocksize=_STREAM_BLOCK
            )
        try:
            connection.request(method, _path(parts), body=body, headers=dict(headers))
            return connection, connection.getresponse()
        except OSError as error:
            connection.close()
            reason = getattr(error, "reason", None) or error.strerror or str(error) or type(error).__name__
            raise RegistryError(
                f"cannot reach registry {self.registry} ({parts.scheme}://{parts.netloc}): {reason}"
            ) from None


def image_platforms(
    ref: ImageRef, *, timeout: float = DEFAULT_TIMEOUT, config_for: Platform | None = None
) -> RemoteImage:
    """Ask the image's registry which platforms its tag has (one config read for a single manifest).

    With ``config_for``, also read the ``Env`` of that platform's config (the first platform's when the
    tag lacks it): two more requests on the same connection and token.
    """
    client = Client.for_ref(ref, timeout=timeout)
    env: tuple[str, ...] | None = None
    try:
        manifest = client.get_manifest(ref.repository, ref.reference)
        if manifest.is_index:
            platforms = platforms_of_index(manifest.json)
            if config_for is not None and platforms:
                child = _child_digest(manifest.json, config_for) or _child_digest(manifest.json, platforms[0])
                if child is not None:
                    env = _env_of(_config_of(client, ref, client.get_manifest(ref.repository, child)))
        else:
            config = _config_of(client, ref, manifest)
            platforms = (platform_of_config(config),)
            env = _env_of(config) if config_for is not None else None
    finally:
        client.close()
    return RemoteImage(ref, manifest.digest, manifest.media_type, platforms, env)


def _child_digest(index: Mapping[str, Any], wanted: Platform) -> str | None:
    """The digest of the index entry that runs as ``wanted``."""
    manifests = index.get("manifests")
    for entry in manifests if isinstance(manifests, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            continue
        found = platforms_of_index({"manifests": [entry]})
        if found and found[0].same_machine(wanted):
            return str(entry["digest"])
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


def platform_of_config(config: Mapping[str, Any]) -> Platform:
    variant = config.get("variant") or None
    arch = str(config.get("architecture", ""))
    if arch == "arm64" and variant == "v8":
        variant = None
    return Platform(str(config.get("os", "linux")), arch, variant)


def _config_of(client: Client, ref: ImageRef, manifest: Manifest) -> dict[str, Any]:
    try:
        digest = manifest.json["config"]["digest"]
    except (KeyError, TypeError):
        raise RegistryError(f"{ref} has a manifest without a config") from None
    blob = client.get_blob(ref.repository, str(digest))
    if str(digest).startswith("sha256:") and sha256_digest(blob) != digest:
        raise RegistryError(f"{ref}'s config blob does not match its digest {digest}")
    try:
        config = json.loads(blob)
    except ValueError:
        raise RegistryError(f"{ref} has a config that is not JSON") from None
    if not isinstance(config, dict):
        raise RegistryError(f"{ref} has a config that is not a JSON object")
    return config


def _check(response: Response, what: str) -> None:
    if 200 <= response.status < 300:
        return
    detail = ""
    try:
        errors = json.loads(response.body).get("errors") or []
        if errors:
            detail = ": " + "; ".join(str(e.get("message", e.get("code", ""))) for e in errors)
    except (ValueError, AttributeError):
        pass
    raise RegistryError(f"{what} failed with HTTP {response.status}{detail}")


def _sniff_media_type(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("mediaType"), str):
        return str(value["mediaType"])
    return OCI_INDEX if "manifests" in value else OCI_MANIFEST if "config" in value else None


def _headers(raw: http.client.HTTPResponse) -> dict[str, str]:
    return {name.lower(): value for name, value in raw.getheaders()}


def _path(parts: SplitResult) -> str:
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- writing: blobs across repositories (devnix manifest create) -----------------------------------

_STREAM_BLOCK = 1 << 20  # 1 MiB reads when streaming a blob from one registry into another


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


@dataclass(frozen=True)
class Upload:
    """An open blob upload session: where to PUT, and the auth scope that opened it."""

    repository: str
    location: str
    scope: str


class BlobStream:
    """A blob's body being received; a file-like object http.client can send on as a request body."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self.connection = connection
        self.response = response

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.close()


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
            "GET", path, scope=f"repository:{repository}:pull", headers={"Accept": "application/json"}
        )
        if response.status == 404:
            return tags  # a repository nobody pushed to yet
        _check(response, f"listing the tags of {client.registry}/{repository}")
        try:
            page = json.loads(response.body)
            tags.extend(str(tag) for tag in (page.get("tags") or []))
        except (ValueError, AttributeError, TypeError):
            raise RegistryError(f"registry {client.registry} sent a tag list that is not JSON") from None
        path = _next_page(response.header("link"))
    return tags


def _next_page(link: str | None) -> str | None:
    """The ``rel="next"`` target of a Link header (distribution's tag-list pagination)."""
    for part in (link or "").split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", ""):
            url = urlsplit(target.strip().strip("<>"))
            return _path(url) or None
    return None


def find_manifest(client: Client, repository: str, reference: str) -> Manifest | None:
    """The manifest at a tag or digest, or ``None`` when there is none (HTTP 404)."""
    return client.find_manifest(repository, reference)


def push_blob(client: Client, repository: str, digest: str, data: bytes) -> bool:
    """Make a small blob present in ``repository`` with one POST and one PUT; ``False`` if it was."""
    if client.has_blob(repository, digest):
        return False
    upload = client.start_upload(repository)
    separator = "&" if "?" in upload.location else "?"
    url = f"{upload.location}{separator}{urlencode({'digest': digest})}"
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    if urlsplit(url).netloc == client.api_host:
        response = client.request("PUT", url, scope=upload.scope, headers=headers, body=data, follow=False)
    else:
        # An upload session on another host (storage behind the registry) gets no credentials.
        response = client._send("PUT", url, headers, data)
    _check(response, f"uploading blob {digest} to {client.registry}/{repository}")
    return True
