package jailhouse

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// The driver answers every failure with a bare errno whose meaning depends
// on the request and on the state of the system. The functions here turn
// it into a message that names the object at fault, looking at sysfs where
// one errno has several causes (EINVAL: not enabled, root cell, bad image).
// The errno stays the cause, so errors.Is(err, unix.EEXIST) keeps working.

// errnoName returns the symbolic name of the errno values the driver uses.
func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EPERM:
		return "EPERM"
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EINTR:
		return "EINTR"
	case syscall.EIO:
		return "EIO"
	case syscall.E2BIG:
		return "E2BIG"
	case syscall.EAGAIN:
		return "EAGAIN"
	case syscall.ENOMEM:
		return "ENOMEM"
	case syscall.EACCES:
		return "EACCES"
	case syscall.EFAULT:
		return "EFAULT"
	case syscall.EBUSY:
		return "EBUSY"
	case syscall.EEXIST:
		return "EEXIST"
	case syscall.ENODEV:
		return "ENODEV"
	case syscall.EINVAL:
		return "EINVAL"
	}
	return fmt.Sprintf("errno %d", int(e))
}

// causeText renders the cause of an *Error: an errno by its name, since the
// message already says what it means here.
func causeText(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) && errors.Unwrap(err) == nil {
		return errnoName(e)
	}
	return err.Error()
}

// configError explains why a configuration was refused before the ioctl.
func configError(op Op, kind string, data []byte, err error) error {
	var msg string
	switch {
	case errors.Is(err, cell.ErrBadSignature) && kind == "system" && bytes.HasPrefix(data, []byte(cell.CellSignature)):
		msg = "this is a cell configuration, not a system configuration"
	case errors.Is(err, cell.ErrBadSignature) && kind == "cell" && bytes.HasPrefix(data, []byte(cell.SystemSignature)):
		msg = "this is a system configuration, not a cell configuration"
	case errors.Is(err, cell.ErrBadSignature):
		msg = fmt.Sprintf("not a Jailhouse %s configuration: %v", kind, err)
	case errors.Is(err, cell.ErrBadRevision):
		msg = fmt.Sprintf("%s configuration has the wrong revision (the driver needs %d): %v", kind, cell.Revision, err)
	case errors.Is(err, cell.ErrBadArch):
		msg = fmt.Sprintf("%s configuration has an unknown architecture: %v", kind, err)
	case errors.Is(err, cell.ErrSizeMismatch), errors.Is(err, cell.ErrTruncated):
		msg = fmt.Sprintf("%s configuration of %d bytes does not match the size its contents need: %v", kind, len(data), err)
	default:
		msg = fmt.Sprintf("invalid %s configuration: %v", kind, err)
	}
	return &Error{Op: op, Kind: ErrBadConfig, Msg: msg, Err: err}
}

// notEnabled reports whether sysfs says the hypervisor is not running.
func (c *Client) notEnabled() bool {
	on, err := c.enabled()
	return err == nil && !on
}

func notEnabledError(op Op, cellName string, err error) *Error {
	return &Error{Op: op, Cell: cellName, Kind: ErrNotEnabled, Err: err, Msg: "jailhouse is not enabled"}
}

func (c *Client) enableError(err error, sys *cell.System) error {
	e := &Error{Op: OpEnable, Err: err}
	n, _ := errno(err)
	switch n {
	case syscall.EBUSY:
		e.Kind, e.Msg = ErrAlreadyEnabled, "jailhouse is already enabled"
	case syscall.EINVAL:
		e.Kind = ErrBadConfig
		if online, ok := c.onlineCPUs(); ok && !online.Equal(sys.RootCell.CPUs) {
			e.Msg = fmt.Sprintf("the root cell's CPUs (%s) must be exactly the online CPUs (%s)",
				sys.RootCell.CPUs, online)
			break
		}
		e.Msg = "the driver or hypervisor rejected the system configuration: the root cell's CPUs must be exactly " +
			"the online CPUs, and the hypervisor memory must be reserved from Linux (mem=, memmap= or " +
			"reserved-memory) and large enough; see the kernel log"
	case syscall.ENOENT:
		e.Msg = "hypervisor firmware jailhouse.bin not found (it belongs in the firmware path, normally /lib/firmware)"
	case syscall.ENODEV:
		e.Msg = "no usable virtualisation support (the kernel must boot in EL2/HYP mode) or unsupported interrupt controller"
	case syscall.EIO:
		e.Msg = "the hypervisor failed to start (interrupt controller problem); see the kernel log"
	case syscall.ENOMEM:
		e.Msg = "out of memory starting the hypervisor (is the hypervisor memory region large enough?)"
	default:
		e.Msg = genericMsg(n, err)
	}
	return e
}

// onlineCPUs reads the kernel's online CPU list next to the jailhouse sysfs
// directory (/sys/devices/system/cpu/online), so fixture trees can hold it.
func (c *Client) onlineCPUs() (cpuset.Set, bool) {
	v, err := readValue(filepath.Join(c.paths.Sysfs, "..", "system", "cpu", "online"))
	if err != nil {
		return cpuset.Set{}, false
	}
	set, err := cpuset.Parse(v)
	return set, err == nil
}

func (c *Client) disableError(err error) error {
	e := &Error{Op: OpDisable, Err: err}
	n, _ := errno(err)
	switch n {
	case syscall.EINVAL:
		return notEnabledError(OpDisable, "", err)
	case syscall.EBUSY:
		e.Msg = "a root-cell CPU is offline; bring all CPUs of the root cell online before disabling"
	case syscall.EPERM:
		e.Kind, e.Msg = ErrRefused, "a cell refused the shutdown request"
	default:
		e.Msg = genericMsg(n, err)
	}
	return e
}

func (c *Client) createError(err error, cfg *cell.Cell, size int) error {
	name := "'" + cfg.Name + "'"
	e := &Error{Op: OpCreate, Cell: name, Err: err}
	n, _ := errno(err)
	switch n {
	case syscall.EINVAL:
		if c.notEnabled() {
			return notEnabledError(OpCreate, name, err)
		}
		e.Kind = ErrBadConfig
		e.Msg = fmt.Sprintf("the hypervisor rejected the configuration of cell %s "+
			"(irqchip pin_base, ivshmem or IOMMU stream-id settings); see the kernel log", name)
	case syscall.EEXIST:
		e.Kind, e.Msg = ErrCellExists, fmt.Sprintf("a cell named %s already exists", name)
		if info, err := c.cell(CellRef{ID: -1, Name: cfg.Name}); err == nil {
			e.Msg += fmt.Sprintf(" (id %d)", info.ID)
		}
	case syscall.EBUSY:
		e.Msg, e.Kind = c.cpuConflict(cfg)
	case syscall.EPERM:
		e.Kind, e.Msg = ErrRefused, "reconfiguration is locked: a cell is running/locked"
	case syscall.E2BIG:
		e.Msg = fmt.Sprintf("the configuration of cell %s (%d bytes) is too large for the hypervisor "+
			"(at most 16 pages), or no cell id up to 255 is free", name, size)
	case syscall.ENOMEM:
		e.Msg = fmt.Sprintf("out of memory creating cell %s (kernel allocation or the hypervisor's page pool)", name)
	default:
		e.Msg = genericMsg(n, err)
	}
	return e
}

// cpuConflict explains an EBUSY from CELL_CREATE: the new cell's CPUs must
// all belong to the root cell right now.
func (c *Client) cpuConflict(cfg *cell.Cell) (msg string, kind error) {
	root, err := c.cell(CellRef{ID: RootID})
	if err != nil {
		return fmt.Sprintf("a CPU of cell '%s' (%s) is not available to the root cell", cfg.Name, cfg.CPUs), ErrCPUBusy
	}
	missing := cfg.CPUs.Minus(root.CPUs)
	if missing.IsEmpty() {
		return fmt.Sprintf("the hypervisor reported a conflict for cell '%s' (an ivshmem link is already "+
			"taken, or the calling CPU is in the cell's set); see the kernel log", cfg.Name), nil
	}
	cells, _ := c.cells()
	type group struct {
		owner string
		cpus  cpuset.Set
	}
	var groups []group
	for _, cpu := range missing.CPUs() {
		owner := ""
		for _, other := range cells {
			if other.ID != RootID && other.CPUs.Has(cpu) {
				owner = other.Name
				break
			}
		}
		i := 0
		for i < len(groups) && groups[i].owner != owner {
			i++
		}
		if i == len(groups) {
			groups = append(groups, group{owner: owner})
		}
		groups[i].cpus = groups[i].cpus.Union(cpuset.Of(cpu))
	}
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		subject := "CPU " + g.cpus.String() + " is"
		if g.cpus.Len() > 1 {
			subject = "CPUs " + g.cpus.String() + " are"
		}
		where := "not present or offline"
		if g.owner != "" {
			where = "owned by cell '" + g.owner + "'"
		}
		parts = append(parts, fmt.Sprintf("%s not available to the root cell (%s)", subject, where))
	}
	return strings.Join(parts, "; "), ErrCPUBusy
}

// verb is the past participle of a cell operation, for "cannot be ...".
func (op Op) verb() string {
	switch op {
	case OpLoad:
		return "loaded"
	case OpStart:
		return "started"
	case OpShutdown:
		return "shut down"
	case OpDestroy:
		return "destroyed"
	}
	return string(op) + "ed"
}

// isRoot reports whether ref addresses the root cell.
func (c *Client) isRoot(ref CellRef) bool {
	if ref.ID >= 0 {
		return ref.ID == RootID
	}
	info, err := c.cell(ref)
	return err == nil && info.ID == RootID
}

// cellOpError explains a failed CELL_LOAD, CELL_START or CELL_DESTROY.
func (c *Client) cellOpError(op Op, ref CellRef, err error, cfg *cell.Cell, images []Image) error {
	desc := "cell " + ref.String()
	e := &Error{Op: op, Cell: ref.String(), Err: err}
	n, _ := errno(err)
	switch n {
	case syscall.EINVAL:
		switch {
		case c.notEnabled():
			return notEnabledError(op, ref.String(), err)
		case c.isRoot(ref):
			e.Kind, e.Msg = ErrRootCell, "the root cell cannot be "+op.verb()
		case op == OpLoad && cfg != nil:
			e.Kind, e.Msg = ErrImage, fmt.Sprintf("the driver rejected the images although they fit the known "+
				"configuration of %s; the cell may have been created from a different configuration", desc)
		case op == OpLoad && len(images) > 0:
			e.Kind, e.Msg = ErrImage, fmt.Sprintf("an image does not fit %s: its address lies in no memory region, "+
				"or the first region containing it is not writable and loadable or too small", desc)
		default:
			e.Msg = genericMsg(n, err)
		}
	case syscall.ENOENT:
		e.Kind = ErrNoCell
		if ref.ID >= 0 {
			e.Msg = fmt.Sprintf("no cell with id %d", ref.ID)
		} else {
			e.Msg = fmt.Sprintf("no cell %s", ref)
		}
	case syscall.EPERM:
		e.Kind, e.Msg = ErrRefused, desc+" refused the shutdown request"
		if op == OpDestroy {
			e.Msg += ", or another cell is running/locked"
		}
	case syscall.EBUSY:
		e.Msg = "the driver could not map the target memory of an image of " + desc
	default:
		e.Msg = genericMsg(n, err)
	}
	return e
}

func genericMsg(n syscall.Errno, err error) string {
	switch n {
	case syscall.EINTR:
		return "interrupted by a signal"
	case syscall.EFAULT:
		return "the driver could not read the request or its data"
	case 0:
		return err.Error()
	}
	return n.Error()
}
