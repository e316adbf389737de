package emu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// newLibrary sets up an emulator directory and a jhctl client on it, the
// way runphi and jhctl tests use the emulator.
func newLibrary(t *testing.T, opts Options) (*jailhouse.Client, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := InitDir(dir, opts); err != nil {
		t.Fatal(err)
	}
	c := jailhouse.New(jailhouse.Paths{Device: "emu", Sysfs: filepath.Join(dir, "sysfs")},
		jailhouse.WithOpener(Opener(dir)), jailhouse.WithArch(cell.ArchARM64))
	return c, dir
}

func readSysfs(t *testing.T, dir, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "sysfs", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestLibraryDemoFlow runs the upstream demo flow through the unmodified
// jhctl library against the file-backed device.
func TestLibraryDemoFlow(t *testing.T) {
	c, dir := newLibrary(t, Options{CPUs: cpuset.Range(0, 15)})
	if on, err := c.Enabled(); err != nil || on {
		t.Fatalf("Enabled before enable = %v, %v", on, err)
	}
	if err := c.Enable(qemuSystem(t, nil)); err != nil {
		t.Fatalf("enable: %v", err)
	}
	if on, err := c.Enabled(); err != nil || !on {
		t.Fatalf("Enabled = %v, %v", on, err)
	}
	id, err := c.CreateCell(demoCell(t, "inmate-demo", nil))
	if err != nil || id != 1 {
		t.Fatalf("create inmate-demo = %d, %v; want id 1", id, err)
	}
	cells, err := c.Cells()
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(cells)
	want := "[{0 qemu-arm64 running 0,2-15 } {1 inmate-demo shut down 1 }]"
	if got != want {
		t.Errorf("cells after create:\n got %s\nwant %s", got, want)
	}
	for rel, want := range map[string]string{
		"cells/0/cpus_assigned":      "fffd\n",
		"cells/0/cpus_assigned_list": "0,2-15\n",
		"cells/0/cpus_failed":        "0000\n",
		"cells/0/cpus_failed_list":   "\n",
		"cells/1/cpus_assigned":      "0002\n",
		"cells/1/cpus_assigned_list": "1\n",
		"cells/1/name":               "inmate-demo\n",
		"cells/1/state":              "shut down\n",
		"enabled":                    "1\n",
	} {
		if got := readSysfs(t, dir, rel); got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}

	image := bytes.Repeat([]byte{0xd5, 0x03, 0x20, 0x1f}, 1024) // 4 KiB of nops
	if err := c.LoadCell(jailhouse.CellRef{ID: -1, Name: "inmate-demo"}, jailhouse.Image{Data: image}); err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := c.StartCell(jailhouse.CellRef{ID: 1}); err != nil {
		t.Fatalf("start: %v", err)
	}
	info, err := c.Cell(jailhouse.CellRef{ID: -1, Name: "inmate-demo"})
	if err != nil || info.State != jailhouse.StateRunning {
		t.Fatalf("after start: %+v, %v", info, err)
	}
	sum := sha256.Sum256(image)
	line := `emu: cell "inmate-demo" (id 1) region 6 at 0x0: 4096 bytes sha256 ` + hex.EncodeToString(sum[:]) + "\n"
	snap, err := c.ConsoleSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(snap, []byte("Started cell \"inmate-demo\"\n"+line)) {
		t.Errorf("console lacks the start lines:\n%s", snap)
	}
	stream, err := c.Console(false)
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := io.ReadAll(stream)
	if err != nil || stream.Close() != nil {
		t.Fatalf("console stream: %v", err)
	}
	if !bytes.Equal(streamed, snap) {
		t.Errorf("console stream differs from the snapshot:\n%q\n%q", streamed, snap)
	}
	stats, err := c.Stats(jailhouse.CellRef{ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.PerCPU) != 1 || stats.PerCPU[0].CPU != 1 || stats.Total["total"] == 0 ||
		stats.Total["total"] != stats.PerCPU[0].Counters["total"] {
		t.Errorf("stats of the demo: %+v", stats)
	}

	if err := c.ShutdownCell(jailhouse.CellRef{ID: 1}); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	info, _ = c.Cell(jailhouse.CellRef{ID: 1})
	if info.State != jailhouse.StateShutDown || info.CPUs.String() != "1" {
		t.Errorf("after shutdown: %+v", info)
	}
	if err := c.DestroyCell(jailhouse.CellRef{ID: 1}); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	cells, _ = c.Cells()
	if got := fmt.Sprint(cells); got != "[{0 qemu-arm64 running 0-15 }]" {
		t.Errorf("cells after destroy: %s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "sysfs/cells/1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cells/1 still there: %v", err)
	}
	if got := readSysfs(t, dir, "cells/0/cpus_assigned"); got != "ffff\n" {
		t.Errorf("root mask after destroy = %q", got)
	}

	if err := c.Disable(); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if got := readSysfs(t, dir, "enabled"); got != "0\n" {
		t.Errorf("enabled after disable = %q", got)
	}
	// The log of the run stays readable through the device.
	stream, err = c.Console(false)
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := io.ReadAll(stream)
	stream.Close()
	if !strings.Contains(string(kept), "Closing cell \"inmate-demo\"") || !strings.HasSuffix(string(kept), " Releasing CPU 15\n") {
		t.Errorf("kept console:\n%s", kept)
	}
}

func TestLibraryErrors(t *testing.T) {
	c, _ := newLibrary(t, Options{CPUs: cpuset.Range(0, 15)})
	sys := qemuSystem(t, nil)
	if err := c.Enable(sys); err != nil {
		t.Fatal(err)
	}
	inmate := demoCell(t, "inmate-demo", nil)
	if _, err := c.CreateCell(inmate); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		run   func() error
		errno syscall.Errno
		kind  error
	}{
		{"enable twice", func() error { return c.Enable(sys) }, syscall.EBUSY, jailhouse.ErrAlreadyEnabled},
		{"duplicate name", func() error { _, err := c.CreateCell(inmate); return err }, syscall.EEXIST, jailhouse.ErrCellExists},
		{"overlapping CPUs", func() error {
			_, err := c.CreateCell(tinyCell(t, "other", cpuset.Of(1), nil))
			return err
		}, syscall.EBUSY, jailhouse.ErrCPUBusy},
		{"unknown cell", func() error { return c.StartCell(jailhouse.CellRef{ID: -1, Name: "nope"}) }, syscall.ENOENT, jailhouse.ErrNoCell},
		{"root cell", func() error { return c.StartCell(jailhouse.CellRef{ID: 0}) }, syscall.EINVAL, jailhouse.ErrRootCell},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if !errors.Is(err, tt.errno) {
				t.Errorf("err = %v, want errno %v", err, tt.errno)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("err = %v, want kind %v", err, tt.kind)
			}
		})
	}
	// An image that does not fit reaches the driver when the library does
	// not know the configuration (another process created the cell).
	other := jailhouse.New(c.Paths(), jailhouse.WithOpener(Opener(filepath.Dir(c.Paths().Sysfs))), jailhouse.WithArch(cell.ArchARM64))
	err := other.LoadCell(jailhouse.CellRef{ID: 1}, jailhouse.Image{Data: make([]byte, 0x10001)})
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("oversized image: %v, want EINVAL", err)
	}
	// A cell of another architecture: the library refuses it before the
	// ioctl; the emulated driver would "succeed" without creating it.
	_, err = c.CreateCell(demoCell(t, "inmate-demo", func(x *cell.Cell) { x.Arch = cell.ArchARM; x.Name = "arm32" }))
	if !errors.Is(err, jailhouse.ErrBadConfig) {
		t.Errorf("arm32 cell: %v, want ErrBadConfig", err)
	}
}
