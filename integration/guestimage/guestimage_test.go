package guestimage

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/runphi-go/runphi/integration/scenarios"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadManifest(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Image": "k", "mods/modules.dep": "", "user/usr/bin/ctr": ""})
	good := "KERNEL_VERSION=6.1.0-56-arm64\nKERNEL=" + dir + "/Image\nMODULES=" + dir + "/mods\nUSERLAND=" + dir + "/user\n"
	tests := []struct {
		name, content string
		err           string
		noManifest    bool
	}{
		{"ok", good, "", false},
		{"missing key", "KERNEL=" + dir + "/Image\n", "missing", false},
		{"garbage", good + "what\n", "line 5", false},
		{"stale path", strings.Replace(good, "/Image", "/gone", 1), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "current.env")
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := ReadManifest(p)
			switch {
			case tt.noManifest:
				if !errors.Is(err, ErrNoManifest) {
					t.Fatalf("err = %v, want ErrNoManifest", err)
				}
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if m.KernelVersion != "6.1.0-56-arm64" || m.Kernel != dir+"/Image" {
					t.Errorf("manifest = %+v", m)
				}
			}
		})
	}
	if _, err := ReadManifest(filepath.Join(t.TempDir(), "none")); !errors.Is(err, ErrNoManifest) {
		t.Errorf("absent manifest: %v, want ErrNoManifest", err)
	}
}

func TestResolveInputsOverride(t *testing.T) {
	cache := t.TempDir()
	writeFiles(t, cache, map[string]string{"Image": "", "mods/modules.dep": "", "user/usr/bin/ctr": "", "my/Image": "", "my/6.9-test/modules.dep": ""})
	writeFiles(t, cache, map[string]string{ManifestName: "KERNEL_VERSION=v\nKERNEL=" + cache + "/Image\nMODULES=" + cache + "/mods\nUSERLAND=" + cache + "/user\n"})
	t.Setenv("RUNPHI_CACHE", cache)
	t.Setenv("RUNPHI_TEST_KERNEL", "")
	t.Setenv("RUNPHI_TEST_MODULES", "")
	in, err := ResolveInputs()
	if err != nil {
		t.Fatal(err)
	}
	if in.Kernel != cache+"/Image" || in.Release != "v" {
		t.Errorf("cached inputs = %+v", in)
	}
	t.Setenv("RUNPHI_TEST_KERNEL", cache+"/my/Image")
	t.Setenv("RUNPHI_TEST_MODULES", cache+"/my/6.9-test")
	in, err = ResolveInputs()
	if err != nil {
		t.Fatal(err)
	}
	if in.Kernel != cache+"/my/Image" || in.Release != "6.9-test" || in.Userland != cache+"/user" {
		t.Errorf("overridden inputs = %+v", in)
	}
	t.Setenv("RUNPHI_TEST_MODULES", "")
	if in, err = ResolveInputs(); err != nil || in.Modules != "" {
		t.Errorf("kernel without modules: %+v, %v; want no modules", in, err)
	}
}

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a program")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	mod := t.TempDir()
	writeFiles(t, mod, map[string]string{
		"go.mod":              "module example.com/m\n\ngo 1.22\n",
		"ok/main.go":          "package main\n\nfunc main() {}\n",
		"broken/main.go":      "package main\n\nfunc main() { undefined() }\n",
		"lib/lib.go":          "package lib\n",
		"onlytest/x_test.go":  "package main\n",
		"tagged/main.go":      "//go:build special\n\npackage main\n\nfunc main() {}\n",
		"tagged/other_tag.go": "//go:build !special\n\npackage main\n\nthis does not compile\n",
	})
	out := t.TempDir()
	b := Build(context.Background(), goBin, mod, out, []Binary{
		{Name: "ok", Dir: "ok"}, {Name: "broken", Dir: "broken"}, {Name: "lib", Dir: "lib"},
		{Name: "absent", Dir: "absent"}, {Name: "onlytest", Dir: "onlytest"},
		{Name: "tagged", Dir: "tagged", Tags: []string{"special"}},
	})
	if _, ok := b.Paths["ok"]; !ok {
		t.Errorf("ok not built: %v", b.Failed["ok"])
	}
	if _, ok := b.Paths["tagged"]; !ok {
		t.Errorf("tagged not built with its tag: %v", b.Failed["tagged"])
	}
	if !strings.Contains(b.Failed["broken"], "undefined") || b.Missing["broken"] == "" {
		t.Errorf("broken: failed=%q missing=%q", b.Failed["broken"], b.Missing["broken"])
	}
	for _, n := range []string{"lib", "absent", "onlytest"} {
		if !strings.Contains(b.Missing[n], "no main package") {
			t.Errorf("%s: missing=%q, want no main package", n, b.Missing[n])
		}
	}
	data, err := os.ReadFile(b.Paths["ok"])
	if err != nil {
		t.Fatal(err)
	}
	// ELF, 64-bit, little endian, machine EM_AARCH64 (183).
	if !bytes.HasPrefix(data, []byte("\x7fELF\x02\x01")) || data[18] != 183 {
		t.Errorf("ok is not an arm64 ELF: % x", data[:20])
	}
}

// entries writes the archive and returns name → (mode, content).
func entries(t *testing.T, s Spec) map[string]cpio.Record {
	t.Helper()
	a, err := Compose(s)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	rs, err := cpio.ReadAllRecords(cpio.EOFReader{RecordReader: cpio.Newc.Reader(bytes.NewReader(buf.Bytes()))})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]cpio.Record{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

func content(t *testing.T, r cpio.Record) string {
	t.Helper()
	b := make([]byte, r.FileSize)
	if _, err := r.ReadAt(b, 0); err != nil && r.FileSize > 0 {
		t.Fatal(err)
	}
	return string(b)
}

func fixture(t *testing.T) (Spec, string) {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"bin/init": "INIT", "bin/jhctl": "JHCTL",
		"mods/modules.dep":                                     "kernel/fs/fuse/fuse.ko:\nkernel/fs/fuse/cuse.ko: kernel/fs/fuse/fuse.ko\nkernel/x/unused.ko:\n",
		"mods/kernel/fs/fuse/fuse.ko":                          "F",
		"mods/kernel/fs/fuse/cuse.ko":                          "C",
		"mods/kernel/x/unused.ko":                              "U",
		"user/usr/bin/busybox":                                 "BB",
		"user/usr/sbin/runc":                                   "RUNC",
		"boards/qemu-arm64/system.json":                        "{}",
		"user/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1": "LD",
	})
	s := Spec{
		Mode: scenarios.Emulated,
		Binaries: Built{
			Paths:   map[string]string{"init": root + "/bin/init", "jhctl": root + "/bin/jhctl"},
			Missing: map[string]string{"runphi": "no main package in runphi yet"},
		},
		Inputs:    Inputs{Kernel: "/k", Modules: root + "/mods", Release: "6.1", Userland: root + "/user"},
		Modules:   []string{"cuse"},
		Required:  []string{"cuse"},
		BoardsDir: root + "/boards",
	}
	return s, root
}

func TestComposeEmulated(t *testing.T) {
	s, _ := fixture(t)
	m := entries(t, s)
	files := map[string]string{
		"init":          "INIT",
		"usr/bin/jhctl": "JHCTL",
		"usr/sbin/runc": "RUNC",
		"usr/lib/modules/6.1/kernel/fs/fuse/fuse.ko":              "F",
		"usr/lib/modules/6.1/kernel/fs/fuse/cuse.ko":              "C",
		"usr/share/runphi/boards/qemu-arm64/system.json":          "{}",
		"usr/share/runphi-test/images/busybox-rootfs/bin/busybox": "BB",
	}
	for name, want := range files {
		r, ok := m[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if got := content(t, r); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	links := map[string]string{"lib": "usr/lib", "bin": "usr/bin", "sbin": "usr/sbin", "usr/bin/sh": "busybox"}
	for name, target := range links {
		r, ok := m[name]
		if !ok || r.Mode&cpio.S_IFMT != cpio.S_IFLNK || content(t, r) != target {
			t.Errorf("%s: want a symlink to %s, got %+v", name, target, r.Info)
		}
	}
	if r, ok := m["dev/console"]; !ok || r.Mode&cpio.S_IFMT != cpio.S_IFCHR || r.Rmajor != 5 || r.Rminor != 1 {
		t.Errorf("dev/console = %+v, want char 5,1", r.Info)
	}
	if _, ok := m["usr/lib/modules/6.1/kernel/x/unused.ko"]; ok {
		t.Error("a module nobody asked for was copied")
	}
	cfg, err := scenarios.ParseConfig([]byte(content(t, m[strings.TrimPrefix(scenarios.ConfigPath, "/")])))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != scenarios.Emulated || cfg.Binaries["jhctl"] != "/usr/bin/jhctl" || cfg.Missing["runphi"] == "" {
		t.Errorf("config = %+v", cfg)
	}
	if _, ok := cfg.Binaries["init"]; ok {
		t.Error("init listed as a scenario binary")
	}
}

func TestComposeOnBase(t *testing.T) {
	s, _ := fixture(t)
	s.Mode = scenarios.Real
	s.Modules, s.Required = []string{"jailhouse"}, []string{"jailhouse"}
	s.Base = map[string]fs.FileMode{
		"lib": fs.ModeDir, "bin": fs.ModeDir, "dev": fs.ModeDir, "dev/console": fs.ModeCharDevice | fs.ModeDevice,
		"bin/sh": fs.ModeSymlink, "etc": fs.ModeDir, "etc/passwd": 0,
	}
	m := entries(t, s)
	// Entries must not replace the base's directories or files.
	for _, name := range []string{"lib", "bin", "dev", "dev/console", "etc", "etc/passwd", "usr/bin/sh"} {
		if _, ok := m[name]; ok {
			t.Errorf("%s written over the base's entry", name)
		}
	}
	// The base's real lib/ needs the loader link for Debian's binaries.
	if r, ok := m["lib/ld-linux-aarch64.so.1"]; !ok || content(t, r) != "/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1" {
		t.Errorf("loader link = %+v", r.Info)
	}
	if _, ok := m["sbin"]; !ok {
		t.Error("sbin link missing although the base has no sbin")
	}
	for name := range m {
		if strings.Contains(name, "/modules/") {
			t.Errorf("module %s copied into the real tier", name)
		}
	}
	if _, ok := m["init"]; !ok {
		t.Error("our init must replace the base's")
	}
}

func TestComposeNeedsInit(t *testing.T) {
	s, _ := fixture(t)
	delete(s.Binaries.Paths, "init")
	if _, err := Compose(s); err == nil {
		t.Error("Compose without init succeeded")
	}
	s, _ = fixture(t)
	s.Modules = []string{"nosuch"}
	if _, err := Compose(s); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("Compose with an unknown module: %v", err)
	}
}
