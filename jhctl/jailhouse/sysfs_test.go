package jailhouse

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

func cellIDs(cells []CellInfo) []int {
	var ids []int
	for _, c := range cells {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestCells(t *testing.T) {
	s := newSysfs(t).enabled("0,5-9,11-15")
	s.addCell(2, "zic-b", "running/locked", "2", "")
	s.addCell(1, "inmate-demo", "Comm ABI mismatch", "1", "1")
	s.addCell(10, "zic-c", "failed", "3-4,10", "3-4")
	s.write(".hidden/name", "x\n")
	c, _ := newTestClient(t, s)

	cells, err := c.Cells()
	if err != nil {
		t.Fatal(err)
	}
	// The C tool's order: directory names as strings.
	if got, want := cellIDs(cells), []int{0, 1, 10, 2}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	SortByID(cells)
	if got, want := cellIDs(cells), []int{0, 1, 2, 10}; !slices.Equal(got, want) {
		t.Errorf("SortByID order %v, want %v", got, want)
	}
	want := []CellInfo{
		{ID: 0, Name: "qemu-arm64", State: StateRunning, CPUs: mustParse(t, "0,5-9,11-15")},
		{ID: 1, Name: "inmate-demo", State: StateCommABIMismatch, CPUs: cpuset.Of(1), FailedCPUs: cpuset.Of(1)},
		{ID: 2, Name: "zic-b", State: StateRunningLocked, CPUs: cpuset.Of(2)},
		{ID: 10, Name: "zic-c", State: StateFailed, CPUs: cpuset.Of(3, 4, 10), FailedCPUs: cpuset.Of(3, 4)},
	}
	if diff := cmp.Diff(want, cells, cmp.Comparer(cpuset.Set.Equal)); diff != "" {
		t.Errorf("cells (-want +got):\n%s", diff)
	}
	for _, ci := range cells {
		if !ci.State.Known() {
			t.Errorf("state %q not known", ci.State)
		}
	}
	if State("sleeping").Known() {
		t.Error(`State("sleeping").Known() = true`)
	}
}

func mustParse(t *testing.T, s string) cpuset.Set {
	t.Helper()
	set, err := cpuset.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestCellLookup(t *testing.T) {
	s := newSysfs(t).enabled("0,2-15")
	s.addCell(1, "inmate-demo", "running", "1", "")
	s.addCell(2, "7", "shut down", "", "")
	c, _ := newTestClient(t, s)
	tests := []struct {
		arg    string
		byName bool
		wantID int
		noCell bool
	}{
		{arg: "1", wantID: 1},
		{arg: "0", wantID: 0},
		{arg: "0x1", wantID: 1},
		{arg: "inmate-demo", wantID: 1},
		{arg: "qemu-arm64", wantID: 0},
		{arg: "7", byName: true, wantID: 2}, // --name 7
		{arg: "7", noCell: true},            // id 7
		{arg: "Inmate-Demo", noCell: true},  // names match exactly
		{arg: "ghost", noCell: true},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			ref, err := ParseCellRef(tt.arg)
			if tt.byName {
				ref, err = ByName(tt.arg)
			}
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Cell(ref)
			if tt.noCell {
				if !errors.Is(err, ErrNoCell) {
					t.Fatalf("Cell(%v) = %+v, %v; want ErrNoCell", ref, info, err)
				}
				return
			}
			if err != nil || info.ID != tt.wantID {
				t.Fatalf("Cell(%v) = %+v, %v; want id %d", ref, info, err, tt.wantID)
			}
		})
	}
}

func TestSysfsStates(t *testing.T) {
	t.Run("module not loaded", func(t *testing.T) {
		s := newSysfs(t) // no directory at all
		c, _ := newTestClient(t, s)
		cells, err := c.Cells()
		if err != nil || len(cells) != 0 {
			t.Errorf("Cells() = %v, %v; want empty, nil (like the C tool)", cells, err)
		}
		if on, err := c.Enabled(); on || err != nil {
			t.Errorf("Enabled() = %v, %v; want false, nil", on, err)
		}
		_, err = c.Cell(CellRef{ID: 0})
		wantError(t, err, "jailhouse driver not loaded", ErrDriverMissing)
		_, err = c.MemPool()
		wantError(t, err, "jailhouse driver not loaded", ErrDriverMissing)
		_, err = c.ConsoleSnapshot()
		wantError(t, err, "jailhouse driver not loaded", ErrDriverMissing)
	})
	t.Run("hypervisor disabled", func(t *testing.T) {
		s := newSysfs(t).disabled()
		c, _ := newTestClient(t, s)
		cells, err := c.Cells()
		if err != nil || len(cells) != 0 {
			t.Errorf("Cells() = %v, %v; want empty", cells, err)
		}
		if on, err := c.Enabled(); on || err != nil {
			t.Errorf("Enabled() = %v, %v; want false, nil", on, err)
		}
		_, err = c.Cell(CellRef{ID: -1, Name: "x"})
		wantError(t, err, "no cell 'x'", ErrNoCell)
		pool, err := c.MemPool()
		if err != nil || pool != (MemPool{}) {
			t.Errorf("MemPool() = %+v, %v; want zeros", pool, err)
		}
	})
	t.Run("enabled", func(t *testing.T) {
		s := newSysfs(t).enabled("0-15")
		s.write("mem_pool_size", "1536\n")
		s.write("mem_pool_used", "420\n")
		s.write("remap_pool_size", "2048\n")
		s.write("remap_pool_used", "17\n")
		c, _ := newTestClient(t, s)
		if on, err := c.Enabled(); !on || err != nil {
			t.Errorf("Enabled() = %v, %v; want true", on, err)
		}
		pool, err := c.MemPool()
		if want := (MemPool{1536, 420, 2048, 17}); err != nil || pool != want {
			t.Errorf("MemPool() = %+v, %v; want %+v", pool, err, want)
		}
	})
}

func TestSysfsBrokenFiles(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *sysfsTree)
		msg    string
	}{
		{"missing state", func(s *sysfsTree) { s.remove("cells/1/state") }, "state"},
		{"empty name file", func(s *sysfsTree) { s.write("cells/1/name", "") }, "name: empty file"},
		{"bad cpulist", func(s *sysfsTree) { s.write("cells/1/cpus_assigned_list", "1-\n") }, "cpus_assigned_list"},
		{"bad failed list", func(s *sysfsTree) { s.write("cells/1/cpus_failed_list", "x\n") }, "cpus_failed_list"},
		{"odd directory", func(s *sysfsTree) { s.write("cells/abc/name", "abc\n") }, `"abc" is not a cell id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSysfs(t).enabled("0,2-15")
			s.addCell(1, "inmate-demo", "running", "1", "")
			tt.mutate(s)
			c, _ := newTestClient(t, s)
			_, err := c.Cells()
			wantError(t, err, tt.msg)
			if errors.Is(err, ErrNoCell) {
				t.Error("a broken cell must not look like a missing one")
			}
		})
	}
	t.Run("bad enabled", func(t *testing.T) {
		s := newSysfs(t).disabled()
		s.write("enabled", "yes\n")
		c, _ := newTestClient(t, s)
		if _, err := c.Enabled(); err == nil || !strings.Contains(err.Error(), `"yes"`) {
			t.Errorf("Enabled() error = %v", err)
		}
	})
	t.Run("bad pool", func(t *testing.T) {
		s := newSysfs(t).disabled()
		s.write("remap_pool_used", "-1\n")
		c, _ := newTestClient(t, s)
		_, err := c.MemPool()
		wantError(t, err, "remap_pool_used")
	})
}

func TestStats(t *testing.T) {
	s := newSysfs(t).enabled("0,2-15")
	s.addCell(1, "inmate-demo", "running", "1,10", "")
	st := "cells/1/statistics/"
	s.write(st+"vmexits_total", "5000000000\n") // sums exceed 32 bits
	s.write(st+"vmexits_mmio", "12\n")
	s.write(st+"vmexits_virt_sgi", "3\n")
	s.write(st+"vmexits_hypercall", "0\n")
	s.write(st+"vmexits_future", "1\n")
	s.write(st+"cpu1/vmexits_total", "2147483647\n")
	s.write(st+"cpu1/vmexits_mmio", "12\n")
	s.write(st+"cpu10/vmexits_total", "5\n")
	s.write(st+"other", "junk\n")
	c, _ := newTestClient(t, s)

	got, err := c.Stats(CellRef{ID: -1, Name: "inmate-demo"})
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		Cell:  CellInfo{ID: 1, Name: "inmate-demo", State: StateRunning, CPUs: cpuset.Of(1, 10)},
		Total: Counters{"total": 5000000000, "mmio": 12, "virt_sgi": 3, "hypercall": 0, "future": 1},
		PerCPU: []CPUStats{
			{CPU: 1, Counters: Counters{"total": 2147483647, "mmio": 12}},
			{CPU: 10, Counters: Counters{"total": 5}},
		},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(cpuset.Set.Equal)); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if r, want := got.Reasons(), []string{"total", "mmio", "hypercall", "virt_sgi", "future"}; !slices.Equal(r, want) {
		t.Errorf("Reasons() = %v, want %v", r, want)
	}

	s.write(st+"cpu10/vmexits_mmio", "many\n")
	_, err = c.Stats(CellRef{ID: 1})
	wantError(t, err, "vmexits_mmio")

	_, err = c.Stats(CellRef{ID: 0}) // the root fixture has no statistics
	wantError(t, err, "cannot read the statistics of cell 0")

	_, err = c.Stats(CellRef{ID: 4})
	wantError(t, err, "no cell with id 4", ErrNoCell)
}
