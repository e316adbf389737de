package check

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// boardsDir holds the JSON form of the reference configurations.
const boardsDir = "../../boards"

// TestBoardFiles checks the shipped board files as upstream pairs them and
// cross-checks them against the literals in testdata_test.go.
func TestBoardFiles(t *testing.T) {
	load := func(t *testing.T, rel string) *cell.File {
		t.Helper()
		f, err := cell.ReadFile(filepath.Join(boardsDir, rel))
		if errors.Is(err, fs.ErrNotExist) {
			t.Skipf("%s not present", rel)
		}
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	sameCPUs := cmp.Comparer(func(a, b cpuset.Set) bool { return a.Equal(b) })
	// cpu_set_size 0 means "derived", which is 8 for these configs.
	ignoreSize := cmpopts.IgnoreFields(cell.Cell{}, "CPUSetSize")

	tests := []struct {
		board  string
		system *cell.System
		cells  map[string]*cell.Cell
		pairs  [][]string
		want   []Finding
	}{
		{"qemu-arm64", qemuSystem(), map[string]*cell.Cell{
			"inmate-demo": qemuInmateDemo(), "linux-demo": qemuLinuxDemo(), "zephyr-demo": qemuZephyrDemo(),
		}, [][]string{{"inmate-demo", "linux-demo"}, {"zephyr-demo"}}, nil},
		{"zcu102", zcuSystem(), map[string]*cell.Cell{
			"inmate-demo": zcuInmateDemo(), "linux-demo": zcuLinuxDemo(), "linux-demo-2": zcuLinuxDemo2(),
		}, [][]string{{"inmate-demo"}, {"linux-demo", "linux-demo-2"}}, []Finding{rootIOMMUWarning}},
	}
	for _, tt := range tests {
		t.Run(tt.board, func(t *testing.T) {
			sys := load(t, filepath.Join(tt.board, "system.json")).System
			if sys == nil {
				t.Fatal("system.json is not a system configuration")
			}
			if d := cmp.Diff(tt.system, sys, sameCPUs, ignoreSize); d != "" {
				t.Errorf("system.json differs from the reference (-want +got):\n%s", d)
			}
			cells := map[string]*cell.Cell{}
			for name, want := range tt.cells {
				c := load(t, filepath.Join(tt.board, "demos", name+".json")).Cell
				if c == nil {
					t.Fatalf("%s is not a cell configuration", name)
				}
				if d := cmp.Diff(want, c, sameCPUs, ignoreSize); d != "" {
					t.Errorf("%s differs from the reference (-want +got):\n%s", name, d)
				}
				cells[name] = c
			}
			for _, pair := range tt.pairs {
				var cs []*cell.Cell
				for _, n := range pair {
					cs = append(cs, cells[n])
				}
				got := System(sys, cs...)
				if !cmp.Equal(got, tt.want, cmpopts.EquateEmpty()) {
					t.Errorf("%v: findings:\n%s\nwant:\n%s", pair, lines(got), lines(tt.want))
				}
			}
		})
	}
}
