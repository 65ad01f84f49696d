# Build with `nix-build hello.nix` inside the dev container (no nixpkgs needed, works offline).
derivation {
  name = "hello";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo hello from $(uname -m) > $out" ];
}
