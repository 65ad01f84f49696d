#!/bin/bash
# packages (from the nixpkgs of nixPath, here a stand-in) and flakeUri (a stand-in path: flake)
# are installed into vscode's profile at build time, offline.
source dev-container-features-test-lib
source nix-checks.sh

check "running as vscode" is_user vscode
check "packages: devnix-hello" [ "$(devnix-hello)" = "hello from the stand-in nixpkgs" ]
check "packages: nixpkgs.devnix-bye" [ "$(devnix-bye)" = "bye from the stand-in nixpkgs" ]
check "flakeUri: devnix-flake-hello" [ "$(devnix-flake-hello)" = "hello from the stand-in flake" ]
check "all three are in vscode's nix-env profile" profile_lists devnix-bye devnix-flake-hello devnix-hello
check "vscode owns /nix/store" [ "$(owner_of /nix/store)" = vscode ]

reportResults
