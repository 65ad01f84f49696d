#!/bin/bash
# multiUser=true with remoteUser vscode: nix-daemon started by the entrypoint, vscode builds
# through it; trustedUsers; packages from a stand-in nixpkgs installed through the daemon.
source dev-container-features-test-lib
source nix-checks.sh

check "running as vscode" is_user vscode
check "daemon mode" [ "$(feature_state DEVNIX_NIX_MODE)" = daemon ]
check "the daemon socket exists" test -S /nix/var/nix/daemon-socket/socket
check "NIX_REMOTE=daemon for vscode" [ "$NIX_REMOTE" = daemon ]
check "the store is root's" [ "$(owner_of /nix/store)" = root ]
check "the nixbld group has build users" has_build_users
check "build-users-group = nixbld" [ "$(nix_setting build-users-group)" = nixbld ]
check "trusted-users has root and vscode" [ "$(nix_setting trusted-users)" = "root vscode" ]
check "nix store ping reaches the daemon" nix store ping
check "nix-build through the daemon" builds_offline
check "outputs built by the daemon are root's" daemon_builds_as_root
check "packages: devnix-hello in vscode's profile" [ "$(devnix-hello)" = "hello from the stand-in nixpkgs" ]

reportResults
