package check

import (
	"slices"
	"strings"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// rootIOMMUWarning is the one finding upstream's zcu102 master config
// produces: its permissive MMIO region covers the SMMU (fixed on next).
var rootIOMMUWarning = Finding{
	Severity: Warning, Cell: "ZynqMP-ZCU102", Object: "memory region 8",
	Msg: "overlaps IOMMU unit 0 (0xfd800000-0xfd81ffff) at physical 0xfd800000-0xfd81ffff; the cell could reprogram the IOMMU directly",
}

func TestReferenceCombinations(t *testing.T) {
	tests := []struct {
		name  string
		sys   *cell.System
		cells []*cell.Cell
		want  []Finding
	}{
		{"qemu alone", qemuSystem(), nil, nil},
		{"qemu inmate+linux", qemuSystem(), []*cell.Cell{qemuInmateDemo(), qemuLinuxDemo()}, nil},
		{"qemu zephyr", qemuSystem(), []*cell.Cell{qemuZephyrDemo()}, nil},
		{"qemu inmate", qemuSystem(), []*cell.Cell{qemuInmateDemo()}, nil},
		{"zcu102 alone", zcuSystem(), nil, []Finding{rootIOMMUWarning}},
		{"zcu102 inmate", zcuSystem(), []*cell.Cell{zcuInmateDemo()}, []Finding{rootIOMMUWarning}},
		{"zcu102 linux+linux-2", zcuSystem(), []*cell.Cell{zcuLinuxDemo(), zcuLinuxDemo2()}, []Finding{rootIOMMUWarning}},
		{"zcu102 inmate+linux-2", zcuSystem(), []*cell.Cell{zcuInmateDemo(), zcuLinuxDemo2()}, []Finding{rootIOMMUWarning}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := System(tt.sys, tt.cells...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", lines(got), lines(tt.want))
			}
		})
	}
}

func TestReferenceCellsAlone(t *testing.T) {
	for _, c := range []*cell.Cell{
		qemuInmateDemo(), qemuLinuxDemo(), qemuZephyrDemo(),
		zcuInmateDemo(), zcuLinuxDemo(), zcuLinuxDemo2(),
	} {
		t.Run(c.Name, func(t *testing.T) {
			if got := Cell(c); len(got) != 0 {
				t.Errorf("findings:\n%s", lines(got))
			}
		})
	}
}

// Upstream ships alternatives that cannot run at the same time.
func TestConflictingReferenceCells(t *testing.T) {
	tests := []struct {
		name  string
		sys   *cell.System
		cells []*cell.Cell
		want  []string // substrings of expected error lines
	}{
		{"qemu zephyr+linux", qemuSystem(), []*cell.Cell{qemuZephyrDemo(), qemuLinuxDemo()}, []string{
			`cell "qemu-arm64-linux-demo": memory region 10: overlaps cell "qemu-arm64-zephyr-demo" memory region 10 (physical 0x7f900000-0x7f90ffff)`,
			`cell "qemu-arm64-linux-demo": memory region 11: overlaps cell "qemu-arm64-zephyr-demo" memory region 11 (physical 0x70000000-0x77ffffff)`,
			`irqchips: interrupts 33,140-141 are also granted to cell "qemu-arm64-zephyr-demo"`,
			`pci device 0: link 00:00.0: shmem_dev_id 2 is already taken`,
			`pci device 1: link 00:01.0: shmem_dev_id 1 is already taken`,
		}},
		{"qemu zephyr+inmate", qemuSystem(), []*cell.Cell{qemuZephyrDemo(), qemuInmateDemo()}, []string{
			`cell "inmate-demo": cpus: CPUs 1 are also assigned to cell "qemu-arm64-zephyr-demo" (EBUSY)`,
		}},
		{"zcu102 inmate+linux", zcuSystem(), []*cell.Cell{zcuInmateDemo(), zcuLinuxDemo()}, []string{
			`cell "ZynqMP-linux-demo": cpus: CPUs 3 are also assigned to cell "inmate-demo"`,
			`cell "ZynqMP-linux-demo": memory region 9: overlaps cell "inmate-demo" memory region 1 (physical 0x800600000-0x80060ffff)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := Errors(System(tt.sys, tt.cells...))
			if len(errs) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(errs), len(tt.want), lines(errs))
			}
			text := lines(errs)
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in:\n%s", w, text)
				}
			}
		})
	}
}

// scenario is the qemu reference trio, mutated by a test case.
type scenario struct {
	sys    *cell.System
	inmate *cell.Cell
	linux  *cell.Cell
}

func qemuScenario() *scenario {
	return &scenario{sys: qemuSystem(), inmate: qemuInmateDemo(), linux: qemuLinuxDemo()}
}

func (s *scenario) root() *cell.Cell { return &s.sys.RootCell }

func TestSystemFindings(t *testing.T) {
	const (
		root   = "qemu-arm64"
		inmate = "inmate-demo"
		linux  = "qemu-arm64-linux-demo"
	)
	tests := []struct {
		name   string
		mutate func(s *scenario)
		sev    Severity
		cell   string
		object string
		msg    string
		absent bool // the finding must not appear
	}{
		// cell header
		{"empty name", func(s *scenario) { s.inmate.Name = "" }, Error, "(unnamed cell 1)", "name", "empty name", false},
		{"long name", func(s *scenario) { s.inmate.Name = strings.Repeat("n", 32) }, Error, strings.Repeat("n", 32), "name", "32 bytes long, at most 31", false},
		{"NUL in name", func(s *scenario) { s.inmate.Name = "a\x00b" }, Error, "a\x00b", "name", "NUL", false},
		{"arch mismatch", func(s *scenario) { s.inmate.Arch = cell.ArchARM }, Error, inmate, "arch", "architecture arm, want arm64", false},
		{"unknown cell flags", func(s *scenario) { s.inmate.Flags |= 0x100 }, Error, inmate, "flags", "unknown cell flag bits 0x100", false},

		// CPUs
		{"cpu_set_size too big", func(s *scenario) { s.inmate.CPUSetSize = 4104 }, Error, inmate, "cpus", "cpu_set_size 4104 is larger than 4096", false},
		{"cpu_set_size odd", func(s *scenario) { s.inmate.CPUSetSize = 12 }, Warning, inmate, "cpus", "not a multiple of 8", false},
		{"cpu beyond bitmap", func(s *scenario) { s.inmate.CPUs = cpuset.Of(1, 70) }, Error, inmate, "cpus", "CPU 70 does not fit a 8-byte CPU bitmap", false},
		{"empty cpu set", func(s *scenario) { s.inmate.CPUs = cpuset.Set{} }, Error, inmate, "cpus", "empty CPU set", false},
		{"empty root cpu set", func(s *scenario) { s.root().CPUs = cpuset.Set{} }, Error, root, "cpus", "empty CPU set (enable fails with EINVAL)", false},

		// memory regions of one cell
		{"physical overlap", func(s *scenario) { s.inmate.MemRegions[6].PhysStart = 0x7fafa000 }, Error, inmate, "memory region 6", "overlaps memory region 2 (physical 0x7fafa000-0x7fafbfff)", false},
		{"guest-physical overlap with comm region", func(s *scenario) { s.inmate.MemRegions[6].VirtStart = 0x80000000 }, Error, inmate, "memory region 7", "overlaps memory region 6 (guest-physical 0x80000000-0x80000fff)", false},
		{"root identity overlap", func(s *scenario) { s.root().MemRegions[9].Size = 0x37010000 }, Error, root, "memory region 10", "overlaps memory region 9 (physical and guest-physical 0x40000000-0x4000ffff)", false},
		{"size 0", func(s *scenario) { s.inmate.MemRegions[6].Size = 0 }, Error, inmate, "memory region 6", "size 0", false},
		{"phys overflow", func(s *scenario) { s.inmate.MemRegions[6].PhysStart = 0xffffffffffff8000 }, Error, inmate, "memory region 6", "phys_start 0xffffffffffff8000 + size 0x10000 overflows", false},
		{"virt overflow", func(s *scenario) { s.inmate.MemRegions[6].VirtStart = 0xffffffffffff8000 }, Error, inmate, "memory region 6", "virt_start 0xffffffffffff8000 + size 0x10000 overflows", false},
		{"sub-page without width", func(s *scenario) { s.inmate.MemRegions[5].Size = 0x100 }, Warning, inmate, "memory region 5", "sub-page region (virt 0x9000000, size 0x100) without an IO_8/16/32/64 width flag", false},
		{"sub-page with width", func(s *scenario) {
			s.inmate.MemRegions[5].Size = 0x100
			s.inmate.MemRegions[5].Flags |= cell.MemIO32
		}, Warning, inmate, "memory region 5", "sub-page", true},
		{"unaligned phys of mapped region", func(s *scenario) { s.inmate.MemRegions[6].PhysStart = 0x7fa00800 }, Error, inmate, "memory region 6", "phys_start 0x7fa00800 is not 4 KiB aligned", false},
		{"loadable without write", func(s *scenario) { s.inmate.MemRegions[6].Flags &^= cell.MemWrite }, Error, inmate, "memory region 6", "LOADABLE without WRITE", false},
		{"unknown memory flags", func(s *scenario) { s.inmate.MemRegions[6].Flags |= 0x200 }, Error, inmate, "memory region 6", "unknown flag bits 0x200", false},
		{"comm region too big", func(s *scenario) { s.inmate.MemRegions[7].Size = 0x2000 }, Error, inmate, "memory region 7", "communication region of size 0x2000, must be 0x1000", false},
		{"comm region phys", func(s *scenario) { s.inmate.MemRegions[7].PhysStart = 0x7fa20000 }, Warning, inmate, "memory region 7", "phys_start 0x7fa20000, which is ignored", false},
		{"second comm region", func(s *scenario) {
			c := commRegion()
			c.VirtStart = 0x80001000
			s.inmate.MemRegions = append(s.inmate.MemRegions, c)
		}, Error, inmate, "memory region 8", "second communication region (the first is memory region 7)", false},
		{"no comm region", func(s *scenario) { s.inmate.MemRegions = s.inmate.MemRegions[:7] }, Warning, inmate, "memory regions", "no communication region", false},
		{"root not identity", func(s *scenario) { s.root().MemRegions[11].VirtStart = 0x5000000000 }, Warning, root, "memory region 11", "differs from virt_start 0x5000000000", false},

		// irqchips
		{"pin_base not multiple of 32", func(s *scenario) { s.inmate.Irqchips[0].PinBase = 33 }, Error, inmate, "irqchip 0", "pin_base 33 must be a multiple of 32 and at most 896 (EINVAL)", false},
		{"pin_base too high", func(s *scenario) { s.inmate.Irqchips[0].PinBase = 928 }, Error, inmate, "irqchip 0", "pin_base 928", false},
		{"irqchip not at GICD", func(s *scenario) { s.inmate.Irqchips[0].Address = 0x08010000 }, Warning, inmate, "irqchip 0", "address 0x8010000 is not the GIC distributor base 0x8000000: the entry is silently ignored", false},
		{"ignored irqchip grants nothing", func(s *scenario) { s.inmate.Irqchips[0].Address = 0x08010000 }, Error, inmate, "pci device 0", "INTx raises interrupt 144", false},
		{"irqchip grants PPIs", func(s *scenario) {
			s.inmate.Irqchips = append(s.inmate.Irqchips, cell.Irqchip{Address: 0x08000000, PinBitmap: [4]uint32{1 << 27}})
		}, Warning, inmate, "irqchip 1", "grants SGIs/PPIs", false},

		// PCI and ivshmem
		{"shmem regions beyond table", func(s *scenario) { s.inmate.PCIDevices[0].ShmemRegionsStart = 5 }, Error, inmate, "pci device 0", "shmem_regions_start 5 + 2 + shmem_peers 3 exceeds the 8 memory regions (EINVAL)", false},
		{"dev_id 12", func(s *scenario) { s.inmate.PCIDevices[0].ShmemDevID = 12 }, Error, inmate, "pci device 0", "shmem_dev_id 12, must be below 12 (EINVAL)", false},
		{"dev_id not below peers", func(s *scenario) { s.inmate.PCIDevices[0].ShmemDevID = 3 }, Error, inmate, "pci device 0", "shmem_dev_id 3 is not below shmem_peers 3", false},
		{"too many peers", func(s *scenario) { s.root().PCIDevices[1].ShmemPeers = 13 }, Error, root, "pci device 1", "shmem_peers 13, at most 12", false},
		{"too many MSI-X vectors", func(s *scenario) { s.inmate.PCIDevices[0].NumMSIXVectors = 17 }, Error, inmate, "pci device 0", "17 MSI-X vectors, at most 16 (EINVAL)", false},
		{"MSI-X needs no INTx grant", func(s *scenario) {
			s.inmate.PCIDevices[0].NumMSIXVectors = 1
			s.inmate.Irqchips[0].PinBitmap[3] = 0
		}, Error, inmate, "pci device 0", "INTx", true},
		{"writable state table", func(s *scenario) { s.inmate.MemRegions[0].Flags |= cell.MemWrite }, Error, inmate, "pci device 0", "memory region 0 (state table) is writable", false},
		{"empty state table", func(s *scenario) { s.inmate.MemRegions[0] = cell.MemRegion{} }, Error, inmate, "pci device 0", "memory region 0 (state table) is empty", false},
		{"own output read-only", func(s *scenario) { s.inmate.MemRegions[3].Flags &^= cell.MemWrite }, Error, inmate, "pci device 0", "memory region 3 (own output section, dev_id 1) is not writable", false},
		{"other output writable", func(s *scenario) { s.inmate.MemRegions[4].Flags |= cell.MemWrite }, Error, inmate, "pci device 0", "memory region 4 (output section of peer 2) is writable", false},
		{"ivshmem region not root-shared", func(s *scenario) { s.inmate.MemRegions[1].Flags &^= cell.MemRootShared }, Error, inmate, "pci device 0", "memory region 1 (read/write section) is not ROOTSHARED", false},
		{"caps beyond table", func(s *scenario) { s.inmate.PCIDevices[0].NumCaps = 2 }, Error, inmate, "pci device 0", "capabilities 0-1 lie beyond the 0 capability entries", false},
		{"unknown pci type", func(s *scenario) {
			s.inmate.PCIDevices = append(s.inmate.PCIDevices, cell.PCIDevice{Type: 7, BDF: 0x100})
		}, Error, inmate, "pci device 1", "unknown type 7", false},
		{"same bdf in one cell", func(s *scenario) { s.linux.PCIDevices[1].BDF = 0 }, Error, linux, "pci device 1", "same bdf 00:00.0 as pci device 0", false},
		{"INTx line not granted", func(s *scenario) { s.inmate.Irqchips[0].PinBitmap[3] = 0 }, Error, inmate, "pci device 0", "INTx raises interrupt 144 (32 + vpci_irq_base 112 + pin 0 of slot 00:00.0), which no irqchip grants", false},
		{"vpci_irq_base too high", func(s *scenario) { s.inmate.VPCIIrqBase = 985 }, Error, inmate, "vpci_irq_base", "985 puts INTD at interrupt id 1020", false},
		{"reset address unmapped", func(s *scenario) { s.inmate.CPUResetAddress = 0x90000000 }, Warning, inmate, "cpu_reset_address", "0x90000000 is not mapped", false},
		{"reset address not loadable", func(s *scenario) { s.inmate.CPUResetAddress = 0x09000000 }, Warning, inmate, "cpu_reset_address", "lies in memory region 5, which is not LOADABLE", false},

		// system
		{"system arch", func(s *scenario) { s.sys.Arch = cell.ArchX86 }, Error, "", "system", "architecture x86, want arm64", false},
		{"hypervisor size 0", func(s *scenario) { s.sys.HypervisorMemory.Size = 0 }, Error, "", "hypervisor memory", "size 0", false},
		{"hypervisor unaligned", func(s *scenario) { s.sys.HypervisorMemory.Size = 0x400800 }, Error, "", "hypervisor memory", "must be 4 KiB aligned", false},
		{"gic version", func(s *scenario) { s.sys.ARM.GICVersion = 4 }, Error, "", "gic", "gic_version 4, must be 2 or 3", false},
		{"gicv3 without gicr", func(s *scenario) { s.sys.ARM.GICRBase = 0 }, Error, "", "gic", "GICv3 needs gicr_base", false},
		{"gicv3 with gicc", func(s *scenario) { s.sys.ARM.GICCBase = 0x08010000 }, Warning, "", "gic", "gicc_base 0x8010000 is not used with GICv3", false},
		{"maintenance irq", func(s *scenario) { s.sys.ARM.MaintenanceIRQ = 33 }, Error, "", "gic", "maintenance_irq 33 is not a PPI (16-31)", false},
		{"too many iommus", func(s *scenario) {
			for i := range 9 {
				s.sys.IOMMUs = append(s.sys.IOMMUs, cell.IOMMU{Type: cell.IOMMUSMMUv3, Base: 0x10000000 + uint64(i)*0x100000, Size: 0x1000})
			}
		}, Error, "", "iommu units", "9 units, at most 8", false},
		{"unknown iommu type", func(s *scenario) {
			s.sys.IOMMUs = []cell.IOMMU{{Type: 9, Base: 0x10000000, Size: 0x1000}}
		}, Error, "", "iommu unit 0", "unknown type 9", false},
		{"iommu after gap", func(s *scenario) {
			s.sys.IOMMUs = []cell.IOMMU{{}, {Type: cell.IOMMUSMMUv3, Base: 0x10000000, Size: 0x1000}}
		}, Error, "", "iommu unit 1", "follows unit 0, which has base 0", false},
		{"ivshmem without mmconfig", func(s *scenario) { s.sys.PCIMMConfigBase = 0 }, Error, inmate, "pci device 0", "no PCI MMCONFIG window", false},

		// platform resources
		{"root maps hypervisor", func(s *scenario) { s.root().MemRegions[10].Size = 0x3fc10000 }, Error, root, "memory region 10", "overlaps hypervisor memory (0x7fc00000-0x7fffffff) at physical 0x7fc00000-0x7fc0ffff", false},
		{"cell maps hypervisor", func(s *scenario) { s.inmate.MemRegions[6].PhysStart = 0x7fc00000 }, Error, inmate, "memory region 6", "overlaps hypervisor memory", false},
		{"root maps mmconfig", func(s *scenario) {
			s.root().MemRegions[9] = ident(0x08e00000, 0x37200000, fIO)
		}, Error, root, "memory region 9", "overlaps the PCI MMCONFIG window (0x8e00000-0x8efffff)", false},
		{"redistributor of highest CPU", func(s *scenario) {
			s.root().MemRegions = append(s.root().MemRegions, ident(0x08290000, 0x1000, fIO))
		}, Error, root, "memory region 12", "overlaps GICR (0x80a0000-0x829ffff) at physical 0x8290000-0x8290fff", false},
		{"redistributors of fewer CPUs", func(s *scenario) {
			s.root().CPUs = cpuset.Range(0, 7)
			s.root().MemRegions = append(s.root().MemRegions, ident(0x08290000, 0x1000, fIO))
		}, Error, root, "memory region 12", "GICR", true},
		{"cell maps GICD", func(s *scenario) {
			s.inmate.MemRegions = append(s.inmate.MemRegions, ident(0x08000000, 0x1000, fIO|fRS))
		}, Error, inmate, "memory region 8", "overlaps GICD (0x8000000-0x800ffff)", false},

		// cross-cell: CPUs
		{"cpu not in root", func(s *scenario) { s.inmate.CPUs = cpuset.Of(16) }, Error, inmate, "cpus", "CPUs 16 are not root cell CPUs (EBUSY)", false},
		{"cpus shared", func(s *scenario) { s.linux.CPUs = cpuset.Of(1, 2) }, Error, linux, "cpus", `CPUs 1 are also assigned to cell "inmate-demo" (EBUSY)`, false},
		{"cell takes all root cpus", func(s *scenario) { s.root().CPUs = cpuset.Of(2, 3) }, Error, linux, "cpus", "takes every root cell CPU (2-3)", false},
		{"cells together take all root cpus", func(s *scenario) { s.root().CPUs = cpuset.Range(1, 3) }, Error, "", "cpus", "the cells together take every root cell CPU (1-3)", false},

		// cross-cell: memory
		{"cells share RAM", func(s *scenario) { s.linux.MemRegions[10].PhysStart = 0x7fa08000 }, Error, linux, "memory region 10", `overlaps cell "inmate-demo" memory region 6 (physical 0x7fa08000-0x7fa0ffff)`, false},
		{"private region over shared one", func(s *scenario) { s.linux.MemRegions[9].Flags &^= cell.MemRootShared }, Error, linux, "memory region 9", `overlaps cell "inmate-demo" memory region 5 (physical 0x9000000-0x9000fff)`, false},
		{"shared regions may overlap", func(s *scenario) {}, Error, linux, "memory region 9", "overlaps", true},
		{"cell takes root shmem", func(s *scenario) {
			s.inmate.MemRegions = append(s.inmate.MemRegions, ident(0x7fb00000, 0x1000, fRW))
		}, Error, inmate, "memory region 8", "takes root cell memory region 5 (state table of root pci device 1) away from the root", false},
		{"loadable outside root", func(s *scenario) { s.inmate.MemRegions[6].PhysStart = 0x7fa10000 }, Error, inmate, "memory region 6", "LOADABLE but 0x7fa10000-0x7fa1ffff is not root cell memory", false},
		{"loadable across adjacent root regions", func(s *scenario) {
			s.root().MemRegions[10].Size = 0x3fa08000
			s.root().MemRegions = append(s.root().MemRegions, ident(0x7fa08000, 0x8000, fRWX))
		}, Error, inmate, "memory region 6", "not root cell memory", true},
		{"RAM outside root", func(s *scenario) {
			s.linux.MemRegions[11].Flags &^= cell.MemLoadable
			s.linux.MemRegions[11].PhysStart = 0x90000000
		}, Warning, linux, "memory region 11", "0x90000000-0x97ffffff is not root cell memory", false},
		{"device outside root", func(s *scenario) {
			s.inmate.MemRegions = append(s.inmate.MemRegions, ident(0x90000000, 0x1000, fIO))
		}, Warning, inmate, "memory region 8", "not root cell memory", true},

		// cross-cell: interrupts, names, PCI
		{"interrupt granted twice", func(s *scenario) { s.inmate.Irqchips[0].PinBitmap[3] |= 0x1000 }, Error, linux, "irqchips", `interrupts 140 are also granted to cell "inmate-demo"`, false},
		{"root INTx line granted", func(s *scenario) { s.inmate.Irqchips[0].PinBitmap[3] |= 1 }, Error, inmate, "irqchips", "interrupt 128 is the INTx line of root cell pci device 0 (00:00.0)", false},
		{"duplicate name", func(s *scenario) { s.linux.Name = "inmate-demo" }, Error, "inmate-demo", "name", "already used by cell 1 of the list (EEXIST)", false},
		{"name of root", func(s *scenario) { s.inmate.Name = root }, Error, root, "name", "already used by the root cell (EEXIST)", false},
		{"physical device twice", func(s *scenario) {
			dev := cell.PCIDevice{Type: cell.PCIDeviceType, BDF: 0x100}
			s.inmate.PCIDevices = append(s.inmate.PCIDevices, dev)
			s.linux.PCIDevices = append(s.linux.PCIDevices, dev)
		}, Error, linux, "pci device 2", `0000:01:00.0 is also assigned to cell "inmate-demo"`, false},

		// ivshmem links
		{"link peers differ", func(s *scenario) { s.linux.PCIDevices[0].ShmemPeers = 4 }, Error, linux, "pci device 0", `link 00:00.0: shmem_peers 4, but cell "qemu-arm64" pci device 0 has 3`, false},
		{"link protocol differs", func(s *scenario) { s.linux.PCIDevices[1].ShmemProtocol = cell.ShmemProtoUndefined }, Error, linux, "pci device 1", `link 00:01.0: protocol 0x0, but cell "qemu-arm64" pci device 1 uses 0x1`, false},
		{"virtio front and back", func(s *scenario) {
			s.root().PCIDevices[1].ShmemProtocol = cell.ShmemProtoVirtioBack | cell.VirtioDevConsole
			s.linux.PCIDevices[1].ShmemProtocol = cell.ShmemProtoVirtioFront | cell.VirtioDevConsole
		}, Error, linux, "pci device 1", "protocol", true},
		{"virtio devices differ", func(s *scenario) {
			s.root().PCIDevices[1].ShmemProtocol = cell.ShmemProtoVirtioBack | cell.VirtioDevConsole
			s.linux.PCIDevices[1].ShmemProtocol = cell.ShmemProtoVirtioFront | cell.VirtioDevBlock
		}, Error, linux, "pci device 1", "protocol 0x8002", false},
		{"link memory differs", func(s *scenario) { s.linux.MemRegions[8].PhysStart = 0x7fb90000 }, Error, linux, "pci device 1",
			`link 00:01.0: memory region 8 (output section of peer 1) is phys 0x7fb90000 size 0x7f000, but cell "qemu-arm64" pci device 1 has phys 0x7fb80000 size 0x7f000`, false},
		{"dev_id taken", func(s *scenario) { s.inmate.PCIDevices[0].ShmemDevID = 2 }, Error, linux, "pci device 0", `link 00:00.0: shmem_dev_id 2 is already taken by cell "inmate-demo" pci device 0 (EBUSY)`, false},
		{"domain ignored for links", func(s *scenario) {
			s.linux.PCIDevices[0].Domain = 7
			s.linux.PCIDevices[0].ShmemDevID = 1
			s.linux.MemRegions[3].Flags |= cell.MemWrite
			s.linux.MemRegions[4].Flags &^= cell.MemWrite
		}, Error, linux, "pci device 0", `link 00:00.0: shmem_dev_id 1 is already taken by cell "inmate-demo" pci device 0 (EBUSY)`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := qemuScenario()
			tt.mutate(s)
			got := System(s.sys, s.inmate, s.linux)
			found := false
			for _, f := range got {
				if f.Severity == tt.sev && f.Cell == tt.cell && f.Object == tt.object && strings.Contains(f.Msg, tt.msg) {
					found = true
				}
			}
			switch {
			case tt.absent && found:
				t.Errorf("unexpected %s %q %q ~ %q in:\n%s", tt.sev, tt.cell, tt.object, tt.msg, lines(got))
			case !tt.absent && !found:
				t.Errorf("missing %s %q %q ~ %q in:\n%s", tt.sev, tt.cell, tt.object, tt.msg, lines(got))
			}
		})
	}
}

func TestZCU102Findings(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(sys *cell.System, c *cell.Cell)
		sev    Severity
		cell   string
		object string
		msg    string
	}{
		{"gicv2 without gicv", func(sys *cell.System, c *cell.Cell) { sys.ARM.GICVBase = 0 }, Error, "", "gic", "GICv2 needs gicv_base"},
		{"gicv2 with gicr", func(sys *cell.System, c *cell.Cell) { sys.ARM.GICRBase = 0xf9100000 }, Warning, "", "gic", "gicr_base 0xf9100000 is not used with GICv2"},
		{"cell maps GICC", func(sys *cell.System, c *cell.Cell) {
			c.MemRegions = append(c.MemRegions, ident(0xf9030000, 0x1000, fIO))
		}, Error, "inmate-demo", "memory region 3", "overlaps GICC (0xf902f000-0xf9030fff)"},
		{"cell maps SMMU", func(sys *cell.System, c *cell.Cell) {
			c.MemRegions = append(c.MemRegions, ident(0xfd800000, 0x1000, fIO))
		}, Error, "inmate-demo", "memory region 3", "overlaps IOMMU unit 0 (0xfd800000-0xfd81ffff)"},
		{"irqchip of another address", func(sys *cell.System, c *cell.Cell) {
			c.Irqchips = []cell.Irqchip{{Address: 0xf9000000, PinBase: 33}}
		}, Warning, "inmate-demo", "irqchip 0", "silently ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys, c := zcuSystem(), zcuInmateDemo()
			tt.mutate(sys, c)
			got := System(sys, c)
			for _, f := range got {
				if f.Severity == tt.sev && f.Cell == tt.cell && f.Object == tt.object && strings.Contains(f.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("missing %s %q %q ~ %q in:\n%s", tt.sev, tt.cell, tt.object, tt.msg, lines(got))
		})
	}
}

func TestCellWithoutSystem(t *testing.T) {
	c := qemuLinuxDemo()
	c.PCIDevices[1].ShmemPeers = 1
	c.PCIDevices[1].ShmemDevID = 0
	c.MemRegions[8].Flags &^= cell.MemWrite // peer 1's output no longer exists
	c.MemRegions[7].Flags |= cell.MemWrite
	c.Irqchips[0].Address = 0x1234 // no GICD base known: still counts
	got := Cell(c)
	want := []Finding{{Warning, "qemu-arm64-linux-demo", "pci device 1", "shmem_peers 1: nobody else can join the link"}}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", lines(got), lines(want))
	}
}

func TestNilInput(t *testing.T) {
	if got := System(nil); len(Errors(got)) != 1 || got[0].Object != "system" {
		t.Errorf("System(nil) = %v", got)
	}
	if got := Cell(nil); len(Errors(got)) != 1 {
		t.Errorf("Cell(nil) = %v", got)
	}
	got := System(qemuSystem(), qemuInmateDemo(), nil)
	if len(got) != 1 || got[0].Object != "cell 2" {
		t.Errorf("System with nil cell = %v", got)
	}
}

func TestOrderIsStable(t *testing.T) {
	run := func() []Finding {
		sys := qemuSystem()
		sys.ARM.MaintenanceIRQ = 5
		return System(sys, qemuZephyrDemo(), qemuLinuxDemo(), qemuInmateDemo())
	}
	first := run()
	if len(first) < 5 {
		t.Fatalf("expected many findings, got:\n%s", lines(first))
	}
	for range 20 {
		if again := run(); !slices.Equal(first, again) {
			t.Fatalf("order changed:\n%s\nthen:\n%s", lines(first), lines(again))
		}
	}
	if first[0].Cell != "" || first[0].Object != "gic" {
		t.Errorf("system findings must come first, got %v", first[0])
	}
}

func TestFindingString(t *testing.T) {
	tests := []struct {
		f    Finding
		want string
	}{
		{Finding{Error, "inmate-demo", "memory region 6", "overlaps memory region 2 (physical 0x7fa00000-0x7fa0ffff)"},
			`error: cell "inmate-demo": memory region 6: overlaps memory region 2 (physical 0x7fa00000-0x7fa0ffff)`},
		{Finding{Warning, "", "gic", "x"}, "warning: gic: x"},
		{Finding{Error, "", "", "x"}, "error: x"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	fs := []Finding{{Warning, "", "a", "1"}, {Error, "", "b", "2"}, {Warning, "", "c", "3"}, {Error, "", "d", "4"}}
	got := Errors(fs)
	if len(got) != 2 || got[0].Object != "b" || got[1].Object != "d" {
		t.Errorf("Errors = %v", got)
	}
}

func TestUncovered(t *testing.T) {
	cover := []span{{0x3000, 0x3fff}, {0x1000, 0x1fff}, {0x1800, 0x27ff}}
	tests := []struct {
		s    span
		want []span
	}{
		{span{0x1000, 0x27ff}, nil},
		{span{0x0, 0x4fff}, []span{{0x0, 0xfff}, {0x2800, 0x2fff}, {0x4000, 0x4fff}}},
		{span{0x5000, 0x5fff}, []span{{0x5000, 0x5fff}}},
		{span{0x3000, ^uint64(0)}, []span{{0x4000, ^uint64(0)}}},
	}
	for _, tt := range tests {
		if got := uncovered(tt.s, cover); !slices.Equal(got, tt.want) {
			t.Errorf("uncovered(%v) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func lines(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}
