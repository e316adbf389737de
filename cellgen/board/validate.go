package board

import (
	"errors"
	"fmt"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// ErrPoolMismatch is wrapped by every Validate error.
var ErrPoolMismatch = errors.New("pool does not fit the root cell")

// isRAM reports whether a root-cell region is ordinary RAM the root owns:
// readable, writable, not I/O, not shared and not the comm region. Cell
// RAM must come from such a region so the hypervisor can unmap it from
// the root at create time and the driver can load images through it.
func isRAM(m cell.MemRegion) bool {
	const need = cell.MemRead | cell.MemWrite
	return m.Size > 0 && m.Flags&need == need &&
		m.Flags&(cell.MemIO|cell.MemCommRegion|cell.MemRootShared) == 0
}

func regionRange(m cell.MemRegion) Range { return Range{Start: m.PhysStart, Size: m.Size} }

// Validate checks that pool only hands out what the root cell of sys owns
// and can give away: CPUs of the root other than its first one, memory
// inside root RAM and clear of the hypervisor, every ivshmem window and the
// PCI configuration window, the shared UART inside a root I/O region, and
// for every ivshmem-net slot a matching link in the root (root as peer 0)
// with interrupt lines the root grants and does not use itself.
func Validate(pool *Pool, sys *cell.System) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrPoolMismatch, fmt.Sprintf(format, args...))
	}
	root := &sys.RootCell
	if !pool.CPUs.SubsetOf(root.CPUs) {
		return fail("cpus %s: CPUs %s are not root CPUs (%s)", pool.CPUs, pool.CPUs.Minus(root.CPUs), root.CPUs)
	}
	if root.CPUs.IsEmpty() {
		return fail("the root cell has no CPU")
	}
	if first := root.CPUs.CPUs()[0]; pool.CPUs.Has(first) {
		return fail("cpus %s: CPU %d must stay with the root cell", pool.CPUs, first)
	}
	if pool.GICD != sys.ARM.GICDBase {
		return fail("gicd 0x%x: the GIC distributor is at 0x%x", pool.GICD, sys.ARM.GICDBase)
	}

	// Ranges nothing may be carved from: the hypervisor, the virtual PCI
	// configuration window and every region of a root ivshmem device.
	type forbidden struct {
		what string
		r    Range
	}
	var avoid []forbidden
	avoid = append(avoid, forbidden{"hypervisor memory", Range{sys.HypervisorMemory.PhysStart, sys.HypervisorMemory.Size}})
	if sys.PCIIsVirtual {
		avoid = append(avoid, forbidden{"PCI configuration window", Range{sys.PCIMMConfigBase, (uint64(sys.PCIMMConfigEndBus) + 1) * 0x100000}})
	}
	shmem := map[int]bool{}
	for d, dev := range root.PCIDevices {
		if dev.Type != cell.PCIIvshmem {
			continue
		}
		n := int(dev.ShmemPeers) + 2
		for i := int(dev.ShmemRegionsStart); i < int(dev.ShmemRegionsStart)+n && i < len(root.MemRegions); i++ {
			shmem[i] = true
			avoid = append(avoid, forbidden{fmt.Sprintf("root memory region %d (ivshmem %s, pci device %d)", i, cell.FormatBDF(dev.BDF), d), regionRange(root.MemRegions[i])})
		}
	}
	inRAM := func(field string, r Range) error {
		for _, f := range avoid {
			if r.Overlaps(f.r) {
				return fail("%s %v overlaps %s %v", field, r, f.what, f.r)
			}
		}
		for i, m := range root.MemRegions {
			if shmem[i] || !regionRange(m).Overlaps(r) {
				continue
			}
			if !isRAM(m) || !regionRange(m).Contains(r) || m.PhysStart != m.VirtStart {
				return fail("%s %v is not inside one root RAM region (root memory region %d %v)", field, r, i, regionRange(m))
			}
			return nil
		}
		return fail("%s %v is not inside root RAM", field, r)
	}
	for i, r := range pool.Memory {
		if err := inRAM(fmt.Sprintf("memory.ranges[%d]", i), r); err != nil {
			return err
		}
	}
	if err := inRAM("loader", pool.Loader.Range); err != nil {
		return err
	}

	uart := pool.Console.Region()
	uartOK := false
	for _, m := range root.MemRegions {
		if m.Flags&(cell.MemRead|cell.MemWrite|cell.MemIO) == cell.MemRead|cell.MemWrite|cell.MemIO && regionRange(m).Contains(uart) {
			uartOK = true
		}
	}
	if !uartOK {
		return fail("console: UART %v is not inside a root I/O region", uart)
	}

	granted := rootGranted(root, sys.ARM.GICDBase)
	rootLines := map[uint32]string{}
	for _, dev := range root.PCIDevices {
		if dev.Type == cell.PCIIvshmem {
			rootLines[INTx(root.VPCIIrqBase, dev.BDF)] = cell.FormatBDF(dev.BDF)
		}
	}
	for i, s := range pool.Net {
		f := fmt.Sprintf("ivshmem_net[%d] (%s)", i, cell.FormatBDF(s.BDF))
		dev, ok := rootDevice(root, s.BDF)
		switch {
		case !ok:
			return fail("%s: the root cell has no ivshmem device %s", f, cell.FormatBDF(s.BDF))
		case dev.ShmemPeers != 2 || dev.ShmemDevID != 0 || dev.ShmemProtocol != cell.ShmemProtoVETH:
			return fail("%s: root device is not a 2-peer VETH link with the root as peer 0", f)
		case int(dev.ShmemRegionsStart)+4 > len(root.MemRegions):
			return fail("%s: root device's regions run past the region list", f)
		}
		want := NetRegions(s.Window, 0)
		for k, m := range want {
			if got := root.MemRegions[int(dev.ShmemRegionsStart)+k]; got != m {
				return fail("%s: root memory region %d is %+v, want %+v for window 0x%x", f, int(dev.ShmemRegionsStart)+k, got, m, s.Window)
			}
		}
		if w := INTx(root.VPCIIrqBase, s.BDF); s.RootINTx != w {
			return fail("%s: root_intx %d, but the root cell (vpci_irq_base %d) receives %d", f, s.RootINTx, root.VPCIIrqBase, w)
		}
		if !granted[s.INTx] || !granted[s.RootINTx] {
			return fail("%s: the root cell does not grant interrupt ids %d and %d", f, s.INTx, s.RootINTx)
		}
		if bdf, ok := rootLines[s.INTx]; ok {
			// Creating the ZIC takes its lines away from the root.
			return fail("%s: intx %d is the root cell's line for ivshmem %s", f, s.INTx, bdf)
		}
	}
	return nil
}

// rootGranted returns the interrupt ids the irqchip entries for the GIC
// distributor at gicd grant.
func rootGranted(c *cell.Cell, gicd uint64) map[uint32]bool {
	out := map[uint32]bool{}
	for _, chip := range c.Irqchips {
		if chip.Address != gicd {
			continue
		}
		for k, word := range chip.PinBitmap {
			for b := range 32 {
				if word&(1<<b) != 0 {
					out[chip.PinBase+uint32(32*k+b)] = true
				}
			}
		}
	}
	return out
}

func rootDevice(c *cell.Cell, bdf uint16) (cell.PCIDevice, bool) {
	for _, d := range c.PCIDevices {
		if d.Type == cell.PCIIvshmem && d.BDF == bdf {
			return d, true
		}
	}
	return cell.PCIDevice{}, false
}
