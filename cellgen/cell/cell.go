// Package cell is the Jailhouse configuration model: Go types for the system
// configuration (root cell) and the cell configuration of config revision 14,
// every flag constant by name, a byte-exact binary codec (Marshal, Unmarshal)
// and a human-editable JSON form.
//
// The model holds what a configuration means; counts, sizes and offsets are
// derived from its slices when encoding, never stored, so a header can never
// disagree with its arrays. The wire layout lives in wire.go, one record per
// on-disk structure.
package cell

import (
	"fmt"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// Arch is the architecture byte of a configuration header.
type Arch uint8

// Architectures as stored in the header.
const (
	ArchX86   Arch = 0
	ArchARM   Arch = 1
	ArchARM64 Arch = 2
)

// Revision is the configuration ABI revision this package reads and writes.
const Revision = 14

// MaxNameLen is the longest cell name Jailhouse keeps (31 bytes plus NUL).
const MaxNameLen = 31

// Signatures (5 bytes each, no terminator).
const (
	CellSignature   = "JHCLL"
	SystemSignature = "JHSYS"
)

// CellFlags are the flags of a cell descriptor.
type CellFlags uint32

// Cell flags.
const (
	CellPassiveCommReg          CellFlags = 0x00000001
	CellTestDevice              CellFlags = 0x00000002
	CellAArch32                 CellFlags = 0x00000004
	CellVirtualConsolePermitted CellFlags = 0x40000000
	CellVirtualConsoleActive    CellFlags = 0x80000000
)

// SystemFlags are the flags of a system configuration.
type SystemFlags uint32

// System flags.
const (
	SysVirtualDebugConsole SystemFlags = 0x0001
)

// MemFlags are the flags of a memory region.
type MemFlags uint64

// Memory-region flags.
const (
	MemRead        MemFlags = 0x0001
	MemWrite       MemFlags = 0x0002
	MemExecute     MemFlags = 0x0004
	MemDMA         MemFlags = 0x0008
	MemIO          MemFlags = 0x0010
	MemCommRegion  MemFlags = 0x0020
	MemLoadable    MemFlags = 0x0040
	MemRootShared  MemFlags = 0x0080
	MemNoHugepages MemFlags = 0x0100
	MemIOUnaligned MemFlags = 0x8000
	MemIO8         MemFlags = 0x10000
	MemIO16        MemFlags = 0x20000
	MemIO32        MemFlags = 0x40000
	MemIO64        MemFlags = 0x80000
)

// ConsoleType is the UART (or framebuffer) kind of a console.
type ConsoleType uint16

// Console types.
const (
	ConsoleNone      ConsoleType = 0x0000
	ConsoleEFIFB     ConsoleType = 0x0001
	Console8250      ConsoleType = 0x0002
	ConsolePL011     ConsoleType = 0x0003
	ConsoleXUARTPS   ConsoleType = 0x0004
	ConsoleMVEBU     ConsoleType = 0x0005
	ConsoleHSCIF     ConsoleType = 0x0006
	ConsoleSCIFA     ConsoleType = 0x0007
	ConsoleIMX       ConsoleType = 0x0008
	ConsoleIMXLPUART ConsoleType = 0x0009
	ConsoleSCIF      ConsoleType = 0x000a
)

// ConsoleFlags are the access flags of a console.
type ConsoleFlags uint16

// Console flags. Clear bits mean PIO, 1-byte register distance and a
// 1024x768 framebuffer.
const (
	ConsoleAccessMMIO    ConsoleFlags = 0x0001
	ConsoleRegDist4      ConsoleFlags = 0x0002
	ConsoleFB1920x1080   ConsoleFlags = 0x0004
	ConsoleInvertedClock ConsoleFlags = 0x1000
	ConsoleMDRQuirk      ConsoleFlags = 0x2000
)

// PCIType is the kind of a PCI device entry.
type PCIType uint8

// PCI device types.
const (
	PCIDeviceType PCIType = 0x01
	PCIBridge     PCIType = 0x02
	PCIIvshmem    PCIType = 0x03
)

// ShmemProtocol is the protocol an ivshmem device announces.
type ShmemProtocol uint16

// Shared-memory protocols. Custom protocols are 0x4000..0x7fff; virtio
// front and back ends carry the virtio device id in their low bits.
const (
	ShmemProtoUndefined   ShmemProtocol = 0x0000
	ShmemProtoVETH        ShmemProtocol = 0x0001
	ShmemProtoCustom      ShmemProtocol = 0x4000
	ShmemProtoVirtioFront ShmemProtocol = 0x8000
	ShmemProtoVirtioBack  ShmemProtocol = 0xc000
)

// Virtio device ids used with the virtio shared-memory protocols.
const (
	VirtioDevNet     = 1
	VirtioDevBlock   = 2
	VirtioDevConsole = 3
)

// PCI capability constants.
const (
	PCICapExtended  = 0x8000 // OR'ed into PCICap.ID for extended capabilities
	PCICapFlagWrite = 0x0001
)

// ivshmem BAR-mask presets.
var (
	BARMaskINTX    = [6]uint32{0xfffff000, 0, 0, 0, 0, 0}
	BARMaskMSIX    = [6]uint32{0xfffff000, 0xfffff000, 0, 0, 0, 0}
	BARMaskINTX64K = [6]uint32{0xffff0000, 0, 0, 0, 0, 0}
	BARMaskMSIX64K = [6]uint32{0xffff0000, 0xffff0000, 0, 0, 0, 0}
)

// IOMMUType is the kind of an IOMMU unit.
type IOMMUType uint32

// IOMMU types.
const (
	IOMMUNone      IOMMUType = 0
	IOMMUAMD       IOMMUType = 1
	IOMMUIntel     IOMMUType = 2
	IOMMUSMMUv3    IOMMUType = 3
	IOMMUPVU       IOMMUType = 4
	IOMMUARMMMU500 IOMMUType = 5
)

// MaxIOMMUUnits is the number of IOMMU slots in a system configuration.
const MaxIOMMUUnits = 8

// MaxCPUSetSize is the largest CPU bitmap (in bytes) the hypervisor accepts.
const MaxCPUSetSize = 4096

// x86 cache-region constants.
const (
	CacheL3Code         = 0x01
	CacheL3Data         = 0x02
	CacheL3             = 0x03
	CacheFlagRootShared = 0x0001
)

// x86 APIC modes.
const (
	APICModeAuto   = 0
	APICModeXAPIC  = 1
	APICModeX2APIC = 2
)

// Console is the console record of a system or cell configuration.
type Console struct {
	Address  uint64
	Size     uint32
	Type     ConsoleType
	Flags    ConsoleFlags
	Divider  uint32
	GateNr   uint32
	ClockReg uint64
}

// MemRegion is one memory region. VirtStart is the guest-physical address
// inside the cell.
type MemRegion struct {
	PhysStart uint64
	VirtStart uint64
	Size      uint64
	Flags     MemFlags
}

// CacheRegion is an x86 CAT cache region.
type CacheRegion struct {
	Start uint32
	Size  uint32
	Type  uint8
	Flags uint16
}

// Irqchip grants interrupt lines of one interrupt controller. Bit b of
// PinBitmap[k] grants interrupt id PinBase + 32*k + b.
type Irqchip struct {
	Address   uint64
	ID        uint32
	PinBase   uint32
	PinBitmap [4]uint32
}

// PIORegion is an x86 port I/O range.
type PIORegion struct {
	Base   uint16
	Length uint16
}

// PCIDevice is one PCI device entry.
type PCIDevice struct {
	Type              PCIType
	IOMMU             uint8
	Domain            uint16
	BDF               uint16
	BARMask           [6]uint32
	CapsStart         uint16
	NumCaps           uint16
	NumMSIVectors     uint8
	MSI64Bits         bool
	MSIMaskable       bool
	NumMSIXVectors    uint16
	MSIXRegionSize    uint16
	MSIXAddress       uint64
	ShmemRegionsStart uint32
	ShmemDevID        uint8
	ShmemPeers        uint8
	ShmemProtocol     ShmemProtocol
}

// PCICap is a PCI capability entry.
type PCICap struct {
	ID    uint16
	Start uint16
	Len   uint16
	Flags uint16
}

// Cell is a cell configuration: a stand-alone cell file or the root cell
// embedded in a system configuration.
type Cell struct {
	// Arch is the architecture byte of a cell file. It is not stored for
	// the root cell embedded in a system configuration (written as 0).
	Arch Arch
	Name string
	// ID is normally 0 in files; the driver assigns the real id.
	ID    uint32
	Flags CellFlags
	// CPUs is the set of logical CPUs, as sorted CPU numbers.
	CPUs cpuset.Set
	// CPUSetSize is the size of the CPU bitmap in bytes; 0 means the
	// smallest multiple of 8 that holds CPUs (8 for every upstream config).
	CPUSetSize      uint32
	MemRegions      []MemRegion
	CacheRegions    []CacheRegion
	Irqchips        []Irqchip
	PIORegions      []PIORegion
	PCIDevices      []PCIDevice
	PCICaps         []PCICap
	StreamIDs       []uint32
	VPCIIrqBase     uint32
	CPUResetAddress uint64
	MsgReplyTimeout uint64
	Console         Console
}

// IOMMU is one IOMMU unit. The 12-byte tail is a union: AMD units use
// AMDBDF..AMDFeatures, TI PVU units use TLBBase and TLBSize; the other
// kinds leave it zero.
type IOMMU struct {
	Type IOMMUType
	Base uint64
	Size uint32

	AMDBDF      uint16
	AMDBaseCap  uint8
	AMDMSICap   uint8
	AMDFeatures uint32

	TLBBase uint64
	TLBSize uint32
}

// ARMPlatform is the arm/arm64 view of the platform data.
type ARMPlatform struct {
	MaintenanceIRQ uint8
	GICVersion     uint8
	GICDBase       uint64
	GICCBase       uint64
	GICHBase       uint64
	GICVBase       uint64
	GICRBase       uint64
}

// X86Platform is the x86 view of the platform data.
type X86Platform struct {
	PMTimerAddress    uint16
	APICMode          uint8
	VTDInterruptLimit uint32
	TSCkHz            uint32
	APICkHz           uint32
}

// System is a system configuration: hypervisor setup plus the root cell.
type System struct {
	Arch              Arch
	Flags             SystemFlags
	HypervisorMemory  MemRegion
	DebugConsole      Console
	PCIMMConfigBase   uint64
	PCIMMConfigEndBus uint8
	PCIIsVirtual      bool
	PCIDomain         uint16
	// IOMMUs holds up to MaxIOMMUUnits units; trailing all-zero units are
	// not kept.
	IOMMUs []IOMMU
	// Exactly one of ARM and X86 is used, chosen by Arch (ARM for ArchARM
	// and ArchARM64).
	ARM      ARMPlatform
	X86      X86Platform
	RootCell Cell
}

// String returns "x86", "arm", "arm64", or "architecture N" for an
// unknown value.
func (a Arch) String() string {
	switch a {
	case ArchX86:
		return "x86"
	case ArchARM:
		return "arm"
	case ArchARM64:
		return "arm64"
	}
	return fmt.Sprintf("architecture %d", uint8(a))
}

// FormatBDF renders a PCI bus/device/function as "bb:dd.f" (hex).
func FormatBDF(bdf uint16) string {
	return fmt.Sprintf("%02x:%02x.%x", bdf>>8, (bdf>>3)&0x1f, bdf&7)
}
