package jailhouse

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unsafe"

	"github.com/runphi-go/runphi/cellgen/cell"
	"github.com/runphi-go/runphi/cellgen/cpuset"
)

// call is one ioctl as the fake driver saw it: the record bytes and the
// bytes of every buffer the record points to, copied during the call (so a
// buffer freed or moved before the call returns would show up as garbage).
type call struct {
	req    uint
	record []byte   // the argument record (nil for DISABLE)
	data   [][]byte // config (ENABLE, CREATE) or one entry per image (LOAD)
	argNil bool
}

// fakeDriver scripts the device seam.
type fakeDriver struct {
	t         *testing.T
	calls     []call
	errs      map[request]error       // errno to return per request
	hook      func(req request) error // runs after recording; may mutate sysfs
	enableLen int                     // bytes the fake reads at the ENABLE address
	openErr   error
	opens     int
	closes    int
	// console
	reads    [][]byte // successive read() results; an empty entry reads 0 bytes
	readErr  error    // returned once reads are exhausted (nil: 0 bytes)
	nonblock bool
}

func (f *fakeDriver) opener(path string) (Device, error) {
	if f.openErr != nil {
		return nil, f.openErr
	}
	f.opens++
	return &fakeDevice{f: f}, nil
}

type fakeDevice struct {
	f      *fakeDriver
	closed bool
}

// peek copies n bytes from the user address a, as copy_from_user would.
func peek(a uint64, n uint64) []byte {
	if n == 0 {
		return nil
	}
	p := *(*unsafe.Pointer)(unsafe.Pointer(&a))
	return bytes.Clone(unsafe.Slice((*byte)(p), n))
}

func (d *fakeDevice) Ioctl(req uint, arg unsafe.Pointer) error {
	f := d.f
	if d.closed {
		f.t.Errorf("ioctl %#x on a closed device", req)
	}
	c := call{req: req, argNil: arg == nil}
	le := binary.LittleEndian
	switch request(req) {
	case reqEnable:
		c.data = [][]byte{bytes.Clone(unsafe.Slice((*byte)(arg), f.enableLen))}
	case reqDisable:
	case reqCellCreate:
		c.record = bytes.Clone(unsafe.Slice((*byte)(arg), sizeofCellCreate))
		c.data = [][]byte{peek(le.Uint64(c.record[0:]), uint64(le.Uint32(c.record[8:])))}
	case reqCellLoad:
		hdr := unsafe.Slice((*byte)(arg), sizeofCellLoad)
		n := le.Uint32(hdr[40:])
		c.record = bytes.Clone(unsafe.Slice((*byte)(arg), sizeofCellLoad+int(n)*sizeofPreloadImage))
		for i := range int(n) {
			img := c.record[sizeofCellLoad+i*sizeofPreloadImage:]
			c.data = append(c.data, peek(le.Uint64(img[0:]), le.Uint64(img[8:])))
		}
	case reqCellStart, reqCellDestroy:
		c.record = bytes.Clone(unsafe.Slice((*byte)(arg), sizeofCellID))
	default:
		f.t.Errorf("unexpected ioctl request %#x", req)
	}
	f.calls = append(f.calls, c)
	if err := f.errs[request(req)]; err != nil {
		return err
	}
	if f.hook != nil {
		return f.hook(request(req))
	}
	return nil
}

func (d *fakeDevice) Read(p []byte) (int, error) {
	f := d.f
	if len(f.reads) == 0 {
		return 0, f.readErr
	}
	next := f.reads[0]
	n := copy(p, next)
	if n < len(next) {
		f.reads[0] = next[n:]
	} else {
		f.reads = f.reads[1:]
	}
	return n, nil
}

func (d *fakeDevice) SetNonblock(nb bool) error { d.f.nonblock = nb; return nil }

func (d *fakeDevice) Close() error {
	if d.closed {
		d.f.t.Error("device closed twice")
	}
	d.closed = true
	d.f.closes++
	return nil
}

// sysfsTree builds a fixture /sys/devices/jailhouse.
type sysfsTree struct {
	t    *testing.T
	root string
}

func newSysfs(t *testing.T) *sysfsTree {
	t.Helper()
	return &sysfsTree{t: t, root: filepath.Join(t.TempDir(), "jailhouse")}
}

func (s *sysfsTree) write(rel, content string) {
	s.t.Helper()
	path := filepath.Join(s.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sysfsTree) remove(rel string) {
	s.t.Helper()
	if err := os.RemoveAll(filepath.Join(s.root, rel)); err != nil {
		s.t.Fatal(err)
	}
}

// disabled is a loaded driver with the hypervisor off.
func (s *sysfsTree) disabled() *sysfsTree {
	s.write("enabled", "0\n")
	for _, f := range []string{"mem_pool_size", "mem_pool_used", "remap_pool_size", "remap_pool_used"} {
		s.write(f, "0\n")
	}
	if err := os.MkdirAll(filepath.Join(s.root, "cells"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	return s
}

// enabled is a running hypervisor with the root cell on CPUs rootCPUs.
func (s *sysfsTree) enabled(rootCPUs string) *sysfsTree {
	s.disabled()
	s.write("enabled", "1\n")
	s.addCell(0, "qemu-arm64", "running", rootCPUs, "")
	return s
}

func (s *sysfsTree) addCell(id int, name, state, cpus, failed string) {
	dir := filepath.Join("cells", itoa(id))
	s.write(filepath.Join(dir, "name"), name+"\n")
	s.write(filepath.Join(dir, "state"), state+"\n")
	s.write(filepath.Join(dir, "cpus_assigned_list"), cpus+"\n")
	s.write(filepath.Join(dir, "cpus_failed_list"), failed+"\n")
}

func itoa(i int) string { return strconv.Itoa(i) }

// demoCell is a cell like the qemu-arm64 inmate demo.
func demoCell(name string, cpus cpuset.Set) *cell.Cell {
	return &cell.Cell{
		Arch: cell.ArchARM64,
		Name: name,
		CPUs: cpus,
		MemRegions: []cell.MemRegion{
			{PhysStart: 0x09000000, VirtStart: 0x09000000, Size: 0x1000,
				Flags: cell.MemRead | cell.MemWrite | cell.MemIO | cell.MemRootShared},
			{PhysStart: 0x7fa00000, VirtStart: 0, Size: 0x10000,
				Flags: cell.MemRead | cell.MemWrite | cell.MemExecute | cell.MemLoadable},
			{PhysStart: 0x7fb00000, VirtStart: 0x10000, Size: 0x4000,
				Flags: cell.MemRead | cell.MemWrite | cell.MemExecute},
			{VirtStart: 0x80000000, Size: 0x1000,
				Flags: cell.MemRead | cell.MemWrite | cell.MemCommRegion},
		},
		CPUResetAddress: 0,
	}
}

func marshalCell(t *testing.T, c *cell.Cell) []byte {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatalf("marshal cell: %v", err)
	}
	return b
}

func demoSystem(t *testing.T, arch cell.Arch) []byte {
	t.Helper()
	s := &cell.System{
		Arch:             arch,
		HypervisorMemory: cell.MemRegion{PhysStart: 0x7fc00000, Size: 0x00400000},
		RootCell: cell.Cell{
			Name: "qemu-arm64",
			CPUs: cpuset.Range(0, 15),
			MemRegions: []cell.MemRegion{
				{PhysStart: 0x40000000, VirtStart: 0x40000000, Size: 0x3fa00000,
					Flags: cell.MemRead | cell.MemWrite | cell.MemExecute},
			},
		},
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatalf("marshal system: %v", err)
	}
	return b
}

// newTestClient wires a client to a fake driver and a sysfs fixture.
func newTestClient(t *testing.T, s *sysfsTree, opts ...Option) (*Client, *fakeDriver) {
	f := &fakeDriver{t: t, errs: map[request]error{}}
	opts = append([]Option{WithOpener(f.opener), WithArch(cell.ArchARM64), WithCreateWait(0)}, opts...)
	c := New(Paths{Device: "/dev/jailhouse-fake", Sysfs: s.root}, opts...)
	t.Cleanup(func() {
		if f.opens != f.closes {
			t.Errorf("device opened %d times, closed %d times", f.opens, f.closes)
		}
	})
	return c, f
}
