# shellcheck shell=sh
# Functions of the devnix `nix` Feature. Sourced by install.sh, and by the tests (which call
# probe_syscall_filter and write_nix_conf with a stand-in Nix). POSIX sh: no bashisms.
#
# Only POSIX sh builtins and the tools every Nix image has (coreutils, grep): store-only images
# such as nixos/nix have no sed, awk, getent or useradd, and the Feature must configure the Nix they
# already hold. Text is handled with `case`, parameter expansion, `while IFS= read` loops, tr and
# cut.
#
# Nothing in here runs on being sourced, apart from setting the defaults below.

DEVNIX_NIX_SHARE=${DEVNIX_NIX_SHARE:-/usr/local/share/devnix/nix}
DEVNIX_PROFILE_SCRIPT=${DEVNIX_PROFILE_SCRIPT:-/etc/profile.d/devnix-nix.sh}
NIX_CONF_FILE=${NIX_CONF_FILE:-${NIX_CONF_DIR:-/etc/nix}/nix.conf}
# Interactive shells' rc files that get a line sourcing the profile script (they do not read
# /etc/profile.d themselves: bash when not a login shell, zsh).
DEVNIX_SHELL_RC_FILES=${DEVNIX_SHELL_RC_FILES-/etc/bash.bashrc /etc/bash/bashrc /etc/zsh/zshrc}

BLOCK_BEGIN='# >>> devnix nix Feature >>>'
BLOCK_END='# <<< devnix nix Feature <<<'

# What Nix prints when it cannot load its seccomp filter (QEMU user-mode x86_64, Rosetta):
# NixOS/nix#5258.
SECCOMP_ERROR='unable to load seccomp BPF program'

log() { printf '[nix feature] %s\n' "$*"; }
warn() { printf '[nix feature] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[nix feature] ERROR: %s\n' "$*" >&2
    exit 1
}

is_true() {
    case "$1" in
        true | TRUE | True | 1 | yes | on) return 0 ;;
        *) return 1 ;;
    esac
}

# Quote one word for sh: 'it'\''s' style.
shell_quote() {
    _q="'"
    _rest=$1
    _quoted=""
    while :; do
        case "$_rest" in
            *"$_q"*)
                _quoted="$_quoted${_rest%%"$_q"*}$_q\\$_q$_q"
                _rest=${_rest#*"$_q"}
                ;;
            *) break ;;
        esac
    done
    printf "'%s'" "$_quoted$_rest"
}

# Strip leading and trailing white space (blanks, tabs, CR) from $1.
trim() {
    _t=${1#"${1%%[![:space:]]*}"}
    printf '%s' "${_t%"${_t##*[![:space:]]}"}"
}

# Split a list given as "a, b c" (commas and/or blanks) into one word per line.
split_list() {
    printf '%s\n' "$1" | tr ',\t\r' '   ' | tr -s ' ' '\n' | while IFS= read -r _word; do
        if [ -n "$_word" ]; then printf '%s\n' "$_word"; fi
    done
}

# Does $1 start like a nix.conf setting, "key =" (key: letters, digits, _ . -)?
starts_like_setting() {
    case "$1" in
        *=*) ;;
        *) return 1 ;;
    esac
    _key=$(trim "${1%%=*}")
    case "$_key" in
        "" | *[!A-Za-z0-9_.-]*) return 1 ;;
        *) return 0 ;;
    esac
}

# extraNixConfig: one setting per line. A comma also separates settings when what follows it
# starts like a new "key =" (so values that contain commas survive), which keeps the
# comma-separated form of devcontainers/features' nix Feature working.
# Each setting is printed trimmed; empty ones are dropped.
split_nix_config() {
    printf '%s\n' "$1" | while IFS= read -r _line; do
        case "$_line" in
            *,*)
                _setting=${_line%%,*}
                _rest=${_line#*,}
                _more=yes
                ;;
            *)
                _setting=$_line
                _more=no
                ;;
        esac
        # Walk the comma-separated parts after the first: each starts a new setting, or goes on
        # with this one's value.
        while [ "$_more" = yes ]; do
            case "$_rest" in
                *,*)
                    _part=${_rest%%,*}
                    _rest=${_rest#*,}
                    ;;
                *)
                    _part=$_rest
                    _more=no
                    ;;
            esac
            if starts_like_setting "$_part"; then
                emit_setting "$_setting"
                _setting=$_part
            else
                _setting="$_setting,$_part"
            fi
        done
        emit_setting "$_setting"
    done
}

emit_setting() {
    _trimmed=$(trim "$1")
    if [ -n "$_trimmed" ]; then printf '%s\n' "$_trimmed"; fi
}

# ---------------------------------------------------------------------------------------------
# The seccomp probe

# probe_syscall_filter: can Nix load its syscall filter here?
#
# Builds a trivial derivation (unique, so it really builds) with filter-syscalls on and no
# substituters, offline. Prints one word and returns 0:
#   loads        the build succeeded: keep Nix's default (the filter stays on)
#   unsupported  Nix failed with "unable to load seccomp BPF program": write filter-syscalls = false
#   unknown      the build failed for another reason (shown as a warning): keep the default
#
# The Nix command is $DEVNIX_PROBE_NIX_BUILD (tests point it at a stand-in), else nix-build.
probe_syscall_filter() {
    _nix_build=${DEVNIX_PROBE_NIX_BUILD:-nix-build}
    _nonce="$$-$(date +%s 2>/dev/null || echo 0)"
    _expr="derivation { name = \"devnix-seccomp-probe\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo ok > \$out\" ]; nonce = \"${_nonce}\"; }"
    _out=$("$_nix_build" --no-out-link \
        --option filter-syscalls true \
        --option sandbox false \
        --option substituters '' \
        --option build-users-group '' \
        -E "$_expr" 2>&1) && _rc=0 || _rc=$?
    if [ "$_rc" -eq 0 ]; then
        echo loads
    elif printf '%s\n' "$_out" | grep -q "$SECCOMP_ERROR"; then
        echo unsupported
    else
        printf '%s\n' "$_out" | tail -n 5 | while IFS= read -r _l; do
            printf '[nix feature]   probe: %s\n' "$_l"
        done >&2
        echo unknown
    fi
    return 0
}

# decide_filter_syscalls: run the probe and set PROBE_RESULT and FILTER_SYSCALLS_OFF (what
# render_nix_conf_block writes), with a message either way.
decide_filter_syscalls() {
    log "probing whether Nix can load its seccomp syscall filter here"
    PROBE_RESULT=$(probe_syscall_filter)
    case "$PROBE_RESULT" in
        loads)
            FILTER_SYSCALLS_OFF=false
            log "the syscall filter loads: filter-syscalls stays on"
            ;;
        unsupported)
            FILTER_SYSCALLS_OFF=true
            log "Nix cannot load its seccomp filter here (emulation): writing filter-syscalls = false"
            ;;
        *)
            FILTER_SYSCALLS_OFF=false
            warn "the probe build failed for another reason (above); filter-syscalls stays at Nix's default"
            ;;
    esac
    OPT_PROBE_RESULT=$PROBE_RESULT
}

# ---------------------------------------------------------------------------------------------
# nix.conf

# render_nix_conf_block: the managed block, from these variables:
#   OPT_FLAKES (true/false), FILTER_SYSCALLS_OFF (true/false), OPT_MULTIUSER (true/false),
#   OPT_TRUSTEDUSERS (list), OPT_EXTRANIXCONFIG (lines), OPT_PROBE_RESULT (text for the comment)
render_nix_conf_block() {
    echo "$BLOCK_BEGIN"
    echo "# Written by the devnix nix Feature's install.sh; running it again replaces this block."
    if is_true "${OPT_FLAKES:-true}"; then
        echo "# the nix CLI and flakes"
        echo "experimental-features = nix-command flakes"
    fi
    if is_true "${FILTER_SYSCALLS_OFF:-false}"; then
        echo "# Nix runs under emulation here, which cannot load its seccomp filter"
        echo "# (probe at install time: ${OPT_PROBE_RESULT:-unsupported})"
        echo "filter-syscalls = false"
    fi
    echo "# an unprivileged container cannot start Nix's build sandbox"
    echo "sandbox = false"
    if is_true "${OPT_MULTIUSER:-false}"; then
        echo "# nix-daemon builds as the nixbld users"
        echo "build-users-group = nixbld"
    else
        echo "# single-user Nix builds as the container user"
        echo "build-users-group ="
    fi
    _trusted=$(split_list "${OPT_TRUSTEDUSERS:-}" | tr '\n' ' ')
    _trusted=${_trusted% }
    if [ -n "$_trusted" ]; then
        case " $_trusted " in
            *" root "*) ;;
            *) _trusted="root $_trusted" ;;
        esac
        echo "# trusted users are effectively root (NixOS/nix#6672)"
        echo "trusted-users = $_trusted"
    fi
    if [ -n "${OPT_EXTRANIXCONFIG:-}" ]; then
        echo "# extraNixConfig"
        split_nix_config "$OPT_EXTRANIXCONFIG"
    fi
    echo "$BLOCK_END"
}

# write_nix_conf [FILE]: replace the managed block in FILE (default $NIX_CONF_FILE), keeping
# every other line, and append it at the end when there was none.
write_nix_conf() {
    _conf=${1:-$NIX_CONF_FILE}
    mkdir -p "$(dirname "$_conf")"
    _tmp="$_conf.devnix-tmp.$$"
    if [ -f "$_conf" ]; then
        # Every line outside the markers, as is (a last line without a newline gets one).
        _skip=no
        while IFS= read -r _l || [ -n "$_l" ]; do
            if [ "$_l" = "$BLOCK_BEGIN" ]; then
                _skip=yes
            elif [ "$_l" = "$BLOCK_END" ]; then
                _skip=no
            elif [ "$_skip" = no ]; then
                printf '%s\n' "$_l"
            fi
        done <"$_conf" >"$_tmp"
    else
        : >"$_tmp"
    fi
    render_nix_conf_block >>"$_tmp"
    chmod 0644 "$_tmp"
    mv "$_tmp" "$_conf"
}

# ---------------------------------------------------------------------------------------------
# Users

# passwd_field USER N: field N of USER's passwd entry (getent where there is one, which also
# knows users from other NSS sources; else /etc/passwd, read line by line).
passwd_field() {
    if command -v getent >/dev/null 2>&1; then
        getent passwd "$1" | cut -d: -f"$2"
        return 0
    fi
    while IFS= read -r _entry || [ -n "$_entry" ]; do
        case "$_entry" in
            "$1":*)
                printf '%s\n' "$_entry" | cut -d: -f"$2"
                return 0
                ;;
        esac
    done </etc/passwd
}

# run_as USER CMD...: run a command as USER (directly when that is who we are). Through su where
# there is one; store-only images (nixos/nix) have no su, but coreutils' chroot into / with
# --userspec changes user the same way (no login shell, no PAM: the callers set HOME and USER).
run_as() {
    _user=$1
    shift
    if [ "$(id -u)" = "$(id -u "$_user")" ]; then
        "$@"
        return
    fi
    if ! command -v su >/dev/null 2>&1 && command -v chroot >/dev/null 2>&1; then
        chroot --userspec="$(id -u "$_user"):$(id -g "$_user")" \
            --groups="$(id -G "$_user" | tr ' ' ',')" / "$@"
        return
    fi
    _cmd=""
    for _arg in "$@"; do
        _cmd="$_cmd $(shell_quote "$_arg")"
    done
    su -s /bin/sh -c "$_cmd" "$_user"
}

# ---------------------------------------------------------------------------------------------
# Shells

# write_profile_script: NIX_PATH (OPT_NIXPATH), the Nix profiles on PATH, NIX_REMOTE=daemon for
# non-root users in daemon mode (MODE); hooked into the rc files of interactive shells.
write_profile_script() {
    _remote_line=""
    if [ "$MODE" = daemon ]; then
        # shellcheck disable=SC2016 # expanded by the shell that sources the profile script
        _remote_line='if [ "$(id -u)" != 0 ]; then NIX_REMOTE=daemon; export NIX_REMOTE; fi'
    fi
    mkdir -p "$(dirname "$DEVNIX_PROFILE_SCRIPT")"
    cat >"$DEVNIX_PROFILE_SCRIPT" <<EOF
# Written by the devnix nix Feature: NIX_PATH and the Nix profiles on PATH.
if [ -z "\${NIX_PATH:-}" ]; then
    NIX_PATH=$(shell_quote "$OPT_NIXPATH")
    export NIX_PATH
fi
for _devnix_dir in /nix/var/nix/profiles/default/bin "\${HOME:-/nonexistent}/.nix-profile/bin"; do
    case ":\$PATH:" in
        *":\$_devnix_dir:"*) ;;
        *) PATH="\$_devnix_dir:\$PATH" ;;
    esac
done
unset _devnix_dir
export PATH
$_remote_line
EOF
    chmod 0644 "$DEVNIX_PROFILE_SCRIPT"
    # Interactive shells that do not read /etc/profile.d (bash non-login, zsh).
    for _rc in $DEVNIX_SHELL_RC_FILES; do
        [ -f "$_rc" ] || continue
        if ! grep -qF "$DEVNIX_PROFILE_SCRIPT" "$_rc"; then
            printf '\n# devnix nix Feature\nif [ -r %s ]; then . %s; fi\n' "$DEVNIX_PROFILE_SCRIPT" "$DEVNIX_PROFILE_SCRIPT" >>"$_rc"
        fi
    done
}
