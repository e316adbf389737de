# Classic (non-flake) entry point:
#
#   nix-build nix -A runphi                  # native build
#   nix-build nix -A runphi-aarch64-static   # static aarch64 cross build
#   nix-build nix -A tests                   # go test ./...
#   nix-shell nix/shell.nix                  # Go and QEMU
{
  pkgs ? import <nixpkgs> { },
}:

{
  runphi = pkgs.callPackage ./package.nix { };
  runphi-aarch64-static = pkgs.pkgsCross.aarch64-multiplatform.callPackage ./package.nix { };
  tests = pkgs.callPackage ./package.nix { doCheck = true; };
}
