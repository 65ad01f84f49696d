"""Pure: the probe that tells whether VS Code's server can start in an image, and how its output reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# What VS Code's server (a glibc `node`) needs besides the FHS loader, found through that loader.
SERVER_LIBRARIES = ("libstdc++.so.6", "libgcc_s.so.1")

# The probe the vscode-server check runs with `/bin/sh -c` in the dev container's image. POSIX sh and
# only what a store-only Nix image has on its PATH (coreutils, grep; no /usr/bin): it prints facts, one
# per line, and :func:`parse_server_probe` judges them. The loader's own `--help` (glibc >= 2.33) lists
# the folders and the ld.so.cache it searches, in order; an older glibc gets the usual folders.
SERVER_PROBE = r"""export LC_ALL=C
m=$(uname -m)
echo "machine $m"
case $m in
    x86_64 | amd64) l=/lib64/ld-linux-x86-64.so.2 ;;
    aarch64 | arm64) l=/lib/ld-linux-aarch64.so.1 ;;
    *) exit 0 ;;
esac
[ -d /nix/store ] && echo nix-store
[ -e /usr/lib/devnix-fhs/.devnix-fhs-loader ] && echo devnix-loader
echo "loader $l"
[ -e "$l" ] || exit 0
echo "resolved $(readlink -f "$l")"
libs() {
    for n in libstdc++.so.6 libgcc_s.so.1; do [ -e "$1/$n" ] && echo "lib $n $1/$n"; done
}
cached() {
    echo "cache $1"
    [ -f "$1" ] || return 0
    for n in libstdc++.so.6 libgcc_s.so.1; do
        p=$(grep -ao "/[-+._/[:alnum:]]*/$n" "$1" 2>/dev/null | head -n 1)
        [ -n "$p" ] && [ -e "$p" ] && echo "lib $n $p"
    done
}
"$l" --help 2>/dev/null | {
    on=
    while IFS= read -r line; do
        case $line in "Shared library search path:"*) on=1; echo help; continue ;; esac
        [ -n "$on" ] || continue
        [ -n "$line" ] || break
        line=${line#"${line%%[! ]*}"}
        case $line in
            "(libraries located via "*) c=${line#"(libraries located via "}; cached "${c%)}" ;;
            /*) d=${line%% (*}; echo "search $d"; libs "$d" ;;
        esac
    done
    if [ -z "$on" ]; then
        cached /etc/ld.so.cache
        for d in "/lib/$m-linux-gnu" "/usr/lib/$m-linux-gnu" /lib64 /usr/lib64 /lib /usr/lib; do
            echo "search $d"; libs "$d"
        done
    fi
}
"""


@dataclass(frozen=True)
class ServerProbe:
    """What the vscode-server probe found in an image (``ran`` False: it could not tell, ``detail`` why)."""

    image: str
    ran: bool
    detail: str = ""
    machine: str = ""
    loader: str | None = None  # the FHS loader path VS Code's server asks for on that machine
    loader_found: bool = False
    resolved: str | None = None  # where the loader path leads
    help: bool = False  # the loader listed its own search path (glibc >= 2.33)
    search: tuple[str, ...] = ()  # folders it searches, in order
    cache: str | None = None  # the ld.so.cache it reads
    libraries: Mapping[str, str] = field(default_factory=dict)  # SERVER_LIBRARIES found: name -> path
    nix_store: bool = False
    devnix_loader: bool = False  # devnix's FHS loader step ran in this image


def parse_server_probe(image: str, output: str) -> ServerProbe:
    """Read what :data:`SERVER_PROBE` printed."""
    values: dict[str, Any] = {"image": image, "ran": True}
    search: list[str] = []
    libraries: dict[str, str] = {}
    for line in output.splitlines():
        word, _, rest = line.strip().partition(" ")
        # devnix's loader searches its folder padded with slashes (fhs-loader.sh says why): show it once.
        rest = re.sub(r"//+", "/", rest)
        if word == "machine":
            values["machine"] = rest
        elif word == "loader":
            values["loader"] = rest
        elif word == "resolved":
            values["loader_found"], values["resolved"] = True, rest
        elif word in ("nix-store", "devnix-loader", "help"):
            values[word.replace("-", "_")] = True
        elif word == "search":
            search.append(rest)
        elif word == "cache":
            values["cache"] = rest
        elif word == "lib":
            name, _, where = rest.partition(" ")
            libraries.setdefault(name, where)  # the first one found is the one the loader takes
    if not values.get("machine"):
        return ServerProbe(image, False, f"the probe printed {output.strip()[:200]!r}")
    return ServerProbe(**values, search=tuple(search), libraries=libraries)
