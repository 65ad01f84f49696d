#!/bin/sh
# devnix nix Feature entrypoint, run by the devcontainer CLI when the container starts.
# With multiUser=true it starts nix-daemon (as root, or through passwordless sudo); with
# single-user Nix it does nothing. It never blocks and never fails the container's start.
# Given arguments, it runs them afterwards (exec "$@"), like other Features' entrypoints.

STATE=${DEVNIX_NIX_SHARE:-/usr/local/share/devnix/nix}/feature.env
PIDFILE=/run/devnix-nix-daemon.pid
LOG=/tmp/nix-daemon.log

start_daemon() {
    # shellcheck disable=SC1090
    . "$STATE"
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

if [ -r "$STATE" ]; then
    start_daemon
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
