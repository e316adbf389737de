package csrc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// compiler builds C sources the way upstream builds its configs (gcc -c,
// then objcopy -O binary) against the stand-in headers in testdata.
type compiler struct {
	gcc, objcopy, include, dir string
}

func newCompiler(t *testing.T) *compiler {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the configuration format is little-endian; this host compiler is not")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Skip("objcopy not installed")
	}
	inc, err := filepath.Abs(filepath.Join("testdata", "include"))
	if err != nil {
		t.Fatal(err)
	}
	return &compiler{gcc: gcc, objcopy: objcopy, include: inc, dir: t.TempDir()}
}

// build compiles src and returns the bytes of the config object.
func (c *compiler) build(t *testing.T, name string, src []byte) []byte {
	t.Helper()
	base := filepath.Join(c.dir, strings.NewReplacer("/", "_", " ", "_").Replace(name))
	if err := os.WriteFile(base+".c", src, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(prog string, args ...string) {
		t.Helper()
		out, err := exec.Command(prog, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s\nsource:\n%s", filepath.Base(prog), strings.Join(args, " "), err, out, numbered(src))
		}
	}
	run(c.gcc, "-c", "-Werror", "-Wall", "-Wextra", "-I", c.include, "-o", base+".o", base+".c")
	run(c.objcopy, "-O", "binary", "--remove-section=.note.gnu.property", base+".o", base+".cell")
	out, err := os.ReadFile(base + ".cell")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func numbered(src []byte) string {
	var b strings.Builder
	for i, l := range strings.Split(string(src), "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}

// emit returns the C source and the encoder's bytes of a file.
func emit(t *testing.T, f *cell.File) (src, want []byte) {
	t.Helper()
	var err error
	if f.System != nil {
		if want, err = f.System.Marshal(); err != nil {
			t.Fatal(err)
		}
		src, err = System(f.System)
	} else {
		if want, err = f.Cell.Marshal(); err != nil {
			t.Fatal(err)
		}
		src, err = Cell(f.Cell)
	}
	if err != nil {
		t.Fatal(err)
	}
	return src, want
}

func compareBytes(t *testing.T, got, want []byte, src []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("compiled %d bytes, encoder gives %d\nsource:\n%s", len(got), len(want), numbered(src))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("first difference at offset %#x: compiled %#02x, encoder %#02x\nsource:\n%s", i, got[i], want[i], numbered(src))
		}
	}
}

// TestBoardsCompileToEncoderBytes is the emitter's contract: every board
// configuration, written as C and compiled, gives the encoder's bytes.
func TestBoardsCompileToEncoderBytes(t *testing.T) {
	cc := newCompiler(t)
	var paths []string
	for _, pat := range []string{"../../boards/*/system*.json", "../../boards/*/demos/*.json"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) == 0 {
		t.Fatal("no board configurations found under ../../boards")
	}
	for _, p := range paths {
		t.Run(strings.TrimPrefix(p, "../../boards/"), func(t *testing.T) {
			f, err := cell.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			src, want := emit(t, f)
			compareBytes(t, cc.build(t, p, src), want, src)
		})
	}
}

// TestFeaturesCompileToEncoderBytes covers what the board files do not use:
// x86 platform data, cache and PIO regions, PCI capabilities and MSI,
// IOMMU union views, unnamed flag bits, odd names and bitmap sizes.
func TestFeaturesCompileToEncoderBytes(t *testing.T) {
	cc := newCompiler(t)
	netRegions := func(base uint64, peer int) []cell.MemRegion {
		ro := cell.MemRead | cell.MemRootShared
		out := [2]cell.MemFlags{ro, ro}
		out[peer] |= cell.MemWrite
		return []cell.MemRegion{
			{PhysStart: base, VirtStart: base, Size: 0x1000, Flags: ro},
			{},
			{PhysStart: base + 0x1000, VirtStart: base + 0x1000, Size: 0x7f000, Flags: out[0]},
			{PhysStart: base + 0x80000, VirtStart: base + 0x80000, Size: 0x7f000, Flags: out[1]},
		}
	}
	x86 := &cell.System{
		Arch:             cell.ArchX86,
		Flags:            cell.SysVirtualDebugConsole,
		HypervisorMemory: cell.MemRegion{PhysStart: 0x3a000000, VirtStart: 0x1234, Size: 0x600000, Flags: 0x5},
		DebugConsole: cell.Console{Address: 0x3f8, Type: cell.Console8250, Flags: cell.ConsoleInvertedClock | cell.ConsoleMDRQuirk | 0x0800,
			Divider: 1, GateNr: 3, ClockReg: 0xfeed0000},
		PCIMMConfigBase: 0xb0000000, PCIMMConfigEndBus: 0xff, PCIDomain: 0xffff,
		IOMMUs: []cell.IOMMU{
			{Type: cell.IOMMUAMD, Base: 0xfeb80000, Size: 0x80000, AMDBDF: 0x02, AMDBaseCap: 0x40, AMDMSICap: 0x64, AMDFeatures: 0x80048824},
			{},
			{Type: cell.IOMMUPVU, Base: 0x30f80000, Size: 0x1000, TLBBase: 0x36000000, TLBSize: 0x40000},
			{Type: cell.IOMMUIntel, Base: 0xfed90000, Size: 0x1000},
		},
		X86: cell.X86Platform{PMTimerAddress: 0x608, APICMode: cell.APICModeX2APIC, VTDInterruptLimit: 256, TSCkHz: 2000000, APICkHz: 1000000},
		RootCell: cell.Cell{
			Name:  `odd "name"??=\x01é`,
			CPUs:  cpuset.Of(0, 1, 2, 70),
			Flags: cell.CellTestDevice | cell.CellAArch32 | cell.CellVirtualConsoleActive | 0x100,
			MemRegions: append(netRegions(0x7ff80000, 1),
				cell.MemRegion{PhysStart: 0xfffffffffff00000, VirtStart: 0x8000000000000000, Size: 0x100000,
					Flags: cell.MemRead | cell.MemIO | cell.MemIO8 | cell.MemIO16 | cell.MemIO32 | cell.MemIO64 | cell.MemIOUnaligned | cell.MemNoHugepages | 0x100000000},
			),
			CacheRegions: []cell.CacheRegion{{Start: 0, Size: 2, Type: cell.CacheL3, Flags: cell.CacheFlagRootShared}, {Start: 2, Size: 4, Type: cell.CacheL3Data}},
			PIORegions:   []cell.PIORegion{{Base: 0x3f8, Length: 8}, {Base: 0xcf8, Length: 8}, {Base: 0xffff, Length: 1}},
			PCIDevices: []cell.PCIDevice{
				{Type: cell.PCIDeviceType, IOMMU: 1, BDF: 0xfa, BARMask: [6]uint32{0xffffc000, 0, 1, 2, 3, 0xffffffff}, CapsStart: 0, NumCaps: 2,
					NumMSIVectors: 4, MSI64Bits: true, MSIMaskable: true, NumMSIXVectors: 5, MSIXRegionSize: 0x1000, MSIXAddress: 0xfebd0000},
				{Type: cell.PCIBridge, BDF: 0x1000},
				{Type: cell.PCIIvshmem, BDF: 0x0f8, BARMask: cell.BARMaskMSIX64K, ShmemRegionsStart: 0, ShmemDevID: 1, ShmemPeers: 2, ShmemProtocol: cell.ShmemProtoVirtioBack + cell.VirtioDevBlock},
			},
			PCICaps: []cell.PCICap{
				{ID: 0x5, Start: 0x60, Len: 14, Flags: cell.PCICapFlagWrite},
				{ID: cell.PCICapExtended | 0x1, Start: 0x100, Len: 4, Flags: 0x8000},
			},
			VPCIIrqBase: 7, CPUResetAddress: 0xfffffff0, MsgReplyTimeout: 1000,
			Console: cell.Console{Address: 0x2f8, Type: cell.ConsoleEFIFB, Flags: cell.ConsoleFB1920x1080},
		},
	}
	armCell := &cell.Cell{
		Arch:       cell.ArchARM,
		Name:       "thirty-one-bytes-long-cell-name",
		ID:         9,
		CPUs:       cpuset.Of(3),
		CPUSetSize: 12, // not a multiple of 8: a byte array
		MemRegions: append(netRegions(0x800400000, 0), netRegions(0xfff80000, 0)...),
		Irqchips:   []cell.Irqchip{{Address: 0xf9010000, ID: 2, PinBase: 0xffffff00, PinBitmap: [4]uint32{0x80000001, 0, 0xf0, 0x80000000}}},
		PCIDevices: []cell.PCIDevice{
			{Type: cell.PCIIvshmem, Domain: 3, BDF: 0x10, BARMask: cell.BARMaskMSIX, ShmemPeers: 2, ShmemProtocol: cell.ShmemProtoCustom + 0x12},
			{Type: cell.PCIIvshmem, BARMask: cell.BARMaskINTX64K, ShmemProtocol: cell.ShmemProtoVirtioFront + cell.VirtioDevConsole},
			{Type: cell.PCIIvshmem, ShmemProtocol: 0x77},
			{Type: 9, ShmemRegionsStart: 4, ShmemDevID: 1, ShmemPeers: 3, ShmemProtocol: cell.ShmemProtoVirtioFront},
		},
		StreamIDs: []uint32{0x860, 0x000f0870},
		Console:   cell.Console{Address: 0xff010000, Type: 0x77, Flags: cell.ConsoleAccessMMIO | cell.ConsoleRegDist4},
	}
	arm64MMU500 := &cell.System{
		Arch:     cell.ArchARM64,
		IOMMUs:   []cell.IOMMU{{Type: cell.IOMMUSMMUv3, Base: 0x1}, {Type: cell.IOMMUARMMMU500, Base: 0xfd800000, Size: 0x20000}},
		ARM:      cell.ARMPlatform{MaintenanceIRQ: 25, GICVersion: 2, GICDBase: 1, GICCBase: 2, GICHBase: 3, GICVBase: 4, GICRBase: 5},
		RootCell: cell.Cell{Name: "r", CPUs: cpuset.Range(0, 127), StreamIDs: []uint32{0x7fff7fff, 1}},
	}
	empty := &cell.Cell{Arch: cell.ArchARM64}

	for _, tc := range []struct {
		name string
		file *cell.File
	}{
		{"x86 system", &cell.File{System: x86}},
		{"arm cell", &cell.File{Cell: armCell}},
		{"arm64 system with MMU-500", &cell.File{System: arm64MMU500}},
		{"empty cell", &cell.File{Cell: empty}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, want := emit(t, tc.file)
			compareBytes(t, cc.build(t, tc.name, src), want, src)
		})
	}
}

func TestSourceUsesUpstreamNames(t *testing.T) {
	c := &cell.Cell{
		Arch:  cell.ArchARM64,
		Name:  "demo",
		Flags: cell.CellPassiveCommReg | cell.CellVirtualConsolePermitted,
		CPUs:  cpuset.Of(2, 3),
		MemRegions: []cell.MemRegion{
			{PhysStart: 0x7fb00000, VirtStart: 0x7fb00000, Size: 0x1000, Flags: cell.MemRead | cell.MemRootShared},
			{},
			{PhysStart: 0x7fb01000, VirtStart: 0x7fb01000, Size: 0x7f000, Flags: cell.MemRead | cell.MemRootShared},
			{PhysStart: 0x7fb80000, VirtStart: 0x7fb80000, Size: 0x7f000, Flags: cell.MemRead | cell.MemRootShared | cell.MemWrite},
			{PhysStart: 0x70000000, VirtStart: 0x70000000, Size: 0x8000000, Flags: cell.MemRead | cell.MemWrite | cell.MemExecute | cell.MemDMA | cell.MemLoadable},
		},
		PCIDevices: []cell.PCIDevice{{Type: cell.PCIIvshmem, BDF: 1 << 3, BARMask: cell.BARMaskINTX, ShmemPeers: 2, ShmemDevID: 1, ShmemProtocol: cell.ShmemProtoVETH}},
		Console:    cell.Console{Address: 0x09000000, Type: cell.ConsolePL011, Flags: cell.ConsoleAccessMMIO | cell.ConsoleRegDist4},
	}
	raw, err := Cell(c)
	if err != nil {
		t.Fatal(err)
	}
	// Long flag expressions wrap; compare with white space collapsed.
	src := []byte(strings.Join(strings.Fields(string(raw)), " "))
	for _, want := range []string{
		"#include <jailhouse/cell-config.h>",
		"struct jailhouse_cell_desc cell;",
		"__u64 cpus[1];",
		"struct jailhouse_memory mem_regions[5];",
		"struct jailhouse_pci_device pci_devices[1];",
		".signature = JAILHOUSE_CELL_DESC_SIGNATURE,",
		".architecture = JAILHOUSE_ARM64,",
		".revision = JAILHOUSE_CONFIG_REVISION,",
		".flags = JAILHOUSE_CELL_PASSIVE_COMMREG | JAILHOUSE_CELL_VIRTUAL_CONSOLE_PERMITTED,",
		".num_memory_regions = ARRAY_SIZE(config.mem_regions),",
		".cpu_set_size = sizeof(config.cpus),",
		".type = JAILHOUSE_CON_TYPE_PL011,",
		".flags = JAILHOUSE_CON_ACCESS_MMIO | JAILHOUSE_CON_REGDIST_4,",
		"JAILHOUSE_SHMEM_NET_REGIONS(0x7fb00000, 1),",
		"JAILHOUSE_MEM_READ | JAILHOUSE_MEM_WRITE | JAILHOUSE_MEM_EXECUTE |",
		".type = JAILHOUSE_PCI_TYPE_IVSHMEM,",
		".bar_mask = JAILHOUSE_IVSHMEM_BAR_MASK_INTX,",
		".shmem_protocol = JAILHOUSE_SHMEM_PROTO_VETH,",
		"0xc,",
	} {
		if !bytes.Contains(src, []byte(want)) {
			t.Errorf("source lacks %q:\n%s", want, raw)
		}
	}
	// Arrays the cell does not have are not declared.
	for _, absent := range []string{"irqchips", "cache_regions", "pio_regions", "pci_caps", "stream_ids", ".id ="} {
		if bytes.Contains(src, []byte(absent)) {
			t.Errorf("source mentions %q:\n%s", absent, raw)
		}
	}
}

func TestRejects(t *testing.T) {
	long := strings.Repeat("x", cell.MaxNameLen+1)
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"long cell name", func() error { _, err := Cell(&cell.Cell{Arch: cell.ArchARM64, Name: long}); return err }, "name"},
		{"unknown cell arch", func() error { _, err := Cell(&cell.Cell{Arch: 7}); return err }, "architecture 7"},
		{"CPU outside bitmap", func() error {
			_, err := Cell(&cell.Cell{Arch: cell.ArchARM64, CPUs: cpuset.Of(64), CPUSetSize: 8})
			return err
		}, "CPU"},
		{"bitmap too large", func() error {
			_, err := Cell(&cell.Cell{Arch: cell.ArchARM64, CPUSetSize: cell.MaxCPUSetSize + 8})
			return err
		}, "CPU set size"},
		{"too many IOMMUs", func() error {
			_, err := System(&cell.System{Arch: cell.ArchARM64, IOMMUs: make([]cell.IOMMU, cell.MaxIOMMUUnits+1)})
			return err
		}, "IOMMU"},
		{"unknown system arch", func() error { _, err := System(&cell.System{Arch: 3}); return err }, "architecture 3"},
		{"nil system", func() error { _, err := System(nil); return err }, "nil"},
		{"nil cell", func() error { _, err := Cell(nil); return err }, "nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestFlagExpr(t *testing.T) {
	for _, tc := range []struct {
		v    uint64
		want string
	}{
		{0, "0"},
		{0x83, "JAILHOUSE_MEM_READ | JAILHOUSE_MEM_WRITE | JAILHOUSE_MEM_ROOTSHARED"},
		{0x10200, "JAILHOUSE_MEM_IO_8 | 0x200"},
		{1 << 40, "0x10000000000"},
	} {
		if got := flagExpr(tc.v, memFlagNames); got != tc.want {
			t.Errorf("flagExpr(%#x) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"qemu-arm64": `"qemu-arm64"`,
		`a"b\c`:      `"a\"b\\c"`,
		"??=":        `"\?\?="`,
		"\x01" + "2": `"\0012"`,
		"\xff":       `"\377"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}
