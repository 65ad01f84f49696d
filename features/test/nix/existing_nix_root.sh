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
# Debian has its own FHS loader: fhs-loader.sh must have left it alone (a no-op).
check "fhs-loader.sh was a no-op (the image's own loader)" [ "$(feature_state DEVNIX_NIX_FHS_LOADER)" = image ]
check "the FHS loader is Debian's libc6 file" dpkg -S /lib64/ld-linux-x86-64.so.2
check "no devnix library folder" [ ! -e /usr/lib/devnix-fhs ]
check "nix build works offline" nix_build_offline

reportResults
