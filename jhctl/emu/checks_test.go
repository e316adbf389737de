package emu

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
	"github.com/runphi-go/runphi/jhctl/jailhouse"
)

func TestRequestNumbers(t *testing.T) {
	// _IOW(0, nr, size) = 1<<30 | size<<16 | nr; DISABLE is _IO(0, 1).
	iow := func(nr, size uint) uint { return 1<<30 | size<<16 | nr }
	tests := []struct {
		name      string
		got, want uint
	}{
		{"ENABLE (pointer)", ReqEnable, iow(0, 8)},
		{"DISABLE", ReqDisable, 1},
		{"CELL_CREATE", ReqCellCreate, iow(2, createRecSize)},
		{"CELL_LOAD", ReqCellLoad, iow(3, loadHdrSize)},
		{"CELL_START", ReqCellStart, iow(4, cellIDSize)},
		{"CELL_DESTROY", ReqCellDestroy, iow(5, cellIDSize)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
	h := New(Options{})
	for _, req := range []uint{0, 0x40040000, 0x40280006, ReqEnable | 1} {
		wantErrno(t, "unknown request", h.Ioctl(req, 0, &Space{}), syscall.EINVAL)
	}
}

func TestEnableChecks(t *testing.T) {
	sys := qemuSystem(t, nil)
	patch := func(off int, b ...byte) []byte {
		d := bytes.Clone(sys)
		copy(d[off:], b)
		return d
	}
	noDebugConsole := qemuSystem(t, func(s *cell.System) { s.Flags = 0 })
	tests := []struct {
		name  string
		opts  Options
		pre   func(h *Hypervisor)
		arg   func(s *Space) uint64
		errno syscall.Errno
	}{
		{name: "qemu-arm64 on 16 CPUs", opts: Options{CPUs: cpuset.Range(0, 15)}},
		{name: "machine CPUs taken from the root cell"},
		{name: "without debug console", arg: func(s *Space) uint64 { return s.Map(noDebugConsole) }},
		{name: "header unreadable", arg: func(s *Space) uint64 { return s.Map(sys[:sysHeaderSize-1]) }, errno: syscall.EFAULT},
		{name: "not a system configuration", arg: func(s *Space) uint64 { return s.Map(patch(0, 'J', 'H', 'C', 'L', 'L')) }, errno: syscall.EINVAL},
		{name: "revision 13", arg: func(s *Space) uint64 { return s.Map(patch(6, 13, 0)) }, errno: syscall.EINVAL},
		{name: "x86 configuration", arg: func(s *Space) uint64 { return s.Map(patch(5, 0)) }, errno: syscall.EINVAL},
		{name: "no root CPU", arg: func(s *Space) uint64 {
			return s.Map(qemuSystem(t, func(s *cell.System) { s.RootCell.CPUs = cpuset.Set{} }))
		}, errno: syscall.EINVAL},
		{name: "already enabled", pre: func(h *Hypervisor) { _ = h.Enable(sys) }, errno: syscall.EBUSY},
		{name: "firmware missing", opts: Options{NoFirmware: true}, errno: syscall.ENOENT},
		{name: "hypervisor memory too small", arg: func(s *Space) uint64 {
			return s.Map(qemuSystem(t, func(s *cell.System) { s.HypervisorMemory.Size = CoreSize + 16*perCPUSize }))
		}, errno: syscall.EINVAL},
		{name: "root cell is not the online CPUs", opts: Options{CPUs: cpuset.Range(0, 7)}, errno: syscall.EINVAL},
		{name: "full configuration unreadable", arg: func(s *Space) uint64 { return s.Map(sys[:sysHeaderSize+8]) }, errno: syscall.EFAULT},
		{name: "root irqchip pin base", arg: func(s *Space) uint64 {
			return s.Map(qemuSystem(t, func(s *cell.System) { s.RootCell.Irqchips[0].PinBase = 48 }))
		}, errno: syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(tt.opts)
			if tt.pre != nil {
				tt.pre(h)
			}
			wasEnabled := h.Enabled()
			var s Space
			arg := s.Map(sys)
			if tt.arg != nil {
				arg = tt.arg(&s)
			}
			wantErrno(t, "enable", h.Ioctl(ReqEnable, arg, &s), tt.errno)
			if tt.errno != 0 {
				if h.Enabled() != wasEnabled {
					t.Errorf("failed enable changed the enabled state")
				}
				return
			}
			cells := h.Cells()
			if len(cells) != 1 || cells[0].ID != 0 || cells[0].Name != "qemu-arm64" ||
				cells[0].State != jailhouse.StateRunning || cells[0].CPUs.String() != "0-15" {
				t.Errorf("after enable: %+v", cells)
			}
		})
	}
}

// TestEnableFailureLog checks that the log of a failed enable stays
// readable, as the driver keeps it.
func TestEnableFailureLog(t *testing.T) {
	h := New(Options{CPUs: cpuset.Range(0, 7)})
	wantErrno(t, "enable", h.Enable(qemuSystem(t, nil)), syscall.EINVAL)
	var cur ConsoleCursor
	buf := make([]byte, 4096)
	n, _, err := h.ReadConsole(&cur, buf, true)
	if err != nil || !strings.Contains(string(buf[:n]), " CPU 0... FAILED\n") {
		t.Errorf("console after failed enable: %q, %v", buf[:n], err)
	}
}

func TestCreateChecks(t *testing.T) {
	inmate := demoCell(t, "inmate-demo", nil)
	raw := func(mod func(d []byte) []byte) func(*testing.T, *Hypervisor) []byte {
		return func(*testing.T, *Hypervisor) []byte { return mod(bytes.Clone(inmate)) }
	}
	with := func(demo string, mod func(*cell.Cell)) func(*testing.T, *Hypervisor) []byte {
		return func(t *testing.T, _ *Hypervisor) []byte { return demoCell(t, demo, mod) }
	}
	tests := []struct {
		name    string
		pre     func(*testing.T, *Hypervisor)
		config  func(*testing.T, *Hypervisor) []byte
		errno   syscall.Errno
		created bool // only for success: whether a cell appears
	}{
		{name: "inmate demo", config: with("inmate-demo", nil), created: true},
		{name: "linux demo", config: with("linux-demo", nil), created: true},
		{name: "too short", config: raw(func(d []byte) []byte { return d[:cellDescSize-1] }), errno: syscall.EINVAL},
		{name: "system configuration", config: func(t *testing.T, _ *Hypervisor) []byte { return qemuSystem(t, nil) }, errno: syscall.EINVAL},
		{name: "revision 13", config: raw(func(d []byte) []byte { d[6] = 13; return d }), errno: syscall.EINVAL},
		{name: "arm32 configuration is silently not created", config: raw(func(d []byte) []byte { d[5] = 1; return d })},
		{name: "x86 configuration is silently not created", config: raw(func(d []byte) []byte { d[5] = 0; return d })},
		{name: "duplicate name", pre: createOK("inmate-demo"), config: with("inmate-demo", func(c *cell.Cell) { c.CPUs = cpuset.Of(5) }), errno: syscall.EEXIST},
		{name: "root cell name", config: with("inmate-demo", func(c *cell.Cell) { c.Name = "qemu-arm64" }), errno: syscall.EEXIST},
		{name: "shorter than its counts", config: raw(func(d []byte) []byte { return d[:len(d)-1] }), errno: syscall.EINVAL},
		{name: "CPU of another cell", pre: createOK("linux-demo"), config: with("inmate-demo", func(c *cell.Cell) { c.CPUs = cpuset.Of(3) }), errno: syscall.EBUSY},
		{name: "CPU that does not exist", config: with("inmate-demo", func(c *cell.Cell) { c.CPUs = cpuset.Of(20) }), errno: syscall.EBUSY},
		{name: "another cell running/locked", pre: func(t *testing.T, h *Hypervisor) {
			createOK("linux-demo")(t, h)
			if err := h.SetCellState(1, jailhouse.StateRunningLocked); err != nil {
				t.Fatal(err)
			}
		}, config: with("inmate-demo", nil), errno: syscall.EPERM},
		{name: "more than 16 pages", config: with("inmate-demo", func(c *cell.Cell) {
			for range 2100 {
				c.MemRegions = append(c.MemRegions, cell.MemRegion{PhysStart: 0x7fb00000, VirtStart: 0x1000000, Size: 0x1000, Flags: cell.MemRead})
			}
		}), errno: syscall.E2BIG},
		{name: "cpu_set_size above 4096", config: raw(func(d []byte) []byte {
			out := append(slices.Clone(d[:cellDescSize+8]), make([]byte, 4096)...)
			out = append(out, d[cellDescSize+8:]...)
			le.PutUint32(out[48:], 8+4096)
			return out
		}), errno: syscall.EINVAL},
		{name: "irqchip pin base not a multiple of 32", config: with("inmate-demo", func(c *cell.Cell) { c.Irqchips[0].PinBase = 48 }), errno: syscall.EINVAL},
		{name: "irqchip beyond interrupt 1023", config: with("inmate-demo", func(c *cell.Cell) { c.Irqchips[0].PinBase = 928 }), errno: syscall.EINVAL},
		{name: "irqchip of another controller is ignored", config: with("inmate-demo", func(c *cell.Cell) {
			c.Irqchips[0].Address = 0x1234000
			c.Irqchips[0].PinBase = 48
		}), created: true},
		{name: "ivshmem regions beyond the configuration", config: with("inmate-demo", func(c *cell.Cell) { c.PCIDevices[0].ShmemRegionsStart = 4 }), errno: syscall.EINVAL},
		{name: "ivshmem with 17 MSI-X vectors", config: with("inmate-demo", func(c *cell.Cell) { c.PCIDevices[0].NumMSIXVectors = 17 }), errno: syscall.EINVAL},
		{name: "ivshmem peer id 12", config: with("inmate-demo", func(c *cell.Cell) { c.PCIDevices[0].ShmemDevID = 12 }), errno: syscall.EINVAL},
		{name: "ivshmem link slot taken by the root cell", config: with("inmate-demo", func(c *cell.Cell) { c.PCIDevices[0].ShmemDevID = 0 }), errno: syscall.EBUSY},
		{name: "ivshmem link slot taken by another cell", pre: createOK("linux-demo"), config: with("zephyr-demo", nil), errno: syscall.EBUSY},
		{name: "ivshmem linked by bdf, not domain", pre: createOK("linux-demo"), config: with("zephyr-demo", func(c *cell.Cell) {
			for i := range c.PCIDevices {
				c.PCIDevices[i].Domain = 7
			}
		}), errno: syscall.EBUSY},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := enabled(t)
			if tt.pre != nil {
				tt.pre(t, h)
			}
			before := h.Cells()
			err := h.CreateCell(tt.config(t, h))
			wantErrno(t, "create", err, tt.errno)
			after := h.Cells()
			switch {
			case tt.created && len(after) != len(before)+1:
				t.Errorf("no cell created: %v", after)
			case !tt.created && !slices.EqualFunc(before, after, sameCell):
				t.Errorf("cells changed:\nbefore %v\n after %v", before, after)
			}
		})
	}
}

func sameCell(a, b CellInfo) bool {
	return a.ID == b.ID && a.Name == b.Name && a.State == b.State && a.CPUs.Equal(b.CPUs)
}

func createOK(demo string) func(*testing.T, *Hypervisor) {
	return func(t *testing.T, h *Hypervisor) {
		t.Helper()
		if err := h.CreateCell(demoCell(t, demo, nil)); err != nil {
			t.Fatalf("create %s: %v", demo, err)
		}
	}
}

func TestCreateRaw(t *testing.T) {
	inmate := demoCell(t, "inmate-demo", nil)
	record := func(addr uint64, size uint32) []byte {
		r := make([]byte, createRecSize)
		le.PutUint64(r, addr)
		le.PutUint32(r[8:], size)
		return r
	}
	tests := []struct {
		name  string
		arg   func(s *Space) uint64
		errno syscall.Errno
	}{
		{"record unreadable", func(s *Space) uint64 { return s.Map(make([]byte, createRecSize-1)) }, syscall.EFAULT},
		{"configuration unreadable", func(s *Space) uint64 {
			return s.Map(record(s.Map(inmate), uint32(len(inmate)+1)))
		}, syscall.EFAULT},
		{"configuration above the kmalloc limit", func(s *Space) uint64 { return s.Map(record(0, 4<<20+1)) }, syscall.ENOMEM},
		{"empty configuration", func(s *Space) uint64 { return s.Map(record(0, 0)) }, syscall.EINVAL},
		{"longer buffer than the counts need", func(s *Space) uint64 {
			big := append(bytes.Clone(inmate), make([]byte, 100)...)
			return s.Map(record(s.Map(big), uint32(len(big))))
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := enabled(t)
			var s Space
			wantErrno(t, "create", h.Ioctl(ReqCellCreate, tt.arg(&s), &s), tt.errno)
		})
	}
}

func TestCreateNotEnabled(t *testing.T) {
	h := New(Options{})
	wantErrno(t, "create", h.CreateCell(demoCell(t, "inmate-demo", nil)), syscall.EINVAL)
	// The architecture check comes first: success without a cell.
	wantErrno(t, "create arm32", h.CreateCell(demoCell(t, "inmate-demo", func(c *cell.Cell) { c.Arch = cell.ArchARM })), 0)
	if log := h.KernelLog(); len(log) == 0 || log[len(log)-1] != "jailhouse: Configuration architecture mismatch" {
		t.Errorf("kernel log: %q", log)
	}
}

func TestCreateCellIDs(t *testing.T) {
	h := enabled(t)
	create := func(name string) int {
		t.Helper()
		if err := h.CreateCell(tinyCell(t, name, cpuset.Set{}, nil)); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return cellNamed(t, h, name).ID
	}
	for i, name := range []string{"a", "b", "c"} {
		if id := create(name); id != i+1 {
			t.Fatalf("%s got id %d, want %d", name, id, i+1)
		}
	}
	wantErrno(t, "destroy b", h.DestroyCell(byName("b")), 0)
	if id := create("d"); id != 2 {
		t.Errorf("d got id %d, want the freed 2", id)
	}
	// ARM uses the cell id as VMID: ids above 255 are refused.
	for i := 4; i <= 255; i++ { // ids 4..255
		create("n" + strconv.Itoa(i))
	}
	wantErrno(t, "create id 256", h.CreateCell(tinyCell(t, "too-many", cpuset.Set{}, nil)), syscall.E2BIG)
}

func TestCreateTakesCPUs(t *testing.T) {
	h := enabled(t)
	if err := h.AddVMExits(2, "mmio", 5); err != nil {
		t.Fatal(err)
	}
	createOK("linux-demo")(t, h)
	root, _ := h.Cell(0)
	demo := cellNamed(t, h, "qemu-arm64-linux-demo")
	if root.CPUs.String() != "0-1,4-15" || demo.CPUs.String() != "2-3" || demo.State != jailhouse.StateShutDown {
		t.Errorf("root %v, demo %v %s", root.CPUs, demo.CPUs, demo.State)
	}
	if exits, _ := h.VMExits(2); exits["mmio"] != 0 {
		t.Errorf("statistics of CPU 2 not cleared when it moved: %v", exits)
	}
	wantErrno(t, "destroy", h.DestroyCell(byID(1)), 0)
	root, _ = h.Cell(0)
	if root.CPUs.String() != "0-15" {
		t.Errorf("root after destroy: %v", root.CPUs)
	}
}

func TestLoadChecks(t *testing.T) {
	img := func(addr uint64, size int) jailhouse.Image {
		return jailhouse.Image{Data: bytes.Repeat([]byte{0xaa}, size), Address: addr}
	}
	tests := []struct {
		name   string
		ref    jailhouse.CellRef
		images []jailhouse.Image
		pre    func(*testing.T, *Hypervisor)
		errno  syscall.Errno
		loaded int // images remembered afterwards
	}{
		{name: "one image", ref: byName("inmate-demo"), images: []jailhouse.Image{img(0, 4096)}, loaded: 1},
		{name: "by id", ref: byID(1), images: []jailhouse.Image{img(0x100, 16)}, loaded: 1},
		{name: "id wins over name", ref: jailhouse.CellRef{ID: 1, Name: "whatever"}, images: []jailhouse.Image{img(0, 1)}, loaded: 1},
		{name: "whole region", ref: byID(1), images: []jailhouse.Image{img(0, 0x10000)}, loaded: 1},
		{name: "zero-size image skipped", ref: byID(1), images: []jailhouse.Image{{Address: 0x90000000}}},
		{name: "unknown name", ref: byName("nope"), errno: syscall.ENOENT},
		{name: "unknown id", ref: byID(7), errno: syscall.ENOENT},
		{name: "name lookup is exact", ref: byName("Inmate-demo"), errno: syscall.ENOENT},
		{name: "root cell by id", ref: jailhouse.CellRef{ID: 0, Name: "inmate-demo"}, errno: syscall.EINVAL},
		{name: "root cell by name", ref: byName("qemu-arm64"), errno: syscall.EINVAL},
		{name: "no region at target", ref: byID(1), images: []jailhouse.Image{img(0x40000000, 16)}, errno: syscall.EINVAL},
		{name: "region not loadable", ref: byID(1), images: []jailhouse.Image{img(0x7faf1000, 16)}, errno: syscall.EINVAL},
		{name: "comm region", ref: byID(1), images: []jailhouse.Image{img(0x80000000, 16)}, errno: syscall.EINVAL},
		{name: "image overruns region", ref: byID(1), images: []jailhouse.Image{img(0xff00, 0x101)}, errno: syscall.EINVAL},
		{name: "second image fails, first stays", ref: byID(1), images: []jailhouse.Image{img(0, 16), img(0x10000, 16)}, errno: syscall.EINVAL, loaded: 1},
		{name: "image above the mapping limit", ref: byID(1), pre: func(t *testing.T, h *Hypervisor) { h.st.Options.MaxImage = 8 }, images: []jailhouse.Image{img(0, 9)}, errno: syscall.EBUSY},
		{name: "refused by a running cell", ref: byID(1), pre: func(t *testing.T, h *Hypervisor) {
			makeActive(t, h)
			wantErrno(t, "start", h.StartCell(byID(1)), 0)
			if err := h.DenyShutdown(1, true); err != nil {
				t.Fatal(err)
			}
		}, images: []jailhouse.Image{img(0, 16)}, errno: syscall.EPERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := enabled(t)
			createOK("inmate-demo")(t, h)
			if tt.pre != nil {
				tt.pre(t, h)
			}
			before := cellNamed(t, h, "inmate-demo")
			wantErrno(t, "load", h.LoadCell(tt.ref, tt.images...), tt.errno)
			after := cellNamed(t, h, "inmate-demo")
			if len(after.Images) != tt.loaded {
				t.Errorf("images after load: %+v, want %d", after.Images, tt.loaded)
			}
			if tt.errno == syscall.ENOENT || tt.errno == syscall.EPERM || tt.errno == 0 && tt.loaded == 0 && tt.images == nil {
				if !sameCell(before, after) {
					t.Errorf("cell changed: %+v -> %+v", before, after)
				}
			}
		})
	}
}

// makeActive turns the inmate demo (id 1) into a cell that answers shutdown
// requests (no passive comm region), as Linux does.
func makeActive(t *testing.T, h *Hypervisor) {
	t.Helper()
	c := h.st.Cells[1]
	le.PutUint32(c.Config[44:], le.Uint32(c.Config[44:])&^cellPassiveCommReg)
	cfg, err := parseCellConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	c.cfg = cfg
}

func TestLoadFirstRegionWins(t *testing.T) {
	h := enabled(t)
	// A read-only region shadows a loadable one at the same address.
	cfg := tinyCell(t, "shadow", cpuset.Of(4), func(c *cell.Cell) {
		c.MemRegions = append([]cell.MemRegion{{PhysStart: 0x7fb00000, VirtStart: 0, Size: 0x1000, Flags: cell.MemRead}}, c.MemRegions...)
	})
	wantErrno(t, "create", h.CreateCell(cfg), 0)
	wantErrno(t, "load into the shadowed region", h.LoadCell(byName("shadow"), jailhouse.Image{Data: []byte{1}}), syscall.EINVAL)
	wantErrno(t, "load behind it", h.LoadCell(byName("shadow"), jailhouse.Image{Data: []byte{1}, Address: 0x1000}), 0)
	if imgs := cellNamed(t, h, "shadow").Images; len(imgs) != 1 || imgs[0].Region != 1 {
		t.Errorf("images: %+v", imgs)
	}
}

func TestLoadRaw(t *testing.T) {
	h := enabled(t)
	createOK("inmate-demo")(t, h)
	load := func(s *Space, images ...[]byte) []byte { // records with the given source addresses/sizes
		rec := make([]byte, loadHdrSize)
		copy(rec, encodeCellID(1, ""))
		le.PutUint32(rec[40:], uint32(len(images)))
		for _, img := range images {
			r := make([]byte, imageRecSize)
			le.PutUint64(r[0:], s.Map(img))
			le.PutUint64(r[8:], uint64(len(img)))
			rec = append(rec, r...)
		}
		return rec
	}
	var s Space
	wantErrno(t, "header unreadable", h.Ioctl(ReqCellLoad, s.Map(make([]byte, loadHdrSize-1)), &s), syscall.EFAULT)
	rec := load(&s, []byte("abc"))
	wantErrno(t, "image records unreadable", h.Ioctl(ReqCellLoad, s.Map(rec[:loadHdrSize+imageRecSize-1]), &s), syscall.EFAULT)
	// The header alone is readable: the driver has already made the cell
	// loadable when the image record faults.
	if c := cellNamed(t, h, "inmate-demo"); !c.Loadable {
		t.Errorf("cell not loadable after a faulting image record")
	}
	le.PutUint64(rec[loadHdrSize+8:], 4) // one byte more than mapped
	wantErrno(t, "image data unreadable", h.Ioctl(ReqCellLoad, s.Map(rec), &s), syscall.EFAULT)
}

func TestShutdownIsLoadWithoutImages(t *testing.T) {
	h := enabled(t)
	createOK("inmate-demo")(t, h)
	wantErrno(t, "load", h.LoadCell(byID(1), jailhouse.Image{Data: []byte("x")}), 0)
	wantErrno(t, "start", h.StartCell(byID(1)), 0)
	if c := cellNamed(t, h, "inmate-demo"); c.State != jailhouse.StateRunning || c.Loadable {
		t.Fatalf("after start: %+v", c)
	}
	wantErrno(t, "shutdown", h.LoadCell(byID(1)), 0)
	c := cellNamed(t, h, "inmate-demo")
	if c.State != jailhouse.StateShutDown || !c.Loadable || c.CPUs.String() != "1" || len(c.Images) != 1 {
		t.Errorf("after shutdown: %+v", c)
	}
	// Starting again runs the image still in memory.
	wantErrno(t, "restart", h.StartCell(byID(1)), 0)
	snap, _ := h.ConsoleSnapshot()
	if strings.Count(string(snap), "emu: cell \"inmate-demo\" (id 1) region 6 at 0x0: 1 bytes sha256 ") != 2 {
		t.Errorf("console:\n%s", snap)
	}
}

func TestStartDestroyChecks(t *testing.T) {
	tests := []struct {
		name    string
		req     uint
		ref     jailhouse.CellRef
		pre     func(*testing.T, *Hypervisor)
		disable bool
		errno   syscall.Errno
	}{
		{name: "start", req: ReqCellStart, ref: byID(1)},
		{name: "destroy", req: ReqCellDestroy, ref: byName("inmate-demo")},
		{name: "start unknown", req: ReqCellStart, ref: byName("nope"), errno: syscall.ENOENT},
		{name: "destroy unknown", req: ReqCellDestroy, ref: byID(9), errno: syscall.ENOENT},
		{name: "start root", req: ReqCellStart, ref: jailhouse.CellRef{ID: 0, Name: "inmate-demo"}, errno: syscall.EINVAL},
		{name: "destroy root", req: ReqCellDestroy, ref: byName("qemu-arm64"), errno: syscall.EINVAL},
		{name: "start while disabled", req: ReqCellStart, ref: byID(1), disable: true, errno: syscall.EINVAL},
		{name: "destroy while disabled", req: ReqCellDestroy, ref: byID(1), disable: true, errno: syscall.EINVAL},
		{name: "destroy while another cell is running/locked", req: ReqCellDestroy, ref: byID(1), pre: func(t *testing.T, h *Hypervisor) {
			if err := h.CreateCell(tinyCell(t, "locker", cpuset.Of(7), nil)); err != nil {
				t.Fatal(err)
			}
			if err := h.SetCellState(2, jailhouse.StateRunningLocked); err != nil {
				t.Fatal(err)
			}
		}, errno: syscall.EPERM},
		{name: "destroy itself running/locked", req: ReqCellDestroy, ref: byID(1), pre: func(t *testing.T, h *Hypervisor) {
			if err := h.SetCellState(1, jailhouse.StateRunningLocked); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "start refused", req: ReqCellStart, ref: byID(1), pre: denying, errno: syscall.EPERM},
		{name: "destroy refused", req: ReqCellDestroy, ref: byID(1), pre: denying, errno: syscall.EPERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := enabled(t)
			createOK("inmate-demo")(t, h)
			if tt.pre != nil {
				tt.pre(t, h)
			}
			if tt.disable {
				wantErrno(t, "disable", h.Disable(), 0)
			}
			var s Space
			wantErrno(t, "ioctl", h.Ioctl(tt.req, s.Map(encodeCellID(tt.ref.ID, tt.ref.Name)), &s), tt.errno)
		})
	}
}

// denying makes the inmate demo a running cell that refuses shutdown.
func denying(t *testing.T, h *Hypervisor) {
	makeActive(t, h)
	wantErrno(t, "start", h.StartCell(byID(1)), 0)
	if err := h.DenyShutdown(1, true); err != nil {
		t.Fatal(err)
	}
}

func TestDisable(t *testing.T) {
	h := New(Options{})
	wantErrno(t, "disable while disabled", h.Disable(), syscall.EINVAL)
	h = enabled(t)
	createOK("inmate-demo")(t, h)
	createOK("linux-demo")(t, h)
	if err := h.SetCellState(2, jailhouse.StateRunningLocked); err != nil {
		t.Fatal(err)
	}
	// Destroying the inmate demo is refused while the other cell is locked.
	wantErrno(t, "disable with a locked cell", h.Disable(), syscall.EPERM)
	if !h.Enabled() || len(h.Cells()) != 3 {
		t.Fatalf("after refused disable: %v", h.Cells())
	}
	if err := h.SetCellState(2, jailhouse.StateRunning); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "disable", h.Disable(), 0)
	if h.Enabled() || len(h.Cells()) != 0 {
		t.Errorf("after disable: %v", h.Cells())
	}
	// Enabling again starts from scratch.
	wantErrno(t, "enable again", h.Enable(qemuSystem(t, nil)), 0)
	if cells := h.Cells(); len(cells) != 1 || cells[0].CPUs.String() != "0-15" {
		t.Errorf("after re-enable: %v", cells)
	}
}

func TestInjection(t *testing.T) {
	h := enabled(t)
	if err := h.FailCell(1, "x"); err == nil {
		t.Error("FailCell of a missing cell succeeded")
	}
	createOK("linux-demo")(t, h)
	wantErrno(t, "start", h.StartCell(byID(1)), 0)
	if err := h.FailCell(1, "unhandled trap"); err != nil {
		t.Fatal(err)
	}
	c := cellNamed(t, h, "qemu-arm64-linux-demo")
	if c.State != jailhouse.StateFailed || c.FailedCPUs.String() != "2" {
		t.Errorf("after failure: %+v", c)
	}
	snap, _ := h.ConsoleSnapshot()
	if !strings.HasSuffix(string(snap), "FATAL: unhandled trap\nParking CPU 2 (Cell: \"qemu-arm64-linux-demo\")\n") {
		t.Errorf("console:\n%s", snap)
	}
	// Loading (or starting) clears the failed CPUs.
	wantErrno(t, "shutdown", h.LoadCell(byID(1)), 0)
	if c := cellNamed(t, h, "qemu-arm64-linux-demo"); c.State != jailhouse.StateShutDown || !c.FailedCPUs.IsEmpty() {
		t.Errorf("after shutdown: %+v", c)
	}
	if err := h.SetCellState(1, "bogus"); err == nil {
		t.Error("unknown state accepted")
	}
	if err := h.CellPrint(1, "hello from linux\n"); err != nil {
		t.Fatal(err)
	}
	if err := h.AddVMExits(0, "nope", 1); err == nil {
		t.Error("unknown reason accepted")
	}
	// The inmate demo may not print: it lacks the console flags.
	createOK("inmate-demo")(t, h)
	if err := h.CellPrint(2, "x"); err == nil {
		t.Error("inmate demo printed without permission")
	}
}
