"""Edge: the Docker CLI's configuration (config folder, contexts, credentials), read in one place.

What it reads, as the Docker CLI does:
- the folder: ``$DOCKER_CONFIG``, else ``~/.docker``; in it ``config.json`` (``currentContext``,
  ``auths``, ``credsStore``, ``credHelpers``);
- the selected context: ``DOCKER_CONTEXT``, else ``currentContext``, else ``default``; a context's
  engine address is ``Endpoints.docker.Host`` in ``contexts/meta/<sha256 of its name>/meta.json``;
- a registry's credentials: its ``credHelpers`` entry, else ``credsStore``, each asked through
  ``docker-credential-<name> get`` with the server on stdin (no secret on argv, in a log or in a file
  devnix writes), else its ``auths`` entry (base64 ``user:secret``). Keys match as the Docker CLI
  matches them: exactly, then by host name (``https://host:5000/v1/`` is ``host:5000``).

For credentials, a ``config.json`` the Docker CLI could not read either (not JSON, not an object)
counts as empty, as the CLI does with a warning, and entries of a shape the CLI never writes are
skipped: anonymous access still works. What decides *which engine* devnix talks to is never guessed:
an unreadable ``config.json``, a ``currentContext`` that is not a name, a selected context without a
readable endpoint are each one line with a hint (:class:`DockerConfigError`).

Why not the docker SDK's ``docker.context`` / ``docker.auth`` / ``docker.credentials``: start-up time
forbids it. Each imports the whole ``docker`` package (requests, urllib3, its API client). Measured with
``python -X importtime`` on top of what ``devnix`` imports anyway (9 runs, load ~2): ``import
docker.credentials`` 98-178 ms (median ~115-150 ms; ``docker.context`` and ``docker.auth`` alike),
``import devnix.dockerconfig`` ~5 ms. ``devnix init`` reads the config on every run (the engine's
context, the registry's credentials) and takes ~350 ms in all here: the SDK would add a third. The
rules above follow the SDK's (``docker/auth.py``, ``docker/context/``) and the Docker CLI's precedence.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnix.errors import EngineError

_DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # never a path: "docker-credential-../x"
_HELPER_TIMEOUT = 20.0


class DockerConfigError(EngineError):
    """The Docker config selects an engine devnix cannot use (a bad context name or endpoint)."""


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str = field(repr=False)  # never shown, not even in a traceback's repr


@dataclass(frozen=True)
class SelectedContext:
    name: str  # "default" when none is selected
    source: str  # "DOCKER_CONTEXT", "config" or "default"


def config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def config_path() -> Path:
    return config_dir() / "config.json"


def load() -> dict[str, Any]:
    """``config.json`` as an object; ``{}`` when it is missing or not a JSON object (as the CLI reads it)."""
    value = _read_json(config_path())
    return value if isinstance(value, dict) else {}


def load_strictly() -> dict[str, Any]:
    """``config.json`` as an object (``{}`` when there is none), or one clear error: what selects the
    engine must not be guessed."""
    path = config_path()
    if not path.exists() and not path.is_symlink():
        return {}
    problem = None
    if not path.is_file():
        problem = "is not a file"
    else:
        try:
            value = json.loads(path.read_bytes())
        except OSError as error:
            problem = f"cannot be read ({error.strerror or error})"
        except ValueError as error:
            problem = f"is not JSON ({' '.join(str(error).split())[:80]})"
        else:
            if isinstance(value, dict):
                return value
            problem = "is not a JSON object"
    raise DockerConfigError(
        f"{path} {problem}, so devnix cannot tell which Docker context it selects",
        hint="fix it or move it away (the Docker CLI skips it with a warning), or set DOCKER_HOST",
    )


def _read_json(path: Path) -> Any:
    # A FIFO or a folder where a file should be: never block on it, never read it.
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


# --- contexts ---------------------------------------------------------------------------------------


def configured_context(config: Mapping[str, Any] | None = None) -> str | None:
    """``currentContext`` of the config, or ``None``; an error when it is there but not a name."""
    value = (load_strictly() if config is None else config).get("currentContext")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DockerConfigError(
            f"{config_path()}: currentContext is {json.dumps(value)[:60]}, not a context name",
            hint="fix it, or run `docker context use default`",
        )
    return value


def selected_context() -> SelectedContext:
    """The context the Docker CLI would use when ``DOCKER_HOST`` is not set."""
    name = os.environ.get("DOCKER_CONTEXT")
    if name:
        return SelectedContext(name, "DOCKER_CONTEXT")
    configured = configured_context()
    if configured:
        return SelectedContext(configured, "config")
    return SelectedContext("default", "default")


def context_meta_path(name: str) -> Path:
    import hashlib  # only when a context is selected

    return config_dir() / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"


def context_host(name: str) -> str:
    """The engine address of the context ``name`` (``Endpoints.docker.Host`` of its meta.json)."""
    meta = _read_json(context_meta_path(name))
    endpoints = meta.get("Endpoints") if isinstance(meta, dict) else None
    docker = endpoints.get("docker") if isinstance(endpoints, dict) else None
    host = docker.get("Host") if isinstance(docker, dict) else None
    if not isinstance(host, str) or not host:
        raise DockerConfigError(
            f"the Docker context {name!r} is selected but has no readable endpoint",
            hint="run `docker context use default` or `docker context ls`",
        )
    return host


# --- credentials ------------------------------------------------------------------------------------


def credentials_for(registry: str) -> Credentials | None:
    """The Docker config's credentials for ``registry`` (helpers included), or ``None``."""
    config = load()
    names = _names(registry)
    helpers = _strings(config.get("credHelpers"))
    helper = _lookup(helpers, names)
    if helper is not None:
        return _from_helper(helper, _server(registry))
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        found = _from_helper(store, _server(registry))
        if found is not None:
            return found
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    key = _lookup({k: k for k, v in auths.items() if isinstance(v, dict)}, names)
    return _from_auth(auths[key]) if key is not None else None


def _names(registry: str) -> tuple[str, ...]:
    return _HUB_NAMES if registry in _HUB_NAMES else (registry,)


def _server(registry: str) -> str:
    """The server name a credential store knows the registry by (``docker login`` writes these)."""
    return _DOCKER_HUB_KEY if registry in _HUB_NAMES else registry


def _strings(value: Any) -> dict[str, str]:
    return {k: v for k, v in value.items() if isinstance(v, str) and v} if isinstance(value, dict) else {}


def _lookup(entries: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The entry for a registry: its exact key first, then a key whose host name is the registry's."""
    exact = [*names, *(f"{scheme}://{name}" for name in names for scheme in ("https", "http"))]
    if names == _HUB_NAMES:
        exact.insert(0, _DOCKER_HUB_KEY)
    for key in exact:
        if key in entries:
            return entries[key]
    for key, value in entries.items():
        if _hostname(key) in names:
            return value
    return None


def _hostname(key: str) -> str:
    """``https://host:5000/v1/`` → ``host:5000`` (docker.auth's ``convert_to_hostname``)."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    return key.split("/", 1)[0]


def _from_auth(entry: Mapping[str, Any]) -> Credentials | None:
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        import base64

        try:
            decoded = base64.b64decode(auth).decode("utf-8")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None
        username, colon, secret = decoded.partition(":")
        return Credentials(username, secret) if colon and username else None
    name, password = entry.get("username"), entry.get("password")
    if isinstance(name, str) and name and isinstance(password, str):
        return Credentials(name, password)
    return None


def _from_helper(helper: str, server: str) -> Credentials | None:
    if not _HELPER_NAME.fullmatch(helper):
        return None
    import shutil
    import subprocess

    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        return None
    try:
        done = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=_HELPER_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None  # "credentials not found in native keychain": anonymous, as the CLI would go on
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        return None
    username = answer.get("Username") if isinstance(answer, dict) else None
    secret = answer.get("Secret") if isinstance(answer, dict) else None
    if isinstance(username, str) and username and isinstance(secret, str):
        return Credentials(username, secret)
    return None


def endpoint_origin(source: str, context: str = "default") -> str:
    """Where an engine address came from, in the words every message about it uses (``source`` is
    :attr:`devnix.engine.Endpoint.source`)."""
    if source in ("DOCKER_HOST", "CONTAINER_HOST"):
        return f"from {source}"
    if source == "context":
        return f"from Docker context {context!r}"
    if source.startswith("podman-"):
        return f"Podman's {source.removeprefix('podman-')} socket"
    return "the default socket"
