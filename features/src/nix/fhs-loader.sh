#!/bin/sh
# devnix fhs-loader: lets glibc programs built outside Nix start in a store-only Nix image.
#
# VS Code's server (`~/.vscode-server/bin/<id>/node`) is an ordinary glibc program: it asks for the
# loader at /lib64/ld-linux-x86-64.so.2 (/lib/ld-linux-aarch64.so.1 on arm64) and for libstdc++ and
# libgcc_s. Images built by Nix (nixos/nix and most dockerTools images) keep glibc and libstdc++ only
# in /nix/store, so the kernel cannot even start such a program ("node: not found").
#
# What this script does, as nix-ld does on NixOS but offline, from what the image already holds:
# it installs a *copy* of Nix's own glibc loader at the FHS path, with the loader's built-in library
# directory (a string inside ld.so, "<glibc>/lib/") rewritten, at the same length, to
# /usr/lib/devnix-fhs, a folder of symlinks to the store's glibc, libstdc++ and libgcc_s.
# - Programs built by Nix are untouched: their loader is the store's, not this copy; no store path
#   is changed, and no LD_LIBRARY_PATH is set anywhere.
# - It is a no-op where an FHS loader exists already (Debian-based images, a second run).
# - GC roots keep the linked store paths alive through `nix-collect-garbage`.
# Runs as root at image build time (a Dockerfile RUN, or devnix's nix Feature). POSIX sh, and only
# the tools nixos/nix has: coreutils, grep, find.
set -eu

LIB_DIR=/usr/lib/devnix-fhs
MARKER=$LIB_DIR/.devnix-fhs-loader
GC_ROOTS=/nix/var/nix/gcroots/devnix-fhs-loader
export LC_ALL=C

log() { printf 'devnix fhs-loader: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

case "$(uname -m)" in
    x86_64 | amd64) FHS_LOADER=/lib64/ld-linux-x86-64.so.2 ;;
    aarch64 | arm64) FHS_LOADER=/lib/ld-linux-aarch64.so.1 ;;
    *) log "no FHS loader is known for $(uname -m); nothing to do"; exit 0 ;;
esac
LOADER_NAME=${FHS_LOADER##*/}

if [ -e "$FHS_LOADER" ]; then
    if [ -e "$MARKER" ]; then
        log "$FHS_LOADER is devnix's already; nothing to do"
    else
        log "$FHS_LOADER exists: this image has an FHS loader; nothing to do"
    fi
    exit 0
fi
[ -d /nix/store ] || die "no $FHS_LOADER and no /nix/store: this is not a Nix image"

# Nix's own loader: the ELF interpreter named inside the nix binary (the glibc Nix runs on).
nix_real=""
for candidate in "$(command -v nix 2>/dev/null || true)" /nix/var/nix/profiles/default/bin/nix \
    /root/.nix-profile/bin/nix; do
    if [ -n "$candidate" ] && [ -e "$candidate" ]; then
        nix_real=$(readlink -f "$candidate")
        break
    fi
done
store_loader=""
if [ -n "$nix_real" ]; then
    store_loader=$(grep -ao "/nix/store/[0-9a-z]\{32\}-glibc-[-+._?=0-9A-Za-z]*/lib/$LOADER_NAME" \
        "$nix_real" | head -n 1 || true)
fi
if [ -z "$store_loader" ] || [ ! -f "$store_loader" ]; then
    store_loader=$(find /nix/store -maxdepth 3 -path "/nix/store/*-glibc-*/lib/$LOADER_NAME" \
        2>/dev/null | sort | tail -n 1)
fi
[ -n "$store_loader" ] && [ -f "$store_loader" ] || die "no glibc $LOADER_NAME in /nix/store"
glibc_lib=${store_loader%/*}

# libstdc++ and libgcc_s: prefer the copies Nix itself links against (their folder is named in it).
find_store_lib() {
    _found=""
    for _lib in $(find /nix/store -maxdepth 3 -path "/nix/store/*/lib/$1" 2>/dev/null | sort); do
        _found=$_lib
        if [ -n "$nix_real" ] && grep -qaF "${_lib%/*}" "$nix_real"; then
            break
        fi
    done
    printf '%s' "$_found"
}
stdcxx=$(find_store_lib libstdc++.so.6)
gcc_s=$(find_store_lib libgcc_s.so.1)
[ -n "$stdcxx" ] || die "no libstdc++.so.6 in /nix/store (VS Code's server needs it)"
[ -n "$gcc_s" ] || die "no libgcc_s.so.1 in /nix/store (VS Code's server needs it)"

# The folder the copied loader searches: glibc's libraries, then libstdc++ and libgcc_s.
rm -rf "$LIB_DIR.new"
mkdir -p "$LIB_DIR.new"
for lib in "$glibc_lib"/*.so*; do
    [ -f "$lib" ] && ln -s "$lib" "$LIB_DIR.new/${lib##*/}"
done
ln -sf "$stdcxx" "$LIB_DIR.new/libstdc++.so.6"
ln -sf "$gcc_s" "$LIB_DIR.new/libgcc_s.so.1"

# The copy, with every NUL-terminated "<glibc>/lib/" rewritten to LIB_DIR padded with slashes (a
# path may repeat them) so that no length or offset inside ld.so changes.
needle="$glibc_lib/"
replacement=$LIB_DIR
while [ "${#replacement}" -lt "${#needle}" ]; do replacement="$replacement/"; done
[ "${#replacement}" -eq "${#needle}" ] || die "$needle is shorter than $LIB_DIR"
copy=$FHS_LOADER.devnix-new
mkdir -p "${FHS_LOADER%/*}"
cp "$store_loader" "$copy"
chmod 0755 "$copy"
patched=0
for offset in $(grep -obUaF -- "$needle" "$copy" | cut -d: -f1); do
    after=$(dd if="$copy" bs=1 skip=$((offset + ${#needle})) count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
    [ "$after" = 00 ] || continue
    printf '%s' "$replacement" | dd of="$copy" bs=1 seek="$offset" conv=notrunc 2>/dev/null
    patched=$((patched + 1))
done
if [ "$patched" = 0 ]; then
    rm -f "$copy"
    rm -rf "$LIB_DIR.new"
    die "$store_loader has no built-in library folder '$needle' to point at $LIB_DIR"
fi

# Prove it before installing it: the copy runs the store's sh with libstdc++ and libgcc_s loaded by
# name, so they must come from LIB_DIR (ld.so resolves --preload names through its search path).
rm -rf "$LIB_DIR"
mv "$LIB_DIR.new" "$LIB_DIR"
shell=$(readlink -f /bin/sh)
if ! "$copy" --preload "libstdc++.so.6 libgcc_s.so.1" "$shell" -c : 2>/dev/null; then
    error=$("$copy" --preload "libstdc++.so.6 libgcc_s.so.1" "$shell" -c : 2>&1 || true)
    rm -f "$copy"
    rm -rf "$LIB_DIR"
    die "the patched loader cannot load libstdc++ from $LIB_DIR: $error"
fi
mv -f "$copy" "$FHS_LOADER"

if [ -d /nix/var/nix/gcroots ]; then
    mkdir -p "$GC_ROOTS"
    for lib in "$store_loader" "$stdcxx" "$gcc_s"; do
        store_path=$(printf '%s' "$lib" | cut -d/ -f1-4)
        ln -sfn "$store_path" "$GC_ROOTS/${store_path#/nix/store/}"
    done
fi
printf 'loader %s\nglibc %s\nlibstdc++ %s\nlibgcc_s %s\n' \
    "$store_loader" "$glibc_lib" "$stdcxx" "$gcc_s" >"$MARKER"
log "$FHS_LOADER: Nix's glibc loader ($store_loader), searching $LIB_DIR ($patched path rewritten)"
