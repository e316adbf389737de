package container

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/dt"

	"github.com/runphi-go/runphi/cellgen/descriptor"
)

// linuxImage is a minimal arm64 kernel Image: the 64-byte header with
// text_offset 0 and the magic, then a body.
func linuxImage(size int) []byte {
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b[16:], uint64(size))
	copy(b[56:], "ARM\x64")
	return b
}

// linuxDTB is a device tree with the root cell sizes cell linux needs.
func linuxDTB(t *testing.T) []byte {
	t.Helper()
	fdt := &dt.FDT{
		Header: dt.Header{Magic: dt.Magic, Version: 17, LastCompVersion: 16},
		RootNode: dt.NewNode("", dt.WithProperty(
			dt.PropertyString("model", "runphi test cell"),
			dt.PropertyU32("#address-cells", 2),
			dt.PropertyU32("#size-cells", 2),
		)),
	}
	var buf bytes.Buffer
	if _, err := fdt.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLinuxZIC(t *testing.T) {
	e := newEnv(t)
	loader := filepath.Join(e.dir, "linux-loader.bin")
	if err := os.WriteFile(loader, make([]byte, 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	b := e.bundle("lin", bundleOpts{desc: `{"os_var":"linux","kernel":"/boot/Image","dtb":"/boot/cell.dtb",` +
		`"initrd":"/boot/rootfs.cpio","cmdline":"console=ttyAMA0"}`})
	boot := filepath.Join(b, "rootfs", "boot")
	for name, data := range map[string][]byte{
		"Image": linuxImage(1 << 20), "cell.dtb": linuxDTB(t), "rootfs.cpio": make([]byte, 4096),
	} {
		if err := os.WriteFile(filepath.Join(boot, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Without a configured loader the create fails cleanly.
	co := e.opts("lin", b)
	if err := e.m.Create(context.Background(), co); err == nil || !strings.Contains(err.Error(), "linux-loader") {
		t.Fatalf("Create without a loader = %v", err)
	}
	e.assertNothingLeft("lin")

	e.m.o.LinuxLoader = loader
	if err := e.m.Create(context.Background(), co); err != nil {
		t.Fatal(err)
	}
	// loader, kernel, device tree, initrd, loader parameters
	if c := e.hv.cells()["lin"]; c.Images != 5 {
		t.Errorf("cell = %+v, want 5 images loaded", c)
	}
	rec, err := e.m.store.Read("lin")
	if err != nil || rec.OS != string(descriptor.OSLinux) {
		t.Errorf("recorded os = %q, %v", rec.OS, err)
	}
	if err := e.m.Start("lin"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Delete("lin", true); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft("lin")
}

func TestLinuxKernelTooLarge(t *testing.T) {
	e := newEnv(t)
	e.m.o.LinuxLoader = "/dev/null"
	b := e.bundle("big", bundleOpts{desc: `{"os_var":"linux","kernel":"/boot/Image","dtb":"/boot/cell.dtb","memory":"4M"}`})
	boot := filepath.Join(b, "rootfs", "boot")
	os.WriteFile(filepath.Join(boot, "Image"), linuxImage(8<<20), 0o644)
	os.WriteFile(filepath.Join(boot, "cell.dtb"), linuxDTB(t), 0o644)
	err := e.m.Create(context.Background(), e.opts("big", b))
	if err == nil || !strings.Contains(err.Error(), "/boot/Image") {
		t.Fatalf("Create = %v, want the kernel refused by size", err)
	}
	e.assertNothingLeft("big")
}
