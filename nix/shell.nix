# Development shell: Go, QEMU for the arm64 guests, and the tools the
# Makefile and the CI script call.
{
  pkgs ? import <nixpkgs> { },
}:

pkgs.mkShell {
  packages = [
    pkgs.go_1_26
    pkgs.qemu
    pkgs.gnumake
    pkgs.file
    pkgs.git
    pkgs.shellcheck
  ];
}
