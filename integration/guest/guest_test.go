package guest

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/runphi-go/runphi/integration/scenarios"
)

func TestKernelArg(t *testing.T) {
	cmdline := "console=ttyAMA0 panic=-1 quiet runphi.run=boot,containerd-smoke mem=768M\n"
	tests := []struct {
		key, want string
		ok        bool
	}{
		{"runphi.run", "boot,containerd-smoke", true},
		{"mem", "768M", true},
		{"quiet", "", false}, // a flag, not key=value
		{"runphi", "", false},
	}
	for _, tt := range tests {
		got, ok := KernelArg(cmdline, tt.key)
		if got != tt.want || ok != tt.ok {
			t.Errorf("KernelArg(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

// moduleTree writes a fake /lib/modules with an index for release r.
func moduleTree(t *testing.T) (root string) {
	t.Helper()
	root = t.TempDir()
	files := map[string]string{
		"6.1/modules.dep": "kernel/fs/fuse/fuse.ko:\n" +
			"kernel/fs/fuse/cuse.ko: kernel/fs/fuse/fuse.ko\n" +
			"kernel/fs/overlayfs/overlay.ko:\n" +
			"kernel/broken/bad.ko:\n",
		"6.1/modules.builtin":                "kernel/drivers/virtio/virtio.ko\n",
		"6.1/kernel/fs/fuse/fuse.ko":         "",
		"6.1/kernel/fs/fuse/cuse.ko":         "",
		"6.1/kernel/fs/overlayfs/overlay.ko": "",
		"6.1/kernel/broken/bad.ko":           "",
		"6.1/extra/jailhouse.ko":             "", // out of tree, not indexed
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLoadAll(t *testing.T) {
	root := moduleTree(t)
	sysmod := t.TempDir()
	if err := os.Mkdir(filepath.Join(sysmod, "virtio_mmio"), 0o755); err != nil {
		t.Fatal(err)
	}
	var loaded []string
	l := &Loader{
		Root: root, Release: "6.1", SysModule: sysmod,
		Load: func(p string) error {
			rel, _ := filepath.Rel(root, p)
			if filepath.Base(p) == "bad.ko" {
				return errors.New("exec format error")
			}
			loaded = append(loaded, rel)
			return nil
		},
	}
	got := l.LoadAll([]string{"cuse", "fuse", "virtio", "jailhouse", "bad", "virtio-mmio", "nosuch", "overlay"})
	p := func(rel string) string { return filepath.Join(root, rel) }
	want := []scenarios.ModuleResult{
		{Name: "fuse", Path: p("6.1/kernel/fs/fuse/fuse.ko")},
		{Name: "cuse", Path: p("6.1/kernel/fs/fuse/cuse.ko")},
		{Name: "virtio"}, // built in per modules.builtin
		{Name: "jailhouse", Path: p("6.1/extra/jailhouse.ko")},
		{Name: "bad", Path: p("6.1/kernel/broken/bad.ko"), Error: "exec format error"},
		{Name: "virtio-mmio"}, // built in per /sys/module
		{Name: "nosuch", Error: "not found under " + root},
		{Name: "overlay", Path: p("6.1/kernel/fs/overlayfs/overlay.ko")},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(scenarios.ModuleResult{}, "Took")); diff != "" {
		t.Errorf("LoadAll mismatch (-want +got):\n%s", diff)
	}
	// fuse was asked for twice (directly and as cuse's dependency) but
	// loaded once.
	wantLoaded := []string{"6.1/kernel/fs/fuse/fuse.ko", "6.1/kernel/fs/fuse/cuse.ko", "6.1/extra/jailhouse.ko", "6.1/kernel/fs/overlayfs/overlay.ko"}
	if diff := cmp.Diff(wantLoaded, loaded); diff != "" {
		t.Errorf("loaded files mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadAllWithoutIndex(t *testing.T) {
	root := moduleTree(t)
	l := &Loader{Root: root, Release: "other", SysModule: t.TempDir(), Load: func(string) error { return nil }}
	got := l.LoadAll([]string{"jailhouse", "overlay2"})
	if got[0].Error != "" || filepath.Base(got[0].Path) != "jailhouse.ko" {
		t.Errorf("jailhouse without an index: %+v, want found by search", got[0])
	}
	if got[1].Error == "" {
		t.Errorf("overlay2: %+v, want not found", got[1])
	}
}

func TestLoopbackUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bringing an interface up needs root")
	}
	// lo is normally up already; setting IFF_UP again must succeed and
	// leave it up.
	if err := LoopbackUp(); err != nil {
		t.Fatal(err)
	}
	iface, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if iface.Flags&net.FlagUp == 0 {
		t.Error("lo is not up after LoopbackUp")
	}
}
