#!/bin/bash
# Shared checks for the nix Feature's tests, sourced after dev-container-features-test-lib.
# Everything runs offline: no substituters, trivial derivations built with /bin/sh only.
# Bash builtins, coreutils and grep only: store-only images (nixos/nix) have no sed, awk or getent.

NIX_FEATURE_STATE=/usr/local/share/devnix/nix/feature.env

# The effective value of a Nix setting (works with nix-command off, too).
nix_setting() {
    local line
    nix --extra-experimental-features nix-command show-config 2>/dev/null | while IFS= read -r line; do
        if [[ $line == "$1 = "* ]]; then printf '%s\n' "${line#"$1 = "}"; fi
    done
}

# The devnix block of nix.conf, markers included (fails when there is none).
nix_conf_block() {
    local line inside=no
    while IFS= read -r line; do
        [ "$line" = "# >>> devnix nix Feature >>>" ] && inside=yes
        if [ "$inside" = yes ]; then printf '%s\n' "$line"; fi
        if [ "$line" = "# <<< devnix nix Feature <<<" ]; then inside=no; fi
    done </etc/nix/nix.conf | grep .
}

# A value install.sh recorded.
feature_state() {
    local line
    while IFS= read -r line; do
        if [[ $line == "$1="* ]]; then printf '%s\n' "${line#"$1="}"; fi
    done <"$NIX_FEATURE_STATE"
}

is_user() { [ "$(id -un)" = "$1" ]; }
owner_of() { stat -c %U "$1"; }

# A Nix expression for a fresh (never built) trivial derivation whose output is "ok".
trivial_drv() {
    echo "derivation { name = \"devnix-check-$(id -u)-$RANDOM$RANDOM\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo ok > \$out\" ]; }"
}

# Build a fresh trivial derivation with nix-build, offline; print its output path.
build_trivial() {
    nix-build --no-out-link --option substituters '' -E "$(trivial_drv)"
}

builds_offline() {
    local out
    out=$(build_trivial) || return 1
    [ "$(cat "$out")" = ok ]
}

# The same with the nix command (needs nix-command). Nix 2.8 has no --print-out-paths.
nix_build_offline() {
    local json out
    json=$(nix build --no-link --json --option substituters '' --impure --expr "$(trivial_drv)") || return 1
    [[ $json =~ \"out\":\"([^\"]*)\" ]] || return 1
    out=${BASH_REMATCH[1]}
    [ -n "$out" ] && [ "$(cat "$out")" = ok ]
}

# Outputs built through nix-daemon belong to root, not to the user who asked.
daemon_builds_as_root() {
    local out
    out=$(build_trivial) || return 1
    [ "$(stat -c %U "$out")" = root ]
}

# Build a tiny package and nix-env -i it into the user's profile; run it from PATH.
installs_into_profile() {
    local out
    # shellcheck disable=SC2016 # $out is Nix's, not the shell's
    out=$(nix-build --no-out-link --option substituters '' -E 'derivation {
        name = "devnix-profile-check";
        system = builtins.currentSystem;
        builder = "/bin/sh";
        args = [ "-c" "/bin/mkdir -p $out/bin && printf \"#!/bin/sh\\necho profile-ok\\n\" > $out/bin/devnix-profile-check && /bin/chmod 0755 $out/bin/devnix-profile-check" ];
    }') || return 1
    nix-env -i "$out" || return 1
    hash -r
    [ "$(devnix-profile-check)" = profile-ok ]
}

on_path() { case ":$PATH:" in *":$1:"*) return 0 ;; *) return 1 ;; esac; }
flakes_enabled() { nix_setting experimental-features | grep -qw flakes; }
flakes_disabled() { ! flakes_enabled; }
nix_command_disabled() { ! nix eval --expr 1 >/dev/null 2>&1; }
no_experimental_features_line() { ! grep -q '^experimental-features' /etc/nix/nix.conf; }
no_filter_syscalls_line() { ! grep -q '^filter-syscalls' /etc/nix/nix.conf; }
filter_syscalls_off_line() { nix_conf_block | grep -qx 'filter-syscalls = false'; }
block_has_line() { nix_conf_block | grep -qxF "$1"; }
# The last setting line of the devnix block (the line before its end marker).
block_last_setting_is() { [ "$(nix_conf_block | tail -n 2 | head -n 1)" = "$1" ]; }
profile_lists() { [ "$(nix-env -q | sort | xargs)" = "$*" ]; }
has_build_users() { grep -q '^nixbld:.*nixbld1' /etc/group; }
