"""Pure: the devcontainer Templates collection (``templates/``), generated from ``devnix/scaffolds``.

The scaffolds are the only source of the text ``devnix init`` writes. A Template is the same scaffolds
rendered with ``${templateOption:...}`` placeholders where ``init`` would put what it detected, so the
two cannot drift: ``devnix templates render --check`` (run by the tests) fails when the committed
``templates/`` differs from what the scaffolds give.

A Template cannot look at the engine, so every Template runs its image as the engine's own platform:
the default image is multi-arch (native on amd64 and arm64 engines), and the ``image`` option can
point at a mirror or at an image made by ``devnix bootstrap``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from devnix.images import default_image
from devnix.nixconf import DEFAULT_NIX_PATH, NixOptions, settings
from devnix.render import Layout, base_context, render_context

VERSION = "1.0.0"
IMAGE_OPTION = "${templateOption:image}"
NIX_PATH_OPTION = "${templateOption:nixPath}"


@dataclass(frozen=True)
class TemplateSpec:
    id: str
    name: str
    description: str
    layout: Layout
    keywords: tuple[str, ...]


TEMPLATES: tuple[TemplateSpec, ...] = (
    TemplateSpec(
        "nix",
        "Nix",
        "Nix in a multi-arch image, configured for containers (flakes, NIX_PATH, the VS Code Nix extension).",
        Layout(name="Nix"),
        ("nix", "nixpkgs"),
    ),
    TemplateSpec(
        "nix-flake",
        "Nix flake dev shell",
        "Nix with the project's flake dev shell entered on start through direnv.",
        Layout(name="Nix flake", flake=True, direnv=True, write_flake_nix=True),
        ("nix", "flake", "direnv"),
    ),
    TemplateSpec(
        "nix-dockerfile",
        "Nix (Dockerfile)",
        "Nix with its configuration baked into the image by a Dockerfile.",
        Layout(name="Nix (Dockerfile)", dockerfile=True),
        ("nix", "dockerfile"),
    ),
)


def spec(template_id: str) -> TemplateSpec:
    for template in TEMPLATES:
        if template.id == template_id:
            return template
    from devnix.errors import UsageError

    raise UsageError(
        f"unknown template {template_id!r}",
        hint=f"devnix has {', '.join(t.id for t in TEMPLATES)}",
    )


def metadata(template: TemplateSpec) -> dict[str, Any]:
    """``devcontainer-template.json``: option types are string and boolean only in the spec."""
    extra: dict[str, Any] = {}
    if template.layout.write_flake_nix:
        # A project that has a flake keeps it: the user can leave the scaffold out when applying.
        extra["optionalPaths"] = ["flake.nix"]
    return {
        "id": template.id,
        "version": VERSION,
        "name": template.name,
        "description": template.description,
        "publisher": "devnix",
        "platforms": ["Nix"],
        "keywords": list(template.keywords),
        "options": {
            "image": {
                "type": "string",
                "description": "Nix image (a multi-arch one runs natively on amd64 and arm64 engines)",
                "proposals": [str(default_image().ref)],
                "default": str(default_image().ref),
            },
            "nixPath": {
                "type": "string",
                "description": "NIX_PATH inside the container",
                "proposals": [DEFAULT_NIX_PATH, "nixpkgs=channel:nixos-24.05"],
                "default": DEFAULT_NIX_PATH,
            },
        },
        **extra,
    }


def render_template(template: TemplateSpec) -> dict[str, str]:
    """``{path inside templates/src/<id>/: text}``."""
    values = base_context(template.layout)
    values.update(
        image=IMAGE_OPTION,
        nix_path=NIX_PATH_OPTION,
        platform="the Docker engine's platform",
        engine_platform="the Docker engine's platform",
        emulated=False,
        pin_platform=False,
        store_volume=None,
        # A Template cannot know its image: the step is there for store-only ones (nixos/nix, the
        # default) and does nothing in images that have an FHS loader.
        fhs_loader=True,
        store_only=False,
        settings=tuple(settings(NixOptions(), emulated=False)),
    )
    files = render_context(values, template.layout)
    files["devcontainer-template.json"] = json.dumps(metadata(template), indent=4) + "\n"
    files["NOTES.md"] = _notes(template)
    return files


def render_collection() -> dict[str, str]:
    """Every file of ``templates/`` (sources and their tests), relative to ``templates/``."""
    files: dict[str, str] = {}
    for template in TEMPLATES:
        for path, text in render_template(template).items():
            files[f"src/{template.id}/{path}"] = text
        files[f"test/{template.id}/test.sh"] = _test_script(template)
    return files


def _notes(template: TemplateSpec) -> str:
    return (
        f"# {template.name}\n\n"
        "Generated by `devnix templates render` from devnix's scaffolds: edit those, not this folder.\n\n"
        "The image runs as the Docker engine's own platform. On Apple Silicon with an amd64-only image,\n"
        "Nix runs under emulation and needs `filter-syscalls = false` in `.devcontainer/nix.conf`;\n"
        "`devnix init` detects that and writes it for you, and `devnix bootstrap` builds a native image.\n"
    )


def _test_script(template: TemplateSpec) -> str:
    checks = [
        ("nix runs", "nix --version"),
        ("flakes are on", "nix show-config | grep -q '^experimental-features = .*flakes'"),
        ("the syscall filter stays on natively", "nix show-config | grep -q '^filter-syscalls = true'"),
        ("NIX_PATH is set", 'test -n "$NIX_PATH"'),
        # What VS Code's server needs first: a loader at the FHS path that finds libstdc++ by name.
        (
            "an FHS loader finds libstdc++ (VS Code's server can start)",
            "l=/lib64/ld-linux-x86-64.so.2; [ -e $l ] || l=/lib/ld-linux-aarch64.so.1; "
            '$l --preload "libstdc++.so.6 libgcc_s.so.1" "$(readlink -f /bin/sh)" -c :',
        ),
    ]
    lines = [
        "#!/bin/sh",
        f"# Checks for the {template.id} Template, run inside a container made from it.",
        "failed=0",
        'check() { if sh -c "$2"; then echo "ok: $1"; else echo "FAILED: $1"; failed=1; fi; }',
        *(f"check {shlex.quote(label)} {shlex.quote(command)}" for label, command in checks),
        'exit "$failed"',
    ]
    return "\n".join(lines) + "\n"
