{
  description = "runphi: an OCI runtime that runs containers as Jailhouse cells";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  # The flake lives in nix/ and builds the whole repository, so use it
  # through git, which copies the repository and not just this directory:
  #   nix build "git+file://$PWD?dir=nix#runphi"
  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        runphi = pkgs.callPackage ./package.nix { };
        runphi-aarch64-static = pkgs.pkgsCross.aarch64-multiplatform.callPackage ./package.nix { };
        default = runphi;
      });

      checks = forAllSystems (pkgs: {
        unit-tests = pkgs.callPackage ./package.nix { doCheck = true; };
      });

      devShells = forAllSystems (pkgs: {
        default = import ./shell.nix { inherit pkgs; };
      });
    };
}
