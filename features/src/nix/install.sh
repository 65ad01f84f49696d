#!/bin/sh
# devnix `nix` Feature: install Nix (unless it is there already) and configure it for the
# container's user. Runs as root during the image build, under the same emulation as the
# container will. POSIX sh; running it again is safe (it reconfigures, it does not reinstall).
set -eu

FEATURE_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$FEATURE_DIR/lib.sh"

# ----------------------------------------------------------------------------------------------
# Options (the devcontainer CLI exports each option as its upper-cased id)

OPT_INSTALLMETHOD=${INSTALLMETHOD:-auto}
OPT_MULTIUSER=${MULTIUSER:-false}
OPT_FLAKES=${FLAKES:-true}
OPT_EXTRANIXCONFIG=${EXTRANIXCONFIG:-}
OPT_NIXPATH=${NIXPATH-nixpkgs=channel:nixos-unstable}
OPT_TRUSTEDUSERS=${TRUSTEDUSERS:-}
OPT_PACKAGES=${PACKAGES:-}
OPT_FLAKEURI=${FLAKEURI:-}

OFFICIAL_INSTALLER_URL=${DEVNIX_NIX_INSTALLER_URL:-https://nixos.org/nix/install}
BUILD_USER_COUNT=${DEVNIX_NIX_BUILD_USERS:-8}

case "$OPT_INSTALLMETHOD" in
    auto | distro | official) ;;
    *) die "installMethod must be auto, distro or official, not '$OPT_INSTALLMETHOD'" ;;
esac

[ "$(id -u)" = 0 ] || die "install.sh must run as root (the devcontainer CLI runs Features as root)"

# ----------------------------------------------------------------------------------------------
# Who Nix is for

TARGET_USER=${_REMOTE_USER:-root}
if ! id "$TARGET_USER" >/dev/null 2>&1; then
    warn "the remote user '$TARGET_USER' does not exist in this image; configuring Nix for root"
    TARGET_USER=root
fi
TARGET_HOME=$(passwd_field "$TARGET_USER" 6)
[ -n "$TARGET_HOME" ] || TARGET_HOME=${_REMOTE_USER_HOME:-/root}
TARGET_UID=$(id -u "$TARGET_USER")
TARGET_GID=$(id -g "$TARGET_USER")
if is_true "$OPT_MULTIUSER"; then MODE=daemon; else MODE=single-user; fi

log "Nix for user '$TARGET_USER' (uid $TARGET_UID, home $TARGET_HOME), $MODE mode, installMethod=$OPT_INSTALLMETHOD"

# ----------------------------------------------------------------------------------------------
# Helpers that use the state above

APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
}

apt_install() {
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Install whatever of the given commands is missing, through the image's package manager.
# Arguments are "command:package" pairs.
ensure_commands() {
    _missing=""
    for _pair in "$@"; do
        _pkg=${_pair#*:}
        if [ "$_pkg" = xz ] && command -v apt-get >/dev/null 2>&1; then _pkg=xz-utils; fi
        command -v "${_pair%%:*}" >/dev/null 2>&1 || _missing="$_missing $_pkg"
    done
    [ -n "$_missing" ] || return 0
    log "installing$_missing"
    # shellcheck disable=SC2086
    if command -v apt-get >/dev/null 2>&1; then
        apt_install $_missing
    elif command -v apk >/dev/null 2>&1; then
        apk add --no-cache $_missing
    elif command -v dnf >/dev/null 2>&1; then
        dnf install -y $_missing
    elif command -v microdnf >/dev/null 2>&1; then
        microdnf install -y $_missing
    elif command -v yum >/dev/null 2>&1; then
        yum install -y $_missing
    else
        die "cannot install$_missing: no known package manager in this image"
    fi
}

# Where the Nix commands are, if Nix is installed: sets NIX_BIN_DIR.
# Root's own profile comes after the shared ones even when PATH names it first (nixos/nix's does):
# /root is private, and a non-root remote user must be able to run the Nix found here.
find_nix() {
    NIX_BIN_DIR=""
    _on_path=$(command -v nix-build 2>/dev/null || true)
    _on_path=${_on_path%/*}
    case "$_on_path" in
        /root/*) _on_path="" ;;
    esac
    for _dir in ${_on_path:+"$_on_path"} \
        /nix/var/nix/profiles/default/bin \
        "$TARGET_HOME/.nix-profile/bin" \
        /root/.nix-profile/bin; do
        if [ -x "$_dir/nix-build" ] && [ -x "$_dir/nix-env" ]; then
            NIX_BIN_DIR=$_dir
            return 0
        fi
    done
    return 1
}

distro_has_nix() {
    command -v apt-get >/dev/null 2>&1 || return 1
    apt_update_once
    apt-cache show nix-bin >/dev/null 2>&1
}

install_distro() {
    log "installing the distribution's Nix (nix-bin)"
    apt_install nix-bin ca-certificates
}

install_official() {
    log "installing Nix with the official installer ($OFFICIAL_INSTALLER_URL)"
    if ! command -v curl >/dev/null 2>&1 && ! command -v wget >/dev/null 2>&1; then
        ensure_commands curl:curl
    fi
    ensure_commands xz:xz tar:tar
    if [ ! -e /etc/ssl/certs/ca-certificates.crt ] && [ ! -e /etc/pki/tls/certs/ca-bundle.crt ]; then
        ensure_commands update-ca-certificates:ca-certificates
    fi
    _installer=$(mktemp)
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 -o "$_installer" "$OFFICIAL_INSTALLER_URL" || die "cannot download $OFFICIAL_INSTALLER_URL"
    else
        wget -q -O "$_installer" "$OFFICIAL_INSTALLER_URL" || die "cannot download $OFFICIAL_INSTALLER_URL"
    fi
    chmod 0755 "$_installer"
    # With --no-channel-add the installer builds nothing; should it ever build, under emulation
    # that first build must already run without the syscall filter (jetify-com/devbox#133).
    # These settings hold for the installer's process only: the probe below decides what
    # nix.conf keeps.
    _nix_config=$(printf 'filter-syscalls = false\nsandbox = false')
    if [ "$MODE" = daemon ]; then
        # The installer makes the nixbld group and users itself (with the ids it expects).
        NIX_CONFIG=$_nix_config sh "$_installer" --daemon --yes --no-channel-add --no-modify-profile \
            --daemon-user-count "$BUILD_USER_COUNT" </dev/null
    else
        mkdir -p /nix && chmod 0755 /nix
        chown "$TARGET_UID:$TARGET_GID" /nix
        chmod 0755 "$_installer"
        run_as "$TARGET_USER" env HOME="$TARGET_HOME" USER="$TARGET_USER" \
            NIX_CONFIG="$_nix_config
build-users-group =" sh "$_installer" --no-daemon --no-channel-add --no-modify-profile </dev/null
    fi
    rm -f "$_installer"
}

# The nixbld group and users that nix-daemon builds as. Images that ship them (nixos/nix has
# nixbld1..32) need no user tools; any other needs groupadd/useradd or BusyBox's addgroup/adduser.
ensure_build_users() {
    if ! grep -q '^nixbld:' /etc/group; then
        log "creating the nixbld group and $BUILD_USER_COUNT build users"
        if command -v groupadd >/dev/null 2>&1; then
            groupadd --system nixbld
        elif command -v addgroup >/dev/null 2>&1; then
            addgroup -S nixbld
        else
            die "multiUser=true needs the nixbld group, and this image has no groupadd or addgroup to create it"
        fi
    fi
    _i=1
    while [ "$_i" -le "$BUILD_USER_COUNT" ]; do
        if ! id "nixbld$_i" >/dev/null 2>&1; then
            if ! command -v useradd >/dev/null 2>&1 && ! command -v adduser >/dev/null 2>&1; then
                die "multiUser=true needs the build user nixbld$_i, and this image has no useradd or adduser to create it"
            fi
            if command -v useradd >/dev/null 2>&1; then
                useradd --system --no-create-home --home-dir /var/empty --shell /usr/sbin/nologin \
                    --gid nixbld --groups nixbld --comment "Nix build user $_i" "nixbld$_i"
            else
                adduser -S -D -H -h /var/empty -s /sbin/nologin -G nixbld -g "Nix build user $_i" "nixbld$_i"
            fi
        fi
        _i=$((_i + 1))
    done
}

# The state directories Nix expects, with the user's own profile and GC-root folders.
ensure_nix_dirs() {
    mkdir -p /nix/store /nix/var/nix/db /nix/var/nix/daemon-socket /nix/var/nix/temproots \
        /nix/var/nix/profiles/per-user "/nix/var/nix/profiles/per-user/$TARGET_USER" \
        /nix/var/nix/gcroots/per-user "/nix/var/nix/gcroots/per-user/$TARGET_USER"
    chown "$TARGET_UID:$TARGET_GID" "/nix/var/nix/profiles/per-user/$TARGET_USER" \
        "/nix/var/nix/gcroots/per-user/$TARGET_USER"
}

# Single-user: the user owns /nix (only what is not theirs yet is changed).
give_nix_to_user() {
    [ "$MODE" = single-user ] || return 0
    [ "$TARGET_UID" != 0 ] || return 0
    if [ -n "$(find /nix \( ! -user "$TARGET_UID" -o ! -group "$TARGET_GID" \) -print 2>/dev/null | head -n 1)" ]; then
        log "giving /nix to $TARGET_USER (single-user Nix)"
        chown -R "$TARGET_UID:$TARGET_GID" /nix
    fi
}

DAEMON_PID=""
start_install_daemon() {
    [ "$MODE" = daemon ] || return 0
    [ "$TARGET_UID" != 0 ] || return 0
    log "starting nix-daemon for the rest of the installation"
    "$NIX_DAEMON" >/tmp/devnix-nix-daemon-install.log 2>&1 &
    DAEMON_PID=$!
    _tries=0
    while [ ! -S /nix/var/nix/daemon-socket/socket ]; do
        _tries=$((_tries + 1))
        if [ "$_tries" -gt 100 ] || ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            cat /tmp/devnix-nix-daemon-install.log >&2 || true
            die "nix-daemon did not start"
        fi
        sleep 0.1
    done
}

stop_install_daemon() {
    if [ -n "$DAEMON_PID" ]; then
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=""
        rm -f /nix/var/nix/daemon-socket/socket /tmp/devnix-nix-daemon-install.log
    fi
}
trap stop_install_daemon EXIT

# Run a Nix command as the target user, with the environment their shells will have.
nix_as_user() {
    _remote=""
    if [ "$MODE" = daemon ] && [ "$TARGET_UID" != 0 ]; then _remote=daemon; fi
    run_as "$TARGET_USER" env HOME="$TARGET_HOME" USER="$TARGET_USER" \
        PATH="$TARGET_HOME/.nix-profile/bin:$NIX_BIN_DIR:/usr/local/bin:/usr/bin:/bin" \
        NIX_PATH="$OPT_NIXPATH" NIX_REMOTE="$_remote" "$@"
}

install_user_packages() {
    # "nixpkgs.hello" and "hello" name the same attribute of <nixpkgs>.
    _attrs=""
    for _attr in $(split_list "$OPT_PACKAGES"); do
        _attrs="$_attrs${_attrs:+ }${_attr#nixpkgs.}"
    done
    if [ -z "$_attrs" ] && [ -z "$OPT_FLAKEURI" ]; then
        return 0
    fi
    start_install_daemon
    if [ -n "$_attrs" ]; then
        log "installing for $TARGET_USER from <nixpkgs> ($OPT_NIXPATH): $_attrs"
        # shellcheck disable=SC2086
        nix_as_user nix-env -f '<nixpkgs>' -iA $_attrs
    fi
    if [ -n "$OPT_FLAKEURI" ]; then
        log "installing for $TARGET_USER the flake output $OPT_FLAKEURI"
        _nixf="nix --extra-experimental-features nix-command --extra-experimental-features flakes"
        # shellcheck disable=SC2086
        nix_as_user $_nixf build --no-link --no-write-lock-file "$OPT_FLAKEURI"
        # shellcheck disable=SC2086
        _paths=$(nix_as_user $_nixf path-info --no-write-lock-file "$OPT_FLAKEURI")
        # One profile for both kinds, managed by nix-env (which cannot read a `nix profile` one).
        # shellcheck disable=SC2086
        nix_as_user nix-env -i $_paths
    fi
    stop_install_daemon
}

# VS Code's server and other glibc programs built outside Nix need an FHS loader
# (/lib64/ld-linux-x86-64.so.2, /lib/ld-linux-aarch64.so.1), which store-only images such as
# nixos/nix lack: fhs-loader.sh (devnix's scaffold, shipped here byte for byte) installs a copy of
# Nix's own loader there. It is a no-op where the image has a loader (Debian, a second run). Its
# messages are logged; its failure fails the install with them.
FHS_LOADER_MARKER=/usr/lib/devnix-fhs/.devnix-fhs-loader
ensure_fhs_loader() {
    log "FHS loader for glibc programs from outside Nix (VS Code's server): fhs-loader.sh"
    _fhs_rc=0
    # /bin/sh, not `sh` from PATH: the one shell every image has (nixos/nix's PATH is its profile).
    _fhs_out=$(/bin/sh "$FEATURE_DIR/fhs-loader.sh" 2>&1) || _fhs_rc=$?
    printf '%s\n' "$_fhs_out" | while IFS= read -r _l; do
        if [ -n "$_l" ]; then log "  $_l"; fi
    done
    if [ "$_fhs_rc" != 0 ]; then
        die "fhs-loader.sh failed (exit $_fhs_rc): ${_fhs_out##*devnix fhs-loader: }"
    fi
    if [ -e "$FHS_LOADER_MARKER" ]; then FHS_LOADER=devnix; else FHS_LOADER=image; fi
}

write_state() {
    mkdir -p "$DEVNIX_NIX_SHARE"
    cat >"$DEVNIX_NIX_SHARE/feature.env" <<EOF
# Written by the devnix nix Feature's install.sh; read by entrypoint.sh.
DEVNIX_NIX_MODE=$MODE
DEVNIX_NIX_USER=$TARGET_USER
DEVNIX_NIX_OWNER=$TARGET_UID:$TARGET_GID
DEVNIX_NIX_INSTALLED_BY=$INSTALLED_BY
DEVNIX_NIX_BIN_DIR=$NIX_BIN_DIR
DEVNIX_NIX_DAEMON=$NIX_DAEMON
DEVNIX_NIX_SECCOMP_PROBE=$PROBE_RESULT
DEVNIX_NIX_FHS_LOADER=$FHS_LOADER
EOF
    cp "$FEATURE_DIR/entrypoint.sh" "$DEVNIX_NIX_SHARE/entrypoint.sh"
    chmod 0755 "$DEVNIX_NIX_SHARE/entrypoint.sh"
}

# ----------------------------------------------------------------------------------------------
# Install (or find) Nix

if find_nix; then
    INSTALLED_BY=existing
    log "Nix is already installed ($("$NIX_BIN_DIR/nix-env" --version 2>/dev/null || echo "in $NIX_BIN_DIR")): configuring it only"
else
    case "$OPT_INSTALLMETHOD" in
        distro)
            distro_has_nix || die "installMethod=distro, but this image has no nix-bin package (Debian 11+/Ubuntu 22.04+ have one); use installMethod=official"
            install_distro
            INSTALLED_BY=distro
            ;;
        official)
            install_official
            INSTALLED_BY=official
            ;;
        auto)
            if distro_has_nix; then
                install_distro
                INSTALLED_BY=distro
            else
                log "no nix-bin package here: falling back to the official installer"
                install_official
                INSTALLED_BY=official
            fi
            ;;
    esac
    find_nix || die "Nix was installed but nix-build is nowhere to be found"
fi
PATH="$NIX_BIN_DIR:$PATH"
export PATH
NIX_DAEMON=""
for _cand in "$NIX_BIN_DIR/nix-daemon" /nix/var/nix/profiles/default/bin/nix-daemon /usr/bin/nix-daemon; do
    if [ -x "$_cand" ]; then
        NIX_DAEMON=$_cand
        break
    fi
done
if [ "$MODE" = daemon ] && [ -z "$NIX_DAEMON" ]; then
    die "multiUser=true needs nix-daemon, which this Nix installation lacks"
fi

if [ "$MODE" = daemon ]; then
    ensure_build_users
fi
ensure_nix_dirs
ensure_fhs_loader

# ----------------------------------------------------------------------------------------------
# Can Nix load its syscall filter here? (Only emulation makes it fail; decide by trying.)

decide_filter_syscalls

# ----------------------------------------------------------------------------------------------
# Configure

write_nix_conf "$NIX_CONF_FILE"
log "wrote the devnix block of $NIX_CONF_FILE"
write_profile_script
write_state
give_nix_to_user
install_user_packages
give_nix_to_user

if [ "$APT_UPDATED" = 1 ]; then
    rm -rf /var/lib/apt/lists/*
fi

log "done: $("$NIX_BIN_DIR/nix-env" --version 2>/dev/null || echo Nix) for $TARGET_USER ($MODE)"
if [ "$MODE" = daemon ]; then
    log "nix-daemon starts with the container (entrypoint $DEVNIX_NIX_SHARE/entrypoint.sh; needs the container to start as root or passwordless sudo)"
fi
