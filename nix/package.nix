# runphi, jhctl and cellgen: static Go binaries plus the board data and
# the runtime configuration, built with nixpkgs' Go module builder.
{
  lib,
  buildGo126Module,
  # Run the whole module's unit tests (the flake's "checks").
  doCheck ? false,
}:

buildGo126Module (finalAttrs: {
  pname = "runphi";
  # The single source of truth for the version is the VERSION file.
  version = lib.fileContents ../VERSION;

  src = lib.cleanSourceWith {
    src = lib.cleanSource ../.;
    filter =
      path: type:
      let
        name = baseNameOf path;
      in
      !(lib.elem name [ "bin" "vendor" ] || lib.hasSuffix ".test" name || lib.hasPrefix "result" name);
  };

  # Hash of the `go mod vendor` output for go.mod/go.sum; update it with
  # scripts/update-nix-vendor-hash.sh (see nix/README.md).
  vendorHash = "sha256-K+nXOvIdTI6l3G7beTHT3XmbYan+LdvQ6jsQAQreg0c=";

  subPackages = [
    "runphi"
    "jhctl"
    "cellgen"
  ];

  # Pure Go: statically linked binaries, also when cross-compiled.
  env.CGO_ENABLED = 0;

  ldflags = [
    "-s"
    "-w"
    "-X github.com/runphi-go/runphi/internal/version.version=${finalAttrs.version}"
  ];

  inherit doCheck;
  # All packages of the module, not only the three commands.
  checkPhase = ''
    runHook preCheck
    export GOFLAGS=''${GOFLAGS//-trimpath/}
    go test ./...
    runHook postCheck
  '';

  postInstall = ''
    mkdir -p $out/share/runphi
    cp -r boards $out/share/runphi/boards
    install -Dm644 packaging/config.json $out/etc/runphi/config.json
    install -Dm644 packaging/containerd-runphi.toml $out/share/runphi/containerd/containerd-runphi.toml
    install -Dm644 packaging/containerd2-runphi.toml $out/share/runphi/containerd/containerd2-runphi.toml
  '';

  meta = {
    description = "OCI runtime that runs containers as Jailhouse cells";
    homepage = "https://github.com/runphi-go/runphi";
    license = lib.licenses.asl20;
    mainProgram = "runphi";
    platforms = lib.platforms.linux;
  };
})
