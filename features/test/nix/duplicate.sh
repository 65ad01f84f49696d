#!/bin/bash
# The CLI's duplicate test: the Feature installed twice into one image (as `nix` with non-default
# options and as `nix-0` with the defaults). The second install must find Nix, reconfigure it and
# leave one consistent configuration, whatever the first one chose.
source dev-container-features-test-lib
source nix-checks.sh

block_count() { grep -c '^# >>> devnix nix Feature >>>$' /etc/nix/nix.conf; }
hook_count() { grep -c 'devnix-nix.sh' /etc/bash.bashrc; }
mode=$(feature_state DEVNIX_NIX_MODE)
if [ "$mode" = daemon ]; then want_group=nixbld; else want_group=""; fi

check "one devnix block in nix.conf" [ "$(block_count)" = 1 ]
check "one profile hook in bash.bashrc" [ "$(hook_count)" = 1 ]
check "the second install found Nix" [ "$(feature_state DEVNIX_NIX_INSTALLED_BY)" = existing ]
check "build-users-group fits the mode ($mode)" [ "$(nix_setting build-users-group)" = "$want_group" ]
check "nix-build works offline" builds_offline

reportResults
