package check

import (
	"fmt"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// cross runs the rules that relate cells to each other: names, CPUs,
// memory, interrupts, PCI devices and ivshmem links.
func (r *report) cross(sys *cell.System, root *unit, cells []*unit) {
	r.names(root, cells)
	r.cpuSharing(root, cells)
	r.memSharing(root, cells)
	r.irqSharing(sys, root, cells)
	r.pciSharing(cells)
	r.links(append([]*unit{root}, cells...))
}

func (r *report) names(root *unit, cells []*unit) {
	seen := map[string]string{root.c.Name: "the root cell"}
	for i, u := range cells {
		if u.c.Name == "" {
			continue // reported by the per-cell check
		}
		if other, dup := seen[u.c.Name]; dup {
			r.add(Error, u.label, "name", "already used by %s (EEXIST)", other)
			continue
		}
		seen[u.c.Name] = fmt.Sprintf("cell %d of the list", i+1)
	}
}

func (r *report) cpuSharing(root *unit, cells []*unit) {
	rootCPUs := root.c.CPUs
	var taken cpuset.Set
	whole := false
	for i, u := range cells {
		cpus := u.c.CPUs
		if extra := cpus.Minus(rootCPUs); !extra.IsEmpty() {
			r.add(Error, u.label, "cpus", "CPUs %s are not root cell CPUs (EBUSY)", extra)
		}
		if !rootCPUs.IsEmpty() && rootCPUs.SubsetOf(cpus) {
			whole = true
			r.add(Error, u.label, "cpus", "takes every root cell CPU (%s); the CPU issuing the create must stay in the root cell (EBUSY)", rootCPUs)
		}
		for j := range i {
			if both := cpus.Intersect(cells[j].c.CPUs); !both.IsEmpty() {
				r.add(Error, u.label, "cpus", "CPUs %s are also assigned to cell %q (EBUSY)", both, cells[j].label)
			}
		}
		taken = taken.Union(cpus)
	}
	if !whole && len(cells) > 1 && !rootCPUs.IsEmpty() && rootCPUs.SubsetOf(taken) {
		r.add(Error, "", "cpus", "the cells together take every root cell CPU (%s); at least one must stay in the root cell", rootCPUs)
	}
}

// private reports a region that creating a cell removes from the root
// cell and gives to that cell alone.
func private(m cell.MemRegion) bool {
	return backed(m) && m.Flags&cell.MemRootShared == 0
}

func (r *report) memSharing(root *unit, cells []*unit) {
	// Root memory, for the coverage rule, and the root's ivshmem
	// regions, which no cell may take away.
	var rootMem []span
	for _, m := range root.c.MemRegions {
		if s, ok := physSpan(m); ok && backed(m) {
			rootMem = append(rootMem, s)
		}
	}
	type owned struct {
		s    span
		what string
	}
	var rootShmem []owned
	for i, d := range root.c.PCIDevices {
		if d.Type != cell.PCIIvshmem {
			continue
		}
		regs, ok := shmemRegions(root.c, d)
		if !ok {
			continue
		}
		for k, m := range regs {
			if s, ok := physSpan(m); ok && backed(m) {
				rootShmem = append(rootShmem, owned{s, fmt.Sprintf("memory region %d (%s of root pci device %d)", int(d.ShmemRegionsStart)+k, shmemRole(k), i)})
			}
		}
	}

	for ci, u := range cells {
		for j, m := range u.c.MemRegions {
			if !backed(m) {
				continue
			}
			s, ok := physSpan(m)
			if !ok {
				continue
			}
			obj := fmt.Sprintf("memory region %d", j)
			// Memory of two cells may overlap only if both mark it
			// ROOTSHARED, i.e. share it on purpose.
			for _, v := range cells[:ci] {
				for i, n := range v.c.MemRegions {
					t, ok := physSpan(n)
					if !ok || !backed(n) || (!private(m) && !private(n)) {
						continue
					}
					if o, hit := s.overlap(t); hit {
						r.add(Error, u.label, obj, "overlaps cell %q memory region %d (physical %s)", v.label, i, o)
					}
				}
			}
			if !private(m) {
				continue
			}
			for _, x := range rootShmem {
				if o, hit := s.overlap(x.s); hit {
					r.add(Error, u.label, obj, "takes root cell %s away from the root (physical %s)", x.what, o)
				}
			}
			gaps := uncovered(s, rootMem)
			if len(gaps) == 0 {
				continue
			}
			switch {
			case m.Flags&cell.MemLoadable != 0:
				r.add(Error, u.label, obj, "LOADABLE but %s is not root cell memory: images are loaded through the root cell", gaps[0])
			case m.Flags&cell.MemIO == 0:
				// Device MMIO the root never maps is a normal way to
				// hand a device to a cell, so only RAM is reported.
				r.add(Warning, u.label, obj, "%s is not root cell memory", gaps[0])
			}
		}
	}
}

func (r *report) irqSharing(sys *cell.System, root *unit, cells []*unit) {
	// INTx lines of the root cell's ivshmem devices: a cell granted one
	// takes the root's shared-memory interrupt away.
	rootINTx := map[int]int{}
	for i, d := range root.c.PCIDevices {
		if usesINTx(d) {
			if irq := intxIRQ(root.c, d); irq < gicFirstSpecial {
				if _, dup := rootINTx[int(irq)]; !dup {
					rootINTx[int(irq)] = i
				}
			}
		}
	}
	granted := make([]cpuset.Set, len(cells))
	for ci, u := range cells {
		granted[ci] = grants(u.c, sys)
		for j := range ci {
			if both := granted[ci].Intersect(granted[j]); !both.IsEmpty() {
				r.add(Error, u.label, "irqchips", "interrupts %s are also granted to cell %q", both, cells[j].label)
			}
		}
		for _, irq := range granted[ci].CPUs() {
			if dev, ok := rootINTx[irq]; ok {
				r.add(Error, u.label, "irqchips", "interrupt %d is the INTx line of root cell pci device %d (%s)", irq, dev, cell.FormatBDF(root.c.PCIDevices[dev].BDF))
			}
		}
	}
}

// pciSharing reports physical PCI devices listed by two non-root cells.
func (r *report) pciSharing(cells []*unit) {
	type devKey struct{ domain, bdf uint16 }
	owner := map[devKey]string{}
	for _, u := range cells {
		for i, d := range u.c.PCIDevices {
			if d.Type == cell.PCIIvshmem {
				continue
			}
			k := devKey{d.Domain, d.BDF}
			if other, dup := owner[k]; dup && other != u.label {
				r.add(Error, u.label, fmt.Sprintf("pci device %d", i), "%04x:%s is also assigned to cell %q", d.Domain, cell.FormatBDF(d.BDF), other)
				continue
			}
			owner[k] = u.label
		}
	}
}

type endpoint struct {
	u   *unit
	dev int
	d   cell.PCIDevice
}

func (e endpoint) String() string {
	return fmt.Sprintf("cell %q pci device %d", e.u.label, e.dev)
}

// links checks ivshmem links: endpoints with the same bdf, in any domain,
// connect. They must agree on the shape of the link and on the memory
// they share.
func (r *report) links(units []*unit) {
	var order []uint16
	byBDF := map[uint16][]endpoint{}
	for _, u := range units {
		for i, d := range u.c.PCIDevices {
			if d.Type != cell.PCIIvshmem {
				continue
			}
			if _, ok := byBDF[d.BDF]; !ok {
				order = append(order, d.BDF)
			}
			byBDF[d.BDF] = append(byBDF[d.BDF], endpoint{u, i, d})
		}
	}
	for _, bdf := range order {
		eps := byBDF[bdf]
		first := eps[0]
		for n, e := range eps[1:] {
			obj := fmt.Sprintf("pci device %d", e.dev)
			for _, p := range eps[:n+1] {
				if p.d.ShmemDevID == e.d.ShmemDevID && p.u != e.u {
					r.add(Error, e.u.label, obj, "link %s: shmem_dev_id %d is already taken by %s (EBUSY)", cell.FormatBDF(bdf), e.d.ShmemDevID, p)
				}
			}
			if e.d.ShmemPeers != first.d.ShmemPeers {
				r.add(Error, e.u.label, obj, "link %s: shmem_peers %d, but %s has %d", cell.FormatBDF(bdf), e.d.ShmemPeers, first, first.d.ShmemPeers)
				continue
			}
			if !protocolsMatch(e.d.ShmemProtocol, first.d.ShmemProtocol) {
				r.add(Error, e.u.label, obj, "link %s: protocol 0x%x, but %s uses 0x%x", cell.FormatBDF(bdf), uint16(e.d.ShmemProtocol), first, uint16(first.d.ShmemProtocol))
			}
			r.sameMemory(bdf, e, first)
		}
	}
}

// protocolsMatch allows a virtio front end to talk to a back end of the
// same virtio device; other protocols must be equal.
func protocolsMatch(a, b cell.ShmemProtocol) bool {
	const virtioIDMask = 0x3fff
	if a == b {
		return true
	}
	return a >= cell.ShmemProtoVirtioFront && b >= cell.ShmemProtoVirtioFront &&
		a&virtioIDMask == b&virtioIDMask
}

func (r *report) sameMemory(bdf uint16, e, first endpoint) {
	er, ok1 := shmemRegions(e.u.c, e.d)
	fr, ok2 := shmemRegions(first.u.c, first.d)
	if !ok1 || !ok2 {
		return // reported per cell
	}
	for k := range er {
		a, b := er[k], fr[k]
		if a.PhysStart == b.PhysStart && a.Size == b.Size {
			continue
		}
		r.add(Error, e.u.label, fmt.Sprintf("pci device %d", e.dev),
			"link %s: memory region %d (%s) is phys 0x%x size 0x%x, but %s has phys 0x%x size 0x%x",
			cell.FormatBDF(bdf), int(e.d.ShmemRegionsStart)+k, shmemRole(k), a.PhysStart, a.Size, first, b.PhysStart, b.Size)
	}
}
