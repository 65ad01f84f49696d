#!/bin/bash
# An image that already has Nix, with remoteUser vscode: configure only, and hand /nix to vscode.
source dev-container-features-test-lib
source nix-checks.sh

check "running as vscode" is_user vscode
check "the image's Nix was kept" [ "$(feature_state DEVNIX_NIX_INSTALLED_BY)" = existing ]
check "vscode owns /nix/store" [ "$(owner_of /nix/store)" = vscode ]
check "flakes on" flakes_enabled
check "nix-build works offline as vscode" builds_offline
check "nix build works offline as vscode" nix_build_offline

reportResults
