#!/bin/bash
# An arm64 image under QEMU user-mode emulation: the probe ran for real (emulated) at install time.
# Whether QEMU can load Nix's seccomp filter depends on the QEMU and the guest (an aarch64 guest on
# QEMU 7.2 can; x86_64 guests on arm64 hosts cannot): check that nix.conf follows the verdict.
source dev-container-features-test-lib
source nix-checks.sh

verdict=$(feature_state DEVNIX_NIX_SECCOMP_PROBE)
echo "seccomp probe verdict under emulation: $verdict"

check "runs emulated as aarch64" [ "$(uname -m)" = aarch64 ]
check "Nix sees an aarch64-linux system" [ "$(nix eval --raw --impure --expr builtins.currentSystem)" = aarch64-linux ]
verdict_known() { [ "$verdict" = loads ] || [ "$verdict" = unsupported ]; }
check "the probe gave a verdict" verdict_known
if [ "$verdict" = unsupported ]; then
    check "filter-syscalls = false, as the probe found" filter_syscalls_off_line
else
    check "filter-syscalls stays on, as the probe found" no_filter_syscalls_line
fi
check "nix-build works offline, emulated" builds_offline

reportResults
