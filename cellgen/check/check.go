// Package check validates Jailhouse configurations before they reach the
// driver. It reports, as findings, every condition the arm64 driver or
// hypervisor would reject (or silently mishandle), what upstream's offline
// checker (jailhouse-config-check) reports, and the cross-cell rules that
// must hold for a system configuration and several cells to run together.
//
// Checks are static: they look only at the model, never at the running
// system. Findings come in a fixed order (system, root cell, each cell in
// the order given, then the cross-cell rules), so output is reproducible.
package check

import (
	"fmt"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// Severity says whether a finding stops a configuration from working.
type Severity int

// Severities. An Error is something the driver or hypervisor rejects, or
// that breaks isolation or the cell's function; a Warning is legal but
// probably not what was meant.
const (
	Error Severity = iota
	Warning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// Finding is one problem found in a configuration.
type Finding struct {
	Severity Severity
	// Cell is the cell name; "" for the system-wide part of a system
	// configuration.
	Cell string
	// Object names the offending entry, e.g. "memory region 6",
	// "pci device 1", "irqchip 0", "cpus", "hypervisor memory".
	Object string
	Msg    string
}

// String formats the finding as one line, e.g.
// `error: cell "inmate-demo": memory region 6: overlaps memory region 2 (physical 0x7fa00000-0x7fa0ffff)`.
func (f Finding) String() string {
	s := f.Severity.String() + ": "
	if f.Cell != "" {
		s += fmt.Sprintf("cell %q: ", f.Cell)
	}
	if f.Object != "" {
		s += f.Object + ": "
	}
	return s + f.Msg
}

// Errors returns the findings of severity Error, in order.
func Errors(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Severity == Error {
			out = append(out, f)
		}
	}
	return out
}

// System checks a system configuration together with the non-root cells
// meant to run on it at the same time.
func System(sys *cell.System, cells ...*cell.Cell) []Finding {
	var r report
	if sys == nil {
		r.add(Error, "", "system", "no system configuration")
		return r.out
	}
	root := newUnit(&sys.RootCell, true, 0)
	units := []*unit{root}
	for i, c := range cells {
		if c == nil {
			r.add(Error, "", fmt.Sprintf("cell %d", i+1), "no cell configuration")
			continue
		}
		units = append(units, newUnit(c, false, i+1))
	}

	r.system(sys, units)
	res := resources(sys)
	for _, u := range units {
		r.cell(u, sys)
		r.platformOverlaps(u, res)
	}
	r.cross(sys, root, units[1:])
	return r.out
}

// Cell checks a non-root cell configuration on its own: everything that
// does not need the system configuration. Irqchip entries count as
// effective whatever their address, since the GIC distributor base is
// unknown here.
func Cell(c *cell.Cell) []Finding {
	var r report
	if c == nil {
		r.add(Error, "", "cell", "no cell configuration")
		return r.out
	}
	r.cell(newUnit(c, false, 1), nil)
	return r.out
}

// report collects findings in the order they are made.
type report struct {
	out []Finding
}

func (r *report) add(sev Severity, cellName, object, format string, args ...any) {
	r.out = append(r.out, Finding{Severity: sev, Cell: cellName, Object: object, Msg: fmt.Sprintf(format, args...)})
}

// unit is a cell under check with the name its findings carry.
type unit struct {
	c     *cell.Cell
	root  bool
	label string
}

func newUnit(c *cell.Cell, root bool, pos int) *unit {
	label := c.Name
	if label == "" {
		if root {
			label = "(unnamed root cell)"
		} else {
			label = fmt.Sprintf("(unnamed cell %d)", pos)
		}
	}
	return &unit{c: c, root: root, label: label}
}
