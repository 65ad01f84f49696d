"""``devnix validate``: JSONC syntax, the official schema, then the Nix checks, each at ``line:col``.

Exit codes ride on the result (the CLI exits with them after printing): 0 when nothing is wrong (Nix
warnings alone do not fail), 1 for schema findings or Nix errors, 2 when the file is not JSONC.

:func:`run_all` checks many paths in one process (pre-commit passes every staged devcontainer.json at
once): the schema is located and compiled once, a path that cannot be read is that path's error (the
others are still checked), and the report's exit code is the worst one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from devnix import devconfig, images, jsonc, lint, platforms
from devnix.devconfig import DevConfig
from devnix.errors import DevnixError, FileSystemError
from devnix.images import Filesystem
from devnix.jsonc import JsonPath

CANDIDATES = (Path(".devcontainer") / "devcontainer.json", Path(".devcontainer.json"))


@dataclass(frozen=True)
class ValidateOptions:
    path: Path | None = None  # a devcontainer.json, or a folder to look in (default: .)
    schema_dir: Path | None = None
    engine_platform: str | None = None  # the Docker engine's platform, when the caller knows it
    ask_engine: bool = True  # else ask the engine (quickly); unknown when it does not answer


@dataclass(frozen=True)
class Finding:
    """One problem, where it is, and what kind: "syntax", "schema" or "nix"."""

    file: str
    line: int
    column: int
    kind: str
    message: str
    path: JsonPath | None = None
    severity: str = "error"
    rule: str | None = None
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "kind": self.kind,
            "severity": self.severity,
            "rule": self.rule,
            "path": None if self.path is None else jsonc.format_path(self.path),
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class ValidateResult:
    file: Path
    findings: list[Finding] = field(default_factory=list)
    schema_dir: Path | None = None
    schema_skipped: str | None = None  # why the schema step did not run (no network, no cached copy)
    error: DevnixError | None = None  # the path could not be read (missing, a folder without a config…)

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        if any(f.kind == "syntax" for f in self.findings):
            return 2
        return 1 if any(f.severity == "error" for f in self.findings) else 0

    def to_json(self) -> dict[str, Any]:
        error = self.error
        return {
            "file": str(self.file),
            "valid": self.exit_code == 0,
            "exit_code": self.exit_code,
            "schema_dir": None if self.schema_dir is None else str(self.schema_dir),
            "schema_skipped": self.schema_skipped,
            "findings": [finding.to_json() for finding in self.findings],
            "error": None if error is None else {"message": error.message, "hint": error.hint},
        }


@dataclass
class ValidateReport:
    """Every path's result, in the order the paths were given."""

    results: list[ValidateResult]

    @property
    def exit_code(self) -> int:
        # The worst wins: a path that could not be read (6) > not JSONC (2) > findings (1) > clean (0).
        return max((result.exit_code for result in self.results), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.exit_code == 0,
            "exit_code": self.exit_code,
            "files": [result.to_json() for result in self.results],
        }


def find_config(path: Path | None) -> Path:
    """The devcontainer.json to check: ``path`` itself, or the one in the folder ``path`` (or .)."""
    where = path or Path(".")
    if where.is_dir():
        for candidate in CANDIDATES:
            if (where / candidate).is_file():
                return where / candidate
        raise FileSystemError(
            f"no .devcontainer/devcontainer.json or .devcontainer.json in {where}",
            hint="pass the path of the devcontainer.json to check",
        )
    if not where.exists():
        raise FileSystemError(f"{where} does not exist", hint="pass the path of a devcontainer.json")
    return where


def _project_root(config: Path) -> Path:
    """The folder the container is for: the one holding .devcontainer/ (or .devcontainer.json)."""
    for parent in config.parents:
        if parent.name == ".devcontainer":
            return parent.parent
    return config.parent


def _read_optional(path: Path) -> str | None:
    try:
        return jsonc.read_file(path) if path.is_file() else None
    except DevnixError:  # a context file that cannot be read is just unknown
        return None


def _context(
    config_path: Path, config: DevConfig, engine: str | None, ask_engine: bool = False
) -> lint.LintContext:
    root = _project_root(config_path)
    known = images.lookup(config.image_ref) if config.image_ref is not None else None
    dockerfile, loader_features = loader_files(config_path.parent, config)
    base = config.image
    if base is None and dockerfile is not None:
        base = lint.dockerfile_base(dockerfile, config.build.args if config.build else None)
    # The engine's local copy tells a store-only image the catalog does not know, at the price of one
    # quick socket question, asked only when the engine answered already (never the registry: slow).
    env = None
    if base is not None and ask_engine and engine is not None and lint.layout_of(base) is Filesystem.UNKNOWN:
        env = _local_env(base)
    return lint.LintContext(
        nix_conf=_read_optional(config_path.parent / "nix.conf"),
        flake_nix=(root / "flake.nix").is_file(),
        envrc=_read_optional(root / ".envrc"),
        engine_platform=platforms.parse(engine) if engine else None,
        image_platforms=known.platforms if known is not None else None,
        dockerfile=dockerfile,
        image_env=env,
        loader_features=loader_features,
    )


def loader_files(folder: Path, config: DevConfig) -> tuple[str | None, frozenset[str]]:
    """What the files beside a devcontainer.json (in ``folder``) say about devnix's FHS loader step:
    the config's Dockerfile text, and its local Features (``./nix``…) whose folder has the script."""
    from devnix.fhsloader import SCRIPT_NAME

    where = config.dockerfile
    dockerfile = None
    if where is not None:
        try:
            dockerfile = (folder / where[1]).read_text("utf-8", errors="replace")
        except OSError:  # a missing Dockerfile is the build's problem to report, not ours
            dockerfile = None
    local = frozenset(
        feature_id
        for feature_id in config.features
        if feature_id.startswith(("./", "../"))
        and "nix" in feature_id.lower()
        and (folder / feature_id / SCRIPT_NAME).is_file()
    )
    return dockerfile, local


@cache  # one question per image per process, however many files name it
def _local_env(image: str) -> tuple[str, ...] | None:
    """The image config's Env of the engine's local copy of ``image``, or None."""
    from devnix import engine
    from devnix.errors import EngineError

    try:
        local = engine.local_image_of(images.parse_ref(image), timeout=1.0)
    except (EngineError, DevnixError):
        return None
    return local.env if local is not None else None


@cache  # one question per process, however many files are checked
def _engine_platform() -> str | None:
    """The engine's platform for the native/emulated rules, or None (the rules then stay quiet)."""
    from devnix import engine
    from devnix.errors import EngineError

    try:
        return str(engine.version(timeout=1.0).platform)
    except EngineError:
        return None


class _SchemaLookup:
    """Where the schema is, asked once per run however many files are checked: offline, each file would
    otherwise retry the download and wait out its timeout."""

    def __init__(self, schema_dir: Path | None) -> None:
        self._schema_dir = schema_dir
        self._answer: tuple[Path | None, str | None] | None = None

    def get(self) -> tuple[Path | None, str | None]:
        """The schema folder, or None and why the schema step is skipped."""
        from devnix import schema

        if self._answer is None:
            try:
                self._answer = (schema.locate(self._schema_dir), None)
            except schema.SchemaUnavailableError as error:
                # Offline with no cached copy: the syntax and Nix checks still run; the skip is said.
                self._answer = (None, f"{error.message}; {error.hint}" if error.hint else error.message)
        return self._answer


def run(options: ValidateOptions) -> ValidateResult:
    """Check one devcontainer.json; a syntax error stops before the schema and the Nix checks."""
    result = _check(options, _SchemaLookup(options.schema_dir))
    if result.error is not None:
        raise result.error
    return result


def run_all(paths: Sequence[Path], options: ValidateOptions) -> ValidateReport:
    """Check each of ``paths`` (files or folders; ``options.path`` is replaced by each in turn).

    A path that cannot be read is that result's ``error``; errors that concern every path (a
    ``--schema-dir`` without the schema, a schema that does not compile) still stop the run.
    """
    lookup = _SchemaLookup(options.schema_dir)
    return ValidateReport([_check(replace(options, path=path), lookup) for path in paths])


def _check(options: ValidateOptions, lookup: _SchemaLookup) -> ValidateResult:
    from devnix import schema

    try:
        config_path = find_config(options.path)
    except FileSystemError as error:
        return ValidateResult(options.path or Path("."), error=error)
    shown = str(config_path)
    result = ValidateResult(config_path)
    try:
        document = jsonc.parse(jsonc.read_file(config_path))
    except jsonc.JsoncSyntaxError as error:
        result.findings.append(Finding(shown, error.line, error.column, "syntax", error.reason))
        return result
    except FileSystemError as error:  # a FIFO, a device, no permission
        result.error = error
        return result
    result.schema_dir, result.schema_skipped = lookup.get()
    if result.schema_dir is not None:
        for problem in schema.check(document.value, result.schema_dir):
            line, column = document.locate(problem.path)
            result.findings.append(Finding(shown, line, column, "schema", problem.message, problem.path))
    engine_platform = options.engine_platform
    if engine_platform is None and options.ask_engine:
        engine_platform = _engine_platform()
    config = devconfig.read(document.value)
    context = _context(config_path, config, engine_platform, options.ask_engine)
    for hit in lint.lint(config, context):
        if hit.nix_conf_line is not None:
            where, (line, column) = str(config_path.parent / "nix.conf"), (hit.nix_conf_line, 1)
        else:
            where, (line, column) = shown, document.locate(hit.path)
        result.findings.append(
            Finding(where, line, column, "nix", hit.message, hit.path, hit.severity, hit.id, hit.hint)
        )
    # Schema findings, then Nix ones, each in file order (sort is stable for ties).
    result.findings.sort(key=lambda f: (f.kind != "schema", f.file, f.line, f.column))
    return result
