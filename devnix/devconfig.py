"""Pure: one model of a devcontainer.json, read once from its parsed JSONC value.

lint, doctor and merge read a config through :class:`DevConfig` rather than each walking the dict and
each trusting its shape: the image, the platform pin (``--platform`` in ``runArgs`` or
``build.options``), the argument lists, the build, the mounts (string and object forms, and ``-v`` /
``--mount`` in ``runArgs``), ``containerEnv``/``remoteEnv``, the Features and the lifecycle commands.

A value of the wrong shape never raises: it is left out of the model and :attr:`DevConfig.notes` says
where and what it is (``runArgs`` is a number, not an array). ``devnix validate``'s schema step says the
same with more words when it runs; doctor and merge, which have no schema, say it from the notes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from devnix import images, platforms
from devnix.errors import DevnixError
from devnix.jsonc import JsonPath, format_path
from devnix.platforms import Platform

# Lifecycle commands that run inside the container (initializeCommand runs on the host).
COMMAND_KEYS = (
    "onCreateCommand",
    "updateContentCommand",
    "postCreateCommand",
    "postStartCommand",
    "postAttachCommand",
)
ENV_KEYS = ("containerEnv", "remoteEnv")


@dataclass(frozen=True)
class Note:
    """A value the model left out, and why."""

    path: JsonPath
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Args:
    """A docker argument list (``runArgs``, ``build.options``) with its positions kept: an item that
    is not a string stays as ``None`` so that indexes still point into the file."""

    path: JsonPath
    items: tuple[str | None, ...] = ()

    def platform_flags(self) -> Iterator[tuple[int, str | None]]:
        """Each ``--platform=X`` or ``--platform X``: where it is and X (None when it has none)."""
        for index, item in enumerate(self.items):
            if item == "--platform":
                yield index, self.items[index + 1] if index + 1 < len(self.items) else None
            elif item is not None and item.startswith("--platform="):
                yield index, item.split("=", 1)[1]

    def value_of(self, *flags: str) -> str | None:
        """The value of the last of ``flags`` (``-u vscode``, ``--user=vscode``), as docker reads a
        repeated flag; None when none is given."""
        found = None
        for index, item in enumerate(self.items):
            if item in flags:
                found = self.items[index + 1] if index + 1 < len(self.items) else None
            elif item is not None and "=" in item and item.split("=", 1)[0] in flags:
                found = item.split("=", 1)[1]
        return found

    def platform_positions(self) -> tuple[int, ...]:
        """Where the ``--platform`` flags and the values of their two-word form are."""
        found: set[int] = set()
        for index, _ in self.platform_flags():
            found.add(index)
            if self.items[index] == "--platform" and index + 1 < len(self.items):
                found.add(index + 1)
        return tuple(sorted(found))


@dataclass(frozen=True)
class Mount:
    """A mount, from ``mounts`` or from ``-v``/``--volume``/``--mount`` in ``runArgs``."""

    path: JsonPath  # ("mounts", 2), or ("runArgs", 5) for the value after -v
    source: str  # "" for an anonymous volume
    target: str
    type: str  # "volume" (Docker's default), "bind", "tmpfs", ...
    text: str | None = None  # the string form as written (None for the object form)

    @property
    def is_nix_volume(self) -> bool:
        """A volume over ``/nix``: it hides the image's store once the volume outlives the image."""
        return self.type == "volume" and self.target.rstrip("/") == "/nix"


@dataclass(frozen=True)
class Build:
    """A Dockerfile config's ``build`` (or the legacy ``dockerFile``)."""

    dockerfile: str | None = None
    dockerfile_path: JsonPath | None = None  # ("build", "dockerfile") or ("dockerFile",)
    context: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    options: Args | None = None


@dataclass(frozen=True)
class DevConfig:
    """What a devcontainer.json says, shape-checked; build one with :func:`read`."""

    is_object: bool = True
    image: str | None = None
    image_ref: images.ImageRef | None = None  # None also for ${localEnv:…} and other placeholders
    run_args: Args | None = None
    build: Build | None = None  # None: not a Dockerfile config
    compose_files: tuple[str, ...] = ()
    service: str | None = None
    workspace_folder: str | None = None
    pinned: Platform | None = None  # the platform the container runs as, when the config names it
    pin_path: JsonPath | None = None  # where: ("runArgs", i) or ("build", "options", i)
    mounts: tuple[Mount, ...] = ()
    container_env: Mapping[str, str] = field(default_factory=dict)
    remote_env: Mapping[str, str] = field(default_factory=dict)
    features: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # id -> its options
    remote_user: str | None = None
    container_user: str | None = None
    commands: tuple[tuple[JsonPath, str], ...] = ()  # lifecycle commands as text, by where they are
    notes: tuple[Note, ...] = ()

    @property
    def is_compose(self) -> bool:
        return bool(self.compose_files)

    @property
    def built(self) -> bool:
        """Built from a Dockerfile or run from a compose file instead of naming an image."""
        return self.image is None and (
            (self.build is not None and self.build.dockerfile is not None) or self.is_compose
        )

    @property
    def dockerfile(self) -> tuple[JsonPath, str] | None:
        """Where the config names its Dockerfile and the name, for a Dockerfile config."""
        build = self.build
        if self.is_compose or build is None or build.dockerfile is None or build.dockerfile_path is None:
            return None
        return build.dockerfile_path, build.dockerfile

    @property
    def podman_keep_id_user(self) -> str | None:
        """The non-root user for whom the reference CLI (and VS Code) add ``--userns=keep-id`` to
        ``podman run``: the config's user, unless runArgs set the user namespace or the id maps
        themselves. None for root, or when the config names no user (the image's own then decides)."""
        args = self.run_args
        if args is not None and (
            args.value_of("--userns") is not None or args.value_of("--uidmap", "--gidmap") is not None
        ):
            return None
        user = self.remote_user or (args.value_of("-u", "--user") if args else None) or self.container_user
        if not user or user.split(":", 1)[0] in ("root", "0"):
            return None
        return user

    def env(self, name: str) -> JsonPath | None:
        """Where ``name`` is set for the container's processes (containerEnv, then remoteEnv)."""
        for key, section in (("containerEnv", self.container_env), ("remoteEnv", self.remote_env)):
            if name in section:
                return (key, name)
        return None

    def problem(self, path: JsonPath) -> Note | None:
        """The note about the value at ``path`` itself, if it had the wrong shape."""
        return next((note for note in self.notes if note.path == path), None)


def read(value: Any) -> DevConfig:
    """The model of a parsed devcontainer.json value; never raises."""
    if not isinstance(value, dict):
        return DevConfig(is_object=False, notes=(Note((), f"it is {_kind(value)}, not a JSON object"),))
    notes: list[Note] = []
    image = _string(value, ("image",), notes)
    run_args = _args(value.get("runArgs"), ("runArgs",), notes)
    build = _build(value, notes)
    pinned = _pin(run_args, notes) or _pin(build.options if build else None, notes)
    files = value.get("dockerComposeFile")
    compose: tuple[str, ...] = ()
    if isinstance(files, str):
        compose = (files,)
    elif isinstance(files, list) and files and all(isinstance(f, str) for f in files):
        compose = tuple(files)
    elif files is not None:
        notes.append(_wrong(("dockerComposeFile",), files, "a path or an array of paths"))
    return DevConfig(
        image=image,
        image_ref=_ref(image),
        run_args=run_args,
        build=build,
        compose_files=compose,
        service=_string(value, ("service",), notes),
        workspace_folder=_string(value, ("workspaceFolder",), notes),
        pinned=pinned[0] if pinned else None,
        pin_path=pinned[1] if pinned else None,
        mounts=(*_mounts(value.get("mounts"), notes), *_run_arg_mounts(run_args)),
        container_env=_env(value.get("containerEnv"), "containerEnv", notes),
        remote_env=_env(value.get("remoteEnv"), "remoteEnv", notes),
        features=_features(value.get("features"), notes),
        remote_user=_string(value, ("remoteUser",), notes),
        container_user=_string(value, ("containerUser",), notes),
        commands=tuple(c for key in COMMAND_KEYS for c in _commands(value.get(key), (key,), notes)),
        notes=tuple(notes),
    )


# --- readers, each for one key ------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    return "an array" if isinstance(value, list) else "an object"


def _wrong(path: JsonPath, value: Any, expected: str) -> Note:
    return Note(path, f"{format_path(path)[2:] or '$'} is {_kind(value)}, not {expected}")


def _string(section: dict[str, Any], path: JsonPath, notes: list[Note]) -> str | None:
    """The string at ``path`` (its last key in ``section``), or None: missing, or noted as wrong."""
    found = section.get(str(path[-1]))
    if found is None or isinstance(found, str):
        return found
    notes.append(_wrong(path, found, "a string"))
    return None


def _ref(image: str | None) -> images.ImageRef | None:
    if image is None:
        return None
    try:
        return images.parse_ref(image)
    except DevnixError:
        return None  # ${localEnv:…} placeholders and the like: not a reference devnix can read


def _args(found: Any, path: JsonPath, notes: list[Note]) -> Args | None:
    if found is None:
        return None
    if not isinstance(found, list):
        notes.append(_wrong(path, found, "an array of strings"))
        return None
    for index, item in enumerate(found):
        if not isinstance(item, str):
            notes.append(_wrong((*path, index), item, "a string"))
    return Args(path, tuple(item if isinstance(item, str) else None for item in found))


def _pin(args: Args | None, notes: list[Note]) -> tuple[Platform, JsonPath] | None:
    """The platform of the last ``--platform`` (as docker reads a repeated flag)."""
    if args is None:
        return None
    found: tuple[Platform, JsonPath] | None = None
    for index, text in args.platform_flags():
        path = (*args.path, index)
        if not text:
            notes.append(Note(path, f"{format_path(path)[2:]}: --platform without a platform"))
            continue
        try:
            found = platforms.parse(text), path
        except DevnixError as error:
            notes.append(Note(path, f"{format_path(path)[2:]}: {error.message}"))
    return found


def _build(value: dict[str, Any], notes: list[Note]) -> Build | None:
    section = value.get("build")
    legacy = _string(value, ("dockerFile",), notes)
    if section is not None and not isinstance(section, dict):
        notes.append(_wrong(("build",), section, "an object"))
        section = None
    if section is None and legacy is None:
        return None
    section = section or {}
    dockerfile = _string(section, ("build", "dockerfile"), notes)
    context = _string(section, ("build", "context"), notes)
    args: dict[str, str] = {}
    raw_args = section.get("args")
    if isinstance(raw_args, dict):
        for name, arg in raw_args.items():
            if isinstance(arg, str):
                args[name] = arg
            else:
                notes.append(_wrong(("build", "args", name), arg, "a string"))
    elif raw_args is not None:
        notes.append(_wrong(("build", "args"), raw_args, "an object"))
    if dockerfile is not None:
        where: JsonPath | None = ("build", "dockerfile")
    elif legacy is not None:
        dockerfile, where = legacy, ("dockerFile",)
    else:
        where = None
    options = _args(section.get("options"), ("build", "options"), notes)
    return Build(dockerfile, where, context, args, options)


def _fields(text: str) -> dict[str, str]:
    """``source=x,target=/nix,type=volume`` (the --mount syntax) as a dict; bare flags are left out."""
    return {key.strip(): value for key, sep, value in (p.partition("=") for p in text.split(",")) if sep}


def _mount_of(path: JsonPath, fields: Mapping[str, str], text: str | None) -> Mount:
    source = fields.get("source") or fields.get("src") or ""
    target = fields.get("target") or fields.get("dst") or fields.get("destination") or ""
    return Mount(path, source, target, fields.get("type") or "volume", text)


def _mounts(found: Any, notes: list[Note]) -> Iterator[Mount]:
    if found is None:
        return
    if not isinstance(found, list):
        notes.append(_wrong(("mounts",), found, "an array"))
        return
    for index, item in enumerate(found):
        path = ("mounts", index)
        if isinstance(item, str):
            yield _mount_of(path, _fields(item), item)
        elif isinstance(item, dict) and all(isinstance(v, str) for v in item.values()):
            yield _mount_of(path, item, None)
        else:
            notes.append(_wrong(path, item, "a mount string or an object of strings"))


def _run_arg_mounts(args: Args | None) -> Iterator[Mount]:
    """``-v``/``--volume`` (``source:target[:options]``) and ``--mount`` values in ``runArgs``."""
    items = args.items if args is not None else ()
    for index, flag in enumerate(items[:-1]):
        value = items[index + 1]
        if value is None:
            continue
        path = ("runArgs", index + 1)
        if flag in ("-v", "--volume"):
            parts = value.split(":")
            if len(parts) == 1:  # -v /nix: an anonymous volume
                yield Mount(path, "", parts[0], "volume", value)
            else:
                kind = "bind" if parts[0].startswith(("/", ".", "~")) else "volume"
                yield Mount(path, parts[0], parts[1], kind, value)
        elif flag == "--mount":
            yield _mount_of(path, _fields(value), value)


def _env(found: Any, key: str, notes: list[Note]) -> dict[str, str]:
    if found is None:
        return {}
    if not isinstance(found, dict):
        notes.append(_wrong((key,), found, "an object"))
        return {}
    env: dict[str, str] = {}
    for name, value in found.items():
        if isinstance(value, str):
            env[name] = value
        else:
            notes.append(_wrong((key, name), value, "a string"))
    return env


def _features(found: Any, notes: list[Note]) -> dict[str, Mapping[str, Any]]:
    if found is None:
        return {}
    if not isinstance(found, dict):
        notes.append(_wrong(("features",), found, "an object"))
        return {}
    features: dict[str, Mapping[str, Any]] = {}
    for feature_id, options in found.items():
        if isinstance(options, dict):
            features[feature_id] = options
        elif isinstance(options, (str, bool)):  # a version, or on/off: no options
            features[feature_id] = {}
        else:
            notes.append(_wrong(("features", feature_id), options, "an object of options"))
    return features


def _commands(value: Any, path: JsonPath, notes: list[Note]) -> Iterator[tuple[JsonPath, str]]:
    if value is None:
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        yield path, " ".join(str(part) for part in value)
    elif isinstance(value, dict) and len(path) == 1:  # named commands that run in parallel
        for name, command in value.items():
            yield from _commands(command, (*path, name), notes)
    else:
        notes.append(_wrong(path, value, "a command (a string or an array of strings)"))
