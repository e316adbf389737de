package emu

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

func TestKernelMask(t *testing.T) {
	tests := []struct {
		set   cpuset.Set
		nbits int
		want  string
	}{
		{cpuset.Range(0, 15), 16, "ffff"},
		{cpuset.Of(0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 16, "fffd"},
		{cpuset.Of(1), 16, "0002"},
		{cpuset.Set{}, 16, "0000"},
		{cpuset.Of(0), 4, "1"},
		{cpuset.Of(0), 5, "01"},
		{cpuset.Range(0, 31), 32, "ffffffff"},
		{cpuset.Of(32), 64, "00000001,00000000"},
		{cpuset.Range(0, 39), 40, "ff,ffffffff"},
		{cpuset.Set{}, 0, ""},
	}
	for _, tt := range tests {
		if got := KernelMask(tt.set, tt.nbits); got != tt.want {
			t.Errorf("KernelMask(%v, %d) = %q, want %q", tt.set, tt.nbits, got, tt.want)
		}
		// The mask parser of the cpuset package reads it back.
		if back, err := cpuset.ParseMask(tt.want); err != nil || !back.Equal(tt.set) {
			t.Errorf("ParseMask(%q) = %v, %v", tt.want, back, err)
		}
	}
}

// tree reads every file under root into a map of relative path to content.
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "core" {
			out[rel] = "<core>"
			return nil
		}
		data, err := os.ReadFile(p)
		out[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteSysfs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "jailhouse")
	h := New(Options{CPUs: cpuset.Range(0, 15)})
	if err := h.WriteSysfs(root); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, root)
	want := map[string]string{
		"enabled": "0\n", "console": "", "mem_pool_size": "0\n", "mem_pool_used": "0\n",
		"remap_pool_size": "0\n", "remap_pool_used": "0\n",
	}
	if !mapsEqual(got, want) {
		t.Errorf("before enable:\n got %v\nwant %v", got, want)
	}
	if fi, err := os.Stat(filepath.Join(root, "cells")); err != nil || !fi.IsDir() {
		t.Errorf("cells/ missing before enable: %v", err)
	}

	wantErrno(t, "enable", h.Enable(qemuSystem(t, nil)), 0)
	createOK("linux-demo")(t, h)
	wantErrno(t, "start", h.StartCell(byID(1)), 0)
	if err := h.WriteSysfs(root); err != nil {
		t.Fatal(err)
	}
	got = readTree(t, root)
	for path, want := range map[string]string{
		"enabled":                                   "1\n",
		"core":                                      "<core>",
		"cells/0/name":                              "qemu-arm64\n",
		"cells/0/state":                             "running\n",
		"cells/0/cpus_assigned":                     "fff3\n",
		"cells/0/cpus_assigned_list":                "0-1,4-15\n",
		"cells/1/name":                              "qemu-arm64-linux-demo\n",
		"cells/1/state":                             "running\n",
		"cells/1/cpus_assigned":                     "000c\n",
		"cells/1/cpus_assigned_list":                "2-3\n",
		"cells/1/cpus_failed":                       "0000\n",
		"cells/1/cpus_failed_list":                  "\n",
		"cells/1/statistics/cpu2/vmexits_psci":      "1\n",
		"cells/1/statistics/cpu3/vmexits_psci":      "0\n",
		"cells/1/statistics/cpu2/vmexits_total":     "2\n",
		"cells/1/statistics/vmexits_total":          "3\n",
		"cells/1/statistics/vmexits_management":     "2\n",
		"cells/0/statistics/cpu15/vmexits_smccc":    "0\n",
		"cells/0/statistics/vmexits_virt_sgi":       "0\n",
		"cells/0/statistics/cpu0/vmexits_hypercall": "2\n",
	} {
		if got[path] != want {
			t.Errorf("%s = %q, want %q", path, got[path], want)
		}
	}
	for _, gone := range []string{"cells/0/statistics/cpu2/vmexits_total", "cells/1/statistics/cpu1/vmexits_total"} {
		if _, ok := got[gone]; ok {
			t.Errorf("%s exists", gone)
		}
	}
	if n := strings.Count(strings.Join(keys(got), "\n"), "cells/1/statistics/cpu2/vmexits_"); n != numStats {
		t.Errorf("%d reasons per CPU, want %d", n, numStats)
	}
	if fi, err := os.Stat(filepath.Join(root, "core")); err != nil || fi.Size() != CoreSize || fi.Mode().Perm() != 0o400 {
		t.Errorf("core: %v %v", fi, err)
	}
	if !strings.Contains(got["console"], "Started cell \"qemu-arm64-linux-demo\"\n") {
		t.Errorf("console attribute:\n%s", got["console"])
	}

	// Failure shows in state and cpus_failed; destroy removes the directory.
	if err := h.FailCell(1, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteSysfs(root); err != nil {
		t.Fatal(err)
	}
	got = readTree(t, root)
	if got["cells/1/state"] != "failed\n" || got["cells/1/cpus_failed"] != "0004\n" || got["cells/1/cpus_failed_list"] != "2\n" {
		t.Errorf("failed cell: %q %q %q", got["cells/1/state"], got["cells/1/cpus_failed"], got["cells/1/cpus_failed_list"])
	}
	wantErrno(t, "destroy", h.DestroyCell(byID(1)), 0)
	wantErrno(t, "disable", h.Disable(), 0)
	if err := h.WriteSysfs(root); err != nil {
		t.Fatal(err)
	}
	got = readTree(t, root)
	want = map[string]string{
		"enabled": "0\n", "console": "", "mem_pool_size": "0\n", "mem_pool_used": "0\n",
		"remap_pool_size": "0\n", "remap_pool_used": "0\n", "core": "<core>",
	}
	if !mapsEqual(got, want) {
		t.Errorf("after disable:\n got %v\nwant %v", got, want)
	}
}

func TestWriteSysfsConsoleNotPermitted(t *testing.T) {
	root := t.TempDir()
	h := New(Options{})
	wantErrno(t, "enable", h.Enable(qemuSystem(t, func(s *cell.System) { s.Flags = 0 })), 0)
	if err := h.WriteSysfs(root); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "console"))
	if err != nil || fi.Mode().Perm() != 0 || fi.Size() != 0 {
		t.Errorf("console without permission: %v, %v", fi, err)
	}
}

// TestSysfsReadersNeverSeePartialState reads the tree as jhctl does while
// cells come and go; every cell directory it finds must be complete.
func TestSysfsReadersNeverSeePartialState(t *testing.T) {
	dir := t.TempDir()
	d, err := InitDir(dir, Options{CPUs: cpuset.Range(0, 15)})
	if err != nil {
		t.Fatal(err)
	}
	client := jailhouse.New(jailhouse.Paths{Device: "emu", Sysfs: d.Sysfs()}, jailhouse.WithOpener(Opener(dir)),
		jailhouse.WithArch(cell.ArchARM64))
	if err := client.Enable(qemuSystem(t, nil)); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lists atomic.Int64
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				cells, err := client.Cells()
				if err != nil {
					errs <- err
					return
				}
				for _, c := range cells {
					if c.Name == "" || !c.State.Known() {
						errs <- errors.New("incomplete cell " + c.Name)
						return
					}
				}
				lists.Add(1)
			}
		})
	}
	configs := [][]byte{demoCell(t, "inmate-demo", nil), demoCell(t, "linux-demo", nil)}
	for i := 0; i < 5 || lists.Load() < 10; i++ {
		for _, cfg := range configs {
			if _, err := client.CreateCell(cfg); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []int32{1, 2} {
			if err := client.DestroyCell(jailhouse.CellRef{ID: id}); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDirSharedBetweenHandles(t *testing.T) {
	dir := t.TempDir()
	if _, err := InitDir(dir, Options{CPUs: cpuset.Range(0, 15)}); err != nil {
		t.Fatal(err)
	}
	first, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Update(func(h *Hypervisor) error { return h.Enable(qemuSystem(t, nil)) }); err != nil {
		t.Fatal(err)
	}
	// Concurrent creators, each with its own handle (as separate
	// processes would have), get distinct ids.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			d, err := OpenDir(dir)
			if err != nil {
				t.Error(err)
				return
			}
			name := string(rune('a' + i))
			if err := d.Update(func(h *Hypervisor) error { return h.CreateCell(tinyCell(t, name, cpuset.Of(i+2), nil)) }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var cells []CellInfo
	if err := first.View(func(h *Hypervisor) error { cells = h.Cells(); return nil }); err != nil {
		t.Fatal(err)
	}
	ids := map[int]bool{}
	for _, c := range cells {
		ids[c.ID] = true
	}
	if len(cells) != 9 || len(ids) != 9 || !ids[8] {
		t.Errorf("cells: %v", cells)
	}
	if _, err := OpenDir(t.TempDir()); err == nil {
		t.Error("OpenDir of an empty directory succeeded")
	}
}

func TestStateRoundTrip(t *testing.T) {
	h := enabled(t)
	createOK("linux-demo")(t, h)
	wantErrno(t, "load", h.LoadCell(byID(1), jailhouse.Image{Data: []byte("kernel"), Address: 0}), 0)
	if err := h.DenyShutdown(1, true); err != nil {
		t.Fatal(err)
	}
	data, err := h.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalState(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.MarshalState()
	if err != nil || !bytes.Equal(data, again) {
		t.Errorf("state does not round-trip: %v", err)
	}
	// The restored hypervisor behaves like the original.
	wantErrno(t, "create in restored", back.CreateCell(demoCell(t, "inmate-demo", nil)), 0)
	wantErrno(t, "create in original", h.CreateCell(demoCell(t, "inmate-demo", nil)), 0)
	a, _ := h.MarshalState()
	b, _ := back.MarshalState()
	if !bytes.Equal(a, b) {
		t.Error("restored hypervisor diverged")
	}

	for name, mangle := range map[string]func(*state){
		"short console":        func(s *state) { s.Console.Content = s.Console.Content[:10] },
		"disabled with cells":  func(s *state) { s.Enabled = false },
		"enabled without root": func(s *state) { s.Cells = nil },
		"duplicate cell id":    func(s *state) { s.Cells = append(s.Cells, s.Cells[1]) },
		"bad configuration":    func(s *state) { s.Cells = append(s.Cells, &cellState{ID: 7, Config: []byte("JHCLL")}) },
		"CPU records":          func(s *state) { s.CPUs = s.CPUs[:3] },
		"unknown state":        func(s *state) { s.Cells = append(s.Cells, &cellState{ID: 7, Config: s.Cells[1].Config, State: "x"}) },
	} {
		bad, err := UnmarshalState(data)
		if err != nil {
			t.Fatal(err)
		}
		mangle(&bad.st)
		mangled, err := bad.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnmarshalState(mangled); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, data := range map[string]string{
		"not json":      "{",
		"wrong version": strings.Replace(string(data), `"version": 1,`, `"version": 9,`, 1),
	} {
		if _, err := UnmarshalState([]byte(data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
