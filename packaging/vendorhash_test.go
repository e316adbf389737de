package packaging

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// copyModule copies the module's source tree into dst, leaving out
// version control, build output and any vendor/ directory, so that "go
// mod vendor" can run without touching the checkout.
func copyModule(t *testing.T, dst string) {
	t.Helper()
	skipDirs := map[string]bool{".git": true, "bin": true, "vendor": true}
	root := filepath.Clean(repoRoot)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir() && skipDirs[d.Name()] && rel != ".":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular() && !strings.HasSuffix(d.Name(), ".test"):
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return nil // sockets, symlinks and test binaries do not matter to go mod vendor
	})
	if err != nil {
		t.Fatalf("copy module: %v", err)
	}
}

// TestNixVendorHash recomputes buildGoModule's vendorHash, the NAR hash
// of what "go mod vendor" writes, and compares it with nix/package.nix,
// so that the Nix build cannot silently break when go.mod, go.sum or the
// imports change. scripts/update-nix-vendor-hash.sh rewrites the value.
func TestNixVendorHash(t *testing.T) {
	if testing.Short() {
		t.Skip("copies the module and runs go mod vendor")
	}
	m := regexp.MustCompile(`vendorHash = "(sha256-[A-Za-z0-9+/=]+)";`).FindStringSubmatch(readRepoFile(t, "nix/package.nix"))
	if m == nil {
		t.Fatal("nix/package.nix: no vendorHash = \"sha256-...\";")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}

	src := filepath.Join(t.TempDir(), "src")
	copyModule(t, src)
	out := filepath.Join(t.TempDir(), "vendor")
	cmd := exec.Command(goBin, "mod", "vendor", "-o", out)
	cmd.Dir = src
	// Offline: only the module cache, as the rest of the test suite.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "GOPROXY=off") {
			t.Skipf("module cache incomplete, go mod vendor needs the network: %s", stderr.Bytes())
		}
		t.Fatalf("go mod vendor: %v\n%s", err, stderr.Bytes())
	}

	got, err := narHash(out)
	if err != nil {
		t.Fatal(err)
	}
	if got != m[1] {
		t.Errorf("nix/package.nix vendorHash = %s, but go mod vendor gives %s: run scripts/update-nix-vendor-hash.sh", m[1], got)
	}
}
