#!/usr/bin/env bash
# A store-only Nix image shaped like the official nixos/nix (glibc only in /nix/store, no FHS
# loader, no sed/awk/getent/useradd/su/apt), as root: the Feature configures the image's Nix with
# coreutils and grep alone, and fhs-loader.sh gives glibc programs from outside Nix (VS Code's
# server) a loader that finds libstdc++. (/usr/bin/env, not /bin/bash: the image has no /bin/bash.)
source dev-container-features-test-lib
source nix-checks.sh

case "$(uname -m)" in
    aarch64) fhs_loader=/lib/ld-linux-aarch64.so.2 ;;
    *) fhs_loader=/lib64/ld-linux-x86-64.so.2 ;;
esac
# What VS Code's server needs of the loader: libstdc++ and libgcc_s found by name.
loader_finds_libstdcxx() {
    "$fhs_loader" --preload 'libstdc++.so.6 libgcc_s.so.1' "$(readlink -f /bin/sh)" -c :
}
# The premise: none of the tools the Feature used to need is there.
none_of() {
    local tool
    for tool in "$@"; do
        if command -v "$tool" >/dev/null 2>&1; then return 1; fi
    done
}

check "running as root" is_user root
check "the image has no sed, awk, getent, useradd, su or apt" none_of sed awk getent useradd su apt-get
check "nix --version" nix --version
check "the image's Nix was kept" [ "$(feature_state DEVNIX_NIX_INSTALLED_BY)" = existing ]
check "nix.conf has the devnix block" nix_conf_block
check "flakes on" flakes_enabled
check "sandbox off" [ "$(nix_setting sandbox)" = false ]
check "devnix's empty build-users-group wins over the image's nixbld" [ -z "$(nix_setting build-users-group)" ]
check "native: the seccomp probe loaded the filter" [ "$(feature_state DEVNIX_NIX_SECCOMP_PROBE)" = loads ]
check "nix-build works offline" builds_offline
check "nix build works offline" nix_build_offline
check "the FHS loader exists ($fhs_loader)" test -x "$fhs_loader"
check "it is devnix's (fhs-loader.sh ran)" [ "$(feature_state DEVNIX_NIX_FHS_LOADER)" = devnix ]
check "its library folder links the store's libstdc++" test -e /usr/lib/devnix-fhs/libstdc++.so.6
check "the loader resolves libstdc++ and libgcc_s by name" loader_finds_libstdcxx

reportResults
