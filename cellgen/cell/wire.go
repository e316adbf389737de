package cell

// Wire layout of configuration revision 14: one Go struct per packed C
// record. encoding/binary reads and writes struct fields in order without
// alignment, so each struct is exactly its on-disk size (TestWireLayout
// checks sizes and offsets against the spec). Padding and reserved bytes
// are named fields, not "_", so the decoder can insist that they are zero.
// Every multi-byte field is little-endian on all Jailhouse targets.

// Record sizes in bytes.
const (
	cellDescSize     = 132
	memRegionSize    = 32
	cacheRegionSize  = 12
	irqchipSize      = 32
	pioRegionSize    = 4
	pciDeviceSize    = 56
	pciCapSize       = 8
	streamIDSize     = 4
	iommuSize        = 28
	iommuUnionSize   = 12
	platformSize     = 44
	systemHeaderSize = 488
	// systemPrefixSize is the system header before the root cell
	// descriptor, i.e. where the root cell starts.
	systemPrefixSize = systemHeaderSize - cellDescSize
	nameFieldSize    = MaxNameLen + 1
)

// Offsets of the fields the decoder reports on.
const (
	offSignature  = 0
	offArch       = 5
	offRevision   = 6
	offName       = 8
	offCPUSetSize = 48

	offPCIIsVirtual = 85
	offIOMMUUnits   = 88
	offPlatform     = 312

	offPCIMSIFlags  = 35
	offCachePadding = 9
	offIOMMUUnion   = 16
	offARMPadding   = 2  // inside the platform union
	offX86Padding   = 3  // inside the platform union
	offX86Unused    = 16 // inside the platform union
)

type wireConsole struct {
	Address  uint64
	Size     uint32
	Type     uint16
	Flags    uint16
	Divider  uint32
	GateNr   uint32
	ClockReg uint64
}

type wireCellDesc struct {
	Signature       [5]byte
	Arch            uint8
	Revision        uint16
	Name            [nameFieldSize]byte
	ID              uint32
	Flags           uint32
	CPUSetSize      uint32
	NumMemRegions   uint32
	NumCacheRegions uint32
	NumIrqchips     uint32
	NumPIORegions   uint32
	NumPCIDevices   uint32
	NumPCICaps      uint32
	NumStreamIDs    uint32
	VPCIIrqBase     uint32
	CPUResetAddress uint64
	MsgReplyTimeout uint64
	Console         wireConsole
}

type wireMemRegion struct {
	PhysStart uint64
	VirtStart uint64
	Size      uint64
	Flags     uint64
}

type wireCacheRegion struct {
	Start   uint32
	Size    uint32
	Type    uint8
	Padding uint8
	Flags   uint16
}

type wireIrqchip struct {
	Address   uint64
	ID        uint32
	PinBase   uint32
	PinBitmap [4]uint32
}

type wirePIORegion struct {
	Base   uint16
	Length uint16
}

// wirePCIDevice starts BARMask at the unaligned offset 6.
type wirePCIDevice struct {
	Type              uint8
	IOMMU             uint8
	Domain            uint16
	BDF               uint16
	BARMask           [6]uint32
	CapsStart         uint16
	NumCaps           uint16
	NumMSIVectors     uint8
	MSIFlags          uint8 // bit 0: 64-bit, bit 1: maskable, rest reserved
	NumMSIXVectors    uint16
	MSIXRegionSize    uint16
	MSIXAddress       uint64
	ShmemRegionsStart uint32
	ShmemDevID        uint8
	ShmemPeers        uint8
	ShmemProtocol     uint16
}

// MSI flag bits of wirePCIDevice.MSIFlags.
const (
	msiFlag64Bits    = 0x01
	msiFlagMaskable  = 0x02
	msiFlagsReserved = 0xfc
)

type wirePCICap struct {
	ID    uint16
	Start uint16
	Len   uint16
	Flags uint16
}

// wireIOMMU keeps its 12-byte union raw; wireIOMMUAMD and wireIOMMUPVU
// are its two views, chosen by Type.
type wireIOMMU struct {
	Type  uint32
	Base  uint64
	Size  uint32
	Union [iommuUnionSize]byte
}

type wireIOMMUAMD struct {
	BDF      uint16
	BaseCap  uint8
	MSICap   uint8
	Features uint32
	Unused   [4]byte // the AMD view is 8 bytes of the 12-byte union
}

type wireIOMMUPVU struct {
	TLBBase uint64
	TLBSize uint32
}

// wireARMPlatform and wireX86Platform are the two views of the 44-byte
// platform union of the system header.
type wireARMPlatform struct {
	MaintenanceIRQ uint8
	GICVersion     uint8
	Padding        [2]byte
	GICDBase       uint64
	GICCBase       uint64
	GICHBase       uint64
	GICVBase       uint64
	GICRBase       uint64
}

type wireX86Platform struct {
	PMTimerAddress    uint16
	APICMode          uint8
	Padding           uint8
	VTDInterruptLimit uint32
	TSCkHz            uint32
	APICkHz           uint32
	Unused            [28]byte // the x86 view is 16 bytes of the 44-byte union
}

type wireSystem struct {
	Signature         [5]byte
	Arch              uint8
	Revision          uint16
	Flags             uint32
	HypervisorMemory  wireMemRegion
	DebugConsole      wireConsole
	PCIMMConfigBase   uint64
	PCIMMConfigEndBus uint8
	PCIIsVirtual      uint8
	PCIDomain         uint16
	IOMMUs            [MaxIOMMUUnits]wireIOMMU
	Platform          [platformSize]byte
	RootCell          wireCellDesc
}

// field names a byte range of a header for error messages.
type field struct {
	off  int
	name string
}

// cellDescFields and systemFields list the header members by offset, in
// the upstream C spelling.
var (
	cellDescFields = [...]field{
		{0, "signature"}, {5, "architecture"}, {6, "revision"}, {8, "name"},
		{40, "id"}, {44, "flags"}, {48, "cpu_set_size"},
		{52, "num_memory_regions"}, {56, "num_cache_regions"}, {60, "num_irqchips"},
		{64, "num_pio_regions"}, {68, "num_pci_devices"}, {72, "num_pci_caps"},
		{76, "num_stream_ids"}, {80, "vpci_irq_base"}, {84, "cpu_reset_address"},
		{92, "msg_reply_timeout"}, {100, "console"},
	}
	systemFields = [...]field{
		{0, "signature"}, {5, "architecture"}, {6, "revision"}, {8, "flags"},
		{12, "hypervisor_memory"}, {44, "debug_console"}, {76, "pci_mmconfig_base"},
		{84, "pci_mmconfig_end_bus"}, {85, "pci_is_virtual"}, {86, "pci_domain"},
		{88, "iommu_units"}, {312, "platform"},
	}
)

// headerField names the member at offset off of a cell descriptor, or of
// a system header when system is set.
func headerField(off int, system bool) string {
	prefix := ""
	if system {
		if off < systemPrefixSize {
			return lastField(systemFields[:], off)
		}
		off -= systemPrefixSize
		prefix = "root_cell."
	}
	return prefix + lastField(cellDescFields[:], off)
}

func lastField(fields []field, off int) string {
	name := fields[0].name
	for _, f := range fields {
		if f.off <= off {
			name = f.name
		}
	}
	return name
}

func consoleToWire(c Console) wireConsole {
	return wireConsole{
		Address: c.Address, Size: c.Size, Type: uint16(c.Type), Flags: uint16(c.Flags),
		Divider: c.Divider, GateNr: c.GateNr, ClockReg: c.ClockReg,
	}
}

func (w wireConsole) model() Console {
	return Console{
		Address: w.Address, Size: w.Size, Type: ConsoleType(w.Type), Flags: ConsoleFlags(w.Flags),
		Divider: w.Divider, GateNr: w.GateNr, ClockReg: w.ClockReg,
	}
}

func memRegionToWire(m MemRegion) wireMemRegion {
	return wireMemRegion{PhysStart: m.PhysStart, VirtStart: m.VirtStart, Size: m.Size, Flags: uint64(m.Flags)}
}

func (w wireMemRegion) model() MemRegion {
	return MemRegion{PhysStart: w.PhysStart, VirtStart: w.VirtStart, Size: w.Size, Flags: MemFlags(w.Flags)}
}

func cacheRegionToWire(c CacheRegion) wireCacheRegion {
	return wireCacheRegion{Start: c.Start, Size: c.Size, Type: c.Type, Flags: c.Flags}
}

func (w wireCacheRegion) model() CacheRegion {
	return CacheRegion{Start: w.Start, Size: w.Size, Type: w.Type, Flags: w.Flags}
}

func irqchipToWire(i Irqchip) wireIrqchip {
	return wireIrqchip{Address: i.Address, ID: i.ID, PinBase: i.PinBase, PinBitmap: i.PinBitmap}
}

func (w wireIrqchip) model() Irqchip {
	return Irqchip{Address: w.Address, ID: w.ID, PinBase: w.PinBase, PinBitmap: w.PinBitmap}
}

func pioRegionToWire(p PIORegion) wirePIORegion { return wirePIORegion{Base: p.Base, Length: p.Length} }

func (w wirePIORegion) model() PIORegion { return PIORegion{Base: w.Base, Length: w.Length} }

func pciDeviceToWire(d PCIDevice) wirePCIDevice {
	var flags uint8
	if d.MSI64Bits {
		flags |= msiFlag64Bits
	}
	if d.MSIMaskable {
		flags |= msiFlagMaskable
	}
	return wirePCIDevice{
		Type: uint8(d.Type), IOMMU: d.IOMMU, Domain: d.Domain, BDF: d.BDF, BARMask: d.BARMask,
		CapsStart: d.CapsStart, NumCaps: d.NumCaps, NumMSIVectors: d.NumMSIVectors, MSIFlags: flags,
		NumMSIXVectors: d.NumMSIXVectors, MSIXRegionSize: d.MSIXRegionSize, MSIXAddress: d.MSIXAddress,
		ShmemRegionsStart: d.ShmemRegionsStart, ShmemDevID: d.ShmemDevID, ShmemPeers: d.ShmemPeers,
		ShmemProtocol: uint16(d.ShmemProtocol),
	}
}

// model ignores the reserved MSI flag bits; the decoder rejects them first.
func (w wirePCIDevice) model() PCIDevice {
	return PCIDevice{
		Type: PCIType(w.Type), IOMMU: w.IOMMU, Domain: w.Domain, BDF: w.BDF, BARMask: w.BARMask,
		CapsStart: w.CapsStart, NumCaps: w.NumCaps, NumMSIVectors: w.NumMSIVectors,
		MSI64Bits: w.MSIFlags&msiFlag64Bits != 0, MSIMaskable: w.MSIFlags&msiFlagMaskable != 0,
		NumMSIXVectors: w.NumMSIXVectors, MSIXRegionSize: w.MSIXRegionSize, MSIXAddress: w.MSIXAddress,
		ShmemRegionsStart: w.ShmemRegionsStart, ShmemDevID: w.ShmemDevID, ShmemPeers: w.ShmemPeers,
		ShmemProtocol: ShmemProtocol(w.ShmemProtocol),
	}
}

func pciCapToWire(c PCICap) wirePCICap {
	return wirePCICap{ID: c.ID, Start: c.Start, Len: c.Len, Flags: c.Flags}
}

func (w wirePCICap) model() PCICap {
	return PCICap{ID: w.ID, Start: w.Start, Len: w.Len, Flags: w.Flags}
}

func (p ARMPlatform) wire() wireARMPlatform {
	return wireARMPlatform{
		MaintenanceIRQ: p.MaintenanceIRQ, GICVersion: p.GICVersion, GICDBase: p.GICDBase,
		GICCBase: p.GICCBase, GICHBase: p.GICHBase, GICVBase: p.GICVBase, GICRBase: p.GICRBase,
	}
}

func (w wireARMPlatform) model() ARMPlatform {
	return ARMPlatform{
		MaintenanceIRQ: w.MaintenanceIRQ, GICVersion: w.GICVersion, GICDBase: w.GICDBase,
		GICCBase: w.GICCBase, GICHBase: w.GICHBase, GICVBase: w.GICVBase, GICRBase: w.GICRBase,
	}
}

func (p X86Platform) wire() wireX86Platform {
	return wireX86Platform{
		PMTimerAddress: p.PMTimerAddress, APICMode: p.APICMode,
		VTDInterruptLimit: p.VTDInterruptLimit, TSCkHz: p.TSCkHz, APICkHz: p.APICkHz,
	}
}

func (w wireX86Platform) model() X86Platform {
	return X86Platform{
		PMTimerAddress: w.PMTimerAddress, APICMode: w.APICMode,
		VTDInterruptLimit: w.VTDInterruptLimit, TSCkHz: w.TSCkHz, APICkHz: w.APICkHz,
	}
}
