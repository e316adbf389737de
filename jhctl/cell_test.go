package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// Reference configurations kept in the repository (JSON form).
const (
	qemuSystemJSON    = "../boards/qemu-arm64/system.json"
	qemuLinuxDemoJSON = "../boards/qemu-arm64/demos/linux-demo.json"
	qemuInmateJSON    = "../boards/qemu-arm64/demos/inmate-demo.json"
)

// readCell decodes a reference cell configuration.
func readCell(t *testing.T, path string) *cell.Cell {
	t.Helper()
	f, err := cell.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Cell == nil {
		t.Fatalf("%s is not a cell configuration", path)
	}
	return f.Cell
}

func marshalCell(t *testing.T, c *cell.Cell) []byte {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseLoadArgs(t *testing.T) {
	byName := func(n string) jailhouse.CellRef { return jailhouse.CellRef{ID: -1, Name: n} }
	byID := func(id int32) jailhouse.CellRef { return jailhouse.CellRef{ID: id} }
	tests := []struct {
		args []string
		want loadArgs
	}{
		{[]string{"inmate-demo", "gic-demo.bin"},
			loadArgs{byName("inmate-demo"), []imageArg{{Source: "gic-demo.bin"}}}},
		// Each -a belongs to the image before it.
		{[]string{"inmate-demo", "gic-demo.bin", "-s", "params", "-a", "0x1000", "img2", "-a", "4096"},
			loadArgs{byName("inmate-demo"), []imageArg{
				{Source: "gic-demo.bin"},
				{Source: "params", IsString: true, Address: 0x1000},
				{Source: "img2", Address: 4096},
			}}},
		{[]string{"1", "a.bin", "-a", "010"}, loadArgs{byID(1), []imageArg{{Source: "a.bin", Address: 8}}}},
		{[]string{"010", "a.bin"}, loadArgs{byID(8), []imageArg{{Source: "a.bin"}}}},
		{[]string{"0x2", "a.bin", "--address", "0X7f"}, loadArgs{byID(2), []imageArg{{Source: "a.bin", Address: 0x7f}}}},
		{[]string{"--name", "1", "a.bin"}, loadArgs{byName("1"), []imageArg{{Source: "a.bin"}}}},
		{[]string{"--name=x", "--string=a b", "--address=0x10", "c"},
			loadArgs{byName("x"), []imageArg{{Source: "a b", IsString: true, Address: 0x10}, {Source: "c"}}}},
		// Names that only start like numbers stay names.
		{[]string{"08", "a"}, loadArgs{byName("08"), []imageArg{{Source: "a"}}}},
		{[]string{"-s", "a"}, loadArgs{byName("-s"), []imageArg{{Source: "a"}}}},
		{[]string{"c", "a", "-a", "0xffffffffffffffff"},
			loadArgs{byName("c"), []imageArg{{Source: "a", Address: 0xffffffffffffffff}}}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := parseLoadArgs(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}

	bad := [][]string{
		{},
		{"inmate-demo"},
		{"--name"},
		{"--name", "x"},
		{"c", "-a", "0x1000"},
		{"c", "a", "-a"},
		{"c", "a", "-a", "0x"},
		{"c", "a", "-a", "12z"},
		{"c", "a", "-a", "-1"},
		{"c", "a", "-a", "1_000"},
		{"c", "a", "-a", "0b101"},
		{"c", "a", "-a", "09"},
		{"c", "a", "-a", "0x1", "-a", "0x2"},
		{"c", "-s"},
		{strings.Repeat("n", 32), "a"},
	}
	for _, args := range bad {
		t.Run("bad "+strings.Join(args, " "), func(t *testing.T) {
			if got, err := parseLoadArgs(args); err == nil {
				t.Errorf("accepted as %+v", got)
			}
		})
	}
}

func TestCellLoad(t *testing.T) {
	h := newHarness(t)
	writeCell(t, h.sysfs, 1, "inmate-demo", "shut down", "2-3", "")
	gic := h.file("gic-demo.bin", []byte("\x01\x02\x03 inmate"))
	img2 := h.file("empty.bin", nil)
	h.mustRun("cell", "load", "inmate-demo", gic, "-s", "con-type=PL011", "-a", "0x1000", img2, "-a", "010")

	if len(h.drv.calls) != 1 {
		t.Fatalf("%d ioctls, want one CELL_LOAD", len(h.drv.calls))
	}
	c := h.drv.calls[0]
	if c.req != ioLoad || c.id != -1 || c.name != "inmate-demo" {
		t.Errorf("ioctl %#x for id %d name %q, want CELL_LOAD by name inmate-demo", c.req, c.id, c.name)
	}
	want := []loaded{
		{data: []byte("\x01\x02\x03 inmate"), addr: 0},
		{data: []byte("con-type=PL011\x00"), addr: 0x1000},
		{data: nil, addr: 8},
	}
	if !reflect.DeepEqual(c.images, want) {
		t.Errorf("images %+v, want %+v", c.images, want)
	}
}

func TestCellCommandsAddressCells(t *testing.T) {
	tests := []struct {
		args     []string
		req      uint
		id       int32
		name     string
		noImages bool
	}{
		{[]string{"cell", "start", "1"}, ioStart, 1, "", false},
		{[]string{"cell", "start", "010"}, ioStart, 8, "", false},
		{[]string{"cell", "destroy", "0x2"}, ioDestroy, 2, "", false},
		{[]string{"cell", "destroy", "inmate-demo"}, ioDestroy, -1, "inmate-demo", false},
		{[]string{"cell", "start", "--name", "1"}, ioStart, -1, "1", false},
		{[]string{"cell", "start", "--name=inmate-demo"}, ioStart, -1, "inmate-demo", false},
		// Shutdown is a CELL_LOAD with no images.
		{[]string{"cell", "shutdown", "inmate-demo"}, ioLoad, -1, "inmate-demo", true},
		{[]string{"cell", "shutdown", "3"}, ioLoad, 3, "", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h := newHarness(t)
			h.mustRun(tt.args...)
			if len(h.drv.calls) != 1 {
				t.Fatalf("%d ioctls, want 1", len(h.drv.calls))
			}
			c := h.drv.calls[0]
			if c.req != tt.req || c.id != tt.id || c.name != tt.name {
				t.Errorf("ioctl %#x id %d name %q, want %#x id %d name %q", c.req, c.id, c.name, tt.req, tt.id, tt.name)
			}
			if tt.noImages && len(c.images) != 0 {
				t.Errorf("%d images, want none", len(c.images))
			}
		})
	}
}

func TestCellCreateAndEnable(t *testing.T) {
	demo := readCell(t, qemuInmateJSON)
	bin := marshalCell(t, demo)
	for _, form := range []string{"binary", "json"} {
		t.Run("cell create "+form, func(t *testing.T) {
			h := newHarness(t)
			path := h.file("demo.cell", bin)
			if form == "json" {
				data, err := os.ReadFile(qemuInmateJSON)
				if err != nil {
					t.Fatal(err)
				}
				path = h.file("demo.json", data)
			}
			if out := h.mustRun("cell", "create", path); out != "" {
				t.Errorf("cell create printed %q", out)
			}
			if len(h.drv.calls) != 1 || h.drv.calls[0].req != ioCreate {
				t.Fatalf("ioctls %+v, want one CELL_CREATE", h.drv.calls)
			}
			if !bytes.Equal(h.drv.calls[0].config, bin) {
				t.Error("CELL_CREATE carried other bytes than the binary configuration")
			}
		})
	}
	t.Run("enable json", func(t *testing.T) {
		h := newHarness(t)
		h.mustRun("enable", qemuSystemJSON)
		if len(h.drv.calls) != 1 || h.drv.calls[0].req != ioEnable || string(h.drv.calls[0].config) != cell.SystemSignature {
			t.Fatalf("ioctls %+v, want ENABLE with a JHSYS configuration", h.drv.calls)
		}
	})
	t.Run("cell create with a system config", func(t *testing.T) {
		h := newHarness(t)
		_, errOut, code := h.run("cell", "create", qemuSystemJSON)
		if code != 1 || !strings.Contains(errOut, "not a cell configuration") || len(h.drv.calls) != 0 {
			t.Errorf("exit %d, stderr %q, %d ioctls", code, errOut, len(h.drv.calls))
		}
	})
	t.Run("disable", func(t *testing.T) {
		h := newHarness(t)
		h.mustRun("disable")
		if len(h.drv.calls) != 1 || h.drv.calls[0].req != ioDisable {
			t.Fatalf("ioctls %+v, want DISABLE", h.drv.calls)
		}
	})
	t.Run("driver error", func(t *testing.T) {
		h := newHarness(t)
		h.drv.errs = map[uint]syscall.Errno{ioStart: syscall.ENOENT}
		_, errOut, code := h.run("cell", "start", "nosuch")
		if code != 1 || !strings.HasPrefix(errOut, "jhctl: ") {
			t.Errorf("exit %d, stderr %q; want 1 and a jhctl: message", code, errOut)
		}
	})
}

func TestUsageAndHelp(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		stdout   string // substring
		noDevice bool
	}{
		{[]string{"--help"}, 0, "cell linux CELLCONFIG KERNEL", true},
		{[]string{"-h"}, 0, "Usage: jhctl", true},
		{[]string{"--version"}, 0, "jhctl ", true},
		{[]string{"cell", "load", "--help"}, 0, "Usage: jhctl cell load", true},
		{[]string{"cell", "start", "--help"}, 0, "Usage: jhctl cell start", true},
		{[]string{"cell", "linux", "--help"}, 0, "--loader", true},
		{[]string{"cell", "stats", "-h"}, 0, "--watch", true},
		{[]string{"console", "--help"}, 0, "--follow", true},
		{[]string{"config", "check", "--help"}, 0, "SYSCONFIG", true},
		{nil, 2, "", true},
		{[]string{"frobnicate"}, 2, "", true},
		{[]string{"cell"}, 2, "", true},
		{[]string{"cell", "frob"}, 2, "", true},
		{[]string{"cell", "start"}, 2, "", true},
		{[]string{"cell", "start", "a", "b"}, 2, "", true},
		{[]string{"cell", "start", "--name", "a", "b"}, 2, "", true},
		{[]string{"cell", "destroy", strings.Repeat("x", 40)}, 2, "", true},
		{[]string{"cell", "list", "extra"}, 2, "", true},
		{[]string{"enable"}, 2, "", true},
		{[]string{"disable", "x"}, 2, "", true},
		{[]string{"console", "--bogus"}, 2, "", true},
		{[]string{"cell", "linux", "a.cell"}, 2, "", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h := newHarness(t)
			out, errOut, code := h.run(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("stdout %q lacks %q", out, tt.stdout)
			}
			if tt.code == 2 && !strings.HasPrefix(errOut, "jhctl: ") {
				t.Errorf("stderr %q lacks the jhctl: prefix", errOut)
			}
			if tt.noDevice && h.drv.opened != 0 {
				t.Error("the device was opened")
			}
		})
	}
}

func TestGlobalPaths(t *testing.T) {
	// --sysfs beats the environment; the environment beats the default.
	h := newHarness(t)
	other := filepath.Join(t.TempDir(), "jailhouse")
	writeCell(t, other, 0, "other-root", "running", "0", "")
	out := h.mustRun("--sysfs", other, "cell", "list")
	if !strings.Contains(out, "other-root") {
		t.Errorf("--sysfs ignored:\n%s", out)
	}
	out = h.mustRun("cell", "list")
	if !strings.Contains(out, "qemu-arm64") {
		t.Errorf("%s ignored:\n%s", envSysfs, out)
	}
}
