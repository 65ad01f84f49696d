#!/bin/sh
# Checks for the nix-flake Template, run inside a container made from it.
failed=0
check() { if sh -c "$2"; then echo "ok: $1"; else echo "FAILED: $1"; failed=1; fi; }
check 'nix runs' 'nix --version'
check 'flakes are on' 'nix show-config | grep -q '"'"'^experimental-features = .*flakes'"'"''
check 'the syscall filter stays on natively' 'nix show-config | grep -q '"'"'^filter-syscalls = true'"'"''
check 'NIX_PATH is set' 'test -n "$NIX_PATH"'
check 'an FHS loader finds libstdc++ (VS Code'"'"'s server can start)' 'l=/lib64/ld-linux-x86-64.so.2; [ -e $l ] || l=/lib/ld-linux-aarch64.so.1; $l --preload "libstdc++.so.6 libgcc_s.so.1" "$(readlink -f /bin/sh)" -c :'
exit "$failed"
