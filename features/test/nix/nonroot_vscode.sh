#!/bin/bash
# Plain Debian bookworm without Nix, remoteUser vscode (single-user Nix owned by vscode).
source dev-container-features-test-lib
source nix-checks.sh

check "running as vscode" is_user vscode
check "configured for vscode" [ "$(feature_state DEVNIX_NIX_USER)" = vscode ]
check "vscode owns /nix" [ "$(owner_of /nix)" = vscode ]
check "vscode owns /nix/store" [ "$(owner_of /nix/store)" = vscode ]
check "vscode owns the Nix database" [ "$(owner_of /nix/var/nix/db)" = vscode ]
check "NIX_PATH is the default" [ "$NIX_PATH" = "nixpkgs=channel:nixos-unstable" ]
check "the user profile is on PATH" on_path "$HOME/.nix-profile/bin"
check "flakes on" flakes_enabled
check "nix-build works offline as vscode" builds_offline
check "nix build works offline as vscode" nix_build_offline
check "nix-env installs into vscode's profile" installs_into_profile

reportResults
