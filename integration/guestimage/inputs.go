// Package guestimage assembles what the test guest boots: it finds the
// kernel and arm64 userland that scripts/setup-integration.sh cached, builds
// our static arm64 binaries, and composes the initramfs (init, binaries,
// modules, userland, board data, test images and the scenarios.Config).
//
// Environment:
//
//	RUNPHI_CACHE         cache directory (default $XDG_CACHE_HOME/runphi or ~/.cache/runphi)
//	RUNPHI_TEST_KERNEL   arm64 Image to boot instead of the cached Debian kernel
//	RUNPHI_TEST_MODULES  lib/modules/<release> directory (depmod-indexed) for
//	                     RUNPHI_TEST_KERNEL; without it no modules are loaded
package guestimage

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CacheDir returns the cache directory scripts/setup-integration.sh fills.
func CacheDir() (string, error) {
	if d := os.Getenv("RUNPHI_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "runphi"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return filepath.Join(home, ".cache", "runphi"), nil
}

// ManifestName is the manifest's path inside the cache directory.
const ManifestName = "arm64/current.env"

// Manifest names the cached inputs (arm64/current.env in the cache).
type Manifest struct {
	KernelVersion string // Debian ABI name, e.g. 6.1.0-56-arm64
	Kernel        string // the Image
	KernelConfig  string
	Modules       string // lib/modules/<KernelVersion>, depmod-indexed
	Userland      string // merged-/usr tree: containerd, ctr, shim, runc, busybox, libc
}

// ErrNoManifest means the setup script has not been run.
var ErrNoManifest = errors.New("no cached kernel and userland: run scripts/setup-integration.sh (as root)")

// ReadManifest parses the KEY=value manifest at path.
func ReadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s missing)", ErrNoManifest, path)
	}
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	m := &Manifest{}
	fields := map[string]*string{
		"KERNEL_VERSION": &m.KernelVersion, "KERNEL": &m.Kernel, "KERNEL_CONFIG": &m.KernelConfig,
		"MODULES": &m.Modules, "USERLAND": &m.Userland,
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("manifest %s line %d: want KEY=value, got %q", path, n, line)
		}
		if p, ok := fields[k]; ok {
			*p = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	for k, p := range fields {
		if *p == "" && k != "KERNEL_CONFIG" {
			return nil, fmt.Errorf("manifest %s: %s missing", path, k)
		}
	}
	for _, p := range []string{m.Kernel, m.Modules, m.Userland} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoManifest, err)
		}
	}
	return m, nil
}

// Inputs are the host files one tier boots with.
type Inputs struct {
	Kernel   string // Image
	Modules  string // lib/modules/<release> to copy modules from; empty for none
	Release  string // kernel release of Modules
	Userland string // arm64 userland tree; empty for none
}

// ResolveInputs returns the emulated tier's inputs: RUNPHI_TEST_KERNEL
// (with RUNPHI_TEST_MODULES) if set, else the cached Debian kernel. The
// userland always comes from the cache.
func ResolveInputs() (*Inputs, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	m, err := ReadManifest(filepath.Join(cache, ManifestName))
	if err != nil {
		return nil, err
	}
	in := &Inputs{Kernel: m.Kernel, Modules: m.Modules, Release: m.KernelVersion, Userland: m.Userland}
	if k := os.Getenv("RUNPHI_TEST_KERNEL"); k != "" {
		if _, err := os.Stat(k); err != nil {
			return nil, fmt.Errorf("RUNPHI_TEST_KERNEL: %w", err)
		}
		in.Kernel, in.Modules, in.Release = k, "", ""
		if md := os.Getenv("RUNPHI_TEST_MODULES"); md != "" {
			if _, err := os.Stat(filepath.Join(md, "modules.dep")); err != nil {
				return nil, fmt.Errorf("RUNPHI_TEST_MODULES: %w", err)
			}
			in.Modules, in.Release = md, filepath.Base(md)
		}
	}
	return in, nil
}
