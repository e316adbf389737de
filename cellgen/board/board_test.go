package board

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/check"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

var update = flag.Bool("update", false, "rewrite derived root cells in boards/")

const boardsDir = "../../boards"

func boardDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(boardsDir, "*", PoolFile))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no boards with a pool in %s (%v)", boardsDir, err)
	}
	for i := range dirs {
		dirs[i] = filepath.Dir(dirs[i])
	}
	return dirs
}

func readPool(t *testing.T, dir string) *Pool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, PoolFile))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePool(data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The committed derived root must be exactly what DeriveRoot makes of the
// reference and the pool; boards whose pool uses the reference must not
// need any extra link.
func TestDerivedRootIsRegenerated(t *testing.T) {
	for _, dir := range boardDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			pool := readPool(t, dir)
			ref, err := readSystem(filepath.Join(dir, ReferenceFile))
			if err != nil {
				t.Fatal(err)
			}
			derived, err := DeriveRoot(ref, pool)
			if err != nil {
				t.Fatal(err)
			}
			if pool.Root == ReferenceFile {
				if !reflect.DeepEqual(derived, ref) {
					t.Fatalf("pool uses %s but DeriveRoot adds links to it", ReferenceFile)
				}
				return
			}
			want, err := cell.SystemJSON(derived)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, pool.Root)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from DeriveRoot(%s, %s); run go test ./cellgen/board -run %s -update",
					path, ReferenceFile, PoolFile, t.Name())
			}
		})
	}
}

func TestDeriveRootLeavesReferenceAlone(t *testing.T) {
	dir := filepath.Join(boardsDir, "qemu-arm64")
	ref, err := readSystem(filepath.Join(dir, ReferenceFile))
	if err != nil {
		t.Fatal(err)
	}
	before, err := cell.SystemJSON(ref)
	if err != nil {
		t.Fatal(err)
	}
	derived, err := DeriveRoot(ref, readPool(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	after, err := cell.SystemJSON(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("DeriveRoot changed the reference")
	}
	// Everything the reference had is still there, in order.
	r, d := ref.RootCell, derived.RootCell
	if !reflect.DeepEqual(d.PCIDevices[:len(r.PCIDevices)], r.PCIDevices) {
		t.Errorf("reference PCI devices changed: %+v", d.PCIDevices)
	}
	for _, dev := range r.PCIDevices {
		n := int(dev.ShmemPeers) + 2
		s := int(dev.ShmemRegionsStart)
		if !reflect.DeepEqual(d.MemRegions[s:s+n], r.MemRegions[s:s+n]) {
			t.Errorf("regions of ivshmem %s moved or changed", cell.FormatBDF(dev.BDF))
		}
	}
	if _, err := d.Marshal(); err != nil {
		t.Errorf("derived root does not encode: %v", err)
	}
}

func TestDeriveRootCarving(t *testing.T) {
	ram := func(start, size uint64) cell.MemRegion {
		return cell.MemRegion{PhysStart: start, VirtStart: start, Size: size, Flags: cell.MemRead | cell.MemWrite | cell.MemExecute}
	}
	link := NetRegions(0x1000000, 0)
	base := &cell.System{
		Arch: cell.ArchARM64,
		ARM:  cell.ARMPlatform{GICDBase: 0x8000000},
		RootCell: cell.Cell{
			Name:        "root",
			CPUs:        cpuset.Range(0, 3),
			VPCIIrqBase: 96,
			MemRegions:  append(link[:], ram(0x40000000, 0x10000000)),
			Irqchips:    []cell.Irqchip{{Address: 0x8000000, PinBase: 32, PinBitmap: [4]uint32{0, 0, 0, 0xe}}},
			PCIDevices: []cell.PCIDevice{{Type: cell.PCIIvshmem, Domain: 1, BDF: 0x08, BARMask: cell.BARMaskINTX,
				ShmemPeers: 2, ShmemProtocol: cell.ShmemProtoVETH}},
		},
	}
	slot := func(dev uint16, window uint64) NetSlot { return NetSlot{BDF: dev << 3, Window: window} }
	tests := []struct {
		name    string
		slots   []NetSlot
		want    []Range // RAM pieces after the carving
		wantErr string
	}{
		{"middle", []NetSlot{slot(1, 0x1000000), slot(2, 0x48000000)},
			[]Range{{0x40000000, 0x8000000}, {0x48100000, 0x7f00000}}, ""},
		{"adjacent windows at the end", []NetSlot{slot(3, 0x4ff00000), slot(2, 0x4fe00000)},
			[]Range{{0x40000000, 0xfe00000}}, ""},
		{"start", []NetSlot{slot(2, 0x40000000)}, []Range{{0x40100000, 0xff00000}}, ""},
		{"outside RAM", []NetSlot{slot(2, 0x60000000)}, []Range{{0x40000000, 0x10000000}}, ""},
		{"over a link", []NetSlot{slot(2, 0x1000000)}, nil, "not plain RAM"},
		{"line not granted", []NetSlot{slot(4, 0x48000000)}, nil, "does not grant its interrupt id 128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DeriveRoot(base, &Pool{Net: tt.slots})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rc := got.RootCell
			var pieces []Range
			for _, m := range rc.MemRegions {
				if isRAM(m) {
					pieces = append(pieces, regionRange(m))
				}
			}
			if !reflect.DeepEqual(pieces, tt.want) {
				t.Errorf("RAM pieces %v, want %v", pieces, tt.want)
			}
			for _, s := range tt.slots {
				dev, ok := rootDevice(&rc, s.BDF)
				if !ok || s.BDF == 0x08 {
					continue
				}
				if dev.Domain != 1 || dev.ShmemDevID != 0 || dev.ShmemPeers != 2 || dev.ShmemProtocol != cell.ShmemProtoVETH {
					t.Errorf("device %s: %+v", cell.FormatBDF(s.BDF), dev)
				}
				g := NetRegions(s.Window, 0)
				if !reflect.DeepEqual(rc.MemRegions[dev.ShmemRegionsStart:dev.ShmemRegionsStart+4], g[:]) {
					t.Errorf("device %s: regions at %d are not its link", cell.FormatBDF(s.BDF), dev.ShmemRegionsStart)
				}
			}
		})
	}
}

// The pool of every board fits its root cell, and the board loads.
func TestLoadBoards(t *testing.T) {
	for _, dir := range boardDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if b.Name != filepath.Base(dir) {
				t.Errorf("pool names board %q in directory %s", b.Name, dir)
			}
			if len(b.Demos) == 0 {
				t.Error("no demos loaded")
			}
			if b.Root == nil || b.Reference == nil || (b.Pool.Root == ReferenceFile) != (b.Root == b.Reference) {
				t.Errorf("pool root %s: root and reference not set as named", b.Pool.Root)
			}
		})
	}
}

// ramOf returns a cell's own memory: what the hypervisor unmaps from the
// root cell when the cell is created.
func ramOf(c *cell.Cell) []Range {
	var out []Range
	for _, m := range c.MemRegions {
		if m.Size > 0 && m.Flags&(cell.MemRootShared|cell.MemCommRegion|cell.MemIO) == 0 {
			out = append(out, regionRange(m))
		}
	}
	return out
}

// Pool memory stays clear of Linux, of the hypervisor, of every ivshmem
// window and of the demo cells' memory, except for the demos named here,
// which must not run beside ZICs.
func TestPoolPlacement(t *testing.T) {
	type want struct {
		within       Range    // all pool memory lies here
		sharesMemory []string // demos whose RAM lies in the pool
	}
	boards := map[string]want{
		// Linux runs at 0x40000000-0x6fffffff with mem=768M, the
		// hypervisor from 0x7fc00000.
		"qemu-arm64": {Range{0x70000000, 0x7fc00000 - 0x70000000}, []string{"linux-demo", "zephyr-demo"}},
		// The root's device tree reserves 0x800000000-0x83fffffff.
		"zcu102": {Range{0x800400000, 0x840000000 - 0x800400000}, nil},
	}
	for _, dir := range boardDirs(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			w, ok := boards[name]
			if !ok {
				t.Fatalf("no placement rules for board %s", name)
			}
			b, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			pool := b.Pool
			mem := append(slices.Clone(pool.Memory), pool.Loader.Range)
			hv := Range{b.Root.HypervisorMemory.PhysStart, b.Root.HypervisorMemory.Size}
			for _, r := range mem {
				if !w.within.Contains(r) {
					t.Errorf("pool memory %v outside %v", r, w.within)
				}
				if r.Overlaps(hv) {
					t.Errorf("pool memory %v overlaps the hypervisor %v", r, hv)
				}
				for _, m := range b.Root.RootCell.MemRegions {
					if m.Flags&cell.MemRootShared != 0 && r.Overlaps(regionRange(m)) {
						t.Errorf("pool memory %v overlaps ivshmem region %v", r, regionRange(m))
					}
				}
				for _, s := range pool.Net {
					if r.Overlaps(s.WindowRange()) {
						t.Errorf("pool memory %v overlaps window %v", r, s.WindowRange())
					}
				}
			}
			for _, demo := range b.DemoNames() {
				shares := false
				for _, dr := range ramOf(b.Demos[demo]) {
					for _, r := range mem {
						shares = shares || r.Overlaps(dr)
					}
				}
				if shares != slices.Contains(w.sharesMemory, demo) {
					t.Errorf("demo %s shares memory with the pool: %v", demo, shares)
				}
			}
		})
	}
}

// The root the pool uses accepts each demo as well as the reference does,
// and no ZIC interrupt line is one a demo cell takes.
func TestDemosStillFit(t *testing.T) {
	for _, dir := range boardDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, demo := range b.DemoNames() {
				c := b.Demos[demo]
				got := findings(check.Errors(check.System(b.Root, c)))
				want := findings(check.Errors(check.System(b.Reference, c)))
				if !reflect.DeepEqual(got, want) {
					t.Errorf("demo %s: with %s: %v; with the reference: %v", demo, b.Pool.Root, got, want)
				}
				lines := rootGranted(c, b.Root.ARM.GICDBase)
				for _, s := range b.Pool.Net {
					if lines[s.INTx] {
						t.Errorf("demo %s takes interrupt id %d of ivshmem_net %s", demo, s.INTx, cell.FormatBDF(s.BDF))
					}
				}
			}
			if errs := check.Errors(check.System(b.Root)); len(errs) > 0 {
				t.Errorf("root %s: %v", b.Pool.Root, errs)
			}
		})
	}
}

func findings(fs []check.Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Object+": "+f.Msg)
	}
	return out
}

func TestValidateRejects(t *testing.T) {
	dir := filepath.Join(boardsDir, "qemu-arm64")
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(p *Pool, s *cell.System)
		want   string
	}{
		{"CPU 0", func(p *Pool, _ *cell.System) { p.CPUs = cpuset.Range(0, 3) }, "CPU 0 must stay"},
		{"CPU beyond root", func(p *Pool, _ *cell.System) { p.CPUs = cpuset.Of(16) }, "not root CPUs"},
		{"Linux RAM is not root RAM with a hole", func(p *Pool, s *cell.System) {
			p.Memory = []Range{{0x7f600000, 0x200000}}
			p.Loader.Range = Range{0x7e000000, 0x100000}
		}, "overlaps root memory region"},
		{"hypervisor", func(p *Pool, _ *cell.System) { p.Memory = []Range{{0x7fc00000, 0x200000}} }, "hypervisor memory"},
		{"MMIO", func(p *Pool, _ *cell.System) { p.Memory = []Range{{0x10000000, 0x200000}} }, "not inside one root RAM region"},
		{"outside everything", func(p *Pool, _ *cell.System) { p.Loader.Range = Range{0x100000000, 0x10000} }, "not inside root RAM"},
		{"gicd", func(p *Pool, _ *cell.System) { p.GICD = 0x8010000 }, "GIC distributor is at 0x8000000"},
		{"UART", func(p *Pool, _ *cell.System) { p.Console.Address = 0x40000000 }, "not inside a root I/O region"},
		{"link missing", func(_ *Pool, s *cell.System) { s.RootCell.PCIDevices = s.RootCell.PCIDevices[:2] }, "has no ivshmem device 00:02.0"},
		{"window moved", func(p *Pool, _ *cell.System) { p.Net[1].Window = 0x7f600000 }, "for window 0x7f600000"},
		{"root line", func(p *Pool, _ *cell.System) { p.Net[0].RootINTx = 130 }, "root cell (vpci_irq_base 96) receives 129"},
		{"ZIC line is a root line", func(p *Pool, _ *cell.System) { p.Net[0].VPCIIrqBase, p.Net[0].INTx = 95, 128 }, "root cell's line for ivshmem 00:00.0"},
		{"line not granted", func(_ *Pool, s *cell.System) { s.RootCell.Irqchips[0].PinBitmap[3] = 0xffff }, "does not grant interrupt ids 149"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := clonePool(b.Pool)
			sys, err := DeriveRoot(b.Root, &Pool{}) // a deep copy
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(pool, sys)
			err = Validate(pool, sys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func clonePool(p *Pool) *Pool {
	c := *p
	c.Memory = slices.Clone(p.Memory)
	c.Net = slices.Clone(p.Net)
	c.RPUs = slices.Clone(p.RPUs)
	return &c
}

const validPool = `{
  "board": "b", "root": "system.json", "cpus": "1-3",
  "memory": {"alignment": "0x200000", "ranges": [{"start": "0x70000000", "size": "0x800000"}]},
  "loader": {"start": "0x7f600000", "size": "0x40000", "slot_size": "0x10000"},
  "guest": {"loader": "0x0", "ram": "0x70000000", "comm_region": "0x80000000"},
  "gicd": "0x8000000",
  "console": {"address": "0x9000000", "size": "0x1000", "irq": 33, "type": "pl011", "flags": ["mmio"]},
  "ivshmem_net": [{"bdf": "00:01.0", "window": "0x7fb00000", "vpci_irq_base": 116, "intx": 149, "root_intx": 129}],
  "rpus": [{"id": 0, "name": "r5-0"}]
}`

func TestParsePool(t *testing.T) {
	p, err := ParsePool([]byte(validPool))
	if err != nil {
		t.Fatal(err)
	}
	want := &Pool{
		Board: "b", Root: "system.json", CPUs: cpuset.Range(1, 3), Alignment: 0x200000,
		Memory: []Range{{0x70000000, 0x800000}},
		Loader: LoaderArea{Range{0x7f600000, 0x40000}, 0x10000},
		Guest:  GuestLayout{0, 0x70000000, 0x80000000},
		GICD:   0x8000000,
		Console: UART{Address: 0x9000000, Size: 0x1000, IRQ: 33, Type: cell.ConsolePL011,
			Flags: cell.ConsoleAccessMMIO},
		Net:  []NetSlot{{BDF: 0x08, Window: 0x7fb00000, VPCIIrqBase: 116, INTx: 149, RootINTx: 129}},
		RPUs: []RPU{{0, "r5-0"}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	if p.Loader.Slots() != 4 || p.Loader.Slot(3) != (Range{0x7f630000, 0x10000}) {
		t.Errorf("loader slots: %d, last %v", p.Loader.Slots(), p.Loader.Slot(3))
	}
}

func TestParsePoolErrors(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown key", `"gicd"`, `"gicc": "0x0", "gicd"`, `unknown field "gicc"`},
		{"missing key", `"gicd": "0x8000000",`, ``, "gicd: missing"},
		{"missing rpus", `,
  "rpus": [{"id": 0, "name": "r5-0"}]`, ``, "rpus: missing"},
		{"decimal address", `"start": "0x70000000"`, `"start": "1879048192"`, "memory.ranges[0].start:"},
		{"unaligned range", `"size": "0x800000"`, `"size": "0x801000"`, "memory.ranges[0]: 0x70000000-0x70800fff is not aligned"},
		{"alignment", `"alignment": "0x200000"`, `"alignment": "0x300000"`, "memory.alignment: 0x300000 is not a power of two"},
		{"bad cpus", `"cpus": "1-3"`, `"cpus": "3-1"`, "cpus:"},
		{"bdf", `"bdf": "00:01.0"`, `"bdf": "1"`, "ivshmem_net[0].bdf:"},
		{"slot 0", `"bdf": "00:01.0"`, `"bdf": "00:00.0"`, "ivshmem_net[0].bdf: 00:00.0"},
		{"INTx does not rotate", `"intx": 149`, `"intx": 148`, "ivshmem_net[0].intx: 148, but slot 00:01.0 with vpci_irq_base 116 raises 149"},
		{"window alignment", `"window": "0x7fb00000"`, `"window": "0x7fb80000"`, "ivshmem_net[0].window"},
		{"console type", `"pl011"`, `"pl012"`, `console.type: unknown UART type "pl012"`},
		{"console flag", `["mmio"]`, `["mmio", "fast"]`, `console.flags[1]: unknown console flag "fast"`},
		{"loader slot", `"slot_size": "0x10000"`, `"slot_size": "0x1000"`, "loader.slot_size"},
		{"loader over memory", `"start": "0x7f600000"`, `"start": "0x70200000"`, "loader: 0x70200000-0x7023ffff overlaps memory.ranges[0]"},
		{"guest overlap", `"ram": "0x70000000"`, `"ram": "0x7f800000"`, "guest: ivshmem_net[0] window 0x7fb00000-0x7fbfffff overlaps main RAM"},
		{"root path", `"root": "system.json"`, `"root": "../system.json"`, "root:"},
		{"trailing", `"r5-0"}]
}`, `"r5-0"}]
} {}`, "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(validPool, tt.old) {
				t.Fatalf("test data: %q not in the valid pool", tt.old)
			}
			_, err := ParsePool([]byte(strings.Replace(validPool, tt.old, tt.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestINTxRotates(t *testing.T) {
	// abi §7.3: the linux demo (vpci_irq_base 108) gets 140 for slot 0
	// and 141 for slot 1; slot 4 wraps to pin A again.
	for _, tt := range []struct {
		base uint32
		bdf  uint16
		want uint32
	}{{108, 0x00, 140}, {108, 0x08, 141}, {96, 0x18, 131}, {96, 0x20, 128}} {
		if got := INTx(tt.base, tt.bdf); got != tt.want {
			t.Errorf("INTx(%d, %s) = %d, want %d", tt.base, cell.FormatBDF(tt.bdf), got, tt.want)
		}
	}
}

func FuzzParsePool(f *testing.F) {
	f.Add([]byte(validPool))
	for _, dir := range []string{"qemu-arm64", "zcu102"} {
		if data, err := os.ReadFile(filepath.Join(boardsDir, dir, PoolFile)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePool(data)
		if err != nil {
			return
		}
		// An accepted pool is internally consistent.
		for i, r := range p.Memory {
			if r.Size == 0 || r.Start%p.Alignment != 0 {
				t.Fatalf("accepted range %d %v", i, r)
			}
		}
		for _, s := range p.Net {
			if s.INTx != INTx(s.VPCIIrqBase, s.BDF) {
				t.Fatalf("accepted slot %+v", s)
			}
		}
		if p.Loader.Slots() < 1 {
			t.Fatal(fmt.Sprint("no loader slot in ", p.Loader))
		}
	})
}
