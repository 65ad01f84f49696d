#!/bin/bash
# The probe's nix-build is a stand-in failing with "unable to load seccomp BPF program: Invalid
# argument", as Nix does under x86_64 emulation: the Feature must write filter-syscalls = false.
source dev-container-features-test-lib
source nix-checks.sh

check "the probe saw the seccomp failure" [ "$(feature_state DEVNIX_NIX_SECCOMP_PROBE)" = unsupported ]
check "filter-syscalls = false in the devnix block" filter_syscalls_off_line
check "Nix reads filter-syscalls = false" [ "$(nix_setting filter-syscalls)" = false ]
check "sandbox off" [ "$(nix_setting sandbox)" = false ]
check "nix-build works offline" builds_offline

reportResults
