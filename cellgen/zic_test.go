package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runphi-go/runphi/cellgen/alloc"
	"github.com/runphi-go/runphi/cellgen/board"
	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// bundle writes an OCI bundle whose root filesystem holds the ZIC
// descriptor desc (none if empty) and returns its directory.
func bundle(t *testing.T, name, spec, desc string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(dir, "rootfs", "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if desc != "" {
		if err := os.WriteFile(filepath.Join(dir, "rootfs", "boot", "config.json"), []byte(desc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The default inmate, small enough for any cell.
	if err := os.WriteFile(filepath.Join(dir, "rootfs", "boot", "boot.bin"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// withFile adds a file (or, if target is set, a symlink) to a bundle's rootfs.
func withFile(t *testing.T, dir, path string, size int, target string) string {
	t.Helper()
	p := filepath.Join(dir, "rootfs", path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	var err error
	if target != "" {
		err = os.Symlink(target, p)
	} else {
		err = os.WriteFile(p, make([]byte, size), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

const (
	zephyrSpec = `{"ociVersion": "1.0.2", "root": {"path": "rootfs"},
		"linux": {"resources": {"cpu": {"cpus": "2-3"}, "memory": {"limit": 33554432}}}}`
	zephyrDesc = `{"os_var": "zephyr", "starting_vaddress": "0x70000000", "net": true}`
)

// grants returns the grants recorded in a state file.
func grants(t *testing.T, state string) map[string]alloc.Grant {
	t.Helper()
	b, err := board.Load(boardDir)
	if err != nil {
		t.Fatal(err)
	}
	g, err := alloc.Open(state, b.Pool).Grants()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

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

func TestZICWritesCellAndRecordsGrant(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	out := filepath.Join(dir, "zephyr.cell")
	bun := bundle(t, "zephyr-bundle", zephyrSpec, zephyrDesc)

	r := cellgen(t, nil, "zic", "--board", boardDir, "--bundle", bun, "--state", state, "-o", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	c := readCell(t, out)
	if c.Name != "zephyr-bundle" {
		t.Errorf("cell name %q, want the bundle directory's name", c.Name)
	}
	if !c.CPUs.Equal(cpuset.Of(2, 3)) {
		t.Errorf("cell CPUs %v, want the bundle's 2-3", c.CPUs)
	}
	if c.CPUResetAddress != 0x70000000 {
		t.Errorf("reset address %#x, want the descriptor's load address", c.CPUResetAddress)
	}
	if len(c.PCIDevices) != 1 || c.PCIDevices[0].ShmemProtocol != cell.ShmemProtoVETH {
		t.Errorf("PCI devices %+v, want one ivshmem-net link", c.PCIDevices)
	}
	g, ok := grants(t, state)["zephyr-bundle"]
	if !ok || g.Reserved {
		t.Fatalf("state holds %+v, want a committed grant for zephyr-bundle", g)
	}
	if !g.CPUs.Equal(c.CPUs) || g.RAM.Size != 32<<20 {
		t.Errorf("grant %+v does not match the cell", g)
	}

	// The next ZIC gets other resources, under the name it is given.
	out2 := filepath.Join(dir, "second.cell")
	r = cellgen(t, nil, "zic", "--board", boardDir, "--bundle", bundle(t, "b2", `{"root": {"path": "rootfs"}}`, `{"net": false}`),
		"--state", state, "--name", "second", "-o", out2)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	c2 := readCell(t, out2)
	if c2.Name != "second" || c2.CPUs.Intersect(c.CPUs).Len() != 0 {
		t.Errorf("second cell %q has CPUs %v, want \"second\" with CPUs other than %v", c2.Name, c2.CPUs, c.CPUs)
	}
	if len(grants(t, state)) != 2 {
		t.Errorf("state holds %d grants, want 2", len(grants(t, state)))
	}
	// The cells fit the board and each other.
	r = cellgen(t, nil, "check", boardDir+"/system-zic.json", out, out2)
	if r.code != 0 {
		t.Errorf("check of the generated cells: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestZICWithoutStateRecordsNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "z.cell")
	r := cellgen(t, nil, "zic", "-b", boardDir, "--bundle", bundle(t, "z", zephyrSpec, zephyrDesc), "-o", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	readCell(t, out)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the cell", len(entries))
	}
}

// TestZICFailureChangesNothing: whatever step fails, no cell file is
// written and the state keeps exactly the grants it had.
func TestZICFailureChangesNothing(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	// One existing grant, which every failure must leave alone.
	if r := cellgen(t, nil, "zic", "-b", boardDir, "--bundle", bundle(t, "first", zephyrSpec, zephyrDesc),
		"--state", state, "-o", filepath.Join(dir, "first.cell")); r.code != 0 {
		t.Fatalf("setup: exit %d: %s", r.code, r.stderr)
	}
	before := grants(t, state)
	stateBytes, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		bundle string
		args   []string
		want   string // in stderr
	}{
		{"CPUs taken", bundle(t, "taken", zephyrSpec, zephyrDesc), nil, "2-3"},
		{"too much memory", bundle(t, "big", `{"root": {"path": "rootfs"}, "linux": {"resources": {"memory": {"limit": 1073741824}}}}`, `{}`), nil, "1 GiB requested"},
		{"name too long for a cell", bundle(t, "long", `{"root": {"path": "rootfs"}}`, `{}`),
			[]string{"--name", strings.Repeat("n", cell.MaxNameLen+1)}, "cell name"},
		{"no descriptor", bundle(t, "plain", `{"root": {"path": "rootfs"}}`, ""), nil, "no ZIC descriptor"},
		{"bad descriptor", bundle(t, "bad", `{"root": {"path": "rootfs"}}`, `{"os_var": "dos"}`), nil, "os_var"},
		{"bad bundle", bundle(t, "badspec", `{"root": `, `{}`), nil, "config.json"},
		{"inmate escapes the rootfs", withFile(t, bundle(t, "escape", `{"root": {"path": "rootfs"}}`, `{"inmate": "/boot/evil.bin"}`),
			"boot/evil.bin", 0, "/etc/passwd"), nil, "/boot/evil.bin"},
		{"inmate missing", bundle(t, "noinmate", `{"root": {"path": "rootfs"}}`, `{"inmate": "/boot/none.bin"}`), nil, "/boot/none.bin"},
		{"inmate too big for the loader slot", withFile(t, bundle(t, "fat", `{"root": {"path": "rootfs"}}`, `{}`),
			"boot/boot.bin", 80<<10, ""), nil, "/boot/boot.bin"},
		{"unwritable output", bundle(t, "nodir", `{"root": {"path": "rootfs"}}`, `{}`),
			[]string{"-o", filepath.Join(dir, "missing-dir", "x.cell")}, "missing-dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".cell")
			args := append([]string{"zic", "--board", boardDir, "--bundle", tc.bundle, "--state", state, "-o", out}, tc.args...)
			r := cellgen(t, nil, args...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr = %q, want it to mention %q", r.stderr, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s exists after a failure", out)
			}
			after := grants(t, state)
			if len(after) != len(before) {
				t.Fatalf("state holds %d grants, had %d", len(after), len(before))
			}
			for n, g := range before {
				a := after[n]
				if !a.CPUs.Equal(g.CPUs) || a.RAM != g.RAM || a.Loader != g.Loader || a.Reserved != g.Reserved {
					t.Errorf("grant %q changed: %+v -> %+v", n, g, a)
				}
			}
		})
	}
	if after, _ := os.ReadFile(state); !bytes.Equal(after, stateBytes) {
		t.Errorf("state file changed:\n%s\nwas:\n%s", after, stateBytes)
	}
}

func TestZICUsage(t *testing.T) {
	bun := bundle(t, "z", zephyrSpec, zephyrDesc)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing", []string{"zic"}, "--board, --bundle, -o/--output required"},
		{"no output", []string{"zic", "--board", boardDir, "--bundle", bun}, "-o/--output required"},
		{"stdout output", []string{"zic", "--board", boardDir, "--bundle", bun, "-o", "-"}, "must name a file"},
		{"positional argument", []string{"zic", "--board", boardDir, "--bundle", bun, "-o", "x", "extra"}, "wrong number of arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cellgen(t, nil, tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
}
