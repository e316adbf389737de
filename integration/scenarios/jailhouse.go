package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// jhctlCmd returns a jhctl command aimed at the run's Jailhouse.
func (e *Env) jhctlCmd(jh Jailhouse, args ...string) (*exec.Cmd, error) {
	return e.Command("jhctl", append([]string{"--device", jh.Device, "--sysfs", jh.Sysfs}, args...)...)
}

// Jhctl runs jhctl against the run's Jailhouse (see Env.Jailhouse).
func (e *Env) Jhctl(jh Jailhouse, args ...string) (string, error) {
	cmd, err := e.jhctlCmd(jh, args...)
	if err != nil {
		return "", err
	}
	return e.Output(cmd)
}

// listedCell is one entry of jhctl cell list --json.
type listedCell struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
	CPUs  string `json:"cpus"`
}

func (e *Env) cellList(jh Jailhouse) (map[string]listedCell, error) {
	out, err := e.Jhctl(jh, "cell", "list", "--json")
	if err != nil {
		return nil, err
	}
	return parseCellList(out)
}

// parseCellList reads `jhctl cell list --json` output into cells by name.
func parseCellList(out string) (map[string]listedCell, error) {
	var cells []listedCell
	if err := json.Unmarshal([]byte(out), &cells); err != nil {
		return nil, fmt.Errorf("cell list --json: %w", err)
	}
	m := map[string]listedCell{}
	for _, c := range cells {
		m[c.Name] = c
	}
	return m, nil
}

// expectCell checks one cell's state (and CPUs, when cpus is not empty).
func (e *Env) expectCell(jh Jailhouse, name, state, cpus string) error {
	cells, err := e.cellList(jh)
	if err != nil {
		return err
	}
	c, ok := cells[name]
	if !ok {
		return fmt.Errorf("cell %s not listed (cells: %v)", name, cells)
	}
	if c.State != state || (cpus != "" && c.CPUs != cpus) {
		return fmt.Errorf("cell %s: state %q cpus %q, want %q %q", name, c.State, c.CPUs, state, cpus)
	}
	return nil
}

// testInmate is a stand-in inmate image for the emulated hypervisor, which
// loads but never executes it: 4 KiB with a recognisable pattern.
func testInmate() []byte {
	b := make([]byte, 4096)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	copy(b, "runphi test inmate")
	return b
}

// jhctlDemo is upstream's demo flow (jailhouse-abi.md §12) driven by jhctl.
func jhctlDemo(e *Env) error {
	jh, err := e.Jailhouse()
	if err != nil {
		return err
	}
	sys := filepath.Join(BoardsDir, "qemu-arm64", "system.json")
	demo := filepath.Join(BoardsDir, "qemu-arm64", "demos", "inmate-demo.json")
	image := filepath.Join(DemoInmatesDir, "gic-demo.bin")
	if e.Mode() == Emulated {
		image = filepath.Join(e.Dir(), "inmate.bin")
		if err := os.WriteFile(image, testInmate(), 0o644); err != nil {
			return err
		}
	}
	const cell = "inmate-demo"
	var out string // the last step's output
	mentions := func(words ...string) func() error {
		return func() error {
			for _, w := range words {
				if !strings.Contains(out, w) {
					return fmt.Errorf("output lacks %q", w)
				}
			}
			return nil
		}
	}
	steps := []struct {
		args  []string
		check func() error
	}{
		{args: []string{"enable", sys}},
		{args: []string{"cell", "create", demo}, check: func() error { return e.expectCell(jh, cell, "shut down", "1") }},
		{args: []string{"cell", "load", cell, image}},
		{args: []string{"cell", "start", cell}, check: func() error { return e.expectCell(jh, cell, "running", "1") }},
		{args: []string{"cell", "list"}, check: mentions("qemu-arm64", cell, "running")},
		{args: []string{"cell", "stats", cell}, check: mentions(cell)},
		{args: []string{"cell", "shutdown", cell}, check: func() error { return e.expectCell(jh, cell, "shut down", "") }},
		{args: []string{"cell", "destroy", cell}, check: func() error {
			cells, err := e.cellList(jh)
			if err != nil {
				return err
			}
			if _, ok := cells[cell]; ok || len(cells) != 1 {
				return fmt.Errorf("after destroy: cells %v, want the root cell only", cells)
			}
			return nil
		}},
		{args: []string{"disable"}},
	}
	for _, s := range steps {
		if out, err = e.Jhctl(jh, s.args...); err != nil {
			return err
		}
		if s.check != nil {
			if err := s.check(); err != nil {
				return fmt.Errorf("after jhctl %v: %w", s.args, err)
			}
		}
	}
	return nil
}
