"""Turn a Debian root filesystem into one shaped like the official ``nixos/nix`` image (store-only).

``nixos/nix`` (NixOS/nix ``docker.nix``) has no FHS dynamic loader, no ``/usr/lib``, no ``ldconfig``, no
``/etc/ld.so.cache`` and no ``/etc/os-release``: glibc and libstdc++ live only in ``/nix/store``, and
every program finds them through its own interpreter path and RPATH. A normal glibc program, such as
VS Code's server ``node``, cannot even be exec'd there. No container registry is reachable from the
test machines, so :func:`transform` rebuilds that shape from a Debian trixie rootfs (made by
``mmdebstrap``, with Debian's ``nix-bin``, Nix 2.26):

1. Everything under ``/usr/lib/<triple>`` (libraries and their subfolders: ``gconv``, ``engines-3``,
   ``perl``...) moves into ``/nix/store/<hash>-<name>/lib``, one store path per owning Debian package,
   named ``<package>-<version>``; except that all of ``libc6`` becomes ``<hash>-glibc-<upstream>``
   and ``libstdc++6`` + ``libgcc-s1`` become one ``<hash>-gcc-<upstream>-lib`` (nixpkgs'
   ``gcc.cc.lib``): libstdc++ is *not* next to libc, as in Nix.
2. ``/usr/bin`` and ``/usr/sbin`` move into ``<store path of their package>/bin`` (``/sbin``) and a
   profile is made as ``docker.nix`` does: ``/nix/var/nix/profiles/default -> default-1-link ->
   /nix/store/<hash>-user-environment`` whose ``bin/`` and ``sbin/`` hold symlinks to them, and
   ``/root/.nix-profile -> /nix/var/nix/profiles/default``; the profile's ``sh`` is bash, as in
   nixpkgs (Debian's dash stays in its store path). The only FHS entries left are ``/bin/sh`` (the
   store bash) and ``/usr/bin/env`` (the store coreutils ``env``).
3. Every ELF executable and shared object (``/usr/lib/git-core``, ``/usr/libexec``... included) gets,
   with patchelf >= 0.18, the store loader as interpreter (when it has one) and an RPATH (forced, not
   RUNPATH: a library's own RUNPATH would hide the executable's) made of the store lib dirs its
   ``DT_NEEDED`` entries live in, followed by its old RPATH. The loader itself is never patchelf'd.
4. The loader is made to search like nixpkgs' glibc: its built-in system directories (Debian's
   ``/lib/<triple>/ /usr/lib/<triple>/ /lib/ /usr/lib/``) are rewritten in place to its own store lib
   dir plus ``/`` fillers, ``/etc/ld.so.cache`` to a path that does not exist and
   ``/etc/ld.so.preload`` to ``/etc/ldnix.preload`` (nixpkgs reads ``/etc/ld-nix.so.preload``).
5. ``/lib``, ``/lib64``, ``/sbin``, ``/usr/lib64``, every ``ld-linux*`` outside the store,
   ``ldconfig``, ``/etc/ld.so.cache``, ``/etc/ld.so.conf*`` and the os-release files are deleted;
   ``/etc/nix/nix.conf``, the ``nixbld`` group (gid 30000) and users ``nixbld1..32`` are written as
   ``docker.nix`` does.

Deviations from ``nixos/nix`` that remain, on purpose or because Debian's programs hard-code paths:

- ``/usr/lib`` still exists with Debian's non-library folders (``git-core``, ``apt``, ``dpkg``,
  ``locale``, ``ssl``...) and ``/usr/libexec`` with ``nix/build-remote`` and coreutils'
  ``libstdbuf.so``: git finds its sub-commands in the compiled-in ``/usr/lib/git-core`` (patched
  like every other ELF file); nothing in there is a library the loader would find by itself.
- ``/etc`` is Debian's (``passwd``, ``nsswitch.conf``, ``ssl/certs/ca-certificates.crt``, which
  ``NIX_SSL_CERT_FILE`` names); ``/usr/share`` stays.
- Perl's modules and glibc's ``gconv`` modules moved into the store while their programs look for them
  at compiled-in ``/usr/lib/<triple>/...`` paths: ``perl`` and ``iconv`` of non-trivial charsets
  break. Nix, git's builtins, sh, coreutils, tar, gzip, grep and find do not need them. The dpkg
  database still lists the old paths: apt and dpkg are not meant to work in the image (as in
  ``nixos/nix``, which has neither).
- Store paths are not built by Nix: their hashes are derived from their names (sha256 of arch and
  name, in Nix's base-32 alphabet), and ``register_lines`` gives what ``nix-store --register-validity``
  needs to make them valid in Nix's database.
- The user environment has an empty ``manifest.nix`` (``nix-env -q`` lists nothing).
- The loader keeps Debian's four built-in search dirs (their number is compiled in): its store lib
  dir and three ``/`` fillers, where nixpkgs' has the store lib dir only. ``/`` holds no libraries,
  so the search is the same. ``--help`` says "(libraries located via /.no-ld.so.cache)", a file that
  does not exist; the store lib dir is one NUL-terminated string ``<glibc>/lib/`` in the binary
  (twice), with its length compiled in, as in nixpkgs' loader, so a fix that rewrites that string in
  a copy of the loader (same length) behaves as it would on the real image.
"""

from __future__ import annotations

import ast
import hashlib
import os
import posixpath
import re
import shutil
import stat
import struct
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# Bump when the output changes in a way the source text does not show (the recipe hash covers this
# module's source anyway).
TRANSFORM_VERSION = 1

NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz"
STORE = "/nix/store"
PROFILE_PATH = "/root/.nix-profile/bin:/nix/var/nix/profiles/default/bin:/nix/var/nix/profiles/default/sbin"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
NIXBLD_GID = 30000
NIXBLD_USERS = 32
NIX_CONF = (
    "build-users-group = nixbld\n"
    "sandbox = false\n"
    "trusted-public-keys = cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=\n"
)
# The image config of nixos/nix, as far as it matters here (docker.nix sets these).
IMAGE_ENV = {
    "PATH": PROFILE_PATH,
    "USER": "root",
    "NIX_SSL_CERT_FILE": CA_BUNDLE,
    "SSL_CERT_FILE": CA_BUNDLE,
    "GIT_SSL_CAINFO": CA_BUNDLE,
}
IMAGE_CMD = ("/root/.nix-profile/bin/bash",)
NOLOGIN = "/nix/var/nix/profiles/default/sbin/nologin"


@dataclass(frozen=True)
class ArchInfo:
    triple: str
    loader: str  # the loader's file name
    system_dir_lengths: tuple[int, ...]  # Debian's built-in ld.so search dirs, without their NULs

    @property
    def system_dirs(self) -> bytes:
        """Debian's ld.so system search dirs as the one NUL-separated string region glibc keeps."""
        dirs = (f"/lib/{self.triple}/", f"/usr/lib/{self.triple}/", "/lib/", "/usr/lib/")
        return b"".join(d.encode() + b"\0" for d in dirs)


ARCHES = {
    "amd64": ArchInfo("x86_64-linux-gnu", "ld-linux-x86-64.so.2", (22, 26, 5, 9)),
    "arm64": ArchInfo("aarch64-linux-gnu", "ld-linux-aarch64.so.1", (23, 27, 5, 9)),
}

# Packages whose files share one store path, named after nixpkgs' attribute: {package: group}.
GLIBC_PACKAGES = ("libc6",)
GCC_LIB_PACKAGES = ("libstdc++6", "libgcc-s1")


class TransformError(RuntimeError):
    """The rootfs does not have the shape this transformation expects."""


# ------------------------------------------------------------------------------------------------
# Store path names


def nix_base32(data: bytes) -> str:
    """Nix's base-32 encoding (its alphabet and its bit order: last character from the first bits)."""
    n_chars = (len(data) * 8 - 1) // 5 + 1
    out = []
    for n in range(n_chars - 1, -1, -1):
        bit = n * 5
        i, j = divmod(bit, 8)
        c = data[i] >> j
        if i + 1 < len(data):
            c |= data[i + 1] << (8 - j)
        out.append(NIX_BASE32[c & 0x1F])
    return "".join(out)


def store_path(name: str, arch: str) -> str:
    """``/nix/store/<32 chars>-<name>``: a deterministic fake hash (20 bytes of sha256, as Nix's length)."""
    digest = hashlib.sha256(f"devnix-storeonly:{arch}:{name}".encode()).digest()[:20]
    return f"{STORE}/{nix_base32(digest)}-{name}"


def upstream_version(version: str) -> str:
    """``1:2.41-12+deb13u1`` -> ``2.41``: no epoch, no Debian revision."""
    version = version.split(":", 1)[-1]
    if "-" in version:
        version = version.rsplit("-", 1)[0]
    return version


def sanitize_name(text: str) -> str:
    """Only the characters Nix allows in store path names."""
    return re.sub(r"[^A-Za-z0-9+\-._?=]", "_", text)


def store_name(package: str, versions: dict[str, str]) -> str:
    if package in GLIBC_PACKAGES:
        return f"glibc-{upstream_version(versions[package])}"
    if package in GCC_LIB_PACKAGES:
        return f"gcc-{upstream_version(versions[package])}-lib"
    return sanitize_name(f"{package}-{versions.get(package, '0').split(':', 1)[-1]}")


# ------------------------------------------------------------------------------------------------
# The dpkg database


def canonical(path: str) -> str:
    """A path as it is on a merged-/usr system (dpkg lists may still say /bin, /lib, /sbin, /lib64)."""
    for alias in ("/bin", "/sbin", "/lib", "/lib64"):
        if path == alias or path.startswith(alias + "/"):
            return "/usr" + path
    return path


def read_dpkg(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """({canonical path: package}, {package: version}) from var/lib/dpkg (``pkg:arch`` -> ``pkg``)."""
    info = root / "var/lib/dpkg/info"
    owners: dict[str, str] = {}
    for lst in sorted(info.glob("*.list")):
        package = lst.name[: -len(".list")].split(":", 1)[0]
        for line in lst.read_text(errors="replace").splitlines():
            if line and line != "/.":
                owners.setdefault(canonical(line), package)
    versions: dict[str, str] = {}
    for stanza in (root / "var/lib/dpkg/status").read_text(errors="replace").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" ")
        )
        if "Package" in fields and "Version" in fields and "installed" in fields.get("Status", ""):
            versions[fields["Package"]] = fields["Version"]
    return owners, versions


# ------------------------------------------------------------------------------------------------
# Paths inside the rootfs


def host(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def resolve(root: Path, path: str) -> str:
    """Resolve symlinks of an absolute path as if ``root`` were ``/`` (a dangling tail is kept)."""
    pending = [p for p in path.split("/") if p]
    current = "/"
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            current = posixpath.dirname(current)
            continue
        candidate = posixpath.join(current, part)
        target_host = host(root, candidate)
        if target_host.is_symlink():
            hops += 1
            if hops > 40:
                return posixpath.join(candidate, *pending)
            target = os.readlink(target_host)
            if target.startswith("/"):
                current = "/"
            pending = [p for p in target.split("/") if p] + pending
        else:
            current = candidate
    return current


def walk_entries(root: Path, top: str) -> Iterator[str]:
    """Absolute in-root paths of every non-directory entry under ``top`` (symlinks not followed)."""
    for dirpath, dirnames, filenames in os.walk(host(root, top)):
        rel_dir = os.path.relpath(dirpath, root)
        rel = "/" if rel_dir == "." else "/" + rel_dir
        for name in filenames:
            yield posixpath.join(rel, name)
        for name in dirnames:  # symlinks to directories are entries, not folders to descend
            if os.path.islink(os.path.join(dirpath, name)):
                yield posixpath.join(rel, name)


def remove(root: Path, path: str) -> None:
    p = host(root, path)
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)


# ------------------------------------------------------------------------------------------------
# ELF


@dataclass(frozen=True)
class ElfInfo:
    has_interp: bool
    needed: tuple[str, ...]
    rpath: str  # DT_RPATH or DT_RUNPATH, "" if none


def read_elf(path: Path) -> ElfInfo | None:
    """Interpreter presence, DT_NEEDED and RPATH of a dynamically linked 64-bit little-endian ELF file.

    None for anything else (not ELF, static, relocatable objects): there is nothing to patch.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    e_type = struct.unpack_from("<H", data, 16)[0]
    if e_type not in (2, 3):  # ET_EXEC, ET_DYN
        return None
    e_phoff, e_phentsize, e_phnum = (
        struct.unpack_from("<Q", data, 32)[0],
        *struct.unpack_from("<HH", data, 54),
    )
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None
    has_interp = False
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        if off + 56 > len(data):
            return None
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, off)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
        elif p_type == 3:
            has_interp = True
    if dynamic is None:
        return None
    entries: list[tuple[int, int]] = []
    for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, off)
        if tag == 0:
            break
        entries.append((tag, value))
    strtab_vaddr = next((v for t, v in entries if t == 5), None)  # DT_STRTAB
    if strtab_vaddr is None:
        return None
    strtab = next((o + strtab_vaddr - va for va, o, size in loads if va <= strtab_vaddr < va + size), None)
    if strtab is None:
        return None

    def string(offset: int) -> str:
        start = strtab + offset
        return data[start : data.index(b"\0", start)].decode(errors="replace")

    needed = tuple(string(v) for t, v in entries if t == 1)
    rpath = ":".join(string(v) for t, v in entries if t in (15, 29))  # DT_RPATH, DT_RUNPATH
    return ElfInfo(has_interp, needed, rpath)


# ------------------------------------------------------------------------------------------------
# The loader


def load_segments(data: bytes | bytearray) -> list[tuple[int, int, int]]:
    """(vaddr, file offset, file size) of each PT_LOAD of a 64-bit little-endian ELF image."""
    e_phoff = struct.unpack_from("<Q", data, 32)[0]
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    out = []
    for i in range(e_phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, e_phoff + i * e_phentsize
        )
        if p_type == 1:
            out.append((p_vaddr, p_offset, p_filesz))
    return out


def offset_to_vaddr(segments: list[tuple[int, int, int]], offset: int) -> int:
    for vaddr, off, size in segments:
        if off <= offset < off + size:
            return vaddr + offset - off
    raise TransformError(f"file offset {offset:#x} is in no PT_LOAD segment")


def _one(found: list[int], what: str) -> int:
    if len(found) != 1:
        raise TransformError(f"the loader's {what}: found {len(found)} candidates, expected exactly one")
    return found[0]


def _patch_init_paths_x86_64(
    data: bytearray, region: int, old: tuple[int, ...], first_len: int, max_len: int
) -> None:
    """Rewrite _dl_init_paths' compiled-in constants on x86-64 (see :func:`patch_loader`).

    gcc peels the loop's first iteration: ``lea second_entry(%rip)`` (the region's address plus
    ``old[0] + 1``), ``movq $old[0], dirnamelen(%reg)``, and later ``movq $SYSTEM_DIRS_MAX_LEN,
    max_dirnamelen(%rip)``.
    """
    segments = load_segments(data)
    second = offset_to_vaddr(segments, region) + old[0] + 1
    leas = []
    for m in re.finditer(rb"[\x48-\x4f]\x8d[\x05\x0d\x15\x1d\x25\x2d\x35\x3d]", data):
        at = m.start()
        disp = struct.unpack_from("<i", data, at + 3)[0]
        try:
            if offset_to_vaddr(segments, at + 7) + disp == second:
                leas.append(at)
        except TransformError:
            continue
    lea = _one(leas, "address of its second search dir (lea)")
    disp = struct.unpack_from("<i", data, lea + 3)[0]
    struct.pack_into("<i", data, lea + 3, disp + first_len - old[0])
    window = slice(max(0, lea - 96), lea + 96)
    pattern = rb"[\x48-\x4f]\xc7[\x40-\x47]." + re.escape(struct.pack("<I", old[0]))
    movs = [m.start() + window.start for m in re.finditer(pattern, data[window], re.DOTALL)]
    mov = _one(movs, "first search dir length (movq)")
    struct.pack_into("<I", data, mov + 4, first_len)
    window = slice(lea, lea + 512)
    pattern = rb"\x48\xc7\x05...." + re.escape(struct.pack("<I", max(old)))
    maxes = [m.start() + window.start for m in re.finditer(pattern, data[window], re.DOTALL)]
    at = _one(maxes, "longest search dir length (movq)")
    struct.pack_into("<I", data, at + 7, max_len)


def _patch_init_paths_aarch64(
    data: bytearray, region: int, old: tuple[int, ...], first_len: int, max_len: int
) -> None:
    """Rewrite _dl_init_paths' compiled-in constants on AArch64 (see :func:`patch_loader`).

    The peeled first iteration has ``mov xN, #old[0]``, ``add xD, xB, #k`` for the second entry (with
    ``add xE, xB, #(k - old[0] - 1)`` for the first, same base register) and, after the loop,
    ``mov xM, #SYSTEM_DIRS_MAX_LEN``.
    """

    def movz(value: int) -> re.Pattern[bytes]:  # MOVZ Xd, #value (64-bit, no shift), any Xd
        return re.compile(
            b"|".join(re.escape(struct.pack("<I", 0xD2800000 | value << 5 | rd)) for rd in range(31))
        )

    def add_imm(word: int) -> tuple[int, int, int] | None:  # ADD Xd, Xn, #imm12 -> (rd, rn, imm)
        if word & 0xFFC00000 != 0x91000000:
            return None
        return word & 0x1F, word >> 5 & 0x1F, word >> 10 & 0xFFF

    firsts = [m.start() for m in movz(old[0]).finditer(data) if m.start() % 4 == 0]
    maxes = [m.start() for m in movz(max(old)).finditer(data) if m.start() % 4 == 0]
    pairs = [(f, x) for f in firsts for x in maxes if 0 < x - f <= 256]
    first, max_at = _one(pairs, "first and longest search dir lengths (mov)")
    # Follow ADRP/ADD register values from a little before: the one ADD that yields the second
    # entry's address (region + old[0] + 1) is the one to move.
    target = offset_to_vaddr(load_segments(data), region) + old[0] + 1
    values: dict[int, int] = {}
    adds: list[int] = []
    for at in range(max(0, first - 256), max_at, 4):
        word = struct.unpack_from("<I", data, at)[0]
        if word & 0x9F000000 == 0x90000000:  # ADRP Xd, page
            imm = (word >> 29 & 0x3) | (word >> 5 & 0x7FFFF) << 2
            if imm & 1 << 20:
                imm -= 1 << 21
            pc = offset_to_vaddr(load_segments(data), at)
            values[word & 0x1F] = (pc & ~0xFFF) + (imm << 12)
            continue
        decoded = add_imm(word)
        if decoded is not None and decoded[1] in values:
            rd, rn, imm = decoded
            values[rd] = values[rn] + imm
            if values[rd] == target:
                adds.append(at)
        elif decoded is not None:
            values.pop(decoded[0], None)
    add = _one(sorted(set(adds)), "address of its second search dir (add)")
    word = struct.unpack_from("<I", data, add)[0]
    imm = (word >> 10 & 0xFFF) + first_len - old[0]
    if imm > 0xFFF:
        raise TransformError("the second search dir's offset does not fit in the add instruction")
    struct.pack_into("<I", data, add, word & ~(0xFFF << 10) | imm << 10)
    for at, value in ((first, first_len), (max_at, max_len)):
        word = struct.unpack_from("<I", data, at)[0]
        struct.pack_into("<I", data, at, word & ~(0xFFFF << 5) | value << 5)


def patch_loader(loader: Path, arch: str, glibc_lib: str) -> None:
    """Make Debian's ld.so search like nixpkgs': only ``glibc_lib``, no ld.so.cache, no ld.so.preload.

    glibc keeps its system dirs (``SYSTEM_DIRS``) as one NUL-separated string, twice in the binary
    (the search list, and the copy ``--help`` prints), and their lengths as an array of size_t.
    Both are rewritten in place with the same total size, so no offset in the binary moves: the
    store lib dir first, then three ``/`` fillers (the number of entries is compiled in). The code
    of ``_dl_init_paths`` also has constants: gcc peeled the first iteration of its loop over the
    dirs, so the first length and the second entry's address are immediates, and so is
    ``SYSTEM_DIRS_MAX_LEN`` (used to size path buffers). Those are rewritten too, found by their
    instruction patterns near each other; anything not found exactly once fails the build.
    """
    info = ARCHES[arch]
    data = bytearray(loader.read_bytes())
    old_region = info.system_dirs
    first = glibc_lib.rstrip("/") + "/"
    filler_total = len(old_region) - len(first) - 1  # three "/" fillers, the last one padded
    if filler_total < 6:
        raise TransformError(f"{first} does not fit in the loader's {len(old_region)}-byte search dirs")
    fillers = ["/", "/", "/" * (filler_total - 4 - 1)]
    new_region = (first + "\0" + "".join(f + "\0" for f in fillers)).encode()
    assert len(new_region) == len(old_region)
    new_lengths = (len(first), *(len(f) for f in fillers))

    regions = [m.start() for m in re.finditer(re.escape(old_region), data)]
    if len(regions) != 2:
        raise TransformError(f"{loader}: found Debian's search dirs {len(regions)} times, expected 2")
    if arch == "amd64":
        _patch_init_paths_x86_64(data, regions[0], info.system_dir_lengths, len(first), len(first))
    else:
        _patch_init_paths_aarch64(data, regions[0], info.system_dir_lengths, len(first), len(first))

    def replace_all(old: bytes, new: bytes, expect: int) -> None:
        count = data.count(old)
        if count != expect:
            raise TransformError(f"{loader}: found {old!r} {count} times, expected {expect}")
        start = 0
        while (at := data.find(old, start)) != -1:
            data[at : at + len(old)] = new
            start = at + len(new)

    replace_all(old_region, new_region, expect=2)
    replace_all(struct.pack("<4Q", *info.system_dir_lengths), struct.pack("<4Q", *new_lengths), expect=1)
    replace_all(b"/etc/ld.so.cache\0", b"/.no-ld.so.cache\0", expect=1)
    replace_all(b"/etc/ld.so.preload\0", b"/etc/ldnix.preload\0", expect=1)
    mode = loader.stat().st_mode
    tmp = loader.with_name(loader.name + ".tmp")
    tmp.write_bytes(bytes(data))
    tmp.chmod(stat.S_IMODE(mode))
    tmp.replace(loader)


def loader_search_path(loader: Path) -> list[str]:
    """The dirs under "Shared library search path" in ``<loader> --help`` (run on the host; an arm64
    loader through binfmt); "(libraries located via /etc/ld.so.cache)" lines included as text."""
    out = subprocess.run(
        [str(loader), "--help"], capture_output=True, text=True, timeout=120, check=False
    ).stdout
    lines = out.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Shared library search path"))
    except StopIteration:
        raise TransformError(f"{loader} --help has no search path section:\n{out}") from None
    result = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        result.append(line.strip())
    return result


# ------------------------------------------------------------------------------------------------
# The transformation


@dataclass
class StoreLayout:
    """What :func:`transform` made."""

    arch: str
    glibc: str  # /nix/store/<hash>-glibc-<version>
    gcc_lib: str  # /nix/store/<hash>-gcc-<version>-lib
    loader: str  # <glibc>/lib/ld-linux-...
    user_environment: str
    store_paths: dict[str, str] = field(default_factory=dict)  # package -> store path
    references: dict[str, set[str]] = field(default_factory=dict)  # store path -> store paths
    patched: int = 0  # ELF files patched
    search_path: list[str] = field(default_factory=list)  # the loader's, from --help

    def path_of(self, package: str) -> str:
        return self.store_paths[package]

    def register_lines(self) -> str:
        """Input for ``nix-store --register-validity`` (path, empty deriver, references)."""
        out = []
        for path in sorted({*self.store_paths.values(), self.user_environment}):
            refs = sorted(self.references.get(path, set()) | {path})
            out += [path, "", str(len(refs)), *refs]
        return "\n".join(out) + "\n"


def transform(
    root: Path, arch: str, *, patchelf: str = "patchelf", workers: int | None = None
) -> StoreLayout:
    """Reshape the Debian rootfs at ``root`` (a directory, edited in place) like ``nixos/nix``."""
    info = ARCHES[arch]
    owners, versions = read_dpkg(root)
    for pkg in (*GLIBC_PACKAGES, *GCC_LIB_PACKAGES, "bash", "coreutils"):
        if pkg not in versions:
            raise TransformError(f"{pkg} is not installed in {root}")
    names = {pkg: store_name(pkg, versions) for pkg in versions}
    layout = StoreLayout(
        arch=arch,
        glibc=store_path(names["libc6"], arch),
        gcc_lib=store_path(names["libstdc++6"], arch),
        loader=f"{store_path(names['libc6'], arch)}/lib/{info.loader}",
        user_environment=store_path("user-environment", arch),
    )

    def store_of(package: str) -> str:
        path = store_path(names.get(package) or sanitize_name(package), arch)
        layout.store_paths[package] = path
        return path

    # What goes away entirely, first (so nothing below moves it into the store).
    for path in ("/usr/sbin/ldconfig", "/usr/sbin/ldconfig.real", "/etc/ld.so.cache", "/etc/ld.so.conf",
                 "/etc/ld.so.conf.d", "/etc/os-release", "/usr/lib/os-release"):  # fmt: skip
        remove(root, path)

    # Every symlink's target, resolved before anything moves: they are re-pointed afterwards.
    symlink_targets: dict[str, str] = {}
    for entry in walk_entries(root, "/"):
        if host(root, entry).is_symlink():
            symlink_targets[entry] = resolve(
                root, posixpath.join(posixpath.dirname(entry), os.readlink(host(root, entry)))
            )

    # Plan the moves: old in-root path -> new in-root path.
    moves: dict[str, str] = {}
    libdir = f"/usr/lib/{info.triple}"
    for entry in walk_entries(root, libdir):
        package = owners.get(entry)
        if package is None:
            raise TransformError(f"{entry} belongs to no Debian package")
        moves[entry] = f"{store_of(package)}/lib/{posixpath.relpath(entry, libdir)}"
    profile_links: dict[str, str] = {}  # profile entry (bin/x, sbin/x) -> in-root target (old path)
    for sub in ("bin", "sbin"):
        for entry in walk_entries(root, f"/usr/{sub}"):
            name = posixpath.relpath(entry, f"/usr/{sub}")
            profile_links[f"{sub}/{name}"] = entry
            package = owners.get(entry)
            if package is not None:
                moves[entry] = f"{store_of(package)}/{sub}/{name}"
            # Unowned entries (Debian's alternatives: awk, pager...) only get a profile link.
    bash = store_of("bash")
    coreutils = store_of("coreutils")
    store_of("libstdc++6")

    for old, new in moves.items():
        dst = host(root, new)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(host(root, old), dst)

    # Folders under the lib dir (perl/5.40, gconv...) now live in a store path of their package.
    moved_dirs: dict[str, str] = {}
    for old, new in moves.items():
        parent_old, parent_new = posixpath.dirname(old), posixpath.dirname(new)
        while parent_old.startswith(libdir + "/") and parent_old not in moved_dirs:
            moved_dirs[parent_old] = parent_new
            parent_old, parent_new = posixpath.dirname(parent_old), posixpath.dirname(parent_new)

    def relocated(path: str) -> str:
        """Where an old in-root path is now (moved file, moved folder, or unchanged)."""
        return moves.get(path) or moved_dirs.get(path) or path

    # Re-point every symlink whose target moved; moved symlinks get absolute targets.
    for link, target in symlink_targets.items():
        new_link = relocated(link)
        new_target = relocated(target)
        if new_link == link and new_target == target:
            continue
        p = host(root, new_link)
        if p.is_symlink():
            p.unlink()
            os.symlink(new_target, p)

    # FHS leftovers: aliases of merged /usr, the loader's FHS names, emptied folders.
    for path in ("/bin", "/sbin", "/lib", "/lib64", "/usr/lib64", f"/usr/lib/{info.loader}"):
        remove(root, path)
    for entry in list(walk_entries(root, "/usr/bin")) + list(walk_entries(root, "/usr/sbin")):
        remove(root, entry)  # unowned alternatives links (kept in the profile)
    for path in ("/usr/sbin", libdir):
        remove(root, path)
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith("ld-linux") and not dirpath.startswith(str(host(root, STORE))):
                os.unlink(os.path.join(dirpath, name))
    host(root, "/bin").mkdir()
    os.symlink(f"{bash}/bin/bash", host(root, "/bin/sh"))
    host(root, "/usr/bin").mkdir(exist_ok=True)
    os.symlink(f"{coreutils}/bin/env", host(root, "/usr/bin/env"))

    # The profile, as docker.nix's buildEnv: a user environment of symlinks into the store.
    env_root = host(root, layout.user_environment)
    for entry, old in sorted(profile_links.items()):
        target = relocated(symlink_targets.get(old, old)) if old not in moves else moves[old]
        if not host(root, resolve(root, target)).exists():
            continue
        link = env_root / entry
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
    # nixpkgs' bash provides the profile's sh (Debian's is dash): `docker exec … sh -c` gets bash.
    (env_root / "bin" / "sh").unlink(missing_ok=True)
    os.symlink(f"{bash}/bin/bash", env_root / "bin" / "sh")
    (env_root / "manifest.nix").write_text("[ ]\n")
    profiles = host(root, "/nix/var/nix/profiles")
    profiles.mkdir(parents=True, exist_ok=True)
    os.symlink(layout.user_environment, profiles / "default-1-link")
    os.symlink("default-1-link", profiles / "default")
    remove(root, "/root/.nix-profile")
    os.symlink("/nix/var/nix/profiles/default", host(root, "/root/.nix-profile"))
    gcroots = host(root, "/nix/var/nix/gcroots")
    gcroots.mkdir(parents=True, exist_ok=True)
    os.symlink("/nix/var/nix/profiles", gcroots / "profiles")

    # Loader first (everything else points at it), then every other ELF file.
    patch_loader(host(root, layout.loader), arch, f"{layout.glibc}/lib")
    layout.search_path = loader_search_path(host(root, layout.loader))
    layout.patched = patch_all(root, layout, patchelf, workers)

    write_nix_config(root)
    canonicalise_store(root)
    return layout


def canonicalise_store(root: Path) -> None:
    """Give the store the metadata Nix gives it (mtime 1, modes 0444/0555, owned by root).

    ``nix-store --register-validity`` (the Dockerfile's RUN) canonicalises every registered path; a
    path already canonical is left alone, so the RUN layer holds the database only instead of a
    second copy of the whole store.
    """
    for dirpath, dirnames, filenames in os.walk(host(root, STORE), topdown=False):
        if os.path.samefile(dirpath, host(root, STORE)):
            continue  # /nix/store itself: Nix makes it root:nixbld 1775 when it starts
        for name in [*filenames, *dirnames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(path, 0o555 if st.st_mode & stat.S_IXUSR else 0o444)
            os.lchown(path, 0, 0)
            os.utime(path, (1, 1), follow_symlinks=False)
        os.chmod(dirpath, 0o555)
        os.lchown(dirpath, 0, 0)
        os.utime(dirpath, (1, 1))


def soname_dirs(root: Path, layout: StoreLayout) -> dict[str, str]:
    """{file name: store lib dir} for everything directly in a store path's ``lib/``."""
    found: dict[str, str] = {}
    for store in sorted(set(layout.store_paths.values())):
        lib = host(root, store) / "lib"
        if lib.is_dir():
            for child in lib.iterdir():
                found.setdefault(child.name, f"{store}/lib")
    return found


def elf_files(root: Path) -> Iterable[Path]:
    """Every regular file of the rootfs once (hard links once: patching twice would stack RPATHs)."""
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel.split(os.sep)[0] in ("proc", "sys", "dev"):
            dirnames.clear()
            continue
        for name in filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_size < 64 or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            yield path


def patch_all(root: Path, layout: StoreLayout, patchelf: str, workers: int | None) -> int:
    sonames = soname_dirs(root, layout)
    loader_host = host(root, layout.loader).resolve()
    store_host = str(host(root, STORE)) + "/"
    jobs: list[list[str]] = []
    for path in elf_files(root):
        if path.resolve() == loader_host:
            continue
        elf = read_elf(path)
        if elf is None:
            continue
        dirs: list[str] = []
        for soname in elf.needed:
            d = sonames.get(soname)
            if d is not None and d not in dirs:
                dirs.append(d)
        args = [patchelf]
        if elf.has_interp:
            args += ["--set-interpreter", layout.loader]
        if dirs:
            rpath = ":".join([*dirs, *(p for p in elf.rpath.split(":") if p)])
            args += ["--force-rpath", "--set-rpath", rpath]
        if len(args) == 1:
            continue
        jobs.append([*args, str(path)])
        # References between store paths, for Nix's database.
        if str(path).startswith(store_host):
            owner = STORE + "/" + str(path)[len(store_host) :].split("/", 1)[0]
            refs = layout.references.setdefault(owner, set())
            refs.update(posixpath.dirname(d) for d in dirs)
            if elf.has_interp:
                refs.add(layout.glibc)

    def run_one(args: list[str]) -> None:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise TransformError(f"{' '.join(args)} failed: {proc.stderr.strip()}")

    with ThreadPoolExecutor(max_workers=workers or max(4, 2 * (os.cpu_count() or 1))) as pool:
        list(pool.map(run_one, jobs))
    env_refs = layout.references.setdefault(layout.user_environment, set())
    env_refs.update(p for p in layout.store_paths.values())
    return len(jobs)


def write_nix_config(root: Path) -> None:
    """/etc/nix/nix.conf and the nixbld group and users, as docker.nix writes them."""
    conf = host(root, "/etc/nix/nix.conf")
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(NIX_CONF)
    passwd = host(root, "/etc/passwd")
    group = host(root, "/etc/group")
    users = [f"nixbld{i}" for i in range(1, NIXBLD_USERS + 1)]
    passwd_lines = [line for line in passwd.read_text().splitlines() if not line.startswith("nixbld")]
    passwd_lines += [
        f"{user}:x:{NIXBLD_GID + i}:{NIXBLD_GID}:Nix build user {i}:/var/empty:{NOLOGIN}"
        for i, user in enumerate(users, start=1)
    ]
    passwd.write_text("\n".join(passwd_lines) + "\n")
    group_lines = [line for line in group.read_text().splitlines() if not line.startswith("nixbld:")]
    group_lines.append(f"nixbld:x:{NIXBLD_GID}:{','.join(users)}")
    group.write_text("\n".join(group_lines) + "\n")
    host(root, "/var/empty").mkdir(parents=True, exist_ok=True)
    host(root, "/tmp").mkdir(exist_ok=True)
    host(root, "/tmp").chmod(0o1777)


def dockerfile() -> str:
    """The buildx Dockerfile: the rootfs, nixos/nix's Env and Cmd, the store paths made valid."""
    env = " ".join(f'{k}="{v}"' for k, v in IMAGE_ENV.items())
    cmd = ", ".join(f'"{c}"' for c in IMAGE_CMD)
    return (
        "FROM scratch\n"
        "ADD rootfs.tar /\n"
        f"ENV {env}\n"
        "RUN nix-store --register-validity < /nix/.reginfo && rm /nix/.reginfo\n"
        f"CMD [{cmd}]\n"
    )


def module_digest() -> str:
    """Hash of this module's code: part of the recipe hash, so a change here rebuilds the image.

    Taken over the syntax tree without docstrings (comments are not in it either): editing the
    documentation does not cost a rebuild (arm64 under QEMU takes minutes).
    """
    tree = ast.parse(Path(__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    text = ast.dump(tree) + str(TRANSFORM_VERSION)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
