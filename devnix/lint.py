"""Pure: Nix-specific findings on a devcontainer.json that the JSON schema cannot see.

Each rule reads :class:`Facts` (what the config and the files beside it say, gathered once) and
returns ``(json path, message)`` pairs; the table :data:`RULES` gives each its id, severity and hint.
What devnix cannot know offline (the Docker engine's platform, the platforms an image has, its
digest) is passed in by the caller through :class:`LintContext`; a rule that needs an unknown fact
stays silent rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devnix import devconfig, fhsloader, images
from devnix.devconfig import DevConfig
from devnix.errors import DevnixError
from devnix.jsonc import JsonPath
from devnix.platforms import Platform

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
    # The image config's Env of the image the container starts from (``image``, or the Dockerfile's
    # FROM), as the engine's local copy or the registry told it: its PATH tells a store-only image
    # devnix's catalog does not know (:func:`devnix.images.filesystem_of`). None: not known.
    image_env: tuple[str, ...] | None = None
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
    """What the rules look at: the config's model and its context, plus the Nix settings found."""

    config: DevConfig
    context: LintContext
    settings: dict[str, list[Setting]] = field(default_factory=dict)

    def setting(self, name: str) -> Setting | None:
        found = self.settings.get(name)
        return found[-1] if found else None

    @property
    def runs_nix(self) -> bool:
        image = self.config.image_ref
        return (
            self.context.nix_conf is not None
            or bool(self.settings)
            or any(re.search(r"(^|/)nix(:|$)", f) for f in self.config.features)
            or (image is not None and "nix" in image.repository)
        )

    @property
    def native(self) -> bool | None:
        """Whether Nix runs natively on the engine (None: cannot tell offline)."""
        engine = self.context.engine_platform
        if self.config.pinned is None:
            # Docker picks the engine's own variant when the image has one.
            known = self.context.image_platforms
            emulated = engine is not None and known and not any(p.same_machine(engine) for p in known)
            return not emulated
        if engine is None:
            return None
        return self.config.pinned.same_machine(engine)


def gather(config: DevConfig | Any, context: LintContext) -> Facts:
    """The facts the rules need: the model of a devcontainer.json (or its parsed value) and the Nix
    settings in nix.conf, NIX_CONFIG and the Nix Feature's option."""
    model = config if isinstance(config, DevConfig) else devconfig.read(config)
    facts = Facts(model, context)
    if context.nix_conf is not None:
        for number, line in enumerate(context.nix_conf.splitlines(), 1):
            _add_setting(facts.settings, line, None, number)
    for key, section in (("containerEnv", model.container_env), ("remoteEnv", model.remote_env)):
        for line in section.get("NIX_CONFIG", "").splitlines():
            _add_setting(facts.settings, line, (key, "NIX_CONFIG"), None)
    for feature_id, options in model.features.items():
        extra = options.get("extraNixConfig")
        if isinstance(extra, str):  # the Nix Feature's option: settings separated by commas
            for line in extra.split(","):
                _add_setting(facts.settings, line, ("features", feature_id, "extraNixConfig"), None)
    return facts


_FROM = re.compile(r"^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)
_ARG = re.compile(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$", re.IGNORECASE)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def dockerfile_base(dockerfile: str, build_args: Mapping[str, str] | None = None) -> str | None:
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
        args.update(build_args or {})  # build.args win over the Dockerfile's defaults

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


def loader_feature(config: DevConfig, local_with_loader: frozenset[str] = frozenset()) -> str | None:
    """The Feature that runs devnix's FHS loader step at build time, if the config has one: devnix's
    published ``nix`` Feature (``…devnix…/nix`` at any tag) or a local one holding fhs-loader.sh."""
    for feature_id in config.features:
        if feature_id in local_with_loader:
            return feature_id
        name = feature_id.split("@", 1)[0]
        if name.rfind(":") > name.rfind("/"):
            name = name[: name.rfind(":")]
        if "devnix" in name.lower() and name.lower().endswith("/nix"):
            return feature_id
    return None


def _add_setting(
    settings: dict[str, list[Setting]], line: str, path: JsonPath | None, number: int | None
) -> None:
    text = line.split("#", 1)[0].strip()
    name, equals, value = text.partition("=")
    if equals:
        settings.setdefault(name.strip(), []).append(Setting(value.strip(), path, number))


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
    target = facts.config.pinned or facts.context.engine_platform
    if not known or target is None or any(p.same_machine(target) for p in known):
        return []
    has = ", ".join(sorted(str(p) for p in known))
    name = facts.config.image or "the image"
    path = facts.config.pin_path if facts.config.pinned is not None else ("image",)
    return [(path or ("image",), f"{name} has no {target} variant (it has {has})", None)]


def _nix_path_missing(facts: Facts) -> list[Hit]:
    if not facts.runs_nix or facts.config.env("NIX_PATH") or facts.setting("nix-path"):
        return []
    for path, command in facts.config.commands:
        match = _CHANNEL_USE.search(command)
        if match:
            return [(path, f"this command uses Nix channels ({match.group()}) but NIX_PATH is not set", None)]
    return []


def _nix_store_volume(facts: Facts) -> list[Hit]:
    image = facts.config.image_ref
    digest = facts.context.image_digest or (image.digest if image else None)
    hex_digest = digest.split(":", 1)[-1].lower() if digest else None
    hits: list[Hit] = []
    # An anonymous volume is new with each container: it cannot outlive the image it was seeded from.
    for mount in facts.config.mounts:
        if not mount.is_nix_volume or not mount.source:
            continue
        runs = _HEX_RUN.findall(mount.source.lower())
        keyed = any(hex_digest.startswith(run) for run in runs) if hex_digest else bool(runs)
        if not keyed:
            message = f"volume {mount.source!r} over /nix will hide the store of a rebuilt image"
            hits.append((mount.path, message, None))
    return hits


def _flakes_not_enabled(facts: Facts) -> list[Hit]:
    features = " ".join(
        s.value
        for name in ("experimental-features", "extra-experimental-features")
        for s in facts.settings.get(name, [])
    )
    if facts.config.image_ref is not None:
        known = images.lookup(facts.config.image_ref)
        if known is not None:
            features += " " + known.nix_settings.get("experimental-features", "")
    if "flakes" in features.split():
        return []
    uses = [(path, match.group()) for path, c in facts.config.commands if (match := _FLAKE_USE.search(c))]
    if uses:
        path, what = uses[0]
        return [(path, f"this command uses flakes ({what}) but they are not enabled", None)]
    if facts.runs_nix and (facts.context.flake_nix or "use flake" in (facts.context.envrc or "")):
        what = "flake.nix" if facts.context.flake_nix else ".envrc's use flake"
        return [((), f"the project uses flakes ({what}) but they are not enabled", None)]
    return []


def _store_only_image(facts: Facts) -> list[Hit]:
    config = facts.config
    where = config.dockerfile
    path: JsonPath
    if config.image is not None:
        name, path, subject = config.image, ("image",), f"{config.image} is"
    elif where is not None and facts.context.dockerfile is not None:
        base = dockerfile_base(facts.context.dockerfile, config.build.args if config.build else None)
        # A Dockerfile that runs the step fixes whatever its FROM is (the step is a no-op on FHS images).
        if base is None or fhsloader.dockerfile_adds_loader(facts.context.dockerfile):
            return []
        name, path, subject = base, where[0], f"{where[1]} builds FROM {base},"
    else:
        return []  # compose configs and unreadable Dockerfiles: nothing known
    if loader_feature(config, facts.context.loader_features) is not None:
        return []
    if layout_of(name, facts.context.image_env) is not images.Filesystem.STORE_ONLY:
        return []
    target = config.pinned or facts.context.engine_platform
    loader = fhsloader.FHS_LOADERS["arm64" if target and target.architecture == "arm64" else "amd64"]
    return [
        (
            path,
            f"{subject} a store-only Nix image (no {loader}): VS Code's server cannot start in it, "
            "so VS Code and Codespaces cannot attach",
            None,
        )
    ]


def layout_of(image: str, env: tuple[str, ...] | None = None) -> images.Filesystem:
    """An image's layout by :func:`devnix.images.filesystem_of` (devnix's catalog, else the PATH in
    ``env``, its config's Env), for an image named as a config or a Dockerfile's FROM writes it."""
    try:
        ref: images.ImageRef | None = images.parse_ref(image)
    except DevnixError:
        ref = None
    return images.filesystem_of(ref, env)[0]


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


def lint(config: DevConfig | Any, context: LintContext | None = None) -> list[LintFinding]:
    """Every rule's findings for a config's model (or its parsed value), in rule order."""
    facts = gather(config, context or LintContext())
    return [
        LintFinding(rule.id, rule.severity, message, rule.hint, path, line)
        for rule in RULES
        for path, message, line in rule.check(facts)
    ]
