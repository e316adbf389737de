package container

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/jhctl/emu"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
	"github.com/runphi-go/runphi/runphi/monitor"
)

// emuClient is the real jhctl client on the emulator in dir, as a
// runphi built for emulation would make it.
func emuClient(dir string) *jailhouse.Client {
	return jailhouse.New(jailhouse.Paths{Device: "emu", Sysfs: filepath.Join(dir, "sysfs")},
		jailhouse.WithOpener(emu.Opener(dir)), jailhouse.WithArch(cell.ArchARM64))
}

// newEmuEnv is newEnv with the emulated hypervisor, enabled with the
// board's root cell, behind the real client in this process and in the
// monitors.
func newEmuEnv(t *testing.T) (*env, *emu.Dir, *jailhouse.Client) {
	t.Helper()
	e := newEnv(t)
	dir := filepath.Join(e.dir, "emu")
	d, err := emu.InitDir(dir, emu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.m.loadBoard()
	if err != nil {
		t.Fatal(err)
	}
	sys, err := b.Root.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	client := emuClient(dir)
	if err := client.Enable(sys); err != nil {
		t.Fatal(err)
	}
	e.m.o.Hypervisor = client
	e.m.o.MonitorEnv = append(e.m.o.MonitorEnv, emuEnv+"="+dir)
	return e, d, client
}

func TestEmulatorLifecycle(t *testing.T) {
	e, d, client := newEmuEnv(t)
	co := e.opts("emu-a", e.bundle("emu-a", bundleOpts{desc: `{"console":"virtual","cmdline":"hello"}`}))
	if err := e.m.Create(context.Background(), co); err != nil {
		t.Fatal(err)
	}
	ref, _ := jailhouse.ByName("emu-a")
	info, err := client.Cell(ref)
	if err != nil || info.State != jailhouse.StateShutDown {
		t.Fatalf("cell after create = %+v, %v; want created, not started", info, err)
	}
	if err := e.m.Start("emu-a"); err != nil {
		t.Fatal(err)
	}
	if got := e.status("emu-a"); got != specs.StateRunning {
		t.Fatalf("status = %s", got)
	}
	// What the cell prints on the virtual console reaches the container's
	// stdout.
	if err := d.Update(func(h *emu.Hypervisor) error { return h.CellPrint(info.ID, "Hello 1 from cell!\n") }); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(e.dir, "emu-a.out")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(out)
		if strings.Contains(string(data), "Hello 1 from cell!") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container stdout = %q", data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.m.Kill("emu-a", unix.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.m.Wait("emu-a"); code != monitor.ExitShutdown {
		t.Errorf("exit = %d, want %d", code, monitor.ExitShutdown)
	}
	if err := e.m.Delete("emu-a", false); err != nil {
		t.Fatal(err)
	}
	cells, err := client.Cells()
	if err != nil || len(cells) != 1 {
		t.Errorf("cells after delete = %+v, %v; want the root cell only", cells, err)
	}
	if g := e.grants(); len(g) != 0 {
		t.Errorf("grants after delete: %v", sortedKeys(g))
	}
}

func TestEmulatorCellFails(t *testing.T) {
	e, d, client := newEmuEnv(t)
	e.create("emu-f", bundleOpts{})
	if err := e.m.Start("emu-f"); err != nil {
		t.Fatal(err)
	}
	ref, _ := jailhouse.ByName("emu-f")
	info, err := client.Cell(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Update(func(h *emu.Hypervisor) error { return h.FailCell(info.ID, "unhandled trap") }); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.m.Wait("emu-f"); code != monitor.ExitFailed {
		t.Errorf("exit = %d, want %d", code, monitor.ExitFailed)
	}
	if got := e.status("emu-f"); got != specs.StateStopped {
		t.Errorf("status = %s", got)
	}
	if err := e.m.Delete("emu-f", false); err != nil {
		t.Fatal(err)
	}
	if cells, _ := client.Cells(); len(cells) != 1 {
		t.Errorf("cells after delete: %+v", cells)
	}
}
