package moddep

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// depFile is an excerpt of Debian 6.1 arm64's modules.dep (after depmod).
const depFile = `kernel/fs/netfs/netfs.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/fuse/fuse.ko:
kernel/fs/fuse/cuse.ko: kernel/fs/fuse/fuse.ko
kernel/fs/9p/9p.ko: kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko kernel/net/9p/9pnet.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko
kernel/drivers/char/hw_random/virtio-rng.ko:
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko
`

func TestOrder(t *testing.T) {
	ix, err := Parse(strings.NewReader(depFile), strings.NewReader("kernel/fs/overlayfs/overlay.ko\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		names []string
		want  []string
	}{
		{"leaf", []string{"fuse"}, []string{"kernel/fs/fuse/fuse.ko"}},
		{"dependency first", []string{"cuse"}, []string{"kernel/fs/fuse/fuse.ko", "kernel/fs/fuse/cuse.ko"}},
		{"transitive, each once", []string{"9p", "fscache", "cuse", "fuse"}, []string{
			"kernel/fs/netfs/netfs.ko", "kernel/fs/fscache/fscache.ko", "kernel/net/9p/9pnet.ko", "kernel/fs/9p/9p.ko",
			"kernel/fs/fuse/fuse.ko", "kernel/fs/fuse/cuse.ko",
		}},
		{"dash and underscore", []string{"virtio_rng", "virtio-pci"}, []string{
			"kernel/drivers/char/hw_random/virtio-rng.ko",
			"kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
			"kernel/drivers/virtio/virtio_pci.ko",
		}},
		{"builtin left out", []string{"overlay", "9pnet_virtio"}, []string{"kernel/net/9p/9pnet.ko", "kernel/net/9p/9pnet_virtio.ko"}},
		{"nothing", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ix.Order(tt.names...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Order(%v) mismatch (-want +got):\n%s", tt.names, diff)
			}
		})
	}
}

func TestOrderErrors(t *testing.T) {
	tests := []struct {
		name, dep string
		mods      []string
		wantErr   string
	}{
		{"unknown", depFile, []string{"nosuch"}, "module nosuch: not in modules.dep"},
		{"cycle", "a.ko: b.ko\nb.ko: c.ko\nc.ko: a.ko\n", []string{"a"}, "dependency cycle"},
		{"missing dependency", "a.ko: gone.ko\n", []string{"a"}, "dependency gone.ko not in modules.dep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, err := Parse(strings.NewReader(tt.dep), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ix.Order(tt.mods...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Order(%v) error = %v, want it to contain %q", tt.mods, err, tt.wantErr)
			}
		})
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := Parse(strings.NewReader("kernel/a.ko: b.ko\nthis line has no colon\n"), nil); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("Parse error = %v, want one naming line 2", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "depmod") {
		t.Fatalf("Load of an unindexed dir: err = %v, want a hint to run depmod", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(depFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/fs/fuse/fuse.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ix, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ix.Order("cuse")
	if err != nil {
		t.Fatal(err)
	}
	// fuse is built in here, so the kernel already provides cuse's dependency.
	if diff := cmp.Diff([]string{"kernel/fs/fuse/cuse.ko"}, got); diff != "" {
		t.Errorf("Order(cuse) mismatch (-want +got):\n%s", diff)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/char/hw_random/virtio-rng.ko": "virtio_rng",
		"fuse.ko.xz": "fuse",
		"9p":         "9p",
		"a-b_c.ko":   "a_b_c",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(depFile, "cuse")
	f.Add("a.ko: a.ko\n", "a")
	f.Add(":\n", "")
	f.Fuzz(func(t *testing.T, dep, name string) {
		ix, err := Parse(strings.NewReader(dep), nil)
		if err != nil {
			return
		}
		order, err := ix.Order(name)
		if err != nil {
			return
		}
		// Every module appears after all of its dependencies.
		pos := map[string]int{}
		for i, p := range order {
			if _, dup := pos[p]; dup {
				t.Fatalf("Order(%q) lists %s twice: %v", name, p, order)
			}
			pos[p] = i
		}
		for i, p := range order {
			for _, d := range ix.deps[p] {
				if j, ok := pos[d]; !ok || j > i {
					t.Fatalf("Order(%q): %s before its dependency %s: %v", name, p, d, order)
				}
			}
		}
	})
}
