#!/bin/bash
# Plain Debian bookworm without Nix, as root, installMethod=distro.
source dev-container-features-test-lib
source nix-checks.sh

check "running as root" is_user root
check "installed with nix-bin" [ "$(feature_state DEVNIX_NIX_INSTALLED_BY)" = distro ]
check "nix-bin is the Debian package" dpkg -s nix-bin
check "single-user mode" [ "$(feature_state DEVNIX_NIX_MODE)" = single-user ]
check "flakes on" flakes_enabled
check "native: filter-syscalls stays on" no_filter_syscalls_line
check "nix-build works offline" builds_offline
check "nix build works offline" nix_build_offline
check "no nix-daemon in single-user mode" [ ! -S /nix/var/nix/daemon-socket/socket ]

reportResults
