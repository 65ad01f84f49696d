"""Pure: devnix's FHS loader step, which lets VS Code's server start in store-only Nix images.

It reads nothing but its own package data (the script, through importlib.resources).

The script itself is ``devnix/scaffolds/fhs-loader.sh`` (what it does and why is in its header). It is
the one source of every copy devnix writes: next to a Dockerfile by ``init`` and the Templates, and in
the ``nix`` Feature (``features/src/nix/fhs-loader.sh``, kept equal by ``devnix templates render``).
"""

from __future__ import annotations

import re
from functools import cache

SCRIPT_NAME = "fhs-loader.sh"
# Where the script puts the loader, per architecture of the container (VS Code's server asks for these).
FHS_LOADERS = {"amd64": "/lib64/ld-linux-x86-64.so.2", "arm64": "/lib/ld-linux-aarch64.so.1"}
# The folder of symlinks the copied loader searches.
LIB_DIR = "/usr/lib/devnix-fhs"

# A Dockerfile instruction that runs the step (any path, `sh` or `bash`, after a COPY of the script).
_RUN_STEP = re.compile(r"^\s*RUN\b.*\bfhs-loader\.sh\b", re.MULTILINE | re.IGNORECASE)


@cache
def script_text() -> str:
    """The script, as package data."""
    from importlib import resources

    return resources.files("devnix").joinpath(f"scaffolds/{SCRIPT_NAME}").read_text("utf-8")


def dockerfile_adds_loader(dockerfile: str) -> bool:
    """Whether a Dockerfile runs devnix's FHS loader step."""
    return _RUN_STEP.search(dockerfile) is not None
