"""The nixos/nix stand-in reproduces "VS Code's server must start in store-only Nix images".

Plain docker, no devnix: in the store-only image (storeonly.py) the VS Code server stand-in (the
official Node.js binary, vscode_server.py) cannot even be exec'd, amd64 natively and arm64 under QEMU,
while in the Debian-shaped Nix stand-in it runs. FHS symlinks to the store loader and libraries, an
/etc/ld.so.conf, a real /etc/ld.so.cache and /etc/ld.so.preload do not make it start either: the store
loader, like nixpkgs', looks only in its own lib dir. Nix itself works (``nix --version``, an offline
``nix-build`` under the image's build-users-group).

The containers are shared by the tests of this module (one per image and arch); the test that edits
its container has one of its own.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import storeonly
from standins import BASE_ENV, NixImages, run
from vscode_server import NODE_VERSION, VSCodeServer, docker_exec

# What a failed exec of node looks like: from runc (exec without a shell) or from the shell.
EXEC_FAILURE = re.compile(r"no such file or directory|not found", re.IGNORECASE)
ARCHES = {"amd64": "x64", "arm64": "arm64"}  # docker platform arch -> process.arch

StartContainer = Callable[[str, str], str]


@pytest.fixture(scope="module")
def start_container(docker_client: object) -> Iterator[StartContainer]:
    """``start(image, arch) -> container id``, one container per (image, arch) for the module."""
    started: dict[tuple[str, str], str] = {}

    def start(image: str, arch: str) -> str:
        if (image, arch) not in started:
            name = f"devnix-storeonly-{uuid.uuid4().hex[:8]}"
            started[(image, arch)] = run(
                ["docker", "run", "-d", "--platform", f"linux/{arch}", "--name", name, image,
                 "sleep", "infinity"],
                env=BASE_ENV, timeout=600,
            ).stdout.strip()  # fmt: skip
        return started[(image, arch)]

    yield start
    for cid in started.values():
        run(["docker", "rm", "-f", cid], env=BASE_ENV, check=False, timeout=120)


def sh(container: str, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return docker_exec(container, script, timeout=timeout)


def check(container: str, script: str, timeout: float = 600) -> str:
    proc = sh(container, script, timeout)
    assert proc.returncode == 0, f"{script!r} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def store_path(container: str, pattern: str) -> str:
    """The one store path matching a glob (``*-glibc-*``) in the container."""
    paths = check(container, f"ls -d /nix/store/{pattern}").split()
    assert len(paths) == 1, paths
    return paths[0]


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_vscode_server_cannot_start_in_the_storeonly_image(
    arch: str,
    nixos_images: NixImages,
    nix_images: NixImages,
    vscode_server: VSCodeServer,
    start_container: StartContainer,
) -> None:
    nixos = start_container(getattr(nixos_images, arch), arch)
    node = vscode_server.install(nixos)
    assert node == f"/root/.vscode-server/bin/{vscode_server.commit}/node"
    assert check(nixos, f"ls {node.rsplit('/', 1)[0]}").split() == ["node"]

    direct = run(["docker", "exec", nixos, node, "--version"], env=BASE_ENV, check=False, timeout=300)
    through_sh = vscode_server.run(nixos, node)
    print(f"[{arch}] docker exec node: {direct.stderr.strip()}")
    print(f"[{arch}] sh -c node: {through_sh.stderr.strip()}")
    for proc in (direct, through_sh):
        assert proc.returncode != 0
        assert EXEC_FAILURE.search(proc.stderr), proc.stderr
    assert "v22" not in direct.stdout + through_sh.stdout

    # The same binary in the Debian-shaped Nix stand-in (FHS loader; libstdc++ is there for Nix): runs.
    debian = start_container(getattr(nix_images, arch), arch)
    works = vscode_server.run(debian, vscode_server.install(debian))
    assert works.returncode == 0, works.stderr
    assert works.stdout.split() == [f"v{NODE_VERSION}", ARCHES[arch]]


def test_fhs_symlinks_and_ld_so_cache_do_not_fix_it(
    nixos_images: NixImages, vscode_server: VSCodeServer, docker_client: object
) -> None:
    """The obvious "fixes" short of patching the loader's search path: still no node."""
    name = f"devnix-storeonly-fix-{uuid.uuid4().hex[:8]}"
    cid = run(
        ["docker", "run", "-d", "--platform", "linux/amd64", "--name", name, nixos_images.amd64,
         "sleep", "infinity"],
        env=BASE_ENV, timeout=600,
    ).stdout.strip()  # fmt: skip
    try:
        node = vscode_server.install(cid)
        glibc = store_path(cid, "*-glibc-*")
        gcc_lib = store_path(cid, "*-gcc-*-lib")
        loader = f"{glibc}/lib/ld-linux-x86-64.so.2"
        libs = " ".join(
            [f"{gcc_lib}/lib/libstdc++.so.6", f"{gcc_lib}/lib/libgcc_s.so.1", f"{glibc}/lib/libc.so.6",
             f"{glibc}/lib/libm.so.6"]
        )  # fmt: skip

        # 1. The FHS loader name and the libraries in the FHS lib dirs, as symlinks into the store.
        check(
            cid,
            f"mkdir -p /lib64 /usr/lib/x86_64-linux-gnu && ln -s {loader} /lib64/ld-linux-x86-64.so.2"
            f" && for l in {libs}; do ln -s $l /usr/lib/x86_64-linux-gnu/ && ln -s $l /usr/lib/; done",
        )
        fhs = vscode_server.run(cid, node)
        print(f"FHS symlinks: {fhs.stderr.strip()}")
        assert fhs.returncode != 0
        assert "libstdc++.so.6: cannot open shared object file" in fhs.stderr

        # 2. ... plus /etc/ld.so.conf, a real /etc/ld.so.cache (bookworm's static ldconfig from the
        # host) and libstdc++ in /etc/ld.so.preload: the store loader reads none of them.
        ldconfig = Path("/sbin/ldconfig")
        if ldconfig.is_file():
            run(["docker", "cp", str(ldconfig), f"{cid}:/tmp/ldconfig"], env=BASE_ENV, timeout=120)
            check(cid, f"printf '%s\\n' {gcc_lib}/lib {glibc}/lib > /etc/ld.so.conf && /tmp/ldconfig")
            assert "libstdc++.so.6" in check(cid, "/tmp/ldconfig -p")
        check(cid, f"echo {gcc_lib}/lib/libstdc++.so.6 > /etc/ld.so.preload")
        cached = vscode_server.run(cid, node)
        print(f"FHS symlinks + ld.so.conf/cache/preload: {cached.stderr.strip()}")
        assert cached.returncode != 0
        assert "libstdc++.so.6: cannot open shared object file" in cached.stderr

        # Control: the binary is fine; given the library path, the store loader runs it.
        ok = sh(cid, f"{loader} --library-path {gcc_lib}/lib {node} -e 'console.log(process.version)'")
        assert ok.returncode == 0 and ok.stdout.strip() == f"v{NODE_VERSION}", ok.stderr
    finally:
        run(["docker", "rm", "-f", cid], env=BASE_ENV, check=False, timeout=120)


SHAPE_SCRIPT = r"""
for p in /lib64 /lib /sbin /usr/lib64 /etc/os-release /usr/lib/os-release /etc/ld.so.cache /etc/ld.so.conf \
         /usr/lib/$TRIPLE; do
    [ -e "$p" ] || [ -L "$p" ] && echo "present $p"
done
command -v ldconfig >/dev/null && echo "present ldconfig"
find / -xdev -name 'ld-linux*' ! -path '/nix/store/*' | sed 's/^/present /'
echo "bin $(ls -A /bin | tr '\n' ' ')"
echo "usr_bin $(ls -A /usr/bin | tr '\n' ' ')"
echo "sh $(readlink /bin/sh)"
echo "env $(readlink /usr/bin/env)"
echo "profile $(readlink /root/.nix-profile) $(readlink /nix/var/nix/profiles/default)"
echo "nixbld $(getent group nixbld)"
echo "nixbld1 $(id -u nixbld1):$(id -g nixbld1)"
"""


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_shape_is_like_nixos_nix(arch: str, nixos_images: NixImages, start_container: StartContainer) -> None:
    image = getattr(nixos_images, arch)
    cid = start_container(image, arch)
    info = storeonly.ARCHES[arch]
    lines = check(cid, f"TRIPLE={info.triple}\n{SHAPE_SCRIPT}").splitlines()
    assert [line for line in lines if line.startswith("present")] == []
    facts = dict(line.split(" ", 1) for line in lines)
    glibc = store_path(cid, "*-glibc-*")
    gcc_lib = store_path(cid, "*-gcc-*-lib")
    assert re.fullmatch(r"/nix/store/[0-9a-df-np-sv-z]{32}-glibc-2\.41", glibc)
    assert re.fullmatch(r"/nix/store/[0-9a-df-np-sv-z]{32}-gcc-[0-9.]+-lib", gcc_lib)
    assert facts["bin"].split() == ["sh"] and re.fullmatch(
        r"/nix/store/[^/]+-bash-[^/]+/bin/bash", facts["sh"]
    )
    assert facts["usr_bin"].split() == ["env"] and re.search(r"-coreutils-[^/]+/bin/env$", facts["env"])
    assert facts["profile"].split()[0] == "/nix/var/nix/profiles/default"
    users = facts["nixbld"].split(":")[3].split(",")
    assert facts["nixbld"].startswith("nixbld:x:30000:") and users == [f"nixbld{i}" for i in range(1, 33)]
    assert facts["nixbld1"] == "30001:30000"
    conf = check(cid, "cat /etc/nix/nix.conf")
    assert "build-users-group = nixbld" in conf and "sandbox = false" in conf
    assert "trusted-public-keys = cache.nixos.org-1:" in conf

    # libstdc++ is not next to libc (as in Nix), and only the store has the libraries.
    assert check(
        cid, f"ls {glibc}/lib/libstdc++.so.6 {gcc_lib}/lib/libstdc++.so.6 2>/dev/null || true"
    ).split() == [f"{gcc_lib}/lib/libstdc++.so.6"]
    # The loader searches its own lib dir only (plus the "/" fillers of its rewritten built-in list).
    help_text = check(cid, f"{glibc}/lib/{info.loader} --help")
    search = help_text.split("Shared library search path:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    dirs = [line.strip().removesuffix(" (system search path)") for line in search if "system search" in line]
    assert dirs[0] == f"{glibc}/lib" and set(dirs[1:]) <= {"/", "//"}, search
    assert not [line for line in search if "/etc/ld.so.cache" in line], search
    # A fix script finds the loader's search dir as one NUL-terminated string, as in nixpkgs' ld.so.
    loader_bytes = subprocess.run(
        ["docker", "exec", cid, "cat", f"{glibc}/lib/{info.loader}"], capture_output=True, check=True
    ).stdout
    assert loader_bytes.count(f"\0{glibc}/lib/\0".encode()) >= 1

    config = json.loads(run(["docker", "image", "inspect", image], env=BASE_ENV, timeout=60).stdout)[0]
    env = dict(e.split("=", 1) for e in config["Config"]["Env"])
    assert env["PATH"] == storeonly.PROFILE_PATH
    assert env["USER"] == "root"
    assert env["NIX_SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert config["Architecture"] == arch


NIX_BUILD = (
    "nix-build --no-out-link --option substituters '' -E "
    '\'derivation { name = "x"; system = builtins.currentSystem; builder = "/bin/sh";'
    ' args = ["-c" "echo ok $UID > $out"]; }\''
)


SECCOMP_UNDER_QEMU = "unable to load seccomp BPF program: Invalid argument"


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_nix_works(arch: str, nixos_images: NixImages, start_container: StartContainer) -> None:
    cid = start_container(getattr(nixos_images, arch), arch)
    assert re.fullmatch(r"nix \(Nix\) 2\.26\.\d+\n", check(cid, "nix --version"))
    build = NIX_BUILD
    if arch != "amd64":
        # Nix 2.26 under qemu-user: its seccomp filter cannot be loaded (QEMU does not translate BPF),
        # as with the real nixos/nix under emulation; filter-syscalls = false is the usual way out.
        plain = sh(cid, build, timeout=900)
        print(f"[{arch}] nix-build with the image's settings: exit {plain.returncode}")
        if plain.returncode != 0:
            assert SECCOMP_UNDER_QEMU in plain.stderr, plain.stderr
        build = build.replace("nix-build ", "nix-build --option filter-syscalls false ", 1)
    out = check(cid, build, timeout=900).strip().splitlines()[-1]
    assert re.fullmatch(r"/nix/store/[0-9a-z]{32}-x", out)
    # The builder ran as one of the image's build users (nixbld1.. = 30001..), not as root.
    assert re.fullmatch(r"ok 300(0[1-9]|[12][0-9]|3[0-2])\n", check(cid, f"cat {out}"))
    # The image's store paths are valid in Nix's database (registered at build time), contents intact.
    valid = "nix-store --check-validity $(dirname $(dirname $(readlink /bin/sh))) && echo valid"
    assert check(cid, valid) == "valid\n"
