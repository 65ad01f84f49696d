# A stand-in for nixpkgs, for offline tests: `import <nixpkgs> {}` has a few attributes built
# with /bin/sh only, so that nix-env -iA works without a channel or a binary cache.
{ ... }:
let
  script = name: text: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "/bin/mkdir -p $out/bin && printf '#!/bin/sh\\necho %s\\n' '${text}' > $out/bin/${name} && /bin/chmod 0755 $out/bin/${name}" ];
  };
in
{
  devnix-hello = script "devnix-hello" "hello from the stand-in nixpkgs";
  devnix-bye = script "devnix-bye" "bye from the stand-in nixpkgs";
}
