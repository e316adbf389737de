package celllinux

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/u-root/u-root/pkg/dt"
)

// Region flag combinations of the reference configs.
const (
	fRO      = cell.MemRead | cell.MemRootShared
	fRW      = cell.MemRead | cell.MemWrite | cell.MemRootShared
	fIO      = cell.MemRead | cell.MemWrite | cell.MemIO | cell.MemRootShared
	fLoader  = cell.MemRead | cell.MemWrite | cell.MemExecute | cell.MemLoadable
	fRAM     = cell.MemRead | cell.MemWrite | cell.MemExecute | cell.MemDMA | cell.MemLoadable
	fComm    = cell.MemRead | cell.MemWrite | cell.MemCommRegion
	mib      = 1 << 20
	pageMask = pageSize - 1
)

// qemuLinuxDemo is configs/arm64/qemu-arm64-linux-demo.c (abi §7.3).
func qemuLinuxDemo() *cell.Cell {
	return &cell.Cell{
		Arch:  cell.ArchARM64,
		Name:  "qemu-arm64-linux-demo",
		Flags: cell.CellPassiveCommReg | cell.CellVirtualConsolePermitted,
		CPUs:  cpuset.Of(2, 3),
		MemRegions: []cell.MemRegion{
			{PhysStart: 0x7faf0000, VirtStart: 0x7faf0000, Size: 0x1000, Flags: fRO},
			{PhysStart: 0x7faf1000, VirtStart: 0x7faf1000, Size: 0x9000, Flags: fRW},
			{PhysStart: 0x7fafa000, VirtStart: 0x7fafa000, Size: 0x2000, Flags: fRO},
			{PhysStart: 0x7fafc000, VirtStart: 0x7fafc000, Size: 0x2000, Flags: fRO},
			{PhysStart: 0x7fafe000, VirtStart: 0x7fafe000, Size: 0x2000, Flags: fRW},
			{PhysStart: 0x7fb00000, VirtStart: 0x7fb00000, Size: 0x1000, Flags: fRO},
			{},
			{PhysStart: 0x7fb01000, VirtStart: 0x7fb01000, Size: 0x7f000, Flags: fRO},
			{PhysStart: 0x7fb80000, VirtStart: 0x7fb80000, Size: 0x7f000, Flags: fRW},
			{PhysStart: 0x09000000, VirtStart: 0x09000000, Size: 0x1000, Flags: fIO},
			{PhysStart: 0x7f900000, VirtStart: 0, Size: 0x10000, Flags: fLoader},
			{PhysStart: 0x70000000, VirtStart: 0x70000000, Size: 0x8000000, Flags: fRAM},
			{PhysStart: 0, VirtStart: 0x80000000, Size: 0x1000, Flags: fComm},
		},
		Irqchips: []cell.Irqchip{
			{Address: 0x08000000, PinBase: 32, PinBitmap: [4]uint32{0x2, 0, 0, 0x3000}},
		},
		VPCIIrqBase:     108,
		CPUResetAddress: 0,
		Console: cell.Console{Address: 0x09000000, Type: cell.ConsolePL011,
			Flags: cell.ConsoleAccessMMIO | cell.ConsoleRegDist4},
	}
}

// zcu102LinuxDemo is configs/arm64/zynqmp-zcu102-linux-demo.c (abi §7.9),
// memory regions only.
func zcu102LinuxDemo() *cell.Cell {
	return &cell.Cell{
		Arch:  cell.ArchARM64,
		Name:  "ZynqMP-linux-demo",
		Flags: cell.CellPassiveCommReg,
		CPUs:  cpuset.Of(2, 3),
		MemRegions: []cell.MemRegion{
			{PhysStart: 0x800400000, VirtStart: 0x800400000, Size: 0x1000, Flags: fRO},
			{},
			{PhysStart: 0x800401000, VirtStart: 0x800401000, Size: 0x7f000, Flags: fRO},
			{PhysStart: 0x800480000, VirtStart: 0x800480000, Size: 0x7f000, Flags: fRW},
			{PhysStart: 0x800700000, VirtStart: 0x800700000, Size: 0x1000, Flags: fRO},
			{},
			{PhysStart: 0x800701000, VirtStart: 0x800701000, Size: 0x7f000, Flags: fRW},
			{PhysStart: 0x800780000, VirtStart: 0x800780000, Size: 0x7f000, Flags: fRO},
			{PhysStart: 0xff010000, VirtStart: 0xff010000, Size: 0x1000, Flags: fIO},
			{PhysStart: 0x800600000, VirtStart: 0, Size: 0x10000, Flags: fLoader},
			{PhysStart: 0x810000000, VirtStart: 0x810000000, Size: 0x8000000, Flags: fRAM},
			{PhysStart: 0, VirtStart: 0x80000000, Size: 0x1000, Flags: fComm},
		},
	}
}

// kernelImage returns an arm64 Image of size bytes with the given
// text_offset; the body is a recognisable pattern.
func kernelImage(size int, textOffset uint64) []byte {
	b := make([]byte, size)
	for i := imageHeaderSize; i < size; i++ {
		b[i] = byte(i * 7)
	}
	binary.LittleEndian.PutUint64(b[8:], textOffset)
	binary.LittleEndian.PutUint64(b[16:], uint64(size))
	copy(b[56:], imageMagic)
	return b
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dtbOpts varies the test device tree.
type dtbOpts struct {
	addrCells, sizeCells uint32
	noAddrCells          bool
	noSizeCells          bool
	extraRoot            []*dt.Node // appended to the root's children
	pad                  int        // bytes of an extra property, to grow the tree
}

// inmateDTB builds a device tree shaped like inmate-qemu-arm64.dts (abi
// §7.6): no /memory and no /chosen, which cell linux adds.
func inmateDTB(t testing.TB, o dtbOpts) []byte {
	t.Helper()
	if o.addrCells == 0 {
		o.addrCells, o.sizeCells = 2, 2
	}
	reg := func(vals ...uint64) dt.Property {
		var b []byte
		for _, v := range vals {
			b = binary.BigEndian.AppendUint64(b, v)
		}
		return dt.Property{Name: "reg", Value: b}
	}
	props := []dt.Property{dt.PropertyString("model", "Jailhouse cell on QEMU ARM64")}
	if !o.noAddrCells {
		props = append(props, dt.PropertyU32("#address-cells", o.addrCells))
	}
	if !o.noSizeCells {
		props = append(props, dt.PropertyU32("#size-cells", o.sizeCells))
	}
	props = append(props, dt.PropertyU32("interrupt-parent", 1))
	if o.pad > 0 {
		props = append(props, dt.Property{Name: "padding", Value: make([]byte, o.pad)})
	}
	cpu := func(n uint64) *dt.Node {
		return dt.NewNode("cpu@"+string(rune('0'+n)), dt.WithProperty(
			dt.Property{Name: "compatible", Value: []byte("arm,cortex-a57\x00arm,armv8\x00")},
			dt.PropertyString("device_type", "cpu"),
			reg(n),
			dt.PropertyString("enable-method", "psci"),
		))
	}
	children := []*dt.Node{
		dt.NewNode("hypervisor", dt.WithProperty(dt.PropertyString("compatible", "jailhouse,cell"))),
		dt.NewNode("cpus", dt.WithProperty(dt.PropertyU32("#address-cells", 2), dt.PropertyU32("#size-cells", 0)),
			dt.WithChildren(cpu(2), cpu(3))),
		dt.NewNode("psci", dt.WithProperty(dt.PropertyString("compatible", "arm,psci-0.2"), dt.PropertyString("method", "smc"))),
		dt.NewNode("timer", dt.WithProperty(dt.PropertyString("compatible", "arm,armv8-timer"),
			dt.PropertyU32Array("interrupts", []uint32{1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4}))),
		dt.NewNode("interrupt-controller@d1d00000", dt.WithProperty(dt.PropertyString("compatible", "arm,gic-v3"),
			dt.PropertyU32("#interrupt-cells", 3), dt.Property{Name: "interrupt-controller"},
			reg(0x08000000, 0x10000, 0x080a0000, 0xf60000), dt.PropertyU32("phandle", 1))),
		dt.NewNode("serial@9000000", dt.WithProperty(dt.Property{Name: "compatible", Value: []byte("arm,pl011\x00arm,primecell\x00")},
			reg(0x09000000, 0x1000), dt.PropertyU32Array("interrupts", []uint32{0, 1, 4}))),
		dt.NewNode("pci@7000000", dt.WithProperty(dt.PropertyString("compatible", "pci-host-ecam-generic"),
			dt.PropertyString("device_type", "pci"), dt.PropertyU32Array("bus-range", []uint32{0, 0}),
			dt.PropertyU32("#address-cells", 3), dt.PropertyU32("#size-cells", 2), reg(0x08e00000, 0x100000))),
	}
	children = append(children, o.extraRoot...)
	fdt := &dt.FDT{
		Header:   dt.Header{Magic: dt.Magic, Version: 17, LastCompVersion: 16},
		RootNode: dt.NewNode("", dt.WithProperty(props...), dt.WithChildren(children...)),
	}
	var buf bytes.Buffer
	if _, err := fdt.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readDTB(t *testing.T, b []byte) *dt.FDT {
	t.Helper()
	fdt, err := dt.ReadFDT(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("reading edited DTB: %v", err)
	}
	return fdt
}

// propOf returns /<node>/<name>, failing if the node or property is missing
// or appears twice.
func propOf(t *testing.T, fdt *dt.FDT, node, name string) []byte {
	t.Helper()
	var found []byte
	nodes, props := 0, 0
	for _, c := range fdt.RootNode.Children {
		if c.Name != node {
			continue
		}
		nodes++
		for _, p := range c.Properties {
			if p.Name == name {
				props++
				found = p.Value
			}
		}
	}
	if nodes != 1 || props != 1 {
		t.Fatalf("/%s: %d nodes, %d %q properties; want exactly one each", node, nodes, props, name)
	}
	return found
}

func hasNode(fdt *dt.FDT, name string) bool {
	_, ok := fdt.RootNode.LookupChildByName(name)
	return ok
}

func be64(vals ...uint64) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

func be32(vals ...uint32) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func pageAlign(n int) uint64 { return (uint64(n) + pageMask) &^ pageMask }

func TestPlanAddresses(t *testing.T) {
	const kernelLen = 3*mib + 123 // not page-aligned on purpose
	tests := []struct {
		name        string
		cfg         *cell.Cell
		textOffset  uint64
		dtb         dtbOpts
		initrd      []byte
		factor      int
		wantRegion  int
		wantDTB     uint64
		wantKernel  uint64
		wantDTBSize uint64
		wantRamdisk uint64 // 0: no initrd
	}{
		{
			name: "qemu linux-demo, no initrd", cfg: qemuLinuxDemo(),
			wantRegion: 11, wantDTB: 0x70000000, wantKernel: 0x70200000, wantDTBSize: 0x2000,
		},
		{
			name: "qemu linux-demo, pre-5.8 text_offset", cfg: qemuLinuxDemo(), textOffset: 0x80000,
			wantRegion: 11, wantDTB: 0x70000000, wantKernel: 0x70280000, wantDTBSize: 0x2000,
		},
		{
			// kernel_size is doubled with an initrd (factor 1).
			name: "qemu linux-demo with initrd", cfg: qemuLinuxDemo(), initrd: bytes.Repeat([]byte{0xa5}, 5000),
			wantRegion: 11, wantDTB: 0x70000000, wantKernel: 0x70200000, wantDTBSize: 0x2000,
			wantRamdisk: 0x70200000 + 2*pageAlign(kernelLen),
		},
		{
			name: "qemu linux-demo with initrd, factor 3", cfg: qemuLinuxDemo(), initrd: []byte("initrd"), factor: 3,
			textOffset: 0x80000,
			wantRegion: 11, wantDTB: 0x70000000, wantKernel: 0x70280000, wantDTBSize: 0x2000,
			wantRamdisk: 0x70280000 + 4*pageAlign(kernelLen),
		},
		{
			// A DTB over 4 KiB takes one more page; the kernel stays at
			// the next 2 MiB boundary.
			name: "qemu linux-demo, 6 KiB DTB", cfg: qemuLinuxDemo(), dtb: dtbOpts{pad: 6000},
			wantRegion: 11, wantDTB: 0x70000000, wantKernel: 0x70200000, wantDTBSize: 0x3000,
		},
		{
			name: "zcu102 linux-demo", cfg: zcu102LinuxDemo(),
			wantRegion: 10, wantDTB: 0x810000000, wantKernel: 0x810200000, wantDTBSize: 0x2000,
		},
		{
			// RAM at virt 0 leaves room for the loader before the DTB.
			name: "RAM at virt 0", cfg: &cell.Cell{CPUResetAddress: 0, MemRegions: []cell.MemRegion{
				{PhysStart: 0x60000000, VirtStart: 0, Size: 0x8000000, Flags: fRAM},
			}},
			wantRegion: 0, wantDTB: 0x2000, wantKernel: 0x200000, wantDTBSize: 0x2000,
		},
		{
			// The first region that fits wins, not the largest.
			name: "first fitting region", cfg: &cell.Cell{MemRegions: []cell.MemRegion{
				{VirtStart: 0x40000000, Size: 0x100000, Flags: fRAM},
				{VirtStart: 0x50000000, Size: 0x1000000, Flags: fRAM},
				{VirtStart: 0x60000000, Size: 0x10000000, Flags: fRAM},
			}},
			wantRegion: 1, wantDTB: 0x50000000, wantKernel: 0x50200000, wantDTBSize: 0x2000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kernel := kernelImage(kernelLen, tt.textOffset)
			l, err := Plan(tt.cfg, kernel, inmateDTB(t, tt.dtb), tt.initrd, "console=ttyAMA0", tt.factor)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got, want uint64) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %#x, want %#x", what, got, want)
				}
			}
			if l.Region != tt.wantRegion {
				t.Errorf("region = %d, want %d", l.Region, tt.wantRegion)
			}
			check("dtb_addr", l.DTBAddr, tt.wantDTB)
			check("kernel_addr", l.KernelAddr, tt.wantKernel)
			check("dtb_size", l.DTBSize, tt.wantDTBSize)
			check("text_offset", l.TextOffset, tt.textOffset)
			check("loader address", l.LoaderAddr, tt.cfg.CPUResetAddress)
			check("params address", l.ParamsAddr, tt.cfg.CPUResetAddress+0x1000)
			if tt.wantRamdisk != 0 {
				check("ramdisk_addr", l.RamdiskAddr, tt.wantRamdisk)
			}
			wantParams := "kernel=0x" + hex(tt.wantKernel) + " dtb=0x" + hex(tt.wantDTB)
			if l.Params != wantParams {
				t.Errorf("params = %q, want %q", l.Params, wantParams)
			}
			if !bytes.Equal(l.Kernel, kernel) {
				t.Error("kernel image changed")
			}
		})
	}
}

func hex(v uint64) string { return strconv.FormatUint(v, 16) }

func TestPlanImagesOrder(t *testing.T) {
	loader := []byte("LOADER")
	initrd := []byte("INITRD")
	for _, withInitrd := range []bool{false, true} {
		name := "without initrd"
		var in []byte
		if withInitrd {
			name, in = "with initrd", initrd
		}
		t.Run(name, func(t *testing.T) {
			cfg := qemuLinuxDemo()
			cfg.CPUResetAddress = 0 // loader region at virt 0
			l, err := Plan(cfg, kernelImage(8192, 0), inmateDTB(t, dtbOpts{}), in, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			imgs := l.Images(loader)
			want := []Image{
				{"loader", loader, 0},
				{"kernel", l.Kernel, 0x70200000},
				{"dtb", l.DTB, 0x70000000},
			}
			if withInitrd {
				want = append(want, Image{"initrd", initrd, l.RamdiskAddr})
			}
			want = append(want, Image{"params", []byte(l.Params), 0x1000})
			if len(imgs) != len(want) {
				t.Fatalf("%d images, want %d", len(imgs), len(want))
			}
			for i := range want {
				if imgs[i].Name != want[i].Name || imgs[i].Address != want[i].Address || !bytes.Equal(imgs[i].Data, want[i].Data) {
					t.Errorf("image %d = %s@%#x (%d bytes), want %s@%#x (%d bytes)", i,
						imgs[i].Name, imgs[i].Address, len(imgs[i].Data), want[i].Name, want[i].Address, len(want[i].Data))
				}
			}
			if bytes.HasSuffix(imgs[len(imgs)-1].Data, []byte{0}) {
				t.Error("parameter string carries a NUL")
			}
		})
	}
}

func TestPlanDTBContents(t *testing.T) {
	t.Run("64-bit cells with initrd", func(t *testing.T) {
		initrd := bytes.Repeat([]byte{1}, 0x1234)
		l, err := Plan(qemuLinuxDemo(), kernelImage(4*mib, 0), inmateDTB(t, dtbOpts{}), initrd,
			"console=ttyAMA0 ip=192.168.19.2", 0)
		if err != nil {
			t.Fatal(err)
		}
		fdt := readDTB(t, l.DTB)
		if got := propOf(t, fdt, "memory", "device_type"); string(got) != "memory\x00" {
			t.Errorf("/memory/device_type = %q", got)
		}
		// The loader region (virt 0, 64 KiB) is not RAM and stays out.
		if got, want := propOf(t, fdt, "memory", "reg"), be64(0x70000000, 0x8000000); !bytes.Equal(got, want) {
			t.Errorf("/memory/reg = % x, want % x", got, want)
		}
		if got := propOf(t, fdt, "chosen", "bootargs"); string(got) != "console=ttyAMA0 ip=192.168.19.2\x00" {
			t.Errorf("/chosen/bootargs = %q", got)
		}
		if got, want := propOf(t, fdt, "chosen", "linux,initrd-start"), be64(l.RamdiskAddr); !bytes.Equal(got, want) {
			t.Errorf("initrd-start = % x, want % x", got, want)
		}
		if got, want := propOf(t, fdt, "chosen", "linux,initrd-end"), be64(l.RamdiskAddr+0x1234); !bytes.Equal(got, want) {
			t.Errorf("initrd-end = % x, want % x", got, want)
		}
		if l.RamdiskAddr != 0x70200000+2*4*mib {
			t.Errorf("ramdisk_addr = %#x", l.RamdiskAddr)
		}
	})
	t.Run("32-bit cells", func(t *testing.T) {
		l, err := Plan(qemuLinuxDemo(), kernelImage(4*mib, 0), inmateDTB(t, dtbOpts{addrCells: 1, sizeCells: 1}),
			[]byte("rd"), "quiet", 0)
		if err != nil {
			t.Fatal(err)
		}
		fdt := readDTB(t, l.DTB)
		if got, want := propOf(t, fdt, "memory", "reg"), be32(0x70000000, 0x8000000); !bytes.Equal(got, want) {
			t.Errorf("/memory/reg = % x, want % x", got, want)
		}
		if got, want := propOf(t, fdt, "chosen", "linux,initrd-start"), be32(uint32(l.RamdiskAddr)); !bytes.Equal(got, want) {
			t.Errorf("initrd-start = % x, want % x", got, want)
		}
		if got, want := propOf(t, fdt, "chosen", "linux,initrd-end"), be32(uint32(l.RamdiskAddr+2)); !bytes.Equal(got, want) {
			t.Errorf("initrd-end = % x, want % x", got, want)
		}
	})
	t.Run("mixed cells", func(t *testing.T) {
		l, err := Plan(qemuLinuxDemo(), kernelImage(4*mib, 0), inmateDTB(t, dtbOpts{addrCells: 2, sizeCells: 1}), nil, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		want := append(be64(0x70000000), be32(0x8000000)...)
		if got := propOf(t, readDTB(t, l.DTB), "memory", "reg"); !bytes.Equal(got, want) {
			t.Errorf("/memory/reg = % x, want % x", got, want)
		}
	})
	t.Run("no cmdline and no initrd leave /chosen alone", func(t *testing.T) {
		l, err := Plan(qemuLinuxDemo(), kernelImage(4*mib, 0), inmateDTB(t, dtbOpts{}), nil, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if hasNode(readDTB(t, l.DTB), "chosen") {
			t.Error("/chosen was created")
		}
	})
	t.Run("every RAM region listed, small loader RAM at 0 left out", func(t *testing.T) {
		cfg := &cell.Cell{MemRegions: []cell.MemRegion{
			{VirtStart: 0, Size: 0x10000, Flags: fRAM}, // loader-sized: left out
			{VirtStart: 0x40000000, Size: 0x8000000, Flags: fRAM},
			{VirtStart: 0x50000000, Size: 0x1000, Flags: fRW},
			{VirtStart: 0x60000000, Size: 0x100000, Flags: fRAM | cell.MemNoHugepages},
		}}
		l, err := Plan(cfg, kernelImage(4096, 0), inmateDTB(t, dtbOpts{}), nil, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		want := be64(0x40000000, 0x8000000, 0x60000000, 0x100000)
		if got := propOf(t, readDTB(t, l.DTB), "memory", "reg"); !bytes.Equal(got, want) {
			t.Errorf("/memory/reg = % x, want % x", got, want)
		}
	})
	t.Run("existing nodes edited in place, rest kept", func(t *testing.T) {
		in := inmateDTB(t, dtbOpts{extraRoot: []*dt.Node{
			dt.NewNode("memory", dt.WithProperty(dt.PropertyString("device_type", "memory"),
				dt.Property{Name: "reg", Value: be64(0x1000, 0x2000)})),
			dt.NewNode("chosen", dt.WithProperty(dt.PropertyString("bootargs", "old"),
				dt.PropertyString("stdout-path", "serial0"))),
		}})
		l, err := Plan(qemuLinuxDemo(), kernelImage(4096, 0), in, nil, "new", 0)
		if err != nil {
			t.Fatal(err)
		}
		out := readDTB(t, l.DTB)
		if got, want := propOf(t, out, "memory", "reg"), be64(0x70000000, 0x8000000); !bytes.Equal(got, want) {
			t.Errorf("/memory/reg = % x, want % x", got, want)
		}
		if got := propOf(t, out, "chosen", "bootargs"); string(got) != "new\x00" {
			t.Errorf("bootargs = %q", got)
		}
		if got := propOf(t, out, "chosen", "stdout-path"); string(got) != "serial0\x00" {
			t.Errorf("stdout-path = %q", got)
		}
		// Everything but /memory and /chosen is unchanged.
		orig := readDTB(t, in)
		if len(out.RootNode.Children) != len(orig.RootNode.Children) {
			t.Fatalf("%d root children, want %d", len(out.RootNode.Children), len(orig.RootNode.Children))
		}
		for i, c := range orig.RootNode.Children {
			if c.Name == "memory" || c.Name == "chosen" {
				continue
			}
			if got := out.RootNode.Children[i]; got.String() != c.String() {
				t.Errorf("node %s changed:\n%s\nwant\n%s", c.Name, got, c)
			}
		}
		if out.RootNode.String() == "" || len(out.RootNode.Properties) != len(orig.RootNode.Properties) {
			t.Error("root properties changed")
		}
	})
}

func TestPlanErrors(t *testing.T) {
	small := &cell.Cell{MemRegions: []cell.MemRegion{
		{VirtStart: 0, Size: 0x10000, Flags: fLoader},
		{VirtStart: 0x40000000, Size: 4 * mib, Flags: fRAM},
	}}
	badMagic := kernelImage(8192, 0)
	copy(badMagic[56:], "RSC\x05") // the RISC-V Image magic
	twoMemory := inmateDTB(t, dtbOpts{extraRoot: []*dt.Node{dt.NewNode("memory"), dt.NewNode("memory")}})
	tests := []struct {
		name    string
		cfg     *cell.Cell
		kernel  []byte
		dtb     []byte
		initrd  []byte
		factor  int
		wantErr error  // checked with errors.Is when set
		wantMsg string // substring of the message
	}{
		{name: "kernel too big for the region", cfg: small, kernel: kernelImage(2*mib, 0),
			wantErr: ErrNoSpace, wantMsg: "No space found to load all images"},
		{name: "initrd doubling too big", cfg: small, kernel: kernelImage(mib, 0), initrd: []byte{1},
			wantErr: ErrNoSpace},
		{name: "initrd past the region end", cfg: small, kernel: kernelImage(4096, 0), initrd: make([]byte, 3*mib),
			wantErr: ErrNoSpace, wantMsg: "initrd"},
		{name: "gzip kernel larger than any RAM", cfg: small, kernel: gz(t, kernelImage(5*mib, 0)),
			wantErr: ErrNoSpace},
		{name: "huge text_offset", cfg: qemuLinuxDemo(), kernel: kernelImage(4096, 1<<63),
			wantErr: ErrNoSpace},
		{name: "no RAM at all", cfg: &cell.Cell{MemRegions: []cell.MemRegion{{VirtStart: 0, Size: 1 << 30, Flags: fLoader}}},
			kernel: kernelImage(4096, 0), wantErr: ErrNoSpace},
		{name: "bad Image magic", cfg: qemuLinuxDemo(), kernel: badMagic, wantErr: ErrBadKernel, wantMsg: "magic"},
		{name: "short kernel", cfg: qemuLinuxDemo(), kernel: []byte("tiny"), wantErr: ErrBadKernel},
		{name: "corrupt gzip", cfg: qemuLinuxDemo(), kernel: gz(t, kernelImage(8192, 0))[:40], wantMsg: "gunzip"},
		{name: "no #address-cells", cfg: qemuLinuxDemo(), kernel: kernelImage(4096, 0),
			dtb: inmateDTB(t, dtbOpts{noAddrCells: true}), wantErr: ErrInvalidDTB, wantMsg: "#address-cells"},
		{name: "no #size-cells", cfg: qemuLinuxDemo(), kernel: kernelImage(4096, 0),
			dtb: inmateDTB(t, dtbOpts{noSizeCells: true}), wantErr: ErrInvalidDTB, wantMsg: "#size-cells"},
		{name: "garbage DTB", cfg: qemuLinuxDemo(), kernel: kernelImage(4096, 0),
			dtb: []byte("this is no device tree, just text"), wantErr: ErrInvalidDTB},
		{name: "two /memory nodes", cfg: qemuLinuxDemo(), kernel: kernelImage(4096, 0),
			dtb: twoMemory, wantErr: ErrInvalidDTB},
		{name: "zcu102 RAM does not fit 32-bit cells", cfg: zcu102LinuxDemo(), kernel: kernelImage(4096, 0),
			dtb: inmateDTB(t, dtbOpts{addrCells: 1, sizeCells: 1}), wantMsg: "does not fit"},
		{name: "negative factor", cfg: qemuLinuxDemo(), kernel: kernelImage(4096, 0), factor: -1, wantMsg: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dtb := tt.dtb
			if dtb == nil {
				dtb = inmateDTB(t, dtbOpts{})
			}
			l, err := Plan(tt.cfg, tt.kernel, dtb, tt.initrd, "", tt.factor)
			if err == nil {
				t.Fatalf("Plan succeeded with kernel at %#x; want an error", l.KernelAddr)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %q is not %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestPlanGzipKernel(t *testing.T) {
	raw := kernelImage(3*mib+5, 0x80000)
	plain, err := Plan(qemuLinuxDemo(), raw, inmateDTB(t, dtbOpts{}), []byte("rd"), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	zipped, err := Plan(qemuLinuxDemo(), gz(t, raw), inmateDTB(t, dtbOpts{}), []byte("rd"), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !zipped.KernelGzip || plain.KernelGzip {
		t.Errorf("KernelGzip = %v (zipped), %v (plain)", zipped.KernelGzip, plain.KernelGzip)
	}
	if !bytes.Equal(zipped.Kernel, raw) {
		t.Error("the decompressed kernel differs from the original")
	}
	// Sizes and addresses follow the decompressed Image.
	if zipped.KernelAddr != 0x70280000 || zipped.RamdiskAddr != plain.RamdiskAddr || zipped.Params != plain.Params {
		t.Errorf("zipped: kernel %#x ramdisk %#x; plain: ramdisk %#x", zipped.KernelAddr, zipped.RamdiskAddr, plain.RamdiskAddr)
	}
}

func TestEditDTBOverlapsKernel(t *testing.T) {
	// A command line far larger than the reserved page cannot be placed
	// without running into the kernel.
	_, err := Plan(qemuLinuxDemo(), kernelImage(4096, 0), inmateDTB(t, dtbOpts{}), nil, strings.Repeat("x", 3*mib), 0)
	if err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Fatalf("err = %v, want an overlap error", err)
	}
}

func FuzzEditDTB(f *testing.F) {
	f.Add(inmateDTB(f, dtbOpts{}))
	f.Add(inmateDTB(f, dtbOpts{addrCells: 1, sizeCells: 1}))
	f.Add(inmateDTB(f, dtbOpts{extraRoot: []*dt.Node{dt.NewNode("memory"), dt.NewNode("chosen")}}))
	f.Add([]byte{0xd0, 0x0d, 0xfe, 0xed})
	f.Add([]byte{})
	edit := DTBEdit{
		Memory:   []Range{{Start: 0x70000000, Size: 0x8000000}},
		Bootargs: "console=ttyAMA0",
		Initrd:   &Range{Start: 0x70400000, Size: 0x1000},
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := EditDTB(in, edit)
		if err != nil {
			return
		}
		// Whatever was accepted must come out as a readable tree with the
		// edit applied.
		fdt, err := dt.ReadFDT(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("edited tree does not parse: %v", err)
		}
		mem, ok := fdt.RootNode.LookupChildByName("memory")
		if !ok {
			t.Fatal("no /memory in the edited tree")
		}
		if p, ok := mem.LookProperty("reg"); !ok || len(p.Value) == 0 {
			t.Fatal("no /memory/reg in the edited tree")
		}
	})
}
