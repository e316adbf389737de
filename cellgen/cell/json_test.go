package cell

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// fullCell sets every cell field, including values without a name, so
// that a lossless round trip covers the whole schema.
func fullCell() *Cell {
	return &Cell{
		Arch:  ArchARM64,
		Name:  `odd "name"\x`,
		ID:    7,
		Flags: CellPassiveCommReg | CellTestDevice | CellAArch32 | CellVirtualConsolePermitted | CellVirtualConsoleActive | 0x100,
		CPUs:  cpuset.Of(0, 2, 3, 4, 100),
		// 24 bytes hold CPU 100 with room to spare: not the minimal size.
		CPUSetSize: 24,
		MemRegions: []MemRegion{
			{PhysStart: 0x7faf0000, VirtStart: 0x7faf0000, Size: 0x1000, Flags: MemRead | MemRootShared},
			{},
			{PhysStart: 0xffffffffffffffff, VirtStart: 1, Size: 3, Flags: MemRead | MemWrite | MemExecute | MemDMA |
				MemIO | MemCommRegion | MemLoadable | MemRootShared | MemNoHugepages | MemIOUnaligned |
				MemIO8 | MemIO16 | MemIO32 | MemIO64 | 0x200 | 1<<63},
		},
		CacheRegions: []CacheRegion{
			{Start: 0, Size: 4, Type: CacheL3, Flags: CacheFlagRootShared},
			{Start: 1, Size: 2, Type: CacheL3Code},
			{Start: 3, Size: 1, Type: CacheL3Data, Flags: 0x8000},
			{Type: 0x77},
		},
		Irqchips: []Irqchip{
			{Address: 0x8000000, ID: 3, PinBase: 32, PinBitmap: [4]uint32{1, 0, 0xffffffff, 0x3000}},
			{PinBase: 0xffffffff},
		},
		PIORegions: []PIORegion{{Base: 0x3f8, Length: 8}, {Base: 0xffff, Length: 0xffff}},
		PCIDevices: []PCIDevice{
			{
				Type: PCIDeviceType, IOMMU: 1, Domain: 0xffff, BDF: 0xffff,
				BARMask: [6]uint32{0xfffffff0, 0, 0xffffff00, 0, 0, 0xffffffff}, CapsStart: 2, NumCaps: 3,
				NumMSIVectors: 4, MSI64Bits: true, MSIMaskable: true, NumMSIXVectors: 5,
				MSIXRegionSize: 0x1000, MSIXAddress: 0xfeb00000,
			},
			{Type: PCIBridge, BDF: 0x100, BARMask: BARMaskMSIX},
			{Type: PCIIvshmem, BDF: 0x08, BARMask: BARMaskINTX64K, ShmemRegionsStart: 1, ShmemDevID: 2, ShmemPeers: 3, ShmemProtocol: ShmemProtoCustom | 1},
			{Type: PCIIvshmem, BARMask: BARMaskMSIX64K, ShmemProtocol: ShmemProtoVirtioBack | VirtioDevBlock},
			{Type: PCIIvshmem, BARMask: BARMaskINTX, ShmemProtocol: ShmemProtoVirtioFront | VirtioDevConsole},
			{Type: 0x42},
		},
		PCICaps:         []PCICap{{ID: 0x10, Start: 0x40, Len: 0x3c, Flags: PCICapFlagWrite}, {ID: PCICapExtended | 1, Start: 0x100, Len: 4, Flags: 0x80}},
		StreamIDs:       []uint32{0x860, 0xf0870, 0xffffffff},
		VPCIIrqBase:     108,
		CPUResetAddress: 0x70000000,
		MsgReplyTimeout: 0xffffffffffffffff,
		Console: Console{
			Address: 0x9000000, Size: 0x1000, Type: ConsoleSCIF,
			Flags:   ConsoleAccessMMIO | ConsoleRegDist4 | ConsoleFB1920x1080 | ConsoleInvertedClock | ConsoleMDRQuirk | 0x100,
			Divider: 0xd, GateNr: 5, ClockReg: 0xfe000000,
		},
	}
}

// fullSystem sets every system field; the root cell uses the x86 parts.
func fullSystem() *System {
	root := fullCell()
	root.Arch = 0x9 // not stored in the binary form, but the model keeps it
	return &System{
		Arch:              ArchX86,
		Flags:             SysVirtualDebugConsole | 0x10,
		HypervisorMemory:  MemRegion{PhysStart: 0x3a000000, VirtStart: 0x1000, Size: 0x600000, Flags: MemRead | 0x4000},
		DebugConsole:      Console{Address: 0x3f8, Type: Console8250},
		PCIMMConfigBase:   0xe0000000,
		PCIMMConfigEndBus: 0xff,
		PCIIsVirtual:      true,
		PCIDomain:         0xffff,
		IOMMUs: []IOMMU{
			{Type: IOMMUAMD, Base: 0xfeb80000, Size: 0x80000, AMDBDF: 0x2, AMDBaseCap: 0x40, AMDMSICap: 0x54, AMDFeatures: 0x80048824},
			{},
			{Type: IOMMUPVU, Base: 0x30f80000, Size: 0x1000, TLBBase: 0x36000000, TLBSize: 0x40000},
			{Type: IOMMUIntel}, {Type: IOMMUSMMUv3}, {Type: IOMMUARMMMU500}, {Type: 0x99},
		},
		ARM:      ARMPlatform{MaintenanceIRQ: 25, GICVersion: 2, GICDBase: 1, GICCBase: 2, GICHBase: 3, GICVBase: 4, GICRBase: 5},
		X86:      X86Platform{PMTimerAddress: 0x408, APICMode: APICModeX2APIC, VTDInterruptLimit: 256, TSCkHz: 2000000, APICkHz: 1000000},
		RootCell: *root,
	}
}

// boardFiles lists the JSON files under boardsDir.
func boardFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(boardsDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				return rerr
			}
			// Only configuration files; other board data (pools) differs.
			if bytes.Contains(b, []byte(`"kind": "cell"`)) || bytes.Contains(b, []byte(`"kind": "system"`)) {
				files = append(files, path)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("found %d configuration files under %s, want at least 8", len(files), boardsDir)
	}
	return files
}

// TestBoardFilesCanonical checks that every board file is in canonical
// form: JSON -> model -> JSON reproduces the text exactly.
func TestBoardFilesCanonical(t *testing.T) {
	for _, path := range boardFiles(t) {
		t.Run(path, func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Decode(in)
			if err != nil {
				t.Fatal(err)
			}
			out := fileJSON(t, f)
			if !bytes.Equal(out, in) {
				t.Errorf("not canonical; the writer produces:\n%s", out)
			}
			again, err := Decode(out)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(f, again, cpusetEqual); diff != "" {
				t.Errorf("model -> JSON -> model changed it (-first +second):\n%s", diff)
			}
		})
	}
}

func TestCellJSONRoundTrip(t *testing.T) {
	for name, c := range map[string]*Cell{
		"full":  fullCell(),
		"empty": {Arch: ArchARM64},
		"x86":   {Arch: ArchX86, Name: "x", CPUs: cpuset.Of(1)},
		"arch?": {Arch: 0x17, Name: "y"},
	} {
		t.Run(name, func(t *testing.T) {
			text, err := CellJSON(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseCellJSON(text)
			if err != nil {
				t.Fatalf("%v in\n%s", err, text)
			}
			if diff := cmp.Diff(c, got, cpusetEqual); diff != "" {
				t.Errorf("model changed (-want +got):\n%s", diff)
			}
			again, err := CellJSON(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, text) {
				t.Errorf("second JSON form differs:\n%s\nfirst:\n%s", again, text)
			}
		})
	}
}

func TestSystemJSONRoundTrip(t *testing.T) {
	for name, s := range map[string]*System{
		"full":  fullSystem(),
		"empty": {Arch: ArchARM64},
	} {
		t.Run(name, func(t *testing.T) {
			text, err := SystemJSON(s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseSystemJSON(text)
			if err != nil {
				t.Fatalf("%v in\n%s", err, text)
			}
			if diff := cmp.Diff(s, got, cpusetEqual); diff != "" {
				t.Errorf("model changed (-want +got):\n%s", diff)
			}
			again, err := SystemJSON(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, text) {
				t.Errorf("second JSON form differs:\n%s\nfirst:\n%s", again, text)
			}
		})
	}
}

// TestJSONSpelling pins the spellings people read and write.
func TestJSONSpelling(t *testing.T) {
	cellText, err := CellJSON(fullCell())
	if err != nil {
		t.Fatal(err)
	}
	sysText, err := SystemJSON(fullSystem())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		text []byte
		want string
	}{
		{cellText, `"flags": ["passive_commreg", "test_device", "aarch32", "virtual_console_permitted", "virtual_console_active", "0x100"],`},
		{cellText, `"cpus": "0,2-4,100",`},
		{cellText, `"flags": ["read", "rootshared"]`},
		{cellText, `"flags": ["read", "write", "execute", "dma", "io", "comm_region", "loadable", "rootshared", "no_hugepages", "io_unaligned", "io_8", "io_16", "io_32", "io_64", "0x8000000000000200"]`},
		{cellText, `"phys_start": "0xffffffffffffffff",`},
		{cellText, `"pin_bitmap": ["0x1", "0x0", "0xffffffff", "0x3000"]`},
		{cellText, `"bdf": "ff:1f.7",`},
		{cellText, `"bdf": "01:00.0",`},
		{cellText, `"bar_mask": ["0xfffffff0", "0x0", "0xffffff00", "0x0", "0x0", "0xffffffff"],`},
		{cellText, `"bar_mask": "msix"`},
		{cellText, `"bar_mask": "intx64k",`},
		{cellText, `"bar_mask": "msix64k",`},
		{cellText, `"shmem_protocol": "0x4001"`},
		{cellText, `"shmem_protocol": "virtio_back_block"`},
		{cellText, `"shmem_protocol": "virtio_front_console"`},
		{cellText, `"type": "0x42"`},
		{cellText, `"msi_64bits": true,`},
		{cellText, `"type": "scif",`},
		{cellText, `"flags": ["mmio", "regdist4", "fb1920x1080", "inverted_gate", "mdr_quirk", "0x100"],`},
		{cellText, `"stream_ids": ["0x860", "0xf0870", "0xffffffff"]`},
		{cellText, `"name": "odd \"name\"\\x",`},
		{sysText, `"apic_mode": "x2apic",`},
		{sysText, `"type": "arm_mmu500"`},
		{sysText, `"pci_domain": 65535,`},
		{sysText, "  \"root_cell\": {\n    \"arch\": \"0x9\",\n    \"name\":"},
	} {
		if !bytes.Contains(tc.text, []byte(tc.want)) {
			t.Errorf("JSON form lacks %s", tc.want)
		}
	}
	if !bytes.HasSuffix(cellText, []byte("}\n")) || !bytes.HasPrefix(cellText, []byte("{\n  \"kind\": \"cell\",\n  \"arch\": \"arm64\",\n")) {
		t.Errorf("unexpected framing:\n%s", cellText)
	}
}

func TestJSONWriteErrors(t *testing.T) {
	long := &Cell{Arch: ArchARM64, Name: strings.Repeat("n", MaxNameLen+1)}
	if _, err := CellJSON(long); err == nil || !strings.Contains(err.Error(), "name:") {
		t.Errorf("CellJSON(32-byte name) = %v, want a name error", err)
	}
	bad := &Cell{Name: "\xff"}
	if _, err := CellJSON(bad); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("CellJSON(invalid UTF-8 name) = %v, want an error", err)
	}
	tight := &Cell{Name: "t", CPUs: cpuset.Of(64), CPUSetSize: 8}
	if _, err := CellJSON(tight); err == nil || !strings.Contains(err.Error(), "cpus:") {
		t.Errorf("CellJSON(CPU outside bitmap) = %v, want a cpus error", err)
	}
	s := &System{RootCell: Cell{Name: "a\x00b"}}
	if _, err := SystemJSON(s); err == nil || !strings.Contains(err.Error(), "root_cell.name:") {
		t.Errorf("SystemJSON(NUL in root name) = %v, want a root_cell.name error", err)
	}
	s = &System{IOMMUs: make([]IOMMU, MaxIOMMUUnits+1)}
	if _, err := SystemJSON(s); err == nil || !strings.Contains(err.Error(), "iommu_units") {
		t.Errorf("SystemJSON(9 IOMMUs) = %v, want an iommu_units error", err)
	}
}

// jCellDoc is a minimal valid cell with extra members spliced in.
func jCellDoc(extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return `{"kind": "cell", "arch": "arm64", "name": "c", "cpus": "1"` + extra + `}`
}

// regions returns a memory_regions member with n valid regions followed
// by last.
func jRegions(n int, last string) string {
	var parts []string
	for range n {
		parts = append(parts, `{"phys_start": "0x0", "virt_start": "0x0", "size": "0x1000", "flags": ["read"]}`)
	}
	return `"memory_regions": [` + strings.Join(append(parts, last), ", ") + `]`
}

// pciDev returns a pci_devices member with one device holding members.
func jPCIDev(members string) string {
	return `"pci_devices": [{"type": "ivshmem", "bdf": "00:01.0"` + members + `}]`
}

func jIrqchip(members string) string {
	return `"irqchips": [{"address": "0x8000000"` + members + `}]`
}

func TestParseCellJSONErrors(t *testing.T) {
	bitmap := `, "pin_bitmap": ["0x0", "0x0", "0x0", "0x0"]`
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", ``, "want a JSON object"},
		{"not an object", `[]`, "want a JSON object, got array"},
		{"syntax", `{"kind": "cell",`, "invalid JSON"},
		{"syntax offset", `{"kind" "cell"}`, "invalid JSON at offset"},
		{"trailing data", jCellDoc("") + ` {}`, "unexpected data after the JSON object"},
		{"invalid UTF-8", "{\"kind\": \"cell\xff\"}", "not valid UTF-8"},
		{"missing kind", `{"arch": "arm64", "name": "c", "cpus": "1"}`, "kind: required key is missing"},
		{"kind system", `{"kind": "system"}`, `kind: "system", want "cell"`},
		{"kind number", `{"kind": 1}`, "kind: want a string, got number"},
		{"missing arch", `{"kind": "cell", "name": "c", "cpus": "1"}`, "arch: required key is missing"},
		{"unknown arch", `{"kind": "cell", "arch": "arm65", "name": "c", "cpus": "1"}`, `arch: unknown name "arm65"`},
		{"arch overflow", `{"kind": "cell", "arch": "0x100", "name": "c", "cpus": "1"}`, "arch: 0x100 does not fit 8 bits"},
		{"missing name", `{"kind": "cell", "arch": "arm64", "cpus": "1"}`, "name: required key is missing"},
		{"missing cpus", `{"kind": "cell", "arch": "arm64", "name": "c"}`, "cpus: required key is missing"},
		{"unknown key", jCellDoc(`"nmae": "x"`), `unknown key "nmae"`},
		{"duplicate key", jCellDoc(`"name": "d"`), `duplicate key "name"`},
		{"null", jCellDoc(`"id": null`), "id: want a number, got null"},
		{"negative", jCellDoc(`"id": -1`), "id: want an unsigned integer, got -1"},
		{"fraction", jCellDoc(`"vpci_irq_base": 1.5`), "vpci_irq_base: want an unsigned integer, got 1.5"},
		{"exponent", jCellDoc(`"vpci_irq_base": 1e3`), "vpci_irq_base: want an unsigned integer, got 1e3"},
		{"u32 overflow", jCellDoc(`"id": 4294967296`), "id: 4294967296 does not fit 32 bits"},
		{"bad cpus", `{"kind": "cell", "arch": "arm64", "name": "c", "cpus": "1-"}`, "cpus: invalid CPU list"},
		{"cpus outside bitmap", `{"kind": "cell", "arch": "arm64", "name": "c", "cpus": "64", "cpu_set_size": 8}`, "cpus: CPU 64 does not fit cpu_set_size 8"},
		{"flags not a list", jCellDoc(`"flags": "passive_commreg"`), "flags: want a list, got string"},
		{"unknown cell flag", jCellDoc(`"flags": ["passive"]`), `flags: unknown flag "passive"`},
		{"flag not a string", jCellDoc(`"flags": [1]`), "flags[0]: want a string, got number"},
		{"flag hex overflow", jCellDoc(`"flags": ["0x100000000"]`), "flags[0]: 0x100000000 does not fit 32 bits"},
		{"hex reset address as number", jCellDoc(`"cpu_reset_address": 4096`), `cpu_reset_address: want a hex string such as "0x1000", got number`},
		{"hex without prefix", jCellDoc(`"cpu_reset_address": "1000"`), `cpu_reset_address: bad hex "1000"`},
		{"hex bad digit", jCellDoc(`"cpu_reset_address": "0x12g"`), `cpu_reset_address: bad hex "0x12g"`},
		{"hex empty", jCellDoc(`"cpu_reset_address": "0x"`), `cpu_reset_address: bad hex "0x"`},
		{"hex sign", jCellDoc(`"cpu_reset_address": "0x-1"`), `cpu_reset_address: bad hex "0x-1"`},
		{"hex underscore", jCellDoc(`"cpu_reset_address": "0x1_000"`), `cpu_reset_address: bad hex "0x1_000"`},
		{"hex u64 overflow", jCellDoc(`"msg_reply_timeout": "0x10000000000000000"`), "msg_reply_timeout: 0x10000000000000000 does not fit 64 bits"},
		{"console not an object", jCellDoc(`"console": []`), "console: want a JSON object, got array"},
		{"console unknown key", jCellDoc(`"console": {"adress": "0x1"}`), `console: unknown key "adress"`},
		{"console type", jCellDoc(`"console": {"type": "pl012"}`), `console.type: unknown name "pl012"`},
		{"console size overflow", jCellDoc(`"console": {"size": "0x100000000"}`), "console.size: 0x100000000 does not fit 32 bits"},
		{"console flags overflow", jCellDoc(`"console": {"flags": ["0x10000"]}`), "console.flags[0]: 0x10000 does not fit 16 bits"},
		{"memory regions not a list", jCellDoc(`"memory_regions": {}`), "memory_regions: want a list, got object"},
		{"memory region not an object", jCellDoc(jRegions(1, `"0x1"`)), "memory_regions[1]: want a JSON object, got string"},
		{"memory flag", jCellDoc(jRegions(3, `{"phys_start": "0x0", "virt_start": "0x0", "size": "0x0", "flags": ["read", "rw"]}`)), `memory_regions[3].flags: unknown flag "rw"`},
		{"memory flag missing", jCellDoc(jRegions(0, `{"phys_start": "0x0", "virt_start": "0x0", "size": "0x0"}`)), "memory_regions[0].flags: required key is missing"},
		{"memory size missing", jCellDoc(jRegions(1, `{"phys_start": "0x0", "virt_start": "0x0", "flags": []}`)), "memory_regions[1].size: required key is missing"},
		{"memory unknown key", jCellDoc(jRegions(0, `{"phys": "0x0"}`)), `memory_regions[0]: unknown key "phys"`},
		{"memory duplicate key", jCellDoc(jRegions(0, `{"size": "0x0", "size": "0x1"}`)), `memory_regions[0]: duplicate key "size"`},
		{"irqchip pin_base overflow", jCellDoc(jIrqchip(`, "pin_base": 4294967296` + bitmap)), "irqchips[0].pin_base: 4294967296 does not fit 32 bits"},
		{"irqchip pin_base missing", jCellDoc(jIrqchip(bitmap)), "irqchips[0].pin_base: required key is missing"},
		{"irqchip bitmap missing", jCellDoc(jIrqchip(`, "pin_base": 32`)), "irqchips[0].pin_bitmap: required key is missing"},
		{"irqchip bitmap short", jCellDoc(jIrqchip(`, "pin_base": 32, "pin_bitmap": ["0x0", "0x0", "0x0"]`)), "irqchips[0].pin_bitmap: 3 words, want 4"},
		{"irqchip bitmap word", jCellDoc(jIrqchip(`, "pin_base": 32, "pin_bitmap": ["0x0", "0x100000000", "0x0", "0x0"]`)), "irqchips[0].pin_bitmap[1]: 0x100000000 does not fit 32 bits"},
		{"pio overflow", jCellDoc(`"pio_regions": [{"base": "0x10000", "length": "0x1"}]`), "pio_regions[0].base: 0x10000 does not fit 16 bits"},
		{"pci unknown key", jCellDoc(`"pci_devices": [{"type": "ivshmem", "bfd": "00:01.0"}]`), `pci_devices[0]: unknown key "bfd"`},
		{"pci type missing", jCellDoc(`"pci_devices": [{"bdf": "00:01.0"}]`), "pci_devices[0].type: required key is missing"},
		{"pci type unknown", jCellDoc(`"pci_devices": [{"type": "ivshm", "bdf": "00:01.0"}]`), `pci_devices[0].type: unknown name "ivshm"`},
		{"bdf bus", jCellDoc(`"pci_devices": [{"type": "ivshmem", "bdf": "100:01.0"}]`), "pci_devices[0].bdf: bad BDF \"100:01.0\": bus 0x100 out of range"},
		{"bdf device", jCellDoc(`"pci_devices": [{"type": "ivshmem", "bdf": "00:20.0"}]`), "pci_devices[0].bdf: bad BDF \"00:20.0\": device 0x20 out of range"},
		{"bdf function", jCellDoc(`"pci_devices": [{"type": "ivshmem", "bdf": "00:01.8"}]`), "function 0x8 out of range"},
		{"bdf form", jCellDoc(`"pci_devices": [{"type": "ivshmem", "bdf": "0008"}]`), `pci_devices[0].bdf: bad BDF "0008"`},
		{"bdf digits", jCellDoc(`"pci_devices": [{"type": "ivshmem", "bdf": "0g:01.0"}]`), `bad bus "0g"`},
		{"bdf number", jCellDoc(`"pci_devices": [{"type": "ivshmem", "bdf": 8}]`), "pci_devices[0].bdf: want a string, got number"},
		{"domain overflow", jCellDoc(jPCIDev(`, "domain": 65536`)), "pci_devices[0].domain: 65536 does not fit 16 bits"},
		{"dev id overflow", jCellDoc(jPCIDev(`, "shmem_dev_id": 256`)), "pci_devices[0].shmem_dev_id: 256 does not fit 8 bits"},
		{"protocol overflow", jCellDoc(jPCIDev(`, "shmem_protocol": "0x10000"`)), "pci_devices[0].shmem_protocol: 0x10000 does not fit 16 bits"},
		{"protocol unknown", jCellDoc(jPCIDev(`, "shmem_protocol": "vnet"`)), `pci_devices[0].shmem_protocol: unknown name "vnet"`},
		{"bool type", jCellDoc(jPCIDev(`, "msi_64bits": 1`)), "pci_devices[0].msi_64bits: want true or false, got number"},
		{"bar mask preset", jCellDoc(jPCIDev(`, "bar_mask": "intx32"`)), `pci_devices[0].bar_mask: unknown preset "intx32"`},
		{"bar mask words", jCellDoc(jPCIDev(`, "bar_mask": ["0x0"]`)), "pci_devices[0].bar_mask: 1 words, want 6"},
		{"bar mask word", jCellDoc(jPCIDev(`, "bar_mask": ["0x0", "0x0", "0x0", "0x0", "0x0", 5]`)), "pci_devices[0].bar_mask[5]: want a hex string"},
		{"bar mask type", jCellDoc(jPCIDev(`, "bar_mask": 4096`)), "pci_devices[0].bar_mask: want a preset name or a list of 6 hex strings, got number"},
		{"pci cap missing", jCellDoc(`"pci_caps": [{"id": "0x10", "start": "0x40"}]`), "pci_caps[0].len: required key is missing"},
		{"pci cap flag", jCellDoc(`"pci_caps": [{"id": "0x10", "start": "0x40", "len": "0x2", "flags": ["read"]}]`), `pci_caps[0].flags: unknown flag "read"`},
		{"cache type", jCellDoc(`"cache_regions": [{"type": "l2"}]`), `cache_regions[0].type: unknown name "l2"`},
		{"stream id overflow", jCellDoc(`"stream_ids": ["0x1", "0x100000000"]`), "stream_ids[1]: 0x100000000 does not fit 32 bits"},
		{"stream id number", jCellDoc(`"stream_ids": [2144]`), "stream_ids[0]: want a hex string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCellJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParseCellJSON(%s) = %+v, want an error containing %q", tc.in, c, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseCellJSON(%s) error\n  %v\nwant it to contain\n  %s", tc.in, err, tc.want)
			}
		})
	}
}

func TestParseCellJSONNames(t *testing.T) {
	long := jCellDoc("")
	long = strings.Replace(long, `"name": "c"`, `"name": "`+strings.Repeat("x", MaxNameLen+1)+`"`, 1)
	if _, err := ParseCellJSON([]byte(long)); err == nil || !strings.Contains(err.Error(), "name: ") || !strings.Contains(err.Error(), "at most 31") {
		t.Errorf("32-byte name: error %v, want a name length error", err)
	}
	nul := strings.Replace(jCellDoc(""), `"name": "c"`, `"name": "a\u0000b"`, 1)
	if _, err := ParseCellJSON([]byte(nul)); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("name with NUL: error %v, want a NUL error", err)
	}
	ok := strings.Replace(jCellDoc(""), `"name": "c"`, `"name": "`+strings.Repeat("x", MaxNameLen)+`"`, 1)
	if _, err := ParseCellJSON([]byte(ok)); err != nil {
		t.Errorf("31-byte name: %v", err)
	}
}

// TestParseCellJSONSpellings checks the alternative spellings input may
// use, and what they mean.
func TestParseCellJSONSpellings(t *testing.T) {
	c, err := ParseCellJSON([]byte(jCellDoc(`"flags": ["0X1", "passive_commreg"],
		"console": {"type": "0x3", "flags": []},
		"memory_regions": [{"phys_start": "0xABC", "virt_start": "0x0", "size": "0x1", "flags": ["0x3", "io"]}],
		"pci_devices": [{"type": "ivshmem", "bdf": "1:2.3", "bar_mask": ["0xfffff000", "0x0", "0x0", "0x0", "0x0", "0x0"]}],
		"stream_ids": []`)))
	if err != nil {
		t.Fatal(err)
	}
	want := &Cell{
		Arch: ArchARM64, Name: "c", CPUs: cpuset.Of(1), Flags: CellPassiveCommReg,
		Console:    Console{Type: ConsolePL011},
		MemRegions: []MemRegion{{PhysStart: 0xabc, Size: 1, Flags: MemRead | MemWrite | MemIO}},
		PCIDevices: []PCIDevice{{Type: PCIIvshmem, BDF: 1<<8 | 2<<3 | 3, BARMask: BARMaskINTX}},
	}
	if diff := cmp.Diff(want, c, cpusetEqual); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if c.StreamIDs != nil {
		t.Errorf("empty list gave a non-nil slice %#v", c.StreamIDs)
	}
}

func jSysDoc(extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return `{"kind": "system", "arch": "arm64", "hypervisor_memory": {"phys_start": "0x0", "size": "0x400000"}` + extra + `}`
}

const jRootCell = `"root_cell": {"name": "r", "cpus": "0-3"}`

func TestParseSystemJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"kind cell", jCellDoc(""), `kind: "cell", want "system"`},
		{"missing kind", `{"arch": "arm64"}`, "kind: required key is missing"},
		{"missing root cell", jSysDoc(""), "root_cell: required key is missing"},
		{"missing hypervisor memory", `{"kind": "system", "arch": "arm64", ` + jRootCell + `}`, "hypervisor_memory: required key is missing"},
		{"hypervisor size", `{"kind": "system", "arch": "arm64", "hypervisor_memory": {"phys_start": "0x0"}, ` + jRootCell + `}`, "hypervisor_memory.size: required key is missing"},
		{"unknown key", jSysDoc(jRootCell + `, "pci_domian": 1`), `unknown key "pci_domian"`},
		{"system flag", jSysDoc(jRootCell + `, "flags": ["virtual_console"]`), `flags: unknown flag "virtual_console"`},
		{"domain overflow", jSysDoc(jRootCell + `, "pci_domain": 65536`), "pci_domain: 65536 does not fit 16 bits"},
		{"end bus overflow", jSysDoc(jRootCell + `, "pci_mmconfig_end_bus": 256`), "pci_mmconfig_end_bus: 256 does not fit 8 bits"},
		{"is virtual type", jSysDoc(jRootCell + `, "pci_is_virtual": "yes"`), "pci_is_virtual: want true or false, got string"},
		{"too many iommus", jSysDoc(jRootCell + `, "iommu_units": [` + strings.Repeat(`{"type": "none"}, `, 8) + `{"type": "none"}]`), "iommu_units: 9 units, at most 8"},
		{"iommu type", jSysDoc(jRootCell + `, "iommu_units": [{"type": "mmu500"}]`), `iommu_units[0].type: unknown name "mmu500"`},
		{"iommu key", jSysDoc(jRootCell + `, "iommu_units": [{"type": "amd", "bdf": "0x2"}]`), `iommu_units[0]: unknown key "bdf"`},
		{"platform key", jSysDoc(jRootCell + `, "platform": {"arm64": {}}`), `platform: unknown key "arm64"`},
		{"arm key", jSysDoc(jRootCell + `, "platform": {"arm": {"gicd": "0x0"}}`), `platform.arm: unknown key "gicd"`},
		{"gic version overflow", jSysDoc(jRootCell + `, "platform": {"arm": {"gic_version": 300}}`), "platform.arm.gic_version: 300 does not fit 8 bits"},
		{"apic mode", jSysDoc(jRootCell + `, "platform": {"x86": {"apic_mode": "x3apic"}}`), `platform.x86.apic_mode: unknown name "x3apic"`},
		{"root kind", jSysDoc(`"root_cell": {"kind": "cell", "name": "r", "cpus": "0"}`), `root_cell: unknown key "kind"`},
		{"root name", jSysDoc(`"root_cell": {"cpus": "0"}`), "root_cell.name: required key is missing"},
		{"root region flag", jSysDoc(`"root_cell": {"name": "r", "cpus": "0", ` + jRegions(0, `{"phys_start": "0x0", "virt_start": "0x0", "size": "0x0", "flags": ["rw"]}`) + `}`), `root_cell.memory_regions[0].flags: unknown flag "rw"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSystemJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParseSystemJSON(%s) = %+v, want an error containing %q", tc.in, s, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseSystemJSON(%s) error\n  %v\nwant it to contain\n  %s", tc.in, err, tc.want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	cellBin, err := fullCell().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sys := &System{Arch: ArchARM64, RootCell: Cell{Name: "root", CPUs: cpuset.Range(0, 3)}}
	sysBin, err := sys.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cellText, err := CellJSON(fullCell())
	if err != nil {
		t.Fatal(err)
	}
	sysText, err := SystemJSON(sys)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		in         []byte
		wantSystem bool
	}{
		{"binary cell", cellBin, false},
		{"binary system", sysBin, true},
		{"JSON cell", cellText, false},
		{"JSON system", sysText, true},
		{"JSON after white space", append([]byte(" \t\r\n"), sysText...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Decode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if (f.System != nil) != tc.wantSystem || (f.Cell != nil) == tc.wantSystem {
				t.Fatalf("Decode gave System %v, Cell %v; want a system: %v", f.System != nil, f.Cell != nil, tc.wantSystem)
			}
			var diff string
			if tc.wantSystem {
				diff = cmp.Diff(sys, f.System, cpusetEqual)
			} else {
				diff = cmp.Diff(fullCell(), f.Cell, cpusetEqual)
			}
			if diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "neither a binary configuration"},
		{"text", "hello", "neither a binary configuration"},
		{"JSON list", "[1]", "neither a binary configuration"},
		{"unknown kind", `{"kind": "board"}`, `kind: unknown kind "board"`},
		{"missing kind", `{"name": "x"}`, "kind: required key is missing"},
		{"bad JSON cell", `{"kind": "cell", "arch": "arm64", "name": "c", "cpus": "1", "id": "1"}`, "id: want a number"},
		{"truncated binary", string(cellBin[:40]), "truncated"},
		{"revision 12", "JHCELL\x0c\x00", "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Decode([]byte(tc.in))
			if err == nil {
				t.Fatalf("Decode(%q) = %+v, want an error", tc.in, f)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode(%q) error %v, want it to contain %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	if _, err := ReadFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("ReadFile(missing) error %v, want it to name %s", err, missing)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(jCellDoc(`"flags": ["rw"]`)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `flags: unknown flag "rw"`) {
		t.Errorf("ReadFile(bad) error %v, want it to name %s and the field", err, bad)
	}
	good := filepath.Join(dir, "good.cell")
	bin, err := fullCell().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, bin, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fullCell(), f.Cell, cpusetEqual); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// addBoardSeeds seeds a fuzz target with the board files of one kind.
func addBoardSeeds(f *testing.F, kind string) {
	for _, path := range boardFiles(f) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"kind": "`+kind+`"`)) {
			f.Add(b)
		}
	}
}

func FuzzParseCellJSON(f *testing.F) {
	addBoardSeeds(f, "cell")
	if b, err := CellJSON(fullCell()); err == nil {
		f.Add(b)
	}
	f.Add([]byte(jCellDoc(`"pci_devices": [{"type": "ivshmem", "bdf": "00:01.0", "bar_mask": ["0x1", "0x2", "0x3", "0x4", "0x5", "0x6"]}]`)))
	f.Add([]byte(jCellDoc(`"cpus": "0-3,7"`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCellJSON(data)
		if err != nil {
			return
		}
		text, err := CellJSON(c)
		if err != nil {
			t.Fatalf("CellJSON of a parsed cell: %v", err)
		}
		again, err := ParseCellJSON(text)
		if err != nil {
			t.Fatalf("parsing our own output: %v\n%s", err, text)
		}
		if diff := cmp.Diff(c, again, cpusetEqual); diff != "" {
			t.Fatalf("round trip changed the model (-first +second):\n%s", diff)
		}
	})
}

func FuzzParseSystemJSON(f *testing.F) {
	addBoardSeeds(f, "system")
	if b, err := SystemJSON(fullSystem()); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSystemJSON(data)
		if err != nil {
			return
		}
		text, err := SystemJSON(s)
		if err != nil {
			t.Fatalf("SystemJSON of a parsed system: %v", err)
		}
		again, err := ParseSystemJSON(text)
		if err != nil {
			t.Fatalf("parsing our own output: %v\n%s", err, text)
		}
		if diff := cmp.Diff(s, again, cpusetEqual); diff != "" {
			t.Fatalf("round trip changed the model (-first +second):\n%s", diff)
		}
	})
}
