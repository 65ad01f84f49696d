#!/bin/bash
# extraNixConfig lines (newline and comma separated) land after the Feature's settings; nixPath.
source dev-container-features-test-lib
source nix-checks.sh

check "max-jobs from extraNixConfig" [ "$(nix_setting max-jobs)" = 3 ]
check "keep-outputs from extraNixConfig" [ "$(nix_setting keep-outputs)" = true ]
check "connect-timeout (after a comma)" [ "$(nix_setting connect-timeout)" = 7 ]
check "a value with a comma stays whole" block_has_line "extra-sandbox-paths = /a=/b,/c"
check "extraNixConfig comes after the Feature's settings" block_last_setting_is "extra-sandbox-paths = /a=/b,/c"
check "NIX_PATH from nixPath" [ "$NIX_PATH" = "nixpkgs=/opt/devnix-test/nixpkgs:devnix=/opt/devnix-test" ]
check "nix-build works offline" builds_offline

reportResults
