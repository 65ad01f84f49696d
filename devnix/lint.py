"""Pure: Nix-specific findings on a devcontainer.json that the JSON schema cannot see.

Each rule reads :class:`Facts` (what the config and the files beside it say, gathered once) and
returns ``(json path, message)`` pairs; the table :data:`RULES` gives each its id, severity and hint.
What devnix cannot know offline (the Docker engine's platform, the platforms an image has, its
digest) is passed in by the caller through :class:`LintContext`; a rule that needs an unknown fact
stays silent rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from devnix import fhsloader, images, platforms
from devnix.errors import DevnixError
from devnix.jsonc import JsonPath
from devnix.platforms import Platform

# Lifecycle commands that run inside the container (initializeCommand runs on the host).
_COMMAND_KEYS = (
    "onCreateCommand",
    "updateContentCommand",
    "postCreateCommand",
    "postStartCommand",
    "postAttachCommand",
)
_ENV_KEYS = ("containerEnv", "remoteEnv")
_CHANNEL_USE = re.compile(
    r"<nixpkgs>|<nixos>|\bnix-channel\b|\bnix-shell\b[^;&|\n]*\s-p\b|\bnix-env\s+(?:-i|--install)\b"
)
_FLAKE_USE = re.compile(
    r"\bnix\s+(?:develop|flake)\b|\bnix\s+(?:build|run|shell|profile\s+install)\b[^;&|\n]*#"
)
_HEX_RUN = re.compile(r"[0-9a-f]{12,}")


@dataclass(frozen=True)
class LintContext:
    """What the caller knows beyond the config: files beside it, the engine, the image."""

    nix_conf: str | None = None  # the text of nix.conf next to devcontainer.json
    flake_nix: bool = False  # the project has a flake.nix
    envrc: str | None = None  # the project's .envrc
    engine_platform: Platform | None = None
    image_platforms: tuple[Platform, ...] | None = None  # None: not known
    image_digest: str | None = None  # sha256:… of the image, when known
    dockerfile: str | None = None  # the text of the config's build.dockerfile
    # The layout of the image the container starts from (``image``, or the Dockerfile's FROM) as the
    # engine's local copy or the registry told it; None: only devnix's catalog is known.
    image_filesystem: images.Filesystem | None = None
    # Local Features (ids as written, ``./nix``) whose folder holds devnix's fhs-loader.sh.
    loader_features: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LintFinding:
    """One finding: ``path`` locates it in devcontainer.json (``nix_conf_line`` in nix.conf)."""

    id: str
    severity: str  # "error" or "warning"
    message: str
    hint: str
    path: JsonPath = ()
    nix_conf_line: int | None = None


@dataclass(frozen=True)
class Setting:
    """A nix.conf setting and where it was found."""

    value: str
    path: JsonPath | None  # in devcontainer.json, or None for nix.conf
    line: int | None = None  # in nix.conf


@dataclass
class Facts:
    """What the rules look at, read once from the config and its context."""

    config: dict[str, Any]
    context: LintContext
    commands: list[tuple[JsonPath, str]] = field(default_factory=list)
    settings: dict[str, list[Setting]] = field(default_factory=dict)
    platform: Platform | None = None  # the config's --platform
    platform_path: JsonPath | None = None
    image: images.ImageRef | None = None

    def setting(self, name: str) -> Setting | None:
        found = self.settings.get(name)
        return found[-1] if found else None

    def env(self, name: str) -> JsonPath | None:
        for key in _ENV_KEYS:
            section = self.config.get(key)
            if isinstance(section, dict) and name in section:
                return (key, name)
        return None

    @property
    def runs_nix(self) -> bool:
        features = self.config.get("features")
        feature_ids = features if isinstance(features, dict) else {}
        return (
            self.context.nix_conf is not None
            or bool(self.settings)
            or any(re.search(r"(^|/)nix(:|$)", str(f)) for f in feature_ids)
            or (self.image is not None and "nix" in self.image.repository)
        )

    @property
    def native(self) -> bool | None:
        """Whether Nix runs natively on the engine (None: cannot tell offline)."""
        engine = self.context.engine_platform
        if self.platform is None:
            # Docker picks the engine's own variant when the image has one.
            known = self.context.image_platforms
            emulated = engine is not None and known and not any(p.same_machine(engine) for p in known)
            return not emulated
        if engine is None:
            return None
        return self.platform.same_machine(engine)


def gather(config: Any, context: LintContext) -> Facts:
    """Read the facts the rules need from a devcontainer.json value."""
    facts = Facts(config if isinstance(config, dict) else {}, context)
    config = facts.config
    for key in _COMMAND_KEYS:
        facts.commands += _command_texts(config.get(key), (key,))
    if context.nix_conf is not None:
        for number, line in enumerate(context.nix_conf.splitlines(), 1):
            _add_setting(facts.settings, line, None, number)
    for key in _ENV_KEYS:
        section = config.get(key)
        if isinstance(section, dict) and isinstance(section.get("NIX_CONFIG"), str):
            for line in section["NIX_CONFIG"].splitlines():
                _add_setting(facts.settings, line, (key, "NIX_CONFIG"), None)
    features = config.get("features")
    if isinstance(features, dict):
        for feature_id, options in features.items():
            extra = options.get("extraNixConfig") if isinstance(options, dict) else None
            if isinstance(extra, str):  # the Nix Feature's option: settings separated by commas
                for line in extra.split(","):
                    _add_setting(facts.settings, line, ("features", feature_id, "extraNixConfig"), None)
    for path, args in (
        (("runArgs",), config.get("runArgs")),
        (
            ("build", "options"),
            (config.get("build") or {}).get("options") if isinstance(config.get("build"), dict) else None,
        ),
    ):
        found = _platform_arg(args, path)
        if found is not None:
            facts.platform, facts.platform_path = found
    if isinstance(config.get("image"), str):
        try:
            facts.image = images.parse_ref(config["image"])
        except DevnixError:
            facts.image = None  # ${localEnv:…} placeholders and the like: nothing to say
    return facts


def dockerfile_path(config: Any) -> tuple[JsonPath, str] | None:
    """Where a config names its Dockerfile (``build.dockerfile``, or the legacy ``dockerFile``)."""
    if not isinstance(config, dict) or "dockerComposeFile" in config:
        return None
    build = config.get("build")
    if isinstance(build, dict) and isinstance(build.get("dockerfile"), str):
        return ("build", "dockerfile"), build["dockerfile"]
    if isinstance(config.get("dockerFile"), str):
        return ("dockerFile",), config["dockerFile"]
    return None


_FROM = re.compile(r"^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)
_ARG = re.compile(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$", re.IGNORECASE)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def dockerfile_base(dockerfile: str, build_args: Any = None) -> str | None:
    """The image the final stage starts from, through earlier stages' names, with the ARGs declared
    before the first FROM (and ``build.args``) substituted. None when it cannot be told offline
    (an unset variable, ``scratch``)."""
    args: dict[str, str] = {}
    stages: dict[str, str] = {}
    base: str | None = None
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if base is None and (arg := _ARG.match(line)):
            args[arg.group(1)] = (arg.group(2) or "").strip().strip("\"'")
            continue
        found = _FROM.match(line)
        if found is None:
            continue
        if isinstance(build_args, dict):  # build.args win over the Dockerfile's defaults
            args.update({str(k): str(v) for k, v in build_args.items()})

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(3)
            value = args.get(name) or match.group(2) or ""
            return value if value else "$"  # an unset variable leaves a mark: nothing to say

        image = _VARIABLE.sub(substitute, found.group(1))
        base = stages.get(image.lower(), image)
        if found.group(2):
            stages[found.group(2).lower()] = base
    if base is None or "$" in base or base.lower() == "scratch":
        return None
    return base


def loader_feature(config: Any, local_with_loader: frozenset[str] = frozenset()) -> str | None:
    """The Feature that runs devnix's FHS loader step at build time, if the config has one: devnix's
    published ``nix`` Feature (``…devnix…/nix`` at any tag) or a local one holding fhs-loader.sh."""
    features = config.get("features") if isinstance(config, dict) else None
    for feature_id in features if isinstance(features, dict) else {}:
        if feature_id in local_with_loader:
            return str(feature_id)
        name = str(feature_id).split("@", 1)[0]
        if name.rfind(":") > name.rfind("/"):
            name = name[: name.rfind(":")]
        if "devnix" in name.lower() and name.lower().endswith("/nix"):
            return str(feature_id)
    return None


def _command_texts(value: Any, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        yield path, " ".join(str(part) for part in value)
    elif isinstance(value, dict):
        for name, command in value.items():
            yield from _command_texts(command, (*path, name))


def _add_setting(
    settings: dict[str, list[Setting]], line: str, path: JsonPath | None, number: int | None
) -> None:
    text = line.split("#", 1)[0].strip()
    name, equals, value = text.partition("=")
    if equals:
        settings.setdefault(name.strip(), []).append(Setting(value.strip(), path, number))


def _platform_arg(args: Any, path: JsonPath) -> tuple[Platform, JsonPath] | None:
    """The platform named by ``--platform X`` or ``--platform=X`` in a docker argument list."""
    if not isinstance(args, list):
        return None
    for index, arg in enumerate(args):
        if not isinstance(arg, str):
            continue
        value = None
        if arg.startswith("--platform="):
            value = arg.split("=", 1)[1]
        elif arg == "--platform" and index + 1 < len(args) and isinstance(args[index + 1], str):
            value = args[index + 1]
        if value:
            try:
                return platforms.parse(value), (*path, index)
            except DevnixError:
                return None
    return None


# --- the rules -------------------------------------------------------------------------------------

Hit = tuple[JsonPath, str, int | None]  # json path, message, nix.conf line


def _filter_syscalls_native(facts: Facts) -> list[Hit]:
    setting = facts.setting("filter-syscalls")
    if setting is None or setting.value != "false" or facts.native is not True:
        return []
    return [
        (
            setting.path or (),
            "filter-syscalls = false turns off Nix's seccomp filter, but Nix runs natively here",
            setting.line,
        )
    ]


def _image_platform_missing(facts: Facts) -> list[Hit]:
    known = facts.context.image_platforms
    target = facts.platform or facts.context.engine_platform
    if not known or target is None or any(p.same_machine(target) for p in known):
        return []
    has = ", ".join(sorted(str(p) for p in known))
    name = facts.config.get("image", "the image")
    path = facts.platform_path if facts.platform is not None else ("image",)
    return [(path or ("image",), f"{name} has no {target} variant (it has {has})", None)]


def _nix_path_missing(facts: Facts) -> list[Hit]:
    if not facts.runs_nix or facts.env("NIX_PATH") or facts.setting("nix-path"):
        return []
    for path, command in facts.commands:
        match = _CHANNEL_USE.search(command)
        if match:
            return [(path, f"this command uses Nix channels ({match.group()}) but NIX_PATH is not set", None)]
    return []


def _nix_store_volume(facts: Facts) -> list[Hit]:
    digest = facts.context.image_digest or (facts.image.digest if facts.image else None)
    hex_digest = digest.split(":", 1)[-1].lower() if digest else None
    hits: list[Hit] = []
    for path, name in _nix_volumes(facts.config):
        runs = _HEX_RUN.findall(name.lower())
        keyed = any(hex_digest.startswith(run) for run in runs) if hex_digest else bool(runs)
        if not keyed:
            hits.append((path, f"volume {name!r} over /nix will hide the store of a rebuilt image", None))
    return hits


def _nix_volumes(config: dict[str, Any]) -> Iterator[tuple[JsonPath, str]]:
    """Named volumes mounted at /nix, from ``mounts`` and from ``-v``/``--mount`` in runArgs."""
    mounts = config.get("mounts")
    for index, mount in enumerate(mounts if isinstance(mounts, list) else []):
        if isinstance(mount, str):
            mount = dict(part.partition("=")[::2] for part in mount.split(",") if part)
        if isinstance(mount, dict) and _is_nix_volume(mount):
            yield ("mounts", index), str(mount.get("source") or mount.get("src") or "")
    args = config.get("runArgs")
    args = args if isinstance(args, list) else []
    for index, arg in enumerate(args):
        value = args[index + 1] if index + 1 < len(args) else None
        if arg in ("-v", "--volume") and isinstance(value, str):
            source, _, rest = value.partition(":")
            if rest.split(":")[0].rstrip("/") == "/nix" and not source.startswith(("/", ".")):
                yield ("runArgs", index + 1), source
        elif arg == "--mount" and isinstance(value, str):
            mount = dict(part.partition("=")[::2] for part in value.split(",") if part)
            if _is_nix_volume(mount):
                yield ("runArgs", index + 1), str(mount.get("source") or mount.get("src") or "")


def _is_nix_volume(mount: dict[str, Any]) -> bool:
    target = str(mount.get("target") or mount.get("dst") or mount.get("destination") or "")
    return target.rstrip("/") == "/nix" and mount.get("type", "volume") == "volume"


def _flakes_not_enabled(facts: Facts) -> list[Hit]:
    features = " ".join(
        s.value
        for name in ("experimental-features", "extra-experimental-features")
        for s in facts.settings.get(name, [])
    )
    if facts.image is not None:
        known = images.lookup(facts.image)
        if known is not None:
            features += " " + known.nix_settings.get("experimental-features", "")
    if "flakes" in features.split():
        return []
    uses = [(path, match.group()) for path, c in facts.commands if (match := _FLAKE_USE.search(c))]
    if uses:
        path, what = uses[0]
        return [(path, f"this command uses flakes ({what}) but they are not enabled", None)]
    if facts.runs_nix and (facts.context.flake_nix or "use flake" in (facts.context.envrc or "")):
        what = "flake.nix" if facts.context.flake_nix else ".envrc's use flake"
        return [((), f"the project uses flakes ({what}) but they are not enabled", None)]
    return []


def _store_only_image(facts: Facts) -> list[Hit]:
    where = dockerfile_path(facts.config)
    path: JsonPath
    if facts.image is not None:
        name, path, subject = facts.config["image"], ("image",), f"{facts.config['image']} is"
    elif where is not None and facts.context.dockerfile is not None:
        build = facts.config.get("build")
        base = dockerfile_base(
            facts.context.dockerfile, build.get("args") if isinstance(build, dict) else None
        )
        # A Dockerfile that runs the step fixes whatever its FROM is (the step is a no-op on FHS images).
        if base is None or fhsloader.dockerfile_adds_loader(facts.context.dockerfile):
            return []
        name, path, subject = base, where[0], f"{where[1]} builds FROM {base},"
    else:
        return []  # compose configs and unreadable Dockerfiles: nothing known
    if loader_feature(facts.config, facts.context.loader_features) is not None:
        return []
    if image_layout(name, facts.context.image_filesystem) is not images.Filesystem.STORE_ONLY:
        return []
    target = facts.platform or facts.context.engine_platform
    loader = fhsloader.FHS_LOADERS["arm64" if target and target.architecture == "arm64" else "amd64"]
    return [
        (
            path,
            f"{subject} a store-only Nix image (no {loader}): VS Code's server cannot start in it, "
            "so VS Code and Codespaces cannot attach",
            None,
        )
    ]


def image_layout(image: str, learned: images.Filesystem | None = None) -> images.Filesystem:
    """An image's layout: what the caller learned from the image itself, else devnix's catalog."""
    if learned is not None and learned is not images.Filesystem.UNKNOWN:
        return learned
    try:
        known = images.lookup(images.parse_ref(image))
    except DevnixError:
        return images.Filesystem.UNKNOWN
    return known.filesystem if known is not None else images.Filesystem.UNKNOWN


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    hint: str
    check: Callable[[Facts], list[Hit]]


RULES: tuple[Rule, ...] = (
    Rule(
        "filter-syscalls-native",
        "warning",
        "remove it: it is needed only where Nix runs under emulation (QEMU, Rosetta), see NixOS/nix#5258",
        _filter_syscalls_native,
    ),
    Rule(
        "image-platform-missing",
        "error",
        "use a multi-arch image, or one built for this platform",
        _image_platform_missing,
    ),
    Rule(
        "nix-path-missing",
        "warning",
        'set containerEnv.NIX_PATH, e.g. "nixpkgs=channel:nixos-unstable"',
        _nix_path_missing,
    ),
    Rule(
        "nix-store-volume",
        "warning",
        "name the volume after the image digest (devnix init --store-volume does), or drop it",
        _nix_store_volume,
    ),
    Rule(
        "flakes-not-enabled",
        "warning",
        'add "experimental-features = nix-command flakes" to nix.conf or NIX_CONFIG',
        _flakes_not_enabled,
    ),
    Rule(
        "store-only-image",
        "warning",
        "`devnix init --merge` (it builds the image through a Dockerfile with devnix's FHS loader step); "
        f"or, after your Dockerfile's FROM: `COPY {fhsloader.SCRIPT_NAME} /tmp/devnix-fhs-loader.sh` and "
        "`RUN sh /tmp/devnix-fhs-loader.sh` (`devnix init --dry-run --template nix-dockerfile` shows it)",
        _store_only_image,
    ),
)


def lint(config: Any, context: LintContext | None = None) -> list[LintFinding]:
    """Every rule's findings for a parsed devcontainer.json value, in rule order."""
    facts = gather(config, context or LintContext())
    return [
        LintFinding(rule.id, rule.severity, message, rule.hint, path, line)
        for rule in RULES
        for path, message, line in rule.check(facts)
    ]
