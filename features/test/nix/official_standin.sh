#!/bin/bash
# installMethod=official, single-user for vscode, with a stand-in installer (nixos.org is not
# reachable from the test machines): the Feature downloads it, runs it as vscode with the right
# flags and settings, then finds and configures the Nix it installed.
source dev-container-features-test-lib
source nix-checks.sh

installer_log() { cat "$HOME/.devnix-official-installer.log"; }
ran_as_vscode() { installer_log | grep -qx 'user: vscode USER=vscode HOME=/home/vscode'; }
ran_with_flags() { installer_log | grep -qx 'args: --no-daemon --no-channel-add --no-modify-profile'; }

check "running as vscode" is_user vscode
check "installed by the official installer" [ "$(feature_state DEVNIX_NIX_INSTALLED_BY)" = official ]
check "the installer ran as vscode" ran_as_vscode
check "the installer got the single-user flags" ran_with_flags
check "nix-build comes from vscode's profile" [ "$(command -v nix-build)" = "$HOME/.nix-profile/bin/nix-build" ]
check "vscode owns /nix/store" [ "$(owner_of /nix/store)" = vscode ]
check "flakes on" flakes_enabled
check "nix-build works offline" builds_offline

reportResults
