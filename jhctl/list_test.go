package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCellList(t *testing.T) {
	h := newHarness(t)
	writeCell(t, h.sysfs, 1, "inmate-demo", "running", "3", "")
	writeCell(t, h.sysfs, 2, "a-cell-name-longer-than-24-chars", "shut down", "2", "2")
	writeCell(t, h.sysfs, 10, "tenth", "failed", "4-5,7", "")
	// Upstream's printf("%-8s%-24s%-18s%-24s%-24s\n"): padded, never cut,
	// rows in directory-name order ("10" before "2").
	want := "" +
		"ID      Name                    State             Assigned CPUs           Failed CPUs             \n" +
		"0       qemu-arm64              running           0-1                                             \n" +
		"1       inmate-demo             running           3                                               \n" +
		"10      tenth                   failed            4-5,7                                           \n" +
		"2       a-cell-name-longer-than-24-charsshut down         2                       2                       \n"
	if got := h.mustRun("cell", "list"); got != want {
		t.Errorf("cell list:\n%q\nwant\n%q", got, want)
	}
	if h.drv.opened != 0 {
		t.Error("cell list opened the device")
	}
}

func TestCellListNoDriver(t *testing.T) {
	h := newHarness(t)
	if err := os.RemoveAll(filepath.Join(h.sysfs)); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := h.run("cell", "list"); out != "" || errOut != "" || code != 0 {
		t.Errorf("without the module: stdout %q, stderr %q, exit %d; want nothing and 0", out, errOut, code)
	}
	if out := h.mustRun("cell", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("--json without the module = %q, want []", out)
	}
}

func TestCellListBrokenEntry(t *testing.T) {
	h := newHarness(t)
	writeFile(t, filepath.Join(h.sysfs, "cells", "0", "state"), "")
	if _, errOut, code := h.run("cell", "list"); code != 1 || !strings.HasPrefix(errOut, "jhctl: ") {
		t.Errorf("empty state file: exit %d, stderr %q; want 1", code, errOut)
	}
}

func TestCellListJSON(t *testing.T) {
	h := newHarness(t)
	writeCell(t, h.sysfs, 1, "inmate-demo", "running", "2-3", "3")
	var got []map[string]any
	if err := json.Unmarshal([]byte(h.mustRun("cell", "list", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"id": 0.0, "name": "qemu-arm64", "state": "running", "cpus": "0-1", "failed_cpus": ""},
		{"id": 1.0, "name": "inmate-demo", "state": "running", "cpus": "2-3", "failed_cpus": "3"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// statsFixture gives cell 1 (CPUs 2 and 3) VM-exit counters.
func statsFixture(t *testing.T, h *harness) {
	writeCell(t, h.sysfs, 1, "inmate-demo", "running", "2-3", "")
	stats := filepath.Join(h.sysfs, "cells", "1", "statistics")
	for reason, v := range map[string][3]string{
		"total": {"1500", "1000", "500"}, "mmio": {"12", "12", "0"}, "hypercall": {"3", "1", "2"},
		"management": {"0", "0", "0"}, "maintenance": {"7", "4", "3"}, "virt_irq": {"1478", "983", "495"},
		"virt_sgi": {"0", "0", "0"}, "psci": {"0", "0", "0"}, "smccc": {"0", "0", "0"},
	} {
		writeFile(t, filepath.Join(stats, "vmexits_"+reason), v[0]+"\n")
		writeFile(t, filepath.Join(stats, "cpu2", "vmexits_"+reason), v[1]+"\n")
		writeFile(t, filepath.Join(stats, "cpu3", "vmexits_"+reason), v[2]+"\n")
	}
}

func TestCellStats(t *testing.T) {
	want := "" +
		"Statistics for cell 'inmate-demo' (id 1, running)\n" +
		"\n" +
		"COUNTER      TOTAL  CPU2  CPU3\n" +
		"total         1500  1000   500\n" +
		"mmio            12    12     0\n" +
		"management       0     0     0\n" +
		"hypercall        3     1     2\n" +
		"maintenance      7     4     3\n" +
		"virt_irq      1478   983   495\n" +
		"virt_sgi         0     0     0\n" +
		"psci             0     0     0\n" +
		"smccc            0     0     0\n"
	for _, args := range [][]string{
		{"cell", "stats", "1"},
		{"cell", "stats", "inmate-demo"},
		{"cell", "stats", "--name", "inmate-demo"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			h := newHarness(t)
			statsFixture(t, h)
			if got := h.mustRun(args...); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		h := newHarness(t)
		statsFixture(t, h)
		var got struct {
			Cell  map[string]any    `json:"cell"`
			Total map[string]uint64 `json:"total"`
			CPUs  []struct {
				CPU      int               `json:"cpu"`
				Counters map[string]uint64 `json:"counters"`
			} `json:"cpus"`
		}
		if err := json.Unmarshal([]byte(h.mustRun("cell", "stats", "1", "--json")), &got); err != nil {
			t.Fatal(err)
		}
		if got.Cell["name"] != "inmate-demo" || got.Total["virt_irq"] != 1478 || len(got.CPUs) != 2 ||
			got.CPUs[0].CPU != 2 || got.CPUs[1].Counters["total"] != 500 {
			t.Errorf("unexpected JSON: %+v", got)
		}
	})

	t.Run("watch draws until interrupted", func(t *testing.T) {
		h := newHarness(t)
		statsFixture(t, h)
		got := h.mustRun("cell", "stats", "1", "--watch")
		if got != "\x1b[H\x1b[2J"+want {
			t.Errorf("got %q", got)
		}
	})

	t.Run("no such cell", func(t *testing.T) {
		h := newHarness(t)
		if _, errOut, code := h.run("cell", "stats", "nosuch"); code != 1 || !strings.Contains(errOut, "nosuch") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

func TestConsole(t *testing.T) {
	t.Run("snapshot", func(t *testing.T) {
		h := newHarness(t)
		h.drv.reads = [][]byte{[]byte("Initializing Jailhouse hypervisor\n"), []byte("Activating hypervisor\n")}
		if got := h.mustRun("console"); got != "Initializing Jailhouse hypervisor\nActivating hypervisor\n" {
			t.Errorf("console printed %q", got)
		}
		if !h.drv.nonblock {
			t.Error("console without -f did not read non-blocking")
		}
	})
	t.Run("follow", func(t *testing.T) {
		h := newHarness(t)
		h.drv.reads = [][]byte{[]byte("line 1\n")}
		h.drv.readEnd = os.ErrClosed // the stream breaks; output so far is kept
		out, _, code := h.run("console", "-f")
		if out != "line 1\n" || code != 1 {
			t.Errorf("console -f: stdout %q, exit %d", out, code)
		}
		if h.drv.nonblock {
			t.Error("console -f read non-blocking")
		}
	})
}
