#!/bin/sh
# Checks for the nix-dockerfile Template, run inside a container made from it.
failed=0
check() { if sh -c "$2"; then echo "ok: $1"; else echo "FAILED: $1"; failed=1; fi; }
check "nix runs" "nix --version"
check "flakes are on" "nix show-config | grep -q '^experimental-features = .*flakes'"
check "the syscall filter stays on natively" "nix show-config | grep -q '^filter-syscalls = true'"
check "NIX_PATH is set" "test -n \"$NIX_PATH\""
exit "$failed"
