package emu

import (
	"fmt"
	"slices"

	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

// Events the emulator cannot observe by itself (an inmate crashing, taking
// the comm-region lock, printing) are injected by tests through the methods
// below. Each fails if the hypervisor is disabled or the cell is unknown.

func (h *Hypervisor) injectTarget(id int) (*cellState, error) {
	if !h.st.Enabled {
		return nil, fmt.Errorf("jailhouse is not enabled")
	}
	for _, c := range h.nonRoot() {
		if c.ID == id {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no non-root cell with id %d", id)
}

// FailCell makes the cell's first CPU fail as on an unhandled trap: the
// hypervisor prints the reason, parks the CPU and the cell reads "failed"
// with that CPU in cpus_failed until it is loaded or started again.
func (h *Hypervisor) FailCell(id int, reason string) error {
	c, err := h.injectTarget(id)
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "emulated failure"
	}
	h.print("FATAL: %s\n", reason)
	if cpus := c.CPUs.CPUs(); len(cpus) > 0 {
		if cpus[0] < len(h.st.CPUs) {
			h.st.CPUs[cpus[0]].Failed = true
		}
		h.print("Parking CPU %d (Cell: \"%s\")\n", cpus[0], c.cfg.name)
	}
	c.State = jailhouse.StateFailed
	h.commit()
	return nil
}

// SetCellState sets the state the cell reports through its comm region,
// e.g. running/locked (which blocks creating and destroying other cells) or
// "Comm ABI mismatch".
func (h *Hypervisor) SetCellState(id int, s jailhouse.State) error {
	c, err := h.injectTarget(id)
	if err != nil {
		return err
	}
	if !s.Known() {
		return fmt.Errorf("unknown cell state %q", s)
	}
	c.State = s
	h.commit()
	return nil
}

// DenyShutdown makes a cell without the passive comm-region flag refuse
// (deny) or accept the hypervisor's shutdown requests while it runs: then
// loading, starting and destroying it fail with EPERM.
func (h *Hypervisor) DenyShutdown(id int, deny bool) error {
	c, err := h.injectTarget(id)
	if err != nil {
		return err
	}
	c.DenyShutdown = deny
	h.commit()
	return nil
}

// CellPrint writes text to the hypervisor console as the cell would through
// the debug-console hypercall, one hypercall per byte; the cell needs the
// virtual console permitted flag.
func (h *Hypervisor) CellPrint(id int, text string) error {
	c, err := h.injectTarget(id)
	if err != nil {
		return err
	}
	if c.cfg.flags&cellConsolePermitted == 0 {
		return fmt.Errorf("cell %q may not use the debug console (EPERM)", c.cfg.name)
	}
	if cpus := c.CPUs.CPUs(); len(cpus) > 0 {
		for range len(text) {
			h.countExit(cpus[0], statHypercall)
		}
	}
	h.print("%s", text)
	h.commit()
	return nil
}

// AddVMExits adds n exits of reason (total, mmio, management, hypercall,
// maintenance, virt_irq, virt_sgi, psci, smccc) to a CPU; every reason but
// total also counts towards total.
func (h *Hypervisor) AddVMExits(cpu int, reason string, n uint32) error {
	if !h.st.Enabled {
		return fmt.Errorf("jailhouse is not enabled")
	}
	names := reasons()
	r := slices.Index(names[:], reason)
	if r < 0 {
		return fmt.Errorf("unknown VM-exit reason %q", reason)
	}
	if cpu < 0 || cpu >= len(h.st.CPUs) {
		return fmt.Errorf("CPU %d does not exist", cpu)
	}
	s := &h.st.CPUs[cpu].Stats
	s[r] += n
	if r != statTotal {
		s[statTotal] += n
	}
	h.commit()
	return nil
}
