"""A :class:`~devnix.plan.Plan` to the text of the files ``devnix init`` writes.

Pure but for one cache: jinja2's compiled scaffolds in the user cache folder (see
:func:`_bytecode_cache`), which only saves time and is never an error.

The scaffolds in ``devnix/scaffolds/`` are the single source of these texts; the Templates collection in
``templates/`` is generated from them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from devnix.fhsloader import SCRIPT_NAME, script_text
from devnix.images import Filesystem
from devnix.plan import Plan

if TYPE_CHECKING:
    import jinja2

NIX_EXTENSION = "jnoortheen.nix-ide"
DIRENV_EXTENSION = "mkhl.direnv"


@dataclass(frozen=True)
class Layout:
    """Which optional files the user asked for."""

    name: str
    dockerfile: bool = False
    flake: bool = False
    direnv: bool = False
    write_flake_nix: bool = False  # only when the project has no flake.nix yet


def base_context(layout: Layout) -> dict[str, Any]:
    """The values that come from the layout alone (shared by ``init`` and the Templates)."""
    extensions = [NIX_EXTENSION]
    if layout.direnv:
        extensions.append(DIRENV_EXTENSION)
    return {
        "name": layout.name,
        "dockerfile": layout.dockerfile,
        "flake": layout.flake,
        "direnv": layout.direnv,
        "post_create": layout.flake or layout.direnv,
        "extensions": extensions,
    }


def context(plan: Plan, layout: Layout) -> dict[str, Any]:
    """The values the scaffolds see for a decided plan."""
    image = str(plan.image)
    if plan.store_volume and plan.image_platforms.digest and not plan.image.digest:
        # The volume is keyed to this digest, so the image must be pinned to it too.
        image = str(plan.image.with_digest(plan.image_platforms.digest))
    return {
        **base_context(layout),
        "image": image,
        "platform": str(plan.platform),
        "engine_platform": str(plan.engine_platform),
        "emulated": plan.emulated,
        "pin_platform": plan.pin_platform,
        "nix_path": plan.nix_path,
        "settings": plan.settings,
        "store_volume": plan.store_volume,
        "fhs_loader": plan.fhs_loader,
        "store_only": plan.filesystem is Filesystem.STORE_ONLY,
    }


def render(plan: Plan, layout: Layout) -> dict[str, str]:
    """``{path relative to the project: text}`` for every file to write."""
    return render_context(context(plan, layout), layout)


def render_context(values: Mapping[str, Any], layout: Layout) -> dict[str, str]:
    """Render the scaffolds with given values (real ones, or Template placeholders)."""
    env = environment()
    files = {
        ".devcontainer/devcontainer.json": env.get_template("devcontainer.json.j2").render(values),
        ".devcontainer/nix.conf": env.get_template("nix.conf.j2").render(values),
    }
    if layout.dockerfile or values["fhs_loader"]:
        files[".devcontainer/Dockerfile"] = env.get_template("Dockerfile.j2").render(values)
    if values["fhs_loader"]:
        files[f".devcontainer/{SCRIPT_NAME}"] = script_text()
    if layout.flake or layout.direnv:
        files[".devcontainer/post-create.sh"] = env.get_template("post-create.sh.j2").render(values)
    if layout.direnv:
        files[".envrc"] = env.get_template("envrc.j2").render(values)
    if layout.write_flake_nix:
        files["flake.nix"] = env.get_template("flake.nix.j2").render(values)
    return {path: text if text.endswith("\n") else text + "\n" for path, text in files.items()}


@cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("devnix", "scaffolds"),
        bytecode_cache=_bytecode_cache(),
        autoescape=False,  # the outputs are JSON, shell and Nix, not HTML
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    # JSON string literals as people write them (jinja's tojson escapes < > & for HTML).
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled scaffolds in the user cache: compiling them costs ~5 ms of every ``init``.

    Keyed by each template's source checksum (jinja2 does that), so a changed scaffold recompiles. A
    cache that cannot be written is no cache, never an error.
    """
    import os
    from pathlib import Path

    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, ValueError, EOFError):
                bucket.reset()

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                Path(self.directory).mkdir(parents=True, exist_ok=True)
                super().dump_bytecode(bucket)
            except OSError:
                pass

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return QuietCache(str(Path(base) / "devnix" / f"jinja2-{jinja2.__version__}"))
