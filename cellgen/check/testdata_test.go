package check

import (
	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// The upstream reference configurations (master e57d1eff) as Go values,
// from jailhouse-abi.md §7. Each function returns a fresh value that a
// test may mutate.

const (
	fR    = cell.MemRead
	fRW   = cell.MemRead | cell.MemWrite
	fRWX  = fRW | cell.MemExecute
	fIO   = fRW | cell.MemIO
	fComm = fRW | cell.MemCommRegion
	fLoad = fRWX | cell.MemLoadable
	fDMA  = fLoad | cell.MemDMA
	fRS   = cell.MemRootShared
)

func ident(base, size uint64, flags cell.MemFlags) cell.MemRegion {
	return cell.MemRegion{PhysStart: base, VirtStart: base, Size: size, Flags: flags}
}

func commRegion() cell.MemRegion {
	return cell.MemRegion{VirtStart: 0x80000000, Size: 0x1000, Flags: fComm}
}

// netRegions is the four-entry ivshmem-net group at base for peer id.
func netRegions(base uint64, id int) []cell.MemRegion {
	out0, out1 := fR|fRS, fR|fRS
	if id == 0 {
		out0 |= cell.MemWrite
	} else {
		out1 |= cell.MemWrite
	}
	return []cell.MemRegion{
		ident(base, 0x1000, fR|fRS),
		{},
		ident(base+0x1000, 0x7f000, out0),
		ident(base+0x80000, 0x7f000, out1),
	}
}

func ivshmem(domain, bdf uint16, start uint32, id, peers uint8, proto cell.ShmemProtocol) cell.PCIDevice {
	return cell.PCIDevice{
		Type: cell.PCIIvshmem, Domain: domain, BDF: bdf, BARMask: cell.BARMaskINTX,
		ShmemRegionsStart: start, ShmemDevID: id, ShmemPeers: peers, ShmemProtocol: proto,
	}
}

func gicIrqchip(base uint64, bitmap ...uint32) cell.Irqchip {
	chip := cell.Irqchip{Address: base, PinBase: 32}
	copy(chip.PinBitmap[:], bitmap)
	return chip
}

func pl011Console() cell.Console {
	return cell.Console{Address: 0x09000000, Type: cell.ConsolePL011, Flags: cell.ConsoleAccessMMIO | cell.ConsoleRegDist4}
}

func xuartpsConsole(addr uint64) cell.Console {
	return cell.Console{Address: addr, Type: cell.ConsoleXUARTPS, Flags: cell.ConsoleAccessMMIO | cell.ConsoleRegDist4}
}

// qemuDemoRegions are the five regions of the 3-peer ivshmem demo for
// peer id; the root (id 0) does not mark them ROOTSHARED.
func qemuDemoRegions(id int, root bool) []cell.MemRegion {
	rs := fRS
	if root {
		rs = 0
	}
	regs := []cell.MemRegion{
		ident(0x7faf0000, 0x1000, fR|rs),
		ident(0x7faf1000, 0x9000, fRW|rs),
		ident(0x7fafa000, 0x2000, fR|rs),
		ident(0x7fafc000, 0x2000, fR|rs),
		ident(0x7fafe000, 0x2000, fR|rs),
	}
	regs[2+id].Flags |= cell.MemWrite
	return regs
}

func qemuSystem() *cell.System {
	var regs []cell.MemRegion
	regs = append(regs, qemuDemoRegions(0, true)...)
	regs = append(regs, netRegions(0x7fb00000, 0)...)
	regs = append(regs,
		ident(0x09000000, 0x37000000, fIO),
		ident(0x40000000, 0x3fa10000, fRWX),
		ident(0x4010000000, 0x10000000, fIO),
	)
	return &cell.System{
		Arch:              cell.ArchARM64,
		Flags:             cell.SysVirtualDebugConsole,
		HypervisorMemory:  cell.MemRegion{PhysStart: 0x7fc00000, Size: 0x400000},
		DebugConsole:      cell.Console{Address: 0x09000000, Size: 0x1000, Type: cell.ConsolePL011, Flags: 3},
		PCIMMConfigBase:   0x08e00000,
		PCIMMConfigEndBus: 0,
		PCIIsVirtual:      true,
		PCIDomain:         1,
		ARM: cell.ARMPlatform{
			MaintenanceIRQ: 25, GICVersion: 3,
			GICDBase: 0x08000000, GICRBase: 0x080a0000,
		},
		RootCell: cell.Cell{
			Name:        "qemu-arm64",
			CPUs:        cpuset.Range(0, 15),
			CPUSetSize:  8,
			MemRegions:  regs,
			Irqchips:    []cell.Irqchip{gicIrqchip(0x08000000, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff)},
			VPCIIrqBase: 96,
			PCIDevices: []cell.PCIDevice{
				ivshmem(1, 0x00, 0, 0, 3, cell.ShmemProtoUndefined),
				ivshmem(1, 0x08, 5, 0, 2, cell.ShmemProtoVETH),
			},
		},
	}
}

func qemuInmateDemo() *cell.Cell {
	regs := qemuDemoRegions(1, false)
	regs = append(regs,
		ident(0x09000000, 0x1000, fIO|fRS),
		cell.MemRegion{PhysStart: 0x7fa00000, VirtStart: 0, Size: 0x10000, Flags: fLoad},
		commRegion(),
	)
	return &cell.Cell{
		Arch:        cell.ArchARM64,
		Name:        "inmate-demo",
		Flags:       cell.CellPassiveCommReg,
		CPUs:        cpuset.Of(1),
		CPUSetSize:  8,
		MemRegions:  regs,
		Irqchips:    []cell.Irqchip{gicIrqchip(0x08000000, 0, 0, 0, 0x10000)},
		VPCIIrqBase: 112,
		PCIDevices:  []cell.PCIDevice{ivshmem(1, 0x00, 0, 1, 3, cell.ShmemProtoUndefined)},
		Console:     pl011Console(),
	}
}

func qemuLinuxDemo() *cell.Cell {
	regs := qemuDemoRegions(2, false)
	regs = append(regs, netRegions(0x7fb00000, 1)...)
	regs = append(regs,
		ident(0x09000000, 0x1000, fIO|fRS),
		cell.MemRegion{PhysStart: 0x7f900000, VirtStart: 0, Size: 0x10000, Flags: fLoad},
		ident(0x70000000, 0x8000000, fDMA),
		commRegion(),
	)
	return &cell.Cell{
		Arch:        cell.ArchARM64,
		Name:        "qemu-arm64-linux-demo",
		Flags:       cell.CellPassiveCommReg | cell.CellVirtualConsolePermitted,
		CPUs:        cpuset.Of(2, 3),
		CPUSetSize:  8,
		MemRegions:  regs,
		Irqchips:    []cell.Irqchip{gicIrqchip(0x08000000, 0x2, 0, 0, 0x3000)},
		VPCIIrqBase: 108,
		PCIDevices: []cell.PCIDevice{
			ivshmem(1, 0x00, 0, 2, 3, cell.ShmemProtoUndefined),
			ivshmem(0, 0x08, 5, 1, 2, cell.ShmemProtoVETH),
		},
		Console: pl011Console(),
	}
}

func qemuZephyrDemo() *cell.Cell {
	c := qemuLinuxDemo()
	c.Name = "qemu-arm64-zephyr-demo"
	c.CPUResetAddress = 0x70000000
	c.CPUs = cpuset.Of(0, 1)
	return c
}

func zcuSystem() *cell.System {
	var regs []cell.MemRegion
	regs = append(regs, netRegions(0x800400000, 0)...)
	regs = append(regs, netRegions(0x800500000, 0)...)
	regs = append(regs,
		ident(0xfd000000, 0x03000000, fIO),
		ident(0x0, 0x80000000, fRWX),
		ident(0x800600000, 0x7fa00000, fRWX),
		ident(0x8000000000, 0x1000000, fIO),
	)
	return &cell.System{
		Arch:              cell.ArchARM64,
		Flags:             cell.SysVirtualDebugConsole,
		HypervisorMemory:  cell.MemRegion{PhysStart: 0x800000000, Size: 0x400000},
		DebugConsole:      cell.Console{Address: 0xff000000, Size: 0x1000, Type: cell.ConsoleXUARTPS, Flags: 3},
		PCIMMConfigBase:   0xfc000000,
		PCIMMConfigEndBus: 0,
		PCIIsVirtual:      true,
		PCIDomain:         0xffff,
		IOMMUs:            []cell.IOMMU{{Type: cell.IOMMUARMMMU500, Base: 0xfd800000, Size: 0x20000}},
		ARM: cell.ARMPlatform{
			MaintenanceIRQ: 25, GICVersion: 2,
			GICDBase: 0xf9010000, GICCBase: 0xf902f000, GICHBase: 0xf9040000, GICVBase: 0xf906f000,
		},
		RootCell: cell.Cell{
			Name:        "ZynqMP-ZCU102",
			CPUs:        cpuset.Range(0, 3),
			CPUSetSize:  8,
			MemRegions:  regs,
			Irqchips:    []cell.Irqchip{gicIrqchip(0xf9010000, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff)},
			VPCIIrqBase: 104,
			PCIDevices: []cell.PCIDevice{
				ivshmem(1, 0x08, 0, 0, 2, cell.ShmemProtoVETH),
				ivshmem(1, 0x10, 4, 0, 2, cell.ShmemProtoVETH),
			},
			StreamIDs: []uint32{0x860, 0x861, 0xf0870},
		},
	}
}

func zcuInmateDemo() *cell.Cell {
	return &cell.Cell{
		Arch:       cell.ArchARM64,
		Name:       "inmate-demo",
		Flags:      cell.CellPassiveCommReg,
		CPUs:       cpuset.Of(3),
		CPUSetSize: 8,
		MemRegions: []cell.MemRegion{
			ident(0xff010000, 0x1000, fIO|fRS),
			{PhysStart: 0x800600000, VirtStart: 0, Size: 0x10000, Flags: fLoad},
			commRegion(),
		},
		Console: xuartpsConsole(0xff010000),
	}
}

func zcuLinuxDemo() *cell.Cell {
	var regs []cell.MemRegion
	regs = append(regs, netRegions(0x800400000, 1)...)
	regs = append(regs, netRegions(0x800700000, 0)...)
	regs = append(regs,
		ident(0xff010000, 0x1000, fIO|fRS),
		cell.MemRegion{PhysStart: 0x800600000, VirtStart: 0, Size: 0x10000, Flags: fLoad},
		ident(0x810000000, 0x8000000, fDMA),
		commRegion(),
	)
	return &cell.Cell{
		Arch:        cell.ArchARM64,
		Name:        "ZynqMP-linux-demo",
		Flags:       cell.CellPassiveCommReg,
		CPUs:        cpuset.Of(2, 3),
		CPUSetSize:  8,
		MemRegions:  regs,
		Irqchips:    []cell.Irqchip{gicIrqchip(0xf9010000, 0x400000, 0, 0, 0xa000)},
		VPCIIrqBase: 108,
		PCIDevices: []cell.PCIDevice{
			ivshmem(0, 0x08, 0, 1, 2, cell.ShmemProtoVETH),
			ivshmem(0, 0x18, 4, 0, 2, cell.ShmemProtoVETH),
		},
		Console: xuartpsConsole(0xff010000),
	}
}

func zcuLinuxDemo2() *cell.Cell {
	var regs []cell.MemRegion
	regs = append(regs, netRegions(0x800500000, 1)...)
	regs = append(regs, netRegions(0x800700000, 1)...)
	regs = append(regs,
		cell.MemRegion{PhysStart: 0x800610000, VirtStart: 0, Size: 0x10000, Flags: fLoad},
		ident(0x809000000, 0x7000000, fDMA),
		commRegion(),
	)
	return &cell.Cell{
		Arch:        cell.ArchARM64,
		Name:        "ZynqMP-linux-demo-2",
		Flags:       cell.CellPassiveCommReg | cell.CellVirtualConsolePermitted,
		CPUs:        cpuset.Of(1),
		CPUSetSize:  8,
		MemRegions:  regs,
		Irqchips:    []cell.Irqchip{gicIrqchip(0xf9010000, 0, 0, 0, 0xc0000)},
		VPCIIrqBase: 112,
		PCIDevices: []cell.PCIDevice{
			ivshmem(0, 0x10, 0, 1, 2, cell.ShmemProtoVETH),
			ivshmem(0, 0x18, 4, 1, 2, cell.ShmemProtoVETH),
		},
		Console: xuartpsConsole(0xff010000),
	}
}
