package guestimage

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/runphi-go/runphi/integration/initramfs"
	"github.com/runphi-go/runphi/integration/moddep"
	"github.com/runphi-go/runphi/integration/scenarios"
)

// EmulatedModules are loaded in the emulated tier: CUSE for jhemu's
// /dev/jailhouse, overlay for containerd's snapshotter, 9p and virtio for
// sharing with the host, virtio-rng for entropy.
func EmulatedModules() (all, required []string) {
	return []string{"fuse", "cuse", "overlay", "virtio_pci", "virtio_mmio", "9pnet_virtio", "9p", "virtio_rng"},
		[]string{"fuse", "cuse", "overlay"}
}

// RealModules are loaded in the real tier from the given rootfs: the
// driver is required; overlay is used when the kernel has it.
func RealModules() (all, required []string) {
	return []string{"jailhouse", "overlay"}, []string{"jailhouse"}
}

// Spec says what goes into the guest.
type Spec struct {
	Mode      scenarios.Mode
	Binaries  Built  // our binaries ("init" is required)
	Inputs    Inputs // modules and userland
	Modules   []string
	Required  []string
	BoardsDir string // the repository's boards/ directory
	// Base indexes the archive ours is appended to (real tier); entries it
	// already has decide the layout of ours. Nil for a stand-alone archive.
	Base            map[string]fs.FileMode
	ScenarioTimeout time.Duration
}

// Compose returns the guest archive for s.
func Compose(s Spec) (*initramfs.Archive, error) {
	initBin, ok := s.Binaries.Paths["init"]
	if !ok {
		return nil, fmt.Errorf("guest image: no init binary (%s)", s.Binaries.Missing["init"])
	}
	a := newArchive(s.Base)
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "root", "etc", "var/lib", "usr/bin"} {
		if err := a.dir(d, 0o755); err != nil {
			return nil, err
		}
	}
	steps := []func() error{
		// The kernel opens /dev/console for init before devtmpfs exists.
		func() error {
			return a.ifAbsent("dev/console", func() error { return a.CharDev("dev/console", 0o600, 5, 1) })
		},
		func() error { return a.HostFile("init", initBin) },
		func() error { return a.addBinaries(s.Binaries) },
		func() error { return a.addUserland(s.Inputs.Userland) },
		func() error { return a.addModules(s.Inputs, s.Mode, s.Modules) },
		func() error {
			if s.BoardsDir == "" {
				return nil
			}
			return a.HostTree(scenarios.BoardsDir, s.BoardsDir)
		},
		func() error {
			return a.ifAbsent("etc/passwd", func() error {
				return a.File("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
			})
		},
		func() error {
			return a.ifAbsent("etc/group", func() error { return a.File("etc/group", []byte("root:x:0:\ntty:x:5:\n"), 0o644) })
		},
		func() error { return a.config(s) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("guest image: %w", err)
		}
	}
	return a.Archive, nil
}

// archive wraps initramfs.Archive with knowledge of the base archive.
type archive struct {
	*initramfs.Archive
	base map[string]fs.FileMode
}

// newArchive returns an archive that will be appended to an archive indexed as
// base (nil for none).
func newArchive(base map[string]fs.FileMode) *archive {
	a := &archive{Archive: initramfs.New(), base: base}
	for name, mode := range base {
		if mode.IsDir() || mode&fs.ModeSymlink != 0 {
			a.Assume(name)
		}
	}
	return a
}

func (a *archive) inBase(name string) (fs.FileMode, bool) {
	m, ok := a.base[name]
	return m, ok
}

func (a *archive) ifAbsent(name string, add func() error) error {
	if _, ok := a.inBase(name); ok {
		return nil
	}
	return add()
}

// dir adds a directory unless the base has that name (as a directory or a
// symlink to one, which a directory entry must not replace).
func (a *archive) dir(name string, perm os.FileMode) error {
	if _, ok := a.inBase(name); ok {
		return nil
	}
	return a.Dir(name, perm)
}

func (a *archive) addBinaries(b Built) error {
	for _, name := range slices.Sorted(maps.Keys(b.Paths)) {
		if name == "init" {
			continue
		}
		if err := a.HostFile(path.Join(scenarios.BinDir, name), b.Paths[name]); err != nil {
			return err
		}
	}
	return nil
}

// addUserland adds the merged-/usr tree and the top-level links a
// merged-/usr system has. In a base that has a real /lib directory, the
// dynamic loader gets its own link there instead.
func (a *archive) addUserland(dir string) error {
	if dir == "" {
		return nil
	}
	if err := a.HostTree("usr", filepath.Join(dir, "usr")); err != nil {
		return err
	}
	for _, top := range []string{"bin", "sbin", "lib"} {
		mode, ok := a.inBase(top)
		switch {
		case !ok:
			if err := a.Symlink(top, "usr/"+top); err != nil {
				return err
			}
		case mode.IsDir() && top == "lib":
			const ld = "ld-linux-aarch64.so.1"
			if err := a.Symlink("lib/"+ld, "/usr/lib/aarch64-linux-gnu/"+ld); err != nil {
				return err
			}
		}
	}
	// A shell for debugging and for test containers.
	if err := a.ifAbsent("bin/sh", func() error { return a.Symlink("usr/bin/sh", "busybox") }); err != nil {
		return err
	}
	busybox := filepath.Join(dir, "usr", "bin", "busybox")
	if _, err := os.Stat(busybox); err != nil {
		return nil // no test image without busybox; runc-smoke skips
	}
	img := scenarios.ImageBusybox
	for _, d := range []string{"dev", "proc", "sys", "tmp", "etc", "root"} {
		if err := a.Dir(path.Join(img, d), 0o755); err != nil {
			return err
		}
	}
	if err := a.HostFile(path.Join(img, "bin/busybox"), busybox); err != nil {
		return err
	}
	for _, l := range []string{"sh", "echo", "cat", "ls", "sleep", "true", "false"} {
		if err := a.Symlink(path.Join(img, "bin", l), "busybox"); err != nil {
			return err
		}
	}
	return nil
}

// addModules copies the module files the names resolve to (with their
// dependencies) and the index files, so the guest's loader finds them
// under /lib/modules/<release>.
func (a *archive) addModules(in Inputs, mode scenarios.Mode, names []string) error {
	if in.Modules == "" || mode == scenarios.Real {
		return nil // the real tier's rootfs brings its own modules
	}
	ix, err := moddep.Load(in.Modules)
	if err != nil {
		return err
	}
	order, err := ix.Order(names...)
	if err != nil {
		return err
	}
	dst := path.Join("usr/lib/modules", in.Release)
	for _, rel := range order {
		if err := a.HostFile(path.Join(dst, rel), filepath.Join(in.Modules, rel)); err != nil {
			return err
		}
	}
	for _, f := range []string{"modules.dep", "modules.builtin", "modules.order"} {
		p := filepath.Join(in.Modules, f)
		if _, err := os.Stat(p); err == nil {
			if err := a.HostFile(path.Join(dst, f), p); err != nil {
				return err
			}
		}
	}
	if _, ok := a.inBase("lib"); ok || in.Userland == "" {
		// Without our lib → usr/lib link the modules must sit in lib/.
		for _, rel := range append(order, "modules.dep", "modules.builtin", "modules.order") {
			if !a.Has(path.Join(dst, rel)) {
				continue
			}
			if err := a.HostFile(path.Join("lib/modules", in.Release, rel), filepath.Join(in.Modules, rel)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *archive) config(s Spec) error {
	cfg := scenarios.Config{
		Mode:            s.Mode,
		Modules:         s.Modules,
		Required:        s.Required,
		Binaries:        map[string]string{},
		Missing:         s.Binaries.Missing,
		ScenarioTimeout: scenarios.Duration(s.ScenarioTimeout),
	}
	for name := range s.Binaries.Paths {
		if name != "init" {
			cfg.Binaries[name] = path.Join(scenarios.BinDir, name)
		}
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if _, err := scenarios.ParseConfig(data); err != nil {
		return err
	}
	return a.File(scenarios.ConfigPath, data, 0o644)
}
