#!/usr/bin/env bash
# Runs once after the container is created (postCreateCommand), written by devnix.
set -euo pipefail

# direnv and nix-direnv from nixpkgs, hooked into bash, with this project's .envrc allowed.
nix profile install nixpkgs#direnv nixpkgs#nix-direnv
mkdir -p "$HOME/.config/direnv"
echo 'source $HOME/.nix-profile/share/nix-direnv/direnvrc' > "$HOME/.config/direnv/direnvrc"
grep -q 'direnv hook bash' "$HOME/.bashrc" 2>/dev/null || echo 'eval "$(direnv hook bash)"' >> "$HOME/.bashrc"
direnv allow .

# Build the dev shell now so the first terminal opens at once.
nix develop --command true
