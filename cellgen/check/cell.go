package check

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// Bits the revision-14 ABI defines; anything else comes from another
// revision or a fork (e.g. cache colouring) and would be ignored.
const (
	knownMemFlags = cell.MemRead | cell.MemWrite | cell.MemExecute | cell.MemDMA |
		cell.MemIO | cell.MemCommRegion | cell.MemLoadable | cell.MemRootShared |
		cell.MemNoHugepages | cell.MemIOUnaligned |
		cell.MemIO8 | cell.MemIO16 | cell.MemIO32 | cell.MemIO64
	ioWidthFlags   = cell.MemIO8 | cell.MemIO16 | cell.MemIO32 | cell.MemIO64
	knownCellFlags = cell.CellPassiveCommReg | cell.CellTestDevice | cell.CellAArch32 |
		cell.CellVirtualConsolePermitted | cell.CellVirtualConsoleActive
)

// GIC and ivshmem limits of the hypervisor.
const (
	gicIRQs         = 1024 // size of a cell's interrupt bitmap
	gicFirstSpecial = 1020 // ids 1020-1023 are not interrupts
	irqchipPins     = 128  // interrupts one irqchip entry covers
	ivshmemMaxPeers = 12
	ivshmemMaxMSIX  = 16
	commRegionSize  = pageSize
)

// cell runs the checks that need at most the system configuration's GIC
// distributor base (sys may be nil).
func (r *report) cell(u *unit, sys *cell.System) {
	r.cellHeader(u)
	r.cpus(u)
	r.memRegions(u)
	r.memOverlaps(u)
	r.irqchips(u, sys)
	r.pciDevices(u, sys)
	if !u.root {
		r.resetAddress(u)
	}
}

func (r *report) cellHeader(u *unit) {
	c := u.c
	switch {
	case c.Name == "":
		r.add(Error, u.label, "name", "empty name")
	case len(c.Name) > cell.MaxNameLen:
		r.add(Error, u.label, "name", "%d bytes long, at most %d fit (the driver would silently truncate it)", len(c.Name), cell.MaxNameLen)
	case bytes.IndexByte([]byte(c.Name), 0) >= 0:
		r.add(Error, u.label, "name", "contains a NUL byte (the driver would see a shorter name)")
	}
	// The root cell embedded in a system file carries no architecture.
	if !u.root && c.Arch != cell.ArchARM64 {
		r.add(Error, u.label, "arch", "architecture %s, want arm64 (the arm64 driver returns success without creating the cell)", c.Arch.String())
	}
	if unknown := c.Flags &^ knownCellFlags; unknown != 0 {
		r.add(Error, u.label, "flags", "unknown cell flag bits 0x%x", uint32(unknown))
	}
}

func (r *report) cpus(u *unit) {
	c := u.c
	if c.CPUSetSize != 0 {
		switch {
		case c.CPUSetSize > cell.MaxCPUSetSize:
			r.add(Error, u.label, "cpus", "cpu_set_size %d is larger than %d (EINVAL)", c.CPUSetSize, cell.MaxCPUSetSize)
		case c.CPUSetSize%8 != 0:
			r.add(Warning, u.label, "cpus", "cpu_set_size %d is not a multiple of 8 (the hypervisor reads the bitmap in 64-bit words)", c.CPUSetSize)
		}
		if m := c.CPUs.Max(); m >= 0 && uint64(m) >= uint64(c.CPUSetSize)*8 {
			r.add(Error, u.label, "cpus", "CPU %d does not fit a %d-byte CPU bitmap", m, c.CPUSetSize)
		}
	}
	if c.CPUs.IsEmpty() {
		if u.root {
			r.add(Error, u.label, "cpus", "empty CPU set (enable fails with EINVAL)")
		} else {
			r.add(Error, u.label, "cpus", "empty CPU set")
		}
	}
}

func (r *report) memRegions(u *unit) {
	c := u.c
	comm := -1
	for i, m := range c.MemRegions {
		obj := fmt.Sprintf("memory region %d", i)
		if isZero(m) {
			continue
		}
		if unknown := m.Flags &^ knownMemFlags; unknown != 0 {
			r.add(Error, u.label, obj, "unknown flag bits 0x%x (not revision 14; the hypervisor ignores them)", uint64(unknown))
		}
		if m.Size == 0 {
			r.add(Error, u.label, obj, "size 0")
			continue
		}
		if _, ok := physSpan(m); !ok {
			r.add(Error, u.label, obj, "phys_start 0x%x + size 0x%x overflows", m.PhysStart, m.Size)
		}
		if _, ok := virtSpan(m); !ok {
			r.add(Error, u.label, obj, "virt_start 0x%x + size 0x%x overflows", m.VirtStart, m.Size)
		}
		if m.Flags&cell.MemLoadable != 0 && m.Flags&cell.MemWrite == 0 {
			r.add(Error, u.label, obj, "LOADABLE without WRITE: loading an image into it fails with EINVAL")
		}
		if u.root && m.PhysStart != m.VirtStart && m.Flags&cell.MemCommRegion == 0 {
			r.add(Warning, u.label, obj, "phys_start 0x%x differs from virt_start 0x%x; the hypervisor assumes the root cell is mapped 1:1 when it hands memory to other cells", m.PhysStart, m.VirtStart)
		}
		if m.Flags&cell.MemCommRegion != 0 {
			if comm >= 0 {
				r.add(Error, u.label, obj, "second communication region (the first is memory region %d)", comm)
			} else {
				comm = i
			}
			if m.Size != commRegionSize {
				r.add(Error, u.label, obj, "communication region of size 0x%x, must be 0x%x (the hypervisor maps its own page there; more would expose hypervisor memory)", m.Size, commRegionSize)
			}
			if m.PhysStart != 0 {
				r.add(Warning, u.label, obj, "communication region with phys_start 0x%x, which is ignored (use 0)", m.PhysStart)
			}
			continue
		}
		if subpage(m) {
			if m.Flags&ioWidthFlags == 0 {
				r.add(Warning, u.label, obj, "sub-page region (virt 0x%x, size 0x%x) without an IO_8/16/32/64 width flag: every access stops the cell", m.VirtStart, m.Size)
			}
		} else if m.PhysStart%pageSize != 0 {
			r.add(Error, u.label, obj, "phys_start 0x%x is not 4 KiB aligned while virt_start and size are: the hypervisor maps from the page below", m.PhysStart)
		}
	}
	if !u.root && comm < 0 {
		r.add(Warning, u.label, "memory regions", "no communication region: the inmate cannot see its state or answer shutdown requests")
	}
}

// memOverlaps reports regions of one cell that overlap physically or in
// guest-physical space. Comm regions take part only in the guest-physical
// check, since their phys_start is a placeholder.
func (r *report) memOverlaps(u *unit) {
	regs := u.c.MemRegions
	for j := range regs {
		b := regs[j]
		if isZero(b) {
			continue
		}
		bp, bpOK := physSpan(b)
		bv, bvOK := virtSpan(b)
		bpOK = bpOK && backed(b)
		for i := range j {
			a := regs[i]
			if isZero(a) {
				continue
			}
			ap, apOK := physSpan(a)
			av, avOK := virtSpan(a)
			apOK = apOK && backed(a)
			var po, vo span
			var pHit, vHit bool
			if apOK && bpOK {
				po, pHit = ap.overlap(bp)
			}
			if avOK && bvOK {
				vo, vHit = av.overlap(bv)
			}
			obj := fmt.Sprintf("memory region %d", j)
			switch {
			case pHit && vHit && po == vo:
				r.add(Error, u.label, obj, "overlaps memory region %d (physical and guest-physical %s)", i, po)
			default:
				if pHit {
					r.add(Error, u.label, obj, "overlaps memory region %d (physical %s)", i, po)
				}
				if vHit {
					r.add(Error, u.label, obj, "overlaps memory region %d (guest-physical %s)", i, vo)
				}
			}
		}
	}
}

// effective reports whether the hypervisor uses an irqchip entry: on ARM
// only entries at the GIC distributor base count. Without a system
// configuration every entry is assumed to be meant.
func effective(chip cell.Irqchip, sys *cell.System) bool {
	return sys == nil || chip.Address == sys.ARM.GICDBase
}

func validPinBase(chip cell.Irqchip) bool {
	return chip.PinBase%32 == 0 && uint64(chip.PinBase)+irqchipPins <= gicIRQs
}

func (r *report) irqchips(u *unit, sys *cell.System) {
	for i, chip := range u.c.Irqchips {
		obj := fmt.Sprintf("irqchip %d", i)
		if !effective(chip, sys) {
			r.add(Warning, u.label, obj, "address 0x%x is not the GIC distributor base 0x%x: the entry is silently ignored", chip.Address, sys.ARM.GICDBase)
			continue
		}
		if !validPinBase(chip) {
			r.add(Error, u.label, obj, "pin_base %d must be a multiple of 32 and at most %d (EINVAL)", chip.PinBase, gicIRQs-irqchipPins)
			continue
		}
		if !u.root && chip.PinBase == 0 && chip.PinBitmap[0] != 0 {
			r.add(Warning, u.label, obj, "grants SGIs/PPIs (ids 0-31), which every cell has anyway; creating the cell clears them in the root cell's interrupt bitmap")
		}
	}
}

// grants returns the interrupt ids (32-1023) the effective irqchips of c
// grant. Entries the hypervisor would reject are left out.
func grants(c *cell.Cell, sys *cell.System) cpuset.Set {
	var words [gicIRQs / 32]uint32
	for _, chip := range c.Irqchips {
		if !effective(chip, sys) || !validPinBase(chip) {
			continue
		}
		for k, w := range chip.PinBitmap {
			words[int(chip.PinBase)/32+k] |= w
		}
	}
	words[0] = 0 // SGIs and PPIs belong to every cell
	b := make([]byte, 0, len(words)*4)
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	s, _ := cpuset.FromBitmap(b) // 128 bytes always fit
	return s
}

// intxIRQ is the GIC interrupt id an ivshmem device without MSI-X raises:
// the INTx pin rotates with the slot number.
func intxIRQ(c *cell.Cell, d cell.PCIDevice) uint64 {
	return 32 + uint64(c.VPCIIrqBase) + uint64((d.BDF>>3)&3)
}

func usesINTx(d cell.PCIDevice) bool {
	return d.Type == cell.PCIIvshmem && d.NumMSIXVectors == 0
}

func (r *report) pciDevices(u *unit, sys *cell.System) {
	c := u.c
	hasIvshmem := false
	for i, d := range c.PCIDevices {
		obj := fmt.Sprintf("pci device %d", i)
		switch d.Type {
		case cell.PCIDeviceType, cell.PCIBridge:
		case cell.PCIIvshmem:
			hasIvshmem = true
		default:
			r.add(Error, u.label, obj, "unknown type %d", d.Type)
		}
		if end := int(d.CapsStart) + int(d.NumCaps); end > len(c.PCICaps) {
			r.add(Error, u.label, obj, "capabilities %d-%d lie beyond the %d capability entries", d.CapsStart, end-1, len(c.PCICaps))
		}
		for j := range i {
			e := c.PCIDevices[j]
			if d.BDF != e.BDF {
				continue
			}
			if d.Type == cell.PCIIvshmem && e.Type == cell.PCIIvshmem {
				r.add(Error, u.label, obj, "same bdf %s as pci device %d: ivshmem devices link by bdf, whatever the domain", cell.FormatBDF(d.BDF), j)
			} else if d.Domain == e.Domain {
				r.add(Error, u.label, obj, "same device %04x:%s as pci device %d", d.Domain, cell.FormatBDF(d.BDF), j)
			}
		}
		if d.Type == cell.PCIIvshmem {
			r.ivshmem(u, i, d)
		}
	}
	if !hasIvshmem {
		return
	}
	if last := 32 + uint64(c.VPCIIrqBase) + 3; last >= gicFirstSpecial {
		r.add(Error, u.label, "vpci_irq_base", "%d puts INTD at interrupt id %d, beyond the last SPI %d", c.VPCIIrqBase, last, gicFirstSpecial-1)
		return
	}
	granted := grants(c, sys)
	for i, d := range c.PCIDevices {
		if !usesINTx(d) {
			continue
		}
		if irq := intxIRQ(c, d); !granted.Has(int(irq)) {
			r.add(Error, u.label, fmt.Sprintf("pci device %d", i), "INTx raises interrupt %d (32 + vpci_irq_base %d + pin %d of slot %s), which no irqchip grants: the device never interrupts", irq, c.VPCIIrqBase, (d.BDF>>3)&3, cell.FormatBDF(d.BDF))
		}
	}
}

// shmemRegions returns the memory regions of an ivshmem device (state
// table, read/write section, one output section per peer), or false if
// they do not all exist.
func shmemRegions(c *cell.Cell, d cell.PCIDevice) ([]cell.MemRegion, bool) {
	start := uint64(d.ShmemRegionsStart)
	end := start + 2 + uint64(d.ShmemPeers)
	if end > uint64(len(c.MemRegions)) {
		return nil, false
	}
	return c.MemRegions[start:end], true
}

func shmemRole(k int) string {
	switch k {
	case 0:
		return "state table"
	case 1:
		return "read/write section"
	}
	return fmt.Sprintf("output section of peer %d", k-2)
}

func (r *report) ivshmem(u *unit, i int, d cell.PCIDevice) {
	obj := fmt.Sprintf("pci device %d", i)
	if d.ShmemDevID >= ivshmemMaxPeers {
		r.add(Error, u.label, obj, "shmem_dev_id %d, must be below %d (EINVAL)", d.ShmemDevID, ivshmemMaxPeers)
	}
	if d.ShmemPeers > ivshmemMaxPeers {
		r.add(Error, u.label, obj, "shmem_peers %d, at most %d endpoints can join a link", d.ShmemPeers, ivshmemMaxPeers)
	}
	if d.ShmemDevID >= d.ShmemPeers {
		r.add(Error, u.label, obj, "shmem_dev_id %d is not below shmem_peers %d", d.ShmemDevID, d.ShmemPeers)
	} else if d.ShmemPeers == 1 {
		r.add(Warning, u.label, obj, "shmem_peers 1: nobody else can join the link")
	}
	if d.NumMSIXVectors > ivshmemMaxMSIX {
		r.add(Error, u.label, obj, "%d MSI-X vectors, at most %d (EINVAL)", d.NumMSIXVectors, ivshmemMaxMSIX)
	}
	regs, ok := shmemRegions(u.c, d)
	if !ok {
		r.add(Error, u.label, obj, "shmem_regions_start %d + 2 + shmem_peers %d exceeds the %d memory regions (EINVAL)", d.ShmemRegionsStart, d.ShmemPeers, len(u.c.MemRegions))
		return
	}
	base := int(d.ShmemRegionsStart)
	if st := regs[0]; st.Size == 0 {
		r.add(Error, u.label, obj, "memory region %d (state table) is empty", base)
	} else if st.Flags&cell.MemWrite != 0 {
		r.add(Error, u.label, obj, "memory region %d (state table) is writable; it must be read-only", base)
	}
	for k := 2; k < len(regs); k++ {
		m, peer := regs[k], k-2
		if m.Size == 0 {
			continue
		}
		writable := m.Flags&cell.MemWrite != 0
		if peer == int(d.ShmemDevID) && !writable {
			r.add(Error, u.label, obj, "memory region %d (own output section, dev_id %d) is not writable", base+k, peer)
		}
		if peer != int(d.ShmemDevID) && writable {
			r.add(Error, u.label, obj, "memory region %d (output section of peer %d) is writable; only peer %d's own output may be", base+k, peer, peer)
		}
	}
	if u.root {
		return
	}
	for k, m := range regs {
		if !isZero(m) && m.Flags&cell.MemRootShared == 0 {
			r.add(Error, u.label, obj, "memory region %d (%s) is not ROOTSHARED: creating the cell takes it away from the root cell and the other peers", base+k, shmemRole(k))
		}
	}
}

func (r *report) resetAddress(u *unit) {
	c := u.c
	addr := c.CPUResetAddress
	mapped, loadable := -1, false
	for i, m := range c.MemRegions {
		if s, ok := virtSpan(m); ok && s.contains(addr) {
			if mapped < 0 {
				mapped = i
			}
			if m.Flags&cell.MemLoadable != 0 {
				loadable = true
			}
		}
	}
	switch {
	case mapped < 0:
		r.add(Warning, u.label, "cpu_reset_address", "0x%x is not mapped by any memory region", addr)
	case !loadable:
		r.add(Warning, u.label, "cpu_reset_address", "0x%x lies in memory region %d, which is not LOADABLE, so no image can be loaded there", addr, mapped)
	}
}
