package emu

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

const boardDir = "../../boards/qemu-arm64"

// qemuSystem returns the qemu-arm64 system configuration, changed by mod.
func qemuSystem(t testing.TB, mod func(*cell.System)) []byte {
	t.Helper()
	f, err := cell.ReadFile(filepath.Join(boardDir, "system.json"))
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(f.System)
	}
	data, err := f.System.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// demoCell returns a demo cell configuration (inmate-demo, linux-demo,
// zephyr-demo), changed by mod.
func demoCell(t testing.TB, demo string, mod func(*cell.Cell)) []byte {
	t.Helper()
	f, err := cell.ReadFile(filepath.Join(boardDir, "demos", demo+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(f.Cell)
	}
	data, err := f.Cell.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// tinyCell is a cell with the given CPUs, one loadable RAM region at 0 of
// 64 KiB and nothing else.
func tinyCell(t testing.TB, name string, cpus cpuset.Set, mod func(*cell.Cell)) []byte {
	t.Helper()
	c := &cell.Cell{
		Arch: cell.ArchARM64,
		Name: name,
		CPUs: cpus,
		MemRegions: []cell.MemRegion{{
			PhysStart: 0x7fa00000, VirtStart: 0, Size: 0x10000,
			Flags: cell.MemRead | cell.MemWrite | cell.MemExecute | cell.MemLoadable,
		}},
	}
	if mod != nil {
		mod(c)
	}
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// enabled returns a hypervisor enabled with the qemu-arm64 system on a
// 16-CPU machine.
func enabled(t testing.TB) *Hypervisor {
	t.Helper()
	h := New(Options{CPUs: cpuset.Range(0, 15)})
	if err := h.Enable(qemuSystem(t, nil)); err != nil {
		t.Fatalf("enable: %v", err)
	}
	return h
}

func byName(name string) jailhouse.CellRef { return jailhouse.CellRef{ID: -1, Name: name} }

func byID(id int32) jailhouse.CellRef { return jailhouse.CellRef{ID: id} }

// wantErrno checks that err is exactly errno (nil for 0).
func wantErrno(t testing.TB, what string, err error, errno syscall.Errno) {
	t.Helper()
	if errno == 0 {
		if err != nil {
			t.Fatalf("%s: %v, want success", what, err)
		}
		return
	}
	if err != errno {
		t.Fatalf("%s: got %v, want %v (%d)", what, err, errno, int(errno))
	}
}

// cellNamed returns the cell of that name, failing if absent.
func cellNamed(t testing.TB, h *Hypervisor, name string) CellInfo {
	t.Helper()
	for _, c := range h.Cells() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no cell %q in %v", name, h.Cells())
	return CellInfo{}
}
