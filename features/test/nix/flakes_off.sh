#!/bin/bash
# flakes=false: no experimental features are turned on; classic Nix still works.
source dev-container-features-test-lib
source nix-checks.sh

check "flakes off" flakes_disabled
check "no experimental-features line" no_experimental_features_line
check "the nix command is not enabled" nix_command_disabled
check "nix-build works offline" builds_offline

reportResults
