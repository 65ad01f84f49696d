#!/bin/bash
# An image that already has Nix (Debian's nix-bin, unconfigured), as root: configure only.
source dev-container-features-test-lib
source nix-checks.sh

check "running as root" is_user root
check "the image's Nix was kept" [ "$(feature_state DEVNIX_NIX_INSTALLED_BY)" = existing ]
check "it is the image's nix-bin" [ "$(command -v nix-build)" = /usr/bin/nix-build ]
check "nix.conf has the devnix block" nix_conf_block
check "flakes on" flakes_enabled
check "no build users for single-user root" [ -z "$(nix_setting build-users-group)" ]
check "nix-build works offline" builds_offline
check "nix build works offline" nix_build_offline

reportResults
