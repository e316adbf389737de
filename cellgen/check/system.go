package check

import (
	"fmt"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// GIC frame sizes the hypervisor (and upstream's checker) reserve.
const (
	gicv2DistSize   = 0x1000
	gicv2CPUSize    = 0x2000
	gicv3DistSize   = 0x10000
	gicv3RedistSize = 0x20000 // per CPU; GICv4 would need 0x40000
	mmconfigBusSize = 1 << 20 // ECAM space of one PCI bus
)

func (r *report) system(sys *cell.System, units []*unit) {
	if sys.Arch != cell.ArchARM64 {
		r.add(Error, "", "system", "architecture %s, want arm64", sys.Arch.String())
	}

	hv := sys.HypervisorMemory
	switch {
	case hv.Size == 0:
		r.add(Error, "", "hypervisor memory", "size 0")
	case (hv.PhysStart|hv.Size)%pageSize != 0:
		r.add(Error, "", "hypervisor memory", "phys_start 0x%x and size 0x%x must be 4 KiB aligned", hv.PhysStart, hv.Size)
	}
	if _, ok := physSpan(hv); hv.Size != 0 && !ok {
		r.add(Error, "", "hypervisor memory", "phys_start 0x%x + size 0x%x overflows", hv.PhysStart, hv.Size)
	}

	r.gic(sys.ARM)
	r.iommus(sys.IOMMUs)

	if sys.PCIMMConfigBase == 0 {
		for _, u := range units {
			for i, d := range u.c.PCIDevices {
				if d.Type == cell.PCIIvshmem {
					r.add(Error, u.label, fmt.Sprintf("pci device %d", i), "ivshmem device but the system has no PCI MMCONFIG window (pci_mmconfig_base 0): its config space is unreachable")
				}
			}
		}
	}
}

func (r *report) gic(a cell.ARMPlatform) {
	need := func(name string, base uint64, version int) {
		if base == 0 {
			r.add(Error, "", "gic", "GICv%d needs %s", version, name)
		}
	}
	unused := func(name string, base uint64, version int) {
		if base != 0 {
			r.add(Warning, "", "gic", "%s 0x%x is not used with GICv%d", name, base, version)
		}
	}
	switch a.GICVersion {
	case 2:
		need("gicd_base", a.GICDBase, 2)
		need("gicc_base", a.GICCBase, 2)
		need("gich_base", a.GICHBase, 2)
		need("gicv_base", a.GICVBase, 2)
		unused("gicr_base", a.GICRBase, 2)
	case 3:
		need("gicd_base", a.GICDBase, 3)
		need("gicr_base", a.GICRBase, 3)
		unused("gicc_base", a.GICCBase, 3)
		unused("gich_base", a.GICHBase, 3)
		unused("gicv_base", a.GICVBase, 3)
	default:
		r.add(Error, "", "gic", "gic_version %d, must be 2 or 3 (enable fails with ENODEV)", a.GICVersion)
	}
	if a.MaintenanceIRQ < 16 || a.MaintenanceIRQ > 31 {
		r.add(Error, "", "gic", "maintenance_irq %d is not a PPI (16-31)", a.MaintenanceIRQ)
	}
}

func (r *report) iommus(units []cell.IOMMU) {
	if len(units) > cell.MaxIOMMUUnits {
		r.add(Error, "", "iommu units", "%d units, at most %d fit", len(units), cell.MaxIOMMUUnits)
		units = units[:cell.MaxIOMMUUnits]
	}
	gap := -1 // first unit with base 0: the arm64 hypervisor stops counting there
	for i, u := range units {
		obj := fmt.Sprintf("iommu unit %d", i)
		if u == (cell.IOMMU{}) {
			if gap < 0 {
				gap = i
			}
			continue
		}
		switch u.Type {
		case cell.IOMMUSMMUv3, cell.IOMMUPVU, cell.IOMMUARMMMU500:
		case cell.IOMMUAMD, cell.IOMMUIntel:
			r.add(Warning, "", obj, "type %d is an x86 IOMMU, ignored on arm64", u.Type)
		case cell.IOMMUNone:
			r.add(Warning, "", obj, "type 0 (unused) with base 0x%x", u.Base)
		default:
			r.add(Error, "", obj, "unknown type %d", u.Type)
		}
		switch {
		case u.Base == 0:
			if gap < 0 {
				gap = i
			}
			r.add(Error, "", obj, "base 0")
		case gap >= 0:
			r.add(Error, "", obj, "follows unit %d, which has base 0: the hypervisor ignores every unit from there on", gap)
		}
		if u.Size == 0 {
			r.add(Error, "", obj, "size 0")
		}
	}
}

// resource is a physical range no cell may map, because the hypervisor
// owns or emulates it.
type resource struct {
	name string
	s    span
	// rootSev is the severity when the root cell maps the range.
	rootSev Severity
	why     string
}

func resources(sys *cell.System) []resource {
	var out []resource
	addRes := func(name string, base, size uint64, rootSev Severity, why string) {
		if base == 0 {
			return
		}
		if s, ok := spanOf(base, size); ok {
			out = append(out, resource{name, s, rootSev, why})
		}
	}
	addRes("hypervisor memory", sys.HypervisorMemory.PhysStart, sys.HypervisorMemory.Size, Error, "")
	addRes("the PCI MMCONFIG window", sys.PCIMMConfigBase, (uint64(sys.PCIMMConfigEndBus)+1)*mmconfigBusSize, Error,
		"; config accesses would bypass the hypervisor's PCI emulation")
	for i, u := range sys.IOMMUs {
		if i >= cell.MaxIOMMUUnits {
			break
		}
		// Upstream's zcu102 master config maps its SMMU into the root
		// cell (next carves it out): it works, but the root cell could
		// reprogram the IOMMU, so that case is only a warning.
		addRes(fmt.Sprintf("IOMMU unit %d", i), u.Base, uint64(u.Size), Warning,
			"; the cell could reprogram the IOMMU directly")
	}
	a := sys.ARM
	switch a.GICVersion {
	case 2:
		addRes("GICD", a.GICDBase, gicv2DistSize, Error, "")
		addRes("GICC", a.GICCBase, gicv2CPUSize, Error, "")
		addRes("GICH", a.GICHBase, gicv2CPUSize, Error, "")
		addRes("GICV", a.GICVBase, gicv2CPUSize, Error, "")
	case 3:
		addRes("GICD", a.GICDBase, gicv3DistSize, Error, "")
		cpus := uint64(max(sys.RootCell.CPUs.Max(), 0)) + 1
		addRes("GICR", a.GICRBase, gicv3RedistSize*cpus, Error, "")
	}
	return out
}

// platformOverlaps reports memory regions of a cell that map hypervisor
// memory, the MMCONFIG window, an IOMMU or a GIC frame.
func (r *report) platformOverlaps(u *unit, res []resource) {
	for i, m := range u.c.MemRegions {
		if !backed(m) {
			continue
		}
		s, ok := physSpan(m)
		if !ok {
			continue
		}
		for _, x := range res {
			o, hit := s.overlap(x.s)
			if !hit {
				continue
			}
			sev := Error
			if u.root {
				sev = x.rootSev
			}
			r.add(sev, u.label, fmt.Sprintf("memory region %d", i), "overlaps %s (%s) at physical %s%s", x.name, x.s, o, x.why)
		}
	}
}
