package board

import (
	"fmt"
	"slices"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// DeriveRoot returns the reference root with one ivshmem-net link (root as
// peer 0, VETH) added for every pool slot the reference lacks, so that
// several ZICs can each have their own link. The reference is not changed.
//
// Each new window is carved out of the root RAM region it lies in, which is
// split around it; the new link's four regions follow the last region of
// the existing ivshmem devices and its PCI device is appended, with the
// domain of the existing links. Regions and devices already in the
// reference keep their order and content, so the upstream demo cells work
// with the derived root as with the reference. The root cell must already
// grant the new links' interrupt lines.
func DeriveRoot(ref *cell.System, pool *Pool) (*cell.System, error) {
	sys := *ref
	sys.IOMMUs = slices.Clone(ref.IOMMUs)
	rc := &sys.RootCell
	rc.MemRegions = slices.Clone(ref.RootCell.MemRegions)
	rc.CacheRegions = slices.Clone(ref.RootCell.CacheRegions)
	rc.Irqchips = slices.Clone(ref.RootCell.Irqchips)
	rc.PIORegions = slices.Clone(ref.RootCell.PIORegions)
	rc.PCIDevices = slices.Clone(ref.RootCell.PCIDevices)
	rc.PCICaps = slices.Clone(ref.RootCell.PCICaps)
	rc.StreamIDs = slices.Clone(ref.RootCell.StreamIDs)

	var missing []NetSlot
	for _, s := range pool.Net {
		if _, ok := rootDevice(rc, s.BDF); !ok {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return &sys, nil
	}

	// Regions of ivshmem devices are never split, and new links go after
	// the last of them.
	shmem := map[int]bool{}
	insertAt := 0
	domain := sys.PCIDomain
	if domain == 0xffff {
		domain = 0
	}
	domainSet := false
	for _, d := range rc.PCIDevices {
		if d.Type != cell.PCIIvshmem {
			continue
		}
		end := int(d.ShmemRegionsStart) + int(d.ShmemPeers) + 2
		if end > len(rc.MemRegions) {
			return nil, fmt.Errorf("derive root: ivshmem %s: regions run past the region list", cell.FormatBDF(d.BDF))
		}
		for i := int(d.ShmemRegionsStart); i < end; i++ {
			shmem[i] = true
		}
		insertAt = max(insertAt, end)
		if d.ShmemProtocol == cell.ShmemProtoVETH && !domainSet {
			domain, domainSet = d.Domain, true
		}
	}

	holes := make([]Range, len(missing))
	for i, s := range missing {
		holes[i] = s.WindowRange()
	}
	slices.SortFunc(holes, func(a, b Range) int { return compareUint(a.Start, b.Start) })

	// Rebuild the region list: carve the windows out of root RAM, then
	// insert the new groups. newIndex maps old region indices.
	var regions []cell.MemRegion
	newIndex := make([]int, len(rc.MemRegions)+1)
	added := 4 * len(missing)
	for i, m := range rc.MemRegions {
		if i == insertAt {
			regions = append(regions, make([]cell.MemRegion, added)...)
		}
		newIndex[i] = len(regions)
		r := regionRange(m)
		overlapping := slices.ContainsFunc(holes, r.Overlaps)
		if !overlapping {
			regions = append(regions, m)
			continue
		}
		if shmem[i] || !isRAM(m) || m.PhysStart != m.VirtStart {
			return nil, fmt.Errorf("derive root: an ivshmem-net window overlaps root memory region %d %v, which is not plain RAM", i, r)
		}
		for _, piece := range subtract(r, holes) {
			regions = append(regions, cell.MemRegion{PhysStart: piece.Start, VirtStart: piece.Start, Size: piece.Size, Flags: m.Flags})
		}
	}
	if insertAt == len(rc.MemRegions) {
		regions = append(regions, make([]cell.MemRegion, added)...)
	}
	newIndex[len(rc.MemRegions)] = len(regions)
	first := newIndex[insertAt] - added
	if insertAt == len(rc.MemRegions) {
		first = len(regions) - added
	}
	for k, s := range missing {
		g := NetRegions(s.Window, 0)
		copy(regions[first+4*k:], g[:])
	}
	for i := range rc.PCIDevices {
		d := &rc.PCIDevices[i]
		if d.Type == cell.PCIIvshmem {
			d.ShmemRegionsStart = uint32(newIndex[d.ShmemRegionsStart])
		}
	}
	rc.MemRegions = regions

	granted := rootGranted(rc, sys.ARM.GICDBase)
	for k, s := range missing {
		if line := INTx(rc.VPCIIrqBase, s.BDF); !granted[line] {
			return nil, fmt.Errorf("derive root: ivshmem %s: the root cell does not grant its interrupt id %d", cell.FormatBDF(s.BDF), line)
		}
		rc.PCIDevices = append(rc.PCIDevices, cell.PCIDevice{
			Type:              cell.PCIIvshmem,
			Domain:            domain,
			BDF:               s.BDF,
			BARMask:           cell.BARMaskINTX,
			ShmemRegionsStart: uint32(first + 4*k),
			ShmemDevID:        0,
			ShmemPeers:        2,
			ShmemProtocol:     cell.ShmemProtoVETH,
		})
	}
	return &sys, nil
}

// subtract returns the parts of r outside holes (sorted by start).
func subtract(r Range, holes []Range) []Range {
	var out []Range
	cur := r.Start
	for _, h := range holes {
		if !h.Overlaps(r) {
			continue
		}
		if h.Start > cur {
			out = append(out, Range{Start: cur, Size: h.Start - cur})
		}
		cur = max(cur, h.End())
	}
	if cur < r.End() {
		out = append(out, Range{Start: cur, Size: r.End() - cur})
	}
	return out
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
