// Package zic builds the Jailhouse cell configuration of a ZIC (a container
// run as a cell) from a board and the grant the allocator made for it.
//
// Every ZIC has the same guest layout on a board, so an image linked for
// it runs whatever physical memory it was given:
//
//	pool guest.loader (0)        loader slot, 64 KiB: reset code and the
//	                             command line at +0x1000 (upstream inmates,
//	                             the Linux loader)
//	pool guest.ram               main RAM, the size asked for (0x70000000 on
//	                             qemu-arm64, where Zephyr images are linked)
//	pool guest.comm_region       communication region (0x80000000)
//	UART address                 the board's shared UART, with console "uart"
//	ivshmem window (= physical)  ivshmem-net link, with a net grant
//
// Regions come in this order: the ivshmem-net group (the ZIC is peer 1),
// the UART, the loader slot, main RAM, the communication region. Both RAM
// regions are loadable; main RAM is also DMA so `jailhouse cell linux`
// style loaders treat it as RAM. The first CPU starts at the reset address,
// the payload's load address.
//
// Interrupts: a ZIC receives only its link's INTx line,
// 32 + vpci_irq_base + ((bdf >> 3) & 3). The shared UART's interrupt stays
// with the root cell: the hypervisor takes a granted SPI away from the
// root (whose console needs it) and would let two cells claim the same
// one, so ZICs write the UART by polling.
package zic

import (
	"errors"
	"fmt"
	"strings"

	"github.com/runphi-go/runphi/cellgen/alloc"
	"github.com/runphi-go/runphi/cellgen/board"
	"github.com/runphi-go/runphi/cellgen/cell"
)

// Console is the console a ZIC gets.
type Console string

// Console kinds, as in the ZIC descriptor.
const (
	// ConsoleUART maps the board's shared UART and names it in the
	// console record; the virtual console is permitted as well.
	ConsoleUART Console = "uart"
	// ConsoleVirtual makes the hypervisor's virtual console the active
	// console; no UART is mapped and the console record is empty, so an
	// inmate never touches a UART it cannot reach.
	ConsoleVirtual Console = "virtual"
	// ConsoleNone gives the cell no console.
	ConsoleNone Console = "none"
)

// Options are the per-container choices the grant does not hold.
type Options struct {
	// Name is the cell name, at most cell.MaxNameLen bytes; empty means
	// the grant's name (which must then fit).
	Name string
	// Console defaults to ConsoleUART.
	Console Console
	// ResetAddress is the guest address the first CPU starts at: the
	// payload's load address (e.g. 0x70000000 for Zephyr on qemu-arm64),
	// or 0 for upstream inmates and the Linux loader. It must lie in the
	// loader slot or in main RAM.
	ResetAddress uint64
}

// ErrInvalid is wrapped by every Generate error.
var ErrInvalid = errors.New("cannot generate ZIC cell")

// Region flag sets of a ZIC.
const (
	flagsUART   = cell.MemRead | cell.MemWrite | cell.MemIO | cell.MemRootShared
	flagsLoader = cell.MemRead | cell.MemWrite | cell.MemExecute | cell.MemLoadable
	flagsRAM    = flagsLoader | cell.MemDMA
	flagsComm   = cell.MemRead | cell.MemWrite | cell.MemCommRegion
)

// Generate returns the complete cell configuration for grant g on board b.
func Generate(b *board.Board, g alloc.Grant, opts Options) (*cell.Cell, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalid, g.Name, fmt.Sprintf(format, args...))
	}
	pool := b.Pool
	name := opts.Name
	if name == "" {
		name = g.Name
	}
	switch {
	case name == "":
		return nil, fail("no cell name")
	case len(name) > cell.MaxNameLen:
		return nil, fail("cell name %q is %d bytes, at most %d", name, len(name), cell.MaxNameLen)
	case strings.IndexByte(name, 0) >= 0:
		return nil, fail("cell name contains a NUL byte")
	case g.CPUs.IsEmpty():
		return nil, fail("grant has no CPU")
	case g.RAM.Size == 0 || g.Loader.Size < board.MinLoaderSlot:
		return nil, fail("grant has RAM %v and loader slot %v", g.RAM, g.Loader)
	}

	c := &cell.Cell{
		Arch:  cell.ArchARM64,
		Name:  name,
		Flags: cell.CellPassiveCommReg,
		CPUs:  g.CPUs,
	}
	// Room for the largest layout, so the slices are allocated once.
	c.MemRegions = make([]cell.MemRegion, 0, 8)

	if s := g.Net; s != nil {
		group := board.NetRegions(s.Window, 1)
		c.MemRegions = append(c.MemRegions, group[:]...)
		pinBase := uint32(32)
		if s.INTx >= 32+128 {
			pinBase = min(s.INTx&^31, 1024-128)
		}
		chip := cell.Irqchip{Address: pool.GICD, PinBase: pinBase}
		bit := s.INTx - pinBase
		chip.PinBitmap[bit/32] = 1 << (bit % 32)
		c.Irqchips = []cell.Irqchip{chip}
		c.PCIDevices = []cell.PCIDevice{{
			Type:              cell.PCIIvshmem,
			BDF:               s.BDF,
			BARMask:           cell.BARMaskINTX,
			ShmemRegionsStart: 0,
			ShmemDevID:        1,
			ShmemPeers:        2,
			ShmemProtocol:     cell.ShmemProtoVETH,
		}}
		c.VPCIIrqBase = s.VPCIIrqBase
	}

	switch opts.Console {
	case ConsoleUART, "":
		u := pool.Console
		c.MemRegions = append(c.MemRegions, cell.MemRegion{PhysStart: u.Address, VirtStart: u.Address, Size: u.Size, Flags: flagsUART})
		c.Flags |= cell.CellVirtualConsolePermitted
		c.Console = cell.Console{Address: u.Address, Type: u.Type, Flags: u.Flags}
	case ConsoleVirtual:
		c.Flags |= cell.CellVirtualConsolePermitted | cell.CellVirtualConsoleActive
	case ConsoleNone:
	default:
		return nil, fail("unknown console %q, want %q, %q or %q", opts.Console, ConsoleUART, ConsoleVirtual, ConsoleNone)
	}

	loader := board.Range{Start: pool.Guest.Loader, Size: g.Loader.Size}
	ram := board.Range{Start: pool.Guest.RAM, Size: g.RAM.Size}
	c.MemRegions = append(c.MemRegions,
		cell.MemRegion{PhysStart: g.Loader.Start, VirtStart: loader.Start, Size: loader.Size, Flags: flagsLoader},
		cell.MemRegion{PhysStart: g.RAM.Start, VirtStart: ram.Start, Size: ram.Size, Flags: flagsRAM},
		cell.MemRegion{PhysStart: 0, VirtStart: pool.Guest.CommRegion, Size: board.CommRegionSize, Flags: flagsComm},
	)

	if a := opts.ResetAddress; !inside(loader, a) && !inside(ram, a) {
		return nil, fail("reset address 0x%x is in neither the loader slot %v nor main RAM %v", a, loader, ram)
	}
	c.CPUResetAddress = opts.ResetAddress

	// A grant from an older, larger pool could reach into another region.
	for i, m := range c.MemRegions {
		r := board.Range{Start: m.VirtStart, Size: m.Size}
		for j, o := range c.MemRegions[:i] {
			if r.Overlaps(board.Range{Start: o.VirtStart, Size: o.Size}) {
				return nil, fail("memory region %d (guest %v) overlaps memory region %d", i, r, j)
			}
		}
	}
	return c, nil
}

func inside(r board.Range, a uint64) bool { return a >= r.Start && a-r.Start < r.Size }
