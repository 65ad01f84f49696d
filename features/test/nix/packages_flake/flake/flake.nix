{
  description = "A stand-in flake for the devnix nix Feature's offline tests";

  outputs = { self }:
    let
      hello = system: derivation {
        name = "devnix-flake-hello";
        inherit system;
        builder = "/bin/sh";
        args = [ "-c" "/bin/mkdir -p $out/bin && printf '#!/bin/sh\\necho hello from the stand-in flake\\n' > $out/bin/devnix-flake-hello && /bin/chmod 0755 $out/bin/devnix-flake-hello" ];
      };
    in
    {
      packages.x86_64-linux.default = hello "x86_64-linux";
      packages.aarch64-linux.default = hello "aarch64-linux";
    };
}
