#!/bin/bash
# Default options on the --base-image (plain Debian bookworm without Nix), as root.
source dev-container-features-test-lib
source nix-checks.sh

check "nix is on PATH" command -v nix
check "nix-build is on PATH" command -v nix-build
check "installed with the distribution's nix-bin" [ "$(feature_state DEVNIX_NIX_INSTALLED_BY)" = distro ]
check "single-user mode" [ "$(feature_state DEVNIX_NIX_MODE)" = single-user ]
check "NIX_PATH is the default" [ "$NIX_PATH" = "nixpkgs=channel:nixos-unstable" ]
check "flakes on" flakes_enabled
check "sandbox off" [ "$(nix_setting sandbox)" = false ]
check "no build users for single-user root" [ -z "$(nix_setting build-users-group)" ]
check "native: the seccomp probe loaded the filter" [ "$(feature_state DEVNIX_NIX_SECCOMP_PROBE)" = loads ]
check "native: filter-syscalls stays on" [ "$(nix_setting filter-syscalls)" = true ]
check "native: no filter-syscalls line" no_filter_syscalls_line
check "nix-build of a trivial derivation" builds_offline
check "nix build of a trivial derivation" nix_build_offline
check "nix eval" [ "$(nix eval --expr '1 + 1')" = 2 ]
check "the entrypoint is in place" test -x /usr/local/share/devnix/nix/entrypoint.sh

reportResults
