package cell

// JSON form of both configuration kinds.
//
// The JSON form is for people: the names follow the upstream C field names
// in snake_case, flags are lists of names, enumerations are names, and
// addresses are hex strings, so a board file can be read next to the
// Jailhouse source. It holds exactly what the model holds: every model
// value has one canonical spelling, and a canonical file survives
// JSON -> model -> JSON unchanged.
//
// Value kinds used below:
//
//	hex    a JSON string "0x..." (lowercase on output, upper accepted), range-checked
//	       against the field width
//	num    a JSON number, an unsigned integer, range-checked against the field width
//	bool   true or false
//	flags  a list of flag names; bits without a name are written as one hex
//	       string in the list (input may give any bits as hex strings)
//	enum   a name; a value without a name is written as a hex string (input
//	       may give any value as a hex string)
//
// Keys marked * are required on input and always written; all other keys
// are optional, default to zero and are omitted on output when zero. Unknown
// keys, duplicate keys, null, wrong types, unknown names and values that do
// not fit their field are errors naming the path, e.g.
// `memory_regions[3].flags: unknown flag "rw"`.
//
// Cell file (kind "cell"):
//
//	kind*               "cell"
//	arch*               enum   x86 | arm | arm64
//	name*               string at most 31 bytes, no NUL
//	id                  num    u32
//	flags               flags  passive_commreg test_device aarch32
//	                           virtual_console_permitted virtual_console_active
//	cpus*               string CPU range list, e.g. "0-3,6" ("" for none)
//	cpu_set_size        num    bitmap bytes; omitted = smallest multiple of 8
//	vpci_irq_base       num    u32
//	cpu_reset_address   hex    u64
//	msg_reply_timeout   hex    u64
//	console             console object (below), omitted when all zero
//	memory_regions      list of {phys_start* hex, virt_start* hex, size* hex, flags* flags}
//	                    memory flags: read write execute dma io comm_region loadable
//	                    rootshared no_hugepages io_unaligned io_8 io_16 io_32 io_64
//	cache_regions       list of {start num u32, size num u32, type enum l3_code|l3_data|l3,
//	                    flags flags (rootshared)}
//	irqchips            list of {address* hex, id num, pin_base* num u32,
//	                    pin_bitmap* list of 4 hex u32}
//	pio_regions         list of {base* hex u16, length* hex u16}
//	pci_devices         list of {type* enum device|bridge|ivshmem, iommu num u8,
//	                    domain num u16, bdf* "bus:dev.fn" in hex e.g. "00:01.0",
//	                    bar_mask preset intx|msix|intx64k|msix64k or list of 6 hex u32,
//	                    caps_start num, num_caps num, num_msi_vectors num u8,
//	                    msi_64bits bool, msi_maskable bool, num_msix_vectors num u16,
//	                    msix_region_size hex u16, msix_address hex u64,
//	                    shmem_regions_start num u32, shmem_dev_id num u8,
//	                    shmem_peers num u8, shmem_protocol enum undefined|veth|
//	                    virtio_front_net|virtio_front_block|virtio_front_console|
//	                    virtio_back_net|virtio_back_block|virtio_back_console (or hex)}
//	pci_caps            list of {id* hex u16 (0x8000 marks extended), start* hex u16,
//	                    len* hex u16, flags flags (write)}
//	stream_ids          list of hex u32 (MMU-500: id | mask_out<<16)
//
// Console object: address hex u64, size hex u32, type enum none|efifb|8250|
// pl011|xuartps|mvebu|hscif|scifa|imx|imx_lpuart|scif, flags flags (mmio
// regdist4 fb1920x1080 inverted_gate mdr_quirk), divider hex u32, gate_nr
// num u32, clock_reg hex u64.
//
// System file (kind "system"):
//
//	kind*                 "system"
//	arch*                 enum as above
//	flags                 flags  virtual_debug_console
//	hypervisor_memory*    {phys_start* hex, size* hex, virt_start hex, flags flags}
//	debug_console         console object
//	pci_mmconfig_base     hex u64
//	pci_mmconfig_end_bus  num u8
//	pci_is_virtual        bool
//	pci_domain            num u16 (65535: let Linux choose)
//	iommu_units           list (at most 8) of {type* enum none|amd|intel|smmuv3|pvu|
//	                      arm_mmu500, base hex, size hex u32, amd_bdf hex u16,
//	                      amd_base_cap hex u8, amd_msi_cap hex u8, amd_features hex u32,
//	                      tlb_base hex u64, tlb_size hex u32}
//	platform              {arm: {maintenance_irq num u8, gic_version num u8,
//	                      gicd_base, gicc_base, gich_base, gicv_base, gicr_base hex},
//	                      x86: {pm_timer_address hex u16, apic_mode enum auto|xapic|x2apic,
//	                      vtd_interrupt_limit num, tsc_khz num, apic_khz num}}
//	root_cell*            the cell keys above without kind; arch optional (0 in
//	                      a system file, so normally absent)
//
// Output is indented by two spaces, keys in the order listed, short lists of
// scalars on one line, and ends with a newline.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// File is a decoded configuration file; exactly one field is set.
type File struct {
	System *System
	Cell   *Cell
}

// Decode reads a configuration in either form: binary when data starts with
// a cell or system signature, JSON when its first non-space byte is '{'.
// Data starting like a signature ("JHC", "JHS") goes to the binary decoder,
// so that the older "JHCELL"/"JHSYST" files get its explanation.
func Decode(data []byte) (*File, error) {
	switch {
	case bytes.HasPrefix(data, []byte(CellSignature[:3])):
		c, err := UnmarshalCell(data)
		if err != nil {
			return nil, err
		}
		return &File{Cell: c}, nil
	case bytes.HasPrefix(data, []byte(SystemSignature[:3])):
		s, err := UnmarshalSystem(data)
		if err != nil {
			return nil, err
		}
		return &File{System: s}, nil
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("neither a binary configuration (JHCLL/JHSYS) nor a JSON object")
	}
	d := &jdec{}
	top := d.top(data)
	kind := top.str("kind", true)
	if d.err != nil {
		return nil, d.err
	}
	switch kind {
	case "cell":
		c, err := readCell(d, top)
		if err != nil {
			return nil, err
		}
		return &File{Cell: c}, nil
	case "system":
		s, err := readSystem(d, top)
		if err != nil {
			return nil, err
		}
		return &File{System: s}, nil
	}
	return nil, fmt.Errorf(`kind: unknown kind %q, want "cell" or "system"`, kind)
}

// ReadFile reads and decodes the configuration file at path.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ParseCellJSON reads a cell configuration in JSON form (kind "cell").
func ParseCellJSON(data []byte) (*Cell, error) {
	d := &jdec{}
	top := d.top(data)
	if k := top.str("kind", true); d.err == nil && k != "cell" {
		return nil, fmt.Errorf(`kind: %q, want "cell"`, k)
	}
	return readCell(d, top)
}

// ParseSystemJSON reads a system configuration in JSON form (kind "system").
func ParseSystemJSON(data []byte) (*System, error) {
	d := &jdec{}
	top := d.top(data)
	if k := top.str("kind", true); d.err == nil && k != "system" {
		return nil, fmt.Errorf(`kind: %q, want "system"`, k)
	}
	return readSystem(d, top)
}

func readCell(d *jdec, top *jobj) (*Cell, error) {
	top.allow(append([]string{"kind", "arch"}, cellKeys...)...)
	c := &Cell{Arch: Arch(top.enum("arch", archNames, 8, true))}
	d.cell(top, c)
	if d.err != nil {
		return nil, d.err
	}
	return c, nil
}

func readSystem(d *jdec, top *jobj) (*System, error) {
	top.allow("kind", "arch", "flags", "hypervisor_memory", "debug_console",
		"pci_mmconfig_base", "pci_mmconfig_end_bus", "pci_is_virtual",
		"pci_domain", "iommu_units", "platform", "root_cell")
	s := &System{
		Arch:              Arch(top.enum("arch", archNames, 8, true)),
		Flags:             SystemFlags(top.flags("flags", sysFlagNames, 32)),
		PCIMMConfigBase:   top.hex("pci_mmconfig_base", 64, false),
		PCIMMConfigEndBus: uint8(top.num("pci_mmconfig_end_bus", 8, false)),
		PCIIsVirtual:      top.boolean("pci_is_virtual"),
		PCIDomain:         uint16(top.num("pci_domain", 16, false)),
	}
	hv := top.object("hypervisor_memory", true)
	hv.allow("phys_start", "virt_start", "size", "flags")
	s.HypervisorMemory = MemRegion{
		PhysStart: hv.hex("phys_start", 64, true),
		VirtStart: hv.hex("virt_start", 64, false),
		Size:      hv.hex("size", 64, true),
		Flags:     MemFlags(hv.flags("flags", memFlagNames, 64)),
	}
	s.DebugConsole = d.console(top.object("debug_console", false))
	units := top.array("iommu_units")
	if len(units) > MaxIOMMUUnits && d.err == nil {
		d.errorf(top.field("iommu_units"), "%d units, at most %d", len(units), MaxIOMMUUnits)
	}
	for i, raw := range units {
		u := d.object(elemPath(top.field("iommu_units"), i), raw)
		u.allow("type", "base", "size", "amd_bdf", "amd_base_cap", "amd_msi_cap",
			"amd_features", "tlb_base", "tlb_size")
		s.IOMMUs = append(s.IOMMUs, IOMMU{
			Type:        IOMMUType(u.enum("type", iommuNames, 32, true)),
			Base:        u.hex("base", 64, false),
			Size:        uint32(u.hex("size", 32, false)),
			AMDBDF:      uint16(u.hex("amd_bdf", 16, false)),
			AMDBaseCap:  uint8(u.hex("amd_base_cap", 8, false)),
			AMDMSICap:   uint8(u.hex("amd_msi_cap", 8, false)),
			AMDFeatures: uint32(u.hex("amd_features", 32, false)),
			TLBBase:     u.hex("tlb_base", 64, false),
			TLBSize:     uint32(u.hex("tlb_size", 32, false)),
		})
	}
	plat := top.object("platform", false)
	plat.allow("arm", "x86")
	arm := plat.object("arm", false)
	arm.allow("maintenance_irq", "gic_version", "gicd_base", "gicc_base", "gich_base",
		"gicv_base", "gicr_base")
	s.ARM = ARMPlatform{
		MaintenanceIRQ: uint8(arm.num("maintenance_irq", 8, false)),
		GICVersion:     uint8(arm.num("gic_version", 8, false)),
		GICDBase:       arm.hex("gicd_base", 64, false),
		GICCBase:       arm.hex("gicc_base", 64, false),
		GICHBase:       arm.hex("gich_base", 64, false),
		GICVBase:       arm.hex("gicv_base", 64, false),
		GICRBase:       arm.hex("gicr_base", 64, false),
	}
	x86 := plat.object("x86", false)
	x86.allow("pm_timer_address", "apic_mode", "vtd_interrupt_limit", "tsc_khz", "apic_khz")
	s.X86 = X86Platform{
		PMTimerAddress:    uint16(x86.hex("pm_timer_address", 16, false)),
		APICMode:          uint8(x86.enum("apic_mode", apicModeNames, 8, false)),
		VTDInterruptLimit: uint32(x86.num("vtd_interrupt_limit", 32, false)),
		TSCkHz:            uint32(x86.num("tsc_khz", 32, false)),
		APICkHz:           uint32(x86.num("apic_khz", 32, false)),
	}
	root := top.object("root_cell", true)
	root.allow(append([]string{"arch"}, cellKeys...)...)
	s.RootCell.Arch = Arch(root.enum("arch", archNames, 8, false))
	d.cell(root, &s.RootCell)
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

// cellKeys are the keys of a cell object besides kind and arch.
var cellKeys = []string{"name", "id", "flags", "cpus", "cpu_set_size", "vpci_irq_base",
	"cpu_reset_address", "msg_reply_timeout", "console", "memory_regions",
	"cache_regions", "irqchips", "pio_regions", "pci_devices", "pci_caps", "stream_ids"}

func (d *jdec) cell(o *jobj, c *Cell) {
	c.Name = o.str("name", true)
	if d.err == nil {
		if err := checkName(c.Name); err != nil {
			d.errorf(o.field("name"), "%w", err)
		}
	}
	c.ID = uint32(o.num("id", 32, false))
	c.Flags = CellFlags(o.flags("flags", cellFlagNames, 32))
	cpus := o.str("cpus", true)
	if d.err == nil {
		set, err := cpuset.Parse(cpus)
		if err != nil {
			d.errorf(o.field("cpus"), "%w", err)
		}
		c.CPUs = set
	}
	c.CPUSetSize = uint32(o.num("cpu_set_size", 32, false))
	if d.err == nil {
		if err := checkCPUs(c); err != nil {
			d.errorf(o.field("cpus"), "%w", err)
		}
	}
	c.VPCIIrqBase = uint32(o.num("vpci_irq_base", 32, false))
	c.CPUResetAddress = o.hex("cpu_reset_address", 64, false)
	c.MsgReplyTimeout = o.hex("msg_reply_timeout", 64, false)
	c.Console = d.console(o.object("console", false))

	for i, raw := range o.array("memory_regions") {
		r := d.object(elemPath(o.field("memory_regions"), i), raw)
		r.allow("phys_start", "virt_start", "size", "flags")
		c.MemRegions = append(c.MemRegions, MemRegion{
			PhysStart: r.hex("phys_start", 64, true),
			VirtStart: r.hex("virt_start", 64, true),
			Size:      r.hex("size", 64, true),
			Flags:     MemFlags(r.flagsReq("flags", memFlagNames, 64)),
		})
	}
	for i, raw := range o.array("cache_regions") {
		r := d.object(elemPath(o.field("cache_regions"), i), raw)
		r.allow("start", "size", "type", "flags")
		c.CacheRegions = append(c.CacheRegions, CacheRegion{
			Start: uint32(r.num("start", 32, false)),
			Size:  uint32(r.num("size", 32, false)),
			Type:  uint8(r.enum("type", cacheTypeNames, 8, false)),
			Flags: uint16(r.flags("flags", cacheFlagNames, 16)),
		})
	}
	for i, raw := range o.array("irqchips") {
		r := d.object(elemPath(o.field("irqchips"), i), raw)
		r.allow("address", "id", "pin_base", "pin_bitmap")
		chip := Irqchip{
			Address: r.hex("address", 64, true),
			ID:      uint32(r.num("id", 32, false)),
			PinBase: uint32(r.num("pin_base", 32, true)),
		}
		words := r.array("pin_bitmap")
		if _, ok := r.vals["pin_bitmap"]; !ok && d.err == nil {
			d.errorf(r.field("pin_bitmap"), "required key is missing")
		}
		if len(words) != 4 && d.err == nil {
			d.errorf(r.field("pin_bitmap"), "%d words, want 4", len(words))
		}
		for k, w := range words {
			if k < 4 {
				chip.PinBitmap[k] = uint32(d.hexValue(elemPath(r.field("pin_bitmap"), k), w, 32))
			}
		}
		c.Irqchips = append(c.Irqchips, chip)
	}
	for i, raw := range o.array("pio_regions") {
		r := d.object(elemPath(o.field("pio_regions"), i), raw)
		r.allow("base", "length")
		c.PIORegions = append(c.PIORegions, PIORegion{
			Base:   uint16(r.hex("base", 16, true)),
			Length: uint16(r.hex("length", 16, true)),
		})
	}
	for i, raw := range o.array("pci_devices") {
		c.PCIDevices = append(c.PCIDevices, d.pciDevice(d.object(elemPath(o.field("pci_devices"), i), raw)))
	}
	for i, raw := range o.array("pci_caps") {
		r := d.object(elemPath(o.field("pci_caps"), i), raw)
		r.allow("id", "start", "len", "flags")
		c.PCICaps = append(c.PCICaps, PCICap{
			ID:    uint16(r.hex("id", 16, true)),
			Start: uint16(r.hex("start", 16, true)),
			Len:   uint16(r.hex("len", 16, true)),
			Flags: uint16(r.flags("flags", pciCapFlagNames, 16)),
		})
	}
	for i, raw := range o.array("stream_ids") {
		c.StreamIDs = append(c.StreamIDs, uint32(d.hexValue(elemPath(o.field("stream_ids"), i), raw, 32)))
	}
}

func (d *jdec) pciDevice(r *jobj) PCIDevice {
	r.allow("type", "iommu", "domain", "bdf", "bar_mask", "caps_start", "num_caps",
		"num_msi_vectors", "msi_64bits", "msi_maskable", "num_msix_vectors",
		"msix_region_size", "msix_address", "shmem_regions_start", "shmem_dev_id",
		"shmem_peers", "shmem_protocol")
	p := PCIDevice{
		Type:   PCIType(r.enum("type", pciTypeNames, 8, true)),
		IOMMU:  uint8(r.num("iommu", 8, false)),
		Domain: uint16(r.num("domain", 16, false)),
	}
	bdf := r.str("bdf", true)
	if d.err == nil {
		v, err := ParseBDF(bdf)
		if err != nil {
			d.errorf(r.field("bdf"), "%w", err)
		}
		p.BDF = v
	}
	if raw, ok := r.take("bar_mask", false); ok && d.err == nil {
		p.BARMask = d.barMask(r.field("bar_mask"), raw)
	}
	p.CapsStart = uint16(r.num("caps_start", 16, false))
	p.NumCaps = uint16(r.num("num_caps", 16, false))
	p.NumMSIVectors = uint8(r.num("num_msi_vectors", 8, false))
	p.MSI64Bits = r.boolean("msi_64bits")
	p.MSIMaskable = r.boolean("msi_maskable")
	p.NumMSIXVectors = uint16(r.num("num_msix_vectors", 16, false))
	p.MSIXRegionSize = uint16(r.hex("msix_region_size", 16, false))
	p.MSIXAddress = r.hex("msix_address", 64, false)
	p.ShmemRegionsStart = uint32(r.num("shmem_regions_start", 32, false))
	p.ShmemDevID = uint8(r.num("shmem_dev_id", 8, false))
	p.ShmemPeers = uint8(r.num("shmem_peers", 8, false))
	p.ShmemProtocol = ShmemProtocol(r.enum("shmem_protocol", shmemProtoNames, 16, false))
	return p
}

func (d *jdec) barMask(path string, raw json.RawMessage) [6]uint32 {
	var mask [6]uint32
	switch rawKind(raw) {
	case "string":
		name := d.stringValue(path, raw)
		for _, p := range barMaskPresets {
			if p.name == name {
				return p.mask
			}
		}
		if d.err == nil {
			d.errorf(path, "unknown preset %q, want intx, msix, intx64k, msix64k or a list of 6 hex words", name)
		}
	case "array":
		words := d.arrayValue(path, raw)
		if len(words) != 6 && d.err == nil {
			d.errorf(path, "%d words, want 6", len(words))
		}
		for k, w := range words {
			if k < 6 {
				mask[k] = uint32(d.hexValue(elemPath(path, k), w, 32))
			}
		}
	default:
		if d.err == nil {
			d.errorf(path, "want a preset name or a list of 6 hex strings, got %s", rawKind(raw))
		}
	}
	return mask
}

func (d *jdec) console(o *jobj) Console {
	o.allow("address", "size", "type", "flags", "divider", "gate_nr", "clock_reg")
	return Console{
		Address:  o.hex("address", 64, false),
		Size:     uint32(o.hex("size", 32, false)),
		Type:     ConsoleType(o.enum("type", consoleTypeNames, 16, false)),
		Flags:    ConsoleFlags(o.flags("flags", consoleFlagNames, 16)),
		Divider:  uint32(o.hex("divider", 32, false)),
		GateNr:   uint32(o.num("gate_nr", 32, false)),
		ClockReg: o.hex("clock_reg", 64, false),
	}
}

// checkName rejects names the binary form cannot hold unchanged.
func checkName(name string) error {
	switch {
	case len(name) > MaxNameLen:
		return fmt.Errorf("%q is %d bytes long, at most %d", name, len(name), MaxNameLen)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%q contains a NUL byte", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%q is not valid UTF-8", name)
	}
	return nil
}

// checkCPUs rejects a CPU set that does not fit an explicit bitmap size.
func checkCPUs(c *Cell) error {
	if c.CPUSetSize != 0 && c.CPUs.Max() >= 0 && uint64(c.CPUs.Max()) >= 8*uint64(c.CPUSetSize) {
		return fmt.Errorf("CPU %d does not fit cpu_set_size %d", c.CPUs.Max(), c.CPUSetSize)
	}
	return nil
}

// ParseBDF reads "bus:device.function", each part in hex, e.g. "00:01.0".
func ParseBDF(s string) (uint16, error) {
	bus, rest, ok1 := strings.Cut(s, ":")
	dev, fn, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return 0, fmt.Errorf(`bad BDF %q, want "bus:device.function" such as "00:01.0"`, s)
	}
	parts := []struct {
		name string
		text string
		max  uint64
	}{{"bus", bus, 0xff}, {"device", dev, 0x1f}, {"function", fn, 7}}
	var v [3]uint64
	for i, p := range parts {
		if p.text == "" || len(p.text) > 4 || strings.ContainsAny(p.text, "+-_xX") {
			return 0, fmt.Errorf("bad BDF %q: bad %s %q", s, p.name, p.text)
		}
		n, err := strconv.ParseUint(p.text, 16, 16)
		if err != nil {
			return 0, fmt.Errorf("bad BDF %q: bad %s %q", s, p.name, p.text)
		}
		if n > p.max {
			return 0, fmt.Errorf("bad BDF %q: %s 0x%x out of range (at most 0x%x)", s, p.name, n, p.max)
		}
		v[i] = n
	}
	return uint16(v[0]<<8 | v[1]<<3 | v[2]), nil
}

// Name tables. They are read-only.

type named struct {
	val  uint64
	name string
}

var archNames = []named{{uint64(ArchX86), "x86"}, {uint64(ArchARM), "arm"}, {uint64(ArchARM64), "arm64"}}

var cellFlagNames = []named{
	{uint64(CellPassiveCommReg), "passive_commreg"},
	{uint64(CellTestDevice), "test_device"},
	{uint64(CellAArch32), "aarch32"},
	{uint64(CellVirtualConsolePermitted), "virtual_console_permitted"},
	{uint64(CellVirtualConsoleActive), "virtual_console_active"},
}

var sysFlagNames = []named{{uint64(SysVirtualDebugConsole), "virtual_debug_console"}}

var memFlagNames = []named{
	{uint64(MemRead), "read"},
	{uint64(MemWrite), "write"},
	{uint64(MemExecute), "execute"},
	{uint64(MemDMA), "dma"},
	{uint64(MemIO), "io"},
	{uint64(MemCommRegion), "comm_region"},
	{uint64(MemLoadable), "loadable"},
	{uint64(MemRootShared), "rootshared"},
	{uint64(MemNoHugepages), "no_hugepages"},
	{uint64(MemIOUnaligned), "io_unaligned"},
	{uint64(MemIO8), "io_8"},
	{uint64(MemIO16), "io_16"},
	{uint64(MemIO32), "io_32"},
	{uint64(MemIO64), "io_64"},
}

var consoleTypeNames = []named{
	{uint64(ConsoleNone), "none"},
	{uint64(ConsoleEFIFB), "efifb"},
	{uint64(Console8250), "8250"},
	{uint64(ConsolePL011), "pl011"},
	{uint64(ConsoleXUARTPS), "xuartps"},
	{uint64(ConsoleMVEBU), "mvebu"},
	{uint64(ConsoleHSCIF), "hscif"},
	{uint64(ConsoleSCIFA), "scifa"},
	{uint64(ConsoleIMX), "imx"},
	{uint64(ConsoleIMXLPUART), "imx_lpuart"},
	{uint64(ConsoleSCIF), "scif"},
}

var consoleFlagNames = []named{
	{uint64(ConsoleAccessMMIO), "mmio"},
	{uint64(ConsoleRegDist4), "regdist4"},
	{uint64(ConsoleFB1920x1080), "fb1920x1080"},
	{uint64(ConsoleInvertedClock), "inverted_gate"},
	{uint64(ConsoleMDRQuirk), "mdr_quirk"},
}

var pciTypeNames = []named{
	{uint64(PCIDeviceType), "device"},
	{uint64(PCIBridge), "bridge"},
	{uint64(PCIIvshmem), "ivshmem"},
}

var shmemProtoNames = []named{
	{uint64(ShmemProtoUndefined), "undefined"},
	{uint64(ShmemProtoVETH), "veth"},
	{uint64(ShmemProtoVirtioFront | VirtioDevNet), "virtio_front_net"},
	{uint64(ShmemProtoVirtioFront | VirtioDevBlock), "virtio_front_block"},
	{uint64(ShmemProtoVirtioFront | VirtioDevConsole), "virtio_front_console"},
	{uint64(ShmemProtoVirtioBack | VirtioDevNet), "virtio_back_net"},
	{uint64(ShmemProtoVirtioBack | VirtioDevBlock), "virtio_back_block"},
	{uint64(ShmemProtoVirtioBack | VirtioDevConsole), "virtio_back_console"},
}

var pciCapFlagNames = []named{{PCICapFlagWrite, "write"}}

var iommuNames = []named{
	{uint64(IOMMUNone), "none"},
	{uint64(IOMMUAMD), "amd"},
	{uint64(IOMMUIntel), "intel"},
	{uint64(IOMMUSMMUv3), "smmuv3"},
	{uint64(IOMMUPVU), "pvu"},
	{uint64(IOMMUARMMMU500), "arm_mmu500"},
}

var cacheTypeNames = []named{{CacheL3Code, "l3_code"}, {CacheL3Data, "l3_data"}, {CacheL3, "l3"}}

var cacheFlagNames = []named{{CacheFlagRootShared, "rootshared"}}

var apicModeNames = []named{{APICModeAuto, "auto"}, {APICModeXAPIC, "xapic"}, {APICModeX2APIC, "x2apic"}}

var barMaskPresets = []struct {
	name string
	mask [6]uint32
}{{"intx", BARMaskINTX}, {"msix", BARMaskMSIX}, {"intx64k", BARMaskINTX64K}, {"msix64k", BARMaskMSIX64K}}

// ---- reading ----

// jdec holds the first error of one parse; after it every getter returns
// zero values, so readers can be written without an error check per field.
type jdec struct {
	err error
}

func (d *jdec) errorf(path, format string, args ...any) {
	if d.err != nil {
		return
	}
	if path == "" {
		d.err = fmt.Errorf(format, args...)
		return
	}
	d.err = fmt.Errorf("%s: "+format, append([]any{path}, args...)...)
}

// jobj is one JSON object with its keys in input order.
type jobj struct {
	d    *jdec
	path string
	keys []string
	vals map[string]json.RawMessage
}

func (o *jobj) field(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

func elemPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// top parses the whole input as one JSON object.
func (d *jdec) top(data []byte) *jobj {
	if !utf8.Valid(data) {
		d.errorf("", "input is not valid UTF-8")
		return &jobj{d: d}
	}
	return d.object("", data)
}

// object parses raw as a JSON object; duplicate keys and trailing data are
// errors. On error it returns an empty object.
func (d *jdec) object(path string, raw []byte) *jobj {
	o := &jobj{d: d, path: path, vals: map[string]json.RawMessage{}}
	if d.err != nil {
		return o
	}
	if k := rawKind(raw); k != "object" {
		d.errorf(path, "want a JSON object, got %s", k)
		return o
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // the opening brace
		d.syntax(path, err)
		return o
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			d.syntax(path, err)
			return o
		}
		key, _ := tok.(string) // object keys are always strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			d.syntax(path, err)
			return o
		}
		if _, dup := o.vals[key]; dup {
			d.errorf(path, "duplicate key %q", key)
			return o
		}
		o.keys = append(o.keys, key)
		o.vals[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		d.syntax(path, err)
		return o
	}
	if _, err := dec.Token(); err != io.EOF {
		d.errorf(path, "unexpected data after the JSON object")
	}
	return o
}

func (d *jdec) syntax(path string, err error) {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		d.errorf(path, "invalid JSON at offset %d: %w", se.Offset, err)
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		d.errorf(path, "invalid JSON: unexpected end of input")
		return
	}
	d.errorf(path, "invalid JSON: %w", err)
}

// allow reports the first key not in keys. It runs before the getters, so
// a misspelt key is reported as such rather than as a missing one.
func (o *jobj) allow(keys ...string) {
	for _, k := range o.keys {
		found := false
		for _, a := range keys {
			if k == a {
				found = true
				break
			}
		}
		if !found {
			o.d.errorf(o.path, "unknown key %q", k)
			return
		}
	}
}

func (o *jobj) take(key string, required bool) (json.RawMessage, bool) {
	raw, ok := o.vals[key]
	if !ok && required {
		o.d.errorf(o.field(key), "required key is missing")
	}
	return raw, ok && o.d.err == nil
}

func rawKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func (o *jobj) str(key string, required bool) string {
	raw, ok := o.take(key, required)
	if !ok {
		return ""
	}
	return o.d.stringValue(o.field(key), raw)
}

func (o *jobj) hex(key string, bits int, required bool) uint64 {
	raw, ok := o.take(key, required)
	if !ok {
		return 0
	}
	return o.d.hexValue(o.field(key), raw, bits)
}

func (o *jobj) num(key string, bits int, required bool) uint64 {
	raw, ok := o.take(key, required)
	if !ok {
		return 0
	}
	path := o.field(key)
	if k := rawKind(raw); k != "number" {
		o.d.errorf(path, "want a number, got %s", k)
		return 0
	}
	text := strings.TrimSpace(string(raw))
	v, err := strconv.ParseUint(text, 10, bits)
	if errors.Is(err, strconv.ErrRange) {
		o.d.errorf(path, "%s does not fit %d bits", text, bits)
		return 0
	}
	if err != nil {
		o.d.errorf(path, "want an unsigned integer, got %s", text)
		return 0
	}
	return v
}

func (o *jobj) boolean(key string) bool {
	raw, ok := o.take(key, false)
	if !ok {
		return false
	}
	if k := rawKind(raw); k != "boolean" {
		o.d.errorf(o.field(key), "want true or false, got %s", k)
		return false
	}
	return bytes.HasPrefix(bytes.TrimSpace(raw), []byte("true"))
}

func (o *jobj) object(key string, required bool) *jobj {
	raw, ok := o.take(key, required)
	if !ok {
		return &jobj{d: o.d, path: o.field(key)}
	}
	return o.d.object(o.field(key), raw)
}

func (o *jobj) array(key string) []json.RawMessage {
	raw, ok := o.take(key, false)
	if !ok {
		return nil
	}
	return o.d.arrayValue(o.field(key), raw)
}

func (o *jobj) enum(key string, names []named, bits int, required bool) uint64 {
	raw, ok := o.take(key, required)
	if !ok {
		return 0
	}
	path := o.field(key)
	s := o.d.stringValue(path, raw)
	if o.d.err != nil {
		return 0
	}
	for _, n := range names {
		if n.name == s {
			return n.val
		}
	}
	if isHex(s) {
		return o.d.hexValue(path, raw, bits)
	}
	o.d.errorf(path, "unknown name %q (known: %s)", s, nameList(names))
	return 0
}

func (o *jobj) flags(key string, names []named, bits int) uint64 {
	return o.flagList(key, names, bits, false)
}

func (o *jobj) flagsReq(key string, names []named, bits int) uint64 {
	return o.flagList(key, names, bits, true)
}

func (o *jobj) flagList(key string, names []named, bits int, required bool) uint64 {
	raw, ok := o.take(key, required)
	if !ok {
		return 0
	}
	path := o.field(key)
	var v uint64
	for i, item := range o.d.arrayValue(path, raw) {
		s := o.d.stringValue(elemPath(path, i), item)
		if o.d.err != nil {
			return 0
		}
		found := false
		for _, n := range names {
			if n.name == s {
				v |= n.val
				found = true
				break
			}
		}
		if found {
			continue
		}
		if !isHex(s) {
			o.d.errorf(path, "unknown flag %q (known: %s)", s, nameList(names))
			return 0
		}
		v |= o.d.hexValue(elemPath(path, i), item, bits)
	}
	return v
}

func nameList(names []named) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n.name)
	}
	return b.String()
}

func isHex(s string) bool { return strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") }

func (d *jdec) stringValue(path string, raw json.RawMessage) string {
	if d.err != nil {
		return ""
	}
	if k := rawKind(raw); k != "string" {
		d.errorf(path, "want a string, got %s", k)
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		d.errorf(path, "bad string: %w", err)
	}
	return s
}

func (d *jdec) hexValue(path string, raw json.RawMessage, bits int) uint64 {
	if d.err != nil {
		return 0
	}
	if k := rawKind(raw); k != "string" {
		d.errorf(path, `want a hex string such as "0x1000", got %s`, k)
		return 0
	}
	s := d.stringValue(path, raw)
	digits, ok := strings.CutPrefix(s, "0x")
	if !ok {
		digits, ok = strings.CutPrefix(s, "0X")
	}
	// ParseUint with base 16 takes neither signs nor underscores, but
	// reject them explicitly for a clear message.
	if !ok || digits == "" || strings.ContainsAny(digits, "+-_") {
		d.errorf(path, `bad hex %q, want "0x" and hex digits`, s)
		return 0
	}
	v, err := strconv.ParseUint(digits, 16, bits)
	if errors.Is(err, strconv.ErrRange) {
		d.errorf(path, "%s does not fit %d bits", s, bits)
		return 0
	}
	if err != nil {
		d.errorf(path, `bad hex %q, want "0x" and hex digits`, s)
		return 0
	}
	return v
}

func (d *jdec) arrayValue(path string, raw json.RawMessage) []json.RawMessage {
	if d.err != nil {
		return nil
	}
	if k := rawKind(raw); k != "array" {
		d.errorf(path, "want a list, got %s", k)
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		d.errorf(path, "bad list: %w", err)
		return nil
	}
	if len(items) == 0 {
		return nil // keep models canonical: no empty non-nil slices
	}
	return items
}

// ---- writing ----

// CellJSON returns the JSON form of a cell configuration.
func CellJSON(c *Cell) ([]byte, error) {
	o := &wobj{}
	o.str("kind", "cell")
	o.str("arch", enumString(uint64(c.Arch), archNames))
	if err := writeCell(o, c); err != nil {
		return nil, err
	}
	return o.encode(), nil
}

// SystemJSON returns the JSON form of a system configuration.
func SystemJSON(s *System) ([]byte, error) {
	if len(s.IOMMUs) > MaxIOMMUUnits {
		return nil, fmt.Errorf("iommu_units: %d units, at most %d", len(s.IOMMUs), MaxIOMMUUnits)
	}
	o := &wobj{}
	o.str("kind", "system")
	o.str("arch", enumString(uint64(s.Arch), archNames))
	o.flags("flags", uint64(s.Flags), sysFlagNames, false)

	hv := &wobj{}
	hv.hex("phys_start", s.HypervisorMemory.PhysStart, true)
	hv.hex("virt_start", s.HypervisorMemory.VirtStart, false)
	hv.hex("size", s.HypervisorMemory.Size, true)
	hv.flags("flags", uint64(s.HypervisorMemory.Flags), memFlagNames, false)
	o.obj("hypervisor_memory", hv, true)
	o.obj("debug_console", consoleObject(s.DebugConsole), false)
	o.hex("pci_mmconfig_base", s.PCIMMConfigBase, false)
	o.num("pci_mmconfig_end_bus", uint64(s.PCIMMConfigEndBus), false)
	o.boolean("pci_is_virtual", s.PCIIsVirtual)
	o.num("pci_domain", uint64(s.PCIDomain), false)

	var units []any
	for _, u := range s.IOMMUs {
		w := &wobj{}
		w.str("type", enumString(uint64(u.Type), iommuNames))
		w.hex("base", u.Base, false)
		w.hex("size", uint64(u.Size), false)
		w.hex("amd_bdf", uint64(u.AMDBDF), false)
		w.hex("amd_base_cap", uint64(u.AMDBaseCap), false)
		w.hex("amd_msi_cap", uint64(u.AMDMSICap), false)
		w.hex("amd_features", uint64(u.AMDFeatures), false)
		w.hex("tlb_base", u.TLBBase, false)
		w.hex("tlb_size", uint64(u.TLBSize), false)
		units = append(units, w)
	}
	o.list("iommu_units", units)

	arm := &wobj{}
	arm.num("maintenance_irq", uint64(s.ARM.MaintenanceIRQ), false)
	arm.num("gic_version", uint64(s.ARM.GICVersion), false)
	arm.hex("gicd_base", s.ARM.GICDBase, false)
	arm.hex("gicc_base", s.ARM.GICCBase, false)
	arm.hex("gich_base", s.ARM.GICHBase, false)
	arm.hex("gicv_base", s.ARM.GICVBase, false)
	arm.hex("gicr_base", s.ARM.GICRBase, false)
	x86 := &wobj{}
	x86.hex("pm_timer_address", uint64(s.X86.PMTimerAddress), false)
	if s.X86.APICMode != 0 {
		x86.str("apic_mode", enumString(uint64(s.X86.APICMode), apicModeNames))
	}
	x86.num("vtd_interrupt_limit", uint64(s.X86.VTDInterruptLimit), false)
	x86.num("tsc_khz", uint64(s.X86.TSCkHz), false)
	x86.num("apic_khz", uint64(s.X86.APICkHz), false)
	plat := &wobj{}
	plat.obj("arm", arm, false)
	plat.obj("x86", x86, false)
	o.obj("platform", plat, false)

	root := &wobj{}
	if s.RootCell.Arch != 0 {
		root.str("arch", enumString(uint64(s.RootCell.Arch), archNames))
	}
	if err := writeCell(root, &s.RootCell); err != nil {
		return nil, fmt.Errorf("root_cell.%w", err)
	}
	o.obj("root_cell", root, true)
	return o.encode(), nil
}

func writeCell(o *wobj, c *Cell) error {
	if err := checkName(c.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if err := checkCPUs(c); err != nil {
		return fmt.Errorf("cpus: %w", err)
	}
	o.str("name", c.Name)
	o.num("id", uint64(c.ID), false)
	o.flags("flags", uint64(c.Flags), cellFlagNames, false)
	o.str("cpus", c.CPUs.String())
	o.num("cpu_set_size", uint64(c.CPUSetSize), false)
	o.num("vpci_irq_base", uint64(c.VPCIIrqBase), false)
	o.hex("cpu_reset_address", c.CPUResetAddress, false)
	o.hex("msg_reply_timeout", c.MsgReplyTimeout, false)
	o.obj("console", consoleObject(c.Console), false)

	var list []any
	for _, r := range c.MemRegions {
		w := &wobj{}
		w.hex("phys_start", r.PhysStart, true)
		w.hex("virt_start", r.VirtStart, true)
		w.hex("size", r.Size, true)
		w.flags("flags", uint64(r.Flags), memFlagNames, true)
		list = append(list, w)
	}
	o.list("memory_regions", list)

	list = nil
	for _, r := range c.CacheRegions {
		w := &wobj{}
		w.num("start", uint64(r.Start), false)
		w.num("size", uint64(r.Size), false)
		if r.Type != 0 {
			w.str("type", enumString(uint64(r.Type), cacheTypeNames))
		}
		w.flags("flags", uint64(r.Flags), cacheFlagNames, false)
		list = append(list, w)
	}
	o.list("cache_regions", list)

	list = nil
	for _, chip := range c.Irqchips {
		w := &wobj{}
		w.hex("address", chip.Address, true)
		w.num("id", uint64(chip.ID), false)
		w.num("pin_base", uint64(chip.PinBase), true)
		words := make([]any, 4)
		for k, v := range chip.PinBitmap {
			words[k] = hexString(uint64(v))
		}
		w.set("pin_bitmap", words)
		list = append(list, w)
	}
	o.list("irqchips", list)

	list = nil
	for _, r := range c.PIORegions {
		w := &wobj{}
		w.hex("base", uint64(r.Base), true)
		w.hex("length", uint64(r.Length), true)
		list = append(list, w)
	}
	o.list("pio_regions", list)

	list = nil
	for _, p := range c.PCIDevices {
		list = append(list, pciDeviceObject(p))
	}
	o.list("pci_devices", list)

	list = nil
	for _, p := range c.PCICaps {
		w := &wobj{}
		w.hex("id", uint64(p.ID), true)
		w.hex("start", uint64(p.Start), true)
		w.hex("len", uint64(p.Len), true)
		w.flags("flags", uint64(p.Flags), pciCapFlagNames, false)
		list = append(list, w)
	}
	o.list("pci_caps", list)

	list = nil
	for _, id := range c.StreamIDs {
		list = append(list, hexString(uint64(id)))
	}
	o.list("stream_ids", list)
	return nil
}

func pciDeviceObject(p PCIDevice) *wobj {
	w := &wobj{}
	w.str("type", enumString(uint64(p.Type), pciTypeNames))
	w.num("iommu", uint64(p.IOMMU), false)
	w.num("domain", uint64(p.Domain), false)
	w.str("bdf", FormatBDF(p.BDF))
	if p.BARMask != [6]uint32{} {
		preset := ""
		for _, b := range barMaskPresets {
			if b.mask == p.BARMask {
				preset = b.name
			}
		}
		if preset != "" {
			w.str("bar_mask", preset)
		} else {
			words := make([]any, 6)
			for k, v := range p.BARMask {
				words[k] = hexString(uint64(v))
			}
			w.set("bar_mask", words)
		}
	}
	w.num("caps_start", uint64(p.CapsStart), false)
	w.num("num_caps", uint64(p.NumCaps), false)
	w.num("num_msi_vectors", uint64(p.NumMSIVectors), false)
	w.boolean("msi_64bits", p.MSI64Bits)
	w.boolean("msi_maskable", p.MSIMaskable)
	w.num("num_msix_vectors", uint64(p.NumMSIXVectors), false)
	w.hex("msix_region_size", uint64(p.MSIXRegionSize), false)
	w.hex("msix_address", p.MSIXAddress, false)
	w.num("shmem_regions_start", uint64(p.ShmemRegionsStart), false)
	w.num("shmem_dev_id", uint64(p.ShmemDevID), false)
	w.num("shmem_peers", uint64(p.ShmemPeers), false)
	if p.ShmemProtocol != 0 {
		w.str("shmem_protocol", enumString(uint64(p.ShmemProtocol), shmemProtoNames))
	}
	return w
}

func consoleObject(c Console) *wobj {
	w := &wobj{}
	w.hex("address", c.Address, false)
	w.hex("size", uint64(c.Size), false)
	if c.Type != 0 {
		w.str("type", enumString(uint64(c.Type), consoleTypeNames))
	}
	w.flags("flags", uint64(c.Flags), consoleFlagNames, false)
	w.hex("divider", uint64(c.Divider), false)
	w.num("gate_nr", uint64(c.GateNr), false)
	w.hex("clock_reg", c.ClockReg, false)
	return w
}

func hexString(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

func enumString(v uint64, names []named) string {
	for _, n := range names {
		if n.val == v {
			return n.name
		}
	}
	return hexString(v)
}

// flagStrings lists the names of the set bits in table order, then any
// remaining bits as one hex string.
func flagStrings(v uint64, names []named) []any {
	out := []any{}
	for _, n := range names {
		if v&n.val == n.val && n.val != 0 {
			out = append(out, n.name)
			v &^= n.val
		}
	}
	if v != 0 {
		out = append(out, hexString(v))
	}
	return out
}

// wobj is an output object: members in insertion order. Values are
// string, uint64 (a number), bool, []any or *wobj.
type wobj struct {
	keys []string
	vals []any
}

func (o *wobj) set(key string, v any) {
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, v)
}

func (o *wobj) str(key, v string) { o.set(key, v) }

func (o *wobj) hex(key string, v uint64, always bool) {
	if v != 0 || always {
		o.set(key, hexString(v))
	}
}

func (o *wobj) num(key string, v uint64, always bool) {
	if v != 0 || always {
		o.set(key, v)
	}
}

func (o *wobj) boolean(key string, v bool) {
	if v {
		o.set(key, true)
	}
}

func (o *wobj) flags(key string, v uint64, names []named, always bool) {
	if v != 0 || always {
		o.set(key, flagStrings(v, names))
	}
}

func (o *wobj) obj(key string, v *wobj, always bool) {
	if len(v.keys) > 0 || always {
		o.set(key, v)
	}
}

func (o *wobj) list(key string, v []any) {
	if len(v) > 0 {
		o.set(key, v)
	}
}

func (o *wobj) encode() []byte {
	var b bytes.Buffer
	writeValue(&b, o, "")
	b.WriteByte('\n')
	return b.Bytes()
}

func writeValue(b *bytes.Buffer, v any, indent string) {
	switch v := v.(type) {
	case string:
		writeString(b, v)
	case uint64:
		b.WriteString(strconv.FormatUint(v, 10))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case *wobj:
		if len(v.keys) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for i, k := range v.keys {
			b.WriteString(indent + "  ")
			writeString(b, k)
			b.WriteString(": ")
			writeValue(b, v.vals[i], indent+"  ")
			if i < len(v.keys)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
	case []any:
		inline := true
		for _, item := range v {
			if _, isObj := item.(*wobj); isObj {
				inline = false
			}
		}
		if inline {
			b.WriteByte('[')
			for i, item := range v {
				if i > 0 {
					b.WriteString(", ")
				}
				writeValue(b, item, indent)
			}
			b.WriteByte(']')
			return
		}
		b.WriteString("[\n")
		for i, item := range v {
			b.WriteString(indent + "  ")
			writeValue(b, item, indent+"  ")
			if i < len(v)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
	}
}

// writeString writes s (valid UTF-8) as a JSON string.
func writeString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
