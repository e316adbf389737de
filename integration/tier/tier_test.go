package tier

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runphi-go/runphi/integration/guestimage"
	"github.com/runphi-go/runphi/integration/scenarios"
)

func TestModRoot(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, deep} {
		got, err := ModRoot(dir)
		if err != nil || got != root {
			t.Errorf("ModRoot(%s) = %q, %v; want %s", dir, got, err, root)
		}
	}
}

func TestOptionsSelection(t *testing.T) {
	tr := Emulated("/repo", guestimage.Built{}, guestimage.Inputs{Kernel: "/k/Image"})
	defaults := scenarios.Names(scenarios.Defaults(scenarios.All()))
	tests := []struct {
		name  string
		names []string
		want  string // the runphi.run argument, "" for none
	}{
		{"none named", nil, ""},
		{"the defaults", defaults, ""},
		{"the demo", []string{"demo"}, "runphi.run=demo"},
		{"two", []string{"boot", "b-containerd-zic"}, "runphi.run=boot,b-containerd-zic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tr.Options("/tmp/initramfs.cpio", tt.names)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			for _, a := range o.Append {
				if strings.HasPrefix(a, scenarios.KernelArgRun+"=") {
					got = a
				}
			}
			if got != tt.want {
				t.Errorf("kernel argument %q, want %q (append %v)", got, tt.want, o.Append)
			}
			if o.Kernel != "/k/Image" || o.Initramfs != "/tmp/initramfs.cpio" || o.SMP != 2 {
				t.Errorf("options %+v", o)
			}
		})
	}
}

func TestRealTier(t *testing.T) {
	tr := Real("/repo", "/img", guestimage.Built{}, guestimage.Inputs{Kernel: "/debian/Image", Modules: "/m", Release: "6.1", Userland: "/u"})
	if tr.Mode != scenarios.Real || tr.Base != "/img/rootfs.cpio" {
		t.Errorf("tier %+v", tr)
	}
	// The image's kernel, its modules (none of ours), our userland.
	want := guestimage.Inputs{Kernel: "/img/Image", Userland: "/u"}
	if diff := cmp.Diff(want, tr.Spec.Inputs); diff != "" {
		t.Errorf("inputs mismatch (-want +got):\n%s", diff)
	}
	o, err := tr.Options("/x.cpio", nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.SMP != 16 || !slices.Contains(o.Append, "mem=768M") || !strings.Contains(o.Machine, "its=off") {
		t.Errorf("real tier QEMU options %+v", o)
	}
}

func TestLacks(t *testing.T) {
	full := map[string]fs.FileMode{
		"lib/modules/6.1/extra/jailhouse.ko":     0o644,
		"lib/firmware/jailhouse.bin":             0o644,
		"usr/libexec/jailhouse/linux-loader.bin": 0o644,
	}
	if got := lacks(full); len(got) != 0 {
		t.Errorf("complete rootfs lacks %v", got)
	}
	delete(full, "lib/firmware/jailhouse.bin")
	delete(full, "lib/modules/6.1/extra/jailhouse.ko")
	want := []string{"jailhouse.ko under lib/modules", "lib/firmware/jailhouse.bin"}
	if diff := cmp.Diff(want, lacks(full)); diff != "" {
		t.Errorf("lacks mismatch (-want +got):\n%s", diff)
	}
}

func TestNarrate(t *testing.T) {
	tests := []struct{ line, want string }{
		{"RUNPHI-BOOT 2.61", "(guest init started, uptime 2.6s)"},
		{"RUNPHI-SCENARIO demo START", "(scenario demo starts)"},
		{"RUNPHI-SCENARIO demo PASS", "(scenario demo passed)"},
		{"RUNPHI-SCENARIO demo FAIL ctr run: exit status 1", "(scenario demo FAILED: ctr run: exit status 1)"},
		{"RUNPHI-SCENARIO demo SKIP needs ctr", "(scenario demo skipped: needs ctr)"},
		{"RUNPHI-DONE", ""},
		{"[   27.823810] reboot: Power down", ""},
		{"==> ctr image import zic-demo.tar", "==> ctr image import zic-demo.tar"},
		{"  | TASK        PID    STATUS", "  | TASK        PID    STATUS"},
	}
	for _, tt := range tests {
		if got := Narrate(tt.line); got != tt.want {
			t.Errorf("Narrate(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}
