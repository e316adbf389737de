package csrc

import (
	"fmt"
	"strings"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// name pairs a value with the upstream macro that stands for it.
type name struct {
	v uint64
	s string
}

var (
	sysFlagNames = []name{
		{uint64(cell.SysVirtualDebugConsole), "JAILHOUSE_SYS_VIRTUAL_DEBUG_CONSOLE"},
	}
	cellFlagNames = []name{
		{uint64(cell.CellPassiveCommReg), "JAILHOUSE_CELL_PASSIVE_COMMREG"},
		{uint64(cell.CellTestDevice), "JAILHOUSE_CELL_TEST_DEVICE"},
		{uint64(cell.CellAArch32), "JAILHOUSE_CELL_AARCH32"},
		{uint64(cell.CellVirtualConsolePermitted), "JAILHOUSE_CELL_VIRTUAL_CONSOLE_PERMITTED"},
		{uint64(cell.CellVirtualConsoleActive), "JAILHOUSE_CELL_VIRTUAL_CONSOLE_ACTIVE"},
	}
	memFlagNames = []name{
		{uint64(cell.MemRead), "JAILHOUSE_MEM_READ"},
		{uint64(cell.MemWrite), "JAILHOUSE_MEM_WRITE"},
		{uint64(cell.MemExecute), "JAILHOUSE_MEM_EXECUTE"},
		{uint64(cell.MemDMA), "JAILHOUSE_MEM_DMA"},
		{uint64(cell.MemIO), "JAILHOUSE_MEM_IO"},
		{uint64(cell.MemCommRegion), "JAILHOUSE_MEM_COMM_REGION"},
		{uint64(cell.MemLoadable), "JAILHOUSE_MEM_LOADABLE"},
		{uint64(cell.MemRootShared), "JAILHOUSE_MEM_ROOTSHARED"},
		{uint64(cell.MemNoHugepages), "JAILHOUSE_MEM_NO_HUGEPAGES"},
		{uint64(cell.MemIOUnaligned), "JAILHOUSE_MEM_IO_UNALIGNED"},
		{uint64(cell.MemIO8), "JAILHOUSE_MEM_IO_8"},
		{uint64(cell.MemIO16), "JAILHOUSE_MEM_IO_16"},
		{uint64(cell.MemIO32), "JAILHOUSE_MEM_IO_32"},
		{uint64(cell.MemIO64), "JAILHOUSE_MEM_IO_64"},
	}
	conTypeNames = []name{
		{uint64(cell.ConsoleNone), "JAILHOUSE_CON_TYPE_NONE"},
		{uint64(cell.ConsoleEFIFB), "JAILHOUSE_CON_TYPE_EFIFB"},
		{uint64(cell.Console8250), "JAILHOUSE_CON_TYPE_8250"},
		{uint64(cell.ConsolePL011), "JAILHOUSE_CON_TYPE_PL011"},
		{uint64(cell.ConsoleXUARTPS), "JAILHOUSE_CON_TYPE_XUARTPS"},
		{uint64(cell.ConsoleMVEBU), "JAILHOUSE_CON_TYPE_MVEBU"},
		{uint64(cell.ConsoleHSCIF), "JAILHOUSE_CON_TYPE_HSCIF"},
		{uint64(cell.ConsoleSCIFA), "JAILHOUSE_CON_TYPE_SCIFA"},
		{uint64(cell.ConsoleIMX), "JAILHOUSE_CON_TYPE_IMX"},
		{uint64(cell.ConsoleIMXLPUART), "JAILHOUSE_CON_TYPE_IMX_LPUART"},
		{uint64(cell.ConsoleSCIF), "JAILHOUSE_CON_TYPE_SCIF"},
	}
	conFlagNames = []name{
		{uint64(cell.ConsoleAccessMMIO), "JAILHOUSE_CON_ACCESS_MMIO"},
		{uint64(cell.ConsoleRegDist4), "JAILHOUSE_CON_REGDIST_4"},
		{uint64(cell.ConsoleFB1920x1080), "JAILHOUSE_CON_FB_1920x1080"},
		{uint64(cell.ConsoleInvertedClock), "JAILHOUSE_CON_INVERTED_GATE"},
		{uint64(cell.ConsoleMDRQuirk), "JAILHOUSE_CON_MDR_QUIRK"},
	}
	pciTypeNames = []name{
		{uint64(cell.PCIDeviceType), "JAILHOUSE_PCI_TYPE_DEVICE"},
		{uint64(cell.PCIBridge), "JAILHOUSE_PCI_TYPE_BRIDGE"},
		{uint64(cell.PCIIvshmem), "JAILHOUSE_PCI_TYPE_IVSHMEM"},
	}
	iommuTypeNames = []name{
		{uint64(cell.IOMMUAMD), "JAILHOUSE_IOMMU_AMD"},
		{uint64(cell.IOMMUIntel), "JAILHOUSE_IOMMU_INTEL"},
		{uint64(cell.IOMMUSMMUv3), "JAILHOUSE_IOMMU_SMMUV3"},
		{uint64(cell.IOMMUPVU), "JAILHOUSE_IOMMU_PVU"},
		{uint64(cell.IOMMUARMMMU500), "JAILHOUSE_IOMMU_ARM_MMU500"},
	}
	cacheTypeNames = []name{
		{cell.CacheL3Code, "JAILHOUSE_CACHE_L3_CODE"},
		{cell.CacheL3Data, "JAILHOUSE_CACHE_L3_DATA"},
		{cell.CacheL3, "JAILHOUSE_CACHE_L3"},
	}
	cacheFlagNames = []name{
		{cell.CacheFlagRootShared, "JAILHOUSE_CACHE_ROOTSHARED"},
	}
	capFlagNames = []name{
		{cell.PCICapFlagWrite, "JAILHOUSE_PCICAPS_WRITE"},
	}
	apicModeNames = []name{
		{cell.APICModeAuto, "JAILHOUSE_APIC_MODE_AUTO"},
		{cell.APICModeXAPIC, "JAILHOUSE_APIC_MODE_XAPIC"},
		{cell.APICModeX2APIC, "JAILHOUSE_APIC_MODE_X2APIC"},
	}
	archNames = []name{
		{uint64(cell.ArchX86), "JAILHOUSE_X86"},
		{uint64(cell.ArchARM), "JAILHOUSE_ARM"},
		{uint64(cell.ArchARM64), "JAILHOUSE_ARM64"},
	}
	virtioDevNames = []name{
		{cell.VirtioDevNet, "VIRTIO_DEV_NET"},
		{cell.VirtioDevBlock, "VIRTIO_DEV_BLOCK"},
		{cell.VirtioDevConsole, "VIRTIO_DEV_CONSOLE"},
	}
)

// flagExpr returns v as an OR of flag macros; bits without a name are
// appended in hex, so the expression always has the value v.
func flagExpr(v uint64, names []name) string {
	if v == 0 {
		return "0"
	}
	var terms []string
	for _, n := range names {
		if v&n.v == n.v {
			terms = append(terms, n.s)
			v &^= n.v
		}
	}
	if v != 0 {
		terms = append(terms, fmt.Sprintf("0x%x", v))
	}
	return strings.Join(terms, " | ")
}

// nameOr returns the macro for v, or v in hex if it has none.
func nameOr(v uint64, names []name) string {
	for _, n := range names {
		if n.v == v {
			return n.s
		}
	}
	return fmt.Sprintf("0x%x", v)
}

func archName(a cell.Arch) (string, error) {
	for _, n := range archNames {
		if n.v == uint64(a) {
			return n.s, nil
		}
	}
	return "", fmt.Errorf("unknown architecture %d", a)
}

// shmemProtocol spells a shared-memory protocol the way upstream's
// configs do: a name, or a range base plus an offset.
func shmemProtocol(p cell.ShmemProtocol) string {
	v := uint64(p)
	switch {
	case p == cell.ShmemProtoUndefined:
		return "JAILHOUSE_SHMEM_PROTO_UNDEFINED"
	case p == cell.ShmemProtoVETH:
		return "JAILHOUSE_SHMEM_PROTO_VETH"
	case p >= cell.ShmemProtoVirtioBack:
		return plus("JAILHOUSE_SHMEM_PROTO_VIRTIO_BACK", v-uint64(cell.ShmemProtoVirtioBack), virtioDevNames)
	case p >= cell.ShmemProtoVirtioFront:
		return plus("JAILHOUSE_SHMEM_PROTO_VIRTIO_FRONT", v-uint64(cell.ShmemProtoVirtioFront), virtioDevNames)
	case p >= cell.ShmemProtoCustom:
		return plus("JAILHOUSE_SHMEM_PROTO_CUSTOM", v-uint64(cell.ShmemProtoCustom), nil)
	}
	return fmt.Sprintf("0x%x", v)
}

// plus returns "base + offset", naming the offset if it has a name.
func plus(base string, off uint64, names []name) string {
	if off == 0 {
		return base
	}
	return base + " + " + nameOr(off, names)
}

// barMask returns an ivshmem preset macro or a braced list of six words.
func barMask(m [6]uint32) string {
	switch m {
	case cell.BARMaskINTX:
		return "JAILHOUSE_IVSHMEM_BAR_MASK_INTX"
	case cell.BARMaskMSIX:
		return "JAILHOUSE_IVSHMEM_BAR_MASK_MSIX"
	case cell.BARMaskINTX64K:
		return "JAILHOUSE_IVSHMEM_BAR_MASK_INTX_64K"
	case cell.BARMaskMSIX64K:
		return "JAILHOUSE_IVSHMEM_BAR_MASK_MSIX_64K"
	}
	return fmt.Sprintf("{ 0x%08x, 0x%08x, 0x%08x, 0x%08x, 0x%08x, 0x%08x }", m[0], m[1], m[2], m[3], m[4], m[5])
}

// capID marks extended capabilities with the upstream macro.
func capID(id uint16) string {
	if id&cell.PCICapExtended != 0 {
		return fmt.Sprintf("JAILHOUSE_PCI_EXT_CAP | 0x%x", id&^cell.PCICapExtended)
	}
	return fmt.Sprintf("0x%x", id)
}

// irqList describes the interrupt ids an irqchip grants as a range list,
// e.g. "interrupts 33, 140-141".
func irqList(ic cell.Irqchip) string {
	var ranges []string
	start, prev := -1, -1
	flush := func() {
		if start < 0 {
			return
		}
		if start == prev {
			ranges = append(ranges, fmt.Sprintf("%d", uint64(ic.PinBase)+uint64(start)))
		} else {
			ranges = append(ranges, fmt.Sprintf("%d-%d", uint64(ic.PinBase)+uint64(start), uint64(ic.PinBase)+uint64(prev)))
		}
		start = -1
	}
	for b := range 128 {
		if ic.PinBitmap[b/32]&(1<<(b%32)) == 0 {
			flush()
			continue
		}
		if start < 0 {
			start = b
		}
		prev = b
	}
	flush()
	switch {
	case len(ranges) == 0:
		return ""
	case len(ranges) == 1 && !strings.Contains(ranges[0], "-"):
		return "interrupt " + ranges[0]
	}
	return "interrupts " + strings.Join(ranges, ", ")
}

// addr formats an address in hex with at least eight digits, as
// upstream's configs write them; zero stays "0x0".
func addr(v uint64) string {
	if v == 0 {
		return "0x0"
	}
	return fmt.Sprintf("0x%08x", v)
}

// quote returns s as a C string literal. Anything outside printable ASCII
// is an octal escape (always three digits, so a following digit cannot
// join it), and '?' is escaped so that no trigraph can form.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c == '?':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
