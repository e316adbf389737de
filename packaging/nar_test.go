package packaging

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// narHash returns the SRI form ("sha256-<base64>") of the SHA-256 of the
// Nix archive (NAR) of dir: the hash a fixed-output derivation with
// outputHashMode = "recursive" records, which is what buildGoModule's
// vendorHash is.
func narHash(dir string) (string, error) {
	h := sha256.New()
	w := &narWriter{w: h}
	w.str("nix-archive-1")
	if err := w.node(dir); err != nil {
		return "", err
	}
	if w.err != nil {
		return "", w.err
	}
	return "sha256-" + base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// narWriter serialises a file tree in the NAR format: every token is a
// little-endian 64-bit length, the bytes, and zero padding to 8 bytes.
type narWriter struct {
	w   io.Writer
	err error
}

func (n *narWriter) bytes(b []byte) {
	if n.err != nil {
		return
	}
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], uint64(len(b)))
	pad := make([]byte, (8-len(b)%8)%8)
	for _, p := range [][]byte{l[:], b, pad} {
		if _, err := n.w.Write(p); err != nil {
			n.err = err
			return
		}
	}
}

func (n *narWriter) str(s string) { n.bytes([]byte(s)) }

func (n *narWriter) node(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	n.str("(")
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		n.str("type")
		n.str("symlink")
		n.str("target")
		n.str(target)
	case fi.IsDir():
		n.str("type")
		n.str("directory")
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		sort.Strings(names) // byte order, as Nix sorts
		for _, name := range names {
			n.str("entry")
			n.str("(")
			n.str("name")
			n.str(name)
			n.str("node")
			if err := n.node(filepath.Join(path, name)); err != nil {
				return err
			}
			n.str(")")
		}
	case fi.Mode().IsRegular():
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n.str("type")
		n.str("regular")
		if fi.Mode()&0o111 != 0 {
			n.str("executable")
			n.str("")
		}
		n.str("contents")
		n.bytes(data)
	default:
		return fmt.Errorf("%s: %v cannot be stored in a NAR", path, fi.Mode().Type())
	}
	n.str(")")
	return nil
}

// TestNARHashMatchesNix checks narHash against nix-hash on a tree with a
// directory, an empty file, an executable, a symlink and names whose
// order depends on byte comparison.
func TestNARHashMatchesNix(t *testing.T) {
	nixHash, err := exec.LookPath("nix-hash")
	if err != nil {
		t.Skip("nix-hash not installed (Debian: apt-get install nix-bin); narHash is not cross-checked")
	}
	dir := t.TempDir()
	files := map[string]string{
		"a.go":          "package a\n",
		"B/empty":       "",
		"B/nested/x.go": strings.Repeat("x", 13),
		"Z":             "upper case sorts first",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.go", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	got, err := narHash(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nixHash, "--type", "sha256", dir)
	cmd.Env = append(os.Environ(), "NIX_CONFIG=build-users-group =")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-hash: %v\n%s", err, stderr.Bytes())
	}
	sum, err := hex.DecodeString(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("nix-hash output %q: %v", out, err)
	}
	want := "sha256-" + base64.StdEncoding.EncodeToString(sum)
	if got != want {
		t.Errorf("narHash = %s, nix-hash says %s", got, want)
	}
}
