#!/bin/sh
# devnix nix Feature entrypoint, run by the devcontainer CLI when the container starts.
# With multiUser=true it starts nix-daemon (as root, or through passwordless sudo). With
# single-user Nix it hands /nix to the remote user when that user's uid changed after the build.
# It never blocks and never fails the container's start.
# Given arguments, it runs them afterwards (exec "$@"), like other Features' entrypoints.

STATE=${DEVNIX_NIX_SHARE:-/usr/local/share/devnix/nix}/feature.env
PIDFILE=/run/devnix-nix-daemon.pid
LOG=/tmp/nix-daemon.log

start_daemon() {
    [ "${DEVNIX_NIX_MODE:-}" = daemon ] || return 0
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE" 2>/dev/null)" 2>/dev/null; then
        return 0
    fi
    daemon=${DEVNIX_NIX_DAEMON:-nix-daemon}
    if [ "$(id -u)" = 0 ]; then
        rm -f /nix/var/nix/daemon-socket/socket
        nohup "$daemon" >>"$LOG" 2>&1 </dev/null &
        echo $! >"$PIDFILE"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n sh -c 'rm -f /nix/var/nix/daemon-socket/socket; nohup "$1" >>"$2" 2>&1 </dev/null & echo $! >"$3"' \
            sh "$daemon" "$LOG" "$PIDFILE"
    else
        echo "[nix feature] cannot start nix-daemon: the container runs as $(id -un) without passwordless sudo" >&2
    fi
}

# Single-user Nix belongs to the remote user's numeric uid as it was when install.sh ran. The
# devcontainer CLI's updateRemoteUserUID gives that user the host user's uid in a layer built after
# the Features (and chowns only the home folder), so /nix is left to a uid nobody has: Nix then
# fails with "could not set permissions on '/nix/var/nix/profiles/per-user'". The new uid is known
# only now, so the store changes hands here, once (the next start finds it the user's already).
hand_over_store() {
    [ "${DEVNIX_NIX_MODE:-}" = single-user ] && [ -n "${DEVNIX_NIX_OWNER:-}" ] || return 0
    user=${DEVNIX_NIX_USER:-root}
    owner="$(id -u "$user" 2>/dev/null):$(id -g "$user" 2>/dev/null)"
    case "$owner" in :* | *:) return 0 ;; esac
    [ "$owner" != "$DEVNIX_NIX_OWNER" ] || return 0
    [ "$(stat -c %u:%g /nix/store 2>/dev/null)" != "$owner" ] || return 0
    if [ "$(id -u)" = 0 ]; then
        chown -R "$owner" /nix
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n chown -R "$owner" /nix
    else
        echo "[nix feature] /nix is $DEVNIX_NIX_OWNER's ($user when Nix was installed), but $user is now $owner: run \`sudo chown -R $owner /nix\` once" >&2
    fi
}

if [ -r "$STATE" ]; then
    # shellcheck disable=SC1090
    . "$STATE"
    hand_over_store
    start_daemon
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
