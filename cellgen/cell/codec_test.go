package cell

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

var update = flag.Bool("update", false, "rewrite the golden .cell files in testdata")

// ivshmem builds an ivshmem PCI device entry with the INTX BAR mask.
func ivshmem(domain, bdf uint16, regionsStart uint32, devID, peers uint8, proto ShmemProtocol) PCIDevice {
	return PCIDevice{
		Type: PCIIvshmem, Domain: domain, BDF: bdf, BARMask: BARMaskINTX,
		ShmemRegionsStart: regionsStart, ShmemDevID: devID, ShmemPeers: peers, ShmemProtocol: proto,
	}
}

// same is an identity-mapped memory region.
func same(addr, size uint64, flags MemFlags) MemRegion {
	return MemRegion{PhysStart: addr, VirtStart: addr, Size: size, Flags: flags}
}

const (
	rRS   = MemRead | MemRootShared
	rwRS  = MemRead | MemWrite | MemRootShared
	rwIO  = MemRead | MemWrite | MemIO
	rwX   = MemRead | MemWrite | MemExecute
	rwxL  = rwX | MemLoadable
	rwCom = MemRead | MemWrite | MemCommRegion
)

var pl011 = Console{Address: 0x09000000, Type: ConsolePL011, Flags: ConsoleAccessMMIO | ConsoleRegDist4}

// qemuArm64System is upstream configs/arm64/qemu-arm64.c (jailhouse-abi.md §7.1).
func qemuArm64System() *System {
	return &System{
		Arch:             ArchARM64,
		Flags:            SysVirtualDebugConsole,
		HypervisorMemory: MemRegion{PhysStart: 0x7fc00000, Size: 0x400000},
		DebugConsole:     Console{Address: 0x09000000, Size: 0x1000, Type: ConsolePL011, Flags: ConsoleAccessMMIO | ConsoleRegDist4},
		PCIMMConfigBase:  0x08e00000,
		PCIIsVirtual:     true,
		PCIDomain:        1,
		ARM:              ARMPlatform{MaintenanceIRQ: 25, GICVersion: 3, GICDBase: 0x08000000, GICRBase: 0x080a0000},
		RootCell: Cell{
			Name: "qemu-arm64",
			CPUs: cpuset.Range(0, 15),
			MemRegions: []MemRegion{
				same(0x7faf0000, 0x1000, MemRead),
				same(0x7faf1000, 0x9000, MemRead|MemWrite),
				same(0x7fafa000, 0x2000, MemRead|MemWrite),
				same(0x7fafc000, 0x2000, MemRead),
				same(0x7fafe000, 0x2000, MemRead),
				same(0x7fb00000, 0x1000, rRS),
				{},
				same(0x7fb01000, 0x7f000, rwRS),
				same(0x7fb80000, 0x7f000, rRS),
				same(0x09000000, 0x37000000, rwIO),
				same(0x40000000, 0x3fa10000, rwX),
				same(0x4010000000, 0x10000000, rwIO),
			},
			Irqchips: []Irqchip{{Address: 0x08000000, PinBase: 32,
				PinBitmap: [4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}},
			PCIDevices: []PCIDevice{
				ivshmem(1, 0x00, 0, 0, 3, ShmemProtoUndefined),
				ivshmem(1, 0x08, 5, 0, 2, ShmemProtoVETH),
			},
			VPCIIrqBase: 96,
		},
	}
}

// qemuArm64InmateDemo is upstream configs/arm64/qemu-arm64-inmate-demo.c (§7.2).
func qemuArm64InmateDemo() *Cell {
	return &Cell{
		Arch:  ArchARM64,
		Name:  "inmate-demo",
		Flags: CellPassiveCommReg,
		CPUs:  cpuset.Of(1),
		MemRegions: []MemRegion{
			same(0x7faf0000, 0x1000, rRS),
			same(0x7faf1000, 0x9000, rwRS),
			same(0x7fafa000, 0x2000, rRS),
			same(0x7fafc000, 0x2000, rwRS),
			same(0x7fafe000, 0x2000, rRS),
			same(0x09000000, 0x1000, rwIO|MemRootShared),
			{PhysStart: 0x7fa00000, Size: 0x10000, Flags: rwxL},
			{VirtStart: 0x80000000, Size: 0x1000, Flags: rwCom},
		},
		Irqchips:    []Irqchip{{Address: 0x08000000, PinBase: 32, PinBitmap: [4]uint32{0, 0, 0, 1 << 16}}},
		PCIDevices:  []PCIDevice{ivshmem(1, 0x00, 0, 1, 3, ShmemProtoUndefined)},
		VPCIIrqBase: 112,
		Console:     pl011,
	}
}

// qemuArm64LinuxDemo is upstream configs/arm64/qemu-arm64-linux-demo.c (§7.3).
func qemuArm64LinuxDemo() *Cell {
	return &Cell{
		Arch:  ArchARM64,
		Name:  "qemu-arm64-linux-demo",
		Flags: CellPassiveCommReg | CellVirtualConsolePermitted,
		CPUs:  cpuset.Of(2, 3),
		MemRegions: []MemRegion{
			same(0x7faf0000, 0x1000, rRS),
			same(0x7faf1000, 0x9000, rwRS),
			same(0x7fafa000, 0x2000, rRS),
			same(0x7fafc000, 0x2000, rRS),
			same(0x7fafe000, 0x2000, rwRS),
			same(0x7fb00000, 0x1000, rRS),
			{},
			same(0x7fb01000, 0x7f000, rRS),
			same(0x7fb80000, 0x7f000, rwRS),
			same(0x09000000, 0x1000, rwIO|MemRootShared),
			{PhysStart: 0x7f900000, Size: 0x10000, Flags: rwxL},
			same(0x70000000, 0x8000000, rwxL|MemDMA),
			{VirtStart: 0x80000000, Size: 0x1000, Flags: rwCom},
		},
		Irqchips: []Irqchip{{Address: 0x08000000, PinBase: 32, PinBitmap: [4]uint32{0x2, 0, 0, 0x3000}}},
		PCIDevices: []PCIDevice{
			ivshmem(1, 0x00, 0, 2, 3, ShmemProtoUndefined),
			ivshmem(0, 0x08, 5, 1, 2, ShmemProtoVETH),
		},
		VPCIIrqBase: 108,
		Console:     pl011,
	}
}

// qemuArm64ZephyrDemo is upstream configs/arm64/qemu-arm64-zephyr-demo.c (§7.4).
func qemuArm64ZephyrDemo() *Cell {
	c := qemuArm64LinuxDemo()
	c.Name = "qemu-arm64-zephyr-demo"
	c.CPUResetAddress = 0x70000000
	c.CPUs = cpuset.Of(0, 1)
	return c
}

// x86AllFields is a made-up x86 system that sets every field the arm64
// reference configs leave zero: cache and PIO regions (whose odd count
// misaligns the PCI array), PCI capabilities, MSI bits, stream ids, AMD and
// PVU IOMMU unions, a zero IOMMU slot in the middle and a non-minimal CPU
// bitmap size.
func x86AllFields() *System {
	return &System{
		Arch:             ArchX86,
		Flags:            SysVirtualDebugConsole,
		HypervisorMemory: MemRegion{PhysStart: 0x3a000000, VirtStart: 0x1, Size: 0x600000, Flags: 0x2},
		DebugConsole: Console{Address: 0x3f8, Size: 8, Type: Console8250, Flags: ConsoleRegDist4 | ConsoleInvertedClock,
			Divider: 1, GateNr: 7, ClockReg: 0xfeedf00d},
		PCIMMConfigBase:   0xb0000000,
		PCIMMConfigEndBus: 0xff,
		PCIDomain:         0xffff,
		IOMMUs: []IOMMU{
			{Type: IOMMUAMD, Base: 0xfeb80000, Size: 0x80000, AMDBDF: 0x02, AMDBaseCap: 0x40, AMDMSICap: 0x54, AMDFeatures: 0x80048824},
			{},
			{Type: IOMMUPVU, Base: 0x30f80000, Size: 0x1000, TLBBase: 0x36000000, TLBSize: 0x10000},
			{Type: IOMMUIntel, Base: 0xfed90000, Size: 0x1000},
		},
		X86: X86Platform{PMTimerAddress: 0x608, APICMode: APICModeX2APIC, VTDInterruptLimit: 256, TSCkHz: 2494000, APICkHz: 1000000},
		RootCell: Cell{
			Name:         "RootCell-x86",
			ID:           3,
			Flags:        CellTestDevice,
			CPUs:         cpuset.Of(1, 3),
			CPUSetSize:   16,
			MemRegions:   []MemRegion{same(0, 0xa0000, rwX|MemDMA)},
			CacheRegions: []CacheRegion{{Start: 0, Size: 2, Type: CacheL3, Flags: CacheFlagRootShared}},
			Irqchips:     []Irqchip{{Address: 0xfec00000, ID: 0xff00, PinBase: 0, PinBitmap: [4]uint32{0xffffff}}},
			PIORegions:   []PIORegion{{Base: 0x40, Length: 4}, {Base: 0x60, Length: 2}, {Base: 0xcf8, Length: 8}},
			PCIDevices: []PCIDevice{{
				Type: PCIDeviceType, IOMMU: 1, Domain: 0, BDF: 0xf8, BARMask: [6]uint32{0xffffc000, 1, 2, 3, 4, 5},
				CapsStart: 0, NumCaps: 2, NumMSIVectors: 1, MSI64Bits: true, MSIMaskable: true,
				NumMSIXVectors: 3, MSIXRegionSize: 0x1000, MSIXAddress: 0xfebf0000,
			}},
			PCICaps:         []PCICap{{ID: 0x05, Start: 0x50, Len: 14, Flags: PCICapFlagWrite}, {ID: 0x10 | PCICapExtended, Start: 0x100, Len: 4}},
			StreamIDs:       []uint32{0x12, 0x7fff0001},
			VPCIIrqBase:     0,
			CPUResetAddress: 0xfffff000,
			MsgReplyTimeout: 100,
		},
	}
}

func TestWireLayout(t *testing.T) {
	sizes := []struct {
		name string
		v    any
		want int
	}{
		{"console", wireConsole{}, 32},
		{"cell descriptor", wireCellDesc{}, 132},
		{"memory region", wireMemRegion{}, 32},
		{"cache region", wireCacheRegion{}, 12},
		{"irqchip", wireIrqchip{}, 32},
		{"PIO region", wirePIORegion{}, 4},
		{"PCI device", wirePCIDevice{}, 56},
		{"PCI capability", wirePCICap{}, 8},
		{"IOMMU unit", wireIOMMU{}, 28},
		{"IOMMU AMD view", wireIOMMUAMD{}, 12},
		{"IOMMU PVU view", wireIOMMUPVU{}, 12},
		{"arm platform view", wireARMPlatform{}, 44},
		{"x86 platform view", wireX86Platform{}, 44},
		{"system header", wireSystem{}, 488},
	}
	for _, tt := range sizes {
		t.Run("size/"+tt.name, func(t *testing.T) {
			if got := binary.Size(tt.v); got != tt.want {
				t.Errorf("binary.Size = %d, spec says %d", got, tt.want)
			}
		})
	}

	// Offsets from jailhouse-abi.md §1.3-§1.6.
	offsets := []struct {
		v     any
		field string
		want  int
	}{
		{wireConsole{}, "Type", 12},
		{wireConsole{}, "Flags", 14},
		{wireConsole{}, "Divider", 16},
		{wireConsole{}, "ClockReg", 24},
		{wireCellDesc{}, "Arch", 5},
		{wireCellDesc{}, "Revision", 6},
		{wireCellDesc{}, "Name", 8},
		{wireCellDesc{}, "ID", 40},
		{wireCellDesc{}, "Flags", 44},
		{wireCellDesc{}, "CPUSetSize", 48},
		{wireCellDesc{}, "NumMemRegions", 52},
		{wireCellDesc{}, "NumPCIDevices", 68},
		{wireCellDesc{}, "NumStreamIDs", 76},
		{wireCellDesc{}, "VPCIIrqBase", 80},
		{wireCellDesc{}, "CPUResetAddress", 84},
		{wireCellDesc{}, "MsgReplyTimeout", 92},
		{wireCellDesc{}, "Console", 100},
		{wireCacheRegion{}, "Type", 8},
		{wireCacheRegion{}, "Padding", 9},
		{wireCacheRegion{}, "Flags", 10},
		{wireIrqchip{}, "PinBase", 12},
		{wireIrqchip{}, "PinBitmap", 16},
		{wirePIORegion{}, "Length", 2},
		{wirePCIDevice{}, "BDF", 4},
		{wirePCIDevice{}, "BARMask", 6},
		{wirePCIDevice{}, "CapsStart", 30},
		{wirePCIDevice{}, "NumMSIVectors", 34},
		{wirePCIDevice{}, "MSIFlags", 35},
		{wirePCIDevice{}, "NumMSIXVectors", 36},
		{wirePCIDevice{}, "MSIXAddress", 40},
		{wirePCIDevice{}, "ShmemRegionsStart", 48},
		{wirePCIDevice{}, "ShmemDevID", 52},
		{wirePCIDevice{}, "ShmemProtocol", 54},
		{wirePCICap{}, "Flags", 6},
		{wireIOMMU{}, "Base", 4},
		{wireIOMMU{}, "Size", 12},
		{wireIOMMU{}, "Union", 16},
		{wireIOMMUAMD{}, "BaseCap", 2},
		{wireIOMMUAMD{}, "MSICap", 3},
		{wireIOMMUAMD{}, "Features", 4},
		{wireIOMMUPVU{}, "TLBSize", 8},
		{wireARMPlatform{}, "GICVersion", 1},
		{wireARMPlatform{}, "Padding", 2},
		{wireARMPlatform{}, "GICDBase", 4},
		{wireARMPlatform{}, "GICRBase", 36},
		{wireX86Platform{}, "APICMode", 2},
		{wireX86Platform{}, "Padding", 3},
		{wireX86Platform{}, "VTDInterruptLimit", 4},
		{wireX86Platform{}, "TSCkHz", 8},
		{wireX86Platform{}, "APICkHz", 12},
		{wireSystem{}, "Flags", 8},
		{wireSystem{}, "HypervisorMemory", 12},
		{wireSystem{}, "DebugConsole", 44},
		{wireSystem{}, "PCIMMConfigBase", 76},
		{wireSystem{}, "PCIMMConfigEndBus", 84},
		{wireSystem{}, "PCIIsVirtual", 85},
		{wireSystem{}, "PCIDomain", 86},
		{wireSystem{}, "IOMMUs", 88},
		{wireSystem{}, "Platform", 312},
		{wireSystem{}, "RootCell", 356},
	}
	for _, tt := range offsets {
		name := reflect.TypeOf(tt.v).Name() + "." + tt.field
		t.Run("offset/"+name, func(t *testing.T) {
			if got := packedOffset(t, tt.v, tt.field); got != tt.want {
				t.Errorf("packed offset = %d, spec says %d", got, tt.want)
			}
		})
	}

	// The decoder's error offsets must agree with the records.
	consts := []struct {
		name      string
		got, want int
	}{
		{"offName", offName, packedOffset(t, wireCellDesc{}, "Name")},
		{"offCPUSetSize", offCPUSetSize, packedOffset(t, wireCellDesc{}, "CPUSetSize")},
		{"offPCIIsVirtual", offPCIIsVirtual, packedOffset(t, wireSystem{}, "PCIIsVirtual")},
		{"offIOMMUUnits", offIOMMUUnits, packedOffset(t, wireSystem{}, "IOMMUs")},
		{"offPlatform", offPlatform, packedOffset(t, wireSystem{}, "Platform")},
		{"offPCIMSIFlags", offPCIMSIFlags, packedOffset(t, wirePCIDevice{}, "MSIFlags")},
		{"offCachePadding", offCachePadding, packedOffset(t, wireCacheRegion{}, "Padding")},
		{"offIOMMUUnion", offIOMMUUnion, packedOffset(t, wireIOMMU{}, "Union")},
		{"offARMPadding", offARMPadding, packedOffset(t, wireARMPlatform{}, "Padding")},
		{"offX86Padding", offX86Padding, packedOffset(t, wireX86Platform{}, "Padding")},
		{"offX86Unused", offX86Unused, packedOffset(t, wireX86Platform{}, "Unused")},
		{"systemPrefixSize", systemPrefixSize, packedOffset(t, wireSystem{}, "RootCell")},
	}
	for _, c := range consts {
		if c.got != c.want {
			t.Errorf("%s = %d, record layout says %d", c.name, c.got, c.want)
		}
	}
}

// packedOffset is the byte offset of a top-level field of a wire struct as
// encoding/binary lays it out (no alignment).
func packedOffset(t *testing.T, v any, field string) int {
	t.Helper()
	rt := reflect.TypeOf(v)
	off := 0
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Name == field {
			return off
		}
		off += binary.Size(reflect.Zero(f.Type).Interface())
	}
	t.Fatalf("%s has no field %s", rt.Name(), field)
	return -1
}

type landmark struct {
	off   int
	bytes string // hex, spaces allowed
}

func TestMarshalAcceptanceVectors(t *testing.T) {
	tests := []struct {
		name      string
		marshal   func() ([]byte, error)
		size      int
		sha256    string
		landmarks []landmark
	}{
		{
			name: "qemu-arm64", marshal: qemuArm64System().Marshal, size: 1024,
			sha256: "5618a9ea73b60d48bfbc608e04e2ec0f094021d1e70d515d747412aa8e7f1cb6",
			landmarks: []landmark{
				{0x000, "4a 48 53 59 53 02 0e 00"},
				{0x008, "01 00 00 00"},
				{0x00c, "00 00 c0 7f 00 00 00 00"},
				{0x01c, "00 00 40 00 00 00 00 00"},
				{0x02c, "00 00 00 09"},
				{0x034, "00 10 00 00 03 00 03 00"},
				{0x04c, "00 00 e0 08 00 00 00 00 00 01 01 00"},
				{0x138, "19 03 00 00"},
				{0x13c, "00 00 00 08"},
				{0x15c, "00 00 0a 08"},
				{0x164, "00 00 00 00 00 00 00 00"},
				{0x16c, "71 65 6d 75 2d 61 72 6d 36 34 00"},
				{0x194, "08 00 00 00 0c 00 00 00"},
				{0x1a0, "01 00 00 00"},
				{0x1a8, "02 00 00 00"},
				{0x1b4, "60 00 00 00"},
				{0x1e8, "ff ff 00 00 00 00 00 00"},
				{0x1f0, "00 00 af 7f"},            // first memory region
				{0x370, "00 00 00 08"},            // irqchip
				{0x390 + 6, "00 f0 ff ff"},        // PCI device 0 bar_mask[0] at unaligned 6
				{0x390 + 56, "03 00 01 00 08 00"}, // PCI device 1: ivshmem, domain 1, bdf 00:01.0
			},
		},
		{
			name: "qemu-arm64-inmate-demo", marshal: qemuArm64InmateDemo().Marshal, size: 484,
			sha256: "408ed108b5ed17669c40d2685497f4d5af01f6e923f869ce4254078203255cff",
			landmarks: []landmark{
				{0x000, "4a 48 43 4c 4c 02 0e 00"},
				{0x008, "69 6e 6d 61 74 65 2d 64 65 6d 6f 00"},
				{0x084, "02 00 00 00 00 00 00 00"},
				{0x08c, "00 00 af 7f"},
				{0x18c, "00 00 00 08"},
				{0x1ac, "03 00 01 00 00 00 00 f0 ff ff"},
			},
		},
		{
			name: "qemu-arm64-linux-demo", marshal: qemuArm64LinuxDemo().Marshal, size: 700,
			sha256:    "571a35bbe11b6f6ebf1ccdf84ca16aa8eee49057b5892204bf915d3df7a6ce38",
			landmarks: []landmark{{0x084, "0c 00"}, {0x22c, "00 00 00 08"}, {0x24c, "03 00 01 00"}, {0x24c + 56, "03 00 00 00 08 00"}},
		},
		{
			name: "qemu-arm64-zephyr-demo", marshal: qemuArm64ZephyrDemo().Marshal, size: 700,
			sha256:    "e0ac3d7af8ac46155bf83ff38338d366b9641fa16b18e153309df07593b8b1ff",
			landmarks: []landmark{{0x054, "00 00 00 70 00 00 00 00"}, {0x084, "03 00"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.marshal()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.size {
				t.Errorf("size = %d, want %d", len(got), tt.size)
			}
			sum := sha256.Sum256(got)
			if h := hex.EncodeToString(sum[:]); h != tt.sha256 {
				t.Errorf("sha256 = %s, want %s", h, tt.sha256)
			}
			for _, lm := range tt.landmarks {
				want, err := hex.DecodeString(strings.ReplaceAll(lm.bytes, " ", ""))
				if err != nil {
					t.Fatal(err)
				}
				if end := lm.off + len(want); end > len(got) || !bytes.Equal(got[lm.off:end], want) {
					t.Errorf("bytes at %#x = % x, want % x", lm.off, got[lm.off:min(end, len(got))], want)
				}
			}
		})
	}
}

// checkGolden compares b with testdata/name, or rewrites it with -update.
// The golden files also seed the fuzz targets.
func checkGolden(t *testing.T, name string, b []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("encoding differs from %s", path)
	}
}

func TestX86AllFieldsLayout(t *testing.T) {
	s := x86AllFields()
	got, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// root arrays: bitmap 16, 1 mem, 1 cache, 1 irqchip, 3 PIO, 1 PCI, 2 caps, 2 stream ids
	if want := 488 + 16 + 32 + 12 + 32 + 12 + 56 + 16 + 8; len(got) != want || s.Size() != want {
		t.Fatalf("len = %d, Size = %d, want %d", len(got), s.Size(), want)
	}
	pci := 488 + 16 + 32 + 12 + 32 + 12
	landmarks := []landmark{
		{0x005, "00 0e 00"}, // x86, revision 14
		{88, "01 00 00 00 00 00 b8 fe 00 00 00 00 00 00 08 00"},  // AMD unit type, base, size
		{88 + 16, "02 00 40 54 24 88 04 80 00 00 00 00"},         // AMD union: bdf, base_cap, msi_cap, features, zero
		{88 + 28, strings.Repeat("00 ", 28)},                     // empty slot 1
		{88 + 2*28 + 16, "00 00 00 36 00 00 00 00 00 00 01 00"},  // PVU union: tlb_base, tlb_size
		{312, "08 06 02 00 00 01 00 00 30 0e 26 00 40 42 0f 00"}, // x86 view
		{356 + 40, "03 00 00 00 02 00 00 00 10 00 00 00"},        // id, flags, cpu_set_size 16
		{488, "0a 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
		{488 + 16 + 32, "00 00 00 00 02 00 00 00 03 00 01 00"}, // cache region
		{pci - 12, "40 00 04 00 60 00 02 00 f8 0c 08 00"},      // PIO regions
		{pci, "01 01 00 00 f8 00 00 c0 ff ff 01 00 00 00"},     // PCI device, bar_mask at 6
		{pci + 34, "01 03 03 00 00 10 00 00 bf fe"},            // MSI: 1 vector, 64-bit|maskable, 3 MSI-X
		{pci + 56, "05 00 50 00 0e 00 01 00 10 80 00 01 04 00 00 00"},
		{pci + 72, "12 00 00 00 01 00 ff 7f"},
	}
	for _, lm := range landmarks {
		want, err := hex.DecodeString(strings.ReplaceAll(lm.bytes, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if end := lm.off + len(want); end > len(got) || !bytes.Equal(got[lm.off:end], want) {
			t.Errorf("bytes at %#x = % x, want % x", lm.off, got[lm.off:min(end, len(got))], want)
		}
	}
	checkGolden(t, "x86-all-fields.cell", got)
}

// models returns every test model as a named encode/decode pair.
type codecCase struct {
	name      string
	model     any
	marshal   func() ([]byte, error)
	unmarshal func([]byte) (any, error)
}

func unmarshalCellAny(b []byte) (any, error)   { return UnmarshalCell(b) }
func unmarshalSystemAny(b []byte) (any, error) { return UnmarshalSystem(b) }

func codecCases() []codecCase {
	sys, x86 := qemuArm64System(), x86AllFields()
	inmate, linux, zephyr := qemuArm64InmateDemo(), qemuArm64LinuxDemo(), qemuArm64ZephyrDemo()
	x86cell := x86.RootCell
	x86cell.Name = "x86-cell"
	x86cell.Arch = ArchX86
	return []codecCase{
		{"qemu-arm64", sys, sys.Marshal, unmarshalSystemAny},
		{"x86-all-fields", x86, x86.Marshal, unmarshalSystemAny},
		{"qemu-arm64-inmate-demo", inmate, inmate.Marshal, unmarshalCellAny},
		{"qemu-arm64-linux-demo", linux, linux.Marshal, unmarshalCellAny},
		{"qemu-arm64-zephyr-demo", zephyr, zephyr.Marshal, unmarshalCellAny},
		{"x86-cell", &x86cell, x86cell.Marshal, unmarshalCellAny},
	}
}

func TestUnmarshalRoundTrip(t *testing.T) {
	for _, tc := range codecCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.model, got); diff != "" {
				t.Errorf("decoded model differs (-want +got):\n%s", diff)
			}
			var again []byte
			switch m := got.(type) {
			case *Cell:
				again, err = m.Marshal()
			case *System:
				again, err = m.Marshal()
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Error("re-encoding the decoded model changed the bytes")
			}
		})
	}
}

func TestSize(t *testing.T) {
	for _, tc := range codecCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.marshal()
			if err != nil {
				t.Fatal(err)
			}
			var size int
			switch m := tc.model.(type) {
			case *Cell:
				size = m.Size()
			case *System:
				size = m.Size()
			}
			if size != len(b) {
				t.Errorf("Size() = %d, Marshal wrote %d bytes", size, len(b))
			}
		})
	}
}

func TestMarshalRoot(t *testing.T) {
	s := qemuArm64System()
	s.RootCell.Arch = ArchARM64 // not stored in a system file
	s.RootCell.ID = 7           // stored as given
	sys, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.RootCell.MarshalRoot()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, sys[systemPrefixSize:]) {
		t.Errorf("MarshalRoot differs from the root cell part of System.Marshal")
	}
	if !bytes.Equal(root[:8], make([]byte, 8)) {
		t.Errorf("root cell signature/arch/revision = % x, want zeros", root[:8])
	}
	if id := binary.LittleEndian.Uint32(root[40:]); id != 7 {
		t.Errorf("root cell id = %d, want 7", id)
	}
	got, err := UnmarshalSystem(sys)
	if err != nil {
		t.Fatal(err)
	}
	if got.RootCell.Arch != 0 || got.RootCell.ID != 7 {
		t.Errorf("decoded root cell arch %d id %d, want 0 and 7", got.RootCell.Arch, got.RootCell.ID)
	}
}

func TestCPUSetSize(t *testing.T) {
	tests := []struct {
		name     string
		cpus     cpuset.Set
		setSize  uint32
		wantSize uint32 // stored cpu_set_size
		wantKept uint32 // CPUSetSize after decoding
	}{
		{"derived", cpuset.Of(1), 0, 8, 0},
		{"explicit minimum normalised", cpuset.Of(1), 8, 8, 0},
		{"explicit larger kept", cpuset.Of(1), 16, 16, 16},
		{"derived for CPU 64", cpuset.Of(64), 0, 16, 0},
		{"odd size kept", cpuset.Of(0), 4, 4, 4},
		{"empty set", cpuset.Set{}, 0, 8, 0},
		{"largest", cpuset.Of(cpuset.MaxCPU - 1), 0, 4096, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Cell{Arch: ArchARM64, Name: "c", CPUs: tt.cpus, CPUSetSize: tt.setSize}
			b, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got := binary.LittleEndian.Uint32(b[offCPUSetSize:]); got != tt.wantSize {
				t.Errorf("stored cpu_set_size = %d, want %d", got, tt.wantSize)
			}
			d, err := UnmarshalCell(b)
			if err != nil {
				t.Fatal(err)
			}
			if d.CPUSetSize != tt.wantKept || !d.CPUs.Equal(tt.cpus) {
				t.Errorf("decoded CPUSetSize %d CPUs %q, want %d %q", d.CPUSetSize, d.CPUs, tt.wantKept, tt.cpus)
			}
			if again, err := d.Marshal(); err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoding is not lossless (err %v)", err)
			}
		})
	}
}

func TestReproducible(t *testing.T) {
	for i, tc := range codecCases() {
		t.Run(tc.name, func(t *testing.T) {
			first, err := tc.marshal()
			if err != nil {
				t.Fatal(err)
			}
			second, err := tc.marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) {
				t.Error("two encodings of the same model differ")
			}
			first[0] ^= 0xff // a result must not alias the model or a later result
			third, err := tc.marshal()
			if err != nil || !bytes.Equal(third, second) {
				t.Errorf("changing an earlier result changed a later one (err %v)", err)
			}
			if diff := cmp.Diff(codecCases()[i].model, tc.model); diff != "" {
				t.Errorf("Marshal changed the model (-before +after):\n%s", diff)
			}
		})
	}
}

// mutate returns a copy of b with bytes written at off.
func mutate(b []byte, off int, v ...byte) []byte {
	out := bytes.Clone(b)
	copy(out[off:], v)
	return out
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func mustMarshal(t *testing.T, m interface{ Marshal() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnmarshalErrors(t *testing.T) {
	cell := mustMarshal(t, qemuArm64InmateDemo())
	sys := mustMarshal(t, qemuArm64System())
	x86 := mustMarshal(t, x86AllFields())
	x86Root := x86AllFields().RootCell
	x86Root.Arch = ArchX86
	x86Cell := mustMarshal(t, &x86Root)
	x86CachePad := 132 + 16 + 32 + offCachePadding

	allA := bytes.Repeat([]byte{'a'}, 32)
	const rootBase = systemPrefixSize
	tests := []struct {
		name      string
		system    bool
		data      []byte
		err       error
		off       int
		field     string
		msgSubstr string
	}{
		{"empty", false, nil, ErrTruncated, 0, "signature", "need 132 bytes, got 0"},
		{"4 bytes", false, []byte("JHCL"), ErrTruncated, 4, "signature", ""},
		{"signature only", false, []byte("JHCLL"), ErrTruncated, 5, "architecture", ""},
		{"4 foreign bytes", false, []byte("ABCD"), ErrBadSignature, 0, "signature", ""},
		{"JSON", false, []byte(`{"kind":"cell"}`), ErrBadSignature, 0, "signature", ""},
		{"system file as cell", false, sys, ErrBadSignature, 0, "signature", "system configuration (JHSYS), not a cell"},
		{"cell file as system", true, cell, ErrBadSignature, 0, "signature", "cell configuration (JHCLL), not a system"},
		{"revision 12/13 cell", false, mutate(cell, 0, []byte("JHCELL")...), ErrBadSignature, 0, "signature",
			"revision 12/13 configuration (signature JHCELL) is not supported: regenerate it for revision 14"},
		{"revision 12/13 system", true, mutate(sys, 0, []byte("JHSYST")...), ErrBadSignature, 0, "signature", "signature JHSYST"},
		{"revision 13", false, mutate(cell, 6, 13, 0), ErrBadRevision, 6, "revision", "revision 13"},
		{"revision 15 system", true, mutate(sys, 6, 15, 0), ErrBadRevision, 6, "revision", ""},
		{"arch 7", false, mutate(cell, 5, 7), ErrBadArch, 5, "architecture", "7"},
		{"arch 3 system", true, mutate(sys, 5, 3), ErrBadArch, 5, "architecture", ""},
		{"one trailing byte", false, append(bytes.Clone(cell), 0), ErrSizeMismatch, 484, "end of configuration", "1 trailing bytes"},
		{"trailing bytes system", true, append(bytes.Clone(sys), 1, 2, 3), ErrSizeMismatch, 1024, "end of configuration", "3 trailing bytes"},
		{"cpu_set_size 4097", false, mutate(cell, 48, le32(4097)...), ErrBadField, 48, "cpu_set_size", ""},
		{"cpu_set_size 0", false, mutate(cell, 48, le32(0)...), ErrBadField, 48, "cpu_set_size", ""},
		{"root cpu_set_size 4097", true, mutate(sys, rootBase+48, le32(4097)...), ErrBadField, 0x194, "root_cell.cpu_set_size", ""},
		{"one memory region too many", false, mutate(cell, 52, le32(9)...), ErrTruncated, 484, "pci_devices[0]", "need 516 bytes, got 484"},
		{"huge stream id count", false, mutate(cell, 76, le32(0xffffffff)...), ErrTruncated, 484, "stream_ids[0]", ""},
		{"huge root pci count", true, mutate(sys, rootBase+68, le32(0xffffffff)...), ErrTruncated, 1024, "root_cell.pci_devices[2]", ""},
		{"truncated system header", true, sys[:400], ErrTruncated, 400, "root_cell.flags", "need 488 bytes"},
		{"truncated cell descriptor", false, cell[:100], ErrTruncated, 100, "console", "need 132 bytes"},
		{"MSI reserved bit", false, mutate(cell, 0x1ac+35, 0x04), ErrBadField, 0x1ac + 35, "pci_devices[0].msi_flags", "reserved"},
		{"name without room", false, mutate(cell, 8, allA...), ErrBadField, 8 + 31, "name", "no NUL"},
		{"name garbage after NUL", false, mutate(cell, 8+20, 'x'), ErrBadField, 8 + 20, "name", "after the NUL"},
		{"name not UTF-8", false, mutate(cell, 8, 0xff), ErrBadField, 8, "name", "UTF-8"},
		{"root signature", true, mutate(sys, rootBase, 'J'), ErrBadField, rootBase, "root_cell.signature", "must be zero"},
		{"root architecture", true, mutate(sys, rootBase+5, 2), ErrBadField, rootBase + 5, "root_cell.architecture", ""},
		{"root revision", true, mutate(sys, rootBase+6, 14), ErrBadField, rootBase + 6, "root_cell.revision", ""},
		{"root name garbage", true, mutate(sys, rootBase+8+31, 1), ErrBadField, rootBase + 8 + 31, "root_cell.name", ""},
		{"pci_is_virtual 2", true, mutate(sys, 85, 2), ErrBadField, 85, "pci_is_virtual", ""},
		{"arm padding", true, mutate(sys, 315, 1), ErrBadField, 315, "platform.arm.padding", ""},
		{"union of SMMUv3 unit", true, mutate(mutate(sys, 88, le32(uint32(IOMMUSMMUv3))...), 88+16+3, 1), ErrBadField, 88 + 16 + 3, "iommu_units[0]", "no union fields"},
		{"x86 padding", true, mutate(x86, 315, 1), ErrBadField, 315, "platform.x86.padding", ""},
		{"x86 unused platform bytes", true, mutate(x86, 330, 1), ErrBadField, 330, "platform.x86", "unused"},
		{"AMD unused union bytes", true, mutate(x86, 88+16+8, 1), ErrBadField, 88 + 16 + 8, "iommu_units[0].amd", ""},
		{"x86 root cache padding", true, mutate(x86, rootBase+x86CachePad, 1), ErrBadField, rootBase + x86CachePad, "root_cell.cache_regions[0].padding", ""},
		{"cache padding", false, mutate(x86Cell, x86CachePad, 1), ErrBadField, x86CachePad, "cache_regions[0].padding", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.system {
				var s *System
				s, err = UnmarshalSystem(tt.data)
				if err == nil {
					t.Fatalf("decoded %+v, want an error", s)
				}
			} else {
				var c *Cell
				c, err = UnmarshalCell(tt.data)
				if err == nil {
					t.Fatalf("decoded %+v, want an error", c)
				}
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %q does not wrap %q", err, tt.err)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %q is not a *FormatError", err)
			}
			if fe.Offset != tt.off || fe.Field != tt.field {
				t.Errorf("error at %#x (%s), want %#x (%s): %v", fe.Offset, fe.Field, tt.off, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.msgSubstr) {
				t.Errorf("error %q does not contain %q", err, tt.msgSubstr)
			}
		})
	}
}

func TestFormatErrorText(t *testing.T) {
	e := &FormatError{Offset: 0x1a8, Field: "root_cell.num_pci_devices", Msg: "need 2000 bytes, got 1024", Err: ErrTruncated}
	if got, want := e.Error(), "offset 0x1a8 (root_cell.num_pci_devices): truncated configuration: need 2000 bytes, got 1024"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, ErrTruncated) {
		t.Error("errors.Is(ErrTruncated) is false")
	}
}

// TestUnmarshalTruncatedPrefixes cuts every valid file at every length: each
// prefix must fail as truncated, at the cut, without panicking.
func TestUnmarshalTruncatedPrefixes(t *testing.T) {
	for _, tc := range codecCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.marshal()
			if err != nil {
				t.Fatal(err)
			}
			for n := range len(b) {
				m, err := tc.unmarshal(b[:n])
				var fe *FormatError
				switch {
				case err == nil:
					t.Fatalf("prefix of %d bytes decoded to %+v", n, m)
				case !errors.Is(err, ErrTruncated) || !errors.As(err, &fe):
					t.Fatalf("prefix of %d bytes: %v, want a truncation FormatError", n, err)
				case fe.Offset != n:
					t.Fatalf("prefix of %d bytes: error offset %#x: %v", n, fe.Offset, err)
				}
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	withCell := func(f func(c *Cell)) func() ([]byte, error) {
		c := qemuArm64InmateDemo()
		f(c)
		return c.Marshal
	}
	withSystem := func(f func(s *System)) func() ([]byte, error) {
		s := qemuArm64System()
		f(s)
		return s.Marshal
	}
	tests := []struct {
		name    string
		marshal func() ([]byte, error)
		want    string
	}{
		{"name of 32 bytes", withCell(func(c *Cell) { c.Name = strings.Repeat("n", 32) }), "32 bytes long, at most 31"},
		{"name with NUL", withCell(func(c *Cell) { c.Name = "a\x00b" }), "NUL"},
		{"name not UTF-8", withCell(func(c *Cell) { c.Name = "\xff" }), "UTF-8"},
		{"cell arch 3", withCell(func(c *Cell) { c.Arch = 3 }), "architecture 3"},
		{"CPUSetSize 4097", withCell(func(c *Cell) { c.CPUSetSize = 4097 }), "larger than 4096"},
		{"CPU outside explicit size", withCell(func(c *Cell) { c.CPUSetSize = 8; c.CPUs = cpuset.Of(64) }), "does not fit"},
		{"system arch 9", withSystem(func(s *System) { s.Arch = 9 }), "architecture 9"},
		{"root name too long", withSystem(func(s *System) { s.RootCell.Name = strings.Repeat("r", 40) }), "root cell"},
		{"9 IOMMU units", withSystem(func(s *System) { s.IOMMUs = make([]IOMMU, 9) }), "9 IOMMU units"},
		{"AMD fields on PVU", withSystem(func(s *System) {
			s.IOMMUs = []IOMMU{{Type: IOMMUPVU, AMDFeatures: 1}}
		}), "IOMMU unit 0: AMD fields"},
		{"TLB fields on AMD", withSystem(func(s *System) {
			s.IOMMUs = []IOMMU{{}, {Type: IOMMUAMD, TLBSize: 1}}
		}), "IOMMU unit 1: TLB fields"},
		{"union fields on SMMUv3", withSystem(func(s *System) {
			s.IOMMUs = []IOMMU{{Type: IOMMUSMMUv3, AMDBDF: 1}}
		}), "type 3 has no AMD or TLB fields"},
		{"x86 data on arm", withSystem(func(s *System) { s.X86.TSCkHz = 1 }), "x86 platform data"},
		{"arm data on x86", withSystem(func(s *System) { s.Arch = ArchX86 }), "ARM platform data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.marshal()
			if err == nil {
				t.Fatalf("encoded %d bytes, want an error", len(b))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	sys, cell := qemuArm64System(), qemuArm64InmateDemo()
	b.Run("system", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sys.Marshal(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cell", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cell.Marshal(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUnmarshal(b *testing.B) {
	sys, err := qemuArm64System().Marshal()
	if err != nil {
		b.Fatal(err)
	}
	cell, err := qemuArm64InmateDemo().Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("system", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := UnmarshalSystem(sys); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cell", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := UnmarshalCell(cell); err != nil {
				b.Fatal(err)
			}
		}
	})
}
